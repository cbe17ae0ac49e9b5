// SPDX-License-Identifier: Apache-2.0
/*
 * zmesh-ca: signs workload certificates over Istio's certificate API
 * (istio.v1.auth.IstioCertificateService/CreateCertificate, gRPC over HTTP/2 over mutual TLS)
 * with a CA directory written by `zmeshctl ca init`, for nodes authenticated by certificates
 * from `zmesh-ca issue-node`. Entry point: options, the listener and one detached thread per
 * connection (at most --max-conns). Exit status: 0 after SIGTERM/SIGINT, 1 on a startup error,
 * 2 on usage.
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

static void zca_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: zmesh-ca [serve] --dir CADIR (--config FILE | --kube | --kubeconfig FILE)\n"
	    "                [--listen HOST:PORT]\n"
	    "                [--default-ttl S] [--max-ttl S] [--max-conns N]\n"
	    "                [--node-account SPIFFE-ID]\n"
	    "       zmesh-ca issue-node --dir CADIR --out DIR --node NAME [--lifetime S]\n"
	    "\n"
	    "serve: CreateCertificate on HOST:PORT (default 127.0.0.1:%d; port 0 picks one,\n"
	    "logged as \"listening on\"). A caller authenticates with a node certificate; it gets\n"
	    "an identity only when FILE (ztunnel's local config) has a workload with that\n"
	    "identity and `node: <its CN>`; with --kube (in a pod) or --kubeconfig FILE, only\n"
	    "while a pod of that namespace and service account runs on that node (Kubernetes\n"
	    "API: list and watch of pods and namespaces). TTL defaults: 86400 s, max 7 days.\n"
	    "issue-node: write DIR/node-cert.pem (CN=NAME, URI SAN the node account\n"
	    "spiffe://TD/ns/istio-system/sa/ztunnel), DIR/node-key.pem (0600) and "
	    "DIR/ca-cert.pem:\n"
	    "what `ztunnel --ca-addr HOST:PORT --ca-dir DIR` needs.\n",
	    ZM_CA_PORT_DEFAULT);
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

struct zca_job {
	struct zca *z;
	int fd;
};

static void *zca_conn_thread(void *arg)
{
	struct zca_job *j = arg;
	struct zca *z = j->z;

	zca_conn_serve(z, j->fd);
	free(j);
	atomic_fetch_sub(&z->nconns, 1);
	return NULL;
}

static int zca_listen(const char *addr, char *err, size_t len)
{
	struct sockaddr_storage ss;
	struct zm_addr a;
	unsigned int port;
	char text[ZM_ADDR_STRLEN];
	socklen_t sl = sizeof(ss);
	int fd, one = 1;

	if (zm_caclient_addr_parse(addr, &ss, &sl))
		return snprintf(err, len, "--listen %s: want HOST:PORT", addr), -EINVAL;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return snprintf(err, len, "socket: %s", strerror(errno)), -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) || listen(fd, 128)) {
		snprintf(err, len, "listening on %s: %s", addr, strerror(errno));
		close(fd);
		return -EADDRINUSE;
	}
	sl = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	zm_addr_from_sockaddr((struct sockaddr *)&ss, &a, &port);
	fprintf(stderr, "zmesh-ca: listening on %s\n",
		zm_addr_port_format(&a, port, text, sizeof(text)));
	return fd;
}

static int zca_serve(struct zca *z, const char *addr)
{
	pthread_attr_t attr;
	char err[512];
	int lfd, fd;

	if (zca_ssl_ctx_init(z, err, sizeof(err))) {
		fprintf(stderr, "zmesh-ca: %s\n", err);
		return 1;
	}
	lfd = zca_listen(addr, err, sizeof(err));
	if (lfd < 0) {
		fprintf(stderr, "zmesh-ca: %s\n", err);
		return 1;
	}
	fprintf(stderr, "zmesh-ca: trust domain %s, node account %s, config %s\n", z->td,
		z->node_account, z->config_path ? z->config_path : "(Kubernetes API)");
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (;;) {
		struct zca_job *j;
		pthread_t t;

		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EINTR && errno != ECONNABORTED)
				usleep(10000); /* EMFILE and friends: do not spin */
			continue;
		}
		if (atomic_fetch_add(&z->nconns, 1) >= z->max_conns) {
			atomic_fetch_sub(&z->nconns, 1);
			fprintf(stderr, "zmesh-ca: refused a connection: %d connections open\n",
				z->max_conns);
			close(fd);
			continue;
		}
		j = malloc(sizeof(*j));
		if (j) {
			*j = (struct zca_job){z, fd};
			if (!pthread_create(&t, &attr, zca_conn_thread, j))
				continue;
			free(j);
		}
		atomic_fetch_sub(&z->nconns, 1);
		close(fd);
	}
	return 0;
}

int main(int argc, char **argv)
{
	enum {
		O_DIR = 256,
		O_CONFIG,
		O_LISTEN,
		O_DTTL,
		O_MTTL,
		O_CONNS,
		O_ACCT,
		O_OUT,
		O_NODE,
		O_LIFE,
		O_KUBE,
		O_KUBECONFIG
	};
	static const struct option lo[] = {{"dir", required_argument, NULL, O_DIR},
					   {"config", required_argument, NULL, O_CONFIG},
					   {"listen", required_argument, NULL, O_LISTEN},
					   {"default-ttl", required_argument, NULL, O_DTTL},
					   {"max-ttl", required_argument, NULL, O_MTTL},
					   {"max-conns", required_argument, NULL, O_CONNS},
					   {"node-account", required_argument, NULL, O_ACCT},
					   {"out", required_argument, NULL, O_OUT},
					   {"node", required_argument, NULL, O_NODE},
					   {"lifetime", required_argument, NULL, O_LIFE},
					   {"kube", no_argument, NULL, O_KUBE},
					   {"kubeconfig", required_argument, NULL, O_KUBECONFIG},
					   {"help", no_argument, NULL, 'h'},
					   {0}};
	static struct zca z;
	const char *dir = NULL, *config = NULL, *listen_at = "127.0.0.1:15012", *out = NULL;
	const char *node = NULL, *cmd = "serve", *kubeconfig = NULL;
	bool kube = false;
	long dttl = 86400, mttl = 7 * 86400, conns = ZCA_MAX_CONNS_DEFAULT, life = 365 * 86400;
	char err[1024];
	int c, bad = 0, r;

	if (argc > 1 && argv[1][0] != '-') {
		cmd = argv[1];
		argv++;
		argc--;
	}
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case O_DIR:
			dir = optarg;
			break;
		case O_CONFIG:
			config = optarg;
			break;
		case O_LISTEN:
			listen_at = optarg;
			break;
		case O_DTTL:
			bad |= parse_long(optarg, 1, 10L * 365 * 86400, &dttl);
			break;
		case O_MTTL:
			bad |= parse_long(optarg, 1, 10L * 365 * 86400, &mttl);
			break;
		case O_CONNS:
			bad |= parse_long(optarg, 1, 4096, &conns);
			break;
		case O_ACCT:
			if (zm_spiffe_id_parse(optarg, NULL))
				bad = 1;
			snprintf(z.node_account, sizeof(z.node_account), "%s", optarg);
			break;
		case O_OUT:
			out = optarg;
			break;
		case O_NODE:
			node = optarg;
			break;
		case O_KUBE:
			kube = true;
			break;
		case O_KUBECONFIG:
			kubeconfig = optarg;
			kube = true;
			break;
		case O_LIFE:
			bad |= parse_long(optarg, -299, 10L * 365 * 86400, &life);
			break;
		case 'h':
			zca_usage(stdout);
			return 0;
		default:
			bad = 1;
		}
	}
	if (bad || optind != argc || !dir || (strcmp(cmd, "serve") && strcmp(cmd, "issue-node")) ||
	    (!strcmp(cmd, "serve") && !config == !kube) ||
	    (!strcmp(cmd, "issue-node") && (!out || !node))) {
		fprintf(stderr, "zmesh-ca: bad or missing argument\n");
		zca_usage(stderr);
		return 2;
	}
	if (dttl > mttl)
		dttl = mttl;
	z.default_ttl = dttl;
	z.max_ttl = mttl;
	z.max_conns = (int)conns;
	signal(SIGPIPE, SIG_IGN);
	if (zca_load(&z, dir, config, err, sizeof(err))) {
		fprintf(stderr, "zmesh-ca: %s\n", err);
		return 1;
	}
	if (!strcmp(cmd, "issue-node")) {
		r = zca_issue_node(&z, out, node, life, err, sizeof(err));
		if (r)
			fprintf(stderr, "zmesh-ca: issue-node: %s\n", err);
		else
			printf("node certificate for %s written to %s\n", node, out);
		zca_fini(&z);
		return r ? 1 : 0;
	}
	if (kube && zca_kube_start(&z, kubeconfig, err, sizeof(err))) {
		fprintf(stderr, "zmesh-ca: kube: %s\n", err);
		zca_fini(&z);
		return 1;
	}
	r = zca_serve(&z, listen_at);
	zca_fini(&z);
	return r;
}
