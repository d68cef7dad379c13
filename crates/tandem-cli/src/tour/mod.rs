//! `tandem tour`: the seeds' scenarios, narrated and self-checking.
//!
//! # Adding scenarios (the harness API)
//! Each file in this folder exports `pub(crate) fn scenarios() -> Vec<Scenario>`, registered
//! in [`all_scenarios`]. A scenario narrates with [`Report::say`] and checks its own outcome
//! with [`Report::check`] / [`Report::check_eq`]; a failed check makes `tandem tour` exit
//! non-zero. Example:
//!
//! ```ignore
//! Scenario {
//!     name: "lock-race",                        // what `tandem tour NAME` takes
//!     title: "The lost-update race, and its fix with a Lock",
//!     seed: "000 (race condition), 004 (Thread Safety)", // where the seeds teach it
//!     run: |r| {
//!         r.say("4 threads add 1 to a shared counter 125,000 times each");
//!         r.check_eq("counter", counter, 500_000);
//!     },
//! }
//! ```
//!
//! Scenarios must finish in a few seconds and must not depend on luck: what they check is
//! what tandem guarantees (a racy outcome may be shown, never asserted).

mod barrier;
mod deadlock;
mod event;
mod executor;
mod lock;
#[cfg(target_os = "linux")]
mod process;
#[cfg(target_os = "linux")]
mod process_pool;
#[cfg(target_os = "linux")]
mod process_queue;
#[cfg(target_os = "linux")]
mod process_sync;
mod queue;
mod rlock;
mod semaphore;
mod thread;

use crate::out::outln;
use std::fmt::{Debug, Display};
use std::time::{Duration, Instant};

use clap::Args;

/// Arguments of `tandem tour`.
#[derive(Args, Debug)]
pub(crate) struct TourArgs {
    /// Run only these scenarios (by name; see `--list`).
    names: Vec<String>,
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
}

/// Polls `cond` (a handshake, not a sleep) until it holds or 10 s pass; whether it held.
pub(crate) fn eventually(cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::yield_now();
    }
    true
}

/// One scenario from the seeds.
pub(crate) struct Scenario {
    /// Short name, for `tandem tour NAME`.
    pub(crate) name: &'static str,
    /// One line saying what it shows.
    pub(crate) title: &'static str,
    /// Which seed notes teach it.
    pub(crate) seed: &'static str,
    /// Runs it, narrating and checking through the report.
    pub(crate) run: fn(&mut Report),
}

/// Every scenario, in tour order.
fn all_scenarios() -> Vec<Scenario> {
    let mut all = Vec::new();
    all.extend(lock::scenarios());
    all.extend(rlock::scenarios());
    all.extend(semaphore::scenarios());
    all.extend(event::scenarios());
    all.extend(barrier::scenarios());
    all.extend(thread::scenarios());
    all.extend(queue::scenarios());
    all.extend(executor::scenarios());
    all.extend(deadlock::scenarios());
    #[cfg(target_os = "linux")]
    all.extend(process::scenarios());
    #[cfg(target_os = "linux")]
    all.extend(process_sync::scenarios());
    #[cfg(target_os = "linux")]
    all.extend(process_queue::scenarios());
    #[cfg(target_os = "linux")]
    all.extend(process_pool::scenarios());
    all
}

/// What a scenario says and checks.
#[derive(Default)]
pub(crate) struct Report {
    checks: usize,
    failures: Vec<String>,
}

impl Report {
    /// Narrates one line.
    pub(crate) fn say(&mut self, line: impl Display) {
        outln!("    {line}");
    }

    /// Checks a condition, printing `ok`/`FAILED` with `what`.
    pub(crate) fn check(&mut self, what: impl Display, ok: bool) -> bool {
        self.checks += 1;
        if ok {
            outln!("    ✓ {what}");
        } else {
            outln!("    ✗ FAILED: {what}");
            self.failures.push(what.to_string());
        }
        ok
    }

    /// Checks `actual == expected`, printing `label = actual (expected expected)`.
    pub(crate) fn check_eq<T: PartialEq + Debug>(
        &mut self,
        label: &str,
        actual: T,
        expected: T,
    ) -> bool {
        let ok = actual == expected;
        self.check(format!("{label} = {actual:?} (expected {expected:?})"), ok)
    }
}

/// Runs `f`, which is expected to panic, without the default hook printing the panic: a
/// tour scenario shows the outcome itself. `Err` carries the panic payload.
pub(crate) fn quietly<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(previous);
    result
}

/// Runs `tandem tour`; `false` if any check failed.
pub(crate) fn run(args: &TourArgs) -> bool {
    let scenarios = all_scenarios();
    if args.list {
        for s in &scenarios {
            outln!("{:<22} {}  [seeds: {}]", s.name, s.title, s.seed);
        }
        return true;
    }
    let unknown: Vec<_> = args
        .names
        .iter()
        .filter(|n| !scenarios.iter().any(|s| s.name == n.as_str()))
        .collect();
    if !unknown.is_empty() {
        eprintln!("unknown scenario(s) {unknown:?}; `tandem tour --list` lists them");
        return false;
    }
    let chosen: Vec<&Scenario> = scenarios
        .iter()
        .filter(|s| args.names.is_empty() || args.names.iter().any(|n| n == s.name))
        .collect();
    let mut failed = Vec::new();
    let mut checks = 0;
    for s in &chosen {
        outln!("\n== {} — {}  [seeds: {}]", s.name, s.title, s.seed);
        let mut report = Report::default();
        let start = Instant::now();
        (s.run)(&mut report);
        checks += report.checks;
        if report.checks == 0 {
            report.failures.push("the scenario checked nothing".into());
        }
        outln!("    ({:.2} s)", start.elapsed().as_secs_f64());
        if !report.failures.is_empty() {
            failed.push((s.name, report.failures));
        }
    }
    outln!();
    if failed.is_empty() {
        outln!(
            "tour: {} scenario(s), {checks} checks, all passed",
            chosen.len()
        );
        true
    } else {
        for (name, failures) in &failed {
            for f in failures {
                outln!("tour: {name}: FAILED: {f}");
            }
        }
        outln!(
            "tour: {} of {} scenario(s) failed",
            failed.len(),
            chosen.len()
        );
        false
    }
}
