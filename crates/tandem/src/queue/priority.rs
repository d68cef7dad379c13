//! `PriorityQueue<T>`: Python's `queue.PriorityQueue`, smallest item first.

use std::cmp::Ordering;
use std::panic::{self, AssertUnwindSafe};
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
/// use pytandem::queue::PriorityQueue;
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
/// use pytandem::queue::PriorityQueue;
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
/// # Floats as priorities
/// `f64` is not `Ord` (NaN compares with nothing), so `PriorityQueue<(f64, T)>` does not
/// compile where Python would accept `q.put((0.5, job))`. Wrap the float in a type ordered
/// by [`f64::total_cmp`] (a total order: -0.0 before 0.0, NaN after every number), or use a
/// crate such as `ordered-float`:
/// ```
/// use std::cmp::Ordering;
/// use pytandem::queue::PriorityQueue;
///
/// #[derive(Debug, Clone, Copy, PartialEq)]
/// struct Priority(f64);
/// impl Eq for Priority {}
/// impl Ord for Priority {
///     fn cmp(&self, other: &Self) -> Ordering { self.0.total_cmp(&other.0) }
/// }
/// impl PartialOrd for Priority {
///     fn partial_cmp(&self, other: &Self) -> Option<Ordering> { Some(self.cmp(other)) }
/// }
///
/// let q = PriorityQueue::new();
/// q.put_many([(Priority(2.5), "b"), (Priority(-1.0), "a"), (Priority(f64::NAN), "c")]).unwrap();
/// let order: Vec<_> = q.try_iter().map(|(_, name)| name).collect();
/// assert_eq!(order, ["a", "b", "c"]);
/// ```
/// (Deriving `PartialEq` keeps `NaN != NaN`; the queue orders by `Ord` alone, so that is
/// harmless here.)
///
/// # Differences from Python
/// As for [`Queue`](super::Queue), plus: ties are FIFO (Python compares the rest of the
/// tuple, and raises `TypeError` if that is not comparable — here `T: Ord` is checked at
/// compile time).
///
/// # Panics
/// An `Ord` implementation that panics inside `put` or `get` propagates its panic, and the
/// queue stays consistent: its lock is released, a `get` that panics takes nothing (the item
/// stays queued), a `put` that panics leaves its item queued and counted (as a finished
/// `put` would), so every item put is got exactly once and `join` returns once each is
/// marked done. Only the order of the items is unspecified after such a panic (the heap
/// could not finish comparing). Python's `heapq` can lose the popped item instead.
///
/// # Fairness
/// As [`Queue`](super::Queue)'s: waiting getters and putters are served first come, first
/// served, with hand-off. A promised getter takes the smallest item queued when it runs.
///
/// # Memory
/// Each queued item carries an 8-byte sequence number (for FIFO ties) in a binary heap
/// (a `Vec`; the sift steps swap, so a panicking `Ord` never leaves a hole in it).
pub struct PriorityQueue<T> {
    core: Arc<Core<Prio<T>>>,
}

/// The priority policy: a binary min-heap ordered by (item, arrival).
pub(crate) struct Prio<T> {
    /// A binary max-heap by `Entry`'s (reversed) order: the next item is at index 0.
    heap: Vec<Entry<T>>,
    next_seq: u64,
}

/// A queued item and its arrival number.
struct Entry<T> {
    item: T,
    seq: u64,
}

impl<T: Ord> Ord for Entry<T> {
    /// Reversed, so the max-heap pops the smallest item, then the earliest.
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

impl<T: Ord> Prio<T> {
    /// Moves the entry at `i` up to its place. Steps are swaps: if a comparison panics,
    /// every entry is still in the heap.
    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.heap[i] <= self.heap[parent] {
                break;
            }
            self.heap.swap(i, parent);
            i = parent;
        }
    }

    /// Moves the entry at `i` down to its place (swaps, as `sift_up`).
    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let left = 2 * i + 1;
            if left >= n {
                break;
            }
            let right = left + 1;
            let child = if right < n && self.heap[right] > self.heap[left] {
                right
            } else {
                left
            };
            if self.heap[child] <= self.heap[i] {
                break;
            }
            self.heap.swap(i, child);
            i = child;
        }
    }

    /// Appends without comparing: after a panicking `Ord`, to give an item back.
    fn push_unordered(&mut self, item: T) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry { item, seq });
    }
}

impl<T: Ord> Policy for Prio<T> {
    type Item = T;
    const MAY_PANIC: bool = true;

    /// If `Ord` panics, the item stays in the heap (the engine counts it as put).
    #[inline]
    fn push(&mut self, item: T) {
        self.push_unordered(item);
        self.sift_up(self.heap.len() - 1);
    }

    /// If `Ord` panics, nothing is taken: the item goes back, first in line.
    #[inline]
    fn pop(&mut self) -> Option<T> {
        let last = self.heap.len().checked_sub(1)?;
        self.heap.swap(0, last);
        let top = self.heap.pop()?;
        if self.heap.len() > 1 {
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| self.sift_down(0))) {
                self.heap.push(top);
                let last = self.heap.len() - 1;
                self.heap.swap(0, last);
                panic::resume_unwind(payload);
            }
        }
        Some(top.item)
    }

    /// All or nothing: if `Ord` panics, the items taken so far go back.
    fn pop_into(&mut self, out: &mut Vec<T>, n: usize) {
        let start = out.len();
        let popped = panic::catch_unwind(AssertUnwindSafe(|| {
            for _ in 0..n {
                match self.pop() {
                    Some(item) => out.push(item),
                    None => break,
                }
            }
        }));
        if let Err(payload) = popped {
            for item in out.drain(start..) {
                self.push_unordered(item);
            }
            panic::resume_unwind(payload);
        }
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
            heap: Vec::new(),
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

    thread_local!(static ARMED2: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });

    /// An `Ord` that panics while armed (on this thread).
    #[derive(PartialEq, Eq, Debug)]
    struct Armed(u8);
    impl PartialOrd for Armed {
        fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
            Some(self.cmp(o))
        }
    }
    impl Ord for Armed {
        fn cmp(&self, o: &Self) -> Ordering {
            if ARMED2.with(|a| a.get()) {
                panic!("Ord panics");
            }
            self.0.cmp(&o.0)
        }
    }

    fn armed<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
        ARMED2.with(|a| a.set(true));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        ARMED2.with(|a| a.set(false));
        r
    }

    /// Takes every item, marks each done, and checks that `join` then returns.
    fn drain_and_join(q: &PriorityQueue<Armed>) -> Vec<u8> {
        let got: Vec<u8> = q.try_iter().map(|a| a.0).collect();
        for _ in &got {
            q.task_done().unwrap();
        }
        assert_eq!(q.unfinished_tasks(), 0, "every item put was got once");
        assert!(q.join_timeout(std::time::Duration::ZERO));
        got
    }

    /// A `get` whose comparison panics takes nothing: the item stays queued (it used to be
    /// dropped while still counted unfinished, so `join` never returned).
    #[test]
    fn panicking_ord_in_get_loses_nothing() {
        let q = PriorityQueue::new();
        q.put_many([3, 1, 2].map(Armed)).unwrap();
        assert!(armed(|| q.get()).is_err());
        assert!(armed(|| q.try_get_many(2)).is_err());
        assert_eq!(q.len(), 3);
        let mut got = drain_and_join(&q);
        got.sort();
        assert_eq!(got, [1, 2, 3]);
    }

    /// A `put` whose comparison panics leaves its item queued and counted (it used to be
    /// in the heap but not counted: one more item to get than unfinished tasks).
    #[test]
    fn panicking_ord_in_put_keeps_counts() {
        let q = PriorityQueue::new();
        q.put(Armed(1)).unwrap();
        assert!(armed(|| q.put(Armed(2))).is_err());
        assert!(armed(|| q.put_many([3, 4].map(Armed))).is_err());
        assert_eq!(q.len(), q.unfinished_tasks());
        let got = drain_and_join(&q);
        assert!(got.contains(&1) && got.contains(&2), "{got:?}");
    }
}
