//! The algorithm under [`Barrier`](super::Barrier): its state words, how a thread joins
//! a generation, and how a generation ends.
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
use std::panic::{self, AssertUnwindSafe};

use crate::diagnostics::{self, PrimitiveKind};
use crate::primitive::atomic::Ordering;
use crate::wait::{self, Deadline, FilterOp, ParkResult, ParkToken, SpinWait, UnparkToken};

use super::{Barrier, BrokenBarrierError};

// Fates (a generation's outcome, an unpark token's value, a broken reason's code).
pub(super) const RELEASED: usize = 0;
pub(super) const ABORTED: usize = 1;
pub(super) const TIMED_OUT: usize = 2;
pub(super) const ACTION_PANICKED: usize = 3;
pub(super) const RESET: usize = 4;

pub(super) const RELEASING: usize = 0b1;
pub(super) const BROKEN_SHIFT: u32 = 1;
pub(super) const SLOT_SHIFT: u32 = 4;
pub(super) const FATE_MASK: usize = 0b111;

/// The park token of a thread waiting for a running action to finish before it joins.
pub(super) const ARRIVAL: ParkToken = ParkToken(1);

/// The park token of a waiter of `generation`.
#[inline]
pub(super) fn waiter_token(generation: usize) -> ParkToken {
    ParkToken(generation << 1)
}

#[inline]
pub(super) fn broken_fate(flags: usize) -> usize {
    (flags >> BROKEN_SHIFT) & FATE_MASK
}

#[inline]
pub(super) fn slot_fate(flags: usize) -> usize {
    (flags >> SLOT_SHIFT) & FATE_MASK
}

/// Where a call to `wait` stands. Produced under the queue lock.
#[derive(Clone, Copy, Debug)]
pub(super) enum Step {
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

impl Barrier {
    #[inline]
    pub(super) fn key(&self) -> usize {
        wait::key_of(self)
    }

    pub(super) fn wait_deadline(&self, deadline: Deadline) -> Result<usize, BrokenBarrierError> {
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
    pub(super) fn arrive(&self, generation: usize, releasing: bool) -> Step {
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
    pub(super) fn timed_out(&self, step: Step) -> Step {
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
    pub(super) fn spin_then_park(
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
    pub(super) fn settle_spinner(&self, index: usize, generation: usize) -> Step {
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
    pub(super) fn end_generation(&self, fate: usize) {
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
    pub(super) fn finish(&self, step: Step) -> Result<usize, BrokenBarrierError> {
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
    pub(super) fn lead(
        &self,
        index: usize,
        generation: usize,
    ) -> Result<usize, BrokenBarrierError> {
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
    pub(super) fn finish_release(&self, generation: usize, panicked: bool) -> usize {
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
    pub(super) fn wake_broken(&self, generation: usize) {
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

    /// `abort`: breaks the current generation (and every later one until `reset`).
    pub(super) fn abort_generation(&self) {
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

    /// `reset`: ends the current generation with "reset" (or its broken reason) and clears
    /// the reason.
    pub(super) fn reset_generation(&self) {
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
}
