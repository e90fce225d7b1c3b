//! Regression tests for the findings of the adversarial review (issue 10):
//! each fails on the code before its fix. The findings whose fix makes the
//! misuse not compile (pinning in a short-lived manager, a covariant class
//! table) are `compile_fail` doc tests on `PoolBox::into_pin`,
//! `PoolBox::pin_in`, `MemoryManager::pin` and `MemoryManager`.

use memory_mgr::{Error, MemoryManager, PoolBox};

use crate::{assert_no_leak, assert_still_works, with_limit, PASS_THROUGH};

/// Finding 7: a reservation no system could give fails at once, before a
/// single chunk is allocated, as `Vec::try_reserve` does.
#[test]
fn an_absurd_reserve_fails_before_allocating() {
    assert_no_leak(|| {
        let mm = MemoryManager::new();
        for count in [usize::MAX, usize::MAX / 2, isize::MAX as usize / 4] {
            assert!(matches!(
                mm.reserve::<u64>(count),
                Err(Error::LayoutOverflow { .. })
            ));
            assert!(matches!(
                mm.reserve_blocks(8, count),
                Err(Error::LayoutOverflow { .. })
            ));
        }
        assert_eq!(mm.stats().reserved_bytes(), 0);
        assert_still_works(&mm);
    });
}

/// Finding 8: when the system refuses a typed pool's new chunk, the error
/// names the chunk that was refused, not the value.
#[test]
fn a_refused_chunk_is_reported_with_its_own_size() {
    if PASS_THROUGH {
        return; // no chunks: each value is its own (small) system request
    }
    assert_no_leak(|| {
        let mm = MemoryManager::new();
        let r = with_limit(0, || mm.try_alloc(1u64).map(PoolBox::into_inner));
        assert_eq!(
            r,
            Err(Error::OutOfMemory {
                size: 16 << 10,
                align: 1 << 20
            })
        );
        let r = with_limit(0, || mm.alloc_block(8).map(|_| ()));
        assert_eq!(
            r,
            Err(Error::OutOfMemory {
                size: 16 << 10,
                align: 8
            })
        );
        assert_still_works(&mm);
    });
}

/// A page-sized, page-aligned value.
#[repr(C, align(4096))]
struct Page([u8; 4096]);

/// Finding 10: an over-aligned allocation above the classes costs its size
/// plus a small record, not its alignment again.
#[test]
fn over_aligned_large_values_do_not_pay_their_alignment_twice() {
    assert_no_leak(|| {
        let mm = MemoryManager::builder().budget(8 << 10).build().unwrap();
        let p = mm.try_alloc_with(|| Page([1; 4096])).expect("fits the budget");
        assert_eq!(PoolBox::as_ptr(&p) as usize % 4096, 0);
        assert_eq!(p.0[4095], 1);
        let bytes = mm.stats().system.bytes;
        assert!(bytes <= 4096 + 64, "a 4 KiB value held {bytes} bytes");
        drop(p);
        assert_eq!(mm.stats().system.bytes, 0);
    });
}

/// Finding 10 through the `Allocator`: 64 bytes at 1 MiB alignment cost 64
/// bytes (and fit a 64 KiB budget), as `alloc_block_aligned` does.
#[cfg(feature = "allocator-api2")]
#[test]
fn an_over_aligned_allocator_request_costs_its_size() {
    use allocator_api2::alloc::Allocator;
    use std::alloc::Layout;
    assert_no_leak(|| {
        let mm = MemoryManager::builder().budget(64 << 10).build().unwrap();
        let layout = Layout::from_size_align(64, 1 << 20).unwrap();
        let p = (&mm).allocate(layout).expect("fits the budget");
        assert_eq!(p.cast::<u8>().as_ptr() as usize % (1 << 20), 0);
        let bytes = mm.stats().system.bytes;
        assert!(bytes <= 64 + 64, "64 bytes held {bytes} bytes");
        // SAFETY: allocated just above with `layout`, freed once.
        unsafe { (&mm).deallocate(p.cast(), layout) };
        assert_eq!(mm.stats().system.bytes, 0);
        let b = mm.alloc_block_aligned(64, 1 << 20).unwrap();
        assert_eq!(mm.stats().system.bytes, 64);
        mm.free(b).unwrap();
    });
}

/// Finding 9: dropping a manager with live allocations never panics, even
/// when the debug leak report cannot be written (stderr a closed pipe).
/// The test runs itself in a child process whose stderr is closed.
#[test]
#[cfg_attr(miri, ignore)] // starts a process
fn a_leak_report_to_a_closed_stderr_does_not_panic() {
    use std::io::Read as _;
    use std::process::{Command, Stdio};
    const CHILD: &str = "MEMORY_MGR_CLOSED_STDERR_CHILD";
    if std::env::var_os(CHILD).is_some() {
        // The child: wait until the parent has closed the read end of our
        // stderr (it closes our stdin after that), then leak and drop.
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        let mm = MemoryManager::new();
        let _leaked = mm.alloc_block(8).unwrap();
        PoolBox::leak(mm.alloc(1u32));
        drop(mm);
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "soundness::a_leak_report_to_a_closed_stderr_does_not_panic",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take()); // any write to the child's stderr now fails
    drop(child.stdin.take()); // let the child go on
    let status = child.wait().unwrap();
    assert!(status.success(), "the child ended with {status}");
}
