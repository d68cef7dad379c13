//! `RLock<T>`: Python's `threading.RLock`, a lock its owner may re-enter, with its data inside.
//!
//! The engine is [`RawLock`] (one byte, parking_lot's algorithm) plus two words that only the
//! owning thread writes:
//!
//! | field   | written by                 | meaning                                          |
//! |---------|----------------------------|--------------------------------------------------|
//! | `raw`   | anyone (atomic RMW)        | held or not, and whether anyone is parked        |
//! | `owner` | the owner only             | the owner's thread token; `0` when nobody owns it |
//! | `count` | the owner only             | how many times the owner has acquired it         |
//!
//! - First acquisition: lock `raw` (one compare-exchange when free), then store `owner` and
//!   `count = 1`.
//! - Re-entry: a relaxed load of `owner` equal to the caller's token proves the caller owns
//!   the lock (no other thread ever stores this thread's token, and a thread always sees its
//!   own latest store), so re-entry is a plain load and store of `count`: no read-modify-write
//!   on shared state at all.
//! - Release: `count -= 1`; at zero, clear `owner` and unlock `raw`.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::time::{Duration, Instant};

use super::raw_lock::RawLock;
use crate::diagnostics::PrimitiveKind;
use crate::error::ReleaseError;
use crate::primitive::atomic::{AtomicU32, AtomicUsize, Ordering};
use crate::primitive::loom_const_fn;
use crate::primitive::{current_thread_token, UnsafeCell};
use crate::wait::Deadline;

/// A reentrant lock: Python's `threading.RLock`, holding the data it protects.
///
/// The thread that holds it may acquire it again (each acquisition gives a guard; the lock is
/// free once every guard is gone). Other threads wait, as for a [`Lock`](super::Lock).
///
/// | Python | tandem |
/// | --- | --- |
/// | `rlock = threading.RLock()` | `let rlock = RLock::new(())` (or `RLock::new(data)`) |
/// | `with rlock: ...` | `let guard = rlock.acquire();` (released when `guard` drops) |
/// | `rlock.acquire(blocking=False)` | `rlock.try_acquire()` → `Option<RLockGuard>` |
/// | `rlock.acquire(timeout=t)` | `rlock.acquire_timeout(t)` → `Option<RLockGuard>` |
/// | `rlock.release()` | drop the guard, or `guard.forget()` then [`RLock::release`] on a bare `RLock<()>` |
/// | `rlock.locked()` (recent Pythons only) | `rlock.locked()` |
/// | `rlock._is_owned()` | `rlock.is_owned()` |
/// | `rlock._recursion_count()` | `rlock.recursion_count()` |
///
/// # Examples
/// The seeds' recursive function that re-enters the lock it already holds:
/// ```
/// use std::cell::Cell;
/// use pytandem::sync::RLock;
///
/// // Python: rlock = threading.RLock(); def visit(n): with rlock: ... visit(n - 1)
/// fn visit(rlock: &RLock<Cell<u32>>, depth: u32) {
///     let visited = rlock.acquire(); // re-entry by the owner: no deadlock
///     visited.set(visited.get() + 1);
///     assert_eq!(rlock.recursion_count(), visited.get() as usize);
///     if depth > 1 {
///         visit(rlock, depth - 1);
///     }
/// }
///
/// let rlock = RLock::new(Cell::new(0));
/// visit(&rlock, 5);
/// assert_eq!(rlock.into_inner().get(), 5);
/// ```
///
/// Guards give shared access (`&T`): two guards of the same thread may be alive at once, so a
/// `&mut T` from one would alias the other. Put what changes in a `Cell` or `RefCell` (as
/// above), as with `std`'s `ReentrantLock`.
///
/// # Differences from Python
/// - The lock holds its data, reached through `&T` (see above); a bare Python `RLock` is
///   `RLock<()>`.
/// - A release by a thread that does not own the lock returns [`ReleaseError::NotOwner`], and
///   a release of an unheld lock [`ReleaseError::Unlocked`], instead of raising
///   `RuntimeError`. Guards cannot be sent to another thread (they are `!Send`), so the
///   mistake is only possible through [`RLock::release`].
/// - Ownership is tracked by a per-thread token (the address of a thread-local), like Python's
///   thread idents: a thread that exits while still owning the lock (only possible with
///   [`RLockGuard::forget`]) leaves it held, and a later thread may be given the same token.
///
/// # Fairness
/// Eventually fair, from the lock underneath: waiters queue in arrival order; a thread that
/// releases and re-acquires at once may overtake them for up to about 0.5 ms, after which the
/// lock is handed directly to the first waiter. [`RLockGuard::unlock_fair`] hands it over at
/// once.
///
/// # Panics and poisoning
/// No poisoning: a thread that panics while holding guards releases one level per guard as
/// they drop during unwinding.
pub struct RLock<T: ?Sized> {
    raw: RawLock,
    /// The owning thread's token, or 0. Written only by the owner (see the module docs).
    owner: AtomicUsize,
    /// Acquisitions by the owner. Read and written only by the owner; atomic (relaxed loads
    /// and stores, never a read-modify-write) so that loom sees it and reads are never racy.
    count: AtomicUsize,
    /// Of `count`, the levels kept without a guard ([`RLockGuard::forget`]), which
    /// [`RLock::release`] may free. Owner-only, as `count`. 32 bits, so it fits beside
    /// `raw` and the lock stays three words.
    leaked: AtomicU32,
    data: UnsafeCell<T>,
}

// SAFETY: the lock gives access to `T` to one thread at a time (the owner, possibly through
// several `&T`), and access moves between threads only through the lock's acquire/release
// ordering: `T: Send` suffices, as for `std`'s `ReentrantLock`. Guards give only `&T`, so
// `T: Sync` is not needed either: two guards coexist only on the same thread.
unsafe impl<T: ?Sized + Send> Sync for RLock<T> {}
// SAFETY: owning the lock owns the `T` inside it.
unsafe impl<T: ?Sized + Send> Send for RLock<T> {}

impl<T> RLock<T> {
    loom_const_fn! {
        /// A new, unlocked reentrant lock holding `value`. Python: `threading.RLock()`.
        pub fn new(value: T) -> Self {
            RLock {
                raw: RawLock::with_kind(PrimitiveKind::RLock),
                owner: AtomicUsize::new(0),
                count: AtomicUsize::new(0),
                leaked: AtomicU32::new(0),
                data: UnsafeCell::new(value),
            }
        }
    }

    /// Consumes the lock, returning its data.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RLock<T> {
    /// Blocks until the calling thread holds the lock, re-entering at once if it already does;
    /// the guard releases one level when dropped. Python: `rlock.acquire()` / `with rlock:`.
    ///
    /// # Panics
    /// If one thread holds more than `usize::MAX` guards at once.
    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn acquire(&self) -> RLockGuard<'_, T> {
        let me = current_thread_token();
        if self.owner.load(Ordering::Relaxed) == me {
            self.reenter();
        } else {
            self.raw.lock();
            self.take_ownership(me, 1);
        }
        RLockGuard::new(self)
    }

    /// Takes the lock if it is free or already held by the calling thread, without blocking.
    /// Python: `rlock.acquire(blocking=False)`.
    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn try_acquire(&self) -> Option<RLockGuard<'_, T>> {
        let me = current_thread_token();
        if self.owner.load(Ordering::Relaxed) == me {
            self.reenter();
        } else if self.raw.try_lock() {
            self.take_ownership(me, 1);
        } else {
            return None;
        }
        Some(RLockGuard::new(self))
    }

    /// Takes the lock, waiting at most `timeout`; `None` if another thread still holds it by
    /// then. The owner re-enters at once. A zero timeout tries once; a timeout too large to
    /// represent waits forever. Python: `rlock.acquire(timeout=t)`.
    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<RLockGuard<'_, T>> {
        self.acquire_deadline(Deadline::after(timeout))
    }

    /// Takes the lock, waiting until `deadline` at the latest; `None` if another thread still
    /// holds it by then.
    #[inline]
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn acquire_until(&self, deadline: Instant) -> Option<RLockGuard<'_, T>> {
        self.acquire_deadline(Deadline::at(deadline))
    }

    #[cfg_attr(feature = "diagnostics", track_caller)]
    fn acquire_deadline(&self, deadline: Deadline) -> Option<RLockGuard<'_, T>> {
        let me = current_thread_token();
        if self.owner.load(Ordering::Relaxed) == me {
            self.reenter();
        } else if self.raw.lock_until(deadline) {
            self.take_ownership(me, 1);
        } else {
            return None;
        }
        Some(RLockGuard::new(self))
    }

    /// Whether any thread holds the lock right now (a snapshot that may change at once).
    /// Python: `rlock.locked()` (recent versions only).
    #[inline]
    pub fn locked(&self) -> bool {
        self.raw.is_locked()
    }

    /// Names the lock in diagnostics reports (deadlocks, lock-order inversions, thread dumps,
    /// statistics); this call's line becomes its creation site if it had none. Does nothing
    /// without the `diagnostics` feature.
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn set_name(&self, name: impl Into<String>) {
        self.raw.set_name(name.into());
    }

    /// The lock's diagnostics name, if it was given one; always `None` without the
    /// `diagnostics` feature.
    pub fn name(&self) -> Option<String> {
        self.raw.name()
    }

    /// The lock's contention statistics (first acquisitions, contended ones, time-outs, total
    /// and longest wait), counted while diagnostics recording is on.
    #[cfg(feature = "diagnostics")]
    pub fn stats(&self) -> crate::diagnostics::Stats {
        self.raw.stats()
    }

    /// Whether the calling thread holds the lock. Python: `rlock._is_owned()`.
    #[inline]
    pub fn is_owned(&self) -> bool {
        self.owner.load(Ordering::Relaxed) == current_thread_token()
    }

    /// How many times the calling thread holds the lock: its live guards (plus leaked ones);
    /// 0 when another thread holds it, or nobody. Python: `rlock._recursion_count()`.
    #[inline]
    pub fn recursion_count(&self) -> usize {
        if self.is_owned() {
            self.count.load(Ordering::Relaxed)
        } else {
            0
        }
    }

    /// The data, through exclusive access to the lock itself: no locking needed.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// Re-entry by the owner: a plain load and store, the owner being the only writer.
    #[inline]
    fn reenter(&self) {
        let count = self.count.load(Ordering::Relaxed);
        let count = count
            .checked_add(1)
            .expect("RLock acquired more than usize::MAX times by one thread");
        self.count.store(count, Ordering::Relaxed);
    }

    /// Records the caller, which has just locked `raw`, as the owner, `count` levels deep.
    #[inline]
    fn take_ownership(&self, me: usize, count: usize) {
        self.owner.store(me, Ordering::Relaxed);
        self.count.store(count, Ordering::Relaxed);
    }

    /// Releases one level; the caller must own the lock.
    #[inline]
    fn release_one(&self, fair: bool) {
        let count = self.count.load(Ordering::Relaxed) - 1;
        self.count.store(count, Ordering::Relaxed);
        if count == 0 {
            self.owner.store(0, Ordering::Relaxed);
            if fair {
                self.raw.unlock_fair();
            } else {
                self.raw.unlock();
            }
        }
    }

    /// The engine, for `Condition`.
    pub(crate) fn raw(&self) -> &RawLock {
        &self.raw
    }

    /// Python's `_release_save`, for `Condition`: gives up ownership at every level but keeps
    /// `raw` locked (the condition unlocks it once it is queued); returns the level count and
    /// how many of those levels were kept without a guard, for [`RLock::acquire_restore`]
    /// (the next owner must not find them). The caller must own the lock.
    pub(crate) fn release_save(&self) -> (usize, u32) {
        debug_assert!(
            self.is_owned(),
            "release_save by a thread that does not own the RLock"
        );
        let count = self.count.load(Ordering::Relaxed);
        let leaked = self.leaked.load(Ordering::Relaxed);
        self.count.store(0, Ordering::Relaxed);
        self.leaked.store(0, Ordering::Relaxed);
        self.owner.store(0, Ordering::Relaxed);
        (count, leaked)
    }

    /// Python's `_acquire_restore`, for `Condition`: the caller has locked `raw` again; it
    /// becomes the owner, `count` levels deep, `leaked` of them kept without a guard.
    pub(crate) fn acquire_restore(&self, (count, leaked): (usize, u32)) {
        debug_assert!(self.raw.is_locked());
        self.take_ownership(current_thread_token(), count);
        self.leaked.store(leaked, Ordering::Relaxed);
    }
}

impl RLock<()> {
    /// Releases one level of a bare reentrant lock kept without a guard: Python's
    /// `rlock.release()`. Pair it with [`RLockGuard::forget`] (Python's `acquire()` without
    /// `with`).
    ///
    /// Only the owner may release: another thread gets [`ReleaseError::NotOwner`], and a
    /// release of a lock nobody holds [`ReleaseError::Unlocked`]. Only levels kept by
    /// [`forget`](RLockGuard::forget) are released: if every level the owner holds belongs to a
    /// live guard, `release` returns [`ReleaseError::HeldByGuard`] and changes nothing.
    ///
    /// ```
    /// use pytandem::sync::RLock;
    /// use pytandem::ReleaseError;
    ///
    /// let rlock = RLock::new(());
    /// rlock.acquire().forget(); // Python: rlock.acquire()
    /// rlock.acquire().forget(); // ... twice
    /// std::thread::scope(|s| {
    ///     s.spawn(|| assert_eq!(rlock.release(), Err(ReleaseError::NotOwner)));
    /// });
    /// assert_eq!(rlock.release(), Ok(()));
    /// assert!(rlock.locked());
    /// assert_eq!(rlock.release(), Ok(()));
    /// assert!(!rlock.locked());
    /// assert_eq!(rlock.release(), Err(ReleaseError::Unlocked));
    /// ```
    pub fn release(&self) -> Result<(), ReleaseError> {
        if self.is_owned() {
            let leaked = self.leaked.load(Ordering::Relaxed);
            if leaked == 0 {
                return Err(ReleaseError::HeldByGuard);
            }
            self.leaked.store(leaked - 1, Ordering::Relaxed);
            self.release_one(false);
            Ok(())
        } else if self.raw.is_locked() {
            Err(ReleaseError::NotOwner)
        } else {
            Err(ReleaseError::Unlocked)
        }
    }
}

impl<T: Default> Default for RLock<T> {
    fn default() -> Self {
        RLock::new(T::default())
    }
}

impl<T> From<T> for RLock<T> {
    fn from(value: T) -> Self {
        RLock::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RLock");
        match self.try_acquire() {
            Some(guard) => d.field("data", &&*guard),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}

/// Proof that the calling thread holds an [`RLock`] (one level of it); gives shared access to
/// its data and releases that level when dropped.
///
/// `!Send`: the level must be released by the thread that owns the lock.
/// ```compile_fail
/// use pytandem::sync::RLock;
///
/// let lock = RLock::new(0);
/// let guard = lock.acquire();
/// std::thread::scope(|s| {
///     s.spawn(move || drop(guard)); // error: `RLockGuard` cannot be sent between threads
/// });
/// ```
#[must_use = "the level is released as soon as the guard is dropped"]
pub struct RLockGuard<'a, T: ?Sized> {
    lock: &'a RLock<T>,
    // `!Send` (and `!Sync`, restored below for `T: Sync`), like parking_lot's
    // `ReentrantMutexGuard`.
    _marker: PhantomData<(&'a T, *const ())>,
}

// SAFETY: a shared guard only gives `&T`, which other threads may use when `T: Sync`.
unsafe impl<T: ?Sized + Sync> Sync for RLockGuard<'_, T> {}

impl<'a, T: ?Sized> RLockGuard<'a, T> {
    #[inline]
    fn new(lock: &'a RLock<T>) -> Self {
        RLockGuard {
            lock,
            _marker: PhantomData,
        }
    }

    /// Releases this level now. The same as dropping the guard.
    pub fn unlock(self) {
        drop(self);
    }

    /// Releases this level; if it was the last, hands the lock directly to the longest
    /// waiter, if any, so the current thread cannot barge back in ahead of it.
    pub fn unlock_fair(self) {
        let lock = self.lock;
        std::mem::forget(self);
        lock.release_one(true);
    }

    /// Keeps this level held without a guard (Python's `acquire()` without `with`); release
    /// it later, from the same thread, with [`RLock::release`] (bare locks) or not at all.
    /// Only levels kept this way can be released by [`RLock::release`].
    pub fn forget(self) {
        let leaked = &self.lock.leaked;
        let n = leaked.load(Ordering::Relaxed).checked_add(1);
        leaked.store(
            n.expect("more than u32::MAX levels of an RLock kept without a guard"),
            Ordering::Relaxed,
        );
        std::mem::forget(self);
    }

    /// The old name of [`forget`](RLockGuard::forget).
    #[deprecated(note = "use `forget`, the one verb for guards and permits")]
    pub fn leak(self) {
        self.forget();
    }

    /// The lock this guard holds.
    pub fn lock(this: &Self) -> &'a RLock<T> {
        this.lock
    }
}

impl<T: ?Sized> Deref for RLockGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard proves the calling thread owns the lock; other threads cannot
        // reach the data until it is released, and this thread only ever gets `&T`.
        self.lock.data.with(|data| unsafe { &*data })
    }
}

impl<T: ?Sized> Drop for RLockGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.release_one(false);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RLockGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for RLockGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

#[cfg(all(test, not(tandem_loom)))]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::sync::mpsc;

    #[test]
    fn reentry_counts_levels() {
        let rlock = RLock::new(7);
        assert!(!rlock.locked());
        assert!(!rlock.is_owned());
        assert_eq!(rlock.recursion_count(), 0);
        let a = rlock.acquire();
        let b = rlock.acquire();
        let c = rlock.try_acquire().expect("the owner re-enters");
        let d = rlock
            .acquire_timeout(Duration::ZERO)
            .expect("the owner re-enters even with a zero timeout");
        assert_eq!(rlock.recursion_count(), 4);
        assert_eq!(*a + *b + *c + *d, 28);
        drop(b);
        drop(d);
        assert_eq!(rlock.recursion_count(), 2);
        assert!(rlock.locked() && rlock.is_owned());
        drop(a);
        drop(c);
        assert!(!rlock.locked());
        assert!(!rlock.is_owned());
        assert_eq!(rlock.recursion_count(), 0);
    }

    #[test]
    fn other_thread_waits_and_sees_no_ownership() {
        let rlock = RLock::new(());
        let g = rlock.acquire();
        let _g2 = rlock.acquire();
        std::thread::scope(|s| {
            s.spawn(|| {
                assert!(rlock.locked());
                assert!(!rlock.is_owned());
                assert_eq!(rlock.recursion_count(), 0);
                assert!(rlock.try_acquire().is_none());
                assert!(rlock.acquire_timeout(Duration::from_millis(10)).is_none());
                assert!(rlock.acquire_until(Instant::now()).is_none());
            });
        });
        drop(g);
    }

    #[test]
    fn release_errors() {
        let rlock = RLock::new(());
        assert_eq!(rlock.release(), Err(ReleaseError::Unlocked));
        rlock.acquire().forget();
        let (tx, rx) = mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| tx.send(rlock.release()).unwrap());
        });
        assert_eq!(rx.recv().unwrap(), Err(ReleaseError::NotOwner));
        assert!(rlock.is_owned());
        assert_eq!(rlock.release(), Ok(()));
        assert_eq!(rlock.release(), Err(ReleaseError::Unlocked));
    }

    #[test]
    fn cell_data_and_debug() {
        let rlock = RLock::new(Cell::new(1));
        {
            let g = rlock.acquire();
            g.set(2);
            // The owner can still format it (re-entry); another thread sees it locked.
            assert_eq!(format!("{rlock:?}"), "RLock { data: Cell { value: 2 } }");
            assert_eq!(format!("{g:?}"), "Cell { value: 2 }");
        }
        let r2 = RLock::new(5);
        let _g = r2.acquire();
        let shown = std::thread::scope(|s| s.spawn(|| format!("{r2:?}")).join().unwrap());
        assert_eq!(shown, "RLock { data: <locked> }");
    }

    #[test]
    fn unlock_fair_releases_last_level_only() {
        let rlock = RLock::new(());
        let a = rlock.acquire();
        let b = rlock.acquire();
        b.unlock_fair();
        assert!(rlock.is_owned());
        a.unlock_fair();
        assert!(!rlock.locked());
    }

    #[test]
    fn get_mut_into_inner_default() {
        let mut rlock: RLock<Vec<i32>> = RLock::default();
        rlock.get_mut().push(3);
        assert_eq!(rlock.acquire().len(), 1);
        assert_eq!(RLockGuard::lock(&rlock.acquire()).recursion_count(), 1);
        assert_eq!(rlock.into_inner(), vec![3]);
    }

    #[test]
    #[cfg(not(feature = "diagnostics"))] // diagnostics add a word or three to the lock
    fn size() {
        assert_eq!(
            std::mem::size_of::<RLock<()>>(),
            3 * std::mem::size_of::<usize>()
        );
    }
}

#[cfg(all(test, tandem_loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::sync::Arc;

    /// Two threads each take the lock two levels deep; only one is ever inside, re-entry
    /// never blocks, and the counts and ownership come back to zero.
    #[test]
    fn reentry_under_contention() {
        loom::model(|| {
            let lock = Arc::new(RLock::new(()));
            let inside = Arc::new(AtomicUsize::new(0));
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let (lock, inside) = (Arc::clone(&lock), Arc::clone(&inside));
                    loom::thread::spawn(move || {
                        let outer = lock.acquire();
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                        let inner = lock.acquire();
                        assert_eq!(lock.recursion_count(), 2);
                        drop(inner);
                        assert!(lock.is_owned());
                        inside.fetch_sub(1, Ordering::SeqCst);
                        drop(outer);
                        assert!(!lock.is_owned());
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            assert!(!lock.locked());
            assert_eq!(lock.recursion_count(), 0);
        });
    }

    /// A non-owner's release is refused whatever the owner is doing; the owner's releases
    /// succeed.
    #[test]
    fn non_owner_release_is_refused() {
        loom::model(|| {
            let lock = Arc::new(RLock::new(()));
            lock.acquire().forget();
            let l2 = Arc::clone(&lock);
            let t = loom::thread::spawn(move || l2.release());
            assert_eq!(lock.release(), Ok(()));
            let other = t.join().unwrap();
            assert!(
                other == Err(ReleaseError::NotOwner) || other == Err(ReleaseError::Unlocked),
                "{other:?}"
            );
            assert!(!lock.locked());
        });
    }
}
