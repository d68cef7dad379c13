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
//! The process half (PROCESSES.md) adds a second, shared-memory futex backend beside these.
//!
//! # Contract (inherited from `parking_lot_core`)
//! The `validate`, `timed_out`, `filter` and `callback` closures run while the key's queue is
//! locked: they must not panic and must not call back into this module. `before_sleep` runs
//! unlocked and may unpark, but must not park or panic. Keys must be addresses the caller
//! owns, so primitives never see each other's waiters.

mod deadline;

pub(crate) use deadline::Deadline;

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
    park, unpark_all, unpark_filter, unpark_one, unpark_requeue, FilterOp, ParkResult, ParkToken,
    RequeueOp, SpinWait, UnparkResult, UnparkToken, DEFAULT_PARK_TOKEN, DEFAULT_UNPARK_TOKEN,
};

/// The key a primitive parks on: its own address.
#[inline]
pub(crate) fn key_of<T: ?Sized>(object: &T) -> usize {
    object as *const T as *const () as usize
}
