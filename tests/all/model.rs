//! Model-based test: random programs of allocations, drops, frees, misuse
//! and block reads/writes, run against the manager and a plain reference
//! model. After every step each result matches the model, no two live
//! allocations overlap, every live allocation still holds what was last
//! written to it, and the manager's counts agree with the model.
//!
//! `cargo test` runs 1,000 programs of up to 200 steps (4 of up to 40 under
//! Miri), new ones each run; set `MEMORY_MGR_MODEL_CASES` to run more, e.g.
//! `MEMORY_MGR_MODEL_CASES=100000 cargo test --release model`, and
//! `MEMORY_MGR_MODEL_SEED` to replay a reported failure.

use proptest::prelude::*;

use crate::model_core::{run, Op};

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..5, any::<u8>()).prop_map(|(k, t)| Op::AllocBox(k, t)),
        2 => any::<usize>().prop_map(Op::DropBox),
        3 => (0usize..=2048).prop_map(Op::AllocBlock),
        2 => any::<usize>().prop_map(Op::FreeBlock),
        1 => any::<usize>().prop_map(Op::FreeStale),
        1 => Just(Op::FreeForeign),
        2 => (any::<usize>(), any::<usize>(), any::<u8>()).prop_map(|(i, o, t)| Op::Write(i, o, t)),
        1 => any::<usize>().prop_map(Op::ReadStale),
        1 => Just(Op::Stats),
        1 => Just(Op::Trim),
        1 => (0u8..5, 0usize..300).prop_map(|(k, n)| Op::Reserve(k, n)),
    ]
}

fn cases() -> u32 {
    std::env::var("MEMORY_MGR_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg!(miri) { 4 } else { 1_000 })
}

/// The seed: `MEMORY_MGR_MODEL_SEED` if set (to replay a failure), else the
/// clock (a new set of programs each run), fixed under Miri (no clock).
fn seed() -> u64 {
    std::env::var("MEMORY_MGR_MODEL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            if cfg!(miri) {
                7
            } else {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(7, |d| d.as_nanos() as u64)
            }
        })
}

/// Runs `check` on `cases` programs drawn from `programs` with proptest's
/// runner, seeded by [`seed`], with shrinking: a failing program is reduced
/// to a small one before it is reported, with the seed to replay it.
/// (proptest is built without its `std` feature, which would bring
/// regex-syntax into every example's build; so panics are caught here, and
/// the seed is ours.) Shared with the three-thread model.
pub(crate) fn check_programs<S: Strategy>(cases: u32, programs: S, check: impl Fn(&S::Value))
where
    S::Value: std::panic::RefUnwindSafe,
{
    use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
    let seed = seed();
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases,
        ..Config::default()
    };
    // Under Miri XorShift (a 16-byte seed): generating ChaCha's numbers
    // was most of the model tests' time there (about 5 s a program of 20
    // steps, against 1 s), and the programs are as random for what runs
    // them. Natively ChaCha, as ever, so a reported seed replays the same.
    let rng = if cfg!(miri) {
        TestRng::from_seed(RngAlgorithm::XorShift, &key[..16])
    } else {
        TestRng::from_seed(RngAlgorithm::ChaCha, &key)
    };
    let mut runner = TestRunner::new_with_rng(config, rng);
    let result = runner.run(&programs, |program| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&program))).map_err(|e| {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            TestCaseError::fail(msg)
        })
    });
    if let Err(e) = result {
        panic!("the model disagrees (replay with MEMORY_MGR_MODEL_SEED={seed}): {e}");
    }
}

#[test]
fn random_programs_agree_with_the_model() {
    let len = if cfg!(miri) { 40 } else { 200 };
    check_programs(cases(), prop::collection::vec(op(), 0..len), |ops| run(ops));
}

/// Inputs the fuzz target found or that cover tricky sequences, replayed.
#[test]
fn fuzz_regressions_replay() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut replayed = 0;
    // (Miri isolates the file system; the hand-made sequence still runs there.)
    let entries = if cfg!(miri) {
        None
    } else {
        std::fs::read_dir(&dir).ok()
    };
    if let Some(entries) = entries {
        for e in entries.flatten().filter(|e| e.path().extension().is_none()) {
            run(&crate::model_core::decode(
                &std::fs::read(e.path()).unwrap(),
            ));
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} fuzz findings");
    // A hand-made sequence: alloc, free, reuse, stale free, foreign free.
    run(&crate::model_core::decode(&[
        2, 24, 0, 0, 3, 0, 0, 0, 2, 24, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 8, 0, 0, 0,
    ]));
}
