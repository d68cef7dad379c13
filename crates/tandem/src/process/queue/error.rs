//! The process queues' errors: [`PutError`] (the item comes back), [`GetError`] and
//! [`TasksLost`].

use std::fmt;

#[cfg(doc)]
use super::JoinableQueue;

/// Why a put failed; the item comes back in every case ([`PutError::into_inner`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum PutError<T> {
    /// The queue is full (`try_put`).
    Full(T),
    /// The queue stayed full until the timeout (`put_timeout`).
    Timeout(T),
    /// The queue is shut down (Python 3.13's `ShutDown`).
    ShutDown(T),
    /// The item could not be encoded, or carries a process handle (a `Connection`, a `Lock`,
    /// …): handles cannot live in shared memory; send those over a `Connection`.
    Encode {
        /// The item.
        item: T,
        /// Why.
        message: String,
    },
    /// The encoded item is larger than the ring can ever hold.
    TooLarge {
        /// The item.
        item: T,
        /// Its encoded size in bytes.
        bytes: usize,
        /// The most one item may take: the ring's capacity less a 4-byte prefix.
        limit: usize,
    },
}

impl<T> PutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            PutError::Full(t) | PutError::Timeout(t) | PutError::ShutDown(t) => t,
            PutError::Encode { item, .. } | PutError::TooLarge { item, .. } => item,
        }
    }

    /// Whether the queue was full (no wait, or until the timeout).
    pub fn is_full(&self) -> bool {
        matches!(self, PutError::Full(_) | PutError::Timeout(_))
    }

    /// Whether the queue was shut down.
    pub fn is_shutdown(&self) -> bool {
        matches!(self, PutError::ShutDown(_))
    }

    pub(super) fn map<U>(self, f: impl FnOnce(T) -> U) -> PutError<U> {
        match self {
            PutError::Full(t) => PutError::Full(f(t)),
            PutError::Timeout(t) => PutError::Timeout(f(t)),
            PutError::ShutDown(t) => PutError::ShutDown(f(t)),
            PutError::Encode { item, message } => PutError::Encode {
                item: f(item),
                message,
            },
            PutError::TooLarge { item, bytes, limit } => PutError::TooLarge {
                item: f(item),
                bytes,
                limit,
            },
        }
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("the queue is full; the item is handed back"),
            PutError::Timeout(_) => {
                f.write_str("the queue stayed full until the timeout; the item is handed back")
            }
            PutError::ShutDown(_) => f.write_str(
                "the queue is shut down and takes no more items; the item is handed back",
            ),
            PutError::Encode { message, .. } => {
                write!(
                    f,
                    "the item could not be encoded ({message}); it is handed back"
                )
            }
            PutError::TooLarge { bytes, limit, .. } => write!(
                f,
                "the item encodes to {bytes} bytes, more than the queue's ring can hold ({limit}): \
                 build the queue with a larger capacity_bytes, or send large data over a \
                 Connection; the item is handed back"
            ),
        }
    }
}

impl<T: fmt::Debug> std::error::Error for PutError<T> {}

/// Why a get returned no item.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GetError {
    /// The queue was empty (`try_get`).
    Empty,
    /// The queue stayed empty until the timeout.
    Timeout,
    /// The queue is shut down and drained (Python 3.13's `ShutDown`).
    ShutDown,
    /// The item could not be decoded as this queue's type (it was taken off the queue):
    /// both ends must use the same item type.
    Decode(String),
}

impl GetError {
    /// Whether the queue is shut down and drained.
    pub fn is_shutdown(&self) -> bool {
        matches!(self, GetError::ShutDown)
    }

    /// Whether the queue was empty (no wait, or until the timeout).
    pub fn is_empty(&self) -> bool {
        matches!(self, GetError::Empty | GetError::Timeout)
    }
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetError::Empty => f.write_str("the queue is empty"),
            GetError::Timeout => f.write_str("the queue stayed empty until the timeout"),
            GetError::ShutDown => {
                f.write_str("the queue is shut down and drained: no item will come")
            }
            GetError::Decode(e) => write!(
                f,
                "an item could not be decoded ({e}); it was taken off the queue: both ends must \
                 use the same item type"
            ),
        }
    }
}

impl std::error::Error for GetError {}

/// A [`JoinableQueue::join`] whose tasks were abandoned by consumer processes that died: the
/// join returned because none is left to wait for, but these were never marked done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TasksLost {
    /// How many tasks dead consumers took and never finished, since the queue was made.
    pub count: u64,
}

impl fmt::Display for TasksLost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} task(s) were taken by consumer processes that died before task_done(): join \
             returned without them",
            self.count
        )
    }
}

impl std::error::Error for TasksLost {}
