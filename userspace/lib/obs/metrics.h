/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one Prometheus registry of a process: metric families (counter, gauge, histogram) with
 * a name, a help text and label names, and their series, one per distinct tuple of label
 * values, rendered in the Prometheus text exposition format 0.0.4 (`# HELP`, `# TYPE`, label
 * values escaped as the format requires: backslash, double quote and newline).
 *
 * Threading: series are found or created under their family's mutex (once per distinct label
 * set; callers keep the pointer) and never freed while the registry lives; values change with
 * relaxed atomics, so the data path never takes a lock. Rendering holds each family's mutex
 * while it walks that family. Scrape hooks run first, on the rendering thread, to refresh
 * values that are read rather than counted (process_*, pool sizes).
 */
#ifndef ZMESH_OBS_METRICS_H
#define ZMESH_OBS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a Prometheus server expects on the text format (the Content-Type header). */
#define OBS_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#define OBS_LABELS_MAX	   32 /* label names of one family */
#define OBS_BUCKETS_MAX	   24 /* histogram buckets, +Inf not counted */
#define OBS_LABEL_TEXT_MAX 4096

enum obs_metric_type {
	OBS_COUNTER,
	OBS_GAUGE,
	OBS_HISTOGRAM,
};

struct obs_registry;
struct obs_family;
struct obs_series;

/* The process's registry (created on first use; NULL only when out of memory). */
struct obs_registry *obs_metrics(void);

/* A registry of one's own (tests). */
struct obs_registry *obs_registry_new(void);
void obs_registry_free(struct obs_registry *reg);

/*
 * Register a family. name: [a-zA-Z_:][a-zA-Z0-9_:]*; labels: NULL-terminated list of names
 * [a-zA-Z_][a-zA-Z0-9_]* (at most OBS_LABELS_MAX, none "le" for histograms); buckets: the
 * upper bounds of a histogram, strictly increasing (at most OBS_BUCKETS_MAX), NULL otherwise.
 * Registering a name again returns the existing family when its type and labels match.
 * NULL with errno EINVAL (bad name, labels or buckets), EEXIST (name taken with a different
 * shape) or ENOMEM.
 */
struct obs_family *obs_family_new(struct obs_registry *reg, enum obs_metric_type type,
				  const char *name, const char *help, const char *const *labels,
				  const double *buckets, size_t n_buckets);

/*
 * The series of one tuple of label values (as many as the family has label names; NULL is
 * ""), created at zero on first use. NULL only on ENOMEM or a label text over
 * OBS_LABEL_TEXT_MAX.
 */
struct obs_series *obs_series_get(struct obs_family *f, const char *const *values);

void obs_counter_add(struct obs_series *s, uint64_t n);
/* A counter whose total is read from elsewhere (process_cpu_seconds_total): set, not added. */
void obs_counter_set(struct obs_series *s, double v);
void obs_gauge_set(struct obs_series *s, double v);
void obs_gauge_add(struct obs_series *s, double d);
void obs_hist_observe(struct obs_series *s, double v);
/* The value of a counter or gauge (tests, admin). */
double obs_series_value(const struct obs_series *s);

/*
 * Families that share their label names and are counted together (istio_tcp_*'s four, the
 * request counter and histograms): one lookup of a label tuple gives the series of every
 * family, cached under the raw values so the data path pays one hash and one short lock per
 * connection or request instead of formatting and escaping the labels once per family.
 */
#define OBS_GROUP_MAX 8
struct obs_group;
/* NULL with errno EINVAL (no family, too many, different label names) or ENOMEM. */
struct obs_group *obs_group_new(struct obs_family *const *fams, size_t n);
/*
 * The series of every family of g (in the order given to obs_group_new) for one tuple of label
 * values; valid for the registry's life. NULL only on ENOMEM.
 */
struct obs_series *const *obs_group_get(struct obs_group *g, const char *const *values);
/* Free the group's cache (its series stay, they are their families'). */
void obs_group_free(struct obs_group *g);

/* Run fn(ud) before every render. -ENOSPC past 16 hooks. */
int obs_registry_on_scrape(struct obs_registry *reg, void (*fn)(void *ud), void *ud);

/* The text exposition of every family (malloc'd, *len set). NULL on ENOMEM. */
char *obs_registry_render(struct obs_registry *reg, size_t *len);

/*
 * Escape a label value into out (NUL-terminated). Returns the escaped length, or -ENOSPC when
 * it does not fit.
 */
int obs_label_escape(const char *in, char *out, size_t len);

#endif
