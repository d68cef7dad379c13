//! `diagnostics.*`: what deadlock detection costs. The same `Lock` operations as `lock.*`,
//! with diagnostics recording off (`tandem`, as every other benchmark runs) and on
//! (`tandem+diag`: holds pushed on the thread's own record, acquisitions counted, nested
//! pairs checked against the lock-order graph), toggled at run time in one process.
//!
//! Built without the `diagnostics` feature, only `tandem` runs (hooks compiled out).

use std::hint::black_box;
use std::time::Duration;

use super::lock::contended;
use super::{time, Bench};

/// Runs `f` with recording switched to `on`, then switches it off again (the state every
/// other benchmark expects).
#[cfg(feature = "diagnostics")]
fn recording<R>(on: bool, f: impl FnOnce() -> R) -> R {
    if on {
        pytandem::diagnostics::enable();
    } else {
        pytandem::diagnostics::disable();
    }
    let r = f();
    pytandem::diagnostics::disable();
    r
}

#[cfg(not(feature = "diagnostics"))]
fn recording<R>(_on: bool, f: impl FnOnce() -> R) -> R {
    f()
}

fn uncontended(iters: u64, on: bool) -> Duration {
    recording(on, || {
        let lock = pytandem::sync::Lock::new(0u64);
        time(|| {
            for _ in 0..iters {
                *black_box(&lock).acquire() += 1;
            }
        })
    })
}

fn contended_pair(iters: u64, on: bool) -> Duration {
    recording(on, || {
        let lock = pytandem::sync::Lock::new(0u64);
        contended(2, iters, |n| {
            for _ in 0..n {
                *lock.acquire() += 1;
            }
        })
    })
}

fn nested(iters: u64, on: bool) -> Duration {
    recording(on, || {
        let (a, b) = (
            pytandem::sync::Lock::new(0u64),
            pytandem::sync::Lock::new(0u64),
        );
        time(|| {
            for _ in 0..iters {
                let mut x = black_box(&a).acquire();
                let mut y = black_box(&b).acquire();
                *x += 1;
                *y += 1;
            }
        })
    })
}

fn with_diag(bench: Bench, run: fn(u64, bool) -> Duration) -> Bench {
    let bench = bench.native("tandem", move |iters| run(iters, false));
    #[cfg(feature = "diagnostics")]
    let bench = bench.native("tandem+diag", move |iters| run(iters, true));
    bench
}

pub(crate) fn benches() -> Vec<Bench> {
    vec![
        with_diag(
            Bench::new(
                "diagnostics.lock.uncontended",
                "lock.uncontended with diagnostics recording off (tandem) and on (tandem+diag)",
            ),
            uncontended,
        ),
        with_diag(
            Bench::new(
                "diagnostics.lock.contended",
                "lock.contended (2 threads) with diagnostics recording off and on",
            ),
            contended_pair,
        ),
        with_diag(
            Bench::new(
                "diagnostics.lock.nested",
                "two nested acquisitions + releases (a lock-order pair each time), recording off and on",
            ),
            nested,
        ),
    ]
}

pub(crate) fn sizes() -> Vec<(&'static str, usize)> {
    if cfg!(feature = "diagnostics") {
        vec![(
            "tandem Lock<()> with diagnostics compiled in",
            std::mem::size_of::<pytandem::sync::Lock<()>>(),
        )]
    } else {
        Vec::new()
    }
}
