//! `Barrier`: Python's `threading.Barrier` — a meeting point for a fixed number of threads,
//! reusable generation after generation, with an action, timeouts, `abort` and `reset`.
//!
//! # How it works
//! The state is five words, and **every write to them happens while the wait layer's queue
//! for the barrier's address is locked**: inside `park`'s `validate` or `timed_out` closure,
//! or inside `unpark_filter`'s callback. The queue lock is therefore the barrier's state
//! lock, and joining a generation and parking on it are one atomic step: a waiter is either
//! the last to arrive, or is in the queue (with its generation as its park token) before
//! anyone can end that generation. Ending a generation and waking its waiters happen in one
//! locked step too (except the last arrival of a barrier without an action, which ends the
//! generation while joining and wakes the waiters right after: a waiter that times out in
//! between sees the generation already moved on, which can only mean it was released). So
//! every parked waiter learns its generation's fate exactly, from its unpark token —
//! released, or broken with a reason — however many generations, resets or aborts follow.
//!
//! | word         | meaning                                                                |
//! |--------------|------------------------------------------------------------------------|
//! | `generation` | counts generations (wrapping); a waiter's park token is `generation << 1` |
//! | `count`      | threads that joined the current generation                            |
//! | `flags` bit 0 | `RELEASING`: the last thread is running the action; arrivals wait (token `ARRIVAL`) |
//! | `flags` bits 1–3 | broken reason (0 = not broken): aborted, timed out, action panicked |
//! | `flags` bits 4–6 | the fate of the generation whose spinners are still draining       |
//! | `spinners`   | waiters of the current generation spinning before they park            |
//! | `draining`   | spinners of an ended generation that have not looked at its fate yet   |
//!
//! **Spinning.** Before parking, a waiter may spin briefly watching `generation` (on two
//! threads that meet often, the other usually arrives within a microsecond, and a spin saves
//! both threads a trip through the kernel). A spinner is not in the queue, so it cannot get
//! a token: when a generation with spinners ends, its fate is written to the `flags` slot and
//! its spinners move to `draining`; each reads the slot under the lock and leaves. The slot
//! is never overwritten while `draining > 0`, because a thread joins as a spinner only when
//! `draining == 0` — otherwise it parks at once — so the next generation to end with
//! spinners finds the slot free. (A thread arriving while `draining > 0` first spins briefly
//! for it to reach 0: the draining spinners are running and leave within nanoseconds, and
//! then the newcomer may spin too instead of parking.)
//!
//! Operations: `wait` joins (or gets the broken error, or waits out a running action);
//! `abort` sets the broken reason and wakes the current generation; `reset` wakes the
//! current generation with "reset" (or its broken reason), clears the reason and starts a
//! new generation; a timed-out waiter sets "timed out" in its `timed_out` callback (so a
//! release and a timeout never both win) and then wakes the rest of its generation.

use std::cell::Cell;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::diagnostics::{self, PrimitiveKind};
use crate::primitive::atomic::{AtomicUsize, Ordering};
use crate::wait::{self, Deadline, FilterOp, ParkResult, ParkToken, SpinWait, UnparkToken};

// Fates (a generation's outcome, an unpark token's value, a broken reason's code).
const RELEASED: usize = 0;
const ABORTED: usize = 1;
const TIMED_OUT: usize = 2;
const ACTION_PANICKED: usize = 3;
const RESET: usize = 4;

const RELEASING: usize = 0b1;
const BROKEN_SHIFT: u32 = 1;
const SLOT_SHIFT: u32 = 4;
const FATE_MASK: usize = 0b111;

/// The park token of a thread waiting for a running action to finish before it joins.
const ARRIVAL: ParkToken = ParkToken(1);

/// The park token of a waiter of `generation`.
#[inline]
fn waiter_token(generation: usize) -> ParkToken {
    ParkToken(generation << 1)
}

#[inline]
fn broken_fate(flags: usize) -> usize {
    (flags >> BROKEN_SHIFT) & FATE_MASK
}

#[inline]
fn slot_fate(flags: usize) -> usize {
    (flags >> SLOT_SHIFT) & FATE_MASK
}

/// Where a call to `wait` stands. Produced under the queue lock.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// The state changed under our feet: look again.
    Retry,
    /// The last thread is running the action: wait (parked, token `ARRIVAL`), then retry.
    AwaitRelease,
    /// Joined `generation` at `index`, parked until it ends.
    Waiting { index: usize, generation: usize },
    /// Joined `generation` at `index`, spinning before parking.
    Spin { index: usize, generation: usize },
    /// Last to arrive at `generation`, which has an action to run.
    Lead { index: usize, generation: usize },
    /// Last to arrive at `generation`, which is released; its waiters must be woken.
    LeadReleased { index: usize, generation: usize },
    /// The call is over: `Ok(index)` if `fate` is `RELEASED`, else broken.
    Done { index: usize, fate: usize },
    /// This call's timeout broke `generation`: wake its waiters, then report the timeout.
    Broke { generation: usize },
}

/// A meeting point for a fixed number of threads: Python's `threading.Barrier`.
///
/// Each thread calls [`wait`](Barrier::wait); the calls block until `parties` threads have
/// called it, then all return together, each with its arrival index (`0` for the first to
/// arrive, `parties - 1` for the last). The barrier then starts a new generation, so the
/// same barrier can be used again and again.
///
/// | Python | tandem |
/// | --- | --- |
/// | `b = threading.Barrier(n)` | `let b = Barrier::new(n)?;` |
/// | `threading.Barrier(n, action=f, timeout=t)` | `Barrier::builder(n).action(f).timeout(t).build()?` |
/// | `threading.Barrier(0)` → `ValueError` | `Err(InvalidPartiesError)` |
/// | `i = b.wait()` | `let i = b.wait()?;` |
/// | `b.wait(timeout=t)` | `b.wait_timeout(t)` |
/// | `except threading.BrokenBarrierError` | `Err(BrokenBarrierError)`, with a [`reason`](BrokenBarrierError::reason) |
/// | `b.abort()`, `b.reset()` | `b.abort()`, `b.reset()` |
/// | `b.broken`, `b.n_waiting`, `b.parties` | `b.is_broken()`, `b.n_waiting()`, `b.parties()` |
///
/// # Examples
/// Workers initialise, meet at the barrier, then go on together; exactly one of them (the
/// last to arrive) runs the action, before any is released.
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use tandem::sync::Barrier;
///
/// let ready = Arc::new(AtomicUsize::new(0));
/// let r = Arc::clone(&ready);
/// let barrier = Barrier::builder(4)
///     .action(move || assert_eq!(r.load(Ordering::SeqCst), 4)) // all 4 initialised
///     .build()?;
/// let mut indices: Vec<usize> = std::thread::scope(|s| {
///     let workers: Vec<_> = (0..4)
///         .map(|_| {
///             s.spawn(|| {
///                 ready.fetch_add(1, Ordering::SeqCst); // initialisation
///                 let index = barrier.wait().expect("nobody breaks this barrier");
///                 assert_eq!(ready.load(Ordering::SeqCst), 4); // nobody passed early
///                 index
///             })
///         })
///         .collect();
///     workers.into_iter().map(|w| w.join().unwrap()).collect()
/// });
/// indices.sort();
/// assert_eq!(indices, [0, 1, 2, 3]);
/// # Ok::<(), tandem::sync::InvalidPartiesError>(())
/// ```
///
/// Breaking and repairing: a timed-out wait breaks the barrier for everyone until `reset`.
/// ```
/// use std::time::Duration;
/// use tandem::sync::{Barrier, BrokenReason};
///
/// let barrier = Barrier::new(2)?;
/// let err = barrier.wait_timeout(Duration::from_millis(10)).unwrap_err(); // nobody came
/// assert_eq!(err.reason(), BrokenReason::TimedOut);
/// assert!(barrier.is_broken());
/// assert!(barrier.wait().is_err()); // broken until reset
/// barrier.reset();
/// std::thread::scope(|s| {
///     s.spawn(|| barrier.wait().unwrap());
///     barrier.wait().unwrap();
/// });
/// # Ok::<(), tandem::sync::InvalidPartiesError>(())
/// ```
///
/// # Differences from Python
/// - **A panicking action** breaks the barrier: every thread of the generation gets
///   [`BrokenReason::ActionPanicked`], and the error of the thread that ran the action carries
///   the panic message ([`BrokenBarrierError::panic_message`]). Python re-raises the action's
///   exception in that thread instead; here the panic stays contained, as everywhere in tandem.
/// - **A timeout that expires while the action runs** breaks the barrier (in Python the
///   action runs under the barrier's lock, so no waiter can time out during it).
/// - Threads arriving for the next generation while the action runs wait for it, as in
///   Python, but their timeout keeps running (Python waits there without one).
/// - Python makes threads of the next generation wait until every thread of the previous one
///   has woken up ("draining"); tandem lets the next generation start at once. Nothing else
///   can tell the difference.
///
/// # Memory ordering
/// Everything each thread did before its `wait` of a generation happens-before the action and
/// everything every thread of that generation does after its `wait` returns `Ok`.
pub struct Barrier {
    generation: AtomicUsize,
    count: AtomicUsize,
    flags: AtomicUsize,
    spinners: AtomicUsize,
    draining: AtomicUsize,
    parties: usize,
    timeout: Option<Duration>,
    action: Option<Box<dyn Fn() + Send + Sync>>,
    /// Diagnostics: name and wait statistics (zero-sized without the feature).
    tag: diagnostics::Tag,
}

impl Barrier {
    /// Names the barrier in diagnostics reports (thread dumps of the threads waiting on it,
    /// statistics); this call's line becomes its creation site. Does nothing without the
    /// `diagnostics` feature.
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn set_name(&self, name: impl Into<String>) {
        self.tag.set_name(
            crate::diagnostics::PrimitiveKind::Barrier,
            self.key(),
            name.into(),
        );
    }

    /// The barrier's diagnostics name, if it was given one; always `None` without the
    /// `diagnostics` feature.
    pub fn name(&self) -> Option<String> {
        self.tag.name()
    }

    /// Statistics of the waits on this barrier (waits, time-outs, total and longest wait),
    /// counted while diagnostics recording is on.
    #[cfg(feature = "diagnostics")]
    pub fn stats(&self) -> crate::diagnostics::Stats {
        self.tag.stats()
    }

    /// A barrier for `parties` threads, without an action or a default timeout.
    /// Python: `threading.Barrier(parties)`.
    ///
    /// # Errors
    /// [`InvalidPartiesError`] if `parties` is 0 (Python raises `ValueError`).
    pub fn new(parties: usize) -> Result<Barrier, InvalidPartiesError> {
        Barrier::builder(parties).build()
    }

    /// Starts building a barrier for `parties` threads, to give it an action or a default
    /// timeout. Python: `threading.Barrier(parties, action=None, timeout=None)`.
    pub fn builder(parties: usize) -> BarrierBuilder {
        BarrierBuilder {
            parties,
            action: None,
            timeout: None,
        }
    }

    /// Waits until `parties` threads are waiting, then returns this thread's arrival index
    /// (`0..parties`; the last to arrive, which ran the action, gets `parties - 1`).
    /// Uses the barrier's default timeout, if it was built with one. Python: `b.wait()`.
    ///
    /// # Errors
    /// [`BrokenBarrierError`] if the barrier is broken or breaks while waiting: it was
    /// aborted, a wait timed out (this one included), the action panicked, or it was reset.
    pub fn wait(&self) -> Result<usize, BrokenBarrierError> {
        self.wait_deadline(Deadline::from_timeout(self.timeout))
    }

    /// Like [`wait`](Barrier::wait), giving up after `timeout`: a wait that times out
    /// **breaks the barrier** for every thread (as in Python), and returns
    /// [`BrokenReason::TimedOut`]. A zero timeout still joins, and succeeds only if this
    /// thread completes the generation. A timeout too large to represent waits forever.
    /// Python: `b.wait(timeout=t)`.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, BrokenBarrierError> {
        self.wait_deadline(Deadline::after(timeout))
    }

    /// Like [`wait_timeout`](Barrier::wait_timeout), with a deadline instead of a timeout.
    pub fn wait_until(&self, deadline: Instant) -> Result<usize, BrokenBarrierError> {
        self.wait_deadline(Deadline::at(deadline))
    }

    /// Breaks the barrier: threads waiting now, and every later caller, get
    /// [`BrokenReason::Aborted`] until [`reset`](Barrier::reset). Useful to unblock the
    /// others when one thread cannot arrive. If the barrier is already broken, its reason
    /// stays the first one. Python: `b.abort()`.
    pub fn abort(&self) {
        let filter = |token: ParkToken| {
            if token == waiter_token(self.generation.load(Ordering::Relaxed)) || token == ARRIVAL {
                FilterOp::Unpark
            } else {
                FilterOp::Skip
            }
        };
        let callback = |_| {
            let flags = self.flags.load(Ordering::Relaxed);
            let mut fate = broken_fate(flags);
            if fate == RELEASED {
                fate = ABORTED;
                self.flags
                    .store(flags | (ABORTED << BROKEN_SHIFT), Ordering::Release);
            }
            UnparkToken(fate)
        };
        // SAFETY: the key is this barrier's address; `filter` and `callback` only touch its
        // atomics, never panic and never call the wait layer.
        unsafe {
            wait::unpark_filter(self.key(), filter, callback);
        }
    }

    /// Returns the barrier to its initial, unbroken state: threads waiting now get
    /// [`BrokenReason::Reset`] (or the reason the barrier was broken), and the barrier is
    /// ready for a new generation at once. Python: `b.reset()`.
    pub fn reset(&self) {
        let filter = |token: ParkToken| {
            if token == waiter_token(self.generation.load(Ordering::Relaxed)) {
                FilterOp::Unpark
            } else {
                FilterOp::Skip
            }
        };
        let callback = |_| {
            let flags = self.flags.load(Ordering::Relaxed);
            let fate = match broken_fate(flags) {
                RELEASED => RESET,
                broken => broken,
            };
            self.flags
                .store(flags & !(FATE_MASK << BROKEN_SHIFT), Ordering::Release);
            self.end_generation(fate);
            UnparkToken(fate)
        };
        // SAFETY: the key is this barrier's address; `filter` and `callback` only touch its
        // atomics, never panic and never call the wait layer.
        unsafe {
            wait::unpark_filter(self.key(), filter, callback);
        }
    }

    /// Whether the barrier is broken (aborted, timed out or its action panicked, and not
    /// reset since). Python: `b.broken`.
    #[doc(alias = "broken")]
    pub fn is_broken(&self) -> bool {
        broken_fate(self.flags.load(Ordering::Acquire)) != RELEASED
    }

    /// How many threads are waiting in the current generation (a snapshot); 0 while the
    /// barrier is broken or its action runs. Python: `b.n_waiting`.
    pub fn n_waiting(&self) -> usize {
        let flags = self.flags.load(Ordering::Acquire);
        if flags & RELEASING != 0 || broken_fate(flags) != RELEASED {
            0
        } else {
            self.count.load(Ordering::Relaxed)
        }
    }

    /// How many threads must arrive to release a generation. Python: `b.parties`.
    pub fn parties(&self) -> usize {
        self.parties
    }

    /// The default timeout of [`wait`](Barrier::wait), if the barrier was built with one.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    #[inline]
    fn key(&self) -> usize {
        wait::key_of(self)
    }

    fn wait_deadline(&self, deadline: Deadline) -> Result<usize, BrokenBarrierError> {
        // Spinners of the previous generation are still reading its fate: they are running
        // and about to leave. Give them a moment, so that we may spin too rather than park.
        if self.draining.load(Ordering::Relaxed) != 0 {
            let mut spin = SpinWait::new();
            while self.draining.load(Ordering::Relaxed) != 0 && spin.spin() {}
        }
        loop {
            let generation = self.generation.load(Ordering::Acquire);
            let releasing = self.flags.load(Ordering::Acquire) & RELEASING != 0;
            let token = if releasing {
                ARRIVAL
            } else {
                waiter_token(generation)
            };
            let step = Cell::new(Step::Retry);
            let validate = || {
                let s = self.arrive(generation, releasing);
                step.set(s);
                matches!(s, Step::Waiting { .. } | Step::AwaitRelease)
            };
            let timed_out = |_, _| step.set(self.timed_out(step.get()));
            diagnostics::wait_intent(PrimitiveKind::Barrier, self.key(), Some(&self.tag));
            // SAFETY: the key is this barrier's address; `validate` and `timed_out` only
            // touch its atomics and a local `Cell`, never panic and never call the wait layer.
            let result = unsafe {
                wait::park(
                    self.key(),
                    validate,
                    || {},
                    timed_out,
                    token,
                    deadline.instant(),
                )
            };
            let step = match (result, step.get()) {
                (ParkResult::Unparked(_), Step::AwaitRelease) => continue,
                (ParkResult::Unparked(fate), Step::Waiting { index, .. }) => Step::Done {
                    index,
                    fate: fate.0,
                },
                (_, step) => step,
            };
            match step {
                Step::Retry | Step::AwaitRelease => continue,
                Step::Spin { index, generation } => {
                    return self.spin_then_park(index, generation, deadline)
                }
                step => return self.finish(step),
            }
        }
    }

    /// Joins the current generation, if it is still `generation`. Under the queue lock.
    fn arrive(&self, generation: usize, releasing: bool) -> Step {
        let flags = self.flags.load(Ordering::Relaxed);
        let broken = broken_fate(flags);
        if broken != RELEASED {
            return Step::Done {
                index: 0,
                fate: broken,
            };
        }
        if flags & RELEASING != 0 {
            return if releasing {
                Step::AwaitRelease
            } else {
                Step::Retry
            };
        }
        if releasing || self.generation.load(Ordering::Relaxed) != generation {
            return Step::Retry;
        }
        let index = self.count.load(Ordering::Relaxed);
        self.count.store(index + 1, Ordering::Relaxed);
        if index + 1 == self.parties {
            if self.action.is_some() {
                self.flags.store(flags | RELEASING, Ordering::Release);
                return Step::Lead { index, generation };
            }
            self.end_generation(RELEASED);
            return Step::LeadReleased { index, generation };
        }
        if self.draining.load(Ordering::Relaxed) == 0 {
            let spinners = self.spinners.load(Ordering::Relaxed);
            self.spinners.store(spinners + 1, Ordering::Relaxed);
            return Step::Spin { index, generation };
        }
        Step::Waiting { index, generation }
    }

    /// A timed park gave up; we are out of the queue. Under the queue lock.
    fn timed_out(&self, step: Step) -> Step {
        let (index, joined) = match step {
            Step::Waiting { index, generation } => (index, Some(generation)),
            Step::AwaitRelease => (0, None),
            other => return other,
        };
        let flags = self.flags.load(Ordering::Relaxed);
        let generation = self.generation.load(Ordering::Relaxed);
        if joined.is_some_and(|g| g != generation) {
            // Our generation moved on while we were still queued: only the last arrival of a
            // barrier without an action does that (and wakes us right after): released.
            return Step::Done {
                index,
                fate: RELEASED,
            };
        }
        match broken_fate(flags) {
            // A timed-out wait breaks the barrier. For a thread waiting out a running action,
            // that is the generation the action belongs to (or the one a reset started).
            RELEASED => {
                self.flags
                    .store(flags | (TIMED_OUT << BROKEN_SHIFT), Ordering::Release);
                Step::Broke { generation }
            }
            broken => Step::Done {
                index,
                fate: broken,
            },
        }
    }

    /// Spins briefly while our generation is pending, then parks (or settles what happened).
    #[cold]
    fn spin_then_park(
        &self,
        index: usize,
        generation: usize,
        deadline: Deadline,
    ) -> Result<usize, BrokenBarrierError> {
        let mut spin = SpinWait::new();
        while self.generation.load(Ordering::Acquire) == generation
            && broken_fate(self.flags.load(Ordering::Acquire)) == RELEASED
            && !deadline.has_passed()
            && spin.spin()
        {}
        let step = Cell::new(Step::Retry);
        let validate = || {
            let s = self.settle_spinner(index, generation);
            step.set(s);
            matches!(s, Step::Waiting { .. })
        };
        let timed_out = |_, _| step.set(self.timed_out(step.get()));
        diagnostics::wait_intent(PrimitiveKind::Barrier, self.key(), Some(&self.tag));
        // SAFETY: the key is this barrier's address; `validate` and `timed_out` only touch
        // its atomics and a local `Cell`, never panic and never call the wait layer.
        let result = unsafe {
            wait::park(
                self.key(),
                validate,
                || {},
                timed_out,
                waiter_token(generation),
                deadline.instant(),
            )
        };
        let step = match result {
            ParkResult::Unparked(fate) => Step::Done {
                index,
                fate: fate.0,
            },
            _ => step.get(),
        };
        self.finish(step)
    }

    /// A spinner stops spinning: it becomes an ordinary parked waiter, or learns how its
    /// generation ended. Under the queue lock.
    fn settle_spinner(&self, index: usize, generation: usize) -> Step {
        let flags = self.flags.load(Ordering::Relaxed);
        if self.generation.load(Ordering::Relaxed) != generation {
            // Our generation ended while we spun; `draining` counts us, so the slot still
            // holds its fate.
            let draining = self.draining.load(Ordering::Relaxed);
            debug_assert!(draining > 0, "a spinner of an ended generation is draining");
            self.draining.store(draining - 1, Ordering::Relaxed);
            return Step::Done {
                index,
                fate: slot_fate(flags),
            };
        }
        let spinners = self.spinners.load(Ordering::Relaxed);
        self.spinners.store(spinners - 1, Ordering::Relaxed);
        match broken_fate(flags) {
            RELEASED => Step::Waiting { index, generation },
            fate => Step::Done { index, fate },
        }
    }

    /// Ends the current generation with `fate`: a new one starts. Under the queue lock.
    fn end_generation(&self, fate: usize) {
        self.count.store(0, Ordering::Relaxed);
        let spinners = self.spinners.load(Ordering::Relaxed);
        if spinners > 0 {
            debug_assert_eq!(self.draining.load(Ordering::Relaxed), 0, "the slot is free");
            self.draining.store(spinners, Ordering::Relaxed);
            self.spinners.store(0, Ordering::Relaxed);
            let flags = self.flags.load(Ordering::Relaxed) & !(FATE_MASK << SLOT_SHIFT);
            self.flags
                .store(flags | (fate << SLOT_SHIFT), Ordering::Relaxed);
        }
        let generation = self.generation.load(Ordering::Relaxed);
        self.generation
            .store(generation.wrapping_add(1), Ordering::Release);
    }

    /// Completes a call whose step is final.
    fn finish(&self, step: Step) -> Result<usize, BrokenBarrierError> {
        match step {
            Step::Done { index, fate } => match fate {
                RELEASED => Ok(index),
                fate => Err(BrokenBarrierError::new(fate, None)),
            },
            Step::Lead { index, generation } => self.lead(index, generation),
            Step::LeadReleased { index, generation } => {
                let filter = |token: ParkToken| {
                    if token == waiter_token(generation) {
                        FilterOp::Unpark
                    } else {
                        FilterOp::Skip
                    }
                };
                // SAFETY: the key is this barrier's address; the closures only compare tokens.
                unsafe {
                    wait::unpark_filter(self.key(), filter, |_| UnparkToken(RELEASED));
                }
                Ok(index)
            }
            Step::Broke { generation } => {
                self.wake_broken(generation);
                Err(BrokenBarrierError::new(TIMED_OUT, None))
            }
            Step::Retry | Step::AwaitRelease | Step::Waiting { .. } | Step::Spin { .. } => {
                unreachable!("not a final step: {step:?}")
            }
        }
    }

    /// The last thread of `generation` runs the action, then releases (or breaks) it.
    #[cold]
    fn lead(&self, index: usize, generation: usize) -> Result<usize, BrokenBarrierError> {
        let action = self
            .action
            .as_deref()
            .expect("only a barrier with an action has a leader step");
        let panic_message = panic::catch_unwind(AssertUnwindSafe(action))
            .err()
            .map(|payload| crate::thread::panic_message(&*payload));
        let fate = Cell::new(RELEASED);
        let filter = |token: ParkToken| {
            if token == waiter_token(generation) || token == ARRIVAL {
                FilterOp::Unpark
            } else {
                FilterOp::Skip
            }
        };
        let callback = |_| {
            let f = self.finish_release(generation, panic_message.is_some());
            fate.set(f);
            UnparkToken(f)
        };
        // SAFETY: the key is this barrier's address; `filter` and `callback` only touch its
        // atomics and a local `Cell`, never panic and never call the wait layer.
        unsafe {
            wait::unpark_filter(self.key(), filter, callback);
        }
        match fate.get() {
            RELEASED => Ok(index),
            ACTION_PANICKED => Err(BrokenBarrierError::new(ACTION_PANICKED, panic_message)),
            fate => Err(BrokenBarrierError::new(fate, None)),
        }
    }

    /// After the action: the generation's fate. Under the queue lock.
    fn finish_release(&self, generation: usize, panicked: bool) -> usize {
        let flags = self.flags.load(Ordering::Relaxed) & !RELEASING;
        self.flags.store(flags, Ordering::Release);
        if self.generation.load(Ordering::Relaxed) != generation {
            return RESET; // reset while the action ran; its waiters are already woken
        }
        match broken_fate(flags) {
            RELEASED if panicked => {
                self.flags
                    .store(flags | (ACTION_PANICKED << BROKEN_SHIFT), Ordering::Release);
                ACTION_PANICKED
            }
            RELEASED => {
                self.end_generation(RELEASED);
                RELEASED
            }
            broken => broken,
        }
    }

    /// After our timeout broke `generation`: wake its other waiters (and threads waiting out
    /// an action) with the reason it is broken.
    fn wake_broken(&self, generation: usize) {
        let filter = |token: ParkToken| {
            if token == waiter_token(generation) || token == ARRIVAL {
                FilterOp::Unpark
            } else {
                FilterOp::Skip
            }
        };
        let callback = |_| {
            UnparkToken(match broken_fate(self.flags.load(Ordering::Relaxed)) {
                RELEASED => RESET, // a reset came first (and woke the waiters already)
                broken => broken,
            })
        };
        // SAFETY: the key is this barrier's address; `filter` and `callback` only touch its
        // atomics, never panic and never call the wait layer.
        unsafe {
            wait::unpark_filter(self.key(), filter, callback);
        }
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties)
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.is_broken())
            .field("timeout", &self.timeout)
            .field("action", &self.action.is_some())
            .finish()
    }
}

/// Builds a [`Barrier`] with an action or a default timeout: `Barrier::builder(n)`.
///
/// ```
/// use std::time::Duration;
/// use tandem::sync::Barrier;
///
/// // Python: threading.Barrier(3, action=lambda: print("all here"), timeout=5)
/// let barrier = Barrier::builder(3)
///     .action(|| println!("all here"))
///     .timeout(Duration::from_secs(5))
///     .build()?;
/// assert_eq!(barrier.parties(), 3);
/// assert_eq!(barrier.timeout(), Some(Duration::from_secs(5)));
/// assert!(Barrier::builder(0).build().is_err());
/// # Ok::<(), tandem::sync::InvalidPartiesError>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct BarrierBuilder {
    parties: usize,
    action: Option<Box<dyn Fn() + Send + Sync>>,
    timeout: Option<Duration>,
}

impl BarrierBuilder {
    /// Runs `action` once per generation, in the last thread to arrive, before any thread of
    /// the generation is released. If it panics, the barrier breaks
    /// ([`BrokenReason::ActionPanicked`]).
    pub fn action(mut self, action: impl Fn() + Send + Sync + 'static) -> Self {
        self.action = Some(Box::new(action));
        self
    }

    /// The timeout of [`Barrier::wait`] (without one, it waits forever).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The barrier.
    ///
    /// # Errors
    /// [`InvalidPartiesError`] if the barrier was asked for 0 parties.
    pub fn build(self) -> Result<Barrier, InvalidPartiesError> {
        if self.parties == 0 {
            return Err(InvalidPartiesError { parties: 0 });
        }
        Ok(Barrier {
            generation: AtomicUsize::new(0),
            count: AtomicUsize::new(0),
            flags: AtomicUsize::new(0),
            spinners: AtomicUsize::new(0),
            draining: AtomicUsize::new(0),
            parties: self.parties,
            timeout: self.timeout,
            action: self.action,
            tag: diagnostics::Tag::new(),
        })
    }
}

impl fmt::Debug for BarrierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BarrierBuilder")
            .field("parties", &self.parties)
            .field("timeout", &self.timeout)
            .field("action", &self.action.is_some())
            .finish()
    }
}

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
    fn new(fate: usize, panic_message: Option<String>) -> Self {
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

#[cfg(all(test, not(tandem_loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize as StdAtomicUsize;
    use std::sync::Arc;

    #[test]
    fn zero_parties_is_an_error() {
        let err = Barrier::new(0).unwrap_err();
        assert_eq!(err.parties(), 0);
        assert!(err.to_string().contains("at least 1 party"));
        assert!(Barrier::builder(0).action(|| ()).build().is_err());
    }

    #[test]
    fn single_party_never_blocks() {
        let runs = Arc::new(StdAtomicUsize::new(0));
        let r = Arc::clone(&runs);
        let b = Barrier::builder(1)
            .action(move || {
                r.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .unwrap();
        for _ in 0..3 {
            assert_eq!(b.wait(), Ok(0));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn timeout_breaks_and_reset_repairs() {
        let b = Barrier::new(2).unwrap();
        let err = b.wait_timeout(Duration::ZERO).unwrap_err();
        assert_eq!(err.reason(), BrokenReason::TimedOut);
        assert!(b.is_broken());
        assert_eq!(b.n_waiting(), 0);
        assert_eq!(b.wait().unwrap_err().reason(), BrokenReason::TimedOut);
        b.abort();
        assert_eq!(
            b.wait().unwrap_err().reason(),
            BrokenReason::TimedOut,
            "the first reason stays"
        );
        b.reset();
        assert!(!b.is_broken());
        b.abort();
        assert_eq!(b.wait().unwrap_err().reason(), BrokenReason::Aborted);
    }

    #[test]
    fn error_messages_say_what_to_do() {
        for (fate, needle) in [
            (ABORTED, "aborted"),
            (TIMED_OUT, "timed out"),
            (ACTION_PANICKED, "action panicked"),
            (RESET, "wait again"),
        ] {
            let msg = BrokenBarrierError::new(fate, None).to_string();
            assert!(msg.contains(needle), "{msg}");
        }
        let e = BrokenBarrierError::new(ACTION_PANICKED, Some("boom".into()));
        assert_eq!(e.panic_message(), Some("boom"));
        assert!(e.to_string().contains("(boom)"));
    }

    #[test]
    fn debug_and_accessors() {
        let b = Barrier::builder(3)
            .timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        assert_eq!(b.parties(), 3);
        assert_eq!(b.timeout(), Some(Duration::from_secs(1)));
        assert!(format!("{b:?}").contains("parties: 3"));
        assert!(format!("{:?}", Barrier::builder(2)).contains("parties: 2"));
    }

    #[test]
    fn barrier_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Barrier>();
        check::<BrokenBarrierError>();
    }
}

#[cfg(all(test, tandem_loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    /// Two parties over two generations: each generation's indices are exactly {0, 1}, and
    /// the spin/park/settle paths (spinner draining, token hand-off) never lose a fate.
    #[test]
    fn two_parties_two_generations() {
        loom::model(|| {
            let barrier = Arc::new(Barrier::new(2).unwrap());
            let b2 = Arc::clone(&barrier);
            let t = loom::thread::spawn(move || {
                let a = b2.wait().unwrap();
                let b = b2.wait().unwrap();
                (a, b)
            });
            let a = barrier.wait().unwrap();
            let b = barrier.wait().unwrap();
            let (ta, tb) = t.join().unwrap();
            assert_eq!(a + ta, 1, "generation 1 indices are {{0, 1}}");
            assert_eq!(b + tb, 1, "generation 2 indices are {{0, 1}}");
            assert!(!barrier.is_broken());
            assert_eq!(barrier.n_waiting(), 0);
        });
    }

    /// `abort` racing with a waiter: the waiter is either released (impossible here: it is
    /// alone) or gets `Aborted`; it never hangs, and the barrier ends broken.
    #[test]
    fn abort_races_wait() {
        loom::model(|| {
            let barrier = Arc::new(Barrier::new(2).unwrap());
            let b2 = Arc::clone(&barrier);
            let t = loom::thread::spawn(move || b2.wait());
            barrier.abort();
            let r = t.join().unwrap();
            assert_eq!(r.unwrap_err().reason(), BrokenReason::Aborted);
            assert!(barrier.is_broken());
        });
    }

    /// A timed wait racing with the release (the loom backend may time a park out at any
    /// moment): both threads pass with indices {0, 1}, or both get `TimedOut` — never one of
    /// each, even when the timeout fires between the release and the wake-up.
    #[test]
    fn timeout_races_release() {
        loom::model(|| {
            let barrier = Arc::new(Barrier::new(2).unwrap());
            let b2 = Arc::clone(&barrier);
            let t = loom::thread::spawn(move || b2.wait_timeout(Duration::from_secs(1)));
            let mine = barrier.wait();
            let theirs = t.join().unwrap();
            match (mine, theirs) {
                (Ok(a), Ok(b)) => assert_eq!(a + b, 1),
                (Err(a), Err(b)) => {
                    assert_eq!(a.reason(), BrokenReason::TimedOut);
                    assert_eq!(b.reason(), BrokenReason::TimedOut);
                    assert!(barrier.is_broken());
                }
                other => panic!("mixed fates: {other:?}"),
            }
        });
    }

    /// `reset` racing with a waiter: the waiter gets `Reset` if it had joined, or joins the
    /// new generation; then a second thread releases it. Never hangs, never breaks.
    #[test]
    fn reset_races_wait() {
        loom::model(|| {
            let barrier = Arc::new(Barrier::new(2).unwrap());
            let b2 = Arc::clone(&barrier);
            let t = loom::thread::spawn(move || loop {
                match b2.wait() {
                    Ok(i) => return i,
                    Err(e) => assert_eq!(e.reason(), BrokenReason::Reset),
                }
            });
            barrier.reset();
            let mine = barrier.wait().unwrap();
            assert_eq!(mine + t.join().unwrap(), 1);
            assert!(!barrier.is_broken());
        });
    }
}
