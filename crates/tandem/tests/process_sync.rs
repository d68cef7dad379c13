//! Cross-process `Lock`, `RLock`, `Semaphore`, `BoundedSemaphore`, `Event`, `Condition`,
//! `Barrier`: their semantics across processes and across threads, and what happens when a
//! process dies holding them (supervised: our child; unsupervised: a grandchild whose own
//! parent died first).
#![cfg(target_os = "linux")]

pytandem::child_entry!();

mod common;

use pytandem::process::{
    Barrier, BoundedSemaphore, Condition, Connection, Event, Lock, Pipe, Process, RLock, RawValue,
    Semaphore,
};
use pytandem::sync::BrokenReason;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(30);

// ---- child functions ----

fn add_under_lock(lock: Lock<u64>) {
    for _ in 0..2000 {
        let mut g = lock.acquire().unwrap_or_else(|e| e.into_inner());
        // A read, then a write: lost updates would show without mutual exclusion.
        let v = *g;
        std::hint::black_box(());
        *g = v + 1;
    }
}

/// Takes the lock, says so, and holds it until killed.
fn hold_lock(args: (Lock<u64>, Connection<u8>)) {
    let (lock, conn) = args;
    let mut g = lock.acquire().unwrap_or_else(|e| e.into_inner());
    *g = 99; // a half-done update, as far as anyone knows
    conn.send(&1).unwrap();
    loop {
        std::thread::park();
    }
}

/// Holds the lock until told to release it (or the connection closes).
fn hold_until_told(args: (Lock<()>, Connection<u8>)) {
    let (lock, conn) = args;
    let g = lock.acquire().unwrap();
    conn.send(&1).unwrap();
    let _ = conn.recv();
    drop(g);
}

/// Spawns a grandchild that holds the lock (the grandchild's pid goes back), then waits
/// to be killed: killing this process kills the grandchild too (parent-death signal), and
/// nobody supervises the grandchild any more.
fn spawn_holder(args: (Lock<u64>, Connection<u32>)) {
    let (lock, conn) = args;
    let (a, b) = Pipe::new::<u8>().unwrap();
    let grandchild = Process::spawn(hold_lock, (lock, b)).unwrap();
    assert_eq!(a.recv().unwrap(), 1);
    conn.send(&grandchild.pid()).unwrap();
    loop {
        std::thread::park();
    }
}

fn reenter(lock: RLock<u32>) -> (usize, bool) {
    let a = lock.acquire().unwrap();
    let b = lock.acquire().unwrap();
    let count = lock.recursion_count();
    drop(b);
    let still = lock.is_owned();
    drop(a);
    (count, still && !lock.is_owned())
}

fn take_permit_and_hold(args: (Semaphore, Connection<u8>)) {
    let (sem, conn) = args;
    let _permit = sem.acquire();
    conn.send(&1).unwrap();
    loop {
        std::thread::park();
    }
}

fn count_concurrency(args: (Semaphore, RawValue<u32>, RawValue<u32>)) {
    let (sem, inside, most) = args;
    for _ in 0..200 {
        let _p = sem.acquire();
        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
        most.fetch_max(now, Ordering::SeqCst);
        std::hint::spin_loop();
        inside.fetch_sub(1, Ordering::SeqCst);
    }
}

fn wait_event(args: (Event, Connection<u8>)) -> bool {
    let (event, conn) = args;
    conn.send(&1).unwrap();
    event.wait_timeout(LONG)
}

fn wait_on_condition(args: (Condition<u32>, Connection<u8>)) -> u32 {
    let (cond, conn) = args;
    let mut g = cond.acquire().unwrap();
    conn.send(&1).unwrap();
    assert!(g.wait_for_timeout(|v| *v >= 3, LONG));
    *g
}

/// Waits on the condition, having said so; is killed while waiting.
fn wait_forever_on_condition(args: (Condition<u32>, Connection<u8>)) {
    let (cond, conn) = args;
    let mut g = cond.acquire().unwrap();
    conn.send(&1).unwrap();
    loop {
        g.wait();
    }
}

static ACTION_RAN: AtomicUsize = AtomicUsize::new(0);

fn count_action() {
    ACTION_RAN.fetch_add(1, Ordering::SeqCst);
}

/// Waits at the barrier `rounds` times; the indices, and how often this process ran the
/// action.
fn barrier_rounds(args: (Barrier, usize)) -> (Vec<usize>, usize) {
    let (barrier, rounds) = args;
    let indices = (0..rounds)
        .map(|_| barrier.wait_timeout(LONG).unwrap())
        .collect();
    (indices, ACTION_RAN.load(Ordering::SeqCst))
}

/// Holds a barrier handle (registered) until killed.
fn hold_barrier(args: (Barrier, Connection<u8>)) {
    let (_barrier, conn) = args;
    conn.send(&1).unwrap();
    loop {
        std::thread::park();
    }
}

fn ready<T: serde::Serialize + serde::de::DeserializeOwned>(conn: &Connection<T>) -> T {
    conn.recv_timeout(LONG).expect("the child said it is ready")
}

// ---- Lock ----

#[test]
fn a_lock_excludes_across_processes() {
    let lock = Lock::new(0u64).unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| Process::spawn(add_under_lock, lock.clone()).unwrap())
        .collect();
    add_under_lock(lock.clone());
    for c in children {
        c.join().unwrap();
    }
    assert_eq!(*lock.acquire().unwrap(), 8000);
    assert!(!lock.locked());
}

#[test]
fn try_and_timed_acquire_see_a_lock_held_by_another_process() {
    let lock = Lock::new(()).unwrap();
    let (a, b) = Pipe::new::<u8>().unwrap();
    let child = Process::spawn(hold_until_told, (lock.clone(), b)).unwrap();
    ready(&a);
    assert!(lock.locked());
    assert!(lock.try_acquire().is_none());
    let start = Instant::now();
    assert!(lock.acquire_timeout(Duration::from_millis(50)).is_none());
    assert!(start.elapsed() >= Duration::from_millis(50));
    a.send(&0).unwrap();
    assert!(lock.acquire_timeout(LONG).unwrap().is_ok());
    child.join().unwrap();
    assert!(
        lock.acquire_timeout(Duration::MAX).unwrap().is_ok(),
        "Duration::MAX is forever"
    );
}

#[test]
fn a_killed_holder_hands_the_lock_on_with_owner_died_supervised() {
    let lock = Lock::new(0u64).unwrap();
    let (a, b) = Pipe::new::<u8>().unwrap();
    let child = Process::spawn(hold_lock, (lock.clone(), b)).unwrap();
    ready(&a);
    // A waiter blocked at the moment of death is woken with the lock.
    let waiter = {
        let lock = lock.clone();
        std::thread::spawn(move || match lock.acquire() {
            Ok(_) => panic!("the death must be reported"),
            Err(died) => {
                let g = died.into_inner();
                *g
            }
        })
    };
    common::eventually("the waiter blocks", || lock.locked());
    child.kill().unwrap();
    let _ = child.join();
    assert_eq!(
        waiter.join().unwrap(),
        99,
        "the half-done update is visible to repair"
    );
    let g = lock
        .acquire()
        .expect("acknowledged: the next taker is told nothing");
    assert_eq!(*g, 99);
}

#[test]
fn a_killed_holder_is_noticed_without_a_supervisor() {
    let lock = Lock::new(0u64).unwrap();
    let (a, b) = Pipe::new::<u32>().unwrap();
    let middle = Process::spawn(spawn_holder, (lock.clone(), b)).unwrap();
    let grandchild = ready(&a);
    assert!(
        lock.try_acquire().is_none(),
        "the grandchild {grandchild} holds it"
    );
    // Killing the middle process kills the grandchild (parent-death signal); nobody who
    // supervised the grandchild is left: the waiter must notice by itself.
    middle.kill().unwrap();
    let _ = middle.join();
    let start = Instant::now();
    let taken = lock.acquire_timeout(LONG).expect("recovered");
    assert!(taken.is_err(), "reported as OwnerDied");
    assert!(start.elapsed() < LONG);
}

fn release_it(lock: Lock<()>) -> bool {
    lock.release().is_ok()
}

#[test]
fn a_leaked_lock_is_released_by_another_process_and_double_release_is_an_error() {
    let lock = Lock::new(()).unwrap();
    assert_eq!(lock.release(), Err(pytandem::ReleaseError::Unlocked));
    lock.acquire().unwrap().forget(); // Python's bare acquire()
    assert!(lock.locked());
    assert!(Process::spawn(release_it, lock.clone())
        .unwrap()
        .join()
        .unwrap());
    assert!(!lock.locked());
    assert!(!Process::spawn(release_it, lock.clone())
        .unwrap()
        .join()
        .unwrap());
}

// ---- RLock ----

#[test]
fn an_rlock_reenters_in_its_thread_and_excludes_other_processes() {
    let lock = RLock::new(5u32).unwrap();
    let (count, released) = Process::spawn(reenter, lock.clone())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!((count, released), (2, true));
    let g = lock.acquire().unwrap();
    assert_eq!(*g, 5);
    assert!(lock.is_owned());
    // Another thread of this process waits too.
    let other = lock.clone();
    assert!(std::thread::spawn(move || other.try_acquire().is_none())
        .join()
        .unwrap());
    drop(g);
    assert_eq!(lock.recursion_count(), 0);
}

// ---- Semaphore ----

#[test]
fn a_semaphore_bounds_concurrency_across_processes() {
    let sem = Semaphore::new(2).unwrap();
    let inside = RawValue::new(0u32).unwrap();
    let most = RawValue::new(0u32).unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            Process::spawn(
                count_concurrency,
                (sem.clone(), inside.clone(), most.clone()),
            )
            .unwrap()
        })
        .collect();
    for c in children {
        c.join().unwrap();
    }
    assert!(most.load(Ordering::SeqCst) <= 2);
    assert_eq!(sem.available_permits(), 2);
}

#[test]
fn a_dead_holders_permit_is_given_back() {
    let sem = Semaphore::new(1).unwrap();
    let (a, b) = Pipe::new::<u8>().unwrap();
    let child = Process::spawn(take_permit_and_hold, (sem.clone(), b)).unwrap();
    ready(&a);
    assert_eq!(sem.available_permits(), 0);
    assert!(sem.try_acquire().is_none());
    child.kill().unwrap();
    let _ = child.join();
    let permit = sem
        .acquire_timeout(LONG)
        .expect("the dead child's permit came back");
    drop(permit);
    assert_eq!(sem.available_permits(), 1, "given back once, not twice");
}

#[test]
fn semaphore_release_errors() {
    let sem = Semaphore::new(0).unwrap();
    assert!(
        sem.try_release_n(0).is_err(),
        "Python 3.9+: n must be one or more"
    );
    sem.release_n(3);
    assert_eq!(sem.get_value(), 3);
    let bounded = BoundedSemaphore::new(1).unwrap();
    assert_eq!(bounded.bound(), 1);
    let err = bounded.try_release().unwrap_err();
    assert!(err.to_string().contains("too many"), "{err}");
    let p = bounded.acquire();
    p.forget();
    assert_eq!(bounded.available_permits(), 0);
    bounded.release();
    assert!(bounded.try_release_n(0).is_err());
    let zero = BoundedSemaphore::new(0).unwrap();
    assert!(
        zero.try_release().is_err(),
        "a bound of 0 refuses any release"
    );
    assert!(zero.acquire_timeout(Duration::from_millis(10)).is_none());
}

// ---- Event ----

#[test]
fn an_event_releases_a_waiting_process() {
    let event = Event::new().unwrap();
    assert!(!event.is_set());
    assert!(!event.wait_timeout(Duration::from_millis(10)));
    let (a, b) = Pipe::new::<u8>().unwrap();
    let child = Process::spawn(wait_event, (event.clone(), b)).unwrap();
    ready(&a);
    event.set();
    assert!(child.join().unwrap());
    assert!(event.is_set() && event.wait());
    event.clear();
    assert!(!event.is_set());
}

// ---- Condition ----

#[test]
fn a_condition_wakes_a_waiting_process() {
    let cond = Condition::new(0u32).unwrap();
    let (a, b) = Pipe::new::<u8>().unwrap();
    let child = Process::spawn(wait_on_condition, (cond.clone(), b)).unwrap();
    ready(&a);
    for _ in 0..3 {
        let mut g = cond.acquire().unwrap();
        *g += 1;
        g.notify_all();
    }
    assert_eq!(child.join().unwrap(), 3);
    let mut g = cond.acquire().unwrap();
    assert!(
        !g.wait_timeout(Duration::from_millis(10)),
        "nobody notifies"
    );
    assert!(
        !g.wait_for_timeout(|v| *v > 100, Duration::from_millis(10)),
        "the predicate's last value"
    );
    g.wait_for(|v| *v == 3); // true at once: no wait
    assert_eq!(*g, 3);
}

#[test]
fn a_killed_waiter_never_blocks_a_notifier() {
    let cond = Condition::new(0u32).unwrap();
    let (a, b) = Pipe::new::<u8>().unwrap();
    let child = Process::spawn(wait_forever_on_condition, (cond.clone(), b)).unwrap();
    ready(&a);
    child.kill().unwrap();
    let _ = child.join();
    // The child may have been killed before its wait released the lock: then the lock
    // comes with OwnerDied. Either way it is free, and notifying does not block.
    let g = cond
        .acquire_timeout(LONG)
        .expect("the lock is free")
        .unwrap_or_else(|died| died.into_inner());
    g.notify(1);
    g.notify_all();
}

// ---- Barrier ----

#[test]
fn a_barrier_meets_across_processes_and_runs_its_action_once_a_round() {
    let barrier = Barrier::builder(3).action(count_action).build().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| Process::spawn(barrier_rounds, (barrier.clone(), 4)).unwrap())
        .collect();
    let (mine, my_actions) = barrier_rounds((barrier.clone(), 4));
    let mut actions = my_actions;
    let mut by_round: Vec<Vec<usize>> = (0..4).map(|r| vec![mine[r]]).collect();
    for c in children {
        let (indices, ran) = c.join().unwrap();
        actions += ran;
        for (r, i) in indices.into_iter().enumerate() {
            by_round[r].push(i);
        }
    }
    for mut round in by_round {
        round.sort();
        assert_eq!(round, [0, 1, 2], "each round hands out every index once");
    }
    assert_eq!(actions, 4, "the action ran once per round, in some process");
    assert_eq!(barrier.parties(), 3);
    assert!(!barrier.is_broken());
}

#[test]
fn barrier_abort_reset_and_timeout() {
    let barrier = Barrier::new(2).unwrap();
    let err = barrier.wait_timeout(Duration::from_millis(20)).unwrap_err();
    assert_eq!(err.reason(), BrokenReason::TimedOut);
    assert!(barrier.is_broken());
    assert_eq!(barrier.wait().unwrap_err().reason(), BrokenReason::TimedOut);
    barrier.reset();
    assert!(!barrier.is_broken());
    barrier.abort();
    assert_eq!(barrier.wait().unwrap_err().reason(), BrokenReason::Aborted);
    barrier.reset();
    // A waiter present at a reset fails with Reset; the barrier is usable after.
    let other = barrier.clone();
    let t = std::thread::spawn(move || other.wait_timeout(LONG));
    common::eventually("the thread waits", || barrier.n_waiting() == 1);
    barrier.reset();
    assert_eq!(t.join().unwrap().unwrap_err().reason(), BrokenReason::Reset);
    let other = barrier.clone();
    let t = std::thread::spawn(move || other.wait_timeout(LONG).unwrap());
    let mine = barrier.wait_timeout(LONG).unwrap();
    assert_eq!(mine + t.join().unwrap(), 1);
    assert!(matches!(
        Barrier::new(0),
        Err(pytandem::process::BarrierError::Parties(_))
    ));
}

#[test]
fn a_dead_party_breaks_the_barrier_instead_of_hanging_it() {
    let barrier = Barrier::new(2).unwrap();
    let (a, b) = Pipe::new::<u8>().unwrap();
    let child = Process::spawn(hold_barrier, (barrier.clone(), b)).unwrap();
    ready(&a);
    let waiter = {
        let barrier = barrier.clone();
        std::thread::spawn(move || barrier.wait_timeout(LONG))
    };
    common::eventually("the waiter waits", || barrier.n_waiting() == 1);
    child.kill().unwrap();
    let _ = child.join();
    let err = waiter.join().unwrap().unwrap_err();
    assert_eq!(err.reason(), BrokenReason::PartyDied, "{err}");
    assert!(err.to_string().contains("died"));
    barrier.reset();
    assert!(!barrier.is_broken());
}
