//! The completion cell under every [`Task`](super::Task): one allocation holding the task's
//! closure, then its outcome, and one state word that every thread reads without a lock.
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
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::task::Waker;

use super::error::{drop_payload, panic_message, BrokenPool, TaskError};
use super::waiter::Waiter;
use crate::diagnostics::{self, PrimitiveKind};
use crate::primitive::atomic::{AtomicU32, Ordering};
use crate::primitive::UnsafeCell;
use crate::wait::latch::{self, Latched};
use crate::wait::{self, Deadline, SpinWait, UnparkResult};

const PENDING: u32 = 0;
const RUNNING: u32 = 1;
const COMPLETING: u32 = 2;
const DONE: u32 = 3;
const PHASE: u32 = 0b11;
const CANCELLED: u32 = 1 << 2;
const ERROR: u32 = 1 << 3;
const HAS_EXTRAS: u32 = 1 << 4;
const PARKED: u32 = 1 << 5;
const LOCKED: u32 = 1 << 6;
const LOCK_PARKED: u32 = 1 << 7;
/// The registrations lock's bits: no phase change touches them.
const LOCK_BITS: u32 = LOCKED | LOCK_PARKED;
/// The bits a phase change keeps.
const FLAGS: u32 = HAS_EXTRAS | PARKED | LOCK_BITS;

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
    fn bits(self) -> u32 {
        match self {
            Ending::Ok => 0,
            Ending::Error => ERROR,
            Ending::Cancelled => CANCELLED,
        }
    }

    fn of(state: u32) -> Ending {
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
type Callback = Box<dyn FnOnce(*const ()) + Send>;

/// Registrations, allocated on the first one (most tasks never have any).
#[derive(Default)]
struct Extras {
    /// The owner's async waker (only the owner polls, so one slot).
    waker: Option<Waker>,
    /// Done-callbacks, in registration order.
    callbacks: Vec<Callback>,
    /// `wait`/`as_completed` waiters, with the index they know this task by.
    waiters: Vec<(Arc<Waiter>, usize)>,
}

/// The untyped part of a cell: its state word and registrations. What `wait` and
/// `as_completed` see of a task, whatever its result type.
// Public only because `Waitable` (a sealed public trait) names it in a hidden method.
#[allow(unreachable_pub)]
pub struct Header {
    state: AtomicU32,
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
    fn new() -> Self {
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
    fn lock(&self) -> ExtrasGuard<'_> {
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
    fn lock_slow(&self) {
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
    fn unlock(&self) {
        if self.state.fetch_and(!LOCKED, Ordering::Release) & LOCK_PARKED != 0 {
            self.unlock_slow();
        }
    }

    /// The lock was released with a waiter parked: wake one (it competes for the lock
    /// again); the last one out clears `LOCK_PARKED`.
    #[cold]
    fn unlock_slow(&self) {
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

    fn lock_key(&self) -> usize {
        wait::key_of(&self.extras)
    }

    #[inline]
    fn load(&self) -> u32 {
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
    fn register(&self, accept_completing: bool, push: impl FnOnce(&mut Extras)) -> bool {
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
    fn register_callback(&self, callback: Callback) -> Result<(), Callback> {
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
    fn publish(&self, ending: Ending, outcome: *const ()) {
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
    fn publish_slow(&self, ending: Ending, outcome: *const ()) {
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
struct ExtrasGuard<'a> {
    header: &'a Header,
}

impl ExtrasGuard<'_> {
    /// The registrations.
    fn extras(&mut self) -> &mut Option<Box<Extras>> {
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

/// Runs a done-callback; a panic in it is caught (the panic hook has already reported it,
/// as Python logs a failing callback) and harms nothing else.
fn run_callback(callback: Callback, outcome: *const ()) {
    quietly(move || callback(outcome));
}

/// Runs user code whose panic must not unwind into tandem.
pub(crate) fn quietly(f: impl FnOnce()) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(f)) {
        drop_payload(payload);
    }
}

/// What a cell holds: the closure until a worker or a canceller claims it, then the outcome.
enum Stage<T, E, F> {
    Pending(F),
    Running,
    Done(Outcome<T, E>),
    Taken,
}

/// A task: its header and its stage, in one allocation (`Arc<Cell>`), shared by the pool's
/// queue entry and the user's `Task`.
pub(crate) struct Cell<T, E, F> {
    header: Header,
    stage: UnsafeCell<Stage<T, E, F>>,
}

// SAFETY: the stage is touched by one thread at a time (the claimer until `DONE`, then the
// owning `Task`); `F` and the outcome move between threads, hence `Send` bounds. Shared
// reads of the outcome from several threads happen only through `&Task` and done-callbacks,
// which require `T: Sync, E: Sync` at their own entry points.
unsafe impl<T: Send, E: Send, F: Send> Sync for Cell<T, E, F> {}
// SAFETY: as above.
unsafe impl<T: Send, E: Send, F: Send> Send for Cell<T, E, F> {}

/// What the pool sees of a queued task.
pub(crate) trait Run: Send + Sync {
    /// Runs the task unless it was cancelled first; `finishing(ending)` is called after the
    /// closure returned and before the outcome is published. `false` if nothing ran.
    fn run(&self, finishing: &dyn Fn(Ending)) -> bool;
    /// Cancels the task if it has not started; whether this call cancelled it.
    fn cancel_unstarted(&self) -> bool;
    /// Fails the task with `BrokenPool` if it has not started; whether this call did.
    fn fail_unstarted(&self, broken: &BrokenPool) -> bool;
}

/// What a `Task<T, E>` sees of its cell, whatever the closure type.
pub(crate) trait CellApi<T, E>: Send + Sync {
    /// The untyped part.
    fn header(&self) -> &Header;
    /// Python's `cancel()`: `true` if the task is (now) cancelled, `false` if it started.
    fn cancel(&self) -> bool;
    /// Moves the outcome out; `None` if it was already taken.
    ///
    /// # Safety
    /// The task must be done (`DONE` observed with acquire), and the caller must be the only
    /// one accessing the outcome (the owning `Task`, through `&mut` or by value).
    unsafe fn take(&self) -> Option<Outcome<T, E>>;
    /// The outcome; `None` if it was taken.
    ///
    /// # Safety
    /// The task must be done, and nobody may take the outcome while the reference lives
    /// (the caller borrows the owning `Task`).
    unsafe fn outcome(&self) -> Option<&Outcome<T, E>>;
}

/// What `end_unstarted` found.
enum Claim {
    /// This call ended the task.
    Ended,
    /// A worker is running (or ran) it.
    Started,
    /// It was already cancelled (perhaps still being published).
    AlreadyCancelled,
}

impl<T, E, F> Cell<T, E, F>
where
    F: FnOnce() -> Result<T, E>,
{
    /// A pending task that will run `f`.
    pub(crate) fn new(f: F) -> Self {
        Cell {
            header: Header::new(),
            stage: UnsafeCell::new(Stage::Pending(f)),
        }
    }

    /// Pointer to the outcome, for callbacks.
    ///
    /// # Safety
    /// The caller owns the stage (claimed and not yet published) and has written the outcome.
    unsafe fn outcome_ptr(&self) -> *const () {
        // SAFETY: the caller owns the stage.
        match self.stage.with(|p| unsafe { &*p }) {
            Stage::Done(outcome) => outcome as *const Outcome<T, E> as *const (),
            _ => unreachable!("the outcome is written before it is published"),
        }
    }

    /// Ends a task that has not started, with `outcome` (cancelled or broken pool).
    fn end_unstarted(&self, ending: Ending, outcome: impl FnOnce() -> Outcome<T, E>) -> Claim {
        let state = &self.header.state;
        let mut s = state.load(Ordering::Acquire);
        loop {
            match s & PHASE {
                PENDING => {}
                RUNNING => return Claim::Started,
                // COMPLETING or DONE: cancelled already, or it ran (or the pool broke, which
                // is not a cancellation either).
                _ if s & CANCELLED != 0 => return Claim::AlreadyCancelled,
                _ => return Claim::Started,
            }
            let next = (s & FLAGS) | COMPLETING | ending.bits();
            match state.compare_exchange_weak(s, next, Ordering::Acquire, Ordering::Acquire) {
                Ok(_) => break,
                Err(actual) => s = actual,
            }
        }
        // SAFETY: we moved the phase out of PENDING, so we own the stage until we publish.
        let stage = self.stage.with_mut(|p| unsafe { &mut *p });
        let closure = mem::replace(stage, Stage::Done(outcome()));
        // The closure's destructor is user code: a panic in it is contained.
        quietly(move || drop(closure));
        // SAFETY: we own the stage and wrote the outcome.
        let ptr = unsafe { self.outcome_ptr() };
        self.header.publish_slow(ending, ptr);
        Claim::Ended
    }
}

impl<T, E, F> Run for Cell<T, E, F>
where
    T: Send,
    E: Send,
    F: FnOnce() -> Result<T, E> + Send,
{
    fn run(&self, finishing: &dyn Fn(Ending)) -> bool {
        let state = &self.header.state;
        let mut s = state.load(Ordering::Relaxed);
        loop {
            if s & PHASE != PENDING {
                return false;
            }
            match state.compare_exchange_weak(
                s,
                (s & !PHASE) | RUNNING,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => s = actual,
            }
        }
        // SAFETY: we moved the phase to RUNNING, so we own the stage until we publish.
        let stage = self.stage.with_mut(|p| unsafe { &mut *p });
        let Stage::Pending(f) = mem::replace(stage, Stage::Running) else {
            unreachable!("a pending cell holds its closure")
        };
        let (outcome, ending) = match panic::catch_unwind(AssertUnwindSafe(f)) {
            Ok(Ok(value)) => (Ok(value), Ending::Ok),
            Ok(Err(e)) => (Err(TaskError::Failed(e)), Ending::Error),
            Err(payload) => {
                let message = panic_message(&*payload);
                drop_payload(payload);
                (Err(TaskError::Panicked(message)), Ending::Error)
            }
        };
        finishing(ending);
        *stage = Stage::Done(outcome);
        // SAFETY: we own the stage and wrote the outcome.
        let ptr = unsafe { self.outcome_ptr() };
        self.header.publish(ending, ptr);
        true
    }

    fn cancel_unstarted(&self) -> bool {
        matches!(
            self.end_unstarted(Ending::Cancelled, || Err(TaskError::Cancelled)),
            Claim::Ended
        )
    }

    fn fail_unstarted(&self, broken: &BrokenPool) -> bool {
        matches!(
            self.end_unstarted(Ending::Error, || Err(TaskError::BrokenPool(broken.clone()))),
            Claim::Ended
        )
    }
}

impl<T, E, F> CellApi<T, E> for Cell<T, E, F>
where
    T: Send,
    E: Send,
    F: FnOnce() -> Result<T, E> + Send,
{
    #[inline]
    fn header(&self) -> &Header {
        &self.header
    }

    fn cancel(&self) -> bool {
        match self.end_unstarted(Ending::Cancelled, || Err(TaskError::Cancelled)) {
            Claim::Ended => true,
            Claim::Started => false,
            Claim::AlreadyCancelled => {
                // Cancelled already; another canceller may still be publishing: be done
                // when we say so.
                self.header.wait_until(Deadline::NEVER);
                true
            }
        }
    }

    #[inline]
    unsafe fn take(&self) -> Option<Outcome<T, E>> {
        // SAFETY: the caller guarantees the task is done and it alone accesses the outcome.
        match mem::replace(self.stage.with_mut(|p| unsafe { &mut *p }), Stage::Taken) {
            Stage::Done(outcome) => Some(outcome),
            Stage::Taken => None,
            Stage::Pending(_) | Stage::Running => unreachable!("taken before done"),
        }
    }

    unsafe fn outcome(&self) -> Option<&Outcome<T, E>> {
        // SAFETY: the caller guarantees the task is done and nobody takes the outcome while
        // the reference lives.
        match self.stage.with(|p| unsafe { &*p }) {
            Stage::Done(outcome) => Some(outcome),
            Stage::Taken => None,
            Stage::Pending(_) | Stage::Running => unreachable!("read before done"),
        }
    }
}

/// Registers `callback` on `cell`, or runs it at once (in this thread) if the outcome is
/// already written.
pub(crate) fn add_done_callback<T, E>(
    cell: &dyn CellApi<T, E>,
    callback: impl FnOnce(&Outcome<T, E>) + Send + 'static,
) where
    T: Send + Sync,
    E: Send + Sync,
{
    let erased: Callback = Box::new(move |ptr: *const ()| {
        // SAFETY: callbacks are only ever called with a pointer to this cell's outcome
        // (whose type is `Outcome<T, E>`), while it is written and not yet taken.
        callback(unsafe { &*(ptr as *const Outcome<T, E>) })
    });
    if let Err(erased) = cell.header().register_callback(erased) {
        // SAFETY: registration failed, so the outcome is written (COMPLETING or DONE, seen
        // with acquire); the caller borrows the owning Task, so nobody takes it meanwhile.
        let outcome = unsafe { cell.outcome() }.expect("the result was already taken");
        run_callback(erased, outcome as *const Outcome<T, E> as *const ());
    }
}

/// The bytes one task's allocation costs beyond its value `T`, for a closure of type `F`:
/// the `Arc`'s two counters, the header and the stage (closure or outcome).
pub(crate) fn overhead<T, E, F>() -> usize {
    2 * mem::size_of::<usize>() + mem::size_of::<Cell<T, E, F>>() - mem::size_of::<T>()
}

#[cfg(all(test, not(tandem_loom)))]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    fn cell<T: Send, F: FnOnce() -> T + Send>(
        f: F,
    ) -> Arc<Cell<T, Infallible, impl FnOnce() -> Result<T, Infallible> + Send>> {
        Arc::new(Cell::new(move || Ok(f())))
    }

    #[test]
    fn run_then_take() {
        let c = cell(|| 41 + 1);
        assert!(!c.header.is_done());
        assert!(c.run(&|e| assert_eq!(e, Ending::Ok)));
        assert!(c.header.is_done());
        assert_eq!(c.header.ending(), Some(Ending::Ok));
        assert!(!c.run(&|_| {}), "a task runs once");
        assert!(!c.cancel(), "a finished task cannot be cancelled");
        // SAFETY: done, and this test is the only user.
        assert_eq!(unsafe { c.take() }, Some(Ok(42)));
        // SAFETY: as above.
        assert_eq!(unsafe { c.take() }, None);
    }

    #[test]
    fn panics_become_errors() {
        let c = cell(|| -> u8 { panic!("kaput") });
        assert!(c.run(&|e| assert_eq!(e, Ending::Error)));
        // SAFETY: done; sole user.
        let outcome = unsafe { c.take() };
        assert_eq!(outcome, Some(Err(TaskError::Panicked("kaput".into()))));
    }

    #[test]
    fn cancel_before_run() {
        let c = cell(|| 1);
        assert!(c.cancel());
        assert!(c.cancel(), "cancelling twice still says cancelled");
        assert!(c.header.is_cancelled());
        assert!(!c.run(&|_| panic!("must not run")));
        // SAFETY: done; sole user.
        assert_eq!(unsafe { c.take() }, Some(Err(TaskError::Cancelled)));
    }

    #[test]
    fn broken_pool_fails_pending_task() {
        let c = cell(|| 1);
        assert!(c.fail_unstarted(&BrokenPool::new("init")));
        assert!(!c.cancel(), "a failed task is not cancelled");
        assert_eq!(c.header.ending(), Some(Ending::Error));
        // SAFETY: done; sole user.
        let outcome = unsafe { c.take() };
        assert!(matches!(outcome, Some(Err(TaskError::BrokenPool(_)))));
    }

    #[test]
    fn callbacks_run_once_before_and_after_completion() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = cell(|| 7);
        let k = Arc::clone(&calls);
        add_done_callback(&*c, move |o| {
            assert_eq!(o, &Ok(7));
            k.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        c.run(&|_| {});
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let k = Arc::clone(&calls);
        add_done_callback(&*c, move |_| {
            k.fetch_add(10, Ordering::SeqCst);
        });
        assert_eq!(calls.load(Ordering::SeqCst), 11, "runs at once when done");
    }

    #[test]
    fn panicking_callback_harms_nothing() {
        let c = cell(|| 7);
        add_done_callback(&*c, |_| panic!("bad callback"));
        let ran = Arc::new(AtomicUsize::new(0));
        let r = Arc::clone(&ran);
        add_done_callback(&*c, move |_| {
            r.fetch_add(1, Ordering::SeqCst);
        });
        assert!(c.run(&|_| {}));
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert!(c.header.is_done());
    }

    #[test]
    fn wait_until_times_out_then_sees_completion() {
        let c = cell(|| 3);
        assert!(!c.header.wait_until(Deadline::after(Duration::ZERO)));
        assert!(!c
            .header
            .wait_until(Deadline::after(Duration::from_millis(5))));
        let c2 = Arc::clone(&c);
        let t = std::thread::spawn(move || c2.header.wait_until(Deadline::NEVER));
        c.run(&|_| {});
        assert!(t.join().unwrap());
    }

    #[test]
    fn overhead_is_at_most_64_bytes() {
        fn of<T, F: FnOnce() -> Result<T, Infallible>>(_: &F) -> usize {
            overhead::<T, Infallible, F>()
        }
        let small = of(&|| Ok(1u64));
        assert!(small <= 64, "overhead {small} bytes");
        let big = of(&|| Ok([0u8; 1024]));
        assert!(big <= 64, "overhead {big} bytes");
        let captured = 7u64;
        let capturing = of(&move || Ok(captured * 2));
        assert!(capturing <= 64, "overhead {capturing} bytes");
        assert_eq!(mem::size_of::<Header>(), 16);
    }
}

#[cfg(all(test, tandem_loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::AtomicUsize;
    use std::convert::Infallible;

    type TestCell = Cell<usize, Infallible, Box<dyn FnOnce() -> Result<usize, Infallible> + Send>>;

    fn cell(ran: Arc<AtomicUsize>) -> Arc<TestCell> {
        Arc::new(Cell::new(Box::new(move || {
            ran.fetch_add(1, Ordering::SeqCst);
            Ok(5)
        })))
    }

    /// A worker runs while the owner cancels: exactly one wins; the outcome matches; the
    /// closure ran iff cancel failed.
    #[test]
    fn cancel_races_run() {
        loom::model(|| {
            let ran = Arc::new(AtomicUsize::new(0));
            let c = cell(Arc::clone(&ran));
            let c2 = Arc::clone(&c);
            let worker = loom::thread::spawn(move || c2.run(&|_| {}));
            let cancelled = c.cancel();
            let did_run = worker.join().unwrap();
            assert_ne!(cancelled, did_run, "exactly one of run / cancel wins");
            assert_eq!(ran.load(Ordering::SeqCst), usize::from(did_run));
            assert!(c.header.wait_until(Deadline::NEVER));
            assert_eq!(c.header.is_cancelled(), cancelled);
            // SAFETY: done; the worker is joined, so this thread is the only user.
            let outcome = unsafe { c.take() }.unwrap();
            if cancelled {
                assert_eq!(outcome, Err(TaskError::Cancelled));
            } else {
                assert_eq!(outcome, Ok(5));
            }
        });
    }

    /// The owner blocks for the result while a worker completes it: no lost wake-up (loom
    /// reports a deadlock if the parked owner is never woken).
    #[test]
    fn waiter_parks_against_completion() {
        loom::model(|| {
            let ran = Arc::new(AtomicUsize::new(0));
            let c = cell(ran);
            let c2 = Arc::clone(&c);
            let worker = loom::thread::spawn(move || {
                c2.run(&|_| {});
            });
            assert!(c.header.wait_until(Deadline::NEVER));
            // SAFETY: done (acquire), and the owner alone takes it.
            assert_eq!(unsafe { c.take() }, Some(Ok(5)));
            worker.join().unwrap();
        });
    }

    /// A callback registered while the task completes runs exactly once, whoever runs it,
    /// and always sees the outcome.
    #[test]
    fn callback_registration_races_completion() {
        loom::model(|| {
            let ran = Arc::new(AtomicUsize::new(0));
            let c = cell(ran);
            let c2 = Arc::clone(&c);
            let worker = loom::thread::spawn(move || {
                c2.run(&|_| {});
            });
            let calls = Arc::new(AtomicUsize::new(0));
            let k = Arc::clone(&calls);
            add_done_callback(&*c, move |o| {
                assert_eq!(o, &Ok(5));
                k.fetch_add(1, Ordering::SeqCst);
            });
            worker.join().unwrap();
            assert!(c.header.is_done());
            assert_eq!(calls.load(Ordering::SeqCst), 1);
        });
    }

    /// Two threads register callbacks at once, so one waits for the registrations lock
    /// (spinning, then parking); then the task runs: both callbacks run, once each.
    #[test]
    fn contended_registrations() {
        loom::model(|| {
            let ran = Arc::new(AtomicUsize::new(0));
            let c = cell(ran);
            let calls = Arc::new(AtomicUsize::new(0));
            let (c2, k2) = (Arc::clone(&c), Arc::clone(&calls));
            let other = loom::thread::spawn(move || {
                add_done_callback(&*c2, move |_| {
                    k2.fetch_add(1, Ordering::SeqCst);
                });
            });
            let k = Arc::clone(&calls);
            add_done_callback(&*c, move |_| {
                k.fetch_add(10, Ordering::SeqCst);
            });
            other.join().unwrap();
            assert_eq!(calls.load(Ordering::SeqCst), 0, "not before completion");
            assert!(c.run(&|_| {}));
            assert_eq!(calls.load(Ordering::SeqCst), 11);
            assert_eq!(c.header.state.load(Ordering::SeqCst) & LOCK_BITS, 0);
        });
    }

    /// Two cancellers race: both report cancelled, and the task is done when each returns.
    #[test]
    fn two_cancellers() {
        loom::model(|| {
            let ran = Arc::new(AtomicUsize::new(0));
            let c = cell(Arc::clone(&ran));
            let c2 = Arc::clone(&c);
            let other = loom::thread::spawn(move || {
                let r = c2.cancel();
                assert!(c2.header.is_done());
                r
            });
            assert!(c.cancel());
            assert!(c.header.is_done());
            assert!(other.join().unwrap());
            assert_eq!(ran.load(Ordering::SeqCst), 0);
        });
    }
}
