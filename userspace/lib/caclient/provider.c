// SPDX-License-Identifier: Apache-2.0
/*
 * The CA-backed identity provider (see caclient.h). One mutex guards the entry list; the
 * refresh thread is the only one that creates certificates and frees entries, and it calls
 * the CA with the mutex released, so get() on a worker thread only ever waits for the lock
 * (microseconds) or, on a cache miss, for at most wait_ms. get() hands out a cached
 * certificate until it expires, also past its rotation point: rotation is the refresh
 * thread's job, and a CA outage must not turn a valid certificate into refused connections.
 */
#include <errno.h>
#include <json-c/json.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "obs/log.h"
#include "caclient/caclient.h"
#include "caclient/capb.h"

#define CAC_TICK_MS 1000

struct cac_entry {
	struct cac_entry *next;
	struct zm_cert *cert;
	time_t rotate_at;
	time_t last_get;
	uint64_t next_try_ms;
	int backoff_ms;
	unsigned int attempts; /* finished fetches, for waiters */
	bool wanted;
	char error[200];
	char id[ZM_SPIFFE_ID_MAX];
};

struct cac_provider {
	struct zm_identity_provider ops; /* first: the interface pointer is the provider */
	struct zm_caclient_opts o;
	char addr[256];
	char server_id[ZM_SPIFFE_ID_MAX];
	char token_file[512], cluster_id[128];
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake; /* refresh thread: work to do */
	pthread_cond_t done; /* waiters: a fetch finished */
	struct cac_entry *entries;
	unsigned int generation; /* bumped by every zm_caclient_provider_update() */
	bool stop;
	/* wanted-set collection (refresh thread only) */
	char (*want)[ZM_SPIFFE_ID_MAX];
	size_t n_want, cap_want;
};

static uint64_t cac_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct cac_entry *cac_find(struct cac_provider *p, const char *id)
{
	for (struct cac_entry *e = p->entries; e; e = e->next)
		if (!strcmp(e->id, id))
			return e;
	return NULL;
}

static struct cac_entry *cac_add(struct cac_provider *p, const char *id)
{
	struct cac_entry *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->backoff_ms = ZM_CACLIENT_BACKOFF_MIN_MS;
	e->last_get = time(NULL);
	e->next = p->entries;
	p->entries = e;
	return e;
}

static bool cac_valid(const struct cac_entry *e, time_t now)
{
	return e->cert && now < zm_cert_not_after(e->cert);
}

/* ---- get() ---- */

static int cac_get(struct zm_identity_provider *ip, const char *id, struct zm_cert **out, char *err,
		   size_t len)
{
	struct cac_provider *p = (struct cac_provider *)ip;
	struct timespec until;
	struct cac_entry *e;
	unsigned int seen;
	int r = 0;

	if (zm_spiffe_id_parse(id, NULL)) {
		snprintf(err, len, "\"%s\" is not a SPIFFE id", id);
		return -EINVAL;
	}
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += p->o.wait_ms / 1000;
	until.tv_nsec += (long)(p->o.wait_ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&p->lock);
	e = cac_find(p, id) ?: cac_add(p, id);
	if (!e) {
		pthread_mutex_unlock(&p->lock);
		snprintf(err, len, "out of memory");
		return -ENOMEM;
	}
	e->last_get = time(NULL);
	if (!cac_valid(e, time(NULL))) {
		/* A miss: fetch now, whatever the backoff says (someone is waiting). */
		e->next_try_ms = 0;
		seen = e->attempts;
		pthread_cond_signal(&p->wake);
		while (!cac_valid(e, time(NULL)) && e->attempts == seen && !r)
			r = pthread_cond_timedwait(&p->done, &p->lock, &until);
	}
	if (cac_valid(e, time(NULL))) {
		*out = zm_cert_ref(e->cert);
		r = 0;
	} else {
		snprintf(err, len, "no certificate for %s from the CA at %s: %s", id, p->addr,
			 e->error[0] ? e->error : "still being fetched");
		r = e->error[0] ? -EACCES : -EAGAIN;
	}
	pthread_mutex_unlock(&p->lock);
	return r;
}

/* ---- the refresh thread ---- */

static int cac_fetch(struct cac_provider *p, const char *id, struct zm_tls_roots *roots,
		     struct zm_cert *node, struct zm_cert **out, char *err, size_t len)
{
	char *chain[ZM_CA_MAX_CHAIN], *csr = NULL, got[ZM_SPIFFE_ID_MAX];
	EVP_PKEY *key = NULL;
	size_t n = 0;
	int r;

	struct zm_caclient_auth auth = {.node = node, .cluster_id = p->cluster_id};
	char token[4096];

	if (p->token_file[0]) {
		r = zm_caclient_token_read(p->token_file, token, sizeof(token), err, len);
		if (r)
			return r;
		auth.token = token;
	}
	r = zm_caclient_csr_new(id, &key, &csr, err, len);
	if (r)
		return r;
	r = zm_caclient_call(p->addr, roots, &auth, p->server_id, csr, id, p->o.validity_s,
			     p->o.timeout_ms, chain, ZM_CA_MAX_CHAIN, &n, err, len);
	explicit_bzero(token, sizeof(token));
	if (!r)
		r = zm_caclient_cert_build(key, chain, n, roots, out, err, len);
	if (!r && strcmp(zm_cert_identity(*out), id)) {
		snprintf(got, sizeof(got), "%s", zm_cert_identity(*out));
		snprintf(err, len, "CA issued %.80s instead of %.80s", got, id);
		zm_cert_put(*out);
		r = -EPROTO;
	}
	for (size_t i = 0; i < n; i++)
		free(chain[i]);
	free(csr);
	EVP_PKEY_free(key);
	return r;
}

static void cac_want_add(void *ctx, const char *id)
{
	struct cac_provider *p = ctx;

	if (p->n_want == p->cap_want) {
		size_t cap = p->cap_want ? p->cap_want * 2 : 16;
		void *nw = realloc(p->want, cap * sizeof(*p->want));

		if (!nw)
			return;
		p->want = nw;
		p->cap_want = cap;
	}
	snprintf(p->want[p->n_want++], ZM_SPIFFE_ID_MAX, "%s", id);
}

/* Apply the wanted set: add missing entries, drop entries nobody needs any more. */
static void cac_reconcile(struct cac_provider *p, bool have_set, time_t now)
{
	struct cac_entry **pp = &p->entries, *e;

	if (!have_set)
		return;
	for (e = p->entries; e; e = e->next)
		e->wanted = false;
	for (size_t i = 0; i < p->n_want; i++) {
		e = cac_find(p, p->want[i]) ?: cac_add(p, p->want[i]);
		if (e)
			e->wanted = true;
	}
	while ((e = *pp)) {
		if (!e->wanted && now - e->last_get > p->o.keep_unwanted_s) {
			*pp = e->next;
			obs_log(OBS_INFO, "identity",
				"forgetting the certificate of %s: no local workload needs it",
				e->id);
			zm_cert_put(e->cert);
			free(e);
			continue;
		}
		pp = &e->next;
	}
}

static bool cac_due(const struct cac_entry *e, time_t now, uint64_t now_ms)
{
	return now_ms >= e->next_try_ms && (!e->cert || now >= e->rotate_at);
}

/* Fetch one due entry (lock held on entry and exit, dropped around the CA call). */
static void cac_refresh_one(struct cac_provider *p, struct cac_entry *e)
{
	struct zm_cert *cert = NULL, *old = NULL, *node = zm_cert_ref(p->o.node);
	struct zm_tls_roots *roots = zm_tls_roots_ref(p->o.roots);
	char id[ZM_SPIFFE_ID_MAX], err[200];
	unsigned int gen = p->generation;
	time_t now;
	int r;

	/* roots and node are swapped by zm_caclient_provider_update() under the lock. */
	snprintf(id, sizeof(id), "%s", e->id);
	pthread_mutex_unlock(&p->lock);
	r = cac_fetch(p, id, roots, node, &cert, err, sizeof(err));
	zm_cert_put(node);
	zm_tls_roots_put(roots);
	pthread_mutex_lock(&p->lock);
	now = time(NULL);
	if (!r) {
		char serial[64];

		old = e->cert;
		e->cert = cert;
		/* Fetched with roots an update has replaced meanwhile: fetch again at once. */
		e->rotate_at =
		    gen != p->generation ? now : now + (zm_cert_not_after(cert) - now) / 2;
		e->backoff_ms = ZM_CACLIENT_BACKOFF_MIN_MS;
		e->next_try_ms = 0;
		e->error[0] = '\0';
		obs_log(OBS_INFO, "identity", "%s %s: serial %s, expires in %lld s",
			old ? "rotated" : "fetched", id,
			zm_cert_serial(cert, serial, sizeof(serial)),
			(long long)(zm_cert_not_after(cert) - now));
	} else {
		snprintf(e->error, sizeof(e->error), "%s", err);
		e->next_try_ms = cac_now_ms() + (uint64_t)e->backoff_ms;
		obs_log(OBS_WARN, "identity",
			"certificate for %s from %s failed: %s; retry in %d ms%s", id, p->addr, err,
			e->backoff_ms, cac_valid(e, now) ? " (the current one stays in use)" : "");
		e->backoff_ms = e->backoff_ms * 2 > ZM_CACLIENT_BACKOFF_MAX_MS
				    ? ZM_CACLIENT_BACKOFF_MAX_MS
				    : e->backoff_ms * 2;
	}
	e->attempts++;
	pthread_cond_broadcast(&p->done);
	/* Dropped outside the lock would be nicer, but zm_cert_put() is cheap and the old
	 * certificate lives on in every connection that still holds it. */
	zm_cert_put(old);
}

static void *cac_thread(void *arg)
{
	struct cac_provider *p = arg;
	struct timespec ts;
	struct cac_entry *e;
	bool have_set;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		pthread_mutex_unlock(&p->lock);
		p->n_want = 0;
		have_set = p->o.wanted && !p->o.wanted(p->o.wanted_ud, cac_want_add, p);
		pthread_mutex_lock(&p->lock);
		cac_reconcile(p, have_set, time(NULL));
		for (;;) {
			time_t now = time(NULL);
			uint64_t now_ms = cac_now_ms();

			for (e = p->entries; e && !cac_due(e, now, now_ms); e = e->next)
				;
			if (!e || p->stop)
				break;
			cac_refresh_one(p, e);
		}
		if (p->stop)
			break;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += CAC_TICK_MS / 1000;
		pthread_cond_timedwait(&p->wake, &p->lock, &ts);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* ---- the rest of the interface ---- */

static struct zm_tls_roots *cac_roots(struct zm_identity_provider *ip)
{
	struct cac_provider *p = (struct cac_provider *)ip;
	struct zm_tls_roots *r;

	pthread_mutex_lock(&p->lock);
	r = zm_tls_roots_ref(p->o.roots);
	pthread_mutex_unlock(&p->lock);
	return r;
}

/* The certificates fetched so far (entries still pending have none). */
static int cac_each(struct zm_identity_provider *ip,
		    void (*fn)(void *ud, const char *id, const struct zm_cert *cert), void *ud)
{
	struct cac_provider *p = (struct cac_provider *)ip;

	pthread_mutex_lock(&p->lock);
	for (struct cac_entry *e = p->entries; e; e = e->next)
		if (e->cert)
			fn(ud, e->id, e->cert);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

static void cac_destroy(struct zm_identity_provider *ip)
{
	struct cac_provider *p = (struct cac_provider *)ip;
	struct cac_entry *e;

	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	while ((e = p->entries)) {
		p->entries = e->next;
		zm_cert_put(e->cert);
		free(e);
	}
	zm_tls_roots_put(p->o.roots);
	zm_cert_put(p->o.node);
	pthread_cond_destroy(&p->wake);
	pthread_cond_destroy(&p->done);
	pthread_mutex_destroy(&p->lock);
	free(p->want);
	free(p);
}

int zm_caclient_provider_update(struct zm_identity_provider *ip, struct zm_tls_roots *roots,
				struct zm_cert *node)
{
	struct cac_provider *p = (struct cac_provider *)ip;
	struct zm_tls_roots *old_roots = NULL;
	struct zm_cert *old_node = NULL;

	if (!zm_caclient_provider_is(ip))
		return -EINVAL;
	pthread_mutex_lock(&p->lock);
	if (roots) {
		old_roots = p->o.roots;
		p->o.roots = zm_tls_roots_ref(roots);
	}
	if (node) {
		old_node = p->o.node;
		p->o.node = zm_cert_ref(node);
	}
	p->generation++;
	/* Re-fetch everything: no certificate may keep chaining to a root just removed. The
	 * current ones stay in use until their successors arrive. */
	for (struct cac_entry *e = p->entries; e; e = e->next) {
		e->rotate_at = 0;
		e->next_try_ms = 0;
		e->backoff_ms = ZM_CACLIENT_BACKOFF_MIN_MS;
	}
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
	zm_tls_roots_put(old_roots);
	zm_cert_put(old_node);
	return 0;
}

bool zm_caclient_provider_is(const struct zm_identity_provider *p)
{
	return p && p->destroy == cac_destroy;
}

static long cac_env_lifetime(void)
{
	const char *env = getenv(ZM_CERT_LIFETIME_ENV);
	char *end;
	long v;

	if (!env || !*env)
		return 0;
	v = strtol(env, &end, 10);
	return *end || v < 0 ? 0 : v;
}

int zm_caclient_provider_new(const struct zm_caclient_opts *o, struct zm_identity_provider **out,
			     char *err, size_t len)
{
	struct zm_spiffe_id node_id;
	struct cac_provider *p;
	int r;

	if (!o->addr || !o->roots || (!o->node && !o->token_file) ||
	    (o->node && zm_spiffe_id_parse(zm_cert_identity(o->node), &node_id))) {
		snprintf(err, len,
			 "CA client needs an address, roots and a node certificate or a token");
		return -EINVAL;
	}
	if (!o->node)
		snprintf(node_id.trust_domain, sizeof(node_id.trust_domain), "%s",
			 o->trust_domain ? o->trust_domain : "cluster.local");
	p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, len, "out of memory");
		return -ENOMEM;
	}
	p->ops.get = cac_get;
	p->ops.roots = cac_roots;
	p->ops.destroy = cac_destroy;
	p->ops.each = cac_each;
	p->o = *o;
	snprintf(p->addr, sizeof(p->addr), "%s", o->addr);
	p->o.addr = p->addr;
	if (o->server_id)
		snprintf(p->server_id, sizeof(p->server_id), "%s", o->server_id);
	else if (o->node)
		zm_spiffe_id_format(p->server_id, sizeof(p->server_id), node_id.trust_domain,
				    "istio-system", "istiod");
	else
		zm_caclient_addr_host(o->addr, p->server_id, sizeof(p->server_id));
	p->o.server_id = p->server_id;
	snprintf(p->token_file, sizeof(p->token_file), "%s", o->token_file ? o->token_file : "");
	snprintf(p->cluster_id, sizeof(p->cluster_id), "%s", o->cluster_id ? o->cluster_id : "");
	p->o.token_file = p->token_file;
	p->o.cluster_id = p->cluster_id;
	p->o.timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 5000;
	p->o.wait_ms = o->wait_ms > 0 ? o->wait_ms : 2000;
	p->o.keep_unwanted_s = o->keep_unwanted_s > 0 ? o->keep_unwanted_s : 60;
	p->o.validity_s = o->validity_s > 0 ? o->validity_s : cac_env_lifetime();
	p->o.roots = zm_tls_roots_ref(o->roots);
	p->o.node = zm_cert_ref(o->node);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	pthread_cond_init(&p->done, NULL);
	r = pthread_create(&p->thread, NULL, cac_thread, p);
	if (r) {
		snprintf(err, len, "cannot start the CA client thread: %s", strerror(r));
		p->thread = 0;
		zm_tls_roots_put(p->o.roots);
		zm_cert_put(p->o.node);
		free(p);
		return -r;
	}
	*out = &p->ops;
	return 0;
}

/* ---- introspection ---- */

static json_object *cac_entry_json(const struct cac_entry *e, time_t now)
{
	json_object *o = json_object_new_object();
	const char *state;
	char buf[256];

	json_object_object_add(o, "identity", json_object_new_string(e->id));
	if (!e->cert)
		state = e->error[0] ? "fetch-failed" : "pending";
	else if (now >= zm_cert_not_after(e->cert))
		state = "expired";
	else if (e->error[0])
		state = "fetch-failed"; /* still served: valid until not_after */
	else if (now >= e->rotate_at)
		state = "rotating";
	else
		state = "valid";
	json_object_object_add(o, "state", json_object_new_string(state));
	json_object_object_add(o, "wanted", json_object_new_boolean(e->wanted));
	if (e->cert) {
		X509_NAME_oneline(X509_get_issuer_name(zm_cert_x509(e->cert)), buf, sizeof(buf));
		json_object_object_add(
		    o, "serial", json_object_new_string(zm_cert_serial(e->cert, buf + 128, 128)));
		json_object_object_add(o, "issuer", json_object_new_string(buf));
		json_object_object_add(o, "not_before",
				       json_object_new_int64(zm_cert_not_before(e->cert)));
		json_object_object_add(o, "not_after",
				       json_object_new_int64(zm_cert_not_after(e->cert)));
		json_object_object_add(
		    o, "rotate_in_s",
		    json_object_new_int64(e->rotate_at > now ? e->rotate_at - now : 0));
	}
	if (e->error[0])
		json_object_object_add(o, "error", json_object_new_string(e->error));
	return o;
}

char *zm_caclient_provider_dump(struct zm_identity_provider *ip)
{
	struct cac_provider *p = (struct cac_provider *)ip;
	json_object *arr = json_object_new_array();
	time_t now = time(NULL);
	char *out;

	if (!arr)
		return NULL;
	pthread_mutex_lock(&p->lock);
	for (struct cac_entry *e = p->entries; e; e = e->next)
		json_object_array_add(arr, cac_entry_json(e, now));
	pthread_mutex_unlock(&p->lock);
	out = strdup(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN));
	json_object_put(arr);
	return out;
}
