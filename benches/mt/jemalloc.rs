//! The multi-thread workloads on jemalloc (`tikv-jemallocator`; the
//! `jemalloc` feature of this crate, so that CI does not build it).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
include!("common.rs");

fn report() {}

/// No count of its own reachable from safe Rust.
fn reserved_bytes() -> Option<usize> {
    None
}

/// Not asked to give memory back (no trim in its safe Rust API).
fn trim() -> bool {
    false
}
