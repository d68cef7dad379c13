//! `BoundedSemaphore`: Python's `threading.BoundedSemaphore`, a [`Semaphore`] whose count
//! may not exceed its initial value. The same engine (`raw_semaphore.rs`), with a bound.

use std::fmt;
use std::time::{Duration, Instant};

use super::raw_semaphore::RawSemaphore;
#[cfg(doc)]
use super::semaphore::Semaphore;
use super::semaphore::{over_release, OverReleaseError, SemaphorePermit, TooManyPermitsError};
use crate::primitive::loom_const_fn;
use crate::wait::Deadline;

/// A semaphore that refuses to be released above its initial value:
/// Python's `threading.BoundedSemaphore`.
///
/// Everything a [`Semaphore`] does (same fairness, same permits, same calls), plus: an
/// explicit `release` that would raise the count above the initial value is refused
/// (Python's `ValueError`: a panic from `release`/`release_n`, an [`OverReleaseError`] from
/// `try_release`/`try_release_n`), which catches releases that were never paired with an
/// acquire; and asking for more permits at once than the bound is an error
/// rather than a wait that could never end.
///
/// | Python | tandem |
/// | --- | --- |
/// | `sem = threading.BoundedSemaphore(2)` | `let sem = BoundedSemaphore::new(2)` |
/// | `with sem: ...` | `let _permit = sem.acquire();` |
/// | `sem.acquire(blocking=False)` | `sem.try_acquire()` |
/// | `sem.acquire(timeout=t)` | `sem.acquire_timeout(t)` |
/// | `sem.release()`, `sem.release(n)` | `sem.release()`, `sem.release_n(n)` (panic on over-release) |
/// | `try: sem.release()` / `except ValueError` | `sem.try_release()`, `sem.try_release_n(n)` → `Err(OverReleaseError)` |
///
/// # Examples
/// ```
/// use pytandem::sync::BoundedSemaphore;
///
/// let sem = BoundedSemaphore::new(2);
/// sem.acquire().forget(); // Python: sem.acquire()
/// sem.release(); // Python: sem.release()
/// let err = sem.try_release().unwrap_err(); // never acquired: refused
/// assert_eq!(err.released(), 1);
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

    loom_const_fn! {
        /// A bounded semaphore with `value` free permits, which is also its bound (0 allowed).
        /// Python: `threading.BoundedSemaphore(value)`.
        ///
        /// # Panics
        /// If `value` exceeds [`Semaphore::MAX_PERMITS`].
        #[track_caller]
        pub fn new(value: usize) -> Self {
            BoundedSemaphore {
                raw: RawSemaphore::new(value),
                bound: value,
            }
        }
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
        let permit = self.raw.permit_until(1, Deadline::NEVER, self.bound);
        permit.expect("an acquire without a deadline returns only with the permit")
    }

    /// Takes one permit if one is free and nobody is waiting; never blocks.
    /// Python: `sem.acquire(blocking=False)`.
    #[inline]
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.raw.try_permit(1, self.bound)
    }

    /// Takes one permit, waiting at most `timeout`. A zero timeout tries once; a timeout too
    /// large to represent waits forever. Python: `sem.acquire(timeout=t)`.
    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphorePermit<'_>> {
        self.raw
            .permit_until(1, Deadline::after(timeout), self.bound)
    }

    /// Takes one permit, waiting until `deadline` at the latest.
    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn acquire_until(&self, deadline: Instant) -> Option<SemaphorePermit<'_>> {
        self.raw.permit_until(1, Deadline::at(deadline), self.bound)
    }

    /// Takes `n` permits at once, waiting until all `n` are free. `n == 0` succeeds at once.
    ///
    /// # Errors
    /// [`TooManyPermitsError`] if `n` exceeds the bound: the wait could never end.
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn acquire_many(&self, n: usize) -> Result<SemaphorePermit<'_>, TooManyPermitsError> {
        let permit = self.raw.many_until(n, Deadline::NEVER, self.bound)?;
        Ok(permit.expect("an acquire without a deadline returns only with the permits"))
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
        self.raw.try_many(n, self.bound)
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
        self.raw.many_until(n, Deadline::after(timeout), self.bound)
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
        self.raw.many_until(n, Deadline::at(deadline), self.bound)
    }

    /// Returns one permit without a permit object (Python's `sem.release()`), waking the
    /// longest waiter if it wanted one.
    ///
    /// # Panics
    /// If the count would exceed the bound: Python's `ValueError: Semaphore released too
    /// many times`, a release that was never paired with an acquire. Use
    /// [`try_release`](Self::try_release) to get the error instead.
    #[inline]
    #[track_caller]
    pub fn release(&self) {
        self.release_n(1);
    }

    /// Returns `n` permits without a permit object (Python's `sem.release(n)`), waking
    /// waiters in arrival order.
    ///
    /// # Panics
    /// If the count would exceed the bound, or if `n` is 0 (Python 3.9+: `ValueError: n
    /// must be one or more`); use [`try_release_n`](Self::try_release_n) to get the error
    /// instead.
    #[inline]
    #[track_caller]
    pub fn release_n(&self, n: usize) {
        if let Err(e) = self.try_release_n(n) {
            over_release(e);
        }
    }

    /// Returns one permit like [`release`](Self::release).
    ///
    /// # Errors
    /// [`OverReleaseError`] if the count would exceed the bound; nothing is released.
    #[inline]
    pub fn try_release(&self) -> Result<(), OverReleaseError> {
        self.try_release_n(1)
    }

    /// Returns `n` permits like [`release_n`](Self::release_n).
    ///
    /// # Errors
    /// [`OverReleaseError`] if the count would exceed the bound (Python's `ValueError:
    /// Semaphore released too many times`), or if `n` is 0 (Python 3.9+: `ValueError: n
    /// must be one or more`); nothing is released.
    #[inline]
    pub fn try_release_n(&self, n: usize) -> Result<(), OverReleaseError> {
        self.raw.release_checked(n, self.bound)
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
