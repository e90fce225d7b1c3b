//! Model-based test: random programs of allocations, drops, frees, misuse
//! and block reads/writes, run against the manager and a plain reference
//! model. After every step each result matches the model, no two live
//! allocations overlap, every live allocation still holds what was last
//! written to it, and the manager's counts agree with the model.
//!
//! `cargo test` runs 1,000 programs of up to 200 steps (4 of up to 40 under Miri, via
//! the same runner); set `MEMORY_MGR_MODEL_CASES` to run more, e.g.
//! `MEMORY_MGR_MODEL_CASES=100000 cargo test --release model`.

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

#[cfg(not(miri))]
proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_programs_agree_with_the_model(ops in prop::collection::vec(op(), 0..200)) {
        run(&ops);
    }
}

/// Under Miri, the same model with programs from a seeded generator
/// (proptest's runner needs what Miri isolates).
#[cfg(miri)]
#[test]
fn random_programs_agree_with_the_model() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    for _ in 0..cases() {
        let ops = prop::collection::vec(op(), 0..40)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        run(&ops);
    }
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
