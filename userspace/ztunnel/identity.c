// SPDX-License-Identifier: Apache-2.0
/*
 * The ztunnel's identities behind the identity-provider interface of lib/tls, one client and
 * one server TLS context shared by all workers, and the server's certificate choice by arrival
 * address (userspace/lib/hbone/README.md: no SNI, the destination IP names the workload). Two
 * sources:
 *   --ca-dir DIR alone: DIR is a dev CA (`zmeshctl ca init`) and this process signs itself;
 *   --ca-addr HOST:PORT --ca-dir DIR: certificates come from the CA service (zmesh-ca) and DIR
 *     only supplies ca-cert.pem (the trust bundle, one or more roots), node-cert.pem and
 *     node-key.pem (0600; the node's client certificate, from `zmesh-ca issue-node`). The
 *     identities of this node's workloads (config `node` == --node) are prefetched.
 * Without --ca-dir the ztunnel still relays plain legs, and refuses HBONE destinations with a
 * clear reason. ca-cert.pem may hold several roots (a root rotation: old and new together,
 * then the old removed); it and the node certificate are re-read on SIGHUP and when their
 * mtime changes, and only connections made afterwards see the new roots.
 */
#include <errno.h>
#include <json-c/json.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "caclient/caclient.h"
#include "config/config.h"
#include "obs/log.h"
#include "tls/tls.h"
#include "zt.h"

/* What the trust files looked like at the last (re)load: reload when any of it changes. */
struct zt_trust_files {
	struct timespec mtime[3];
	off_t size[3];
};

static struct zt_trust_files zt_trust_seen;

/* Server certificate: the local workload owning the address the connection arrived on. */
static int zt_cert_select(void *ud, const struct zm_addr *local, struct zm_cert **out)
{
	struct zt *zt = ud;
	const struct zm_cfg_workload *wl;
	char id[ZT_ID_LEN], err[256];
	struct zt_snap *s = zt_state_get();
	int r = -ENOENT;

	wl = s ? zt_route_local_workload(s, local) : NULL;
	if (wl && !zm_cfg_workload_identity(wl, id, sizeof(id)))
		r = zm_identity_get(zt->idp, id, out, err, sizeof(err));
	zt_state_put(s);
	if (r) {
		char a[ZM_ADDR_STRLEN];

		obs_log(OBS_WARN, "identity", "no server certificate for %s: %s",
			zm_addr_format(local, a, sizeof(a)),
			r == -ENOENT ? "no workload of this node has that address" : err);
	}
	return r;
}

/* The caclient's wanted set: identities of the workloads the current config puts here. */
static int zt_identity_wanted(void *ud, void (*add)(void *ctx, const char *id), void *ctx)
{
	struct zt *zt = ud;
	struct zt_snap *s = zt_state_get();
	char id[ZT_ID_LEN];

	if (!s)
		return -ENOENT;
	for (size_t i = 0; i < s->cfg->n_workloads; i++) {
		const struct zm_cfg_workload *wl = &s->cfg->workloads[i];

		if (wl->node && !strcmp(wl->node, zt->opts.node) &&
		    !zm_cfg_workload_identity(wl, id, sizeof(id)))
			add(ctx, id);
	}
	zt_state_put(s);
	return 0;
}

/*
 * istiod's way (--token-file, no node certificate in --ca-dir): the CA authenticates the
 * Bearer token and issues each workload's certificate on the ImpersonatedIdentity it asks
 * for. Takes o->roots.
 */
static int zt_identity_token_mode(struct zt *zt, struct zm_caclient_opts *o, char *err, size_t len)
{
	const char *td = getenv("TRUST_DOMAIN");
	int r;

	snprintf(zt->trust_domain, sizeof(zt->trust_domain), "%s",
		 td && *td ? td : "cluster.local");
	o->token_file = zt->opts.token_file;
	o->cluster_id = zt->opts.cluster_id;
	o->trust_domain = zt->trust_domain;
	/* istiod's serving name, as for xDS (its CA shares the port and certificate) */
	o->server_id = zt->opts.cp_name ? zt->opts.cp_name : "istiod.istio-system.svc";
	r = zm_caclient_provider_new(o, &zt->idp, err, len);
	if (!r)
		obs_log(OBS_INFO, "identity", "certificates from the CA at %s (Bearer token %s)",
			zt->opts.ca_addr, zt->opts.token_file);
	zm_tls_roots_put(o->roots);
	return r;
}

/* --ca-addr: roots and node certificate from --ca-dir, workload certificates from the CA. */
static int zt_identity_from_ca(struct zt *zt, char *err, size_t len)
{
	char cpath[4096], kpath[4096], rpath[4096];
	struct zm_caclient_opts o = {
	    .addr = zt->opts.ca_addr, .wanted = zt_identity_wanted, .wanted_ud = zt};
	struct zm_spiffe_id sid;
	struct stat st;
	int r;

	snprintf(rpath, sizeof(rpath), "%s/%s", zt->opts.ca_dir, ZM_CA_CERT_FILE);
	snprintf(cpath, sizeof(cpath), "%s/%s", zt->opts.ca_dir, ZM_NODE_CERT_FILE);
	snprintf(kpath, sizeof(kpath), "%s/%s", zt->opts.ca_dir, ZM_NODE_KEY_FILE);
	if (!stat(kpath, &st) && (st.st_mode & 077)) {
		snprintf(err, len, "%s is accessible by group/others (mode %03o); chmod 600 it",
			 kpath, (unsigned int)(st.st_mode & 0777));
		return -EPERM;
	}
	r = zm_tls_roots_load(rpath, &o.roots, err, len);
	if (r)
		return r;
	if (zt->opts.token_file && stat(cpath, &st))
		return zt_identity_token_mode(zt, &o, err, len);
	r = zm_cert_load_pem(cpath, kpath, &o.node, err, len);
	if (!r && zm_spiffe_id_parse(zm_cert_identity(o.node), &sid))
		r = -EINVAL, snprintf(err, len, "%s: not a SPIFFE node identity", cpath);
	if (!r) {
		snprintf(zt->trust_domain, sizeof(zt->trust_domain), "%s", sid.trust_domain);
		o.token_file = zt->opts.token_file;
		o.cluster_id = zt->opts.cluster_id;
		r = zm_caclient_provider_new(&o, &zt->idp, err, len);
	}
	if (!r)
		obs_log(OBS_INFO, "identity", "certificates from the CA at %s (node identity %s)",
			zt->opts.ca_addr, zm_cert_identity(o.node));
	zm_cert_put(o.node);
	zm_tls_roots_put(o.roots);
	return r;
}

/* One dev-provider entry in the shape of zm_caclient_provider_dump(). */
static void zt_dev_cert_json(void *ud, const char *id, const struct zm_cert *cert)
{
	json_object *o = json_object_new_object();
	time_t now = time(NULL), rot = zm_cert_rotate_at(cert);
	char buf[256], serial[128];

	X509_NAME_oneline(X509_get_issuer_name(zm_cert_x509(cert)), buf, sizeof(buf));
	json_object_object_add(o, "identity", json_object_new_string(id));
	json_object_object_add(o, "state",
			       json_object_new_string(now >= zm_cert_not_after(cert) ? "expired"
						      : now >= rot		     ? "rotating"
										     : "valid"));
	json_object_object_add(o, "wanted", json_object_new_boolean(true));
	json_object_object_add(
	    o, "serial", json_object_new_string(zm_cert_serial(cert, serial, sizeof(serial))));
	json_object_object_add(o, "issuer", json_object_new_string(buf));
	json_object_object_add(o, "not_before", json_object_new_int64(zm_cert_not_before(cert)));
	json_object_object_add(o, "not_after", json_object_new_int64(zm_cert_not_after(cert)));
	json_object_object_add(o, "rotate_in_s", json_object_new_int64(rot > now ? rot - now : 0));
	json_object_array_add(ud, o);
}

/*
 * JSON array of this node's certificates (admin /certs): the CA client's entries, or the dev
 * provider's cache; "[]" without --ca-dir. NULL only when out of memory.
 */
char *zt_identity_certs_json(struct zt *zt)
{
	json_object *arr;
	char *out;

	if (zm_caclient_provider_is(zt->idp))
		return zm_caclient_provider_dump(zt->idp);
	arr = json_object_new_array();
	if (!arr)
		return NULL;
	if (zt->idp)
		zm_dev_provider_each(zt->idp, zt_dev_cert_json, arr);
	out = strdup(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN));
	json_object_put(arr);
	return out;
}

/* Snapshot of ca-cert.pem, node-cert.pem and node-key.pem (missing files count as zero). */
static void zt_trust_files_stat(struct zt *zt, struct zt_trust_files *t)
{
	static const char *const names[3] = {ZM_CA_CERT_FILE, ZM_NODE_CERT_FILE, ZM_NODE_KEY_FILE};
	char path[4096];
	struct stat st;

	memset(t, 0, sizeof(*t));
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", zt->opts.ca_dir, names[i]);
		if (!stat(path, &st)) {
			t->mtime[i] = st.st_mtim;
			t->size[i] = st.st_size;
		}
	}
}

/* The node certificate of --ca-addr mode, when both files are there (NULL: keep the old). */
static struct zm_cert *zt_node_cert_reload(struct zt *zt)
{
	char cpath[4096], kpath[4096], err[256];
	struct zm_cert *node = NULL;
	struct stat st;

	snprintf(cpath, sizeof(cpath), "%s/%s", zt->opts.ca_dir, ZM_NODE_CERT_FILE);
	snprintf(kpath, sizeof(kpath), "%s/%s", zt->opts.ca_dir, ZM_NODE_KEY_FILE);
	if (stat(kpath, &st) || (st.st_mode & 077)) {
		obs_log(OBS_WARN, "identity", "%s missing or not mode 0600: node certificate kept",
			kpath);
		return NULL;
	}
	if (zm_cert_load_pem(cpath, kpath, &node, err, sizeof(err))) {
		obs_log(OBS_WARN, "identity", "node certificate kept: %s", err);
		return NULL;
	}
	return node;
}

void zt_identity_reload(struct zt *zt, bool force)
{
	struct zm_tls_roots *roots = NULL;
	struct zm_cert *node = NULL;
	struct zt_trust_files now;
	char path[4096], err[256];

	if (!zt->idp || !zt->opts.ca_dir)
		return;
	zt_trust_files_stat(zt, &now);
	if (!force && !memcmp(&now, &zt_trust_seen, sizeof(now)))
		return;
	zt_trust_seen = now;
	snprintf(path, sizeof(path), "%s/%s", zt->opts.ca_dir, ZM_CA_CERT_FILE);
	if (zm_tls_roots_load(path, &roots, err, sizeof(err))) {
		/* A half-written or emptied bundle must not take trust away: keep the old. */
		obs_log(OBS_WARN, "identity", "trust bundle kept: %s", err);
		return;
	}
	zm_tls_ctx_set_roots(zt->tls_client, roots);
	zm_tls_ctx_set_roots(zt->tls_server, roots);
	if (zm_caclient_provider_is(zt->idp)) {
		node = zt_node_cert_reload(zt);
		zm_caclient_provider_update(zt->idp, roots, node);
	}
	obs_log(OBS_INFO, "identity", "trust bundle %s reloaded: %d root%s%s", path,
		zm_tls_roots_count(roots), zm_tls_roots_count(roots) == 1 ? "" : "s",
		node ? ", node certificate reloaded, workload certificates re-fetched" : "");
	zm_cert_put(node);
	zm_tls_roots_put(roots);
}

int zt_identity_init(struct zt *zt, char *err, size_t len)
{
	struct zm_tls_roots *roots;
	struct zm_ca *ca;
	int r;

	if (zt->opts.ca_addr && !zt->opts.ca_dir) {
		snprintf(err, len, "--ca-addr needs --ca-dir DIR with ca-cert.pem, %s and %s",
			 ZM_NODE_CERT_FILE, ZM_NODE_KEY_FILE);
		return -EINVAL;
	}
	if (!zt->opts.ca_dir)
		return 0;
	zt_trust_files_stat(zt, &zt_trust_seen);
	if (zt->opts.ca_addr) {
		r = zt_identity_from_ca(zt, err, len);
		if (r)
			return r;
		goto contexts;
	}
	r = zm_ca_load(zt->opts.ca_dir, &ca, err, len);
	if (r)
		return r;
	snprintf(zt->trust_domain, sizeof(zt->trust_domain), "%s", zm_ca_trust_domain(ca));
	r = zm_dev_provider_new(ca, 0, &zt->idp, err, len);
	if (r) {
		zm_ca_free(ca);
		return r;
	}
contexts:
	roots = zt->idp->roots(zt->idp);
	r = zm_tls_client_ctx_new(roots, &zt->tls_client, err, len);
	if (!r)
		r = zm_tls_server_ctx_new(roots, zt->trust_domain, zt_cert_select, zt,
					  &zt->tls_server, err, len);
	zm_tls_roots_put(roots);
	if (r)
		zt_identity_fini(zt);
	return r;
}

void zt_identity_fini(struct zt *zt)
{
	zm_tls_ctx_put(zt->tls_client);
	zm_tls_ctx_put(zt->tls_server);
	zm_identity_provider_free(zt->idp);
	zt->tls_client = zt->tls_server = NULL;
	zt->idp = NULL;
}
