//! Memory targets, measured with a counting allocator: an empty queue (handle + its one
//! allocation) takes at most 256 bytes, and a FIFO queue adds at most 16 bytes per queued
//! item beyond the item itself.
//!
//! One test function: the allocator's count is global to this test binary.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use pytandem::queue::{LifoQueue, PriorityQueue, Queue, SimpleQueue};

/// Bytes currently allocated through the global allocator.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to `System` unchanged; only counts the sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract for `dealloc` is passed on as is.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: the caller's contract for `realloc` is passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bytes allocated while `f` runs and still live when it returns (with its result).
fn retained<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = LIVE.load(Ordering::Relaxed);
    let r = f();
    let after = LIVE.load(Ordering::Relaxed);
    (r, (after - before).max(0) as usize)
}

#[test]
fn memory_targets() {
    let handle = std::mem::size_of::<Queue<u64>>();

    // Empty queues: one allocation each, handle included, at most 256 bytes.
    let (q, bytes) = retained(Queue::<u64>::new);
    assert!(
        handle + bytes <= 256,
        "empty Queue: {} bytes",
        handle + bytes
    );
    drop(q);
    let (q, bytes) = retained(|| Queue::<u64>::bounded(1024));
    assert!(
        handle + bytes <= 256,
        "empty bounded Queue: {} bytes",
        handle + bytes
    );
    drop(q);
    let (q, bytes) = retained(LifoQueue::<u64>::new);
    assert!(
        handle + bytes <= 256,
        "empty LifoQueue: {} bytes",
        handle + bytes
    );
    drop(q);
    let (q, bytes) = retained(PriorityQueue::<u64>::new);
    assert!(
        handle + bytes <= 256,
        "empty PriorityQueue: {} bytes",
        handle + bytes
    );
    drop(q);
    let (q, bytes) = retained(SimpleQueue::<u64>::new);
    assert!(
        handle + bytes <= 256,
        "empty SimpleQueue: {} bytes",
        handle + bytes
    );
    drop(q);

    // A FIFO holding n items: at most 16 bytes per item beyond the item, at any fill level
    // (the ring buffer grows by doubling, so its slack is at most one item per item).
    for n in [1_000usize, 3_000, 100_000, 150_000] {
        let (q, bytes) = retained(|| {
            let q = Queue::<u64>::new();
            for i in 0..n {
                q.put(i as u64).unwrap();
            }
            q
        });
        let overhead = bytes as f64 / n as f64 - std::mem::size_of::<u64>() as f64;
        assert!(
            overhead <= 16.0,
            "{n} queued u64s cost {bytes} bytes: {overhead:.1} bytes per item beyond the item"
        );
        assert_eq!(q.len(), n);
        drop(q);
    }

    // A lock-based queue (LIFO, priority) keeps its largest burst's capacity until
    // `shrink_to_fit`, which gives it back and keeps the items (and their order). The FIFO
    // queues free each block of their list as they drain past it: after the burst they hold
    // at most two blocks (the one being read and the one being written), with no call.
    macro_rules! burst_then_shrink {
        ($Q:ident) => {{
            let (q, kept) = retained(|| {
                let q = $Q::<u64>::new();
                q.put_many(0..100_000u64).unwrap();
                let _ = q.get_many(99_990).unwrap();
                q
            });
            let fifo = matches!(stringify!($Q), "Queue" | "SimpleQueue");
            if fifo {
                assert!(
                    kept <= 2 * 1_024,
                    "{}: a drained FIFO frees its blocks as it goes ({kept} bytes kept)",
                    stringify!($Q)
                );
            } else {
                assert!(
                    kept >= 100_000 * 8,
                    "{}: a drained queue keeps its burst's capacity ({kept} bytes)",
                    stringify!($Q)
                );
            }
            let before = LIVE.load(Ordering::Relaxed);
            q.shrink_to_fit();
            let freed = before - LIVE.load(Ordering::Relaxed);
            if !fifo {
                assert!(
                    freed as usize >= kept - 1_024,
                    "{}: shrink_to_fit freed {freed} of {kept} bytes",
                    stringify!($Q)
                );
            }
            assert_eq!(q.len(), 10);
            let mut rest = q.get_many(10).unwrap();
            rest.sort_unstable();
            let expected: Vec<u64> = match stringify!($Q) {
                "LifoQueue" => (0..10).collect(),
                _ => (99_990..100_000).collect(),
            };
            assert_eq!(rest, expected, "{}: items kept", stringify!($Q));
        }};
    }
    burst_then_shrink!(Queue);
    burst_then_shrink!(LifoQueue);
    burst_then_shrink!(PriorityQueue);
    burst_then_shrink!(SimpleQueue);

    // Dropping a queue frees everything, items included.
    let ((), bytes) = retained(|| {
        let q = Queue::new();
        q.put_many((0..10_000).map(|i| vec![i as u8; 16])).unwrap();
        drop(q);
    });
    assert_eq!(bytes, 0, "a dropped queue leaks {bytes} bytes");
}
