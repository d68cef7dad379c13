//! Deadlock detection, a lock-order checker, contention statistics and thread dumps
//! (feature `diagnostics`).
#![cfg_attr(
    not(feature = "diagnostics"),
    doc = "\n*These docs were built without the `diagnostics` feature: the functions and types named below exist only with it (see [Availability](#availability)).*\n\n[`check_deadlock`]: #availability\n[`Watchdog`]: #availability\n[`Deadlock`]: #availability\n[`take_lock_order_violations`]: #availability\n[`on_lock_order_violation`]: #availability\n[`stats`]: #availability\n[`snapshot`]: #availability\n[`disable`]: #availability\n[`enable`]: #availability\n"
)]
//!
//! ```
//! # #[cfg(feature = "diagnostics")] {
//! use pytandem::diagnostics::{self, Watchdog};
//! use pytandem::sync::Lock;
//!
//! diagnostics::enable(); // recording is off until enabled (or until a watchdog starts)
//! let watchdog = Watchdog::builder()
//!     .on_deadlock(|report| eprintln!("{report}"))
//!     .spawn()
//!     .expect("a thread for the watchdog");
//!
//! let accounts = [Lock::named(100, "alice"), Lock::named(50, "bob")];
//! {
//!     let _a = accounts[0].acquire();
//!     let _b = accounts[1].acquire(); // alice → bob: remembered by the lock-order checker
//! }
//! assert!(diagnostics::check_deadlock().is_empty());
//! println!("{}", diagnostics::snapshot()); // a thread dump: who waits on what, who holds what
//! drop(watchdog); // stops and joins its thread
//! # }
//! ```
//!
//! # What it finds
//! - **Deadlocks** ([`check_deadlock`], [`Watchdog`]): every wait in tandem goes through the
//!   one wait layer, which records *who waits on what*; every lock records *who holds it and
//!   where it was taken* (`#[track_caller]`). A cycle "T1 waits on a lock T2 holds, T2 waits
//!   on a lock T1 holds" is a deadlock; it is reported only once two looks a moment apart
//!   show the very same waits and the very same holds (per-thread epochs), so threads that
//!   merely pass through those states are never reported. Waits whose owner is unknowable
//!   (an `Event`, a `Queue`, a `Barrier`, a `Semaphore`, a condition's wait set) appear in
//!   the thread dump, never in a cycle. A [`Deadlock`] prints like Java's deadlock report.
//! - **Lock-order inversions** ([`take_lock_order_violations`], [`on_lock_order_violation`]):
//!   each thread's nested acquisitions (B taken while holding A) feed one global graph of
//!   "A before B" edges; the first acquisition that closes a cycle in it (B then A elsewhere,
//!   or a longer chain) is reported with every site involved, whether or not a deadlock
//!   ever happens. `try_acquire` never waits, so it never adds an edge into the lock it takes.
//! - **Contention** ([`stats`], `Lock::stats`): per primitive, acquisitions, contended
//!   acquisitions, time-outs, and total and longest wait.
//! - **A thread dump** ([`snapshot`]): every thread that waits or holds a lock right now.
//!
//! # Cost
//! - Feature off (the default): every hook below is an empty `#[inline(always)]` function
//!   and `Lock<()>` stays one byte. Nothing is recorded, nothing is paid.
//! - Feature on, recording off ([`disable`], the state at start-up): one relaxed load and a
//!   branch per acquisition and release; locks are 32 bytes (an id, a counter, a pointer to
//!   lazily allocated details).
//! - Feature on, recording on: an acquisition pushes `(lock, id, site)` on the calling
//!   thread's own held-locks stack (plain stores under a per-thread sequence counter, no
//!   read-modify-write, no global structure); a release pops it. Global structures are
//!   touched only on slow paths: the first wait on a lock, a first-seen nested pair of locks
//!   (each thread caches the pairs it has already reported), a release by a thread other
//!   than the acquirer, and the detector itself. Uncontended `Lock` acquire + release stays
//!   within 3× its compiled-out cost (`tandem bench diagnostics`).
//!
//! # Recording switch
//! Recording is off at start-up even when the feature is compiled in, so that a binary
//! (like the `tandem` CLI) can carry the detector without paying for it until it is wanted:
//! call [`enable`] early in `main` (or start a [`Watchdog`], which enables it). Holds and
//! waits from before an [`enable`] are unknown to the detector. Each [`enable`] / [`disable`]
//! starts a new *generation*: records of an older generation are ignored, so switching can
//! never leave a stale hold that would make a false cycle.
//!
//! # Availability
//! Everything that records or reports needs the `diagnostics` feature
//! (`tandem = { version = "0.1", features = ["diagnostics"] }`). Without it this module holds
//! only [`PrimitiveKind`], [`Stats`] and [`COMPILED_IN`]; the primitives' `set_name` keeps
//! nothing (`name()` is `None`), their `stats` methods do not exist, and every hook inside
//! tandem compiles to nothing.

// Hooks for primitives (for tandem's own code; not public API).
// Locks built on `RawLock` (`Lock`, `RLock`, the lock inside `Condition`) are covered by
// `raw_lock.rs`; `RLock` builds its engine with `RawLock::with_kind(PrimitiveKind::RLock)`
// and `Condition` announces its waits and its hand-offs (below). Other primitives need at
// most these one-line calls; all of them compile to nothing without the feature:
// - **What a wait is on.** Just before `wait::park(key, ..)`, call
//   `diagnostics::wait_intent(PrimitiveKind::Event, key, Some(&self.tag))` (or `None` for
//   no tag). The wait layer attaches it to the wait it records, so the thread dump says
//   "waiting on Event 'ready' at src/main.rs:12" instead of "waiting on an unknown
//   primitive". Without it the wait is still recorded, with kind `Unknown`. Waits of kinds
//   other than `Lock`/`RLock` never form deadlock cycles. Put
//   `#[cfg_attr(feature = "diagnostics", track_caller)]` on the public blocking methods to
//   make the recorded site the user's call rather than a line inside tandem.
// - **Names and statistics.** Embed a `diagnostics::Tag` field (zero-sized without the
//   feature), forward `set_name(&self, name)` to `self.tag.set_name(kind, key, name)` and
//   `name()` to `self.tag.name()`. Waits announced with `Some(&self.tag)` are counted in the
//   tag's statistics (contended count, total and longest wait).
// - **A lock of another kind.** Build the engine with `RawLock::with_kind(PrimitiveKind::RLock)`
//   (const) so reports say `RLock`, and put `#[cfg_attr(feature = "diagnostics",
//   track_caller)]` on the acquire methods so holds are reported at the user's line.
// - **A lock handed over without `RawLock::lock`** (a condition variable woken with
//   `TOKEN_HANDOFF` after a requeue): call `lock.note_handoff()` on the `RawLock`, or the
//   detector will not know the thread holds it (a missed report, never a false one).
//
// The wait layer's contract still holds: the recording done inside `before_sleep` only
// stores to the calling thread's own record (it never parks and never panics), and the
// detector's bookkeeping uses spin locks that never park, so it may run from any hook.
// Under `--cfg tandem_loom` every hook is a no-op.

/// Which kind of primitive a wait or a hold is on, as reports name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u8)]
pub enum PrimitiveKind {
    /// A wait whose primitive did not say what it is.
    Unknown = 0,
    /// [`crate::sync::Lock`].
    Lock = 1,
    /// `crate::sync::RLock`.
    RLock = 2,
    /// A condition variable's wait set (its lock is reported as `Lock` or `RLock`).
    Condition = 3,
    /// A semaphore (bounded or not).
    Semaphore = 4,
    /// An event.
    Event = 5,
    /// A barrier.
    Barrier = 6,
    /// A queue (a `put` waiting for room, a `get` waiting for an item, a `join`).
    Queue = 7,
    /// A future of an executor, or a thread being joined.
    Future = 8,
    /// Anything else that waits in tandem's wait layer.
    Other = 9,
}

impl PrimitiveKind {
    /// Whether a thread waiting on this kind waits for a *holder* (an owner the detector
    /// knows): only such waits can form deadlock cycles.
    #[inline]
    pub fn has_owner(self) -> bool {
        matches!(self, PrimitiveKind::Lock | PrimitiveKind::RLock)
    }

    #[allow(dead_code)]
    pub(crate) fn from_u8(v: u8) -> PrimitiveKind {
        match v {
            1 => PrimitiveKind::Lock,
            2 => PrimitiveKind::RLock,
            3 => PrimitiveKind::Condition,
            4 => PrimitiveKind::Semaphore,
            5 => PrimitiveKind::Event,
            6 => PrimitiveKind::Barrier,
            7 => PrimitiveKind::Queue,
            8 => PrimitiveKind::Future,
            9 => PrimitiveKind::Other,
            _ => PrimitiveKind::Unknown,
        }
    }
}

impl std::fmt::Display for PrimitiveKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PrimitiveKind::Unknown => "primitive",
            PrimitiveKind::Lock => "Lock",
            PrimitiveKind::RLock => "RLock",
            PrimitiveKind::Condition => "Condition",
            PrimitiveKind::Semaphore => "Semaphore",
            PrimitiveKind::Event => "Event",
            PrimitiveKind::Barrier => "Barrier",
            PrimitiveKind::Queue => "Queue",
            PrimitiveKind::Future => "Future",
            PrimitiveKind::Other => "wait",
        })
    }
}

/// Contention statistics of one primitive (all zero while recording is off).
///
/// For a lock: `acquisitions` counts every successful acquisition, `contended` those that
/// found the lock taken, `timeouts` the timed attempts that gave up; the waits add up in
/// `total_wait` and the longest is `max_wait`. For other primitives (through their tag):
/// `contended` counts waits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Successful acquisitions.
    pub acquisitions: u64,
    /// Acquisitions (or waits) that could not proceed at once.
    pub contended: u64,
    /// Timed attempts that gave up.
    pub timeouts: u64,
    /// Time spent waiting, in total.
    pub total_wait: std::time::Duration,
    /// The longest single wait.
    pub max_wait: std::time::Duration,
}

/// Whether this build of tandem has the `diagnostics` feature, so that primitives keep their
/// names and statistics and the detector exists (`false` in the default build).
///
/// ```
/// use pytandem::{diagnostics, sync::Lock};
///
/// let lock = Lock::named(0, "ledger");
/// // Names are kept only when the feature is on.
/// let expected = diagnostics::COMPILED_IN.then_some("ledger");
/// assert_eq!(lock.name().as_deref(), expected);
/// ```
pub const COMPILED_IN: bool = cfg!(all(feature = "diagnostics", not(tandem_loom)));

/// How a lock was taken: only acquisitions that could have waited add lock-order edges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(dead_code)]
pub(crate) enum How {
    /// `acquire`: waits as long as it takes.
    Blocking,
    /// `acquire_timeout` / `acquire_until`: may wait.
    Timed,
    /// `try_acquire`: never waits.
    Try,
}

/// One `cfg` for "recording is compiled in": the feature is on and this is not a loom build.
macro_rules! compiled_in {
    ($($item:item)*) => {
        $(
            #[cfg(all(feature = "diagnostics", not(tandem_loom)))]
            $item
        )*
    };
}

/// The opposite of [`compiled_in`].
macro_rules! compiled_out {
    ($($item:item)*) => {
        $(
            #[cfg(not(all(feature = "diagnostics", not(tandem_loom))))]
            $item
        )*
    };
}

compiled_in! {
    mod detect;
    mod info;
    mod order;
    mod record;
    mod report;
    mod spin;
    mod watchdog;

    #[allow(unused_imports)]
    pub(crate) use info::{LockDiag, Tag};
    #[allow(unused_imports)]
    pub(crate) use record::{
        lock_acquired, lock_released, lock_wait_start, wait_intent, LockWait, ParkScope,
    };

    pub use detect::{check_deadlock, snapshot};
    pub use info::stats;
    pub use order::{on_lock_order_violation, take_lock_order_violations};
    pub use record::{disable, enable, is_enabled};
    pub use report::{
        Deadlock, DeadlockedThread, HeldLock, LockOrderViolation, OrderEdge, Primitive,
        PrimitiveStats, ThreadDump, ThreadState, Waiting,
    };
    pub use watchdog::{Watchdog, WatchdogBuilder};
}

compiled_out! {
    mod off;
    #[allow(unused_imports)]
    pub(crate) use off::{
        lock_acquired, lock_released, lock_wait_start, wait_intent, LockDiag, LockWait,
        ParkScope, Tag,
    };
}
