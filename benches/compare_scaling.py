#!/usr/bin/env python3
"""Markdown table of the embedded server's scaling with its worker threads (target `scaling` of
benches/compare.sh).

Usage: compare_scaling.py WORKDIR DURATION SERVER_CPU TOOL_CPU WORKERS...
Reads WORKDIR/scaling-<mode>-w<N>-<scenario>.json (`cobra bench --json`) and .cpu (server CPU seconds
after, before; wall clock after, before) for mode in pinned, unpinned.
"""
import json
import os
import sys
import time

from bench_report import rate

work, dur, server_cpu, tool_cpu = sys.argv[1:5]
workers = [int(w) for w in sys.argv[5:]] or [1, 2]
SCENARIOS = [
    ("1 → 100 fan-out, deflate on", "p1s100"),
    ("1 → 100 fan-out, deflate off", "p1s100plain"),
    ("50 → 10, deflate off", "p50s10plain"),
]


def load(mode, n, name):
    base = os.path.join(work, f"scaling-{mode}-w{n}-{name}")
    try:
        with open(base + ".json") as f:
            text = f.read().strip()
        # `cobra bench --json` prints one pretty-printed object (older builds: one line last).
        try:
            report = json.loads(text)
        except ValueError:
            report = json.loads(text.splitlines()[-1])
    except (OSError, ValueError, IndexError):
        return None
    try:
        with open(base + ".cpu") as f:
            after, before, t1, t0 = (float(x) for x in f.read().split())
        report["server_cpu_seconds"] = after - before
        report["wall_seconds"] = t1 - t0
    except (OSError, ValueError):
        pass
    return report


load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
ncpu = os.cpu_count() or 0
out = [
    f"Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {ncpu} cores, load average "
    f"{load_avg:.1f} (machine shared), {dur} s per scenario, 300-byte events, one `cobra bench` "
    "(single-threaded) as the load. Pinned: 1 worker on core "
    f"{server_cpu}, more workers on cores {server_cpu},{tool_cpu}; the tool on core {tool_cpu}. "
    "Unpinned: no affinity. Server CPU: user + system of the server process over the scenario "
    "(connects included), divided by its wall time = cores the server got.",
    "",
    "| scenario | affinity | workers | deliveries/s | × 1 worker | server cores used | "
    "deliveries per server CPU-second | tool CPU, s |",
    "|---|---|---:|---:|---:|---:|---:|---:|",
]
for label, name in SCENARIOS:
    for mode in ("pinned", "unpinned"):
        one = None
        for n in workers:
            r = load(mode, n, name)
            d = r.get("delivered_per_sec") if r else None
            if n == workers[0]:
                one = d
            ratio = f"{d / one:.2f}×" if d and one else "n/a"
            cpu = r.get("server_cpu_seconds") if r else None
            wall = r.get("wall_seconds") if r else None
            cores = f"{cpu / wall:.2f}" if cpu and wall else "n/a"
            per_cpu = rate(r["delivered"] / cpu) if r and cpu else "n/a"
            tool = (
                f"{r['cpu_user_seconds'] + r['cpu_system_seconds']:.2f}"
                if r and "cpu_user_seconds" in r
                else "n/a"
            )
            out.append(
                f"| {label} | {mode} | {n} | {rate(d)} | {ratio} | {cores} | {per_cpu} | {tool} |"
            )
print("\n".join(out))
