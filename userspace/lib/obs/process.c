// SPDX-License-Identifier: Apache-2.0
/*
 * process_*, istio_build and istio_cert_expiry_seconds (process.h): families registered once,
 * values read from /proc/self and the identity provider by scrape hooks.
 */
#include "obs/process.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/version.h"
#include "obs/metrics.h"
#include "tls/tls.h"

struct obs_proc {
	struct obs_series *cpu, *rss, *vsize, *open_fds, *max_fds, *start, *threads;
};

int obs_proc_stat_parse(const char *line, long clk_tck, long page, double boot_s,
			struct obs_proc_stat *st)
{
	const char *p = strrchr(line, ')');
	unsigned long long utime, stime, start, vsize;
	long long rss;
	long threads;

	/* Fields after "pid (comm)": 3 state ... 14 utime 15 stime ... 20 threads 22 start 23
	 * vsize 24 rss. */
	if (!p || clk_tck <= 0 ||
	    sscanf(p + 1,
		   " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %ld "
		   "%*d %llu %llu %lld",
		   &utime, &stime, &threads, &start, &vsize, &rss) != 6)
		return -EINVAL;
	st->cpu_s = (double)(utime + stime) / (double)clk_tck;
	st->start_s = boot_s + (double)start / (double)clk_tck;
	st->vsize = vsize;
	st->rss_bytes = rss > 0 ? (uint64_t)rss * (uint64_t)page : 0;
	st->threads = threads;
	return 0;
}

static double obs_boot_time(void)
{
	static double boot;
	char line[256];
	FILE *f;

	if (boot)
		return boot;
	f = fopen("/proc/stat", "re");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "btime ", 6))
			boot = strtod(line + 6, NULL);
	if (f)
		fclose(f);
	return boot;
}

static int obs_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own fd */
}

static void obs_proc_scrape(void *ud)
{
	struct obs_proc *p = ud;
	struct obs_proc_stat st;
	struct rlimit rl;
	char line[1024];
	FILE *f = fopen("/proc/self/stat", "re");
	int fds = obs_count_fds();

	if (f && fgets(line, sizeof(line), f) &&
	    !obs_proc_stat_parse(line, sysconf(_SC_CLK_TCK), sysconf(_SC_PAGESIZE), obs_boot_time(),
				 &st)) {
		obs_counter_set(p->cpu, st.cpu_s);
		obs_gauge_set(p->rss, (double)st.rss_bytes);
		obs_gauge_set(p->vsize, (double)st.vsize);
		obs_gauge_set(p->start, st.start_s);
		obs_gauge_set(p->threads, (double)st.threads);
	}
	if (f)
		fclose(f);
	if (fds >= 0)
		obs_gauge_set(p->open_fds, fds);
	if (!getrlimit(RLIMIT_NOFILE, &rl))
		obs_gauge_set(p->max_fds, (double)rl.rlim_cur);
}

static struct obs_series *obs_one(struct obs_registry *reg, enum obs_metric_type t,
				  const char *name, const char *help)
{
	return obs_series_get(obs_family_new(reg, t, name, help, NULL, NULL, 0), NULL);
}

int obs_process_metrics(struct obs_registry *reg, const char *component)
{
	static const char *const build_labels[] = {"component", "tag", NULL};
	struct obs_proc *p = calloc(1, sizeof(*p));
	struct obs_family *build;

	if (!p)
		return -ENOMEM;
	p->cpu = obs_one(reg, OBS_COUNTER, "process_cpu_seconds_total",
			 "Total user and system CPU time spent in seconds.");
	p->rss = obs_one(reg, OBS_GAUGE, "process_resident_memory_bytes",
			 "Resident memory size in bytes.");
	p->vsize = obs_one(reg, OBS_GAUGE, "process_virtual_memory_bytes",
			   "Virtual memory size in bytes.");
	p->open_fds =
	    obs_one(reg, OBS_GAUGE, "process_open_fds", "Number of open file descriptors.");
	p->max_fds =
	    obs_one(reg, OBS_GAUGE, "process_max_fds", "Maximum number of open file descriptors.");
	p->start = obs_one(reg, OBS_GAUGE, "process_start_time_seconds",
			   "Start time of the process since unix epoch in seconds.");
	p->threads = obs_one(reg, OBS_GAUGE, "process_threads", "Number of OS threads in use.");
	build = obs_family_new(reg, OBS_GAUGE, "istio_build", "Istio component build info",
			       build_labels, NULL, 0);
	obs_gauge_set(obs_series_get(build, (const char *const[]){component, zm_version()}), 1);
	if (!p->cpu || !p->rss || !p->vsize || !p->open_fds || !p->max_fds || !p->start ||
	    !p->threads || !build) {
		free(p);
		return -ENOMEM;
	}
	return obs_registry_on_scrape(reg, obs_proc_scrape, p);
}

struct obs_certs {
	struct obs_family *fam;
	struct zm_identity_provider *const *idp;
};

static void obs_cert_one(void *ud, const char *id, const struct zm_cert *cert)
{
	struct obs_certs *c = ud;

	obs_gauge_set(obs_series_get(c->fam, (const char *const[]){id}),
		      (double)zm_cert_not_after(cert));
}

static void obs_certs_scrape(void *ud)
{
	struct obs_certs *c = ud;

	if (*c->idp)
		zm_identity_each(*c->idp, obs_cert_one, c);
}

int obs_cert_metrics(struct obs_registry *reg, struct zm_identity_provider *const *idp)
{
	static const char *const labels[] = {"identity", NULL};
	struct obs_certs *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->idp = idp;
	c->fam =
	    obs_family_new(reg, OBS_GAUGE, "istio_cert_expiry_seconds",
			   "Unix timestamp when the workload certificate expires", labels, NULL, 0);
	if (!c->fam) {
		free(c);
		return -errno;
	}
	return obs_registry_on_scrape(reg, obs_certs_scrape, c);
}
