// SPDX-License-Identifier: Apache-2.0
/*
 * waypoint: the L7 proxy of zmesh. Terminates HBONE on 15008 with its own workload identity,
 * applies Istio VirtualService / DestinationRule / AuthorizationPolicy (lib/l7) to HTTP/1.1
 * and HTTP/2 inside each tunnel (other bytes are relayed as plain TCP), and originates HBONE to
 * the chosen endpoint pods. This file: options, the network namespace, identity and TLS
 * contexts, config reload on SIGHUP or a changed file (snap.c) or from the Kubernetes API
 * (kube_source.c), and the admin routes: admin
 * (15000, 127.0.0.1 only:
 * /config_dump, /logging, /quitquitquit), Prometheus metrics (15020) and readiness (15021),
 * served by lib/obs's responder on its own thread. Upgrades in place (--handover, rt/handover.h)
 * and SIGTERM drain (rt/drain.h) as ztunnel does them.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cliopt.h"
#include "common/heap.h"
#include "common/netns.h"
#include "common/version.h"
#include "obs/admin.h"
#include "obs/log.h"
#include "rt/handover.h"
#include "tls/tls.h"
#include "zmesh/ports.h"
#include "pick.h"

#define WP_ERRLEN  8192
#define WP_POLL_MS 500 /* config files' mtimes are looked at this often */

static void wp_h_config_dump(void *ud, const struct obs_http_req *rq, struct obs_http_resp *rs)
{
	struct wp *wp = ud;
	struct wp_snap *sn = wp_snap_get(wp);
	char *kube = wp_kube_dump();

	(void)rq;
	obs_http_text(rs, 200,
		      "{\"identity\": \"%s\", \"workers\": %d, \"virtual_services\": %zu, "
		      "\"destination_rules\": %zu, \"authorization_policies\": %zu, "
		      "\"gateway_routes\": %zu, \"workloads\": %zu, \"services\": %zu, "
		      "\"kubernetes\": %s}\n",
		      wp->opts.identity, wp->n_workers, sn->l7->n_vs, sn->l7->n_dr, sn->l7->n_authz,
		      sn->l7->n_gw, sn->mesh->n_workloads, sn->mesh->n_services,
		      kube ? kube : "null");
	rs->ctype = "application/json";
	free(kube);
	wp_snap_put(sn);
}

static void wp_quit(void *ud)
{
	struct wp *wp = ud;

	rt_control_stop(&wp->control);
}

static struct obs_admin *wp_admin; /* the control loop's; NULL once handed over */

static void wp_drain_unready(void *ud)
{
	struct wp *wp = ud;

	atomic_store(&wp->ready, false);
}

static unsigned int wp_drain_left(void *ud, char *what, size_t len)
{
	struct wp *wp = ud;
	int in = atomic_load(&wp->n_inbound);

	snprintf(what, len, "%d HBONE connections from clients", in);
	return in > 0 ? (unsigned int)in : 0;
}

/* A newer waypoint serves on our sockets (the admin ports too: it answers probes now). */
static void wp_handed_over(void *ud)
{
	struct wp *wp = ud;

	obs_admin_free(wp_admin);
	wp_admin = NULL;
	rt_drain_handed_over(&wp->drain, "handed over to a newer waypoint");
}

/* Before any socket is made: take over from the waypoint serving on --handover, or start. */
static int wp_handover_begin(struct wp *wp, char *err, size_t len)
{
	pid_t old = 0;

	if (wp->opts.handover && !strcmp(wp->opts.handover, "none"))
		wp->opts.handover = NULL;
	if (rt_handover_begin(wp->opts.handover, "waypoint", &old, err, len)) {
		obs_log(OBS_ERROR, "waypoint", "%s", err);
		return 1;
	}
	if (old)
		obs_log(OBS_INFO, "waypoint",
			"taking over from the waypoint running as pid %d (%s)", (int)old,
			wp->opts.handover);
	return 0;
}

/* Serving now: the old waypoint (if any) stops accepting; SIGTERM drains from now on. */
static void wp_handover_commit(struct wp *wp)
{
	const struct rt_handover_ops ops = {.release = wp_handed_over, .ud = wp};
	const struct rt_drain_ops dops = {
	    .unready = wp_drain_unready, .left = wp_drain_left, .ud = wp};
	char err[512];

	rt_drain_init(&wp->drain, "waypoint", &wp->control, &wp->rt, wp->opts.drain_timeout_s,
		      "TERMINATION_DRAIN_DURATION_SECONDS", &dops);
	rt_drain_attach(&wp->drain);
	/* Keep serving either way: the inherited sockets are ours, dropping them would cut. */
	if (rt_handover_commit(&wp->control.loop, &ops, err, sizeof(err)))
		obs_log(OBS_WARN, "waypoint", "%s; no hand-over to a later waypoint possible", err);
}

static struct obs_admin *wp_admin_start(struct wp *wp)
{
	struct obs_admin *a = obs_admin_standard(wp->opts.admin_port, wp->opts.metrics_port,
						 wp->opts.ready_port, &wp->ready, wp_quit, wp);
	int r;

	if (!a)
		return NULL;
	r = obs_admin_route(a, OBS_PORT_ADMIN, "/config_dump", OBS_GET, wp_h_config_dump, wp)
		?: obs_admin_start(a);
	if (r) {
		obs_admin_free(a);
		return NULL;
	}
	return a;
}

static time_t wp_configs_mtime(struct wp *wp)
{
	time_t t = 0;
	struct stat st;
	int i;

	if (wp->opts.mesh_config && !stat(wp->opts.mesh_config, &st))
		t = st.st_mtime ^ st.st_size;
	for (i = 0; i < wp->opts.n_configs; i++)
		if (!stat(wp->opts.configs[i], &st))
			t = t * 31 + (st.st_mtime ^ st.st_size) + st.st_mtim.tv_nsec;
	return t;
}

static void wp_control_hup(struct rt_control *c)
{
	struct wp *wp = c->ud;

	wp->cfg_mtime = wp_configs_mtime(wp);
	wp_snap_reload(wp);
}

/* A changed file reloads as SIGHUP does. */
static void wp_control_poll(struct rt_control *c)
{
	struct wp *wp = c->ud;
	time_t m = wp_configs_mtime(wp);

	if (m == wp->cfg_mtime)
		return;
	wp->cfg_mtime = m;
	wp_snap_reload(wp);
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
	fprintf(
	    f,
	    "usage: waypoint --config ISTIO_YAML [--config ...] --mesh-config ZMESH_CONFIG\n"
	    "                --identity spiffe://TD/ns/NS/sa/SA --ca-dir DIR [--netns PATH]\n"
	    "       waypoint --kube [--kube-sa-dir DIR] | --kubeconfig FILE  [--config ...]\n"
	    "                --identity spiffe://TD/ns/NS/sa/SA --ca-dir DIR [OPTIONS]\n"
	    "                [--workers N] [--port 15008] [--admin-port 15000]\n"
	    "                [--metrics-port 15020] [--ready-port 15021]\n"
	    "                [--request-head-timeout 30s] [--idle-timeout 60s]\n"
	    "                [--handover PATH|none] [--drain-timeout SECONDS]\n"
	    "                [--log-format logfmt|json] [--log-level SPEC]\n"
	    "       waypoint --check --config ISTIO_YAML ... --mesh-config ZMESH_CONFIG\n"
	    "       waypoint --help | --version\n"
	    "\n"
	    "--kube (in a pod: its service account) or --kubeconfig FILE: the mesh (Pods,\n"
	    "Namespaces, Services, EndpointSlices) from the Kubernetes API instead of\n"
	    "--mesh-config, and VirtualServices, DestinationRules, AuthorizationPolicies,\n"
	    "HTTPRoutes, GRPCRoutes and Gateways watched through their CRDs, with any --config\n"
	    "files loaded beside them; changes apply live, an object refused is logged and\n"
	    "its last good version kept.\n"
	    "--request-head-timeout: an HTTP/1 request head not complete by then is answered\n"
	    "408 and its connection closed; --idle-timeout: a connection without a request in\n"
	    "flight that long is closed (0 turns either off).\n"
	    "--handover PATH: a new waypoint started with the same PATH takes over the\n"
	    "listening sockets of the running one, which stops accepting and drains, so an\n"
	    "upgrade in place drops no connection (default: none).\n"
	    "SIGTERM drains: no longer accepting, GOAWAY on HBONE and HTTP/2, \"connection:\n"
	    "close\" on HTTP/1, exit when the last client connection closes or after\n"
	    "--drain-timeout SECONDS (0: no limit; default after a hand-over: no limit; on\n"
	    "SIGTERM: TERMINATION_DRAIN_DURATION_SECONDS, else TERMINATION_GRACE_PERIOD_SECONDS\n"
	    "less 5, else 5). A second SIGTERM cuts what is left.\n"
	    "--log-format: logfmt (default) or json, for every line. --log-level: LEVEL or\n"
	    "SCOPE:LEVEL[,...] (error warn info debug trace off; scopes: waypoint access\n"
	    "hbone http h2 mirror upstream config identity admin rt kube); POST\n"
	    "/logging?level=SPEC on the admin port (127.0.0.1:15000) changes it at run time.\n");
}

#define WP_USAGE_LINE                                                                              \
	"waypoint --config ISTIO_YAML --mesh-config FILE --identity SPIFFE_ID --ca-dir DIR "       \
	"[OPTIONS]"

/* A duration "30s", "500ms", "2m" or plain milliseconds; 0 turns the timeout off. */
static int wp_opt_duration(const char *prog, const char *opt, const char *arg, uint32_t *out_ms)
{
	char *end;
	double x = strtod(arg, &end), mul = 1;

	if (!strcmp(end, "s"))
		mul = 1000;
	else if (!strcmp(end, "m"))
		mul = 60000;
	else if (strcmp(end, "ms") && *end)
		end = NULL;
	if (end == arg || !end || x < 0 || x * mul > 86400000.0) {
		fprintf(stderr, "%s: %s: \"%s\" is not a duration (like 30s, 500ms, 0 for none)\n",
			prog, opt, arg);
		return 1;
	}
	*out_ms = (uint32_t)(x * mul + 0.5);
	return 0;
}

static int wp_parse_opts(struct wp *wp, int argc, char **argv, bool *check)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"mesh-config", required_argument, NULL, 'm'},
	    {"kube", no_argument, NULL, 'K'},
	    {"kubeconfig", required_argument, NULL, 'C'},
	    {"kube-sa-dir", required_argument, NULL, 'S'},
	    {"identity", required_argument, NULL, 'i'},
	    {"ca-dir", required_argument, NULL, 'a'},
	    {"netns", required_argument, NULL, 'n'},
	    {"workers", required_argument, NULL, 'w'},
	    {"port", required_argument, NULL, 'p'},
	    {"metrics-port", required_argument, NULL, 'M'},
	    {"ready-port", required_argument, NULL, 'R'},
	    {"admin-port", required_argument, NULL, 'A'},
	    {"request-head-timeout", required_argument, NULL, 'H'},
	    {"idle-timeout", required_argument, NULL, 'I'},
	    {"handover", required_argument, NULL, 'O'},
	    {"drain-timeout", required_argument, NULL, 'D'},
	    OBS_LOG_OPTIONS,
	    {"check", no_argument, NULL, 'k'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {0},
	};
	const char *p = "waypoint";
	int c, bad = 0;

	wp->opts.port = ZM_PORT_HBONE;
	wp->opts.admin_port = ZM_PORT_ADMIN;
	wp->opts.metrics_port = ZM_PORT_METRICS;
	wp->opts.ready_port = ZM_PORT_READY;
	wp->opts.head_timeout_ms = WP_HEAD_TIMEOUT_MS;
	wp->opts.idle_timeout_ms = WP_IDLE_TIMEOUT_MS;
	wp->opts.drain_timeout_s = -1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (wp->opts.n_configs == 16) {
				fprintf(stderr, "waypoint: --config %s: at most 16 files\n",
					optarg);
				return 2;
			}
			wp->opts.configs[wp->opts.n_configs++] = optarg;
			break;
		case 'm':
			wp->opts.mesh_config = optarg;
			break;
		case 'K':
			wp->opts.kube = true;
			break;
		case 'C':
			wp->opts.kubeconfig = optarg;
			break;
		case 'S':
			wp->opts.kube_sa_dir = optarg;
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
			bad |= zm_opt_int(p, "--workers", optarg, 1, WP_MAX_WORKERS,
					  &wp->opts.workers);
			break;
		case 'p':
			bad |= zm_opt_int(p, "--port", optarg, 1, 65535, &wp->opts.port);
			break;
		case 'A':
			bad |=
			    zm_opt_int(p, "--admin-port", optarg, 1, 65535, &wp->opts.admin_port);
			break;
		case 'M':
			bad |= zm_opt_int(p, "--metrics-port", optarg, 1, 65535,
					  &wp->opts.metrics_port);
			break;
		case 'R':
			bad |=
			    zm_opt_int(p, "--ready-port", optarg, 1, 65535, &wp->opts.ready_port);
			break;
		case 'H':
			bad |= wp_opt_duration(p, "--request-head-timeout", optarg,
					       &wp->opts.head_timeout_ms);
			break;
		case 'I':
			bad |=
			    wp_opt_duration(p, "--idle-timeout", optarg, &wp->opts.idle_timeout_ms);
			break;
		case 'O':
			wp->opts.handover = optarg;
			break;
		case 'D':
			bad |= zm_opt_int(p, "--drain-timeout", optarg, 0, 86400,
					  &wp->opts.drain_timeout_s);
			break;
		case 'k':
			*check = true;
			break;
		case 'h':
			wp_usage(stdout);
			exit(0);
		case 'V':
			zm_version_print(stdout, "waypoint");
			exit(0);
		default:
			if (obs_log_getopt(p, c, optarg, argv))
				return 2;
			break;
		}
	}
	if (bad)
		return 2;
	if (optind != argc) {
		fprintf(stderr, "waypoint: unexpected argument \"%s\" (options only)\n",
			argv[optind]);
		return 2;
	}
	if (wp_kube_enabled(wp) && wp->opts.mesh_config) {
		fprintf(stderr, "waypoint: --mesh-config and --kube/--kubeconfig: the API is the "
				"mesh model, give one or the other\n");
		return 2;
	}
	if (wp->opts.kube && wp->opts.kubeconfig) {
		fprintf(stderr, "waypoint: --kube and --kubeconfig: give one\n");
		return 2;
	}
	if ((!wp->opts.mesh_config && !wp_kube_enabled(wp)) ||
	    (!*check && (!wp->opts.identity || !wp->opts.ca_dir))) {
		fprintf(stderr, "waypoint: --mesh-config (or --kube)%s required\n",
			*check ? " is" : ", --identity and --ca-dir are");
		return 2;
	}
	return 0;
}

static const char *const wp_log_scopes[] = {"access", "hbone",	  "http",   "h2",
					    "mirror", "upstream", "config", "identity",
					    "admin",  "rt",	  "kube",   NULL};

/* Who the waypoint is, for routes that name the proxy (sourceLabels, sourceNamespace). */
static void wp_self_init(struct wp *wp)
{
	struct zm_spiffe_id id;

	if (!wp->opts.identity || zm_spiffe_id_parse(wp->opts.identity, &id))
		return;
	snprintf(wp->self_ns, sizeof(wp->self_ns), "%s", id.ns);
	snprintf(wp->self_sa, sizeof(wp->self_sa), "%s", id.sa);
}

int main(int argc, char **argv)
{
	static struct wp wp;
	static char err[WP_ERRLEN];
	bool check = false;
	uint64_t nofile = 0;

	wp_g = &wp;
	zm_heap_init();
	obs_log_init("waypoint", wp_log_scopes);
	if (wp_parse_opts(&wp, argc, argv, &check))
		return zm_opt_usage("waypoint", WP_USAGE_LINE);
	/* setns() first: every thread and socket must live in the pod's namespace. */
	if (wp.opts.netns && zm_netns_enter(wp.opts.netns, err, WP_ERRLEN)) {
		obs_log(OBS_ERROR, "waypoint", "%s", err);
		return 1;
	}
	/* Before any thread: signals go to the control loop's signalfd. */
	if (rt_control_init(&wp.control, WP_POLL_MS, wp_control_hup, wp_control_poll, &wp)) {
		obs_log(OBS_ERROR, "waypoint", "control loop: %s", strerror(errno));
		return 1;
	}
	pthread_mutex_init(&wp.snap_lock, NULL);
	wp_self_init(&wp);
	wp.stats = calloc(1, sizeof(*wp.stats));
	if (!wp.stats)
		return 1;
	pthread_mutex_init(&wp.stats->lock, NULL);
	if (wp_kube_enabled(&wp) && wp_kube_start(&wp, err, WP_ERRLEN)) {
		obs_log(OBS_ERROR, "kube", "%s", err);
		return 1;
	}
	wp.snap = wp_snap_load(&wp, err, WP_ERRLEN);
	if (!wp.snap) {
		if (check)
			fprintf(stderr, "%s", err);
		else
			obs_log(OBS_ERROR, "config", "%s", err);
		return 1;
	}
	if (check) {
		wp_kube_stop();
		printf("ok: %zu VirtualService, %zu DestinationRule, %zu AuthorizationPolicy, "
		       "%zu HTTPRoute/GRPCRoute\n",
		       wp.snap->l7->n_vs, wp.snap->l7->n_dr, wp.snap->l7->n_authz,
		       wp.snap->l7->n_gw);
		return 0;
	}
	if (wp_identity_init(&wp, err, WP_ERRLEN)) {
		obs_log(OBS_ERROR, "identity", "identity: %s", err);
		return 1;
	}
	if (wp_handover_begin(&wp, err, WP_ERRLEN))
		return 1;
	if (rt_nofile_raise(&nofile))
		obs_log(OBS_WARN, "waypoint", "raising RLIMIT_NOFILE failed: %llu descriptors",
			(unsigned long long)nofile);
	wp.n_workers = wp.opts.workers > 0 ? wp.opts.workers : rt_workers_default();
	if (wp_metrics_init(&wp) || rt_workers_start(&wp.rt, wp.n_workers, wp_worker_init, &wp))
		return 1;
	wp.n_workers = wp.rt.n;
	wp_admin = wp_admin_start(&wp);
	if (!wp_admin) {
		rt_handover_fini(&wp.control.loop);
		rt_workers_stop(&wp.rt);
		return 1;
	}
	wp_handover_commit(&wp);
	if (wp_kube_enabled(&wp) && wp_kube_watch())
		return 1;
	atomic_store(&wp.ready, true);
	obs_log(OBS_INFO, "waypoint", "%s serving HBONE on %d with %d workers", wp.opts.identity,
		wp.opts.port, wp.n_workers);
	wp.cfg_mtime = wp_configs_mtime(&wp);
	rt_control_run(&wp.control);
	atomic_store(&wp.ready, false);
	atomic_store(&wp.stop, true);
	obs_admin_free(wp_admin);
	wp_admin = NULL;
	rt_handover_fini(&wp.control.loop);
	rt_workers_stop(&wp.rt);
	wp_kube_stop();
	rt_control_fini(&wp.control);
	free(wp.stats);
	return 0;
}
