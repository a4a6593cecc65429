#!/usr/bin/env python3
"""Markdown table of the embedded server's scaling with its worker threads (target `scaling` of
benches/compare.sh).

Usage: [SCALING_MODES="pinned unpinned"|quota] [SCALING_QUOTA=q SCALING_PERIOD=µs] \
       compare_scaling.py WORKDIR DURATION SERVER_CPU TOOL_CPU WORKERS...
Reads WORKDIR/scaling-<mode>-w<N>-<scenario>.json (`cobra bench --json`) and .cpu (server CPU seconds
after, before; wall clock after, before) for each mode; for mode quota (each worker thread in its own
cgroup with a CPU quota of q of a core) also .before/.after, the per-thread snapshots of compare.sh's
quota_snapshot ("wI TID ticks nr_periods nr_throttled throttled_ns", "other N ticks", "process ticks").
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


def against_one_worker(mode, name):
    """(workers, report, deliveries/s, × the first worker count) for each worker count of a run."""
    one = None
    for n in workers:
        r = load(mode, n, name)
        d = r.get("delivered_per_sec") if r else None
        if n == workers[0]:
            one = d
        yield n, r, d, (f"{d / one:.2f}×" if d and one else "n/a")


def snapshot(path):
    """{"w1": (ticks, nr_periods, nr_throttled), ..., "other": ticks, "process": ticks} or None."""
    try:
        snap = {}
        with open(path) as f:
            for line in f:
                k, *v = line.split()
                if k.startswith("w"):
                    snap[k] = tuple(int(x) for x in v[1:4])
                elif k == "other":
                    snap[k] = int(v[1])
                elif k == "process":
                    snap[k] = int(v[0])
        return snap
    except (OSError, ValueError, IndexError):
        return None


HZ = os.sysconf("SC_CLK_TCK")
modes = os.environ.get("SCALING_MODES", "pinned unpinned").split()
load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
ncpu = os.cpu_count() or 0
out = []
affinity_modes = [m for m in modes if m in ("pinned", "unpinned")]
if "quota" in modes:
    quotas = (os.environ.get("SCALING_QUOTA") or "").split()
    period = int(os.environ.get("SCALING_PERIOD") or 0)
    shares = os.environ.get("SCALING_SHARES") or "1024"
    out += [
        f"Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {ncpu} cores, load average "
        f"{load_avg:.1f} (machine shared), {dur} s per scenario, 300-byte events, one `cobra bench` "
        f"(single-threaded) as the load on core {tool_cpu}. **Emulated cores**: each `cobra-worker` thread "
        f"in its own cgroup with a CPU quota of q of a core (q × {period} µs per {period} µs period), "
        f"the whole server on core {server_cpu}; its other threads (main, accept loop) in one group "
        f"without quota; the server's and the tool's groups weigh cpu.shares {shares} (1024: as any other "
        "process on this shared machine). Worker CPU: user + system of each worker thread over the scenario (connects "
        "and drain included) ÷ its wall time, mean over the workers (min–max): ≈ q when the quota "
        "binds; throttled: share of the periods a worker ran in that it ran out of quota (all workers). "
        "Other threads and tool: CPU ÷ wall time, in cores (the tool is the limit near 1). "
        "Deliveries per worker CPU-second: deliveries ÷ the workers' CPU time.",
        "",
        "| scenario | q | workers | deliveries/s | × 1 worker | worker CPU, cores each (min–max) | "
        "throttled periods | other threads, cores | tool, cores | deliveries per worker CPU-second |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for label, name in SCENARIOS:
        for qs in quotas:
            for n, r, d, ratio in against_one_worker(f"q{qs}", name):
                lost = (r.get("lost") or 0) if r else 0
                note = f" ⚠ lost {lost:,}" if lost else ""
                b = snapshot(os.path.join(work, f"scaling-q{qs}-w{n}-{name}.before"))
                a = snapshot(os.path.join(work, f"scaling-q{qs}-w{n}-{name}.after"))
                wall = r.get("wall_seconds") if r else None
                per_worker, throttled, other, per_cpu = "n/a", "n/a", "n/a", "n/a"
                if a and b and wall:
                    ws = sorted(k for k in a if k.startswith("w") and k in b)
                    cpus = [(a[k][0] - b[k][0]) / HZ for k in ws]
                    cores = [c / wall for c in cpus]
                    periods = sum(a[k][1] - b[k][1] for k in ws)
                    thr = sum(a[k][2] - b[k][2] for k in ws)
                    if cores:
                        per_worker = f"{sum(cores) / len(cores):.2f} ({min(cores):.2f}–{max(cores):.2f})"
                    if sum(cpus) > 0 and r:
                        per_cpu = rate(r["delivered"] / sum(cpus))
                    throttled = f"{100 * thr / periods:.0f} %" if periods else "0 %"
                    other = f"{(a['other'] - b['other']) / HZ / wall:.2f}"
                tool = (
                    f"{(r['cpu_user_seconds'] + r['cpu_system_seconds']) / wall:.2f}"
                    if r and wall and "cpu_user_seconds" in r
                    else "n/a"
                )
                out.append(
                    f"| {label} | {qs} | {n} | {rate(d)}{note} | {ratio} | {per_worker} | {throttled} | "
                    f"{other} | {tool} | {per_cpu} |"
                )
    if affinity_modes:
        out.append("")
if affinity_modes:
    out += [
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
    for mode in affinity_modes:
        for n, r, d, ratio in against_one_worker(mode, name):
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
