//! An idle `ThreadPoolExecutor` uses no CPU: its workers sleep in the wait layer, with no
//! timer and no polling. Alone in its own test binary, so no other test's threads run in the
//! process while the CPU time is measured.

use std::time::{Duration, Instant};

use pytandem::executor::ThreadPoolExecutor;

/// CPU time (user + system) this process has used so far.
fn process_cpu_time() -> Duration {
    // SAFETY: `getrusage` fills the zeroed struct we own; RUSAGE_SELF is always valid.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut usage), 0);
        usage
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

#[test]
fn idle_pool_uses_no_cpu() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(4)
        .build()
        .unwrap();
    // Start every worker and give them work, then let them fall idle.
    let tasks: Vec<_> = (0..1000u64)
        .map(|i| pool.submit(move || (0..100).fold(i, |a, b| a ^ b)).unwrap())
        .collect();
    for t in tasks {
        t.result().unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while pool.stats().tasks_running != 0 {
        assert!(Instant::now() < deadline, "the pool never fell idle");
        std::thread::yield_now();
    }
    let stats = pool.stats();
    assert!(stats.workers_alive >= 1);
    assert_eq!(stats.workers_idle, stats.workers_alive);
    // Workers spin for a few microseconds before they park; this measures the quiet after.
    std::thread::sleep(Duration::from_millis(50));
    let before = process_cpu_time();
    let wall = Instant::now();
    std::thread::sleep(Duration::from_millis(500));
    let used = process_cpu_time() - before;
    let elapsed = wall.elapsed();
    // A spinning or polling worker would burn most of the 500 ms; a parked one burns nothing.
    assert!(
        used < Duration::from_millis(25),
        "an idle pool used {used:?} of CPU in {elapsed:?}"
    );
    // And it still works afterwards.
    assert_eq!(pool.submit(|| 7).unwrap().result(), Ok(7));
}
