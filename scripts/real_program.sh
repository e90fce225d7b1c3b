#!/usr/bin/env bash
# A real program on memory_mgr::Global: serde_json's own test suite (the
# version in the local cargo registry, or downloaded), built with
# `memory_mgr::Global` as the global allocator of every integration test
# binary, then run. The compile-fail UI tests (trybuild) are left out: they
# test rustc's messages, not the program.
#   bash scripts/real_program.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${WORK:-/tmp/memory_mgr_real_program}
src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/serde_json-1.* 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$src" ]; then
    mkdir -p "$work/dl"
    (cd "$work/dl" && cargo new -q fetch && cd fetch && cargo add -q serde_json && cargo fetch -q)
    src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/serde_json-1.* | sort -V | tail -n 1)
fi
rm -rf "$work/serde_json"
mkdir -p "$work"
cp -r "$src" "$work/serde_json"
cd "$work/serde_json"
# Every integration test binary runs on Global.
for t in tests/*.rs; do
    [ "$(basename "$t")" = compiletest.rs ] && continue
    printf '\n#[global_allocator]\nstatic MEMORY_MGR_GLOBAL: memory_mgr::Global = memory_mgr::Global::new();\n' >>"$t"
done
# memory_mgr as a dev-dependency, from this checkout.
cat >>Cargo.toml <<TOML

[dev-dependencies.memory-mgr]
path = "$root"
TOML
# A workspace of its own (not the memory_mgr workspace).
printf '\n[workspace]\n' >>Cargo.toml
rm -f Cargo.lock
tests=$(ls tests/*.rs | xargs -n1 basename | sed 's/\.rs$//' | grep -v '^compiletest$' | sed 's/^/--test /' | tr '\n' ' ')
echo "==> serde_json $(basename "$src") integration tests on memory_mgr::Global: $tests"
# shellcheck disable=SC2086
time cargo test -q --release $tests 2>&1 | tee "$work/serde_json.log" | grep -E 'test result|FAILED|panicked|error'
echo "==> the same, on the system allocator (for the timing)"
for t in tests/*.rs; do
    [ "$(basename "$t")" = compiletest.rs ] && continue
    sed -i 's/^static MEMORY_MGR_GLOBAL: memory_mgr::Global = memory_mgr::Global::new();$/static MEMORY_MGR_GLOBAL: std::alloc::System = std::alloc::System;/' "$t"
done
# shellcheck disable=SC2086
time cargo test -q --release $tests 2>&1 | grep -E 'test result|FAILED|panicked|error'
