// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of lib/cni, the pure half of zmesh-cni: the network config and prevResult a
 * runtime passes (which addresses are the pod's, defaults, refusals with the spec's codes),
 * CNI_ARGS, the error object and result printed back, and the conflist edit of install and
 * uninstall (last in the chain, a .conf turned into a conflist, idempotent, undone).
 */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "cni/cni.h"
#include "common/addr.h"
#include "tap.h"

static const char ptp_conf[] =
    "{\"cniVersion\":\"1.0.0\",\"name\":\"zmt\",\"type\":\"zmesh-cni\","
    "\"socketPath\":\"/run/x/cni.sock\",\"agentWaitSeconds\":3,"
    "\"excludeNamespaces\":[\"kube-system\",\"zmesh-system\"],\"runtimeConfig\":{},"
    "\"prevResult\":{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"veth1\"},"
    "{\"name\":\"eth0\",\"sandbox\":\"/var/run/netns/p\"},{\"name\":\"net1\",\"sandbox\":\"/x\"}],"
    "\"ips\":[{\"interface\":1,\"address\":\"198.18.1.20/24\",\"gateway\":\"198.18.1.1\"},"
    "{\"interface\":1,\"address\":\"2001:2:0:1::20/64\"},{\"interface\":0,\"address\":\"198.18.1.1/"
    "32\"},"
    "{\"interface\":2,\"address\":\"198.18.9.9/24\"}]}}";

static void test_conf(void)
{
	struct zm_cni_conf c;
	char err[256], a[ZM_ADDR_STRLEN], *res;
	const char *bad[][2] = {
	    {"", "6"},
	    {"[1,2]", "6"},
	    {"{\"cniVersion\":\"1.0.0\"} trailing", "6"},
	    {"{\"name\":\"x\"}", "1"},
	    {"{\"cniVersion\":\"2.0.0\"}", "1"},
	    {"{\"cniVersion\":1}", "1"},
	    {"{\"cniVersion\":\"1.0.0\",\"socketPath\":\"relative\"}", "7"},
	    {"{\"cniVersion\":\"1.0.0\",\"agentWaitSeconds\":\"3\"}", "7"},
	    {"{\"cniVersion\":\"1.0.0\",\"agentWaitSeconds\":100000}", "7"},
	    {"{\"cniVersion\":\"1.0.0\",\"excludeNamespaces\":\"kube-system\"}", "7"},
	    {"{\"cniVersion\":\"1.0.0\",\"prevResult\":[]}", "7"},
	    {"{\"cniVersion\":\"1.0.0\",\"prevResult\":{\"ips\":[{\"address\":\"nope\"}]}}", "7"},
	    {"{\"cniVersion\":\"1.0.0\",\"prevResult\":{\"ips\":[{\"interface\":5,"
	     "\"address\":\"1.2.3.4/8\"}]}}",
	     "7"},
	};
	size_t i;

	is_int(zm_cni_conf_parse(ptp_conf, strlen(ptp_conf), "eth0", &c, err, sizeof(err)), 0,
	       "ptp's result parses");
	is_str(c.socket_path, "/run/x/cni.sock", "socketPath read");
	is_int(c.agent_wait_s, 3, "agentWaitSeconds read");
	ok(zm_cni_excluded(&c, "zmesh-system") && !zm_cni_excluded(&c, "demo"),
	   "excludeNamespaces");
	is_int(c.n_addrs, 2,
	       "only eth0's addresses are the pod's (not the host veth's, not net1's)");
	is_str(zm_addr_format(&c.addrs[0], a, sizeof(a)), "198.18.1.20", "IPv4 without prefix");
	is_str(zm_addr_format(&c.addrs[1], a, sizeof(a)), "2001:2:0:1::20", "IPv6 without prefix");
	res = zm_cni_result_json(&c);
	ok(res && strstr(res, "\"sandbox\":\"/var/run/netns/p\"") && strstr(res, "198.18.9.9/24"),
	   "the result is prevResult unchanged (paths unescaped)");
	free(res);
	zm_cni_conf_free(&c);

	is_int(zm_cni_conf_parse("{\"cniVersion\":\"0.3.1\",\"name\":\"n\"}", 33, NULL, &c, err,
				 sizeof(err)),
	       0, "a config without our fields is fine");
	is_str(c.socket_path, ZM_CNI_SOCKET_DEFAULT, "default socket");
	is_int(c.agent_wait_s, ZM_CNI_WAIT_DEFAULT, "default wait");
	ok(!c.has_prev && !c.n_addrs, "no prevResult noted");
	zm_cni_conf_free(&c);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		is_int(
		    zm_cni_conf_parse(bad[i][0], strlen(bad[i][0]), "eth0", &c, err, sizeof(err)),
		    atoi(bad[i][1]), "refused with code %s: %s (%s)", bad[i][1], bad[i][0], err);
		zm_cni_conf_free(&c);
	}
	is_int(zm_cni_conf_parse("{\"cniVersion\":\"1.0.0\"}\0x", 24, "eth0", &c, err, sizeof(err)),
	       ZM_CNI_E_DECODE, "a NUL byte is refused");
	zm_cni_conf_free(&c);
}

static void test_args(void)
{
	struct zm_cni_pod p;
	char err[128];

	is_int(zm_cni_args_parse("IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=a1;"
				 "K8S_POD_INFRA_CONTAINER_ID=x;K8S_POD_UID=u-1",
				 &p, err, sizeof(err)),
	       0, "kubelet's CNI_ARGS parse");
	ok(p.k8s && !strcmp(p.namespace, "demo") && !strcmp(p.name, "a1") && !strcmp(p.uid, "u-1"),
	   "namespace, name and uid");
	is_int(zm_cni_args_parse(NULL, &p, err, sizeof(err)), 0, "no CNI_ARGS is fine");
	ok(!p.k8s, "and is not a Kubernetes pod");
	is_int(zm_cni_args_parse("K8S_POD_NAME=a;;", &p, err, sizeof(err)), 0,
	       "empty pairs skipped");
	ok(!p.k8s, "a name without a namespace is not a Kubernetes pod");
	is_int(zm_cni_args_parse("K8S_POD_NAME", &p, err, sizeof(err)), ZM_CNI_E_ENV,
	       "a pair without '=' is refused");
}

static void test_default_ns(void)
{
	const char *conf = "{\"cniVersion\":\"1.0.0\",\"defaultNamespace\":\"podman\"}";
	struct zm_cni_conf c;
	struct zm_cni_pod p;
	char err[128];

	is_int(zm_cni_conf_parse(conf, strlen(conf), NULL, &c, err, sizeof(err)), 0,
	       "defaultNamespace parses");
	zm_cni_args_parse("IgnoreUnknown=1;K8S_POD_NAME=a1", &p, err, sizeof(err));
	zm_cni_pod_default_ns(&c, &p);
	ok(p.k8s && !strcmp(p.namespace, "podman") && !strcmp(p.name, "a1"),
	   "a pod named without a namespace (podman) takes defaultNamespace");
	zm_cni_args_parse("K8S_POD_NAMESPACE=demo;K8S_POD_NAME=a1", &p, err, sizeof(err));
	zm_cni_pod_default_ns(&c, &p);
	ok(!strcmp(p.namespace, "demo"), "a namespace from CNI_ARGS wins");
	zm_cni_conf_free(&c);
}

static void test_error(void)
{
	char *e = zm_cni_error_json("0.4.0", 11, "ztunnel on this node is not ready", "d\"q");
	json_object *o = e ? json_tokener_parse(e) : NULL, *v;

	ok(o && json_object_object_get_ex(o, "code", &v) && json_object_get_int(v) == 11,
	   "error object has code");
	ok(o && json_object_object_get_ex(o, "msg", &v) &&
	       json_object_object_get_ex(o, "details", &v) &&
	       !strcmp(json_object_get_string(v), "d\"q"),
	   "msg and details (escaped)");
	ok(o && json_object_object_get_ex(o, "cniVersion", &v) &&
	       !strcmp(json_object_get_string(v), "0.4.0"),
	   "cniVersion of the config");
	json_object_put(o);
	free(e);
	e = zm_cni_error_json("garbage", 1, "m", NULL);
	ok(e && strstr(e, "\"1.0.0\""), "an unsupported version prints 1.0.0");
	free(e);
}

static void test_conflist(void)
{
	const char *list = "{\"cniVersion\":\"1.0.0\",\"name\":\"k8s\",\"plugins\":[{\"type\":"
			   "\"flannel\"},{\"type\":\"portmap\"}]}";
	const char *conf = "{\"cniVersion\":\"0.3.1\",\"name\":\"br\",\"type\":\"bridge\"}";
	const char *entry = "{\"type\":\"zmesh-cni\",\"socketPath\":\"/var/run/zmesh/cni.sock\"}";
	const char *entry2 = "{\"type\":\"zmesh-cni\",\"socketPath\":\"/other/cni.sock\"}";
	char err[256], *out, *again, *rm;
	json_object *o, *pl, *v;
	bool changed;

	is_int(zm_cni_conflist_insert(list, strlen(list), entry, &out, &changed, err, sizeof(err)),
	       0, "insert into a conflist");
	o = json_tokener_parse(out);
	ok(changed && o && json_object_object_get_ex(o, "plugins", &pl) &&
	       json_object_array_length(pl) == 3 &&
	       strstr(json_object_to_json_string(json_object_array_get_idx(pl, 2)), "zmesh-cni"),
	   "zmesh-cni appended last");
	ok(strstr(out, "\"/var/run/zmesh/cni.sock\""), "paths are written unescaped");
	json_object_put(o);
	is_int(zm_cni_conflist_insert(out, strlen(out), entry, &again, &changed, err, sizeof(err)),
	       0, "insert again");
	ok(!changed && !strcmp(out, again), "a conflist that has the entry is not changed twice");
	free(again);
	is_int(zm_cni_conflist_insert(out, strlen(out), entry2, &again, &changed, err, sizeof(err)),
	       0, "insert with other settings");
	ok(changed && strstr(again, "/other/cni.sock") && !strstr(again, "/var/run/zmesh"),
	   "the old entry is replaced, not duplicated");
	free(again);
	is_int(zm_cni_conflist_remove(out, strlen(out), &rm, &changed, err, sizeof(err)), 0,
	       "remove");
	ok(changed && !strstr(rm, "zmesh-cni") && strstr(rm, "flannel") && strstr(rm, "portmap"),
	   "remove takes only our entry out");
	free(rm);
	free(out);

	is_int(zm_cni_conflist_insert(conf, strlen(conf), entry, &out, &changed, err, sizeof(err)),
	       0, "insert into a single-plugin .conf");
	o = json_tokener_parse(out);
	ok(changed && o && json_object_object_get_ex(o, "plugins", &pl) &&
	       json_object_array_length(pl) == 2 && strstr(out, "\"0.3.1\"") &&
	       !json_object_object_get_ex(json_object_array_get_idx(pl, 0), "name", NULL) &&
	       json_object_object_get_ex(o, "name", &v) && !strcmp(json_object_get_string(v), "br"),
	   "it becomes a conflist of bridge + zmesh-cni (version and name on the list)");
	json_object_put(o);
	free(out);
	ok(zm_cni_conflist_insert("{\"x\":1}", 7, entry, &out, &changed, err, sizeof(err)) < 0 &&
	       !out,
	   "neither a conflist nor a plugin config is refused: %s", err);
	ok(zm_cni_conflist_insert(list, strlen(list), "{\"type\":\"other\"}", &out, &changed, err,
				  sizeof(err)) < 0,
	   "an entry of another type is refused");
}

int main(void)
{
	test_conf();
	test_args();
	test_default_ns();
	test_error();
	test_conflist();
	return tap_done();
}
