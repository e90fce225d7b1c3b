#!/usr/bin/env python3
"""Medians of benches/mt.sh's runs: a markdown table per thread count, time
and peak RSS per allocator, and Global's ratios to the faster (time) and the
smaller (RSS) of mimalloc and jemalloc; then, for the retention workloads
(`thread-exit`, `live-builder`), the RSS each allocator kept.

A line of mt.txt is `ALLOCATOR WORKLOAD THREADS SECONDS PEAK_RSS_KIB`,
then, for the retention workloads, `KEY=VALUE` fields (KiB, but `trim`).

    python3 benches/mt_report.py [mt.txt]            # the full tables
    python3 benches/mt_report.py --ratios [mt.txt]   # Global's ratios only
    python3 benches/mt_report.py --svg=docs/benchmarks-mt.svg [mt.txt]
                                                     # and a chart of them
"""
import collections
import statistics
import sys

args = [a for a in sys.argv[1:] if not a.startswith("--")]
ratios_only = "--ratios" in sys.argv[1:]
svg_path = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--svg=")), None)
path = args[0] if args else "target/bench-results/mt.txt"

# (workload, threads, allocator) -> list of dicts, one per run.
runs = collections.defaultdict(list)
for line in open(path):
    parts = line.split()
    if len(parts) < 5 or any("=" in p for p in parts[:5]):
        continue
    a, w, t, secs, rss = parts[:5]
    run = {"secs": float(secs), "peak_kib": int(rss)}
    for kv in parts[5:]:
        k, _, v = kv.partition("=")
        try:
            run[k] = int(v)
        except ValueError:
            pass
    # Retention workloads: RSS added at the end over RSS added at the peak.
    if "after_kib" in run and "base_kib" in run:
        added = run["peak_kib"] - run["base_kib"]
        run["after_over_peak"] = run["after_kib"] / added if added > 0 else float("nan")
    runs[(w, int(t), a)].append(run)

allocs = ["global", "mimalloc", "jemalloc", "system"]
names = {"global": "Global", "mimalloc": "mimalloc", "jemalloc": "jemalloc", "system": "glibc"}
workloads = list(dict.fromkeys(k[0] for k in runs))
threads = sorted({k[1] for k in runs})


def med(w, t, a, key):
    """Median of `key` over the runs of a cell, None if no run has it."""
    xs = [r[key] for r in runs.get((w, t, a), []) if key in r]
    return statistics.median(xs) if xs else None


def ratio(w, t, key, pick=min):
    """Global's median over the better (`pick`) of mimalloc's and jemalloc's."""
    g = med(w, t, "global", key)
    others = [x for x in (med(w, t, a, key) for a in ("mimalloc", "jemalloc")) if x is not None]
    if g is None or not others or pick(others) <= 0:
        return None
    return g / pick(others)


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


# The retention figures: (workload, key, label, scale, format, label in the
# ratio table or None to leave it out there).
RETENTION = [
    ("thread-exit", "exit_kib", "thread-exit: RSS kept after 400 threads, MiB", 1 / 1024, ".1f", "thread-exit: RSS kept after 400 threads"),
    ("thread-exit", "reserved_kib", "thread-exit: reserved (own count) after 400, MiB", 1 / 1024, ".1f", None),
    ("thread-exit", "exit2_kib", "thread-exit: RSS kept after 500 threads, MiB", 1 / 1024, ".1f", "thread-exit: RSS kept after 500 threads"),
    ("thread-exit", "reserved2_kib", "thread-exit: reserved (own count) after 500, MiB", 1 / 1024, ".1f", None),
    ("live-builder", "after_kib", "live-builder: RSS kept after the frees (and trim), MiB", 1 / 1024, ".1f", "live-builder: RSS kept after the frees"),
    ("live-builder", "reserved_kib", "live-builder: reserved (own count) then, MiB", 1 / 1024, ".1f", None),
    ("live-builder", "after_over_peak", "live-builder: kept ÷ added at peak", 1, ".2f", "live-builder: kept ÷ added at peak"),
]


def scaled(x, scale):
    return None if x is None else x * scale


def svg_chart(path):
    """Global's time and peak-RSS ratios to the better of mimalloc and
    jemalloc, one group of bars per workload and thread count, a line at
    1.0 (below it Global is the better one)."""
    rows = [(w, t, ratio(w, t, "secs"), ratio(w, t, "peak_kib")) for w in workloads for t in threads]
    rows = [r for r in rows if r[2] is not None or r[3] is not None]
    top = max([x for r in rows for x in r[2:] if x is not None] + [1.5])
    top = min(top, 4.0)
    left, width, bar, gap = 190, 420, 7, 6
    height = 40 + len(rows) * (2 * bar + gap) + 30
    x = lambda v: left + width * min(v, top) / top
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 60}" height="{height}" '
           'font-family="sans-serif" font-size="11">',
           f'<text x="{left}" y="14">Global ÷ better of mimalloc, jemalloc (below 1.0: Global better)</text>',
           f'<rect x="{left}" y="20" width="10" height="8" fill="#4878a8"/><text x="{left + 14}" y="28">time</text>',
           f'<rect x="{left + 60}" y="20" width="10" height="8" fill="#d08040"/><text x="{left + 74}" y="28">peak RSS</text>']
    y = 40
    for w, t, tr, rr in rows:
        out.append(f'<text x="{left - 6}" y="{y + bar + 3}" text-anchor="end">{w}, {t} thr</text>')
        for v, colour in ((tr, "#4878a8"), (rr, "#d08040")):
            if v is not None:
                out.append(f'<rect x="{left}" y="{y}" width="{x(v) - left:.1f}" height="{bar}" fill="{colour}"/>')
                out.append(f'<text x="{x(v) + 3:.1f}" y="{y + bar - 1}" font-size="9">{v:.2f}</text>')
            y += bar
        y += gap
    one = x(1.0)
    out.append(f'<line x1="{one:.1f}" y1="34" x2="{one:.1f}" y2="{y}" stroke="#000" stroke-dasharray="3,2"/>')
    out.append(f'<text x="{one - 8:.1f}" y="{y + 12}">1.0</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


if svg_path:
    svg_chart(svg_path)

if ratios_only:
    cols = " | ".join(f"{t} thr time | {t} thr RSS" for t in threads)
    print(f"| workload | {cols} |")
    print("|---|" + "---|" * (2 * len(threads)))
    for w in workloads:
        cells = []
        for t in threads:
            cells += [fmt(ratio(w, t, "secs"), ".2f"), fmt(ratio(w, t, "peak_kib"), ".2f")]
        print(f"| {w} | " + " | ".join(cells) + " |")
    # Retention: Global's kept RSS over the smaller of mimalloc's and jemalloc's.
    for w, key, _, _, _, label in RETENTION:
        if label is None or w not in workloads:
            continue
        cells = []
        for t in threads:
            cells += ["", fmt(ratio(w, t, key), ".2f")]
        print(f"| {label} (÷ min(mi, je)) | " + " | ".join(cells) + " |")
    sys.exit(0)

for t in threads:
    note = " (oversubscribed: 2 cores)" if t > 2 else ""
    print(f"\n### {t} thread{'s' if t > 1 else ''}{note}\n")
    print("| workload | Global s | mimalloc s | jemalloc s | glibc s | Global / best(mi, je) time | Global MiB | mimalloc MiB | jemalloc MiB | glibc MiB | Global / min(mi, je) RSS |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for w in workloads:
        if med(w, t, "global", "secs") is None:
            continue
        cells = [fmt(med(w, t, a, "secs"), ".3f") for a in allocs]
        rss = [fmt(scaled(med(w, t, a, "peak_kib"), 1 / 1024), ".1f") for a in allocs]
        tr = fmt(ratio(w, t, "secs"), ".2f")
        rr = fmt(ratio(w, t, "peak_kib"), ".2f")
        print(f"| {w} | " + " | ".join(cells) + f" | {tr} | " + " | ".join(rss) + f" | {rr} |")
    rows = [r for r in RETENTION if any(med(r[0], t, a, r[1]) is not None for a in allocs)]
    if rows:
        print(f"\nRetention, {t} thread{'s' if t > 1 else ''} (RSS over the RSS before the workload):\n")
        print("| figure | " + " | ".join(names[a] for a in allocs) + " | Global / min(mi, je) |")
        print("|---|" + "---|" * (len(allocs) + 1))
        for w, key, label, scale, spec, _ in rows:
            cells = [fmt(scaled(med(w, t, a, key), scale), spec) for a in allocs]
            print(f"| {label} | " + " | ".join(cells) + f" | {fmt(ratio(w, t, key), '.2f')} |")
