//! One side's waiters (getters waiting for an item, or putters waiting for room), as both
//! queue engines count, park and wake them.
//!
//! `registered` counts threads registered to wait and not yet gone; its address is the key
//! they park on. A thread leaves the count exactly once — taken out by the waker that
//! unparks it (in the wake-up callback), by its own failed validation, or by its own
//! time-out, all three under the wait layer's queue lock. `parked` counts the subset already
//! in the wait queue (counted in by a successful validation): what `waiting_getters()` and
//! `waiting_putters()` report, so a test that sees a waiter knows it is parked.

use crate::diagnostics::{self, PrimitiveKind};
use crate::primitive::atomic::{AtomicUsize, Ordering};
use crate::wait::{self, Deadline, FilterOp, ParkResult, ParkToken, UnparkResult, UnparkToken};

/// The counts of one side's waiters; see the module docs.
pub(crate) struct Waiters {
    registered: AtomicUsize,
    parked: AtomicUsize,
}

impl Waiters {
    /// No waiter.
    pub(crate) fn new() -> Self {
        Waiters {
            registered: AtomicUsize::new(0),
            parked: AtomicUsize::new(0),
        }
    }

    /// Threads registered to wait, parked or on their way (the engines' fast paths read it).
    #[inline]
    pub(crate) fn registered(&self, order: Ordering) -> usize {
        self.registered.load(order)
    }

    /// Threads parked now (a snapshot; for tests and diagnostics).
    #[inline]
    pub(crate) fn parked(&self) -> usize {
        self.parked.load(Ordering::Relaxed)
    }

    /// Registers the calling thread to wait (before it checks a last time and parks).
    #[inline]
    pub(crate) fn register(&self, order: Ordering) {
        self.registered.fetch_add(1, order);
    }

    /// The key this side's waiters park on.
    #[inline]
    pub(crate) fn key(&self) -> usize {
        wait::key_of(&self.registered)
    }

    /// Takes `n` woken threads out of the counts: for a waker's unpark callback.
    #[inline]
    pub(crate) fn took(&self, n: usize) {
        self.registered.fetch_sub(n, Ordering::Relaxed);
        self.parked.fetch_sub(n, Ordering::Relaxed);
    }

    /// Parks the calling thread, registered with [`register`](Self::register), while
    /// `blocked()` holds (checked inside the wait layer's queue lock), with `token` for its
    /// wakers to see, until woken or `deadline`. Takes the thread out of the counts on a
    /// failed validation or a time-out (a waker does it otherwise).
    pub(crate) fn park(
        &self,
        blocked: impl Fn() -> bool,
        token: ParkToken,
        deadline: Deadline,
        tag: &diagnostics::Tag,
    ) -> ParkResult {
        let validate = || {
            if blocked() {
                self.parked.fetch_add(1, Ordering::Relaxed);
                true
            } else {
                self.registered.fetch_sub(1, Ordering::Relaxed);
                false
            }
        };
        let timed_out = |_key, _was_last| self.took(1);
        diagnostics::wait_intent(PrimitiveKind::Queue, self.key(), Some(tag));
        // SAFETY: the key is the address of this side's count, owned by its queue, so only
        // that queue's waiters park on it; `validate` runs `blocked` (the engines pass
        // closures that only read atomics) and, like `timed_out`, only touches atomics,
        // never panics and never calls back into the wait layer.
        unsafe {
            wait::park(
                self.key(),
                validate,
                || {},
                timed_out,
                token,
                deadline.instant(),
            )
        }
    }

    /// Wakes up to `n` parked threads, oldest first, with `token` (`usize::MAX`: all), taking
    /// them out of the counts; returns how many it woke.
    pub(crate) fn wake(&self, n: usize, token: UnparkToken) -> usize {
        let callback = |result: UnparkResult| {
            self.took(result.unparked_threads);
            token
        };
        let result = if n == 1 {
            // SAFETY: the key is this side's; the callback only updates atomics, never
            // panics and never calls back into the wait layer.
            unsafe { wait::unpark_one(self.key(), callback) }
        } else {
            let mut left = n;
            let filter = |_| {
                if left == 0 {
                    FilterOp::Stop
                } else {
                    left -= 1;
                    FilterOp::Unpark
                }
            };
            // SAFETY: as above; `filter` only counts down a local.
            unsafe { wait::unpark_filter(self.key(), filter, callback) }
        };
        result.unparked_threads
    }
}
