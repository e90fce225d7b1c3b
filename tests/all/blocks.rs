//! Checked `Block` handles: typed access, zeroing, liveness.

use memory_mgr::{Error, MemoryManager};

use crate::{assert_no_leak, n};

#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Header {
    kind: u32,
    len: u32,
    seq: u64,
}

#[test]
fn typed_reads_and_writes_round_trip() {
    let mm = MemoryManager::new();
    let b = mm.alloc_block(64).unwrap();
    let h = Header {
        kind: 7,
        len: 48,
        seq: 123_456,
    };
    mm.write(b, 0, h).unwrap();
    mm.write(b, 16, [1.0f32, 2.0, 3.0]).unwrap();
    mm.write(b, 61, [9u8, 8, 7]).unwrap(); // unaligned, up to the last byte
    assert_eq!(mm.read::<Header>(b, 0).unwrap(), h);
    assert_eq!(mm.read::<[f32; 3]>(b, 16).unwrap(), [1.0, 2.0, 3.0]);
    assert_eq!(mm.read::<[u8; 3]>(b, 61).unwrap(), [9, 8, 7]);
    mm.free(b).unwrap();
}

#[test]
fn out_of_bounds_access_is_refused_and_writes_nothing() {
    let mm = MemoryManager::new();
    let b = mm.alloc_block(16).unwrap();
    let size = mm.block_size(b).unwrap();
    assert_eq!(
        mm.write(b, size - 3, 0u32),
        Err(Error::OutOfBounds {
            offset: size - 3,
            len: 4,
            size
        })
    );
    assert_eq!(
        mm.read::<u8>(b, usize::MAX),
        Err(Error::OutOfBounds {
            offset: usize::MAX,
            len: 1,
            size
        })
    );
    assert!(matches!(
        mm.write_bytes(b, 1, &vec![1; size]),
        Err(Error::OutOfBounds { .. })
    ));
    let mut all = vec![1u8; size];
    mm.read_bytes(b, 0, &mut all).unwrap();
    assert!(all.iter().all(|&x| x == 0), "a refused write changed bytes");
    mm.free(b).unwrap();
}

#[test]
fn blocks_start_zeroed_even_when_reused() {
    let mm = MemoryManager::new();
    for size in [8, 100, 512, 600, 5000] {
        let b = mm.alloc_block(size).unwrap();
        mm.write_bytes(b, 0, &vec![0xAB; mm.block_size(b).unwrap()])
            .unwrap();
        mm.free(b).unwrap();
        let c = mm.alloc_block(size).unwrap();
        let mut bytes = vec![1u8; mm.block_size(c).unwrap()];
        mm.read_bytes(c, 0, &mut bytes).unwrap();
        assert!(bytes.iter().all(|&x| x == 0), "size {size} not zeroed");
        mm.free(c).unwrap();
    }
}

#[test]
fn liveness_follows_alloc_and_free() {
    let mm = MemoryManager::new();
    let b = mm.alloc_block(200).unwrap();
    assert!(mm.is_live(b));
    mm.free(b).unwrap();
    assert!(!mm.is_live(b));
    assert_eq!(mm.read::<u8>(b, 0), Err(Error::UseAfterFree));
    assert_eq!(mm.write(b, 0, 1u8), Err(Error::UseAfterFree));
    let mut buf = [0u8; 4];
    assert_eq!(mm.read_bytes(b, 0, &mut buf), Err(Error::UseAfterFree));
    assert_eq!(mm.write_bytes(b, 0, &buf), Err(Error::UseAfterFree));
}

#[test]
fn raw_pointer_access_matches_checked_access() {
    let mm = MemoryManager::new();
    let b = mm.alloc_block(32).unwrap();
    // SAFETY: `b` is live and 32 bytes long.
    unsafe {
        mm.block_ptr(b)
            .unwrap()
            .cast::<u8>()
            .as_ptr()
            .add(5)
            .write(42)
    };
    assert_eq!(mm.read::<u8>(b, 5).unwrap(), 42);
    assert_eq!(mm.block_ptr(b).unwrap().len(), mm.block_size(b).unwrap());
    mm.free(b).unwrap();
}

#[test]
fn many_blocks_across_chunks_balance() {
    assert_no_leak(|| {
        let mm = MemoryManager::new();
        let count = n(50_000, 400);
        let blocks: Vec<_> = (0..count)
            .map(|i| mm.alloc_block(1 + i % 64).unwrap())
            .collect();
        for (i, b) in blocks.iter().enumerate() {
            mm.write(*b, 0, i as u8).unwrap();
        }
        assert_eq!(mm.stats().live(), count);
        assert!(mm.stats().classes[0].chunks > 1 || cfg!(miri) || crate::PASS_THROUGH);
        for (i, b) in blocks.iter().enumerate() {
            assert_eq!(mm.read::<u8>(*b, 0).unwrap(), i as u8);
            mm.free(*b).unwrap();
        }
        assert_eq!(mm.stats().live(), 0);
    });
}

#[test]
fn block_handles_are_small_send_and_sync() {
    fn send_sync<T: Send + Sync + Copy>() {}
    send_sync::<memory_mgr::Block>();
    assert_eq!(std::mem::size_of::<memory_mgr::Block>(), 16);
}
