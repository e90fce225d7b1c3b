#!/usr/bin/env bash
# The short multi-thread sweep of issue 22: benches/mt.sh at 1, 2 and 4
# threads, 3 processes per cell, on the workloads the issue's targets name
# (the mimalloc-bench ports xmalloc, larson, cache-scratch and alloc-test,
# and the retention and churn ones thread-exit, live-builder and
# thread-churn). Writes target/bench-results/mt.txt (every run) and
# target/bench-results/mt-ratios.md: per workload and thread count,
# Global's median time ÷ the faster of mimalloc's and jemalloc's, and its
# median peak RSS ÷ the smaller of theirs (then the retention rows: RSS
# kept ÷ the smaller kept); prints the full tables, then the ratios. Run it
# alone on the machine (about 4 allocators × 7 workloads × 3 × 3 processes,
# each under a few seconds).
#   bash benches/mt_quick.sh
#   THREADS="2" bash benches/mt_quick.sh     # any of mt.sh's settings
set -euo pipefail
cd "$(dirname "$0")/.."
export THREADS=${THREADS:-"1 2 4"}
export REPEAT=${REPEAT:-3}
export WORKLOADS=${WORKLOADS:-"xmalloc larson cache-scratch alloc-test thread-exit live-builder thread-churn"}
bash benches/mt.sh
python3 benches/mt_report.py --ratios --svg=target/bench-results/mt.svg target/bench-results/mt.txt >target/bench-results/mt-ratios.md
echo
echo "Global / best of mimalloc and jemalloc (target/bench-results/mt-ratios.md):"
echo
cat target/bench-results/mt-ratios.md
