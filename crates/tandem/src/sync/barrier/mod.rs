//! `Barrier`: Python's `threading.Barrier` — a meeting point for a fixed number of threads,
//! reusable generation after generation, with an action, timeouts, `abort` and `reset`.
//!
//! - `mod.rs`: the public [`Barrier`] and its [`BarrierBuilder`].
//! - `engine.rs`: how it works (its state words, joining and ending a generation).
//! - `error.rs`: [`InvalidPartiesError`], [`BrokenBarrierError`], [`BrokenReason`].

mod engine;
mod error;

pub use error::{BrokenBarrierError, BrokenReason, InvalidPartiesError};

use std::fmt;
use std::time::{Duration, Instant};

use crate::diagnostics;
use crate::primitive::atomic::{AtomicUsize, Ordering};
use crate::wait::Deadline;

use engine::*;

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
/// use pytandem::sync::Barrier;
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
/// # Ok::<(), pytandem::sync::InvalidPartiesError>(())
/// ```
///
/// Breaking and repairing: a timed-out wait breaks the barrier for everyone until `reset`.
/// ```
/// use std::time::Duration;
/// use pytandem::sync::{Barrier, BrokenReason};
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
/// # Ok::<(), pytandem::sync::InvalidPartiesError>(())
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
        self.abort_generation();
    }

    /// Returns the barrier to its initial, unbroken state: threads waiting now get
    /// [`BrokenReason::Reset`] (or the reason the barrier was broken), and the barrier is
    /// ready for a new generation at once. Python: `b.reset()`.
    pub fn reset(&self) {
        self.reset_generation();
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
/// use pytandem::sync::Barrier;
///
/// // Python: threading.Barrier(3, action=lambda: print("all here"), timeout=5)
/// let barrier = Barrier::builder(3)
///     .action(|| println!("all here"))
///     .timeout(Duration::from_secs(5))
///     .build()?;
/// assert_eq!(barrier.parties(), 3);
/// assert_eq!(barrier.timeout(), Some(Duration::from_secs(5)));
/// assert!(Barrier::builder(0).build().is_err());
/// # Ok::<(), pytandem::sync::InvalidPartiesError>(())
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
            return Err(InvalidPartiesError::new(0));
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
