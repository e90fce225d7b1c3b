use memory_mgr::{Block, MemoryManager};
#[inline(never)]
pub fn probe_alloc(mm: &MemoryManager) -> Block {
    mm.alloc_block(64).unwrap()
}
#[inline(never)]
pub fn probe_free(mm: &MemoryManager, b: Block) {
    mm.free(b).unwrap()
}
#[inline(never)]
pub fn probe_write(mm: &MemoryManager, b: Block, p: [u64; 8]) {
    mm.write(b, 0, p).unwrap()
}
fn main() {
    let mm = MemoryManager::new();
    let b = probe_alloc(&mm);
    probe_write(&mm, b, [std::hint::black_box(1); 8]);
    probe_free(&mm, b);
}
