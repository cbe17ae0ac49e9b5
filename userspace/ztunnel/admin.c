// SPDX-License-Identifier: Apache-2.0
/*
 * The control thread (the process's main thread once the workers run): a tiny HTTP/1.0
 * responder for admin (15000, 127.0.0.1 only: /config_dump, /certs, /logging, /quitquitquit),
 * Prometheus metrics (15020: /metrics, /stats/prometheus) and readiness (15021:
 * /healthz/ready, and /drain: a Kubernetes preStop hook makes us unready, so no new pod is
 * handed to this ztunnel, before SIGTERM); config reload on SIGHUP and when the file's mtime
 * changes (polled); the auto-enrollment that follows every new snapshot; SIGTERM/SIGINT stop
 * the process. Requests are GET (POST too for /quitquitquit), read with a short timeout and
 * answered in one write.
 */
#include <errno.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "config/config.h"
#include "authz.h"
#include "zt.h"

enum zt_port_kind { ZT_ADMIN, ZT_METRICS, ZT_READY };

static int zt_http_listen(int port, bool loopback_only)
{
	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
	struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int one = 1, zero = 0, fd;

	if (loopback_only) {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		s4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
		    bind(fd, (struct sockaddr *)&s4, sizeof(s4)) || listen(fd, 64))
			goto fail;
		return fd;
	}
	fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && !setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) &&
	    !setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) &&
	    !bind(fd, (struct sockaddr *)&s6, sizeof(s6)) && !listen(fd, 64))
		return fd;
	if (fd >= 0)
		close(fd);
	/* No IPv6 in this namespace: IPv4 only. */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&s4, sizeof(s4)) || listen(fd, 64))
		goto fail;
	return fd;
fail:
	fprintf(stderr, "ztunnel: listening on HTTP port %d failed: %s\n", port, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

static void zt_http_reply(int fd, int code, const char *ctype, const char *body, size_t len)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n",
			 code,
			 code == 200   ? "OK"
			 : code == 404 ? "Not Found"
			 : code == 405 ? "Method Not Allowed"
				       : "Service Unavailable",
			 ctype, len);

	if (write(fd, head, (size_t)n) != n)
		return;
	while (len) {
		ssize_t w = write(fd, body, len);

		if (w <= 0)
			return;
		body += w;
		len -= (size_t)w;
	}
}

/* The istio_tcp_* series plus this process's own gauges (HBONE connections now open). */
static char *zt_metrics_with_gauges(struct zt *zt, size_t *len)
{
	size_t blen = 0, cap;
	char *body = zt_metrics_render(&blen), *out;
	int n;

	if (!body)
		return NULL;
	cap = blen + 512;
	out = realloc(body, cap);
	if (!out) {
		*len = blen;
		return body;
	}
	n = snprintf(out + blen, cap - blen,
		     "# HELP zmesh_hbone_pool_connections Outbound HBONE connections in the pool.\n"
		     "# TYPE zmesh_hbone_pool_connections gauge\n"
		     "zmesh_hbone_pool_connections %d\n"
		     "# HELP zmesh_hbone_inbound_connections Inbound HBONE (15008) connections.\n"
		     "# TYPE zmesh_hbone_inbound_connections gauge\n"
		     "zmesh_hbone_inbound_connections %d\n",
		     atomic_load(&zt->pool_conns), atomic_load(&zt->hbone_inbound));
	*len = blen + (n > 0 && (size_t)n < cap - blen ? (size_t)n : 0);
	return out;
}

static char *zt_config_dump(struct zt *zt)
{
	struct zt_snap *s = zt_state_get();
	json_object *o = json_object_new_object(), *wls = json_object_new_array();
	char id[ZT_ID_LEN], a[ZM_ADDR_STRLEN], *enrolled = zt_enroll_dump(), *out;
	size_t i, j;

	json_object_object_add(o, "node", json_object_new_string(zt->opts.node));
	json_object_object_add(
	    o, "config", json_object_new_string(zt->opts.config ? zt->opts.config : "kubernetes"));
	json_object_object_add(o, "generation", json_object_new_int64((int64_t)s->generation));
	json_object_object_add(o, "workers", json_object_new_int(zt->n_workers));
	json_object_object_add(o, "mtls", json_object_new_boolean(zt->idp != NULL));
	json_object_object_add(o, "pool_idle_ms", json_object_new_int(zt->opts.pool_idle_ms));
	json_object_object_add(o, "pool_connections",
			       json_object_new_int(atomic_load(&zt->pool_conns)));
	json_object_object_add(o, "hbone_inbound_connections",
			       json_object_new_int(atomic_load(&zt->hbone_inbound)));
	for (i = 0; i < s->cfg->n_workloads; i++) {
		const struct zm_cfg_workload *wl = &s->cfg->workloads[i];
		json_object *w = json_object_new_object(), *ips = json_object_new_array();

		for (j = 0; j < wl->n_ips; j++)
			json_object_array_add(ips, json_object_new_string(zm_addr_format(
						       &wl->ips[j].addr, a, sizeof(a))));
		zm_cfg_workload_identity(wl, id, sizeof(id));
		json_object_object_add(w, "uid", json_object_new_string(wl->uid));
		json_object_object_add(w, "name", json_object_new_string(wl->name));
		json_object_object_add(w, "namespace", json_object_new_string(wl->namespace));
		json_object_object_add(w, "node", json_object_new_string(wl->node));
		json_object_object_add(w, "protocol",
				       json_object_new_string(zm_cfg_protocol_name(wl->protocol)));
		json_object_object_add(w, "identity", json_object_new_string(id));
		json_object_object_add(w, "workload_ips", ips);
		json_object_array_add(wls, w);
	}
	json_object_object_add(o, "workloads", wls);
	json_object_object_add(o, "services", json_object_new_int((int)s->cfg->n_services));
	json_object_object_add(o, "policies", json_object_new_int((int)s->cfg->n_policies));
	json_object_object_add(o, "enrolled", enrolled ? json_tokener_parse(enrolled) : NULL);
	if (zt_kube_enabled(zt)) {
		char *k = zt_kube_dump();

		json_object_object_add(o, "kubernetes", k ? json_tokener_parse(k) : NULL);
		free(k);
	}
	out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
	json_object_put(o);
	free(enrolled);
	zt_state_put(s);
	return out;
}

static void zt_http_serve(struct zt *zt, int lfd, enum zt_port_kind kind)
{
	struct timeval tv = {1, 0};
	char req[1024], method[8], path[256], *body = NULL;
	size_t blen = 0;
	ssize_t n;
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	n = read(fd, req, sizeof(req) - 1);
	if (n <= 0 || sscanf((req[n] = '\0', req), "%7s %255s", method, path) != 2) {
		close(fd);
		return;
	}
	if (strcmp(method, "GET") && !(strcmp(method, "POST") == 0 && kind == ZT_ADMIN)) {
		zt_http_reply(fd, 405, "text/plain", "GET only\n", 9);
	} else if (kind == ZT_METRICS &&
		   (!strcmp(path, "/metrics") || !strcmp(path, "/stats/prometheus"))) {
		body = zt_metrics_with_gauges(zt, &blen);
		zt_http_reply(fd, 200, "text/plain; version=0.0.4", body ? body : "",
			      body ? blen : 0);
	} else if (kind == ZT_READY && !strcmp(path, "/healthz/ready")) {
		if (atomic_load(&zt->ready))
			zt_http_reply(fd, 200, "text/plain", "ready\n", 6);
		else
			zt_http_reply(fd, 503, "text/plain", "not ready\n", 10);
	} else if (kind == ZT_READY && !strcmp(path, "/drain")) {
		atomic_store(&zt->ready, false);
		zt_http_reply(fd, 200, "text/plain", "draining\n", 9);
	} else if (kind == ZT_ADMIN && !strcmp(path, "/config_dump")) {
		body = zt_config_dump(zt);
		zt_http_reply(fd, 200, "application/json", body ? body : "{}",
			      body ? strlen(body) : 2);
	} else if (kind == ZT_ADMIN && !strcmp(path, "/certs")) {
		body = zt_identity_certs_json(zt);
		zt_http_reply(fd, body ? 200 : 503, "application/json", body ? body : "[]\n",
			      body ? strlen(body) : 3);
	} else if (kind == ZT_ADMIN && !strcmp(path, "/logging")) {
		zt_http_reply(fd, 200, "text/plain", "level=info\n", 11);
	} else if (kind == ZT_ADMIN && !strcmp(path, "/quitquitquit")) {
		zt_http_reply(fd, 200, "text/plain", "OK\n", 3);
		atomic_store(&zt->stop, true);
	} else {
		zt_http_reply(fd, 404, "text/plain", "not found\n", 10);
	}
	free(body);
	close(fd);
}

static int zt_signalfd(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* Reload (forced or on change) and enroll what the new snapshot says. */
static int zt_control_reload(struct zt *zt, bool force, bool retry_enroll)
{
	struct zt_snap *s;
	int r = zt_state_reload_if_changed(zt, force), failed = 0;

	/* Trust bundle and node certificate: reloaded on SIGHUP or when they change. */
	zt_identity_reload(zt, force);
	/* Policy files reload with the config; either change re-checks live connections. */
	zt_authz_reload(force, r == 1);
	if (r == 1 || retry_enroll) {
		s = zt_state_get();
		failed = zt_enroll_sync(zt, s);
		zt_state_put(s);
	}
	return failed;
}

int zt_control_run(struct zt *zt)
{
	struct pollfd p[4];
	struct signalfd_siginfo si;
	uint64_t last_poll = zt_now_ms();
	int i, failed;
	struct zt_snap *s;

	p[0] = (struct pollfd){zt_http_listen(zt->opts.admin_port, true), POLLIN, 0};
	p[1] = (struct pollfd){zt_http_listen(zt->opts.metrics_port, false), POLLIN, 0};
	p[2] = (struct pollfd){zt_http_listen(zt->opts.ready_port, false), POLLIN, 0};
	p[3] = (struct pollfd){zt_signalfd(), POLLIN, 0};
	if (p[0].fd < 0 || p[1].fd < 0 || p[2].fd < 0 || p[3].fd < 0)
		return -EADDRINUSE;
	s = zt_state_get();
	failed = zt_enroll_sync(zt, s);
	zt_state_put(s);
	atomic_store(&zt->ready, true);
	fprintf(stderr, "ztunnel: node %s ready: %d workers, listening on 15001 15006 15008\n",
		zt->opts.node, zt->n_workers);
	while (!atomic_load(&zt->stop)) {
		if (poll(p, 4, 250) < 0 && errno != EINTR)
			break;
		for (i = 0; i < 3; i++)
			if (p[i].revents & POLLIN)
				zt_http_serve(zt, p[i].fd, (enum zt_port_kind)i);
		if ((p[3].revents & POLLIN) && read(p[3].fd, &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo == SIGHUP)
				failed = zt_control_reload(zt, true, failed > 0);
			else
				atomic_store(&zt->stop, true);
		}
		if (zt_now_ms() - last_poll >= (uint64_t)zt->opts.poll_ms) {
			last_poll = zt_now_ms();
			failed = zt_control_reload(zt, false, failed > 0);
		}
	}
	atomic_store(&zt->ready, false);
	for (i = 0; i < 4; i++)
		close(p[i].fd);
	return 0;
}
