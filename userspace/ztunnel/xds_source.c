// SPDX-License-Identifier: Apache-2.0
/*
 * ztunnel's xDS source (--xds-address): one thread holding a delta ADS stream to istiod
 * (lib/grpc for the transport, lib/xds for the protocol and the translation). Every response
 * is answered with an ACK or a NACK by nonce; every change of the held resources becomes a
 * complete snapshot installed through state.c exactly as a config-file reload is, so the
 * control loop re-checks live connections against new policies and re-syncs enrollment.
 * When istiod goes away the last good snapshot keeps serving; the thread reconnects with
 * exponential backoff (the reference's: 10 ms doubling to 15 s, reset after a stream that
 * worked) and resubscribes with initial_resource_versions. A stream that stalls (HTTP/2
 * PINGs unanswered), a message over the size limit or one that does not decode ends the
 * stream with a log line and a reconnect.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "caclient/caclient.h"
#include "config/model.h"
#include "grpc/grpc.h"
#include "tls/tls.h"
#include "xds/xds.h"
#include "obs/log.h"
#include "zt.h"

#define ZT_XDS_BACKOFF_MIN_MS 10
#define ZT_XDS_BACKOFF_MAX_MS 15000
#define ZT_XDS_DEFAULT_NAME   "istiod.istio-system.svc"

static struct {
	struct zt *zt;
	struct zm_xds *x;
	pthread_t thread;
	bool started;
	atomic_bool stop;
	char addr[256], root[4096], name[256], token_file[4096], cluster[128];
	int ping_ms, ping_timeout_ms;
	uint32_t max_msg;
} zx;

static void zt_xds_sleep(int ms)
{
	while (ms > 0 && !atomic_load(&zx.stop)) {
		int step = ms < 100 ? ms : 100;

		usleep((useconds_t)step * 1000);
		ms -= step;
	}
}

/* Rebuild the model from what is held and install it as the new snapshot. */
static void zt_xds_install(void)
{
	struct zm_config *cfg;
	char err[4096];

	if (zm_xds_build(zx.x, &cfg, err, sizeof(err))) {
		/* The state machine only keeps stores that finalize: this is out of memory. */
		obs_log(OBS_WARN, "xds", "building the config failed, keeping the previous: %s",
			err);
		return;
	}
	if (zt_state_install(zx.zt, cfg, err, sizeof(err)))
		obs_log(OBS_WARN, "xds", "%s", err);
	else
		obs_log(OBS_INFO, "xds", "config applied (generation %llu)",
			(unsigned long long)zt_state_generation());
}

static int zt_xds_send_initial(struct zm_grpc_call *c, char *err, size_t len)
{
	for (int t = 0; t < ZM_XDS_N_TYPES; t++) {
		uint8_t *req;
		size_t rl;
		int r = zm_xds_initial_request(zx.x, (enum zm_xds_type)t, &req, &rl);

		if (r)
			return snprintf(err, len, "out of memory"), r;
		r = zm_grpc_call_send(c, req, rl, false, err, len);
		free(req);
		if (r)
			return r;
	}
	return 0;
}

/* One message from istiod: apply, answer, log what was refused. */
static int zt_xds_on_message(struct zm_grpc_call *c, const uint8_t *m, size_t ml, char *err,
			     size_t len)
{
	static char log[16384];
	uint8_t *reply;
	size_t rl;
	bool changed;
	int r = zm_xds_handle(zx.x, m, ml, &reply, &rl, &changed, log, sizeof(log));

	if (r) {
		snprintf(err, len, "%.900s", log);
		return r;
	}
	if (log[0])
		obs_log(OBS_WARN, "xds", "NACK: %s", log);
	if (changed)
		zt_xds_install();
	r = zm_grpc_call_send(c, reply, rl, false, err, len);
	free(reply);
	return r;
}

/* One stream, until it ends. Returns true when it got at least one message. */
static bool zt_xds_stream(struct zm_grpc_call *c, char *why, size_t len)
{
	bool got = false;
	const char *gm;
	const uint8_t *m;
	size_t ml;
	int r, st;

	r = zt_xds_send_initial(c, why, len);
	while (!r && !atomic_load(&zx.stop)) {
		r = zm_grpc_call_recv(c, 250, &m, &ml, why, len);
		if (r == -EAGAIN) {
			r = 0;
			continue;
		}
		if (r == 1) {
			got = true;
			r = zt_xds_on_message(c, m, ml, why, len);
			continue;
		}
		if (r == 0) {
			st = zm_grpc_call_status(c, &gm);
			snprintf(why, len, "stream ended by the server: %s%s%s",
				 st < 0 ? "no grpc-status" : zm_grpc_status_name(st),
				 *gm ? ": " : "", gm);
			r = -ECONNRESET;
		}
	}
	return got;
}

static void *zt_xds_thread(void *arg)
{
	const char *hdrs[] = {"clusterid", zx.cluster, NULL};
	int backoff = ZT_XDS_BACKOFF_MIN_MS;
	char why[1024], token[4096];

	(void)arg;
	while (!atomic_load(&zx.stop)) {
		struct zm_grpc_opts o = {.addr = zx.addr,
					 .server_name = zx.name,
					 .headers = hdrs,
					 .timeout_ms = 5000,
					 .max_msg = zx.max_msg,
					 .ping_ms = zx.ping_ms,
					 .ping_timeout_ms = zx.ping_timeout_ms};
		struct zm_grpc_call *c = NULL;
		bool worked = false;
		int r;

		why[0] = '\0';
		/* Roots and token are read per connection: both rotate under a running ztunnel. */
		r = zm_tls_roots_load(zx.root, &o.roots, why, sizeof(why));
		if (!r && zx.token_file[0]) {
			r = zm_caclient_token_read(zx.token_file, token, sizeof(token), why,
						   sizeof(why));
			o.token = token;
		}
		if (!r)
			r = zm_grpc_call_open(&o, ZM_XDS_PATH, &c, why, sizeof(why));
		explicit_bzero(token, sizeof(token));
		zm_tls_roots_put(o.roots);
		if (!r) {
			obs_log(OBS_INFO, "xds", "stream to %s established", zx.addr);
			zm_xds_set_connected(zx.x, true, NULL);
			worked = zt_xds_stream(c, why, sizeof(why));
			zm_xds_set_connected(zx.x, false, why);
			zm_grpc_call_close(c);
		} else {
			zm_xds_set_connected(zx.x, false, why);
		}
		if (atomic_load(&zx.stop))
			break;
		backoff = worked ? ZT_XDS_BACKOFF_MIN_MS
				 : (backoff * 2 > ZT_XDS_BACKOFF_MAX_MS ? ZT_XDS_BACKOFF_MAX_MS
									: backoff * 2);
		obs_log(OBS_WARN, "xds", "%s: %s; keeping the last config, reconnecting in %d ms",
			zx.addr, why, backoff);
		zt_xds_sleep(backoff);
	}
	return NULL;
}

static int zt_xds_env_int(const char *name, int def)
{
	const char *v = getenv(name);

	return v && *v ? atoi(v) : def;
}

int zt_xds_start(struct zt *zt, char *err, size_t len)
{
	struct zm_xds_node node = {.ip = getenv("INSTANCE_IP"),
				   .pod_name = getenv("POD_NAME"),
				   .namespace = getenv("POD_NAMESPACE"),
				   .node_name = zt->opts.node};
	const struct zt_opts *o = &zt->opts;
	struct zm_config *cfg;
	int r;

	zx.zt = zt;
	snprintf(zx.addr, sizeof(zx.addr), "%s%s", o->xds_address,
		 strchr(o->xds_address, ':') ? "" : ":15012");
	if (o->xds_root)
		snprintf(zx.root, sizeof(zx.root), "%s", o->xds_root);
	else if (o->ca_dir)
		snprintf(zx.root, sizeof(zx.root), "%s/%s", o->ca_dir, ZM_CA_CERT_FILE);
	else
		snprintf(zx.root, sizeof(zx.root), "/var/run/secrets/istio/root-cert.pem");
	snprintf(zx.name, sizeof(zx.name), "%s", o->cp_name ? o->cp_name : ZT_XDS_DEFAULT_NAME);
	if (o->token_file)
		snprintf(zx.token_file, sizeof(zx.token_file), "%s", o->token_file);
	else if (!access(ZM_XDS_TOKEN_PATH, R_OK))
		snprintf(zx.token_file, sizeof(zx.token_file), "%s", ZM_XDS_TOKEN_PATH);
	snprintf(zx.cluster, sizeof(zx.cluster), "%s",
		 o->cluster_id ? o->cluster_id : getenv("CLUSTER_ID") ?: "Kubernetes");
	node.cluster_id = zx.cluster;
	/* PING after 30 s of silence, drop after 20 s unanswered: istiod's gRPC keepalive
	 * policy sends GOAWAY ("too many pings") to clients that ping more often than 15 s. */
	zx.ping_ms = zt_xds_env_int("ZT_XDS_PING_MS", 30000);
	zx.ping_timeout_ms = zt_xds_env_int("ZT_XDS_PING_TIMEOUT_MS", 20000);
	/* Tests shrink these: the size limit and the keepalive, to show the refusals. */
	zx.max_msg = (uint32_t)zt_xds_env_int("ZT_XDS_MAX_MSG", (int)ZM_XDS_MAX_MSG);
	zx.x = zm_xds_new(&node);
	if (!zx.x)
		return snprintf(err, len, "out of memory"), -ENOMEM;
	zm_xds_set_address(zx.x, zx.addr);
	/* Until istiod answers: an empty model (nothing enrolled, unknown addresses pass). */
	r = zm_xds_build(zx.x, &cfg, err, len);
	if (!r)
		r = zt_state_install(zt, cfg, err, len);
	if (r)
		return r;
	r = pthread_create(&zx.thread, NULL, zt_xds_thread, NULL);
	if (r)
		return snprintf(err, len, "starting the xDS thread: %s", strerror(r)), -r;
	zx.started = true;
	obs_log(OBS_INFO, "xds", "node id %s, control plane %s (%s)", zm_xds_node_id(zx.x), zx.addr,
		zx.name);
	return 0;
}

void zt_xds_stop(void)
{
	if (!zx.started)
		return;
	atomic_store(&zx.stop, true);
	pthread_join(zx.thread, NULL);
	zx.started = false;
}

bool zt_xds_synced(void)
{
	return !zx.x || zm_xds_synced(zx.x);
}

char *zt_xds_dump(void)
{
	return zx.x ? zm_xds_dump(zx.x) : NULL;
}
