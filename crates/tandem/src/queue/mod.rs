//! Python's `queue` module: blocking queues for threads, with shutdown instead of sentinels.
//!
//! ```
//! use tandem::queue::Queue;
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
//! What lives where:
//! - [`Queue`] (`fifo.rs`), [`LifoQueue`] (`lifo.rs`), [`PriorityQueue`] (`priority.rs`),
//!   [`SimpleQueue`] (`simple.rs`): the public types, each a buffer policy plus its
//!   constructors and docs.
//! - `fifo_core.rs` over `list.rs`: the lock-free engine of `Queue` and `SimpleQueue` —
//!   a list of blocks claimed by compare-and-swap, with blocking, hand-off to parked
//!   waiters, bounds, timeouts, `task_done`/`join` and shutdown around it.
//! - `core.rs`: the lock-based engine of `LifoQueue` and `PriorityQueue` (their orders
//!   need a lock), with the same vocabulary and its own wake-up protocol.
//! - `api.rs`: the public methods every type shares, generated once.
//! - `error.rs`: one error type per operation; failed puts hand their item back.
//! - `iter.rs`: iterators that run until the queue is shut down and drained.

mod api;
pub(crate) mod core;
mod error;
mod fifo;
mod fifo_core;
mod iter;
mod lifo;
mod list;
mod priority;
mod simple;

pub use error::{
    GetTimeoutError, PutError, PutTimeoutError, ShutDown, TaskDoneError, TryGetError, TryPutError,
};
pub use fifo::Queue;
pub use iter::{IntoIter, Iter, TryIter};
pub use lifo::LifoQueue;
pub use priority::PriorityQueue;
pub use simple::SimpleQueue;
