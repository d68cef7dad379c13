//! Ordered acquisition never deadlocks: a randomized stress of transfers between many
//! accounts, with every thread listing its locks in its own (random) order.

use std::time::Duration;

use pytandem::sync::{acquire_all, acquire_all_timeout, try_acquire_all, AcquireAllError, Lock};

mod common;
use common::rng;

#[test]
fn random_transfers_conserve_the_total_and_never_deadlock() {
    const ACCOUNTS: usize = 16;
    const START: i64 = 1_000;
    let accounts: Vec<Lock<i64>> = (0..ACCOUNTS).map(|_| Lock::new(START)).collect();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let accounts = &accounts;
            s.spawn(move || {
                let mut next = rng(0x9E37_79B9_7F4A_7C15 ^ (t + 1));
                for i in 0..20_000 {
                    let from = (next() % ACCOUNTS as u64) as usize;
                    let mut to = (next() % ACCOUNTS as u64) as usize;
                    if to == from {
                        to = (to + 1) % ACCOUNTS;
                    }
                    let amount = (next() % 50) as i64;
                    let pair = (&accounts[from], &accounts[to]);
                    let guards = match i % 3 {
                        0 => acquire_all(pair),
                        1 => acquire_all_timeout(pair, Duration::from_secs(60)),
                        _ => loop {
                            match try_acquire_all(pair) {
                                Err(AcquireAllError::WouldBlock) => std::thread::yield_now(),
                                other => break other,
                            }
                        },
                    };
                    let (mut a, mut b) = guards.expect("distinct accounts, generous timeout");
                    *a -= amount;
                    *b += amount;
                }
            });
        }
        // Meanwhile, audits take every account at once, in the reverse of address order.
        s.spawn(|| {
            for _ in 0..200 {
                let all: Vec<&Lock<i64>> = accounts.iter().rev().collect();
                let guards = acquire_all(all).unwrap();
                let total: i64 = guards.iter().map(|g| **g).sum();
                assert_eq!(
                    total,
                    START * ACCOUNTS as i64,
                    "an audit saw money appear or vanish"
                );
            }
        });
    });
    let total: i64 = accounts.into_iter().map(Lock::into_inner).sum();
    assert_eq!(total, START * ACCOUNTS as i64);
}

#[test]
fn three_locks_of_different_types() {
    let name = Lock::new(String::from("ledger"));
    let count = Lock::new(0u32);
    let log = Lock::new(Vec::<u32>::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..1_000 {
                    let (mut c, mut l, n) = acquire_all((&count, &log, &name)).unwrap();
                    *c += 1;
                    l.push(*c);
                    assert_eq!(n.as_str(), "ledger");
                }
            });
            s.spawn(|| {
                for _ in 0..1_000 {
                    let (n, mut l, mut c) = acquire_all((&name, &log, &count)).unwrap();
                    *c += 1;
                    l.push(*c);
                    assert_eq!(n.len(), 6);
                }
            });
        }
    });
    assert_eq!(count.into_inner(), 4_000);
    let log = log.into_inner();
    assert_eq!(
        log,
        (1..=4_000).collect::<Vec<_>>(),
        "increments were serialized"
    );
}
