//! `Semaphore` and `BoundedSemaphore` across processes (Python's
//! `multiprocessing.Semaphore`, `BoundedSemaphore`): permits held through a guard by a
//! process that dies are given back.

use super::robust::{Holders, RobustLock, Taken, SLICE};
use super::shared::{shared_handle, Shared, SharedState};
use super::shm::Kind;
use crate::sync::OverReleaseError;
use crate::wait::{futex, Deadline};
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The state. `value` (the free permits, the futex word sleepers wait on) and the holder
/// table change only under `lock`, with a one-entry undo journal: a process killed in the
/// middle of an update leaves the journal behind, and the next taker of the lock (told by
/// [`Taken::OwnerDied`]) rolls the update back. So permits balance exactly, whatever
/// instant a process is killed at.
#[repr(C)]
pub(crate) struct SemState {
    lock: RobustLock,
    value: AtomicU32,
    sleepers: AtomicU32,
    /// The bound plus one (0: none).
    bound: AtomicU32,
    /// Undo journal: the slot being changed plus one (0: none), its old count, old value.
    journal_slot: AtomicU32,
    journal_count: AtomicU32,
    journal_value: AtomicU32,
    holders: Holders,
}

// SAFETY: atomics only; zero permits, no bound, unlocked, nobody holding when zeroed.
unsafe impl SharedState for SemState {
    const KIND: Kind = Kind::Semaphore;
    fn recover(&self, pid: u32) {
        self.locked(|s| s.reclaim(Some(pid)));
    }
}

impl SemState {
    /// Runs `f` under the lock, rolling back a dead updater's half-done change first.
    fn locked<R>(&self, f: impl FnOnce(&Self) -> R) -> R {
        if self.lock.lock(Deadline::NEVER) == Some(Taken::OwnerDied) {
            if let Some(i) = self.journal_slot.load(Ordering::Relaxed).checked_sub(1) {
                self.value
                    .store(self.journal_value.load(Ordering::Relaxed), Ordering::SeqCst);
                if let Some(i) = (i as usize).checked_sub(1) {
                    self.holders
                        .set_count(i, self.journal_count.load(Ordering::Relaxed));
                }
                self.journal_slot.store(0, Ordering::Relaxed);
            }
        }
        let result = f(self);
        self.lock.unlock();
        result
    }

    /// Under the lock: sets the value and slot `slot`'s count, journaled.
    fn update(&self, slot: Option<usize>, value: u32, count: u32) {
        self.journal_value
            .store(self.value.load(Ordering::Relaxed), Ordering::Relaxed);
        if let Some(i) = slot {
            self.journal_count
                .store(self.holders.count(i), Ordering::Relaxed);
        }
        // Slot plus one, plus one again so that "no slot" (1) differs from "no journal" (0).
        self.journal_slot
            .store(slot.map_or(1, |i| i as u32 + 2), Ordering::Release);
        self.value.store(value, Ordering::SeqCst);
        if let Some(i) = slot {
            self.holders.set_count(i, count);
        }
        self.journal_slot.store(0, Ordering::Release);
    }

    /// Under the lock: gives back what dead holders (`only`: that pid) held.
    fn reclaim(&self, only: Option<u32>) -> u32 {
        let mut total = 0;
        for i in self.holders.claim_dead(only) {
            let n = self.holders.count(i);
            let value = self.value.load(Ordering::Relaxed).saturating_add(n);
            self.update(Some(i), value, 0);
            self.holders.free(i);
            total += n;
        }
        if total > 0 {
            self.wake(total);
        }
        total
    }

    fn wake(&self, n: u32) {
        if self.sleepers.load(Ordering::SeqCst) != 0 {
            futex::wake(&self.value, n);
        }
    }

    /// Takes a permit if one is free; `Some(tracked)`.
    fn try_take(&self) -> Option<bool> {
        if self.value.load(Ordering::Relaxed) == 0 {
            return None;
        }
        self.locked(|s| {
            let value = s.value.load(Ordering::Relaxed);
            if value == 0 {
                return None;
            }
            let slot = s.holders.mine();
            let count = slot.map_or(0, |i| s.holders.count(i) + 1);
            s.update(slot, value - 1, count);
            Some(slot.is_some())
        })
    }

    fn take(&self, deadline: Deadline) -> Option<bool> {
        loop {
            if let Some(tracked) = self.try_take() {
                return Some(tracked);
            }
            if !deadline.has_passed()
                && futex::linger_until(|| self.value.load(Ordering::Acquire) != 0)
            {
                continue;
            }
            // "Announce, re-check, sleep" against "publish, check, wake": SeqCst on both.
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            let slice = Deadline::after(SLICE);
            let until = match (deadline.instant(), slice.instant()) {
                (Some(d), Some(s)) if d < s => deadline,
                _ => slice,
            };
            let woken =
                self.value.load(Ordering::SeqCst) != 0 || futex::wait(&self.value, 0, until);
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
            if !woken {
                if deadline.has_passed() {
                    return self.try_take();
                }
                // A slice passed: give back what dead holders held.
                self.locked(|s| s.reclaim(None));
            }
        }
    }

    /// Gives back `n` permits (from this process's tracked count if `tracked`); refused if
    /// that would pass the bound, unless `clamp` (a guard's drop never fails).
    fn give(&self, n: u32, tracked: bool, clamp: bool) -> Result<(), OverReleaseError> {
        self.locked(|s| {
            let value = s.value.load(Ordering::Relaxed);
            let mut new = value.saturating_add(n);
            // The bound is stored plus one, so that 0 means "none" and a bound of 0 exists.
            if let Some(bound) = s.bound.load(Ordering::Relaxed).checked_sub(1) {
                if new > bound {
                    if !clamp {
                        return Err(OverReleaseError::new(
                            n as usize,
                            value as usize,
                            bound as usize,
                        ));
                    }
                    new = bound;
                }
            }
            let slot = if tracked { s.holders.mine() } else { None };
            let count = slot.map_or(0, |i| s.holders.count(i).saturating_sub(n));
            s.update(slot, new, count);
            Ok(())
        })?;
        self.wake(n);
        Ok(())
    }
}

/// Python's `multiprocessing.Semaphore(value)`: counted permits shared by processes.
///
/// The methods of [`sync::Semaphore`](crate::sync::Semaphore), across processes. A permit
/// taken through a guard ([`SemaphorePermit`]) by a process that then dies is given back:
/// at once if the dead process was a tandem child of this one, otherwise within about
/// 10 ms by a waiter that notices. Permits taken and kept with
/// [`SemaphorePermit::forget`] and given back with [`release`](Semaphore::release) are a
/// plain count: a dead process's share of those cannot be known and is not recovered. Up to
/// 62 processes are tracked per semaphore; beyond that, their guards are not recovered.
/// Differences from the thread semaphore: no FIFO hand-off (the kernel wakes sleepers
/// roughly in arrival order, but a process arriving just as a permit frees may take it
/// first); at most `u32::MAX` permits.
///
/// # Examples
/// ```
/// pytandem::process::init();
/// use pytandem::process::{Process, Semaphore};
///
/// fn use_a_slot(slots: Semaphore) -> usize {
///     let _permit = slots.acquire();
///     slots.available_permits()
/// }
///
/// let slots = Semaphore::new(2)?;
/// let children: Vec<_> =
///     (0..3).map(|_| Process::spawn(use_a_slot, slots.clone())).collect::<Result<_, _>>()?;
/// for c in children {
///     assert!(c.join()? <= 1);
/// }
/// assert_eq!(slots.available_permits(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Semaphore {
    inner: Shared<SemState>,
}

shared_handle!(Semaphore);

/// Python's `multiprocessing.BoundedSemaphore(value)`: a [`Semaphore`] whose `release`
/// refuses to raise the count above its initial value.
pub struct BoundedSemaphore {
    inner: Shared<SemState>,
}

shared_handle!(BoundedSemaphore);

fn create(value: u32, bounded: bool) -> io::Result<Shared<SemState>> {
    Shared::create(
        |s: &SemState| {
            s.value.store(value, Ordering::Relaxed);
            s.bound.store(
                if bounded { value.saturating_add(1) } else { 0 },
                Ordering::Relaxed,
            );
        },
        std::iter::empty(),
    )
}

/// A permit taken from a process [`Semaphore`] or [`BoundedSemaphore`]; it returns when
/// dropped, or when its process dies.
#[must_use = "the permit is released as soon as it is dropped"]
pub struct SemaphorePermit<'a> {
    state: &'a SemState,
    tracked: bool,
}

impl SemaphorePermit<'_> {
    /// Keeps the permit taken (Python's bare `acquire()`): give it back with `release`. A
    /// forgotten permit is not returned if its process dies.
    pub fn forget(self) {
        if self.tracked {
            self.state.locked(|s| {
                if let Some(i) = s.holders.mine() {
                    let count = s.holders.count(i).saturating_sub(1);
                    s.update(Some(i), s.value.load(Ordering::Relaxed), count);
                }
            });
        }
        std::mem::forget(self);
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        // Over a bound only if `release` calls refilled it meanwhile: then the permit is
        // dropped so the bound holds (as the thread semaphore does).
        let _ = self.state.give(1, self.tracked, true);
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SemaphorePermit")
    }
}

macro_rules! semaphore_methods {
    () => {
        fn state(&self) -> &SemState {
            self.inner.state()
        }

        fn permit(&self, tracked: bool) -> SemaphorePermit<'_> {
            SemaphorePermit {
                state: self.state(),
                tracked,
            }
        }

        /// Takes a permit, waiting as long as it takes (Python's `with sem:`).
        pub fn acquire(&self) -> SemaphorePermit<'_> {
            let tracked = self.state().take(Deadline::NEVER).expect("no deadline");
            self.permit(tracked)
        }

        /// Takes a permit if one is free (Python's `acquire(block=False)`).
        pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
            self.state().try_take().map(|t| self.permit(t))
        }

        /// Takes a permit, waiting at most `timeout` (Python's `acquire(timeout=t)`).
        pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphorePermit<'_>> {
            self.state()
                .take(Deadline::after(timeout))
                .map(|t| self.permit(t))
        }

        /// How many permits are free now.
        pub fn available_permits(&self) -> usize {
            self.state().value.load(Ordering::Relaxed) as usize
        }

        /// Python's `get_value()`.
        pub fn get_value(&self) -> usize {
            self.available_permits()
        }

        /// Gives back one permit taken without a guard, waking one waiter (Python's
        /// `release()`); the same shape as the thread semaphores' `release`.
        ///
        /// # Panics
        /// If the release is refused (see [`try_release_n`](Self::try_release_n)); use
        /// [`try_release`](Self::try_release) to get the error instead.
        #[track_caller]
        pub fn release(&self) {
            self.release_n(1);
        }

        /// Gives back `n` permits taken without a guard, waking as many waiters (Python's
        /// `release(n)`).
        ///
        /// # Panics
        /// If the release is refused (see [`try_release_n`](Self::try_release_n)).
        #[track_caller]
        pub fn release_n(&self, n: u32) {
            if let Err(e) = self.try_release_n(n) {
                crate::sync::over_release(e);
            }
        }

        /// Gives back one permit like [`release`](Self::release).
        ///
        /// # Errors
        /// As [`try_release_n`](Self::try_release_n); nothing is released then.
        pub fn try_release(&self) -> Result<(), OverReleaseError> {
            self.try_release_n(1)
        }
    };
}

impl Semaphore {
    /// A semaphore with `value` permits in shared memory.
    pub fn new(value: u32) -> io::Result<Self> {
        Ok(Semaphore {
            inner: create(value, false)?,
        })
    }

    semaphore_methods!();

    /// Gives back `n` permits taken without a guard like [`release_n`](Self::release_n).
    ///
    /// # Errors
    /// `n` is 0 (Python 3.9+: `ValueError: n must be one or more`), or the count would pass
    /// `u32::MAX`; nothing is released then.
    pub fn try_release_n(&self, n: u32) -> Result<(), OverReleaseError> {
        let available = self.available_permits();
        let fits = available
            .checked_add(n as usize)
            .filter(|&t| t <= u32::MAX as usize);
        if n == 0 || fits.is_none() {
            return Err(OverReleaseError::new(
                n as usize,
                available,
                u32::MAX as usize,
            ));
        }
        self.state().give(n, false, false)
    }
}

impl BoundedSemaphore {
    /// A bounded semaphore with `value` permits, which is also its bound.
    pub fn new(value: u32) -> io::Result<Self> {
        Ok(BoundedSemaphore {
            inner: create(value, true)?,
        })
    }

    semaphore_methods!();

    /// Gives back `n` permits like [`release_n`](Self::release_n).
    ///
    /// # Errors
    /// `n` is 0, or the release would raise the count above the bound (Python's
    /// `ValueError: Semaphore released too many times`); nothing is released then.
    pub fn try_release_n(&self, n: u32) -> Result<(), OverReleaseError> {
        if n == 0 {
            return Err(OverReleaseError::new(
                0,
                self.available_permits(),
                self.bound(),
            ));
        }
        self.state().give(n, false, false)
    }

    /// The bound: the initial value.
    pub fn bound(&self) -> usize {
        self.state().bound.load(Ordering::Relaxed).saturating_sub(1) as usize
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("process::Semaphore")
            .field("available", &self.available_permits())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("process::BoundedSemaphore")
            .field("available", &self.available_permits())
            .field("bound", &self.bound())
            .finish_non_exhaustive()
    }
}
