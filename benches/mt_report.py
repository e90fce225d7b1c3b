#!/usr/bin/env python3
"""Medians of benches/mt.sh's runs: a markdown table per thread count, time
and peak RSS per allocator, and Global's ratios to the faster (time) and the
smaller (RSS) of mimalloc and jemalloc."""
import collections
import statistics
import sys

runs = collections.defaultdict(list)
for line in open(sys.argv[1] if len(sys.argv) > 1 else "target/bench-results/mt.txt"):
    parts = line.split()
    if len(parts) != 5:
        continue
    a, w, t, secs, rss = parts
    runs[(w, int(t), a)].append((float(secs), int(rss)))

allocs = ["global", "mimalloc", "jemalloc", "system"]
workloads = list(dict.fromkeys(k[0] for k in runs))
threads = sorted({k[1] for k in runs})
for t in threads:
    note = " (oversubscribed: 2 cores)" if t > 2 else ""
    print(f"\n### {t} thread{'s' if t > 1 else ''}{note}\n")
    print("| workload | Global s | mimalloc s | jemalloc s | glibc s | Global / best(mi, je) time | Global MiB | mimalloc MiB | jemalloc MiB | glibc MiB | Global / min(mi, je) RSS |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for w in workloads:
        med = {}
        for a in allocs:
            r = runs.get((w, t, a))
            if r:
                med[a] = (statistics.median(x[0] for x in r), statistics.median(x[1] for x in r) / 1024)
        if "global" not in med:
            continue
        best = min((med[a][0] for a in ("mimalloc", "jemalloc") if a in med), default=None)
        small = min((med[a][1] for a in ("mimalloc", "jemalloc") if a in med), default=None)
        cells = [f"{med[a][0]:.3f}" if a in med else "-" for a in allocs]
        rss = [f"{med[a][1]:.1f}" if a in med else "-" for a in allocs]
        tr = f"{med['global'][0] / best:.2f}" if best else "-"
        rr = f"{med['global'][1] / small:.2f}" if small else "-"
        print(f"| {w} | " + " | ".join(cells) + f" | {tr} | " + " | ".join(rss) + f" | {rr} |")
