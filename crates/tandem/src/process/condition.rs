//! `Condition` across processes (Python's `multiprocessing.Condition`): a robust lock, the
//! data it guards, and a sequence counter that waiters sleep on.
//!
//! The sequence-counter design (PROCESSES.md): `wait` reads the counter under the lock,
//! unlocks, sleeps while the counter is unchanged, and locks again; `notify` bumps the
//! counter and wakes. No waiter leaves state behind for a notifier to wait on, so a waiter
//! that is killed can never block a notifier, and a notify never blocks.

use super::lock::{LockResult, OwnerDied};
use super::robust::{RobustLock, Taken};
use super::shared::{shared_handle, Shared, SharedState};
use super::shm::Kind;
use crate::wait::{futex, Deadline};
use bytemuck::Pod;
use std::fmt;
use std::io;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

#[repr(C)]
pub(crate) struct CondState {
    lock: RobustLock,
    seq: AtomicU32,
    sleepers: AtomicU32,
}

// SAFETY: atomics only; unlocked, counter 0, no sleeper when zeroed.
unsafe impl SharedState for CondState {
    const KIND: Kind = Kind::Condition;
    fn recover(&self, pid: u32) {
        self.lock.recover(pid);
    }
}

/// Python's `multiprocessing.Condition`: a lock shared by processes, the plain-data `T` it
/// guards, and waiting for changes to it.
///
/// The methods of [`sync::Condition`](crate::sync::Condition): take the lock with
/// `acquire`, then `wait`, `wait_timeout`, `wait_for`, `notify(n)`, `notify_one`,
/// `notify_all` on the guard. Differences: taking the lock returns a [`LockResult`]
/// ([`OwnerDied`] if the holder's process died); a wait may return without its own notify
/// (several waiters may leave on one `notify(1)` when they were between unlocking and
/// sleeping, as with POSIX condition variables) — check the data in a loop or use
/// `wait_for`; a notified waiter that re-takes a lock whose holder died sees
/// [`ConditionGuard::owner_died`]. A waiter that is killed never blocks a notifier.
///
/// # Examples
/// ```
/// pytandem::process::init();
/// use std::time::Duration;
/// use pytandem::process::{Condition, Process};
///
/// fn produce(items: Condition<u32>) {
///     let mut g = items.acquire().unwrap();
///     *g += 1;
///     g.notify_all();
/// }
///
/// let items = Condition::new(0u32)?;
/// let child = Process::spawn(produce, items.clone())?;
/// let mut g = items.acquire().unwrap();
/// assert!(g.wait_for_timeout(|n| *n > 0, Duration::from_secs(30)));
/// drop(g);
/// child.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Condition<T: Pod = ()> {
    inner: Shared<CondState, T>,
}

shared_handle!(Condition<T: Pod>);

impl<T: Pod> Condition<T> {
    /// A new condition in shared memory, its lock guarding `value`.
    pub fn new(value: T) -> io::Result<Self> {
        Ok(Condition {
            inner: Shared::create(|_| {}, std::iter::once(value))?,
        })
    }

    fn state(&self) -> &CondState {
        self.inner.state()
    }

    fn guard(&self, taken: Taken) -> LockResult<ConditionGuard<'_, T>> {
        let guard = ConditionGuard {
            cond: self,
            owner_died: taken == Taken::OwnerDied,
        };
        match taken {
            Taken::Clean => Ok(guard),
            Taken::OwnerDied => Err(OwnerDied::new(guard)),
        }
    }

    /// Takes the lock (Python's `with cond:`).
    pub fn acquire(&self) -> LockResult<ConditionGuard<'_, T>> {
        let taken = self
            .state()
            .lock
            .lock(Deadline::NEVER)
            .expect("no deadline");
        self.guard(taken)
    }

    /// Takes the lock if it is free.
    pub fn try_acquire(&self) -> Option<LockResult<ConditionGuard<'_, T>>> {
        self.state().lock.try_lock().map(|t| self.guard(t))
    }

    /// Takes the lock, waiting at most `timeout`.
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<LockResult<ConditionGuard<'_, T>>> {
        self.state()
            .lock
            .lock(Deadline::after(timeout))
            .map(|t| self.guard(t))
    }

    /// Whether some thread or process holds the lock.
    pub fn locked(&self) -> bool {
        self.state().lock.is_locked()
    }
}

impl<T: Pod> fmt::Debug for Condition<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("process::Condition")
            .field("locked", &self.locked())
            .finish_non_exhaustive()
    }
}

/// Holds a process [`Condition`]'s lock; waits and notifies; dereferences to the data.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ConditionGuard<'a, T: Pod> {
    cond: &'a Condition<T>,
    owner_died: bool,
}

impl<T: Pod> ConditionGuard<'_, T> {
    /// Whether the lock's previous holder died holding it, at this guard's acquisition or
    /// at the re-acquisition of its latest wait: the data may be half-updated.
    pub fn owner_died(&self) -> bool {
        self.owner_died
    }

    /// Releases the lock, sleeps until notified, takes the lock back (Python's `wait()`).
    pub fn wait(&mut self) -> bool {
        self.wait_deadline(Deadline::NEVER)
    }

    /// [`wait`](ConditionGuard::wait), giving up after `timeout`: `false` if the time ran
    /// out. The lock is held again either way.
    pub fn wait_timeout(&mut self, timeout: Duration) -> bool {
        self.wait_deadline(Deadline::after(timeout))
    }

    fn wait_deadline(&mut self, deadline: Deadline) -> bool {
        let s = self.cond.state();
        let seq = s.seq.load(Ordering::Relaxed);
        s.sleepers.fetch_add(1, Ordering::SeqCst);
        s.lock.unlock();
        if !deadline.has_passed() {
            futex::linger(&s.seq, seq);
        }
        let mut notified = false;
        loop {
            if s.seq.load(Ordering::SeqCst) != seq {
                notified = true;
                break;
            }
            if !futex::wait(&s.seq, seq, deadline) {
                break;
            }
        }
        s.sleepers.fetch_sub(1, Ordering::SeqCst);
        let taken = s.lock.lock(Deadline::NEVER).expect("no deadline");
        self.owner_died = taken == Taken::OwnerDied;
        notified || s.seq.load(Ordering::Relaxed) != seq
    }

    /// Waits until `predicate` holds for the data (Python's `wait_for(predicate)`).
    pub fn wait_for(&mut self, predicate: impl FnMut(&mut T) -> bool) {
        self.wait_for_deadline(predicate, None);
    }

    /// Waits until `predicate` holds for the data or `timeout` runs out; the predicate's
    /// last value (Python's `wait_for(predicate, timeout)`). One deadline for all re-waits.
    pub fn wait_for_timeout(
        &mut self,
        predicate: impl FnMut(&mut T) -> bool,
        timeout: Duration,
    ) -> bool {
        self.wait_for_deadline(predicate, Some(timeout))
    }

    fn wait_for_deadline(
        &mut self,
        mut predicate: impl FnMut(&mut T) -> bool,
        timeout: Option<Duration>,
    ) -> bool {
        let mut deadline = None;
        loop {
            if predicate(&mut **self) {
                return true;
            }
            let deadline = *deadline.get_or_insert_with(|| Deadline::from_timeout(timeout));
            if deadline.has_passed() {
                return false;
            }
            self.wait_deadline(deadline);
        }
    }

    /// Wakes up to `n` waiters; how many were asleep and woken (Python's `notify(n)`).
    pub fn notify(&self, n: usize) -> usize {
        let s = self.cond.state();
        s.seq.fetch_add(1, Ordering::SeqCst);
        if s.sleepers.load(Ordering::SeqCst) == 0 || n == 0 {
            return 0;
        }
        futex::wake(&s.seq, n.min(i32::MAX as usize) as u32)
    }

    /// Wakes one waiter (Python's `notify()`); whether one was asleep.
    pub fn notify_one(&self) -> bool {
        self.notify(1) > 0
    }

    /// Wakes every waiter (Python's `notify_all()`); how many were asleep.
    #[doc(alias = "notifyAll")]
    pub fn notify_all(&self) -> usize {
        self.notify(i32::MAX as usize)
    }
}

impl<T: Pod> Deref for ConditionGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the lock is held, so no other thread or process touches the data.
        unsafe { &*self.cond.inner.data_ptr() }
    }
}

impl<T: Pod> DerefMut for ConditionGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { &mut *self.cond.inner.data_ptr() }
    }
}

impl<T: Pod> Drop for ConditionGuard<'_, T> {
    fn drop(&mut self) {
        self.cond.state().lock.unlock();
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for ConditionGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}
