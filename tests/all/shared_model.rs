//! Random programs on three threads against a model: each thread allocates
//! boxes of four sizes (8, 64 and 512 bytes, and 800 — above every class),
//! drops some, sends some to the next thread and takes what was sent to
//! it. Every value is checked where it is seen; once the threads are joined
//! the manager's live counts per class equal the boxes still held, and
//! after those are dropped (remote frees, from this thread) nothing is live
//! and every heap is consistent. proptest generates the programs; the
//! scheduler interleaves them differently on every run (and under Miri,
//! with its seeds).

use std::sync::mpsc;
use std::thread;

use memory_mgr::{SharedBox, SharedManager};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Alloc(u8),
    Drop(usize),
    Send(usize),
    Recv,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..4).prop_map(Op::Alloc),
        2 => any::<usize>().prop_map(Op::Drop),
        2 => any::<usize>().prop_map(Op::Send),
        1 => Just(Op::Recv),
    ]
}

/// A box of one of the four sizes, every word holding its tag.
enum Boxed<'m> {
    B8(SharedBox<'m, [u64; 1]>),
    B64(SharedBox<'m, [u64; 8]>),
    B512(SharedBox<'m, [u64; 64]>),
    B800(SharedBox<'m, [u64; 100]>),
}

impl Boxed<'_> {
    fn kind(&self) -> usize {
        match self {
            Boxed::B8(_) => 0,
            Boxed::B64(_) => 1,
            Boxed::B512(_) => 2,
            Boxed::B800(_) => 3,
        }
    }

    /// Asserts every word holds the same tag.
    fn check(&self) {
        let words: &[u64] = match self {
            Boxed::B8(b) => &b[..],
            Boxed::B64(b) => &b[..],
            Boxed::B512(b) => &b[..],
            Boxed::B800(b) => &b[..],
        };
        assert!(words.iter().all(|&w| w == words[0]), "a value changed");
    }
}

fn alloc<'m>(mm: &'m SharedManager, kind: u8, tag: u64) -> Boxed<'m> {
    match kind {
        0 => Boxed::B8(mm.alloc([tag; 1])),
        1 => Boxed::B64(mm.alloc([tag; 8])),
        2 => Boxed::B512(mm.alloc([tag; 64])),
        _ => Boxed::B800(mm.alloc([tag; 100])),
    }
}

/// Runs one program; panics on any disagreement.
fn run(programs: &[Vec<Op>]) {
    let mut mm = SharedManager::new();
    let threads = programs.len();
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..threads).map(|_| mpsc::channel::<Boxed<'_>>()).unzip();
    let (held, rxs): (Vec<Vec<Boxed<'_>>>, Vec<_>) = thread::scope(|s| {
        let handles: Vec<_> = rxs
            .into_iter()
            .enumerate()
            .map(|(t, rx)| {
                let tx = txs[(t + 1) % threads].clone();
                let (mm, ops) = (&mm, &programs[t]);
                s.spawn(move || {
                    let mut mine: Vec<Boxed<'_>> = Vec::new();
                    for (step, op) in ops.iter().enumerate() {
                        match *op {
                            Op::Alloc(kind) => {
                                mine.push(alloc(mm, kind, (t * 1_000_000 + step) as u64));
                            }
                            Op::Drop(i) if !mine.is_empty() => {
                                let b = mine.swap_remove(i % mine.len());
                                b.check();
                            }
                            Op::Send(i) if !mine.is_empty() => {
                                let b = mine.swap_remove(i % mine.len());
                                tx.send(b).expect("the receiver outlives the senders");
                            }
                            _ => {
                                while let Ok(b) = rx.try_recv() {
                                    b.check();
                                    mine.push(b);
                                }
                            }
                        }
                    }
                    (mine, rx)
                })
            })
            .collect();
        drop(txs);
        handles.into_iter().map(|h| h.join().unwrap()).unzip()
    });
    // What is still held: each thread's boxes and what waits in the channels.
    let mut left: Vec<Boxed<'_>> = held.into_iter().flatten().collect();
    for rx in rxs {
        left.extend(rx.try_iter());
    }
    let mut model = [0usize; 4];
    for b in &left {
        b.check();
        model[b.kind()] += 1;
    }
    let s = mm.stats();
    if cfg!(feature = "pass-through") {
        assert_eq!(s.live(), left.len(), "{s}");
    } else {
        let pooled = [
            s.classes[0].live_boxes,
            s.classes[3].live_boxes,
            s.classes[6].live_boxes,
        ];
        assert_eq!(pooled, [model[0], model[1], model[2]], "{s}");
        assert_eq!(s.system.live_boxes, model[3], "{s}");
    }
    drop(left); // remote frees into the (exited) threads' heaps
    assert_eq!(mm.stats().live(), 0);
    assert!(mm.is_consistent());
}

#[test]
fn random_programs_on_three_threads_agree_with_the_model() {
    let len = if cfg!(miri) { 12 } else { 120 };
    let cases = if cfg!(miri) { 2 } else { 200 };
    let programs = prop::collection::vec(prop::collection::vec(op(), 0..len), 3);
    crate::model::check_programs(cases, programs, |p| run(p));
}
