#!/usr/bin/env bash
# Reproduces everything in docs/benchmarks.md:
#   bash benches/run.sh            # all of it (about 15 minutes)
#   bash benches/run.sh 'pair/64'  # only criterion ids matching a regex (no callgrind/memory)
#   REPEAT=3 bash benches/run.sh   # each id three times; the report takes the median
# Each criterion id runs in its own process: in one shared process the system
# allocator's figures move by up to 2x depending on what ran before them.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/bench-results
mkdir -p "$out"
filter=${1:-}
repeat=${REPEAT:-1}

cargo bench -p memory-mgr-bench --no-run -q
for bench in workloads binary_trees; do
    cargo bench -q -p memory-mgr-bench --bench "$bench" -- --list 2>/dev/null | sed -n 's/: benchmark$//p' |
        { grep -E "${filter:-.}" || true; } | while read -r id; do
            for _ in $(seq "$repeat"); do
                cargo bench -q -p memory-mgr-bench --bench "$bench" -- --exact "$id" --noplot 2>&1 |
                    awk -v id="$id" 'index($0, id) == 1 && !done { print; getline; print; done = 1 }'
            done
        done
done | tee "$out/criterion${filter:+-partial}.txt"
[ -n "$filter" ] && exit 0

cargo build -q --release -p memory-mgr-bench --example measure
for c in poolbox block block-bare box mimalloc slab slotmap slotmap-bare bumpalo floor poolbox600 box600; do
    for n in 0 200000; do
        ir=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null \
            target/release/examples/measure pair "$c" "$n" 2>&1 | sed -n 's/.*I *refs: *//p' | tr -d ,)
        echo "callgrind $c $n $ir"
    done
done | tee "$out/callgrind.txt"

{
    for size in 8 24 64 100; do
        for c in box default fine; do
            target/release/examples/measure memory "$c" "$size"
        done
    done
    target/release/examples/measure memory blocks 8
} | tee "$out/memory.txt"

{ nproc; lscpu | sed -n 's/^Model name: *//p'; rustc --version; date -u +%Y-%m-%d; } > "$out/machine.txt"
python3 benches/report.py "$out"
