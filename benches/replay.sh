#!/usr/bin/env bash
# Records a real program's heap trace (serde_json parsing a large JSON file;
# see benches/trace_record.rs) and replays it through each allocator, each
# run in its own process, REPEAT times (default 3):
#   bash benches/replay.sh [JSON_FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
repeat=${REPEAT:-3}
trace="$PWD/target/trace.bin" # `cargo bench` runs in benches/: an absolute path
cargo run -q --release -p memory-mgr-bench --example trace_record -- "${1:--}" "$trace"
cargo bench -q -p memory-mgr-bench --bench replay --no-run
for _ in $(seq "$repeat"); do
    for c in glibc mimalloc default wide global; do
        cargo bench -q -p memory-mgr-bench --bench replay -- "$c" "$trace" 20 | grep '^replay'
    done
done | tee target/replay.txt
