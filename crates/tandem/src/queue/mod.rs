//! Python's `queue` module: blocking queues for threads, with shutdown instead of sentinels.
//!
//! ```
//! use pytandem::queue::Queue;
//!
//! // Python: q = queue.Queue(maxsize=4); a producer; consumers; a None per consumer to stop.
//! let q = Queue::bounded(4);
//! let consumed: usize = std::thread::scope(|s| {
//!     let consumers: Vec<_> = (0..2).map(|_| s.spawn(|| q.iter().count())).collect();
//!     q.put_many(0..100).unwrap();
//!     q.shutdown(false); // consumers drain what is left, then their loops end
//!     consumers.into_iter().map(|c| c.join().unwrap()).sum()
//! });
//! assert_eq!(consumed, 100);
//! ```
//!
//! - [`Queue`] (first in, first out), [`LifoQueue`] (last in, first out), [`PriorityQueue`]
//!   (smallest first) and [`SimpleQueue`] (unbounded, no `task_done`/`join`): the same
//!   methods and the same semantics for blocking, bounds, timeouts, `task_done`/`join` and
//!   shutdown; only the order of the items differs.
//! - Errors: one type per operation; a put that fails or times out hands its item back.
//! - Iterators ([`Iter`], [`TryIter`], [`IntoIter`]) run until the queue is shut down and
//!   drained (or, for `try_iter`, until it is empty).

// What lives where: `fifo.rs`, `lifo.rs`, `priority.rs`, `simple.rs` hold the public types
// with their constructors and docs; `fifo_core.rs` over `list.rs` is the lock-free engine of
// `Queue` and `SimpleQueue` (a list of blocks claimed by compare-and-swap, with blocking,
// hand-off to parked waiters, bounds, timeouts, `task_done`/`join` and shutdown around it);
// `core.rs` the lock-based engine of `LifoQueue` and `PriorityQueue` (their orders need a
// lock), over a buffer policy each; `api.rs` generates the public methods every type shares;
// `error.rs` the error types; `iter.rs` the iterators.

mod api;
mod common;
pub(crate) mod core;
mod error;
mod fifo;
mod fifo_core;
mod iter;
mod lifo;
mod list;
mod priority;
mod simple;
mod waiters;

// Python's names, for rustdoc search: an alias on an item re-exported from a private module
// is lost, so aliases go on the `pub use` lines.
#[doc(alias = "ValueError")]
pub use error::TaskDoneError;
#[doc(alias = "Empty", alias = "queue.Empty")]
pub use error::{GetTimeoutError, TryGetError};
pub use error::{PutError, ShutDown};
#[doc(alias = "Full", alias = "queue.Full")]
pub use error::{PutTimeoutError, TryPutError};
pub use fifo::Queue;
pub use iter::{IntoIter, Iter, TryIter};
pub use lifo::LifoQueue;
pub use priority::PriorityQueue;
pub use simple::SimpleQueue;
