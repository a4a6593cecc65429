#!/usr/bin/env python3
"""Markdown table of our embedded server beside NATS (same run of benches/compare.sh).

Usage: compare_nats.py WORKDIR DURATION IDLE SERVER_CPU TOOL_CPU
Reads WORKDIR/embedded-<scenario>.json (`cobra bench --json`) and WORKDIR/nats-<scenario>.json (`nats-bench`).
"""
import json
import os
import sys
import time

from bench_report import get, rate

work, dur, idle, server_cpu, tool_cpu = sys.argv[1:6]


def load(target, name):
    try:
        with open(os.path.join(work, f"{target}-{name}.json")) as f:
            text = f.read().strip()
        try:
            return json.loads(text)
        except ValueError:
            return json.loads(text.splitlines()[-1])
    except (OSError, ValueError, IndexError):
        return None


def ms(v):
    return "n/a" if v is None else f"{v / 1000:.2f}"


def scenario_cpu(target, name):
    """CPU seconds the server spent during a scenario (compare.sh's `<target>-<name>.cpu`:
    after, before, then for our servers the Redis nodes' after and before)."""
    try:
        with open(os.path.join(work, f"{target}-{name}.cpu")) as f:
            after, before = f.read().split()[:2]
        return float(after) - float(before)
    except (OSError, ValueError):
        return None


def per_delivery(target, name, report, what):
    """What one delivery cost: the bytes the subscribers read (WebSocket frames, compressed
    or not, acks included) or the server's CPU, in µs."""
    delivered = get(report, "delivered")
    if not delivered:
        return None
    if what == "bytes":
        total = get(report, "bytes_in")
        return None if total is None else total / delivered
    cpu = scenario_cpu(target, name)
    return None if cpu is None else cpu * 1e6 / delivered


def decimals(v):
    return "n/a" if v is None else f"{v:,.2f}"


ROWS = [
    ("1 → 1, deflate on", "p1s1", ("delivered_per_sec",), rate, True),
    ("1 → 1, deflate off", "p1s1plain", ("delivered_per_sec",), rate, True),
    ("1 → 100 fan-out, max rate, deflate on", "p1s100", ("delivered_per_sec",), rate, True),
    ("1 → 100 fan-out, max rate, deflate off", "p1s100plain", ("delivered_per_sec",), rate, True),
    ("1 → 100 fan-out, deflate on: bytes on the wire per delivery", "p1s100", "bytes", rate, False),
    ("1 → 100 fan-out, deflate off: bytes on the wire per delivery", "p1s100plain", "bytes", rate, False),
    ("1 → 100 fan-out, deflate on: server CPU per delivery, µs", "p1s100", "cpu", decimals, False),
    ("1 → 100 fan-out, deflate off: server CPU per delivery, µs", "p1s100plain", "cpu", decimals, False),
    ("1 → 100 fan-out, deflate on, telemetry-word padding (`--padding words`)", "p1s100words",
     ("delivered_per_sec",), rate, True),
    ("… bytes on the wire per delivery", "p1s100words", "bytes", rate, False),
    ("ours with `--deflate-mode stream`: 1 → 1, deflate on", "p1s1", ("delivered_per_sec",), rate, True,
     "stream"),
    ("ours with `--deflate-mode stream`: 1 → 100, deflate on", "p1s100", ("delivered_per_sec",), rate, True,
     "stream"),
    ("… bytes on the wire per delivery", "p1s100", "bytes", rate, False, "stream"),
    ("… server CPU per delivery, µs", "p1s100", "cpu", decimals, False, "stream"),
    ("ours with `--deflate-mode stream`: 1 → 100, deflate on, word padding", "p1s100words",
     ("delivered_per_sec",), rate, True, "stream"),
    ("… bytes on the wire per delivery", "p1s100words", "bytes", rate, False, "stream"),
    ("1 → 100, 500k deliveries/s offered: deliveries/s", "p1s100rate", ("delivered_per_sec",), rate, True),
    ("1 → 100, 500k/s offered: p50 latency, ms", "p1s100rate", ("latency", "p50_us"), ms, False),
    ("1 → 100, 500k/s offered: p99 latency, ms", "p1s100rate", ("latency", "p99_us"), ms, False),
    ("50 → 1, deflate off", "p50s1plain", ("delivered_per_sec",), rate, True),
    ("50 → 10, 10% each (ours: StreamSQL filter; NATS: a subject per filter)", "p50filtered",
     ("delivered_per_sec",), rate, True),
    ("… server CPU per delivery, µs", "p50filtered", "cpu", decimals, False),
    ("1 → 1, deflate off: server CPU per delivery (publish, ack or flow control, delivery), µs", "p1s1plain",
     "cpu", decimals, False),
    (f"{idle} idle connections, deflate negotiated: server RSS per connection, bytes", "idle",
     ("idle", "server_rss_per_connection_bytes"), rate, False),
]

load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
out = [
    f"Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {load_avg:.1f} "
    f"(machine shared), servers pinned to core {server_cpu}, load tools to core {tool_cpu}, "
    f"{dur} s per scenario, 300-byte events. Ours: `cobra bench`; NATS {''}(`nats-server` 2.15.1, "
    "WebSocket listener, compression allowed): `nats-bench`. Both tools publish the same events, "
    "byte for byte (crate `cobra-bench-event`).",
    "",
    "| scenario | cobra (embedded) | NATS | cobra / NATS |",
    "|---|---:|---:|---:|",
]
def loss(report):
    """What a deliveries figure did not deliver: ours says what it skipped (`--fast-forward`:
    announced to the subscriber), NATS drops a slow consumer's messages silently."""
    if not report or not report.get("lost"):
        return ""
    skipped = report.get("skipped") or 0
    if skipped and skipped == report["lost"]:
        return f" (skipped {report['lost']:,}, announced)"
    return f" ⚠ lost {report['lost']:,}"


for label, name, path, fmt, higher_better, *target in ROWS:
    ours = target[0] if target else "embedded"
    ra, rb = load(ours, name), load("nats", name)
    if isinstance(path, str):
        a, b = per_delivery(ours, name, ra, path), per_delivery("nats", name, rb, path)
    else:
        a, b = get(ra, *path), get(rb, *path)
    ratio = "n/a"
    if a and b:
        ratio = f"{a / b:.2f}×" if higher_better else f"{a / b:.2f}× ({'lower is better'})"
    la, lb = (loss(ra), loss(rb)) if path == ("delivered_per_sec",) else ("", "")
    out.append(f"| {label} | {fmt(a)}{la} | {fmt(b)}{lb} | {ratio} |")
print("\n".join(out))
