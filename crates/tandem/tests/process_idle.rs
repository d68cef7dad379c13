//! Idle waiters cost no CPU across processes: a child blocked in `Connection::recv`,
//! `Queue::get`, `Event::wait`, `Lock::acquire` or a pool worker waiting for work sleeps in
//! the kernel after a brief bounded linger — no polling, no timer. The child's CPU time is
//! read from `/proc/<pid>/stat` after it has been idle for a while.
#![cfg(target_os = "linux")]

pytandem::child_entry!();

use pytandem::process::{Connection, Event, Lock, Pipe, Process, Queue};
use std::time::Duration;

/// Says it is about to wait, then waits on each primitive in turn, as the parent releases
/// them one by one.
fn waiter(args: (Connection<u8>, Queue<u8>, Event, Lock<()>)) {
    let (conn, q, event, lock) = args;
    conn.send(&0).unwrap(); // about to wait on the connection
    assert_eq!(conn.recv().unwrap(), 1);
    conn.send(&0).unwrap(); // about to wait on the queue
    assert_eq!(q.get().unwrap(), 2);
    conn.send(&0).unwrap(); // about to wait on the event
    assert!(event.wait());
    conn.send(&0).unwrap(); // about to wait on the lock
    drop(lock.acquire().unwrap());
}

/// The CPU time (user + system, in clock ticks of 10 ms) process `pid` has used.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the comm: state is field 3; utime and stime are fields 14 and 15.
    fields[14 - 3].parse::<u64>().unwrap() + fields[15 - 3].parse::<u64>().unwrap()
}

#[test]
fn blocked_waiters_in_a_child_use_no_cpu() {
    let (conn, theirs) = Pipe::new::<u8>().unwrap();
    let q = Queue::new().unwrap();
    let event = Event::new().unwrap();
    let lock = Lock::new(()).unwrap();
    let held = lock.acquire().unwrap();
    let child = Process::spawn(waiter, (theirs, q.clone(), event.clone(), lock.clone())).unwrap();
    let pid = child.pid();
    let mut release: Vec<Box<dyn FnMut()>> = vec![
        Box::new(|| conn.send(&1).unwrap()),
        Box::new(|| q.put(2).unwrap()),
        Box::new(|| event.set()),
    ];
    for (what, release) in ["connection", "queue", "event"]
        .iter()
        .zip(release.iter_mut())
    {
        assert_eq!(conn.recv_timeout(Duration::from_secs(30)).unwrap(), 0);
        let before = cpu_ticks(pid);
        // The measurement window: the child is blocked the whole time (nothing is
        // synchronized by this sleep; it only lets idle time pass).
        std::thread::sleep(Duration::from_millis(300));
        let used = cpu_ticks(pid) - before;
        assert!(
            used <= 3,
            "a child blocked on a {what} used {used} ticks of CPU in 300 ms"
        );
        release();
    }
    assert_eq!(conn.recv_timeout(Duration::from_secs(30)).unwrap(), 0);
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_millis(300));
    let used = cpu_ticks(pid) - before;
    assert!(
        used <= 3,
        "a child blocked on a lock used {used} ticks of CPU in 300 ms"
    );
    drop(held);
    child.join().unwrap();
}

fn square(x: u64) -> u64 {
    x * x
}

/// CPU ticks of this process's threads whose name starts with `prefix` (comm is cut at 15
/// characters).
fn thread_ticks(prefix: &str) -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if stat[open + 1..close].starts_with(prefix) {
            let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
            total += fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        }
    }
    total
}

#[test]
fn an_idle_process_pool_uses_no_cpu() {
    let pool = pytandem::process::ProcessPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..200).map(|i| pool.submit(square, i).unwrap()).collect();
    for t in tasks {
        t.result().unwrap();
    }
    let workers: Vec<u32> = pytandem::process::active_children()
        .iter()
        .filter(|c| c.name.ends_with("-worker"))
        .map(|c| c.pid)
        .collect();
    assert!(!workers.is_empty(), "the pool has live workers");
    let ticks =
        || workers.iter().map(|&p| cpu_ticks(p)).sum::<u64>() + thread_ticks("tandem-process-");
    let before = ticks();
    // The measurement window: the pool is idle the whole time.
    std::thread::sleep(Duration::from_millis(300));
    let used = ticks() - before;
    assert!(used <= 3, "an idle pool used {used} ticks of CPU in 300 ms");
    pool.shutdown(true, false);
}
