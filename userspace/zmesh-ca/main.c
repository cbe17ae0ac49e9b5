// SPDX-License-Identifier: Apache-2.0
/*
 * zmesh-ca: signs workload certificates over Istio's certificate API
 * (istio.v1.auth.IstioCertificateService/CreateCertificate, gRPC over HTTP/2 over mutual TLS)
 * with a CA directory written by `zmeshctl ca init`, for nodes authenticated by certificates
 * from `zmesh-ca issue-node`. Entry point: options, then the runtime's workers (lib/rt), each
 * with its own SO_REUSEPORT listener, serving connections on its event loop within the bounds
 * of ca.h (deadlines per phase, --max-conns, --max-conns-per-peer), and optionally Prometheus
 * metrics on --metrics-port (lib/obs). Exit status: 0 after SIGTERM/SIGINT, 1 on a startup
 * error, 2 on usage.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ca.h"
#include "caclient/caclient.h"
#include "common/addr.h"
#include "common/cliopt.h"
#include "common/heap.h"
#include "common/version.h"
#include "obs/admin.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "obs/process.h"
#include "rt/control.h"
#include "rt/workers.h"

static void zca_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: zmesh-ca [serve] --dir CADIR (--config FILE | --kube | --kubeconfig FILE)\n"
	    "                [--listen HOST:PORT]\n"
	    "                [--default-ttl S] [--max-ttl S] [--workers N]\n"
	    "                [--max-conns N] [--max-conns-per-peer N] [--handshake-timeout-ms MS]\n"
	    "                [--request-timeout-ms MS] [--idle-timeout-ms MS] [--metrics-port P]\n"
	    "                [--node-account SPIFFE-ID] [--tokens FILE] [--log-format "
	    "logfmt|json]\n"
	    "                [--log-level SPEC]\n"
	    "       zmesh-ca issue-node --dir CADIR --out DIR --node NAME [--lifetime S]\n"
	    "       zmesh-ca --help | --version\n"
	    "\n"
	    "serve: CreateCertificate on HOST:PORT (default 127.0.0.1:%d; port 0 picks one,\n"
	    "logged as \"listening on\"). A caller authenticates with a node certificate; it gets\n"
	    "an identity only when FILE (ztunnel's local config) has a workload with that\n"
	    "identity and `node: <its CN>`; with --kube (in a pod) or --kubeconfig FILE, only\n"
	    "while a pod of that namespace and service account runs on that node (Kubernetes\n"
	    "API: list and watch of pods and namespaces). TTL defaults: 86400 s, max 7 days.\n"
	    "--tokens FILE: also accept `authorization: Bearer TOKEN` (istiod's form) from\n"
	    "clients without a certificate; FILE lines are \"TOKEN NODE\", the caller then\n"
	    "counts as NODE's node account (ImpersonatedIdentity asks for a workload).\n"
	    "Bounds: at most --max-conns connections (default %d) and --max-conns-per-peer\n"
	    "from one source address (default %d); a TLS handshake must finish within\n"
	    "--handshake-timeout-ms (default %d), a request be answered within\n"
	    "--request-timeout-ms of its start (default %d), and a connection without a\n"
	    "request start one within --idle-timeout-ms (default %d). When every slot is\n"
	    "taken, a connection waiting in its handshake or idle makes room (of the address\n"
	    "with the most connections open, the one waiting longest).\n"
	    "--metrics-port P: Prometheus /metrics on P (istiod's is 15014; default off).\n"
	    "issue-node: write DIR/node-cert.pem (CN=NAME, URI SAN the node account\n"
	    "spiffe://TD/ns/istio-system/sa/ztunnel), DIR/node-key.pem (0600) and "
	    "DIR/ca-cert.pem:\n"
	    "what `ztunnel --ca-addr HOST:PORT --ca-dir DIR` needs.\n",
	    ZM_CA_PORT_DEFAULT, ZCA_MAX_CONNS_DEFAULT, ZCA_PEER_CONNS_DEFAULT,
	    ZCA_HANDSHAKE_MS_DEFAULT, ZCA_REQUEST_MS_DEFAULT, ZCA_IDLE_MS_DEFAULT);
}

struct zca_serve {
	struct zca *z;
	struct sockaddr_storage ss;
	socklen_t sl;
	struct rt_listener lis[RT_MAX_WORKERS];
};

static void zca_accept(struct rt_loop *l, struct rt_listener *li, int fd)
{
	zca_conn_accept(li->ud, l, fd);
}

/* Per worker: a listener of the SO_REUSEPORT group on the --listen address. */
static int zca_worker_init(struct rt_worker *w, void *ud)
{
	struct zca_serve *sv = ud;
	struct rt_listen_opts o = {
	    .family = sv->ss.ss_family,
	    .addr = sv->ss.ss_family == AF_INET
			? (const void *)&((struct sockaddr_in *)&sv->ss)->sin_addr
			: (const void *)&((struct sockaddr_in6 *)&sv->ss)->sin6_addr,
	    .port = ntohs(((struct sockaddr_in *)&sv->ss)->sin_port),
	    .backlog = 128,
	    .reuseport = true,
	    .v6only = true};
	int fd = rt_listen(&o);

	if (fd < 0)
		return fd;
	zca_worker_setup(sv->z, w);
	if (!o.port) {
		/* Port 0: the first worker's pick is every worker's port. */
		struct sockaddr_storage b;
		socklen_t bl = sizeof(b);

		if (!getsockname(fd, (struct sockaddr *)&b, &bl))
			((struct sockaddr_in *)&sv->ss)->sin_port =
			    ((struct sockaddr_in *)&b)->sin_port;
	}
	return rt_listener_start(&w->loop, &sv->lis[w->id], fd, "CA listener", zca_accept, sv->z);
}

/* --metrics-port: /metrics and /stats/prometheus on every address. NULL (logged) on failure. */
static struct obs_admin *zca_metrics_start(int port)
{
	struct obs_admin *a = obs_admin_new();

	if (!a || obs_process_metrics(obs_metrics(), "zmesh-ca") ||
	    obs_admin_listen(a, OBS_PORT_METRICS, port, false) ||
	    obs_admin_add_metrics(a, OBS_PORT_METRICS) || obs_admin_start(a)) {
		obs_log(OBS_ERROR, "ca", "--metrics-port %d: cannot serve metrics", port);
		obs_admin_free(a);
		return NULL;
	}
	obs_log(OBS_INFO, "ca", "metrics on port %d", obs_admin_bound_port(a, OBS_PORT_METRICS));
	return a;
}

static int zca_serve(struct zca *z, const char *addr, int workers, int metrics_port)
{
	static struct zca_serve sv;
	struct obs_admin *adm = NULL;
	struct rt_control ctl = {0};
	struct rt_workers ws;
	char err[512], text[ZM_ADDR_STRLEN];
	struct zm_addr a;
	unsigned int port;
	int r;

	sv.z = z;
	sv.sl = sizeof(sv.ss);
	if (zm_caclient_addr_parse(addr, &sv.ss, &sv.sl)) {
		obs_log(OBS_ERROR, "ca", "--listen %s: want HOST:PORT", addr);
		return 1;
	}
	if (zca_ssl_ctx_init(z, err, sizeof(err))) {
		obs_log(OBS_ERROR, "ca", "%s", err);
		return 1;
	}
	if (zca_limits_init(z)) {
		obs_log(OBS_ERROR, "ca", "out of memory");
		return 1;
	}
	if (rt_control_init(&ctl, 0, NULL, NULL, z))
		return 1;
	if (metrics_port >= 0) {
		adm = zca_metrics_start(metrics_port);
		if (!adm) {
			rt_control_fini(&ctl);
			return 1;
		}
	}
	r = rt_workers_start(&ws, workers, zca_worker_init, &sv);
	if (r) {
		obs_log(OBS_ERROR, "ca", "listening on %s: %s", addr, strerror(-r));
		obs_admin_free(adm);
		rt_control_fini(&ctl);
		return 1;
	}
	zm_addr_from_sockaddr((struct sockaddr *)&sv.ss, &a, &port);
	obs_log(OBS_INFO, "ca", "listening on %s",
		zm_addr_port_format(&a, port, text, sizeof(text)));
	obs_log(OBS_INFO, "ca", "trust domain %s, node account %s, config %s, %d workers", z->td,
		z->node_account, z->config_path ? z->config_path : "(Kubernetes API)", ws.n);
	obs_log(OBS_INFO, "ca",
		"limits: %d connections, %d per peer; deadlines: handshake %d ms, request %d ms, "
		"idle %d ms",
		z->max_conns, z->peer_conns, z->handshake_ms, z->request_ms, z->idle_ms);
	rt_control_run(&ctl);
	rt_workers_stop(&ws);
	obs_admin_free(adm);
	rt_control_fini(&ctl);
	return 0;
}

static const char *const zca_log_scopes[] = {"ca", "rpc", "config", "rt", "kube", NULL};

struct zca_opts {
	const char *cmd, *dir, *config, *listen, *out, *node;
	const char *kubeconfig; /* --kubeconfig FILE; NULL with --kube: in-cluster settings */
	bool kube;		/* --kube or --kubeconfig: the API instead of --config */
	long dttl, mttl, conns, life;
	int workers, metrics_port; /* metrics_port -1: none */
	char listen_default[32];
};

/* Options without a short form. */
enum {
	O_PEER_CONNS = 0x100,
	O_HANDSHAKE_MS,
	O_REQUEST_MS,
	O_IDLE_MS,
	O_METRICS_PORT,
	O_KUBE,
	O_KUBECONFIG,
};

/* The value checks: each names the option and its value. 0, or -EINVAL (printed). */
static int zca_opt_value(struct zca *z, struct zca_opts *o, int c, char *const *argv)
{
	const char *p = "zmesh-ca";
	const long year = 365 * 86400;

	switch (c) {
	case 'd':
		return zm_opt_long(p, "--default-ttl", optarg, 1, 10 * year, &o->dttl);
	case 'm':
		return zm_opt_long(p, "--max-ttl", optarg, 1, 10 * year, &o->mttl);
	case 'C':
		return zm_opt_long(p, "--max-conns", optarg, 1, 4096, &o->conns);
	case 'W':
		return zm_opt_int(p, "--workers", optarg, 1, RT_MAX_WORKERS, &o->workers);
	case O_PEER_CONNS:
		return zm_opt_int(p, "--max-conns-per-peer", optarg, 1, 4096, &z->peer_conns);
	case O_HANDSHAKE_MS:
		return zm_opt_int(p, "--handshake-timeout-ms", optarg, 100, 600000,
				  &z->handshake_ms);
	case O_REQUEST_MS:
		return zm_opt_int(p, "--request-timeout-ms", optarg, 100, 600000, &z->request_ms);
	case O_IDLE_MS:
		return zm_opt_int(p, "--idle-timeout-ms", optarg, 100, 86400000, &z->idle_ms);
	case O_METRICS_PORT:
		return zm_opt_int(p, "--metrics-port", optarg, 0, 65535, &o->metrics_port);
	case 'f':
		return zm_opt_long(p, "--lifetime", optarg, -299, 10 * year, &o->life);
	case 'a':
		snprintf(z->node_account, sizeof(z->node_account), "%s", optarg);
		if (!zm_spiffe_id_parse(optarg, NULL))
			return 0;
		fprintf(stderr,
			"zmesh-ca: --node-account: \"%s\" is not a SPIFFE id "
			"(spiffe://TD/ns/NS/sa/SA)\n",
			optarg);
		return -EINVAL;
	}
	return obs_log_getopt(p, c, optarg, argv);
}

/* What is missing or extra once the options are read. 0 or -EINVAL (printed). */
static int zca_opts_check(const struct zca_opts *o, int argc, char **argv)
{
	bool serve = !strcmp(o->cmd, "serve");

	if (!serve && strcmp(o->cmd, "issue-node"))
		fprintf(stderr, "zmesh-ca: unknown command \"%s\" (serve or issue-node)\n", o->cmd);
	else if (optind != argc)
		fprintf(stderr, "zmesh-ca: unexpected argument \"%s\"\n", argv[optind]);
	else if (!o->dir || (serve && !o->config == !o->kube) || (!serve && (!o->out || !o->node)))
		fprintf(stderr, "zmesh-ca: %s needs --dir%s\n", o->cmd,
			serve ? " and one of --config, --kube, --kubeconfig"
			      : ", --out and --node");
	else
		return 0;
	return -EINVAL;
}

/* 0 to run, else the exit status (usage printed, or --help/--version done). */
static int zca_parse_opts(struct zca *z, struct zca_opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"dir", required_argument, NULL, 'D'},
	    {"config", required_argument, NULL, 'c'},
	    {"listen", required_argument, NULL, 'l'},
	    {"default-ttl", required_argument, NULL, 'd'},
	    {"max-ttl", required_argument, NULL, 'm'},
	    {"max-conns", required_argument, NULL, 'C'},
	    {"max-conns-per-peer", required_argument, NULL, O_PEER_CONNS},
	    {"handshake-timeout-ms", required_argument, NULL, O_HANDSHAKE_MS},
	    {"request-timeout-ms", required_argument, NULL, O_REQUEST_MS},
	    {"idle-timeout-ms", required_argument, NULL, O_IDLE_MS},
	    {"metrics-port", required_argument, NULL, O_METRICS_PORT},
	    {"node-account", required_argument, NULL, 'a'},
	    {"out", required_argument, NULL, 'o'},
	    {"node", required_argument, NULL, 'n'},
	    {"lifetime", required_argument, NULL, 'f'},
	    {"workers", required_argument, NULL, 'W'},
	    {"tokens", required_argument, NULL, 'T'},
	    {"kube", no_argument, NULL, O_KUBE},
	    {"kubeconfig", required_argument, NULL, O_KUBECONFIG},
	    OBS_LOG_OPTIONS,
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {0}};
	int c, bad = 0;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		switch (c) {
		case 'D':
			o->dir = optarg;
			break;
		case 'c':
			o->config = optarg;
			break;
		case 'l':
			o->listen = optarg;
			break;
		case 'o':
			o->out = optarg;
			break;
		case 'n':
			o->node = optarg;
			break;
		case 'T':
			z->tokens_path = optarg;
			break;
		case O_KUBE:
			o->kube = true;
			break;
		case O_KUBECONFIG:
			o->kubeconfig = optarg;
			o->kube = true;
			break;
		case 'h':
			zca_usage(stdout);
			return -1;
		case 'V':
			zm_version_print(stdout, "zmesh-ca");
			return -1;
		default:
			bad |= zca_opt_value(z, o, c, argv) ? 1 : 0;
		}
	}
	if (bad || zca_opts_check(o, argc, argv))
		return zm_opt_usage("zmesh-ca", "zmesh-ca [serve] --dir CADIR (--config FILE | "
						"--kube | --kubeconfig FILE) [OPTIONS] | zmesh-ca "
						"issue-node --dir CADIR --out DIR --node NAME");
	return 0;
}

int main(int argc, char **argv)
{
	static struct zca z;
	struct zca_opts o = {.cmd = "serve",
			     .dttl = 86400,
			     .mttl = 7 * 86400,
			     .conns = ZCA_MAX_CONNS_DEFAULT,
			     .metrics_port = -1,
			     .life = 365 * 86400};
	char err[1024];
	int r;

	if (argc > 1 && argv[1][0] != '-') {
		o.cmd = argv[1];
		argv++;
		argc--;
	}
	zm_heap_init();
	obs_log_init("zmesh-ca", zca_log_scopes);
	z.peer_conns = ZCA_PEER_CONNS_DEFAULT;
	z.handshake_ms = ZCA_HANDSHAKE_MS_DEFAULT;
	z.request_ms = ZCA_REQUEST_MS_DEFAULT;
	z.idle_ms = ZCA_IDLE_MS_DEFAULT;
	r = zca_parse_opts(&z, &o, argc, argv);
	if (r)
		return r < 0 ? 0 : r;
	z.default_ttl = o.dttl > o.mttl ? o.mttl : o.dttl;
	z.max_ttl = o.mttl;
	z.max_conns = (int)o.conns;
	signal(SIGPIPE, SIG_IGN);
	if (zca_load(&z, o.dir, o.config, err, sizeof(err))) {
		obs_log(OBS_ERROR, "ca", "%s", err);
		return 1;
	}
	if (!strcmp(o.cmd, "issue-node")) {
		r = zca_issue_node(&z, o.out, o.node, o.life, err, sizeof(err));
		if (r)
			fprintf(stderr, "zmesh-ca: issue-node: %s\n", err);
		else
			printf("node certificate for %s written to %s\n", o.node, o.out);
		zca_fini(&z);
		return r ? 1 : 0;
	}
	if (!o.listen) {
		snprintf(o.listen_default, sizeof(o.listen_default), "127.0.0.1:%d", ZM_PORT_CA);
		o.listen = o.listen_default;
	}
	if (o.kube && zca_kube_start(&z, o.kubeconfig, err, sizeof(err))) {
		obs_log(OBS_ERROR, "kube", "%s", err);
		zca_kube_stop();
		zca_fini(&z);
		return 1;
	}
	rt_nofile_raise(NULL);
	r = zca_serve(&z, o.listen, o.workers, o.metrics_port);
	zca_kube_stop();
	zca_limits_fini(&z);
	zca_fini(&z);
	return r;
}
