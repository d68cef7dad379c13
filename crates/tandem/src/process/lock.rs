//! `Lock` and `RLock` across processes (Python's `multiprocessing.Lock`, `RLock`), which
//! survive a holder that is killed: the next acquirer gets the lock with [`OwnerDied`].

use super::robust::{RobustLock, Taken};
use super::shared::{shared_handle, Shared, SharedState};
use super::shm::Kind;
use crate::wait::Deadline;
use bytemuck::Pod;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The lock was taken, but its previous holder died holding it: the guarded data may be
/// half-updated. Like std's `PoisonError`: repair the data if needed, then
/// [`into_inner`](OwnerDied::into_inner) to use the guard. Python's `multiprocessing.Lock`
/// stays held forever in this case.
pub struct OwnerDied<G> {
    guard: G,
}

impl<G> OwnerDied<G> {
    pub(crate) fn new(guard: G) -> Self {
        OwnerDied { guard }
    }

    /// Acknowledges the death and takes the guard (the lock is held).
    pub fn into_inner(self) -> G {
        self.guard
    }

    /// The guard, to inspect the data before deciding.
    pub fn get_ref(&self) -> &G {
        &self.guard
    }

    /// The guard, to repair the data.
    pub fn get_mut(&mut self) -> &mut G {
        &mut self.guard
    }
}

impl<G> fmt::Debug for OwnerDied<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OwnerDied { .. }")
    }
}

impl<G> fmt::Display for OwnerDied<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "the lock's previous holder died holding it (its process was killed): the lock is \
             now held by the caller, and the data it guards may be half-updated; check or \
             repair it, then call into_inner() to go on",
        )
    }
}

impl<G> std::error::Error for OwnerDied<G> {}

/// What taking a process lock gives: the guard, or the guard wrapped in [`OwnerDied`].
pub type LockResult<G> = Result<G, OwnerDied<G>>;

fn wrap<G>(taken: Taken, guard: G) -> LockResult<G> {
    match taken {
        Taken::Clean => Ok(guard),
        Taken::OwnerDied => Err(OwnerDied::new(guard)),
    }
}

/// The state of a `Lock`.
#[repr(C)]
pub(crate) struct LockState(RobustLock);

// SAFETY: a robust lock is atomics only, unlocked when zeroed.
unsafe impl SharedState for LockState {
    const KIND: Kind = Kind::Lock;
    fn recover(&self, pid: u32) {
        self.0.recover(pid);
    }
}

/// Python's `multiprocessing.Lock`: mutual exclusion between processes (and threads),
/// guarding a plain-data `T` in the same shared memory (`Lock<()>` for a bare lock).
///
/// The methods of [`sync::Lock`](crate::sync::Lock); the differences: it is created in
/// shared memory (so `new` can fail), `T` must be plain data ([`bytemuck::Pod`]), and every
/// way of taking it returns a [`LockResult`]: `Err(OwnerDied)` when the previous holder's
/// process died holding it. A tandem child's death is noticed by its parent's supervisor at
/// once (waiters are woken within a millisecond); any other process's death within about
/// 10 ms by the waiters themselves (they check the owner's liveness, by pid and start
/// time, so a reused pid cannot fool them). A *thread* that exits holding the lock in a
/// process that lives on leaves it held, as with the thread `Lock`.
///
/// | Python | tandem |
/// | --- | --- |
/// | `lock = multiprocessing.Lock()` | `let lock = process::Lock::new(())?;` |
/// | `with lock:` | `let _g = lock.acquire()?;` (or `.unwrap_or_else(OwnerDied::into_inner)`) |
/// | `lock.acquire(block=False)`, `acquire(timeout=t)` | `try_acquire()`, `acquire_timeout(t)` → `Option<LockResult<_>>` |
///
/// # Examples
/// ```
/// pytandem::process::init();
/// use pytandem::process::{Lock, Process};
///
/// fn deposit(account: Lock<u64>) {
///     for _ in 0..100 {
///         *account.acquire().unwrap() += 10;
///     }
/// }
///
/// let account = Lock::new(0u64)?;
/// let a = Process::spawn(deposit, account.clone())?;
/// let b = Process::spawn(deposit, account.clone())?;
/// a.join()?;
/// b.join()?;
/// assert_eq!(*account.acquire().unwrap(), 2000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Lock<T: Pod = ()> {
    inner: Shared<LockState, T>,
}

shared_handle!(Lock<T: Pod>);

impl<T: Pod> Lock<T> {
    /// A new lock in shared memory, guarding `value`.
    ///
    /// # Errors
    /// The operating system could not create the shared segment.
    pub fn new(value: T) -> io::Result<Self> {
        Ok(Lock {
            inner: Shared::create(|_| {}, std::iter::once(value))?,
        })
    }

    fn raw(&self) -> &RobustLock {
        &self.inner.state().0
    }

    fn guard(&self, taken: Taken) -> LockResult<LockGuard<'_, T>> {
        wrap(taken, LockGuard { lock: self })
    }

    /// Takes the lock, waiting as long as it takes (Python's `with lock:`).
    pub fn acquire(&self) -> LockResult<LockGuard<'_, T>> {
        let taken = self.raw().lock(Deadline::NEVER).expect("no deadline");
        self.guard(taken)
    }

    /// Takes the lock if it is free (Python's `acquire(block=False)`).
    pub fn try_acquire(&self) -> Option<LockResult<LockGuard<'_, T>>> {
        self.raw().try_lock().map(|t| self.guard(t))
    }

    /// Takes the lock, waiting at most `timeout` (Python's `acquire(timeout=t)`);
    /// `Duration::MAX` waits forever.
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<LockResult<LockGuard<'_, T>>> {
        self.raw()
            .lock(Deadline::after(timeout))
            .map(|t| self.guard(t))
    }

    /// Whether some thread or process holds it (a snapshot).
    pub fn locked(&self) -> bool {
        self.raw().is_locked()
    }
}

impl Lock<()> {
    /// Releases the lock from any thread or process (Python's `lock.release()`, which
    /// `multiprocessing.Lock` allows from a process other than the acquirer), for a lock
    /// taken and kept with [`LockGuard::forget`] — Python's bare `acquire()`.
    ///
    /// A `Lock<()>` guards no data, so this cannot corrupt memory; but releasing a lock whose
    /// guard is still alive somewhere lets a second holder into that guard's critical
    /// section. Pair it only with forgotten guards.
    ///
    /// # Errors
    /// [`ReleaseError::Unlocked`](crate::ReleaseError::Unlocked) if nobody holds the lock
    /// (Python: `ValueError: semaphore or lock released too many times`).
    pub fn release(&self) -> Result<(), crate::ReleaseError> {
        if !self.raw().is_locked() {
            return Err(crate::ReleaseError::Unlocked);
        }
        self.raw().unlock();
        Ok(())
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for Lock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("process::Lock")
            .field("locked", &self.locked())
            .finish_non_exhaustive()
    }
}

/// Holds a process [`Lock`]; releases it on drop. Dereferences to the guarded data.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a, T: Pod> {
    lock: &'a Lock<T>,
}

impl<T: Pod> LockGuard<'_, T> {
    /// Keeps the lock held without the guard (Python's bare `acquire()`); another thread or
    /// process can no longer release it through a guard.
    pub fn forget(self) {
        std::mem::forget(self);
    }

    /// The old name of [`forget`](LockGuard::forget).
    #[deprecated(note = "use `forget`, the one verb for guards and permits")]
    pub fn leak(self) {
        self.forget();
    }
}

impl<T: Pod> Deref for LockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the lock is held, so no other thread or process touches the data; it is
        // one initialized, aligned `T` in the live segment.
        unsafe { &*self.lock.inner.data_ptr() }
    }
}

impl<T: Pod> DerefMut for LockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { &mut *self.lock.inner.data_ptr() }
    }
}

impl<T: Pod> Drop for LockGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.raw().unlock();
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for LockGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

/// The state of an `RLock`: the lock and its recursion count (touched by the owner only).
#[repr(C)]
pub(crate) struct RLockState {
    lock: RobustLock,
    count: AtomicU32,
}

// SAFETY: atomics only; unlocked with count 0 when zeroed.
unsafe impl SharedState for RLockState {
    const KIND: Kind = Kind::RLock;
    fn recover(&self, pid: u32) {
        self.lock.recover(pid);
    }
}

/// Python's `multiprocessing.RLock`: a lock its owning *thread* may take again, shared
/// between processes, guarding a plain-data `T` (read-only through the guard, as
/// [`sync::RLock`](crate::sync::RLock)'s).
///
/// Only the owning thread may release it; a thread of another process, or another thread
/// of the same process, waits. If the owner's process dies, the next acquirer gets it with
/// [`OwnerDied`] and a fresh count of 1.
///
/// # Examples
/// ```
/// use pytandem::process::RLock;
///
/// let lock = RLock::new(7u32)?;
/// let outer = lock.acquire().unwrap();
/// let inner = lock.acquire().unwrap(); // the same thread: re-entered
/// assert_eq!(lock.recursion_count(), 2);
/// drop(inner);
/// drop(outer);
/// assert!(!lock.locked());
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct RLock<T: Pod = ()> {
    inner: Shared<RLockState, T>,
}

shared_handle!(RLock<T: Pod>);

impl<T: Pod> RLock<T> {
    /// A new reentrant lock in shared memory, guarding `value`.
    pub fn new(value: T) -> io::Result<Self> {
        Ok(RLock {
            inner: Shared::create(|_| {}, std::iter::once(value))?,
        })
    }

    fn state(&self) -> &RLockState {
        self.inner.state()
    }

    /// Re-enters if this thread owns it; `None` if not.
    fn reenter(&self) -> Option<RLockGuard<'_, T>> {
        let s = self.state();
        if s.lock.is_mine() {
            s.count.fetch_add(1, Ordering::Relaxed);
            Some(RLockGuard {
                lock: self,
                _not_send: PhantomData,
            })
        } else {
            None
        }
    }

    fn first(&self, taken: Taken) -> LockResult<RLockGuard<'_, T>> {
        self.state().count.store(1, Ordering::Relaxed);
        wrap(
            taken,
            RLockGuard {
                lock: self,
                _not_send: PhantomData,
            },
        )
    }

    /// Takes the lock, or re-enters it if this thread holds it.
    pub fn acquire(&self) -> LockResult<RLockGuard<'_, T>> {
        if let Some(g) = self.reenter() {
            return Ok(g);
        }
        let taken = self
            .state()
            .lock
            .lock(Deadline::NEVER)
            .expect("no deadline");
        self.first(taken)
    }

    /// Takes or re-enters the lock if that needs no wait.
    pub fn try_acquire(&self) -> Option<LockResult<RLockGuard<'_, T>>> {
        if let Some(g) = self.reenter() {
            return Some(Ok(g));
        }
        self.state().lock.try_lock().map(|t| self.first(t))
    }

    /// Takes or re-enters the lock, waiting at most `timeout`.
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<LockResult<RLockGuard<'_, T>>> {
        if let Some(g) = self.reenter() {
            return Some(Ok(g));
        }
        self.state()
            .lock
            .lock(Deadline::after(timeout))
            .map(|t| self.first(t))
    }

    /// Whether some thread holds it.
    pub fn locked(&self) -> bool {
        self.state().lock.is_locked()
    }

    /// Whether the calling thread holds it.
    pub fn is_owned(&self) -> bool {
        self.state().lock.is_mine()
    }

    /// How many times the calling thread holds it (0 if it does not).
    pub fn recursion_count(&self) -> usize {
        if self.is_owned() {
            self.state().count.load(Ordering::Relaxed) as usize
        } else {
            0
        }
    }
}

impl<T: Pod> fmt::Debug for RLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("process::RLock")
            .field("locked", &self.locked())
            .finish_non_exhaustive()
    }
}

/// Holds a process [`RLock`] once; the last guard of the owner releases it. Not `Send`:
/// only the owning thread may release an `RLock`.
///
/// ```compile_fail
/// let lock = pytandem::process::RLock::new(()).unwrap();
/// let guard = lock.acquire().unwrap();
/// std::thread::scope(|s| {
///     s.spawn(move || drop(guard)); // error: the guard cannot move to another thread
/// });
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RLockGuard<'a, T: Pod> {
    lock: &'a RLock<T>,
    _not_send: PhantomData<*const ()>,
}

impl<T: Pod> Deref for RLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the lock is held by this thread; guards hand out shared references only,
        // so several guards of the owner may coexist; other threads and processes wait.
        unsafe { &*self.lock.inner.data_ptr() }
    }
}

impl<T: Pod> Drop for RLockGuard<'_, T> {
    fn drop(&mut self) {
        let s = self.lock.state();
        if s.count.fetch_sub(1, Ordering::Relaxed) == 1 {
            s.lock.unlock();
        }
    }
}

/// Keeping state across `OwnerDied`: a guard of a dead owner's lock is still a guard.
impl<G: Deref> Deref for OwnerDied<G> {
    type Target = G::Target;
    fn deref(&self) -> &G::Target {
        &self.guard
    }
}
