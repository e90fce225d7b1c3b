//! A per-frame scratch manager: a long-lived manager holds the game's units,
//! a scratch manager takes every temporary of a frame (a box, slices, a
//! string, an `allocator-api2` `Vec`, a leaked box) and is reset at the
//! frame's end. From the first frame on, the scratch manager's reserved
//! bytes and chunks stay flat: each frame reuses the memory of the one
//! before.
//!
//! Run it with `cargo run --release --example scratch`.

use allocator_api2::vec::Vec as AVec;
use memory_mgr::{Error, MemoryManager, PoolBox, WideClasses};

struct Unit {
    name: &'static str,
    pos: [f32; 2],
    vel: [f32; 2],
}

/// A draw command: 12 bytes.
#[derive(Clone, Copy)]
struct DrawCmd {
    unit: u32,
    depth: f32,
    color: u32,
}

const UNITS: usize = 1000;
const NEAREST: usize = 256;
const FRAMES: usize = 8;
const NAMES: [&str; 4] = ["archer", "knight", "scout", "healer"];

fn main() -> Result<(), Error> {
    // Persistent data: boxes that borrow `game` for the whole run.
    let game = MemoryManager::builder().name("game").build()?;
    let mut units: Vec<PoolBox<'_, Unit>> = (0..UNITS)
        .map(|i| {
            game.alloc(Unit {
                name: NAMES[i % 4],
                pos: [(i * 37 % 1000) as f32, (i * 91 % 1000) as f32],
                vel: [(i % 7) as f32 - 3.0, (i % 5) as f32 - 2.0],
            })
        })
        .collect();

    // Scratch: classes up to 64 KiB (`WideClasses`), so the frame's 12 KiB
    // draw list is pooled too; with the 512-byte default classes it would
    // be a system allocation every frame.
    let mut scratch = MemoryManager::builder()
        .classes::<WideClasses>()
        .name("scratch")
        .build()?;

    println!("frame  nearest               allocs   used B  reserved B  chunks  system allocs");
    let (mut allocs_before, mut first_reserved) = (0, None);
    for frame in 0..FRAMES {
        for u in units.iter_mut() {
            u.pos = [u.pos[0] + u.vel[0], u.pos[1] + u.vel[1]];
        }
        {
            // Everything made in this block borrows `scratch`.
            let camera = scratch.alloc([300.0 + 50.0 * frame as f32, 500.0f32]); // PoolBox<[f32; 2]>
                                                                                 // One 12 KiB block. Grown by `push` from empty instead, it would
                                                                                 // pass through 9 classes, each with a 16 KiB chunk of its own.
            let mut draw = AVec::with_capacity_in(units.len(), &scratch);
            for (i, u) in units.iter().enumerate() {
                let (dx, dy) = (u.pos[0] - camera[0], u.pos[1] - camera[1]);
                let color = i as u32 * 0x9E37_79B9;
                draw.push(DrawCmd {
                    unit: i as u32,
                    depth: dx.hypot(dy),
                    color,
                });
            }
            draw.sort_by(|a, b| a.depth.total_cmp(&b.depth));
            let near = scratch.alloc_slice_copy(&draw[..NEAREST]); // PoolBox<[DrawCmd]>
                                                                   // A leaked box is a plain `&mut` into the scratch memory: nothing
                                                                   // is dropped or freed, the reset takes the block back.
            let depths = scratch.alloc_slice_fill_with(NEAREST, |i| near[i].depth);
            let depths: &mut [f32] = PoolBox::leak(depths);
            let first = &units[near[0].unit as usize];
            let label = scratch.alloc_str(first.name); // PoolBox<str>
            let tint = near.iter().fold(0u32, |h, d| h ^ d.color);
            std::hint::black_box((&depths, tint));

            let s = scratch.stats();
            let chunks: usize = s.classes.iter().map(|c| c.chunks).sum();
            let nearest = format!("{label} #{} at {:.1}", near[0].unit, depths[0]);
            println!(
                "{frame:>5}  {nearest:<20} {:>7} {:>8} {:>11} {:>7} {:>14}",
                s.allocs() - allocs_before,
                s.used_bytes(),
                s.reserved_bytes(),
                chunks,
                s.system.allocs
            );
            allocs_before = s.allocs();
            let reserved = *first_reserved.get_or_insert(s.reserved_bytes());
            assert_eq!(s.reserved_bytes(), reserved, "no new memory after frame 0");
            // `scratch.reset()` here does not compile: `camera`, `draw`,
            // `near` and `label` borrow `scratch` until they are dropped at
            // the closing brace (error[E0502]: cannot borrow `scratch` as
            // mutable because it is also borrowed as immutable). A Vec
            // outside the loop holding a box of this frame is refused the
            // same way.
        } // the boxes and the Vec are dropped here, each freeing its block;
          // the reset takes back the leaked `depths` and turns every chunk into
          // unused capacity again, handed out in address order next frame.
        scratch.reset();
    }

    println!("\n{}", scratch.stats());
    println!("\n{}", game.stats());
    Ok(())
}
