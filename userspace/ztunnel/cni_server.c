// SPDX-License-Identifier: Apache-2.0
/*
 * The socket zmesh-cni talks to: RUN_DIR/cni.sock (mode 0600: root only), served on a thread
 * of its own from the moment ztunnel is first ready (listeners up, first enrollment done)
 * until /drain or the stop; otherwise the socket does not exist, which the plugin reads as
 * "ztunnel is not up yet" and fails the ADD so the pod never starts outside the mesh. Being
 * unready for a while later (a new pod's certificate not issued yet, an address still to
 * enroll) does not take the socket away: that would refuse every other new pod on the node
 * meanwhile, and an ADD that cannot be carried out fails on its own (below). One request per
 * connection: a JSON object ending in a newline (at most 64 KiB, 2 s to arrive), one JSON line
 * back:
 *
 *   {"op":"add","containerId":..,"namespace":..,"name":..,"uid":..,"veth":..,"cgroup":..,
 *    "addresses":[..]}        -> {"ok":true,"mesh":true,"identity":"spiffe://..",
 *                                "protocol":"HBONE","addresses":[..]} or {"ok":true,"mesh":false}
 *   {"op":"del","containerId":..}   -> {"ok":true}  (unknown containers too: DEL is idempotent)
 *   {"op":"check","containerId":..} -> {"ok":true,"mesh":..} when the pod is as ADD left it
 *   {"op":"list"}                   -> {"ok":true,"pods":[..]}
 *   any failure                     -> {"ok":false,"error":"sentence"}
 *
 * An ADD that cannot be carried out whole is undone (record removed, model rebuilt, addresses
 * unenrolled) before the error goes back: nothing is left half-enrolled.
 */
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/errf.h"
#include "config/config.h"
#include "agent.h"
#include "obs/log.h"
#include "zt.h"

#define ZT_CNI_MAX_REQ (64 * 1024)

static pthread_t zt_cni_thread;
static bool zt_cni_running;
static char zt_cni_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

/* The snapshot's workload for the pod: same namespace and name, on this node. */
static const struct zm_cfg_workload *zt_cni_workload(const struct zt_snap *s, const char *node,
						     const char *ns, const char *name)
{
	size_t i;

	for (i = 0; i < s->cfg->n_workloads; i++) {
		const struct zm_cfg_workload *w = &s->cfg->workloads[i];

		if (!strcmp(w->namespace, ns) && !strcmp(w->name, name) && !strcmp(w->node, node) &&
		    w->network_mode == ZM_CFG_NETMODE_STANDARD)
			return w;
	}
	return NULL;
}

/* Rebuild the model from the file and the pod table, then enroll what it says. */
static int zt_cni_rebuild(struct zt *zt, char *err, size_t len)
{
	struct zt_snap *s;
	int r = zt_state_load(zt, err, len);

	if (r)
		return r;
	s = zt_state_get();
	zt_enroll_sync(zt, s);
	zt_state_put(s);
	zt_state_mark_news();
	return 0;
}

/* Adds the mesh verdict for pod p to reply; for an HBONE workload every address must be in. */
static int zt_cni_verdict(struct zt *zt, const struct zt_agent_pod *p, json_object *reply,
			  char *err, size_t len)
{
	struct zt_snap *s = zt_state_get();
	const struct zm_cfg_workload *w = zt_cni_workload(s, zt->opts.node, p->namespace, p->name);
	char id[ZT_ID_LEN], a[ZM_ADDR_STRLEN], why[256];
	json_object *addrs;
	size_t i;
	int r = 0;

	json_object_object_add(reply, "mesh", json_object_new_boolean(w != NULL));
	if (!w)
		goto out;
	zm_cfg_workload_identity(w, id, sizeof(id));
	json_object_object_add(reply, "identity", json_object_new_string(id));
	json_object_object_add(reply, "protocol",
			       json_object_new_string(zm_cfg_protocol_name(w->protocol)));
	addrs = json_object_new_array();
	json_object_object_add(reply, "addresses", addrs);
	for (i = 0; i < p->n_addrs; i++) {
		zm_addr_format(&p->addrs[i], a, sizeof(a));
		if (w->protocol == ZM_CFG_PROTO_HBONE && !zt->opts.no_enroll &&
		    !zt_enroll_has(&p->addrs[i])) {
			zt_enroll_last_error(why, sizeof(why));
			r = zm_errf(err, len, -EAGAIN, "enrolling %s of %s/%s on %s failed: %s", a,
				    p->namespace, p->name, p->veth, why);
			break;
		}
		json_object_array_add(addrs, json_object_new_string(a));
	}
out:
	zt_state_put(s);
	return r;
}

static int zt_cni_add(struct zt *zt, json_object *req, json_object *reply, char *err, size_t len)
{
	struct zt_agent_pod p, old;
	char who[ZT_AGENT_NAME_LEN * 2 + 2], undo[256];
	bool had_old;
	int r;

	r = zt_agent_pod_from_json(req, &p, err, len);
	if (r)
		return r;
	if (!if_nametoindex(p.veth))
		return zm_errf(err, len, -ENODEV, "no interface %s in the node namespace", p.veth);
	if (zt_agent_addr_taken(&p, who, sizeof(who)))
		return zm_errf(err, len, -EEXIST, "an address of %s/%s is held by pod %s",
			       p.namespace, p.name, who);
	/* With the Kubernetes API: the verdict below must see this pod (and its namespace). */
	r = zt_kube_cni_pod(p.namespace, p.name, err, len);
	if (r)
		return r;
	had_old = zt_agent_get(p.container_id, &old);
	r = zt_agent_add(&p);
	if (r)
		return zm_errf(err, len, r, "more than %d pods on this node", ZT_AGENT_MAX_PODS);
	r = zt_cni_rebuild(zt, err, len);
	if (!r)
		r = zt_cni_verdict(zt, &p, reply, err, len);
	if (r) {
		/* Undo: back to the table as it was, then enroll what that says. */
		zt_agent_del(p.container_id, NULL);
		if (had_old)
			zt_agent_add(&old);
		zt_cni_rebuild(zt, undo, sizeof(undo));
		return r;
	}
	zt_agent_save();
	obs_log(OBS_INFO, "cni", "pod %s/%s (%s) on %s announced", p.namespace, p.name,
		p.container_id, p.veth);
	return 0;
}

static int zt_cni_del(struct zt *zt, json_object *req, char *err, size_t len)
{
	struct zt_agent_pod p;
	json_object *v;

	if (!json_object_object_get_ex(req, "containerId", &v) ||
	    !json_object_is_type(v, json_type_string))
		return zm_errf(err, len, -EINVAL, "containerId is missing");
	if (!zt_agent_del(json_object_get_string(v), &p))
		return 0;
	zt_agent_save();
	obs_log(OBS_INFO, "cni", "pod %s/%s (%s) withdrawn", p.namespace, p.name, p.container_id);
	return zt_cni_rebuild(zt, err, len);
}

static int zt_cni_check(struct zt *zt, json_object *req, json_object *reply, char *err, size_t len)
{
	struct zt_agent_pod p;
	json_object *v;

	if (!json_object_object_get_ex(req, "containerId", &v) ||
	    !json_object_is_type(v, json_type_string))
		return zm_errf(err, len, -EINVAL, "containerId is missing");
	if (!zt_agent_get(json_object_get_string(v), &p))
		return zm_errf(err, len, -ENOENT, "container %.128s was never announced by ADD",
			       json_object_get_string(v));
	if (!if_nametoindex(p.veth))
		return zm_errf(err, len, -ENODEV, "the pod's interface %s is gone", p.veth);
	return zt_cni_verdict(zt, &p, reply, err, len);
}

static json_object *zt_cni_dispatch(struct zt *zt, const char *buf, size_t n)
{
	json_object *req = json_tokener_parse(buf), *reply = json_object_new_object(), *v;
	char err[512] = "";
	const char *op = NULL;
	char *dump;
	int r = -EINVAL;

	if (!req || !json_object_is_type(req, json_type_object) ||
	    !json_object_object_get_ex(req, "op", &v) || !json_object_is_type(v, json_type_string))
		snprintf(err, sizeof(err), "not a request (%zu bytes): want {\"op\": ...}", n);
	else
		op = json_object_get_string(v);
	if (!op)
		;
	else if (!strcmp(op, "add"))
		r = zt_cni_add(zt, req, reply, err, sizeof(err));
	else if (!strcmp(op, "del"))
		r = zt_cni_del(zt, req, err, sizeof(err));
	else if (!strcmp(op, "check"))
		r = zt_cni_check(zt, req, reply, err, sizeof(err));
	else if (!strcmp(op, "list") && (dump = zt_agent_dump())) {
		json_object_object_add(reply, "pods", json_tokener_parse(dump));
		free(dump);
		r = 0;
	} else
		snprintf(err, sizeof(err), "unknown op \"%.32s\"", op);
	if (r) {
		json_object_put(reply);
		reply = json_object_new_object();
		json_object_object_add(reply, "error", json_object_new_string(err));
		obs_log(OBS_WARN, "cni", "%.32s request refused: %s", op ? op : "bad", err);
	}
	json_object_put(req); /* op points into it */
	json_object_object_add(reply, "ok", json_object_new_boolean(!r));
	return reply;
}

static void zt_cni_serve(struct zt *zt, int fd)
{
	struct timeval tv = {2, 0};
	char *buf = malloc(ZT_CNI_MAX_REQ + 1);
	size_t n = 0, wlen;
	json_object *reply;
	const char *out;
	ssize_t r;

	if (!buf)
		return;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (n < ZT_CNI_MAX_REQ && !memchr(buf, '\n', n)) {
		r = read(fd, buf + n, ZT_CNI_MAX_REQ - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	reply = zt_cni_dispatch(zt, buf, n);
	out = json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN |
							JSON_C_TO_STRING_NOSLASHESCAPE);
	wlen = strlen(out);
	if (write(fd, out, wlen) != (ssize_t)wlen || write(fd, "\n", 1) != 1)
		obs_log(OBS_WARN, "cni", "reply lost: %s", strerror(errno));
	json_object_put(reply);
	free(buf);
}

/* The file our socket is bound to: at exit it is removed only if it is still that one. */
static struct stat zt_cni_node;

static int zt_cni_listen(void)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	memcpy(sun.sun_path, zt_cni_path, sizeof(sun.sun_path));
	unlink(zt_cni_path); /* a socket left by a ztunnel that died */
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) || chmod(zt_cni_path, 0600) ||
	    lstat(zt_cni_path, &zt_cni_node) || listen(fd, 64)) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

static void *zt_cni_main(void *arg)
{
	struct zt *zt = arg;
	struct pollfd p = {.events = POLLIN};
	struct stat now;
	int c;

	/* Only a ready ztunnel may accept pods: until then the plugin finds no socket. */
	while (!atomic_load(&zt->ready) && !atomic_load(&zt->stop))
		usleep(20000);
	if (atomic_load(&zt->stop))
		return NULL;
	p.fd = zt_cni_listen();
	if (p.fd < 0) {
		obs_log(OBS_ERROR, "cni", "listening on %s failed: %s (pods cannot start)",
			zt_cni_path, strerror(-p.fd));
		return NULL;
	}
	obs_log(OBS_INFO, "cni", "accepting pods on %s", zt_cni_path);
	/* Draining (preStop's /drain) or stopping: new pods wait for the next ztunnel. */
	while (!atomic_load(&zt->stop) && !atomic_load(&zt->draining)) {
		if (poll(&p, 1, 250) <= 0)
			continue;
		c = accept4(p.fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		zt_cni_serve(zt, c);
		close(c);
	}
	/*
	 * Gone before the process is: new pods wait for the next ztunnel. After a hand-over the
	 * path may already be the new ztunnel's socket: only our own is removed.
	 */
	if (!lstat(zt_cni_path, &now) && now.st_ino == zt_cni_node.st_ino &&
	    now.st_dev == zt_cni_node.st_dev)
		unlink(zt_cni_path);
	close(p.fd);
	return NULL;
}

int zt_cni_server_start(struct zt *zt)
{
	int r;

	if (!zt->opts.run_dir)
		return 0;
	if (snprintf(zt_cni_path, sizeof(zt_cni_path), "%s/cni.sock", zt->opts.run_dir) >=
	    (int)sizeof(zt_cni_path)) {
		obs_log(OBS_ERROR, "cni", "--run-dir %s is too long for a socket path",
			zt->opts.run_dir);
		return -ENAMETOOLONG;
	}
	r = pthread_create(&zt_cni_thread, NULL, zt_cni_main, zt);
	if (r)
		return -r;
	zt_cni_running = true;
	return 0;
}

void zt_cni_server_stop(struct zt *zt)
{
	(void)zt;
	if (zt_cni_running)
		pthread_join(zt_cni_thread, NULL);
	zt_cni_running = false;
}
