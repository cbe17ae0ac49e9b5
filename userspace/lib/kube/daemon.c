// SPDX-License-Identifier: Apache-2.0
/*
 * What every daemon reading the API does the same way around the reflector (ztunnel, the
 * waypoint, zmesh-ca): the ZMESH_KUBE_* tunables of the client, the wait for the first list of
 * every kind at startup (interruptible by a pending SIGTERM or SIGINT, which the daemons route
 * to a signalfd), the build notes logged once per distinct line rather than on every
 * rebuild, and the connection, store, client and thread of each (struct zm_kube_src).
 */
#include <errno.h>
#include <pthread.h>
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

int zm_kube_src_open(struct zm_kube_src *src, const char *kubeconfig, const char *sa_dir,
		     unsigned int kinds, const char *who, const char *what, char *err, size_t len)
{
	struct zm_kube_client_opts co;
	int r;

	r = kubeconfig ? zm_kube_conn_kubeconfig(&src->conn, kubeconfig, err, len)
		       : zm_kube_conn_incluster(&src->conn, sa_dir, err, len);
	if (r)
		return r;
	src->store = zm_kube_store_new();
	if (!src->store)
		return zm_errf(err, len, -ENOMEM, "out of memory");
	co = (struct zm_kube_client_opts){
	    .conn = &src->conn, .store = src->store, .kinds = kinds, .who = who};
	zm_kube_client_opts_env(&co);
	src->client = zm_kube_client_new(&co, err, len);
	if (!src->client)
		return -ENOMEM;
	obs_log(OBS_INFO, "kube", "%s from the Kubernetes API at %s", what, src->conn.server);
	return zm_kube_client_wait(src->client, src->conn.server, err, len);
}

int zm_kube_src_run(struct zm_kube_src *src, void *(*fn)(void *), char *err, size_t len)
{
	sigset_t all, old;
	int r;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = pthread_create(&src->thread, NULL, fn, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		return zm_errf(err, len, -r, "starting the Kubernetes thread: %s", strerror(r));
	src->started = true;
	return 0;
}

void zm_kube_src_close(struct zm_kube_src *src)
{
	if (src->started) {
		atomic_store(&src->stop, true);
		pthread_join(src->thread, NULL);
		src->started = false;
	}
	zm_kube_client_free(src->client);
	zm_kube_store_free(src->store);
	zm_kube_conn_free(&src->conn);
	src->client = NULL;
	src->store = NULL;
}
