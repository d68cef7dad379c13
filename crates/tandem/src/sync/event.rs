//! `Event`: Python's `threading.Event`, a flag threads wait for, in one word.
//!
//! | bits   | name     | meaning                                                            |
//! |--------|----------|--------------------------------------------------------------------|
//! | 0      | `SET`    | the flag                                                           |
//! | 1      | `PARKED` | a waiter is (or is about to be) queued on the event's key          |
//! | 2..    | epoch    | how many times the flag went from clear to set (wrapping)          |
//!
//! - `wait` on a set event is one load. Otherwise the waiter raises `PARKED` and parks with
//!   the epoch it saw as its park token; `validate` (under the queue's lock) checks that the
//!   word is still exactly "clear, parked, that epoch".
//! - `set` turns the flag on, bumps the epoch and clears `PARKED` in one compare-exchange;
//!   if `PARKED` was set it wakes, under the queue's lock, every waiter whose token is an
//!   older epoch: exactly the threads that were waiting before this `set`. They return `true`
//!   from the unpark token alone, so a `clear` that follows at once cannot strand them, and a
//!   thread that starts waiting after `set` + `clear` is not woken by that old `set`.
//!   `SET` and `PARKED` are never both on.
//! - A waiter that times out leaves the queue under its lock and, if it was the last one,
//!   clears `PARKED`; it returns `true` if the epoch moved (a `set` happened during its wait).

use std::fmt;
use std::time::{Duration, Instant};

use crate::diagnostics::{self, PrimitiveKind};
use crate::primitive::atomic::{AtomicUsize, Ordering};
use crate::primitive::loom_const_fn;
use crate::wait::{self, Deadline, FilterOp, ParkResult, ParkToken, SpinWait, UnparkToken};

const SET: usize = 0b01;
const PARKED: usize = 0b10;
const EPOCH_SHIFT: u32 = 2;
const EPOCH_ONE: usize = 1 << EPOCH_SHIFT;
const EPOCH_MASK: usize = usize::MAX >> EPOCH_SHIFT;

/// Unpark token: woken by `set`.
const TOKEN_SET: UnparkToken = UnparkToken(1);

#[inline]
const fn epoch(state: usize) -> usize {
    state >> EPOCH_SHIFT
}

/// Whether a waiter that parked in epoch `waiter` started before the `set` that produced
/// epoch `set` (wrapping comparison).
#[inline]
fn started_before(waiter: usize, set: usize) -> bool {
    let distance = set.wrapping_sub(waiter) & EPOCH_MASK;
    distance != 0 && distance <= EPOCH_MASK / 2
}

/// A flag that threads can wait for: Python's `threading.Event`.
///
/// | Python | tandem |
/// | --- | --- |
/// | `event = threading.Event()` | `let event = Event::new()` |
/// | `event.set()` | `event.set()` |
/// | `event.clear()` | `event.clear()` |
/// | `event.is_set()` | `event.is_set()` |
/// | `event.wait()` | `event.wait()` |
/// | `event.wait(timeout=t)` → bool | `event.wait_timeout(t)` → bool |
///
/// # Examples
/// Workers wait at the start line until the main thread fires the event:
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use pytandem::sync::Event;
///
/// let start = Event::new();
/// let started = AtomicUsize::new(0);
/// std::thread::scope(|s| {
///     for _ in 0..3 {
///         s.spawn(|| {
///             start.wait();
///             started.fetch_add(1, Ordering::SeqCst);
///         });
///     }
///     assert_eq!(started.load(Ordering::SeqCst), 0);
///     start.set(); // releases all three
/// });
/// assert_eq!(started.into_inner(), 3);
/// assert!(!Event::new().wait_timeout(std::time::Duration::from_millis(1)));
/// ```
///
/// # Differences from Python
/// None in behaviour. `wait` returns `bool` like Python's (always `true` without a timeout).
///
/// # Fairness
/// `set` wakes every thread that was waiting, all at once; each returns `true` even if
/// `clear` runs immediately after `set`. A thread that starts waiting after that `clear` is
/// not woken by the earlier `set`.
///
/// # Memory ordering
/// Everything a thread did before `set` happens-before a `wait` that returns `true` because
/// of that `set` (woken by it, or seeing the flag it raised).
pub struct Event {
    state: AtomicUsize,
    /// Diagnostics: name and wait statistics (zero-sized without the feature).
    tag: diagnostics::Tag,
}

impl Event {
    /// Names the event in diagnostics reports (thread dumps of the threads waiting on it,
    /// statistics); this call's line becomes its creation site. Does nothing without the
    /// `diagnostics` feature.
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn set_name(&self, name: impl Into<String>) {
        self.tag.set_name(
            crate::diagnostics::PrimitiveKind::Event,
            self.key(),
            name.into(),
        );
    }

    /// The event's diagnostics name, if it was given one; always `None` without the
    /// `diagnostics` feature.
    pub fn name(&self) -> Option<String> {
        self.tag.name()
    }

    /// Statistics of the waits on this event (waits, time-outs, total and longest wait),
    /// counted while diagnostics recording is on.
    #[cfg(feature = "diagnostics")]
    pub fn stats(&self) -> crate::diagnostics::Stats {
        self.tag.stats()
    }

    loom_const_fn! {
        /// A new event, not set. Python: `threading.Event()`.
        pub fn new() -> Self {
            Event {
                state: AtomicUsize::new(0),
                tag: diagnostics::Tag::new(),
            }
        }
    }

    /// Whether the flag is set. Python: `event.is_set()`.
    #[inline]
    #[doc(alias = "isSet")]
    pub fn is_set(&self) -> bool {
        self.state.load(Ordering::Acquire) & SET != 0
    }

    /// Sets the flag and wakes every waiting thread. Setting a set event does nothing.
    /// Python: `event.set()`.
    #[inline]
    pub fn set(&self) {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & SET != 0 {
                return;
            }
            let next = (state & !PARKED).wrapping_add(EPOCH_ONE) | SET;
            match self.state.compare_exchange_weak(
                state,
                next,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    if state & PARKED != 0 {
                        self.wake(epoch(next));
                    }
                    return;
                }
                Err(s) => state = s,
            }
        }
    }

    /// Clears the flag; later `wait`s block until the next `set`. Threads already woken by
    /// a `set` still return `true`. Python: `event.clear()`.
    #[inline]
    pub fn clear(&self) {
        if self.state.load(Ordering::Relaxed) & SET != 0 {
            self.state.fetch_and(!SET, Ordering::Relaxed);
        }
    }

    /// Blocks until the flag is set; returns `true` (Python's `event.wait()` return value).
    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn wait(&self) -> bool {
        self.is_set() || self.wait_slow(Deadline::NEVER)
    }

    /// Blocks until the flag is set or `timeout` passes; `true` if it was set (Python's
    /// `event.wait(timeout)`). A zero timeout only checks; a timeout too large to represent
    /// waits forever.
    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.is_set() || self.wait_deadline(Deadline::after(timeout))
    }

    /// Blocks until the flag is set or `deadline` passes; `true` if it was set.
    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn wait_until(&self, deadline: Instant) -> bool {
        self.is_set() || self.wait_deadline(Deadline::at(deadline))
    }

    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    fn wait_deadline(&self, deadline: Deadline) -> bool {
        !deadline.has_passed() && self.wait_slow(deadline)
    }

    /// How many threads are blocked in `wait` right now (a snapshot). It counts the wait
    /// queue under its lock, so it is exact but not free: for tests and monitoring.
    pub fn n_waiting(&self) -> usize {
        wait::queued(self.key())
    }

    #[inline]
    fn key(&self) -> usize {
        wait::key_of(self)
    }

    #[cold]
    #[inline(never)]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    fn wait_slow(&self, deadline: Deadline) -> bool {
        let mut spin = SpinWait::new();
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            if state & SET != 0 {
                return true;
            }
            // Nobody parked yet: the setter may be moments away. Spin a little. (Not under
            // loom, where each spin is a forced yield that hides the interleavings in which
            // this thread parks before the setter runs on; spinning is only a delay.)
            if state & PARKED == 0 && !cfg!(tandem_loom) && spin.spin() {
                state = self.state.load(Ordering::Acquire);
                continue;
            }
            if state & PARKED == 0 {
                if let Err(s) = self.state.compare_exchange_weak(
                    state,
                    state | PARKED,
                    Ordering::Relaxed,
                    Ordering::Acquire,
                ) {
                    state = s;
                    continue;
                }
            }
            let parked = state | PARKED;
            let my_epoch = epoch(parked);
            let validate = || self.state.load(Ordering::Relaxed) == parked;
            let timed_out = |_key, was_last_thread| {
                if was_last_thread {
                    self.state.fetch_and(!PARKED, Ordering::Relaxed);
                }
            };
            diagnostics::wait_intent(PrimitiveKind::Event, self.key(), Some(&self.tag));
            // SAFETY: the key is this event's own address; `validate` and `timed_out` only
            // touch this event's atomic word, never panic and never call the wait layer.
            let result = unsafe {
                wait::park(
                    self.key(),
                    validate,
                    || {},
                    timed_out,
                    ParkToken(my_epoch),
                    deadline.instant(),
                )
            };
            match result {
                ParkResult::Unparked(_) => return true,
                ParkResult::Invalid => {}
                ParkResult::TimedOut => {
                    // Set during the wait, even if cleared again since?
                    let now = self.state.load(Ordering::Acquire);
                    return now & SET != 0 || epoch(now) != my_epoch;
                }
            }
            if deadline.has_passed() {
                return self.is_set();
            }
            spin.reset();
            state = self.state.load(Ordering::Acquire);
        }
    }

    /// Wakes every waiter that parked before the `set` that produced epoch `set_epoch`.
    #[cold]
    #[inline(never)]
    fn wake(&self, set_epoch: usize) {
        let filter = |ParkToken(waiter_epoch): ParkToken| {
            if started_before(waiter_epoch, set_epoch) {
                FilterOp::Unpark
            } else {
                // Parked after this set and a clear: the next set will wake it (it raised
                // PARKED after our compare-exchange cleared it).
                FilterOp::Skip
            }
        };
        // SAFETY: the key is this event's own address; `filter` and the callback are pure,
        // never panic and never call the wait layer.
        unsafe {
            wait::unpark_filter(self.key(), filter, |_| TOKEN_SET);
        }
    }
}

impl Default for Event {
    fn default() -> Self {
        Event::new()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("is_set", &self.is_set())
            .finish()
    }
}

#[cfg(all(test, not(tandem_loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    #[cfg(not(feature = "diagnostics"))] // with it, the event also carries its name tag
    fn size_is_one_word() {
        assert!(std::mem::size_of::<Event>() <= 8);
        assert_eq!(std::mem::size_of::<Event>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn set_clear_and_epochs() {
        let e = Event::default();
        assert!(!e.is_set());
        e.set();
        assert_eq!(epoch(e.state.load(Ordering::Relaxed)), 1);
        e.set(); // already set: no new epoch
        assert_eq!(epoch(e.state.load(Ordering::Relaxed)), 1);
        e.clear();
        assert!(!e.is_set());
        e.clear();
        assert_eq!(format!("{e:?}"), "Event { is_set: false }");
        e.set();
        assert_eq!(format!("{e:?}"), "Event { is_set: true }");
        assert_eq!(epoch(e.state.load(Ordering::Relaxed)), 2);
    }

    #[test]
    fn epoch_comparison_wraps() {
        assert!(started_before(0, 1));
        assert!(!started_before(1, 1));
        assert!(!started_before(2, 1));
        assert!(started_before(EPOCH_MASK, 0));
        assert!(started_before(EPOCH_MASK - 5, 3));
    }

    #[test]
    fn epoch_wraps_without_touching_the_flags() {
        let e = Event::new();
        e.state.store(EPOCH_MASK << EPOCH_SHIFT, Ordering::Relaxed);
        e.set();
        let s = e.state.load(Ordering::Relaxed);
        assert_eq!(s, SET, "the epoch wrapped to 0 with the flag set");
    }

    #[test]
    fn waiter_parks_and_is_woken() {
        let e = Arc::new(Event::new());
        let e2 = Arc::clone(&e);
        let t = std::thread::spawn(move || e2.wait());
        let deadline = Instant::now() + Duration::from_secs(10);
        while e.state.load(Ordering::Relaxed) & PARKED == 0 {
            assert!(Instant::now() < deadline, "the waiter never parked");
            std::thread::yield_now();
        }
        e.set();
        assert!(t.join().unwrap());
        assert_eq!(e.state.load(Ordering::Relaxed) & PARKED, 0);
    }
}

#[cfg(all(test, tandem_loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    /// A parked waiter and a setter that clears at once: the waiter is woken and returns
    /// `true`, although the flag is already clear when it runs.
    #[test]
    fn set_then_clear_wakes_the_waiter() {
        loom::model(|| {
            let e = Arc::new(Event::new());
            let e2 = Arc::clone(&e);
            let t = loom::thread::spawn(move || e2.wait());
            // Python's test waits until the thread is blocked; so do we.
            while e.n_waiting() == 0 {
                loom::thread::yield_now();
            }
            e.set();
            e.clear();
            assert!(t.join().unwrap());
            assert!(!e.is_set());
        });
    }

    /// Two waiters, one timed (the loom backend may time it out at any moment): the untimed
    /// one always wakes, and no `PARKED` bit is left behind once both are gone.
    #[test]
    fn timed_and_untimed_waiters() {
        loom::model(|| {
            let e = Arc::new(Event::new());
            let e1 = Arc::clone(&e);
            let untimed = loom::thread::spawn(move || e1.wait());
            let e2 = Arc::clone(&e);
            let timed = loom::thread::spawn(move || e2.wait_timeout(Duration::from_secs(1)));
            e.set();
            assert!(untimed.join().unwrap());
            let _ = timed.join().unwrap();
            assert!(e.is_set());
            assert_eq!(e.state.load(Ordering::Relaxed) & PARKED, 0);
        });
    }

    /// A thread that starts waiting after `set` + `clear` is not woken by that `set`, even
    /// while the setter is still waking the earlier waiter: with no later `set`, its timed
    /// wait returns `false`, while the earlier waiter returns `true`.
    #[test]
    fn late_waiter_is_not_woken_by_an_old_set() {
        loom::model(|| {
            let e = Arc::new(Event::new());
            let e1 = Arc::clone(&e);
            let early = loom::thread::spawn(move || e1.wait());
            while e.n_waiting() == 0 {
                loom::thread::yield_now();
            }
            let e2 = Arc::clone(&e);
            let late = loom::thread::spawn(move || {
                while !e2.is_set() {
                    loom::thread::yield_now();
                }
                e2.clear();
                e2.wait_timeout(Duration::from_secs(1))
            });
            e.set();
            assert!(early.join().unwrap());
            assert!(!late.join().unwrap());
            assert!(!e.is_set());
        });
    }
}
