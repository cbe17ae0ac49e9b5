// SPDX-License-Identifier: Apache-2.0
/*
 * ztunnel: the per-node L4 proxy of zmesh. Entry point: options (with the reference's
 * LOCAL_XDS_PATH / NODE_NAME environment fallbacks), `--check` (validate a config and exit),
 * setns() into the node namespace before anything else exists (setns only moves the calling
 * thread, so every thread is created afterwards), then identities, the first config snapshot,
 * one worker per core and the control loop on this thread (admin, metrics, readiness, reload,
 * auto-enrollment). Exit status: 0 after a clean stop, 1 on a startup error, 2 on usage.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/cliopt.h"
#include "common/heap.h"
#include "common/netns.h"
#include "common/version.h"
#include "config/config.h"
#include "datapath/datapath.h"
#include "obs/log.h"
#include "rt/handover.h"
#include "zmesh/ports.h"
#include "agent.h"
#include "authz.h"
#include "zt.h"

struct zt *zt_g;

static void zt_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: ztunnel --config FILE --node NAME [--netns NAME|PATH] [--pin-dir DIR]\n"
	    "               [--ca-dir DIR] [--workers N] [--admin-port P] [--metrics-port P]\n"
	    "               [--ready-port P] [--no-enroll] [--poll-ms MS] [--pool-idle-ms MS]\n"
	    "               [--policy FILE]... [--no-fastpath]\n"
	    "               [--run-dir DIR] [--cgroup-root DIR] [--handover PATH|none]\n"
	    "               [--drain-timeout SECONDS] [--hbone-early-data]\n"
	    "               [--log-format logfmt|json] [--log-level SPEC]\n"
	    "       ztunnel --xds-address HOST:PORT --node NAME [--token-file F] [--cluster-id C]\n"
	    "               [--istiod-name NAME] [--xds-root-cert PEM] [options above]\n"
	    "       ztunnel (--kube | --kubeconfig FILE) --node NAME [--kube-sa-dir DIR]\n"
	    "               [options above]\n"
	    "       ztunnel --check --config FILE [--policy FILE]... [--node NAME]\n"
	    "       ztunnel --help | --version\n"
	    "\n"
	    "The per-node L4 proxy of zmesh: outbound capture on 15001, inbound plaintext on\n"
	    "15006, HBONE (mTLS HTTP/2 CONNECT) on 15008; admin 15000 (localhost), metrics\n"
	    "15020, readiness 15021. LOCAL_XDS_PATH and NODE_NAME stand in for --config and\n"
	    "--node. The datapath must be loaded (zmeshctl datapath load) in the node namespace\n"
	    "for capture; this node's HBONE workloads are then enrolled automatically.\n"
	    "--ca-dir names a dev CA (zmeshctl ca init); without it HBONE is refused.\n"
	    "--ca-addr HOST:PORT: workload certificates from zmesh-ca; --ca-dir then holds\n"
	    "only ca-cert.pem, node-cert.pem, node-key.pem (zmesh-ca issue-node).\n"
	    "--pool-idle-ms: close a pooled HBONE connection without streams after this long\n"
	    "(default 300000, the reference's 5 minutes).\n"
	    "--policy FILE (repeatable): Istio AuthorizationPolicy/PeerAuthentication YAML,\n"
	    "enforced with the config's policies and reloaded with it. Plaintext that the\n"
	    "policies certainly deny by address and port is dropped in the kernel (tc, XDP);\n"
	    "--no-fastpath leaves the kernel rule set alone (userspace decides everything).\n"
	    "--xds-address (XDS_ADDRESS): workloads, services and policies from istiod's delta\n"
	    "ADS (gRPC over TLS, default port 15012) instead of --config; --token-file (default\n"
	    "/var/run/secrets/tokens/istio-token) is sent as `authorization: Bearer`, and with\n"
	    "--ca-addr it also authenticates certificate requests when --ca-dir holds no node\n"
	    "certificate; --cluster-id (CLUSTER_ID, default Kubernetes) goes in `clusterid`;\n"
	    "istiod's certificate must verify against --xds-root-cert (default --ca-dir's\n"
	    "ca-cert.pem) with the name --istiod-name (default istiod.istio-system.svc).\n"
	    "INSTANCE_IP, POD_NAME, POD_NAMESPACE make the node id, as in Istio.\n"
	    "--check validates the config and the --policy files (FILE:LINE: field: problem);\n"
	    "with --node it also counts that node's kernel drop rules.\n"
	    "--run-dir DIR (or ZMESH_RUN_DIR; /var/run/zmesh in Kubernetes): accept pods from\n"
	    "the zmesh-cni plugin on DIR/cni.sock once ready, remembered in DIR/pods.json; a\n"
	    "config workload with the pod's namespace and name takes the pod's addresses.\n"
	    "--cgroup-root: the cgroup v2 root the plugin's cgroup paths start from (default:\n"
	    "the first cgroup2 mount).\n"
	    "--handover PATH (default RUN_DIR/ztunnel.handover; none: off): a new ztunnel takes\n"
	    "the listening sockets of the one running on this node over PATH and serves on them;\n"
	    "the old one stops accepting and drains, so an upgrade drops no connection.\n"
	    "SIGTERM drains: no longer accepting, GOAWAY on HBONE, exit when the last connection\n"
	    "closes or after --drain-timeout SECONDS (0: no limit; default after a hand-over: no\n"
	    "limit; after SIGTERM: CONNECTION_TERMINATION_DEADLINE, or\n"
	    "TERMINATION_GRACE_PERIOD_SECONDS less 5, or 5). A second SIGTERM cuts what is left.\n"
	    "--hbone-early-data: outbound, send a connection's first bytes (at most 16 KiB)\n"
	    "right behind the CONNECT instead of after the 200 (one round trip less per new\n"
	    "connection). Off by default: Istio's ztunnel waits for the 200, and a peer may\n"
	    "refuse CONNECTs that carry data before their answer (Envoy's\n"
	    "reject_connect_request_early_data answers 400).\n"
	    "--kube (in a pod: KUBERNETES_SERVICE_HOST/_PORT, the service account token and CA\n"
	    "in --kube-sa-dir, default /var/run/secrets/kubernetes.io/serviceaccount) or\n"
	    "--kubeconfig FILE: workloads, services and Istio policies from the Kubernetes API\n"
	    "instead of --config (pods in the mesh by istio.io/dataplane-mode=ambient on their\n"
	    "namespace or themselves); not ready before the first list of everything.\n"
	    "TRUST_DOMAIN, CLUSTER_DOMAIN, CLUSTER_ID (cluster.local, cluster.local, "
	    "Kubernetes).\n"
	    "--log-format: logfmt (default) or json, for every line. --log-level: LEVEL or\n"
	    "SCOPE:LEVEL[,...] (error warn info debug trace off; scopes: ztunnel access hbone\n"
	    "authz config identity enroll admin rt cni xds kube); POST /logging?level=SPEC on the\n"
	    "admin port changes it at run time.\n");
}

#define ZT_USAGE_LINE                                                                              \
	"ztunnel (--config FILE | --xds-address HOST:PORT | --kube | --kubeconfig FILE) --node "   \
	"NAME [OPTIONS] | ztunnel --check --config FILE"

static int zt_parse_opts(int argc, char **argv, struct zt_opts *o)
{
	enum {
		O_NETNS = 256,
		O_PIN,
		O_CA,
		O_ADMIN,
		O_METRICS,
		O_READY,
		O_NOENROLL,
		O_POLL,
		O_POOL_IDLE,
		O_CA_ADDR,
		O_POLICY,
		O_NO_FASTPATH,
		O_RUN_DIR,
		O_CGROUP_ROOT,
		O_XDS,
		O_TOKEN,
		O_CLUSTER,
		O_CPNAME,
		O_XDS_ROOT,
		O_HANDOVER,
		O_DRAIN,
		O_KUBE,
		O_KUBECONFIG,
		O_KUBE_SA,
		O_EARLY
	};
	static const struct option lo[] = {{"config", required_argument, NULL, 'c'},
					   {"node", required_argument, NULL, 'n'},
					   {"netns", required_argument, NULL, O_NETNS},
					   {"pin-dir", required_argument, NULL, O_PIN},
					   {"ca-dir", required_argument, NULL, O_CA},
					   {"workers", required_argument, NULL, 'w'},
					   {"admin-port", required_argument, NULL, O_ADMIN},
					   {"metrics-port", required_argument, NULL, O_METRICS},
					   {"ready-port", required_argument, NULL, O_READY},
					   {"no-enroll", no_argument, NULL, O_NOENROLL},
					   {"poll-ms", required_argument, NULL, O_POLL},
					   {"check", no_argument, NULL, 'k'},
					   {"pool-idle-ms", required_argument, NULL, O_POOL_IDLE},
					   {"ca-addr", required_argument, NULL, O_CA_ADDR},
					   {"policy", required_argument, NULL, O_POLICY},
					   {"no-fastpath", no_argument, NULL, O_NO_FASTPATH},
					   {"run-dir", required_argument, NULL, O_RUN_DIR},
					   {"cgroup-root", required_argument, NULL, O_CGROUP_ROOT},
					   {"xds-address", required_argument, NULL, O_XDS},
					   {"token-file", required_argument, NULL, O_TOKEN},
					   {"cluster-id", required_argument, NULL, O_CLUSTER},
					   {"istiod-name", required_argument, NULL, O_CPNAME},
					   {"xds-root-cert", required_argument, NULL, O_XDS_ROOT},
					   {"handover", required_argument, NULL, O_HANDOVER},
					   {"drain-timeout", required_argument, NULL, O_DRAIN},
					   {"kube", no_argument, NULL, O_KUBE},
					   {"kubeconfig", required_argument, NULL, O_KUBECONFIG},
					   {"kube-sa-dir", required_argument, NULL, O_KUBE_SA},
					   {"hbone-early-data", no_argument, NULL, O_EARLY},
					   OBS_LOG_OPTIONS,
					   {"help", no_argument, NULL, 'h'},
					   {"version", no_argument, NULL, 'V'},
					   {0}};
	const char *p = "ztunnel";
	int c, bad = 0;
	bool kube;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:n:w:h", lo, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case 'n':
			o->node = optarg;
			break;
		case O_NETNS:
			o->netns = optarg;
			break;
		case O_PIN:
			o->pin_dir = optarg;
			break;
		case O_CA:
			o->ca_dir = optarg;
			break;
		case 'w':
			bad |= zm_opt_int(p, "--workers", optarg, 1, ZT_MAX_WORKERS, &o->workers)
				   ? 1
				   : 0;
			break;
		case O_ADMIN:
			bad |=
			    zm_opt_int(p, "--admin-port", optarg, 1, 65535, &o->admin_port) ? 1 : 0;
			break;
		case O_METRICS:
			bad |= zm_opt_int(p, "--metrics-port", optarg, 1, 65535, &o->metrics_port)
				   ? 1
				   : 0;
			break;
		case O_READY:
			bad |=
			    zm_opt_int(p, "--ready-port", optarg, 1, 65535, &o->ready_port) ? 1 : 0;
			break;
		case O_POLL:
			bad |= zm_opt_int(p, "--poll-ms", optarg, 50, 3600000, &o->poll_ms) ? 1 : 0;
			break;
		case O_POOL_IDLE:
			bad |=
			    zm_opt_int(p, "--pool-idle-ms", optarg, 100, 86400000, &o->pool_idle_ms)
				? 1
				: 0;
			break;
		case O_NOENROLL:
			o->no_enroll = true;
			break;
		case O_CA_ADDR:
			o->ca_addr = optarg;
			break;
		case O_POLICY:
			if (zt_authz_add_file(optarg)) {
				fprintf(stderr, "ztunnel: --policy %s: more than %d policy files\n",
					optarg, ZT_AUTHZ_MAX_FILES);
				bad = 1;
			}
			break;
		case O_NO_FASTPATH:
			zt_authz_fastpath_off();
			break;
		case O_RUN_DIR:
			o->run_dir = optarg;
			break;
		case O_CGROUP_ROOT:
			o->cgroup_root = optarg;
			break;
		case O_XDS:
			o->xds_address = optarg;
			break;
		case O_TOKEN:
			o->token_file = optarg;
			break;
		case O_CLUSTER:
			o->cluster_id = optarg;
			break;
		case O_CPNAME:
			o->cp_name = optarg;
			break;
		case O_XDS_ROOT:
			o->xds_root = optarg;
			break;
		case O_HANDOVER:
			o->handover = optarg;
			break;
		case O_DRAIN:
			bad |=
			    zm_opt_int(p, "--drain-timeout", optarg, 0, 86400, &o->drain_timeout_s)
				? 1
				: 0;
			break;
		case O_KUBE:
			o->kube = true;
			break;
		case O_KUBECONFIG:
			o->kubeconfig = optarg;
			break;
		case O_KUBE_SA:
			o->kube_sa_dir = optarg;
			break;
		case O_EARLY:
			o->early_data = true;
			break;
		case 'k':
			o->check = true;
			break;
		case 'h':
			zt_usage(stdout);
			exit(0);
		case 'V':
			zm_version_print(stdout, "ztunnel");
			exit(0);
		default:
			if (obs_log_getopt(p, c, optarg, argv))
				return -EINVAL;
			break;
		}
	}
	if (bad)
		return -EINVAL;
	if (optind != argc) {
		fprintf(stderr, "ztunnel: unexpected argument \"%s\" (options only)\n",
			argv[optind]);
		return -EINVAL;
	}
	kube = o->kube || o->kubeconfig;
	if (!o->xds_address && !o->check && !kube)
		o->xds_address = getenv("XDS_ADDRESS");
	if (!o->config && !o->xds_address && !(kube && !o->check))
		o->config = getenv("LOCAL_XDS_PATH");
	if (!o->node)
		o->node = getenv("NODE_NAME");
	if (!o->run_dir)
		o->run_dir = getenv("ZMESH_RUN_DIR");
	if (kube && !o->check && (o->config || o->xds_address)) {
		fprintf(stderr, "ztunnel: --%s and the Kubernetes API are two sources: pick one\n",
			o->config ? "config" : "xds-address");
		return -EINVAL;
	}
	if (o->xds_address && o->config) {
		fprintf(stderr, "ztunnel: --xds-address and --config are two sources: pick one\n");
		return -EINVAL;
	}
	if ((o->xds_address || kube) && !o->check && o->node && *o->node)
		return 0;
	if (!o->config || (!o->check && (!o->node || !*o->node))) {
		fprintf(stderr, "ztunnel: --config FILE%s is required\n",
			o->check ? "" : " and --node NAME");
		return -EINVAL;
	}
	return 0;
}

/*
 * Before any socket is made: take over from the ztunnel serving this node, or start fresh.
 * 0, or the exit status (the message logged; a running ztunnel is never disturbed).
 */
static int zt_handover_begin(struct zt *zt, char *err, size_t len)
{
	static char path[256];
	const char *p = zt->opts.handover;
	pid_t old = 0;

	if (p && !strcmp(p, "none"))
		p = NULL;
	else if (!p && zt->opts.run_dir)
		p = snprintf(path, sizeof(path), "%s/ztunnel.handover", zt->opts.run_dir) <
			    (int)sizeof(path)
			? path
			: NULL;
	zt->opts.handover = p;
	if (rt_handover_begin(p, "ztunnel", &old, err, len)) {
		obs_log(OBS_ERROR, "ztunnel", "%s", err);
		return 1;
	}
	if (old)
		obs_log(OBS_INFO, "ztunnel", "taking over from the ztunnel running as pid %d (%s)",
			(int)old, p);
	return 0;
}

/* Serving now: the old process (if any) stops accepting; later ones can take over from us. */
static void zt_handover_commit(struct zt *zt)
{
	const struct rt_handover_ops ops = {.release = zt_drain_handed_over, .ud = zt};
	char err[512];

	/* Keep serving either way: the inherited sockets are ours, dropping them would cut. */
	if (rt_handover_commit(&zt->control.loop, &ops, err, sizeof(err)))
		obs_log(OBS_WARN, "ztunnel", "%s; no hand-over to a later ztunnel possible", err);
	zt_drain_init(zt);
}

static int zt_check(const char *path, const char *node)
{
	char err[8192];
	struct zm_config *cfg;
	int r;

	if (zm_config_load_file(path, &cfg, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	printf("%s: ok (%zu workloads, %zu services, %zu policies)\n", path, cfg->n_workloads,
	       cfg->n_services, cfg->n_policies);
	/* The --policy files too: a typo there would otherwise only show at run time. */
	r = zt_authz_check(cfg, node);
	zm_config_free(cfg);
	return r;
}

static const char *const zt_log_scopes[] = {"access",	"hbone",  "authz", "config",
					    "identity", "enroll", "admin", "rt",
					    "cni",	"xds",	  "kube",  NULL};

int main(int argc, char **argv)
{
	static struct zt zt;
	char err[8192];
	uint64_t nofile = 0;
	int r;

	zt.opts = (struct zt_opts){.drain_timeout_s = -1,
				   .admin_port = ZM_PORT_ADMIN,
				   .metrics_port = ZM_PORT_METRICS,
				   .ready_port = ZM_PORT_READY,
				   .poll_ms = 1000,
				   .pool_idle_ms = ZT_POOL_IDLE_MS};
	zm_heap_init();
	obs_log_init("ztunnel", zt_log_scopes);
	if (zt_parse_opts(argc, argv, &zt.opts))
		return zm_opt_usage("ztunnel", ZT_USAGE_LINE);
	if (zt.opts.check)
		return zt_check(zt.opts.config, zt.opts.node);
	if (zt.opts.netns && zm_netns_enter(zt.opts.netns, err, sizeof(err))) {
		obs_log(OBS_ERROR, "ztunnel", "%s", err);
		return 1;
	}
	r = zt_handover_begin(&zt, err, sizeof(err));
	if (r)
		return r;
	zt_g = &zt;
	/* libbpf's notes on replaced filters are expected during enrollment; errors come back
	 * through zm_dp's own messages. */
	zm_dp_set_debug(false);
	/* Signals go to the control loop's signalfd; SIGPIPE never kills a relay. */
	if (zt_control_init(&zt)) {
		obs_log(OBS_ERROR, "ztunnel", "control loop: %s", strerror(errno));
		return 1;
	}
	/* Each relayed connection holds two sockets (and a pipe per busy direction). */
	if (rt_nofile_raise(&nofile))
		obs_log(OBS_WARN, "ztunnel", "raising RLIMIT_NOFILE failed: %llu descriptors",
			(unsigned long long)nofile);
	if (zt_agent_init(&zt, err, sizeof(err))) {
		obs_log(OBS_ERROR, "cni", "%s", err);
		return 1;
	}
	/* After zt_control_init: the wait for the first list sees SIGTERM pending. */
	if (zt_kube_enabled(&zt) && zt_kube_start(&zt, err, sizeof(err))) {
		obs_log(OBS_ERROR, "kube", "%s", err);
		zt_kube_stop();
		return 1;
	}
	if (zt.opts.xds_address ? zt_xds_start(&zt, err, sizeof(err))
				: zt_state_load(&zt, err, sizeof(err))) {
		obs_log(OBS_ERROR, "config", "%s", err);
		return 1;
	}
	if (zt_authz_init(err, sizeof(err))) {
		obs_log(OBS_ERROR, "authz", "%s", err);
		return 1;
	}
	if (zt_identity_init(&zt, err, sizeof(err))) {
		obs_log(OBS_ERROR, "identity", "identities from %s: %s", zt.opts.ca_dir, err);
		return 1;
	}
	if (zt_metrics_init(&zt.idp, &zt.pool_conns, &zt.hbone_inbound)) {
		obs_log(OBS_ERROR, "ztunnel", "registering the metrics failed");
		return 1;
	}
	zt.n_workers = zt.opts.workers ? zt.opts.workers : rt_workers_default();
	r = rt_workers_start(&zt.rt, zt.n_workers, zt_worker_init, &zt);
	zt.n_workers = zt.rt.n;
	if (!r)
		r = zt_admin_start(&zt);
	if (!r)
		r = zt_cni_server_start(&zt);
	if (!r)
		zt_handover_commit(&zt);
	if (!r)
		r = zt_control_run(&zt);
	atomic_store(&zt.stop, true);
	zt_cni_server_stop(&zt);
	zt_kube_stop();
	zt_xds_stop();
	zt_admin_stop();
	rt_handover_fini(&zt.control.loop);
	rt_workers_stop(&zt.rt);
	rt_control_fini(&zt.control);
	obs_log(OBS_INFO, "ztunnel", "stopped");
	return r ? 1 : 0;
}
