// SPDX-License-Identifier: Apache-2.0
/*
 * waypoint: the L7 proxy of zmesh. Terminates HBONE on 15008 with its own workload identity,
 * applies Istio VirtualService / DestinationRule / AuthorizationPolicy (lib/l7) to HTTP/1.1
 * inside each tunnel (other bytes are relayed as plain TCP), and originates HBONE to the
 * chosen endpoint pods. This file: options, the network namespace, identity and TLS contexts,
 * the refcounted config snapshot and its reload (SIGHUP or a changed file; a broken update
 * keeps the previous snapshot), and the control thread serving Prometheus metrics (15020) and
 * readiness (15021).
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/netns.h"
#include "tls/tls.h"
#include "pick.h"

#define WP_ERRLEN 8192

struct wp *wp_g;
static volatile sig_atomic_t wp_hup, wp_term;

uint64_t wp_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint32_t wp_rand(void)
{
	static __thread uint64_t s;

	if (!s && getrandom(&s, sizeof(s), 0) != sizeof(s))
		s = wp_now_ms() | 1;
	/* xorshift64*: routing and fault percentages, not secrets */
	s ^= s >> 12;
	s ^= s << 25;
	s ^= s >> 27;
	return (uint32_t)((s * 2685821657736338717ull) >> 32);
}

struct wp_snap *wp_snap_get(struct wp *wp)
{
	struct wp_snap *s;

	pthread_mutex_lock(&wp->snap_lock);
	s = wp->snap;
	atomic_fetch_add(&s->refs, 1);
	pthread_mutex_unlock(&wp->snap_lock);
	return s;
}

void wp_snap_put(struct wp_snap *s)
{
	if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	l7_config_free(s->l7);
	zm_config_free(s->mesh);
	free(s);
}

/* Build a snapshot from the files; NULL with the reasons in err. */
static struct wp_snap *wp_snap_load(struct wp *wp, char *err, size_t len)
{
	struct wp_snap *s = calloc(1, sizeof(*s));

	if (!s) {
		snprintf(err, len, "out of memory");
		return NULL;
	}
	atomic_init(&s->refs, 1);
	if (zm_config_load_file(wp->opts.mesh_config, &s->mesh, err, len))
		goto err;
	if (l7_config_load(wp->opts.configs, (size_t)wp->opts.n_configs, s->mesh, &s->l7, err, len))
		goto err;
	return s;
err:
	wp_snap_put(s);
	return NULL;
}

static int wp_ctl_listen(int port)
{
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = in6addr_any};
	int one = 1, zero = 0, fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	a.sin6_port = htons((uint16_t)port);
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 64)) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

static void wp_ctl_answer(struct wp *wp, int fd, bool metrics)
{
	char req[2048], *body = NULL, hdr[256];
	size_t blen = 0;
	FILE *f;
	ssize_t n;
	int code = 200;
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	if (poll(&pfd, 1, 1000) <= 0 || (n = read(fd, req, sizeof(req) - 1)) <= 0)
		return;
	req[n] = '\0';
	f = open_memstream(&body, &blen);
	if (!f)
		return;
	if (metrics && (strstr(req, "GET /metrics") || strstr(req, "GET /stats/prometheus"))) {
		wp_metrics_print(wp, f);
		fprintf(f,
			"# TYPE zmesh_waypoint_streams_total counter\n"
			"zmesh_waypoint_streams_total{protocol=\"http\"} %lu\n"
			"zmesh_waypoint_streams_total{protocol=\"http2\"} %lu\n"
			"zmesh_waypoint_streams_total{protocol=\"tcp\"} %lu\n",
			atomic_load(&wp->http_streams), atomic_load(&wp->h2_streams),
			atomic_load(&wp->tcp_streams));
	} else if (!metrics && strstr(req, "GET /healthz/ready")) {
		if (atomic_load(&wp->ready)) {
			fprintf(f, "ready\n");
		} else {
			code = 503;
			fprintf(f, "not ready\n");
		}
	} else {
		code = 404;
		fprintf(f, "not found\n");
	}
	fclose(f);
	snprintf(hdr, sizeof(hdr),
		 "HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\n"
		 "content-length: %zu\r\nconnection: close\r\n\r\n",
		 code, code == 200 ? "OK" : "Error", blen);
	if (write(fd, hdr, strlen(hdr)) >= 0 && blen && write(fd, body, blen) < 0)
		fprintf(stderr, "waypoint: control answer: %s\n", strerror(errno));
	free(body);
}

static time_t wp_configs_mtime(struct wp *wp)
{
	time_t t = 0;
	struct stat st;
	int i;

	if (!stat(wp->opts.mesh_config, &st))
		t = st.st_mtime ^ st.st_size;
	for (i = 0; i < wp->opts.n_configs; i++)
		if (!stat(wp->opts.configs[i], &st))
			t = t * 31 + (st.st_mtime ^ st.st_size) + st.st_mtim.tv_nsec;
	return t;
}

static void wp_reload(struct wp *wp)
{
	char *err = malloc(WP_ERRLEN);
	struct wp_snap *s, *old;

	if (!err)
		return;
	s = wp_snap_load(wp, err, WP_ERRLEN);
	if (!s) {
		fprintf(stderr, "waypoint: config reload refused, keeping the previous one:\n%s\n",
			err);
		free(err);
		return;
	}
	free(err);
	pthread_mutex_lock(&wp->snap_lock);
	old = wp->snap;
	wp->snap = s;
	pthread_mutex_unlock(&wp->snap_lock);
	wp_snap_put(old);
	fprintf(stderr,
		"waypoint: config reloaded: %zu VirtualService, %zu DestinationRule, "
		"%zu AuthorizationPolicy\n",
		s->l7->n_vs, s->l7->n_dr, s->l7->n_authz);
}

int wp_ctl_run(struct wp *wp)
{
	struct pollfd pfd[2];
	time_t mtime = wp_configs_mtime(wp);
	int i;

	pfd[0].fd = wp_ctl_listen(wp->opts.metrics_port);
	pfd[1].fd = wp_ctl_listen(wp->opts.ready_port);
	if (pfd[0].fd < 0 || pfd[1].fd < 0) {
		fprintf(stderr, "waypoint: cannot listen on %d/%d\n", wp->opts.metrics_port,
			wp->opts.ready_port);
		return -EADDRINUSE;
	}
	pfd[0].events = pfd[1].events = POLLIN;
	while (!wp_term) {
		time_t now_m;

		if (poll(pfd, 2, 500) > 0) {
			for (i = 0; i < 2; i++) {
				int fd;

				if (!(pfd[i].revents & POLLIN))
					continue;
				fd = accept4(pfd[i].fd, NULL, NULL, SOCK_CLOEXEC);
				if (fd < 0)
					continue;
				wp_ctl_answer(wp, fd, i == 0);
				close(fd);
			}
		}
		now_m = wp_configs_mtime(wp);
		if (wp_hup || now_m != mtime) {
			wp_hup = 0;
			mtime = now_m;
			wp_reload(wp);
		}
	}
	close(pfd[0].fd);
	close(pfd[1].fd);
	return 0;
}

static int wp_cert_select(void *ud, const struct zm_addr *local, struct zm_cert **out)
{
	struct wp *wp = ud;
	char err[256];

	(void)local; /* one identity: the waypoint's own, whatever address it was reached on */
	return zm_identity_get(wp->idp, wp->opts.identity, out, err, sizeof(err));
}

static int wp_identity_init(struct wp *wp, char *err, size_t len)
{
	struct zm_spiffe_id id;
	struct zm_tls_roots *roots;
	struct zm_cert *cert;
	struct zm_ca *ca;
	int ret;

	if (zm_spiffe_id_parse(wp->opts.identity, &id)) {
		snprintf(err, len, "--identity %s: want spiffe://TD/ns/NS/sa/SA",
			 wp->opts.identity);
		return -EINVAL;
	}
	ret = zm_ca_load(wp->opts.ca_dir, &ca, err, len);
	if (ret)
		return ret;
	snprintf(wp->trust_domain, sizeof(wp->trust_domain), "%s", zm_ca_trust_domain(ca));
	if (strcmp(id.trust_domain, wp->trust_domain)) {
		snprintf(err, len, "--identity %s is not in the CA's trust domain %s",
			 wp->opts.identity, wp->trust_domain);
		zm_ca_free(ca);
		return -EINVAL;
	}
	ret = zm_dev_provider_new(ca, 0, &wp->idp, err, len);
	if (ret) {
		zm_ca_free(ca);
		return ret;
	}
	ret = zm_identity_get(wp->idp, wp->opts.identity, &cert, err, len);
	if (ret)
		return ret;
	zm_cert_put(cert);
	roots = wp->idp->roots(wp->idp);
	ret = zm_tls_server_ctx_new(roots, wp->trust_domain, wp_cert_select, wp, &wp->tls_server,
				    err, len)
		  ?: zm_tls_client_ctx_new(roots, &wp->tls_client, err, len);
	zm_tls_roots_put(roots);
	return ret;
}

static void wp_usage(FILE *f)
{
	fprintf(f,
		"usage: waypoint --config ISTIO_YAML [--config ...] --mesh-config ZMESH_CONFIG\n"
		"                --identity spiffe://TD/ns/NS/sa/SA --ca-dir DIR [--netns PATH]\n"
		"                [--workers N] [--port 15008] [--metrics-port 15020]\n"
		"                [--ready-port 15021]\n"
		"       waypoint --check --config ISTIO_YAML ... --mesh-config ZMESH_CONFIG\n"
		"       waypoint --help | --version\n");
}

static void wp_on_signal(int sig)
{
	if (sig == SIGHUP)
		wp_hup = 1;
	else
		wp_term = 1;
}

static int wp_parse_opts(struct wp *wp, int argc, char **argv, bool *check)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"mesh-config", required_argument, NULL, 'm'},
	    {"identity", required_argument, NULL, 'i'},
	    {"ca-dir", required_argument, NULL, 'a'},
	    {"netns", required_argument, NULL, 'n'},
	    {"workers", required_argument, NULL, 'w'},
	    {"port", required_argument, NULL, 'p'},
	    {"metrics-port", required_argument, NULL, 'M'},
	    {"ready-port", required_argument, NULL, 'R'},
	    {"check", no_argument, NULL, 'k'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {0},
	};
	int c;

	wp->opts.port = 15008;
	wp->opts.metrics_port = 15020;
	wp->opts.ready_port = 15021;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (wp->opts.n_configs == 16)
				return 2;
			wp->opts.configs[wp->opts.n_configs++] = optarg;
			break;
		case 'm':
			wp->opts.mesh_config = optarg;
			break;
		case 'i':
			wp->opts.identity = optarg;
			break;
		case 'a':
			wp->opts.ca_dir = optarg;
			break;
		case 'n':
			wp->opts.netns = optarg;
			break;
		case 'w':
			wp->opts.workers = atoi(optarg);
			break;
		case 'p':
			wp->opts.port = atoi(optarg);
			break;
		case 'M':
			wp->opts.metrics_port = atoi(optarg);
			break;
		case 'R':
			wp->opts.ready_port = atoi(optarg);
			break;
		case 'k':
			*check = true;
			break;
		case 'h':
			wp_usage(stdout);
			exit(0);
		case 'V':
			printf("waypoint (zmesh) 0.2.0\n");
			exit(0);
		default:
			return 2;
		}
	}
	if (optind != argc || !wp->opts.mesh_config ||
	    (!*check && (!wp->opts.identity || !wp->opts.ca_dir)))
		return 2;
	return 0;
}

int main(int argc, char **argv)
{
	static struct wp wp;
	char *err = calloc(1, WP_ERRLEN);
	bool check = false;
	long ncpu;

	wp_g = &wp;
	if (!err)
		return 1;
	if (wp_parse_opts(&wp, argc, argv, &check)) {
		wp_usage(stderr);
		return 2;
	}
	/* setns() first: every thread and socket must live in the pod's namespace. */
	if (wp.opts.netns && zm_netns_enter(wp.opts.netns, err, WP_ERRLEN)) {
		fprintf(stderr, "waypoint: %s\n", err);
		return 1;
	}
	pthread_mutex_init(&wp.snap_lock, NULL);
	pthread_mutex_init(&wp.m_lock, NULL);
	wp.stats = calloc(1, sizeof(*wp.stats));
	if (!wp.stats)
		return 1;
	pthread_mutex_init(&wp.stats->lock, NULL);
	wp.snap = wp_snap_load(&wp, err, WP_ERRLEN);
	if (!wp.snap) {
		fprintf(stderr, "%s", err);
		return 1;
	}
	if (check) {
		printf("ok: %zu VirtualService, %zu DestinationRule, %zu AuthorizationPolicy\n",
		       wp.snap->l7->n_vs, wp.snap->l7->n_dr, wp.snap->l7->n_authz);
		free(err);
		return 0;
	}
	if (wp_identity_init(&wp, err, WP_ERRLEN)) {
		fprintf(stderr, "waypoint: identity: %s\n", err);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, wp_on_signal);
	signal(SIGTERM, wp_on_signal);
	signal(SIGINT, wp_on_signal);
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	wp.n_workers = wp.opts.workers > 0 ? wp.opts.workers : (int)(ncpu > 0 ? ncpu : 1);
	if (wp.n_workers > WP_MAX_WORKERS)
		wp.n_workers = WP_MAX_WORKERS;
	if (wp_workers_start(&wp))
		return 1;
	atomic_store(&wp.ready, true);
	fprintf(stderr, "waypoint: %s serving HBONE on %d with %d workers\n", wp.opts.identity,
		wp.opts.port, wp.n_workers);
	wp_ctl_run(&wp);
	atomic_store(&wp.stop, true);
	wp_workers_join(&wp);
	free(wp.stats);
	free(err);
	return 0;
}
