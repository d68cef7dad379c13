//! `RawCondvar`: the engine under `Condition` and `Condvar` (as `raw_lock.rs` is under the
//! locks): parking_lot's `Condvar` algorithm on tandem's wait layer. Waiters park on the condition's
//! address; its one word of state says which lock they will need again:
//!
//! | `state`        | meaning                                                          |
//! |----------------|------------------------------------------------------------------|
//! | `0`            | nobody waits: `notify*` returns at once (one relaxed load)       |
//! | the lock's key | threads are (or are about to be) parked on the condition         |
//!
//! - `wait`: while the queue is locked (`validate`), record the lock's key in `state`; once
//!   queued, unlock the lock (`before_sleep`) and sleep. Because the waiter is queued before
//!   the lock is released, a notifier (who must hold the lock) can never miss it.
//! - `notify`: while both queues are locked, if the lock is held (it always is for
//!   `Condition`: notify lives on the guard) set the lock's `PARKED` bit and *requeue* the
//!   first waiter from the condition's queue onto the lock's queue, without waking it. The
//!   notifier's unlock then wakes it (or hands the lock straight to it), so a notified thread
//!   wakes exactly once, already owning or about to own the lock, instead of waking only to
//!   block on the lock again. `notify_all` requeues everyone in one step.
//! - Time-outs: a waiter whose deadline passes while still on the condition's queue leaves
//!   it and reports "timed out" (clearing `state` if it was the last). One whose deadline
//!   passes after it was requeued was notified: it reports "notified" (parking_lot's
//!   `requeued` flag), so `notify` never counts a thread that then says it timed out.

use super::raw_lock::{RawLock, TOKEN_HANDOFF};
use crate::diagnostics::{self, PrimitiveKind};
use crate::primitive::atomic::{AtomicUsize, Ordering};
use crate::primitive::loom_const_fn;
use crate::wait::{self, Deadline, ParkResult, RequeueOp, UnparkResult, UnparkToken};

/// Unpark token from the condition itself: the lock was not handed over; take it.
const TOKEN_NORMAL: UnparkToken = UnparkToken(0);

/// The wait set of a condition variable, used with one [`RawLock`] (see the module docs).
///
/// Contract: every call passes the same lock for as long as anyone waits, and the caller of
/// `wait_until` and of the `notify*` methods holds that lock.
pub(crate) struct RawCondvar {
    /// `0`, or the key of the lock the waiters use.
    pub(super) state: AtomicUsize,
}

impl RawCondvar {
    loom_const_fn! {
        /// A condition variable nobody waits on.
        pub(crate) fn new() -> Self {
            RawCondvar {
                state: AtomicUsize::new(0),
            }
        }
    }

    #[inline]
    fn key(&self) -> usize {
        wait::key_of(self)
    }

    /// Unlocks `lock`, sleeps until notified or `deadline`, and locks `lock` again before
    /// returning whether it was notified. No spurious wake-ups: without a deadline it returns
    /// only once notified. The caller holds `lock`.
    pub(crate) fn wait_until(&self, lock: &RawLock, deadline: Deadline) -> bool {
        let key = self.key();
        let lock_key = lock.key();
        let mut requeued = false;
        let mut wrong_lock = false;
        let result = {
            let validate = || {
                let state = self.state.load(Ordering::Relaxed);
                if state == 0 {
                    self.state.store(lock_key, Ordering::Relaxed);
                } else if state != lock_key {
                    wrong_lock = true;
                    return false;
                }
                true
            };
            // Queued: now the lock can go, and a notifier taking it will find us. Then linger
            // a moment before sleeping (see `linger`).
            let before_sleep = || {
                lock.unlock();
                linger(lock);
            };
            let timed_out = |from_key: usize, was_last_thread: bool| {
                // Requeued onto the lock means notified: we will just take the lock.
                requeued = from_key != key;
                if !requeued && was_last_thread {
                    self.state.store(0, Ordering::Relaxed);
                }
            };
            diagnostics::wait_intent(PrimitiveKind::Condition, key, None);
            // SAFETY: the key is this condition's own address. `validate` and `timed_out`
            // only touch this condition's atomic state and locals, never panic and never call
            // the wait layer; `before_sleep` unlocks the lock, which may unpark (allowed) but
            // never parks or panics.
            unsafe {
                wait::park(
                    key,
                    validate,
                    before_sleep,
                    timed_out,
                    wait::DEFAULT_PARK_TOKEN,
                    deadline.instant(),
                )
            }
        };
        // The lock was never released (validation failed before `before_sleep`). Only a
        // public `Condvar` can be given two locks; a `Condition` has one.
        assert!(
            !wrong_lock,
            "a condition variable was waited on with two different locks at once: every \
             thread waiting on one Condvar must use the same lock"
        );
        if result != ParkResult::Unparked(TOKEN_HANDOFF) {
            lock.lock();
        } else {
            lock.note_handoff(); // for diagnostics: this thread holds it now
        }
        result.is_unparked() || requeued
    }

    /// Wakes the longest waiter, if any; `true` if there was one. The caller holds `lock`.
    #[inline]
    pub(crate) fn notify_one(&self, lock: &RawLock) -> bool {
        if self.state.load(Ordering::Relaxed) == 0 {
            return false;
        }
        self.notify_one_slow(lock)
    }

    /// Wakes the `n` longest waiters (all of them if fewer wait), in arrival order; returns
    /// how many it woke. The caller holds `lock`.
    #[inline]
    pub(crate) fn notify(&self, lock: &RawLock, n: usize) -> usize {
        let mut woken = 0;
        while woken < n && self.state.load(Ordering::Relaxed) != 0 && self.notify_one_slow(lock) {
            woken += 1;
        }
        woken
    }

    /// Wakes every waiter; returns how many. The caller holds `lock`.
    #[inline]
    pub(crate) fn notify_all(&self, lock: &RawLock) -> usize {
        if self.state.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        self.notify_all_slow(lock)
    }

    #[cold]
    fn notify_one_slow(&self, lock: &RawLock) -> bool {
        let lock_key = lock.key();
        let validate = || {
            if self.state.load(Ordering::Relaxed) != lock_key {
                return RequeueOp::Abort;
            }
            // Held (always, from a guard): requeue, and make sure its unlock wakes the
            // waiter. Not held: nobody will unlock it, so wake the waiter to take it.
            if lock.mark_parked_if_locked() {
                RequeueOp::RequeueOne
            } else {
                RequeueOp::UnparkOne
            }
        };
        let callback = |_op, result: UnparkResult| {
            if !result.have_more_threads {
                self.state.store(0, Ordering::Relaxed);
            }
            TOKEN_NORMAL
        };
        // SAFETY: both keys are addresses owned by this condition and its lock; `validate`
        // and `callback` only touch their atomic states, never panic and never call the wait
        // layer.
        let result = unsafe { wait::unpark_requeue(self.key(), lock_key, validate, callback) };
        result.unparked_threads + result.requeued_threads != 0
    }

    #[cold]
    fn notify_all_slow(&self, lock: &RawLock) -> usize {
        let lock_key = lock.key();
        let validate = || {
            if self.state.load(Ordering::Relaxed) != lock_key {
                return RequeueOp::Abort;
            }
            // Everyone leaves the condition's queue.
            self.state.store(0, Ordering::Relaxed);
            if lock.mark_parked_if_locked() {
                RequeueOp::RequeueAll
            } else {
                RequeueOp::UnparkOneRequeueRest
            }
        };
        let callback = |op, result: UnparkResult| {
            // The lock was free: the threads requeued behind the woken one need its unlock
            // to wake them.
            if op == RequeueOp::UnparkOneRequeueRest && result.requeued_threads != 0 {
                lock.mark_parked();
            }
            TOKEN_NORMAL
        };
        // SAFETY: as in `notify_one_slow`.
        let result = unsafe { wait::unpark_requeue(self.key(), lock_key, validate, callback) };
        result.unparked_threads + result.requeued_threads
    }
}

/// How many spin hints a waiter lingers for at most before it sleeps: a few microseconds,
/// about one context switch. Short, because this machine may have only 2 cores.
#[cfg(not(tandem_loom))]
const LINGER_SPINS: u32 = 256;

/// Between queueing (and releasing the lock) and sleeping, a waiter watches the lock for a
/// few microseconds: if another thread takes it and releases it again — the usual shape of
/// "notify, then wait or unlock" — that release may already have woken us, and then the park
/// that follows returns without sleeping in the kernel. This changes nothing about who is
/// woken or in what order; it only delays, by a bounded spin, the moment this thread goes to
/// sleep. Off under loom (it would only add interleavings).
#[inline]
fn linger(lock: &RawLock) {
    #[cfg(not(tandem_loom))]
    {
        let mut seen_locked = false;
        for _ in 0..LINGER_SPINS {
            if lock.is_locked() {
                seen_locked = true;
            } else if seen_locked {
                return;
            }
            std::hint::spin_loop();
        }
    }
    #[cfg(tandem_loom)]
    let _ = lock;
}
