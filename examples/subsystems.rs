//! Several managers, one per game subsystem, each with its own budget: three
//! levels are played; each level reserves what its first frame needs,
//! allocates per frame, and is reset at its end. A per-subsystem report
//! shows peaks, counts and budget use, and what happens when one subsystem
//! runs out of budget while the others carry on.
//!
//! Run it with `cargo run --release --example subsystems`.

use memory_mgr::{Error, MemoryManager, PoolBox};

/// A particle: 32 bytes.
#[derive(Debug, Clone, Copy)]
struct Particle {
    pos: [f32; 3],
    vel: [f32; 3],
    ttl: u32,
    color: u32,
}

/// An AI agent's state: 96 bytes.
#[derive(Debug, Clone, Copy)]
struct Agent {
    target: [f32; 3],
    path: [[f32; 2]; 8],
    mood: u32,
    id: u64,
}

/// An audio voice: 200 bytes.
#[derive(Debug, Clone, Copy)]
struct Voice {
    samples: [i16; 96],
    cursor: u32,
    gain: f32,
}

struct Subsystem {
    name: &'static str,
    mm: MemoryManager,
    refused: usize,
}

impl Subsystem {
    fn new(name: &'static str, budget: usize) -> Result<Self, Error> {
        Ok(Subsystem {
            name,
            mm: MemoryManager::builder().budget(budget).build()?,
            refused: 0,
        })
    }
}

/// Per-frame work on one object.
trait Update {
    fn update(&mut self);
}

impl Update for Particle {
    fn update(&mut self) {
        for i in 0..3 {
            self.pos[i] += self.vel[i];
        }
        self.ttl = self.ttl.saturating_sub(1);
        self.color = self.color.rotate_left(1);
    }
}

impl Update for Agent {
    fn update(&mut self) {
        let next = self.path[(self.id % 8) as usize];
        self.target = [next[0], next[1], self.target[2]];
        self.mood = self.mood.wrapping_add(1);
    }
}

impl Update for Voice {
    fn update(&mut self) {
        let s = self.samples[self.cursor as usize % 96];
        self.gain = (self.gain * 0.99).max(f32::from(s.signum()).abs() * 0.01);
        self.cursor += 1;
    }
}

/// One frame of a subsystem: update every object, replace `churn` of them,
/// top up to `target`.
fn frame<'m, T: Update>(
    mm: &'m MemoryManager,
    live: &mut Vec<PoolBox<'m, T>>,
    refused: &mut usize,
    target: usize,
    churn: usize,
    rng: &mut fastrand::Rng,
    make: impl Fn(u64) -> T,
) {
    for obj in live.iter_mut() {
        obj.update();
    }
    for _ in 0..churn.min(live.len()) {
        let i = rng.usize(..live.len());
        live.swap_remove(i);
    }
    while live.len() < target {
        match mm.try_alloc(make(rng.u64(..))) {
            Ok(b) => live.push(b),
            Err(Error::BudgetExceeded { .. }) => {
                *refused += 1;
                break; // over budget: this subsystem skips the rest this frame
            }
            Err(e) => panic!("{e}"),
        }
    }
}

fn main() -> Result<(), Error> {
    let mut particles = Subsystem::new("particles", 4 << 20)?;
    let mut ai = Subsystem::new("ai", 2 << 20)?;
    let mut audio = Subsystem::new("audio", 512 << 10)?;
    let mut rng = fastrand::Rng::with_seed(7);

    // (particles, agents, voices) wanted per level; level 3 asks audio for
    // more voices than its budget holds.
    let levels = [
        (20_000, 2_000, 300),
        (60_000, 8_000, 600),
        (40_000, 4_000, 5_000),
    ];
    for (n, &(want_p, want_a, want_v)) in levels.iter().enumerate() {
        println!("== level {} ==", n + 1);
        // Reserve before the first frame; a reservation over budget is
        // reported and the subsystem runs with what it has.
        for (sub, r) in [
            (&particles, particles.mm.reserve::<Particle>(want_p)),
            (&ai, ai.mm.reserve::<Agent>(want_a)),
            (&audio, audio.mm.reserve::<Voice>(want_v)),
        ] {
            match r {
                Ok(()) => println!(
                    "{:>10}: reserved, {} bytes held",
                    sub.name,
                    sub.mm.stats().reserved_bytes()
                ),
                Err(e) => println!("{:>10}: reserve refused: {e}", sub.name),
            }
        }
        let mut ps = Vec::new();
        let mut agents = Vec::new();
        let mut voices = Vec::new();
        for _ in 0..120 {
            frame(
                &particles.mm,
                &mut ps,
                &mut particles.refused,
                want_p,
                want_p / 10,
                &mut rng,
                |s| Particle {
                    pos: [0.0; 3],
                    vel: [s as f32, 1.0, 0.0],
                    ttl: 60,
                    color: s as u32,
                },
            );
            frame(
                &ai.mm,
                &mut agents,
                &mut ai.refused,
                want_a,
                want_a / 50,
                &mut rng,
                |s| Agent {
                    target: [1.0; 3],
                    path: [[0.0; 2]; 8],
                    mood: 0,
                    id: s,
                },
            );
            frame(
                &audio.mm,
                &mut voices,
                &mut audio.refused,
                want_v,
                want_v / 20,
                &mut rng,
                |s| Voice {
                    samples: [s as i16; 96],
                    cursor: 0,
                    gain: 1.0,
                },
            );
        }
        println!(
            "{:>10} {:>8} {:>8} {:>10} {:>10} {:>12} {:>8} {:>8}",
            "subsystem", "live", "peak", "allocs", "frees", "reserved B", "budget", "refused"
        );
        for sub in [&particles, &ai, &audio] {
            let s = sub.mm.stats();
            let peak: usize = s.classes.iter().map(|c| c.peak_boxes).sum();
            println!(
                "{:>10} {:>8} {:>8} {:>10} {:>10} {:>12} {:>7.0}% {:>8}",
                sub.name,
                s.live(),
                peak,
                s.allocs(),
                s.frees(),
                s.reserved_bytes(),
                100.0 * s.reserved_bytes() as f64 / s.budget.unwrap() as f64,
                sub.refused
            );
        }
        drop((ps, agents, voices));
        // Level end: everything freed at once (a reset keeps the chunks for
        // the next level; the trim gives them back to the system).
        for sub in [&mut particles, &mut ai, &mut audio] {
            sub.mm.reset();
            sub.mm.trim();
            assert_eq!(sub.mm.stats().reserved_bytes(), 0);
        }
        println!();
    }
    println!(
        "audio was refused {} times in level 3 and the other subsystems were not affected.",
        audio.refused
    );
    println!("\nparticles' final stats table:\n{}", particles.mm.stats());
    Ok(())
}
