#!/usr/bin/env bash
# Runs the model fuzz target for SECONDS (default 60) on the nightly toolchain
# and copies any crash input into fuzz/regressions/, which `cargo test` replays.
#   bash fuzz/run.sh 1800
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
status=0
cargo +nightly fuzz run model -- -max_total_time="$secs" -max_len=800 -print_final_stats=1 || status=$?
for f in fuzz/artifacts/model/crash-* fuzz/artifacts/model/leak-*; do
    [ -e "$f" ] && cp "$f" fuzz/regressions/
done
exit $status
