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
//! - `core.rs`: the engine they share — locking, blocking, bounds, timeouts,
//!   `task_done`/`join`, shutdown — and its wake-up protocol.
//! - `api.rs`: the public methods every type shares, generated once.
//! - `error.rs`: one error type per operation; failed puts hand their item back.
//! - `iter.rs`: iterators that run until the queue is shut down and drained.

mod api;
pub(crate) mod core;
mod error;
mod fifo;
mod iter;
mod lifo;
mod priority;
mod simple;

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
