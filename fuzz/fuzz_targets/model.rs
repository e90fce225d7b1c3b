//! Fuzz target: the property test's operation language decoded from fuzzer
//! bytes, with the same invariants as assertions. Run with
//! `bash fuzz/run.sh SECONDS`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/all/model_core.rs"]
mod model_core;

fuzz_target!(|data: &[u8]| {
    model_core::run(&model_core::decode(data));
});
