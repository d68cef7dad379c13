//! `Semaphore` and `BoundedSemaphore`: Python's counted permits, with FIFO hand-off.
//!
//! Both types are thin documented fronts over one private engine, `RawSemaphore`: a single
//! word that holds the free permits and one flag.
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
use std::fmt;
use std::time::{Duration, Instant};

use crate::diagnostics::{self, PrimitiveKind};
use crate::primitive::atomic::{AtomicUsize, Ordering};
use crate::wait::{self, Deadline, FilterOp, ParkResult, ParkToken, SpinWait, UnparkToken};

const WAITERS: usize = 0b1;
const SHIFT: u32 = 1;
/// The most permits a semaphore can hold: the word keeps one bit for `WAITERS`.
const MAX_PERMITS: usize = usize::MAX >> SHIFT;

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
    tag: diagnostics::Tag,
}

impl RawSemaphore {
    #[cfg(not(tandem_loom))]
    const fn new(permits: usize) -> Self {
        assert!(
            permits <= MAX_PERMITS,
            "a semaphore holds at most Semaphore::MAX_PERMITS permits"
        );
        RawSemaphore {
            state: AtomicUsize::new(permits << SHIFT),
            tag: diagnostics::Tag::new(),
        }
    }

    #[cfg(tandem_loom)]
    fn new(permits: usize) -> Self {
        assert!(
            permits <= MAX_PERMITS,
            "a semaphore holds at most Semaphore::MAX_PERMITS permits"
        );
        RawSemaphore {
            state: AtomicUsize::new(permits << SHIFT),
            tag: diagnostics::Tag::new(),
        }
    }

    #[inline]
    fn available(&self) -> usize {
        permits(self.state.load(Ordering::Relaxed))
    }

    #[inline]
    fn has_waiters(&self) -> bool {
        self.state.load(Ordering::Relaxed) & WAITERS != 0
    }

    #[inline]
    fn key(&self) -> usize {
        wait::key_of(self)
    }

    /// How many threads are queued: a census of the wait queue, waking nobody.
    fn n_waiting(&self) -> usize {
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

/// A release Python refuses with `ValueError`: one that would raise a semaphore above its
/// bound (`Semaphore released too many times`), or a release of zero permits (`n must be
/// one or more`, Python 3.9+; then [`released`](Self::released) is 0).
///
/// Returned by [`BoundedSemaphore::release`] and [`Semaphore::try_release`] (whose bound is
/// [`Semaphore::MAX_PERMITS`]). Nothing was released.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OverReleaseError {
    released: usize,
    available: usize,
    bound: usize,
}

impl OverReleaseError {
    pub(crate) fn new(released: usize, available: usize, bound: usize) -> Self {
        OverReleaseError {
            released,
            available,
            bound,
        }
    }

    /// A release of zero permits.
    fn zero(available: usize, bound: usize) -> Self {
        OverReleaseError::new(0, available, bound)
    }

    /// How many permits the refused call tried to release.
    pub fn released(&self) -> usize {
        self.released
    }

    /// How many permits were free when the release was refused.
    pub fn available(&self) -> usize {
        self.available
    }

    /// The most permits the semaphore may hold.
    pub fn bound(&self) -> usize {
        self.bound
    }
}

impl fmt::Display for OverReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.released == 0 {
            return f.write_str(
                "semaphore release of 0 permits: n must be one or more; release at least one \
                 permit, or skip the call",
            );
        }
        write!(
            f,
            "semaphore released too many times: releasing {} permit(s) with {} free would \
             exceed its bound of {}; release only permits that were acquired",
            self.released, self.available, self.bound
        )
    }
}

impl std::error::Error for OverReleaseError {}

/// A request for more permits at once than the semaphore can ever hold, which would block
/// forever: refused at once instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TooManyPermitsError {
    requested: usize,
    bound: usize,
}

impl TooManyPermitsError {
    /// How many permits were requested.
    pub fn requested(&self) -> usize {
        self.requested
    }

    /// The most permits the semaphore can hold.
    pub fn bound(&self) -> usize {
        self.bound
    }
}

impl fmt::Display for TooManyPermitsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "requested {} permits at once from a semaphore that can hold at most {}: the \
             request could never be granted; ask for fewer permits or raise the bound",
            self.requested, self.bound
        )
    }
}

impl std::error::Error for TooManyPermitsError {}

/// Permits taken from a [`Semaphore`] or [`BoundedSemaphore`]; they return when it drops.
///
/// Python's `with sem:` block. Call [`forget`](Self::forget) to keep them taken (Python's
/// bare `acquire()`), and give them back later with `release(n)`.
#[must_use = "the permits are released as soon as the permit is dropped"]
pub struct SemaphorePermit<'a> {
    raw: &'a RawSemaphore,
    count: usize,
    limit: usize,
}

impl SemaphorePermit<'_> {
    /// How many permits this holds.
    #[inline]
    pub fn count(&self) -> usize {
        self.count
    }

    /// Keeps the permits taken without returning them on drop: Python's `acquire()` without
    /// `with`. Return them later with the semaphore's `release(n)`, or never.
    #[inline]
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphorePermit<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.count != 0 {
            // Clamped: if explicit `release` calls already refilled a bounded semaphore,
            // the excess is dropped so the bound holds; a drop never fails.
            let _ = self.raw.release(self.count, self.limit, Overflow::Clamp);
        }
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit")
            .field("count", &self.count)
            .finish()
    }
}

/// A counting semaphore: Python's `threading.Semaphore`.
///
/// It holds a number of permits; `acquire` takes one (waiting while none is free) and the
/// returned [`SemaphorePermit`] gives it back when dropped. Use it to let at most *k* threads
/// use a resource at once (a connection pool, a rate limit).
///
/// | Python | tandem |
/// | --- | --- |
/// | `sem = threading.Semaphore(3)` | `let sem = Semaphore::new(3)` |
/// | `with sem: ...` | `let _permit = sem.acquire();` |
/// | `sem.acquire(blocking=False)` | `sem.try_acquire()` → `Option<SemaphorePermit>` |
/// | `sem.acquire(timeout=t)` | `sem.acquire_timeout(t)` → `Option<SemaphorePermit>` |
/// | `sem.acquire()` (kept, no `with`) | `sem.acquire().forget()` |
/// | `sem.release(n)` | `sem.release(n)` |
/// | `sem._value` | `sem.available_permits()` |
/// | (none) | `sem.acquire_many(n)`: n permits at once, atomically |
///
/// # Examples
/// At most three of five workers use the resource at the same time:
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use tandem::sync::Semaphore;
///
/// let pool = Semaphore::new(3);
/// let (inside, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
/// std::thread::scope(|s| {
///     for _ in 0..5 {
///         s.spawn(|| {
///             let _permit = pool.acquire();
///             let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
///             most.fetch_max(now, Ordering::SeqCst);
///             inside.fetch_sub(1, Ordering::SeqCst);
///         });
///     }
/// });
/// assert!(most.into_inner() <= 3);
/// assert_eq!(pool.available_permits(), 3);
/// ```
///
/// Python style, without a permit:
/// ```
/// use tandem::sync::Semaphore;
///
/// let sem = Semaphore::new(0); // 0 is allowed: everyone waits for a release
/// sem.release(2);
/// sem.acquire().forget();
/// assert_eq!(sem.available_permits(), 1);
/// ```
///
/// # Differences from Python
/// - Permits return when the [`SemaphorePermit`] drops, even on a panic.
/// - Strict FIFO (see *Fairness*); Python's semaphore lets a newcomer take a permit ahead of
///   threads already waiting, and `acquire(blocking=False)` here fails while anyone waits.
/// - `acquire_many(n)` takes n permits atomically, which Python cannot do.
/// - The value is a `usize`, so Python's negative-value `ValueError` cannot happen; it may not
///   exceed [`Semaphore::MAX_PERMITS`] (`release` panics there, `try_release` returns an error).
///
/// # Fairness
/// Strict FIFO hand-off: while threads wait, a release hands its permits directly to the
/// waiters in arrival order, as long as the next one can be fully served; a request for
/// several permits is never overtaken by later, smaller ones, and no new arrival (blocking or
/// not) takes permits ahead of a queued waiter. A waiter that times out passes on what it was
/// holding up to those behind it.
///
/// # Memory ordering
/// A release happens-before the acquire that receives its permits.
pub struct Semaphore {
    raw: RawSemaphore,
}

impl Semaphore {
    /// Names the semaphore in diagnostics reports (thread dumps of the threads waiting on it,
    /// statistics); this call's line becomes its creation site. Does nothing without the
    /// `diagnostics` feature.
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn set_name(&self, name: impl Into<String>) {
        self.raw.tag.set_name(
            crate::diagnostics::PrimitiveKind::Semaphore,
            self.raw.key(),
            name.into(),
        );
    }

    /// The semaphore's diagnostics name, if it was given one; always `None` without the
    /// `diagnostics` feature.
    pub fn name(&self) -> Option<String> {
        self.raw.tag.name()
    }

    /// Statistics of the waits on this semaphore (waits, time-outs, total and longest wait),
    /// counted while diagnostics recording is on.
    #[cfg(feature = "diagnostics")]
    pub fn stats(&self) -> crate::diagnostics::Stats {
        self.raw.tag.stats()
    }

    /// The most permits a semaphore can hold (`usize::MAX / 2`).
    pub const MAX_PERMITS: usize = MAX_PERMITS;

    /// A semaphore with `value` free permits (0 allowed). Python: `threading.Semaphore(value)`.
    ///
    /// # Panics
    /// If `value` exceeds [`Semaphore::MAX_PERMITS`].
    #[cfg(not(tandem_loom))]
    pub const fn new(value: usize) -> Self {
        Semaphore {
            raw: RawSemaphore::new(value),
        }
    }

    /// A semaphore with `value` free permits (0 allowed). Python: `threading.Semaphore(value)`.
    ///
    /// # Panics
    /// If `value` exceeds [`Semaphore::MAX_PERMITS`].
    #[cfg(tandem_loom)]
    pub fn new(value: usize) -> Self {
        Semaphore {
            raw: RawSemaphore::new(value),
        }
    }

    #[inline]
    fn permit(&self, count: usize) -> SemaphorePermit<'_> {
        SemaphorePermit {
            raw: &self.raw,
            count,
            limit: MAX_PERMITS,
        }
    }

    #[inline]
    fn check(&self, n: usize) -> Result<(), TooManyPermitsError> {
        if n > MAX_PERMITS {
            return Err(TooManyPermitsError {
                requested: n,
                bound: MAX_PERMITS,
            });
        }
        Ok(())
    }

    /// Takes one permit, waiting until one is free. Python: `with sem:` / `sem.acquire()`.
    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        self.raw.acquire_until(1, Deadline::NEVER);
        self.permit(1)
    }

    /// Takes one permit if one is free and nobody is waiting; never blocks.
    /// Python: `sem.acquire(blocking=False)`.
    #[inline]
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.raw.try_acquire(1).then(|| self.permit(1))
    }

    /// Takes one permit, waiting at most `timeout`. A zero timeout tries once; a timeout too
    /// large to represent waits forever. Python: `sem.acquire(timeout=t)`.
    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphorePermit<'_>> {
        self.raw
            .acquire_until(1, Deadline::after(timeout))
            .then(|| self.permit(1))
    }

    /// Takes one permit, waiting until `deadline` at the latest.
    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn acquire_until(&self, deadline: Instant) -> Option<SemaphorePermit<'_>> {
        self.raw
            .acquire_until(1, Deadline::at(deadline))
            .then(|| self.permit(1))
    }

    /// Takes `n` permits at once, waiting until all `n` are free (none are taken before
    /// then). `n == 0` succeeds at once.
    ///
    /// # Errors
    /// [`TooManyPermitsError`] if `n` exceeds [`Semaphore::MAX_PERMITS`].
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn acquire_many(&self, n: usize) -> Result<SemaphorePermit<'_>, TooManyPermitsError> {
        self.check(n)?;
        self.raw.acquire_until(n, Deadline::NEVER);
        Ok(self.permit(n))
    }

    /// Takes `n` permits at once if they are free and nobody is waiting; never blocks.
    /// `Ok(None)` means "not now".
    ///
    /// # Errors
    /// [`TooManyPermitsError`] if `n` exceeds [`Semaphore::MAX_PERMITS`].
    pub fn try_acquire_many(
        &self,
        n: usize,
    ) -> Result<Option<SemaphorePermit<'_>>, TooManyPermitsError> {
        self.check(n)?;
        Ok(self.raw.try_acquire(n).then(|| self.permit(n)))
    }

    /// Takes `n` permits at once, waiting at most `timeout`; `Ok(None)` if they were not all
    /// free by then (none are taken).
    ///
    /// # Errors
    /// [`TooManyPermitsError`] if `n` exceeds [`Semaphore::MAX_PERMITS`].
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn acquire_many_timeout(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Option<SemaphorePermit<'_>>, TooManyPermitsError> {
        self.check(n)?;
        Ok(self
            .raw
            .acquire_until(n, Deadline::after(timeout))
            .then(|| self.permit(n)))
    }

    /// Takes `n` permits at once, waiting until `deadline` at the latest.
    ///
    /// # Errors
    /// [`TooManyPermitsError`] if `n` exceeds [`Semaphore::MAX_PERMITS`].
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn acquire_many_until(
        &self,
        n: usize,
        deadline: Instant,
    ) -> Result<Option<SemaphorePermit<'_>>, TooManyPermitsError> {
        self.check(n)?;
        Ok(self
            .raw
            .acquire_until(n, Deadline::at(deadline))
            .then(|| self.permit(n)))
    }

    /// Adds `n` permits, waking waiters in arrival order; no permit is needed (Python's
    /// `sem.release(n)`), so a plain semaphore may grow past its initial value.
    ///
    /// # Panics
    /// If `n` is 0 (Python 3.9+: `ValueError: n must be one or more`) or the count would
    /// exceed [`Semaphore::MAX_PERMITS`]; use [`try_release`](Self::try_release) to get an
    /// error instead.
    #[inline]
    pub fn release(&self, n: usize) {
        if let Err(e) = self.try_release(n) {
            panic!("{e}");
        }
    }

    /// Adds `n` permits like [`release`](Self::release).
    ///
    /// # Errors
    /// [`OverReleaseError`] if `n` is 0 or the count would exceed
    /// [`Semaphore::MAX_PERMITS`]; nothing is released.
    #[inline]
    pub fn try_release(&self, n: usize) -> Result<(), OverReleaseError> {
        if n == 0 {
            return Err(OverReleaseError::zero(
                self.available_permits(),
                MAX_PERMITS,
            ));
        }
        self.raw
            .release(n, MAX_PERMITS, Overflow::Refuse)
            .map_err(|available| OverReleaseError {
                released: n,
                available,
                bound: MAX_PERMITS,
            })
    }

    /// Free permits right now (a snapshot). Python: `sem._value`.
    #[inline]
    pub fn available_permits(&self) -> usize {
        self.raw.available()
    }

    /// Whether any thread is queued waiting for permits (a snapshot; one load).
    #[inline]
    pub fn has_waiters(&self) -> bool {
        self.raw.has_waiters()
    }

    /// How many threads are blocked waiting for permits right now (a snapshot). It counts
    /// the wait queue under its lock, so it is exact but not free: for tests and monitoring.
    pub fn n_waiting(&self) -> usize {
        self.raw.n_waiting()
    }
}

impl Default for Semaphore {
    /// One permit, as Python's `threading.Semaphore()`.
    fn default() -> Self {
        Semaphore::new(1)
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available_permits", &self.available_permits())
            .field("has_waiters", &self.has_waiters())
            .finish()
    }
}

/// A semaphore that refuses to be released above its initial value:
/// Python's `threading.BoundedSemaphore`.
///
/// Everything a [`Semaphore`] does (same fairness, same permits), plus: an explicit
/// `release` that would raise the count above the initial value returns
/// [`OverReleaseError`] (Python's `ValueError`), which catches releases that were never
/// paired with an acquire; and asking for more permits at once than the bound is an error
/// rather than a wait that could never end.
///
/// | Python | tandem |
/// | --- | --- |
/// | `sem = threading.BoundedSemaphore(2)` | `let sem = BoundedSemaphore::new(2)` |
/// | `with sem: ...` | `let _permit = sem.acquire();` |
/// | `sem.acquire(blocking=False)` | `sem.try_acquire()` |
/// | `sem.acquire(timeout=t)` | `sem.acquire_timeout(t)` |
/// | `sem.release(n)` raising `ValueError` | `sem.release(n)` → `Err(OverReleaseError)` |
///
/// # Examples
/// ```
/// use tandem::sync::BoundedSemaphore;
///
/// let sem = BoundedSemaphore::new(2);
/// sem.acquire().forget(); // Python: sem.acquire()
/// assert!(sem.release(1).is_ok());
/// let err = sem.release(1).unwrap_err(); // never acquired: refused
/// assert_eq!(err.bound(), 2);
/// assert_eq!(sem.available_permits(), 2);
/// assert!(sem.acquire_many(3).is_err()); // more than it can ever hold
/// ```
///
/// # Differences from Python
/// As for [`Semaphore`]. A [`SemaphorePermit`] returns exactly what it took; if explicit
/// `release` calls have already refilled the semaphore to its bound, the excess is discarded
/// so the bound always holds.
///
/// # Fairness
/// Strict FIFO hand-off, as for [`Semaphore`].
pub struct BoundedSemaphore {
    raw: RawSemaphore,
    bound: usize,
}

impl BoundedSemaphore {
    /// Names the semaphore in diagnostics reports (thread dumps of the threads waiting on it,
    /// statistics); this call's line becomes its creation site. Does nothing without the
    /// `diagnostics` feature.
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn set_name(&self, name: impl Into<String>) {
        self.raw.tag.set_name(
            crate::diagnostics::PrimitiveKind::Semaphore,
            self.raw.key(),
            name.into(),
        );
    }

    /// The semaphore's diagnostics name, if it was given one; always `None` without the
    /// `diagnostics` feature.
    pub fn name(&self) -> Option<String> {
        self.raw.tag.name()
    }

    /// Statistics of the waits on this semaphore (waits, time-outs, total and longest wait),
    /// counted while diagnostics recording is on.
    #[cfg(feature = "diagnostics")]
    pub fn stats(&self) -> crate::diagnostics::Stats {
        self.raw.tag.stats()
    }

    /// A bounded semaphore with `value` free permits, which is also its bound (0 allowed).
    /// Python: `threading.BoundedSemaphore(value)`.
    ///
    /// # Panics
    /// If `value` exceeds [`Semaphore::MAX_PERMITS`].
    #[cfg(not(tandem_loom))]
    pub const fn new(value: usize) -> Self {
        BoundedSemaphore {
            raw: RawSemaphore::new(value),
            bound: value,
        }
    }

    /// A bounded semaphore with `value` free permits, which is also its bound (0 allowed).
    /// Python: `threading.BoundedSemaphore(value)`.
    ///
    /// # Panics
    /// If `value` exceeds [`Semaphore::MAX_PERMITS`].
    #[cfg(tandem_loom)]
    pub fn new(value: usize) -> Self {
        BoundedSemaphore {
            raw: RawSemaphore::new(value),
            bound: value,
        }
    }

    #[inline]
    fn permit(&self, count: usize) -> SemaphorePermit<'_> {
        SemaphorePermit {
            raw: &self.raw,
            count,
            limit: self.bound,
        }
    }

    #[inline]
    fn check(&self, n: usize) -> Result<(), TooManyPermitsError> {
        if n > self.bound {
            return Err(TooManyPermitsError {
                requested: n,
                bound: self.bound,
            });
        }
        Ok(())
    }

    /// The initial value, which the count may never exceed.
    #[inline]
    pub fn bound(&self) -> usize {
        self.bound
    }

    /// Takes one permit, waiting until one is free. Python: `with sem:` / `sem.acquire()`.
    ///
    /// A semaphore bounded at 0 never has a permit, so this waits forever there, as in
    /// Python; use [`acquire_many(1)`](Self::acquire_many) to get an error instead.
    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        self.raw.acquire_until(1, Deadline::NEVER);
        self.permit(1)
    }

    /// Takes one permit if one is free and nobody is waiting; never blocks.
    /// Python: `sem.acquire(blocking=False)`.
    #[inline]
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.raw.try_acquire(1).then(|| self.permit(1))
    }

    /// Takes one permit, waiting at most `timeout`. A zero timeout tries once; a timeout too
    /// large to represent waits forever. Python: `sem.acquire(timeout=t)`.
    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphorePermit<'_>> {
        self.raw
            .acquire_until(1, Deadline::after(timeout))
            .then(|| self.permit(1))
    }

    /// Takes one permit, waiting until `deadline` at the latest.
    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn acquire_until(&self, deadline: Instant) -> Option<SemaphorePermit<'_>> {
        self.raw
            .acquire_until(1, Deadline::at(deadline))
            .then(|| self.permit(1))
    }

    /// Takes `n` permits at once, waiting until all `n` are free. `n == 0` succeeds at once.
    ///
    /// # Errors
    /// [`TooManyPermitsError`] if `n` exceeds the bound: the wait could never end.
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn acquire_many(&self, n: usize) -> Result<SemaphorePermit<'_>, TooManyPermitsError> {
        self.check(n)?;
        self.raw.acquire_until(n, Deadline::NEVER);
        Ok(self.permit(n))
    }

    /// Takes `n` permits at once if they are free and nobody is waiting; never blocks.
    /// `Ok(None)` means "not now".
    ///
    /// # Errors
    /// [`TooManyPermitsError`] if `n` exceeds the bound.
    pub fn try_acquire_many(
        &self,
        n: usize,
    ) -> Result<Option<SemaphorePermit<'_>>, TooManyPermitsError> {
        self.check(n)?;
        Ok(self.raw.try_acquire(n).then(|| self.permit(n)))
    }

    /// Takes `n` permits at once, waiting at most `timeout`; `Ok(None)` if they were not all
    /// free by then (none are taken).
    ///
    /// # Errors
    /// [`TooManyPermitsError`] if `n` exceeds the bound.
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn acquire_many_timeout(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Option<SemaphorePermit<'_>>, TooManyPermitsError> {
        self.check(n)?;
        Ok(self
            .raw
            .acquire_until(n, Deadline::after(timeout))
            .then(|| self.permit(n)))
    }

    /// Takes `n` permits at once, waiting until `deadline` at the latest.
    ///
    /// # Errors
    /// [`TooManyPermitsError`] if `n` exceeds the bound.
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn acquire_many_until(
        &self,
        n: usize,
        deadline: Instant,
    ) -> Result<Option<SemaphorePermit<'_>>, TooManyPermitsError> {
        self.check(n)?;
        Ok(self
            .raw
            .acquire_until(n, Deadline::at(deadline))
            .then(|| self.permit(n)))
    }

    /// Returns `n` permits without a permit object (Python's `sem.release(n)`), waking
    /// waiters in arrival order.
    ///
    /// # Errors
    /// [`OverReleaseError`] if the count would exceed the bound (Python's `ValueError:
    /// Semaphore released too many times`), or if `n` is 0 (Python 3.9+: `ValueError: n
    /// must be one or more`); nothing is released.
    #[inline]
    pub fn release(&self, n: usize) -> Result<(), OverReleaseError> {
        if n == 0 {
            return Err(OverReleaseError::zero(self.available_permits(), self.bound));
        }
        self.raw
            .release(n, self.bound, Overflow::Refuse)
            .map_err(|available| OverReleaseError {
                released: n,
                available,
                bound: self.bound,
            })
    }

    /// Free permits right now (a snapshot). Python: `sem._value`.
    #[inline]
    pub fn available_permits(&self) -> usize {
        self.raw.available()
    }

    /// Whether any thread is queued waiting for permits (a snapshot; one load).
    #[inline]
    pub fn has_waiters(&self) -> bool {
        self.raw.has_waiters()
    }

    /// How many threads are blocked waiting for permits right now (a snapshot). It counts
    /// the wait queue under its lock, so it is exact but not free: for tests and monitoring.
    pub fn n_waiting(&self) -> usize {
        self.raw.n_waiting()
    }
}

impl Default for BoundedSemaphore {
    /// One permit, as Python's `threading.BoundedSemaphore()`.
    fn default() -> Self {
        BoundedSemaphore::new(1)
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("available_permits", &self.available_permits())
            .field("bound", &self.bound)
            .field("has_waiters", &self.has_waiters())
            .finish()
    }
}

#[cfg(all(test, not(tandem_loom)))]
mod tests {
    // Behaviour is tested through the public API in `tests/semaphore.rs`; here, the pieces
    // that are not public.
    use super::*;

    #[test]
    #[cfg(not(feature = "diagnostics"))] // with it, the semaphore also carries its name tag
    fn sizes() {
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
    use super::*;
    use loom::sync::Arc;

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
            sem.release(1);
            sem.release(1);
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
            sem.release(1);
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
            assert!(sem.release(1).is_err());
        });
    }
}
