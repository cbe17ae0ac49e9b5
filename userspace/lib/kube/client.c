// SPDX-License-Identifier: Apache-2.0
/*
 * The reflector: for each kind, Kubernetes' list-then-watch (api-concepts, "Efficient
 * detection of changes") over one libcurl multi handle, so every request shares one HTTP/2
 * connection when the server speaks HTTP/2 (one HTTP/1.1 connection each otherwise). libcurl
 * is loaded when the first client starts (libcurl.h) and called through zm_curl:
 *
 *   list (limit=N pages, continue tokens) -> commit the whole list into the store ->
 *   watch from the list's resourceVersion (allowWatchBookmarks, timeoutSeconds) -> each line
 *   an event applied as it arrives -> when the server ends the watch, watch again from the
 *   last resourceVersion seen (bookmarks move it without any object).
 *
 * 410 Gone (an ERROR event, or the status of the request) means the history asked for was
 * compacted: list again. A stream that sends something that is no event, or nothing at all
 * for stall_ms (not even a bookmark), is cut and watched again. Other failures back off
 * (250 ms doubling to backoff_max_ms, with jitter) and retry; the store keeps what it had, so
 * the model stays the last good one while the API server is away. 401 re-reads the token
 * (it rotates); 403 is RBAC refusing the resource and 404 a CRD not installed: the kind
 * counts as synced (empty) so the rest of the model is served, and is retried slowly.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/errf.h"
#include "kube/internal.h"
#include "kube/libcurl.h"
#include "obs/log.h"

#define ZM_KR_BACKOFF_MIN_MS 250
#define ZM_KR_SLOW_MS	     60000 /* forbidden or not installed: ask again this often */
#define ZM_KR_LOG_LEN	     8192

enum zm_kr_state { ZM_KR_WAIT = 0, ZM_KR_LIST, ZM_KR_WATCH };

struct zm_kube_client;

struct zm_kr {
	struct zm_kube_client *c;
	enum zm_kube_kind k;
	enum zm_kr_state state;
	bool want_list; /* the next request is a list (first, after 410) */
	CURL *h;
	struct curl_slist *hdrs;
	char *buf; /* list page, or the watch's unfinished line */
	size_t len, cap;
	bool abort, gone, broken, got; /* set while a watch streams */
	char rv[ZM_KUBE_RV_LEN], cont[ZM_KUBE_CONT_LEN];
	uint64_t next_ms, last_data_ms;
	unsigned int backoff_ms;
	bool synced, off; /* off: forbidden or not installed */
	unsigned long events;
	char last_error[256];
};

struct zm_kube_client {
	struct zm_kube_client_opts o;
	CURLM *m;
	struct zm_kr r[ZM_KUBE_N_KINDS];
	pthread_mutex_t lock;
	char log[ZM_KR_LOG_LEN];
	unsigned int seed;
};

static uint64_t zm_kr_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Log each line of text (the store's notes on what it refused). */
static void zm_kr_print(const char *text)
{
	const char *p = text, *nl;

	while (p && *p) {
		nl = strchr(p, '\n');
		obs_log(OBS_WARN, "kube", "%.*s", (int)(nl ? nl - p : (long)strlen(p)), p);
		p = nl ? nl + 1 : NULL;
	}
}

static void zm_kr_backoff(struct zm_kr *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void zm_kr_backoff(struct zm_kr *r, const char *fmt, ...)
{
	unsigned int max = r->c->o.backoff_max_ms ? r->c->o.backoff_max_ms : 30000;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->last_error, sizeof(r->last_error), fmt, ap);
	va_end(ap);
	r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : ZM_KR_BACKOFF_MIN_MS;
	if (r->backoff_ms > max)
		r->backoff_ms = max;
	/* Jitter: nodes that lost the API server together do not come back together. */
	r->next_ms =
	    zm_kr_now() + r->backoff_ms / 2 + rand_r(&r->c->seed) % (r->backoff_ms / 2 + 1);
	r->state = ZM_KR_WAIT;
	obs_log(OBS_WARN, "kube", "%s: %s; keeping the last state, retrying in %u ms",
		zm_kube_kind_resource(r->k), r->last_error, r->backoff_ms);
}

static int zm_kr_append(struct zm_kr *r, const char *p, size_t n)
{
	if (r->len + n + 1 > ZM_KUBE_MAX_BODY)
		return -EFBIG;
	if (r->len + n + 1 > r->cap) {
		size_t cap = r->cap ? r->cap : 16384;
		char *b;

		while (cap < r->len + n + 1)
			cap *= 2;
		b = realloc(r->buf, cap);
		if (!b)
			return -ENOMEM;
		r->buf = b;
		r->cap = cap;
	}
	memcpy(r->buf + r->len, p, n);
	r->len += n;
	r->buf[r->len] = '\0';
	return 0;
}

/* One complete watch line. */
static void zm_kr_line(struct zm_kr *r, const char *line, size_t n)
{
	struct zm_kube_client *c = r->c;
	enum zm_kube_verdict v;

	if (!n)
		return;
	pthread_mutex_lock(&c->lock);
	v = zm_kube_store_event(c->o.store, r->k, line, n, r->rv, c->log, sizeof(c->log));
	pthread_mutex_unlock(&c->lock);
	zm_kr_print(c->log);
	r->events++;
	if (v == ZM_KUBE_GONE)
		r->gone = r->abort = true;
	else if (v == ZM_KUBE_GARBAGE || v == ZM_KUBE_ERROR)
		r->broken = r->abort = true;
	else
		r->got = true;
}

static long zm_kr_status(struct zm_kr *r)
{
	long code = 0;

	zm_curl.easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &code);
	return code;
}

static size_t zm_kr_write(char *p, size_t size, size_t nmemb, void *ud)
{
	struct zm_kr *r = ud;
	size_t n = size * nmemb, start = 0, i;

	r->last_data_ms = zm_kr_now();
	if (r->state != ZM_KR_WATCH || zm_kr_status(r) != 200)
		return zm_kr_append(r, p, n) ? 0 : n; /* a list page, or an error's body */
	for (i = 0; i < n && !r->abort; i++) {
		if (p[i] != '\n')
			continue;
		if (r->len) { /* the line began in an earlier chunk */
			if (zm_kr_append(r, p + start, i - start))
				return 0;
			zm_kr_line(r, r->buf, r->len);
			r->len = 0;
		} else {
			zm_kr_line(r, p + start, i - start);
		}
		start = i + 1;
	}
	if (r->abort)
		return 0; /* ends the transfer: CURLE_WRITE_ERROR, handled as r->gone/broken */
	if (start < n && zm_kr_append(r, p + start, n - start)) {
		r->broken = true;
		return 0;
	}
	return n;
}

static void zm_kr_url(struct zm_kr *r, char *url, size_t len)
{
	struct zm_kube_client *c = r->c;
	char *sel = NULL, *cont = NULL;
	unsigned int t = c->o.watch_timeout_s ? c->o.watch_timeout_s
					      : 300 + (unsigned int)(rand_r(&c->seed) % 300);
	int n;

	if (r->k == ZM_KUBE_PODS && c->o.node) {
		char f[600];

		snprintf(f, sizeof(f), "spec.nodeName=%s", c->o.node);
		sel = zm_curl.easy_escape(NULL, f, 0);
	}
	n = snprintf(url, len, "%s%s?", c->o.conn->server, zm_kube_kind_path(r->k));
	if (sel)
		n += snprintf(url + n, len - (size_t)n, "fieldSelector=%s&", sel);
	if (r->state == ZM_KR_LIST) {
		n += snprintf(url + n, len - (size_t)n, "limit=%u",
			      c->o.page_size ? c->o.page_size : 500);
		if (r->cont[0] && (cont = zm_curl.easy_escape(NULL, r->cont, 0)))
			snprintf(url + n, len - (size_t)n, "&continue=%s", cont);
	} else {
		snprintf(url + n, len - (size_t)n,
			 "watch=1&allowWatchBookmarks=true&resourceVersion=%s&timeoutSeconds=%u",
			 r->rv, t);
	}
	zm_curl.free(sel);
	zm_curl.free(cont);
}

/* The TLS and authentication settings of every request (either thread, under c->lock). */
static int zm_kube_client_setup_handle(struct zm_kube_client *c, CURL *h, struct curl_slist **hdrs)
{
	struct zm_kube_conn *k = c->o.conn;
	char auth[sizeof(k->token) + 32];

	*hdrs = zm_curl.slist_append(NULL, "Accept: application/json");
	if (k->token[0]) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", k->token);
		*hdrs = zm_curl.slist_append(*hdrs, auth);
		explicit_bzero(auth, sizeof(auth));
	}
	if (!*hdrs)
		return -ENOMEM;
	zm_curl.easy_setopt(h, CURLOPT_HTTPHEADER, *hdrs);
	zm_curl.easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	zm_curl.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	zm_curl.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	zm_curl.easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	if (k->ca_pem) {
		struct curl_blob b = {k->ca_pem, strlen(k->ca_pem), CURL_BLOB_COPY};

		zm_curl.easy_setopt(h, CURLOPT_CAINFO_BLOB, &b);
	} else if (k->ca_file[0]) {
		zm_curl.easy_setopt(h, CURLOPT_CAINFO, k->ca_file);
	}
	if (k->insecure) {
		zm_curl.easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		zm_curl.easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (k->cert_file[0]) {
		zm_curl.easy_setopt(h, CURLOPT_SSLCERT, k->cert_file);
		zm_curl.easy_setopt(h, CURLOPT_SSLKEY, k->key_file[0] ? k->key_file : k->cert_file);
	}
	return 0;
}

static void zm_kr_start(struct zm_kr *r, enum zm_kr_state s)
{
	struct zm_kube_client *c = r->c;
	char url[8192], err[256];

	bool ok;

	r->state = s;
	r->len = 0;
	r->abort = r->gone = r->broken = r->got = false;
	r->last_data_ms = zm_kr_now();
	r->h = zm_curl.easy_init();
	pthread_mutex_lock(&c->lock);
	err[0] = '\0';
	if (zm_kube_conn_token_refresh(c->o.conn, false, err, sizeof(err)) < 0)
		obs_log(OBS_WARN, "kube", "%s (using the previous token)", err);
	ok = r->h && !zm_kube_client_setup_handle(c, r->h, &r->hdrs);
	pthread_mutex_unlock(&c->lock);
	if (!ok) {
		zm_kr_backoff(r, "out of memory");
		return;
	}
	zm_kr_url(r, url, sizeof(url));
	zm_curl.easy_setopt(r->h, CURLOPT_URL, url);
	zm_curl.easy_setopt(r->h, CURLOPT_WRITEFUNCTION, zm_kr_write);
	zm_curl.easy_setopt(r->h, CURLOPT_WRITEDATA, r);
	zm_curl.easy_setopt(r->h, CURLOPT_PRIVATE, r);
	zm_curl.easy_setopt(r->h, CURLOPT_PIPEWAIT, 1L); /* wait to share the HTTP/2 connection */
	if (s == ZM_KR_LIST)
		zm_curl.easy_setopt(r->h, CURLOPT_TIMEOUT_MS, 120000L);
	zm_curl.multi_add_handle(c->m, r->h);
}

static void zm_kr_release(struct zm_kr *r)
{
	if (r->h) {
		zm_curl.multi_remove_handle(r->c->m, r->h);
		zm_curl.easy_cleanup(r->h);
	}
	zm_curl.slist_free_all(r->hdrs);
	r->h = NULL;
	r->hdrs = NULL;
}

/* A request refused with an HTTP status: what it means for the kind. */
static void zm_kr_refused(struct zm_kr *r, long code)
{
	const char *res = zm_kube_kind_resource(r->k);
	char err[256];

	if (code == 401) {
		pthread_mutex_lock(&r->c->lock);
		zm_kube_conn_token_refresh(r->c->o.conn, true, err, sizeof(err));
		pthread_mutex_unlock(&r->c->lock);
		zm_kr_backoff(r,
			      "401 Unauthorized: the token was refused (expired? re-reading it)");
	} else if (code == 403 || code == 404) {
		if (!r->off)
			obs_log(OBS_WARN, "kube",
				"%s: %ld %s: %s%s%s; serving the model without it, asking again "
				"every %d s",
				res, code, code == 403 ? "Forbidden" : "Not Found",
				code == 403
				    ? "RBAC does not let this service account list and watch "
				      "it (see the "
				    : "the resource is not installed (its CRD?)",
				code == 403 ? r->c->o.who ?: "zmesh-node" : "",
				code == 403 ? " ClusterRole)" : "", ZM_KR_SLOW_MS / 1000);
		snprintf(r->last_error, sizeof(r->last_error), "%ld %s", code,
			 code == 403 ? "Forbidden" : "Not Found");
		r->off = r->synced = true;
		r->want_list = true;
		r->state = ZM_KR_WAIT;
		r->next_ms = zm_kr_now() + ZM_KR_SLOW_MS;
	} else {
		zm_kr_backoff(r, "HTTP %ld: %.120s", code, r->len ? r->buf : "");
	}
}

static void zm_kr_list_done(struct zm_kr *r)
{
	struct zm_kube_client *c = r->c;
	char rv[ZM_KUBE_RV_LEN];
	int e;

	pthread_mutex_lock(&c->lock);
	e = zm_kube_store_list_page(c->o.store, r->k, r->buf ? r->buf : "", r->len, rv, r->cont,
				    c->log, sizeof(c->log));
	if (!e && !r->cont[0]) {
		zm_kube_store_list_commit(c->o.store, r->k);
		snprintf(r->rv, sizeof(r->rv), "%s", rv);
	}
	if (e)
		zm_kube_store_list_abort(c->o.store, r->k);
	pthread_mutex_unlock(&c->lock);
	zm_kr_print(c->log);
	if (e) {
		r->want_list = true;
		zm_kr_backoff(r, "the list could not be read");
		return;
	}
	if (r->cont[0]) {
		zm_kr_start(r, ZM_KR_LIST); /* the next page */
		return;
	}
	if (r->off || !r->synced)
		obs_log(OBS_INFO, "kube", "%s: listed %zu at resourceVersion %s",
			zm_kube_kind_resource(r->k), zm_kube_store_count(c->o.store, r->k), r->rv);
	r->synced = true;
	r->off = r->want_list = false;
	r->backoff_ms = 0;
	r->last_error[0] = '\0';
	zm_kr_start(r, ZM_KR_WATCH);
}

static void zm_kr_watch_done(struct zm_kr *r, CURLcode res, long code)
{
	if (r->gone) {
		obs_log(OBS_INFO, "kube",
			"%s: resourceVersion %s is too old (410 Gone): listing again",
			zm_kube_kind_resource(r->k), r->rv);
		r->want_list = true;
		r->cont[0] = '\0';
		zm_kube_store_list_begin(r->c->o.store, r->k);
		zm_kr_start(r, ZM_KR_LIST);
		return;
	}
	if (r->broken) {
		zm_kr_backoff(r, "the watch stream broke (see above)");
		return;
	}
	if (res == CURLE_OK && code == 200) {
		/* The server ended the watch (timeoutSeconds): go on from where it left us. */
		r->backoff_ms = 0;
		zm_kr_start(r, ZM_KR_WATCH);
		return;
	}
	if (r->got)
		r->backoff_ms = 0; /* it worked for a while: start the backoff over */
	zm_kr_backoff(r, "watch ended: %s",
		      res == CURLE_OK ? "no HTTP status" : zm_curl.easy_strerror(res));
}

static void zm_kr_done(struct zm_kr *r, CURLcode res)
{
	long code = zm_kr_status(r);
	enum zm_kr_state s = r->state;

	zm_kr_release(r);
	if (s == ZM_KR_WATCH && (r->gone || r->broken || code == 200)) {
		zm_kr_watch_done(r, res, code);
		return;
	}
	if (code == 410) { /* a continue token or a watch's resourceVersion expired */
		r->gone = true;
		zm_kr_watch_done(r, res, code);
		return;
	}
	if (res != CURLE_OK && !code) {
		if (s == ZM_KR_LIST)
			r->want_list = true;
		zm_kr_backoff(r, "%s", zm_curl.easy_strerror(res));
		return;
	}
	if (code != 200) {
		if (s == ZM_KR_LIST)
			r->want_list = true;
		zm_kr_refused(r, code);
		return;
	}
	if (s == ZM_KR_LIST && res == CURLE_OK)
		zm_kr_list_done(r);
	else
		zm_kr_watch_done(r, res, code);
}

struct zm_kube_client *zm_kube_client_new(const struct zm_kube_client_opts *o, char *err,
					  size_t len)
{
	struct zm_kube_client *c;
	int k;

	if (zm_curl_open(err, len))
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c || !(c->m = zm_curl.multi_init())) {
		free(c);
		zm_errf(err, len, -ENOMEM, "out of memory");
		return NULL;
	}
	c->o = *o;
	c->seed = (unsigned int)time(NULL) ^ (unsigned int)(uintptr_t)c;
	pthread_mutex_init(&c->lock, NULL);
	zm_curl.multi_setopt(c->m, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
	for (k = 0; k < ZM_KUBE_N_KINDS; k++) {
		c->r[k] = (struct zm_kr){.c = c, .k = k, .want_list = true};
		if (o->kinds && !(o->kinds & (1u << k))) { /* not wanted: never asked for */
			c->r[k].off = c->r[k].synced = true;
			c->r[k].next_ms = UINT64_MAX;
		}
	}
	return c;
}

void zm_kube_client_free(struct zm_kube_client *c)
{
	int k;

	if (!c)
		return;
	for (k = 0; k < ZM_KUBE_N_KINDS; k++) {
		zm_kr_release(&c->r[k]);
		free(c->r[k].buf);
	}
	zm_curl.multi_cleanup(c->m);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Start what is due, cut watches that went silent. */
static void zm_kr_schedule(struct zm_kube_client *c)
{
	unsigned int stall = c->o.stall_ms ? c->o.stall_ms : 120000;
	uint64_t now = zm_kr_now();
	int k;

	for (k = 0; k < ZM_KUBE_N_KINDS; k++) {
		struct zm_kr *r = &c->r[k];

		if (r->h && r->state == ZM_KR_WATCH && now - r->last_data_ms > stall) {
			obs_log(OBS_WARN, "kube",
				"%s: the watch sent nothing for %u ms (not even a bookmark): "
				"watching again from %s",
				zm_kube_kind_resource(r->k), stall, r->rv);
			zm_kr_release(r);
			zm_kr_start(r, ZM_KR_WATCH);
			continue;
		}
		if (r->h || r->state != ZM_KR_WAIT || now < r->next_ms)
			continue;
		if (r->want_list) {
			r->cont[0] = '\0';
			zm_kube_store_list_begin(c->o.store, r->k);
		}
		zm_kr_start(r, r->want_list ? ZM_KR_LIST : ZM_KR_WATCH);
	}
}

int zm_kube_client_step(struct zm_kube_client *c, int timeout_ms)
{
	struct CURLMsg *msg;
	int running, left;

	zm_kr_schedule(c);
	zm_curl.multi_poll(c->m, NULL, 0, timeout_ms, NULL);
	zm_curl.multi_perform(c->m, &running);
	while ((msg = zm_curl.multi_info_read(c->m, &left))) {
		struct zm_kr *r = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		zm_curl.easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		if (r)
			zm_kr_done(r, msg->data.result);
	}
	return 0;
}

bool zm_kube_client_synced(const struct zm_kube_client *c)
{
	int k;

	for (k = 0; k < ZM_KUBE_N_KINDS; k++)
		if (!c->r[k].synced)
			return false;
	return true;
}

void zm_kube_client_lock(struct zm_kube_client *c)
{
	pthread_mutex_lock(&c->lock);
}

void zm_kube_client_unlock(struct zm_kube_client *c)
{
	pthread_mutex_unlock(&c->lock);
}

char *zm_kube_client_dump(struct zm_kube_client *c)
{
	static const char *const states[] = {"waiting", "listing", "watching"};
	json_object *o = json_object_new_object(), *kinds = json_object_new_object();
	char *out;
	int k;

	json_object_object_add(o, "server", json_object_new_string(c->o.conn->server));
	json_object_object_add(o, "synced", json_object_new_boolean(zm_kube_client_synced(c)));
	pthread_mutex_lock(&c->lock);
	for (k = 0; k < ZM_KUBE_N_KINDS; k++) {
		struct zm_kr *r = &c->r[k];
		json_object *e;

		if (c->o.kinds && !(c->o.kinds & (1u << k)))
			continue; /* never asked for */
		e = json_object_new_object();

		json_object_object_add(e, "state", json_object_new_string(states[r->state]));
		json_object_object_add(e, "resource_version", json_object_new_string(r->rv));
		json_object_object_add(e, "objects",
				       json_object_new_int64((int64_t)c->o.store->t[k].n));
		json_object_object_add(e, "events", json_object_new_int64((int64_t)r->events));
		json_object_object_add(e, "synced", json_object_new_boolean(r->synced));
		json_object_object_add(e, "last_error", json_object_new_string(r->last_error));
		json_object_object_add(kinds, zm_kube_kind_resource(k), e);
	}
	pthread_mutex_unlock(&c->lock);
	json_object_object_add(o, "resources", kinds);
	out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return out;
}

struct zm_kf_buf {
	char *p;
	size_t len, cap;
};

static size_t zm_kf_write(char *p, size_t size, size_t nmemb, void *ud)
{
	struct zm_kf_buf *b = ud;
	size_t n = size * nmemb;

	if (b->len + n + 1 > ZM_KUBE_MAX_BODY)
		return 0;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *q = realloc(b->p, cap);

		if (!q)
			return 0;
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
	return n;
}

/* An object's path: the collection's with "namespaces/NS/" before the resource. */
static void zm_kf_path(enum zm_kube_kind k, const char *ns, const char *name, char *out, size_t len)
{
	const char *col = zm_kube_kind_path(k), *last = strrchr(col, '/');

	if (!zm_kube_kind_namespaced(k))
		snprintf(out, len, "%s/%s", col, name);
	else
		snprintf(out, len, "%.*s/namespaces/%s%s/%s", (int)(last - col), col, ns, last,
			 name);
}

int zm_kube_client_fetch(struct zm_kube_client *c, enum zm_kube_kind k, const char *ns,
			 const char *name, int timeout_ms, char *err, size_t len)
{
	struct zm_kf_buf b = {0};
	struct curl_slist *hdrs = NULL;
	char path[1024], url[2048], *ens = zm_curl.easy_escape(NULL, ns, 0),
				    *enm = zm_curl.easy_escape(NULL, name, 0);
	CURL *h = zm_curl.easy_init();
	long code = 0;
	CURLcode res;
	int r;

	pthread_mutex_lock(&c->lock);
	r = !h || !ens || !enm ? -ENOMEM : zm_kube_client_setup_handle(c, h, &hdrs);
	pthread_mutex_unlock(&c->lock);
	if (r)
		goto out;
	zm_kf_path(k, ens, enm, path, sizeof(path));
	snprintf(url, sizeof(url), "%s%s", c->o.conn->server, path);
	zm_curl.easy_setopt(h, CURLOPT_URL, url);
	zm_curl.easy_setopt(h, CURLOPT_WRITEFUNCTION, zm_kf_write);
	zm_curl.easy_setopt(h, CURLOPT_WRITEDATA, &b);
	zm_curl.easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	res = zm_curl.easy_perform(h);
	zm_curl.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	if (res != CURLE_OK || code != 200) {
		r = code == 404 ? -ENOENT : code == 401 || code == 403 ? -EACCES : -EIO;
		zm_errf(err, len, r, "GET %s: %s", path,
			res != CURLE_OK ? zm_curl.easy_strerror(res)
			: code == 404	? "not found"
			: code == 401	? "401 Unauthorized"
			: code == 403	? "403 Forbidden"
					: "unexpected HTTP status");
		goto out;
	}
	pthread_mutex_lock(&c->lock);
	r = zm_kube_store_put(c->o.store, k, b.p, b.len, c->log, sizeof(c->log));
	zm_kr_print(c->log);
	pthread_mutex_unlock(&c->lock);
	if (r)
		zm_errf(err, len, r, "GET %s: the answer is no %s", path, zm_kube_kind_name(k));
out:
	if (r == -ENOMEM)
		zm_errf(err, len, r, "out of memory");
	zm_curl.slist_free_all(hdrs);
	if (h)
		zm_curl.easy_cleanup(h);
	zm_curl.free(ens);
	zm_curl.free(enm);
	free(b.p);
	return r;
}
