//! The reference model shared by the property test (`model.rs`) and the
//! fuzz target (`fuzz/fuzz_targets/model.rs`): a program of operations, run
//! against the manager, checked after every step.

use memory_mgr::{Block, Error, Leaks, MemoryManager, PoolBox};

/// Whether every element of `xs` is `value`, compared a slice at a time
/// (a `memcmp` for these types: one step for Miri, where element by element
/// was most of this model's time). Here rather than the test binary's
/// `all_are`: the fuzz target includes this file alone.
fn all_are<T: Copy + PartialEq>(xs: &[T], value: T) -> bool {
    let pattern = [value; 256];
    xs.chunks(pattern.len()).all(|c| c == &pattern[..c.len()])
}

#[repr(align(64))]
#[derive(Clone, Copy, Debug, PartialEq)]
struct Aligned64([u8; 24]);

/// A live typed allocation and the byte it was filled with.
enum LiveBox<'m> {
    Small(PoolBox<'m, u64>),
    Mid(PoolBox<'m, [u64; 5]>),
    Large(PoolBox<'m, [u8; 700]>),
    Over(PoolBox<'m, Aligned64>),
    Slice(PoolBox<'m, [u16]>),
}

impl LiveBox<'_> {
    fn range(&self) -> (usize, usize) {
        fn r<T: ?Sized>(b: &PoolBox<'_, T>) -> (usize, usize) {
            (
                PoolBox::as_ptr(b) as *const u8 as usize,
                std::mem::size_of_val(&**b),
            )
        }
        match self {
            LiveBox::Small(b) => r(b),
            LiveBox::Mid(b) => r(b),
            LiveBox::Large(b) => r(b),
            LiveBox::Over(b) => r(b),
            LiveBox::Slice(b) => r(b),
        }
    }

    fn holds(&self, tag: u8) -> bool {
        match self {
            LiveBox::Small(b) => **b == u64::from(tag),
            LiveBox::Mid(b) => all_are(&b[..], u64::from(tag)),
            LiveBox::Large(b) => all_are(&b[..], tag),
            LiveBox::Over(b) => all_are(&b.0, tag) && (PoolBox::as_ptr(b) as usize) % 64 == 0,
            LiveBox::Slice(b) => all_are(b, u16::from(tag)),
        }
    }
}

/// One step of a program.
#[derive(Clone, Debug)]
pub enum Op {
    AllocBox(u8, u8),
    DropBox(usize),
    AllocBlock(usize),
    FreeBlock(usize),
    FreeStale(usize),
    FreeForeign,
    Write(usize, usize, u8),
    ReadStale(usize),
    Stats,
    Trim,
    Reserve(u8, usize),
}

/// Programs end with blocks still allocated on purpose; the manager frees
/// them on drop, and `check` already compared the live counts with the model.
fn quiet(_: &Leaks) {}

/// Runs one program; panics on the first disagreement with the model.
pub fn run(ops: &[Op]) {
    let mm = MemoryManager::builder().on_leak(quiet).build().unwrap();
    let other = MemoryManager::builder().on_leak(quiet).build().unwrap();
    let foreign = other.alloc_block(40).unwrap();
    let mut boxes: Vec<(LiveBox<'_>, u8)> = Vec::new();
    // Live blocks with the byte every one of their bytes holds.
    let mut blocks: Vec<(Block, Vec<u8>)> = Vec::new();
    let mut freed: Vec<Block> = Vec::new();
    for op in ops {
        match *op {
            Op::AllocBox(kind, tag) => {
                let b = match kind {
                    0 => LiveBox::Small(mm.alloc(u64::from(tag))),
                    1 => LiveBox::Mid(mm.alloc([u64::from(tag); 5])),
                    2 => LiveBox::Large(mm.alloc([tag; 700])),
                    3 => LiveBox::Over(mm.alloc(Aligned64([tag; 24]))),
                    _ => LiveBox::Slice(
                        mm.alloc_slice_fill_with(usize::from(tag % 50), |_| u16::from(tag)),
                    ),
                };
                boxes.push((b, tag));
            }
            Op::DropBox(i) if !boxes.is_empty() => {
                let (b, tag) = boxes.swap_remove(i % boxes.len());
                assert!(b.holds(tag), "box lost its value before drop");
            }
            Op::AllocBlock(size) => {
                let b = mm.alloc_block(size).unwrap();
                assert!(mm.block_size(b).unwrap() >= size);
                let mut bytes = vec![0u8; mm.block_size(b).unwrap()];
                mm.read_bytes(b, 0, &mut bytes).unwrap();
                assert!(all_are(&bytes, 0), "fresh block not zeroed");
                blocks.push((b, bytes));
            }
            Op::FreeBlock(i) if !blocks.is_empty() => {
                let (b, _) = blocks.swap_remove(i % blocks.len());
                assert_eq!(mm.free(b), Ok(()));
                freed.push(b);
            }
            Op::FreeStale(i) if !freed.is_empty() => {
                let b = freed[i % freed.len()];
                assert_eq!(mm.free(b), Err(Error::DoubleFree));
            }
            Op::FreeForeign => {
                assert_eq!(mm.free(foreign), Err(Error::ForeignBlock));
                assert!(other.is_live(foreign));
            }
            Op::Write(i, offset, tag) if !blocks.is_empty() => {
                let k = i % blocks.len();
                let (b, bytes) = &mut blocks[k];
                let len = 1 + (offset >> 20) % 16;
                let offset = offset % (mm.block_size(*b).unwrap() + 8);
                // Four-byte writes go through the typed API, the rest as bytes.
                let r = if len == 4 {
                    mm.write(*b, offset, u32::from_ne_bytes([tag; 4]))
                } else {
                    mm.write_bytes(*b, offset, &vec![tag; len])
                };
                if offset + len <= mm.block_size(*b).unwrap() {
                    assert_eq!(r, Ok(()));
                    bytes[offset..offset + len].fill(tag);
                } else {
                    assert_eq!(
                        r,
                        Err(Error::OutOfBounds {
                            offset,
                            len,
                            size: mm.block_size(*b).unwrap()
                        })
                    );
                }
            }
            Op::ReadStale(i) if !freed.is_empty() => {
                let b = freed[i % freed.len()];
                assert_eq!(mm.read::<u8>(b, 0), Err(Error::UseAfterFree));
            }
            Op::Stats => {
                assert!(mm.is_consistent());
                assert!(mm.stats().to_string().contains("total"));
            }
            Op::Trim => {
                let before = mm.stats().reserved_bytes();
                let released = mm.trim();
                assert_eq!(mm.stats().reserved_bytes(), before - released);
                assert!(mm.is_consistent());
            }
            Op::Reserve(kind, n) => {
                let r = match kind {
                    0 => mm.reserve::<u64>(n),
                    1 => mm.reserve::<[u64; 5]>(n),
                    2 => mm.reserve::<Aligned64>(n),
                    3 => mm.reserve_blocks(n % 600, n),
                    _ => mm.reserve::<[u8; 700]>(n),
                };
                let pooled = kind != 4 && (kind != 3 || n % 600 <= 512);
                if cfg!(feature = "pass-through") || pooled {
                    assert_eq!(r, Ok(()));
                } else {
                    assert!(matches!(r, Err(Error::NotPooled { .. })), "{r:?}");
                }
                assert!(mm.is_consistent());
            }
            _ => {}
        }
        check(&mm, &boxes, &blocks);
    }
}

/// The invariants that hold after every step.
fn check(mm: &MemoryManager, boxes: &[(LiveBox<'_>, u8)], blocks: &[(Block, Vec<u8>)]) {
    let mut ranges: Vec<(usize, usize)> = boxes
        .iter()
        .map(|(b, _)| b.range())
        .chain(blocks.iter().map(|(b, _)| {
            (
                mm.block_ptr(*b).unwrap().cast::<u8>().as_ptr() as usize,
                mm.block_size(*b).unwrap(),
            )
        }))
        .filter(|&(_, len)| len > 0)
        .collect();
    ranges.sort_unstable();
    for w in ranges.windows(2) {
        assert!(w[0].0 + w[0].1 <= w[1].0, "live allocations overlap: {w:?}");
    }
    for (b, tag) in boxes {
        assert!(b.holds(*tag), "a live box changed");
    }
    for (b, bytes) in blocks {
        let mut now = vec![0u8; mm.block_size(*b).unwrap()];
        mm.read_bytes(*b, 0, &mut now).unwrap();
        assert_eq!(&now, bytes, "a live block changed");
    }
    let s = mm.stats();
    let zero_sized = boxes.iter().filter(|(b, _)| b.range().1 == 0).count();
    assert_eq!(
        s.live(),
        boxes.len() - zero_sized + blocks.len(),
        "live count disagrees with the model"
    );
    let live_blocks: usize =
        s.classes.iter().map(|c| c.live_blocks).sum::<usize>() + s.system.live_blocks;
    assert_eq!(live_blocks, blocks.len());
    // Per class: the live blocks.
    for c in &s.classes {
        let model = blocks
            .iter()
            .filter(|(b, _)| b.is_pooled() && mm.block_size(*b).unwrap() == c.block_size)
            .count();
        assert_eq!(c.live_blocks, model, "class {} live blocks", c.block_size);
    }
    let system_bytes: usize = blocks
        .iter()
        .filter(|(b, _)| !b.is_pooled())
        .map(|(b, _)| mm.block_size(*b).unwrap())
        .sum();
    assert!(
        s.system.bytes >= system_bytes,
        "system bytes below the live blocks' sizes"
    );
    // Typed reads see the same bytes as byte reads.
    for (b, bytes) in blocks
        .iter()
        .filter(|(b, _)| mm.block_size(*b).unwrap() >= 8)
    {
        let word: [u8; 8] = mm.read(*b, mm.block_size(*b).unwrap() - 8).unwrap();
        assert_eq!(&word[..], &bytes[mm.block_size(*b).unwrap() - 8..]);
    }
}

/// Decodes a program from raw bytes, four bytes a step: the fuzz target's
/// input language, also used to replay its findings as regression tests.
#[allow(dead_code)] // used by the fuzz target and the replay test
pub fn decode(data: &[u8]) -> Vec<Op> {
    data.chunks(4)
        .map(|c| {
            let b = |i: usize| c.get(i).copied().unwrap_or(0);
            let wide = usize::from(u16::from_le_bytes([b(1), b(2)]));
            match b(0) % 9 {
                0 => Op::AllocBox(b(1) % 5, b(2)),
                1 => Op::DropBox(wide),
                2 => Op::AllocBlock(wide % 2049),
                3 => Op::FreeBlock(wide),
                4 => Op::FreeStale(wide),
                5 => Op::FreeForeign,
                6 => Op::Write(
                    usize::from(b(1)),
                    usize::from(b(2)) | usize::from(b(3)) << 20,
                    b(3),
                ),
                7 => Op::ReadStale(wide),
                // Step 8 was only `Stats` before trim and reserve existed;
                // the second byte now picks among the three.
                _ => match b(1) % 4 {
                    0 => Op::Trim,
                    1 => Op::Reserve(b(2) % 5, usize::from(b(3))),
                    _ => Op::Stats,
                },
            }
        })
        .collect()
}
