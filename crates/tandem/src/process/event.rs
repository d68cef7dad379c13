//! `Event` across processes (Python's `multiprocessing.Event`): a flag in shared memory.

use super::shared::{shared_handle, Shared, SharedState};
use super::shm::Kind;
use crate::wait::{futex, Deadline};
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The flag, a generation bumped by every `set` (the futex word waiters sleep on), and
/// whether anyone may sleep on it. A waiter returns `true` once the generation moves, even
/// if a `clear` came right after the `set` (Python's semantics: a `set()` releases every
/// thread waiting at that moment).
#[repr(C)]
pub(crate) struct EventState {
    flag: AtomicU32,
    generation: AtomicU32,
    sleepers: AtomicU32,
}

// SAFETY: atomics only; clear with no sleeper when zeroed.
unsafe impl SharedState for EventState {
    const KIND: Kind = Kind::Event;
}

/// Python's `multiprocessing.Event`: a flag that processes (and threads) wait for.
///
/// The methods of [`sync::Event`](crate::sync::Event): `set`, `clear`, `is_set`, `wait`,
/// `wait_timeout`. An event holds nothing a dead process could keep, so there is nothing
/// to recover; a process that dies while waiting simply stops waiting.
///
/// # Examples
/// ```
/// pytandem::process::init();
/// use pytandem::process::{Event, Process};
///
/// fn wait_for_start(start: Event) -> bool {
///     start.wait_timeout(std::time::Duration::from_secs(30))
/// }
///
/// let start = Event::new()?;
/// let child = Process::spawn(wait_for_start, start.clone())?;
/// start.set();
/// assert!(child.join()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Event {
    inner: Shared<EventState>,
}

shared_handle!(Event);

impl Event {
    /// A new, clear event in shared memory.
    pub fn new() -> io::Result<Self> {
        Ok(Event {
            inner: Shared::create(|_| {}, std::iter::empty())?,
        })
    }

    fn state(&self) -> &EventState {
        self.inner.state()
    }

    /// Whether the flag is set (Python's `is_set()`).
    #[doc(alias = "isSet")]
    pub fn is_set(&self) -> bool {
        self.state().flag.load(Ordering::Acquire) != 0
    }

    /// Sets the flag and wakes every waiter (Python's `set()`).
    pub fn set(&self) {
        let s = self.state();
        s.flag.store(1, Ordering::SeqCst);
        s.generation.fetch_add(1, Ordering::SeqCst);
        if s.sleepers.load(Ordering::SeqCst) != 0 {
            futex::wake(&s.generation, u32::MAX);
        }
    }

    /// Clears the flag (Python's `clear()`).
    pub fn clear(&self) {
        self.state().flag.store(0, Ordering::SeqCst);
    }

    /// Waits until the flag is set (Python's `wait()`); returns `true`.
    pub fn wait(&self) -> bool {
        self.wait_deadline(Deadline::NEVER)
    }

    /// Waits at most `timeout` for the flag (Python's `wait(timeout)`): whether it was set.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_deadline(Deadline::after(timeout))
    }

    fn wait_deadline(&self, deadline: Deadline) -> bool {
        let s = self.state();
        let generation = s.generation.load(Ordering::SeqCst);
        if !self.is_set() && !deadline.has_passed() {
            // A set is often moments away (a hand-off between processes): see it without
            // sleeping, if it comes within a few microseconds.
            futex::linger(&s.generation, generation);
        }
        loop {
            if self.is_set() {
                return true;
            }
            s.sleepers.fetch_add(1, Ordering::SeqCst);
            // "Announce, re-check, sleep" against "publish, check, wake": SeqCst on both.
            let moved = s.generation.load(Ordering::SeqCst) != generation;
            let in_time = moved || futex::wait(&s.generation, generation, deadline);
            s.sleepers.fetch_sub(1, Ordering::SeqCst);
            if s.generation.load(Ordering::SeqCst) != generation {
                return true; // set since we began waiting, even if cleared again since
            }
            if !in_time {
                return self.is_set();
            }
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("process::Event")
            .field("is_set", &self.is_set())
            .finish()
    }
}
