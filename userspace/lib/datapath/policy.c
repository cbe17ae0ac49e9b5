// SPDX-License-Identifier: Apache-2.0
/*
 * The L4 policy fast path's rule set (datapath.h, zm_dp_policy_*): replacement by generation
 * flip, the live rules and the per-policy drop counters. The trie zm_pol_rules holds two
 * generations; zm_pol_gen says which one the datapath reads. A replacement builds the idle
 * generation, flips zm_pol_gen with one array update, then deletes the old generation, so a
 * packet never sees a partial set. Policy names map to counter slots (zm_pol_names,
 * zm_pol_stats): a name keeps its slot, and its counters, across replacements while it has
 * rules; a slot is zeroed before a new name gets it and after its old name is gone.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct dp_pol {
	int gen_fd, rules_fd, stats_fd, names_fd;
	struct zm_pol_name *names; /* ZM_MAX_POLICIES slots as read */
	__u32 *new_rules;	   /* per slot: entries in the generation being built */
	bool *keep;		   /* per slot: named by the new set */
	bool *fresh;		   /* per slot: given to a new name by this replacement */
};

static void dp_pol_close(struct dp_pol *p)
{
	for (int *fd = &p->gen_fd; fd <= &p->names_fd; fd++)
		if (*fd >= 0)
			close(*fd);
	free(p->names);
	free(p->new_rules);
	free(p->keep);
	free(p->fresh);
}

static int dp_pol_open(struct zm_dp *dp, struct dp_pol *p)
{
	memset(p, 0, sizeof(*p));
	p->gen_fd = p->rules_fd = p->stats_fd = p->names_fd = -1;
	p->gen_fd =
	    dp_map_open(dp, ZM_STR(ZM_MAP_POL_GEN), sizeof(__u32), sizeof(struct zm_pol_gen));
	if (p->gen_fd < 0)
		return p->gen_fd;
	p->rules_fd = dp_map_open(dp, ZM_STR(ZM_MAP_POL_RULES), sizeof(struct zm_pol_key),
				  sizeof(struct zm_pol_value));
	if (p->rules_fd < 0)
		return p->rules_fd;
	p->stats_fd = dp_map_open(dp, ZM_STR(ZM_MAP_POL_STATS), sizeof(__u32),
				  sizeof(struct zm_pol_counters));
	if (p->stats_fd < 0)
		return p->stats_fd;
	p->names_fd =
	    dp_map_open(dp, ZM_STR(ZM_MAP_POL_NAMES), sizeof(__u32), sizeof(struct zm_pol_name));
	if (p->names_fd < 0)
		return p->names_fd;
	p->names = calloc(ZM_MAX_POLICIES, sizeof(*p->names));
	p->new_rules = calloc(ZM_MAX_POLICIES, sizeof(*p->new_rules));
	p->keep = calloc(ZM_MAX_POLICIES, sizeof(*p->keep));
	p->fresh = calloc(ZM_MAX_POLICIES, sizeof(*p->fresh));
	if (!p->names || !p->new_rules || !p->keep || !p->fresh)
		return dp_errf(dp, -ENOMEM, "out of memory reading the policy maps");
	for (__u32 i = 0; i < ZM_MAX_POLICIES; i++) {
		if (bpf_map_lookup_elem(p->names_fd, &i, &p->names[i]) < 0)
			return dp_errf(dp, -errno, "reading %s failed: %s",
				       ZM_STR(ZM_MAP_POL_NAMES), strerror(errno));
		p->names[i].name[ZM_POLICY_NAME_LEN - 1] = '\0';
	}
	return 0;
}

static int dp_pol_gen_read(struct zm_dp *dp, struct dp_pol *p, struct zm_pol_gen *g)
{
	__u32 zero = 0;

	if (bpf_map_lookup_elem(p->gen_fd, &zero, g) < 0)
		return dp_errf(dp, -errno, "reading %s failed: %s", ZM_STR(ZM_MAP_POL_GEN),
			       strerror(errno));
	g->gen &= 1;
	return 0;
}

/* Zero a slot's per-CPU counters. */
static int dp_pol_stats_zero(struct zm_dp *dp, struct dp_pol *p, __u32 slot)
{
	int ncpu = libbpf_num_possible_cpus();
	struct zm_pol_counters *zero;
	int err = 0;

	if (ncpu < 0)
		return dp_errf(dp, ncpu, "counting possible CPUs failed");
	zero = calloc((size_t)ncpu, sizeof(*zero));
	if (!zero)
		return dp_errf(dp, -ENOMEM, "out of memory");
	if (bpf_map_update_elem(p->stats_fd, &slot, zero, BPF_ANY) < 0)
		err = dp_errf(dp, -errno, "zeroing %s[%u] failed: %s", ZM_STR(ZM_MAP_POL_STATS),
			      slot, strerror(errno));
	free(zero);
	return err;
}

static int dp_pol_name_write(struct zm_dp *dp, struct dp_pol *p, __u32 slot)
{
	if (bpf_map_update_elem(p->names_fd, &slot, &p->names[slot], BPF_ANY) < 0)
		return dp_errf(dp, -errno, "writing %s[%u] failed: %s", ZM_STR(ZM_MAP_POL_NAMES),
			       slot, strerror(errno));
	return 0;
}

/* The slot of name: its current one, else a free one (zeroed, marked fresh). */
static int dp_pol_slot(struct zm_dp *dp, struct dp_pol *p, const char *name, __u32 *slot)
{
	__u32 free_slot = ZM_MAX_POLICIES;
	int err;

	for (__u32 i = 0; i < ZM_MAX_POLICIES; i++) {
		if (!p->names[i].name[0]) {
			if (free_slot == ZM_MAX_POLICIES && !p->keep[i])
				free_slot = i;
			continue;
		}
		if (!strcmp(p->names[i].name, name)) {
			*slot = i;
			p->keep[i] = true;
			return 0;
		}
	}
	if (free_slot == ZM_MAX_POLICIES)
		return dp_errf(dp, -E2BIG, "more than %u policies with fast-path rules",
			       ZM_MAX_POLICIES);
	err = dp_pol_stats_zero(dp, p, free_slot);
	if (err)
		return err;
	memset(&p->names[free_slot], 0, sizeof(p->names[free_slot]));
	snprintf(p->names[free_slot].name, ZM_POLICY_NAME_LEN, "%s", name);
	p->keep[free_slot] = p->fresh[free_slot] = true;
	*slot = free_slot;
	return dp_pol_name_write(dp, p, free_slot);
}

static int dp_pol_rule_check(struct zm_dp *dp, const struct zm_dp_policy_rule *r, size_t i)
{
	unsigned int max = r->dst.family == ZM_AF_INET ? 32 : 128;

	if (!r->policy[0] || strnlen(r->policy, ZM_POLICY_NAME_LEN) == ZM_POLICY_NAME_LEN)
		return dp_errf(dp, -EINVAL, "rule %zu: the policy name is empty or too long", i);
	if (r->dst.family != ZM_AF_INET && r->dst.family != ZM_AF_INET6)
		return dp_errf(dp, -EINVAL, "rule %zu (%s): no destination address", i, r->policy);
	if (r->src_prefix > max)
		return dp_errf(dp, -EINVAL, "rule %zu (%s): source prefix /%u is longer than %u", i,
			       r->policy, r->src_prefix, max);
	if (r->src_prefix && r->src.family != r->dst.family)
		return dp_errf(dp, -EINVAL,
			       "rule %zu (%s): source and destination are of different families", i,
			       r->policy);
	return 0;
}

/* The trie key of a rule in generation gen; source bits past the prefix cleared. */
static void dp_pol_key(const struct zm_dp_policy_rule *r, __u8 gen, struct zm_pol_key *k)
{
	unsigned int bits = r->src_prefix;

	memset(k, 0, sizeof(*k));
	k->prefixlen = ZM_POL_KEY_FIXED_BITS + bits;
	k->gen = gen;
	k->family = r->dst.family;
	k->dport = htons(r->dst_port);
	memcpy(k->dst, r->dst.addr, sizeof(k->dst));
	for (unsigned int w = 0; w < 4 && bits; w++) {
		__u32 h = ntohl(r->src.addr[w]);

		h &= bits >= 32 ? 0xffffffffu : ~(0xffffffffu >> bits);
		k->src[w] = htonl(h);
		bits = bits >= 32 ? bits - 32 : 0;
	}
}

/*
 * Call cb on every trie key of generation gen. Keys are collected first and visited after:
 * deleting while walking an LPM trie restarts get_next_key from the beginning.
 */
static int dp_pol_gen_keys(struct zm_dp *dp, struct dp_pol *p, __u8 gen,
			   int (*cb)(struct zm_dp *, struct dp_pol *, const struct zm_pol_key *,
				     void *),
			   void *ctx)
{
	size_t n = 0, cap = 2 * ZM_MAX_POL_RULES + 1;
	struct zm_pol_key *keys, cur, next;
	bool first = true;
	int err = 0;

	keys = calloc(cap, sizeof(*keys));
	if (!keys)
		return dp_errf(dp, -ENOMEM, "out of memory walking %s", ZM_STR(ZM_MAP_POL_RULES));
	while (n < cap && !bpf_map_get_next_key(p->rules_fd, first ? NULL : &cur, &next)) {
		first = false;
		cur = next;
		if (next.gen == gen)
			keys[n++] = next;
	}
	for (size_t i = 0; i < n && !err; i++)
		err = cb(dp, p, &keys[i], ctx);
	free(keys);
	return err;
}

static int dp_pol_key_delete(struct zm_dp *dp, struct dp_pol *p, const struct zm_pol_key *k,
			     void *ctx)
{
	(void)ctx;
	if (bpf_map_delete_elem(p->rules_fd, k) < 0 && errno != ENOENT)
		return dp_errf(dp, -errno, "deleting from %s failed: %s", ZM_STR(ZM_MAP_POL_RULES),
			       strerror(errno));
	return 0;
}

/* One rule as built for the trie, with its position for "the first one given wins". */
struct dp_pol_entry {
	struct zm_pol_key key;
	struct zm_pol_value val;
	size_t order;
};

/* Same key together; within a key DROP before DEFER, then input order. */
static int dp_pol_entry_cmp(const void *a, const void *b)
{
	const struct dp_pol_entry *x = a, *y = b;
	int c = memcmp(&x->key, &y->key, sizeof(x->key));

	if (c)
		return c;
	if (x->val.action != y->val.action)
		return x->val.action == ZM_POL_DROP ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/*
 * Build generation gen from rules; *n_entries counts trie entries written. Duplicates are
 * resolved here, in memory: a lookup in an LPM trie answers the longest matching prefix, not
 * the exact key, so it cannot tell whether a key is already present.
 */
static int dp_pol_build(struct zm_dp *dp, struct dp_pol *p, const struct zm_dp_policy_rule *rules,
			size_t n, __u8 gen, __u32 *n_entries)
{
	struct dp_pol_entry *e;
	__u32 slot = 0;
	int err;

	*n_entries = 0;
	e = calloc(n ?: 1, sizeof(*e));
	if (!e)
		return dp_errf(dp, -ENOMEM, "out of memory building the policy rules");
	err = dp_pol_gen_keys(dp, p, gen, dp_pol_key_delete, NULL);
	for (size_t i = 0; i < n && !err; i++) {
		/* Consecutive rules of one policy are the common case: skip the slot search. */
		if (!i || strcmp(rules[i].policy, rules[i - 1].policy))
			err = dp_pol_slot(dp, p, rules[i].policy, &slot);
		dp_pol_key(&rules[i], gen, &e[i].key);
		e[i].val.policy = slot;
		e[i].val.action = rules[i].defer ? ZM_POL_DEFER : ZM_POL_DROP;
		e[i].order = i;
	}
	if (!err)
		qsort(e, n, sizeof(*e), dp_pol_entry_cmp);
	for (size_t i = 0; i < n && !err; i++) {
		if (i && !memcmp(&e[i].key, &e[i - 1].key, sizeof(e[i].key)))
			continue;
		if (bpf_map_update_elem(p->rules_fd, &e[i].key, &e[i].val, BPF_ANY) < 0)
			err = dp_errf(dp, -errno, "writing a rule of %s into %s failed: %s",
				      p->names[e[i].val.policy].name, ZM_STR(ZM_MAP_POL_RULES),
				      strerror(errno));
		else
			p->new_rules[e[i].val.policy]++, (*n_entries)++;
	}
	free(e);
	return err;
}

/* After the flip (or a failed build): slot names get their counts; stale ones are freed. */
static int dp_pol_slots_finish(struct zm_dp *dp, struct dp_pol *p, bool flipped)
{
	int err = 0;

	for (__u32 i = 0; i < ZM_MAX_POLICIES && !err; i++) {
		bool live = flipped ? p->keep[i] : !p->fresh[i];

		if (!p->names[i].name[0])
			continue;
		if (!live) {
			memset(&p->names[i], 0, sizeof(p->names[i]));
			err = dp_pol_name_write(dp, p, i) ?: dp_pol_stats_zero(dp, p, i);
		} else if (flipped) {
			p->names[i].n_rules = p->new_rules[i];
			err = dp_pol_name_write(dp, p, i);
		}
	}
	return err;
}

static int dp_pol_replace_locked(struct zm_dp *dp, const struct zm_dp_policy_rule *rules, size_t n)
{
	struct zm_pol_gen g, ng;
	struct dp_pol p;
	__u32 zero = 0;
	__u8 next;
	int err;

	err = dp_pol_open(dp, &p) ?: dp_pol_gen_read(dp, &p, &g);
	if (err)
		goto out;
	next = (__u8)(g.gen ^ 1);
	ng = (struct zm_pol_gen){.gen = next, .serial = g.serial + 1};
	err = dp_pol_build(dp, &p, rules, n, next, &ng.n_rules);
	if (err) {
		/* The live generation was never touched; undo the idle one and fresh slots. */
		char saved[ZM_DP_ERR_LEN];

		memcpy(saved, dp->err, sizeof(saved));
		dp_pol_gen_keys(dp, &p, next, dp_pol_key_delete, NULL);
		dp_pol_slots_finish(dp, &p, false);
		memcpy(dp->err, saved, sizeof(saved));
		goto out;
	}
	/* The flip: one array update, atomic for every reader. */
	if (bpf_map_update_elem(p.gen_fd, &zero, &ng, BPF_ANY) < 0) {
		err = dp_errf(dp, -errno, "switching %s failed: %s", ZM_STR(ZM_MAP_POL_GEN),
			      strerror(errno));
		goto out;
	}
	err = dp_pol_gen_keys(dp, &p, g.gen & 1, dp_pol_key_delete, NULL)
		  ?: dp_pol_slots_finish(dp, &p, true);
out:
	dp_pol_close(&p);
	return err;
}

int zm_dp_policy_replace(struct zm_dp *dp, const struct zm_dp_policy_rule *rules, size_t n)
{
	int err;

	if (n > ZM_MAX_POL_RULES)
		return dp_errf(dp, -E2BIG, "%zu policy rules: at most %u fit the fast path", n,
			       ZM_MAX_POL_RULES);
	for (size_t i = 0; i < n; i++) {
		err = dp_pol_rule_check(dp, &rules[i], i);
		if (err)
			return err;
	}
	err = dp_lock(dp);
	if (err)
		return err;
	err = dp_abi_check(dp, false) ?: dp_pol_replace_locked(dp, rules, n);
	dp_unlock(dp);
	return err;
}

static int dp_pol_stat_cmp(const void *a, const void *b)
{
	return strcmp(((const struct zm_dp_policy_stat *)a)->policy,
		      ((const struct zm_dp_policy_stat *)b)->policy);
}

/* Sum one slot's per-CPU counters. */
static int dp_pol_stat_read(struct zm_dp *dp, struct dp_pol *p, __u32 slot,
			    struct zm_dp_policy_stat *st)
{
	int ncpu = libbpf_num_possible_cpus();
	struct zm_pol_counters *c;

	if (ncpu < 0)
		return dp_errf(dp, ncpu, "counting possible CPUs failed");
	c = calloc((size_t)ncpu, sizeof(*c));
	if (!c)
		return dp_errf(dp, -ENOMEM, "out of memory");
	if (!bpf_map_lookup_elem(p->stats_fd, &slot, c)) {
		for (int i = 0; i < ncpu; i++) {
			st->tc_drops += c[i].tc_drops;
			st->xdp_drops += c[i].xdp_drops;
		}
	}
	free(c);
	return 0;
}

int zm_dp_policy_stats(struct zm_dp *dp, struct zm_dp_policy_stat *out, size_t max, size_t *n)
{
	struct zm_dp_policy_stat *all;
	struct dp_pol p;
	size_t cnt = 0;
	int err;

	*n = 0;
	all = calloc(ZM_MAX_POLICIES, sizeof(*all));
	if (!all)
		return dp_errf(dp, -ENOMEM, "out of memory");
	err = dp_pol_open(dp, &p) ?: dp_abi_check(dp, true);
	for (__u32 i = 0; i < ZM_MAX_POLICIES && !err; i++) {
		if (!p.names[i].name[0])
			continue;
		memcpy(all[cnt].policy, p.names[i].name, ZM_POLICY_NAME_LEN);
		all[cnt].index = i;
		all[cnt].n_rules = p.names[i].n_rules;
		err = dp_pol_stat_read(dp, &p, i, &all[cnt++]);
	}
	if (!err) {
		qsort(all, cnt, sizeof(*all), dp_pol_stat_cmp);
		memcpy(out, all, (cnt < max ? cnt : max) * sizeof(*all));
		*n = cnt;
	}
	dp_pol_close(&p);
	free(all);
	return err;
}

struct dp_pol_list_ctx {
	struct zm_dp_policy_rule *out;
	size_t max, n;
};

/* One live trie entry back into a rule. */
static int dp_pol_list_cb(struct zm_dp *dp, struct dp_pol *p, const struct zm_pol_key *k, void *ctx)
{
	struct dp_pol_list_ctx *c = ctx;
	struct zm_dp_policy_rule *r;
	struct zm_pol_value v;

	(void)dp;
	if (bpf_map_lookup_elem(p->rules_fd, k, &v) < 0)
		return 0; /* replaced meanwhile */
	if (c->n++ >= c->max)
		return 0;
	r = &c->out[c->n - 1];
	memset(r, 0, sizeof(*r));
	if (v.policy < ZM_MAX_POLICIES)
		memcpy(r->policy, p->names[v.policy].name, ZM_POLICY_NAME_LEN);
	r->dst.family = k->family;
	memcpy(r->dst.addr, k->dst, sizeof(k->dst));
	r->src_prefix = k->prefixlen - ZM_POL_KEY_FIXED_BITS;
	r->src.family = r->src_prefix ? k->family : 0;
	if (r->src_prefix)
		memcpy(r->src.addr, k->src, sizeof(k->src));
	r->dst_port = ntohs(k->dport);
	r->defer = v.action != ZM_POL_DROP;
	return 0;
}

int zm_dp_policy_list(struct zm_dp *dp, struct zm_dp_policy_rule *out, size_t max, size_t *n,
		      __u64 *serial)
{
	struct dp_pol_list_ctx c = {.out = out, .max = max};
	struct zm_pol_gen g;
	struct dp_pol p;
	int err;

	*n = 0;
	err = dp_pol_open(dp, &p) ?: dp_abi_check(dp, true) ?: dp_pol_gen_read(dp, &p, &g);
	if (!err)
		err = dp_pol_gen_keys(dp, &p, (__u8)g.gen, dp_pol_list_cb, &c);
	if (!err) {
		*n = c.n;
		if (serial)
			*serial = g.serial;
	}
	dp_pol_close(&p);
	return err;
}
