//! `Queue<T>`: Python's `queue.Queue`, first in, first out.

use std::sync::Arc;

use super::api::{bounded_api, common_api};
use super::core::{checked_bound, python_maxsize};
use super::fifo_core::FifoCore;

/// A first-in, first-out queue for threads: Python's `queue.Queue`, unbounded or bounded,
/// with `task_done`/`join` and shutdown.
///
/// | Python | tandem |
/// | --- | --- |
/// | `q = queue.Queue()` | `let q = Queue::new();` |
/// | `q = queue.Queue(maxsize=n)` | `Queue::bounded(n)` (or `Queue::with_maxsize(n)`, where 0 is unbounded) |
/// | `q.put(item)` | `q.put(item)?` (`Err` only after shutdown, with the item) |
/// | `q.put_nowait(item)` / `q.put(item, block=False)` | `q.try_put(item)` |
/// | `q.put(item, timeout=t)` | `q.put_timeout(item, t)` |
/// | `q.get()` | `q.get()?` (`Err(ShutDown)` once shut down and drained) |
/// | `q.get_nowait()` | `q.try_get()` |
/// | `q.get(timeout=t)` | `q.get_timeout(t)` |
/// | — | `q.put_many(items)`, `q.get_many(n)` |
/// | `q.task_done()` | `q.task_done()?` (`Err` where Python raises `ValueError`) |
/// | `q.join()` | `q.join()`, `q.join_timeout(t)` |
/// | `q.shutdown(immediate)` | `q.shutdown(immediate)` → the removed items |
/// | `q.qsize()`, `q.empty()`, `q.full()`, `q.maxsize` | `len()`, `is_empty()`, `is_full()`, `maxsize()` |
/// | `while (item := q.get()) is not None:` | `for item in &q` (ends at shutdown) |
///
/// # Examples
/// The seeds' producer/consumer, with a shutdown instead of a `None` sentinel:
/// ```
/// use pytandem::queue::Queue;
///
/// let q = Queue::bounded(16);
/// let total: u64 = std::thread::scope(|s| {
///     let consumer = s.spawn(|| q.iter().sum::<u64>()); // until shut down and drained
///     for i in 1..=100 {
///         q.put(i).unwrap();
///     }
///     q.shutdown(false); // graceful: the consumer drains what is queued, then stops
///     consumer.join().unwrap()
/// });
/// assert_eq!(total, 5050);
/// ```
///
/// A work queue with `task_done`/`join`:
/// ```
/// use pytandem::queue::Queue;
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// let q = Queue::new();
/// let done = AtomicU64::new(0);
/// std::thread::scope(|s| {
///     for _ in 0..3 {
///         s.spawn(|| {
///             for job in &q {
///                 done.fetch_add(job, Ordering::Relaxed);
///                 q.task_done().unwrap();
///             }
///         });
///     }
///     q.put_many(1..=10).unwrap();
///     q.join(); // every job marked done
///     assert_eq!(done.load(Ordering::Relaxed), 55);
///     q.shutdown(false); // let the workers leave their loops
/// });
/// ```
///
/// # Sharing
/// `Queue` is a handle around an `Arc`: `clone()` is cheap and every clone is the same queue;
/// the queue and its items are freed when the last handle drops. It can also be shared by
/// reference (`&Queue<T>` in scoped threads): it is `Send + Sync` when `T: Send`, and
/// only then — items that cannot cross threads cannot cross through a queue either:
/// ```compile_fail
/// use std::rc::Rc;
/// use pytandem::queue::Queue;
///
/// let q = Queue::new();
/// q.put(Rc::new(1)).unwrap(); // Rc is not Send...
/// std::thread::scope(|s| {
///     s.spawn(|| q.get()); // ...so this does not compile
/// });
/// ```
///
/// # Differences from Python
/// - Errors are returned, not raised, and a failed put hands its item back inside the error.
/// - `Queue::bounded(0)` panics (a bounded queue must hold at least one item); use
///   `Queue::new()`, or `Queue::with_maxsize(0)` for Python's `maxsize=0` (unbounded).
/// - `shutdown(true)` returns the removed items instead of discarding them.
/// - `join_timeout` exists (Python's `join` has no timeout).
/// - Parked waiters are served first come, first served (see Fairness); Python may let a
///   newcomer overtake a thread that was woken for an item.
///
/// # Fairness
/// Items always leave in FIFO order: any one consumer sees each producer's items in the
/// order they were put. Waiters parked in `get` are served in arrival order with hand-off:
/// an item put while getters are parked (on an empty queue) is given straight to the one
/// that has waited longest, and a thread arriving later cannot take it (`try_get` finds the
/// queue empty); likewise, on a full bounded queue, a get first moves the longest-parked
/// putter's item in, so the slot it frees goes to that putter and not to a latecomer.
///
/// What the lock-free engine gives up against a lock: a waiter that is still on its way to
/// park when the item (or slot) comes is woken to look again, and a thread arriving at that
/// very instant may take the item first; the waiter then parks again, at the back of the
/// line. Under steady load waiters are parked and served in order, so none starves.
///
/// # Performance
/// The queue is lock-free: a put claims a slot with one compare-and-swap on the producers'
/// cache line and writes its item; a get does the same on the consumers' line. Neither
/// takes a lock or makes a system call unless it has to wait (or wake a waiter), and an
/// idle consumer is parked, using no CPU. See `tandem bench queue` and BENCHMARKS.md.
///
/// # Memory
/// An empty queue is one allocation of under 256 bytes. Items live in blocks of 31 slots,
/// each slot the item plus 8 bytes; a block is allocated as puts reach it and freed as gets
/// drain past it, so memory follows the queue's length (a drained queue keeps one block)
/// and [`shrink_to_fit`](Queue::shrink_to_fit) has nothing to give back.
pub struct Queue<T> {
    core: Arc<FifoCore<T>>,
}

impl<T> Queue<T> {
    /// An unbounded queue. Python: `queue.Queue()`.
    pub fn new() -> Self {
        Queue::from_bound(usize::MAX)
    }

    /// A queue holding at most `maxsize` items: `put` waits while it is full.
    /// Python: `queue.Queue(maxsize)`.
    ///
    /// # Panics
    /// If `maxsize` is 0: a bounded queue needs room for one item. Use [`Queue::new`] for an
    /// unbounded queue, or [`Queue::with_maxsize`] for Python's convention.
    #[track_caller]
    pub fn bounded(maxsize: usize) -> Self {
        Queue::from_bound(checked_bound(maxsize, "Queue"))
    }

    /// Python's constructor exactly: at most `maxsize` items, where 0 means unbounded.
    pub fn with_maxsize(maxsize: usize) -> Self {
        Queue::from_bound(python_maxsize(maxsize))
    }

    fn from_bound(maxsize: usize) -> Self {
        Queue {
            core: Arc::new(FifoCore::new(maxsize, true)),
        }
    }
}

impl<T> Default for Queue<T> {
    /// An unbounded queue.
    fn default() -> Self {
        Queue::new()
    }
}

common_api!(Queue, []);
bounded_api!(Queue, []);

#[cfg(all(test, not(tandem_loom)))]
mod tests {
    use super::*;

    #[test]
    fn fifo_order_and_bounds() {
        let q = Queue::bounded(3);
        for i in 0..3 {
            q.put(i).unwrap();
        }
        assert!(q.is_full());
        assert_eq!(q.maxsize(), Some(3));
        assert_eq!(q.try_put(9).unwrap_err().into_inner(), 9);
        assert_eq!(q.get_many(2).unwrap(), vec![0, 1]);
        assert_eq!(q.get().unwrap(), 2);
        assert!(q.is_empty());
        assert_eq!(Queue::<u8>::with_maxsize(0).maxsize(), None);
        assert_eq!(Queue::<u8>::default().maxsize(), None);
    }

    #[test]
    #[should_panic(expected = "Queue::bounded(0)")]
    fn bounded_zero_panics() {
        let _ = Queue::<u8>::bounded(0);
    }

    /// The handle and its one allocation stay under 256 bytes; a queued item costs only its
    /// own size (the ring buffer has no per-item header).
    #[test]
    fn size_of_empty_queue() {
        // The `Arc`'s allocation: two counts, padded to the engine's alignment, then it.
        let align = std::mem::align_of::<FifoCore<u64>>();
        let arc_header = (2 * std::mem::size_of::<usize>()).next_multiple_of(align);
        let total =
            std::mem::size_of::<Queue<u64>>() + arc_header + std::mem::size_of::<FifoCore<u64>>();
        assert!(total <= 256, "empty Queue takes {total} bytes");
        assert_eq!(
            std::mem::size_of::<Queue<u64>>(),
            std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn clones_share_and_last_drop_frees() {
        let item = Arc::new(());
        let q = Queue::new();
        let q2 = q.clone();
        q.put(Arc::clone(&item)).unwrap();
        assert_eq!(q2.len(), 1);
        drop(q);
        assert_eq!(Arc::strong_count(&item), 2);
        drop(q2);
        assert_eq!(
            Arc::strong_count(&item),
            1,
            "dropping the last handle drops the items"
        );
    }

    #[test]
    fn debug_shows_state() {
        let q = Queue::<String>::bounded(2);
        q.put("x".into()).unwrap();
        assert_eq!(
            format!("{q:?}"),
            "Queue { len: 1, maxsize: Some(2), is_shutdown: false }"
        );
    }
}
