// SPDX-License-Identifier: Apache-2.0
/*
 * zmeshctl map list | map dump NAME | stats | conn list, and the decoders that turn the
 * pinned maps' keys and values (include/zmesh/abi.h) into JSON with addresses, flags, reason
 * names and identities spelled out (the zm_pol_* maps with policy names and the live
 * generation; their free slots left out). A map whose key or value size does not match this
 * build's struct is shown as hex rather than misread.
 */
#include "zmeshctl.h"

#include "common/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_object *dec_addr(const struct zm_addr *a)
{
	char buf[ZM_ADDR_STRLEN];

	return json_object_new_string(zm_addr_format(a, buf, sizeof(buf)));
}

json_object *dec_wl_flags(__u32 flags)
{
	json_object *arr = json_object_new_array();

	if (flags & ZM_WL_F_CAPTURE)
		json_object_array_add(arr, json_object_new_string("capture"));
	if (flags & ZM_WL_F_HBONE)
		json_object_array_add(arr, json_object_new_string("hbone"));
	if (flags & ~(__u32)(ZM_WL_F_CAPTURE | ZM_WL_F_HBONE))
		json_object_array_add(arr, json_object_new_string("unknown"));
	return arr;
}

const char *dec_tcp_state(__u32 state)
{
	static const char *const names[] = {
	    "UNKNOWN",	 "ESTABLISHED", "SYN_SENT",	"SYN_RECV",   "FIN_WAIT1",
	    "FIN_WAIT2", "TIME_WAIT",	"CLOSE",	"CLOSE_WAIT", "LAST_ACK",
	    "LISTEN",	 "CLOSING",	"NEW_SYN_RECV",
	};

	return state < sizeof(names) / sizeof(names[0]) ? names[state] : "UNKNOWN";
}

static json_object *dec_hex(const void *p, size_t len)
{
	char buf[2 * 512 + 1];
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < len && i < 512; i++)
		snprintf(buf + 2 * i, 3, "%02x", b[i]);
	buf[2 * i] = '\0';
	return json_object_new_string(buf);
}

static void dec_add_str(json_object *o, const char *k, const char *v, size_t max)
{
	json_object_object_add(o, k, json_object_new_string_len(v, (int)strnlen(v, max)));
}

static json_object *dec_workload(const struct zm_workload *wl)
{
	json_object *o = json_object_new_object(), *fl = dec_wl_flags(wl->flags);
	char ifname[IF_NAMESIZE] = "";
	char text[64] = "";

	for (size_t i = 0; i < json_object_array_length(fl); i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s%s", i ? "," : "",
			 json_object_get_string(json_object_array_get_idx(fl, i)));
	json_object_object_add(o, "ifindex", json_object_new_int64(wl->ifindex));
	json_object_object_add(o, "ifname",
			       if_indextoname(wl->ifindex, ifname) ? json_object_new_string(ifname)
								   : NULL);
	json_object_object_add(o, "flags", fl);
	json_object_object_add(o, "flags_text", json_object_new_string(text));
	json_object_object_add(o, "cgroup_id", json_object_new_int64((int64_t)wl->cgroup_id));
	return o;
}

static json_object *dec_wl_info(const struct zm_workload_info *in)
{
	json_object *o = json_object_new_object();
	char id[4 * ZM_NAME_LEN + 32];

	dec_add_str(o, "name", in->name, sizeof(in->name));
	dec_add_str(o, "namespace", in->namespace, sizeof(in->namespace));
	dec_add_str(o, "service_account", in->service_account, sizeof(in->service_account));
	dec_add_str(o, "trust_domain", in->trust_domain, sizeof(in->trust_domain));
	dec_add_str(o, "node", in->node, sizeof(in->node));
	dec_add_str(o, "netns", in->netns, sizeof(in->netns));
	dec_add_str(o, "veth", in->veth, sizeof(in->veth));
	json_object_object_add(o, "enrolled_at", json_object_new_int64((int64_t)in->enrolled_at));
	snprintf(id, sizeof(id), "spiffe://%.*s/ns/%.*s/sa/%.*s", ZM_NAME_LEN, in->trust_domain,
		 ZM_NAME_LEN, in->namespace, ZM_NAME_LEN, in->service_account);
	json_object_object_add(o, "identity", json_object_new_string(id));
	return o;
}

static json_object *dec_conn_value(const struct zm_conn_stats *s)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "state", json_object_new_string(dec_tcp_state(s->state)));
	json_object_object_add(o, "srtt_us", json_object_new_int64(s->srtt_us));
	json_object_object_add(o, "retrans", json_object_new_int64(s->total_retrans));
	json_object_object_add(o, "bytes_acked", json_object_new_int64((int64_t)s->bytes_acked));
	json_object_object_add(o, "bytes_received",
			       json_object_new_int64((int64_t)s->bytes_received));
	json_object_object_add(o, "snd_cwnd", json_object_new_int64(s->snd_cwnd));
	json_object_object_add(o, "first_seen_ns",
			       json_object_new_int64((int64_t)s->first_seen_ns));
	json_object_object_add(o, "last_seen_ns", json_object_new_int64((int64_t)s->last_seen_ns));
	return o;
}

static json_object *dec_flow(const struct zm_flow *f)
{
	json_object *o = json_object_new_object();
	char buf[ZM_ADDR_STRLEN];

	json_object_object_add(o, "local",
			       json_object_new_string(zm_addr_port_format(
				   &f->local, ntohs(f->local_port), buf, sizeof(buf))));
	json_object_object_add(o, "remote",
			       json_object_new_string(zm_addr_port_format(
				   &f->remote, ntohs(f->remote_port), buf, sizeof(buf))));
	return o;
}

static json_object *dec_stats_value(const __u64 *v, unsigned int n)
{
	json_object *o = json_object_new_object(), *arr = json_object_new_array();
	__u64 sum = 0;

	for (unsigned int i = 0; i < n; i++) {
		sum += v[i];
		json_object_array_add(arr, json_object_new_int64((int64_t)v[i]));
	}
	json_object_object_add(o, "packets", json_object_new_int64((int64_t)sum));
	json_object_object_add(o, "per_cpu", arr);
	return o;
}

static bool dec_sizes(const struct zm_dp_map_info *mi, size_t k, size_t v)
{
	return mi->key_size == k && mi->value_size == v;
}

/*
 * The policy maps refer to each other by slot and generation: map dump loads zm_pol_names
 * and zm_pol_gen first (dec_pol_load) so rules and counters show policy names and whether
 * they are live. NULL names: not loaded, show indexes only.
 */
static struct zm_pol_name *dec_pol_names;
static int dec_pol_live_gen = -1; /* -1: unknown */

static int dec_pol_names_cb(const void *key, const void *values, const struct zm_dp_map_info *mi,
			    void *ctx)
{
	__u32 i = *(const __u32 *)key;

	(void)ctx;
	if (dec_sizes(mi, 4, sizeof(struct zm_pol_name)) && i < ZM_MAX_POLICIES) {
		memcpy(&dec_pol_names[i], values, sizeof(struct zm_pol_name));
		dec_pol_names[i].name[ZM_POLICY_NAME_LEN - 1] = '\0';
	}
	return 0;
}

static int dec_pol_gen_cb(const void *key, const void *values, const struct zm_dp_map_info *mi,
			  void *ctx)
{
	(void)key;
	(void)ctx;
	if (dec_sizes(mi, 4, sizeof(struct zm_pol_gen)))
		dec_pol_live_gen = (int)(((const struct zm_pol_gen *)values)->gen & 1);
	return 0;
}

/* Best effort: without these maps the dump still decodes, just without names. */
static void dec_pol_load(struct zm_dp *dp)
{
	dec_pol_names = calloc(ZM_MAX_POLICIES, sizeof(*dec_pol_names));
	if (dec_pol_names)
		zm_dp_map_walk(dp, ZM_STR(ZM_MAP_POL_NAMES), dec_pol_names_cb, NULL, NULL);
	zm_dp_map_walk(dp, ZM_STR(ZM_MAP_POL_GEN), dec_pol_gen_cb, NULL, NULL);
}

static void dec_pol_unload(void)
{
	free(dec_pol_names);
	dec_pol_names = NULL;
	dec_pol_live_gen = -1;
}

static json_object *dec_pol_name(__u32 slot)
{
	if (!dec_pol_names || slot >= ZM_MAX_POLICIES || !dec_pol_names[slot].name[0])
		return NULL;
	return json_object_new_string(dec_pol_names[slot].name);
}

/* A trie key: which generation, destination, port and source prefix. */
static json_object *dec_pol_key(const struct zm_pol_key *k)
{
	json_object *o = json_object_new_object();
	unsigned int bits = k->prefixlen - ZM_POL_KEY_FIXED_BITS;
	char buf[ZM_ADDR_STRLEN + 8];
	struct zm_addr a = {.family = k->family};

	json_object_object_add(o, "gen", json_object_new_int(k->gen));
	if (dec_pol_live_gen >= 0)
		json_object_object_add(o, "live",
				       json_object_new_boolean(k->gen == dec_pol_live_gen));
	memcpy(a.addr, k->dst, sizeof(a.addr));
	json_object_object_add(o, "dst", dec_addr(&a));
	json_object_object_add(o, "dst_port", json_object_new_int(ntohs(k->dport)));
	if (k->prefixlen < ZM_POL_KEY_FIXED_BITS || !bits) {
		json_object_object_add(o, "src", json_object_new_string("any"));
		return o;
	}
	memcpy(a.addr, k->src, sizeof(a.addr));
	zm_addr_format(&a, buf, sizeof(buf));
	snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "/%u", bits);
	json_object_object_add(o, "src", json_object_new_string(buf));
	return o;
}

static json_object *dec_pol_value(const struct zm_pol_value *v)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "action",
			       json_object_new_string(v->action == ZM_POL_DROP	  ? "drop"
						      : v->action == ZM_POL_DEFER ? "defer"
										  : "unknown"));
	json_object_object_add(o, "policy", dec_pol_name(v->policy));
	json_object_object_add(o, "index", json_object_new_int64(v->policy));
	return o;
}

/* Per-CPU counters of one slot, each value padded to 8 bytes (already 16 here). */
static json_object *dec_pol_counters(__u32 slot, const struct zm_pol_counters *c, unsigned int n)
{
	json_object *o = json_object_new_object(), *arr = json_object_new_array();
	__u64 tc = 0, xdp = 0;

	for (unsigned int i = 0; i < n; i++) {
		json_object *e = json_object_new_object();

		tc += c[i].tc_drops;
		xdp += c[i].xdp_drops;
		json_object_object_add(e, "tc_drops",
				       json_object_new_int64((int64_t)c[i].tc_drops));
		json_object_object_add(e, "xdp_drops",
				       json_object_new_int64((int64_t)c[i].xdp_drops));
		json_object_array_add(arr, e);
	}
	json_object_object_add(o, "policy", dec_pol_name(slot));
	json_object_object_add(o, "tc_drops", json_object_new_int64((int64_t)tc));
	json_object_object_add(o, "xdp_drops", json_object_new_int64((int64_t)xdp));
	json_object_object_add(o, "per_cpu", arr);
	return o;
}

/* Free slots of the fixed-size policy arrays: left out of dumps (1024 lines of nothing). */
static bool dec_pol_unused(const char *map, const void *values, const struct zm_dp_map_info *mi)
{
	if (!strcmp(map, ZM_STR(ZM_MAP_POL_NAMES)) && dec_sizes(mi, 4, sizeof(struct zm_pol_name)))
		return !((const struct zm_pol_name *)values)->name[0];
	if (!strcmp(map, ZM_STR(ZM_MAP_POL_STATS)) &&
	    dec_sizes(mi, 4, sizeof(struct zm_pol_counters))) {
		const struct zm_pol_counters *c = values;

		for (unsigned int i = 0; i < mi->n_values; i++)
			if (c[i].tc_drops || c[i].xdp_drops)
				return false;
		return true;
	}
	return false;
}

/* {"key": ..., "value": ...} for one entry of a map we know, hex for anything else. */
json_object *dec_entry(const char *map, const void *key, const void *values,
		       const struct zm_dp_map_info *mi)
{
	const size_t A = sizeof(struct zm_addr);
	json_object *o = json_object_new_object(), *k = NULL, *v = NULL;

	if (!strcmp(map, ZM_STR(ZM_MAP_WORKLOADS)) &&
	    dec_sizes(mi, A, sizeof(struct zm_workload))) {
		k = dec_addr(key);
		v = dec_workload(values);
	} else if (!strcmp(map, ZM_STR(ZM_MAP_WL_INFO)) &&
		   dec_sizes(mi, A, sizeof(struct zm_workload_info))) {
		k = dec_addr(key);
		v = dec_wl_info(values);
	} else if (!strcmp(map, ZM_STR(ZM_MAP_BYPASS)) && dec_sizes(mi, A, 4)) {
		__u32 kind = *(const __u32 *)values;

		k = dec_addr(key);
		v = json_object_new_string(kind == ZM_BYPASS_NODE_ADDR ? "node_addr"
					   : kind == ZM_BYPASS_USER    ? "user"
								       : "unknown");
	} else if (!strcmp(map, ZM_STR(ZM_MAP_META)) && dec_sizes(mi, 4, sizeof(struct zm_meta))) {
		const struct zm_meta *m = values;

		k = json_object_new_int64(*(const __u32 *)key);
		v = json_object_new_object();
		json_object_object_add(v, "abi_version", json_object_new_int64(m->abi_version));
		json_object_object_add(v, "loaded_at",
				       json_object_new_int64((int64_t)m->loaded_at));
	} else if (!strcmp(map, ZM_STR(ZM_MAP_STATS)) && dec_sizes(mi, 4, 8)) {
		k = json_object_new_string(zm_dp_reason_name(*(const __u32 *)key));
		v = dec_stats_value(values, mi->n_values);
	} else if (!strcmp(map, ZM_STR(ZM_MAP_CONNS)) &&
		   dec_sizes(mi, sizeof(struct zm_flow), sizeof(struct zm_conn_stats))) {
		k = dec_flow(key);
		v = dec_conn_value(values);
	} else if (!strcmp(map, ZM_STR(ZM_MAP_POL_RULES)) &&
		   dec_sizes(mi, sizeof(struct zm_pol_key), sizeof(struct zm_pol_value))) {
		k = dec_pol_key(key);
		v = dec_pol_value(values);
	} else if (!strcmp(map, ZM_STR(ZM_MAP_POL_STATS)) &&
		   dec_sizes(mi, 4, sizeof(struct zm_pol_counters))) {
		k = json_object_new_int64(*(const __u32 *)key);
		v = dec_pol_counters(*(const __u32 *)key, values, mi->n_values);
	} else if (!strcmp(map, ZM_STR(ZM_MAP_POL_NAMES)) &&
		   dec_sizes(mi, 4, sizeof(struct zm_pol_name))) {
		const struct zm_pol_name *pn = values;

		k = json_object_new_int64(*(const __u32 *)key);
		v = json_object_new_object();
		dec_add_str(v, "policy", pn->name, sizeof(pn->name));
		json_object_object_add(v, "n_rules", json_object_new_int64(pn->n_rules));
	} else if (!strcmp(map, ZM_STR(ZM_MAP_POL_GEN)) &&
		   dec_sizes(mi, 4, sizeof(struct zm_pol_gen))) {
		const struct zm_pol_gen *g = values;

		k = json_object_new_int64(*(const __u32 *)key);
		v = json_object_new_object();
		json_object_object_add(v, "live_gen", json_object_new_int64(g->gen));
		json_object_object_add(v, "n_rules", json_object_new_int64(g->n_rules));
		json_object_object_add(v, "serial", json_object_new_int64((int64_t)g->serial));
	} else {
		size_t vsz = mi->n_values > 1 ? ((mi->value_size + 7u) & ~7u) * mi->n_values
					      : mi->value_size;

		k = dec_hex(key, mi->key_size);
		v = dec_hex(values, vsz);
	}
	json_object_object_add(o, "key", k);
	json_object_object_add(o, "value", v);
	return o;
}

struct dump_ctx {
	const char *map;
	json_object *arr;
};

static size_t dump_skipped; /* unused policy slots left out, for the human footer */

static int dump_cb(const void *key, const void *values, const struct zm_dp_map_info *mi, void *ctx)
{
	struct dump_ctx *d = ctx;

	if (dec_pol_unused(d->map, values, mi)) {
		dump_skipped++;
		return 0;
	}
	json_object_array_add(d->arr, dec_entry(d->map, key, values, mi));
	return 0;
}

/* "k=v k=v" for an object, the plain string otherwise: one line per entry for humans. */
static void human_flat(json_object *v)
{
	if (!json_object_is_type(v, json_type_object)) {
		printf("%s", json_object_get_string(v));
		return;
	}
	bool first = true;

	json_object_object_foreach (v, key, val) {
		if (json_object_is_type(val, json_type_array) && !strcmp(key, "per_cpu"))
			continue;
		printf("%s%s=%s", first ? "" : " ", key,
		       val ? json_object_to_json_string_ext(val, JSON_C_TO_STRING_PLAIN |
								     JSON_C_TO_STRING_NOSLASHESCAPE)
			   : "-");
		first = false;
	}
}

static void map_dump_human(json_object *arr)
{
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *e = json_object_array_get_idx(arr, i), *k, *v;

		json_object_object_get_ex(e, "key", &k);
		json_object_object_get_ex(e, "value", &v);
		human_flat(k);
		printf(" -> ");
		human_flat(v);
		printf("\n");
	}
	printf("%zu entr%s", json_object_array_length(arr),
	       json_object_array_length(arr) == 1 ? "y" : "ies");
	if (dump_skipped)
		printf(" (%zu unused slot%s not shown)", dump_skipped,
		       dump_skipped == 1 ? "" : "s");
	printf("\n");
}

int cmd_map_dump(struct cli *c, int argc, char **argv)
{
	struct dump_ctx d;
	int opt, r;

	while ((opt = cli_getopt(c, argc, argv, NULL)) != -1)
		return CLI_USAGE;
	if (optind + 1 != argc)
		return cli_usage_fail(c, "map dump takes exactly one map NAME (see map list)");
	d.map = argv[optind];
	if (cli_prepare(c))
		return CLI_ERR;
	d.arr = json_object_new_array();
	if (!strncmp(d.map, "zm_pol_", 7))
		dec_pol_load(&c->dp);
	r = zm_dp_map_walk(&c->dp, d.map, dump_cb, &d, NULL);
	dec_pol_unload();
	if (r) {
		json_object_put(d.arr);
		return cli_dp_fail(c, r);
	}
	return cli_emit(c, d.arr, map_dump_human);
}

static int count_cb(const void *key, const void *values, const struct zm_dp_map_info *mi, void *ctx)
{
	(void)key;
	(void)values;
	(void)mi;
	(*(long *)ctx)++;
	return 0;
}

static void map_list_human(json_object *arr)
{
	static const char *const keys[] = {"id",	  "type",    "key_size", "value_size",
					   "max_entries", "entries", "name",	 NULL};
	static const char *const heads[] = {"ID",  "TYPE",    "KEY",  "VALUE",
					    "MAX", "ENTRIES", "NAME", NULL};
	static const int w[] = {6, 16, 5, 6, 7, 8};

	cli_print_table(arr, heads, keys, w);
}

int cmd_map_list(struct cli *c, int argc, char **argv)
{
	static struct zm_dp_status st;
	json_object *arr;
	int r;

	if ((r = cli_begin_bare(c, argc, argv)))
		return r;
	r = zm_dp_status(&c->dp, &st);
	if (r)
		return cli_dp_fail(c, r);
	if (!st.loaded)
		return cli_fail(c, "nothing is loaded in %s", c->dp.pin_dir);
	arr = json_object_new_array();
	for (size_t i = 0; i < st.n_pins; i++) {
		const struct zm_dp_pin *p = &st.pins[i];
		json_object *o;
		long n = 0;

		if (strcmp(p->kind, "map"))
			continue;
		zm_dp_map_walk(&c->dp, p->name, count_cb, &n, NULL);
		o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(p->name));
		json_object_object_add(o, "id", json_object_new_int64(p->id));
		json_object_object_add(o, "type", json_object_new_string(p->type));
		json_object_object_add(o, "key_size", json_object_new_int64(p->key_size));
		json_object_object_add(o, "value_size", json_object_new_int64(p->value_size));
		json_object_object_add(o, "max_entries", json_object_new_int64(p->max_entries));
		json_object_object_add(o, "entries", json_object_new_int64(n));
		json_object_array_add(arr, o);
	}
	return cli_emit(c, arr, map_list_human);
}

static void stats_human(json_object *arr)
{
	static const char *const keys[] = {"reason", "packets", "description", NULL};
	static const char *const heads[] = {"REASON", "PACKETS", "DESCRIPTION", NULL};
	static const int w[] = {24, 12};

	cli_print_table(arr, heads, keys, w);
}

int cmd_stats(struct cli *c, int argc, char **argv)
{
	__u64 counters[ZM_REASON_MAX];
	json_object *arr;
	int r;

	if ((r = cli_begin_bare(c, argc, argv)))
		return r;
	r = zm_dp_stats_read(&c->dp, counters);
	if (r)
		return cli_dp_fail(c, r);
	arr = json_object_new_array();
	for (unsigned int i = 0; i < ZM_REASON_MAX; i++) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "id", json_object_new_int((int)i));
		json_object_object_add(o, "reason", json_object_new_string(zm_dp_reason_name(i)));
		json_object_object_add(o, "packets", json_object_new_int64((int64_t)counters[i]));
		json_object_object_add(o, "description",
				       json_object_new_string(zm_dp_reason_help(i)));
		json_object_array_add(arr, o);
	}
	return cli_emit(c, arr, stats_human);
}

static int conn_cb(const void *key, const void *values, const struct zm_dp_map_info *mi, void *ctx)
{
	json_object *e = dec_entry(ZM_STR(ZM_MAP_CONNS), key, values, mi), *k, *v, *o;

	json_object_object_get_ex(e, "key", &k);
	json_object_object_get_ex(e, "value", &v);
	if (!json_object_is_type(k, json_type_object)) {
		json_object_put(e);
		return -EPROTO; /* layout mismatch: dec_entry fell back to hex */
	}
	o = json_object_get(k);
	json_object_object_foreach (v, name, val)
		json_object_object_add(o, name, json_object_get(val));
	json_object_put(e);
	json_object_array_add(ctx, o);
	return 0;
}

static void conn_list_human(json_object *arr)
{
	static const char *const keys[] = {"local",   "remote",	     "state",	       "srtt_us",
					   "retrans", "bytes_acked", "bytes_received", NULL};
	static const char *const heads[] = {"LOCAL",   "REMOTE",      "STATE",		"SRTT_US",
					    "RETRANS", "BYTES_ACKED", "BYTES_RECEIVED", NULL};
	static const int w[] = {28, 28, 12, 8, 8, 12};

	cli_print_table(arr, heads, keys, w);
}

int cmd_conn_list(struct cli *c, int argc, char **argv)
{
	json_object *arr;
	int r;

	if ((r = cli_begin_bare(c, argc, argv)))
		return r;
	arr = json_object_new_array();
	r = zm_dp_map_walk(&c->dp, ZM_STR(ZM_MAP_CONNS), conn_cb, arr, NULL);
	if (r) {
		json_object_put(arr);
		if (r == -EPROTO && !c->dp.err[0])
			return cli_fail(c, "%s has an unexpected layout (ABI mismatch)",
					ZM_STR(ZM_MAP_CONNS));
		return cli_dp_fail(c, r);
	}
	return cli_emit(c, arr, conn_list_human);
}
