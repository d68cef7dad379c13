//! `SimpleQueue<T>`: Python's `queue.SimpleQueue`, an unbounded FIFO without task tracking.

use std::sync::Arc;

use super::api::common_api;
use super::fifo_core::FifoCore;

/// An unbounded first-in, first-out queue without `task_done`/`join`: Python's
/// `queue.SimpleQueue`, plus shutdown, batch forms and iteration.
///
/// `put` never waits (the queue is unbounded); it fails only after shutdown. Having no task
/// count to keep, this is the lightest queue.
///
/// | Python | tandem |
/// | --- | --- |
/// | `q = queue.SimpleQueue()` | `let q = SimpleQueue::new();` |
/// | `q.put(item)` / `q.put_nowait(item)` | `q.put(item)?` (`Err` only after shutdown) |
/// | `q.get()`, `q.get_nowait()`, `q.get(timeout=t)` | `get()`, `try_get()`, `get_timeout(t)` |
/// | `q.qsize()`, `q.empty()` | `len()`, `is_empty()` |
/// | — | `shutdown(immediate)`, `put_many`, `get_many`, `for item in &q` |
///
/// # Examples
/// ```
/// use pytandem::queue::SimpleQueue;
///
/// let q = SimpleQueue::new();
/// let words: Vec<String> = std::thread::scope(|s| {
///     let consumer = s.spawn(|| q.iter().collect());
///     for w in ["simple", "and", "fast"] {
///         q.put(w.to_string()).unwrap();
///     }
///     q.shutdown(false);
///     consumer.join().unwrap()
/// });
/// assert_eq!(words, ["simple", "and", "fast"]);
/// ```
///
/// # Differences from Python
/// Python's `SimpleQueue` has no shutdown; this one has [`Queue`](super::Queue)'s
/// (`shutdown(immediate)`, with the same semantics), so consumers can stop without
/// sentinels. Python's guarantee that `put` is reentrant (safe from `__del__` or signal
/// handlers) has no Rust counterpart.
///
/// # Fairness, performance, memory
/// As [`Queue`](super::Queue)'s, which has the same lock-free engine: items leave in FIFO
/// order, parked getters are served in arrival order with hand-off, an uncontended put or
/// get takes no lock and makes no system call, and memory follows the queue's length.
pub struct SimpleQueue<T> {
    core: Arc<FifoCore<T>>,
}

impl<T> SimpleQueue<T> {
    /// An empty queue. Python: `queue.SimpleQueue()`.
    pub fn new() -> Self {
        SimpleQueue {
            core: Arc::new(FifoCore::new(usize::MAX, false)),
        }
    }
}

impl<T> Default for SimpleQueue<T> {
    fn default() -> Self {
        SimpleQueue::new()
    }
}

common_api!(SimpleQueue, []);

#[cfg(all(test, not(tandem_loom)))]
mod tests {
    use super::*;

    #[test]
    fn fifo_without_tasks() {
        let q = SimpleQueue::new();
        q.put_many(0..5).unwrap();
        assert_eq!(q.len(), 5);
        assert_eq!(q.get().unwrap(), 0);
        assert_eq!(q.get_many(2).unwrap(), vec![1, 2]);
        assert_eq!(q.core.unfinished_tasks(), 0, "no task accounting");
        assert_eq!(q.shutdown(true), vec![3, 4]);
        assert!(q.put(9).is_err());
    }
}
