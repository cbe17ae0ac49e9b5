// SPDX-License-Identifier: Apache-2.0
/*
 * The TCP relay of relay.h: client bytes from the connection's input queue into the tunnel,
 * the endpoint's bytes into the connection's output queue, each bounded by WP_IN_HIGH.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "relay.h"

static void wp_relay_to_up(struct wp_relay *rl)
{
	struct wp_conn *c = rl->c;
	size_t n;

	if (!rl->t)
		return;
	while ((n = wp_q_size(&c->in)) && wp_tun_queued(rl->t) < WP_IN_HIGH) {
		if (wp_tun_write(rl->t, wp_q_data(&c->in), n))
			return;
		wp_q_drop(&c->in, n);
		if (rl->observed)
			wp_tcp_bytes(&rl->obs, n, 0);
	}
	if (c->in_eof && !wp_q_size(&c->in) && !rl->sent_eof) {
		rl->sent_eof = true;
		wp_tun_end(rl->t);
	}
	if (wp_q_size(&c->in) < WP_IN_HIGH)
		wp_conn_resume(c);
}

static size_t wp_relay_data(struct wp_tun *t, void *ud, const uint8_t *buf, size_t len)
{
	struct wp_relay *rl = ud;

	(void)t;
	if (!rl->c->st)
		return len;
	if (wp_q_size(&rl->c->out) >= WP_IN_HIGH)
		return 0; /* resumed from wp_relay_writable() */
	wp_conn_send(rl->c, buf, len);
	if (rl->observed)
		wp_tcp_bytes(&rl->obs, 0, len);
	return len;
}

static void wp_relay_eof(struct wp_tun *t, void *ud)
{
	struct wp_relay *rl = ud;

	(void)t;
	wp_conn_end(rl->c);
}

static void wp_relay_up_writable(struct wp_tun *t, void *ud)
{
	(void)t;
	wp_relay_to_up(ud);
}

static void wp_relay_closed(struct wp_tun *t, void *ud, uint32_t error)
{
	struct wp_relay *rl = ud;

	(void)t;
	rl->t = NULL;
	rl->up_error = error;
	if (error)
		wp_conn_reset(rl->c, HB_ERR_CONNECT_ERROR);
	else
		wp_conn_end(rl->c);
}

static const struct wp_tun_ops wp_relay_tun_ops = {
    .data = wp_relay_data,
    .eof = wp_relay_eof,
    .writable = wp_relay_up_writable,
    .closed = wp_relay_closed,
};

int wp_relay_start(struct wp_conn *c, struct wp_tun *t, const struct wp_tcp_obs *obs)
{
	struct wp_relay *rl = calloc(1, sizeof(*rl));

	if (!rl) {
		wp_tun_abort(t);
		return -ENOMEM;
	}
	wp_conn_ref(c);
	rl->c = c;
	rl->t = t;
	if (obs) {
		rl->obs = *obs;
		rl->observed = true;
		wp_tcp_open(c->w->wp, &rl->obs);
	}
	c->relay = rl;
	wp_tun_own(t, &wp_relay_tun_ops, rl);
	if (wp_q_size(&t->held)) {
		wp_conn_send(c, wp_q_data(&t->held), wp_q_size(&t->held));
		wp_q_free(&t->held);
	}
	if (t->eof)
		wp_conn_end(c);
	wp_relay_to_up(rl);
	return 0;
}

void wp_relay_input(struct wp_conn *c)
{
	if (c->relay)
		wp_relay_to_up(c->relay);
}

void wp_relay_writable(struct wp_conn *c)
{
	struct wp_relay *rl = c->relay;

	if (rl && rl->t && wp_q_size(&c->out) < WP_IN_HIGH)
		wp_tun_resume(rl->t);
}

void wp_relay_close(struct wp_conn *c, uint32_t error)
{
	struct wp_relay *rl = c->relay;
	char why[64];

	if (!rl)
		return;
	c->relay = NULL;
	if (rl->observed) {
		if (rl->up_error)
			snprintf(why, sizeof(why), "endpoint reset (%u)", rl->up_error);
		else if (error)
			snprintf(why, sizeof(why), "client reset (%u)", error);
		else
			snprintf(why, sizeof(why), "%s", rl->t ? "client closed" : "closed");
		wp_tcp_close(&rl->obs, why);
	}
	if (rl->t)
		wp_tun_abort(rl->t);
	wp_conn_put(rl->c);
	free(rl);
}
