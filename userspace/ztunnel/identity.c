// SPDX-License-Identifier: Apache-2.0
/*
 * The ztunnel's identities: the dev CA of --ca-dir (written by `zmeshctl ca init`) behind the
 * identity-provider interface of lib/tls, one client and one server TLS context shared by all
 * workers, and the server's certificate choice by arrival address (DESIGN.md section 3: no
 * SNI, the destination IP names the workload). Without --ca-dir the ztunnel still relays
 * plain legs, and refuses HBONE destinations with a clear reason.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "tls/tls.h"
#include "zt.h"

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

int zt_identity_init(struct zt *zt, char *err, size_t len)
{
	struct zm_tls_roots *roots;
	struct zm_ca *ca;
	int r;

	if (!zt->opts.ca_dir)
		return 0;
	r = zm_ca_load(zt->opts.ca_dir, &ca, err, len);
	if (r)
		return r;
	snprintf(zt->trust_domain, sizeof(zt->trust_domain), "%s", zm_ca_trust_domain(ca));
	r = zm_dev_provider_new(ca, 0, &zt->idp, err, len);
	if (r) {
		zm_ca_free(ca);
		return r;
	}
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
