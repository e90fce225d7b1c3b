#!/usr/bin/env bash
# Runs the test suite and the examples under AddressSanitizer (nightly) and
# valgrind memcheck, pooled and in pass-through mode. Any report fails the run.
#   bash scripts/sanitize.sh            # everything
#   bash scripts/sanitize.sh asan       # only AddressSanitizer
#   bash scripts/sanitize.sh valgrind   # only valgrind
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
host=$(rustc -vV | sed -n 's/^host: //p')
export RUST_BACKTRACE=0

if [ "$what" = all ] || [ "$what" = asan ]; then
    rustup component add --toolchain nightly rust-src >/dev/null 2>&1 || true
    for features in "" "--features pass-through"; do
        echo "==> AddressSanitizer: tests ${features:-(pooled)}"
        # Leak detection on; the examples and tests must free everything. A refused
        # request returns null (as glibc does) instead of aborting.
        RUSTFLAGS="-Zsanitizer=address" RUSTDOCFLAGS="-Zsanitizer=address" \
        ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:allocator_may_return_null=1" \
            cargo +nightly test -Zbuild-std --target "$host" --target-dir target/asan \
            --lib --tests $features
        echo "==> AddressSanitizer: tour example ${features:-(pooled)}"
        RUSTFLAGS="-Zsanitizer=address" ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:allocator_may_return_null=1" \
            cargo +nightly run -q -Zbuild-std --target "$host" --target-dir target/asan \
            --example tour $features >/dev/null
    done
fi

if [ "$what" = all ] || [ "$what" = valgrind ]; then
    for features in "" "--features pass-through"; do
        echo "==> valgrind memcheck: tests ${features:-(pooled)}"
        cargo build -q --tests $features --target-dir target/valgrind
        # Only the integration binary: it exercises every public path.
        bin=$(cargo test -q --no-run --test all $features --target-dir target/valgrind --message-format=json 2>/dev/null |
            sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
        MEMORY_MGR_MODEL_CASES=50 valgrind -q --leak-check=full --errors-for-leak-kinds=definite \
            --error-exitcode=1 "$bin" --test-threads=1 -q
        echo "==> valgrind memcheck: tour example ${features:-(pooled)}"
        cargo build -q --release --example tour $features --target-dir target/valgrind
        valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1 \
            target/valgrind/release/examples/tour >/dev/null
    done
fi
echo "==> sanitizers: no reports"
