//! A mutual-exclusion word in shared memory, for the lock inside `Value` and `Array`.
//!
//! std's futex mutex protocol (Drepper's "Futexes are tricky", mutex 2), on a *shared*
//! futex: the word is 0 (unlocked), 1 (locked, nobody sleeping) or 2 (locked, maybe someone
//! sleeping). Locking is one compare-exchange when uncontended; unlocking is one swap, and a
//! wake only when the word said 2. All state is in the word, so it works between processes.
//!
//! Not recovered on a holder's death: a process killed while holding it leaves it held. The
//! cross-process `Lock` with owner-died recovery is a separate primitive (its own issue).

use crate::wait::{futex, Deadline};
use std::sync::atomic::{AtomicU32, Ordering};

const UNLOCKED: u32 = 0;
const LOCKED: u32 = 1;
const CONTENDED: u32 = 2;

/// The lock word; must live in shared memory, 4-byte aligned, zero-initialized.
#[repr(transparent)]
pub(crate) struct RawMutex {
    state: AtomicU32,
}

impl RawMutex {
    #[inline]
    pub(crate) fn try_lock(&self) -> bool {
        self.state
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    #[inline]
    pub(crate) fn lock(&self) {
        if !self.try_lock() {
            self.lock_slow(Deadline::NEVER);
        }
    }

    /// Locks before `deadline`; whether it did.
    #[inline]
    pub(crate) fn lock_deadline(&self, deadline: Deadline) -> bool {
        self.try_lock() || self.lock_slow(deadline)
    }

    #[cold]
    fn lock_slow(&self, deadline: Deadline) -> bool {
        // A short spin: the holder of a `Value`'s lock runs a few instructions.
        for _ in 0..100 {
            let s = self.state.load(Ordering::Relaxed);
            if s == UNLOCKED && self.try_lock() {
                return true;
            }
            if s == CONTENDED {
                break;
            }
            std::hint::spin_loop();
        }
        loop {
            if self.state.swap(CONTENDED, Ordering::Acquire) == UNLOCKED {
                return true;
            }
            if !futex::wait(&self.state, CONTENDED, deadline) {
                return false;
            }
        }
    }

    /// Unlocks. The caller holds the lock.
    #[inline]
    pub(crate) fn unlock(&self) {
        if self.state.swap(UNLOCKED, Ordering::Release) == CONTENDED {
            futex::wake(&self.state, 1);
        }
    }
}
