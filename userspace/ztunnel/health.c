// SPDX-License-Identifier: Apache-2.0
/*
 * Readiness that tells the truth. /healthz/ready says 200 only while ztunnel can do its job on
 * this node: the BPF datapath is pinned with our ABI (else the pods run uncaptured), every
 * local mesh workload is enrolled in it, and, with certificates from a CA service, every local
 * workload's certificate is in hand and unexpired (else its connections would fail). Checked
 * on the control loop's poll; each change of verdict is one log line naming the reason, and a
 * kubelet probe reads it from zt->ready (zt_ready_update) without doing any of this work.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "caclient/caclient.h"
#include "datapath/datapath.h"
#include "obs/log.h"
#include "tls/tls.h"
#include "telemetry.h"
#include "zt.h"

#define ZT_HEALTH_WHY_LEN 640

struct zt_held {
	const char *id;
	bool found;
};

static void zt_health_cert(void *ud, const char *id, const struct zm_cert *cert)
{
	struct zt_held *h = ud;

	if (!strcmp(id, h->id) && zm_cert_not_after(cert) > time(NULL))
		h->found = true;
}

/* The first local HBONE workload without a valid certificate, as text; "" when none. */
static void zt_health_certs(struct zt *zt, const struct zt_snap *s, char *why, size_t len)
{
	char id[ZT_ID_LEN];
	size_t i;

	if (!zm_caclient_provider_is(zt->idp))
		return; /* the dev CA signs on demand: nothing to wait for */
	for (i = 0; i < s->cfg->n_workloads; i++) {
		const struct zm_cfg_workload *wl = &s->cfg->workloads[i];
		struct zt_held h = {.id = id};

		if (strcmp(wl->node, zt->opts.node) || wl->protocol != ZM_CFG_PROTO_HBONE)
			continue;
		zm_cfg_workload_identity(wl, id, sizeof(id));
		zm_identity_each(zt->idp, zt_health_cert, &h);
		if (!h.found) {
			snprintf(why, len, "no valid certificate yet for %s (CA at %s)", id,
				 zt->opts.ca_addr);
			return;
		}
	}
}

int zt_health_check(struct zt *zt, int enroll_failed)
{
	static char last[ZT_HEALTH_WHY_LEN] = "starting";
	char why[ZT_HEALTH_WHY_LEN] = "", e[256];
	struct zt_snap *s;
	struct zm_dp dp;
	int missing = 0;

	if (!zt->opts.no_enroll) {
		zm_dp_init(&dp, zt->opts.pin_dir);
		if (zm_dp_check(&dp))
			snprintf(why, sizeof(why), "datapath: %s", dp.err);
		zm_dp_close(&dp);
		if (!why[0] && enroll_failed) {
			zt_enroll_last_error(e, sizeof(e));
			snprintf(why, sizeof(why),
				 "%d addresses of local workloads not enrolled: %s", enroll_failed,
				 e);
		}
		if (!why[0]) {
			missing = zt_enroll_missing(zt, e, sizeof(e));
			if (missing)
				snprintf(why, sizeof(why), "%d addresses not in the datapath: %s",
					 missing, e);
		}
	}
	if (!why[0] && zt->idp) {
		s = zt_state_get();
		zt_health_certs(zt, s, why, sizeof(why));
		zt_state_put(s);
	}
	atomic_store(&zt->healthy, !why[0]);
	if (!strcmp(why, last))
		return missing;
	if (why[0])
		obs_log(OBS_WARN, "ztunnel", "not ready: %s", why);
	else if (strcmp(last, "starting"))
		obs_log(OBS_INFO, "ztunnel", "ready again");
	snprintf(last, sizeof(last), "%s", why);
	return missing;
}
