//! Kill storm: rounds of child processes working through a `Lock`, a `Semaphore`, a
//! `Condition` and a `Barrier`, SIGKILLed at random points. After every round the survivors
//! have finished, the lock is acquirable (a dead holder's half-done update is reported and
//! repaired), every permit is back, the barrier is broken or passed — never hung — and at
//! the end no child, zombie or shared memory entry is left. Bounded in time: each wait has
//! a 30 s deadline, and a round's size is fixed (`TANDEM_KILL_STORM_ROUNDS` scales it).
#![cfg(target_os = "linux")]

pytandem::child_entry!();

mod common;

use pytandem::process::{
    Barrier, Condition, Connection, Event, Lock, Pipe, Process, ProcessError, RawValue, Semaphore,
};
use std::sync::atomic::Ordering;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);
const WORKERS: usize = 4;
const PERMITS: u32 = 2;

type Tools = (
    Lock<[u64; 2]>,
    Semaphore,
    Condition<u64>,
    Event,
    RawValue<u64>,
);

/// Loops over the lock (two fields that must stay equal), a permit, and the condition,
/// until `stop`.
fn worker(tools: Tools) {
    let (lock, sem, cond, stop, progress) = tools;
    while !stop.is_set() {
        {
            let mut g = lock.acquire().unwrap_or_else(|died| {
                let mut g = died.into_inner();
                g[1] = g[0]; // repair what a killed holder left half-done
                g
            });
            g[0] += 1;
            std::hint::black_box(&mut *g);
            g[1] += 1;
        }
        if let Some(_permit) = sem.acquire_timeout(LONG) {
            progress.fetch_add(1, Ordering::SeqCst);
            std::hint::spin_loop();
        }
        {
            let mut g = cond.acquire().unwrap_or_else(|died| died.into_inner());
            *g += 1;
            g.notify_all();
            let _ = g.wait_timeout(Duration::from_micros(50));
        }
        progress.fetch_add(1, Ordering::SeqCst);
    }
}

/// Says it is ready, then waits at the barrier.
fn barrier_party(args: (Barrier, Connection<u8>)) -> bool {
    let (barrier, conn) = args;
    conn.send(&1).unwrap();
    barrier.wait_timeout(LONG).is_ok()
}

fn children_of_this_process() -> usize {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path().join("stat")).is_ok_and(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1).map(|p| p == me))
                    .unwrap_or(false)
            })
        })
        .count()
}

fn shm_entries() -> usize {
    std::fs::read_dir("/dev/shm")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn kill_storm() {
    let rounds: u64 = std::env::var("TANDEM_KILL_STORM_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let shm_before = shm_entries();
    let mut rng = common::rng(0x5eed_4b11);
    let (mut killed_total, mut repaired) = (0, 0);
    for round in 0..rounds {
        let lock = Lock::new([0u64; 2]).unwrap();
        let sem = Semaphore::new(PERMITS).unwrap();
        let cond = Condition::new(0u64).unwrap();
        let stop = Event::new().unwrap();
        let progress = RawValue::new(0u64).unwrap();
        let tools: Tools = (
            lock.clone(),
            sem.clone(),
            cond.clone(),
            stop.clone(),
            progress.clone(),
        );
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| Process::spawn(worker, tools.clone()).unwrap())
            .collect();

        // Let them get going (progress, not time), then kill a random nonempty subset.
        let target = 10 + rng() % 500;
        common::eventually("the workers make progress", || {
            progress.load(Ordering::SeqCst) >= target
        });
        let victims = 1 + (rng() % (WORKERS as u64 - 1)) as usize;
        let mut order: Vec<usize> = (0..WORKERS).collect();
        for i in (1..WORKERS).rev() {
            order.swap(i, (rng() % (i as u64 + 1)) as usize);
        }
        for &v in &order[..victims] {
            workers[v].kill().unwrap();
        }
        killed_total += victims;
        stop.set();
        for (i, mut w) in workers.into_iter().enumerate() {
            let result = w.join_timeout(LONG);
            if order[..victims].contains(&i) {
                // Killed, unless it had already stopped by itself.
                assert!(
                    matches!(
                        result,
                        Err(ProcessError::Signaled { signal: 9, .. }) | Ok(())
                    ),
                    "round {round}: victim {i}: {result:?}"
                );
            } else {
                assert!(
                    result.is_ok(),
                    "round {round}: survivor {i} did not finish: {result:?}"
                );
            }
        }

        // Every lock is acquirable; a dead holder's half-update is reported, and repairable.
        let g = match lock.acquire_timeout(LONG).expect("the lock is acquirable") {
            Ok(g) => g,
            Err(died) => {
                repaired += 1;
                let mut g = died.into_inner();
                g[1] = g[0];
                g
            }
        };
        assert_eq!(g[0], g[1], "round {round}: the lock's data is consistent");
        drop(g);
        // Every permit is back, exactly.
        assert_eq!(
            sem.available_permits(),
            PERMITS as usize,
            "round {round}: permits balance"
        );
        let held: Vec<_> = (0..PERMITS)
            .map(|_| sem.try_acquire().expect("a permit"))
            .collect();
        assert!(
            sem.try_acquire().is_none(),
            "round {round}: no extra permit appeared"
        );
        drop(held);
        assert!(
            cond.acquire_timeout(LONG).is_some(),
            "round {round}: the condition's lock"
        );

        // A barrier with a party killed at a random point: breaks or passes, never hangs.
        let barrier = Barrier::new(3).unwrap();
        let (conns, parties): (Vec<_>, Vec<_>) = (0..2)
            .map(|_| {
                let (a, b) = Pipe::new::<u8>().unwrap();
                (
                    a,
                    Process::spawn(barrier_party, (barrier.clone(), b)).unwrap(),
                )
            })
            .unzip();
        for c in &conns {
            c.recv_timeout(LONG).unwrap();
        }
        let victim = (rng() % 2) as usize;
        for _ in 0..rng() % 200 {
            std::hint::spin_loop();
        }
        parties[victim].kill().unwrap();
        let mine = barrier.wait_timeout(LONG);
        for (i, mut p) in parties.into_iter().enumerate() {
            let r = p.join_timeout(LONG);
            if i != victim {
                assert_eq!(
                    r.as_ref().ok().copied(),
                    Some(mine.is_ok()),
                    "round {round}: same fate"
                );
            }
        }
        barrier.reset();
        assert!(!barrier.is_broken());
    }
    assert!(killed_total >= rounds as usize);
    common::eventually("every child is reaped", || children_of_this_process() == 0);
    assert_eq!(shm_entries(), shm_before, "nothing left in /dev/shm");
    eprintln!(
        "kill storm: {rounds} rounds, {killed_total} workers killed, {repaired} locks repaired"
    );
}
