//! The untyped part of every task's cell: [`Header`], its state word (the phase machine and
//! `PARKED`), its registrations (callbacks, waker, waiters) and the lock over them.
//!
//! # The state word
//!
//! | bits | name         | meaning                                                              |
//! |------|--------------|----------------------------------------------------------------------|
//! | 0–1  | phase        | `PENDING` → `RUNNING` → `COMPLETING` → `DONE` (cancel: `PENDING` → `COMPLETING`) |
//! | 2    | `CANCELLED`  | the outcome is `Err(Cancelled)` (set with `COMPLETING`)              |
//! | 3    | `ERROR`      | the outcome is another error: panicked, failed, broken pool          |
//! | 4    | `HAS_EXTRAS` | callbacks, a waker or `wait`/`as_completed` waiters are registered   |
//! | 5    | `PARKED`     | a thread may be parked on the cell's address (`result`, `wait`)      |
//! | 6    | `LOCKED`     | the registrations lock is held                                       |
//! | 7    | `LOCK_PARKED`| a thread may be parked waiting for that lock (on `extras`' address)  |
//!
//! - **Claiming.** Whoever moves the phase out of `PENDING` (a worker to `RUNNING`, a
//!   canceller or a breaking pool to `COMPLETING`) owns the stage (closure, then outcome)
//!   until it publishes. So a task runs at most once, and `cancel` succeeds only on a task
//!   that has not started.
//! - **Publishing** writes the outcome, then, in the common case where nobody registered
//!   anything, one compare-exchange `RUNNING → DONE` (release). Otherwise (`publish_slow`):
//!   `COMPLETING` (release), run the callbacks registered so far, then, under the cell's lock,
//!   `DONE` and take every remaining registration, and wake: parked threads (`unpark_all`
//!   on the cell's address), the waker, the waiters.
//! - **Registering** happens under the cell's lock and sets `HAS_EXTRAS` with a
//!   compare-exchange that fails if the phase moved: a registrar that sees `COMPLETING` runs
//!   its callback itself (the outcome is written and immutable until `DONE`), one that sees
//!   `DONE` treats the task as done. Because `DONE` is stored under the same lock once
//!   `HAS_EXTRAS` is set, no registration is ever missed or run twice.
//! - **Reading** the outcome requires observing `DONE` (acquire). Only the owning `Task`
//!   moves it out, through `&mut`/`self`, so no `&Task` (callback registrar, waiter) can be
//!   reading it at that moment; callbacks run by the completer finish before `DONE`.
//! - **Waiting** threads spin briefly, then set `PARKED` and park on the cell's address,
//!   validating (under the wait layer's queue lock) that the phase is not `DONE`; a stale
//!   `PARKED` costs the completer one `unpark_all` call and nothing else. This is the wait
//!   layer's one latch algorithm (`wait::latch`), over the cell's own word: the cell is a
//!   `Latched` that opens at `DONE`.
//!
//! # The registrations lock
//! Two bits of the same word, with parking_lot's `RawMutex` algorithm on the wait layer:
//! spin briefly while nobody is parked, then set `LOCK_PARKED` and park on the address of
//! `extras` until the lock is released. It is not a `sync::Lock` because a task must stay
//! small (a `Lock` grows with the `diagnostics` feature) and because its critical sections
//! (push or take a registration) never take another lock nor run user code, so per-task
//! locks would only add noise to the lock-order graph and the thread dumps. Every phase
//! change keeps the two bits.

use std::mem;
use std::sync::Arc;
use std::task::Waker;

use super::{quietly, run_callback};
use crate::diagnostics::{self, PrimitiveKind};
use crate::executor::error::TaskError;
use crate::executor::waiter::Waiter;
use crate::primitive::atomic::{AtomicU32, Ordering};
use crate::primitive::UnsafeCell;
use crate::wait::latch::{self, Latched};
use crate::wait::{self, Deadline, SpinWait, UnparkResult};

pub(super) const PENDING: u32 = 0;
pub(super) const RUNNING: u32 = 1;
pub(super) const COMPLETING: u32 = 2;
pub(super) const DONE: u32 = 3;
pub(super) const PHASE: u32 = 0b11;
pub(super) const CANCELLED: u32 = 1 << 2;
pub(super) const ERROR: u32 = 1 << 3;
pub(super) const HAS_EXTRAS: u32 = 1 << 4;
pub(super) const PARKED: u32 = 1 << 5;
pub(super) const LOCKED: u32 = 1 << 6;
pub(super) const LOCK_PARKED: u32 = 1 << 7;
/// The registrations lock's bits: no phase change touches them.
pub(super) const LOCK_BITS: u32 = LOCKED | LOCK_PARKED;
/// The bits a phase change keeps.
pub(super) const FLAGS: u32 = HAS_EXTRAS | PARKED | LOCK_BITS;

/// A task's outcome: its value, or why there is none.
pub(crate) type Outcome<T, E> = Result<T, TaskError<E>>;

/// How a task ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// It returned a value.
    Ok,
    /// It panicked, returned `Err`, or the pool broke before it ran.
    Error,
    /// It was cancelled before it started.
    Cancelled,
}

impl Ending {
    pub(super) fn bits(self) -> u32 {
        match self {
            Ending::Ok => 0,
            Ending::Error => ERROR,
            Ending::Cancelled => CANCELLED,
        }
    }

    pub(super) fn of(state: u32) -> Ending {
        if state & CANCELLED != 0 {
            Ending::Cancelled
        } else if state & ERROR != 0 {
            Ending::Error
        } else {
            Ending::Ok
        }
    }
}

/// A done-callback with its outcome type erased: called with a pointer to the outcome.
pub(super) type Callback = Box<dyn FnOnce(*const ()) + Send>;

/// Registrations, allocated on the first one (most tasks never have any).
#[derive(Default)]
pub(super) struct Extras {
    /// The owner's async waker (only the owner polls, so one slot).
    pub(super) waker: Option<Waker>,
    /// Done-callbacks, in registration order.
    pub(super) callbacks: Vec<Callback>,
    /// `wait`/`as_completed` waiters, with the index they know this task by.
    pub(super) waiters: Vec<(Arc<Waiter>, usize)>,
}

/// The untyped part of a cell: its state word and registrations. What `wait` and
/// `as_completed` see of a task, whatever its result type.
// Public only because `Waitable` (a sealed public trait) names it in a hidden method.
#[allow(unreachable_pub)]
pub struct Header {
    pub(super) state: AtomicU32,
    /// Guarded by the `LOCKED` bit of `state`; its address is the lock waiters' key.
    extras: UnsafeCell<Option<Box<Extras>>>,
}

/// The cell is a latch that opens at `DONE`: `result`/`wait` park through the wait layer's
/// one latch algorithm (`wait::latch`). Its `PARKED` bit lives in the state word, not in a
/// separate `wait::Latch`, so that the common publish stays one compare-exchange
/// (`RUNNING → DONE`, which fails if anyone parked) and a task stays one word of state.
impl Latched for Header {
    type State = u32;

    #[inline]
    fn state(&self, order: Ordering) -> u32 {
        self.state.load(order)
    }

    #[inline]
    fn is_open(s: u32) -> bool {
        s & PHASE == DONE
    }

    #[inline]
    fn has_parked(s: u32) -> bool {
        s & PARKED != 0
    }

    #[inline]
    fn try_mark_parked(&self, s: u32) -> bool {
        self.state
            .compare_exchange_weak(s, s | PARKED, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    #[inline]
    fn key(&self) -> usize {
        wait::key_of(self)
    }
}

// SAFETY: `extras` is only touched under the `LOCKED` bit; everything else is atomic.
unsafe impl Sync for Header {}
// SAFETY: as above; the registrations inside are `Send`.
unsafe impl Send for Header {}

impl Header {
    pub(super) fn new() -> Self {
        Header {
            state: AtomicU32::new(PENDING),
            extras: UnsafeCell::new(None),
        }
    }

    /// Takes the registrations lock.
    // Why not `sync::raw_lock::RawLock` (the same parking_lot algorithm)? Without the
    // `diagnostics` feature it would fit (one byte, in the header's padding); with it, a
    // `RawLock` carries a `LockDiag` (two counters and a name tag, 24+ bytes on every task
    // of a pool that makes millions) and records every acquisition in the lock-order graph
    // and the thread dumps, and there is no `RawLock` without that. These critical sections
    // never take another lock nor run user code, so that record would be pure noise. Two bits
    // of the word the task already has cost nothing; the algorithm is `RawLock`'s unfair
    // path (no hand-off, no `LEAKED`), which is all a push-or-take section needs.
    #[inline]
    pub(super) fn lock(&self) -> ExtrasGuard<'_> {
        let s = self.state.load(Ordering::Relaxed);
        if s & LOCKED != 0
            || self
                .state
                .compare_exchange_weak(s, s | LOCKED, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            self.lock_slow();
        }
        ExtrasGuard { header: self }
    }

    #[cold]
    pub(super) fn lock_slow(&self) {
        let mut spin = SpinWait::new();
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & LOCKED == 0 {
                match self.state.compare_exchange_weak(
                    s,
                    s | LOCKED,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return,
                    Err(actual) => s = actual,
                }
                continue;
            }
            if s & LOCK_PARKED == 0 {
                if spin.spin() {
                    s = self.state.load(Ordering::Relaxed);
                    continue;
                }
                if let Err(actual) = self.state.compare_exchange_weak(
                    s,
                    s | LOCK_PARKED,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    s = actual;
                    continue;
                }
            }
            let validate = || self.state.load(Ordering::Relaxed) & LOCK_BITS == LOCK_BITS;
            diagnostics::wait_intent(PrimitiveKind::Other, self.lock_key(), None);
            // SAFETY: the key is the address of this cell's `extras`; `validate` only reads
            // the state word, never panics and never calls the wait layer.
            unsafe {
                wait::park(
                    self.lock_key(),
                    validate,
                    || {},
                    |_, _| {},
                    wait::DEFAULT_PARK_TOKEN,
                    None,
                );
            }
            spin.reset();
            s = self.state.load(Ordering::Relaxed);
        }
    }

    #[inline]
    pub(super) fn unlock(&self) {
        if self.state.fetch_and(!LOCKED, Ordering::Release) & LOCK_PARKED != 0 {
            self.unlock_slow();
        }
    }

    /// The lock was released with a waiter parked: wake one (it competes for the lock
    /// again); the last one out clears `LOCK_PARKED`.
    #[cold]
    pub(super) fn unlock_slow(&self) {
        let callback = |result: UnparkResult| {
            if !result.have_more_threads {
                self.state.fetch_and(!LOCK_PARKED, Ordering::Relaxed);
            }
            wait::DEFAULT_UNPARK_TOKEN
        };
        // SAFETY: the key is the address of this cell's `extras`; the callback only touches
        // the state word, never panics and never calls the wait layer.
        unsafe {
            wait::unpark_one(self.lock_key(), callback);
        }
    }

    pub(super) fn lock_key(&self) -> usize {
        wait::key_of(&self.extras)
    }

    #[inline]
    pub(super) fn load(&self) -> u32 {
        self.state.load(Ordering::Acquire)
    }

    /// Whether the outcome is published.
    #[inline]
    pub(crate) fn is_done(&self) -> bool {
        self.load() & PHASE == DONE
    }

    /// How the task ended, once it is done.
    #[inline]
    pub(crate) fn ending(&self) -> Option<Ending> {
        let s = self.load();
        (s & PHASE == DONE).then(|| Ending::of(s))
    }

    /// Whether a worker is running it (done-callbacks included).
    pub(crate) fn is_running(&self) -> bool {
        let s = self.load();
        matches!(s & PHASE, RUNNING | COMPLETING) && s & CANCELLED == 0
    }

    /// Whether it ended cancelled.
    pub(crate) fn is_cancelled(&self) -> bool {
        let s = self.load();
        s & PHASE == DONE && s & CANCELLED != 0
    }

    /// Blocks until the outcome is published or `deadline` passes; whether it is published.
    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub(crate) fn wait_until(&self, deadline: Deadline) -> bool {
        self.is_done() || latch::wait_open(self, deadline, true)
    }

    /// Runs `push` on the registrations under the lock, having set `HAS_EXTRAS`, unless the
    /// task is done (or, without `accept_completing`, completing): then `false` and `push`
    /// is not called. On `false` the outcome is published and may be read.
    pub(super) fn register(&self, accept_completing: bool, push: impl FnOnce(&mut Extras)) -> bool {
        let mut guard = self.lock();
        let mut s = self.load();
        loop {
            let phase = s & PHASE;
            if phase == DONE || (phase == COMPLETING && !accept_completing) {
                return false;
            }
            if s & HAS_EXTRAS != 0 {
                break;
            }
            match self.state.compare_exchange_weak(
                s,
                s | HAS_EXTRAS,
                Ordering::Relaxed,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => s = actual,
            }
        }
        push(guard.extras().get_or_insert_with(Default::default));
        true
    }

    /// Registers a done-callback; `Err` gives it back when the outcome is already written
    /// (the caller then runs it itself).
    pub(super) fn register_callback(&self, callback: Callback) -> Result<(), Callback> {
        let mut callback = Some(callback);
        if self.register(false, |e| e.callbacks.extend(callback.take())) {
            Ok(())
        } else {
            Err(callback.take().expect("not registered"))
        }
    }

    /// Registers (or refreshes) the owner's waker; `false` if the task is already done.
    pub(crate) fn register_waker(&self, waker: &Waker) -> bool {
        self.register(true, |e| match &mut e.waker {
            Some(w) if w.will_wake(waker) => {}
            slot => *slot = Some(waker.clone()),
        })
    }

    /// Registers a `wait`/`as_completed` waiter that knows this task as `index`; `false` if
    /// the task is already done (the waiter is not registered then).
    pub(crate) fn register_waiter(&self, waiter: &Arc<Waiter>, index: usize) -> bool {
        self.register(true, |e| e.waiters.push((Arc::clone(waiter), index)))
    }

    /// Removes `waiter`'s registrations (a `wait` that returned, an `as_completed` dropped).
    pub(crate) fn deregister_waiter(&self, waiter: &Arc<Waiter>) {
        if self.load() & HAS_EXTRAS == 0 {
            return;
        }
        if let Some(e) = self.lock().extras() {
            e.waiters.retain(|(w, _)| !Arc::ptr_eq(w, waiter));
        }
    }

    /// Publishes the outcome the caller wrote, ending `RUNNING`. `outcome` points to it, for
    /// the callbacks.
    #[inline]
    pub(super) fn publish(&self, ending: Ending, outcome: *const ()) {
        if self
            .state
            .compare_exchange(
                RUNNING,
                DONE | ending.bits(),
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_err()
        {
            self.publish_slow(ending, outcome);
        }
    }

    /// Publishing with registrations or parked threads (or from `COMPLETING`, after a
    /// cancel): see the module docs.
    #[cold]
    pub(super) fn publish_slow(&self, ending: Ending, outcome: *const ()) {
        let end = ending.bits();
        let mut s = self.state.load(Ordering::Relaxed);
        while s & PHASE != COMPLETING {
            debug_assert_eq!(s & PHASE, RUNNING);
            let next = (s & FLAGS) | COMPLETING | end;
            match self
                .state
                .compare_exchange_weak(s, next, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => s = next,
                Err(actual) => s = actual,
            }
        }
        if s & HAS_EXTRAS != 0 {
            let callbacks = match self.lock().extras() {
                Some(e) => mem::take(&mut e.callbacks),
                None => Vec::new(),
            };
            for callback in callbacks {
                run_callback(callback, outcome);
            }
        }
        // DONE, dropping `HAS_EXTRAS` and `PARKED` (handled below) and keeping the lock's
        // bits: a registrar holding the lock sees DONE when it tries to set `HAS_EXTRAS`.
        let to_done = |s: u32| DONE | end | (s & LOCK_BITS);
        let mut s = self.state.load(Ordering::Relaxed);
        let (old, extras) = loop {
            if s & HAS_EXTRAS == 0 {
                match self.state.compare_exchange_weak(
                    s,
                    to_done(s),
                    Ordering::Release,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => break (s, None),
                    Err(actual) => s = actual,
                }
                continue;
            }
            let mut guard = self.lock();
            let mut s = self.state.load(Ordering::Relaxed);
            while let Err(actual) = self.state.compare_exchange_weak(
                s,
                to_done(s),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                s = actual;
            }
            break (s, guard.extras().take());
        };
        if old & PARKED != 0 {
            latch::wake_all(self.key());
        }
        if let Some(extras) = extras {
            let Extras {
                waker,
                callbacks,
                waiters,
            } = *extras;
            debug_assert!(callbacks.is_empty(), "late callbacks run where registered");
            for (waiter, index) in waiters {
                waiter.notify(index, ending);
            }
            if let Some(waker) = waker {
                quietly(move || waker.wake());
            }
        }
    }
}

/// Holds a cell's registrations lock; releases it when dropped.
pub(super) struct ExtrasGuard<'a> {
    header: &'a Header,
}

impl ExtrasGuard<'_> {
    /// The registrations.
    pub(super) fn extras(&mut self) -> &mut Option<Box<Extras>> {
        // SAFETY: the guard holds the `LOCKED` bit, which grants exclusive access to
        // `extras`; `&mut self` keeps the reference unique.
        self.header.extras.with_mut(|p| unsafe { &mut *p })
    }
}

impl Drop for ExtrasGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.header.unlock();
    }
}
