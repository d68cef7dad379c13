//! What both queue engines share: how long a call may wait, why it failed, and Python's
//! `maxsize` conventions.

use super::error::{GetTimeoutError, TryGetError};
use crate::wait::Deadline;

/// How long a call may wait.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wait {
    /// Not at all: try once (`try_put`, `try_get`).
    No,
    /// Until the deadline (`Deadline::NEVER` for the blocking forms).
    Until(Deadline),
}

impl Wait {
    /// Blocks with no deadline.
    pub(crate) const FOREVER: Wait = Wait::Until(Deadline::NEVER);
}

/// Why a put did not happen; the item is inside.
#[derive(Debug)]
pub(crate) enum PutFail<T> {
    /// Full, and the call was not allowed to wait.
    Full(T),
    /// Still full at the deadline.
    Timeout(T),
    /// Shut down.
    ShutDown(T),
}

/// Why a get did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GetFail {
    /// Empty, and the call was not allowed to wait.
    Empty,
    /// Still empty at the deadline.
    Timeout,
    /// Shut down and drained.
    ShutDown,
}

impl GetFail {
    /// As a non-blocking get's error.
    pub(crate) fn into_try(self) -> TryGetError {
        match self {
            GetFail::Empty | GetFail::Timeout => TryGetError::Empty,
            GetFail::ShutDown => TryGetError::ShutDown,
        }
    }

    /// As a timed get's error.
    pub(crate) fn into_timeout(self) -> GetTimeoutError {
        match self {
            GetFail::Empty | GetFail::Timeout => GetTimeoutError::Timeout,
            GetFail::ShutDown => GetTimeoutError::ShutDown,
        }
    }
}

/// Python's `maxsize`: 0 (Python: `<= 0`) means unbounded.
pub(crate) fn python_maxsize(maxsize: usize) -> usize {
    if maxsize == 0 {
        usize::MAX
    } else {
        maxsize
    }
}

/// The bound of `bounded(maxsize)`, which refuses 0 with a message that names the
/// alternatives.
#[track_caller]
pub(crate) fn checked_bound(maxsize: usize, type_name: &str) -> usize {
    if maxsize == 0 {
        panic!(
            "{type_name}::bounded(0): a bounded queue needs room for at least one item; use \
             {type_name}::new() for an unbounded queue ({type_name}::with_maxsize(0) is \
             Python's maxsize=0, also unbounded)"
        );
    }
    maxsize
}
