// SPDX-License-Identifier: Apache-2.0
/*
 * What every daemon reading the API does the same way around the reflector (ztunnel, the
 * waypoint, zmesh-ca): the ZMESH_KUBE_* tunables of the client, the wait for the first list of
 * every kind at startup (interruptible by a pending SIGTERM or SIGINT, which the daemons route
 * to a signalfd), and the build notes logged once per distinct line rather than on every
 * rebuild.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/errf.h"
#include "kube/kube.h"
#include "obs/log.h"

unsigned int zm_kube_env(const char *name, unsigned int def)
{
	const char *v = getenv(name);

	return v && *v ? (unsigned int)strtoul(v, NULL, 10) : def;
}

void zm_kube_client_opts_env(struct zm_kube_client_opts *o)
{
	o->page_size = zm_kube_env("ZMESH_KUBE_PAGE_SIZE", 0);
	o->watch_timeout_s = zm_kube_env("ZMESH_KUBE_WATCH_TIMEOUT_S", 0);
	o->stall_ms = zm_kube_env("ZMESH_KUBE_STALL_MS", 0);
	o->backoff_max_ms = zm_kube_env("ZMESH_KUBE_BACKOFF_MAX_MS", 0);
}

static bool zm_kube_signalled(void)
{
	sigset_t p;

	return !sigpending(&p) && (sigismember(&p, SIGTERM) || sigismember(&p, SIGINT));
}

int zm_kube_client_wait(struct zm_kube_client *c, const char *server, char *err, size_t len)
{
	time_t said = time(NULL);

	while (!zm_kube_client_synced(c)) {
		if (zm_kube_signalled())
			return zm_errf(err, len, -EINTR,
				       "stopped while waiting for the API server");
		zm_kube_client_step(c, 100);
		if (time(NULL) - said >= 5) {
			obs_log(OBS_INFO, "kube",
				"still waiting for the first list of every resource from %s (not "
				"ready until then)",
				server);
			said = time(NULL);
		}
	}
	return 0;
}

void zm_kube_say_new(const char *notes, char **said)
{
	const char *p = notes, *nl;

	for (; p && *p; p = nl ? nl + 1 : NULL) {
		nl = strchr(p, '\n');
		int n = (int)(nl ? nl - p : (long)strlen(p));

		if (n && !(*said && memmem(*said, strlen(*said), p, (size_t)n)))
			obs_log(OBS_WARN, "kube", "%.*s", n, p);
	}
	free(*said);
	*said = strdup(notes ? notes : "");
}
