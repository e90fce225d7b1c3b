//! A fast, safe segregated-free-list memory manager for programs that
//! allocate many small objects: games, simulations, interpreters, servers
//! with per-request state.
//!
//! A [`MemoryManager`] is a plain value — make one per subsystem — that owns
//! one pool per size class (by default 8, 16, 32, 64, 128, 256 and 512
//! bytes). It hands out three kinds of allocation:
//!
//! * [`PoolBox<'m, T>`](PoolBox), an owning pointer like `Box<T>` that
//!   borrows the manager, one word wide; dropping it returns the block.
//! * [`Handle<T>`], a copyable, checked key to a value the manager owns
//!   (like a slotmap key): it borrows nothing, so a `World` can own its
//!   manager and its handles together.
//! * [`Block`], a copyable handle to raw bytes whose [`free`] is checked: a
//!   second free returns [`Error::DoubleFree`] — never undefined behaviour.
//!
//! [`free`]: MemoryManager::free
//!
//! # Typed values: `PoolBox`
//!
//! ```
//! use memory_mgr::{MemoryManager, PoolBox};
//!
//! #[derive(Debug, Clone, PartialEq)]
//! struct Particle { pos: [f32; 3], vel: [f32; 3], ttl: u32 }
//!
//! let mm = MemoryManager::new();
//! let mut p = mm.alloc(Particle { pos: [0.0; 3], vel: [1.0; 3], ttl: 60 });
//! p.ttl -= 1;                                   // DerefMut, like Box
//! let q = p.clone();                            // a new block, same manager
//! assert_eq!(*q, *p);
//! let squares = mm.alloc_slice_fill_with(4, |i| i * i); // PoolBox<[usize]>
//! assert_eq!(&*squares, &[0, 1, 4, 9]);
//! let name = mm.alloc_str("emitter");           // PoolBox<str>
//! let t = PoolBox::into_inner(q);               // move out, free the block
//! # let _ = (t, name);
//! ```
//!
//! The size class of a `T` is a compile-time constant of `size_of::<T>()`
//! and `align_of::<T>()`, so `alloc` is a pop from a known free list and
//! dropping is a push. A `T` above the largest class goes to the system
//! allocator; a zero-sized `T` allocates nothing. A `PoolBox` cannot outlive
//! its manager and is not `Send`: the borrow checker enforces both.
//!
//! A `PoolBox<'m, dyn Trait>` comes from [`unsize_box!`] (the coercion
//! `Box` does, on stable Rust; with the `nightly` feature the coercion
//! works directly).
//!
//! # Values the manager owns: `Handle`
//!
//! ```
//! use memory_mgr::{Error, Handle, MemoryManager};
//!
//! struct World { mm: MemoryManager, enemies: Vec<Handle<[f32; 3]>> }
//!
//! fn load() -> World {                          // returns a finished level
//!     let mm = MemoryManager::builder().name("level").build().unwrap();
//!     let enemies = (0..3).map(|i| mm.insert([i as f32; 3])).collect();
//!     World { mm, enemies }
//! }
//! let mut w = load();
//! let first = w.enemies[0];
//! w.mm.get_mut(first)?[1] = 9.0;               // checked, like slotmap
//! assert_eq!(w.mm.remove(first)?, [0.0, 9.0, 0.0]);
//! assert_eq!(w.mm.get(first), Err(Error::Removed));
//! for v in w.mm.values_mut::<[f32; 3]>() {     // a system: every enemy
//!     v[0] += 1.0;
//! }
//! w.mm.retain::<[f32; 3]>(|_, v| v[0] < 3.0);  // despawn
//! assert_eq!(w.mm.len::<[f32; 3]>(), 1);
//! w.mm.reset();                                 // drops every value left
//! assert_eq!(w.mm.get(w.enemies[1]), Err(Error::FreedByReset));
//! # Ok::<(), Error>(())
//! ```
//!
//! The values of each type live in a typed store, inline in slots as a
//! slotmap keeps them, on pages that never move; a handle is checked on
//! every use (the manager's id, the slot's generation), so a removed, reset
//! or foreign handle is an `Err`. Stores iterate (`iter`, `values_mut`,
//! `retain`, `drain`), hand out two values of any types at once
//! (`get_pair_mut`), and have views for hot loops ([`handles::StoreMut`]).
//! Stats, budgets, `trim` and `reset` cover them; the manager drops the
//! values still in it on `reset` and on drop.
//! `docs/structuring.md` shows where managers live in a game.
//!
//! # Raw bytes: `Block`
//!
//! ```
//! use memory_mgr::{Error, MemoryManager};
//!
//! let mm = MemoryManager::new();
//! let b = mm.alloc_block(24)?;          // 24 bytes -> the 32-byte class, zeroed
//! assert_eq!(mm.block_size(b)?, 32);
//! mm.write(b, 0, [1u32, 2, 3])?;        // checked, typed (bytemuck::Pod)
//! assert_eq!(mm.read::<u32>(b, 8)?, 3);
//! mm.free(b)?;
//! assert_eq!(mm.free(b), Err(Error::DoubleFree));
//! assert_eq!(mm.read::<u32>(b, 0), Err(Error::UseAfterFree));
//! let other = MemoryManager::new();
//! let c = other.alloc_block(8)?;
//! assert_eq!(mm.free(c), Err(Error::ForeignBlock));
//! # Ok::<(), Error>(())
//! ```
//!
//! A `Block` is 16 bytes of plain data, like a slotmap key. Each block slot
//! has a generation kept outside the user's bytes; the handle carries the
//! generation it was given, so a stale handle is caught even after its slot
//! was handed out again, and the newer allocation is left alone. Blocks
//! live in pools of their own, so typed boxes pay nothing for this.
//!
//! # Size classes
//!
//! The class table is a type parameter, fixed and checked at compile time:
//! [`DefaultClasses`] (7 classes, 8 to 512 bytes, up to 50% internal waste),
//! [`FineClasses`] (32 classes to 512 bytes, at most 11.1% waste above 64
//! bytes), [`WideClasses`] (88 classes from 8 bytes to 64 KiB, the same
//! waste bound: for programs whose allocations run past 512 bytes), or your
//! own [`SizeClasses`] implementation. A size→class lookup table is built by
//! a `const fn`, so a run-time lookup is one load.
//!
//! ```
//! use memory_mgr::{FineClasses, MemoryManager, SizeClasses};
//!
//! struct Mine;
//! impl SizeClasses for Mine {
//!     const SIZES: &'static [usize] = &[16, 48, 96];
//! }
//! let mm = MemoryManager::<Mine>::with_classes();
//! assert_eq!(mm.block_size(mm.alloc_block(40)?)?, 48);
//! let fine = MemoryManager::<FineClasses>::with_classes();
//! assert_eq!(fine.block_size(fine.alloc_block(100)?)?, 104);
//! # Ok::<(), memory_mgr::Error>(())
//! ```
//!
//! Every block is aligned to the largest power of two dividing its class
//! size (8 → 8, 48 → 16, 64 → 64). A type aligned beyond its class goes to
//! the next class that can honour it, or to the system allocator.
//!
//! # Pools and chunks
//!
//! Each pool keeps an intrusive, unordered free list threaded through its
//! free blocks: allocation pops, free pushes, both O(1). When the list is
//! empty the next never-used block of the newest chunk is handed out; when
//! that chunk is used up the pool gets another from the system allocator —
//! 16 KiB first, doubling up to 1 MiB (see [`Builder`]). Chunks are aligned
//! to 1 MiB, so a block finds its pool by masking its own address. Dropping
//! the manager frees every chunk.
//!
//! # Collections: `allocator-api2`
//!
//! `&MemoryManager` implements [`allocator_api2::alloc::Allocator`] (cargo
//! feature `allocator-api2`, on by default), so `Vec`, `Box` and hashbrown's
//! `HashMap` can live in a manager. `grow` and `shrink` stay in place while
//! the new size fits the same class.
//!
//! ```
//! # #[cfg(feature = "allocator-api2")] {
//! use allocator_api2::vec::Vec;
//! let mm = memory_mgr::MemoryManager::new();
//! let mut v = Vec::new_in(&mm);
//! v.extend(0..1000u32);                 // through the classes into the heap record
//! assert_eq!(v[999], 999);
//! assert_eq!(mm.stats().live(), 1);
//! drop(v);
//! assert_eq!(mm.stats().live(), 0);
//! # }
//! ```
//!
//! # Many threads: `SharedManager`, `SharedBox`, `Global`
//!
//! A `MemoryManager` serves one thread at a time. A [`SharedManager`] (with
//! `std`) is `Send + Sync` and has a `const fn new`, so it can be a
//! `static`: each thread allocates from a heap of its own with no atomic
//! read-modify-write, and the [`SharedBox`]es it hands out may be sent to,
//! shared with and dropped on any thread (a drop on another thread is one
//! compare-and-swap onto the owning pool's list, which the owner takes back
//! on its slow path). [`Global`] puts the whole program on it:
//!
//! ```
//! # #[cfg(feature = "std")] {
//! use memory_mgr::{SharedBox, SharedManager};
//!
//! static JOBS: SharedManager = SharedManager::new();
//!
//! let made: Vec<SharedBox<'static, [f32; 6]>> = std::thread::spawn(|| {
//!     (0..100).map(|i| JOBS.alloc([i as f32; 6])).collect()
//! })
//! .join()
//! .unwrap();
//! assert_eq!(made[99][5], 99.0);
//! drop(made); // freed here, back to the worker's heap
//! # }
//! ```
//!
//! ```ignore
//! #[global_allocator]
//! static GLOBAL: memory_mgr::Global = memory_mgr::Global::new();
//! ```
//!
//! `docs/threads.md` in the repository has the design.
//!
//! # Operations: statistics, budgets, reserve, trim, reset, leaks
//!
//! ```
//! use memory_mgr::{Error, MemoryManager};
//!
//! let mut mm = MemoryManager::builder().budget(1 << 20).build()?; // 1 MiB
//! mm.reserve::<[f32; 8]>(1000)?;            // no system call for 1000 of them
//! let v: Vec<_> = (0..1000).map(|_| mm.alloc([0f32; 8])).collect();
//! let s = mm.stats();                       // plain value; Display = table
//! assert_eq!((s.classes[2].live_boxes, s.classes[2].peak_boxes), (1000, 1000));
//! assert!(matches!(mm.alloc_block(2 << 20), Err(Error::BudgetExceeded { .. })));
//! drop(v);
//! assert!(mm.trim() > 0);                   // empty chunks back to the system
//! let b = mm.alloc_block(100)?;
//! assert_eq!(mm.leaks().total(), 1);        // what would leak on drop
//! mm.reset();                               // everything freed, chunks kept
//! assert_eq!(mm.free(b), Err(Error::FreedByReset)); // stale handle, not UB
//! # Ok::<(), Error>(())
//! ```
//!
//! [`MemoryManager::stats`] gives per-class live counts, peaks, allocation
//! and free counts, capacity, chunks and reserved bytes. A budget
//! ([`Builder::budget`]) caps the bytes held from the system; past it the
//! `try_` calls return [`Error::BudgetExceeded`]. [`MemoryManager::reserve`]
//! pre-grows a class, [`MemoryManager::trim`] releases empty chunks,
//! [`MemoryManager::reset`] frees everything at once (keeping the chunks
//! for what comes next, as a per-frame scratch manager wants), and
//! [`MemoryManager::leaks`] (or [`Builder::on_leak`], called on drop) reports
//! what is still allocated. `docs/operations.md` in the repository is the
//! guide.
//!
//! # Cargo features
//!
//! * `std` (default): [`SharedManager`], [`SharedBox`] and [`Global`], and
//!   leak reports on stderr in debug builds. Without it the crate is
//!   `#![no_std]` and needs only `alloc`.
//! * `allocator-api2` (default): the `Allocator` implementation above.
//! * `debug-fill`: blocks handed out are filled with `0xCD`, freed blocks
//!   with `0xDD`, and a freed block written before its reuse panics.
//! * `pass-through`: below.
//! * `nightly` (nightly compiler): `PoolBox<T>` coerces to
//!   `PoolBox<dyn Trait>` like `Box` (`CoerceUnsized`).
//! * `serde` (implies `std`): save a manager's typed stores and load them
//!   into another, handles inside the values included
//!   (`MemoryManager::save_store`, `load_store`, `load_with`).
//! * `self-host`: for this crate's own test suite (it runs on [`Global`]).
//!
//! # Pass-through mode
//!
//! The cargo feature `pass-through` sends every allocation straight to the
//! system allocator, so Miri, AddressSanitizer and valgrind see each one. The
//! API and every check (double free, foreign block, bounds) work the same:
//!
//! ```text
//! cargo test --features pass-through
//! ```
//!
//! # Errors and panics
//!
//! Fallible calls return [`Error`]; `try_` variants exist for every
//! allocating call but `pin`, and the plain ones panic with the error's message (as
//! `Box::new` aborts on out-of-memory). After any error the manager is
//! unchanged and usable.
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(feature = "nightly", feature(coerce_unsized, unsize))]
#![warn(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

#[cfg(feature = "allocator-api2")]
mod alloc_api;
mod api;
mod block;
mod budget;
mod checked;
mod chunk;
mod error;
mod fill;
#[cfg(all(feature = "std", not(loom)))]
mod global;
mod handle;
mod heap;
mod identity;
mod large;
mod manager;
mod pool;
mod pool_box;
#[cfg(feature = "serde")]
mod save;
#[cfg(all(feature = "std", not(loom)))]
mod segment_map;
#[cfg(feature = "std")]
mod segments;
#[cfg(all(feature = "std", not(loom)))]
mod shared;
mod size_class;
mod source;
mod stats;
mod store;
mod sync;
mod table;
#[cfg(feature = "std")]
mod thread;

pub use block::Block;
pub use error::Error;
#[cfg(all(feature = "std", not(loom)))]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
pub use global::Global;
pub use handle::Handle;
pub use manager::{Builder, MemoryManager};
pub use pool_box::PoolBox;
#[cfg(all(feature = "std", not(loom)))]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
pub use shared::{SharedBox, SharedBuilder, SharedManager};

/// The two kinds of box: [`PoolBox`] is a `PoolBox<'m, T, C, Local>`,
/// [`SharedBox`] a `PoolBox<'m, T, C, Shared>`.
pub mod kind {
    pub use crate::pool_box::{Kind, Local, Shared};
}
/// The typed stores behind [`Handle`]s: views for hot loops and the
/// iterators of [`MemoryManager::iter`], [`iter_mut`](MemoryManager::iter_mut)
/// and [`drain`](MemoryManager::drain).
pub mod handles {
    pub use crate::handle::{Drain, Iter, IterMut, Store, StoreMut};
}
pub use size_class::{
    natural_align, ClassTable, DefaultClasses, FineClasses, SizeClasses, WideClasses, MAX_CLASSES,
    MAX_CLASS_SIZE,
};
pub use stats::{ClassLeaks, ClassStats, HandleStats, Leaks, Stats, SystemStats};

/// The operations guide's examples run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../docs/operations.md")]
struct OperationsGuide;

/// The structuring guide's examples run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../docs/structuring.md")]
struct StructuringGuide;

/// The README's examples run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct Readme;
