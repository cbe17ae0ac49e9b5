// SPDX-License-Identifier: Apache-2.0
/*
 * The Prometheus registry (metrics.h). A family keeps its series twice: in a small hash table
 * keyed by the rendered label text (lookups) and in a list in creation order (stable output).
 * Values are atomics; a gauge or a set counter holds the bits of a double, a histogram its
 * per-bucket counts (not cumulative: summed when printed) and the bits of its sum.
 */
#include "obs/metrics.h"

#include "common/hash.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OBS_HASH_SLOTS 256
#define OBS_HOOKS_MAX  16

struct obs_series {
	struct obs_series *next_hash, *next_all;
	struct obs_family *fam;
	uint64_t hash;
	_Atomic uint64_t count; /* counter total, histogram observation count */
	_Atomic uint64_t fbits; /* gauge value, set-counter value, histogram sum (double bits) */
	atomic_bool is_float;	/* counter: fbits holds the total (obs_counter_set) */
	_Atomic uint64_t bucket[OBS_BUCKETS_MAX];
	char labels[]; /* rendered: `a="x",b="y"` (no braces), "" without labels */
};

struct obs_family {
	struct obs_family *next;
	enum obs_metric_type type;
	char *name, *help;
	char *labels[OBS_LABELS_MAX];
	size_t n_labels;
	double le[OBS_BUCKETS_MAX];
	size_t n_le;
	pthread_mutex_t lock;
	struct obs_series *slots[OBS_HASH_SLOTS];
	struct obs_series *head, *tail;
};

struct obs_registry {
	pthread_mutex_t lock;
	struct obs_family *head, *tail;
	struct {
		void (*fn)(void *ud);
		void *ud;
	} hooks[OBS_HOOKS_MAX];
	int n_hooks;
};

static uint64_t obs_dbits(double v)
{
	uint64_t b;

	memcpy(&b, &v, sizeof(b));
	return b;
}

static double obs_bitsd(uint64_t b)
{
	double v;

	memcpy(&v, &b, sizeof(v));
	return v;
}

struct obs_registry *obs_registry_new(void)
{
	struct obs_registry *reg = calloc(1, sizeof(*reg));

	if (reg)
		pthread_mutex_init(&reg->lock, NULL);
	return reg;
}

static struct obs_registry *obs_default;
static pthread_once_t obs_default_once = PTHREAD_ONCE_INIT;

static void obs_default_make(void)
{
	obs_default = obs_registry_new();
}

struct obs_registry *obs_metrics(void)
{
	pthread_once(&obs_default_once, obs_default_make);
	return obs_default;
}

static void obs_family_free(struct obs_family *f)
{
	struct obs_series *s, *next;
	size_t i;

	for (s = f->head; s; s = next) {
		next = s->next_all;
		free(s);
	}
	for (i = 0; i < f->n_labels; i++)
		free(f->labels[i]);
	free(f->name);
	free(f->help);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

void obs_registry_free(struct obs_registry *reg)
{
	struct obs_family *f, *next;

	if (!reg)
		return;
	for (f = reg->head; f; f = next) {
		next = f->next;
		obs_family_free(f);
	}
	pthread_mutex_destroy(&reg->lock);
	free(reg);
}

static bool obs_name_ok(const char *s, bool colon)
{
	const char *p;

	if (!s || !*s || (*s >= '0' && *s <= '9'))
		return false;
	for (p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || (colon && *p == ':')))
			return false;
	return true;
}

/* Same type and label names as an existing family? */
static bool obs_family_same(const struct obs_family *f, enum obs_metric_type type,
			    const char *const *labels, size_t n)
{
	size_t i;

	if (f->type != type || f->n_labels != n)
		return false;
	for (i = 0; i < n; i++)
		if (strcmp(f->labels[i], labels[i]))
			return false;
	return true;
}

static int obs_family_check(enum obs_metric_type type, const char *name, const char *const *labels,
			    size_t *n, const double *le, size_t n_le)
{
	size_t i;

	if (!obs_name_ok(name, true) || (type == OBS_HISTOGRAM) != (le && n_le) ||
	    n_le > OBS_BUCKETS_MAX)
		return -EINVAL;
	for (i = 1; i < n_le; i++)
		if (!(le[i] > le[i - 1]))
			return -EINVAL;
	for (*n = 0; labels && labels[*n]; (*n)++) {
		if (*n == OBS_LABELS_MAX || !obs_name_ok(labels[*n], false) ||
		    !strncmp(labels[*n], "__", 2) ||
		    (type == OBS_HISTOGRAM && !strcmp(labels[*n], "le")))
			return -EINVAL;
	}
	return 0;
}

struct obs_family *obs_family_new(struct obs_registry *reg, enum obs_metric_type type,
				  const char *name, const char *help, const char *const *labels,
				  const double *buckets, size_t n_buckets)
{
	struct obs_family *f;
	size_t n, i;
	int r;

	if (!reg || (r = obs_family_check(type, name, labels, &n, buckets, n_buckets))) {
		errno = EINVAL;
		return NULL;
	}
	pthread_mutex_lock(&reg->lock);
	for (f = reg->head; f; f = f->next)
		if (!strcmp(f->name, name))
			break;
	if (f) {
		pthread_mutex_unlock(&reg->lock);
		if (obs_family_same(f, type, labels, n))
			return f;
		errno = EEXIST;
		return NULL;
	}
	f = calloc(1, sizeof(*f));
	if (!f || !(f->name = strdup(name)) || !(f->help = strdup(help ? help : "")))
		goto nomem;
	pthread_mutex_init(&f->lock, NULL);
	f->type = type;
	for (i = 0; i < n; i++, f->n_labels++)
		if (!(f->labels[i] = strdup(labels[i])))
			goto nomem;
	for (i = 0; i < n_buckets; i++)
		f->le[i] = buckets[i];
	f->n_le = n_buckets;
	if (reg->tail)
		reg->tail->next = f;
	else
		reg->head = f;
	reg->tail = f;
	pthread_mutex_unlock(&reg->lock);
	return f;
nomem:
	pthread_mutex_unlock(&reg->lock);
	if (f && f->name)
		obs_family_free(f);
	else
		free(f);
	errno = ENOMEM;
	return NULL;
}

int obs_label_escape(const char *in, char *out, size_t len)
{
	size_t o = 0;

	for (; in && *in; in++) {
		const char *rep = *in == '\\'	? "\\\\"
				  : *in == '"'	? "\\\""
				  : *in == '\n' ? "\\n"
						: NULL;
		size_t n = rep ? 2 : 1;

		if (o + n >= len)
			return -ENOSPC;
		if (rep)
			memcpy(out + o, rep, 2);
		else
			out[o] = *in;
		o += n;
	}
	if (o >= len)
		return -ENOSPC;
	out[o] = '\0';
	return (int)o;
}

static int obs_labels_text(const struct obs_family *f, const char *const *values, char *buf,
			   size_t len)
{
	size_t off = 0, i;
	int n;

	buf[0] = '\0';
	for (i = 0; i < f->n_labels; i++) {
		n = snprintf(buf + off, len - off, "%s%s=\"", i ? "," : "", f->labels[i]);
		if (n < 0 || (size_t)n >= len - off)
			return -ENOSPC;
		off += (size_t)n;
		n = obs_label_escape(values ? values[i] : NULL, buf + off, len - off);
		if (n < 0 || off + (size_t)n + 2 > len)
			return -ENOSPC;
		off += (size_t)n;
		buf[off++] = '"';
		buf[off] = '\0';
	}
	return (int)off;
}

struct obs_series *obs_series_get(struct obs_family *f, const char *const *values)
{
	char text[OBS_LABEL_TEXT_MAX];
	struct obs_series *s;
	uint64_t h;
	int n;

	if (!f)
		return NULL;
	n = obs_labels_text(f, values, text, sizeof(text));
	if (n < 0)
		return NULL;
	h = zm_hash_str(text);
	pthread_mutex_lock(&f->lock);
	for (s = f->slots[h % OBS_HASH_SLOTS]; s; s = s->next_hash)
		if (s->hash == h && !strcmp(s->labels, text))
			break;
	if (!s && (s = calloc(1, sizeof(*s) + (size_t)n + 1))) {
		memcpy(s->labels, text, (size_t)n + 1);
		s->fam = f;
		s->hash = h;
		s->next_hash = f->slots[h % OBS_HASH_SLOTS];
		f->slots[h % OBS_HASH_SLOTS] = s;
		if (f->tail)
			f->tail->next_all = s;
		else
			f->head = s;
		f->tail = s;
	}
	pthread_mutex_unlock(&f->lock);
	return s;
}

void obs_counter_add(struct obs_series *s, uint64_t n)
{
	if (s)
		atomic_fetch_add_explicit(&s->count, n, memory_order_relaxed);
}

void obs_counter_set(struct obs_series *s, double v)
{
	if (!s)
		return;
	atomic_store_explicit(&s->fbits, obs_dbits(v), memory_order_relaxed);
	atomic_store_explicit(&s->is_float, true, memory_order_relaxed);
}

void obs_gauge_set(struct obs_series *s, double v)
{
	if (s)
		atomic_store_explicit(&s->fbits, obs_dbits(v), memory_order_relaxed);
}

/* Add d to the double held in *bits. */
static void obs_fadd(_Atomic uint64_t *bits, double d)
{
	uint64_t old = atomic_load_explicit(bits, memory_order_relaxed);

	while (!atomic_compare_exchange_weak_explicit(bits, &old, obs_dbits(obs_bitsd(old) + d),
						      memory_order_relaxed, memory_order_relaxed))
		;
}

void obs_gauge_add(struct obs_series *s, double d)
{
	if (s)
		obs_fadd(&s->fbits, d);
}

void obs_hist_observe(struct obs_series *s, double v)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->fam->n_le; i++) {
		if (v <= s->fam->le[i]) {
			atomic_fetch_add_explicit(&s->bucket[i], 1, memory_order_relaxed);
			break;
		}
	}
	obs_fadd(&s->fbits, v);
	atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
}

double obs_series_value(const struct obs_series *s)
{
	if (!s)
		return 0;
	if (s->fam->type == OBS_COUNTER && !atomic_load(&s->is_float))
		return (double)atomic_load(&s->count);
	return obs_bitsd(atomic_load(&s->fbits));
}

struct obs_group_entry {
	struct obs_group_entry *next;
	uint64_t hash;
	struct obs_series *series[OBS_GROUP_MAX];
	char key[]; /* the values, each ended by \x1f */
};

struct obs_group {
	struct obs_family *fams[OBS_GROUP_MAX];
	size_t n;
	pthread_mutex_t lock;
	struct obs_group_entry *slots[OBS_HASH_SLOTS];
};

struct obs_group *obs_group_new(struct obs_family *const *fams, size_t n)
{
	struct obs_group *g;
	size_t i;

	if (!n || n > OBS_GROUP_MAX || !fams[0]) {
		errno = EINVAL;
		return NULL;
	}
	for (i = 1; i < n; i++) {
		if (!fams[i] || fams[i]->n_labels != fams[0]->n_labels ||
		    !obs_family_same(fams[i], fams[i]->type, (const char *const *)fams[0]->labels,
				     fams[0]->n_labels)) {
			errno = EINVAL;
			return NULL;
		}
	}
	g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	memcpy(g->fams, fams, n * sizeof(*fams));
	g->n = n;
	pthread_mutex_init(&g->lock, NULL);
	return g;
}

/* The values joined by a byte none of them holds (a label value never needs \x1f). */
static int obs_group_key(const struct obs_group *g, const char *const *v, char *buf, size_t len)
{
	size_t off = 0, i, n;

	for (i = 0; i < g->fams[0]->n_labels; i++) {
		n = v[i] ? strlen(v[i]) : 0;
		if (off + n + 2 > len)
			return -ENOSPC;
		memcpy(buf + off, v[i] ? v[i] : "", n);
		off += n;
		buf[off++] = '\x1f';
	}
	buf[off] = '\0';
	return (int)off;
}

struct obs_series *const *obs_group_get(struct obs_group *g, const char *const *values)
{
	char key[OBS_LABEL_TEXT_MAX];
	struct obs_group_entry *e, **slot;
	uint64_t h;
	size_t i;
	int n = obs_group_key(g, values, key, sizeof(key));

	if (n < 0)
		return NULL;
	h = zm_hash_str(key);
	slot = &g->slots[h % OBS_HASH_SLOTS];
	pthread_mutex_lock(&g->lock);
	for (e = *slot; e; e = e->next)
		if (e->hash == h && !strcmp(e->key, key))
			break;
	if (!e && (e = calloc(1, sizeof(*e) + (size_t)n + 1))) {
		memcpy(e->key, key, (size_t)n + 1);
		e->hash = h;
		for (i = 0; i < g->n; i++)
			e->series[i] = obs_series_get(g->fams[i], values);
		e->next = *slot;
		*slot = e;
	}
	pthread_mutex_unlock(&g->lock);
	return e ? e->series : NULL;
}

void obs_group_free(struct obs_group *g)
{
	struct obs_group_entry *e, *next;
	size_t i;

	if (!g)
		return;
	for (i = 0; i < OBS_HASH_SLOTS; i++) {
		for (e = g->slots[i]; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	pthread_mutex_destroy(&g->lock);
	free(g);
}

int obs_registry_on_scrape(struct obs_registry *reg, void (*fn)(void *ud), void *ud)
{
	int r = 0;

	pthread_mutex_lock(&reg->lock);
	if (reg->n_hooks == OBS_HOOKS_MAX)
		r = -ENOSPC;
	else
		reg->hooks[reg->n_hooks++] = (typeof(reg->hooks[0])){fn, ud};
	pthread_mutex_unlock(&reg->lock);
	return r;
}

/* A number as Prometheus reads it: integers plainly, others with 15 significant digits. */
static void obs_num(FILE *f, double v)
{
	if (isnan(v))
		fputs("NaN", f);
	else if (isinf(v))
		fputs(v > 0 ? "+Inf" : "-Inf", f);
	else if (v == floor(v) && fabs(v) < 1e15)
		fprintf(f, "%.0f", v);
	else
		fprintf(f, "%.15g", v);
}

/* Help text: backslash and newline escaped. */
static void obs_help(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void obs_render_hist(FILE *f, const struct obs_family *fam, struct obs_series *s)
{
	const char *sep = s->labels[0] ? "," : "";
	uint64_t cum = 0;
	size_t i;

	for (i = 0; i < fam->n_le; i++) {
		cum += atomic_load_explicit(&s->bucket[i], memory_order_relaxed);
		fprintf(f, "%s_bucket{%s%sle=\"", fam->name, s->labels, sep);
		obs_num(f, fam->le[i]);
		fprintf(f, "\"} %llu\n", (unsigned long long)cum);
	}
	fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", fam->name, s->labels, sep,
		(unsigned long long)atomic_load(&s->count));
	fprintf(f, "%s_sum%s%s%s ", fam->name, s->labels[0] ? "{" : "", s->labels,
		s->labels[0] ? "}" : "");
	obs_num(f, obs_bitsd(atomic_load(&s->fbits)));
	fprintf(f, "\n%s_count%s%s%s %llu\n", fam->name, s->labels[0] ? "{" : "", s->labels,
		s->labels[0] ? "}" : "", (unsigned long long)atomic_load(&s->count));
}

static void obs_render_family(FILE *f, struct obs_family *fam)
{
	static const char *const types[] = {"counter", "gauge", "histogram"};
	struct obs_series *s;

	fprintf(f, "# HELP %s ", fam->name);
	obs_help(f, fam->help);
	fprintf(f, "\n# TYPE %s %s\n", fam->name, types[fam->type]);
	pthread_mutex_lock(&fam->lock);
	for (s = fam->head; s; s = s->next_all) {
		if (fam->type == OBS_HISTOGRAM) {
			obs_render_hist(f, fam, s);
			continue;
		}
		fprintf(f, "%s%s%s%s ", fam->name, s->labels[0] ? "{" : "", s->labels,
			s->labels[0] ? "}" : "");
		obs_num(f, obs_series_value(s));
		fputc('\n', f);
	}
	pthread_mutex_unlock(&fam->lock);
}

char *obs_registry_render(struct obs_registry *reg, size_t *len)
{
	struct obs_family *fam;
	char *buf = NULL;
	FILE *f;
	int i, n;

	if (!reg)
		return NULL;
	pthread_mutex_lock(&reg->lock);
	n = reg->n_hooks;
	pthread_mutex_unlock(&reg->lock);
	for (i = 0; i < n; i++)
		reg->hooks[i].fn(reg->hooks[i].ud);
	f = open_memstream(&buf, len);
	if (!f)
		return NULL;
	pthread_mutex_lock(&reg->lock);
	for (fam = reg->head; fam; fam = fam->next)
		obs_render_family(f, fam);
	pthread_mutex_unlock(&reg->lock);
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}
