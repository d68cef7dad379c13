//! `Semaphore`: Python's counted permits, with FIFO hand-off; the [`SemaphorePermit`] both
//! semaphores hand out, and their errors. The algorithm is `raw_semaphore.rs`;
//! `BoundedSemaphore` is `bounded_semaphore.rs`.

use std::fmt;
use std::time::{Duration, Instant};

use super::raw_semaphore::{RawSemaphore, MAX_PERMITS};
use crate::primitive::loom_const_fn;
use crate::wait::Deadline;

#[cfg(doc)]
use super::BoundedSemaphore;

/// A release Python refuses with `ValueError`: one that would raise a semaphore above its
/// bound (`Semaphore released too many times`), or a release of zero permits (`n must be
/// one or more`, Python 3.9+; then [`released`](Self::released) is 0).
///
/// Returned by `try_release()` and `try_release_n(n)` of [`Semaphore`] (whose bound is
/// [`Semaphore::MAX_PERMITS`]) and [`BoundedSemaphore`]; `release()` and `release_n(n)`
/// panic with it. Nothing was released.
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
    pub(super) fn new(requested: usize, bound: usize) -> Self {
        TooManyPermitsError { requested, bound }
    }

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
/// bare `acquire()`), and give them back later with `release()` or `release_n(n)`.
#[must_use = "the permits are released as soon as the permit is dropped"]
pub struct SemaphorePermit<'a> {
    raw: &'a RawSemaphore,
    count: usize,
    limit: usize,
}

impl<'a> SemaphorePermit<'a> {
    /// Permits the engine just took; `limit` is the semaphore's bound.
    #[inline]
    pub(super) fn new(raw: &'a RawSemaphore, count: usize, limit: usize) -> Self {
        SemaphorePermit { raw, count, limit }
    }

    /// How many permits this holds.
    #[inline]
    pub fn count(&self) -> usize {
        self.count
    }

    /// Keeps the permits taken without returning them on drop: Python's `acquire()` without
    /// `with`. Return them later with the semaphore's `release()` / `release_n(n)`, or never.
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
            self.raw.release_clamped(self.count, self.limit);
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
/// | `sem.release()`, `sem.release(n)` | `sem.release()`, `sem.release_n(n)` |
/// | `sem._value` | `sem.available_permits()` |
/// | (none) | `sem.acquire_many(n)`: n permits at once, atomically |
///
/// # Examples
/// At most three of five workers use the resource at the same time:
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use pytandem::sync::Semaphore;
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
/// use pytandem::sync::Semaphore;
///
/// let sem = Semaphore::new(0); // 0 is allowed: everyone waits for a release
/// sem.release_n(2);
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
/// - `release()` and `release_n(n)` panic where Python raises `ValueError` (a caller's
///   mistake); `try_release()` and `try_release_n(n)` return the error instead. The same
///   four calls, with the same shapes, are on [`BoundedSemaphore`].
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
        self.raw.set_name(name.into());
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

    loom_const_fn! {
        /// A semaphore with `value` free permits (0 allowed). Python: `threading.Semaphore(value)`.
        ///
        /// # Panics
        /// If `value` exceeds [`Semaphore::MAX_PERMITS`].
        #[track_caller]
        pub fn new(value: usize) -> Self {
            Semaphore {
                raw: RawSemaphore::new(value),
            }
        }
    }

    /// Takes one permit, waiting until one is free. Python: `with sem:` / `sem.acquire()`.
    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        let permit = self.raw.permit_until(1, Deadline::NEVER, MAX_PERMITS);
        permit.expect("an acquire without a deadline returns only with the permit")
    }

    /// Takes one permit if one is free and nobody is waiting; never blocks.
    /// Python: `sem.acquire(blocking=False)`.
    #[inline]
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.raw.try_permit(1, MAX_PERMITS)
    }

    /// Takes one permit, waiting at most `timeout`. A zero timeout tries once; a timeout too
    /// large to represent waits forever. Python: `sem.acquire(timeout=t)`.
    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphorePermit<'_>> {
        self.raw
            .permit_until(1, Deadline::after(timeout), MAX_PERMITS)
    }

    /// Takes one permit, waiting until `deadline` at the latest.
    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn acquire_until(&self, deadline: Instant) -> Option<SemaphorePermit<'_>> {
        self.raw
            .permit_until(1, Deadline::at(deadline), MAX_PERMITS)
    }

    /// Takes `n` permits at once, waiting until all `n` are free (none are taken before
    /// then). `n == 0` succeeds at once.
    ///
    /// # Errors
    /// [`TooManyPermitsError`] if `n` exceeds [`Semaphore::MAX_PERMITS`].
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn acquire_many(&self, n: usize) -> Result<SemaphorePermit<'_>, TooManyPermitsError> {
        let permit = self.raw.many_until(n, Deadline::NEVER, MAX_PERMITS)?;
        Ok(permit.expect("an acquire without a deadline returns only with the permits"))
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
        self.raw.try_many(n, MAX_PERMITS)
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
        self.raw
            .many_until(n, Deadline::after(timeout), MAX_PERMITS)
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
        self.raw.many_until(n, Deadline::at(deadline), MAX_PERMITS)
    }

    /// Adds one permit, waking the longest waiter if it wanted one; no permit is needed
    /// (Python's `sem.release()`), so a plain semaphore may grow past its initial value.
    ///
    /// ```
    /// use pytandem::sync::Semaphore;
    ///
    /// let sem = Semaphore::new(0);
    /// sem.release(); // Python: sem.release()
    /// sem.release_n(2); // Python: sem.release(2)
    /// assert_eq!(sem.available_permits(), 3);
    /// ```
    ///
    /// # Panics
    /// If the count would exceed [`Semaphore::MAX_PERMITS`]; use
    /// [`try_release`](Self::try_release) to get an error instead.
    #[inline]
    #[track_caller]
    pub fn release(&self) {
        self.release_n(1);
    }

    /// Adds `n` permits, waking waiters in arrival order. Python: `sem.release(n)`.
    ///
    /// # Panics
    /// If `n` is 0 (Python 3.9+: `ValueError: n must be one or more`) or the count would
    /// exceed [`Semaphore::MAX_PERMITS`]; use [`try_release_n`](Self::try_release_n) to get
    /// an error instead.
    #[inline]
    #[track_caller]
    pub fn release_n(&self, n: usize) {
        if let Err(e) = self.try_release_n(n) {
            over_release(e);
        }
    }

    /// Adds one permit like [`release`](Self::release).
    ///
    /// # Errors
    /// [`OverReleaseError`] if the count would exceed [`Semaphore::MAX_PERMITS`]; nothing is
    /// released.
    #[inline]
    pub fn try_release(&self) -> Result<(), OverReleaseError> {
        self.try_release_n(1)
    }

    /// Adds `n` permits like [`release_n`](Self::release_n).
    ///
    /// # Errors
    /// [`OverReleaseError`] if `n` is 0 or the count would exceed
    /// [`Semaphore::MAX_PERMITS`]; nothing is released.
    #[inline]
    pub fn try_release_n(&self, n: usize) -> Result<(), OverReleaseError> {
        self.raw.release_checked(n, MAX_PERMITS)
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

/// The panic of a refused `release`/`release_n`, out of line; it names the caller's line.
#[cold]
#[inline(never)]
#[track_caller]
pub(crate) fn over_release(e: OverReleaseError) -> ! {
    panic!("{e}")
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
