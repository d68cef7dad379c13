//! Ordered acquisition of several locks: the seeds' deadlock prevention, done for you.
//!
//! Two threads that take the same two locks in opposite orders can deadlock (the seeds' bank
//! transfer: A→B while B→A). Taking every set of locks in one global order cannot: these
//! functions sort the locks by a stable per-lock id — the lock's address, which cannot change
//! while anyone borrows the lock — and take them in that order, whatever order you list them.

use std::fmt;
use std::time::Duration;

use super::lock::{Lock, LockGuard};
use super::raw_lock::RawLock;
use crate::wait::Deadline;

/// Why [`acquire_all`], [`try_acquire_all`] or [`acquire_all_timeout`] took nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AcquireAllError {
    /// The same lock is listed twice; taking it twice would deadlock the calling thread
    /// (Python's `with a.lock: with a.lock:` hangs). Transfer between distinct accounts, or
    /// special-case the self-transfer.
    Duplicate,
    /// `try_acquire_all`: one of the locks was held by someone else.
    WouldBlock,
    /// `acquire_all_timeout`: the locks were not all free before the timeout.
    Timeout,
}

impl fmt::Display for AcquireAllError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AcquireAllError::Duplicate => {
                "the same lock was listed twice: taking it twice would deadlock this thread; \
                 list each lock once"
            }
            AcquireAllError::WouldBlock => "a lock in the set is held elsewhere; nothing was taken",
            AcquireAllError::Timeout => {
                "timed out before every lock in the set was free; nothing was taken"
            }
        })
    }
}

impl std::error::Error for AcquireAllError {}

mod sealed {
    use super::RawLock;

    pub trait Sealed {}

    /// A lock of the set, as the ordering code sees it (not nameable outside tandem).
    #[derive(Clone, Copy)]
    pub struct Raw<'a>(pub(crate) &'a RawLock);
}

use sealed::Raw;

/// A set of locks that can be taken together in the global order: a tuple of two to four
/// `&Lock<_>` (of the same or different data types), or a slice / `Vec` / array of
/// `&Lock<T>`. Sealed: implemented by tandem only.
pub trait LockSet<'a>: sealed::Sealed {
    /// The guards, in the same shape and order as the set was given.
    type Guards;

    #[doc(hidden)]
    fn raws(&self) -> Vec<Raw<'a>>;

    #[doc(hidden)]
    /// # Safety
    /// Every lock of the set must be held by the caller, once.
    unsafe fn assume_locked(self) -> Self::Guards;
}

macro_rules! tuple_lock_set {
    ($($name:ident : $idx:tt),+) => {
        impl<'a, $($name: ?Sized),+> sealed::Sealed for ($(&'a Lock<$name>,)+) {}
        impl<'a, $($name: ?Sized),+> LockSet<'a> for ($(&'a Lock<$name>,)+) {
            type Guards = ($(LockGuard<'a, $name>,)+);

            fn raws(&self) -> Vec<Raw<'a>> {
                vec![$(Raw(self.$idx.raw())),+]
            }

            unsafe fn assume_locked(self) -> Self::Guards {
                // SAFETY: the caller holds every lock of the set, once each.
                ($(unsafe { LockGuard::assume_locked(self.$idx) },)+)
            }
        }
    };
}

tuple_lock_set!(A: 0, B: 1);
tuple_lock_set!(A: 0, B: 1, C: 2);
tuple_lock_set!(A: 0, B: 1, C: 2, D: 3);

impl<T: ?Sized> sealed::Sealed for &'_ [&'_ Lock<T>] {}
impl<'a, T: ?Sized> LockSet<'a> for &'_ [&'a Lock<T>] {
    type Guards = Vec<LockGuard<'a, T>>;

    fn raws(&self) -> Vec<Raw<'a>> {
        self.iter().map(|l| Raw(l.raw())).collect()
    }

    unsafe fn assume_locked(self) -> Self::Guards {
        // SAFETY: the caller holds every lock of the set, once each.
        self.iter()
            .map(|l| unsafe { LockGuard::assume_locked(l) })
            .collect()
    }
}

impl<T: ?Sized> sealed::Sealed for Vec<&'_ Lock<T>> {}
impl<'a, T: ?Sized> LockSet<'a> for Vec<&'a Lock<T>> {
    type Guards = Vec<LockGuard<'a, T>>;

    fn raws(&self) -> Vec<Raw<'a>> {
        self.as_slice().raws()
    }

    unsafe fn assume_locked(self) -> Self::Guards {
        // SAFETY: forwarded contract.
        unsafe { self.as_slice().assume_locked() }
    }
}

impl<T: ?Sized, const N: usize> sealed::Sealed for [&'_ Lock<T>; N] {}
impl<'a, T: ?Sized, const N: usize> LockSet<'a> for [&'a Lock<T>; N] {
    type Guards = [LockGuard<'a, T>; N];

    fn raws(&self) -> Vec<Raw<'a>> {
        self.as_slice().raws()
    }

    unsafe fn assume_locked(self) -> Self::Guards {
        // SAFETY: the caller holds every lock of the set, once each.
        self.map(|l| unsafe { LockGuard::assume_locked(l) })
    }
}

/// Sorts by address and rejects duplicates.
fn in_global_order(raws: Vec<Raw<'_>>) -> Result<Vec<&RawLock>, AcquireAllError> {
    let mut raws: Vec<&RawLock> = raws.into_iter().map(|r| r.0).collect();
    raws.sort_by_key(|r| r.key());
    if raws.windows(2).any(|w| w[0].key() == w[1].key()) {
        return Err(AcquireAllError::Duplicate);
    }
    Ok(raws)
}

/// How [`lock_in_order`] takes each lock.
#[derive(Clone, Copy)]
enum Take {
    Block,
    Try,
    Until(Deadline),
}

/// Takes the locks in order; on a failure releases what it took. `#[track_caller]` (with
/// diagnostics) so holds are reported at the user's call, not here.
#[cfg_attr(feature = "diagnostics", track_caller)]
fn lock_in_order(raws: &[&RawLock], how: Take) -> bool {
    for (i, raw) in raws.iter().enumerate() {
        let taken = match how {
            Take::Block => {
                raw.lock();
                true
            }
            Take::Try => raw.try_lock(),
            Take::Until(deadline) => raw.lock_until(deadline),
        };
        if !taken {
            for taken in &raws[..i] {
                taken.unlock();
            }
            return false;
        }
    }
    true
}

/// Takes every lock of `locks` in the global order, blocking until all are held, and returns
/// their guards in the order given. Errors only with [`AcquireAllError::Duplicate`].
///
/// Python's version is the seeds' `first, second = sorted([a, b]); with first.lock: with
/// second.lock:` — by hand, and with a hang if `a is b`.
///
/// ```
/// use pytandem::sync::{acquire_all, Lock};
///
/// let (alice, bob) = (Lock::new(100), Lock::new(50));
/// std::thread::scope(|s| {
///     // Opposite orders in two threads: with plain nested acquire this can deadlock.
///     s.spawn(|| {
///         for _ in 0..1000 {
///             let (mut from, mut to) = acquire_all((&alice, &bob)).unwrap();
///             *from -= 1;
///             *to += 1;
///         }
///     });
///     s.spawn(|| {
///         for _ in 0..1000 {
///             let (mut from, mut to) = acquire_all((&bob, &alice)).unwrap();
///             *from -= 1;
///             *to += 1;
///         }
///     });
/// });
/// assert_eq!(*alice.acquire() + *bob.acquire(), 150);
/// ```
#[cfg_attr(feature = "diagnostics", track_caller)]
pub fn acquire_all<'a, S: LockSet<'a>>(locks: S) -> Result<S::Guards, AcquireAllError> {
    let raws = in_global_order(locks.raws())?;
    lock_in_order(&raws, Take::Block);
    // SAFETY: every lock of the set is now held by this call, once each (no duplicates).
    Ok(unsafe { locks.assume_locked() })
}

/// Takes every lock of `locks` if all are free right now; otherwise takes none
/// ([`AcquireAllError::WouldBlock`]).
#[cfg_attr(feature = "diagnostics", track_caller)]
pub fn try_acquire_all<'a, S: LockSet<'a>>(locks: S) -> Result<S::Guards, AcquireAllError> {
    let raws = in_global_order(locks.raws())?;
    if !lock_in_order(&raws, Take::Try) {
        return Err(AcquireAllError::WouldBlock);
    }
    // SAFETY: every lock of the set is now held by this call, once each.
    Ok(unsafe { locks.assume_locked() })
}

/// Takes every lock of `locks` in the global order, waiting at most `timeout` in total; on
/// timeout takes none ([`AcquireAllError::Timeout`]).
#[cfg_attr(feature = "diagnostics", track_caller)]
pub fn acquire_all_timeout<'a, S: LockSet<'a>>(
    locks: S,
    timeout: Duration,
) -> Result<S::Guards, AcquireAllError> {
    let raws = in_global_order(locks.raws())?;
    let deadline = Deadline::after(timeout);
    if !lock_in_order(&raws, Take::Until(deadline)) {
        return Err(AcquireAllError::Timeout);
    }
    // SAFETY: every lock of the set is now held by this call, once each.
    Ok(unsafe { locks.assume_locked() })
}

#[cfg(all(test, not(tandem_loom)))]
mod tests {
    use super::*;

    #[test]
    fn guards_come_back_in_the_given_order() {
        let a = Lock::new("a");
        let b = Lock::new(2);
        let (ga, gb) = acquire_all((&a, &b)).unwrap();
        assert_eq!((*ga, *gb), ("a", 2));
        assert!(a.locked() && b.locked());
        drop((ga, gb));
        let (gb, ga) = acquire_all((&b, &a)).unwrap();
        assert_eq!((*ga, *gb), ("a", 2));
    }

    #[test]
    fn duplicates_are_refused() {
        let a = Lock::new(1);
        assert_eq!(
            acquire_all([&a, &a]).err(),
            Some(AcquireAllError::Duplicate)
        );
        assert!(!a.locked());
        assert!(AcquireAllError::Duplicate.to_string().contains("twice"));
    }

    #[test]
    fn try_and_timeout_take_nothing_on_failure() {
        let locks: Vec<Lock<u8>> = (0..4).map(Lock::new).collect();
        let held = locks[2].acquire();
        let set: Vec<&Lock<u8>> = locks.iter().collect();
        assert_eq!(
            try_acquire_all(set.clone()).err(),
            Some(AcquireAllError::WouldBlock)
        );
        assert_eq!(
            acquire_all_timeout(set.as_slice(), Duration::from_millis(20)).err(),
            Some(AcquireAllError::Timeout)
        );
        for (i, l) in locks.iter().enumerate() {
            assert_eq!(l.locked(), i == 2, "lock {i}");
        }
        drop(held);
        let guards = acquire_all_timeout(set, Duration::from_secs(5)).unwrap();
        assert_eq!(
            guards.iter().map(|g| **g).collect::<Vec<_>>(),
            vec![0, 1, 2, 3]
        );
    }
}
