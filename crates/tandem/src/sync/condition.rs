//! `Condition<T>`: Python's `threading.Condition`, a lock and its wait set, with the data
//! inside; over a [`Lock`] (the default) or an [`RLock`] (Python's default).
//!
//! The wait set is `RawCondvar` (`raw_condvar.rs`), shared with [`Condvar`](super::Condvar).

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use super::lock::{Lock, LockGuard};
use super::raw_condvar::RawCondvar;
use super::raw_lock::RawLock;
use super::rlock::{RLock, RLockGuard};
use crate::primitive::loom_const_fn;
use crate::wait::Deadline;

// The sealed trait's methods mention crate-private types (`RawLock`, `RawCondvar`,
// `Deadline`). The trait is public only so that `ConditionLock` can extend it: no other crate
// can name it, implement it, or build the arguments those methods take, which is exactly the
// sealing we want; hence the allowed lint.
#[allow(private_interfaces)]
mod sealed {
    use super::*;

    /// What [`Condition`](super::Condition) needs from its lock. Sealed: only tandem's locks.
    pub trait Sealed {
        /// The data the lock guards.
        type Data;
        /// The lock's own guard, kept inside the condition's guard.
        type Guard<'a>: Deref<Target = Self::Data>
        where
            Self: 'a;
        fn acquire_guard(&self) -> Self::Guard<'_>;
        fn try_acquire_guard(&self) -> Option<Self::Guard<'_>>;
        fn acquire_guard_timeout(&self, timeout: Duration) -> Option<Self::Guard<'_>>;
        fn acquire_guard_until(&self, deadline: Instant) -> Option<Self::Guard<'_>>;
        fn is_locked(&self) -> bool;
        fn into_data(self) -> Self::Data
        where
            Self: Sized;
        fn data_mut(&mut self) -> &mut Self::Data;
        /// Waits on `cv`, releasing the lock completely meanwhile and restoring it after;
        /// whether notified. The calling thread holds the lock.
        fn wait_on(&self, cv: &RawCondvar, deadline: Deadline) -> bool;
        /// The lock's engine.
        fn raw_lock(&self) -> &RawLock;
    }

    impl<T> Sealed for Lock<T> {
        type Data = T;
        type Guard<'a>
            = LockGuard<'a, T>
        where
            Self: 'a;

        #[inline]
        fn acquire_guard(&self) -> LockGuard<'_, T> {
            self.acquire()
        }
        #[inline]
        fn try_acquire_guard(&self) -> Option<LockGuard<'_, T>> {
            self.try_acquire()
        }
        #[inline]
        fn acquire_guard_timeout(&self, timeout: Duration) -> Option<LockGuard<'_, T>> {
            self.acquire_timeout(timeout)
        }
        #[inline]
        fn acquire_guard_until(&self, deadline: Instant) -> Option<LockGuard<'_, T>> {
            self.acquire_until(deadline)
        }
        #[inline]
        fn is_locked(&self) -> bool {
            self.locked()
        }
        fn into_data(self) -> T {
            self.into_inner()
        }
        fn data_mut(&mut self) -> &mut T {
            self.get_mut()
        }
        #[inline]
        fn wait_on(&self, cv: &RawCondvar, deadline: Deadline) -> bool {
            cv.wait_until(self.raw(), deadline)
        }
        #[inline]
        fn raw_lock(&self) -> &RawLock {
            self.raw()
        }
    }

    impl<T> Sealed for RLock<T> {
        type Data = T;
        type Guard<'a>
            = RLockGuard<'a, T>
        where
            Self: 'a;

        #[inline]
        fn acquire_guard(&self) -> RLockGuard<'_, T> {
            self.acquire()
        }
        #[inline]
        fn try_acquire_guard(&self) -> Option<RLockGuard<'_, T>> {
            self.try_acquire()
        }
        #[inline]
        fn acquire_guard_timeout(&self, timeout: Duration) -> Option<RLockGuard<'_, T>> {
            self.acquire_timeout(timeout)
        }
        #[inline]
        fn acquire_guard_until(&self, deadline: Instant) -> Option<RLockGuard<'_, T>> {
            self.acquire_until(deadline)
        }
        #[inline]
        fn is_locked(&self) -> bool {
            self.locked()
        }
        fn into_data(self) -> T {
            self.into_inner()
        }
        fn data_mut(&mut self) -> &mut T {
            self.get_mut()
        }
        #[inline]
        fn wait_on(&self, cv: &RawCondvar, deadline: Deadline) -> bool {
            // Python's `_release_save` / `_acquire_restore`: give up every level while waiting.
            let levels = self.release_save();
            let notified = cv.wait_until(self.raw(), deadline);
            self.acquire_restore(levels);
            notified
        }
        #[inline]
        fn raw_lock(&self) -> &RawLock {
            self.raw()
        }
    }
}

/// A lock a [`Condition`] can be built over: [`Lock<T>`] (the default, `DerefMut` access)
/// or [`RLock<T>`] (Python's default, re-entrant, `&T` access). Sealed: implemented by
/// tandem's locks only.
pub trait ConditionLock: sealed::Sealed {}

impl<T> ConditionLock for Lock<T> {}
impl<T> ConditionLock for RLock<T> {}

/// A condition variable with the lock and data it goes with: Python's
/// `threading.Condition`.
///
/// Threads take the lock with [`acquire`](Condition::acquire), look at the data, and
/// [`wait`](ConditionGuard::wait) on the guard until another thread changes the data and
/// [`notify`](ConditionGuard::notify)s them. Waiting releases the lock and takes it back
/// before returning.
///
/// | Python | tandem |
/// | --- | --- |
/// | `cond = threading.Condition(threading.Lock())` | `let cond = Condition::new(data)` |
/// | `cond = threading.Condition()` (over an `RLock`) | `let cond = Condition::new_reentrant(data)` |
/// | `threading.Condition(lock)` | `Condition::with_lock(lock)` (it owns the lock) |
/// | `with cond: ...` | `let mut guard = cond.acquire();` |
/// | `cond.acquire(blocking=False)` / `cond.acquire(timeout=t)` | `cond.try_acquire()` / `cond.acquire_timeout(t)` |
/// | `cond.wait()` | `guard.wait()` |
/// | `cond.wait(timeout)` → `True`/`False` | `guard.wait_timeout(timeout)` → `true` if notified |
/// | `cond.wait_for(predicate)` | `guard.wait_for(\|data\| predicate)` |
/// | `cond.wait_for(predicate, timeout)` | `guard.wait_for_timeout(\|data\| predicate, timeout)` → its last value |
/// | `cond.notify(n)` | `guard.notify(n)` → how many it woke |
/// | `cond.notify()` | `guard.notify_one()` |
/// | `cond.notify_all()` | `guard.notify_all()` → how many it woke |
///
/// # Examples
/// The seeds' producer and consumer: the flag lives inside the condition.
/// ```
/// use pytandem::sync::Condition;
///
/// let data_ready = Condition::new(false);
/// std::thread::scope(|s| {
///     s.spawn(|| {
///         // producer: with condition: data_ready = True; condition.notify()
///         let mut ready = data_ready.acquire();
///         *ready = true;
///         ready.notify_one();
///     });
///     // consumer: with condition: while not data_ready: condition.wait()
///     let mut ready = data_ready.acquire();
///     while !*ready {
///         ready.wait();
///     }
/// });
/// ```
///
/// A bounded buffer, with `wait_for` doing the loop:
/// ```
/// use std::collections::VecDeque;
/// use pytandem::sync::Condition;
///
/// let buffer = Condition::new(VecDeque::new());
/// let consumed: u32 = std::thread::scope(|s| {
///     s.spawn(|| {
///         for item in 1..=100 {
///             let mut q = buffer.acquire();
///             q.wait_for(|q| q.len() < 4); // room for it
///             q.push_back(item);
///             q.notify_all();
///         }
///     });
///     let mut sum = 0;
///     for _ in 1..=100 {
///         let mut q = buffer.acquire();
///         q.wait_for(|q| !q.is_empty());
///         sum += q.pop_front().unwrap();
///         q.notify_all();
///     }
///     sum
/// });
/// assert_eq!(consumed, 5050);
/// ```
///
/// # Over an `RLock`
/// `Condition::new_reentrant` builds Python's default `Condition()`: its owner may acquire it
/// again, and `wait` releases every level, restoring them after (Python's `_release_save` /
/// `_acquire_restore`). Its guards give `&T`, so put what changes in a `Cell`, `RefCell` or
/// atomic:
/// ```compile_fail
/// let cond = pytandem::sync::Condition::new_reentrant(0);
/// *cond.acquire() += 1; // error: no `&mut` through a re-entrant guard
/// ```
/// ```
/// use std::cell::Cell;
/// use pytandem::sync::Condition;
///
/// let cond = Condition::new_reentrant(Cell::new(0));
/// std::thread::scope(|s| {
///     let outer = cond.acquire();
///     let mut inner = cond.acquire(); // re-entered: two levels
///     s.spawn(|| {
///         let n = cond.acquire(); // possible only because `wait` released both levels
///         n.set(1);
///         n.notify_one();
///     });
///     inner.wait_for(|n| n.get() == 1);
///     assert_eq!(cond.lock().recursion_count(), 2);
///     drop((inner, outer));
/// });
/// ```
///
/// # Differences from Python
/// - The condition owns its lock and the data; `wait` and `notify` are on the guard, so they
///   cannot be called without holding the lock (Python raises `RuntimeError`):
///   ```compile_fail
///   let cond = pytandem::sync::Condition::new(());
///   cond.notify_one(); // error: no such method on `Condition`: acquire it first
///   ```
/// - `notify(n)` and `notify_all()` return how many waiters they woke, and `wait_timeout`
///   tells whether it was notified, as Python's `wait(timeout)` does.
/// - No spurious wake-ups, as in CPython: `wait()` returns only once notified. Still prefer
///   `wait_for` or a `while` loop: another thread may change the data between the notify and
///   the moment the waiter holds the lock again.
/// - One condition per lock: a Python lock shared by several conditions (as `queue.Queue`
///   does) is a single `Condition` here, with `notify_all` or one condition per data.
///
/// # Fairness
/// Waiters are woken in arrival order (FIFO), as in CPython: `notify(n)` wakes the `n` that
/// have waited longest. A woken waiter then queues for the lock behind any thread already
/// waiting for it; the lock itself is eventually fair (see [`Lock`]).
///
/// # Panics and poisoning
/// No poisoning: a thread that panics while holding the guard releases the lock as the guard
/// drops.
pub struct Condition<T, L = Lock<T>> {
    cv: RawCondvar,
    // Ties `T` to `L` without owning a `T` (the lock does): invariant, always Send + Sync.
    _data: PhantomData<fn(&T) -> &T>,
    lock: L,
}

impl<T> Condition<T> {
    loom_const_fn! {
        /// A condition over a new [`Lock`] holding `value`.
        /// Python: `threading.Condition(threading.Lock())`.
        pub fn new(value: T) -> Self {
            Condition::with_lock(Lock::new(value))
        }
    }
}

impl<T> Condition<T, RLock<T>> {
    loom_const_fn! {
        /// A condition over a new [`RLock`] holding `value`. Python: `threading.Condition()`.
        pub fn new_reentrant(value: T) -> Self {
            Condition::with_lock(RLock::new(value))
        }
    }
}

impl<T, L> Condition<T, L> {
    loom_const_fn! {
        /// A condition over `lock`, which it owns from now on. Python: `threading.Condition(lock)`.
        pub fn with_lock(lock: L) -> Self {
            Condition {
                cv: RawCondvar::new(),
                _data: PhantomData,
                lock,
            }
        }
    }

    /// The lock underneath, e.g. for [`RLock::is_owned`] or [`RLock::recursion_count`].
    /// Acquiring it directly is allowed (the guard is the lock's own, without `wait`).
    pub fn lock(&self) -> &L {
        &self.lock
    }
}

impl<T, L: ConditionLock<Data = T>> Condition<T, L> {
    /// Names the condition's lock in diagnostics reports (see [`Lock::set_name`]).
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn set_name(&self, name: impl Into<String>) {
        self.lock.raw_lock().set_name(name.into());
    }

    /// The diagnostics name of the condition's lock; always `None` without the feature.
    pub fn name(&self) -> Option<String> {
        self.lock.raw_lock().name()
    }

    /// Blocks until the lock is held; the guard waits and notifies, and releases the lock
    /// when dropped. Python: `cond.acquire()` / `with cond:`.
    #[inline]
    pub fn acquire(&self) -> ConditionGuard<'_, T, L> {
        ConditionGuard {
            cond: self,
            guard: self.lock.acquire_guard(),
        }
    }

    /// Takes the lock if it is free (or, for an `RLock`, held by this thread), without
    /// blocking. Python: `cond.acquire(blocking=False)`.
    #[inline]
    pub fn try_acquire(&self) -> Option<ConditionGuard<'_, T, L>> {
        let guard = self.lock.try_acquire_guard()?;
        Some(ConditionGuard { cond: self, guard })
    }

    /// Takes the lock, waiting at most `timeout`; `None` if it is still held by then. A zero
    /// timeout tries once; a timeout too large to represent waits forever.
    /// Python: `cond.acquire(timeout=t)`.
    #[inline]
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<ConditionGuard<'_, T, L>> {
        let guard = self.lock.acquire_guard_timeout(timeout)?;
        Some(ConditionGuard { cond: self, guard })
    }

    /// Takes the lock, waiting until `deadline` at the latest.
    #[inline]
    pub fn acquire_until(&self, deadline: Instant) -> Option<ConditionGuard<'_, T, L>> {
        let guard = self.lock.acquire_guard_until(deadline)?;
        Some(ConditionGuard { cond: self, guard })
    }

    /// Whether the lock is held by anyone right now (a snapshot).
    #[inline]
    pub fn locked(&self) -> bool {
        self.lock.is_locked()
    }

    /// Consumes the condition, returning its data.
    pub fn into_inner(self) -> T {
        self.lock.into_data()
    }

    /// The data, through exclusive access to the condition itself: no locking needed.
    pub fn get_mut(&mut self) -> &mut T {
        self.lock.data_mut()
    }
}

impl<T: Default> Default for Condition<T> {
    fn default() -> Self {
        Condition::new(T::default())
    }
}

impl<T: Default> Default for Condition<T, RLock<T>> {
    fn default() -> Self {
        Condition::new_reentrant(T::default())
    }
}

impl<T: fmt::Debug, L: ConditionLock<Data = T>> fmt::Debug for Condition<T, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Condition");
        match self.try_acquire() {
            Some(guard) => d.field("data", &&*guard),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}

/// Proof that a [`Condition`]'s lock is held: access to the data, and the condition's `wait`
/// and `notify`. Releases the lock (one level, over an `RLock`) when dropped.
///
/// `DerefMut` over a [`Lock`], `Deref` only over an [`RLock`]. Like the lock's own guard, it
/// may be sent to another thread over a `Lock` (when `T: Send`) but not over an `RLock`.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ConditionGuard<'a, T, L: ConditionLock<Data = T> = Lock<T>> {
    cond: &'a Condition<T, L>,
    guard: L::Guard<'a>,
}

impl<'a, T, L: ConditionLock<Data = T>> ConditionGuard<'a, T, L> {
    /// Releases the lock, sleeps until notified, and takes the lock back.
    /// Python: `cond.wait()`.
    ///
    /// There are no spurious wake-ups, but the data may have changed again by the time the
    /// lock is back: check it in a loop, or use [`wait_for`](ConditionGuard::wait_for).
    #[inline]
    pub fn wait(&mut self) {
        self.wait_deadline(Deadline::NEVER);
    }

    /// Like [`wait`](ConditionGuard::wait), giving up after `timeout`: `true` if notified,
    /// `false` if the time ran out. The lock is held again either way (taking it back may
    /// take longer than `timeout`). A timeout too large to represent waits forever.
    /// Python: `cond.wait(timeout)`.
    #[inline]
    pub fn wait_timeout(&mut self, timeout: Duration) -> bool {
        self.wait_deadline(Deadline::after(timeout))
    }

    /// Like [`wait_timeout`](ConditionGuard::wait_timeout), until an instant.
    #[inline]
    pub fn wait_until(&mut self, deadline: Instant) -> bool {
        self.wait_deadline(Deadline::at(deadline))
    }

    #[inline]
    fn wait_deadline(&mut self, deadline: Deadline) -> bool {
        self.cond.lock.wait_on(&self.cond.cv, deadline)
    }

    /// Wakes the `n` threads that have waited longest (all of them if fewer wait); returns
    /// how many it woke. Each of them returns "notified" from its wait once it holds the lock
    /// again, which is after this guard releases it. Python: `cond.notify(n)`.
    #[inline]
    pub fn notify(&self, n: usize) -> usize {
        self.cond.cv.notify(self.cond.lock.raw_lock(), n)
    }

    /// Wakes the thread that has waited longest, if any; `true` if there was one.
    /// Python: `cond.notify()`.
    #[inline]
    pub fn notify_one(&self) -> bool {
        self.cond.cv.notify_one(self.cond.lock.raw_lock())
    }

    /// Wakes every waiting thread; returns how many. Python: `cond.notify_all()`.
    #[inline]
    #[doc(alias = "notifyAll")]
    pub fn notify_all(&self) -> usize {
        self.cond.cv.notify_all(self.cond.lock.raw_lock())
    }

    /// The condition this guard holds.
    pub fn condition(this: &Self) -> &'a Condition<T, L> {
        this.cond
    }

    /// Waits until `predicate` (given the data) is true, or the deadline passes; returns its
    /// last value.
    fn wait_for_with(
        &mut self,
        mut predicate: impl FnMut(&mut Self) -> bool,
        timeout: Option<Duration>,
    ) -> bool {
        let mut deadline = None;
        loop {
            if predicate(self) {
                return true;
            }
            // Computed once, after the first check (as Python does): re-waits share it.
            let deadline = *deadline.get_or_insert_with(|| Deadline::from_timeout(timeout));
            if deadline.has_passed() {
                return false;
            }
            self.wait_deadline(deadline);
        }
    }
}

impl<T> ConditionGuard<'_, T, Lock<T>> {
    /// Keeps the lock held without a guard (Python's `cond.acquire()` without `with`), as
    /// [`LockGuard::forget`]; release it later, from any thread, with
    /// `cond.lock().release()` (a bare `Condition<()>`) or not at all.
    pub fn forget(self) {
        self.guard.forget();
    }

    /// The old name of [`forget`](ConditionGuard::forget).
    #[deprecated(note = "use `forget`, the one verb for guards and permits")]
    pub fn leak(self) {
        self.forget();
    }

    /// Waits until `predicate` holds for the data. Python: `cond.wait_for(predicate)`.
    ///
    /// The predicate is checked first, with the lock held, and the guard waits only while it
    /// is false; every check after a wake-up also holds the lock.
    ///
    /// ```
    /// use pytandem::sync::Condition;
    ///
    /// let items = Condition::new(Vec::<u32>::new());
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         let mut guard = items.acquire();
    ///         guard.push(1);
    ///         guard.notify_all();
    ///     });
    ///     let mut guard = items.acquire();
    ///     guard.wait_for(|v| !v.is_empty()); // Python: cond.wait_for(lambda: items)
    ///     assert_eq!(*guard, [1]);
    /// });
    /// ```
    #[inline]
    pub fn wait_for(&mut self, mut predicate: impl FnMut(&mut T) -> bool) {
        self.wait_for_with(|g| predicate(&mut **g), None);
    }

    /// Waits until `predicate` holds for the data, or `timeout` runs out; returns the
    /// predicate's last value. Python: `cond.wait_for(predicate, timeout)`.
    ///
    /// The predicate is checked first, with the lock held, and the guard waits only while it
    /// is false; every check after a wake-up also holds the lock. All re-waits share one
    /// deadline, so the whole call lasts about `timeout` at most (plus taking the lock back).
    /// A timeout too large to represent waits forever.
    ///
    /// ```
    /// use std::time::Duration;
    /// use pytandem::sync::Condition;
    ///
    /// let items = Condition::new(Vec::<u32>::new());
    /// let mut guard = items.acquire();
    /// // Nobody will push: times out and returns the predicate's last value.
    /// assert!(!guard.wait_for_timeout(|v| !v.is_empty(), Duration::from_millis(10)));
    /// guard.push(1);
    /// assert!(guard.wait_for_timeout(|v| !v.is_empty(), Duration::ZERO)); // true at once
    /// ```
    pub fn wait_for_timeout(
        &mut self,
        mut predicate: impl FnMut(&mut T) -> bool,
        timeout: Duration,
    ) -> bool {
        self.wait_for_with(|g| predicate(&mut **g), Some(timeout))
    }
}

impl<T> ConditionGuard<'_, T, RLock<T>> {
    /// Keeps this level held without a guard (Python's `cond.acquire()` without `with`), as
    /// [`RLockGuard::forget`]; release it later, from the same thread, with
    /// `cond.lock().release()` (a bare reentrant `Condition<()>`) or not at all.
    pub fn forget(self) {
        self.guard.forget();
    }

    /// The old name of [`forget`](ConditionGuard::forget).
    #[deprecated(note = "use `forget`, the one verb for guards and permits")]
    pub fn leak(self) {
        self.forget();
    }

    /// Waits until `predicate` holds for the data; every level of the lock is released
    /// while waiting. Python: `cond.wait_for(predicate)`.
    ///
    /// The predicate is checked first, with the lock held, and the guard waits only while it
    /// is false.
    #[inline]
    pub fn wait_for(&mut self, mut predicate: impl FnMut(&T) -> bool) {
        self.wait_for_with(|g| predicate(&**g), None);
    }

    /// Waits until `predicate` holds for the data, or `timeout` runs out; returns the
    /// predicate's last value. Every level of the lock is released while waiting.
    /// Python: `cond.wait_for(predicate, timeout)`.
    ///
    /// The predicate is checked first, with the lock held, and the guard waits only while it
    /// is false; all re-waits share one deadline.
    pub fn wait_for_timeout(
        &mut self,
        mut predicate: impl FnMut(&T) -> bool,
        timeout: Duration,
    ) -> bool {
        self.wait_for_with(|g| predicate(&**g), Some(timeout))
    }
}

impl<T, L: ConditionLock<Data = T>> Deref for ConditionGuard<'_, T, L> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for ConditionGuard<'_, T, Lock<T>> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T: fmt::Debug, L: ConditionLock<Data = T>> fmt::Debug for ConditionGuard<'_, T, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(all(test, not(tandem_loom)))]
mod tests {
    use super::*;
    use crate::primitive::atomic::{AtomicUsize, Ordering};
    use std::cell::Cell;

    #[test]
    #[cfg(not(feature = "diagnostics"))] // diagnostics add a word or three to the lock
    fn sizes() {
        assert!(std::mem::size_of::<Condition<()>>() <= 16);
        assert_eq!(
            std::mem::size_of::<Condition<()>>(),
            std::mem::size_of::<usize>() * 2
        );
        assert_eq!(
            std::mem::size_of::<ConditionGuard<'_, ()>>(),
            2 * std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn notify_without_waiters_is_zero() {
        let c = Condition::new(());
        let g = c.acquire();
        assert!(!g.notify_one());
        assert_eq!(g.notify(3), 0);
        assert_eq!(g.notify_all(), 0);
        assert_eq!(g.notify(0), 0);
    }

    #[test]
    fn timeouts_report_false_and_keep_the_lock() {
        let c = Condition::new(1);
        let mut g = c.acquire();
        assert!(!g.wait_timeout(Duration::ZERO));
        assert!(!g.wait_timeout(Duration::from_millis(5)));
        assert!(!g.wait_until(Instant::now()));
        assert!(c.locked());
        *g += 1;
        assert!(c.try_acquire().is_none());
        drop(g);
        assert_eq!(c.into_inner(), 2);
    }

    #[test]
    fn raw_condvar_state_clears_after_timeouts() {
        let c = Condition::new(());
        let mut g = c.acquire();
        assert!(!g.wait_timeout(Duration::from_millis(1)));
        assert_eq!(c.cv.state.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn unlocked_raw_lock_path_wakes_directly() {
        // `notify` with the lock free (impossible through the guard) takes the UnparkOne /
        // UnparkOneRequeueRest paths: exercise them on the engine directly.
        let lock = RawLock::new();
        let cv = RawCondvar::new();
        let arrived = AtomicUsize::new(0);
        let notified = std::thread::scope(|s| {
            let waiters: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        lock.lock();
                        arrived.fetch_add(1, Ordering::Relaxed);
                        let n = cv.wait_until(&lock, Deadline::NEVER);
                        lock.unlock();
                        n
                    })
                })
                .collect();
            // A waiter that counted itself under the lock was queued before it let go of
            // the lock: once we see 2 under the lock, both are parked on the condition.
            loop {
                lock.lock();
                let n = arrived.load(Ordering::Relaxed);
                lock.unlock();
                if n == 2 {
                    break;
                }
                std::thread::yield_now();
            }
            assert_ne!(cv.state.load(Ordering::Relaxed), 0);
            assert!(cv.notify_one(&lock)); // lock free: UnparkOne
            assert_eq!(cv.notify_all(&lock), 1); // lock free: UnparkOneRequeueRest
            assert_eq!(cv.notify_all(&lock), 0);
            waiters
                .into_iter()
                .map(|w| w.join().unwrap())
                .collect::<Vec<_>>()
        });
        assert_eq!(notified, vec![true, true]);
        assert!(!lock.is_locked());
    }

    #[test]
    fn reentrant_wait_restores_levels() {
        let c = Condition::new_reentrant(Cell::new(0u32));
        let outer = c.acquire();
        let mut inner = c.acquire();
        assert_eq!(c.lock().recursion_count(), 2);
        assert!(!inner.wait_timeout(Duration::from_millis(1)));
        assert_eq!(c.lock().recursion_count(), 2);
        assert!(c.lock().is_owned());
        drop(inner);
        drop(outer);
        assert!(!c.locked());
    }

    #[test]
    fn debug_default_get_mut() {
        let mut c: Condition<Vec<u8>> = Condition::default();
        c.get_mut().push(1);
        assert_eq!(format!("{c:?}"), "Condition { data: [1] }");
        let g = c.acquire();
        assert_eq!(format!("{g:?}"), "[1]");
        let shown = std::thread::scope(|s| s.spawn(|| format!("{c:?}")).join().unwrap());
        assert_eq!(shown, "Condition { data: <locked> }");
        drop(g);
        let r: Condition<u8, RLock<u8>> = Condition::default();
        let _g = r.acquire();
        assert_eq!(format!("{r:?}"), "Condition { data: 0 }"); // the owner re-enters
    }
}

#[cfg(all(test, tandem_loom))]
mod loom_tests {
    use super::*;
    use crate::primitive::atomic::Ordering;
    use loom::sync::Arc;
    use std::cell::Cell;

    /// The notifier sets the flag and notifies under the lock; the waiter checks the flag
    /// under the lock and waits while it is false. Whatever the interleaving, the waiter
    /// cannot miss the notification (a lost wake-up would leave it parked: loom reports the
    /// deadlock).
    #[test]
    fn no_lost_wakeup() {
        loom::model(|| {
            let cond = Arc::new(Condition::new(false));
            let c2 = Arc::clone(&cond);
            let notifier = loom::thread::spawn(move || {
                let mut ready = c2.acquire();
                *ready = true;
                ready.notify_one();
            });
            let mut ready = cond.acquire();
            while !*ready {
                ready.wait();
            }
            drop(ready);
            notifier.join().unwrap();
            assert!(!cond.locked());
        });
    }

    /// A timed wait racing a notify: the waiter says "notified" exactly when the notifier
    /// counted it, including when its deadline passes after it was requeued onto the lock.
    #[test]
    fn timed_wait_agrees_with_notify_count() {
        loom::model(|| {
            let cond = Arc::new(Condition::new(false));
            let c2 = Arc::clone(&cond);
            let waiter = loom::thread::spawn(move || {
                let mut waiting = c2.acquire();
                *waiting = true;
                waiting.wait_timeout(Duration::from_secs(5))
            });
            let woke = {
                let waiting = cond.acquire();
                *waiting && waiting.notify_one()
            };
            let notified = waiter.join().unwrap();
            assert_eq!(notified, woke);
            assert!(!cond.locked());
            assert_eq!(cond.cv.state.load(Ordering::Relaxed), 0);
        });
    }

    /// Over an RLock held two levels deep: waiting releases both (so the notifier can get
    /// in), and the levels are back afterwards.
    #[test]
    fn reentrant_wait_releases_every_level() {
        loom::model(|| {
            let cond = Arc::new(Condition::new_reentrant(Cell::new(false)));
            let c2 = Arc::clone(&cond);
            let notifier = loom::thread::spawn(move || {
                let flag = c2.acquire();
                flag.set(true);
                flag.notify_all();
            });
            let outer = cond.acquire();
            let mut inner = cond.acquire();
            inner.wait_for(|f| f.get());
            assert!(inner.get(), "wait_for returns once the predicate holds");
            assert_eq!(cond.lock().recursion_count(), 2);
            drop(inner);
            drop(outer);
            notifier.join().unwrap();
            assert!(!cond.locked());
        });
    }
}
