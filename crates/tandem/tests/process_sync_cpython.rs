#![cfg(target_os = "linux")]
pytandem::child_entry!();

// The behaviours CPython's `Lib/test/_test_multiprocessing.py` checks for the
// synchronization primitives (`_TestLock`, `_TestSemaphore`, `_TestCondition`, `_TestEvent`,
// `_TestBarrier`), and the parts of `Lib/test/lock_tests.py` they are built on, ported to
// `pytandem::process` in our own words. The other party of each test is a child process and,
// where CPython's test is about threads of one process, a thread as well. Each test names
// the CPython test it ports; what `tests/process_sync.rs` already checks exactly is not
// repeated, and where a CPython behaviour does not apply to tandem (or differs by design) a
// comment says so instead of a test.
//
// No test sleeps to synchronize: handshakes go through a semaphore, an event, a counter in
// shared memory (`RawValue`) watched with `common::eventually`, or the barrier's own
// `n_waiting()`/`is_broken()`. Timing checks are one-sided (a timed wait lasts at least its
// timeout), every wait has a 30 s deadline, and every child is joined (or killed, then
// joined) before its test ends.

mod common;

use pytandem::process::{
    Barrier, BoundedSemaphore, Condition, Event, Lock, Process, ProcessError, RLock, RawArray,
    RawValue, Semaphore,
};
use pytandem::sync::BrokenReason;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long anything may take before the test is declared stuck (not slow).
const LONG: Duration = Duration::from_secs(30);

/// The timeout of the waits that are meant to time out (CPython's `TIMEOUT1`…`TIMEOUT3`).
const SHORT: Duration = Duration::from_millis(100);

/// Python's `join_process`: the child's result, failing the test if the child hangs.
fn join_within<R: DeserializeOwned>(mut child: Process<R>) -> Result<R, ProcessError> {
    match child.join_timeout(LONG) {
        Err(ProcessError::Timeout { pid }) => {
            let _ = child.kill();
            let _ = child.join_timeout(LONG);
            panic!("child {pid} did not end within {LONG:?}");
        }
        other => other,
    }
}

/// The child's result; a child that failed fails the test with its error.
fn result_of<R: DeserializeOwned>(child: Process<R>) -> R {
    join_within(child).unwrap_or_else(|e| panic!("the child failed: {e}"))
}

/// Runs `f(args)` in a child process and returns what it returned.
fn in_child<A, R>(f: fn(A) -> R, args: A) -> R
where
    A: Serialize + DeserializeOwned,
    R: Serialize + DeserializeOwned,
{
    result_of(Process::spawn(f, args).unwrap())
}

/// Keeps a deliberate panic off the terminal.
fn quiet_panics() {
    std::panic::set_hook(Box::new(|_| {}));
}

/// Some child processes and threads of this process running the same function: CPython's
/// `Bunch`, with processes and threads mixed.
struct Bunch<R> {
    processes: Vec<Process<R>>,
    threads: Vec<JoinHandle<R>>,
}

impl<R> Bunch<R>
where
    R: Serialize + DeserializeOwned + Send + 'static,
{
    fn start<A>(f: fn(A) -> R, args: &A, processes: usize, threads: usize) -> Self
    where
        A: Clone + Serialize + DeserializeOwned + Send + 'static,
    {
        Bunch {
            processes: (0..processes)
                .map(|_| Process::spawn(f, args.clone()).unwrap())
                .collect(),
            threads: (0..threads)
                .map(|_| {
                    let args = args.clone();
                    std::thread::spawn(move || f(args))
                })
                .collect(),
        }
    }

    /// Whether every member is still running (none has returned yet).
    fn all_running(&self) -> bool {
        self.processes.iter().all(Process::is_alive)
            && self.threads.iter().all(|t| !t.is_finished())
    }

    /// Every member's result, processes first.
    fn join(self) -> Vec<R> {
        let mut results: Vec<R> = self.processes.into_iter().map(result_of).collect();
        for t in self.threads {
            results.push(t.join().expect("the thread panicked"));
        }
        results
    }
}

/// The state letter of thread `tid` of process `pid` (`S`: asleep, `T`: stopped), from its
/// `/proc` `stat`.
fn state_of(pid: u32, tid: i64) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Whether thread `tid` of process `pid` is asleep in the kernel: a waiter that announced
/// itself just before a wait and is asleep is inside that wait.
fn asleep(pid: u32, tid: i64) -> bool {
    state_of(pid, tid) == Some('S')
}

fn my_tid() -> i64 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) }
}

// =======================================================================================
// _TestLock (and lock_tests.BaseLockTests, LockTests, RLockTests)
// =======================================================================================

/// Python's `lock.acquire(False)` from another process: whether it got the lock (it lets
/// it go again at once).
fn try_lock_once(lock: Lock<u32>) -> bool {
    lock.try_acquire().is_some()
}

/// CPython: _TestLock.test_lock (with lock_tests LockTests.test_reacquire and
/// test_state_after_timeout): a taken lock refuses a second taker — its own holder too, as
/// it is not reentrant — in this process and in another one, until released.
#[test]
fn test_lock() {
    let lock = Lock::new(0u32).unwrap();
    let g = lock.acquire().expect("a fresh lock has no dead owner");
    assert!(lock.locked());
    assert!(lock.try_acquire().is_none(), "not reentrant");
    assert!(lock.acquire_timeout(Duration::from_millis(10)).is_none());
    assert!(!in_child(try_lock_once, lock.clone()), "held by the parent");
    drop(g);
    assert!(!lock.locked(), "a timed-out attempt left no trace");
    assert!(in_child(try_lock_once, lock.clone()));
    assert!(!lock.locked(), "the child's guard released it");
    assert!(lock.try_acquire().expect("free").is_ok());
}

// CPython: _TestLock.test_lock's `release()` of an unlocked lock (ValueError) and
// RLockTests.test_release_unacquired, test_release_save_unacquired — cannot be written: a
// lock is released by dropping the guard its acquisition returned, so there is no release
// without an acquisition.

/// CPython: lock_tests LockTests.test_different_thread: a `Lock` (not an `RLock`) may be
/// released by another thread than the one that took it — here by handing the guard over.
#[test]
fn test_lock_different_thread() {
    let lock = Lock::new(0u32).unwrap();
    let g = lock.acquire().unwrap();
    std::thread::scope(|s| {
        s.spawn(move || drop(g));
    });
    assert!(!lock.locked());
    assert!(in_child(try_lock_once, lock.clone()));
}

/// What another process or thread sees of an `RLock`: (locked, owned by me, my recursion
/// count, could I take it).
fn probe_rlock(lock: RLock<u32>) -> (bool, bool, usize, bool) {
    (
        lock.locked(),
        lock.is_owned(),
        lock.recursion_count(),
        lock.try_acquire().is_some(),
    )
}

/// CPython: _TestLock.test_rlock (with lock_tests RLockTests.test_reacquire,
/// test_recursion_count, test__is_owned): taken three times by one thread, released three
/// times; meanwhile another process and another thread see it held but not theirs.
#[test]
fn test_rlock() {
    let lock = RLock::new(0u32).unwrap();
    assert!(!lock.is_owned());
    assert_eq!(lock.recursion_count(), 0);
    let a = lock.acquire().unwrap();
    assert_eq!(lock.recursion_count(), 1);
    let b = lock.acquire().unwrap();
    let c = lock.acquire().unwrap();
    assert_eq!(lock.recursion_count(), 3);
    assert!(lock.is_owned());
    let held_elsewhere = (true, false, 0, false);
    assert_eq!(in_child(probe_rlock, lock.clone()), held_elsewhere);
    let other = lock.clone();
    assert_eq!(
        std::thread::spawn(move || probe_rlock(other))
            .join()
            .unwrap(),
        held_elsewhere
    );
    drop(c);
    assert_eq!(lock.recursion_count(), 2);
    let again = lock.acquire().unwrap(); // re-taken after a partial release
    assert_eq!(lock.recursion_count(), 3);
    drop(again);
    drop(b);
    assert!(lock.is_owned(), "still held once");
    assert_eq!(in_child(probe_rlock, lock.clone()), held_elsewhere);
    drop(a);
    assert!(!lock.locked() && !lock.is_owned());
    assert_eq!(lock.recursion_count(), 0);
    assert_eq!(in_child(probe_rlock, lock.clone()), (false, false, 0, true));
}

// CPython: lock_tests RLockTests.test_different_thread — only the owning thread releases an
// `RLock`. A process `RLockGuard` is `!Send`, so no other thread can even hold one: checked
// at compile time by the `compile_fail` example on `process::RLockGuard`.

fn panic_holding_lock(lock: Lock<u32>) {
    quiet_panics();
    let mut g = lock.acquire().unwrap();
    *g = 7;
    panic!("raised inside the `with lock:` block");
}

/// CPython: _TestLock.test_lock_context (with lock_tests BaseLockTests.test_with): leaving
/// the guard's scope releases the lock — also when a panic leaves it, in another process
/// or in another thread; such a release is clean (no `OwnerDied`: nobody died holding it).
#[test]
fn test_lock_context() {
    let lock = Lock::new(0u32).unwrap();
    {
        let _g = lock.acquire().unwrap();
        assert!(lock.locked());
    }
    assert!(!lock.locked());
    let err = join_within(Process::spawn(panic_holding_lock, lock.clone()).unwrap()).unwrap_err();
    assert!(matches!(err, ProcessError::Panicked { .. }), "{err}");
    assert!(!lock.locked(), "unwinding released it");
    assert_eq!(*lock.try_acquire().expect("free").expect("clean"), 7);
    let other = lock.clone();
    assert!(std::thread::spawn(move || {
        let mut g = other.acquire().unwrap();
        *g = 8;
        panic!("raised in a thread");
    })
    .join()
    .is_err());
    assert_eq!(*lock.try_acquire().expect("free").expect("clean"), 8);
}

fn take_then_count(args: (Lock<u32>, RawValue<u32>, RawValue<u32>)) {
    let (lock, started, finished) = args;
    started.fetch_add(1, SeqCst);
    *lock.acquire_timeout(LONG).expect("taken").unwrap() += 1;
    finished.fetch_add(1, SeqCst);
}

/// CPython: lock_tests BaseLockTests.test_acquire_contended: processes and threads block
/// on a taken lock and all get through, one at a time, once it is released.
#[test]
fn test_lock_acquire_contended() {
    let lock = Lock::new(0u32).unwrap();
    let started = RawValue::new(0u32).unwrap();
    let finished = RawValue::new(0u32).unwrap();
    let g = lock.acquire().unwrap();
    let bunch = Bunch::start(
        take_then_count,
        &(lock.clone(), started.clone(), finished.clone()),
        3,
        2,
    );
    common::eventually("every taker started", || started.load(SeqCst) == 5);
    assert_eq!(finished.load(SeqCst), 0, "nobody gets a held lock");
    drop(g);
    bunch.join();
    assert_eq!(finished.load(SeqCst), 5);
    assert_eq!(*lock.acquire().unwrap(), 5);
}

// A difference by design for every test above: taking a process lock returns a
// `LockResult`, `Err(OwnerDied)` when the previous holder's process died holding it, where
// Python's `multiprocessing.Lock` would stay held forever. The tests above never kill a
// holder, so they expect `Ok`; the death cases are in `tests/process_sync.rs`.
//
// CPython: lock_tests BaseLockTests.test_timeout — a timed acquisition of a lock another
// process holds fails after its timeout, `Duration::MAX` is accepted: checked in
// `tests/process_sync.rs` (`try_and_timed_acquire_see_a_lock_held_by_another_process`).
// Python's ValueError/OverflowError for negative or huge timeouts does not apply: a
// `Duration` is never negative and `Duration::MAX` means "forever".
//
// CPython: lock_tests BaseLockTests.test_repr, test_weakref_*, test_at_fork_reinit,
// test_thread_leak — do not apply (Python object model; tandem never forks).

// =======================================================================================
// _TestSemaphore (and lock_tests.BaseSemaphoreTests, SemaphoreTests, BoundedSemaphoreTests)
// =======================================================================================

/// Takes two permits and keeps them (Python's bare `acquire()`), then tries for a third;
/// the value after each step.
fn drain_two(sem: Semaphore) -> (usize, usize, usize, bool) {
    let before = sem.get_value();
    sem.acquire().forget();
    let one = sem.get_value();
    sem.acquire().forget();
    let two = sem.get_value();
    (before, one, two, sem.try_acquire().is_some())
}

fn drain_two_bounded(sem: BoundedSemaphore) -> (usize, usize, usize, bool) {
    let before = sem.get_value();
    sem.acquire().forget();
    let one = sem.get_value();
    sem.acquire().forget();
    let two = sem.get_value();
    (before, one, two, sem.try_acquire().is_some())
}

/// CPython: _TestSemaphore.test_semaphore (with lock_tests SemaphoreTests.
/// test_release_unacquired): a child takes both permits, the parent gives them back and
/// more — an unbounded semaphore's value may pass its initial value.
#[test]
fn test_semaphore() {
    let sem = Semaphore::new(2).unwrap();
    assert_eq!(in_child(drain_two, sem.clone()), (2, 1, 0, false));
    assert_eq!(
        sem.get_value(),
        0,
        "kept permits stay taken after the child ends"
    );
    assert!(sem.try_acquire().is_none());
    for expected in 1..=4 {
        sem.release();
        assert_eq!(sem.get_value(), expected);
    }
}

/// CPython: _TestSemaphore.test_bounded_semaphore (with lock_tests BoundedSemaphoreTests.
/// test_release_unacquired — the check CPython's multiprocessing version leaves commented
/// out): the same, but a release past the initial value is refused and changes nothing.
#[test]
fn test_bounded_semaphore() {
    let sem = BoundedSemaphore::new(2).unwrap();
    assert!(sem.try_release().is_err(), "nothing taken yet");
    assert_eq!(in_child(drain_two_bounded, sem.clone()), (2, 1, 0, false));
    assert_eq!(sem.get_value(), 0);
    sem.release();
    assert_eq!(sem.get_value(), 1);
    sem.release();
    assert_eq!(sem.get_value(), 2);
    let err = sem.try_release().unwrap_err();
    assert!(err.to_string().contains("too many"), "{err}");
    assert_eq!(sem.get_value(), 2);
}

/// (nothing without waiting, nothing with a zero timeout, nothing within `SHORT`, and that
/// attempt lasted at least `SHORT`)
fn timed_takes(sem: Semaphore) -> (bool, bool, bool, bool) {
    let now = sem.try_acquire().is_none();
    let zero = sem.acquire_timeout(Duration::ZERO).is_none();
    let start = Instant::now();
    let timed = sem.acquire_timeout(SHORT).is_none();
    (now, zero, timed, start.elapsed() >= SHORT)
}

/// CPython: _TestSemaphore.test_timeout (with lock_tests BaseSemaphoreTests.
/// test_acquire_timeout, test_try_acquire): an empty semaphore refuses a child at once, with
/// a zero timeout and after a real one; a non-empty one gives its permits to timed takes.
#[test]
fn test_semaphore_timeout() {
    let sem = Semaphore::new(0).unwrap();
    assert_eq!(in_child(timed_takes, sem.clone()), (true, true, true, true));
    sem.release_n(2);
    let a = sem
        .acquire_timeout(Duration::from_millis(5))
        .expect("one of two");
    let b = sem.try_acquire().expect("two of two");
    assert!(sem.acquire_timeout(Duration::from_millis(5)).is_none());
    assert_eq!(in_child(timed_takes, sem.clone()), (true, true, true, true));
    drop(a);
    assert!(sem.acquire_timeout(Duration::from_millis(5)).is_some());
    drop(b);
    assert_eq!(sem.get_value(), 2);
}

type Phased = (Semaphore, RawValue<u32>, RawArray<u32>, RawValue<u32>);

/// Takes two permits and keeps them; after each, notes the test's phase at that moment
/// (before counting the take, so that the test, which waits for the count before moving
/// on, never sees a take it has not attributed).
fn take_two_in_phases(args: Phased) {
    let (sem, phase, per_phase, taken) = args;
    for _ in 0..2 {
        sem.acquire_timeout(LONG).expect("a permit").forget();
        per_phase[phase.load(SeqCst) as usize].fetch_add(1, SeqCst);
        taken.fetch_add(1, SeqCst);
    }
}

/// CPython: lock_tests BaseSemaphoreTests.test_acquire_contended and test_multirelease:
/// takers block on an exhausted semaphore, and exactly as many get through as permits are
/// released — one at a time, then several with one `release(n)`. Three processes and a
/// thread, two takes each, against a semaphore of 3 (one kept by the test).
#[test]
fn test_semaphore_acquire_contended() {
    let sem = Semaphore::new(3).unwrap();
    sem.acquire().forget();
    let phase = RawValue::new(0u32).unwrap();
    let per_phase = RawArray::<u32>::new(4).unwrap();
    let taken = RawValue::new(0u32).unwrap();
    let bunch = Bunch::start(
        take_two_in_phases,
        &(sem.clone(), phase.clone(), per_phase.clone(), taken.clone()),
        3,
        1,
    );
    let counts = || per_phase.iter().map(|c| c.load(SeqCst)).collect::<Vec<_>>();
    // Phase 0: the two free permits.
    common::eventually("2 takes", || taken.load(SeqCst) == 2);
    // Phase 1: three single releases.
    phase.store(1, SeqCst);
    for _ in 0..3 {
        sem.release();
    }
    common::eventually("5 takes", || taken.load(SeqCst) == 5);
    assert_eq!(counts(), [2, 3, 0, 0]);
    // Phase 2: one release of two.
    phase.store(2, SeqCst);
    sem.release_n(2);
    common::eventually("7 takes", || taken.load(SeqCst) == 7);
    assert_eq!(counts(), [2, 3, 2, 0]);
    assert!(sem.try_acquire().is_none(), "still exhausted");
    // The last take.
    phase.store(3, SeqCst);
    sem.release();
    bunch.join();
    assert_eq!(counts(), [2, 3, 2, 1]);
    assert_eq!(sem.get_value(), 0);
}

/// Two non-blocking takes, kept; how many succeeded.
fn try_twice(sem: Semaphore) -> usize {
    (0..2)
        .filter(|_| sem.try_acquire().map(|p| p.forget()).is_some())
        .count()
}

/// CPython: lock_tests BaseSemaphoreTests.test_try_acquire_contended: of the non-blocking
/// takes of several processes and a thread, exactly as many succeed as there were permits.
#[test]
fn test_semaphore_try_acquire_contended() {
    let sem = Semaphore::new(4).unwrap();
    sem.acquire().forget();
    let got: usize = Bunch::start(try_twice, &sem, 3, 1).join().into_iter().sum();
    assert_eq!(got, 3, "8 tries, 3 permits");
    assert_eq!(sem.get_value(), 0);
}

fn nested_permits_then_panic(sem: Semaphore) {
    quiet_panics();
    let _outer = sem.acquire();
    assert!(sem.try_acquire().is_some(), "one left, given back at once");
    let _inner = sem.acquire();
    assert!(sem.try_acquire().is_none());
    panic!("raised inside `with sem:`");
}

/// CPython: lock_tests BaseSemaphoreTests.test_with: permits taken through guards return
/// when their scope ends — also when a panic ends it, in another process.
#[test]
fn test_semaphore_with() {
    let sem = Semaphore::new(2).unwrap();
    {
        let _p = sem.acquire();
        assert_eq!(sem.get_value(), 1);
    }
    assert_eq!(sem.get_value(), 2);
    let err =
        join_within(Process::spawn(nested_permits_then_panic, sem.clone()).unwrap()).unwrap_err();
    assert!(
        matches!(&err, ProcessError::Panicked { message, .. } if message.contains("with sem")),
        "{err}"
    );
    assert_eq!(sem.get_value(), 2, "unwinding gave both permits back");
}

// A difference by design: a process semaphore has no FIFO hand-off (a process arriving
// just as a permit frees may take it before an earlier sleeper), so no test here checks
// who gets a permit — only how many do, which is all CPython's tests check too.
//
// CPython: lock_tests BaseSemaphoreTests.test_constructor (a negative value is a
// ValueError) — cannot be written: the value is a `u32`. test_default_value (1) — tandem
// has no default: `Semaphore::new` takes the value. test_repr — `Debug` is not Python's
// repr. test_acquire_destroy, test_acquire — trivial in Rust (dropping a handle with
// permits taken is fine; see the tests above).

// =======================================================================================
// _TestCondition (and lock_tests.ConditionTests)
// =======================================================================================

/// A waiter's arguments: the condition, the `sleeping` and `woken` semaphores it signals,
/// and its timeout (`None`: only the test's `LONG` deadline).
type Waiter = (Condition<u32>, Semaphore, Semaphore, Option<Duration>);

/// CPython's `_TestCondition.f`: takes the lock, says it is about to sleep, waits, says it
/// woke; whether the wait saw a notify.
fn cond_waiter(args: Waiter) -> bool {
    let (cond, sleeping, woken, timeout) = args;
    let mut g = cond.acquire().unwrap();
    sleeping.release();
    let notified = g.wait_timeout(timeout.unwrap_or(LONG));
    woken.release();
    drop(g);
    notified
}

/// Waits until `n` waiters said they are about to sleep. Each said so holding the lock,
/// so once the caller then takes the lock, every one of them has let it go inside `wait`:
/// a notify sent under the lock after that reaches them all.
fn wait_for_sleepers(sleeping: &Semaphore, n: usize) {
    for _ in 0..n {
        sleeping
            .acquire_timeout(LONG)
            .expect("a waiter started")
            .forget();
    }
}

fn condition_parts() -> (Condition<u32>, Semaphore, Semaphore) {
    (
        Condition::new(0).unwrap(),
        Semaphore::new(0).unwrap(),
        Semaphore::new(0).unwrap(),
    )
}

// A difference by design matters for the next tests: a process `Condition`'s wait may
// return without its own notify — a waiter that has let go of the lock but is not yet
// asleep leaves on *any* notify, as with POSIX condition variables. So where CPython checks
// that `notify(n)` wakes exactly `n`, these tests check at least `n` (never fewer: no
// notify is lost), and that a notify for at least as many as still wait wakes them all.

/// CPython: _TestCondition.test_notify: a waiting process and a waiting thread; nobody
/// wakes before a notify, and two single notifies wake both.
#[test]
fn test_notify() {
    let (cond, sleeping, woken) = condition_parts();
    let bunch = Bunch::start(
        cond_waiter,
        &(cond.clone(), sleeping.clone(), woken.clone(), None),
        1,
        1,
    );
    wait_for_sleepers(&sleeping, 2);
    {
        let g = cond.acquire().unwrap();
        assert_eq!(woken.get_value(), 0, "nobody woke without a notify");
        g.notify_one();
    }
    common::eventually("a waiter wakes", || woken.get_value() >= 1);
    cond.acquire().unwrap().notify_one();
    common::eventually("both waiters wake", || woken.get_value() == 2);
    assert_eq!(bunch.join(), [true, true], "both saw a notify");
}

/// CPython: _TestCondition.test_notify_all: three processes and three threads time out
/// (seeing no notify); six more wait, and one `notify_all` wakes them all.
#[test]
fn test_notify_all() {
    let (cond, sleeping, woken) = condition_parts();
    let timing_out = Bunch::start(
        cond_waiter,
        &(cond.clone(), sleeping.clone(), woken.clone(), Some(SHORT)),
        3,
        3,
    );
    wait_for_sleepers(&sleeping, 6);
    for _ in 0..6 {
        woken
            .acquire_timeout(LONG)
            .expect("a waiter timed out")
            .forget();
    }
    assert_eq!(timing_out.join(), [false; 6], "all timed out");
    assert_eq!(woken.get_value(), 0);

    let waiting = Bunch::start(
        cond_waiter,
        &(cond.clone(), sleeping.clone(), woken.clone(), None),
        3,
        3,
    );
    wait_for_sleepers(&sleeping, 6);
    {
        let g = cond.acquire().unwrap();
        assert_eq!(woken.get_value(), 0, "nobody woke without a notify");
        g.notify_all();
    }
    common::eventually("all six wake", || woken.get_value() == 6);
    assert_eq!(waiting.join(), [true; 6]);
}

/// CPython: _TestCondition.test_notify_n: of six waiters (three processes, three threads),
/// `notify(2)` wakes at least two, then `notify(4)` the rest; a further `notify(3)` finds
/// nobody.
#[test]
fn test_notify_n() {
    let (cond, sleeping, woken) = condition_parts();
    let bunch = Bunch::start(
        cond_waiter,
        &(cond.clone(), sleeping.clone(), woken.clone(), None),
        3,
        3,
    );
    wait_for_sleepers(&sleeping, 6);
    {
        let g = cond.acquire().unwrap();
        assert_eq!(woken.get_value(), 0, "nobody woke without a notify");
        assert!(
            g.notify(2) <= 2,
            "a futex wake of 2 wakes at most 2 sleepers"
        );
    }
    common::eventually("two wake", || woken.get_value() >= 2);
    cond.acquire().unwrap().notify(4);
    common::eventually("the rest wake", || woken.get_value() == 6);
    assert_eq!(
        cond.acquire().unwrap().notify(3),
        0,
        "nobody waits any more"
    );
    assert_eq!(woken.get_value(), 6);
    assert_eq!(bunch.join(), [true; 6]);
}

/// (the wait's result, it lasted at least `SHORT`, the lock was held again after it)
fn timed_cond_wait(cond: Condition<u32>) -> (bool, bool, bool) {
    let mut g = cond.acquire_timeout(LONG).expect("the lock").unwrap();
    let start = Instant::now();
    let notified = g.wait_timeout(SHORT);
    (notified, start.elapsed() >= SHORT, cond.locked())
}

/// CPython: _TestCondition.test_timeout (with lock_tests ConditionTests.test_timeout):
/// un-notified timed waits — here, in two processes and two threads at once, then in the
/// test itself — return `false` after their timeout, holding the lock again.
#[test]
fn test_condition_timeout() {
    let cond = Condition::new(0u32).unwrap();
    let results = Bunch::start(timed_cond_wait, &cond, 2, 2).join();
    assert_eq!(results, [(false, true, true); 4]);
    assert_eq!(timed_cond_wait(cond.clone()), (false, true, true));
    assert!(!cond.locked());
}

/// CPython's `_test_waitfor_f`: publishes 0, then waits for 4.
fn wait_for_four(cond: Condition<i32>) -> bool {
    let mut g = cond.acquire().unwrap();
    *g = 0;
    g.notify_one();
    g.wait_for_timeout(|state| *state == 4, LONG) && *g == 4
}

/// CPython: _TestCondition.test_waitfor (with lock_tests ConditionTests.test_waitfor): the
/// test and a waiter — a process, then a thread — wait for each other's changes with
/// `wait_for`; four notified increments get the waiter through.
#[test]
fn test_waitfor() {
    for in_a_process in [true, false] {
        let cond = Condition::new(-1i32).unwrap();
        let waiter: Box<dyn FnOnce() -> bool> = if in_a_process {
            let child = Process::spawn(wait_for_four, cond.clone()).unwrap();
            Box::new(move || result_of(child))
        } else {
            let other = cond.clone();
            let thread = std::thread::spawn(move || wait_for_four(other));
            Box::new(move || thread.join().unwrap())
        };
        {
            let mut g = cond.acquire().unwrap();
            assert!(g.wait_for_timeout(|state| *state == 0, LONG));
            assert_eq!(*g, 0);
        }
        for _ in 0..4 {
            let mut g = cond.acquire().unwrap();
            *g += 1;
            g.notify_one();
        }
        assert!(waiter(), "in a process: {in_a_process}");
    }
}

/// CPython's `_test_waitfor_timeout_f`: says it started, then waits `SHORT` for 4; whether
/// it gave up, and not early.
fn wait_for_four_briefly(args: (Condition<i32>, Semaphore)) -> bool {
    let (cond, started) = args;
    started.release();
    let mut g = cond.acquire().unwrap();
    let start = Instant::now();
    let reached = g.wait_for_timeout(|state| *state == 4, SHORT);
    !reached && start.elapsed() >= SHORT
}

/// CPython: _TestCondition.test_waitfor_timeout (with lock_tests ConditionTests.
/// test_waitfor_timeout): notified changes that never satisfy the predicate do not extend
/// `wait_for`'s timeout; it returns `false` once it runs out.
#[test]
fn test_waitfor_timeout() {
    let cond = Condition::new(0i32).unwrap();
    let started = Semaphore::new(0).unwrap();
    let child = Process::spawn(wait_for_four_briefly, (cond.clone(), started.clone())).unwrap();
    started
        .acquire_timeout(LONG)
        .expect("the child started")
        .forget();
    for _ in 0..3 {
        let mut g = cond.acquire().unwrap();
        *g += 1;
        g.notify_one();
    }
    assert!(result_of(child));
}

fn notify_once(cond: Condition<u32>) {
    cond.acquire().unwrap().notify_one();
}

/// CPython: _TestCondition.test_wait_result: `wait` says whether it was notified — not
/// with a zero or short timeout and nobody notifying, yes when a child notifies.
#[test]
fn test_wait_result() {
    let cond = Condition::new(0u32).unwrap();
    let mut g = cond.acquire().unwrap();
    assert!(!g.wait_timeout(Duration::ZERO));
    assert!(!g.wait_timeout(SHORT));
    // The child can take the lock only once this wait has let go of it.
    let child = Process::spawn(notify_once, cond.clone()).unwrap();
    assert!(g.wait_timeout(LONG));
    drop(g);
    result_of(child);
}

// CPython: _TestCondition.test_wait_result's second half (SIGINT interrupts a wait with
// KeyboardInterrupt) — does not apply: a signal does not end a tandem wait (interrupted
// futex waits are resumed).
//
// CPython: _TestCondition.check_invariant (the semaphores inside Python's Condition are
// balanced) — the internals differ: a tandem waiter leaves nothing behind for a notifier
// (see `a_killed_waiter_never_blocks_a_notifier` in `tests/process_sync.rs`).
//
// CPython: lock_tests ConditionTests._check_notify / test_notify (exact counts per phase,
// relying on "no spurious wakeups") — differs by design, see above; `test_notify_n` checks
// what holds. test_acquire (Python's default lock is an RLock) — differs: a process
// `Condition` owns a plain, non-reentrant robust lock. test_unacquired_wait,
// test_unacquired_notify (RuntimeError) — cannot be written: waits and notifies are
// methods of the guard.

// =======================================================================================
// _TestEvent (and lock_tests.EventTests)
// =======================================================================================

fn set_event(event: Event) {
    event.set();
}

/// CPython: _TestEvent.test_event (with lock_tests EventTests.test_is_set): the flag, timed
/// waits on it clear and set, and a wait that a child's `set` ends.
#[test]
fn test_event() {
    let event = Event::new().unwrap();
    assert!(!event.is_set());
    assert!(!event.wait_timeout(Duration::ZERO));
    let start = Instant::now();
    assert!(!event.wait_timeout(SHORT));
    assert!(start.elapsed() >= SHORT);
    event.set();
    event.set();
    assert!(event.is_set());
    let start = Instant::now();
    assert!(event.wait());
    assert!(event.wait_timeout(LONG));
    assert!(
        start.elapsed() < LONG,
        "a set event does not make anyone wait"
    );
    event.clear();
    event.clear();
    assert!(!event.is_set());
    let child = Process::spawn(set_event, event.clone()).unwrap();
    assert!(event.wait_timeout(LONG));
    result_of(child);
}

/// Announces itself, then waits twice.
fn wait_twice(args: (Event, RawValue<u32>)) -> (bool, bool) {
    let (event, started) = args;
    started.fetch_add(1, SeqCst);
    (event.wait_timeout(LONG), event.wait_timeout(LONG))
}

/// CPython: lock_tests EventTests.test_notify (the behaviour `_TestEvent` relies on): one
/// `set` releases every waiter — three processes and two threads — and keeps releasing
/// them; again after a `set` and `clear`.
#[test]
fn test_event_notify() {
    let event = Event::new().unwrap();
    for round in 0..2 {
        if round == 1 {
            event.set();
            event.clear();
        }
        let started = RawValue::new(0u32).unwrap();
        let bunch = Bunch::start(wait_twice, &(event.clone(), started.clone()), 3, 2);
        common::eventually("every waiter started", || started.load(SeqCst) == 5);
        assert!(bunch.all_running(), "nobody passes a clear event");
        event.set();
        assert_eq!(bunch.join(), [(true, true); 5], "round {round}");
        event.clear();
    }
}

/// (a zero-timeout wait, a `SHORT` wait, whether the latter lasted at least `SHORT`)
fn timed_event_waits(event: Event) -> (bool, bool, bool) {
    let zero = event.wait_timeout(Duration::ZERO);
    let start = Instant::now();
    let timed = event.wait_timeout(SHORT);
    (zero, timed, start.elapsed() >= SHORT)
}

/// CPython: lock_tests EventTests.test_timeout: timed waits of processes and threads fail
/// after their timeout while the event is clear, and succeed at once once it is set.
#[test]
fn test_event_timeout() {
    let event = Event::new().unwrap();
    let clear = Bunch::start(timed_event_waits, &event, 2, 2).join();
    assert_eq!(clear, [(false, false, true); 4]);
    event.set();
    let set = Bunch::start(timed_event_waits, &event, 2, 2).join();
    assert!(set.iter().all(|&(zero, timed, _)| zero && timed), "{set:?}");
}

/// Sends its thread id, then waits (long).
fn report_then_wait(args: (Event, RawArray<i64>, usize)) -> bool {
    let (event, tids, slot) = args;
    tids[slot].store(my_tid(), SeqCst);
    event.wait_timeout(LONG)
}

/// CPython: lock_tests EventTests.test_set_and_clear (gh-57711): a waiter asleep when
/// `set` runs returns `true`, even if `clear` runs before it wakes — as `sync::Event`
/// guarantees, whose methods a process `Event` has.
#[test]
fn test_event_set_and_clear() {
    let event = Event::new().unwrap();
    let tids = RawArray::<i64>::new(4).unwrap();
    let mut children = Vec::new();
    for slot in 0..2 {
        children
            .push(Process::spawn(report_then_wait, (event.clone(), tids.clone(), slot)).unwrap());
    }
    let threads: Vec<_> = (2..4)
        .map(|slot| {
            let args = (event.clone(), tids.clone(), slot);
            std::thread::spawn(move || report_then_wait(args))
        })
        .collect();
    let me = std::process::id();
    let pids: Vec<u32> = children.iter().map(Process::pid).chain([me, me]).collect();
    common::eventually("every waiter is asleep in its wait", || {
        (0..4).all(|i| {
            let tid = tids[i].load(SeqCst);
            tid != 0 && asleep(pids[i], tid)
        })
    });
    event.set();
    event.clear();
    let mut results: Vec<bool> = children.into_iter().map(result_of).collect();
    results.extend(threads.into_iter().map(|t| t.join().unwrap()));
    assert_eq!(results, [true; 4]);
}

fn wait_long(args: (Event, RawValue<i64>)) -> bool {
    let (event, tid) = args;
    tid.store(my_tid(), SeqCst);
    event.wait_timeout(LONG)
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill with a live child's pid and a valid signal number.
    assert_eq!(unsafe { libc::kill(pid as i32, sig) }, 0);
}

/// A set followed by a clear while the waiter cannot run: a child asleep in `wait` is
/// stopped (SIGSTOP), the event is set and cleared, the child continues. Its wait began
/// before the `set`, so by Python's (and `sync::Event`'s) rule it returns `true` — not
/// `false` after sleeping on to its timeout (the bug this caught: waiters re-checked only
/// the flag).
#[test]
fn event_set_then_clear_is_lost_by_a_stopped_waiter() {
    let event = Event::new().unwrap();
    let tid = RawValue::new(0i64).unwrap();
    let child = Process::spawn(wait_long, (event.clone(), tid.clone())).unwrap();
    let pid = child.pid();
    common::eventually("the child is asleep in its wait", || {
        let t = tid.load(SeqCst);
        t != 0 && asleep(pid, t)
    });
    signal(pid, libc::SIGSTOP);
    common::eventually("the child is stopped", || {
        state_of(pid, tid.load(SeqCst)) == Some('T')
    });
    event.set();
    event.clear();
    signal(pid, libc::SIGCONT);
    assert!(result_of(child), "the set during the wait was missed");
}

// CPython: _TestEvent.test_repr — `Debug` shows `is_set` instead of Python's repr.
// lock_tests EventTests.test_at_fork_reinit — does not apply (tandem never forks).

// =======================================================================================
// _TestBarrier (adapted by CPython from lock_tests.BarrierTests)
// =======================================================================================

/// CPython's `_TestBarrier.N`, smaller: the test's thread, one more thread, and two child
/// processes.
const PARTIES: usize = 4;

/// CPython's `run_threads`: runs `f(args)` in `PARTIES - 1` others (two processes and a
/// thread) and in the test's own thread; every result, the test's last.
fn run_parties<A, R>(f: fn(A) -> R, args: A) -> Vec<R>
where
    A: Clone + Serialize + DeserializeOwned + Send + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
{
    let others = Bunch::start(f, &args, PARTIES - 2, 1);
    let mine = f(args);
    let mut results = others.join();
    results.push(mine);
    results
}

/// CPython's `setUp`: a barrier for `PARTIES` with a generous default timeout.
fn barrier() -> Barrier {
    Barrier::builder(PARTIES).timeout(LONG).build().unwrap()
}

/// CPython's DummyList: a counter in shared memory.
fn counter() -> RawValue<u32> {
    RawValue::new(0).unwrap()
}

/// CPython's `multipass`: two counters advanced in lockstep through the barrier.
fn multipass(args: (Barrier, RawValue<u32>, RawValue<u32>, u32)) {
    let (barrier, before, after, passes) = args;
    let m = barrier.parties() as u32;
    for i in 0..passes {
        before.fetch_add(1, SeqCst);
        assert_eq!(after.load(SeqCst), i * m, "nobody is a pass ahead");
        barrier.wait().unwrap();
        after.fetch_add(1, SeqCst);
        assert_eq!(before.load(SeqCst), (i + 1) * m, "everybody arrived");
        barrier.wait().unwrap();
    }
    assert_eq!(barrier.n_waiting(), 0);
    assert!(!barrier.is_broken());
}

/// CPython: _TestBarrier.test_barrier: processes and threads pass the barrier in lockstep.
#[test]
fn test_barrier() {
    run_parties(multipass, (barrier(), counter(), counter(), 1));
}

/// CPython: _TestBarrier.test_barrier_10: ten passes in a row.
#[test]
fn test_barrier_10() {
    run_parties(multipass, (barrier(), counter(), counter(), 10));
}

fn wait_once(barrier: Barrier) -> usize {
    barrier.wait().unwrap()
}

/// CPython: _TestBarrier.test_wait_return: each party gets a different arrival index, so
/// exactly one gets 0.
#[test]
fn test_wait_return() {
    let mut indices = run_parties(wait_once, barrier());
    indices.sort_unstable();
    assert_eq!(indices, (0..PARTIES).collect::<Vec<_>>());
}

/// Where the barrier's action counts, in whichever process runs it (an action is a plain
/// `fn()`, so it finds the shared counter here).
static ACTION_RESULTS: OnceLock<RawValue<u32>> = OnceLock::new();

fn append_true() {
    ACTION_RESULTS
        .get()
        .expect("set before waiting")
        .fetch_add(1, SeqCst);
}

/// CPython's `_test_action_f`: what the action's counter says once past the barrier.
fn wait_then_read_action(args: (Barrier, RawValue<u32>)) -> u32 {
    let (barrier, results) = args;
    let _ = ACTION_RESULTS.set(results.clone());
    barrier.wait().unwrap();
    results.load(SeqCst)
}

/// CPython: _TestBarrier.test_action: the action runs once, in one of the parties, before
/// any party leaves. (Python's action is any callable; tandem's is a plain `fn()`, by
/// design, since it may run in any process.)
#[test]
fn test_action() {
    let results = counter();
    let barrier = Barrier::builder(PARTIES)
        .action(append_true)
        .timeout(LONG)
        .build()
        .unwrap();
    let seen = run_parties(wait_then_read_action, (barrier, results.clone()));
    assert_eq!(seen, [1; PARTIES], "every party saw the action done");
    assert_eq!(results.load(SeqCst), 1);
}

type Tally = (RawValue<u32>, RawValue<u32>, RawValue<u32>);

fn tally() -> Tally {
    (counter(), counter(), counter())
}

/// CPython's `_test_abort_f`: the middle arrival aborts instead of waiting again.
fn abort_f(args: (Barrier, Tally)) {
    let (barrier, (passed, broken, _)) = args;
    if barrier.wait().unwrap() == PARTIES / 2 {
        barrier.abort();
        return;
    }
    match barrier.wait() {
        Ok(_) => passed.fetch_add(1, SeqCst),
        Err(e) => {
            assert_eq!(e.reason(), BrokenReason::Aborted);
            broken.fetch_add(1, SeqCst)
        }
    };
}

/// CPython: _TestBarrier.test_abort: an abort breaks the barrier for everyone waiting or
/// still to come.
#[test]
fn test_abort() {
    let barrier = barrier();
    let t = tally();
    run_parties(abort_f, (barrier.clone(), t.clone()));
    assert_eq!(t.0.load(SeqCst), 0);
    assert_eq!(t.1.load(SeqCst), PARTIES as u32 - 1);
    assert!(barrier.is_broken());
}

/// CPython's `_test_reset_f`: the middle arrival waits until the others wait again, resets
/// the barrier under them, and everyone passes it once more.
fn reset_f(args: (Barrier, Tally)) {
    let (barrier, (passed, reset, again)) = args;
    if barrier.wait().unwrap() == PARTIES / 2 {
        common::eventually("the others wait", || barrier.n_waiting() == PARTIES - 1);
        barrier.reset();
    } else {
        match barrier.wait() {
            Ok(_) => passed.fetch_add(1, SeqCst),
            Err(e) => {
                assert_eq!(e.reason(), BrokenReason::Reset);
                reset.fetch_add(1, SeqCst)
            }
        };
    }
    barrier.wait().unwrap();
    again.fetch_add(1, SeqCst);
}

/// CPython: _TestBarrier.test_reset: a reset frees the waiters (with an error) and leaves
/// the barrier usable.
#[test]
fn test_reset() {
    let t = tally();
    run_parties(reset_f, (barrier(), t.clone()));
    assert_eq!(t.0.load(SeqCst), 0);
    assert_eq!(t.1.load(SeqCst), PARTIES as u32 - 1);
    assert_eq!(t.2.load(SeqCst), PARTIES as u32);
}

/// CPython's `_test_abort_and_reset_f`.
fn abort_and_reset_f(args: (Barrier, Barrier, Tally)) {
    let (barrier, barrier2, (passed, broken, again)) = args;
    if barrier.wait().unwrap() == PARTIES / 2 {
        barrier.abort();
    } else {
        match barrier.wait() {
            Ok(_) => passed.fetch_add(1, SeqCst),
            Err(_) => broken.fetch_add(1, SeqCst),
        };
    }
    // Everyone has left the broken barrier before the reset, and nobody enters it again
    // before the reset is done.
    if barrier2.wait().unwrap() == PARTIES / 2 {
        barrier.reset();
    }
    barrier2.wait().unwrap();
    barrier.wait().unwrap();
    again.fetch_add(1, SeqCst);
}

/// CPython: _TestBarrier.test_abort_and_reset: a broken barrier works again after a reset.
#[test]
fn test_abort_and_reset() {
    let t = tally();
    let barrier2 = Barrier::builder(PARTIES).timeout(LONG).build().unwrap();
    run_parties(abort_and_reset_f, (barrier(), barrier2, t.clone()));
    assert_eq!(t.0.load(SeqCst), 0);
    assert_eq!(t.1.load(SeqCst), PARTIES as u32 - 1);
    assert_eq!(t.2.load(SeqCst), PARTIES as u32);
}

/// CPython's `_test_timeout_f` and `_test_default_timeout_f`: the middle arrival is late
/// for the second wait — it arrives only once the others' timeout has broken the barrier
/// (CPython sleeps instead); every party's second wait fails with `TimedOut`.
fn late_party_f(args: (Barrier, RawValue<u32>, bool)) {
    let (barrier, results, use_default) = args;
    if barrier.wait_timeout(LONG).unwrap() == PARTIES / 2 {
        common::eventually("the others time out", || barrier.is_broken());
    }
    let second = if use_default {
        barrier.wait()
    } else {
        barrier.wait_timeout(SHORT)
    };
    assert_eq!(second.unwrap_err().reason(), BrokenReason::TimedOut);
    results.fetch_add(1, SeqCst);
}

/// CPython: _TestBarrier.test_timeout: a `wait(timeout)` that runs out breaks the barrier
/// for every party.
#[test]
fn test_barrier_timeout() {
    let results = counter();
    run_parties(late_party_f, (barrier(), results.clone(), false));
    assert_eq!(results.load(SeqCst), PARTIES as u32);
}

/// CPython: _TestBarrier.test_default_timeout: the same with the barrier's own timeout.
#[test]
fn test_default_timeout() {
    let results = counter();
    let barrier = Barrier::builder(PARTIES).timeout(SHORT).build().unwrap();
    run_parties(late_party_f, (barrier, results.clone(), true));
    assert_eq!(results.load(SeqCst), PARTIES as u32);
}

fn pass_alone_twice(barrier: Barrier) -> (usize, usize) {
    (barrier.wait().unwrap(), barrier.wait().unwrap())
}

/// CPython: _TestBarrier.test_single_thread: a barrier of one never waits — in the test
/// and in a child.
#[test]
fn test_single_thread() {
    let barrier = Barrier::new(1).unwrap();
    assert_eq!(pass_alone_twice(barrier.clone()), (0, 0));
    assert_eq!(in_child(pass_alone_twice, barrier), (0, 0));
}

/// CPython's `_test_thousand_f`: after pass `i`, this party's arrival in a shared count
/// must fall in pass `i`'s block — nobody got a pass ahead.
fn passes_in_lockstep(args: (Barrier, RawValue<u32>, u32)) {
    let (barrier, sent, passes) = args;
    let n = barrier.parties() as u32;
    for i in 0..passes {
        barrier.wait().unwrap();
        assert_eq!(sent.fetch_add(1, SeqCst) / n, i, "pass {i}");
    }
}

/// CPython: _TestBarrier.test_thousand (300 passes of three processes here): CPython's
/// children send each pass number through one locked pipe and the test checks they come in
/// blocks; here each child checks its place in a shared count.
#[test]
fn test_thousand() {
    const PASSES: u32 = 300;
    let barrier = Barrier::builder(3).timeout(LONG).build().unwrap();
    let sent = counter();
    let children: Vec<_> = (0..3)
        .map(|_| {
            Process::spawn(passes_in_lockstep, (barrier.clone(), sent.clone(), PASSES)).unwrap()
        })
        .collect();
    for c in children {
        result_of(c);
    }
    assert_eq!(sent.load(SeqCst), 3 * PASSES);
}

// CPython: lock_tests BarrierTests.test_constructor (0 parties is a ValueError) — checked
// in `tests/process_sync.rs` (`barrier_abort_reset_and_timeout`). test_repr — `Debug`
// shows parties, n_waiting and broken instead of Python's repr.
