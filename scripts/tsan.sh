#!/usr/bin/env bash
# ThreadSanitizer (nightly, std rebuilt with it) on the threaded tests: the
# shared manager's tests, the thread-exit scenarios, `Global`'s tests (and
# the shared manager's on `Global`, with the self-host feature) and the jobs
# example.
# Any report fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
rustup component add --toolchain nightly rust-src >/dev/null 2>&1 || true
export RUSTFLAGS="-Zsanitizer=thread" RUSTDOCFLAGS="-Zsanitizer=thread"
export TSAN_OPTIONS="halt_on_error=1"
cargo +nightly test -Zbuild-std --target "$host" --target-dir target/tsan \
    --test all -- shared
cargo +nightly test -Zbuild-std --target "$host" --target-dir target/tsan \
    --test threads
# `Global` as the global allocator (its thread heaps, exit hook, chunk
# cache and segments under every allocation): its own tests, and the shared
# manager's tests run on it (self-host).
cargo +nightly test -Zbuild-std --target "$host" --target-dir target/tsan \
    --test global
cargo +nightly test -Zbuild-std --target "$host" --target-dir target/tsan \
    --features self-host --test all -- shared
cargo +nightly run -q -Zbuild-std --target "$host" --target-dir target/tsan \
    --release --example jobs >/dev/null
echo "ThreadSanitizer: no report"
