//! The queue errors: one type per operation, each handing back what the caller put in.
//!
//! | Python raises | tandem returns |
//! | --- | --- |
//! | `queue.ShutDown` from `put` | [`PutError`] (the item inside) |
//! | `queue.Full` from `put_nowait` | [`TryPutError::Full`] (the item inside) |
//! | `queue.Full` from `put(timeout=t)` | [`PutTimeoutError::Timeout`] (the item inside) |
//! | `queue.ShutDown` from `get` | [`ShutDown`] |
//! | `queue.Empty` from `get_nowait` | [`TryGetError::Empty`] |
//! | `queue.Empty` from `get(timeout=t)` | [`GetTimeoutError::Timeout`] |
//! | `ValueError` from `task_done` | [`TaskDoneError`] |
//!
//! The `Debug` impls do not require `T: Debug`, so `queue.put(x).unwrap()` works for any item.

use std::error::Error;
use std::fmt;

/// A blocking `put` failed because the queue was shut down; the item is inside.
/// Python: `queue.ShutDown` raised by `put`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PutError<T>(pub T);

impl<T> PutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PutError(..)")
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "put on a shut-down queue: it accepts no more items; \
             the item is handed back (`into_inner()`)",
        )
    }
}

impl<T> Error for PutError<T> {}

/// A non-blocking `put` failed; the item is inside. Python: `put_nowait` raising
/// `queue.Full` or `queue.ShutDown`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum TryPutError<T> {
    /// The queue held `maxsize` items.
    Full(T),
    /// The queue was shut down.
    ShutDown(T),
}

impl<T> TryPutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            TryPutError::Full(item) | TryPutError::ShutDown(item) => item,
        }
    }

    /// Whether the queue was full.
    pub fn is_full(&self) -> bool {
        matches!(self, TryPutError::Full(_))
    }

    /// Whether the queue was shut down.
    pub fn is_shutdown(&self) -> bool {
        matches!(self, TryPutError::ShutDown(_))
    }
}

impl<T> From<PutError<T>> for TryPutError<T> {
    fn from(e: PutError<T>) -> Self {
        TryPutError::ShutDown(e.0)
    }
}

impl<T> fmt::Debug for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPutError::Full(_) => f.write_str("Full(..)"),
            TryPutError::ShutDown(_) => f.write_str("ShutDown(..)"),
        }
    }
}

impl<T> fmt::Display for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPutError::Full(_) => f.write_str(
                "put on a full queue: retry later, or use `put` / `put_timeout` to wait for \
                 room; the item is handed back (`into_inner()`)",
            ),
            TryPutError::ShutDown(_) => f.write_str(
                "put on a shut-down queue: it accepts no more items; \
                 the item is handed back (`into_inner()`)",
            ),
        }
    }
}

impl<T> Error for TryPutError<T> {}

/// A `put` with a timeout failed; the item is inside. Python: `put(item, timeout=t)`
/// raising `queue.Full` or `queue.ShutDown`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum PutTimeoutError<T> {
    /// The queue stayed full until the deadline.
    Timeout(T),
    /// The queue was shut down (before or while waiting).
    ShutDown(T),
}

impl<T> PutTimeoutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            PutTimeoutError::Timeout(item) | PutTimeoutError::ShutDown(item) => item,
        }
    }

    /// Whether the deadline passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, PutTimeoutError::Timeout(_))
    }

    /// Whether the queue was shut down.
    pub fn is_shutdown(&self) -> bool {
        matches!(self, PutTimeoutError::ShutDown(_))
    }
}

impl<T> From<PutError<T>> for PutTimeoutError<T> {
    fn from(e: PutError<T>) -> Self {
        PutTimeoutError::ShutDown(e.0)
    }
}

impl<T> fmt::Debug for PutTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            PutTimeoutError::ShutDown(_) => f.write_str("ShutDown(..)"),
        }
    }
}

impl<T> fmt::Display for PutTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutTimeoutError::Timeout(_) => f.write_str(
                "put timed out: the queue stayed full; retry, wait longer, or let consumers \
                 catch up; the item is handed back (`into_inner()`)",
            ),
            PutTimeoutError::ShutDown(_) => f.write_str(
                "put on a shut-down queue: it accepts no more items; \
                 the item is handed back (`into_inner()`)",
            ),
        }
    }
}

impl<T> Error for PutTimeoutError<T> {}

/// A blocking `get` found the queue shut down and drained: no item will ever come.
/// Python: `queue.ShutDown` raised by `get`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShutDown;

impl fmt::Display for ShutDown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("get on a shut-down, drained queue: no more items will come; stop consuming")
    }
}

impl Error for ShutDown {}

/// A non-blocking `get` failed. Python: `get_nowait` raising `queue.Empty` or
/// `queue.ShutDown`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TryGetError {
    /// Nothing was queued.
    Empty,
    /// The queue was shut down and drained.
    ShutDown,
}

impl TryGetError {
    /// Whether the queue was (only) empty.
    pub fn is_empty(&self) -> bool {
        matches!(self, TryGetError::Empty)
    }

    /// Whether the queue was shut down and drained.
    pub fn is_shutdown(&self) -> bool {
        matches!(self, TryGetError::ShutDown)
    }
}

impl From<ShutDown> for TryGetError {
    fn from(_: ShutDown) -> Self {
        TryGetError::ShutDown
    }
}

impl fmt::Display for TryGetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryGetError::Empty => f.write_str(
                "get on an empty queue: retry later, or use `get` / `get_timeout` to wait for \
                 an item",
            ),
            TryGetError::ShutDown => ShutDown.fmt(f),
        }
    }
}

impl Error for TryGetError {}

/// A `get` with a timeout failed. Python: `get(timeout=t)` raising `queue.Empty` or
/// `queue.ShutDown`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GetTimeoutError {
    /// The queue stayed empty until the deadline.
    Timeout,
    /// The queue was shut down and drained.
    ShutDown,
}

impl GetTimeoutError {
    /// Whether the deadline passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, GetTimeoutError::Timeout)
    }

    /// Whether the queue was shut down and drained.
    pub fn is_shutdown(&self) -> bool {
        matches!(self, GetTimeoutError::ShutDown)
    }
}

impl From<ShutDown> for GetTimeoutError {
    fn from(_: ShutDown) -> Self {
        GetTimeoutError::ShutDown
    }
}

impl fmt::Display for GetTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetTimeoutError::Timeout => f.write_str(
                "get timed out: the queue stayed empty; retry, wait longer, or check that \
                 producers are running",
            ),
            GetTimeoutError::ShutDown => ShutDown.fmt(f),
        }
    }
}

impl Error for GetTimeoutError {}

/// `task_done()` was called more times than items were put (Python's `ValueError:
/// task_done() called too many times`). The count is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TaskDoneError;

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "task_done() called more times than there were items: call it once per item \
             got (items an immediate shutdown handed back are already settled)",
        )
    }
}

impl Error for TaskDoneError {}

#[cfg(all(test, not(tandem_loom)))]
mod tests {
    use super::*;

    #[test]
    fn into_inner_hands_the_item_back() {
        assert_eq!(PutError(1).into_inner(), 1);
        assert_eq!(TryPutError::Full(2).into_inner(), 2);
        assert_eq!(TryPutError::ShutDown(3).into_inner(), 3);
        assert_eq!(PutTimeoutError::Timeout(4).into_inner(), 4);
        assert_eq!(PutTimeoutError::ShutDown(5).into_inner(), 5);
        assert!(TryPutError::Full(()).is_full() && !TryPutError::Full(()).is_shutdown());
        assert!(PutTimeoutError::Timeout(()).is_timeout());
        assert!(PutTimeoutError::ShutDown(()).is_shutdown());
        assert_eq!(TryPutError::from(PutError(6)), TryPutError::ShutDown(6));
        assert_eq!(
            PutTimeoutError::from(PutError(7)),
            PutTimeoutError::ShutDown(7)
        );
    }

    #[test]
    fn get_errors_classify() {
        assert!(TryGetError::Empty.is_empty());
        assert!(TryGetError::from(ShutDown).is_shutdown());
        assert!(GetTimeoutError::Timeout.is_timeout());
        assert!(GetTimeoutError::from(ShutDown).is_shutdown());
    }

    #[test]
    fn messages_say_what_to_do_and_debug_needs_no_debug_item() {
        struct Opaque;
        let e = TryPutError::Full(Opaque);
        assert_eq!(format!("{e:?}"), "Full(..)");
        assert!(e.to_string().contains("into_inner"));
        assert!(PutError(Opaque).to_string().contains("shut-down"));
        assert!(ShutDown.to_string().contains("stop consuming"));
        assert!(TryGetError::Empty.to_string().contains("get_timeout"));
        assert!(GetTimeoutError::Timeout.to_string().contains("timed out"));
        assert!(TaskDoneError.to_string().contains("once per item"));
        // Every error is a std::error::Error.
        let boxed: Vec<Box<dyn Error>> = vec![
            Box::new(PutError(0)),
            Box::new(TryPutError::Full(0)),
            Box::new(PutTimeoutError::Timeout(0)),
            Box::new(ShutDown),
            Box::new(TryGetError::Empty),
            Box::new(GetTimeoutError::Timeout),
            Box::new(TaskDoneError),
        ];
        assert_eq!(boxed.len(), 7);
    }
}
