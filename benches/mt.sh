#!/usr/bin/env bash
# The mimalloc-bench ports (benches/mt/common.rs) with memory_mgr::Global,
# mimalloc, jemalloc and glibc as the global allocator: every workload at 1,
# 2, 4 and 8 threads, REPEAT processes per cell (default 5), one process per
# run. Writes target/bench-results/mt.txt (one line per run:
# ALLOCATOR WORKLOAD THREADS SECONDS PEAK_RSS_KIB, then KEY=VALUE figures
# for the retention workloads thread-exit and live-builder) and prints the
# tables of medians (benches/mt_report.py), the retention figures after
# each thread count's table. Run it alone on the machine.
#   bash benches/mt.sh
#   REPEAT=3 THREADS="2" WORKLOADS="xmalloc larson" bash benches/mt.sh
# benches/mt_quick.sh runs the short set (1, 2, 4 threads, 3 processes)
# and writes Global's ratios as a markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
REPEAT=${REPEAT:-5}
THREADS=${THREADS:-"1 2 4 8"}
WORKLOADS=${WORKLOADS:-"xmalloc larson cache-scratch alloc-test mstress glibc-thread sh6bench thread-exit live-builder thread-churn"}
ALLOCATORS=${ALLOCATORS:-"global mimalloc jemalloc system"}
cargo build -q --release -p memory-mgr-bench --features jemalloc \
    --example mt_system --example mt_global --example mt_mimalloc --example mt_jemalloc
out=target/bench-results/mt.txt
mkdir -p target/bench-results
: >"$out"
for w in $WORKLOADS; do
    for t in $THREADS; do
        for r in $(seq "$REPEAT"); do
            # A different allocator order each repetition, so that a slow
            # patch of the shared machine does not always hit the same one.
            for a in $(echo "$ALLOCATORS" | tr ' ' '\n' | shuf --random-source=<(yes "$r")); do
                line=$(target/release/examples/mt_"$a" "$w" "$t")
                echo "$a $line" | tee -a "$out"
            done
        done
    done
done
python3 benches/mt_report.py "$out"
