//! `Queue`, `JoinableQueue` and `SimpleQueue` across processes (Python's
//! `multiprocessing.Queue`, `JoinableQueue`, `SimpleQueue`): a ring of length-prefixed
//! records in shared memory, with no feeder thread.
//!
//! - `mod.rs`: the public [`Queue`], [`JoinableQueue`], [`SimpleQueue`] and [`QueueBuilder`].
//! - `ring.rs`: the shared ring, its lock, journal and waiting (the engine all three use).
//! - `error.rs`: [`PutError`], [`GetError`], [`TasksLost`].

mod error;
mod ring;

pub use error::{GetError, PutError, TasksLost};
use ring::{Engine, QueueState, PREFIX};

use super::codec;
use super::shared::Shared;
use crate::wait::Deadline;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The ring's size unless [`QueueBuilder::capacity_bytes`] says otherwise: 16 MiB. Pages
/// are allocated only as the ring first reaches them.
pub const DEFAULT_CAPACITY_BYTES: usize = 16 << 20;

/// Settings for a process queue.
#[derive(Clone, Debug)]
pub struct QueueBuilder {
    maxsize: usize,
    capacity: usize,
}

impl Default for QueueBuilder {
    fn default() -> Self {
        QueueBuilder {
            maxsize: 0,
            capacity: DEFAULT_CAPACITY_BYTES,
        }
    }
}

impl QueueBuilder {
    /// The most items it holds (Python's `maxsize`; 0: no item bound).
    pub fn maxsize(mut self, maxsize: usize) -> Self {
        self.maxsize = maxsize;
        self
    }

    /// The ring's size in bytes (default [`DEFAULT_CAPACITY_BYTES`]): an item's encoding
    /// plus 4 bytes must fit, and puts wait while the ring is full even without `maxsize`.
    pub fn capacity_bytes(mut self, bytes: usize) -> Self {
        self.capacity = bytes;
        self
    }

    fn engine<T>(&self, joinable: bool) -> io::Result<Engine<T>> {
        if self.capacity <= PREFIX as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a queue's capacity_bytes must exceed {PREFIX} (each item takes a 4-byte \
                     prefix plus its encoding); got {}",
                    self.capacity
                ),
            ));
        }
        let (maxsize, capacity) = (self.maxsize as u64, self.capacity as u64);
        let shared = Shared::create_zeroed(
            |s: &QueueState| {
                s.capacity.store(capacity, Ordering::Relaxed);
                s.maxsize.store(maxsize, Ordering::Relaxed);
                s.joinable.store(u32::from(joinable), Ordering::Relaxed);
                s.item_tag
                    .store(super::shm::type_tag::<T>(), Ordering::Relaxed);
            },
            self.capacity,
        )?;
        Ok(Engine {
            shared,
            _items: PhantomData,
        })
    }

    /// Builds a [`Queue`].
    pub fn build<T>(&self) -> io::Result<Queue<T>> {
        Ok(Queue {
            engine: self.engine(false)?,
        })
    }

    /// Builds a [`JoinableQueue`].
    pub fn build_joinable<T>(&self) -> io::Result<JoinableQueue<T>> {
        Ok(JoinableQueue {
            engine: self.engine(true)?,
        })
    }
}

/// The methods every process queue has.
macro_rules! queue_methods {
    () => {
        /// Puts `item`, waiting while the queue is full (Python's `put(item)`).
        ///
        /// # Errors
        /// [`PutError`], holding the item: shut down, or it cannot be encoded or is too large.
        pub fn put(&self, item: T) -> Result<(), PutError<T>> {
            self.engine.put(item, Some(Deadline::NEVER))
        }

        /// Puts `item` if there is room now (Python's `put_nowait`).
        #[doc(alias = "put_nowait")]
        pub fn try_put(&self, item: T) -> Result<(), PutError<T>> {
            self.engine.put(item, None)
        }

        /// Puts `item`, waiting at most `timeout` for room (Python's `put(item, timeout=t)`).
        pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
            self.engine.put(item, Some(Deadline::after(timeout)))
        }

        /// Puts every item in order, as many per lock as fit, waiting whenever the queue is
        /// full; on failure the error holds the items not put.
        pub fn put_many<I: IntoIterator<Item = T>>(
            &self,
            items: I,
        ) -> Result<(), PutError<Vec<T>>> {
            self.engine.put_many(items.into_iter().collect())
        }

        /// Takes the next item, waiting while the queue is empty (Python's `get()`).
        ///
        /// # Errors
        /// [`GetError::ShutDown`] once shut down and drained; [`GetError::Decode`] if the
        /// item is not a `T`.
        pub fn get(&self) -> Result<T, GetError> {
            self.engine.get(Some(Deadline::NEVER))
        }

        /// Takes the next item if there is one (Python's `get_nowait`).
        #[doc(alias = "get_nowait")]
        pub fn try_get(&self) -> Result<T, GetError> {
            self.engine.get(None)
        }

        /// Takes the next item, waiting at most `timeout` (Python's `get(timeout=t)`).
        pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
            self.engine.get(Some(Deadline::after(timeout)))
        }

        /// Takes up to `n` items at once, waiting for the first one (never for more).
        pub fn get_many(&self, n: usize) -> Result<Vec<T>, GetError> {
            if n == 0 {
                return Ok(Vec::new());
            }
            Engine::decode(self.engine.get_records(n, Some(Deadline::NEVER))?)
        }

        /// Takes up to `n` items, waiting at most `timeout` for the first one.
        pub fn get_many_timeout(&self, n: usize, timeout: Duration) -> Result<Vec<T>, GetError> {
            if n == 0 {
                return Ok(Vec::new());
            }
            Engine::decode(self.engine.get_records(n, Some(Deadline::after(timeout)))?)
        }

        /// Items queued now (Python's `qsize()`): a snapshot.
        #[doc(alias = "qsize")]
        pub fn len(&self) -> usize {
            self.engine.state().items.load(Ordering::Relaxed) as usize
        }

        /// Whether no item is queued now (Python's `empty()`).
        #[doc(alias = "empty")]
        pub fn is_empty(&self) -> bool {
            self.len() == 0
        }

        /// Shuts the queue down (Python 3.13's `shutdown(immediate)`): puts fail from now
        /// on; gets drain what is queued, then fail. With `immediate`, the queued items are
        /// removed at once and handed back (their tasks count as done), and every blocked
        /// caller in every process wakes.
        pub fn shutdown(&self, immediate: bool) -> Vec<T> {
            self.engine.shutdown(immediate)
        }

        /// Whether [`shutdown`](Self::shutdown) was called.
        pub fn is_shutdown(&self) -> bool {
            self.engine.state().is_shut()
        }

        /// The items, each taken with `get`, until the queue is shut down and drained (an
        /// item that fails to decode ends the iteration).
        pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
            std::iter::from_fn(move || self.get().ok())
        }
    };
}

/// Methods of the bounded queue types.
macro_rules! bounded_methods {
    () => {
        /// The item bound (Python's `maxsize`), `None` if there is none.
        pub fn maxsize(&self) -> Option<usize> {
            match self.engine.state().maxsize.load(Ordering::Relaxed) {
                0 => None,
                m => Some(m as usize),
            }
        }

        /// Whether the item bound is reached now (Python's `full()`).
        #[doc(alias = "full")]
        pub fn is_full(&self) -> bool {
            self.maxsize().is_some_and(|m| self.len() >= m)
        }

        /// The ring's size in bytes.
        pub fn capacity_bytes(&self) -> usize {
            self.engine.state().capacity.load(Ordering::Relaxed) as usize
        }
    };
}

/// Python's `multiprocessing.Queue(maxsize)`: a FIFO queue between processes, in shared
/// memory.
///
/// The vocabulary of [`queue::Queue`](crate::queue::Queue) — `put`, `try_put`,
/// `put_timeout`, `put_many`, `get`, `try_get`, `get_timeout`, `get_many`, `len`,
/// `is_empty`, `is_full`, `shutdown(immediate)` handing the items back, iteration until
/// shut down — for serde items. Clone the handle for threads; pass it in a child's
/// arguments or over a [`Connection`](super::Connection) for processes.
///
/// Unlike Python's, there is no feeder thread and no pipe: a put copies the encoded item
/// into a ring in shared memory and returns, so a child that puts and exits never waits for
/// a reader (Python documents a `join()` deadlock there), and an item is either in the
/// queue or handed back — never lost in a buffer. A process killed in `put` or `get` never
/// leaves the queue locked or torn (see the module's notes in the source: journaled
/// changes). Differences: an item must be encoded by serde and carry no process handle;
/// the ring's byte capacity ([`QueueBuilder::capacity_bytes`], 16 MiB by default) also
/// bounds the queue, so even an "unbounded" queue makes a put wait when the ring is full;
/// an item larger than the ring is refused ([`PutError::TooLarge`]), not split; no FIFO
/// hand-off between waiting processes (a waiting process may be overtaken by one that just
/// arrived).
///
/// # Examples
/// ```
/// pytandem::process::init();
/// use pytandem::process::{Process, Queue};
///
/// fn produce(q: Queue<String>) {
///     for i in 0..3 {
///         q.put(format!("item {i}")).unwrap();
///     }
/// }
///
/// let q = Queue::new()?;
/// Process::spawn(produce, q.clone())?.join()?;
/// q.shutdown(false); // no more puts: the loop below ends once the queue is drained
/// let got: Vec<String> = q.iter().collect();
/// assert_eq!(got, ["item 0", "item 1", "item 2"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Queue<T> {
    engine: Engine<T>,
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// An unbounded queue (bounded only by its ring's bytes).
    pub fn new() -> io::Result<Self> {
        QueueBuilder::default().build()
    }

    /// A queue of at most `maxsize` items (Python's `Queue(maxsize)`; 0: unbounded).
    pub fn bounded(maxsize: usize) -> io::Result<Self> {
        QueueBuilder::default().maxsize(maxsize).build()
    }

    queue_methods!();
    bounded_methods!();
}

impl Queue<()> {
    /// Settings: `maxsize` and the ring's byte capacity; `build::<T>()` or
    /// `build_joinable::<T>()` then.
    pub fn builder() -> QueueBuilder {
        QueueBuilder::default()
    }
}

/// Python's `multiprocessing.JoinableQueue(maxsize)`: a process [`Queue`] that counts
/// unfinished tasks: every put adds one, [`task_done`](JoinableQueue::task_done) removes
/// one, [`join`](JoinableQueue::join) waits for none to be left.
///
/// A consumer process that dies holding tasks it got but never finished does not hang
/// `join`: its tasks are written off (at once if it was a tandem child of this process,
/// otherwise within about 10 ms of a joiner noticing), and `join` then reports them as
/// [`TasksLost`]. Call `task_done` in the process that got the item (that is whose tasks are
/// counted per process).
///
/// # Examples
/// ```
/// pytandem::process::init();
/// use pytandem::process::{JoinableQueue, Process};
///
/// fn worker(q: JoinableQueue<u32>) {
///     while let Ok(n) = q.get() {
///         let _ = n * 2;
///         q.task_done().unwrap();
///     }
/// }
///
/// let q = JoinableQueue::new()?;
/// let w = Process::spawn(worker, q.clone())?;
/// q.put_many(0..10).map_err(|e| e.to_string())?;
/// q.join()?; // every task done
/// q.shutdown(false);
/// w.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct JoinableQueue<T> {
    engine: Engine<T>,
}

impl<T: Serialize + DeserializeOwned> JoinableQueue<T> {
    /// An unbounded joinable queue.
    pub fn new() -> io::Result<Self> {
        QueueBuilder::default().build_joinable()
    }

    /// A joinable queue of at most `maxsize` items.
    pub fn bounded(maxsize: usize) -> io::Result<Self> {
        QueueBuilder::default().maxsize(maxsize).build_joinable()
    }

    queue_methods!();
    bounded_methods!();

    /// Marks one got item done (Python's `task_done()`).
    ///
    /// # Errors
    /// [`TaskDoneError`](crate::queue::TaskDoneError) if no task is unfinished (Python's
    /// `ValueError`).
    pub fn task_done(&self) -> Result<(), crate::queue::TaskDoneError> {
        self.engine.task_done()
    }

    /// Waits until every item put has been marked done (Python's `join()`).
    ///
    /// # Errors
    /// [`TasksLost`] if some were never done because their consumer process died; the
    /// wait is over all the same.
    pub fn join(&self) -> Result<(), TasksLost> {
        self.engine.join(Deadline::NEVER).expect("no deadline")
    }

    /// [`join`](JoinableQueue::join) for at most `timeout`: `None` if tasks are still
    /// unfinished then.
    pub fn join_timeout(&self, timeout: Duration) -> Option<Result<(), TasksLost>> {
        self.engine.join(Deadline::after(timeout))
    }

    /// Items put and not yet done (Python's `unfinished_tasks`).
    pub fn unfinished_tasks(&self) -> usize {
        self.engine.state().unfinished.load(Ordering::Relaxed) as usize
    }
}

/// Python's `multiprocessing.SimpleQueue`: an unbounded process queue with `put`, `get`,
/// `is_empty` (Python's `empty()`) and the rest of [`Queue`]'s vocabulary. The same engine
/// as [`Queue`] (Python's is a pipe with a lock; tandem's has no pipe at all).
///
/// ```
/// use pytandem::process::SimpleQueue;
///
/// let q = SimpleQueue::new()?;
/// q.put(1u8).unwrap();
/// assert_eq!(q.get().unwrap(), 1);
/// assert!(q.is_empty());
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct SimpleQueue<T> {
    engine: Engine<T>,
}

impl<T: Serialize + DeserializeOwned> SimpleQueue<T> {
    /// A new, empty queue with the default ring.
    pub fn new() -> io::Result<Self> {
        Ok(SimpleQueue {
            engine: QueueBuilder::default().engine(false)?,
        })
    }

    queue_methods!();
}

macro_rules! queue_handle {
    ($($name:ident),*) => {$(
        impl<T> Clone for $name<T> {
            /// Another handle to the same queue.
            fn clone(&self) -> Self {
                $name { engine: self.engine.clone() }
            }
        }

        /// The handle travels to another process with its shared memory segment.
        impl<T> Serialize for $name<T> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.engine.shared.serialize(s)
            }
        }

        impl<'de, T> serde::Deserialize<'de> for $name<T> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let shared: Shared<QueueState, u8> = Shared::deserialize(d)?;
                if shared.state().item_tag.load(Ordering::Relaxed) != super::shm::type_tag::<T>() {
                    return Err(codec::handle_de_error(
                        "the queue holds items of another type than this end names: both ends \
                         must use the same item type",
                    ));
                }
                Ok($name { engine: Engine { shared, _items: PhantomData } })
            }
        }

        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let s = self.engine.shared.state();
                f.debug_struct(stringify!($name))
                    .field("len", &s.items.load(Ordering::Relaxed))
                    .field("shutdown", &s.is_shut())
                    .finish_non_exhaustive()
            }
        }
    )*};
}

queue_handle!(Queue, JoinableQueue, SimpleQueue);
