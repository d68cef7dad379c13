//! Latches: a condition threads wait for ("this thread finished", "every worker left",
//! "the task's outcome is published"), with a `PARKED` flag so that opening the latch costs
//! one atomic operation when nobody waits. The waiting half is written once here,
//! [`wait_open`], over any word that carries such a condition and flag ([`Latched`]);
//! [`Latch`] is the stand-alone one (a count that opens at zero).
//!
//! # Protocol
//! - **Waiters** read the word (acquire). If the latch is open, done. Otherwise (after an
//!   optional short spin) they set `PARKED` with a compare-exchange from the value they read,
//!   and park on the latch's key, validating under the wait layer's queue lock that the
//!   latch is still closed and `PARKED` still set.
//! - **Openers** change the word so that it reads open (release), and, if the value they
//!   replaced had `PARKED`, call [`wake_all`] on the key. Because validation and `wake_all`
//!   both hold the key's queue lock, a waiter either sees the latch open in `validate` or is
//!   queued before `wake_all` looks: no wake-up is lost.
//! - A stale `PARKED` (a waiter that timed out, a latch that closed again) costs the next
//!   opener one `wake_all` that finds nobody, and nothing else.

use crate::diagnostics::{self, PrimitiveKind};
use crate::primitive::atomic::{AtomicUsize, Ordering};
use crate::wait::{self, Deadline, ParkResult, SpinWait};

/// A word that holds a latch's condition and its `PARKED` flag (see the module docs).
pub(crate) trait Latched {
    /// A value of the word.
    type State: Copy;

    /// Reads the word.
    fn state(&self, order: Ordering) -> Self::State;

    /// Whether `s` reads open.
    fn is_open(s: Self::State) -> bool;

    /// Whether `s` has `PARKED`.
    fn has_parked(s: Self::State) -> bool;

    /// Sets `PARKED` if the word is still `s` (relaxed); `false` if it changed.
    fn try_mark_parked(&self, s: Self::State) -> bool;

    /// The key waiters park on: an address the latch owns.
    fn key(&self) -> usize;
}

/// Waits until `latch` reads open (`true`, with what its opener did before visible) or
/// `deadline` passes (`false`). With `spin`, spins briefly before parking.
#[cold]
#[cfg_attr(feature = "diagnostics", track_caller)]
pub(crate) fn wait_open<L: Latched>(latch: &L, deadline: Deadline, spin: bool) -> bool {
    let mut spinner = SpinWait::new();
    loop {
        let s = latch.state(Ordering::Acquire);
        if L::is_open(s) {
            return true;
        }
        if deadline.has_passed() {
            return false;
        }
        if !L::has_parked(s) {
            if spin && spinner.spin() {
                continue;
            }
            if !latch.try_mark_parked(s) {
                continue;
            }
        }
        let validate = || {
            let s = latch.state(Ordering::Relaxed);
            !L::is_open(s) && L::has_parked(s)
        };
        diagnostics::wait_intent(PrimitiveKind::Future, latch.key(), None);
        // SAFETY: the key is an address the latch owns (`Latched::key`); `validate` only
        // reads the latch's word, never panics and never calls the wait layer. A timed-out
        // waiter leaves `PARKED` set, which only costs the opener one `wake_all`.
        let result = unsafe {
            wait::park(
                latch.key(),
                validate,
                || {},
                |_, _| {},
                wait::DEFAULT_PARK_TOKEN,
                deadline.instant(),
            )
        };
        if result == ParkResult::TimedOut {
            return L::is_open(latch.state(Ordering::Acquire));
        }
    }
}

/// Wakes every thread parked on a latch's `key`: for an opener that replaced a value with
/// `PARKED`.
#[cold]
pub(crate) fn wake_all(key: usize) {
    // SAFETY: the caller passes its latch's own key; no callbacks.
    unsafe {
        wait::unpark_all(key, wait::DEFAULT_UNPARK_TOKEN);
    }
}

/// `PARKED`, the low bit of a [`Latch`]'s word; the count is the rest.
const PARKED: usize = 1;
/// One in the count.
const ONE: usize = 2;

/// A count that threads can wait to reach zero: a one-shot "done" flag when made with a
/// count of 1 and [`open`](Latch::open)ed, or a count of live workers or outstanding jobs
/// that may go up and down (it is open whenever it is zero).
///
/// | bits | name     | meaning                                              |
/// |------|----------|------------------------------------------------------|
/// | 0    | `PARKED` | a waiter is (or is about to be) parked on the latch  |
/// | 1..  | count    | open at 0                                            |
pub(crate) struct Latch {
    state: AtomicUsize,
}

impl Latch {
    /// A latch that opens once `count` is counted down (open now if 0).
    pub(crate) fn new(count: usize) -> Self {
        assert!(
            count <= usize::MAX / ONE,
            "a latch counts to usize::MAX / 2"
        );
        Latch {
            state: AtomicUsize::new(count * ONE),
        }
    }

    /// The count (a relaxed snapshot).
    #[inline]
    pub(crate) fn count(&self) -> usize {
        self.state.load(Ordering::Relaxed) / ONE
    }

    /// Whether the count is zero; if so, what every count-down or `open` did before is
    /// visible.
    #[inline]
    pub(crate) fn is_open(&self) -> bool {
        self.state.load(Ordering::Acquire) / ONE == 0
    }

    /// Adds one to the count (closing the latch if it was open).
    #[inline]
    pub(crate) fn increment(&self) {
        let old = self.state.fetch_add(ONE, Ordering::Relaxed);
        assert!(old / ONE < usize::MAX / ONE, "latch count overflow");
    }

    /// Adds one to the count if it is still `count`; whether it did.
    #[inline]
    pub(crate) fn increment_from(&self, count: usize) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        while s / ONE == count {
            match self
                .state
                .compare_exchange_weak(s, s + ONE, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(actual) => s = actual,
            }
        }
        false
    }

    /// Subtracts one from the count, waking the waiters if it reaches zero; the count left.
    #[inline]
    pub(crate) fn count_down(&self) -> usize {
        let old = self.state.fetch_sub(ONE, Ordering::AcqRel);
        debug_assert!(old / ONE != 0, "latch counted below zero");
        if old / ONE == 1 && old & PARKED != 0 {
            wake_all(self.key());
        }
        old / ONE - 1
    }

    /// Opens the latch whatever its count (release), waking the waiters. Idempotent.
    #[inline]
    pub(crate) fn open(&self) {
        if self.state.swap(0, Ordering::Release) & PARKED != 0 {
            wake_all(self.key());
        }
    }

    /// Waits until the count is zero (`true`) or `deadline` passes (`false`).
    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub(crate) fn wait_until(&self, deadline: Deadline) -> bool {
        self.is_open() || wait_open(self, deadline, false)
    }

    /// Whether a waiter has marked the latch (tests: a waiter has announced itself).
    #[cfg(all(test, not(tandem_loom)))]
    pub(crate) fn has_parked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & PARKED != 0
    }
}

impl Latched for Latch {
    type State = usize;

    #[inline]
    fn state(&self, order: Ordering) -> usize {
        self.state.load(order)
    }

    #[inline]
    fn is_open(s: usize) -> bool {
        s / ONE == 0
    }

    #[inline]
    fn has_parked(s: usize) -> bool {
        s & PARKED != 0
    }

    #[inline]
    fn try_mark_parked(&self, s: usize) -> bool {
        self.state
            .compare_exchange_weak(s, s | PARKED, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    #[inline]
    fn key(&self) -> usize {
        wait::key_of(self)
    }
}

#[cfg(all(test, not(tandem_loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn times_out_then_sees_open() {
        let latch = Latch::new(1);
        assert!(!latch.wait_until(Deadline::after(Duration::ZERO)));
        assert!(!latch.wait_until(Deadline::after(Duration::from_millis(5))));
        latch.open();
        assert!(latch.is_open());
        assert!(latch.wait_until(Deadline::NEVER));
        latch.open(); // idempotent
        assert!(latch.is_open());
    }

    #[test]
    fn counts_up_and_down() {
        let latch = Latch::new(0);
        assert!(latch.is_open());
        latch.increment();
        assert!(latch.increment_from(1));
        assert!(!latch.increment_from(1));
        assert_eq!(latch.count(), 2);
        assert!(!latch.is_open());
        assert_eq!(latch.count_down(), 1);
        assert_eq!(latch.count_down(), 0);
        assert!(latch.wait_until(Deadline::NEVER));
    }

    #[test]
    fn wakes_a_parked_waiter_at_zero() {
        let latch = Arc::new(Latch::new(2));
        let l2 = Arc::clone(&latch);
        let waiter = std::thread::spawn(move || l2.wait_until(Deadline::NEVER));
        // Wait (without sleeping) until the waiter has announced itself.
        while !latch.has_parked() {
            std::thread::yield_now();
        }
        latch.count_down();
        latch.count_down();
        assert!(waiter.join().unwrap());
    }
}

#[cfg(all(test, tandem_loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use std::time::Duration;

    /// A timed wait racing with `open` (a thread's end): the waiter either sees it open or
    /// times out, and an `open` while it parks always wakes it.
    #[test]
    fn open_wakes_waiter() {
        loom::model(|| {
            let latch = Arc::new(Latch::new(1));
            let l2 = Arc::clone(&latch);
            let opener = loom::thread::spawn(move || l2.open());
            let _ = latch.wait_until(Deadline::after(Duration::from_secs(1)));
            assert!(latch.wait_until(Deadline::NEVER));
            opener.join().unwrap();
        });
    }

    /// A timed wait racing with the last count-down: the waiter either sees zero or times
    /// out, and a count-down while it parks always wakes it (no lost wake-up: an untimed
    /// wait after a timed one returns).
    #[test]
    fn count_down_wakes_waiter() {
        loom::model(|| {
            let latch = Arc::new(Latch::new(2));
            let l2 = Arc::clone(&latch);
            let l3 = Arc::clone(&latch);
            let a = loom::thread::spawn(move || {
                l2.count_down();
            });
            let b = loom::thread::spawn(move || {
                l3.count_down();
            });
            let _ = latch.wait_until(Deadline::after(Duration::from_secs(1)));
            assert!(latch.wait_until(Deadline::NEVER));
            a.join().unwrap();
            b.join().unwrap();
        });
    }
}
