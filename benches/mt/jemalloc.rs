//! The multi-thread workloads on jemalloc (`tikv-jemallocator`; the
//! `jemalloc` feature of this crate, so that CI does not build it).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
include!("common.rs");

fn report() {}
