#!/usr/bin/env bash
# Miri on the threaded tests with many scheduler seeds (each seed a different
# interleaving of the threads and a different weak-memory outcome): the
# shared manager's tests (tests/all/shared.rs) and the thread-exit scenarios
# (tests/threads.rs), Stacked Borrows, strict provenance.
#   bash scripts/miri_seeds.sh            # seeds 0..8
#   SEEDS=32 bash scripts/miri_seeds.sh
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${SEEDS:-8}
rustup component add --toolchain nightly miri rust-src >/dev/null 2>&1 || true
export MIRIFLAGS="-Zmiri-many-seeds=0..$seeds -Zmiri-strict-provenance -Zmiri-symbolic-alignment-check"
cargo +nightly miri test --target-dir target/miri-seeds --test all -- shared
cargo +nightly miri test --target-dir target/miri-seeds --test threads
echo "Miri, $seeds seeds: all pass"
