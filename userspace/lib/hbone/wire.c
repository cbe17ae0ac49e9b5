// SPDX-License-Identifier: Apache-2.0
/*
 * HBONE connections, the socket under TLS: our own OpenSSL BIO on the connection's fd in place
 * of the socket BIO lib/tls set up. Writes are gathered: each TLS record SSL_write() makes is
 * appended to conn->wire and a whole batch of records leaves in one send() (hb_wire_flush(),
 * run at the end of every write pass), so the kernel carries a few large segments instead of
 * one 16 KiB packet per record and the peer wakes up once per batch. Reads go from the socket
 * into OpenSSL's read-ahead buffer (HB_TLS_READ_AHEAD: several records per read()), and a read
 * that came back short marks the socket drained, so the read loop stops without the extra
 * read() that would only say EAGAIN. An SSL whose BIO is not a socket on the connection's fd
 * (the fuzz targets' memory BIOs) is left as it is and the wire buffer stays unused. Where
 * kTLS exists this is the seam to replace: the record layer would move into the kernel and
 * the wire buffer would go.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/bio.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

#define HB_WIRE_MAX	  (512u << 10) /* ciphertext gathered before SSL_write must wait */
#define HB_TLS_READ_AHEAD (64u << 10)  /* OpenSSL's read buffer: four full records */

static pthread_once_t hb_bio_once = PTHREAD_ONCE_INIT;
static BIO_METHOD *hb_bio_meth;

static int hb_bio_write(BIO *b, const char *data, size_t len, size_t *written)
{
	struct hb_conn *conn = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	if (conn->wire.len >= HB_WIRE_MAX && hb_wire_flush(conn) && conn->wire.len >= HB_WIRE_MAX) {
		if (conn->wire_err) {
			errno = -conn->wire_err;
			return 0;
		}
		BIO_set_retry_write(b);
		return 0;
	}
	if (hb_buf_append(&conn->wire, data, len)) {
		errno = ENOMEM;
		return 0;
	}
	*written = len;
	return 1;
}

static int hb_bio_read(BIO *b, char *buf, size_t len, size_t *nread)
{
	struct hb_conn *conn = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	n = read(conn->fd, buf, len);
	if (n > 0) {
		conn->rd_drained = (size_t)n < len;
		*nread = (size_t)n;
		return 1;
	}
	conn->rd_drained = true;
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		BIO_set_retry_read(b);
	else if (n == 0)
		errno = 0; /* EOF: OpenSSL tells it from an error by errno 0 */
	return 0;
}

static long hb_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct hb_conn *conn = BIO_get_data(b);

	(void)num;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1; /* the batch leaves in hb_wire_flush() */
	case BIO_C_GET_FD:
		if (ptr)
			*(int *)ptr = conn->fd;
		return conn->fd;
	case BIO_CTRL_WPENDING:
		return (long)conn->wire.len;
	default:
		return 0;
	}
}

static int hb_bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static void hb_bio_meth_init(void)
{
	/* A descriptor BIO: SSL_get_fd() (lib/tls picks a server certificate by it) finds it. */
	BIO_METHOD *m = BIO_meth_new(
	    BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR, "hbone socket");

	if (!m)
		return;
	if (!BIO_meth_set_write_ex(m, hb_bio_write) || !BIO_meth_set_read_ex(m, hb_bio_read) ||
	    !BIO_meth_set_ctrl(m, hb_bio_ctrl) || !BIO_meth_set_create(m, hb_bio_create)) {
		BIO_meth_free(m);
		return;
	}
	hb_bio_meth = m;
}

int hb_wire_attach(struct hb_conn *conn, SSL *ssl)
{
	BIO *cur = SSL_get_rbio(ssl), *b;

	/* Only a socket BIO on our own fd is replaced (see the file comment). */
	if (!cur || BIO_method_type(cur) != BIO_TYPE_SOCKET || BIO_get_fd(cur, NULL) != conn->fd)
		return 0;
	pthread_once(&hb_bio_once, hb_bio_meth_init);
	if (!hb_bio_meth)
		return -ENOMEM;
	b = BIO_new(hb_bio_meth);
	if (!b)
		return -ENOMEM;
	BIO_set_data(b, conn);
	/* The socket BIO does not own the fd (BIO_NOCLOSE): freeing it leaves fd open. */
	SSL_set_bio(ssl, b, b);
	SSL_set_read_ahead(ssl, 1);
	SSL_set_default_read_buffer_len(ssl, HB_TLS_READ_AHEAD);
	conn->own_bio = true;
	return 0;
}

int hb_ktls_probe(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

	if (fd < 0)
		return -errno;
	/* The kernel's "tls" ULP refuses an unconnected socket (ENOTCONN) only when it exists. */
	r = setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls"));
	r = r ? (errno == ENOTCONN ? 0 : -errno) : 0;
	close(fd);
	return r;
}

int hb_wire_flush(struct hb_conn *conn)
{
	ssize_t n;

	while (conn->wire.len && !conn->wire_err) {
		n = send(conn->fd, conn->wire.data + conn->wire.off, conn->wire.len,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			hb_buf_drop(&conn->wire, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			conn->ssl_want |= EPOLLOUT;
			return -EAGAIN;
		}
		conn->wire_err = n < 0 ? -errno : -EPIPE;
	}
	return conn->wire_err;
}
