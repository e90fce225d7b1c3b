//! Records the heap traffic of a real program — `serde_json` parsing a
//! large JSON document into a `Value`, walking it, and dropping it — as a
//! trace for `benches/replay.rs`.
//!
//! ```text
//! cargo run --release -p memory-mgr-bench --example trace_record -- [FILE.json or -] [OUT]
//! ```
//!
//! Without a file it uses `arm_intrinsics.json` (5 MB) from the nightly
//! toolchain's `rust-src` component (which `.ci/run` installs for Miri), or
//! the first of a few other large JSON files it knows of. The trace is
//! written to `target/trace.bin` by default: one 25-byte little-endian
//! record per event (`op: u8`, `id: u64`, `size: u64`, `align: u64`), op 0 =
//! alloc, 1 = free, 2 = realloc to `size` (then `align` is the old size).
//! Ids number the allocations in the order they were made.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Events recorded, at most.
const MAX_EVENTS: usize = 1 << 22;

#[derive(Clone, Copy)]
struct Raw {
    op: u8,
    ptr: usize,
    new_ptr: usize,
    size: usize,
    align: usize,
}

/// The event log: a fixed static array (appending must not allocate).
static mut EVENTS: [Raw; MAX_EVENTS] = [Raw {
    op: 0,
    ptr: 0,
    new_ptr: 0,
    size: 0,
    align: 0,
}; MAX_EVENTS];
static LEN: AtomicUsize = AtomicUsize::new(0);
static ON: AtomicBool = AtomicBool::new(false);

fn log(e: Raw) {
    if !ON.load(Ordering::Relaxed) {
        return;
    }
    let i = LEN.fetch_add(1, Ordering::Relaxed);
    assert!(i < MAX_EVENTS, "trace longer than {MAX_EVENTS} events");
    // SAFETY: the program is single-threaded while recording, and each index
    // is written once (`fetch_add`).
    unsafe { (*std::ptr::addr_of_mut!(EVENTS))[i] = e };
}

/// The system allocator, logging every call while `ON`.
struct Recording;

// SAFETY: delegates to `System`; logging never allocates.
unsafe impl GlobalAlloc for Recording {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc(layout) };
        log(Raw {
            op: 0,
            ptr: p as usize,
            new_ptr: 0,
            size: layout.size(),
            align: layout.align(),
        });
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        log(Raw {
            op: 1,
            ptr: ptr as usize,
            new_ptr: 0,
            size: layout.size(),
            align: layout.align(),
        });
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        log(Raw {
            op: 2,
            ptr: ptr as usize,
            new_ptr: p as usize,
            size: new_size,
            align: layout.size(),
        });
        p
    }
}

#[global_allocator]
static GLOBAL: Recording = Recording;

fn default_input() -> Option<std::path::PathBuf> {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from)?;
    let candidates = [
        home.join(".rustup/toolchains/nightly-x86_64-unknown-linux-gnu/lib/rustlib/src/rust/library/stdarch/intrinsics_data/arm_intrinsics.json"),
        "/usr/lib/google-cloud-sdk/lib/third_party/botocore/data/ec2/2016-11-15/service-2.json".into(),
    ];
    candidates.into_iter().find(|p| p.exists())
}

fn walk(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Array(a) => 1 + a.iter().map(walk).sum::<usize>(),
        serde_json::Value::Object(o) => 1 + o.values().map(walk).sum::<usize>(),
        serde_json::Value::String(s) => s.len(),
        _ => 1,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `-` (or nothing) takes the default input.
    let input = args
        .first()
        .filter(|a| *a != "-")
        .map(std::path::PathBuf::from)
        .or_else(default_input)
        .expect("no JSON input found: pass a file");
    let out = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "target/trace.bin".into());
    let text = std::fs::read_to_string(&input).expect("read the input");
    ON.store(true, Ordering::Relaxed);
    let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let nodes = walk(&value);
    let pretty = serde_json::to_string(&value).expect("serialise");
    drop(value);
    drop(pretty);
    ON.store(false, Ordering::Relaxed);
    let n = LEN.load(Ordering::Relaxed);
    // SAFETY: recording is over; nothing writes the log any more.
    let events: &[Raw] = unsafe { &(&*std::ptr::addr_of!(EVENTS))[..n] };
    // Turn addresses into allocation ids.
    let mut live: HashMap<usize, u64> = HashMap::new();
    let mut next = 0u64;
    let mut bytes = Vec::with_capacity(n * 25);
    let mut put = |op: u8, id: u64, a: u64, b: u64| {
        bytes.push(op);
        bytes.extend_from_slice(&id.to_le_bytes());
        bytes.extend_from_slice(&a.to_le_bytes());
        bytes.extend_from_slice(&b.to_le_bytes());
    };
    let (mut allocs, mut frees, mut reallocs, mut large) = (0, 0, 0, 0);
    for e in events {
        match e.op {
            0 => {
                live.insert(e.ptr, next);
                put(0, next, e.size as u64, e.align as u64);
                next += 1;
                allocs += 1;
                large += usize::from(e.size > 512);
            }
            1 => {
                // Frees of memory allocated before recording are skipped.
                if let Some(id) = live.remove(&e.ptr) {
                    put(1, id, e.size as u64, e.align as u64);
                    frees += 1;
                }
            }
            _ => {
                if let Some(id) = live.remove(&e.ptr) {
                    live.insert(e.new_ptr, id);
                    put(2, id, e.size as u64, e.align as u64);
                    reallocs += 1;
                }
            }
        }
    }
    std::fs::write(&out, &bytes).expect("write the trace");
    println!(
        "{}: {} nodes; {allocs} allocs ({large} above 512 B), {frees} frees, {reallocs} reallocs, {} still live -> {out}",
        input.display(),
        nodes,
        live.len()
    );
}
