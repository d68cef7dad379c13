//! The wait layer: the one place where any tandem call blocks.
//!
//! Every blocking call in tandem turns its timeout into one [`Deadline`] (computed once, so
//! spurious wake-ups re-wait until the same instant) and parks through [`park`]. Parking is
//! address-keyed: a primitive parks on its own address and wakes waiters with
//! [`unpark_one`], [`unpark_all`], [`unpark_filter`] or [`unpark_requeue`]; each key has a
//! FIFO queue, which is what gives tandem's primitives their arrival-order fairness.
//!
//! Backends, chosen by one `cfg` here and nowhere else:
//! - normally `parking_lot_core` (a global hash table of FIFO queues over futexes);
//! - under `--cfg tandem_loom`, a small table on loom's `Mutex`/`Condvar` with the same
//!   contract, because loom cannot see futexes (see `loom_backend.rs`).
//!
//! Latches (`latch.rs`): the one "wait until this opens" algorithm (a flag or count and a
//! `PARKED` bit) for a thread's end, a pool's workers, a scope's jobs and a task's outcome.
//!
//! Between processes, a second backend (`futex.rs`): shared futex words in shared memory,
//! waited on with the same [`Deadline`]. Every cross-process blocking call goes through it.
//!
//! With the `diagnostics` feature, [`park`] also records each wait (who waits on what, since
//! when) for the deadlock detector and the thread dump; see `crate::diagnostics`. Without it,
//! `park` is the backend's own function.
//!
//! # Contract (inherited from `parking_lot_core`)
//! The `validate`, `timed_out`, `filter` and `callback` closures run while the key's queue is
//! locked: they must not panic and must not call back into this module. `before_sleep` runs
//! unlocked and may unpark, but must not park or panic. Keys must be addresses the caller
//! owns, so primitives never see each other's waiters.

mod deadline;
#[cfg(all(target_os = "linux", not(tandem_loom)))]
pub(crate) mod futex;
pub(crate) mod latch;

pub(crate) use deadline::Deadline;
pub(crate) use latch::Latch;

#[cfg(not(tandem_loom))]
mod backend {
    pub(crate) use parking_lot_core::{
        park, unpark_all, unpark_filter, unpark_one, unpark_requeue, FilterOp, ParkResult,
        ParkToken, RequeueOp, SpinWait, UnparkResult, UnparkToken, DEFAULT_PARK_TOKEN,
        DEFAULT_UNPARK_TOKEN,
    };
}

#[cfg(tandem_loom)]
#[path = "loom_backend.rs"]
mod backend;

#[allow(unused_imports)]
pub(crate) use backend::{
    unpark_all, unpark_filter, unpark_one, unpark_requeue, FilterOp, ParkResult, ParkToken,
    RequeueOp, SpinWait, UnparkResult, UnparkToken, DEFAULT_PARK_TOKEN, DEFAULT_UNPARK_TOKEN,
};

/// Loom only: makes the backend report `be_fair`, so models reach the fair hand-off paths.
#[cfg(all(tandem_loom, test))]
pub(crate) use backend::set_be_fair;

/// Parks without recording the wait: for the deadlock detector's own sleeps.
#[cfg(all(feature = "diagnostics", not(tandem_loom)))]
pub(crate) use backend::park as park_unrecorded;

/// Without recording compiled in, a park is the backend's park, nothing added.
#[cfg(not(all(feature = "diagnostics", not(tandem_loom))))]
pub(crate) use backend::park;

/// Parks the calling thread on `key` until unparked or `timeout` (the backend's contract,
/// unchanged), recording the wait for the deadlock detector: what it is on (announced just
/// before by `diagnostics::wait_intent`, or by a lock's slow path), since when, and until
/// when. The record is made in `before_sleep`, once the thread is queued, after the
/// caller's own `before_sleep`; it only stores to the calling thread's own record.
///
/// # Safety
/// As for `parking_lot_core::park`: see the module's contract.
#[cfg(all(feature = "diagnostics", not(tandem_loom)))]
#[inline]
pub(crate) unsafe fn park(
    key: usize,
    validate: impl FnOnce() -> bool,
    before_sleep: impl FnOnce(),
    timed_out: impl FnOnce(usize, bool),
    park_token: ParkToken,
    timeout: Option<std::time::Instant>,
) -> ParkResult {
    let scope = crate::diagnostics::ParkScope::begin(key, timeout);
    // SAFETY: the caller upholds the contract for its closures; the added work in
    // `before_sleep` (recording the wait in this thread's own record) never parks, never
    // panics and never calls the wait layer.
    unsafe {
        backend::park(
            key,
            validate,
            || {
                before_sleep();
                scope.arm();
            },
            timed_out,
            park_token,
            timeout,
        )
    }
}

/// How many threads are parked on `key` right now: a census of its wait queue, taken under
/// the queue's lock, that wakes nobody. Exact but not free (it walks the queue): for
/// `n_waiting`-style monitoring and tests, not for fast paths.
pub(crate) fn queued(key: usize) -> usize {
    let mut count = 0;
    // SAFETY: the filter only counts and skips every thread, and the callback only returns
    // the default token: neither panics nor calls back into the wait layer, and since no
    // thread is unparked, any key is harmless.
    unsafe {
        backend::unpark_filter(
            key,
            |_| {
                count += 1;
                FilterOp::Skip
            },
            |_| DEFAULT_UNPARK_TOKEN,
        );
    }
    count
}

/// The key a primitive parks on: its own address.
#[inline]
pub(crate) fn key_of<T: ?Sized>(object: &T) -> usize {
    object as *const T as *const () as usize
}
