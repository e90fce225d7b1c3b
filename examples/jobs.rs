//! A job system: worker threads allocate particles from a `static
//! SharedManager` while the main thread frees them — every frame, the
//! workers' boxes cross to the main thread and are dropped there (a remote
//! free each, one compare-and-swap), and the workers' next allocations take
//! them back. Memory stays flat frame after frame; the same loop with `Box`
//! runs beside it for timings.
//!
//! Run it with `cargo run --release --example jobs`.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use memory_mgr::SharedManager;

#[derive(Debug, Clone, Copy)]
struct Particle {
    pos: [f32; 3],
    vel: [f32; 3],
    ttl: u32,
}

static PARTICLES: SharedManager = SharedManager::builder().name("particles").build_shared();

const WORKERS: usize = 2;
const FRAMES: usize = 200;
const PER_JOB: usize = 10_000;

/// One frame's job: `PER_JOB` particles stepped once.
fn job<P>(frame: usize, worker: usize, make: &impl Fn(Particle) -> P) -> Vec<P> {
    (0..PER_JOB)
        .map(|i| {
            let v = (i + worker) as f32 * 0.001;
            make(Particle {
                pos: [0.0; 3],
                vel: [v, 1.0 - v, frame as f32],
                ttl: 60,
            })
        })
        .collect()
}

/// Runs the frames: each worker makes a job's particles and sends them to
/// the main thread, which reads them and drops them. Returns the median
/// frame time and, per frame, a figure from `probe` (reserved bytes).
fn run<P: std::ops::Deref<Target = Particle> + Send + 'static>(
    make: impl Fn(Particle) -> P + Send + Sync + Copy + 'static,
    probe: impl Fn() -> usize,
) -> (Duration, Vec<usize>) {
    let (done_tx, done_rx) = mpsc::channel::<Vec<P>>();
    let mut starts = Vec::new();
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (tx, rx) = mpsc::channel::<usize>();
            starts.push(tx);
            let done = done_tx.clone();
            thread::spawn(move || {
                for frame in rx {
                    if done.send(job(frame, w, &make)).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    drop(done_tx);
    let mut times = Vec::new();
    let mut reserved = Vec::new();
    for frame in 0..FRAMES {
        let t = Instant::now();
        for s in &starts {
            s.send(frame).unwrap();
        }
        let mut energy = 0.0f32;
        for _ in 0..WORKERS {
            let batch = done_rx.recv().unwrap();
            energy += batch
                .iter()
                .map(|p| p.vel[0] * p.vel[0] + p.pos[1] + p.ttl as f32)
                .sum::<f32>();
            drop(batch); // freed here, on the main thread
        }
        std::hint::black_box(energy);
        times.push(t.elapsed());
        reserved.push(probe());
    }
    drop(starts);
    for w in workers {
        w.join().unwrap();
    }
    times.sort();
    (times[times.len() / 2], reserved)
}

fn main() {
    let (shared, reserved) = run(
        |p| PARTICLES.alloc(p),
        || PARTICLES.stats().reserved_bytes(),
    );
    let (boxed, _) = run(Box::new, || 0);

    println!(
        "{WORKERS} workers x {PER_JOB} particles a frame, {FRAMES} frames, freed on the main thread"
    );
    println!("  median frame: SharedBox {shared:?}, Box {boxed:?}");
    println!(
        "  reserved bytes: frame 10 {}, frame {} {} (flat: remote frees are reused)",
        reserved[10],
        FRAMES,
        reserved[FRAMES - 1]
    );
    assert!(reserved[FRAMES - 1] <= 2 * reserved[10].max(1 << 20));
    println!("\n{}", PARTICLES.stats());
}
