//! The validators allocate nothing: a counting allocator sees no
//! allocation while they run.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use library_ref::{is_image_hash, is_library_pull_ref, is_library_push_ref, is_ref_part};

struct Counting;
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn validators_do_not_allocate() {
    let inputs = [
        "library://entity/collection/container:tag",
        "entity/collection/container:t1,t2",
        "library://image",
        "a/b/c/d",
        "abc-123",
        "sha256.e50a30881ace3d5944f5661d222db7bee5296be9e4dc7c1fcb7604bcae926e88",
        "sif.5574b72c-7705-49cc-874e-424fc3b78116",
        "",
    ];
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    let mut matched = 0;
    for s in inputs {
        matched += is_library_pull_ref(s) as usize
            + is_library_push_ref(s) as usize
            + is_ref_part(s) as usize
            + is_image_hash(s) as usize;
    }
    let after = ALLOCATIONS.load(Ordering::SeqCst);
    assert_eq!(after - before, 0, "validators allocated");
    // 2 + 1 + 1 + 0 + 2 + 3 + 3 + 0: hashes are also valid ref parts.
    assert_eq!(matched, 12);
}
