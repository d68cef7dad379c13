//! Lock scenarios: the lost-update race and its fix, the thread-safe singleton, and an
//! all-or-nothing update.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

use pytandem::sync::Lock;

use super::{Report, Scenario};

const THREADS: u64 = 4;
const PER_THREAD: u64 = 125_000;

pub(crate) fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "lock-race",
            title: "The lost-update race, and its fix with a Lock",
            seed: "000 (race condition), 001 (race conditions), 004 (Thread Safety)",
            run: race,
        },
        Scenario {
            name: "singleton",
            title: "A thread-safe singleton: std's OnceLock, not double-checked locking",
            seed: "000 (singleton), 004 (Thread-safe Singleton)",
            run: singleton,
        },
        Scenario {
            name: "atomic-rollback",
            title: "An all-or-nothing update under a lock (the seeds' atomic_operation)",
            seed: "004 (Atomic Operations)",
            run: rollback,
        },
    ]
}

fn race(r: &mut Report) {
    let total = THREADS * PER_THREAD;
    r.say(format!(
        "{THREADS} threads each add 1 to a shared counter {PER_THREAD} times: read it, then write read+1."
    ));

    // Unsynchronized read-modify-write: each load and store is atomic, the pair is not, so
    // another thread's write between them is lost — Python's `counter = counter + 1` race.
    let racy = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for i in 0..PER_THREAD {
                    let current = racy.load(Ordering::Relaxed);
                    if i % 64 == 0 {
                        std::thread::yield_now(); // the seed's `time.sleep`: widen the window
                    }
                    racy.store(current + 1, Ordering::Relaxed);
                }
            });
        }
    });
    let racy = racy.into_inner();
    r.say(format!(
        "without a lock: counter = {racy} (expected {total}): {} updates lost{}",
        total - racy,
        if racy == total {
            " — lucky this time; the race is still there"
        } else {
            ""
        }
    ));

    // The fix: the counter lives inside the lock, so the read and the write happen under it.
    let counter = Lock::new(0u64);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for i in 0..PER_THREAD {
                    let mut n = counter.acquire();
                    let current = *n;
                    if i % 64 == 0 {
                        std::thread::yield_now(); // same window, now harmless
                    }
                    *n = current + 1;
                }
            });
        }
    });
    r.check_eq(
        "with pytandem::sync::Lock: counter",
        counter.into_inner(),
        total,
    );
}

/// The one configuration object of the program.
struct Config {
    id: usize,
}

fn singleton(r: &mut Report) {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    static CREATED: AtomicUsize = AtomicUsize::new(0);
    r.say("8 threads race to get the singleton; Python's double-checked `_lock` dance is what OnceLock does inside.");
    let addresses: Vec<usize> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let config = CONFIG.get_or_init(|| Config {
                        id: CREATED.fetch_add(1, Ordering::SeqCst),
                    });
                    config as *const Config as usize
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("no panic"))
            .collect()
    });
    r.check_eq("instances created", CREATED.load(Ordering::SeqCst), 1);
    r.check(
        "every thread got the same instance",
        addresses.iter().all(|&a| a == addresses[0]),
    );
    r.check_eq("its id", CONFIG.get().map(|c| c.id), Some(0));
}

fn rollback(r: &mut Report) {
    let accounts = Lock::new(vec![100i64, 50]);
    r.say("accounts = [100, 50]; move 80 from account 1 to account 0, refusing overdrafts");
    let outcome: Result<(), String> = accounts.transaction(|a| {
        a[0] += 80;
        a[1] -= 80;
        if a[1] < 0 {
            Err(format!("account 1 would be overdrawn ({})", a[1]))
        } else {
            Ok(())
        }
    });
    r.say(format!("transfer: {outcome:?}"));
    r.check_eq(
        "balances after the refused transfer",
        accounts.acquire().clone(),
        vec![100, 50],
    );

    r.say("now an update that panics halfway (its panic message is silenced here)");
    let caught = super::quietly(|| {
        let _: Result<(), ()> = accounts.transaction(|a| {
            a[0] -= 30;
            panic!("crashed halfway through the update");
        });
    });
    r.check("a panicking update propagates its panic", caught.is_err());
    r.check("…and releases the lock", !accounts.locked());
    r.check_eq(
        "balances after the panic",
        accounts.acquire().clone(),
        vec![100, 50],
    );

    let moved: Result<i64, String> = accounts.transaction(|a| {
        a[0] -= 30;
        a[1] += 30;
        Ok(a[0] + a[1])
    });
    r.check_eq("a valid transfer commits; total", moved, Ok(150));
    r.check_eq("balances", accounts.into_inner(), vec![70, 80]);
}
