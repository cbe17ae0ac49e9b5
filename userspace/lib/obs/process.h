/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Metrics every daemon exposes beside its traffic series, read at scrape time:
 *  - the process collector's standard set (the names Prometheus client libraries and Istio's
 *    components use): process_cpu_seconds_total, process_resident_memory_bytes,
 *    process_virtual_memory_bytes, process_open_fds, process_max_fds,
 *    process_start_time_seconds, process_threads, from /proc/self;
 *  - istio_build{component, tag} = 1, the version of this binary (as Istio's components);
 *  - istio_cert_expiry_seconds{identity}: the Unix time each certificate the identity provider
 *    holds expires (the reference ztunnel's gauge of that name).
 */
#ifndef ZMESH_OBS_PROCESS_H
#define ZMESH_OBS_PROCESS_H

#include <stdint.h>

struct obs_registry;
struct zm_identity_provider;

/* Register the process_* families and their scrape hook. 0 or -errno. */
int obs_process_metrics(struct obs_registry *reg, const char *component);

/*
 * Register istio_cert_expiry_seconds, refreshed at every scrape from *idp (a pointer to the
 * daemon's provider pointer: NULL while it has none). 0 or -errno.
 */
int obs_cert_metrics(struct obs_registry *reg, struct zm_identity_provider *const *idp);

/* The pieces of /proc/self/stat the process metrics use (exposed for the unit tests). */
struct obs_proc_stat {
	double cpu_s, start_s;
	uint64_t vsize, rss_bytes;
	long threads;
};
/* Parse a /proc/PID/stat line (comm may hold spaces and parentheses). 0 or -EINVAL. */
int obs_proc_stat_parse(const char *line, long clk_tck, long page, double boot_s,
			struct obs_proc_stat *st);

#endif
