// SPDX-License-Identifier: Apache-2.0
/*
 * The CA-backed identity provider (lib/caclient) against a real zmesh-ca on 127.0.0.1 (port
 * picked by the kernel; only the PIDs started here are killed): a prefetched certificate for
 * a workload on our node, a refusal for one on another node, rotation at half of a 4 s
 * lifetime (new serial, the old certificate still usable by whoever holds it), and a CA
 * outage: the cached certificate keeps being served, then the provider recovers.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "caclient/caclient.h"
#include "tap.h"

#define A "spiffe://cluster.local/ns/default/sa/sa-a"
#define B "spiffe://cluster.local/ns/default/sa/sa-b"

static char tmp[64], bin[256], addr[64];

static pid_t ca_start(const char *listen)
{
	char log[128], line[256];
	pid_t pid;

	snprintf(log, sizeof(log), "%s/ca.log", tmp);
	pid = fork();
	if (pid == 0) {
		char dir[128], cfg[128];
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		snprintf(dir, sizeof(dir), "%s/ca", tmp);
		snprintf(cfg, sizeof(cfg), "%s/cfg.yaml", tmp);
		dup2(fd, 2);
		execl(bin, bin, "--dir", dir, "--config", cfg, "--listen", listen, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100; i++) {
		FILE *f = fopen(log, "r");
		char *p = NULL;

		while (f && fgets(line, sizeof(line), f))
			if ((p = strstr(line, "listening on ")))
				break;
		if (f)
			fclose(f);
		if (p) {
			snprintf(addr, sizeof(addr), "%s", p + 13);
			addr[strcspn(addr, "\"\n")] = '\0'; /* logfmt quotes the message */
			return pid;
		}
		usleep(50000);
	}
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	return -1;
}

static void ca_stop(pid_t pid)
{
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

static int wanted(void *ud, void (*add)(void *ctx, const char *id), void *ctx)
{
	(void)ud;
	add(ctx, A);
	return 0;
}

static struct zm_identity_provider *provider(void)
{
	struct zm_caclient_opts o = {
	    .addr = addr, .validity_s = 4, .wait_ms = 3000, .wanted = wanted};
	struct zm_identity_provider *p = NULL;
	char c[128], k[128], r[128], err[256];

	snprintf(r, sizeof(r), "%s/n1/ca-cert.pem", tmp);
	snprintf(c, sizeof(c), "%s/n1/node-cert.pem", tmp);
	snprintf(k, sizeof(k), "%s/n1/node-key.pem", tmp);
	if (zm_tls_roots_load(r, &o.roots, err, sizeof(err)) ||
	    zm_cert_load_pem(c, k, &o.node, err, sizeof(err)) ||
	    zm_caclient_provider_new(&o, &p, err, sizeof(err)))
		tap_bail("provider: %s", err);
	zm_cert_put(o.node);
	zm_tls_roots_put(o.roots);
	return p;
}

int main(void)
{
	const char *build = getenv("BUILD") ?: "build";
	struct zm_identity_provider *p;
	struct zm_cert *c1 = NULL, *c2 = NULL, *c3 = NULL;
	char cmd[512], err[256], s1[64], s2[64], s3[64], *dump;
	pid_t ca;
	FILE *f;

	/* As in every daemon (rt/control.h): a write to a connection the CA just closed is an
	 * error to handle (the tests stop the CA under the client), not a signal that kills. */
	signal(SIGPIPE, SIG_IGN);
	snprintf(tmp, sizeof(tmp), "/tmp/zm-ca-client-XXXXXX");
	if (!mkdtemp(tmp))
		tap_bail("mkdtemp");
	snprintf(bin, sizeof(bin), "%s/bin/zmesh-ca", build);
	snprintf(cmd, sizeof(cmd), "%s/ca", tmp);
	if (zm_ca_init_files(cmd, NULL, err, sizeof(err)))
		tap_bail("ca init: %s", err);
	snprintf(cmd, sizeof(cmd), "%s issue-node --dir %s/ca --out %s/n1 --node n1 >/dev/null",
		 bin, tmp, tmp);
	if (system(cmd))
		tap_bail("%s failed", cmd);
	snprintf(cmd, sizeof(cmd), "%s/cfg.yaml", tmp);
	f = fopen(cmd, "w");
	if (!f)
		tap_bail("cfg");
	fprintf(f, "workloads:\n"
		   "- {uid: a, name: a, namespace: default, serviceAccount: sa-a, "
		   "workloadIps: [198.18.1.11], node: n1}\n"
		   "- {uid: b, name: b, namespace: default, serviceAccount: sa-b, "
		   "workloadIps: [198.18.2.11], node: n2}\n");
	fclose(f);
	ca = ca_start("127.0.0.1:0");
	if (ca < 0)
		tap_bail("zmesh-ca did not start (%s)", bin);
	p = provider();

	is_int(zm_identity_get(p, A, &c1, err, sizeof(err)), 0, "get %s", A);
	if (!c1)
		tap_bail("no certificate");
	is_str(zm_cert_identity(c1), A, "the certificate carries the workload identity");
	ok(zm_cert_not_after(c1) - time(NULL) <= 4, "lifetime is the requested 4 s");
	zm_cert_serial(c1, s1, sizeof(s1));
	is_int(zm_identity_get(p, B, &c2, err, sizeof(err)), -EACCES,
	       "a workload on another node is refused");
	ok(strstr(err, "PERMISSION_DENIED") != NULL, "with the CA's reason: %s", err);

	sleep(3); /* past half of the lifetime: the refresh thread rotated */
	is_int(zm_identity_get(p, A, &c2, err, sizeof(err)), 0, "get after rotation");
	ok(c2 && strcmp(zm_cert_serial(c2, s2, sizeof(s2)), s1), "a new serial (%s -> %s)", s1, s2);
	is_str(zm_cert_identity(c1), A, "the old certificate is still intact for its holders");

	ca_stop(ca);
	/* Wait for the rotation to fail while the certificate is still valid. */
	for (int i = 0; i < 60; i++) {
		dump = zm_caclient_provider_dump(p);
		if (dump && strstr(dump, "fetch-failed"))
			break;
		free(dump);
		dump = NULL;
		usleep(50000);
	}
	ok(dump != NULL, "CA down: dump shows the failing rotation: %s", dump);
	free(dump);
	is_int(zm_identity_get(p, A, &c3, err, sizeof(err)), 0, "CA down: cached cert served");
	zm_cert_put(c3);
	c3 = NULL;
	ca = ca_start(addr);
	ok(ca > 0, "CA back on %s", addr);
	for (int i = 0; i < 40 && !c3; i++) {
		usleep(250000);
		if (!zm_identity_get(p, A, &c3, err, sizeof(err)) &&
		    (!strcmp(zm_cert_serial(c3, s3, sizeof(s3)), s2) ||
		     time(NULL) >= zm_cert_not_after(c3))) {
			zm_cert_put(c3);
			c3 = NULL;
		}
	}
	ok(c3 != NULL, "recovered with a fresh certificate after the outage");
	zm_cert_put(c1);
	zm_cert_put(c2);
	zm_cert_put(c3);
	zm_identity_provider_free(p);
	if (ca > 0)
		ca_stop(ca);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	if (system(cmd))
		fprintf(stderr, "# cleanup of %s failed\n", tmp);
	return tap_done();
}
