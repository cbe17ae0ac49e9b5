// SPDX-License-Identifier: Apache-2.0
/*
 * lib/tls unit tests: the dev CA on disk (modes, round trip), the shape of issued workload
 * certificates, the identity provider cache, and real TLS 1.3 handshakes between a client and
 * a server SSL over a non-blocking socketpair (and once over loopback TCP, where the server
 * picks its certificate from getsockname()). Every refusal the HBONE contract requires is
 * driven through a real handshake: untrusted CA, expired certificates, wrong trust domain,
 * no client certificate, unexpected server identity, TLS 1.2 and missing ALPN.
 */
#include "tls/tls.h"

#include "tap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define TD    "cluster.local"
#define ID_C  "spiffe://cluster.local/ns/app/sa/client"
#define ID_S  "spiffe://cluster.local/ns/db/sa/server"
#define ID_S2 "spiffe://cluster.local/ns/db/sa/other"

static char tmpdir[] = "/tmp/zm-test-tls-XXXXXX";
static struct zm_ca *ca, *ca2;
static struct zm_tls_roots *roots;

/* ---- fixtures ---- */

/* Server certificate selection: one address -> one cert, anything else -ENOENT. */
struct sel {
	struct zm_addr addr;
	struct zm_cert *cert;
	struct zm_addr seen;
	int calls;
};

static int sel_cb(void *ud, const struct zm_addr *local, struct zm_cert **out)
{
	struct sel *s = ud;

	s->seen = *local;
	s->calls++;
	if (!zm_addr_equal(local, &s->addr))
		return -ENOENT;
	*out = zm_cert_ref(s->cert);
	return 0;
}

static struct zm_cert *issue(struct zm_ca *from, const char *id, long life)
{
	struct zm_cert *c = NULL;
	char err[256];

	if (zm_ca_issue(from, id, life, &c, err, sizeof(err)))
		tap_bail("issue %s: %s", id, err);
	return c;
}

/* One side of a handshake: ours (zm_tls_handshake) or a raw OpenSSL peer. */
struct side {
	SSL *ssl;
	bool raw;
	bool done;
	int ret; /* 0 ok, -EAGAIN still going, else the failure */
	char err[512];
};

static void side_step(struct side *s)
{
	int want, r;

	if (s->done || (s->ret && s->ret != -EAGAIN))
		return;
	if (!s->raw) {
		s->ret = zm_tls_handshake(s->ssl, &want, s->err, sizeof(s->err));
	} else {
		r = SSL_do_handshake(s->ssl);
		if (r == 1) {
			s->ret = 0;
		} else {
			int e = SSL_get_error(s->ssl, r);

			s->ret = (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) ? -EAGAIN
											 : -EPROTO;
			if (s->ret == -EPROTO)
				ERR_error_string_n(ERR_get_error(), s->err, sizeof(s->err));
			ERR_clear_error();
		}
	}
	if (s->ret == 0)
		s->done = true;
}

/* Drive both sides until each finished or failed (or nothing moves any more). */
static void drive(struct side *c, struct side *s)
{
	c->ret = s->ret = -EAGAIN;
	for (int i = 0; i < 200; i++) {
		side_step(c);
		side_step(s);
		if ((c->done || c->ret != -EAGAIN) && (s->done || s->ret != -EAGAIN))
			break;
	}
}

/* After the client thinks it is done (TLS 1.3: before the server checked it), read. */
static int client_read_result(SSL *ssl)
{
	char b[16];
	int r;

	for (int i = 0; i < 20; i++) {
		r = SSL_read(ssl, b, sizeof(b));
		if (r > 0)
			return r;
		if (SSL_get_error(ssl, r) != SSL_ERROR_WANT_READ) {
			ERR_clear_error();
			return -1;
		}
	}
	return 0;
}

static int sp[2]; /* the single-threaded tests' pair */

static void pair_open(int *fds)
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds))
		tap_bail("socketpair: %s", strerror(errno));
}

static void pair_close(struct side *c, struct side *s)
{
	SSL_free(c->ssl);
	SSL_free(s->ssl);
	close(sp[0]);
	close(sp[1]);
}

struct hs {
	struct side c, s;
	struct sel sel;
};

/*
 * A handshake over a new socketpair (fds) between our client (client cert cc, expecting ids)
 * and our server (cert sc at 198.18.0.2, trust domain TD). raw_client: a raw OpenSSL client.
 */
static void hs_run_fds(struct hs *h, struct zm_cert *cc, struct zm_cert *sc, const char *const *ids,
		       size_t n, SSL_CTX *raw_client, int *fds)
{
	struct zm_tls_ctx *sctx = NULL, *cctx = NULL;
	char err[512];

	memset(h, 0, sizeof(*h));
	zm_addr_parse("198.18.0.2", &h->sel.addr);
	h->sel.cert = sc;
	pair_open(fds);
	if (zm_tls_server_ctx_new(roots, TD, sel_cb, &h->sel, &sctx, err, sizeof(err)) ||
	    zm_tls_server_ssl_new(sctx, fds[1], &h->sel.addr, &h->s.ssl, err, sizeof(err)))
		tap_bail("server setup: %s", err);
	if (raw_client) {
		h->c.ssl = SSL_new(raw_client);
		h->c.raw = true;
		SSL_set_fd(h->c.ssl, fds[0]);
		SSL_set_connect_state(h->c.ssl);
	} else if (zm_tls_client_ctx_new(roots, &cctx, err, sizeof(err)) ||
		   zm_tls_client_ssl_new(cctx, fds[0], cc, ids, n, &h->c.ssl, err, sizeof(err))) {
		tap_bail("client setup: %s", err);
	}
	/* The SSLs keep their contexts alive: drop ours now to prove it. */
	zm_tls_ctx_put(sctx);
	zm_tls_ctx_put(cctx);
	drive(&h->c, &h->s);
}

static void hs_run(struct hs *h, struct zm_cert *cc, struct zm_cert *sc, const char *const *ids,
		   size_t n, SSL_CTX *raw_client)
{
	hs_run_fds(h, cc, sc, ids, n, raw_client, sp);
}

/* A raw OpenSSL client: optional cert, max version, ALPN list (NULL: none), no checks. */
static SSL_CTX *raw_client_ctx(struct zm_cert *cert, int max_version, const char *alpn)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	SSL_CTX_set_max_proto_version(ctx, max_version);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (cert && !SSL_CTX_use_cert_and_key(ctx, zm_cert_x509(cert), zm_cert_pkey(cert), NULL, 1))
		tap_bail("raw client cert");
	if (alpn)
		SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)alpn, strlen(alpn));
	return ctx;
}

/* ---- CA and certificates ---- */

static void test_ca_files(void)
{
	char err[512], path[512];
	struct stat st;
	int ret;

	snprintf(path, sizeof(path), "%s/ca", tmpdir);
	ret = zm_ca_init_files(path, TD, err, sizeof(err));
	is_int(ret, 0, "ca init in a fresh directory (%s)", ret ? err : "ok");
	snprintf(path, sizeof(path), "%s/ca/%s", tmpdir, ZM_CA_KEY_FILE);
	ok(!stat(path, &st) && (st.st_mode & 0777) == 0600, "ca-key.pem has mode 0600");
	snprintf(path, sizeof(path), "%s/ca", tmpdir);
	is_int(zm_ca_init_files(path, TD, err, sizeof(err)), -EEXIST,
	       "second ca init refuses to overwrite the key");
	ret = zm_ca_load(path, &ca, err, sizeof(err));
	if (!is_int(ret, 0, "ca load round trip (%s)", ret ? err : "ok"))
		tap_bail("no CA: %s", err);
	is_str(zm_ca_trust_domain(ca), TD, "trust domain read back from the root");
	roots = zm_ca_roots(ca);
	is_int(zm_tls_roots_count(roots), 1, "the CA's root set holds one root");

	struct zm_tls_roots *r2 = NULL;
	snprintf(path, sizeof(path), "%s/ca/%s", tmpdir, ZM_CA_CERT_FILE);
	ret = zm_tls_roots_load(path, &r2, err, sizeof(err));
	ok(!ret && zm_tls_roots_count(r2) == 1, "root bundle loads from ca-cert.pem");
	zm_tls_roots_put(r2);
	snprintf(path, sizeof(path), "%s/nope.pem", tmpdir);
	ok(zm_tls_roots_load(path, &r2, err, sizeof(err)) < 0, "missing bundle refused (%s)", err);

	snprintf(path, sizeof(path), "%s/ca2", tmpdir);
	if (zm_ca_init_files(path, TD, err, sizeof(err)) ||
	    zm_ca_load(path, &ca2, err, sizeof(err)))
		tap_bail("second CA: %s", err);

	snprintf(path, sizeof(path), "%s/ca/%s", tmpdir, ZM_CA_KEY_FILE);
	chmod(path, 0644);
	snprintf(path, sizeof(path), "%s/ca", tmpdir);
	struct zm_ca *bad = NULL;
	is_int(zm_ca_load(path, &bad, err, sizeof(err)), -EPERM, "world-readable CA key refused");
	zm_ca_free(bad);
	snprintf(path, sizeof(path), "%s/nope", tmpdir);
	is_int(zm_ca_load(path, &bad, err, sizeof(err)), -ENOENT, "missing CA: -ENOENT");
	snprintf(path, sizeof(path), "%s/ca3", tmpdir);
	is_int(zm_ca_init_files(path, "Bad,TD", err, sizeof(err)), -EINVAL,
	       "invalid trust domain refused");
	snprintf(path, sizeof(path), "%s/file", tmpdir);
	close(open(path, O_CREAT | O_WRONLY, 0600));
	strcat(path, "/sub");
	ret = zm_ca_init_files(path, TD, err, sizeof(err));
	ok(ret < 0 && strstr(err, path), "unwritable CA dir fails naming it (%s)", err);
}

static int san_count(X509 *x, int *uris)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	int n = names ? sk_GENERAL_NAME_num(names) : 0;

	*uris = 0;
	for (int i = 0; i < n; i++)
		*uris += sk_GENERAL_NAME_value(names, i)->type == GEN_URI;
	GENERAL_NAMES_free(names);
	return n;
}

static void test_issue(void)
{
	char err[512], group[64], cpath[512], kpath[512], serial[80];
	struct zm_cert *c, *c2 = NULL;
	time_t now = time(NULL);
	size_t glen = 0;
	struct stat st;
	int uris, crit = -1;

	c = issue(ca, ID_C, 3600);
	is_str(zm_cert_identity(c), ID_C, "issued cert identity");
	is_int(san_count(zm_cert_x509(c), &uris), 1, "exactly one SAN");
	is_int(uris, 1, "and it is a URI");
	GENERAL_NAMES_free(X509_get_ext_d2i(zm_cert_x509(c), NID_subject_alt_name, &crit, NULL));
	is_int(crit, 1, "SAN is critical (empty subject)");
	is_int(X509_NAME_entry_count(X509_get_subject_name(zm_cert_x509(c))), 0, "empty subject");
	EVP_PKEY_get_group_name(zm_cert_pkey(c), group, sizeof(group), &glen);
	is_str(group, "prime256v1", "ECDSA P-256 key");
	ok(labs(zm_cert_not_after(c) - (now + 3600)) <= 5, "notAfter = now + lifetime");
	ok(labs(zm_cert_not_before(c) - (now - 300)) <= 5, "notBefore = now - 5 min");
	ok(!zm_cert_needs_rotation(c, now), "fresh cert not due for rotation");
	ok(zm_cert_needs_rotation(c, now + 1801), "due after half its lifetime");
	ok(strlen(zm_cert_serial(c, serial, sizeof(serial))) >= 30, "random serial %s", serial);
	is_int(zm_ca_issue(ca, "spiffe://cluster.local/app", 60, &c2, err, sizeof(err)), -EINVAL,
	       "non-Istio SPIFFE shape refused");
	is_int(zm_ca_issue(ca, "http://x/ns/a/sa/b", 60, &c2, err, sizeof(err)), -EINVAL,
	       "non-spiffe URI refused");

	snprintf(cpath, sizeof(cpath), "%s/w-cert.pem", tmpdir);
	snprintf(kpath, sizeof(kpath), "%s/w-key.pem", tmpdir);
	is_int(zm_cert_write_pem(c, cpath, kpath, err, sizeof(err)), 0, "write cert PEM");
	ok(!stat(kpath, &st) && (st.st_mode & 0777) == 0600, "workload key file mode 0600");
	is_int(zm_cert_load_pem(cpath, kpath, &c2, err, sizeof(err)), 0, "load cert PEM back");
	if (c2)
		is_str(zm_cert_identity(c2), ID_C, "loaded identity");
	zm_cert_put(c2);
	zm_cert_put(c);
}

static void test_spiffe(void)
{
	struct zm_spiffe_id id;
	char buf[ZM_SPIFFE_ID_MAX];

	is_int(zm_spiffe_id_parse(ID_C, &id), 0, "parse spiffe id");
	is_str(id.trust_domain, TD, "trust domain part");
	is_str(id.ns, "app", "namespace part");
	is_str(id.sa, "client", "service account part");
	is_int(zm_spiffe_id_parse("spiffe://td/ns/a/sa/b/extra", NULL), -EINVAL, "extra path");
	is_int(zm_spiffe_id_parse("spiffe:///ns/a/sa/b", NULL), -EINVAL, "empty trust domain");
	is_int(zm_spiffe_id_format(buf, sizeof(buf), TD, "app", "client"), 0, "format id");
	is_str(buf, ID_C, "formatted id");
	is_str(zm_spiffe_principal(ID_C), "cluster.local/ns/app/sa/client", "principal form");
}

/* ---- provider ---- */

struct prov_arg {
	struct zm_identity_provider *p;
	int failures;
};

static void *prov_thread(void *arg)
{
	struct prov_arg *a = arg;
	static const char *const ids[] = {ID_C, ID_S, ID_S2};
	char err[256];

	for (int i = 0; i < 30; i++) {
		struct zm_cert *c = NULL;

		if (zm_identity_get(a->p, ids[i % 3], &c, err, sizeof(err)) ||
		    strcmp(zm_cert_identity(c), ids[i % 3]))
			__atomic_add_fetch(&a->failures, 1, __ATOMIC_RELAXED);
		zm_cert_put(c);
	}
	return NULL;
}

static void test_provider(void)
{
	struct zm_identity_provider *p = NULL;
	struct zm_cert *a = NULL, *b = NULL, *d = NULL;
	struct prov_arg pa = {0};
	pthread_t th[4];
	char err[256], path[512];
	struct zm_ca *own;

	snprintf(path, sizeof(path), "%s/ca", tmpdir);
	chmod(path, 0700);
	snprintf(path, sizeof(path), "%s/ca/%s", tmpdir, ZM_CA_KEY_FILE);
	chmod(path, 0600);
	snprintf(path, sizeof(path), "%s/ca", tmpdir);
	if (zm_ca_load(path, &own, err, sizeof(err)))
		tap_bail("reload CA: %s", err);
	setenv(ZM_CERT_LIFETIME_ENV, "2", 1);
	is_int(zm_dev_provider_new(own, 0, &p, err, sizeof(err)), 0, "dev provider created");
	unsetenv(ZM_CERT_LIFETIME_ENV);
	is_int(zm_identity_get(p, ID_C, &a, err, sizeof(err)), 0, "provider issues a cert");
	is_int(zm_identity_get(p, ID_C, &b, err, sizeof(err)), 0, "second get");
	ok(a == b, "second get is served from the cache");
	ok(zm_cert_not_after(a) - time(NULL) <= 2, "ZM_CERT_LIFETIME honoured");
	sleep(2); /* half of a 2 s lifetime has passed */
	is_int(zm_identity_get(p, ID_C, &d, err, sizeof(err)), 0, "get after half lifetime");
	ok(d && d != a, "re-issued at half lifetime");
	is_int(zm_identity_get(p, "nonsense", &d, err, sizeof(err)), -EINVAL, "bad id refused");
	struct zm_tls_roots *r = p->roots(p);
	ok(r && zm_tls_roots_count(r) == 1, "provider exposes its roots");
	zm_tls_roots_put(r);
	pa.p = p;
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, prov_thread, &pa);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	is_int(pa.failures, 0, "4 threads x 30 gets: all right identities");
	zm_cert_put(a);
	zm_cert_put(b);
	zm_cert_put(d);
	zm_identity_provider_free(p);
}

/* ---- handshakes ---- */

static void test_good(void)
{
	struct zm_cert *cc = issue(ca, ID_C, 3600), *sc = issue(ca, ID_S, 3600);
	const char *ids[] = {ID_S2, "cluster.local/ns/db/sa/server"}; /* prefix optional */
	char idbuf[ZM_SPIFFE_ID_MAX], buf[8];
	const unsigned char *alpn;
	unsigned int alen;
	const char *suite;
	struct hs h;

	hs_run(&h, cc, sc, ids, 2, NULL);
	ok(h.c.done, "good pair: client handshake ok (%s)", h.c.err);
	ok(h.s.done, "good pair: server handshake ok (%s)", h.s.err);
	is_int(zm_tls_peer_identity(h.s.ssl, idbuf, sizeof(idbuf)), 0, "server sees a peer id");
	is_str(idbuf, ID_C, "server sees the client's id");
	is_int(zm_tls_peer_identity(h.c.ssl, idbuf, sizeof(idbuf)), 0, "client sees a peer id");
	is_str(idbuf, ID_S, "client sees the server's id");
	SSL_get0_alpn_selected(h.c.ssl, &alpn, &alen);
	ok(alen == 2 && !memcmp(alpn, "h2", 2), "ALPN h2 negotiated");
	is_str(SSL_get_version(h.c.ssl), "TLSv1.3", "TLS 1.3");
	suite = SSL_CIPHER_standard_name(SSL_get_current_cipher(h.c.ssl));
	ok(suite && (!strcmp(suite, "TLS_AES_128_GCM_SHA256") ||
		     !strcmp(suite, "TLS_AES_256_GCM_SHA384")),
	   "cipher %s in the allowed set", suite ?: "?");
	is_int(SSL_get_servername(h.s.ssl, TLSEXT_NAMETYPE_host_name) == NULL, 1, "no SNI sent");
	is_int(h.sel.calls, 1, "server selected its cert once");
	ok(SSL_write(h.c.ssl, "ping", 4) == 4, "client writes");
	ok(SSL_read(h.s.ssl, buf, sizeof(buf)) == 4 && !memcmp(buf, "ping", 4), "server reads");
	pair_close(&h.c, &h.s);
	zm_cert_put(cc);
	zm_cert_put(sc);
}

/* A refusal: which side must fail, with which errno, and a word its message must carry. */
static void expect_refused(struct hs *h, const char *what, bool server_side, int err,
			   const char *word)
{
	struct side *s = server_side ? &h->s : &h->c;

	if (server_side && h->c.done)
		ok(client_read_result(h->c.ssl) < 0, "%s: client's first read fails", what);
	ok(!s->done && s->ret == err, "%s: %s refuses (%d %s)", what,
	   server_side ? "server" : "client", s->ret, s->err);
	ok(strstr(s->err, word) != NULL, "%s: reason mentions \"%s\"", what, word);
	ok(!(h->c.done && h->s.done), "%s: no connection established", what);
}

static void test_refusals(void)
{
	struct zm_cert *sc = issue(ca, ID_S, 3600), *cc = issue(ca, ID_C, 3600);
	struct zm_cert *other = issue(ca2, ID_C, 3600), *expired = issue(ca, ID_C, -60);
	struct zm_cert *wrong_td = issue(ca, "spiffe://other.td/ns/app/sa/client", 3600);
	struct zm_cert *sc_expired = issue(ca, ID_S, -60);
	const char *ids[] = {ID_S};
	const char *ids_other[] = {ID_S2};
	SSL_CTX *raw;
	struct hs h;

	hs_run(&h, other, sc, ids, 1, NULL);
	expect_refused(&h, "client cert from another CA", true, -ECONNREFUSED, "chain rejected");
	pair_close(&h.c, &h.s);

	hs_run(&h, expired, sc, ids, 1, NULL);
	expect_refused(&h, "expired client cert", true, -ECONNREFUSED, "expired");
	pair_close(&h.c, &h.s);

	hs_run(&h, cc, sc_expired, ids, 1, NULL);
	expect_refused(&h, "expired server cert", false, -ECONNREFUSED, "expired");
	pair_close(&h.c, &h.s);

	hs_run(&h, wrong_td, sc, ids, 1, NULL);
	expect_refused(&h, "wrong trust domain", true, -ECONNREFUSED, "trust domain");
	pair_close(&h.c, &h.s);

	hs_run(&h, cc, sc, ids_other, 1, NULL);
	expect_refused(&h, "server id not expected", false, -ECONNREFUSED, "not the expected");
	pair_close(&h.c, &h.s);

	raw = raw_client_ctx(NULL, TLS1_3_VERSION, "\x02h2");
	hs_run(&h, NULL, sc, NULL, 0, raw);
	expect_refused(&h, "no client cert", true, -ECONNREFUSED, "no certificate");
	pair_close(&h.c, &h.s);
	SSL_CTX_free(raw);

	raw = raw_client_ctx(cc, TLS1_2_VERSION, "\x02h2");
	hs_run(&h, NULL, sc, NULL, 0, raw);
	expect_refused(&h, "TLS 1.2-only client", true, -EPROTO, "protocol");
	pair_close(&h.c, &h.s);
	SSL_CTX_free(raw);

	raw = raw_client_ctx(cc, TLS1_3_VERSION, NULL);
	hs_run(&h, NULL, sc, NULL, 0, raw);
	expect_refused(&h, "client without ALPN", true, -ECONNREFUSED, "ALPN");
	pair_close(&h.c, &h.s);
	SSL_CTX_free(raw);

	raw = raw_client_ctx(cc, TLS1_3_VERSION, "\x08http/1.1");
	hs_run(&h, NULL, sc, NULL, 0, raw);
	expect_refused(&h, "client ALPN without h2", true, -ECONNREFUSED, "ALPN");
	pair_close(&h.c, &h.s);
	SSL_CTX_free(raw);

	hs_run(&h, cc, NULL, ids, 1, NULL); /* the selector has no cert for the address */
	expect_refused(&h, "no server cert for the address", true, -ECONNREFUSED,
		       "no certificate for local address");
	pair_close(&h.c, &h.s);

	zm_cert_put(sc);
	zm_cert_put(cc);
	zm_cert_put(other);
	zm_cert_put(expired);
	zm_cert_put(wrong_td);
	zm_cert_put(sc_expired);
}

/* Handshakes on several threads at once sharing certificates and roots (run under ASan). */
struct mt_arg {
	struct zm_cert *cc, *sc;
	int good;
};

static void *mt_thread(void *arg)
{
	struct mt_arg *a = arg;
	const char *ids[] = {ID_S};
	struct hs *h = calloc(1, sizeof(*h));
	char idbuf[ZM_SPIFFE_ID_MAX];
	int fds[2];

	for (int i = 0; i < 10; i++) {
		hs_run_fds(h, a->cc, a->sc, ids, 1, NULL, fds);
		if (h->c.done && h->s.done &&
		    !zm_tls_peer_identity(h->s.ssl, idbuf, sizeof(idbuf)) && !strcmp(idbuf, ID_C))
			__atomic_add_fetch(&a->good, 1, __ATOMIC_RELAXED);
		SSL_free(h->c.ssl);
		SSL_free(h->s.ssl);
		close(fds[0]);
		close(fds[1]);
	}
	free(h);
	return NULL;
}

static void test_threads(void)
{
	struct mt_arg a = {.cc = issue(ca, ID_C, 3600), .sc = issue(ca, ID_S, 3600)};
	pthread_t th[4];

	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, mt_thread, &a);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	is_int(a.good, 40, "40 handshakes on 4 threads sharing certs and roots");
	zm_cert_put(a.cc);
	zm_cert_put(a.sc);
}

/* Loopback TCP: the server learns its local address from getsockname(). */
static void test_loopback(void)
{
	struct zm_cert *cc = issue(ca, ID_C, 3600), *sc = issue(ca, ID_S, 3600);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	struct zm_tls_ctx *sctx, *cctx;
	const char *ids[] = {ID_S};
	struct hs h = {0};
	char err[512];
	int l, cfd, sfd;

	l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&sa, &sl))
		tap_bail("loopback listener: %s", strerror(errno));
	cfd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(cfd, (struct sockaddr *)&sa, sizeof(sa)))
		tap_bail("connect: %s", strerror(errno));
	sfd = accept4(l, NULL, NULL, SOCK_NONBLOCK);
	fcntl(cfd, F_SETFL, O_NONBLOCK);
	zm_addr_parse("127.0.0.1", &h.sel.addr);
	h.sel.cert = sc;
	if (zm_tls_server_ctx_new(roots, TD, sel_cb, &h.sel, &sctx, err, sizeof(err)) ||
	    zm_tls_server_ssl_new(sctx, sfd, NULL, &h.s.ssl, err, sizeof(err)) ||
	    zm_tls_client_ctx_new(roots, &cctx, err, sizeof(err)) ||
	    zm_tls_client_ssl_new(cctx, cfd, cc, ids, 1, &h.c.ssl, err, sizeof(err)))
		tap_bail("loopback setup: %s", err);
	for (int i = 0; i < 100 && !(h.c.done && h.s.done); i++) {
		drive(&h.c, &h.s);
		if ((h.c.ret && h.c.ret != -EAGAIN) || (h.s.ret && h.s.ret != -EAGAIN))
			break;
		usleep(1000);
	}
	ok(h.c.done && h.s.done, "loopback handshake ok (%s%s)", h.c.err, h.s.err);
	is_int(zm_addr_equal(&h.sel.seen, &h.sel.addr), 1, "cert chosen by getsockname() address");
	SSL_free(h.c.ssl);
	SSL_free(h.s.ssl);
	zm_tls_ctx_put(sctx);
	zm_tls_ctx_put(cctx);
	close(cfd);
	close(sfd);
	close(l);
	zm_cert_put(cc);
	zm_cert_put(sc);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st, (void)flag, (void)f;
	return remove(p);
}

int main(void)
{
	char idbuf[64];
	SSL *none;
	SSL_CTX *sc;

	if (!mkdtemp(tmpdir))
		tap_bail("mkdtemp: %s", strerror(errno));
	test_spiffe();
	test_ca_files();
	test_issue();
	test_provider();
	test_good();
	test_refusals();
	test_loopback();
	test_threads();
	sc = SSL_CTX_new(TLS_method());
	none = SSL_new(sc);
	is_int(zm_tls_peer_identity(none, idbuf, sizeof(idbuf)), -ENOENT,
	       "no peer identity before/without a handshake");
	SSL_free(none);
	SSL_CTX_free(sc);
	zm_tls_roots_put(roots);
	zm_ca_free(ca);
	zm_ca_free(ca2);
	nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return tap_done();
}
