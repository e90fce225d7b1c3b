#!/usr/bin/env bash
# The loom models of every protocol where two threads meet (the remote-free
# list, the central lock, the thread-slot registry), explored exhaustively up
# to LOOM_MAX_PREEMPTIONS preemptions (default 3; CI runs 2).
#   bash scripts/loom.sh
#   LOOM_MAX_PREEMPTIONS=4 bash scripts/loom.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export LOOM_MAX_PREEMPTIONS=${LOOM_MAX_PREEMPTIONS:-3}
RUSTFLAGS="--cfg loom" cargo test --release --target-dir target/loom \
    --lib loom_tests -- --test-threads=1
