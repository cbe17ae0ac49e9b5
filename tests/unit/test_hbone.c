// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of lib/hbone: the section 3 header values (authority both ways, forwarded,
 * baggage, traceparent), then a real client <-> server HBONE session over a socketpair with
 * TLS 1.3 from lib/tls's dev CA: CONNECT + 200, data both ways, END_STREAM half-close each
 * way, RST_STREAM(CONNECT_ERROR) both ways, the server's own 400s (a GET sent with raw nghttp2,
 * an unparsable authority) and the reason on_bad_request gives for each, a 503, 100 concurrent
 * streams and the stream limit, receive-side flow control against a stalled consumer, PING
 * keepalive and its timeout, GOAWAY, a peer that closes TCP without close_notify after GOAWAY
 * (a clean end), and nghttp2's own words in the close reason for a protocol violation, an
 * oversized header block and a PING flood (raw frames written under the client's TLS).
 */
#include "test_hbone_harness.h"

#include "hbone/internal.h" /* raw nghttp2 requests the public API refuses to send */

static void test_authority(void)
{
	static const struct {
		const char *text;
		int err;
		const char *ip;
		unsigned int port;
	} cases[] = {
	    {"10.0.0.5:8080", 0, "10.0.0.5", 8080},
	    {"[2001:2::5]:443", 0, "2001:2::5", 443},
	    {"[::ffff:1.2.3.4]:1", 0, "::ffff:1.2.3.4", 1},
	    {"1.2.3.4:65535", 0, "1.2.3.4", 65535},
	    {"1.2.3.4:65536", -EINVAL, NULL, 0},
	    {"1.2.3.4:0", -EINVAL, NULL, 0},
	    {"1.2.3.4:", -EINVAL, NULL, 0},
	    {"1.2.3.4", -EINVAL, NULL, 0},
	    {"1.2.3.4:+80", -EINVAL, NULL, 0},
	    {"1.2.3.4:-1", -EINVAL, NULL, 0},
	    {"1.2.3.4:80 ", -EINVAL, NULL, 0},
	    {"1.2.3.4:0080x", -EINVAL, NULL, 0},
	    {"1.2.3.4:000080", -EINVAL, NULL, 0},
	    {"2001:2::5:80", -EINVAL, NULL, 0},
	    {"[2001:2::5]", -EINVAL, NULL, 0},
	    {"[2001:2::5]80", -EINVAL, NULL, 0},
	    {"[1.2.3.4]:80", -EINVAL, NULL, 0},
	    {"[fe80::1%eth0]:80", -EINVAL, NULL, 0},
	    {"example.com:80", -EINVAL, NULL, 0},
	    {":80", -EINVAL, NULL, 0},
	    {"", -EINVAL, NULL, 0},
	    {"1.2.3.256:80", -EINVAL, NULL, 0},
	};
	char buf[HB_AUTHORITY_MAX], ip[ZM_ADDR_STRLEN];
	struct zm_addr a;
	unsigned int port, i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int err = hb_authority_parse(cases[i].text, &a, &port);

		if (!is_int(err, cases[i].err, "authority parse \"%s\"", cases[i].text) || err)
			continue;
		is_str(zm_addr_format(&a, ip, sizeof(ip)), cases[i].ip, "  ip of %s",
		       cases[i].text);
		is_int(port, cases[i].port, "  port of %s", cases[i].text);
		ok(!hb_authority_format(&a, port, buf, sizeof(buf)) && !strcmp(buf, cases[i].text),
		   "  format round trip %s", cases[i].text);
	}
	is_int(hb_authority_parse(NULL, &a, &port), -EINVAL, "authority parse NULL");
	zm_addr_parse("1.2.3.4", &a);
	is_int(hb_authority_format(&a, 0, buf, sizeof(buf)), -EINVAL, "format port 0");
	is_int(hb_authority_format(&a, 80, buf, 8), -ENOSPC, "format into a short buffer");
}

static void test_builders(void)
{
	char buf[HB_BAGGAGE_MAX], tp[HB_TRACEPARENT_LEN], tp2[HB_TRACEPARENT_LEN];
	struct hb_baggage b = {"Kubernetes", "default", "deployment", "sleep", "sleep", "v1"};
	struct hb_baggage partial = {.ns = "ns1", .workload_type = "pod", .workload_name = "p"};
	struct hb_baggage bad = {.ns = "a,b"};
	struct zm_addr a;

	zm_addr_parse("10.1.2.3", &a);
	ok(!hb_forwarded_format(&a, 40000, NULL, buf, sizeof(buf)), "forwarded v4");
	is_str(buf, "for=\"10.1.2.3:40000\"", "  value");
	ok(!hb_forwarded_format(&a, 40000, "echo.default.svc.cluster.local", buf, sizeof(buf)),
	   "forwarded with host");
	is_str(buf, "for=\"10.1.2.3:40000\";host=echo.default.svc.cluster.local", "  value");
	zm_addr_parse("2001:2::9", &a);
	ok(!hb_forwarded_format(&a, 5, "", buf, sizeof(buf)), "forwarded v6");
	is_str(buf, "for=\"[2001:2::9]:5\"", "  value bracketed and quoted");
	is_int(hb_forwarded_format(&a, 5, "bad host", buf, sizeof(buf)), -EINVAL,
	       "forwarded refuses a host that needs quoting");
	is_int(hb_forwarded_format(&a, 5, NULL, buf, 10), -ENOSPC, "forwarded short buffer");

	ok(!hb_baggage_format(&b, buf, sizeof(buf)), "baggage full");
	is_str(buf,
	       "k8s.cluster.name=Kubernetes,k8s.namespace.name=default,k8s.deployment.name=sleep,"
	       "service.name=sleep,service.version=v1",
	       "  value");
	ok(!hb_baggage_format(&partial, buf, sizeof(buf)), "baggage partial");
	is_str(buf, "k8s.namespace.name=ns1,k8s.pod.name=p", "  empty items left out");
	is_int(hb_baggage_format(&bad, buf, sizeof(buf)), -EINVAL, "baggage refuses ','");
	is_int(hb_baggage_format(&b, buf, 20), -ENOSPC, "baggage short buffer");

	ok(!hb_traceparent_new(tp, sizeof(tp)), "traceparent new");
	ok(hb_traceparent_valid(tp), "  well formed: %s", tp);
	is_int(strlen(tp), 55, "  length");
	ok(!strncmp(tp, "00-", 3) && !strcmp(tp + 52, "-00"), "  version 00, flags 00");
	ok(!hb_traceparent_new(tp2, sizeof(tp2)) && strcmp(tp, tp2), "  random per call");
	is_int(hb_traceparent_new(tp, 20), -ENOSPC, "traceparent short buffer");
	ok(!hb_traceparent_valid("00-00000000000000000000000000000000-0000000000000001-00"),
	   "traceparent all-zero trace id refused");
	ok(!hb_traceparent_valid("00-0000000000000000000000000000000A-0000000000000001-00"),
	   "traceparent upper-case refused");
}

static struct th_rec *th_open(struct th_pair *p, const char *authority)
{
	struct hb_request req = {.authority = authority,
				 .forwarded = "for=\"10.1.2.3:40000\"",
				 .baggage = "k8s.namespace.name=client-ns",
				 .traceparent =
				     "00-0123456789abcdef0123456789abcdef-0123456789abcdef-00"};
	struct hb_stream *s = hb_stream_open(p->c.conn, &req, NULL);

	if (!s)
		return NULL;
	return th_rec_new(&p->c, s);
}

/* The server record matching client record cr (streams keep their ids on both ends). */
static struct th_rec *th_peer(struct th_pair *p, struct th_rec *cr, int32_t id)
{
	int i;

	(void)cr;
	for (i = 0; i < p->s.nrecs; i++)
		if (p->s.recs[i].s && hb_stream_id(p->s.recs[i].s) == id)
			return &p->s.recs[i];
	return NULL;
}

static void test_tunnel(void)
{
	struct th_pair p;
	struct th_rec *cr, *sr;
	int32_t id;

	th_pair_open(&p, TH_SERVER_ACCEPT);
	ok(th_pump_until(&p, p.c.ready && p.s.ready), "handshake + SETTINGS: both ready");
	is_str(hb_conn_peer_identity(p.c.conn), TH_SERVER_ID, "client sees the server identity");
	is_str(hb_conn_peer_identity(p.s.conn), TH_CLIENT_ID, "server sees the client identity");
	is_int(hb_conn_streams_available(p.c.conn), 100, "100 streams available");
	ok(p.c.conn->own_bio && p.s.conn->own_bio, "both sides run on wire.c's BIO");
	id = hb_ktls_probe();
	ok(id == 0 || id == -ENOENT, "kTLS probe says yes (0) or no (-ENOENT): %d", id);
	is_int(SSL_get_fd(p.s.conn->ssl), p.s.conn->fd,
	       "SSL_get_fd() still finds the socket (lib/tls picks certificates by it)");

	cr = th_open(&p, "127.0.0.1:8080");
	ok(cr != NULL, "open CONNECT stream");
	if (!cr)
		return;
	id = hb_stream_id(cr->s);
	ok(th_pump_until(&p, p.s.nrecs == 1 && cr->status), "request reaches server, 200 back");
	sr = &p.s.recs[0];
	is_int(cr->status, 200, "client got 200");
	is_str(sr->authority, "127.0.0.1:8080", "server: authority");
	is_str(sr->forwarded, "for=\"10.1.2.3:40000\"", "server: forwarded");
	is_str(sr->baggage, "k8s.namespace.name=client-ns", "server: baggage");
	is_str(sr->traceparent, "00-0123456789abcdef0123456789abcdef-0123456789abcdef-00",
	       "server: traceparent");
	is_str(sr->peer, TH_CLIENT_ID, "server: request carries the peer identity");
	is_int(hb_stream_id(sr->s), id, "same stream id on both ends");

	is_int(hb_stream_write(cr->s, "hello", 5), 5, "client writes");
	is_int(hb_stream_write(sr->s, "world", 5), 5, "server writes");
	ok(th_pump_until(&p, sr->len == 5 && cr->len == 5), "data both ways");
	ok(!memcmp(sr->data, "hello", 5) && !memcmp(cr->data, "world", 5), "  bytes intact");

	ok(!hb_stream_shutdown(cr->s), "client half-closes");
	ok(th_pump_until(&p, sr->eof), "server sees END_STREAM");
	is_int(hb_stream_write(cr->s, "x", 1), -EPIPE, "client write after shutdown refused");
	is_int(hb_stream_write(sr->s, "after", 5), 5, "server still writes after client EOF");
	ok(th_pump_until(&p, cr->len == 10), "client still receives (half-closed)");
	ok(!cr->eof && !cr->closed, "  client stream still open");
	ok(!hb_stream_shutdown(sr->s), "server half-closes");
	ok(th_pump_until(&p, cr->closed && sr->closed), "both ends close the stream");
	ok(cr->eof, "  client saw END_STREAM");
	is_int(cr->close_code, 0, "  client close code NO_ERROR");
	is_int(sr->close_code, 0, "  server close code NO_ERROR");
	is_int(hb_conn_stream_count(p.c.conn), 0, "no streams left (client)");
	is_int(hb_conn_stream_count(p.s.conn), 0, "no streams left (server)");
	ok(hb_conn_bytes_sent(p.c.conn) == 5 && hb_conn_bytes_received(p.c.conn) == 10,
	   "byte counters");

	/* Reset mapping: server -> client and client -> server. */
	cr = th_open(&p, "127.0.0.1:8080");
	ok(cr && th_pump_until(&p, cr->status == 200), "second stream up");
	sr = th_peer(&p, cr, hb_stream_id(cr->s));
	ok(sr && !hb_stream_reset(sr->s, HB_ERR_CONNECT_ERROR), "server resets (upstream reset)");
	ok(th_pump_until(&p, cr->closed && sr->closed), "reset arrives");
	is_int(cr->close_code, HB_ERR_CONNECT_ERROR, "  client sees CONNECT_ERROR");
	cr = th_open(&p, "127.0.0.1:8080");
	ok(cr && th_pump_until(&p, cr->status == 200), "third stream up");
	sr = th_peer(&p, cr, hb_stream_id(cr->s));
	ok(sr && !hb_stream_reset(cr->s, HB_ERR_CONNECT_ERROR), "client resets (app reset)");
	ok(th_pump_until(&p, cr->closed && sr->closed), "reset arrives");
	is_int(sr->close_code, HB_ERR_CONNECT_ERROR, "  server sees CONNECT_ERROR");

	/* Error statuses. */
	p.s.respond_status = 503;
	cr = th_open(&p, "127.0.0.1:9");
	ok(cr && th_pump_until(&p, cr->closed), "503 stream ends");
	is_int(cr->status, 503, "  client got 503");
	ok(p.s.recs[p.s.nrecs - 1].closed, "  server side of the 503 stream is gone too");
	p.s.respond_status = 0;
	th_pair_close(&p);
}

/* A request the public API will not build: raw nghttp2 on the client's session. */
static struct th_rec *th_raw(struct th_pair *p, const nghttp2_nv *nva, size_t n)
{
	struct hb_stream *s = hb_stream_alloc(p->c.conn, 0);
	struct th_rec *r;

	s->id = nghttp2_submit_request(p->c.conn->h2, NULL, nva, n, NULL, s);
	if (s->id < 0)
		tap_bail("nghttp2_submit_request: %d", s->id);
	s->announced = true;
	r = th_rec_new(&p->c, s);
	hb_conn_io(p->c.conn, 0);
	return r;
}

#define NV(n, v)                                                                                   \
	{                                                                                          \
		(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, 0                    \
	}

static void test_bad_requests(void)
{
	const nghttp2_nv get[] = {NV(":method", "GET"), NV(":scheme", "https"), NV(":path", "/"),
				  NV(":authority", "127.0.0.1:8080")};
	const nghttp2_nv host[] = {NV(":method", "CONNECT"), NV(":authority", "example.com:80")};
	const nghttp2_nv v6[] = {NV(":method", "CONNECT"), NV(":authority", "2001:2::1:80")};
	struct th_pair p;
	struct th_rec *r;

	th_pair_open(&p, TH_SERVER_ACCEPT);
	ok(th_pump_until(&p, p.c.ready && p.s.ready), "ready");
	r = th_raw(&p, get, 4);
	ok(th_pump_until(&p, r->closed), "GET stream ends");
	is_int(r->status, 400, "  GET answered 400");
	is_int(p.s.nbad, 1, "  on_bad_request told the server");
	is_str(p.s.bad_method, "GET", "  with the method");
	is_str(p.s.bad_authority, "127.0.0.1:8080", "  the authority");
	is_str(p.s.bad_why, "method is not CONNECT", "  and why");
	r = th_raw(&p, host, 2);
	ok(th_pump_until(&p, r->closed), "hostname authority ends");
	is_int(r->status, 400, "  hostname authority answered 400");
	is_int(p.s.nbad, 2, "  on_bad_request again");
	is_str(p.s.bad_why, "authority is not ip:port or [ipv6]:port", "  why: authority");
	r = th_raw(&p, v6, 2);
	ok(th_pump_until(&p, r->closed), "unbracketed IPv6 authority ends");
	is_int(r->status, 400, "  unbracketed IPv6 answered 400");
	is_str(p.s.bad_authority, "2001:2::1:80", "  on_bad_request has the authority");
	is_int(p.s.nrecs, 0, "server application never saw them");
	ok(!p.c.conn_closed && !p.s.conn_closed, "connection survives");
	{
		struct hb_request bad = {.authority = "example.com:80"};

		ok(!hb_stream_open(p.c.conn, &bad, NULL) && errno == EINVAL,
		   "hb_stream_open refuses a hostname authority");
	}
	th_pair_close(&p);
}

static void test_many_streams(void)
{
	struct th_rec *cr[HB_MAX_STREAMS];
	struct hb_request req = {.authority = "127.0.0.1:7"};
	char msg[64];
	struct th_pair p;
	int i, done, good;

	th_pair_open(&p, TH_SERVER_ECHO);
	ok(th_pump_until(&p, p.c.ready && p.s.ready), "ready");
	for (i = 0; i < HB_MAX_STREAMS; i++) {
		cr[i] = th_open(&p, "127.0.0.1:7");
		if (!cr[i])
			break;
		snprintf(msg, sizeof(msg), "stream %d says hello", i);
		hb_stream_write(cr[i]->s, msg, strlen(msg));
		hb_stream_shutdown(cr[i]->s);
	}
	is_int(i, HB_MAX_STREAMS, "opened 100 streams on one connection");
	is_int(hb_conn_streams_available(p.c.conn), 0, "no stream slot left");
	ok(!hb_stream_open(p.c.conn, &req, NULL) && errno == EAGAIN, "101st refused: EAGAIN");
	th_pump_until(&p, ({
		for (done = 0, i = 0; i < HB_MAX_STREAMS; i++)
			done += cr[i]->closed;
		done == HB_MAX_STREAMS;
	}));
	is_int(done, HB_MAX_STREAMS, "all 100 echoed streams closed");
	for (good = 0, i = 0; i < HB_MAX_STREAMS; i++) {
		snprintf(msg, sizeof(msg), "stream %d says hello", i);
		good += cr[i]->status == 200 && cr[i]->eof && !cr[i]->close_code &&
			cr[i]->len == strlen(msg) && !memcmp(cr[i]->data, msg, cr[i]->len);
	}
	is_int(good, HB_MAX_STREAMS, "each got its own bytes back, 200, EOF, NO_ERROR");
	is_int(hb_conn_streams_available(p.c.conn), 100, "slots free again");
	th_pair_close(&p);
}

/* hb_conn_set_batching(): stream writes wait for hb_conn_flush(), a bulk goes at once. */
static void test_batching(void)
{
	static uint8_t bulk[HB_OUT_BATCH];
	struct th_rec *cr[3], *sr;
	struct th_pair p;
	uint64_t sent;
	int i;

	th_pair_open(&p, TH_SERVER_ACCEPT);
	ok(th_pump_until(&p, p.c.ready && p.s.ready), "batching: ready");
	for (i = 0; i < 3; i++) {
		cr[i] = th_open(&p, "127.0.0.1:8080");
		if (!cr[i] || !th_pump_until(&p, cr[i]->status == 200))
			tap_bail("batching: stream %d did not open", i);
	}
	hb_conn_set_batching(p.c.conn, true);
	sent = hb_conn_bytes_sent(p.c.conn);
	for (i = 0; i < 3; i++)
		hb_stream_write(cr[i]->s, "abc", 3);
	ok(hb_conn_bytes_sent(p.c.conn) == sent && p.c.conn->flush_due,
	   "three streams' small writes wait for the flush");
	hb_conn_flush(p.c.conn);
	ok(hb_conn_bytes_sent(p.c.conn) == sent + 9 && !p.c.conn->flush_due,
	   "hb_conn_flush sends all three at once");
	sr = th_peer(&p, cr[2], hb_stream_id(cr[2]->s));
	ok(sr && th_pump_until(&p, sr->len == 3), "and the server gets them");

	sent = hb_conn_bytes_sent(p.c.conn);
	is_int(hb_stream_write(cr[0]->s, bulk, sizeof(bulk)), (int)sizeof(bulk),
	       "a bulk write (HB_OUT_BATCH) is taken");
	ok(hb_conn_bytes_sent(p.c.conn) > sent && !p.c.conn->flush_due,
	   "a bulk goes at once, without waiting for the flush");
	hb_stream_write(cr[1]->s, "d", 1);
	sent = hb_conn_bytes_sent(p.c.conn);
	hb_conn_set_batching(p.c.conn, false);
	ok(hb_conn_bytes_sent(p.c.conn) > sent && !p.c.conn->flush_due,
	   "turning batching off sends what waited");
	th_pair_close(&p);
}

static uint8_t th_pattern(size_t i)
{
	return (uint8_t)(i * 31 + (i >> 12));
}

/*
 * lib/hbone's byte queues: a drained queue holds no buffer and the next one gets it back from
 * the thread's pool; a queue kept nearly full while it drains (a connection's ciphertext with
 * the socket full) keeps its bytes in order and moves at most three bytes per byte appended,
 * growing once instead of moving its whole content for every record.
 */
static void test_buffers(void)
{
	static uint8_t src[4u << 20];
	size_t i, in = 0, out = 0, moved = 0, grew = 0, off, good = 1;
	struct hb_buf b = {0};
	const uint8_t *first;

	for (i = 0; i < sizeof(src); i++)
		src[i] = th_pattern(i);
	ok(!hb_buf_append(&b, src, 1000) && b.cap == 16u << 10,
	   "buffers: a small queue has 16 KiB");
	first = b.data;
	hb_buf_drop(&b, 1000);
	ok(!b.data && !b.cap && !b.len, "a drained queue holds no buffer");
	hb_buf_append(&b, src, 10);
	ok(b.data == first, "the next queue gets the drained one back from the thread's pool");
	hb_buf_free(&b);

	in = 250u << 10;
	hb_buf_append(&b, src, in);
	is_int((int)b.cap, 256 << 10, "250 KiB queued: 256 KiB");
	while (in + (16u << 10) <= sizeof(src)) {
		off = b.off;
		first = b.data;
		hb_buf_drop(&b, 16u << 10);
		out += 16u << 10;
		hb_buf_append(&b, src + in, 16u << 10);
		in += 16u << 10;
		if (b.data != first)
			grew++;
		else if (b.off != off + (16u << 10))
			moved += b.len - (16u << 10);
		good &= b.len == in - out && !memcmp(b.data + b.off, src + out, b.len);
	}
	ok(good, "4 MiB through a nearly full queue, every byte in order");
	is_int((int)grew, 1, "it grew once");
	is_int((int)b.cap, 512 << 10, "to 512 KiB");
	ok(moved <= 3 * (in - (250u << 10)),
	   "moved %zu bytes for %zu appended (at most 3 per byte)", moved, in - (250u << 10));
	hb_buf_free(&b);
	hb_thread_trim();
	ok(!hb_buf_append(&b, src, 600u << 10) && b.cap == 1u << 20,
	   "after a trim, 600 KiB: 1 MiB");
	hb_buf_free(&b);
	hb_thread_trim();
}

static void test_flow_control(void)
{
	const size_t total = 12u << 20;
	size_t sent = 0, i, bad = 0, last = 0;
	uint8_t chunk[65536];
	struct th_rec *cr, *sr;
	struct th_pair p;
	int stalls = 0, rounds;
	ssize_t n;

	th_pair_open(&p, TH_SERVER_HOLD);
	ok(th_pump_until(&p, p.c.ready && p.s.ready), "ready");
	cr = th_open(&p, "127.0.0.1:5001");
	ok(cr && th_pump_until(&p, cr->status == 200), "stream up");
	sr = &p.s.recs[0];
	for (rounds = 0; rounds < 2000 && sent < total && stalls < 50; rounds++) {
		size_t want = total - sent < sizeof(chunk) ? total - sent : sizeof(chunk);

		for (i = 0; i < want; i++)
			chunk[i] = th_pattern(sent + i);
		n = hb_stream_write(cr->s, chunk, want);
		if (n > 0)
			sent += (size_t)n;
		stalls = sent == last ? stalls + 1 : 0;
		last = sent;
		th_pump_once(&p, n > 0 ? 0 : 5);
	}
	ok(sent < total, "stalled consumer: writer stops (accepted %zu of %zu)", sent, total);
	ok(hb_stream_held(sr->s) <= HB_STREAM_WINDOW, "server holds <= stream window (%zu)",
	   hb_stream_held(sr->s));
	ok(hb_stream_unsent(cr->s) <= HB_SEND_BUFFER, "client queue <= send buffer (%zu)",
	   hb_stream_unsent(cr->s));
	is_int(sr->len, 0, "consumer got nothing yet");
	ok(sent <= HB_STREAM_WINDOW + HB_SEND_BUFFER + (4u << 20),
	   "memory bounded: in flight %zu <= window + send buffer + socket/TLS buffers", sent);

	p.s.take_all = true;
	hb_stream_resume(sr->s);
	while (sent < total) {
		size_t want = total - sent < sizeof(chunk) ? total - sent : sizeof(chunk);

		for (i = 0; i < want; i++)
			chunk[i] = th_pattern(sent + i);
		n = hb_stream_write(cr->s, chunk, want);
		if (n > 0)
			sent += (size_t)n;
		if (n < 0)
			break;
		if (!th_pump_until(&p, hb_stream_unsent(cr->s) < HB_SEND_BUFFER))
			break;
	}
	hb_stream_shutdown(cr->s);
	ok(th_pump_until(&p, sr->eof), "all bytes arrive after the consumer resumes");
	is_int(sr->len, total, "  byte count");
	for (i = 0; i < sr->len; i++)
		bad += sr->data[i] != th_pattern(i);
	is_int(bad, 0, "  bytes intact and in order");
	th_pair_close(&p);
}

static void test_ping_and_goaway(void)
{
	struct th_pair p;

	th_pair_open(&p, TH_SERVER_ACCEPT);
	ok(th_pump_until(&p, p.c.ready && p.s.ready), "ready");
	is_int(hb_conn_tick(p.c.conn, 1000 + HB_PING_INTERVAL_MS - 1), 0, "no PING before 10 s");
	ok(!p.c.conn->ping_out, "  none outstanding");
	is_int(hb_conn_tick(p.c.conn, 1000 + HB_PING_INTERVAL_MS), 0, "PING at 10 s");
	ok(p.c.conn->ping_out, "  outstanding");
	ok(th_pump_until(&p, !p.c.conn->ping_out), "  acked by the peer");
	/* Now a peer that stops answering: do not pump the server. */
	hb_conn_tick(p.c.conn, 1000 + 2 * HB_PING_INTERVAL_MS);
	ok(p.c.conn->ping_out, "second PING outstanding");
	is_int(hb_conn_tick(p.c.conn, 1000 + 2 * HB_PING_INTERVAL_MS + HB_PING_TIMEOUT_MS - 1), 0,
	       "still alive just before 20 s");
	is_int(hb_conn_tick(p.c.conn, 1000 + 2 * HB_PING_INTERVAL_MS + HB_PING_TIMEOUT_MS),
	       -ETIMEDOUT, "closed after 20 s without a PING ack");
	ok(p.c.conn_closed && p.c.close_err == -ETIMEDOUT, "  on_conn_close(-ETIMEDOUT)");
	is_int(hb_conn_want(p.c.conn), 0, "  nothing more to wait for");
	th_pair_close(&p);

	th_pair_open(&p, TH_SERVER_ACCEPT);
	is_int(hb_conn_tick(p.c.conn, 1000 + HB_HANDSHAKE_TIMEOUT_MS), -ETIMEDOUT,
	       "handshake timeout");
	th_pair_close(&p);

	th_pair_open(&p, TH_SERVER_ACCEPT);
	ok(th_pump_until(&p, p.c.ready && p.s.ready), "ready");
	ok(!hb_conn_shutdown(p.c.conn), "client GOAWAY");
	is_int(hb_conn_streams_available(p.c.conn), 0, "  no new streams after GOAWAY");
	ok(th_pump_until(&p, p.c.conn_closed && p.s.conn_closed), "  both ends finish cleanly");
	ok(p.c.close_err == 0 && p.s.close_err == 0, "  with err 0");
	th_pair_close(&p);
}

/* Frames the client's nghttp2 would never send, written straight into its TLS stream. */
static void th_raw_bytes(struct th_pair *p, const uint8_t *buf, size_t len)
{
	size_t off = 0;
	int n;

	while (off < len) {
		n = SSL_write(p->c.conn->ssl, buf + off, (int)(len - off));
		if (n <= 0)
			tap_bail("raw SSL_write: %d", SSL_get_error(p->c.conn->ssl, n));
		off += (size_t)n;
	}
	/* The records wait in the client's wire buffer (wire.c) until flushed. */
	if (hb_wire_flush(p->c.conn))
		tap_bail("raw bytes: flushing the client's records failed");
}

static void th_frame_hdr(uint8_t *b, size_t len, uint8_t type, uint8_t flags, uint32_t id)
{
	b[0] = (uint8_t)(len >> 16);
	b[1] = (uint8_t)(len >> 8);
	b[2] = (uint8_t)len;
	b[3] = type;
	b[4] = flags;
	b[5] = (uint8_t)(id >> 24);
	b[6] = (uint8_t)(id >> 16);
	b[7] = (uint8_t)(id >> 8);
	b[8] = (uint8_t)id;
}

static void test_protocol_errors(void)
{
	/* HPACK literal, new name, whose length (a 7-bit prefix + varint) claims 70000 bytes. */
	static const uint8_t big[] = {0x00, 0x7f, 0xf1, 0xa1, 0x04};
	static uint8_t pings[2000 * 17];
	uint8_t f[64];
	struct th_pair p;
	size_t i;

	th_pair_open(&p, TH_SERVER_ACCEPT);
	ok(th_pump_until(&p, p.c.ready && p.s.ready), "ready");
	th_frame_hdr(f, 0, 0 /* DATA */, 0, 0);
	th_raw_bytes(&p, f, 9);
	ok(th_pump_until(&p, p.s.conn_closed), "DATA on stream 0 ends the server's connection");
	is_int(p.s.close_err, -EPROTO, "  with -EPROTO");
	ok(strstr(p.s.close_reason, "PROTOCOL_ERROR") && strstr(p.s.close_reason, "DATA"),
	   "  reason names the GOAWAY code and nghttp2's text");
	th_pair_close(&p);

	th_pair_open(&p, TH_SERVER_ACCEPT);
	ok(th_pump_until(&p, p.c.ready && p.s.ready), "ready");
	th_frame_hdr(f, sizeof(big), 1 /* HEADERS */, 0x4 /* END_HEADERS */, 1);
	memcpy(f + 9, big, sizeof(big));
	th_raw_bytes(&p, f, 9 + sizeof(big));
	ok(th_pump_until(&p, p.s.conn_closed), "oversized header field ends the connection");
	is_int(p.s.close_err, -EPROTO, "  with -EPROTO");
	ok(strstr(p.s.close_reason, "COMPRESSION_ERROR") != NULL, "  reason: COMPRESSION_ERROR");
	th_pair_close(&p);

	th_pair_open(&p, TH_SERVER_ACCEPT);
	ok(th_pump_until(&p, p.c.ready && p.s.ready), "ready");
	for (i = 0; i < 2000; i++) {
		th_frame_hdr(pings + i * 17, 8, 6 /* PING */, 0, 0);
		memset(pings + i * 17 + 9, (int)i, 8);
	}
	th_raw_bytes(&p, pings, sizeof(pings));
	/* Only the server runs: its acks pile up unsent, which is what a flood looks like. */
	for (i = 0; i < 50 && !p.s.conn_closed; i++)
		hb_conn_io(p.s.conn, EPOLLIN);
	ok(p.s.conn_closed, "2000 unacknowledged PINGs end the connection");
	is_int(p.s.close_err, -EPROTO, "  with -EPROTO");
	ok(strstr(p.s.close_reason, "Flood") || strstr(p.s.close_reason, "flood"),
	   "  reason says flood");
	th_pair_close(&p);
}

/* GOAWAY, then TCP FIN without close_notify (Python, Go): a normal end, not a TLS error. */
static void test_eof_after_goaway(void)
{
	struct th_pair p;
	struct th_rec *cr;
	struct hb_request req = {.authority = "127.0.0.1:7"};

	th_pair_open(&p, TH_SERVER_ACCEPT);
	ok(th_pump_until(&p, p.c.ready && p.s.ready), "ready");
	ok(!hb_conn_shutdown(p.s.conn), "server GOAWAY");
	hb_conn_io(p.s.conn, EPOLLOUT);
	shutdown(p.s.fd, SHUT_WR);
	ok(th_pump_until(&p, p.c.conn_closed), "client sees the end");
	is_int(p.c.close_err, 0, "  err 0");
	ok(!strstr(p.c.close_reason, "TLS"), "  not a TLS error");
	printf("# reason: %s\n", p.c.close_reason);
	th_pair_close(&p);

	th_pair_open(&p, TH_SERVER_ACCEPT);
	ok(th_pump_until(&p, p.c.ready && p.s.ready), "ready");
	cr = th_rec_new(&p.c, hb_stream_open(p.c.conn, &req, NULL));
	ok(th_pump_until(&p, cr->status == 200), "stream up");
	shutdown(p.s.fd, SHUT_WR);
	ok(th_pump_until(&p, p.c.conn_closed), "FIN without close_notify, stream open");
	is_int(p.c.close_err, -ECONNRESET, "  is a reset (-ECONNRESET)");
	ok(cr->closed && cr->close_code == HB_ERR_CANCEL, "  stream cancelled");
	th_pair_close(&p);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	test_authority();
	test_builders();
	th_tls_init();
	test_tunnel();
	test_bad_requests();
	test_many_streams();
	test_batching();
	test_buffers();
	test_flow_control();
	test_ping_and_goaway();
	test_protocol_errors();
	test_eof_after_goaway();
	zm_cert_put(th_server_cert);
	zm_cert_put(th_client_cert);
	zm_tls_ctx_put(th_sctx);
	zm_tls_ctx_put(th_cctx);
	return tap_done();
}
