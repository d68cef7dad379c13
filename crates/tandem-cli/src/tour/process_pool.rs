//! Process pools: seed 000's `Pool.map` of `x * x`, seed 003's CPU-bound factorial lesson
//! run three ways (sequential, thread pool, process pool), and a worker killed mid-task —
//! which Python's pools do not survive.

use std::time::{Duration, Instant};

use pytandem::executor::{TaskError, ThreadPoolExecutor};
use pytandem::process::{cpu_count, Pool, ProcessPoolExecutor, WorkerError};

use super::executor::{factorial_digits, progress_bar};
use super::{Report, Scenario};

pub(crate) fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "process-pool",
            title: "Pool.map of x * x, and CPU-bound factorials sequential vs threads vs processes",
            seed: "000 (Process Pool), 003 (CPU-bound thread pools), 001 (the GIL and multiprocessing)",
            run: process_pool,
        },
        Scenario {
            name: "pool-worker-killed",
            title: "A pool worker killed mid-task: only that task fails, the pool goes on",
            seed: "000 (Process Pool), 004 (best practices: cleanup)",
            run: worker_killed,
        },
    ]
}

fn process_task(x: u64) -> u64 {
    x * x
}

fn digits(n: u32) -> (usize, u64) {
    factorial_digits(n)
}

fn process_pool(r: &mut Report) {
    r.say("with Pool(processes=4) as pool: results = pool.map(process_task, range(10))");
    let pool = Pool::new(4).expect("pool");
    let results = pool.map(process_task, 0..10).ok();
    r.check_eq(
        "results",
        results,
        Some((0..10u64).map(|x| x * x).collect()),
    );
    pool.close();
    pool.join();

    let heavy: Vec<u32> = (0..48).map(|i| 2000 + (i * 397) % 4000).collect();
    let cores = cpu_count();
    r.say(format!(
        "Seed 003's lesson with real CPU work: the digits of n! for {} values of n up to 6000, on {cores} core(s):",
        heavy.len()
    ));
    let start = Instant::now();
    let sequential: Vec<(usize, u64)> = heavy.iter().map(|&n| digits(n)).collect();
    let t_seq = start.elapsed();

    let threads = ThreadPoolExecutor::builder()
        .max_workers(cores)
        .build()
        .expect("thread pool");
    let start = Instant::now();
    let by_threads: Vec<(usize, u64)> = threads
        .map(digits, heavy.clone())
        .expect("the pool is open")
        .map(|r| r.unwrap_or_default())
        .collect();
    let t_threads = start.elapsed();

    let processes = ProcessPoolExecutor::builder()
        .max_workers(cores)
        .build()
        .expect("process pool");
    let bar = progress_bar(heavy.len() as u64);
    let start = Instant::now();
    let tasks: Vec<_> = heavy
        .iter()
        .map(|&n| processes.submit(digits, n).expect("submit"))
        .collect();
    let mut by_processes = Vec::with_capacity(tasks.len());
    for t in tasks {
        by_processes.push(t.result().unwrap_or_default());
        bar.inc(1);
    }
    bar.finish_and_clear();
    let t_processes = start.elapsed();

    r.say(format!(
        "  sequential:                 {:>8.1} ms",
        t_seq.as_secs_f64() * 1e3
    ));
    r.say(format!(
        "  thread pool ({cores} workers):   {:>8.1} ms",
        t_threads.as_secs_f64() * 1e3
    ));
    r.say(format!(
        "  process pool ({cores} workers):  {:>8.1} ms",
        t_processes.as_secs_f64() * 1e3
    ));
    r.say("Rust threads are not held back by a GIL: the thread pool already uses every core, as");
    r.say(
        "Python needs processes to do. Processes add start-up and copying (arguments and results",
    );
    r.say("travel between address spaces) and buy isolation: a crash in a task cannot take the");
    r.say("caller down (see pool-worker-killed). Times vary with the machine's load.");
    r.check(
        "the thread pool's results equal the sequential ones",
        by_threads == sequential,
    );
    r.check(
        "the process pool's results equal the sequential ones",
        by_processes == sequential,
    );
}

/// Task `i`: task 3 kills its own worker process.
fn maybe_crash(i: u32) -> u32 {
    if i == 3 {
        // SAFETY: raising SIGKILL at ourselves: this worker process dies, as the scenario means.
        #[allow(unsafe_code)]
        unsafe {
            libc::raise(libc::SIGKILL);
        }
    }
    i * 10
}

fn worker_killed(r: &mut Report) {
    r.say("6 tasks on a pool of 2 worker processes; task 3 kills its own worker with SIGKILL.");
    r.say(
        "Python: ProcessPoolExecutor raises BrokenProcessPool for every pending task and refuses",
    );
    r.say("all later work; multiprocessing.Pool hangs (cpython#96062).");
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .build()
        .expect("pool");
    let tasks: Vec<_> = (0..6)
        .map(|i| pool.submit(maybe_crash, i).expect("submit"))
        .collect();
    let outcomes: Vec<_> = tasks.into_iter().map(|t| t.result()).collect();
    for (i, o) in outcomes.iter().enumerate() {
        match o {
            Ok(v) => r.say(format!("  task {i}: {v}")),
            Err(e) => r.say(format!("  task {i}: {e}")),
        }
    }
    let failed: Vec<usize> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| o.is_err())
        .map(|(i, _)| i)
        .collect();
    r.check_eq("the tasks that failed", failed, vec![3]);
    r.check(
        "task 3 failed because its worker was killed by signal 9",
        matches!(
            outcomes[3],
            Err(TaskError::Failed(WorkerError::Died {
                signal: Some(9),
                ..
            }))
        ),
    );
    let after = pool.submit(maybe_crash, 7).map(|t| t.result());
    r.check_eq(
        "the pool still takes work: task 7 gives",
        after.ok().and_then(Result::ok),
        Some(70),
    );
    let start = Instant::now();
    pool.shutdown(true, false);
    r.check(
        "the pool shuts down cleanly",
        start.elapsed() < Duration::from_secs(30),
    );
}
