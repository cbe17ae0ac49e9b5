// SPDX-License-Identifier: Apache-2.0
/*
 * Listening-socket hand-over between two processes of one daemon (handover.h): the starting
 * side (connect, receive the sockets, later "taken" and the lock), the serving side (a
 * SOCK_SEQPACKET listener in the control loop offering the exported sockets), and the two
 * tables of named sockets, inherited and exported.
 */
#include "rt/handover.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "obs/log.h"

#define HO_MAGIC	"ZMHO1 "
#define HO_MSG_MAX	256
#define HO_ANSWER_MS	5000  /* an old process answers a hello within this */
#define HO_RELEASE_MS	15000 /* and stops accepting within this once told "taken" */
#define HO_LOCK_WAIT_MS 5000  /* the lock follows "released" within this */

struct ho_sock {
	char name[RT_HANDOVER_NAME_LEN];
	int fd;
};

enum ho_peer_state { HO_PEER_NONE, HO_PEER_HELLO, HO_PEER_OFFERED };

static struct {
	bool enabled;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char lock_path[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
	char daemon[32];
	int lock_fd;
	int conn; /* starting: to the old process until commit */
	struct rt_ev srv, peer;
	enum ho_peer_state peer_state;
	pid_t peer_pid;
	struct rt_handover_ops ops;
	pthread_mutex_t mu;
	struct ho_sock inh[RT_HANDOVER_MAX_SOCKS], exp[RT_HANDOVER_MAX_SOCKS];
	unsigned int n_inh, n_exp;
} ho = {.lock_fd = -1,
	.conn = -1,
	.srv = {.fd = -1, .closed = true},
	.peer = {.fd = -1, .closed = true},
	.mu = PTHREAD_MUTEX_INITIALIZER};

/* ---- messages ---- */

static int ho_send(int fd, const char *text, int pass_fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec iov = {.iov_base = (void *)text, .iov_len = strlen(text)};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};

	if (pass_fd >= 0) {
		struct cmsghdr *c;

		m.msg_control = cbuf;
		m.msg_controllen = sizeof(cbuf);
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
	}
	return sendmsg(fd, &m, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/*
 * One message into buf (terminated), an fd passed with it into *rfd (-1 when none). Waits at
 * most timeout_ms (-1: the socket is non-blocking, do not wait). Bytes read, 0 when the peer
 * closed, -errno.
 */
static ssize_t ho_recv(int fd, char *buf, size_t len, int *rfd, int timeout_ms)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 4)];
	struct iovec iov = {.iov_base = buf, .iov_len = len - 1};
	struct msghdr m = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *c;
	ssize_t n;

	*rfd = -1;
	if (timeout_ms >= 0) {
		struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};

		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	for (c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		int fds[4], i, k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		memcpy(fds, CMSG_DATA(c), sizeof(int) * (size_t)(k > 4 ? 4 : k));
		for (i = 0; i < k && i < 4; i++) {
			if (*rfd < 0)
				*rfd = fds[i];
			else
				close(fds[i]); /* one fd a message: more is not ours to keep */
		}
	}
	if (m.msg_flags & MSG_CTRUNC)
		return -EPROTO;
	return n;
}

/* "ZMHO1 word rest": the word after the magic, or NULL when buf is not one of ours. */
static const char *ho_word(const char *buf, const char *word)
{
	size_t w = strlen(word);

	if (strncmp(buf, HO_MAGIC, sizeof(HO_MAGIC) - 1))
		return NULL;
	buf += sizeof(HO_MAGIC) - 1;
	if (strncmp(buf, word, w) || (buf[w] != ' ' && buf[w] != '\0'))
		return NULL;
	return buf[w] ? buf + w + 1 : buf + w;
}

/* ---- tables ---- */

int rt_inherit_take(const char *name)
{
	unsigned int i;
	int fd = -1;

	pthread_mutex_lock(&ho.mu);
	for (i = 0; i < ho.n_inh; i++) {
		if (ho.inh[i].fd >= 0 && !strcmp(ho.inh[i].name, name)) {
			fd = ho.inh[i].fd;
			ho.inh[i].fd = -1;
			break;
		}
	}
	pthread_mutex_unlock(&ho.mu);
	return fd;
}

unsigned int rt_inherit_count(const char *name)
{
	unsigned int i, n = 0;

	pthread_mutex_lock(&ho.mu);
	for (i = 0; i < ho.n_inh; i++)
		n += ho.inh[i].fd >= 0 && !strcmp(ho.inh[i].name, name);
	pthread_mutex_unlock(&ho.mu);
	return n;
}

int rt_export_add(const char *name, int fd)
{
	int r = 0;

	pthread_mutex_lock(&ho.mu);
	if (ho.n_exp == RT_HANDOVER_MAX_SOCKS) {
		r = -ENOSPC;
	} else {
		snprintf(ho.exp[ho.n_exp].name, sizeof(ho.exp[0].name), "%s", name);
		ho.exp[ho.n_exp++].fd = fd;
	}
	pthread_mutex_unlock(&ho.mu);
	return r;
}

void rt_export_del(int fd)
{
	unsigned int i;

	pthread_mutex_lock(&ho.mu);
	for (i = 0; i < ho.n_exp; i++) {
		if (ho.exp[i].fd == fd) {
			ho.exp[i] = ho.exp[--ho.n_exp];
			break;
		}
	}
	pthread_mutex_unlock(&ho.mu);
}

/* ---- the lock ---- */

static pid_t ho_lock_owner(int fd)
{
	char buf[32] = {0};

	if (pread(fd, buf, sizeof(buf) - 1, 0) <= 0)
		return 0;
	return (pid_t)atol(buf);
}

/* Take PATH.lock, waiting at most wait_ms. 0, -EWOULDBLOCK (err names the holder), -errno. */
static int ho_lock(int wait_ms, char *err, size_t len)
{
	char pid[32];
	int fd, waited = 0;

	fd = open(ho.lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, len, "%s: %s", ho.lock_path, strerror(errno));
		return -errno;
	}
	while (flock(fd, LOCK_EX | LOCK_NB)) {
		if (errno != EWOULDBLOCK || waited >= wait_ms) {
			int e = errno;

			snprintf(
			    err, len,
			    "another %s (pid %d) holds %s but does not answer on %s: two %ss "
			    "on one node? (only one may serve; a new one takes over through %s)",
			    ho.daemon, (int)ho_lock_owner(fd), ho.lock_path, ho.path, ho.daemon,
			    ho.path);
			close(fd);
			return -e;
		}
		usleep(10000);
		waited += 10;
	}
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) || pwrite(fd, pid, strlen(pid), 0) < 0) {
		/* The pid is for messages only; the lock itself holds. */
	}
	ho.lock_fd = fd;
	return 0;
}

/* ---- starting ---- */

static int ho_paths(const char *path, const char *daemon, char *err, size_t len)
{
	if (strlen(path) >= sizeof(ho.path)) {
		snprintf(err, len, "hand-over path %s is too long for a unix socket", path);
		return -ENAMETOOLONG;
	}
	snprintf(ho.path, sizeof(ho.path), "%s", path);
	snprintf(ho.lock_path, sizeof(ho.lock_path), "%s.lock", path);
	snprintf(ho.daemon, sizeof(ho.daemon), "%s", daemon);
	return 0;
}

/* Receive the offered sockets after "offer N PID". 0 or -errno (err set). */
static int ho_take_offer(int fd, const char *args, pid_t *old_pid, char *err, size_t len)
{
	char buf[HO_MSG_MAX];
	unsigned int n = 0, i;
	const char *name;
	int pid = 0, rfd;
	ssize_t r;

	if (sscanf(args, "%u %d", &n, &pid) != 2 || n > RT_HANDOVER_MAX_SOCKS) {
		snprintf(err, len, "%s: malformed offer \"%s\"", ho.path, args);
		return -EPROTO;
	}
	for (i = 0; i < n; i++) {
		r = ho_recv(fd, buf, sizeof(buf), &rfd, HO_ANSWER_MS);
		name = r > 0 ? ho_word(buf, "sock") : NULL;
		if (!name || rfd < 0 || !*name) {
			if (rfd >= 0)
				close(rfd);
			snprintf(err, len, "%s: socket %u of %u from pid %d %s", ho.path, i + 1, n,
				 pid, r < 0 ? strerror((int)-r) : "malformed");
			return r < 0 ? (int)r : -EPROTO;
		}
		snprintf(ho.inh[ho.n_inh].name, sizeof(ho.inh[0].name), "%s", name);
		ho.inh[ho.n_inh++].fd = rfd;
	}
	*old_pid = pid;
	return 0;
}

/* Connected to a running process: hello, and its answer. 0 or -errno (err set). */
static int ho_ask(int fd, pid_t *old_pid, char *err, size_t len)
{
	char buf[HO_MSG_MAX], hello[96];
	const char *a;
	ssize_t r;
	int rfd;

	snprintf(hello, sizeof(hello), HO_MAGIC "hello %s %d", ho.daemon, (int)getpid());
	r = ho_send(fd, hello, -1);
	if (!r)
		r = ho_recv(fd, buf, sizeof(buf), &rfd, HO_ANSWER_MS);
	if (r > 0 && rfd >= 0)
		close(rfd);
	if (r <= 0) {
		snprintf(err, len, "%s: the running %s did not answer: %s", ho.path, ho.daemon,
			 r ? strerror((int)-r) : "it closed the connection");
		return r ? (int)r : -ECONNRESET;
	}
	if ((a = ho_word(buf, "offer")))
		return ho_take_offer(fd, a, old_pid, err, len);
	if ((a = ho_word(buf, "busy"))) {
		snprintf(err, len, "another %s is taking over from the running one (pid %s) at %s",
			 ho.daemon, a, ho.path);
		return -EBUSY;
	}
	if ((a = ho_word(buf, "wrong"))) {
		snprintf(err, len, "%s belongs to a %s, not a %s", ho.path, a, ho.daemon);
		return -EPROTO;
	}
	snprintf(err, len, "%s is not a zmesh hand-over socket (it answered \"%.40s\")", ho.path,
		 buf);
	return -EPROTO;
}

int rt_handover_begin(const char *path, const char *daemon, pid_t *old_pid, char *err, size_t len)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, r;

	*old_pid = 0;
	if (!path)
		return 0;
	r = ho_paths(path, daemon, err, len);
	if (r)
		return r;
	ho.enabled = true;
	memcpy(sun.sun_path, ho.path, sizeof(ho.path));
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, len, "socket(AF_UNIX): %s", strerror(errno));
		return -errno;
	}
	if (!connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		r = ho_ask(fd, old_pid, err, len);
		if (r) {
			close(fd);
			return r;
		}
		ho.conn = fd;
		return 0;
	}
	close(fd);
	/* Nobody answers: a fresh start, if the path is ours to use and nobody holds the lock. */
	if (!lstat(ho.path, &st) && !S_ISSOCK(st.st_mode)) {
		snprintf(err, len, "%s exists and is not a socket: refusing to replace it",
			 ho.path);
		return -EEXIST;
	}
	return ho_lock(0, err, len);
}

/* ---- serving ---- */

static void ho_peer_close(struct rt_loop *l, const char *why)
{
	if (ho.peer_state == HO_PEER_OFFERED && why)
		obs_log(OBS_WARN, "rt", "hand-over to pid %d cancelled: %s; still serving",
			(int)ho.peer_pid, why);
	rt_ev_close(l, &ho.peer, false);
	ho.peer_state = HO_PEER_NONE;
}

/* A hello: offer every exported socket. */
static void ho_offer(struct rt_loop *l, const char *args)
{
	char d[32] = "", msg[HO_MSG_MAX];
	unsigned int i;
	int pid = 0;

	if (sscanf(args, "%31s %d", d, &pid) != 2 || strcmp(d, ho.daemon)) {
		snprintf(msg, sizeof(msg), HO_MAGIC "wrong %s", ho.daemon);
		ho_send(ho.peer.fd, msg, -1);
		obs_log(OBS_WARN, "rt", "hand-over request from a \"%s\" refused: this is a %s", d,
			ho.daemon);
		ho_peer_close(l, NULL);
		return;
	}
	pthread_mutex_lock(&ho.mu);
	snprintf(msg, sizeof(msg), HO_MAGIC "offer %u %d", ho.n_exp, (int)getpid());
	ho_send(ho.peer.fd, msg, -1);
	for (i = 0; i < ho.n_exp; i++) {
		snprintf(msg, sizeof(msg), HO_MAGIC "sock %s", ho.exp[i].name);
		if (ho_send(ho.peer.fd, msg, ho.exp[i].fd))
			break;
	}
	pthread_mutex_unlock(&ho.mu);
	ho.peer_pid = pid;
	ho.peer_state = HO_PEER_OFFERED;
	obs_log(OBS_INFO, "rt", "hand-over: pid %d asked for our %u listening sockets", pid, i);
}

/* The new process serves: stop accepting, let go of the lock, say so. */
static void ho_released(struct rt_loop *l)
{
	pid_t pid = ho.peer_pid;

	if (ho.ops.release)
		ho.ops.release(ho.ops.ud);
	rt_ev_close(l, &ho.srv, false); /* not unlinked: the new process binds the path again */
	if (ho.lock_fd >= 0)
		close(ho.lock_fd);
	ho.lock_fd = -1;
	ho_send(ho.peer.fd, HO_MAGIC "released", -1);
	ho_peer_close(l, NULL);
	obs_log(OBS_INFO, "rt", "handed over to pid %d: no longer accepting; draining", (int)pid);
}

static void ho_peer_event(struct rt_loop *l, struct rt_ev *ev, uint32_t events)
{
	char buf[HO_MSG_MAX];
	const char *a;
	ssize_t r;
	int rfd;

	(void)events;
	r = ho_recv(ev->fd, buf, sizeof(buf), &rfd, -1);
	if (rfd >= 0)
		close(rfd);
	if (r == -EAGAIN)
		return;
	if (r <= 0) {
		ho_peer_close(l, "it went away before taking over");
		return;
	}
	if (ho.peer_state == HO_PEER_HELLO && (a = ho_word(buf, "hello")))
		ho_offer(l, a);
	else if (ho.peer_state == HO_PEER_OFFERED && ho_word(buf, "taken"))
		ho_released(l);
	else
		ho_peer_close(l, "it spoke out of turn");
}

static void ho_srv_event(struct rt_loop *l, struct rt_ev *ev, uint32_t events)
{
	char msg[64];
	int fd;

	(void)events;
	while ((fd = accept4(ev->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		if (ho.peer_state != HO_PEER_NONE) {
			snprintf(msg, sizeof(msg), HO_MAGIC "busy %d", (int)ho.peer_pid);
			ho_send(fd, msg, -1);
			close(fd);
			continue;
		}
		rt_ev_init(&ho.peer, fd, ho_peer_event);
		ho.peer_state = HO_PEER_HELLO;
		if (rt_ev_set(l, &ho.peer, EPOLLIN))
			ho_peer_close(l, NULL);
	}
}

static int ho_listen(struct rt_loop *l, char *err, size_t len)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;

	memcpy(sun.sun_path, ho.path, sizeof(ho.path));
	if (!lstat(ho.path, &st) && S_ISSOCK(st.st_mode))
		unlink(ho.path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) || chmod(ho.path, 0600) ||
	    listen(fd, 4)) {
		int e = errno;

		snprintf(err, len, "listening for hand-overs on %s: %s", ho.path, strerror(e));
		if (fd >= 0)
			close(fd);
		return -e;
	}
	rt_ev_init(&ho.srv, fd, ho_srv_event);
	return rt_ev_set(l, &ho.srv, EPOLLIN);
}

int rt_handover_commit(struct rt_loop *l, const struct rt_handover_ops *ops, char *err, size_t len)
{
	char buf[HO_MSG_MAX];
	unsigned int i, left = 0;
	ssize_t r;
	int rfd;

	if (!ho.enabled)
		return 0;
	ho.ops = *ops;
	if (ho.conn >= 0) {
		r = ho_send(ho.conn, HO_MAGIC "taken", -1);
		if (!r)
			r = ho_recv(ho.conn, buf, sizeof(buf), &rfd, HO_RELEASE_MS);
		if (r > 0 && rfd >= 0)
			close(rfd);
		close(ho.conn);
		ho.conn = -1;
		if (r <= 0 || !ho_word(buf, "released")) {
			snprintf(err, len, "%s: the old %s did not confirm the hand-over (%s)",
				 ho.path, ho.daemon, r < 0 ? strerror((int)-r) : "no answer");
			return r < 0 ? (int)r : -EPROTO;
		}
		r = ho_lock(HO_LOCK_WAIT_MS, err, len);
		if (r)
			return (int)r;
	}
	pthread_mutex_lock(&ho.mu);
	for (i = 0; i < ho.n_inh; i++) {
		if (ho.inh[i].fd >= 0) {
			close(ho.inh[i].fd);
			left++;
		}
	}
	ho.n_inh = 0;
	pthread_mutex_unlock(&ho.mu);
	if (left)
		obs_log(OBS_INFO, "rt", "hand-over: %u inherited sockets nobody took were closed",
			left);
	return ho_listen(l, err, len);
}

void rt_handover_fini(struct rt_loop *l)
{
	if (!ho.enabled)
		return;
	if (ho.peer_state != HO_PEER_NONE)
		ho_peer_close(l, "we are stopping");
	if (!ho.srv.closed && ho.srv.fd >= 0) {
		rt_ev_close(l, &ho.srv, false);
		unlink(ho.path); /* still ours: nobody took over */
	}
	if (ho.lock_fd >= 0)
		close(ho.lock_fd);
	ho.lock_fd = -1;
	ho.enabled = false;
}
