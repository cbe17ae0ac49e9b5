#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
#
# The arithmetic half of `make bench`: scripts/bench.sh measures and appends one JSON line per
# sample to a samples file; this script turns the raw outputs of the load tools into numbers
# (parse-*) and the samples into build/bench/results.{json,md} (report). Every figure is
# reported as min/median/max over its repetitions and as the ratio of its median to the
# baseline's (scenario "direct") median in the same placement of the same run, because the
# machines are small and noisy and only same-run ratios compare. A cell that has no value is
# printed as failed with the first reason recorded, so nothing is silently dropped. The
# waypoint scenario also gets a table of its own, set against the same load through the
# ztunnels only (zmesh-cross) and direct: ratios of the medians, and for latencies the
# microseconds the waypoint adds.
# Python standard library only (runs under Debian's /usr/bin/python3).
#
# Sample lines (JSON, one per line):
#   {"placement": P, "scenario": S, "figure": F, "rep": N, "value": X}
#   {"placement": P, "scenario": S, "figure": F, "rep": N, "num": A, "den": B}   value = A / B
#   {"placement": P, "scenario": S, "figure": F, "rep": N, "failed": "why"}
#   {"placement": P, "scenario": S, "figure": "*", "failed": "why"}   the whole scenario
# Placement "-" holds machine-wide figures (the crypto ceiling).

import json
import statistics
import sys

BASELINE = "direct"

# figure id, label, unit, which way is better; the table's row order.
FIGURES = [
    ("tput_1_gbps", "throughput, 1 stream", "Gbit/s", "higher"),
    ("tput_4_gbps", "throughput, 4 streams", "Gbit/s", "higher"),
    ("rr1k_p50_us", "latency p50 @1000/s", "us", "lower"),
    ("rr1k_p90_us", "latency p90 @1000/s", "us", "lower"),
    ("rr1k_p99_us", "latency p99 @1000/s", "us", "lower"),
    ("rr5k_p50_us", "latency p50 @5000/s", "us", "lower"),
    ("rr5k_p90_us", "latency p90 @5000/s", "us", "lower"),
    ("rr5k_p99_us", "latency p99 @5000/s", "us", "lower"),
    ("rr5k_rps", "achieved req/s @5000/s", "req/s", "higher"),
    ("max_rps", "max req/s (keep-alive, closed loop)", "req/s", "higher"),
    ("rps_per_core", "req/s per core at max rate, whole path", "req/s", "higher"),
    ("rps_per_core_proxy", "req/s per core at max rate, proxies", "req/s", "higher"),
    ("rps_per_core_wp", "req/s per core at max rate, waypoint", "req/s", "higher"),
    ("conn_per_s", "new connections/s", "conn/s", "higher"),
    ("conn_p50_us", "connection time p50 (connect to answer)", "us", "lower"),
    ("conn_p99_us", "connection time p99 (connect to answer)", "us", "lower"),
    ("cpu_s_per_gib", "proxy CPU per GiB", "s", "lower"),
    ("cpu_ms_per_1k_req", "proxy CPU per 1k requests", "ms", "lower"),
    ("cpu_ms_per_1k_req_zt", "ztunnel CPU per 1k requests", "ms", "lower"),
    ("cpu_ms_per_1k_req_wp", "waypoint CPU per 1k requests", "ms", "lower"),
    ("rss_idle_mib", "proxy RSS idle", "MiB", "lower"),
    ("rss_load_mib", "proxy RSS under load", "MiB", "lower"),
    ("wp_rss_idle_mib", "waypoint RSS idle", "MiB", "lower"),
    ("wp_rss_load_mib", "waypoint RSS under load", "MiB", "lower"),
    ("idle_conns", "idle tunnelled connections held", "conns", "higher"),
    ("rss_held_mib", "ztunnel RSS (both nodes) holding them", "MiB", "lower"),
    ("rss_per_conn_n1_b", "ztunnel RSS per idle connection, node n1", "bytes", "lower"),
    ("rss_per_conn_n2_b", "ztunnel RSS per idle connection, node n2", "bytes", "lower"),
    ("zt_rss_idle_mib", "RSS of the larger idle ztunnel", "MiB", "lower"),
    ("scale_load_s", "config loaded and applied", "s", "lower"),
    ("scale_rss_added_mib", "ztunnel RSS added by the config (both nodes)", "MiB", "lower"),
]
MACHINE_FIGURES = [
    ("aes128gcm_16k_Bps", "AES-128-GCM, 16 KiB blocks, 1 core", "bytes/s", "higher"),
]
SCENARIOS = ["direct", "direct-same", "relay", "relay2", "stunnel", "haproxy-mtls", "zmesh-cross",
             "zmesh-same", "zmesh-pol10", "zmesh-pol1000", "zmesh-scale", "zmesh-waypoint",
             "zmesh-idle10k"]
PLACEMENTS = ["unpinned", "pinned"]
# Figures that only exist where there is a proxy process: "n/a" for the baselines.
PROXY_ONLY = {"cpu_s_per_gib", "cpu_ms_per_1k_req", "rss_idle_mib", "rss_load_mib",
              "rps_per_core_proxy", "cpu_ms_per_1k_req_zt"}
NO_PROXY = {"direct", "direct-same"}
# Scenarios that measure only some figures (by prefix); the others are "-" (not measured).
IDLE_FIGS = {"idle_conns", "rss_idle_mib", "rss_held_mib", "rss_per_conn_n1_b",
             "rss_per_conn_n2_b", "zt_rss_idle_mib"}
SCALE_FIGS = {"scale_load_s", "scale_rss_added_mib"}
CONN_FIGS = {"conn_per_s", "conn_p50_us", "conn_p99_us"}
RR_FIGS = {f + s for f in ("rr1k_", "rr5k_") for s in ("p50_us", "p90_us", "p99_us")} | {
    "rr5k_rps"}
# The waypoint comparison: the scenario, its ztunnel-only counterpart (same client, load and
# server) and the figures of its table.
WAYPOINT, ZT_ONLY = "zmesh-waypoint", "zmesh-cross"
MAX_FIGS = {"max_rps", "rps_per_core", "rps_per_core_proxy"}
WP_FIGS = {"rps_per_core_wp", "cpu_ms_per_1k_req_wp", "wp_rss_idle_mib", "wp_rss_load_mib"}
# Figures only some scenarios measure, and which.
ONLY_IN = {f: {BASELINE, ZT_ONLY, WAYPOINT} for f in MAX_FIGS}
ONLY_IN.update({f: {WAYPOINT} for f in WP_FIGS})
ONLY_IN["cpu_ms_per_1k_req_zt"] = {ZT_ONLY, WAYPOINT}
SCENARIO_FIGS = [
    ("zmesh-pol", CONN_FIGS | {"rss_idle_mib", "rss_load_mib"}),
    ("zmesh-scale", CONN_FIGS | SCALE_FIGS | {"rss_idle_mib", "rss_load_mib"}),
    ("zmesh-waypoint", RR_FIGS | CONN_FIGS | MAX_FIGS | WP_FIGS | {
        "cpu_ms_per_1k_req", "cpu_ms_per_1k_req_zt", "rss_idle_mib", "rss_load_mib"}),
    ("zmesh-idle", IDLE_FIGS),
]
WAYPOINT_ROWS = ["rr1k_p50_us", "rr1k_p99_us", "rr5k_p50_us", "rr5k_p99_us", "max_rps",
                 "rps_per_core", "rps_per_core_proxy", "rps_per_core_wp", "conn_per_s",
                 "conn_p50_us", "conn_p99_us", "cpu_ms_per_1k_req", "cpu_ms_per_1k_req_zt",
                 "cpu_ms_per_1k_req_wp", "rss_idle_mib", "rss_load_mib", "wp_rss_idle_mib",
                 "wp_rss_load_mib"]


# Issue 18's goals. Each is one number from the run's results, compared with a target:
# ("ratio", scenario, figure, other scenario[, other figure]) is the ratio of the two medians in
# the same placement; ("value", scenario, figure[, scale]) a median (times scale); ("max",
# scenario, (figures...), scale) the largest of several medians. Rows: id, text, the number's
# unit, how it is computed, ">=" or "<=", target.
GOALS = [
    ("tput1_haproxy", "cross-node, 1 stream, against haproxy mTLS", "x",
     ("ratio", "zmesh-cross", "tput_1_gbps", "haproxy-mtls"), ">=", 1.5),
    ("tput1_direct", "cross-node, 1 stream, against direct", "x",
     ("ratio", "zmesh-cross", "tput_1_gbps", "direct"), ">=", 0.40),
    ("tput4_haproxy", "cross-node, 4 streams, against haproxy mTLS", "x",
     ("ratio", "zmesh-cross", "tput_4_gbps", "haproxy-mtls"), ">=", 2.0),
    ("cpu_gib", "ztunnel CPU per GiB (both nodes)", "s",
     ("value", "zmesh-cross", "cpu_s_per_gib"), "<=", 1.2),
    ("cpu_1k_req", "ztunnel CPU per 1,000 requests (both nodes)", "ms",
     ("value", "zmesh-cross", "cpu_ms_per_1k_req"), "<=", 60),
    ("p50_relay", "latency p50 at 1,000 req/s, against the plaintext relay", "x",
     ("ratio", "zmesh-cross", "rr1k_p50_us", "relay"), "<=", 1.15),
    ("p99_relay", "latency p99 at 1,000 req/s, against the plaintext relay", "x",
     ("ratio", "zmesh-cross", "rr1k_p99_us", "relay"), "<=", 1.0),
    ("conn_relay", "new connections/s, against the plaintext relay", "x",
     ("ratio", "zmesh-cross", "conn_per_s", "relay"), ">=", 0.8),
    ("rss_conn", "ztunnel RSS per idle tunnelled connection (larger node)", "KiB",
     ("max", "zmesh-idle10k", ("rss_per_conn_n1_b", "rss_per_conn_n2_b"), 1 / 1024), "<=", 4),
    ("rss_idle", "idle ztunnel RSS (larger node)", "MiB",
     ("value", "zmesh-idle10k", "zt_rss_idle_mib"), "<=", 8),
    ("same_direct", "same-node, 1 stream, against direct same-node", "x",
     ("ratio", "zmesh-same", "tput_1_gbps", "direct-same"), ">=", 0.80),
    ("wp_cpu_1k", "waypoint CPU per 1,000 requests", "ms",
     ("value", "zmesh-waypoint", "cpu_ms_per_1k_req_wp"), "<=", 35),
    ("wp_max_rps", "waypoint keep-alive throughput, against ztunnel only", "x",
     ("ratio", "zmesh-waypoint", "max_rps", "zmesh-cross"), ">=", 0.8),
    ("scale_load", "scale: 50,000 workloads + 10,000 services loaded and applied", "s",
     ("value", "zmesh-scale", "scale_load_s"), "<=", 2),
    ("scale_rss", "scale: ztunnel RSS added by that config (both nodes)", "MiB",
     ("value", "zmesh-scale", "scale_rss_added_mib"), "<=", 100),
    ("scale_conn", "scale: new connections/s, against the small config", "x",
     ("ratio", "zmesh-scale", "conn_per_s", "zmesh-cross"), ">=", 0.9),
    ("pol1000_conn", "1,000 policies: new connections/s, against none", "x",
     ("ratio", "zmesh-pol1000", "conn_per_s", "zmesh-cross"), ">=", 0.95),
]


def goal_value(table, how):
    """(value, why): a goal's number from one placement's table, or None and what is missing."""
    def med(sc, fig):
        c = table.get(sc, {}).get(fig)
        if c is None:
            return None, "%s not run" % sc
        if c.get("median") is None:
            return None, "%s %s: %s" % (sc, fig, c.get("failed") or c.get("na") or "no value")
        return c["median"], None
    kind = how[0]
    if kind == "ratio":
        a, why = med(how[1], how[2])
        if a is None:
            return None, why
        b, why = med(how[3], how[4] if len(how) > 4 else how[2])
        if b is None:
            return None, why
        return (a / b, None) if b else (None, "%s median is 0" % how[3])
    if kind == "value":
        v, why = med(how[1], how[2])
        return (v * (how[3] if len(how) > 3 else 1), None) if v is not None else (None, why)
    vals = []
    for fig in how[2]:
        v, why = med(how[1], fig)
        if v is None:
            return None, why
        vals.append(v)
    return max(vals) * how[3], None


def goals(res):
    """Every goal in every placement: value, met (None when it could not be measured)."""
    out = []
    for gid, text, unit, how, op, target in GOALS:
        g = {"id": gid, "goal": text, "unit": unit, "op": op, "target": target,
             "placements": {}}
        for p, pr in res["placements"].items():
            v, why = goal_value(pr["table"], how)
            met = None if v is None else (v >= target if op == ">=" else v <= target)
            g["placements"][p] = {"value": None if v is None else round(v, 4), "met": met,
                                  "missing": why}
        out.append(g)
    return out


def goals_md(res):
    places = list(res["placements"])
    out = ["", "## goals (issue 18)", "",
           "Each goal's number from this run: a ratio of two medians in the same placement, "
           "or a median; \"met\" compares it with the target. \"not measured\": a scenario "
           "or figure it needs was not run or failed (the reason is in the tables above).", ""]
    rows = []
    for g in res.get("goals", []):
        row = [g["goal"], "%s %s%s" % (g["op"], fmt_num(g["target"]),
                                        "" if g["unit"] == "x" else " " + g["unit"])]
        for p in places:
            c = g["placements"].get(p, {})
            if c.get("value") is None:
                row.append("not measured")
                continue
            v = ("x%.2f" % c["value"]) if g["unit"] == "x" else (
                "%s %s" % (fmt_num(c["value"]), g["unit"]))
            row.append("%s %s" % (v, "met" if c["met"] else "NOT met"))
        rows.append(row)
    return out + md_table(["goal", "target"] + places, rows)


def measured(sc, fig):
    """Whether scenario sc measures figure fig at all."""
    if fig in ONLY_IN and sc not in ONLY_IN[fig]:
        return False
    for prefix, figs in SCENARIO_FIGS:
        if sc.startswith(prefix):
            return fig in figs
    return (fig not in IDLE_FIGS or fig == "rss_idle_mib") and fig not in SCALE_FIGS


def die(msg):
    print("bench-report: " + msg, file=sys.stderr)
    sys.exit(1)


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        die("%s: %s" % (path, e))


# parse-iperf FILE: "<Gbit/s received> <bytes received>" from iperf3 -J output.
def parse_iperf(path):
    doc = load_json(path)
    if doc.get("error"):
        die("iperf3: " + str(doc["error"]))
    try:
        s = doc["end"]["sum_received"]
        bps, nbytes = float(s["bits_per_second"]), int(s["bytes"])
    except (KeyError, TypeError, ValueError):
        die("%s: no end.sum_received in iperf3 output" % path)
    if nbytes <= 0:
        die("iperf3 moved no bytes")
    print("%.4f %d" % (bps / 1e9, nbytes))


# parse-rr FILE: "<p50> <p90> <p99> <requests> <errors> <achieved rps>" from zm-rr client.
def parse_rr(path):
    doc = load_json(path)
    try:
        vals = [int(doc["p50_us"]), int(doc["p90_us"]), int(doc["p99_us"]),
                int(doc["requests"]), int(doc["errors"]), float(doc["achieved_rps"])]
    except (KeyError, TypeError, ValueError):
        die("%s: not zm-rr client output" % path)
    if vals[3] <= 0:
        die("zm-rr completed no requests (%d errors)" % vals[4])
    # Latencies of a run that lost more than 1% of its requests describe the survivors only.
    if vals[4] * 100 > vals[3] + vals[4]:
        die("zm-rr: %d of %d requests failed" % (vals[4], vals[3] + vals[4]))
    print("%d %d %d %d %d %.1f" % tuple(vals))


# parse-connect FILE: "<conn/s> <connections> <errors> <p50> <p90> <p99>" from zm-rr connect
# (percentiles of each connection's connect-to-answer time in us; -1 from an older zm-rr).
def parse_connect(path):
    doc = load_json(path)
    try:
        vals = (float(doc["conn_per_s"]), int(doc["connections"]), int(doc["errors"]),
                int(doc.get("conn_p50_us", -1)), int(doc.get("conn_p90_us", -1)),
                int(doc.get("conn_p99_us", -1)))
    except (KeyError, TypeError, ValueError):
        die("%s: not zm-rr connect output" % path)
    if vals[1] <= 0:
        die("zm-rr connect completed no connections (%d errors)" % vals[2])
    if vals[2] * 100 > vals[1] + vals[2]:
        die("zm-rr connect: %d of %d connections failed" % (vals[2], vals[1] + vals[2]))
    print("%.1f %d %d %d %d %d" % vals)


# parse-load FILE: "<req/s> <requests> <errors> <p50> <p99> <client CPU s>" from zm-rr load.
def parse_load(path):
    doc = load_json(path)
    try:
        vals = (float(doc["rps"]), int(doc["requests"]), int(doc["errors"]),
                int(doc["p50_us"]), int(doc["p99_us"]), float(doc["cpu_s"]))
    except (KeyError, TypeError, ValueError):
        die("%s: not zm-rr load output" % path)
    if vals[1] <= 0:
        die("zm-rr load completed no requests (%d errors)" % vals[2])
    if vals[2] * 100 > vals[1] + vals[2]:
        die("zm-rr load: %d of %d requests failed" % (vals[2], vals[1] + vals[2]))
    print("%.1f %d %d %d %d %.3f" % vals)


# parse-speed FILE: bytes/s of the largest block size in `openssl speed -mr` output
# (lines "+F:<n>:<alg>:<bytes/s for each block size>...").
def parse_speed(path):
    try:
        with open(path) as f:
            lines = [ln.strip() for ln in f if ln.startswith("+F:")]
    except OSError as e:
        die("%s: %s" % (path, e))
    if not lines:
        die("%s: no '+F:' line in openssl speed -mr output" % path)
    try:
        print("%.0f" % float(lines[-1].split(":")[-1]))
    except ValueError:
        die("%s: unreadable '+F:' line" % path)


def read_samples(path):
    out = []
    try:
        f = open(path)
    except OSError as e:
        die("%s: %s" % (path, e))
    with f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                s = json.loads(line)
            except ValueError as e:
                die("%s:%d: %s" % (path, n, e))
            for k in ("placement", "scenario", "figure"):
                if not isinstance(s.get(k), str):
                    die("%s:%d: missing '%s'" % (path, n, k))
            out.append(s)
    return out


def sample_value(s):
    """The sample's number, or None when it failed or cannot be computed."""
    if "failed" in s:
        return None
    if "value" in s:
        return float(s["value"])
    if "num" in s and "den" in s and float(s["den"]) > 0:
        return float(s["num"]) / float(s["den"])
    return None


def summarize(samples):
    """{(placement, scenario, figure): {"values": [...], "failures": [...]}} plus scenario-wide
    failures {(placement, scenario): why}."""
    cells, whole = {}, {}
    for s in samples:
        key = (s["placement"], s["scenario"])
        if s["figure"] == "*":
            whole.setdefault(key, s.get("failed", "failed"))
            continue
        c = cells.setdefault(key + (s["figure"],), {"values": [], "failures": []})
        v = sample_value(s)
        if v is None:
            c["failures"].append(s.get("failed", "no value (zero denominator)"))
        else:
            c["values"].append(v)
    return cells, whole


def ordered(seen, known):
    return [x for x in known if x in seen] + sorted(x for x in seen if x not in known)


def build_results(samples, meta):
    cells, whole = summarize(samples)
    placements = ordered({k[0] for k in cells} | {k[0] for k in whole}, PLACEMENTS + ["-"])
    res = {"meta": meta, "baseline": BASELINE, "placements": {}}
    fig_ids = [f[0] for f in FIGURES]
    for p in placements:
        if p == "-":
            continue
        scen_seen = {k[1] for k in cells if k[0] == p} | {k[1] for k in whole if k[0] == p}
        figs_seen = {k[2] for k in cells if k[0] == p}
        figs = ordered(figs_seen | set(fig_ids), fig_ids)
        # Scenarios the run meant to measure stay in the table even with no sample at all.
        scens = ordered(scen_seen | set(meta.get("scenarios", [])), SCENARIOS)
        table = {}
        for sc in scens:
            row = {}
            for fig in figs:
                row[fig] = cell_stats(cells, whole, p, sc, fig)
            table[sc] = row
        for sc in scens:
            for fig in figs:
                row = table[sc][fig]
                base = table.get(BASELINE, {}).get(fig)
                if row.get("median") is not None and base and base.get("median"):
                    row["ratio"] = round(row["median"] / base["median"], 4)
                else:
                    row["ratio"] = None
        res["placements"][p] = {"scenarios": scens, "figures": figs, "table": table}
        if WAYPOINT in table:
            res.setdefault("waypoint", {})[p] = waypoint_rows(table)
    machine = {}
    for fid, _, _, _ in MACHINE_FIGURES:
        if ("-", "crypto", fid) in cells or ("-", "crypto") in whole:
            machine[fid] = cell_stats(cells, whole, "-", "crypto", fid)
    res["machine"] = machine
    res["goals"] = goals(res)
    return res


def waypoint_rows(table):
    """The waypoint's figures against ztunnel-only and direct in one placement: for each, the
    ratio of the medians and, for latencies (us), the difference (what the waypoint adds).
    None where either side has no median."""
    units = {f[0]: f[2] for f in FIGURES}
    rows = []
    for fig in WAYPOINT_ROWS:
        wp = table[WAYPOINT].get(fig, {})
        if wp.get("na", "").startswith("not measured"):
            continue
        row = {"figure": fig}
        for name, sc in (("ztunnel_only", ZT_ONLY), ("direct", BASELINE)):
            other = table.get(sc, {}).get(fig, {})
            w, o = wp.get("median"), other.get("median")
            row["ratio_" + name] = round(w / o, 4) if w is not None and o else None
            if units.get(fig) == "us":
                row["added_us_" + name] = (round(w - o, 1) if w is not None and o is not None
                                           else None)
        rows.append(row)
    return rows


def cell_stats(cells, whole, p, sc, fig):
    """One cell. A scenario-wide failure wins over any values (they cannot be trusted: e.g. a
    mesh run whose traffic was never captured), a cell with no value at all is failed."""
    c = cells.get((p, sc, fig))
    if not measured(sc, fig):
        return {"n": 0, "median": None, "na": "not measured in this scenario"}
    if fig in PROXY_ONLY and sc in NO_PROXY:
        return {"n": 0, "median": None, "na": "no proxy process"}
    if (p, sc) in whole:
        out = {"n": 0, "median": None, "failed": whole[(p, sc)]}
        if c and c["values"]:
            out["discarded"] = c["values"]
        return out
    if c and c["values"]:
        v = sorted(c["values"])
        out = {"n": len(v), "min": v[0], "median": statistics.median(v), "max": v[-1],
               "samples": c["values"]}
        if c["failures"]:
            out["failed_reps"] = len(c["failures"])
            out["failure"] = c["failures"][0]
        return out
    why = c["failures"][0] if c and c["failures"] else "no sample"
    return {"n": 0, "median": None, "failed": why}


def fmt_num(x):
    if x is None:
        return "-"
    a = abs(x)
    if a >= 1000:
        return "%.0f" % x
    if a >= 100:
        return "%.0f" % x
    if a >= 10:
        return "%.1f" % x
    if a >= 0.1:
        return "%.2f" % x
    return "%.3g" % x


def fmt_cell(c, show_ratio, notes):
    """The cell's text; failure reasons become numbered notes printed under the table."""
    def note(why):
        if why not in notes:
            notes.append(why)
        return "[%d]" % (notes.index(why) + 1)
    if c.get("median") is None:
        if "na" in c:
            return "-" if c["na"].startswith("not measured") else "n/a"
        return "failed " + note(c["failed"])
    s = "%s [%s..%s]" % (fmt_num(c["median"]), fmt_num(c["min"]), fmt_num(c["max"]))
    if show_ratio and c.get("ratio") is not None:
        s += " x%.2f" % c["ratio"]
    if c.get("failed_reps"):
        s += " (%d failed %s)" % (c["failed_reps"], note(c["failure"]))
    return s


def md_table(header, rows):
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]

    def line(r):
        return "| " + " | ".join(r[i].ljust(widths[i]) for i in range(len(r))) + " |"
    out = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    return out + [line(r) for r in rows]


def waypoint_md(p, table, rows, labels):
    """The waypoint comparison table of placement p, with its own failure notes."""
    out = ["", "## waypoint against ztunnel only and direct: " + p, "",
           "The same load and server: %s (n1a -> service VIP -> ztunnel n1 -> waypoint -> "
           "ztunnel n2 -> n2a), %s (n1a -> ztunnel n1 -> ztunnel n2 -> n2a) and %s (n1a -> "
           "n2a). Cells: median [min..max]; ratios: waypoint median / the other's median; "
           "latencies also give the microseconds the waypoint adds. \"whole path\": client, "
           "server and proxies' CPU; \"proxies\": ztunnels and waypoint."
           % (WAYPOINT, ZT_ONLY, BASELINE), ""]
    notes = []

    def cell(sc, fig):
        if sc not in table:
            return "not run"
        return fmt_cell(table[sc][fig], False, notes)

    def vs(row, name):
        r = row.get("ratio_" + name)
        if r is None:
            return "-"
        d = row.get("added_us_" + name)
        return "x%.2f" % r + (" (%+.0f us)" % d if d is not None else "")
    lines = []
    for row in rows:
        fig = row["figure"]
        lab, unit, better = labels[fig]
        lines.append(["%s (%s, %s)" % (lab, unit, better), cell(BASELINE, fig),
                      cell(ZT_ONLY, fig), cell(WAYPOINT, fig), vs(row, "ztunnel_only"),
                      vs(row, "direct")])
    out += md_table(["figure", "direct", "ztunnel only", "waypoint", "waypoint / ztunnel only",
                     "waypoint / direct"], lines)
    return out + [""] + ["[%d] failed: %s" % (i + 1, w) for i, w in enumerate(notes)]


def render_md(res):
    labels = {f[0]: (f[1], f[2], f[3]) for f in FIGURES + MACHINE_FIGURES}
    meta = res.get("meta") or {}
    out = ["# zmesh benchmark results", ""]
    if meta:
        out.append("Run: " + ", ".join("%s=%s" % (k, meta[k]) for k in sorted(meta)))
        out.append("")
    out.append("Cells: median [min..max] over the repetitions, then xR = median / median of "
               "'%s' (same placement, same run). Latency from the scheduled send time "
               "(open loop), 1 KiB responses. CPU and RSS: all processes of the proxies/mesh "
               "of the scenario (utime+stime; RSS summed)." % res["baseline"])
    for p, pr in res["placements"].items():
        out += ["", "## " + p, ""]
        header = ["figure"] + pr["scenarios"]
        rows, notes = [], []
        for fig in pr["figures"]:
            # A row no scenario of this placement measures says nothing: leave it out.
            if all(pr["table"][sc][fig].get("na", "").startswith("not measured")
                   for sc in pr["scenarios"]):
                continue
            lab, unit, better = labels.get(fig, (fig, "", ""))
            name = "%s (%s, %s)" % (lab, unit, better) if unit else fig
            rows.append([name] + [fmt_cell(pr["table"][sc][fig], sc != res["baseline"], notes)
                                  for sc in pr["scenarios"]])
        out += md_table(header, rows)
        out += [""] + ["[%d] failed: %s" % (i + 1, w) for i, w in enumerate(notes)]
    for p, rows in res.get("waypoint", {}).items():
        out += waypoint_md(p, res["placements"][p]["table"], rows, labels)
    if res.get("goals") and res["placements"]:
        out += goals_md(res)
    if res.get("machine"):
        out += ["", "## machine", ""]
        rows, notes = [], []
        for fig, c in res["machine"].items():
            lab, unit, _ = labels[fig]
            cell = fmt_cell(c, False, notes)
            if c.get("median") is not None:
                cell += " (%.1f Gbit/s)" % (c["median"] * 8 / 1e9)
            rows.append(["%s (%s)" % (lab, unit), cell])
        out += md_table(["figure", "median [min..max]"], rows)
        out += [""] + ["[%d] failed: %s" % (i + 1, w) for i, w in enumerate(notes)]
    return "\n".join(out) + "\n"


def report(argv):
    if len(argv) < 3:
        die("usage: report SAMPLES OUT.json OUT.md [META.json]")
    meta = load_json(argv[3]) if len(argv) > 3 else {}
    res = build_results(read_samples(argv[0]), meta)
    with open(argv[1], "w") as f:
        json.dump(res, f, indent=1, sort_keys=True)
        f.write("\n")
    md = render_md(res)
    with open(argv[2], "w") as f:
        f.write(md)
    sys.stdout.write(md)


def main():
    cmds = {"parse-iperf": parse_iperf, "parse-rr": parse_rr, "parse-connect": parse_connect,
            "parse-load": parse_load, "parse-speed": parse_speed}
    if len(sys.argv) >= 3 and sys.argv[1] in cmds:
        cmds[sys.argv[1]](sys.argv[2])
    elif len(sys.argv) >= 2 and sys.argv[1] == "report":
        report(sys.argv[2:])
    else:
        die("usage: bench-report.py parse-iperf|parse-rr|parse-connect|parse-load|parse-speed "
            "FILE\n"
            "       bench-report.py report SAMPLES OUT.json OUT.md [META.json]")


if __name__ == "__main__":
    main()
