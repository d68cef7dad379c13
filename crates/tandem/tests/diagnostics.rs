//! The deadlock detector, the lock-order checker, thread dumps and statistics, on real
//! threads and real deadlocks (feature `diagnostics`).
//!
//! Tests in this file run at the same time in one process, and the detector sees every
//! thread of the process: each test names its threads and locks uniquely and looks only at
//! reports about its own. Recording stays on for the whole file (switching it is tested in
//! `diagnostics_switch.rs`, a process of its own).
//!
//! Deadlocked threads wait with long time-outs (so a broken detector fails the test rather
//! than hanging it); once the deadlock is confirmed, the test breaks it by releasing one of
//! the locks from the main thread (Python allows releasing a `Lock` from another thread).
#![cfg(feature = "diagnostics")]

use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex, OnceLock};
use std::time::{Duration, Instant};

use pytandem::diagnostics::{self, Deadlock, PrimitiveKind, Watchdog};
use pytandem::sync::{acquire_all, Lock, RLock};

mod common;
use common::rng;

const LONG: Duration = Duration::from_secs(60);

fn labels(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    v.sort();
    v
}

/// Every lock-order inversion reported in this process so far whose new edge starts at a
/// lock named with `prefix` (collected through the callback, so tests running at the same
/// time do not take each other's reports).
fn violations_about(prefix: &str) -> Vec<diagnostics::LockOrderViolation> {
    static ALL: OnceLock<Mutex<Vec<diagnostics::LockOrderViolation>>> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        diagnostics::on_lock_order_violation(|v| {
            ALL.get().unwrap().lock().unwrap().push(v.clone());
        });
        Mutex::new(Vec::new())
    });
    all.lock()
        .unwrap()
        .iter()
        .filter(|v| {
            v.now
                .first
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with(prefix))
        })
        .cloned()
        .collect()
}

/// Polls `check_deadlock` until it reports a deadlock between exactly the threads `names`.
fn wait_for_deadlock(names: &[&str]) -> Deadlock {
    let want = labels(names);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for d in diagnostics::check_deadlock() {
            let mut got = d.thread_labels();
            got.sort();
            if got == want {
                return d;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no deadlock between {names:?} found; thread dump:\n{}",
            diagnostics::snapshot()
        );
        std::thread::yield_now();
    }
}

/// Polls the thread dump until the thread `name` waits.
fn wait_until_waiting(name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let label = format!("{name:?}");
    while !diagnostics::snapshot()
        .threads
        .iter()
        .any(|t| t.label() == label && t.waiting.is_some())
    {
        assert!(Instant::now() < deadline, "{name} never waited");
        std::thread::yield_now();
    }
}

fn spawn_named<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .unwrap()
}

/// Thread `name` leaks a hold of `first` (taken at the line it returns through `taken`),
/// meets the others at `barrier`, then waits (long) for `second`; afterwards it releases
/// whatever it still holds of `second`.
fn hold_then_want(
    name: &str,
    first: Arc<Lock<()>>,
    second: Arc<Lock<()>>,
    barrier: Arc<Barrier>,
    taken: mpsc::Sender<(String, u32)>,
) -> std::thread::JoinHandle<bool> {
    let me = name.to_string();
    spawn_named(name, move || {
        let line = line!() + 1;
        first.acquire().forget();
        taken.send((me, line)).unwrap();
        barrier.wait();
        // Released by the test (from another thread) once the deadlock is confirmed.
        second.acquire_timeout(LONG).is_some()
    })
}

#[test]
fn two_thread_deadlock_names_threads_locks_and_sites() {
    diagnostics::enable();
    let a = Arc::new(Lock::named((), "two.a"));
    let b = Arc::new(Lock::named((), "two.b"));
    let barrier = Arc::new(Barrier::new(2));
    let (tx, rx) = mpsc::channel();
    let t1 = hold_then_want("two-1", a.clone(), b.clone(), barrier.clone(), tx.clone());
    let t2 = hold_then_want("two-2", b.clone(), a.clone(), barrier, tx);
    let sites: std::collections::HashMap<String, u32> = rx.iter().take(2).collect();

    let found = wait_for_deadlock(&["two-1", "two-2"]);
    assert_eq!(found.threads.len(), 2);
    assert!(found.is_permanent() || found.threads.iter().all(|t| t.gives_up_in.is_some()));
    for t in &found.threads {
        let me = t.name.as_deref().unwrap();
        let other = &found.threads[t.held_by];
        assert_ne!(other.name, t.name);
        let (wants, holds) = if me == "two-1" {
            ("two.b", "two.a")
        } else {
            ("two.a", "two.b")
        };
        assert_eq!(t.waiting_for.kind, PrimitiveKind::Lock);
        assert_eq!(t.waiting_for.name.as_deref(), Some(wants));
        assert_eq!(t.holding.len(), 1);
        assert_eq!(t.holding[0].lock.name.as_deref(), Some(holds));
        let held_at = t.holding[0].taken_at.expect("the acquisition site");
        assert!(held_at.file().ends_with("diagnostics.rs"), "{held_at}");
        assert_eq!(held_at.line(), sites[me]);
        // The holder of what I want took it at its own recorded line.
        let other_name = other.name.as_deref().unwrap();
        assert_eq!(t.taken_at.unwrap().line(), sites[other_name]);
        let waiting_at = t.waiting_at.expect("where it waits");
        assert!(
            waiting_at.file().ends_with("diagnostics.rs"),
            "{waiting_at}"
        );
        assert!(t.waited < Duration::from_secs(60));
        assert!(t.gives_up_in.is_some(), "acquire_timeout is a timed wait");
        // The creation site of a named lock is the `Lock::named` line in this file.
        assert!(t
            .waiting_for
            .created_at
            .unwrap()
            .file()
            .ends_with("diagnostics.rs"));
    }
    let text = found.to_string();
    assert!(
        text.contains("Found a deadlock between 2 threads"),
        "{text}"
    );
    assert!(text.contains("waiting to lock Lock \"two.b\""), "{text}");
    assert!(text.contains("which is held by \"two-2\""), "{text}");
    assert!(text.contains("Locks held by the threads above"), "{text}");

    // Break it: release `a` (leaked by two-1) from here; two-2 gets it and finishes; then
    // release `b` (leaked by two-2), and two-1 finishes.
    a.release().unwrap();
    assert!(t2.join().unwrap());
    b.release().unwrap();
    assert!(t1.join().unwrap());
    assert!(!a.locked() && !b.locked());
}

#[test]
fn three_thread_deadlock_is_one_cycle() {
    diagnostics::enable();
    let locks: Vec<Arc<Lock<()>>> = ["three.a", "three.b", "three.c"]
        .into_iter()
        .map(|n| Arc::new(Lock::named((), n)))
        .collect();
    let barrier = Arc::new(Barrier::new(3));
    let (tx, rx) = mpsc::channel();
    let names = ["three-1", "three-2", "three-3"];
    let threads: Vec<_> = (0..3)
        .map(|i| {
            hold_then_want(
                names[i],
                locks[i].clone(),
                locks[(i + 1) % 3].clone(),
                barrier.clone(),
                tx.clone(),
            )
        })
        .collect();
    drop(tx);
    let sites: Vec<_> = rx.iter().take(3).collect();
    assert_eq!(sites.len(), 3);

    let found = wait_for_deadlock(&names);
    assert_eq!(found.threads.len(), 3);
    for (i, t) in found.threads.iter().enumerate() {
        // Each waits for the lock held by the next thread of the cycle.
        let next = &found.threads[t.held_by];
        assert_eq!(t.held_by, (i + 1) % 3);
        assert_eq!(next.holding[0].lock.name, t.waiting_for.name);
    }
    assert!(found.to_string().contains("between 3 threads"));

    // Break it: free three.a (leaked by three-1); three-3, which waits for it, finishes;
    // then free what three-3 leaked, and so on down the cycle.
    locks[0].release().unwrap();
    for (i, t) in threads.into_iter().enumerate().rev() {
        assert!(t.join().unwrap(), "thread {i}");
        if i != 0 {
            locks[i].release().unwrap();
        }
    }
    assert!(locks.iter().all(|l| !l.locked()));
}

#[test]
fn a_thread_waiting_for_a_lock_it_holds_is_a_deadlock_of_one() {
    diagnostics::enable();
    let lock = Arc::new(Lock::named((), "self.lock"));
    let l = lock.clone();
    let t = spawn_named("self-1", move || {
        l.acquire().forget();
        l.acquire_timeout(LONG).is_some() // Python: lock.acquire() twice
    });
    let found = wait_for_deadlock(&["self-1"]);
    assert_eq!(found.threads[0].held_by, 0);
    assert!(found
        .to_string()
        .contains("a thread waits for a lock it holds itself"));
    lock.release().unwrap();
    assert!(t.join().unwrap());
    assert!(!lock.locked());
}

#[test]
fn lock_and_rlock_deadlock() {
    diagnostics::enable();
    let lock = Arc::new(Lock::named((), "mixed.lock"));
    let rlock = Arc::new(RLock::new(()));
    let barrier = Arc::new(Barrier::new(2));
    let t1 = {
        let (lock, rlock, barrier) = (lock.clone(), rlock.clone(), barrier.clone());
        spawn_named("mixed-1", move || {
            lock.acquire().forget();
            barrier.wait();
            rlock.acquire_timeout(LONG).is_some()
        })
    };
    let t2 = {
        let (lock, rlock, barrier) = (lock.clone(), rlock.clone(), barrier.clone());
        spawn_named("mixed-2", move || {
            let _outer = rlock.acquire();
            let _again = rlock.acquire(); // re-entry: not a wait, not a second hold
            barrier.wait();
            lock.acquire_timeout(LONG).is_some()
        })
    };
    let found = wait_for_deadlock(&["mixed-1", "mixed-2"]);
    let by_name = |n: &str| {
        found
            .threads
            .iter()
            .find(|t| t.name.as_deref() == Some(n))
            .unwrap()
    };
    assert_eq!(
        by_name("mixed-2").waiting_for.name.as_deref(),
        Some("mixed.lock")
    );
    assert_eq!(by_name("mixed-2").holding.len(), 1, "re-entry is one hold");
    let rlock_wait = &by_name("mixed-1").waiting_for;
    assert_eq!(rlock_wait.kind, PrimitiveKind::RLock, "{rlock_wait:?}");
    // RLock's acquire is `#[track_caller]` too: the hold is reported at this file's line.
    let taken = by_name("mixed-1")
        .taken_at
        .expect("where mixed-2 took the RLock");
    assert!(taken.file().ends_with("diagnostics.rs"), "{taken}");
    assert!(
        found.to_string().contains("waiting to lock RLock"),
        "{found}"
    );
    // Break it: release the Lock from here; mixed-2 finishes and frees the RLock.
    lock.release().unwrap();
    assert!(t2.join().unwrap());
    assert!(t1.join().unwrap());
    assert!(!lock.locked() && !rlock.locked());
}

#[test]
fn an_inversion_is_reported_before_any_deadlock() {
    diagnostics::enable();
    let a = Lock::named(0, "inv.a");
    let b = Lock::named(0, "inv.b");
    let ab_line;
    {
        let _a = a.acquire();
        ab_line = line!() + 1;
        let _b = b.acquire(); // a, then b
    }
    // Nothing reported yet: one order only.
    assert!(violations_about("inv.").is_empty());
    std::thread::scope(|s| {
        s.spawn(|| {
            let _b = b.acquire();
            let _a = a.acquire(); // b, then a: could deadlock against the above
        });
    });
    let ba_line = line!() - 3;
    let found = violations_about("inv.");
    assert_eq!(found.len(), 1, "{found:#?}");
    let v = &found[0];
    assert_eq!(v.now.first.name.as_deref(), Some("inv.b"));
    assert_eq!(v.now.then.name.as_deref(), Some("inv.a"));
    assert_eq!(v.now.then_site.unwrap().line(), ba_line);
    assert_eq!(v.earlier.len(), 1);
    assert_eq!(v.earlier[0].first.name.as_deref(), Some("inv.a"));
    assert_eq!(v.earlier[0].then_site.unwrap().line(), ab_line);
    let text = v.to_string();
    assert!(text.contains("Lock-order inversion"), "{text}");
    assert!(text.contains("but earlier"), "{text}");
    // Reported once: the same inversion again adds nothing.
    {
        let _b = b.acquire();
        let _a = a.acquire();
    }
    assert_eq!(violations_about("inv.").len(), 1);
}

#[test]
fn a_wait_that_times_out_still_counts_for_the_lock_order() {
    diagnostics::enable();
    let (a, b) = (Lock::named((), "tmo.a"), Lock::named((), "tmo.b"));
    {
        let _a = a.acquire();
        let _b = b.acquire(); // a, then b
    }
    let _held = a.acquire();
    std::thread::scope(|s| {
        s.spawn(|| {
            let _b = b.acquire();
            // b held, waiting for a: the other order, even though it never gets a.
            assert!(a.acquire_timeout(Duration::from_millis(20)).is_none());
        });
    });
    let found = violations_about("tmo.");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].now.then.name.as_deref(), Some("tmo.a"));
}

#[test]
fn a_three_lock_chain_is_an_inversion_too() {
    diagnostics::enable();
    let (a, b, c) = (
        Lock::named((), "chain.a"),
        Lock::named((), "chain.b"),
        Lock::named((), "chain.c"),
    );
    let mine = |v: &diagnostics::LockOrderViolation| {
        v.now
            .first
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with("chain."))
    };
    for (x, y) in [(&a, &b), (&b, &c)] {
        let _x = x.acquire();
        let _y = y.acquire();
    }
    assert!(violations_about("chain.").is_empty());
    {
        let _c = c.acquire();
        let _a = a.acquire(); // c → a closes a → b → c → a
    }
    let found = violations_about("chain.");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].earlier.len(), 2, "{}", found[0]);
    // The only test here that takes the kept reports: its own are among them.
    assert!(diagnostics::take_lock_order_violations().iter().any(mine));
}

#[test]
fn try_acquire_adds_no_order_edge() {
    diagnostics::enable();
    let (a, b) = (Lock::named((), "try.a"), Lock::named((), "try.b"));
    {
        let _a = a.acquire();
        let _b = b.try_acquire().unwrap(); // cannot wait, so cannot deadlock
    }
    {
        let _b = b.acquire();
        let _a = a.acquire();
    }
    assert!(violations_about("try.").is_empty());
}

#[test]
fn fresh_locks_at_reused_addresses_are_not_an_inversion() {
    diagnostics::enable();
    for i in 0..2_000 {
        let x = Lock::new(());
        let y = Lock::new(());
        x.set_name(format!("reuse.x{i}"));
        y.set_name(format!("reuse.y{i}"));
        // Alternate the order: each pair is new, so no pair is ever taken both ways.
        let (first, second) = if i % 2 == 0 { (&x, &y) } else { (&y, &x) };
        let _f = first.acquire();
        let _s = second.acquire();
    }
    assert!(violations_about("reuse.").is_empty());
}

#[test]
fn holding_without_waiting_is_no_deadlock() {
    diagnostics::enable();
    let (a, b) = (Lock::named((), "idle.a"), Lock::named((), "idle.b"));
    let _a = a.acquire();
    let _b = b.acquire();
    for d in diagnostics::check_deadlock() {
        assert!(!d.threads.is_empty(), "an empty report");
        assert!(
            !d.to_string().contains("idle."),
            "a thread that only holds locks is in a report:\n{d}"
        );
    }
}

#[test]
fn ordered_stress_has_no_false_positive() {
    diagnostics::enable();
    const ACCOUNTS: usize = 8;
    const START: i64 = 1_000;
    let accounts: Vec<Lock<i64>> = (0..ACCOUNTS)
        .map(|i| Lock::named(START, format!("stress.acct[{i}]")))
        .collect();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let mine = |d: &Deadlock| {
        d.threads.is_empty() || d.thread_labels().iter().any(|l| l.contains("stress-"))
    };
    let mut checks = 0;
    std::thread::scope(|s| {
        for t in 0..3u64 {
            let (accounts, done) = (&accounts, &done);
            std::thread::Builder::new()
                .name(format!("stress-{t}"))
                .spawn_scoped(s, move || {
                    let mut next = rng(0x9E37_79B9_7F4A_7C15 ^ (t + 1));
                    for i in 0..300_000 {
                        let from = (next() % ACCOUNTS as u64) as usize;
                        let to = (from + 1 + (next() % (ACCOUNTS as u64 - 1)) as usize) % ACCOUNTS;
                        let amount = (next() % 10) as i64;
                        if i % 2 == 0 {
                            let (mut x, mut y) =
                                acquire_all((&accounts[from], &accounts[to])).unwrap();
                            *x -= amount;
                            *y += amount;
                        } else {
                            // Hand-ordered nesting, by index: in a `Vec` that is address
                            // order, the same global order as `acquire_all`'s.
                            let (lo, hi) = (from.min(to), from.max(to));
                            let mut x = accounts[lo].acquire();
                            let mut y = accounts[hi].acquire_timeout(LONG).unwrap();
                            *x -= amount;
                            *y += amount;
                        }
                    }
                    done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                })
                .unwrap();
        }
        while done.load(std::sync::atomic::Ordering::SeqCst) < 3 {
            let found = diagnostics::check_deadlock();
            assert!(!found.iter().any(mine), "false positive: {found:?}");
            checks += 1;
        }
    });
    assert!(checks > 0);
    println!("{checks} deadlock checks during the stress");
    let total: i64 = accounts.iter().map(|a| *a.acquire()).sum();
    assert_eq!(total, START * ACCOUNTS as i64);
    assert!(violations_about("stress.").is_empty());
    let stats: u64 = accounts.iter().map(|a| a.stats().acquisitions).sum();
    assert!(stats >= 2 * 3 * 300_000, "acquisitions counted: {stats}");
}

#[test]
fn watchdog_reports_within_a_second() {
    let (tx, rx) = mpsc::channel();
    let watchdog = Watchdog::builder()
        .on_deadlock(move |d: &Deadlock| {
            if d.thread_labels().iter().any(|l| l.contains("dog-")) {
                let _ = tx.send((Instant::now(), d.clone()));
            }
        })
        .spawn()
        .unwrap();
    let a = Arc::new(Lock::named((), "dog.a"));
    let b = Arc::new(Lock::named((), "dog.b"));
    let barrier = Arc::new(Barrier::new(2));
    let (stx, _srx) = mpsc::channel();
    let t1 = hold_then_want("dog-1", a.clone(), b.clone(), barrier.clone(), stx.clone());
    let t2 = hold_then_want("dog-2", b.clone(), a.clone(), barrier, stx);
    wait_until_waiting("dog-1");
    wait_until_waiting("dog-2");
    let formed = Instant::now();
    let (when, report) = rx.recv_timeout(Duration::from_secs(30)).expect("a report");
    let latency = when.saturating_duration_since(formed);
    println!("watchdog latency: {latency:?}");
    assert!(latency < Duration::from_secs(2), "took {latency:?}");
    assert_eq!(report.threads.len(), 2);
    assert!(watchdog.deadlocks_found() >= 1);
    a.release().unwrap();
    assert!(t2.join().unwrap());
    b.release().unwrap();
    assert!(t1.join().unwrap());
    // Reported once while it lasted: nothing more about these threads.
    assert!(rx.try_recv().is_err());
    drop(watchdog);
}

#[test]
fn snapshot_shows_waits_without_owners_but_no_cycle() {
    diagnostics::enable();
    let lock = Arc::new(Lock::named((), "dump.lock"));
    let event = Arc::new(pytandem::sync::Event::new());
    let (lock2, event2) = (lock.clone(), event.clone());
    let holder = spawn_named("dump-holder", move || {
        let _g = lock2.acquire();
        event2.wait_timeout(LONG) // waits on an Event while holding the lock
    });
    wait_until_waiting("dump-holder");
    let (lock3, event3) = (lock.clone(), event.clone());
    let waiter = spawn_named("dump-waiter", move || {
        let got = lock3.acquire_timeout(LONG).is_some();
        let _ = event3; // keeps the event alive as long as the test expects
        got
    });
    wait_until_waiting("dump-waiter");
    let dump = diagnostics::snapshot();
    let text = dump.to_string();
    let holder_state = dump
        .threads
        .iter()
        .find(|t| t.name.as_deref() == Some("dump-holder"))
        .unwrap();
    assert!(holder_state.waiting.is_some(), "{text}");
    assert_eq!(holder_state.holding.len(), 1);
    assert_eq!(
        holder_state.holding[0].lock.name.as_deref(),
        Some("dump.lock")
    );
    let waiter_state = dump
        .threads
        .iter()
        .find(|t| t.name.as_deref() == Some("dump-waiter"))
        .unwrap();
    let w = waiter_state.waiting.as_ref().unwrap();
    assert_eq!(w.on.name.as_deref(), Some("dump.lock"));
    assert_eq!(w.held_by.as_deref(), Some("\"dump-holder\""));
    assert!(text.contains("waiting on Lock \"dump.lock\""), "{text}");
    // The holder waits on an event nobody owns: no cycle, whatever the waiter does.
    assert!(!diagnostics::check_deadlock()
        .iter()
        .any(|d| d.thread_labels().iter().any(|l| l.contains("dump-"))));
    event.set();
    assert!(holder.join().unwrap());
    assert!(waiter.join().unwrap());
}

#[test]
fn a_guard_released_on_another_thread_leaves_no_hold_behind() {
    diagnostics::enable();
    let lock = Arc::new(Lock::named(vec![1], "moved.guard"));
    let (tx, rx) = mpsc::channel::<()>();
    let l = lock.clone();
    let acquirer = spawn_named("moved-acquirer", move || {
        let guard = l.acquire();
        std::thread::scope(|s| {
            s.spawn(move || drop(guard)); // released by another thread
        });
        rx.recv().unwrap(); // stay alive while the test looks
    });
    // The acquirer's record no longer shows the lock once the guard is gone.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let dump = diagnostics::snapshot();
        let holds = dump
            .threads
            .iter()
            .filter(|t| {
                t.holding
                    .iter()
                    .any(|h| h.lock.name.as_deref() == Some("moved.guard"))
            })
            .count();
        if holds == 0 && !lock.locked() {
            break;
        }
        assert!(Instant::now() < deadline, "stale hold:\n{dump}");
        std::thread::yield_now();
    }
    tx.send(()).unwrap();
    acquirer.join().unwrap();
    assert_eq!(lock.stats().acquisitions, 1);
}

#[test]
fn contention_statistics_count_waits_and_timeouts() {
    diagnostics::enable();
    let lock = Lock::named(0u64, "stats.lock");
    let g = lock.acquire();
    assert!(lock.acquire_timeout(Duration::from_millis(30)).is_none());
    let s = lock.stats();
    assert_eq!(s.acquisitions, 1);
    assert_eq!(s.timeouts, 1);
    assert!(s.max_wait >= Duration::from_millis(25), "{s:?}");
    drop(g);
    std::thread::scope(|sc| {
        for _ in 0..2 {
            sc.spawn(|| {
                for _ in 0..20_000 {
                    *lock.acquire() += 1;
                }
            });
        }
    });
    let s = lock.stats();
    assert_eq!(s.acquisitions, 1 + 40_000);
    assert_eq!(*lock.acquire(), 40_000);
    let listed = diagnostics::stats();
    let mine = listed
        .iter()
        .find(|p| p.primitive.name.as_deref() == Some("stats.lock"))
        .expect("a named lock is listed");
    assert!(mine.stats.acquisitions >= 40_000);
    assert!(mine.to_string().contains("stats.lock"));
}

#[test]
fn a_condition_wait_is_shown_and_the_lock_it_gives_back_is_recorded() {
    diagnostics::enable();
    let cond = Arc::new(pytandem::sync::Condition::new(false));
    let (holds_tx, holds_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let c = cond.clone();
    let waiter = spawn_named("cond-waiter", move || {
        let mut ready = c.acquire();
        while !*ready {
            ready.wait();
        }
        holds_tx.send(()).unwrap();
        go_rx.recv().unwrap(); // keeps holding the condition's lock meanwhile
    });
    wait_until_waiting("cond-waiter");
    let state = |name: &str| {
        diagnostics::snapshot()
            .threads
            .into_iter()
            .find(|t| t.name.as_deref() == Some(name))
    };
    let waiting = state("cond-waiter").expect("the waiter is in the dump");
    assert_eq!(
        waiting.waiting.as_ref().unwrap().on.kind,
        PrimitiveKind::Condition
    );
    assert!(waiting.holding.is_empty(), "waiting releases the lock");
    {
        let mut ready = cond.acquire();
        *ready = true;
        ready.notify_one();
    }
    holds_rx.recv().unwrap();
    let woken = state("cond-waiter").expect("the waiter holds the lock");
    assert!(woken.waiting.is_none());
    assert_eq!(woken.holding.len(), 1, "{woken:?}");
    go_tx.send(()).unwrap();
    waiter.join().unwrap();
}

#[test]
fn holds_taken_by_acquire_all_are_reported_at_the_callers_line() {
    diagnostics::enable();
    let (a, b) = (Lock::named(1, "ordered.a"), Lock::named(2, "ordered.b"));
    let line = line!() + 1;
    let guards = acquire_all((&b, &a)).unwrap();
    let dump = diagnostics::snapshot();
    let me = std::thread::current().id();
    let mine = dump
        .threads
        .iter()
        .find(|t| t.id == me)
        .expect("this thread holds locks");
    let sites: Vec<(Option<String>, Option<u32>, Option<&str>)> = mine
        .holding
        .iter()
        .filter(|h| {
            h.lock
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("ordered."))
        })
        .map(|h| {
            (
                h.lock.name.clone(),
                h.taken_at.map(|l| l.line()),
                h.taken_at.map(|l| l.file()),
            )
        })
        .collect();
    assert_eq!(sites.len(), 2, "{dump}");
    for (name, at, file) in sites {
        assert_eq!(
            at,
            Some(line),
            "{name:?} reported at the wrong line:\n{dump}"
        );
        assert!(
            file.is_some_and(|f| f.ends_with("diagnostics.rs")),
            "{file:?}"
        );
    }
    drop(guards);
}

/// The waiting thread named `thread` waits on a primitive of `kind` named `name`, as the
/// thread dump reports it.
fn waits_on_named(thread: &str, kind: PrimitiveKind, name: &str) {
    let label = format!("{thread:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let dump = diagnostics::snapshot();
        let on = dump
            .threads
            .iter()
            .find(|t| t.label() == label)
            .and_then(|t| t.waiting.as_ref())
            .map(|w| (w.on.kind, w.on.name.clone()));
        if on == Some((kind, Some(name.to_owned()))) {
            assert!(dump.to_string().contains(name), "{dump}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{thread} never waited on {name}: {on:?}\n{dump}"
        );
        std::thread::yield_now();
    }
}

#[test]
fn every_primitive_can_be_named_and_waits_on_it_are_reported_and_counted() {
    use pytandem::queue::Queue;
    use pytandem::sync::{Barrier, Event, Semaphore};
    diagnostics::enable();

    let event = Arc::new(Event::new());
    event.set_name("named.event");
    assert_eq!(event.name().as_deref(), Some("named.event"));
    let e = Arc::clone(&event);
    let t = spawn_named("named-event-waiter", move || e.wait_timeout(LONG));
    waits_on_named("named-event-waiter", PrimitiveKind::Event, "named.event");
    event.set();
    assert!(t.join().unwrap());
    assert!(event.stats().contended >= 1, "{:?}", event.stats());

    let sem = Arc::new(Semaphore::new(0));
    sem.set_name("named.semaphore");
    let s2 = Arc::clone(&sem);
    let t = spawn_named("named-sem-waiter", move || {
        s2.acquire_timeout(LONG).map(|p| p.forget()).is_some()
    });
    waits_on_named(
        "named-sem-waiter",
        PrimitiveKind::Semaphore,
        "named.semaphore",
    );
    sem.release();
    assert!(t.join().unwrap());
    assert!(sem.stats().contended >= 1, "{:?}", sem.stats());

    let barrier = Arc::new(Barrier::new(2).unwrap());
    barrier.set_name("named.barrier");
    let b2 = Arc::clone(&barrier);
    let t = spawn_named("named-barrier-waiter", move || {
        b2.wait_timeout(LONG).is_ok()
    });
    waits_on_named(
        "named-barrier-waiter",
        PrimitiveKind::Barrier,
        "named.barrier",
    );
    barrier.wait().unwrap();
    assert!(t.join().unwrap());

    let queue: Queue<u32> = Queue::new();
    queue.set_name("named.queue");
    let q2 = queue.clone();
    let t = spawn_named("named-queue-getter", move || q2.get_timeout(LONG).ok());
    waits_on_named("named-queue-getter", PrimitiveKind::Queue, "named.queue");
    queue.put(7).unwrap();
    assert_eq!(t.join().unwrap(), Some(7));
    assert!(queue.stats().contended >= 1, "{:?}", queue.stats());

    let rlock = Arc::new(RLock::new(()));
    rlock.set_name("named.rlock");
    let g = rlock.acquire();
    let r2 = Arc::clone(&rlock);
    let t = spawn_named("named-rlock-waiter", move || {
        r2.acquire_timeout(LONG).is_some()
    });
    waits_on_named("named-rlock-waiter", PrimitiveKind::RLock, "named.rlock");
    drop(g);
    assert!(t.join().unwrap());
    assert!(rlock.stats().contended >= 1, "{:?}", rlock.stats());
}

/// A thread named in a `pytandem::thread::scope` is named in the diagnostics too.
#[test]
fn scoped_threads_are_named_in_the_dump() {
    diagnostics::enable();
    let lock = Lock::new(());
    let held = lock.acquire();
    pytandem::thread::scope(|s| {
        let waiter = s
            .builder()
            .name("scoped-waiter")
            .spawn(|| drop(lock.acquire()));
        wait_until_waiting("scoped-waiter");
        let dump = diagnostics::snapshot();
        let me = dump
            .threads
            .iter()
            .find(|t| t.name.as_deref() == Some("scoped-waiter"))
            .expect("the scoped thread is in the dump by its name");
        assert_eq!(me.waiting.as_ref().unwrap().on.kind, PrimitiveKind::Lock);
        assert_eq!(waiter.name(), "scoped-waiter");
        drop(held);
    });
}
