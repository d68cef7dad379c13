//! `RawLock`: the engine under `Lock`, `RLock` and `Condition` — one byte, no owner.
//!
//! The algorithm is parking_lot's `RawMutex`, on tandem's wait layer:
//!
//! | bit | name     | meaning                                                        |
//! |-----|----------|----------------------------------------------------------------|
//! | 0   | `LOCKED` | somebody holds the lock                                        |
//! | 1   | `PARKED` | at least one thread is (or is about to be) parked on the lock  |
//! | 2   | `LEAKED` | the hold was kept without a guard: `release` may free it       |
//!
//! - `lock`: one compare-exchange `0 → LOCKED` (the fast path); otherwise spin briefly while
//!   nobody is parked, then set `PARKED` and park until the state changes.
//! - `unlock`: one swap to `0` (as std's futex mutex, a little cheaper than parking_lot's
//!   compare-exchange); if the old state had `PARKED`, wake one waiter and, if more wait, set
//!   `PARKED` again. A thread that locks in between is fine: its unlock either sees `PARKED`
//!   or finds the woken thread still on its way to retry. About every 0.5 ms (the wait
//!   layer's `be_fair`) the waker re-takes the free lock for the woken thread and hands it
//!   over (`TOKEN_HANDOFF`), so a thread that keeps re-locking cannot starve the waiters:
//!   eventual fairness, as parking_lot.
//! - `unlock_fair`: hands the lock to the first waiter without ever releasing it.
//! - A stale `PARKED` with nobody parked costs one extra wake-up call, nothing else.
//!
//! The lock has no owner: Python lets any thread release a `Lock`, and so does this.
//!
//! # Diagnostics
//! With the `diagnostics` feature, `diag` records each acquisition (after it succeeds, at
//! the caller's site: the acquire methods are `#[track_caller]` then) and each release
//! (before the lock is actually released, so no one ever appears to hold it twice), and
//! the slow path tells the wait layer what it parks on. Without the feature `diag` is
//! zero-sized, the hooks are empty, and `RawLock` is one byte.

use crate::diagnostics::{self, How, LockDiag, PrimitiveKind};
use crate::primitive::atomic::{AtomicU8, Ordering};
use crate::primitive::loom_const_fn;
use crate::wait::{self, Deadline, ParkResult, SpinWait, UnparkResult, UnparkToken};

const LOCKED: u8 = 0b01;
const PARKED: u8 = 0b10;
/// Set (with `LOCKED`) while the hold is one kept without a guard; only
/// [`RawLock::release_leaked`] clears it, so no guard's hold is ever released by `release`.
const LEAKED: u8 = 0b100;

/// Unpark token: the lock was released; try again.
const TOKEN_NORMAL: UnparkToken = UnparkToken(0);
/// Unpark token: the lock was handed to the woken thread, which now holds it.
pub(crate) const TOKEN_HANDOFF: UnparkToken = UnparkToken(1);

/// A one-byte lock with no owner. See the module docs for the state machine.
pub(crate) struct RawLock {
    state: AtomicU8,
    /// Diagnostics (zero-sized without the feature).
    diag: LockDiag,
}

impl RawLock {
    loom_const_fn! {
        /// An unlocked lock.
        pub(crate) fn new() -> Self {
            RawLock::with_kind(PrimitiveKind::Lock)
        }
    }

    loom_const_fn! {
        /// An unlocked lock that diagnostics report as a `kind` (e.g. `RLock`).
        #[allow(dead_code)]
        pub(crate) fn with_kind(kind: PrimitiveKind) -> Self {
            RawLock {
                state: AtomicU8::new(0),
                diag: LockDiag::new(kind),
            }
        }
    }

    /// An unlocked lock with a name for diagnostics; created at the caller's site.
    #[cfg_attr(feature = "diagnostics", track_caller)]
    #[allow(dead_code)]
    pub(crate) fn named(kind: PrimitiveKind, name: String) -> Self {
        RawLock {
            state: AtomicU8::new(0),
            diag: LockDiag::named(kind, name),
        }
    }

    /// Gives the lock the name diagnostics report (nothing without the feature).
    #[cfg_attr(feature = "diagnostics", track_caller)]
    #[allow(dead_code)]
    pub(crate) fn set_name(&self, name: String) {
        self.diag.set_name(self.key(), name);
    }

    /// The lock's name, if it was given one (always `None` without the feature).
    #[allow(dead_code)]
    pub(crate) fn name(&self) -> Option<String> {
        self.diag.name()
    }

    /// Contention statistics (all zero without the feature, or while recording is off).
    #[allow(dead_code)]
    pub(crate) fn stats(&self) -> diagnostics::Stats {
        self.diag.stats()
    }

    /// Locks, blocking until the lock is held.
    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub(crate) fn lock(&self) {
        if self
            .state
            .compare_exchange_weak(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow(Deadline::NEVER);
        }
        diagnostics::lock_acquired(&self.diag, self.key(), How::Blocking);
    }

    /// Records that the calling thread holds the lock, which it received without locking
    /// it itself: a condition variable's waiter woken with [`TOKEN_HANDOFF`] after a
    /// requeue. (Nothing without the feature.)
    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    #[allow(dead_code)]
    pub(crate) fn note_handoff(&self) {
        diagnostics::lock_acquired(&self.diag, self.key(), How::Blocking);
    }

    /// Locks unless it is held; never blocks.
    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub(crate) fn try_lock(&self) -> bool {
        let taken = self.try_lock_quietly();
        if taken {
            diagnostics::lock_acquired(&self.diag, self.key(), How::Try);
        }
        taken
    }

    /// `try_lock` without the diagnostics hook.
    #[inline]
    fn try_lock_quietly(&self) -> bool {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & LOCKED != 0 {
                return false;
            }
            match self.state.compare_exchange_weak(
                state,
                state | LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(s) => state = s,
            }
        }
    }

    /// Locks before `deadline`; `false` if it passed first.
    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub(crate) fn lock_until(&self, deadline: Deadline) -> bool {
        let taken = self.try_lock_quietly() || (!deadline.has_passed() && self.lock_slow(deadline));
        if taken {
            diagnostics::lock_acquired(&self.diag, self.key(), How::Timed);
        }
        taken
    }

    /// Whether the lock is held by anyone (a snapshot).
    #[inline]
    pub(crate) fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & LOCKED != 0
    }

    /// Unlocks.
    ///
    /// The caller must hold the lock (or speak for the thread that does: Python's
    /// release-from-another-thread); unlocking an unlocked `RawLock` is a logic error that
    /// the public types turn into `ReleaseError` before reaching here.
    #[inline]
    pub(crate) fn unlock(&self) {
        diagnostics::lock_released(&self.diag, self.key());
        if self.state.swap(0, Ordering::Release) & PARKED != 0 {
            self.wake_after_release();
        }
    }

    /// After a release that found `PARKED`: wake the first waiter. About every 0.5 ms
    /// (`be_fair`) the lock is re-taken on the waiter's behalf and handed to it, so a thread
    /// that keeps re-locking cannot starve the queue.
    #[cold]
    fn wake_after_release(&self) {
        let callback = |result: UnparkResult| {
            let parked = if result.have_more_threads { PARKED } else { 0 };
            // Acquire: another thread may have locked and released the lock since our swap;
            // taking it for the woken thread must see that thread's writes, and the unpark
            // below passes them on.
            if result.unparked_threads != 0
                && result.be_fair
                && self
                    .state
                    .compare_exchange(0, LOCKED | parked, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return TOKEN_HANDOFF;
            }
            if parked != 0 {
                self.state.fetch_or(PARKED, Ordering::Relaxed);
            }
            TOKEN_NORMAL
        };
        // SAFETY: the key is this lock's own address; the callback only touches this lock's
        // atomic state, never panics and never calls the wait layer.
        unsafe {
            wait::unpark_one(self.key(), callback);
        }
    }

    /// Unlocks, handing the lock directly to the first waiter if there is one.
    #[inline]
    pub(crate) fn unlock_fair(&self) {
        diagnostics::lock_released(&self.diag, self.key());
        if self
            .state
            .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
        self.unlock_slow(true);
    }

    /// Marks the current hold (the caller holds the lock through a guard it gives up) as
    /// kept without a guard, so [`release_leaked`](Self::release_leaked) may free it.
    pub(crate) fn mark_leaked(&self) {
        self.state.fetch_or(LEAKED, Ordering::Relaxed);
    }

    /// Unlocks if the hold was kept without a guard (`LEAKED`): Python's `release()` on a
    /// bare lock, where releasing an unlocked lock is an error rather than undefined, and
    /// where a hold protected by a live guard must not be freed under it. `Err(true)` if the
    /// lock is held through a guard, `Err(false)` if it is not held.
    pub(crate) fn release_leaked(&self) -> Result<(), bool> {
        let mut state = self.state.load(Ordering::Relaxed);
        if state & LEAKED != 0 {
            diagnostics::lock_released(&self.diag, self.key());
        }
        loop {
            if state & LEAKED == 0 {
                return Err(state & LOCKED != 0);
            }
            match self
                .state
                .compare_exchange_weak(state, 0, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => {
                    if state & PARKED != 0 {
                        self.wake_after_release();
                    }
                    return Ok(());
                }
                Err(s) => state = s,
            }
        }
    }

    /// For a condition variable requeueing its waiters onto this lock: if the lock is held,
    /// sets `PARKED` (so the eventual unlock wakes them) and returns `true`.
    pub(crate) fn mark_parked_if_locked(&self) -> bool {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & LOCKED == 0 {
                return false;
            }
            match self.state.compare_exchange_weak(
                state,
                state | PARKED,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(s) => state = s,
            }
        }
    }

    /// For a condition variable that requeued waiters onto this lock: marks it `PARKED`.
    pub(crate) fn mark_parked(&self) {
        self.state.fetch_or(PARKED, Ordering::Relaxed);
    }

    /// The key waiters of this lock park on.
    #[inline]
    pub(crate) fn key(&self) -> usize {
        wait::key_of(self)
    }

    /// The slow path, timed and announced to the wait layer for diagnostics.
    #[cold]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    fn lock_slow(&self, deadline: Deadline) -> bool {
        let diag = diagnostics::lock_wait_start(&self.diag, self.key());
        let taken = self.lock_contended(deadline, &diag);
        diag.done(&self.diag, taken);
        taken
    }

    fn lock_contended(&self, deadline: Deadline, diag: &diagnostics::LockWait) -> bool {
        let mut spin = SpinWait::new();
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & LOCKED == 0 {
                match self.state.compare_exchange_weak(
                    state,
                    state | LOCKED,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return true,
                    Err(s) => state = s,
                }
                continue;
            }

            // Spin a little while nobody is parked: the holder may be about to release.
            if state & PARKED == 0 && spin.spin() {
                state = self.state.load(Ordering::Relaxed);
                continue;
            }

            if state & PARKED == 0 {
                if let Err(s) = self.state.compare_exchange_weak(
                    state,
                    state | PARKED,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    state = s;
                    continue;
                }
            }

            let validate =
                || self.state.load(Ordering::Relaxed) & (LOCKED | PARKED) == LOCKED | PARKED;
            let timed_out = |_key, was_last_thread| {
                if was_last_thread {
                    self.state.fetch_and(!PARKED, Ordering::Relaxed);
                }
            };
            diag.before_park(&self.diag, self.key());
            // SAFETY: the key is this lock's own address; `validate` and `timed_out` only
            // touch this lock's atomic state, never panic and never call the wait layer.
            let result = unsafe {
                wait::park(
                    self.key(),
                    validate,
                    || {},
                    timed_out,
                    wait::DEFAULT_PARK_TOKEN,
                    deadline.instant(),
                )
            };
            match result {
                ParkResult::Unparked(TOKEN_HANDOFF) => return true,
                ParkResult::Unparked(_) | ParkResult::Invalid => {}
                ParkResult::TimedOut => return false,
            }
            spin.reset();
            state = self.state.load(Ordering::Relaxed);
        }
    }

    #[cold]
    fn unlock_slow(&self, force_fair: bool) {
        let callback = |result: UnparkResult| {
            if result.unparked_threads != 0 && (force_fair || result.be_fair) {
                // Hand the lock over: it stays LOCKED, now on the woken thread's behalf.
                if !result.have_more_threads {
                    self.state.store(LOCKED, Ordering::Relaxed);
                }
                return TOKEN_HANDOFF;
            }
            if result.have_more_threads {
                self.state.store(PARKED, Ordering::Release);
            } else {
                self.state.store(0, Ordering::Release);
            }
            TOKEN_NORMAL
        };
        // SAFETY: the key is this lock's own address; the callback only stores to this
        // lock's atomic state, never panics and never calls the wait layer.
        unsafe {
            wait::unpark_one(self.key(), callback);
        }
    }
}

#[cfg(all(test, not(tandem_loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn try_lock_and_unlock() {
        let l = RawLock::new();
        assert!(l.try_lock());
        assert!(l.is_locked());
        assert!(!l.try_lock());
        l.unlock();
        assert!(!l.is_locked());
        assert_eq!(l.release_leaked(), Err(false));
    }

    #[test]
    fn lock_until_times_out_when_held() {
        let l = RawLock::new();
        l.lock();
        assert!(!l.lock_until(Deadline::after(Duration::from_millis(10))));
        assert!(!l.lock_until(Deadline::after(Duration::ZERO)));
        l.unlock();
        assert!(l.lock_until(Deadline::after(Duration::ZERO)));
        l.unlock();
    }

    #[test]
    fn fair_unlock_hands_over() {
        let l = Arc::new(RawLock::new());
        l.lock();
        let l2 = Arc::clone(&l);
        let t = std::thread::spawn(move || {
            l2.lock();
            l2.unlock();
        });
        // Whether or not the thread has parked yet, a fair unlock leaves the lock consistent.
        l.unlock_fair();
        t.join().unwrap();
        assert!(!l.is_locked());
    }
}
