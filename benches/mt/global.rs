//! The multi-thread workloads on `memory_mgr::Global`.
#[global_allocator]
static GLOBAL: memory_mgr::Global = memory_mgr::Global::new();
include!("common.rs");

/// The allocator's own figures, with `MT_STATS=1`.
fn report() {
    eprintln!("{}", GLOBAL.stats());
}
