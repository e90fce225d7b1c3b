//! The multi-thread workloads on mimalloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
include!("common.rs");

fn report() {}
