//! The bank transfer: the naive version deadlocks (the watchdog names the threads, the
//! accounts and the lines), the ordered version cannot.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use pytandem::sync::{acquire_all, Lock};

use super::{Report, Scenario};

pub(crate) fn scenarios() -> Vec<Scenario> {
    vec![Scenario {
        name: "bank-transfer",
        title: "Deadlock: the naive bank transfer, caught by the watchdog; then ordered locking",
        seed: "004 (Deadlock Prevention), 001 (race conditions and locks)",
        run: bank_transfer,
    }]
}

const START: i64 = 500;
/// How long the alice → bob transfer waits for its second lock before giving up.
const PATIENCE: Duration = Duration::from_millis(1500);

/// One transfer, the naive way (Python: `with from.lock: with to.lock: ...`), except that the
/// second lock is taken with a time-out. `both_hold` makes both transfers hold their first
/// lock before either asks for its second: the deadlock every time, not by bad luck.
fn naive_transfer(
    from: &Lock<i64>,
    to: &Lock<i64>,
    amount: i64,
    both_hold: &Barrier,
    patience: Duration,
) -> bool {
    let mut from = from.acquire();
    both_hold.wait();
    match to.acquire_timeout(patience) {
        Some(mut to) => {
            *from -= amount;
            *to += amount;
            true
        }
        None => false, // give up: nothing was changed, and `from` is released on return
    }
}

fn bank_transfer(r: &mut Report) {
    let accounts = [
        Lock::named(START, "account[alice]"),
        Lock::named(START, "account[bob]"),
    ];
    let total = 2 * START;

    r.say("Two transfers at once: alice → bob locks alice then bob; bob → alice locks bob then alice.");
    r.say("Each holds its first lock when it asks for its second: a deadlock.");
    #[cfg(feature = "diagnostics")]
    let watch = watch::start(r);
    #[cfg(not(feature = "diagnostics"))]
    r.say("(built without the `diagnostics` feature: no watchdog; the time-outs still recover)");

    let both_hold = Barrier::new(2);
    let started = Instant::now();
    let (a_to_b, b_to_a) = std::thread::scope(|s| {
        let [alice, bob] = &accounts;
        let both_hold = &both_hold;
        let a_to_b = std::thread::Builder::new()
            .name("transfer alice→bob".into())
            .spawn_scoped(s, move || {
                naive_transfer(alice, bob, 100, both_hold, PATIENCE)
            })
            .expect("a thread");
        let b_to_a = std::thread::Builder::new()
            .name("transfer bob→alice".into())
            .spawn_scoped(s, move || {
                naive_transfer(bob, alice, 30, both_hold, PATIENCE * 10)
            })
            .expect("a thread");
        #[cfg(feature = "diagnostics")]
        watch.expect_report(r, started);
        (
            a_to_b.join().expect("no panic"),
            b_to_a.join().expect("no panic"),
        )
    });
    r.say(format!(
        "after {:.1} s: alice → bob {}; bob → alice {}",
        started.elapsed().as_secs_f64(),
        if a_to_b {
            "done"
        } else {
            "gave up at its time-out (and released alice)"
        },
        if b_to_a {
            "done (got alice once released)"
        } else {
            "gave up"
        },
    ));
    r.check(
        "the deadlock broke: exactly one transfer gave up, the other went through",
        !a_to_b && b_to_a,
    );
    let alice = *accounts[0].acquire();
    let balances = (alice, *accounts[1].acquire());
    r.check_eq(
        "balances (alice, bob) after the naive round",
        balances,
        (START + 30, START - 30),
    );
    #[cfg(feature = "diagnostics")]
    watch.show_inversions(r);

    r.say("");
    r.say("The fix (the seeds' `sorted([a, b])`): take both locks in one global order,");
    r.say("pytandem::sync::acquire_all((&from, &to)) — whatever order they are listed in.");
    const THREADS: u64 = 4;
    const TRANSFERS: u64 = 25_000;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let accounts = &accounts;
            s.spawn(move || {
                let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ (t + 1);
                for _ in 0..TRANSFERS {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let from = (seed % 2) as usize;
                    let amount = (seed >> 8) as i64 % 20;
                    let (mut from, mut to) =
                        acquire_all((&accounts[from], &accounts[1 - from])).expect("two accounts");
                    *from -= amount;
                    *to += amount;
                }
            });
        }
    });
    r.say(format!(
        "{THREADS} threads made {} transfers in both directions at once.",
        THREADS * TRANSFERS
    ));
    let sum = *accounts[0].acquire() + *accounts[1].acquire();
    r.check_eq("total balance (alice + bob)", sum, total);
    #[cfg(feature = "diagnostics")]
    watch.finish(r);
}

/// The watchdog's side of the scenario.
#[cfg(feature = "diagnostics")]
mod watch {
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use pytandem::diagnostics::{self, Deadlock, Watchdog};

    use super::Report;

    pub(super) struct Watch {
        watchdog: Watchdog,
        reports: mpsc::Receiver<(Instant, Deadlock)>,
    }

    pub(super) fn start(r: &mut Report) -> Watch {
        let (tx, reports) = mpsc::channel();
        let watchdog = Watchdog::builder()
            .on_deadlock(move |d| {
                let _ = tx.send((Instant::now(), d.clone()));
            })
            .spawn()
            .expect("a thread for the watchdog");
        r.say("A pytandem::diagnostics::Watchdog looks for deadlocks every 200 ms.");
        // Earlier scenarios' inversions are not this one's.
        let _ = diagnostics::take_lock_order_violations();
        Watch { watchdog, reports }
    }

    impl Watch {
        /// Waits for the watchdog's report of the naive round's deadlock and prints it.
        pub(super) fn expect_report(&self, r: &mut Report, started: Instant) {
            match self.reports.recv_timeout(Duration::from_secs(10)) {
                Ok((when, report)) => {
                    r.say(format!(
                        "the watchdog reported, {:.2} s after the transfers started:",
                        when.saturating_duration_since(started).as_secs_f64()
                    ));
                    r.say("");
                    for line in report.to_string().lines() {
                        r.say(format!("  {line}"));
                    }
                    let text = report.to_string();
                    r.check(
                        "the report names both transfers, both accounts, and where each lock was taken",
                        report.threads.len() == 2
                            && text.contains("\"transfer alice→bob\"")
                            && text.contains("\"transfer bob→alice\"")
                            && text.contains("Lock \"account[alice]\"")
                            && text.contains("Lock \"account[bob]\"")
                            && report.threads.iter().all(|t| t.taken_at.is_some()),
                    );
                }
                Err(_) => {
                    r.check("the watchdog reported the deadlock", false);
                }
            }
        }

        /// The lock-order checker saw both orders, whether or not they had deadlocked.
        pub(super) fn show_inversions(&self, r: &mut Report) {
            let found = diagnostics::take_lock_order_violations();
            if let Some(v) = found.first() {
                r.say("The lock-order checker had flagged it too (it needs no deadlock, only both orders):");
                for line in v.to_string().lines() {
                    r.say(format!("  {line}"));
                }
            }
            r.check(
                "the lock-order checker reported alice/bob taken in both orders",
                found.iter().any(|v| {
                    let text = v.to_string();
                    text.contains("account[alice]") && text.contains("account[bob]")
                }),
            );
        }

        pub(super) fn finish(self, r: &mut Report) {
            let more: Vec<_> = self.reports.try_iter().collect();
            r.check_eq(
                "deadlocks reported while the ordered transfers ran",
                more.len(),
                0,
            );
            r.check_eq(
                "deadlocks the watchdog found in all",
                self.watchdog.deadlocks_found(),
                1,
            );
            drop(self.watchdog);
            diagnostics::disable();
        }
    }
}
