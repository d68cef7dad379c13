//! `Condvar`: a condition variable over a [`Lock`] that already exists — Python's
//! `threading.Condition(lock)` — waiting through that lock's own guard, parking_lot style.
//! The engine is `Condition`'s (`RawCondvar` in `raw_condvar.rs`).

use std::fmt;
use std::time::{Duration, Instant};

use super::lock::LockGuard;
use super::raw_condvar::RawCondvar;
use crate::primitive::loom_const_fn;
use crate::wait::Deadline;

/// A condition variable that waits on a [`Lock`](super::Lock)'s own guard: Python's
/// `threading.Condition(lock)` over a lock that already exists, so several conditions can
/// share one lock (the shape of `queue.Queue` itself: `not_empty`, `not_full` and
/// `all_tasks_done` over one mutex). [`Condition`](super::Condition) stays the convenient
/// pairing of one lock and one wait set.
///
/// | Python | tandem |
/// | --- | --- |
/// | `lock = threading.Lock()`; `not_empty = threading.Condition(lock)` | `let lock = Lock::new(data); let not_empty = Condvar::new();` |
/// | `with not_empty: not_empty.wait()` | `let mut g = lock.acquire(); not_empty.wait(&mut g);` |
/// | `not_empty.wait(timeout)` | `not_empty.wait_timeout(&mut g, t)` → notified? |
/// | `not_empty.wait_for(pred)` | `not_empty.wait_for(&mut g, pred)` |
/// | `not_empty.wait_for(pred, timeout)` | `not_empty.wait_for_timeout(&mut g, pred, timeout)` → its last value |
/// | `not_empty.notify(n)`, `notify_all()` | `not_empty.notify(&g, n)`, `not_empty.notify_all(&g)` |
///
/// Notifying takes the lock's guard too, as Python requires the lock to be held: a woken
/// waiter is moved onto the lock's queue and runs once the notifier releases the lock, never
/// to block on it again.
///
/// # Examples
/// Two conditions over one lock: a bounded buffer.
/// ```
/// use std::collections::VecDeque;
/// use pytandem::sync::{Condvar, Lock};
///
/// let buffer = Lock::new(VecDeque::new());
/// let (not_empty, not_full) = (Condvar::new(), Condvar::new());
/// std::thread::scope(|s| {
///     s.spawn(|| {
///         for i in 0..10 {
///             let mut b = buffer.acquire();
///             not_full.wait_for(&mut b, |b| b.len() < 2);
///             b.push_back(i);
///             not_empty.notify_one(&b);
///         }
///     });
///     let mut got = Vec::new();
///     while got.len() < 10 {
///         let mut b = buffer.acquire();
///         not_empty.wait_for(&mut b, |b| !b.is_empty());
///         got.push(b.pop_front().unwrap());
///         not_full.notify_one(&b);
///     }
///     assert_eq!(got, (0..10).collect::<Vec<_>>());
/// });
/// ```
///
/// # Panics
/// A `Condvar` serves one lock at a time: waiting on it with a guard of another lock while
/// threads wait with the first panics (parking_lot's rule). Notifying with another lock's
/// guard wakes nobody.
///
/// # Fairness
/// As [`Condition`](super::Condition): waiters are woken longest-waiting first.
pub struct Condvar {
    raw: RawCondvar,
}

impl Condvar {
    loom_const_fn! {
        /// A condition variable with no waiters. Python: `threading.Condition(lock)`.
        pub fn new() -> Self {
            Condvar {
                raw: RawCondvar::new(),
            }
        }
    }

    /// Releases the guard's lock, sleeps until notified, and takes the lock back (the
    /// guard holds it again). Python: `cond.wait()`. No spurious wake-ups, but the data may
    /// have changed again: check it in a loop or use [`wait_for`](Self::wait_for).
    pub fn wait<T: ?Sized>(&self, guard: &mut LockGuard<'_, T>) {
        self.wait_deadline(guard, Deadline::NEVER);
    }

    /// Like [`wait`](Self::wait), giving up after `timeout`: `true` if notified, `false` if
    /// the time ran out; the lock is held again either way. A timeout too large to represent
    /// waits forever. Python: `cond.wait(timeout)`.
    pub fn wait_timeout<T: ?Sized>(&self, guard: &mut LockGuard<'_, T>, timeout: Duration) -> bool {
        self.wait_deadline(guard, Deadline::after(timeout))
    }

    /// Like [`wait_timeout`](Self::wait_timeout), until an instant.
    pub fn wait_until<T: ?Sized>(&self, guard: &mut LockGuard<'_, T>, deadline: Instant) -> bool {
        self.wait_deadline(guard, Deadline::at(deadline))
    }

    /// Waits until `predicate` holds for the data; it is checked first, with the lock held.
    /// Python: `cond.wait_for(predicate)`.
    pub fn wait_for<T: ?Sized>(
        &self,
        guard: &mut LockGuard<'_, T>,
        predicate: impl FnMut(&mut T) -> bool,
    ) {
        self.wait_for_deadline(guard, predicate, None);
    }

    /// Waits until `predicate` holds for the data, or `timeout` runs out; returns the
    /// predicate's last value. The predicate is checked first, with the lock held; all
    /// re-waits share one deadline. Python: `cond.wait_for(predicate, timeout)`.
    pub fn wait_for_timeout<T: ?Sized>(
        &self,
        guard: &mut LockGuard<'_, T>,
        predicate: impl FnMut(&mut T) -> bool,
        timeout: Duration,
    ) -> bool {
        self.wait_for_deadline(guard, predicate, Some(timeout))
    }

    fn wait_for_deadline<T: ?Sized>(
        &self,
        guard: &mut LockGuard<'_, T>,
        mut predicate: impl FnMut(&mut T) -> bool,
        timeout: Option<Duration>,
    ) -> bool {
        let mut deadline = None;
        loop {
            if predicate(&mut **guard) {
                return true;
            }
            let deadline = *deadline.get_or_insert_with(|| Deadline::from_timeout(timeout));
            if deadline.has_passed() {
                return false;
            }
            self.wait_deadline(guard, deadline);
        }
    }

    fn wait_deadline<T: ?Sized>(&self, guard: &mut LockGuard<'_, T>, deadline: Deadline) -> bool {
        // The guard's hold is given up inside and taken back before this returns, so the
        // guard holds the lock again when the caller sees it.
        self.raw.wait_until(LockGuard::lock(guard).raw(), deadline)
    }

    /// Wakes the `n` threads that have waited longest (all if fewer wait); returns how many.
    /// They run once `guard`'s lock is released. Python: `cond.notify(n)`.
    pub fn notify<T: ?Sized>(&self, guard: &LockGuard<'_, T>, n: usize) -> usize {
        self.raw.notify(LockGuard::lock(guard).raw(), n)
    }

    /// Wakes the thread that has waited longest, if any; `true` if there was one.
    /// Python: `cond.notify()`.
    pub fn notify_one<T: ?Sized>(&self, guard: &LockGuard<'_, T>) -> bool {
        self.raw.notify_one(LockGuard::lock(guard).raw())
    }

    /// Wakes every waiting thread; returns how many. Python: `cond.notify_all()`.
    #[doc(alias = "notifyAll")]
    pub fn notify_all<T: ?Sized>(&self, guard: &LockGuard<'_, T>) -> usize {
        self.raw.notify_all(LockGuard::lock(guard).raw())
    }
}

impl Default for Condvar {
    fn default() -> Self {
        Condvar::new()
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}
