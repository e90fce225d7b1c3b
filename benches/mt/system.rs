//! The multi-thread workloads on the system allocator (glibc).
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
