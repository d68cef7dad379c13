//! `Lock<T>`: Python's `threading.Lock`, with the data it guards inside.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use super::raw_lock::RawLock;
use crate::error::ReleaseError;
use crate::primitive::loom_const_fn;
use crate::primitive::UnsafeCell;
use crate::wait::Deadline;

/// A mutual-exclusion lock: Python's `threading.Lock`, holding the data it protects.
///
/// | Python | tandem |
/// | --- | --- |
/// | `lock = threading.Lock()` | `let lock = Lock::new(())` (or `Lock::new(data)`) |
/// | `with lock: ...` | `let guard = lock.acquire();` (released when `guard` drops) |
/// | `lock.acquire(blocking=False)` | `lock.try_acquire()` → `Option<LockGuard>` |
/// | `lock.acquire(timeout=t)` | `lock.acquire_timeout(t)` → `Option<LockGuard>` |
/// | `lock.locked()` | `lock.locked()` |
/// | `lock.release()` from another thread | send the guard there and drop it, or `guard.forget()` then `Lock<()>::release` |
///
/// # Examples
/// The seeds' lost-update race, fixed: the counter lives inside the lock, so it cannot be
/// touched without holding it.
/// ```
/// use pytandem::sync::Lock;
///
/// let counter = Lock::new(0);
/// std::thread::scope(|s| {
///     for _ in 0..4 {
///         s.spawn(|| {
///             for _ in 0..10_000 {
///                 let mut n = counter.acquire();
///                 let current = *n; // read...
///                 *n = current + 1; // ...modify, write: no other thread can interleave
///             }
///         });
///     }
/// });
/// assert_eq!(counter.into_inner(), 40_000);
/// ```
///
/// # Differences from Python
/// - The lock holds its data; a bare Python lock is `Lock<()>`.
/// - Releasing an unlocked `Lock<()>` returns [`ReleaseError::Unlocked`] instead of raising.
/// - Like Python's, the lock has no owner: a [`LockGuard`] may be sent to another thread and
///   dropped there, which releases the lock from that thread.
///
/// # Fairness
/// Eventually fair (parking_lot's policy): waiters queue in arrival order; an unlocking thread
/// may re-take the lock ahead of them for up to about 0.5 ms, after which the lock is handed
/// directly to the first waiter. [`LockGuard::unlock_fair`] hands it over at once.
///
/// # Panics and poisoning
/// No poisoning: a thread that panics while holding the guard releases the lock as the guard
/// drops. Use [`LockGuard::transaction`] to make an update all-or-nothing.
///
/// # Acquiring twice on one thread hangs
/// A `Lock` has no owner (so that any thread may release it, as in Python): a thread that
/// calls `acquire` while it still holds the lock waits for itself, forever, exactly as with
/// `threading.Lock`. Code that re-enters — a function holding the lock calls another that
/// takes it — needs an [`RLock`](crate::sync::RLock). Where a second acquisition might
/// happen, `try_acquire` or `acquire_timeout` returns instead of hanging. With the
/// `diagnostics` feature, [`diagnostics::check_deadlock`](crate::diagnostics) and its
/// watchdog report such a hang as a deadlock of one thread, naming the thread, the lock
/// and the line that first took it.
/// ```no_run
/// use pytandem::sync::Lock;
///
/// let lock = Lock::new(0);
/// let guard = lock.acquire();
/// let again = lock.acquire(); // never returns: this thread already holds `lock`
/// ```
pub struct Lock<T: ?Sized> {
    raw: RawLock,
    data: UnsafeCell<T>,
}

// SAFETY: the lock hands out access to `T` to one thread at a time, so sharing the lock
// shares `T` only by moving exclusive access between threads: `T: Send` suffices, as for
// `std::sync::Mutex`.
unsafe impl<T: ?Sized + Send> Sync for Lock<T> {}
// SAFETY: owning the lock owns the `T` inside it.
unsafe impl<T: ?Sized + Send> Send for Lock<T> {}

impl<T> Lock<T> {
    loom_const_fn! {
        /// A new, unlocked lock holding `value`. Python: `threading.Lock()`.
        pub fn new(value: T) -> Self {
            Lock {
                raw: RawLock::new(),
                data: UnsafeCell::new(value),
            }
        }
    }

    /// A new, unlocked lock holding `value`, named `name` in diagnostics reports (deadlocks,
    /// lock-order inversions, thread dumps, statistics), which also give this call's line as
    /// where the lock was created. Without the `diagnostics` feature the name is dropped and
    /// this is [`Lock::new`].
    ///
    /// ```
    /// use pytandem::{diagnostics, sync::Lock};
    ///
    /// let accounts: Vec<Lock<i64>> = (0..4)
    ///     .map(|i| Lock::named(100, format!("accounts[{i}]")))
    ///     .collect();
    /// // The name is kept only with the `diagnostics` feature; without it `name()` is `None`.
    /// let expected = diagnostics::COMPILED_IN.then_some("accounts[3]");
    /// assert_eq!(accounts[3].name().as_deref(), expected);
    /// ```
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn named(value: T, name: impl Into<String>) -> Self {
        Lock {
            raw: RawLock::named(crate::diagnostics::PrimitiveKind::Lock, name.into()),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the lock, returning its data.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Lock<T> {
    /// Blocks until the lock is held; the guard releases it when dropped.
    /// Python: `lock.acquire()` / `with lock:`.
    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn acquire(&self) -> LockGuard<'_, T> {
        self.raw.lock();
        LockGuard::new(self)
    }

    /// Takes the lock if it is free, without blocking. Python: `lock.acquire(blocking=False)`.
    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn try_acquire(&self) -> Option<LockGuard<'_, T>> {
        self.raw.try_lock().then(|| LockGuard::new(self))
    }

    /// Takes the lock, waiting at most `timeout`; `None` if it is still held by then.
    /// A zero timeout tries once; a timeout too large to represent waits forever.
    /// Python: `lock.acquire(timeout=t)`.
    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<LockGuard<'_, T>> {
        self.acquire_deadline(Deadline::after(timeout))
    }

    /// Takes the lock, waiting until `deadline` at the latest.
    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn acquire_until(&self, deadline: Instant) -> Option<LockGuard<'_, T>> {
        self.acquire_deadline(Deadline::at(deadline))
    }

    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    fn acquire_deadline(&self, deadline: Deadline) -> Option<LockGuard<'_, T>> {
        self.raw.lock_until(deadline).then(|| LockGuard::new(self))
    }

    /// Whether the lock is held right now (a snapshot that may change at once).
    /// Python: `lock.locked()`.
    #[inline]
    pub fn locked(&self) -> bool {
        self.raw.is_locked()
    }

    /// The data, through exclusive access to the lock itself: no locking needed.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// Names the lock in diagnostics reports (see [`Lock::named`]); this call's line becomes
    /// its creation site if it had none. Does nothing without the `diagnostics` feature.
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn set_name(&self, name: impl Into<String>) {
        self.raw.set_name(name.into());
    }

    /// The lock's diagnostics name, if it was given one; always `None` without the
    /// `diagnostics` feature.
    pub fn name(&self) -> Option<String> {
        self.raw.name()
    }

    /// The lock's contention statistics: acquisitions, contended acquisitions, time-outs,
    /// total and longest wait, counted while diagnostics recording is on
    /// ([`diagnostics::enable`](crate::diagnostics::enable)).
    #[cfg(feature = "diagnostics")]
    pub fn stats(&self) -> crate::diagnostics::Stats {
        self.raw.stats()
    }

    pub(crate) fn raw(&self) -> &RawLock {
        &self.raw
    }
}

impl<T: Clone> Lock<T> {
    /// Runs `update` on the data under the lock, all or nothing: if it returns `Err` or
    /// panics, the data is restored to exactly what it was before (the panic then continues).
    /// The seeds' `atomic_operation` context manager, with the rollback written for you.
    ///
    /// # Cost
    /// The rollback is a copy: every call first clones the whole data (`T: Clone`), whether
    /// or not `update` fails, and holds the lock meanwhile. For large data, guard only what
    /// the update may need to undo, or check before changing anything.
    ///
    /// ```
    /// use pytandem::sync::Lock;
    ///
    /// let accounts = Lock::new(vec![100, 50]);
    /// // Move 80 from account 1 to account 0, refusing overdrafts: nothing changes.
    /// let r: Result<(), &str> = accounts.transaction(|a| {
    ///     a[0] += 80;
    ///     a[1] -= 80;
    ///     if a[1] < 0 { Err("insufficient funds") } else { Ok(()) }
    /// });
    /// assert_eq!(r, Err("insufficient funds"));
    /// assert_eq!(*accounts.acquire(), vec![100, 50]);
    /// ```
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn transaction<R, E>(&self, update: impl FnOnce(&mut T) -> Result<R, E>) -> Result<R, E> {
        self.acquire().transaction(update)
    }
}

impl Lock<()> {
    /// Releases a bare lock held without a guard, from any thread: Python's
    /// `lock.release()`. Pair it with [`LockGuard::forget`] (Python's `acquire()` without
    /// `with`).
    ///
    /// Only a hold kept by [`forget`](LockGuard::forget) is released: while a guard holds the
    /// lock, `release` returns [`ReleaseError::HeldByGuard`] and changes nothing, so it can
    /// never break the mutual exclusion a live guard promises. Returns
    /// [`ReleaseError::Unlocked`] if the lock was not held.
    ///
    /// ```
    /// use pytandem::sync::Lock;
    ///
    /// let lock = Lock::new(());
    /// lock.acquire().forget(); // Python: lock.acquire()
    /// std::thread::scope(|s| {
    ///     s.spawn(|| lock.release().unwrap()); // released by another thread
    /// });
    /// assert!(!lock.locked());
    /// assert!(lock.release().is_err());
    /// ```
    pub fn release(&self) -> Result<(), ReleaseError> {
        match self.raw.release_leaked() {
            Ok(()) => Ok(()),
            Err(true) => Err(ReleaseError::HeldByGuard),
            Err(false) => Err(ReleaseError::Unlocked),
        }
    }
}

impl<T: Default> Default for Lock<T> {
    fn default() -> Self {
        Lock::new(T::default())
    }
}

impl<T> From<T> for Lock<T> {
    fn from(value: T) -> Self {
        Lock::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Lock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Lock");
        match self.try_acquire() {
            Some(guard) => d.field("data", &&*guard),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}

/// Proof that a [`Lock`] is held; gives access to its data and releases it when dropped.
///
/// The guard may be sent to another thread (when `T: Send`) and dropped there: Python allows a
/// lock to be released by a thread other than the one that acquired it.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a, T: ?Sized> {
    lock: &'a Lock<T>,
    // Behaves like `&'a mut T` for Send/Sync: Send iff `T: Send`, Sync iff `T: Sync`.
    _marker: PhantomData<&'a mut T>,
}

impl<'a, T: ?Sized> LockGuard<'a, T> {
    #[inline]
    fn new(lock: &'a Lock<T>) -> Self {
        LockGuard {
            lock,
            _marker: PhantomData,
        }
    }

    /// A guard for a lock the caller already holds.
    ///
    /// # Safety
    /// The caller must hold `lock` and hand that hold to the guard (nobody else will release
    /// it).
    pub(crate) unsafe fn assume_locked(lock: &'a Lock<T>) -> Self {
        LockGuard::new(lock)
    }

    /// Releases the lock now. The same as dropping the guard.
    pub fn unlock(self) {
        drop(self);
    }

    /// Releases the lock and hands it directly to the longest waiter, if any, so the current
    /// thread cannot barge back in ahead of it.
    pub fn unlock_fair(self) {
        let lock = self.lock;
        std::mem::forget(self);
        lock.raw.unlock_fair();
    }

    /// Keeps the lock held without a guard (Python's `acquire()` without `with`); release it
    /// later, from any thread, with [`Lock::release`] (bare locks) or not at all. Only a
    /// hold kept this way can be released by [`Lock::release`].
    // One verb for "keep it past the guard", on every guard and permit: `forget`, as
    // `std::mem::forget` and tokio's `SemaphorePermit::forget`. Not `leak`: in Rust `leak`
    // hands back a longer-lived reference (`Box::leak`, lock_api's `MutexGuard::leak` ->
    // `&'a mut T`), which a tandem lock cannot give, since another thread may `release` it.
    pub fn forget(self) {
        self.lock.raw.mark_leaked();
        std::mem::forget(self);
    }

    /// The old name of [`forget`](LockGuard::forget).
    #[deprecated(note = "use `forget`, the one verb for guards and permits")]
    pub fn leak(self) {
        self.forget();
    }

    /// The lock this guard holds.
    pub fn lock(this: &Self) -> &'a Lock<T> {
        this.lock
    }
}

impl<T: Clone> LockGuard<'_, T> {
    /// Runs `update` on the guarded data, all or nothing: on `Err` or a panic the data is
    /// restored to its value before the call (and the panic continues). Clones the data
    /// first, on every call: see [`Lock::transaction`].
    pub fn transaction<R, E>(
        &mut self,
        update: impl FnOnce(&mut T) -> Result<R, E>,
    ) -> Result<R, E> {
        let snapshot = (**self).clone();
        match panic::catch_unwind(AssertUnwindSafe(|| update(&mut **self))) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                **self = snapshot;
                Err(e)
            }
            Err(payload) => {
                **self = snapshot;
                panic::resume_unwind(payload)
            }
        }
    }
}

impl<T: ?Sized> Deref for LockGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard proves the lock is held, so no one else accesses the data.
        self.lock.data.with(|data| unsafe { &*data })
    }
}

impl<T: ?Sized> DerefMut for LockGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves the lock is held, and `&mut self` that this is the only
        // path to the data.
        self.lock.data.with_mut(|data| unsafe { &mut *data })
    }
}

impl<T: ?Sized> Drop for LockGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.raw.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for LockGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for LockGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

#[cfg(all(test, not(tandem_loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn acquire_try_timeout() {
        let lock = Lock::new(5);
        {
            let mut g = lock.acquire();
            *g += 1;
            assert!(lock.locked());
            assert!(lock.try_acquire().is_none());
            assert!(lock.acquire_timeout(Duration::from_millis(20)).is_none());
            assert!(lock.acquire_timeout(Duration::ZERO).is_none());
        }
        assert!(!lock.locked());
        assert_eq!(*lock.acquire_timeout(Duration::MAX).unwrap(), 6);
        assert!(lock.acquire_until(Instant::now()).is_some());
    }

    #[test]
    fn release_unlocked_is_an_error() {
        let lock = Lock::new(());
        assert_eq!(lock.release(), Err(ReleaseError::Unlocked));
        lock.acquire().forget();
        assert!(lock.locked());
        assert_eq!(lock.release(), Ok(()));
        assert_eq!(lock.release(), Err(ReleaseError::Unlocked));
    }

    #[test]
    fn guard_released_by_another_thread() {
        let lock = Arc::new(Lock::new(vec![1]));
        let guard = lock.acquire();
        std::thread::scope(|s| {
            s.spawn(move || {
                let mut g = guard;
                g.push(2);
                // dropped here, on another thread
            });
        });
        assert!(!lock.locked());
        assert_eq!(*lock.acquire(), vec![1, 2]);
    }

    #[test]
    fn transaction_rolls_back_on_err_and_panic() {
        let lock = Lock::new(vec![1, 2, 3]);
        let r: Result<(), ()> = lock.transaction(|v| {
            v.clear();
            Err(())
        });
        assert!(r.is_err());
        assert_eq!(*lock.acquire(), vec![1, 2, 3]);

        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
            let _: Result<(), ()> = lock.transaction(|v| {
                v.push(4);
                panic!("boom");
            });
        }));
        assert!(caught.is_err());
        assert!(!lock.locked(), "a panicking transaction releases the lock");
        assert_eq!(*lock.acquire(), vec![1, 2, 3]);

        assert_eq!(
            lock.transaction(|v| {
                v.push(4);
                Ok::<_, ()>(v.len())
            }),
            Ok(4)
        );
        assert_eq!(*lock.acquire(), vec![1, 2, 3, 4]);
    }

    #[test]
    fn unlock_fair_and_debug() {
        let lock = Lock::new(1);
        let g = lock.acquire();
        assert_eq!(format!("{lock:?}"), "Lock { data: <locked> }");
        g.unlock_fair();
        assert_eq!(format!("{lock:?}"), "Lock { data: 1 }");
    }

    #[test]
    #[cfg(not(feature = "diagnostics"))]
    fn size_of_bare_lock_is_one_byte() {
        assert_eq!(std::mem::size_of::<Lock<()>>(), 1);
    }

    #[test]
    #[cfg(feature = "diagnostics")]
    fn size_of_bare_lock_with_diagnostics() {
        // The state byte, a kind and id, a counter and a pointer to lazily allocated details.
        assert_eq!(std::mem::size_of::<Lock<()>>(), 32);
    }

    #[test]
    fn names_are_kept_only_with_diagnostics() {
        let lock = Lock::named(1, "accounts[3]");
        lock.set_name(String::from("accounts[4]"));
        if cfg!(feature = "diagnostics") {
            assert_eq!(lock.name().as_deref(), Some("accounts[4]"));
        } else {
            assert_eq!(lock.name(), None);
        }
        assert_eq!(*lock.acquire(), 1);
    }
}

#[cfg(all(test, tandem_loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::sync::Arc;

    /// Two threads increment under the lock; the lock's slow path (park/unpark) runs whenever
    /// they collide. No lost update, and no one is ever inside at the same time.
    #[test]
    fn mutual_exclusion() {
        loom::model(|| {
            let lock = Arc::new(Lock::new(0usize));
            let inside = Arc::new(AtomicUsize::new(0));
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let (lock, inside) = (Arc::clone(&lock), Arc::clone(&inside));
                    loom::thread::spawn(move || {
                        let mut g = lock.acquire();
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                        *g += 1;
                        inside.fetch_sub(1, Ordering::SeqCst);
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(*lock.acquire(), 2);
            assert!(!lock.locked());
        });
    }

    /// Three lockers: the waker must re-mark `PARKED` when more than one thread waits, or the
    /// last one sleeps forever (loom reports the deadlock).
    #[test]
    fn three_lockers_no_lost_wakeup() {
        loom::model(|| {
            let lock = Arc::new(Lock::new(0usize));
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let lock = Arc::clone(&lock);
                    loom::thread::spawn(move || *lock.acquire() += 1)
                })
                .collect();
            *lock.acquire() += 1;
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(*lock.acquire(), 3);
        });
    }

    /// The fair hand-off: with the wait layer asking for fairness, a release that finds a
    /// waiter re-takes the lock for it and hands it over (`TOKEN_HANDOFF`), and
    /// `unlock_fair` hands it over directly. Three lockers, one of each release kind: no
    /// lost update, nobody inside twice (the checked cell reports overlapping holders), and
    /// no one left asleep.
    #[test]
    fn fair_handoff() {
        loom::model(|| {
            crate::wait::set_be_fair(true);
            let lock = Arc::new(Lock::new(0usize));
            let threads: Vec<_> = (0..2)
                .map(|i| {
                    let lock = Arc::clone(&lock);
                    loom::thread::spawn(move || {
                        let mut g = lock.acquire();
                        *g += 1;
                        if i == 0 {
                            g.unlock_fair();
                        }
                    })
                })
                .collect();
            *lock.acquire() += 1;
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(*lock.acquire(), 3);
            assert!(!lock.locked());
        });
    }

    /// A timed acquire racing with a release either gets the lock or gives up cleanly; the
    /// lock is never left held or with a stale PARKED bit that blocks the next locker.
    #[test]
    fn timed_acquire_against_release() {
        loom::model(|| {
            let lock = Arc::new(Lock::new(()));
            let g = lock.acquire();
            let l2 = Arc::clone(&lock);
            let t = loom::thread::spawn(move || {
                let got = l2.acquire_timeout(Duration::from_secs(1)).is_some();
                got
            });
            drop(g);
            let _ = t.join().unwrap();
            assert!(!lock.locked());
            assert!(lock.try_acquire().is_some());
        });
    }
}
