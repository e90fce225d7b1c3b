//! The multi-thread workloads on the system allocator (glibc).
include!("common.rs");

fn report() {}
