//! The benchmarks of `memory_mgr` (a workspace member of their own, so that
//! the crate's examples and tests build none of their contenders). See
//! `run.sh` in this directory; the targets are the benchmarks and probes
//! listed in `Cargo.toml`.
