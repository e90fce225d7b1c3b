//! Message buffers through raw `Block`s: a header and a payload written and
//! read with typed, checked `bytemuck` access — and what misuse returns.
//!
//! Run it with `cargo run --release --example raw_blocks`.

use memory_mgr::{Block, Error, MemoryManager};

/// A wire header: plain old data, so it can be copied in and out of a block.
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Header {
    kind: u16,
    flags: u16,
    len: u32,
    seq: u64,
}

const HEADER: usize = std::mem::size_of::<Header>();

/// Builds a message: header + payload in one block sized to fit.
fn encode(mm: &MemoryManager, kind: u16, seq: u64, payload: &[u8]) -> Result<Block, Error> {
    let b = mm.alloc_block(HEADER + payload.len())?;
    let len = u32::try_from(payload.len()).expect("small payloads");
    mm.write(
        b,
        0,
        Header {
            kind,
            flags: 0,
            len,
            seq,
        },
    )?;
    mm.write_bytes(b, HEADER, payload)?;
    Ok(b)
}

/// Reads a message back.
fn decode(mm: &MemoryManager, b: Block) -> Result<(Header, Vec<u8>), Error> {
    let h: Header = mm.read(b, 0)?;
    let mut payload = vec![0; h.len as usize];
    mm.read_bytes(b, HEADER, &mut payload)?;
    Ok((h, payload))
}

fn main() -> Result<(), Error> {
    let mm = MemoryManager::new();
    let mut queue = Vec::new();
    for (seq, text) in ["hello", "a somewhat longer message body", &"x".repeat(700)]
        .into_iter()
        .enumerate()
    {
        let b = encode(&mm, 1, seq as u64, text.as_bytes())?;
        println!(
            "message {seq}: {:>3} payload bytes -> block of {:>3} bytes ({})",
            text.len(),
            mm.block_size(b)?,
            if b.is_pooled() {
                "pooled"
            } else {
                "system allocator"
            }
        );
        queue.push(b);
    }
    for b in &queue {
        let (h, payload) = decode(&mm, *b)?;
        println!(
            "decoded seq {} kind {}: {:?}...",
            h.seq,
            h.kind,
            String::from_utf8_lossy(&payload[..payload.len().min(12)])
        );
    }

    println!("\nwhat misuse returns:");
    let first = queue[0];
    let (first_size, first_at) = (mm.block_size(first)?, mm.block_ptr(first)?);
    println!(
        "read past the end        -> {:?}",
        mm.read::<u64>(first, first_size - 4).unwrap_err()
    );
    for b in queue.drain(..) {
        mm.free(b)?;
    }
    println!(
        "free a freed message     -> {:?}",
        mm.free(first).unwrap_err()
    );
    println!(
        "read a freed message     -> {:?}",
        decode(&mm, first).unwrap_err()
    );
    let reused = mm.alloc_block(first_size)?;
    println!(
        "slot reused ({}); stale free still -> {:?}, new owner live: {}",
        if mm.block_ptr(reused)?.cast::<u8>() == first_at.cast::<u8>() {
            "same address"
        } else {
            "other address"
        },
        mm.free(first).unwrap_err(),
        mm.is_live(reused)
    );
    let other = MemoryManager::new();
    println!(
        "free in another manager  -> {:?}",
        other.free(reused).unwrap_err()
    );
    mm.free(reused)?;
    assert_eq!(mm.stats().live(), 0);
    println!("\nall messages freed; live blocks: {}", mm.stats().live());
    Ok(())
}
