//! The multi-thread workloads on `memory_mgr::Global`.
#[global_allocator]
static GLOBAL: memory_mgr::Global = memory_mgr::Global::new();
include!("common.rs");

/// The allocator's own figures, with `MT_STATS=1`.
fn report() {
    eprintln!("{}", GLOBAL.stats());
}

/// `Global`'s own count of what it holds from the system.
fn reserved_bytes() -> Option<usize> {
    Some(GLOBAL.stats().reserved_bytes())
}

/// `Global::trim`: the calling thread's, exited threads' and the central
/// heap's empty chunks go back to the system.
fn trim() -> bool {
    GLOBAL.trim();
    true
}
