//! The barrier's errors: [`InvalidPartiesError`] (Python's `ValueError`) and
//! [`BrokenBarrierError`] with its [`BrokenReason`] (Python's `BrokenBarrierError`).

use std::fmt;

use super::engine::{ABORTED, ACTION_PANICKED, RESET, TIMED_OUT};
#[cfg(doc)]
use super::Barrier;

/// A barrier was asked for an impossible number of parties (0). Python: `ValueError`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidPartiesError {
    parties: usize,
}

impl InvalidPartiesError {
    pub(crate) fn new(parties: usize) -> Self {
        InvalidPartiesError { parties }
    }

    /// The number of parties that was asked for.
    pub fn parties(&self) -> usize {
        self.parties
    }
}

impl fmt::Display for InvalidPartiesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a barrier needs at least 1 party, got {}: pass the number of threads that meet at it",
            self.parties
        )
    }
}

impl std::error::Error for InvalidPartiesError {}

/// Why a barrier is broken. See [`BrokenBarrierError::reason`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BrokenReason {
    /// [`Barrier::abort`] was called.
    Aborted,
    /// A wait timed out (this one, or another thread's), which breaks the barrier.
    TimedOut,
    /// The barrier's action panicked.
    ActionPanicked,
    /// [`Barrier::reset`] was called while this thread was waiting.
    Reset,
    /// A process registered with a cross-process barrier died (only
    /// [`process::Barrier`](crate::process::Barrier) breaks this way).
    PartyDied,
}

/// A wait on a broken barrier: Python's `threading.BrokenBarrierError`, with the reason.
///
/// Aborted, timed-out and action-panicked barriers stay broken until [`Barrier::reset`];
/// after a reset, waiting again joins the new generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokenBarrierError {
    reason: BrokenReason,
    panic_message: Option<String>,
}

impl BrokenBarrierError {
    pub(super) fn new(fate: usize, panic_message: Option<String>) -> Self {
        let reason = match fate {
            ABORTED => BrokenReason::Aborted,
            TIMED_OUT => BrokenReason::TimedOut,
            ACTION_PANICKED => BrokenReason::ActionPanicked,
            RESET => BrokenReason::Reset,
            _ => unreachable!("fate {fate} is not a broken reason"),
        };
        BrokenBarrierError {
            reason,
            panic_message,
        }
    }

    /// The error of a barrier broken for `reason` (for the process barrier, which has no
    /// thread barrier behind it; unused under loom, where the process half is compiled out).
    #[cfg_attr(tandem_loom, allow(dead_code))]
    pub(crate) fn with_reason(reason: BrokenReason, panic_message: Option<String>) -> Self {
        BrokenBarrierError {
            reason,
            panic_message,
        }
    }

    /// Why the barrier broke.
    pub fn reason(&self) -> BrokenReason {
        self.reason
    }

    /// The action's panic message, in the error of the thread that ran the action.
    pub fn panic_message(&self) -> Option<&str> {
        self.panic_message.as_deref()
    }
}

impl fmt::Display for BrokenBarrierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason {
            BrokenReason::Aborted => f.write_str(
                "broken barrier: it was aborted; call reset() before waiting on it again",
            ),
            BrokenReason::TimedOut => f.write_str(
                "broken barrier: a wait on it timed out; call reset() before waiting on it again",
            ),
            BrokenReason::ActionPanicked => {
                f.write_str("broken barrier: its action panicked")?;
                if let Some(message) = &self.panic_message {
                    write!(f, " ({message})")?;
                }
                f.write_str("; call reset() before waiting on it again")
            }
            BrokenReason::Reset => f.write_str(
                "broken barrier: it was reset while this thread waited; wait again to join the \
                 next generation",
            ),
            BrokenReason::PartyDied => f.write_str(
                "broken barrier: a process that shares it died, so its party can never arrive; \
                 call reset() before waiting on it again",
            ),
        }
    }
}

impl std::error::Error for BrokenBarrierError {}
