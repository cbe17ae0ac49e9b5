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

#include "common/netns.h"
#include "config/config.h"
#include "datapath/datapath.h"
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
	    "               [--run-dir DIR] [--cgroup-root DIR]\n"
	    "       ztunnel --kube | --kubeconfig FILE --node NAME [--kube-sa-dir DIR] [options]\n"
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
	    "--check validates the config and the --policy files (FILE:LINE: field: problem);\n"
	    "with --node it also counts that node's kernel drop rules.\n"
	    "--run-dir DIR (or ZMESH_RUN_DIR; /var/run/zmesh in Kubernetes): accept pods from\n"
	    "the zmesh-cni plugin on DIR/cni.sock once ready, remembered in DIR/pods.json; a\n"
	    "config workload with the pod's namespace and name takes the pod's addresses.\n"
	    "--cgroup-root: the cgroup v2 root the plugin's cgroup paths start from (default:\n"
	    "the first cgroup2 mount).\n"
	    "--kube (in a pod: KUBERNETES_SERVICE_HOST/_PORT, the service account token and CA\n"
	    "in --kube-sa-dir, default /var/run/secrets/kubernetes.io/serviceaccount) or\n"
	    "--kubeconfig FILE: workloads, services and Istio policies from the Kubernetes API\n"
	    "instead of --config (pods in the mesh by istio.io/dataplane-mode=ambient on their\n"
	    "namespace or themselves); not ready before the first list of everything.\n"
	    "TRUST_DOMAIN, CLUSTER_DOMAIN, CLUSTER_ID (cluster.local, cluster.local, "
	    "Kubernetes).\n");
}

static int zt_parse_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (!*s || *end || v < lo || v > hi)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

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
		O_KUBE,
		O_KUBECONFIG,
		O_KUBE_SA
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
					   {"kube", no_argument, NULL, O_KUBE},
					   {"kubeconfig", required_argument, NULL, O_KUBECONFIG},
					   {"kube-sa-dir", required_argument, NULL, O_KUBE_SA},
					   {"help", no_argument, NULL, 'h'},
					   {"version", no_argument, NULL, 'V'},
					   {0}};
	int c, bad = 0;

	while ((c = getopt_long(argc, argv, "c:n:w:h", lo, NULL)) != -1) {
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
			bad |= zt_parse_int(optarg, 1, ZT_MAX_WORKERS, &o->workers);
			break;
		case O_ADMIN:
			bad |= zt_parse_int(optarg, 1, 65535, &o->admin_port);
			break;
		case O_METRICS:
			bad |= zt_parse_int(optarg, 1, 65535, &o->metrics_port);
			break;
		case O_READY:
			bad |= zt_parse_int(optarg, 1, 65535, &o->ready_port);
			break;
		case O_POLL:
			bad |= zt_parse_int(optarg, 50, 3600000, &o->poll_ms);
			break;
		case O_POOL_IDLE:
			bad |= zt_parse_int(optarg, 100, 86400000, &o->pool_idle_ms);
			break;
		case O_NOENROLL:
			o->no_enroll = true;
			break;
		case O_CA_ADDR:
			o->ca_addr = optarg;
			break;
		case O_POLICY:
			bad |= zt_authz_add_file(optarg) ? 1 : 0;
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
		case O_KUBE:
			o->kube = true;
			break;
		case O_KUBECONFIG:
			o->kubeconfig = optarg;
			break;
		case O_KUBE_SA:
			o->kube_sa_dir = optarg;
			break;
		case 'k':
			o->check = true;
			break;
		case 'h':
			zt_usage(stdout);
			exit(0);
		case 'V':
			printf("ztunnel (zmesh) 0.1.0\n");
			exit(0);
		default:
			return -EINVAL;
		}
	}
	if (bad || optind != argc) {
		fprintf(stderr, "ztunnel: bad or unexpected argument\n");
		return -EINVAL;
	}
	if (!o->node)
		o->node = getenv("NODE_NAME");
	if (!o->run_dir)
		o->run_dir = getenv("ZMESH_RUN_DIR");
	if ((o->kube || o->kubeconfig) && !o->check) {
		if (o->config) {
			fprintf(stderr, "ztunnel: --config and the Kubernetes API are two sources: "
					"pick one\n");
			return -EINVAL;
		}
		if (o->node && *o->node)
			return 0;
	}
	if (!o->config)
		o->config = getenv("LOCAL_XDS_PATH");
	if (!o->config || (!o->check && (!o->node || !*o->node))) {
		fprintf(stderr, "ztunnel: --config FILE%s is required\n",
			o->check ? "" : " and --node NAME");
		return -EINVAL;
	}
	return 0;
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

/* Signals go to the control loop's signalfd; SIGPIPE never kills a relay. */
static void zt_signals_block(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static void zt_raise_nofile(void)
{
	struct rlimit rl;

	/* Each relayed connection holds two sockets (and a pipe per busy direction). */
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	static struct zt zt;
	char err[8192];
	long ncpu;
	int r;

	zt.opts = (struct zt_opts){.admin_port = ZM_PORT_ADMIN,
				   .metrics_port = ZM_PORT_METRICS,
				   .ready_port = ZM_PORT_READY,
				   .poll_ms = 1000,
				   .pool_idle_ms = ZT_POOL_IDLE_MS};
	if (zt_parse_opts(argc, argv, &zt.opts)) {
		zt_usage(stderr);
		return 2;
	}
	if (zt.opts.check)
		return zt_check(zt.opts.config, zt.opts.node);
	if (zt.opts.netns && zm_netns_enter(zt.opts.netns, err, sizeof(err))) {
		fprintf(stderr, "ztunnel: %s\n", err);
		return 1;
	}
	zt_g = &zt;
	/* libbpf's notes on replaced filters are expected during enrollment; errors come back
	 * through zm_dp's own messages. */
	zm_dp_set_debug(false);
	zt_signals_block();
	zt_raise_nofile();
	if (zt_agent_init(&zt, err, sizeof(err))) {
		fprintf(stderr, "ztunnel: %s\n", err);
		return 1;
	}
	if (zt_kube_enabled(&zt) && zt_kube_start(&zt, err, sizeof(err))) {
		fprintf(stderr, "ztunnel: kube: %s\n", err);
		zt_kube_stop();
		return 1;
	}
	if (zt_state_load(&zt, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (zt_authz_init(err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (zt_identity_init(&zt, err, sizeof(err))) {
		fprintf(stderr, "ztunnel: identities from %s: %s\n", zt.opts.ca_dir, err);
		return 1;
	}
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	zt.n_workers = zt.opts.workers ? zt.opts.workers : (int)(ncpu > 0 ? ncpu : 1);
	if (zt.n_workers > ZT_MAX_WORKERS)
		zt.n_workers = ZT_MAX_WORKERS;
	r = zt_workers_start(&zt);
	if (!r)
		r = zt_cni_server_start(&zt);
	if (!r)
		r = zt_control_run(&zt);
	atomic_store(&zt.stop, true);
	zt_cni_server_stop(&zt);
	zt_kube_stop();
	zt_workers_join(&zt);
	fprintf(stderr, "ztunnel: stopped\n");
	return r ? 1 : 0;
}
