//! `Barrier` across processes (Python's `multiprocessing.Barrier`), which breaks instead of
//! hanging when a process that shares it dies.

use super::robust::{Holders, RobustLock, Taken, SLICE};
use super::shared::{Shared, SharedState};
use super::shm::Kind;
use super::spawn::{anchor_offset, from_anchor};
use crate::error::panic_message;
use crate::sync::{BrokenBarrierError, BrokenReason, InvalidPartiesError};
use crate::wait::{futex, Deadline};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

const ABORTED: u32 = 1;
const TIMED_OUT: u32 = 2;
const ACTION_PANICKED: u32 = 3;
const PARTY_DIED: u32 = 4;
/// How the last generation ended, for its waiters.
const PASSED: u32 = 0;
const RESET: u32 = 1;

#[repr(C)]
pub(crate) struct BarrierState {
    lock: RobustLock,
    /// The futex word waiters sleep on; bumped when a generation ends (passed or reset).
    generation: AtomicU32,
    parties: AtomicU32,
    /// Arrived in this generation (under the lock).
    count: AtomicU32,
    /// 0, or why the barrier is broken.
    broken: AtomicU32,
    /// How the last generation ended: `PASSED` or `RESET` (under the lock).
    last: AtomicU32,
    has_action: AtomicU32,
    /// The action's offset in the binary (see `spawn::anchor_offset`).
    action: AtomicI64,
    /// The default timeout in nanoseconds, plus one (0: none).
    timeout: AtomicU64,
    /// Processes holding a handle: one that dies breaks the barrier.
    registered: Holders,
}

// SAFETY: atomics only; zeroed, it has no parties (set by `create`), is whole and unlocked.
unsafe impl SharedState for BarrierState {
    const KIND: Kind = Kind::Barrier;
    fn recover(&self, pid: u32) {
        self.lock.recover(pid);
        self.reclaim(Some(pid));
    }
}

impl BarrierState {
    /// Breaks the barrier if a registered process (`only`: that one) has died holding a
    /// handle; frees its registration either way.
    fn reclaim(&self, only: Option<u32>) {
        for i in self.registered.claim_dead(only) {
            if self.registered.count(i) > 0 {
                self.break_with(PARTY_DIED);
            }
            self.registered.free(i);
        }
    }

    /// Breaks the barrier (if it is whole) and wakes every waiter.
    fn break_with(&self, reason: u32) {
        let _ = self
            .broken
            .compare_exchange(0, reason, Ordering::SeqCst, Ordering::SeqCst);
        self.generation_wake();
    }

    fn generation_wake(&self) {
        futex::wake(&self.generation, u32::MAX);
    }

    fn lock(&self) {
        if self.lock.lock(Deadline::NEVER) == Some(Taken::OwnerDied) {
            // A process died inside the barrier's own critical section: its counts may be
            // half-updated, and it will never arrive. Break it.
            self.break_with(PARTY_DIED);
        }
    }

    fn error(&self, reason: u32, message: Option<String>) -> BrokenBarrierError {
        let reason = match reason {
            ABORTED => BrokenReason::Aborted,
            TIMED_OUT => BrokenReason::TimedOut,
            ACTION_PANICKED => BrokenReason::ActionPanicked,
            _ => BrokenReason::PartyDied,
        };
        BrokenBarrierError::with_reason(reason, message)
    }
}

/// Python's `multiprocessing.Barrier(parties, action, timeout)`: processes (and threads)
/// wait until `parties` of them have arrived.
///
/// The methods of [`sync::Barrier`](crate::sync::Barrier): `wait` returns the arrival index
/// (0 to `parties - 1`), `abort`, `reset`, `is_broken`, `n_waiting`, a default timeout and
/// an action run by the last arrival. Differences: the action is a plain `fn()` (it runs in
/// whichever process arrives last); and **a process holding a handle that dies breaks the
/// barrier** ([`BrokenReason::PartyDied`]) — Python's barrier would make everyone wait for
/// it forever. Every process that holds a handle (the creator, and each process it passes
/// one to) counts as a party that may still arrive until it drops its handles; a tandem
/// child's death is noticed at once, any other within about 10 ms.
///
/// # Examples
/// ```
/// pytandem::process::init();
/// use pytandem::process::{Barrier, Process};
///
/// fn meet(barrier: Barrier) -> usize {
///     barrier.wait().unwrap()
/// }
///
/// let barrier = Barrier::new(3)?;
/// let a = Process::spawn(meet, barrier.clone())?;
/// let b = Process::spawn(meet, barrier.clone())?;
/// let mine = barrier.wait()?;
/// let mut all = vec![mine, a.join()?, b.join()?];
/// all.sort();
/// assert_eq!(all, [0, 1, 2]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Barrier {
    inner: Shared<BarrierState>,
}

impl Barrier {
    /// A barrier for `parties` processes or threads, without an action or default timeout.
    ///
    /// # Errors
    /// `parties` is 0 (Python's `ValueError`), or the shared segment could not be made.
    pub fn new(parties: usize) -> Result<Barrier, BarrierError> {
        Barrier::builder(parties).build()
    }

    /// Settings before building: an action and a default timeout.
    pub fn builder(parties: usize) -> BarrierBuilder {
        BarrierBuilder {
            parties,
            action: None,
            timeout: None,
        }
    }

    fn state(&self) -> &BarrierState {
        self.inner.state()
    }

    fn register(inner: Shared<BarrierState>) -> Barrier {
        inner.state().registered.add(1);
        Barrier { inner }
    }

    /// Waits for the other parties (Python's `wait()`); this arrival's index.
    pub fn wait(&self) -> Result<usize, BrokenBarrierError> {
        let t = self.state().timeout.load(Ordering::Relaxed);
        let deadline = match t.checked_sub(1) {
            Some(ns) => Deadline::after(Duration::from_nanos(ns)),
            None => Deadline::NEVER,
        };
        self.wait_deadline(deadline)
    }

    /// [`wait`](Barrier::wait) for at most `timeout`; running out breaks the barrier for
    /// everyone ([`BrokenReason::TimedOut`]), as in Python.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, BrokenBarrierError> {
        self.wait_deadline(Deadline::after(timeout))
    }

    fn wait_deadline(&self, deadline: Deadline) -> Result<usize, BrokenBarrierError> {
        let s = self.state();
        s.lock();
        let broken = s.broken.load(Ordering::SeqCst);
        if broken != 0 {
            s.lock.unlock();
            return Err(s.error(broken, None));
        }
        let generation = s.generation.load(Ordering::SeqCst);
        let index = s.count.fetch_add(1, Ordering::Relaxed);
        if index + 1 == s.parties.load(Ordering::Relaxed) {
            if s.has_action.load(Ordering::Relaxed) != 0 {
                let offset = s.action.load(Ordering::Relaxed) as isize;
                // SAFETY: the offset was taken from a `fn()` of this binary (`build`), and
                // only processes of the same build hold handles (tandem children check
                // their build before running anything).
                let action: fn() =
                    unsafe { std::mem::transmute::<usize, fn()>(from_anchor(offset)) };
                if let Err(payload) = std::panic::catch_unwind(action) {
                    s.break_with(ACTION_PANICKED);
                    s.lock.unlock();
                    return Err(s.error(ACTION_PANICKED, Some(panic_message(&*payload))));
                }
            }
            s.count.store(0, Ordering::Relaxed);
            s.last.store(PASSED, Ordering::Relaxed);
            s.generation.fetch_add(1, Ordering::SeqCst);
            s.generation_wake();
            s.lock.unlock();
            return Ok(index as usize);
        }
        s.lock.unlock();
        // The last party is often moments away: see it arrive without sleeping if it comes
        // within a few microseconds.
        futex::linger_until(|| {
            s.generation.load(Ordering::Acquire) != generation
                || s.broken.load(Ordering::Acquire) != 0
        });
        loop {
            if s.generation.load(Ordering::SeqCst) != generation
                || s.broken.load(Ordering::SeqCst) != 0
            {
                break;
            }
            let slice = Deadline::after(SLICE);
            let until = match (deadline.instant(), slice.instant()) {
                (Some(d), Some(sl)) if d < sl => deadline,
                _ => slice,
            };
            if futex::wait(&s.generation, generation, until) {
                continue;
            }
            if deadline.has_passed() {
                s.lock();
                if s.generation.load(Ordering::SeqCst) == generation {
                    s.break_with(TIMED_OUT);
                }
                s.lock.unlock();
                break;
            }
            // A slice passed: has a registered party died?
            s.reclaim(None);
        }
        s.lock();
        let result = if s.generation.load(Ordering::SeqCst) != generation {
            if s.last.load(Ordering::Relaxed) == RESET {
                Err(BrokenBarrierError::with_reason(BrokenReason::Reset, None))
            } else {
                Ok(index as usize)
            }
        } else {
            Err(s.error(s.broken.load(Ordering::SeqCst), None))
        };
        s.lock.unlock();
        result
    }

    /// Breaks the barrier: current and future waiters fail until [`reset`](Barrier::reset)
    /// (Python's `abort()`).
    pub fn abort(&self) {
        let s = self.state();
        s.lock();
        s.break_with(ABORTED);
        s.lock.unlock();
    }

    /// Returns the barrier to its empty, whole state; current waiters fail with
    /// [`BrokenReason::Reset`] (Python's `reset()`).
    pub fn reset(&self) {
        let s = self.state();
        s.lock();
        if s.count.load(Ordering::Relaxed) > 0 && s.broken.load(Ordering::SeqCst) == 0 {
            s.last.store(RESET, Ordering::Relaxed);
            s.generation.fetch_add(1, Ordering::SeqCst);
        }
        s.count.store(0, Ordering::Relaxed);
        s.broken.store(0, Ordering::SeqCst);
        s.generation_wake();
        s.lock.unlock();
    }

    /// Whether the barrier is broken (Python's `broken`).
    pub fn is_broken(&self) -> bool {
        self.state().broken.load(Ordering::SeqCst) != 0
    }

    /// How many parties wait now (Python's `n_waiting`).
    pub fn n_waiting(&self) -> usize {
        if self.is_broken() {
            0
        } else {
            self.state().count.load(Ordering::Relaxed) as usize
        }
    }

    /// How many parties it takes (Python's `parties`).
    pub fn parties(&self) -> usize {
        self.state().parties.load(Ordering::Relaxed) as usize
    }
}

impl Clone for Barrier {
    /// Another handle to the same barrier (registered with it, like the first).
    fn clone(&self) -> Self {
        Barrier::register(self.inner.clone())
    }
}

impl Drop for Barrier {
    fn drop(&mut self) {
        self.state().registered.sub(1);
    }
}

/// The handle travels to another process with its shared memory segment; the receiving
/// process registers with the barrier.
impl Serialize for Barrier {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.inner.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Barrier {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Barrier::register(Shared::deserialize(d)?))
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("process::Barrier")
            .field("parties", &self.parties())
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.is_broken())
            .finish()
    }
}

/// Settings for a process [`Barrier`].
#[derive(Debug)]
pub struct BarrierBuilder {
    parties: usize,
    action: Option<fn()>,
    timeout: Option<Duration>,
}

impl BarrierBuilder {
    /// Runs `action` in the last process to arrive, before any party leaves (Python's
    /// `action=`). A panic breaks the barrier ([`BrokenReason::ActionPanicked`]).
    pub fn action(mut self, action: fn()) -> Self {
        self.action = Some(action);
        self
    }

    /// The timeout of [`Barrier::wait`] (Python's `timeout=`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Creates the barrier in shared memory.
    pub fn build(self) -> Result<Barrier, BarrierError> {
        let parties =
            u32::try_from(self.parties)
                .ok()
                .filter(|&p| p > 0)
                .ok_or(BarrierError::Parties(InvalidPartiesError::new(
                    self.parties,
                )))?;
        let inner = Shared::create(
            |s: &BarrierState| {
                s.parties.store(parties, Ordering::Relaxed);
                if let Some(action) = self.action {
                    s.action
                        .store(anchor_offset(action as usize) as i64, Ordering::Relaxed);
                    s.has_action.store(1, Ordering::Relaxed);
                }
                if let Some(t) = self.timeout {
                    let ns = u64::try_from(t.as_nanos()).unwrap_or(u64::MAX - 1);
                    s.timeout.store(ns.min(u64::MAX - 1) + 1, Ordering::Relaxed);
                }
            },
            std::iter::empty::<()>(),
        )
        .map_err(BarrierError::Io)?;
        Ok(Barrier::register(inner))
    }
}

/// Why a process [`Barrier`] could not be made.
#[derive(Debug)]
#[non_exhaustive]
pub enum BarrierError {
    /// Zero parties (or more than `u32::MAX`).
    Parties(InvalidPartiesError),
    /// The shared segment could not be made.
    Io(io::Error),
}

impl fmt::Display for BarrierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BarrierError::Parties(e) => e.fmt(f),
            BarrierError::Io(e) => write!(f, "the barrier's shared memory could not be made: {e}"),
        }
    }
}

impl std::error::Error for BarrierError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BarrierError::Parties(e) => Some(e),
            BarrierError::Io(e) => Some(e),
        }
    }
}
