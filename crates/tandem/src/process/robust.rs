//! Surviving a killed process: who owns what in shared memory, whether that owner still
//! lives, and giving back what a dead one held.
//!
//! # Owner identity
//! A process is named by its pid *and* its start time (field 22 of `/proc/<pid>/stat`, in
//! clock ticks since boot): a pid can be reused after its process dies, the pair cannot.
//! [`alive`] reads `/proc` to check the pair; a zombie counts as dead (it holds nothing).
//!
//! # Two ways a death is noticed
//! - **Supervised**: when a tandem child dies, the parent's supervisor calls [`owner_died`]
//!   *before* reaping it (so its pid cannot have been reused yet). That walks every shared
//!   object this process has a handle to and recovers what the dead process held, at once.
//! - **Unsupervised** (the dead process was not our child, or we hold no handle): a waiter
//!   sleeps in bounded slices ([`SLICE`]) and checks its blocker's liveness after each.
//!
//! # The robust lock word
//! [`RobustLock`] is the lock of `Lock`, `RLock`, `Condition`, `Value` and `Array`:
//!
//! | bits of `state` | meaning |
//! | --- | --- |
//! | 0–29 | owner's thread id (0: unlocked) |
//! | 30 `DIED` | the last owner died holding it; the next acquirer is told |
//! | 31 `WAITERS` | someone may sleep on the word: unlock must wake |
//!
//! Beside it, `owner` names the owning *process* for liveness checks: its pid and start
//! time packed in one word (`Owner::packed`). The owner writes it after taking the lock and
//! clears it before releasing it, so a checker that reads the state and then a non-zero
//! `owner` sees the current owner's (the release sequence of the previous unlock orders the
//! clear before the new owner's CAS).

use crate::sync::Lock;
use crate::wait::{futex, Deadline};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{OnceLock, Weak};
use std::time::Duration;

/// How long a waiter sleeps before it checks that whoever it waits for still lives.
pub(crate) const SLICE: Duration = Duration::from_millis(10);

/// A process: pid and start time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Owner {
    pub(crate) pid: u32,
    pub(crate) start: u64,
}

/// `/proc/<pid>/stat`: its state letter and start time, if the process exists.
fn stat(pid: u32) -> Option<(u8, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ppid ..." — comm may hold spaces and parentheses: split after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.bytes().next()?;
    // Fields after comm start at field 3 (state); starttime is field 22.
    let start = fields.nth(22 - 4)?.parse().ok()?;
    Some((state, start))
}

impl Owner {
    /// This process (read once: tandem starts children by executing the program again,
    /// never by a bare `fork`, so a process's identity never changes under it).
    #[inline]
    pub(crate) fn current() -> Owner {
        static ME: OnceLock<Owner> = OnceLock::new();
        *ME.get_or_init(|| {
            let pid = std::process::id();
            Owner {
                pid,
                start: stat(pid).map_or(1, |(_, s)| s.max(1)),
            }
        })
    }
}

impl Owner {
    /// Pid (22 bits: Linux's `pid_max` is at most 2^22) and start time (the rest) in one
    /// word, non-zero.
    pub(crate) fn packed(self) -> u64 {
        (self.start << 22) | u64::from(self.pid)
    }

    /// The owner packed by [`Owner::packed`]; `None` for 0 (no owner named).
    pub(crate) fn unpack(word: u64) -> Option<Owner> {
        (word != 0).then_some(Owner {
            pid: (word & ((1 << 22) - 1)) as u32,
            start: word >> 22,
        })
    }
}

/// Whether `owner` still runs (a zombie or a reused pid count as dead).
pub(crate) fn alive(owner: Owner) -> bool {
    match stat(owner.pid) {
        Some((state, start)) => start == owner.start && state != b'Z' && state != b'X',
        None => false,
    }
}

/// Whether thread `tid` exists (a fallback when an owner died before naming its process).
fn thread_exists(tid: u32) -> bool {
    matches!(stat(tid), Some((state, _)) if state != b'Z' && state != b'X')
}

/// The calling thread's id (system-wide unique among live threads).
pub(crate) fn current_tid() -> u32 {
    thread_local!(static TID: u32 = rustix::thread::gettid().as_raw_nonzero().get() as u32);
    TID.with(|t| *t)
}

const WAITERS: u32 = 1 << 31;
const DIED: u32 = 1 << 30;
const ID: u32 = DIED - 1;

/// What taking a robust lock found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Taken {
    /// The lock was free.
    Clean,
    /// The previous owner died holding it.
    OwnerDied,
}

/// A lock word that recovers when its owner's process dies; see the module docs.
#[repr(C)]
pub(crate) struct RobustLock {
    state: AtomicU32,
    owner: AtomicU64,
}

impl RobustLock {
    /// Names the owning process (after the state's CAS made the caller the owner).
    #[inline]
    fn claim(&self) {
        self.owner
            .store(Owner::current().packed(), Ordering::Release);
    }

    /// Takes the lock if it is free.
    #[inline]
    pub(crate) fn try_lock(&self) -> Option<Taken> {
        let tid = current_tid();
        let s = self.state.load(Ordering::Relaxed);
        if s & ID != 0 {
            return None;
        }
        self.state
            .compare_exchange(s, tid | (s & WAITERS), Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        self.claim();
        Some(if s & DIED != 0 {
            Taken::OwnerDied
        } else {
            Taken::Clean
        })
    }

    /// Takes the lock before `deadline`.
    #[inline]
    pub(crate) fn lock(&self, deadline: Deadline) -> Option<Taken> {
        let tid = current_tid();
        if self
            .state
            .compare_exchange(0, tid, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            self.claim();
            return Some(Taken::Clean);
        }
        self.lock_slow(tid, deadline)
    }

    #[cold]
    fn lock_slow(&self, tid: u32, deadline: Deadline) -> Option<Taken> {
        let mut spins = 0;
        let mut unknown = 0;
        let mut slept = false;
        loop {
            let s = self.state.load(Ordering::Relaxed);
            if s & ID == 0 {
                // Free (maybe marked DIED). Having slept, keep WAITERS set: others may sleep
                // too and were woken one at a time. A caller that only lingered keeps the
                // bit as it found it, so its unlock makes no needless wake call.
                let new = tid | if slept { WAITERS } else { s & WAITERS };
                if self
                    .state
                    .compare_exchange(s, new, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    self.claim();
                    return Some(if s & DIED != 0 {
                        Taken::OwnerDied
                    } else {
                        Taken::Clean
                    });
                }
                continue;
            }
            if spins == 0 && s & WAITERS == 0 {
                // The holder usually lets go within microseconds: wait for that awake.
                spins += 1;
                futex::linger_until(|| self.state.load(Ordering::Relaxed) & ID == 0);
                continue;
            }
            if s & WAITERS == 0
                && self
                    .state
                    .compare_exchange(s, s | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            let slice = Deadline::after(SLICE);
            let until = if deadline
                .instant()
                .is_some_and(|d| slice.instant().is_some_and(|s| d < s))
            {
                deadline
            } else {
                slice
            };
            slept = true;
            if futex::wait(&self.state, s | WAITERS, until) {
                continue;
            }
            if deadline.has_passed() {
                return None;
            }
            // A slice passed without a wake: does the owner still live?
            match self.owner_of(s) {
                Some(owner) if alive(owner) => unknown = 0,
                Some(_) => {
                    self.mark_died(s | WAITERS);
                }
                None => {
                    // The owner has not named its process yet, or died before it could.
                    unknown += 1;
                    if unknown >= 3 && !thread_exists(s & ID) {
                        self.mark_died(s | WAITERS);
                    }
                }
            }
        }
    }

    /// The owning process, if the owner of state `s` has named it.
    fn owner_of(&self, s: u32) -> Option<Owner> {
        let owner = Owner::unpack(self.owner.load(Ordering::Acquire))?;
        (self.state.load(Ordering::Relaxed) & ID == s & ID).then_some(owner)
    }

    /// The owner of state `s` is dead: free the word with `DIED` set and wake everyone.
    fn mark_died(&self, s: u32) -> bool {
        let freed = (s & WAITERS) | DIED;
        if self
            .state
            .compare_exchange(s, freed, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            self.owner.store(0, Ordering::Relaxed);
            futex::wake(&self.state, u32::MAX);
            true
        } else {
            false
        }
    }

    /// Releases the lock (whoever holds it: a `Lock` may be released by another thread).
    #[inline]
    pub(crate) fn unlock(&self) {
        self.owner.store(0, Ordering::Relaxed);
        if self.state.swap(0, Ordering::Release) & WAITERS != 0 {
            futex::wake(&self.state, 1);
        }
    }

    /// Whether some thread holds it.
    pub(crate) fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & ID != 0
    }

    /// Whether the calling thread holds it.
    pub(crate) fn is_mine(&self) -> bool {
        self.state.load(Ordering::Relaxed) & ID == current_tid()
    }

    /// Supervisor path: `pid` has died (and is not yet reaped); free the lock if it held it.
    pub(crate) fn recover(&self, pid: u32) -> bool {
        let s = self.state.load(Ordering::Acquire);
        let owner = Owner::unpack(self.owner.load(Ordering::Acquire));
        s & ID != 0 && owner.is_some_and(|o| o.pid == pid) && self.mark_died(s)
    }
}

/// A table of processes holding something (permits, barrier registrations): one slot per
/// process, with a count only that process changes. A dead holder's count is given back
/// by whoever notices first (one `compare_exchange` on the slot's pid decides who).
#[repr(C)]
pub(crate) struct Holders {
    slots: [Slot; HOLDER_SLOTS],
}

/// Slots in a [`Holders`] table: processes beyond this many are not tracked (documented).
pub(crate) const HOLDER_SLOTS: usize = 62;

#[repr(C)]
struct Slot {
    pid: AtomicU32,
    count: AtomicU32,
    start: AtomicU64,
}

/// A slot's pid while its dead holder's count is being given back.
const RECLAIMING: u32 = u32::MAX;

impl Holders {
    /// This process's slot, claimed on first use; `None` if the table is full.
    pub(crate) fn mine(&self) -> Option<usize> {
        let me = Owner::current();
        if let Some(i) = self.slots.iter().position(|s| {
            s.pid.load(Ordering::Acquire) == me.pid && s.start.load(Ordering::Acquire) == me.start
        }) {
            return Some(i);
        }
        for (i, slot) in self.slots.iter().enumerate() {
            if slot.pid.load(Ordering::Relaxed) == 0
                && slot
                    .pid
                    .compare_exchange(0, me.pid, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                slot.count.store(0, Ordering::Relaxed);
                slot.start.store(me.start, Ordering::Release);
                return Some(i);
            }
        }
        None
    }

    /// Slot `i`'s count.
    pub(crate) fn count(&self, i: usize) -> u32 {
        self.slots[i].count.load(Ordering::Acquire)
    }

    /// Sets slot `i`'s count (its own process, or a recoverer under the object's lock).
    pub(crate) fn set_count(&self, i: usize, count: u32) {
        self.slots[i].count.store(count, Ordering::Release);
    }

    /// Counts `n` more held by this process (outside any lock: only this process changes
    /// its own slot); whether it is tracked.
    pub(crate) fn add(&self, n: u32) -> bool {
        match self.mine() {
            Some(i) => {
                self.slots[i].count.fetch_add(n, Ordering::AcqRel);
                true
            }
            None => false,
        }
    }

    /// Counts `n` fewer held by this process.
    pub(crate) fn sub(&self, n: u32) {
        if let Some(i) = self.mine() {
            let c = &self.slots[i].count;
            let _ = c.fetch_update(Ordering::AcqRel, Ordering::Relaxed, |c| {
                Some(c.saturating_sub(n))
            });
        }
    }

    /// Slots whose process is dead (with `only`: just that pid's, the supervised path,
    /// which knows it is dead). Claims them: call [`Holders::free`] on each when done.
    pub(crate) fn claim_dead(&self, only: Option<u32>) -> Vec<usize> {
        let mut dead = Vec::new();
        for (i, slot) in self.slots.iter().enumerate() {
            let pid = slot.pid.load(Ordering::Acquire);
            if pid == 0 || pid == RECLAIMING || only.is_some_and(|p| p != pid) {
                continue;
            }
            let start = slot.start.load(Ordering::Acquire);
            if start == 0 || (only.is_none() && alive(Owner { pid, start })) {
                continue;
            }
            if slot
                .pid
                .compare_exchange(pid, RECLAIMING, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                dead.push(i);
            }
        }
        dead
    }

    /// Frees a slot claimed by [`Holders::claim_dead`].
    pub(crate) fn free(&self, i: usize) {
        let slot = &self.slots[i];
        slot.count.store(0, Ordering::Relaxed);
        slot.start.store(0, Ordering::Relaxed);
        slot.pid.store(0, Ordering::Release);
    }
}

/// Something in shared memory that can give back what a dead process held.
pub(crate) trait Recover: Send + Sync {
    /// `pid` died (not yet reaped): recover what it held.
    fn recover(&self, pid: u32);
}

/// Every shared object this process holds a handle to, for the supervised path.
static REGISTRY: Lock<Vec<Weak<dyn Recover>>> = Lock::new(Vec::new());

/// Adds `object` to the registry (pruning entries whose objects are gone).
pub(crate) fn register(object: Weak<dyn Recover>) {
    let mut all = REGISTRY.acquire();
    if all.len() >= 64 && all.len().is_power_of_two() {
        all.retain(|w| w.strong_count() > 0);
    }
    all.push(object);
}

/// The supervisor's call: `pid`, our child, has died and is not yet reaped.
pub(crate) fn owner_died(pid: u32) {
    let live: Vec<_> = REGISTRY
        .acquire()
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    for object in live {
        object.recover(pid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_wrong_start_time_is_not() {
        let me = Owner::current();
        assert!(me.start > 0);
        assert!(alive(me));
        assert!(!alive(Owner {
            pid: me.pid,
            start: me.start + 1
        }));
        assert!(!alive(Owner {
            pid: u32::MAX >> 2,
            start: 1
        }));
        assert!(thread_exists(current_tid()));
    }

    #[test]
    fn the_robust_lock_excludes_and_times_out() {
        let lock = RobustLock {
            state: AtomicU32::new(0),
            owner: AtomicU64::new(0),
        };
        let me = Owner::current();
        assert_eq!(Owner::unpack(me.packed()), Some(me));
        assert_eq!(Owner::unpack(0), None);
        assert_eq!(lock.try_lock(), Some(Taken::Clean));
        assert!(lock.is_mine() && lock.is_locked());
        assert_eq!(lock.try_lock(), None);
        assert_eq!(lock.lock(Deadline::after(Duration::from_millis(30))), None);
        lock.unlock();
        assert!(!lock.is_locked());
        assert_eq!(lock.lock(Deadline::NEVER), Some(Taken::Clean));
        // The supervised path: only the owning pid's death frees it.
        assert!(!lock.recover(std::process::id() + 1));
        assert!(lock.recover(std::process::id()));
        assert_eq!(lock.try_lock(), Some(Taken::OwnerDied));
        lock.unlock();
        assert_eq!(
            lock.try_lock(),
            Some(Taken::Clean),
            "the flag is cleared by the taker"
        );
    }
}
