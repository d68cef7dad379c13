//! `PriorityQueue<T>`: Python's `queue.PriorityQueue`, smallest item first.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;

use super::api::{bounded_api, common_api};
use super::core::{checked_bound, python_maxsize, Core, Policy};

/// A priority queue for threads: Python's `queue.PriorityQueue`. `get` takes the smallest
/// item (by `Ord`), like Python's `heapq`; items that compare equal come out in the order
/// they were put (FIFO), which Python does not promise.
///
/// The same API and semantics as [`Queue`](super::Queue) otherwise — bounds, timeouts,
/// batch forms, `task_done`/`join`, shutdown, iteration.
///
/// | Python | tandem |
/// | --- | --- |
/// | `q = queue.PriorityQueue()` | `let q = PriorityQueue::new();` |
/// | `q.put((priority, data))` | `q.put((priority, data))` (tuples order lexicographically) |
/// | largest first: `q.put((-p, data))` | `q.put((std::cmp::Reverse(p), data))` |
/// | `put`, `get`, `*_nowait`, `timeout=`, `task_done`, `join`, `shutdown` | as on [`Queue`](super::Queue) |
///
/// # Examples
/// ```
/// use tandem::queue::PriorityQueue;
///
/// let q = PriorityQueue::new();
/// q.put_many([(2, "write report"), (1, "fix outage"), (3, "tidy desk")]).unwrap();
/// assert_eq!(q.get().unwrap(), (1, "fix outage"));
/// assert_eq!(q.get().unwrap(), (2, "write report"));
/// ```
///
/// Ties keep their arrival order. Tuples compare every field, so to order by priority only,
/// give the item an `Ord` that looks at the priority alone:
/// ```
/// use std::cmp::Ordering;
/// use tandem::queue::PriorityQueue;
///
/// struct Job { priority: u8, name: &'static str }
/// impl Ord for Job {
///     fn cmp(&self, other: &Self) -> Ordering { self.priority.cmp(&other.priority) }
/// }
/// impl PartialOrd for Job {
///     fn partial_cmp(&self, other: &Self) -> Option<Ordering> { Some(self.cmp(other)) }
/// }
/// impl PartialEq for Job {
///     fn eq(&self, other: &Self) -> bool { self.priority == other.priority }
/// }
/// impl Eq for Job {}
///
/// let jobs = PriorityQueue::new();
/// jobs.put(Job { priority: 2, name: "write report" }).unwrap();
/// jobs.put(Job { priority: 1, name: "fix outage" }).unwrap();
/// jobs.put(Job { priority: 2, name: "answer mail" }).unwrap(); // same priority: FIFO
/// let order: Vec<_> = jobs.try_iter().map(|job| job.name).collect();
/// assert_eq!(order, ["fix outage", "write report", "answer mail"]);
/// ```
///
/// # Differences from Python
/// As for [`Queue`](super::Queue), plus: ties are FIFO (Python compares the rest of the
/// tuple, and raises `TypeError` if that is not comparable — here `T: Ord` is checked at
/// compile time).
///
/// # Panics
/// An `Ord` implementation that panics inside `put` or `get` propagates its panic; the queue
/// stays usable (its lock is released), but the item being moved may be lost.
///
/// # Fairness
/// As [`Queue`](super::Queue)'s: waiting getters and putters are served first come, first
/// served, with hand-off. A promised getter takes the smallest item queued when it runs.
///
/// # Memory
/// Each queued item carries an 8-byte sequence number (for FIFO ties) in a binary heap.
pub struct PriorityQueue<T> {
    core: Arc<Core<Prio<T>>>,
}

/// The priority policy: a binary min-heap ordered by (item, arrival).
pub(crate) struct Prio<T> {
    heap: BinaryHeap<Entry<T>>,
    next_seq: u64,
}

/// A queued item and its arrival number.
struct Entry<T> {
    item: T,
    seq: u64,
}

impl<T: Ord> Ord for Entry<T> {
    /// Reversed, so `BinaryHeap` (a max-heap) pops the smallest item, then the earliest.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .item
            .cmp(&self.item)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl<T: Ord> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T: Ord> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<T: Ord> Eq for Entry<T> {}

impl<T: Ord> Policy for Prio<T> {
    type Item = T;

    #[inline]
    fn push(&mut self, item: T) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry { item, seq });
    }

    #[inline]
    fn pop(&mut self) -> Option<T> {
        self.heap.pop().map(|entry| entry.item)
    }

    #[inline]
    fn len(&self) -> usize {
        self.heap.len()
    }

    fn shrink_to_fit(&mut self) {
        self.heap.shrink_to_fit();
    }
}

impl<T: Ord> PriorityQueue<T> {
    /// An unbounded priority queue. Python: `queue.PriorityQueue()`.
    pub fn new() -> Self {
        PriorityQueue::from_bound(usize::MAX)
    }

    /// A priority queue holding at most `maxsize` items: `put` waits while it is full.
    /// Python: `queue.PriorityQueue(maxsize)`.
    ///
    /// # Panics
    /// If `maxsize` is 0. Use [`PriorityQueue::new`], or [`PriorityQueue::with_maxsize`] for
    /// Python's convention.
    #[track_caller]
    pub fn bounded(maxsize: usize) -> Self {
        PriorityQueue::from_bound(checked_bound(maxsize, "PriorityQueue"))
    }

    /// Python's constructor exactly: at most `maxsize` items, where 0 means unbounded.
    pub fn with_maxsize(maxsize: usize) -> Self {
        PriorityQueue::from_bound(python_maxsize(maxsize))
    }

    fn from_bound(maxsize: usize) -> Self {
        let policy = Prio {
            heap: BinaryHeap::new(),
            next_seq: 0,
        };
        PriorityQueue {
            core: Arc::new(Core::new(policy, maxsize)),
        }
    }
}

impl<T: Ord> Default for PriorityQueue<T> {
    /// An unbounded priority queue.
    fn default() -> Self {
        PriorityQueue::new()
    }
}

common_api!(PriorityQueue, [: Ord]);
bounded_api!(PriorityQueue, [: Ord]);

#[cfg(all(test, not(tandem_loom)))]
mod tests {
    use super::*;
    use std::cmp::Reverse;

    #[test]
    fn smallest_first_ties_fifo() {
        let q = PriorityQueue::new();
        for (p, tag) in [(3, 'a'), (1, 'b'), (3, 'c'), (2, 'd'), (1, 'e')] {
            q.put(Key(p, tag)).unwrap();
        }
        let order: String = q.try_iter().map(|k| k.1).collect();
        assert_eq!(order, "bedac");
    }

    /// Compares by priority only, so items with equal priority compare equal.
    struct Key(u8, char);
    impl PartialEq for Key {
        fn eq(&self, o: &Self) -> bool {
            self.0 == o.0
        }
    }
    impl Eq for Key {}
    impl PartialOrd for Key {
        fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
            Some(self.cmp(o))
        }
    }
    impl Ord for Key {
        fn cmp(&self, o: &Self) -> Ordering {
            self.0.cmp(&o.0)
        }
    }

    #[test]
    fn reverse_gives_largest_first_and_shutdown_returns_in_get_order() {
        let q = PriorityQueue::bounded(8);
        q.put_many([5, 1, 9, 3].map(Reverse)).unwrap();
        assert_eq!(q.get().unwrap(), Reverse(9));
        assert_eq!(q.shutdown(true), vec![Reverse(5), Reverse(3), Reverse(1)]);
    }

    #[test]
    fn panicking_ord_leaves_queue_usable() {
        use std::cell::Cell;
        thread_local!(static ARMED: Cell<bool> = const { Cell::new(false) });
        #[derive(PartialEq, Eq)]
        struct Touchy(u8);
        impl PartialOrd for Touchy {
            fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
                Some(self.cmp(o))
            }
        }
        impl Ord for Touchy {
            fn cmp(&self, o: &Self) -> Ordering {
                if ARMED.with(Cell::get) {
                    panic!("boom");
                }
                self.0.cmp(&o.0)
            }
        }
        let q = PriorityQueue::new();
        q.put(Touchy(1)).unwrap();
        ARMED.with(|a| a.set(true));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| q.put(Touchy(2))));
        assert!(r.is_err());
        ARMED.with(|a| a.set(false));
        // The lock was released; the queue still works.
        q.put(Touchy(0)).unwrap();
        assert_eq!(q.get().unwrap().0, 0);
    }
}
