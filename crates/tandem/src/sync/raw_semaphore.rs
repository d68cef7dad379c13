//! `RawSemaphore`: the engine under `Semaphore` and `BoundedSemaphore` (as tokio's
//! `batch_semaphore.rs` is under its `Semaphore`). Both public types are thin fronts: each of
//! their methods is one call to the shared front at the end of this file, with the type's
//! bound. The state is a single word that holds the free permits and one flag.
//!
//! | bits   | name      | meaning                                                            |
//! |--------|-----------|--------------------------------------------------------------------|
//! | 0      | `WAITERS` | at least one thread is queued on the semaphore's key               |
//! | 1..    | permits   | free permits (at most [`Semaphore::MAX_PERMITS`])                  |
//!
//! Protocol (the wait layer's queue for the semaphore's key is "the queue"):
//! - **`WAITERS` is set exactly while the queue is non-empty.** It is only set inside `park`'s
//!   `validate` (which runs under the queue's lock, immediately before the thread is queued)
//!   and only cleared under that lock, by whoever empties the queue (a release that wakes the
//!   last waiter, or the last waiter timing out).
//! - **Fast paths** (acquire and release when `WAITERS` is clear) are one compare-exchange on
//!   the word. Because the compare-exchange covers the flag, a fast path can never succeed
//!   once somebody is queued: acquirers do not barge ahead of waiters, and releases go to
//!   the slow path.
//! - **While `WAITERS` is set, the word only changes under the queue's lock**, so the slow
//!   paths can read it there and hand permits over consistently.
//! - **Release with waiters** (`release_slow`): under the queue's lock, walk the queue in
//!   arrival order; each waiter's park token is how many permits it wants. Hand permits to
//!   waiters while the next one can be fully served; stop at the first that cannot (strict
//!   FIFO: a large request is never overtaken by smaller ones). Woken waiters receive
//!   `TOKEN_HANDOFF` and already own their permits; what is left stays in the word.
//! - **A waiter that times out** leaves the queue under the lock; if it was the last, it
//!   clears `WAITERS`. Otherwise the permits it was blocking may now satisfy those behind it,
//!   so it runs the hand-off again with nothing added (`release_slow(0)`).

use std::cell::Cell;

use super::semaphore::{OverReleaseError, SemaphorePermit, TooManyPermitsError};
use crate::diagnostics::{self, PrimitiveKind};
use crate::primitive::atomic::{AtomicUsize, Ordering};
use crate::primitive::loom_const_fn;
use crate::wait::{self, Deadline, FilterOp, ParkResult, ParkToken, SpinWait, UnparkToken};

const WAITERS: usize = 0b1;
const SHIFT: u32 = 1;
/// The most permits a semaphore can hold: the word keeps one bit for `WAITERS`.
pub(super) const MAX_PERMITS: usize = usize::MAX >> SHIFT;

/// Unpark token: the woken waiter's permits were taken on its behalf.
const TOKEN_HANDOFF: UnparkToken = UnparkToken(1);

#[inline]
const fn permits(state: usize) -> usize {
    state >> SHIFT
}

/// What a release does when it would exceed the limit.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Overflow {
    /// Refuse the whole release (explicit `release`: Python's `ValueError`).
    Refuse,
    /// Add only up to the limit (a permit's drop, which must not fail).
    Clamp,
}

/// `permits + n`, checked against `limit`.
#[inline]
fn add(permits: usize, n: usize, limit: usize, overflow: Overflow) -> Option<usize> {
    match permits.checked_add(n) {
        Some(total) if total <= limit => Some(total),
        _ if overflow == Overflow::Clamp => Some(limit.max(permits)),
        _ => None,
    }
}

/// The engine under [`Semaphore`] and [`BoundedSemaphore`]; see the module docs.
pub(crate) struct RawSemaphore {
    state: AtomicUsize,
    /// Diagnostics: name and wait statistics (zero-sized without the feature).
    pub(super) tag: diagnostics::Tag,
}

impl RawSemaphore {
    loom_const_fn! {
        #[track_caller]
        pub(super) fn new(permits: usize) -> Self {
            assert!(
                permits <= MAX_PERMITS,
                // A const fn cannot format `permits` into the message.
                "Semaphore::new or BoundedSemaphore::new with more than \
                 Semaphore::MAX_PERMITS (usize::MAX / 2) permits: ask for fewer"
            );
            RawSemaphore {
                state: AtomicUsize::new(permits << SHIFT),
                tag: diagnostics::Tag::new(),
            }
        }
    }

    #[inline]
    pub(super) fn available(&self) -> usize {
        permits(self.state.load(Ordering::Relaxed))
    }

    #[inline]
    pub(super) fn has_waiters(&self) -> bool {
        self.state.load(Ordering::Relaxed) & WAITERS != 0
    }

    #[inline]
    pub(super) fn key(&self) -> usize {
        wait::key_of(self)
    }

    /// How many threads are queued: a census of the wait queue, waking nobody.
    pub(super) fn n_waiting(&self) -> usize {
        wait::queued(self.key())
    }

    /// Takes `n` permits if they are free and nobody is queued; never blocks.
    #[inline]
    fn try_acquire(&self, n: usize) -> bool {
        if n == 0 {
            return true;
        }
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & WAITERS != 0 || permits(state) < n {
                return false;
            }
            match self.state.compare_exchange_weak(
                state,
                state - (n << SHIFT),
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(s) => state = s,
            }
        }
    }

    /// Takes `n` permits before `deadline`; `false` if it passed first.
    /// `n` must be at most the caller's limit (checked by the public types).
    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    fn acquire_until(&self, n: usize, deadline: Deadline) -> bool {
        self.try_acquire(n) || (!deadline.has_passed() && self.acquire_slow(n, deadline))
    }

    /// Returns `n` permits, refusing (or clamping) past `limit`. On refusal, `Err` carries
    /// the permits that were free.
    #[inline]
    fn release(&self, n: usize, limit: usize, overflow: Overflow) -> Result<(), usize> {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & WAITERS != 0 {
                return self.release_slow(n, limit, overflow);
            }
            let total = add(permits(state), n, limit, overflow).ok_or(permits(state))?;
            match self.state.compare_exchange_weak(
                state,
                total << SHIFT,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(s) => state = s,
            }
        }
    }

    #[cold]
    #[inline(never)]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    fn acquire_slow(&self, n: usize, deadline: Deadline) -> bool {
        let mut spin = SpinWait::new();
        loop {
            let state = self.state.load(Ordering::Relaxed);
            if state & WAITERS == 0 {
                if permits(state) >= n {
                    if self.try_acquire(n) {
                        return true;
                    }
                    continue;
                }
                // Nobody is queued: a holder may be about to release. Spin a little (not
                // under loom, where a spin is a forced yield that hides interleavings).
                if !cfg!(tandem_loom) && spin.spin() {
                    continue;
                }
            }
            if deadline.has_passed() {
                return false;
            }

            // Under the queue's lock: take the permits if they are free and nobody is
            // queued, otherwise raise WAITERS and join the queue.
            let acquired = Cell::new(false);
            let validate = || {
                let mut state = self.state.load(Ordering::Relaxed);
                loop {
                    let (next, take) = if state & WAITERS == 0 && permits(state) >= n {
                        (state - (n << SHIFT), true)
                    } else if state & WAITERS == 0 {
                        (state | WAITERS, false)
                    } else {
                        return true;
                    };
                    match self.state.compare_exchange_weak(
                        state,
                        next,
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => {
                            acquired.set(take);
                            return !take;
                        }
                        Err(s) => state = s,
                    }
                }
            };
            let redistribute = Cell::new(false);
            let timed_out = |_key, was_last_thread| {
                if was_last_thread {
                    self.state.fetch_and(!WAITERS, Ordering::Relaxed);
                } else if self.available() > 0 {
                    // The permits this waiter was blocking may serve those behind it.
                    redistribute.set(true);
                }
            };
            diagnostics::wait_intent(PrimitiveKind::Semaphore, self.key(), Some(&self.tag));
            // SAFETY: the key is this semaphore's own address; `validate` and `timed_out`
            // only touch this semaphore's atomic word and two local cells, never panic and
            // never call the wait layer.
            let result = unsafe {
                wait::park(
                    self.key(),
                    validate,
                    || {},
                    timed_out,
                    ParkToken(n),
                    deadline.instant(),
                )
            };
            match result {
                ParkResult::Unparked(TOKEN_HANDOFF) => return true,
                ParkResult::Invalid if acquired.get() => return true,
                ParkResult::Unparked(_) | ParkResult::Invalid => {}
                ParkResult::TimedOut => {
                    if redistribute.get() {
                        // Adding nothing cannot exceed any limit.
                        let _ = self.release_slow(0, MAX_PERMITS, Overflow::Clamp);
                    }
                    return false;
                }
            }
            spin.reset();
        }
    }

    /// Adds `n` permits under the queue's lock and hands them to queued waiters in arrival
    /// order, stopping at the first waiter that cannot be fully served.
    #[cold]
    #[inline(never)]
    fn release_slow(&self, n: usize, limit: usize, overflow: Overflow) -> Result<(), usize> {
        // Permits left to hand out; `None` until the filter first runs (it only runs when
        // the queue is non-empty, which is when the word is stable under the lock).
        let left: Cell<Option<usize>> = Cell::new(None);
        let refused: Cell<Option<usize>> = Cell::new(None);
        let filter = |ParkToken(wanted): ParkToken| {
            let free = match left.get() {
                Some(free) => free,
                None => {
                    let now = self.available();
                    match add(now, n, limit, overflow) {
                        Some(total) => total,
                        None => {
                            refused.set(Some(now));
                            return FilterOp::Stop;
                        }
                    }
                }
            };
            if wanted <= free {
                left.set(Some(free - wanted));
                FilterOp::Unpark
            } else {
                left.set(Some(free));
                FilterOp::Stop
            }
        };
        let callback = |result: wait::UnparkResult| {
            if refused.get().is_some() {
                return TOKEN_HANDOFF;
            }
            match left.get() {
                // The queue was non-empty: WAITERS was set and the word stable. Publish
                // what is left, and whether anyone is still queued.
                Some(free) => {
                    let waiters = if result.have_more_threads { WAITERS } else { 0 };
                    self.state.store(free << SHIFT | waiters, Ordering::Release);
                }
                // The queue is empty, so WAITERS is clear and fast paths may race with us:
                // add with a compare-exchange loop.
                None => {
                    let mut state = self.state.load(Ordering::Relaxed);
                    loop {
                        let Some(total) = add(permits(state), n, limit, overflow) else {
                            refused.set(Some(permits(state)));
                            break;
                        };
                        match self.state.compare_exchange_weak(
                            state,
                            total << SHIFT,
                            Ordering::Release,
                            Ordering::Relaxed,
                        ) {
                            Ok(_) => break,
                            Err(s) => state = s,
                        }
                    }
                }
            }
            TOKEN_HANDOFF
        };
        // SAFETY: the key is this semaphore's own address; `filter` and `callback` only
        // touch this semaphore's atomic word and local cells, never panic and never call
        // the wait layer.
        unsafe {
            wait::unpark_filter(self.key(), filter, callback);
        }
        match refused.get() {
            Some(free) => Err(free),
            None => Ok(()),
        }
    }
}

/// What [`Semaphore`](super::Semaphore) and [`BoundedSemaphore`](super::BoundedSemaphore)
/// both do, written once over the engine; `limit` is the type's bound
/// ([`MAX_PERMITS`] for a plain semaphore). Each public method is one call here.
impl RawSemaphore {
    /// Names the semaphore in diagnostics reports.
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub(super) fn set_name(&self, name: String) {
        self.tag
            .set_name(PrimitiveKind::Semaphore, self.key(), name);
    }

    /// `n` permits before `deadline`, as a permit object; `None` if the deadline passed
    /// first. No check against the bound: a request above it just waits (Python's
    /// `acquire()` on a semaphore bounded at 0).
    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub(super) fn permit_until(
        &self,
        n: usize,
        deadline: Deadline,
        limit: usize,
    ) -> Option<SemaphorePermit<'_>> {
        self.acquire_until(n, deadline)
            .then(|| SemaphorePermit::new(self, n, limit))
    }

    /// `n` permits if free and nobody is queued, as a permit object; never blocks.
    #[inline]
    pub(super) fn try_permit(&self, n: usize, limit: usize) -> Option<SemaphorePermit<'_>> {
        self.try_acquire(n)
            .then(|| SemaphorePermit::new(self, n, limit))
    }

    /// Like [`permit_until`](Self::permit_until), refusing at once a request the bound
    /// could never grant.
    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub(super) fn many_until(
        &self,
        n: usize,
        deadline: Deadline,
        limit: usize,
    ) -> Result<Option<SemaphorePermit<'_>>, TooManyPermitsError> {
        check(n, limit)?;
        Ok(self.permit_until(n, deadline, limit))
    }

    /// Like [`try_permit`](Self::try_permit), refusing a request above the bound.
    #[inline]
    pub(super) fn try_many(
        &self,
        n: usize,
        limit: usize,
    ) -> Result<Option<SemaphorePermit<'_>>, TooManyPermitsError> {
        check(n, limit)?;
        Ok(self.try_permit(n, limit))
    }

    /// An explicit `release(n)`: refuses 0 (Python 3.9+) and any release past `limit`;
    /// nothing is released then.
    #[inline]
    pub(super) fn release_checked(&self, n: usize, limit: usize) -> Result<(), OverReleaseError> {
        if n == 0 {
            return Err(OverReleaseError::new(0, self.available(), limit));
        }
        self.release(n, limit, Overflow::Refuse)
            .map_err(|available| OverReleaseError::new(n, available, limit))
    }

    /// A permit's return: clamped at `limit`, as a drop must not fail.
    #[inline]
    pub(super) fn release_clamped(&self, n: usize, limit: usize) {
        let _ = self.release(n, limit, Overflow::Clamp);
    }
}

/// Refuses a request for more permits at once than `limit`: it would wait forever.
#[inline]
fn check(n: usize, limit: usize) -> Result<(), TooManyPermitsError> {
    if n > limit {
        return Err(TooManyPermitsError::new(n, limit));
    }
    Ok(())
}

#[cfg(all(test, not(tandem_loom)))]
mod tests {
    // Behaviour is tested through the public API in `tests/semaphore.rs`; here, the pieces
    // that are not public.
    use super::*;

    #[test]
    #[cfg(not(feature = "diagnostics"))] // with it, the semaphore also carries its name tag
    fn sizes() {
        use crate::sync::{BoundedSemaphore, Semaphore};
        assert_eq!(std::mem::size_of::<Semaphore>(), 8);
        assert!(std::mem::size_of::<BoundedSemaphore>() <= 16);
    }

    #[test]
    fn add_refuses_or_clamps_past_the_limit() {
        assert_eq!(add(1, 2, 3, Overflow::Refuse), Some(3));
        assert_eq!(add(2, 2, 3, Overflow::Refuse), None);
        assert_eq!(add(2, 2, 3, Overflow::Clamp), Some(3));
        assert_eq!(add(usize::MAX, 1, MAX_PERMITS, Overflow::Refuse), None);
        assert_eq!(
            add(MAX_PERMITS, 1, MAX_PERMITS, Overflow::Clamp),
            Some(MAX_PERMITS)
        );
    }

    #[test]
    fn state_word_holds_max_permits_and_the_flag() {
        let raw = RawSemaphore::new(MAX_PERMITS);
        assert_eq!(raw.available(), MAX_PERMITS);
        assert!(!raw.has_waiters());
        assert!(raw.try_acquire(MAX_PERMITS));
        assert_eq!(raw.state.load(Ordering::Relaxed), 0);
        assert_eq!(
            raw.release(MAX_PERMITS, MAX_PERMITS, Overflow::Refuse),
            Ok(())
        );
        assert_eq!(
            raw.release(1, MAX_PERMITS, Overflow::Refuse),
            Err(MAX_PERMITS)
        );
        assert_eq!(raw.state.load(Ordering::Relaxed), MAX_PERMITS << SHIFT);
    }
}

#[cfg(all(test, tandem_loom))]
mod loom_tests {
    use crate::sync::{BoundedSemaphore, Semaphore, SemaphorePermit};
    use loom::sync::Arc;
    use std::time::Duration;

    /// Two waiters, one releaser handing out one permit at a time: both get a permit (no
    /// lost permit, no lost wake-up: loom reports a deadlock otherwise) and the count
    /// balances.
    #[test]
    fn handoff_to_two_waiters() {
        loom::model(|| {
            let sem = Arc::new(Semaphore::new(0));
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let sem = Arc::clone(&sem);
                    loom::thread::spawn(move || {
                        let p = sem.acquire();
                        assert_eq!(p.count(), 1);
                    })
                })
                .collect();
            sem.release();
            sem.release();
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(sem.available_permits(), 2);
            assert!(!sem.has_waiters());
        });
    }

    /// A waiter for 2 permits times out (in the loom backend a timed park may time out at
    /// any moment) while a waiter for 1 is queued behind it and one permit is released:
    /// the permit must reach the second waiter, whatever the order.
    #[test]
    fn timed_out_waiter_redistributes() {
        loom::model(|| {
            let sem = Arc::new(Semaphore::new(0));
            let s1 = Arc::clone(&sem);
            let big = loom::thread::spawn(move || {
                s1.acquire_many_timeout(2, Duration::from_secs(1))
                    .unwrap()
                    .map(SemaphorePermit::forget)
                    .is_some()
            });
            let s2 = Arc::clone(&sem);
            let small = loom::thread::spawn(move || s2.acquire().forget());
            sem.release();
            let big_got = big.join().unwrap();
            small.join().unwrap();
            assert!(!big_got, "only one permit was ever released");
            assert_eq!(sem.available_permits(), 0);
            assert!(!sem.has_waiters());
        });
    }

    /// A bounded semaphore's fast paths against a queued waiter: the bound holds and the
    /// permits balance.
    #[test]
    fn bounded_release_races_acquire() {
        loom::model(|| {
            let sem = Arc::new(BoundedSemaphore::new(1));
            let p = sem.acquire();
            let s2 = Arc::clone(&sem);
            let t = loom::thread::spawn(move || {
                let _p = s2.acquire();
            });
            drop(p);
            t.join().unwrap();
            assert_eq!(sem.available_permits(), 1);
            assert!(sem.try_release().is_err());
        });
    }
}
