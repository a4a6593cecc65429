#!/usr/bin/env python3
"""Turns the JSON reports of benches/compare.sh into one Markdown table (absolute figures and ratios)."""
import csv
import datetime
import json
import os
import platform
import subprocess
import sys

from bench_report import get, rate

work, dur, idle, server_cpu, tool_cpu, redis_cpu, redis_tool_cpu = sys.argv[1:8]
TARGETS = [
    ("embedded", "cobra, embedded"),
    ("redis1", "cobra, Redis ×1"),
    ("redis3", "cobra, Redis ×3"),
    ("python", "cobras (Python), Redis ×1"),
]


def load(target, scenario):
    try:
        with open(os.path.join(work, f"{target}-{scenario}.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def fmt_rate(v):
    return rate(v, "–")


def fmt_ms(us):
    return "–" if us is None else f"{us / 1000:.2f}"


def flagged(report, text):
    """Marks a figure whose run lost messages or had errors: a rate without its losses is no figure."""
    if report is None or text == "–":
        return text
    notes = []
    if report.get("lost") and report.get("skipped") == report["lost"]:
        # `--fast-forward`: the server told the subscriber what it skipped.
        return text + f" (skipped {report['lost']:,}, announced)"
    if report.get("lost"):
        notes.append(f"lost {report['lost']}")
    if report.get("publish_errors"):
        notes.append(f"{report['publish_errors']} publish errors")
    return text + (f" ⚠ {', '.join(notes)}" if notes else "")


def delivery_rate(r):
    return get(r, "delivered_per_sec")


def publish_rate(r):
    return get(r, "published_per_sec")


def p99(r):
    return get(r, "latency", "p99_us")


def p50_p99(r):
    return None if r is None else (get(r, "latency", "p50_us"), p99(r))


def fmt_p50_p99(v):
    return "–" if v is None else f"{v[0] / 1000:.2f} / {v[1] / 1000:.2f}"


ROWS = [
    ("1 → 1", "p1s1", "deliveries/s", delivery_rate, fmt_rate, True),
    ("1 → 1", "p1s1", "p99 latency, ms", p99, fmt_ms, False),
    ("1 → 1, 1k msg/s offered", "p1s1rate", "p50 / p99 latency, ms", p50_p99, fmt_p50_p99, False),
    ("1 → 1, permessage-deflate off", "p1s1plain", "deliveries/s", delivery_rate, fmt_rate, True),
    ("50 publishers, no subscriber, permessage-deflate off", "p50plain", "publishes/s", publish_rate, fmt_rate, True),
    ("50 publishers → 1 subscriber, permessage-deflate off", "p50s1plain", "deliveries/s", delivery_rate, fmt_rate, True),
    ("1 → 100", "p1s100", "deliveries/s", delivery_rate, fmt_rate, True),
    ("1 → 100", "p1s100", "p99 latency, ms", p99, fmt_ms, False),
    ("1 → 100, 5k msg/s offered (500k deliveries/s)", "p1s100rate", "deliveries/s", delivery_rate, fmt_rate, True),
    ("1 → 100, 5k msg/s offered (500k deliveries/s)", "p1s100rate", "p50 / p99 latency, ms", p50_p99, fmt_p50_p99,
     False),
    ("1 → 100, permessage-deflate off", "p1s100plain", "deliveries/s", delivery_rate, fmt_rate, True),
    ("1 → 100, permessage-deflate off", "p1s100plain", "p99 latency, ms", p99, fmt_ms, False),
    ("50 publishers → 10 subscribers, filter passes 10%", "p50filtered", "publishes/s", publish_rate, fmt_rate, True),
    ("50 publishers → 10 subscribers, filter passes 10%", "p50filtered", "deliveries/s", delivery_rate, fmt_rate, True),
    ("50 publishers → 10 subscribers, filter passes 10%", "p50filtered", "p99 latency, ms", p99, fmt_ms, False),
    (f"{idle} idle authenticated connections", "idle", "server RSS per connection, bytes",
     lambda r: get(r, "idle", "server_rss_per_connection_bytes"), fmt_rate, False),
]

available = {t: not os.path.exists(os.path.join(work, f"{t}.unavailable")) for t, _ in TARGETS}
head = ["Scenario", "Metric"] + [name for _, name in TARGETS] + ["embedded ÷ Python", "Redis ×1 ÷ Python"]
lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
for scenario, key, metric, pick, fmt, higher_is_better in ROWS:
    cells, values = [], {}
    for t, _ in TARGETS:
        r = load(t, key)
        v = pick(r) if r else None
        values[t] = v
        cells.append(flagged(r, fmt(v)) if available[t] else "n/a")
    ratios = []
    for ours in ("embedded", "redis1"):
        a, b = values.get(ours), values.get("python")
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a and b:
            if higher_is_better:
                ratios.append(f"{a / b:.1f}×")
            elif a <= b:
                ratios.append(f"{b / a:.1f}× lower")
            else:
                ratios.append(f"{a / b:.1f}× higher")
        else:
            ratios.append("–")
    lines.append("| " + " | ".join([scenario, metric] + cells + ratios) + " |")

ceilings = {}
for cmd in ("publish", "xadd"):
    try:
        with open(os.path.join(work, f"redis-bench-{cmd}.csv")) as f:
            rows = list(csv.reader(f))
        ceilings[cmd] = float(rows[1][1])
    except (OSError, IndexError, ValueError):
        ceilings[cmd] = None
# The Redis path against the ceiling, two ways: messages stored (publishes acknowledged once Redis
# took them) and messages published and delivered (each to one subscriber), best scenario of the run.
def best_of(metric, scenarios, target="redis1"):
    best = None
    for scenario in scenarios:
        r = load(target, scenario)
        v = get(r, metric)
        if v and not (r.get("lost") or r.get("publish_errors")) and (best is None or v > best[0]):
            best = (v, scenario)
    return best


stored = best_of("published_per_sec", ("p1s1plain", "p50plain", "p50s1plain"))
delivered = best_of("delivered_per_sec", ("p1s1", "p1s1plain", "p50s1plain"))
for cmd, label in (("publish", "PUBLISH"), ("xadd", "XADD")):
    c = ceilings[cmd]
    parts = []
    for what, best in (("publishes stored", stored), ("publishes delivered", delivered)):
        if c and best:
            parts.append(f"Redis ×1 {what}/s ({fmt_rate(best[0])}, `{best[1]}`) = {best[0] / c:.2f} of it")
    lines.append(
        f"| redis-benchmark -P 16 -c 50 {label} (300 B): ceiling of one node | requests/s | "
        f"{fmt_rate(c)} | | | | {'; '.join(parts) or '–'} | |"
    )
# Redis Cluster (3 primaries, `--redis-cluster`), when measured: publish → delivery against the
# XADD ceiling of one node (the target: at least 0.5 of it).
cluster_delivered = best_of("delivered_per_sec", ("p1s1", "p1s1plain", "p50s1plain"), "cluster3")
cluster_stored = best_of("published_per_sec", ("p1s1plain", "p50plain", "p50s1plain"), "cluster3")
if ceilings["xadd"] and (cluster_delivered or cluster_stored):
    parts = []
    for what, best in (("publishes stored", cluster_stored), ("publishes delivered", cluster_delivered)):
        if best:
            parts.append(f"{what}/s {fmt_rate(best[0])} (`{best[1]}`) = {best[0] / ceilings['xadd']:.2f} of the XADD ceiling")
    lines.append(f"| cobra on a Redis Cluster of 3 primaries (`--redis-cluster`) | | {'; '.join(parts)} | | | | | |")

# CPU per message of the server and of its Redis node(s), from /proc and `INFO cpu` around each
# scenario: what bounds a node, whatever the machine.
def cpu_per_message(target, scenario, metric):
    try:
        with open(os.path.join(work, f"{target}-{scenario}.cpu")) as f:
            s1, s0, r1, r0 = (float(x) for x in f.read().split())
    except (OSError, ValueError):
        return None
    r = load(target, scenario)
    n = get(r, metric) and r.get("published" if metric == "published_per_sec" else "delivered")
    if not n:
        return None
    return (s1 - s0) / n * 1e6, (r1 - r0) / n * 1e6


cpu_notes, catch_up_notes = [], []
for target, name in (("redis1", "cobra, Redis ×1"), ("python", "cobras (Python), Redis ×1")):
    parts = []
    for scenario, metric, label in (
        ("p50plain", "published_per_sec", "50 publishers, no subscriber"),
        ("p50s1plain", "delivered_per_sec", "50 publishers → 1 subscriber"),
        ("p1s1plain", "delivered_per_sec", "1 → 1, deflate off"),
    ):
        v = cpu_per_message(target, scenario, metric)
        if v:
            parts.append(f"{label}: server {v[0]:.2f} µs, redis-server {v[1]:.2f} µs")
    if parts:
        cpu_notes.append(f"- CPU per message, {name} (whole scenario incl. connects): " + "; ".join(parts) + ".")

def catch_up(target, scenario):
    """(switched to catch-up, served from history, missed) during the scenario, from /metrics."""
    try:
        with open(os.path.join(work, f"{target}-{scenario}.catchup0")) as f:
            before = [int(float(x)) for x in f.read().split()] or [0, 0, 0]
        with open(os.path.join(work, f"{target}-{scenario}.catchup")) as f:
            after = [int(float(x)) for x in f.read().split()]
    except (OSError, ValueError):
        return None
    return tuple(a - b for a, b in zip(after, before)) if len(after) == 3 else None


for t, name in TARGETS:
    for scenario, label in (("p50filtered", "50 → 10 filtered"), ("p50s1plain", "50 → 1")):
        c = catch_up(t, scenario)
        if c:
            catch_up_notes.append(f"- {name}, {label}: subscriptions switched to catch-up {c[0]:,}, messages "
                                  f"served from history {c[1]:,}, missed (history expired) {c[2]:,}.")

tool = load("embedded", "p1s1")
notes = list(cpu_notes) + catch_up_notes
for t, name in TARGETS:
    if not available[t]:
        with open(os.path.join(work, f"{t}.unavailable"), errors="replace") as f:
            why = " ".join(f.read().split())[-200:]
        notes.append(f"- {name}: n/a, the server did not start: `{why}`")
if tool:
    notes.append(
        f"- Load tool's own cost (1 → 1, deflate on): {tool['published_per_cpu_second']:,.0f} publishes per CPU "
        f"second ({tool['cpu_user_seconds']:.2f} s user + {tool['cpu_system_seconds']:.2f} s system for "
        f"{tool['published']:,} publishes and {tool['delivered']:,} deliveries)."
    )
for t, name in TARGETS:
    r = load(t, "idle")
    if r and r.get("idle"):
        i = r["idle"]
        notes.append(
            f"- {name}, idle: {i['held']}/{i['requested']} held in {i['connect_seconds']:.1f} s, RSS "
            f"{i['server_rss_before_kib']} → {i['server_rss_after_kib']} KiB."
        )

try:
    load_avg = open("/proc/loadavg").read().split()[0]
except OSError:
    load_avg = "?"
cpu = ""
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
try:
    redis_version = "Redis " + subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2].removeprefix("v=")
except (OSError, IndexError):
    redis_version = "?"
print(f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()}: "
      f"{cpu}, {os.cpu_count()} cores, Linux {platform.release()}, {redis_version}. "
      f"Pinned: embedded server on core {server_cpu} and load tool on core {tool_cpu}; on Redis, "
      f"redis-server alone on core {redis_cpu}, server and load tool on core {redis_tool_cpu} "
      f"(the ceiling: redis-server on core {redis_cpu}, redis-benchmark on core {server_cpu}); "
      f"{dur} s of publishing per scenario, 300-byte messages, permessage-deflate on unless said otherwise, "
      f"max rate (256 unacknowledged publishes per publisher) unless a rate is given. "
      f"Load average when the table was written: {load_avg} (other processes share these cores). "
      f"Command: `benches/compare.sh`.\n")
print("\n".join(lines))
if notes:
    print()
    print("\n".join(notes))
