// SPDX-License-Identifier: Apache-2.0
/*
 * Moving bytes. Plain legs (two sockets) are relayed with splice() through a pipe per
 * direction, so payload never crosses into userspace (bpf/README.md measured 8.7 vs
 * 7.0 Gbit/s for read/write). A direction holds its pipe only while bytes sit in it: pipes
 * come from a small per-worker pool and go back as soon as they are empty, so an idle relayed
 * connection costs its two sockets and nothing else (2 fds, not 6), and the fd limit, not
 * pipes, bounds how many same-node connections a node carries. A tunnel leg (socket <-> HBONE
 * stream) reads straight into the stream's send queue (hb_stream_write_space): reads start at
 * 1 KiB and grow to 16 KiB and 256 KiB only while the peer keeps filling them, and an idle
 * connection holds no buffer at all. Both keep TCP semantics: EOF on one side
 * becomes a half-close (shutdown(SHUT_WR) or END_STREAM) on the other; a reset on either side
 * resets the other. Backpressure: a direction stops reading while its pipe or buffer cannot drain.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hbone/hbone.h"
#include "zt.h"

#define ZT_PIPE_SIZE	 (256 * 1024)
#define ZT_PIPE_POOL_MAX 16 /* empty pipes a worker keeps for the next busy direction */

/* The calling worker's spare pipes (workers are threads; a pipe never changes hands). */
static __thread struct {
	int fds[ZT_PIPE_POOL_MAX][2];
	int n;
} zt_pipe_pool;

/* Give @d a pipe if it has none: a spare one, else a new one. 0 or -errno. */
static int zt_pipe_get(struct zt_dir *d)
{
	if (d->pipe[0] >= 0)
		return 0;
	if (zt_pipe_pool.n) {
		zt_pipe_pool.n--;
		d->pipe[0] = zt_pipe_pool.fds[zt_pipe_pool.n][0];
		d->pipe[1] = zt_pipe_pool.fds[zt_pipe_pool.n][1];
		return 0;
	}
	if (pipe2(d->pipe, O_NONBLOCK | O_CLOEXEC)) {
		d->pipe[0] = d->pipe[1] = -1;
		return -errno;
	}
	/* Best effort: a bigger pipe means fewer wakeups per megabyte. */
	fcntl(d->pipe[1], F_SETPIPE_SZ, ZT_PIPE_SIZE);
	return 0;
}

void zt_relay_pipe_put(struct zt_dir *d)
{
	if (d->pipe[0] < 0)
		return;
	/* A pipe still holding bytes would hand them to its next user: close it instead. */
	if (!d->in_pipe && zt_pipe_pool.n < ZT_PIPE_POOL_MAX) {
		zt_pipe_pool.fds[zt_pipe_pool.n][0] = d->pipe[0];
		zt_pipe_pool.fds[zt_pipe_pool.n][1] = d->pipe[1];
		zt_pipe_pool.n++;
	} else {
		close(d->pipe[0]);
		close(d->pipe[1]);
	}
	d->pipe[0] = d->pipe[1] = -1;
}

/*
 * Move what can move from src to dst. Returns 0, or -errno with *src_side telling which
 * socket failed (true: the reading side).
 */
static int zt_dir_pump(struct zt_conn *c, struct zt_dir *d, int src, int dst, bool from_a,
		       bool *src_side)
{
	ssize_t n;

	for (;;) {
		if (d->in_pipe) {
			n = splice(d->pipe[0], NULL, dst, NULL, d->in_pipe,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n > 0) {
				d->in_pipe -= (size_t)n;
				zt_conn_count(c, from_a, (size_t)n);
				continue;
			}
			if (n < 0 && errno == EAGAIN) {
				d->dst_blocked = true;
				return 0;
			}
			*src_side = false;
			return n < 0 ? -errno : -EPIPE;
		}
		d->dst_blocked = false;
		if (d->eof) {
			zt_relay_pipe_put(d);
			if (!d->shut && shutdown(dst, SHUT_WR) && errno != ENOTCONN) {
				*src_side = false;
				return -errno;
			}
			d->shut = true;
			return 0;
		}
		n = zt_pipe_get(d);
		if (n) {
			*src_side = true;
			return (int)n;
		}
		n = splice(src, NULL, d->pipe[1], NULL, ZT_PIPE_SIZE,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0) {
			d->in_pipe += (size_t)n;
		} else if (n == 0) {
			d->eof = true;
		} else if (errno == EAGAIN) {
			zt_relay_pipe_put(d); /* empty: back to the pool until bytes come */
			return 0;
		} else {
			*src_side = true;
			return -errno;
		}
	}
}

static void zt_plain_arm(struct zt_conn *c)
{
	uint32_t ea = 0, eb = 0;

	if (!c->ab.eof && !c->ab.in_pipe)
		ea |= EPOLLIN;
	if (c->ba.dst_blocked)
		ea |= EPOLLOUT;
	if (!c->ba.eof && !c->ba.in_pipe)
		eb |= EPOLLIN;
	if (c->ab.dst_blocked)
		eb |= EPOLLOUT;
	if (rt_ev_set(c->w->loop, &c->a.ev, ea) || rt_ev_set(c->w->loop, &c->b.ev, eb))
		zt_conn_finish(c, ZT_OUT_INTERNAL, "epoll_ctl: %s", strerror(errno));
}

static void zt_plain_pump(struct zt_conn *c)
{
	bool src_side = false;
	int r;

	r = zt_dir_pump(c, &c->ab, c->a.ev.fd, c->b.ev.fd, true, &src_side);
	if (r) {
		/* a -> b: a failing while read is the client, b failing while written upstream */
		zt_conn_finish(
		    c, src_side == c->a_is_client ? ZT_OUT_DOWNSTREAM_RESET : ZT_OUT_UPSTREAM_RESET,
		    "%s", strerror(-r));
		return;
	}
	r = zt_dir_pump(c, &c->ba, c->b.ev.fd, c->a.ev.fd, false, &src_side);
	if (r) {
		zt_conn_finish(
		    c, src_side == c->a_is_client ? ZT_OUT_UPSTREAM_RESET : ZT_OUT_DOWNSTREAM_RESET,
		    "%s", strerror(-r));
		return;
	}
	if (c->ab.shut && c->ba.shut) {
		zt_conn_finish(c, ZT_OUT_OK, NULL);
		return;
	}
	zt_plain_arm(c);
}

int zt_relay_plain_start(struct zt_conn *c)
{
	c->state = ZT_CS_RELAY;
	zt_plain_pump(c);
	return 0;
}

void zt_relay_plain_event(struct zt_conn *c, int side, uint32_t events)
{
	(void)side;
	(void)events;
	zt_plain_pump(c);
}

/* ---- tunnel legs: socket a <-> HBONE stream ---- */

/*
 * Whether socket a is read into the stream now: in the relay, and, with --hbone-early-data,
 * outbound already while the CONNECT waits for its answer (the client's first bytes ride
 * right behind the HEADERS instead of waiting a round trip for the 200; the server holds
 * them, uncredited, until its upstream is connected, and drops them with any other answer,
 * which resets the client as without early data). Off by default: Istio's ztunnel waits
 * for the 200, and a peer may refuse a CONNECT that carries data before its answer.
 */
static bool zt_tunnel_reading(const struct zt_conn *c)
{
	return c->state == ZT_CS_RELAY || (c->state == ZT_CS_WAIT_RESPONSE && c->tunnel &&
					   !c->connect_on_a && c->st && c->w->zt->opts.early_data);
}

/* Bytes socket a may still give the stream now: unlimited in the relay, ZT_EARLY_MAX before. */
static size_t zt_tunnel_allowance(const struct zt_conn *c, size_t want)
{
	size_t left;

	if (c->state == ZT_CS_RELAY)
		return want;
	left = c->early < ZT_EARLY_MAX ? ZT_EARLY_MAX - c->early : 0;
	return want < left ? want : left;
}

static void zt_tunnel_arm(struct zt_conn *c)
{
	uint32_t e = 0;

	if (!zt_tunnel_reading(c))
		return;
	if (!c->a_eof && !c->st_full && zt_tunnel_allowance(c, 1))
		e |= EPOLLIN;
	if (c->st_paused)
		e |= EPOLLOUT;
	if (rt_ev_set(c->w->loop, &c->a.ev, e))
		zt_conn_finish(c, ZT_OUT_INTERNAL, "epoll_ctl: %s", strerror(errno));
}

static void zt_tunnel_check_done(struct zt_conn *c)
{
	if (c->state == ZT_CS_RELAY && c->st_shut && c->a_wr_shut)
		zt_conn_finish(c, ZT_OUT_OK, NULL);
}

/* The socket reached EOF: END_STREAM once the queued bytes are out. */
static void zt_tunnel_eof(struct zt_conn *c)
{
	c->a_eof = true;
	if (!c->st_shut) {
		hb_stream_shutdown(c->st);
		c->st_shut = true;
	}
}

/*
 * Read socket a straight into the stream's send queue (no buffer of ours, no copy) until the
 * socket is drained, the queue is full (on_writable resumes) or 16 reads. A read that comes
 * back short means the socket is empty: no further read() just to hear EAGAIN. The read size
 * starts at 1 KiB and grows to 16 KiB and 256 KiB only while reads fill it, so an
 * interactive connection never asks for a big buffer.
 */
static void zt_tunnel_read(struct zt_conn *c)
{
	ssize_t room, n;
	int i, rerr;
	size_t want;
	void *p;

	for (i = 0; i < 16 && !c->a_eof && c->st; i++) {
		if (!c->rd_want)
			c->rd_want = ZT_BUF_MIN;
		want = zt_tunnel_allowance(c, c->rd_want);
		if (!want)
			break; /* early data used up: the rest waits for the 200 */
		room = hb_stream_write_space(c->st, want, &p);
		if (room <= 0) {
			if (!room) {
				c->st_full = true; /* on_writable resumes */
				break;
			}
			zt_conn_finish(
			    c, c->a_is_client ? ZT_OUT_UPSTREAM_RESET : ZT_OUT_DOWNSTREAM_RESET,
			    "stream write: %s", strerror((int)-room));
			return;
		}
		n = read(c->a.ev.fd, p, (size_t)room);
		/* The commit may free or send: read()'s errno is kept before it. */
		rerr = n < 0 ? errno : 0;
		hb_stream_write_commit(c->st, n > 0 ? (size_t)n : 0);
		if (n < 0 && rerr == EAGAIN)
			break;
		if (n < 0) {
			zt_conn_finish(
			    c, c->a_is_client ? ZT_OUT_DOWNSTREAM_RESET : ZT_OUT_UPSTREAM_RESET,
			    "read: %s", strerror(rerr));
			return;
		}
		if (n == 0) {
			zt_tunnel_eof(c);
			break;
		}
		zt_conn_count(c, true, (size_t)n);
		if (c->state != ZT_CS_RELAY)
			c->early += (size_t)n;
		if (n < room)
			break;
		if (c->rd_want < ZT_BUF_MAX)
			c->rd_want = c->rd_want == ZT_BUF_MIN ? ZT_BUF_MID : ZT_BUF_MAX;
	}
	zt_tunnel_check_done(c);
	zt_tunnel_arm(c);
}

void zt_relay_tunnel_early(struct zt_conn *c)
{
	zt_tunnel_read(c);
}

int zt_relay_tunnel_start(struct zt_conn *c)
{
	c->state = ZT_CS_RELAY;
	/* Bytes the peer sent with or right after the 200 were held for us. */
	if (c->st && hb_stream_held(c->st))
		hb_stream_resume(c->st);
	if (c->state == ZT_CS_RELAY)
		zt_tunnel_read(c);
	return 0;
}

void zt_relay_tunnel_event(struct zt_conn *c, uint32_t events)
{
	if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && c->st_paused) {
		c->st_paused = false;
		if (c->st)
			hb_stream_resume(c->st);
		if (c->state != ZT_CS_RELAY)
			return;
	}
	if (zt_tunnel_reading(c))
		zt_tunnel_read(c);
}

size_t zt_tunnel_on_data(struct hb_stream *s, const uint8_t *buf, size_t len)
{
	struct zt_conn *c = hb_stream_ud(s);
	ssize_t n;

	if (!c)
		return len; /* connection already gone: discard */
	if (c->state != ZT_CS_RELAY)
		return 0; /* hold until the tunnel is up */
	n = send(c->a.ev.fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0 && errno != EAGAIN) {
		zt_conn_finish(c, c->a_is_client ? ZT_OUT_DOWNSTREAM_RESET : ZT_OUT_UPSTREAM_RESET,
			       "write: %s", strerror(errno));
		return len;
	}
	if (n < 0)
		n = 0;
	zt_conn_count(c, false, (size_t)n);
	if ((size_t)n < len) {
		c->st_paused = true;
		zt_tunnel_arm(c);
	}
	return (size_t)n;
}

void zt_tunnel_on_eof(struct hb_stream *s)
{
	struct zt_conn *c = hb_stream_ud(s);

	if (!c || c->state == ZT_CS_DONE)
		return;
	c->st_eof = true;
	if (c->state != ZT_CS_RELAY)
		return;
	if (!c->a_wr_shut) {
		shutdown(c->a.ev.fd, SHUT_WR);
		c->a_wr_shut = true;
	}
	zt_tunnel_check_done(c);
}

void zt_tunnel_on_writable(struct hb_stream *s)
{
	struct zt_conn *c = hb_stream_ud(s);

	if (!c || !zt_tunnel_reading(c))
		return;
	c->st_full = false;
	zt_tunnel_read(c);
}

void zt_tunnel_on_stream_close(struct hb_stream *s, uint32_t error)
{
	struct zt_conn *c = hb_stream_ud(s);

	if (!c)
		return;
	c->st = NULL;
	if (c->state == ZT_CS_DONE)
		return;
	if (error == HB_ERR_NO_ERROR && c->state == ZT_CS_RELAY) {
		if (!c->a_wr_shut)
			shutdown(c->a.ev.fd, SHUT_WR);
		zt_conn_finish(c, ZT_OUT_OK, NULL);
		return;
	}
	if (c->state == ZT_CS_WAIT_RESPONSE || c->state == ZT_CS_CONNECTING) {
		zt_conn_finish(c, c->connect_on_a ? ZT_OUT_DOWNSTREAM_RESET : ZT_OUT_TLS_FAILED,
			       "stream closed before the tunnel was up (h2 error 0x%x)", error);
		return;
	}
	/* A reset by the far side's TCP peer (CONNECT_ERROR) or a dead connection. */
	zt_conn_finish(c, c->a_is_client ? ZT_OUT_UPSTREAM_RESET : ZT_OUT_DOWNSTREAM_RESET,
		       "stream reset (h2 error 0x%x)", error);
}
