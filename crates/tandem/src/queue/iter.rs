//! Iterating a queue: consumers loop until it is shut down and drained — no sentinel values.

use std::fmt;
use std::iter::FusedIterator;

use super::error::{ShutDown, TryGetError};

pub(crate) mod sealed {
    // The sealed-trait pattern: public so it may bound the public iterator impls, unnameable
    // outside the crate so no one else implements it.
    #![allow(unreachable_pub)]

    use super::{ShutDown, TryGetError};

    /// A queue an iterator can take items from. Implemented by the four queue types only.
    pub trait Source {
        /// The queued item.
        type Item;
        /// A blocking get.
        fn source_get(&self) -> Result<Self::Item, ShutDown>;
        /// A non-blocking get.
        fn source_try_get(&self) -> Result<Self::Item, TryGetError>;
    }
}

use sealed::Source;

/// A blocking iterator over a borrowed queue: each `next()` is a `get()`; it ends once the
/// queue is shut down and drained. Made by `queue.iter()` or `for item in &queue`.
///
/// Python: `for item in iter(q.get, None)` with a `None` sentinel — here the shutdown is the
/// end of the stream, so every value (even one that looks like a sentinel) is data.
pub struct Iter<'a, Q> {
    pub(crate) queue: &'a Q,
}

impl<Q: Source> Iterator for Iter<'_, Q> {
    type Item = Q::Item;

    #[inline]
    fn next(&mut self) -> Option<Q::Item> {
        self.queue.source_get().ok()
    }
}

// Once `get` has failed with `ShutDown` it fails forever: the queue never reopens.
impl<Q: Source> FusedIterator for Iter<'_, Q> {}

impl<Q> fmt::Debug for Iter<'_, Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Iter { .. }")
    }
}

/// A non-blocking iterator over a borrowed queue: yields what is queued right now and ends
/// at the first `try_get()` that finds it empty (or shut down and drained). Made by
/// `queue.try_iter()`.
pub struct TryIter<'a, Q> {
    pub(crate) queue: &'a Q,
}

impl<Q: Source> Iterator for TryIter<'_, Q> {
    type Item = Q::Item;

    #[inline]
    fn next(&mut self) -> Option<Q::Item> {
        self.queue.source_try_get().ok()
    }
}

impl<Q> fmt::Debug for TryIter<'_, Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TryIter { .. }")
    }
}

/// A blocking iterator owning a queue handle (`for item in queue`): like [`Iter`], and the
/// handle is dropped with the iterator.
pub struct IntoIter<Q> {
    pub(crate) queue: Q,
}

impl<Q: Source> Iterator for IntoIter<Q> {
    type Item = Q::Item;

    #[inline]
    fn next(&mut self) -> Option<Q::Item> {
        self.queue.source_get().ok()
    }
}

impl<Q: Source> FusedIterator for IntoIter<Q> {}

impl<Q> fmt::Debug for IntoIter<Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IntoIter { .. }")
    }
}
