// SPDX-License-Identifier: Apache-2.0
/*
 * The ztunnel's identities behind the identity-provider interface of lib/tls, one client and
 * one server TLS context shared by all workers, and the server's certificate choice by arrival
 * address (DESIGN.md section 3: no SNI, the destination IP names the workload). Two sources:
 *   --ca-dir DIR alone: DIR is a dev CA (`zmeshctl ca init`) and this process signs itself;
 *   --ca-addr HOST:PORT --ca-dir DIR: certificates come from the CA service (zmesh-ca) and DIR
 *     only supplies ca-cert.pem (the trust bundle, one or more roots), node-cert.pem and
 *     node-key.pem (0600; the node's client certificate, from `zmesh-ca issue-node`). The
 *     identities of this node's workloads (config `node` == --node) are prefetched.
 * Without --ca-dir the ztunnel still relays plain legs, and refuses HBONE destinations with a
 * clear reason.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "caclient/caclient.h"
#include "config/config.h"
#include "tls/tls.h"
#include "zt.h"

/* --ca-addr (set by main.c; belongs in struct zt_opts once zt.h is free to change). */
const char *zt_ca_addr;

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

		fprintf(stderr, "ztunnel: no server certificate for %s: %s\n",
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

/* --ca-addr: roots and node certificate from --ca-dir, workload certificates from the CA. */
static int zt_identity_from_ca(struct zt *zt, char *err, size_t len)
{
	char cpath[4096], kpath[4096], rpath[4096];
	struct zm_caclient_opts o = {.addr = zt_ca_addr, .wanted = zt_identity_wanted,
				     .wanted_ud = zt};
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
	r = zm_cert_load_pem(cpath, kpath, &o.node, err, len);
	if (!r && zm_spiffe_id_parse(zm_cert_identity(o.node), &sid))
		r = -EINVAL, snprintf(err, len, "%s: not a SPIFFE node identity", cpath);
	if (!r) {
		snprintf(zt->trust_domain, sizeof(zt->trust_domain), "%s", sid.trust_domain);
		r = zm_caclient_provider_new(&o, &zt->idp, err, len);
	}
	if (!r)
		fprintf(stderr, "ztunnel: certificates from the CA at %s (node identity %s)\n",
			zt_ca_addr, zm_cert_identity(o.node));
	zm_cert_put(o.node);
	zm_tls_roots_put(o.roots);
	return r;
}

/* JSON array of the CA client's certificates (admin /certs); NULL without --ca-addr. */
char *zt_identity_certs_json(struct zt *zt)
{
	return zm_caclient_provider_is(zt->idp) ? zm_caclient_provider_dump(zt->idp) : NULL;
}

int zt_identity_init(struct zt *zt, char *err, size_t len)
{
	struct zm_tls_roots *roots;
	struct zm_ca *ca;
	int r;

	if (zt_ca_addr && !zt->opts.ca_dir) {
		snprintf(err, len, "--ca-addr needs --ca-dir DIR with ca-cert.pem, %s and %s",
			 ZM_NODE_CERT_FILE, ZM_NODE_KEY_FILE);
		return -EINVAL;
	}
	if (!zt->opts.ca_dir)
		return 0;
	if (zt_ca_addr) {
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
