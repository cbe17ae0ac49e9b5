// SPDX-License-Identifier: Apache-2.0
/*
 * The CNI commands (CNI spec 1.0.0) as a runtime runs them: the network config with its
 * prevResult on stdin, CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS in the
 * environment. ADD asks the node's ztunnel to take the pod (agent.c) and prints prevResult
 * unchanged; DEL withdraws it; CHECK asks whether it is still as ADD left it; VERSION lists
 * the versions we speak. Every failure prints the spec's error object on stdout and exits 1.
 *
 * Choices: a pod that is not a Kubernetes pod (no K8S_POD_NAMESPACE/NAME) or sits in an
 * excluded namespace passes without asking anyone. While no ztunnel answers, ADD fails with
 * code 11 after agentWaitSeconds, so the runtime retries and the pod never runs outside the
 * mesh it belongs to (Istio's choice); DEL then succeeds, since the next ztunnel drops pods
 * whose veth is gone; CHECK fails.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cni/cni.h"
#include "common/addr.h"
#include "common/netns.h"
#include "cni.h"

#define CNI_ERR_LEN 768

struct cni_ctx {
	const char *cmd, *container_id, *netns, *ifname;
	struct zm_cni_conf conf;
	struct zm_cni_pod pod;
	char err[CNI_ERR_LEN];
};

static int cni_fail(const struct cni_ctx *c, int code, const char *msg, const char *details)
{
	char *out = zm_cni_error_json(c->conf.cni_version, code, msg, details);

	fputs(out ? out : "{\"code\":5,\"msg\":\"out of memory\"}\n", stdout);
	fflush(stdout);
	/* The runtime logs stderr next to the pod: say it there too. */
	fprintf(stderr, "zmesh-cni: %s %s: %s%s%s\n", c->cmd ? c->cmd : "?",
		c->container_id ? c->container_id : "", msg, details && *details ? ": " : "",
		details ? details : "");
	free(out);
	return 1;
}

/* Whole stdin, at most ZM_CNI_MAX_INPUT bytes (one more is read to see the excess). */
static char *cni_read_stdin(size_t *len)
{
	size_t cap = ZM_CNI_MAX_INPUT + 1, n = 0;
	char *buf = malloc(cap + 1);
	ssize_t r;

	if (!buf)
		return NULL;
	while (n < cap && (r = read(0, buf + n, cap - n)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			free(buf);
			return NULL;
		}
		n += (size_t)r;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

static json_object *cni_request(const struct cni_ctx *c, const char *op)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "op", json_object_new_string(op));
	json_object_object_add(o, "containerId", json_object_new_string(c->container_id));
	json_object_object_add(o, "namespace", json_object_new_string(c->pod.namespace));
	json_object_object_add(o, "name", json_object_new_string(c->pod.name));
	json_object_object_add(o, "uid", json_object_new_string(c->pod.uid));
	return o;
}

/* The ztunnel's answer to req: 0, or a printed CNI error (exit status 1). */
static int cni_ask(struct cni_ctx *c, json_object *req, json_object **reply)
{
	json_object *v;
	int r;

	r = cni_agent_call(c->conf.socket_path, c->conf.agent_wait_s, req, reply, c->err,
			   sizeof(c->err));
	json_object_put(req);
	if (r == -EAGAIN)
		return cni_fail(c, ZM_CNI_E_AGAIN, "ztunnel on this node is not ready", c->err);
	if (r)
		return cni_fail(c, ZM_CNI_E_IO, "talking to ztunnel failed", c->err);
	if (json_object_object_get_ex(*reply, "ok", &v) && json_object_get_boolean(v))
		return 0;
	json_object_object_get_ex(*reply, "error", &v);
	cni_fail(c, ZM_CNI_E_AGENT, "ztunnel refused the pod",
		 v ? json_object_get_string(v) : "no reason given");
	json_object_put(*reply);
	*reply = NULL;
	return 1;
}

static int cni_print_result(struct cni_ctx *c)
{
	char *out = zm_cni_result_json(&c->conf);

	if (!out)
		return cni_fail(c, ZM_CNI_E_IO, "writing the result failed", "out of memory");
	fputs(out, stdout);
	free(out);
	return fflush(stdout) ? 1 : 0;
}

static int cni_add(struct cni_ctx *c)
{
	char veth[IF_NAMESIZE], cgroup[512], a[ZM_ADDR_STRLEN];
	json_object *req, *reply = NULL, *addrs;
	size_t i;
	int r;

	if (!c->conf.has_prev)
		return cni_fail(c, ZM_CNI_E_CONFIG, "no prevResult",
				"zmesh-cni is a chained plugin: list it after the plugin that "
				"creates the pod's interface");
	if (!c->pod.k8s || zm_cni_excluded(&c->conf, c->pod.namespace))
		return cni_print_result(c);
	if (!c->conf.n_addrs)
		return cni_fail(c, ZM_CNI_E_CONFIG, "prevResult gives the pod no address",
				c->ifname);
	r = cni_host_veth(c->netns, c->ifname, veth, c->err, sizeof(c->err));
	if (r)
		return cni_fail(c, r == -ENOENT ? ZM_CNI_E_CONTAINER : ZM_CNI_E_IO,
				"finding the pod's host-side interface failed", c->err);
	cni_pod_cgroup(c->netns, cgroup, sizeof(cgroup));
	req = cni_request(c, "add");
	json_object_object_add(req, "veth", json_object_new_string(veth));
	json_object_object_add(req, "cgroup", json_object_new_string(cgroup));
	json_object_object_add(req, "netns", json_object_new_string(c->netns));
	addrs = json_object_new_array();
	for (i = 0; i < c->conf.n_addrs; i++)
		json_object_array_add(
		    addrs, json_object_new_string(zm_addr_format(&c->conf.addrs[i], a, sizeof(a))));
	json_object_object_add(req, "addresses", addrs);
	if (cni_ask(c, req, &reply))
		return 1;
	json_object_put(reply);
	return cni_print_result(c);
}

static int cni_del(struct cni_ctx *c)
{
	json_object *req, *reply = NULL;
	int r;

	if (!c->pod.k8s || zm_cni_excluded(&c->conf, c->pod.namespace))
		return 0;
	/* No waiting: a missing ztunnel forgets the pod by itself (its veth will be gone). */
	req = cni_request(c, "del");
	r = cni_agent_call(c->conf.socket_path, 0, req, &reply, c->err, sizeof(c->err));
	json_object_put(req);
	if (r == -EAGAIN) {
		fprintf(stderr, "zmesh-cni: DEL %s: %s; nothing to undo here\n", c->container_id,
			c->err);
		return 0;
	}
	if (r)
		return cni_fail(c, ZM_CNI_E_IO, "talking to ztunnel failed", c->err);
	json_object_put(reply);
	return 0;
}

static int cni_check(struct cni_ctx *c)
{
	json_object *reply = NULL;

	if (!strncmp(c->conf.cni_version, "0.3.", 4))
		return cni_fail(c, ZM_CNI_E_VERSION, "CHECK needs cniVersion 0.4.0 or later",
				c->conf.cni_version);
	if (!c->conf.has_prev)
		return cni_fail(c, ZM_CNI_E_CONFIG, "no prevResult", "CHECK needs one");
	if (!c->pod.k8s || zm_cni_excluded(&c->conf, c->pod.namespace))
		return 0;
	if (cni_ask(c, cni_request(c, "check"), &reply))
		return 1;
	json_object_put(reply);
	return 0;
}

static int cni_run(struct cni_ctx *c)
{
	zm_cni_pod_default_ns(&c->conf, &c->pod);
	if (!strcmp(c->cmd, "ADD"))
		return cni_add(c);
	if (!strcmp(c->cmd, "DEL"))
		return cni_del(c);
	return cni_check(c);
}

/* Environment a command needs; CNI_NETNS is optional for DEL (the netns may be gone). */
static int cni_env(struct cni_ctx *c)
{
	bool del = !strcmp(c->cmd, "DEL");

	c->container_id = getenv("CNI_CONTAINERID");
	c->netns = getenv("CNI_NETNS");
	c->ifname = getenv("CNI_IFNAME");
	if (!c->container_id || !*c->container_id)
		return cni_fail(c, ZM_CNI_E_ENV, "CNI_CONTAINERID is not set", NULL);
	if (!c->ifname || !*c->ifname)
		return cni_fail(c, ZM_CNI_E_ENV, "CNI_IFNAME is not set", NULL);
	if (del)
		return 0;
	if (!c->netns || !*c->netns)
		return cni_fail(c, ZM_CNI_E_ENV, "CNI_NETNS is not set", NULL);
	if (zm_netns_check(c->netns, c->err, sizeof(c->err)))
		return cni_fail(c, ZM_CNI_E_CONTAINER, "the pod's network namespace is missing",
				c->err);
	return 0;
}

int cni_plugin_main(void)
{
	struct cni_ctx c = {.cmd = getenv("CNI_COMMAND")};
	size_t len = 0;
	int r, code;
	char *in;

	if (!strcmp(c.cmd, "VERSION")) {
		fputs(zm_cni_version_json(), stdout);
		return fflush(stdout) ? 1 : 0;
	}
	if (strcmp(c.cmd, "ADD") && strcmp(c.cmd, "DEL") && strcmp(c.cmd, "CHECK"))
		return cni_fail(&c, ZM_CNI_E_ENV, "unknown CNI_COMMAND", c.cmd);
	in = cni_read_stdin(&len);
	if (!in)
		return cni_fail(&c, ZM_CNI_E_IO, "reading the network config failed",
				strerror(errno));
	/* The config first: its cniVersion is the version of every error printed after. */
	code = zm_cni_conf_parse(in, len, getenv("CNI_IFNAME"), &c.conf, c.err, sizeof(c.err));
	free(in);
	if (code)
		r = cni_fail(&c, code, "invalid network config", c.err);
	else if ((r = cni_env(&c)))
		; /* printed */
	else if (zm_cni_args_parse(getenv("CNI_ARGS"), &c.pod, c.err, sizeof(c.err)))
		r = cni_fail(&c, ZM_CNI_E_ENV, "invalid CNI_ARGS", c.err);
	else
		r = cni_run(&c);
	zm_cni_conf_free(&c.conf);
	return r ? 1 : 0;
}
