#!/usr/bin/env python3
"""Turns the output of benches/run.sh into docs/benchmarks.md and the SVG chart.

Usage: python3 benches/report.py target/bench-results
"""
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UNITS = {"ps": 1e-3, "ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}
PER_OP = 10_000  # batch, churn and mixed ids time 10,000 operations
FRAME = 5_000  # scratch ids time one frame of 5,000 allocations and a reset
ORDER = ["poolbox", "block", "box", "mimalloc", "slab", "slotmap", "bumpalo†", "typed_arena†", "floor†"]


def parse_criterion(text):
    """id -> median in ns per iteration (the median over runs when an id ran
    more than once, as with REPEAT=3)."""
    runs = defaultdict(list)
    pat = re.compile(r"^(\S+)\s+time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", re.M)
    text = re.sub(r"\n\s+time:", " time:", text)  # long ids put time on the next line
    for m in pat.finditer(text):
        runs[m.group(1)].append(float(m.group(2)) * UNITS[m.group(3)])
    return {k: sorted(v)[len(v) // 2] for k, v in runs.items()}


def per_op(bench_id, ns):
    kind = bench_id.split("/")[0]
    if kind.startswith(("batch", "churn", "mixed")):
        return ns / PER_OP
    if kind == "scratch":
        return ns / FRAME
    return ns


def table(rows, header):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def svg_chart(groups, path):
    """Grouped horizontal bars: ratio to Box per contender, one group per workload."""
    contenders = [c for c in ORDER if any(c in g for g in groups.values())]
    colors = ["#1b7837", "#5aae61", "#777777", "#2166ac", "#b2182b", "#ef8a62", "#c2a5cf", "#9970ab", "#dddddd"]
    bar, gap, left, width = 14, 18, 190, 420
    height = 40 + sum(len(g) * bar + gap for g in groups.values()) + 30
    maxv = max(v for g in groups.values() for v in g.values())
    scale = width / maxv
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 80}" height="{height}" font-family="sans-serif" font-size="11">',
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="10" y="20" font-size="14" font-weight="bold">Time per operation relative to Box (lower is better), 64-byte objects</text>']
    y = 40
    for name, vals in groups.items():
        out.append(f'<text x="10" y="{y + 11}" font-weight="bold">{name}</text>')
        for c in contenders:
            if c not in vals:
                continue
            v = vals[c]
            col = colors[ORDER.index(c) % len(colors)]
            out.append(f'<text x="{left - 6}" y="{y + 11}" text-anchor="end">{c}</text>')
            out.append(f'<rect x="{left}" y="{y + 1}" width="{max(v * scale, 1):.1f}" height="{bar - 3}" fill="{col}"/>')
            out.append(f'<text x="{left + v * scale + 4:.1f}" y="{y + 11}">{v:.2f}×</text>')
            y += bar
        y += gap
    x1 = left + scale
    out.append(f'<line x1="{x1:.1f}" y1="35" x2="{x1:.1f}" y2="{y}" stroke="black" stroke-dasharray="3,3"/>')
    out.append(f'<text x="{x1 + 3:.1f}" y="{y + 12}">Box = 1</text>')
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n")


def callgrind_per_pair(res):
    """contender -> instructions per pair, from callgrind.txt (empty if absent)."""
    cg = res / "callgrind.txt"
    if not cg.exists():
        return {}
    ir = defaultdict(dict)
    for line in cg.read_text().splitlines():
        _, c, n, v = line.split()
        ir[c][int(n)] = int(v)
    return {c: (d[200000] - d[0]) / 200000 for c, d in ir.items() if 0 in d and 200000 in d}


def targets(by_group, res):
    """The issue's targets, each with the measured ratio and whether it is met."""
    rows = []

    def ratio(g, a, b):
        d = by_group.get(g, {})
        return d[a] / d[b] if a in d and b in d else None

    def add(name, value, limit):
        if value is None:
            rows.append([name, "not measured", f"≤ {limit}", "—"])
        else:
            rows.append([name, f"{value:.2f}", f"≤ {limit}", "met" if value <= limit else "**missed**"])

    for size in [8, 64, 256, 512]:
        add(f"pair {size} B: poolbox / slab", ratio(f"pair/{size}", "poolbox", "slab"), 1.0)
        add(f"pair {size} B: poolbox / Box", ratio(f"pair/{size}", "poolbox", "box"), 0.35)
    add("pair 64 B: poolbox / bumpalo", ratio("pair/64", "poolbox", "bumpalo†"), 1.2)
    for size in [64]:
        add(f"batch-random {size} B: poolbox / mimalloc", ratio(f"batch-random/{size}", "poolbox", "mimalloc"), 0.8)
        add(f"batch-random {size} B: poolbox / slab", ratio(f"batch-random/{size}", "poolbox", "slab"), 1.0)
    add("churn 8 B: poolbox / slab", ratio("churn/8", "poolbox", "slab"), 1.0)
    add("churn 64 B: poolbox / slab", ratio("churn/64", "poolbox", "slab"), 1.0)
    add("churn 512 B: poolbox / slab", ratio("churn/512", "poolbox", "slab"), 1.1)
    add("binary-trees (one walk): poolbox-fused / mimalloc-fused", ratio("binary-trees/16", "poolbox-fused", "mimalloc-fused"), 0.7)
    add("binary-trees (one walk): poolbox-fused / bumpalo", ratio("binary-trees/16", "poolbox-fused", "bumpalo†"), 1.4)
    add("binary-trees (check, then drop): poolbox / mimalloc", ratio("binary-trees/16", "poolbox", "mimalloc"), 0.7)
    add("binary-trees (check, then drop): poolbox / bumpalo", ratio("binary-trees/16", "poolbox", "bumpalo†"), 1.4)
    for size in [8, 64, 512]:
        add(f"checked block pair {size} B / poolbox pair", ratio(f"pair/{size}", "block", "poolbox"), 2.0)
    add("frame scratch 32 B (5,000 a frame, then reset): poolbox / bumpalo", ratio("scratch/32", "poolbox", "bumpalo†"), 2.0)
    for size in [600]:
        add(f"pair {size} B: poolbox / Box", ratio(f"pair/{size}", "poolbox", "box"), 1.1)
        add(f"batch-random {size} B: poolbox / Box", ratio(f"batch-random/{size}", "poolbox", "box"), 1.1)
    per = callgrind_per_pair(res)
    if per:
        if "poolbox" in per and "slab" in per:
            add("callgrind 64 B pair: poolbox / slab", per["poolbox"] / per["slab"], 0.9)
        if "poolbox" in per:
            add("callgrind 64 B pair: poolbox instructions", per["poolbox"], 26)
        if "block-bare" in per and "slotmap-bare" in per:
            add("callgrind 64 B checked pair: block / slotmap (insert + remove)", per["block-bare"] / per["slotmap-bare"], 1.0)
        if "poolbox600" in per and "box600" in per:
            add("callgrind 600 B pair: poolbox / Box", per["poolbox600"] / per["box600"], 1.1)
    mem = res / "memory.txt"
    if mem.exists():
        for line in mem.read_text().splitlines():
            p = line.split()
            kind, size, reserved = p[1], int(p[2]), p[6]
            if kind == "blocks":
                add(f"memory {size} B checked blocks: resident bytes per block", float(p[4]), 12)
                continue
            if kind == "box" or reserved == "-":
                continue
            table_sizes = {"default": [8, 16, 32, 64, 128, 256, 512],
                           "fine": [8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120, 128]}[kind]
            block = next(c for c in table_sizes if c >= size)
            add(f"memory {size} B ({kind} table): reserved / block size {block}", float(reserved) / block, 1.15)
            if size == 8 and kind == "default":
                add("memory 8 B (default table): bytes per object", float(reserved), 9)
    return ["## Targets", "", table(rows, ["target", "measured", "bar", ""]), ""]


def main():
    res = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "target/bench-results")
    crit = parse_criterion((res / "criterion.txt").read_text())
    by_group = defaultdict(dict)
    for bid, ns in crit.items():
        group, contender = bid.rsplit("/", 1)
        by_group[group][contender] = per_op(bid, ns)

    md = ["# Benchmarks", ""]
    machine = (res / "machine.txt").read_text().split("\n") if (res / "machine.txt").exists() else []
    if machine:
        md += [f"Machine: {machine[1]}, {machine[0]} cores (shared), {machine[2]}, run on {machine[3]}.", ""]
    md += ["Reproduce everything on this page with one command: `REPEAT=3 bash benches/run.sh` (about",
           "25 minutes; it runs each criterion id three times, each in its own process, then callgrind and",
           "the memory probe, then `benches/report.py`, which writes this page and `docs/benchmarks.svg`).", "",
           "Figures are criterion medians in ns per operation (an operation is one allocation, its payload",
           "fully written, and its free) and, in brackets, the ratio to `Box` on the system allocator in the",
           "same run. † = never frees (bumpalo and typed-arena reset every 10,000; `floor` only writes the",
           "payload into a ring of 10,000 slots). Differences under ~15% are noise on this shared machine.", "",
           "![ratio to Box](benchmarks.svg)", ""]

    def section(prefix, title):
        groups = sorted((g for g in by_group if g.startswith(prefix)), key=lambda g: int(re.sub(r"\D.*", "", g.split("/")[1]) or 0))
        if not groups:
            return
        md.extend([f"## {title}", ""])
        sizes = [g.split("/")[1] for g in groups]
        rows = []
        for c in ORDER:
            if not any(c in by_group[g] for g in groups):
                continue
            cells = [f"`{c}`"]
            for g in groups:
                v = by_group[g].get(c)
                base = by_group[g].get("box")
                if v is None:
                    cells.append("—")
                elif base:
                    cells.append(f"{v:.2f} ({v / base:.2f}×)")
                else:
                    cells.append(f"{v:.2f}")
            rows.append(cells)
        md.extend([table(rows, ["contender"] + [f"{s} B" for s in sizes]), ""])

    section("pair/", "pair: allocate one, write it, free it (steady state)")
    section("batch-lifo/", "batch of 10,000, freed LIFO")
    section("batch-fifo/", "batch of 10,000, freed FIFO")
    section("batch-random/", "batch of 10,000, freed in a seeded random order")
    section("churn/", "churn: 10,000 live, each step frees a random one and allocates")
    section("mixed/", "mixed sizes 1..1024 (skewed small) through raw blocks, 1,000 live")
    bt = by_group.get("binary-trees/16")
    if bt:
        md += ["## binary-trees, depth 16 (whole run, ms; checks verified against the reference output)", "",
               "Two shapes, each run the same way by every contender that frees: *check, then drop* (the",
               "reference program: the check walks the tree by reference, dropping it walks it again and",
               "frees every node) and *one walk* (`-fused`: the check moves each node out of its allocation,",
               "frees it, then visits the children). The arenas never free, so they have one row.", ""]
        bt_order = ["poolbox", "box", "mimalloc", "poolbox-fused", "box-fused", "mimalloc-fused", "bumpalo†", "typed_arena†"]
        def same_shape_mimalloc(c):
            if "†" in c:
                return "—"
            base = bt.get("mimalloc-fused" if c.endswith("-fused") else "mimalloc")
            return f"{bt[c] / base:.2f}×" if base else "—"

        rows = [[f"`{c}`", f"{bt[c] / 1e6:.1f}", f"{bt[c] / bt['box']:.2f}×" if "box" in bt else "—",
                 same_shape_mimalloc(c)] for c in bt_order if c in bt]
        md += [table(rows, ["contender", "ms", "ratio to Box (check, then drop)", "ratio to mimalloc, same shape"]), ""]

    per = callgrind_per_pair(res)
    if per:
        md += ["## Instructions per 64-byte pair (`valgrind --tool=callgrind`)", "",
               "`benches/measure.rs pair CONTENDER N`, run with N = 200,000 and N = 0; the difference over N.", ""]
        rows = [[f"`{c}`", f"{v:.0f}", f"{v / per['box']:.2f}×" if "box" in per else "—",
                 f"{v / per['slab']:.2f}×" if "slab" in per else "—"] for c, v in per.items()]
        md += [table(rows, ["contender", "instructions", "ratio to Box", "ratio to slab"]), ""]

    mem = res / "memory.txt"
    if mem.exists():
        md += ["## Memory per live object, 1,000,000 live objects", "",
               "`benches/measure.rs memory`: resident-set growth of the process per object (the `Vec` of",
               "handles subtracted) and, for our managers, the bytes the manager reserved from the system",
               "allocator per object (its own accounting).", ""]
        rows = []
        for line in mem.read_text().splitlines():
            p = line.split()
            rows.append([f"{p[2]} B", {"box": "`Box` (glibc)", "default": "default classes", "fine": "`FineClasses`", "blocks": "checked `Block`s"}[p[1]], p[4], p[6]])
        md += [table(rows, ["object", "allocator", "RSS bytes/object", "reserved bytes/object"]), ""]

    md += targets(by_group, res)

    chart = {}
    for name, g in [("pair", "pair/64"), ("batch, random order", "batch-random/64"), ("churn", "churn/64")]:
        if g in by_group and "box" in by_group[g]:
            base = by_group[g]["box"]
            chart[name] = {c: v / base for c, v in by_group[g].items()}
    if chart:
        svg_chart(chart, ROOT / "docs/benchmarks.svg")
    notes = ROOT / "docs/benchmarks-notes.md"
    if notes.exists():
        md += [notes.read_text()]
    (ROOT / "docs/benchmarks.md").write_text("\n".join(md) + "\n")
    print("wrote docs/benchmarks.md and docs/benchmarks.svg")


if __name__ == "__main__":
    main()
