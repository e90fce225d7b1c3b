//! A game loop: thousands of particles spawned and despawned every frame as
//! `PoolBox`es, the same loop with `Box`, per-frame timings side by side,
//! and the manager's statistics at the end.
//!
//! Run it with `cargo run --release --example particles`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use memory_mgr::MemoryManager;

#[derive(Debug, Clone, Copy)]
struct Particle {
    pos: [f32; 3],
    vel: [f32; 3],
    color: u32,
    ttl: u16,
}

const FRAMES: usize = 300;
const SPAWN_PER_FRAME: usize = 5_000;

/// A seeded generator, so both runs see the same particles.
fn spawn(rng: &mut fastrand::Rng) -> Particle {
    Particle {
        pos: [0.0; 3],
        vel: [rng.f32() - 0.5, rng.f32() * 2.0, rng.f32() - 0.5],
        color: rng.u32(..),
        ttl: rng.u16(10..60),
    }
}

/// Steps every particle, despawns the dead ones (swap_remove drops them),
/// spawns new ones; returns the time of each frame.
fn simulate<P: std::ops::DerefMut<Target = Particle>>(
    mut make: impl FnMut(Particle) -> P,
) -> (Vec<Duration>, usize) {
    let mut rng = fastrand::Rng::with_seed(2026);
    let mut live: Vec<P> = Vec::new();
    let mut frames = Vec::with_capacity(FRAMES);
    let mut peak = 0;
    for _ in 0..FRAMES {
        let t = Instant::now();
        let mut i = 0;
        while i < live.len() {
            let p = &mut *live[i];
            p.ttl -= 1;
            if p.ttl == 0 {
                live.swap_remove(i);
                continue;
            }
            for k in 0..3 {
                p.pos[k] += p.vel[k] * 0.016;
            }
            p.vel[1] -= 9.81 * 0.016;
            p.color = p.color.saturating_sub(0x0100_0000); // fade out
            i += 1;
        }
        for _ in 0..SPAWN_PER_FRAME {
            live.push(make(spawn(&mut rng)));
        }
        black_box(&live);
        peak = peak.max(live.len());
        frames.push(t.elapsed());
    }
    (frames, peak)
}

fn summary(name: &str, frames: &[Duration]) -> Duration {
    let mut sorted = frames.to_vec();
    sorted.sort();
    let median = sorted[sorted.len() / 2];
    let worst = *sorted.last().unwrap();
    println!(
        "{name:>8}: median frame {:>8.1} µs, 99th pct {:>8.1} µs, worst {:>8.1} µs",
        median.as_secs_f64() * 1e6,
        sorted[sorted.len() * 99 / 100].as_secs_f64() * 1e6,
        worst.as_secs_f64() * 1e6
    );
    median
}

fn main() {
    println!(
        "{FRAMES} frames, {SPAWN_PER_FRAME} particles spawned per frame, each living 10-60 frames"
    );
    println!("particle: {} bytes", std::mem::size_of::<Particle>());

    let mm = MemoryManager::new();
    let (pooled, peak) = simulate(|p| mm.alloc(p));
    let (boxed, _) = simulate(Box::new);
    println!("peak live particles: {peak}");
    let a = summary("PoolBox", &pooled);
    let b = summary("Box", &boxed);
    println!(
        "PoolBox median frame = {:.2}x Box's (one run on this machine; see docs/benchmarks.md for measured suites)",
        a.as_secs_f64() / b.as_secs_f64()
    );

    println!("\nmanager after the run (every particle dropped):");
    println!("{}", mm.stats());
    assert_eq!(mm.stats().live(), 0);
}
