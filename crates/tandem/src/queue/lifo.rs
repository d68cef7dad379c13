//! `LifoQueue<T>`: Python's `queue.LifoQueue`, last in, first out (a blocking stack).

use std::sync::Arc;

use super::api::{bounded_api, common_api};
use super::core::{checked_bound, python_maxsize, Core, Policy};

/// A last-in, first-out queue (a stack) for threads: Python's `queue.LifoQueue`.
///
/// The same API and semantics as [`Queue`](super::Queue) — bounds, timeouts, batch forms,
/// `task_done`/`join`, shutdown, iteration — except that `get` takes the item put most
/// recently.
///
/// | Python | tandem |
/// | --- | --- |
/// | `q = queue.LifoQueue()` | `let q = LifoQueue::new();` |
/// | `q = queue.LifoQueue(maxsize=n)` | `LifoQueue::bounded(n)` (or `with_maxsize(n)`, 0 unbounded) |
/// | `put`, `get`, `*_nowait`, `timeout=`, `task_done`, `join`, `shutdown` | as on [`Queue`](super::Queue) |
///
/// # Examples
/// ```
/// use pytandem::queue::LifoQueue;
///
/// let stack = LifoQueue::new();
/// stack.put_many(["a", "b", "c"]).unwrap();
/// assert_eq!(stack.get().unwrap(), "c");
/// assert_eq!(stack.get_many(10).unwrap(), vec!["b", "a"]);
///
/// // A graceful shutdown lets consumers drain, newest first; an immediate one hands the
/// // remaining items back in the order `get` would have returned them.
/// stack.put_many([1, 2, 3].map(|n| if n > 1 { "x" } else { "y" })).unwrap();
/// assert_eq!(stack.shutdown(true), vec!["x", "x", "y"]);
/// assert!(stack.get().is_err());
/// ```
///
/// # Differences from Python
/// As for [`Queue`](super::Queue): errors hand the item back, `bounded(0)` panics
/// (`with_maxsize(0)` is unbounded), `shutdown(true)` returns the removed items.
///
/// # Fairness
/// As [`Queue`](super::Queue)'s: waiting getters and putters are served first come, first
/// served, with hand-off (an item or slot freed while they wait is promised to the longest
/// waiter). Items leave newest first.
pub struct LifoQueue<T> {
    core: Arc<Core<Lifo<T>>>,
}

/// The LIFO policy: a `Vec` used as a stack.
pub(crate) struct Lifo<T>(Vec<T>);

impl<T> Policy for Lifo<T> {
    type Item = T;

    #[inline]
    fn push(&mut self, item: T) {
        self.0.push(item);
    }

    #[inline]
    fn pop(&mut self) -> Option<T> {
        self.0.pop()
    }

    #[inline]
    fn len(&self) -> usize {
        self.0.len()
    }

    fn shrink_to_fit(&mut self) {
        self.0.shrink_to_fit();
    }

    fn pop_into(&mut self, out: &mut Vec<T>, n: usize) {
        let start = self.0.len() - n.min(self.0.len());
        out.extend(self.0.drain(start..).rev());
    }
}

impl<T> LifoQueue<T> {
    /// An unbounded stack. Python: `queue.LifoQueue()`.
    pub fn new() -> Self {
        LifoQueue::from_bound(usize::MAX)
    }

    /// A stack holding at most `maxsize` items: `put` waits while it is full.
    /// Python: `queue.LifoQueue(maxsize)`.
    ///
    /// # Panics
    /// If `maxsize` is 0. Use [`LifoQueue::new`], or [`LifoQueue::with_maxsize`] for
    /// Python's convention.
    #[track_caller]
    pub fn bounded(maxsize: usize) -> Self {
        LifoQueue::from_bound(checked_bound(maxsize, "LifoQueue"))
    }

    /// Python's constructor exactly: at most `maxsize` items, where 0 means unbounded.
    pub fn with_maxsize(maxsize: usize) -> Self {
        LifoQueue::from_bound(python_maxsize(maxsize))
    }

    fn from_bound(maxsize: usize) -> Self {
        LifoQueue {
            core: Arc::new(Core::new(Lifo(Vec::new()), maxsize)),
        }
    }
}

impl<T> Default for LifoQueue<T> {
    /// An unbounded stack.
    fn default() -> Self {
        LifoQueue::new()
    }
}

common_api!(LifoQueue, []);
bounded_api!(LifoQueue, []);

#[cfg(all(test, not(tandem_loom)))]
mod tests {
    use super::*;

    #[test]
    fn lifo_order() {
        let q = LifoQueue::bounded(4);
        q.put_many(0..4).unwrap();
        assert!(q.is_full());
        assert!(q.try_put(4).unwrap_err().is_full());
        assert_eq!(q.get().unwrap(), 3);
        assert_eq!(q.try_get_many(2).unwrap(), vec![2, 1]);
        assert_eq!(q.shutdown(true), vec![0]);
        assert_eq!(q.unfinished_tasks(), 3);
    }

    #[test]
    #[should_panic(expected = "LifoQueue::bounded(0)")]
    fn bounded_zero_panics() {
        let _ = LifoQueue::<u8>::bounded(0);
    }
}
