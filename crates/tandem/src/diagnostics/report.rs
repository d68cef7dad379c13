//! What the detector reports: deadlocks, thread dumps, lock-order inversions, statistics.
//! Each report prints (`Display`) in the style of Java's deadlock report and thread dump.

use std::fmt;
use std::panic::Location;
use std::thread::ThreadId;
use std::time::Duration;

use super::{PrimitiveKind, Stats};

/// A primitive as reports name it: its kind, its name if it was given one, where it was
/// created (`Lock::named`) or first named or waited on, and its address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Primitive {
    /// What it is.
    pub kind: PrimitiveKind,
    /// Its name (`Lock::named`, `set_name`), if it has one.
    pub name: Option<String>,
    /// Where it was created, if named at creation; otherwise where it was first named or
    /// first waited on; `None` if neither happened.
    pub created_at: Option<&'static Location<'static>>,
    /// Its address when last seen.
    pub address: usize,
}

impl fmt::Display for Primitive {
    /// `Lock "accounts[3]"`, or `Lock @0x7ffd5a3c` for an unnamed one; with `{:#}`, the
    /// creation site follows.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{} {name:?}", self.kind)?,
            None => write!(f, "{} @{:#x}", self.kind, self.address)?,
        }
        if f.alternate() {
            if let Some(site) = self.created_at {
                write!(f, " (created at {site})")?;
            }
        }
        Ok(())
    }
}

/// A primitive's contention statistics (see [`stats`](super::stats)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrimitiveStats {
    /// The primitive.
    pub primitive: Primitive,
    /// Its figures.
    pub stats: Stats,
}

impl fmt::Display for PrimitiveStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        write!(
            f,
            "{}: {} acquisitions, {} contended, {} timed out, waited {} in total, {} at most",
            self.primitive,
            s.acquisitions,
            s.contended,
            s.timeouts,
            Human(s.total_wait),
            Human(s.max_wait)
        )
    }
}

/// A lock a thread holds, and where it took it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldLock {
    /// The lock.
    pub lock: Primitive,
    /// Where the holder acquired it (the caller of `acquire`, through `#[track_caller]`).
    pub taken_at: Option<&'static Location<'static>>,
}

impl fmt::Display for HeldLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.lock)?;
        if let Some(site) = self.taken_at {
            write!(f, ", taken at {site}")?;
        }
        Ok(())
    }
}

/// The wait a thread is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    /// What it waits on.
    pub on: Primitive,
    /// Where it called the blocking method, when the primitive records it.
    pub at: Option<&'static Location<'static>>,
    /// How long it has waited so far.
    pub waited: Duration,
    /// For a timed wait, how long until it gives up.
    pub gives_up_in: Option<Duration>,
    /// For a lock, the thread holding it, if known.
    pub held_by: Option<String>,
}

impl fmt::Display for Waiting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "waiting on {:#}", self.on)?;
        if let Some(site) = self.at {
            write!(f, " at {site}")?;
        }
        write!(f, ", for {}", Human(self.waited))?;
        match self.gives_up_in {
            Some(left) => write!(f, " (gives up in {})", Human(left))?,
            None => f.write_str(" (no time-out)")?,
        }
        if let Some(holder) = &self.held_by {
            write!(f, ", held by {holder}")?;
        }
        Ok(())
    }
}

/// One thread in a [`ThreadDump`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadState {
    /// Its name, if it has one.
    pub name: Option<String>,
    /// Its id.
    pub id: ThreadId,
    /// Whether it is still running (a thread that exited while holding a lock — through a
    /// leaked guard — still shows its holds).
    pub alive: bool,
    /// The wait it is in, if any.
    pub waiting: Option<Waiting>,
    /// The locks it holds, outermost first.
    pub holding: Vec<HeldLock>,
}

impl ThreadState {
    /// `"name"` in quotes, or the thread id for an unnamed thread.
    pub fn label(&self) -> String {
        label(self.name.as_deref(), self.id)
    }
}

pub(super) fn label(name: Option<&str>, id: ThreadId) -> String {
    match name {
        Some(n) => format!("{n:?}"),
        None => format!("<unnamed {id:?}>"),
    }
}

/// Every thread that waits in tandem or holds a tandem lock right now ([`snapshot`]): the
/// seeds' "monitor thread resources", and Java's thread dump.
///
/// [`snapshot`]: super::snapshot
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ThreadDump {
    /// The threads, in the order they first used tandem.
    pub threads: Vec<ThreadState>,
}

impl fmt::Display for ThreadDump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "tandem thread dump: {} thread(s) waiting or holding locks",
            self.threads.len()
        )?;
        for t in &self.threads {
            write!(f, "{} ({:?})", t.label(), t.id)?;
            if !t.alive {
                f.write_str(" [exited]")?;
            }
            writeln!(f, ":")?;
            if let Some(w) = &t.waiting {
                writeln!(f, "  {w}")?;
            }
            for h in &t.holding {
                writeln!(f, "  - holds {h}")?;
            }
        }
        Ok(())
    }
}

/// One thread of a [`Deadlock`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadlockedThread {
    /// Its name, if it has one.
    pub name: Option<String>,
    /// Its id.
    pub id: ThreadId,
    /// The lock it waits for.
    pub waiting_for: Primitive,
    /// Where it called `acquire` on that lock.
    pub waiting_at: Option<&'static Location<'static>>,
    /// How long it has waited.
    pub waited: Duration,
    /// For a timed acquisition, how long until it gives up (the deadlock then breaks).
    pub gives_up_in: Option<Duration>,
    /// Index (in [`Deadlock::threads`]) of the thread holding that lock; the thread itself
    /// for a thread that waits for a `Lock` it already holds.
    pub held_by: usize,
    /// Where that holder took the lock.
    pub taken_at: Option<&'static Location<'static>>,
    /// Every lock this thread holds, outermost first, with where it took each.
    pub holding: Vec<HeldLock>,
}

impl DeadlockedThread {
    /// `"name"` in quotes, or the thread id for an unnamed thread.
    pub fn label(&self) -> String {
        label(self.name.as_deref(), self.id)
    }
}

/// A set of threads each waiting for a lock that the next one holds, the last waiting for
/// one the first holds: none can ever proceed (unless a timed acquisition gives up).
///
/// Found by [`check_deadlock`](super::check_deadlock) and the
/// [`Watchdog`](super::Watchdog), and confirmed: two looks a moment apart saw the very same
/// waits and holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deadlock {
    /// The threads of the cycle, each waiting for a lock held by `held_by`.
    pub threads: Vec<DeadlockedThread>,
}

impl Deadlock {
    /// The threads' names (or ids), in cycle order.
    pub fn thread_labels(&self) -> Vec<String> {
        self.threads.iter().map(DeadlockedThread::label).collect()
    }

    /// Whether every thread of the cycle waits without a time-out (otherwise the cycle will
    /// break when the first time-out passes).
    pub fn is_permanent(&self) -> bool {
        self.threads.iter().all(|t| t.gives_up_in.is_none())
    }
}

impl fmt::Display for Deadlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let title = match self.threads.len() {
            1 => "Found a deadlock: a thread waits for a lock it holds itself".to_string(),
            n => format!("Found a deadlock between {n} threads"),
        };
        writeln!(f, "{title}:")?;
        writeln!(f, "{}", "=".repeat(title.chars().count() + 1))?;
        for t in &self.threads {
            writeln!(f, "{}:", t.label())?;
            write!(f, "  waiting to lock {:#}", t.waiting_for)?;
            if let Some(site) = t.waiting_at {
                write!(f, "\n    at {site}")?;
            } else {
                f.write_str("\n   ")?;
            }
            write!(f, ", for {}", Human(t.waited))?;
            if let Some(left) = t.gives_up_in {
                write!(f, " (a timed wait: gives up in {})", Human(left))?;
            }
            writeln!(f)?;
            let holder = &self.threads[t.held_by];
            if std::ptr::eq(holder, t) {
                write!(f, "  which this same thread holds")?;
            } else {
                write!(f, "  which is held by {}", holder.label())?;
            }
            match t.taken_at {
                Some(site) => writeln!(f, ", taken at {site}")?,
                None => writeln!(f)?,
            }
        }
        writeln!(f)?;
        writeln!(f, "Locks held by the threads above:")?;
        writeln!(f, "================================")?;
        for t in &self.threads {
            writeln!(f, "{}:", t.label())?;
            for h in &t.holding {
                writeln!(f, "  - {h}")?;
            }
        }
        if !self.is_permanent() {
            writeln!(
                f,
                "\n(Some of these waits are timed: the deadlock lasts until the first gives up.)"
            )?;
        }
        Ok(())
    }
}

/// One "took `first`, then asked for `then` while still holding it" of a lock-order
/// inversion (asked for: acquired it, or waited for it, even if the wait timed out).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderEdge {
    /// The thread that did it (its name, or its id).
    pub thread: String,
    /// The lock taken first.
    pub first: Primitive,
    /// Where it was taken.
    pub first_site: Option<&'static Location<'static>>,
    /// The lock acquired or waited for next, while `first` was held.
    pub then: Primitive,
    /// Where it was taken.
    pub then_site: Option<&'static Location<'static>>,
}

impl fmt::Display for OrderEdge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "thread {:?} took {}", self.thread, self.first)?;
        if let Some(site) = self.first_site {
            write!(f, " at {site}")?;
        }
        write!(f, ", then asked for {}", self.then)?;
        if let Some(site) = self.then_site {
            write!(f, " at {site}")?;
        }
        Ok(())
    }
}

/// Locks taken in opposite orders in different places: run at the same time, these places
/// can deadlock. Reported the first time the second order is seen, deadlock or not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockOrderViolation {
    /// The acquisition that revealed the inversion.
    pub now: OrderEdge,
    /// The earlier acquisitions that took the same locks the other way round: one edge for
    /// a simple A/B inversion, a chain for a longer cycle (B then C, C then A).
    pub earlier: Vec<OrderEdge>,
}

impl fmt::Display for LockOrderViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Lock-order inversion (a potential deadlock):")?;
        writeln!(f, "  {}", self.now)?;
        for (i, e) in self.earlier.iter().enumerate() {
            let lead = if i == 0 { "but earlier" } else { "and" };
            writeln!(f, "  {lead} {e}")?;
        }
        writeln!(
            f,
            "  Run at the same time, each can hold a lock the other waits for. Take these locks\n  \
             in one global order everywhere (pytandem::sync::acquire_all does it for you)."
        )
    }
}

/// A duration for people: `350 ms`, `1.25 s`, `12 µs`.
pub(super) struct Human(pub(super) Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d >= Duration::from_secs(1) {
            write!(f, "{:.2} s", d.as_secs_f64())
        } else if d >= Duration::from_millis(1) {
            write!(f, "{} ms", d.as_millis())
        } else {
            write!(f, "{} µs", d.as_micros())
        }
    }
}
