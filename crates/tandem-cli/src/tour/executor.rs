//! Thread-pool scenarios: the seeds' `ThreadPoolExecutor` lessons — futures and `map`, an
//! I/O-bound download (sequential vs 2 and 10 workers, against a local HTTP server that
//! answers after a fixed delay), a CPU-bound computation (where Rust, unlike Python,
//! speeds up with threads), and monitoring a pool while it works.

use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use pytandem::executor::{as_completed, MapOptions, TaskError, ThreadPoolExecutor};

use super::{eventually, Report, Scenario};

pub(crate) fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "pool-basics",
            title: "A thread pool: submit → Task, map in order, a panicking task fails alone",
            seed: "000 (Thread Pool), 004 (Thread Pool), 003 (Thread Pools)",
            run: basics,
        },
        Scenario {
            name: "pool-io",
            title: "I/O-bound downloads: sequential vs pools of 2 and 10 workers",
            seed: "003 (Thread Pool Example 1)",
            run: io_bound,
        },
        Scenario {
            name: "pool-cpu",
            title: "CPU-bound work: without a GIL, threads do speed it up",
            seed: "003 (Thread Pool Example 2), 001 (the GIL)",
            run: cpu_bound,
        },
        Scenario {
            name: "pool-monitor",
            title:
                "Monitoring a pool: workers alive/idle, tasks queued/running/done; cancel, shutdown",
            seed: "004 (best practices: monitor thread resources, cleanup)",
            run: monitor,
        },
    ]
}

fn pool(workers: usize) -> ThreadPoolExecutor {
    ThreadPoolExecutor::builder()
        .max_workers(workers)
        .build()
        .expect("a valid pool configuration")
}

// ----- basics --------------------------------------------------------------------------------

fn basics(r: &mut Report) {
    r.say("Python: with ThreadPoolExecutor(max_workers=3) as ex: results = list(ex.map(task, range(10)))");
    let pool = pool(3);
    let squares: Result<Vec<u64>, TaskError> = pool
        .map(|x: u64| x * x, 0..10)
        .expect("the pool is open")
        .collect();
    r.check_eq(
        "pool.map(|x| x * x, 0..10)",
        squares,
        Ok(vec![0, 1, 4, 9, 16, 25, 36, 49, 64, 81]),
    );

    r.say("submit() returns a Task (Python's Future); result() waits for its value:");
    let answer = pool.submit(|| 6 * 7).expect("the pool is open");
    r.check_eq("pool.submit(|| 6 * 7)?.result()", answer.result(), Ok(42));

    r.say("a task that panics fails only its own Task, with the message; the worker lives on:");
    let failing = super::quietly(|| {
        pool.submit(|| -> u32 { panic!("division by zero") })
            .expect("the pool is open")
            .result()
    })
    .expect("the panic stays inside the task");
    r.check_eq(
        "the panicking task's result",
        failing,
        Err(TaskError::Panicked("division by zero".into())),
    );
    let after = pool.submit(|| "still working").expect("the pool is open");
    r.check_eq("the next task", after.result(), Ok("still working"));

    r.say("as_completed yields tasks as they finish (here: the shortest sleep first):");
    let tasks = [30u64, 10, 20].map(|ms| {
        let task = pool
            .submit(move || std::thread::sleep(Duration::from_millis(ms)))
            .expect("the pool is open");
        (ms, task)
    });
    let order: Vec<u64> = as_completed(tasks, Some(Duration::from_secs(10)))
        .map(|done| done.expect("well within the timeout").0)
        .collect();
    r.say(format!(
        "completion order of the 30/10/20 ms tasks: {order:?}"
    ));
    r.check_eq("tasks yielded", order.len(), 3);

    r.say("a scope lets tasks borrow from the stack (no Arc, no 'static):");
    let words = ["alpha", "beta", "gamma", "delta"];
    let total: usize = pool.scope(|s| {
        let tasks: Vec<_> = words
            .iter()
            .map(|w| s.submit(move || w.len()).expect("the pool is open"))
            .collect();
        tasks.into_iter().map(|t| t.result().unwrap_or(0)).sum()
    });
    r.check_eq("total letters counted by scoped tasks", total, 19);
}

// ----- I/O-bound -----------------------------------------------------------------------------

/// How long the local server takes to answer each request: the "network".
const LATENCY: Duration = Duration::from_millis(50);
/// As many pages as the seed's URL list.
const PAGES: usize = 23;

/// A tiny HTTP/1.0 server on 127.0.0.1 (an ephemeral port) that answers every request after
/// [`LATENCY`]. Its connections are served by a tandem pool, so many requests wait at once.
struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    fn start() -> std::io::Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let accept = std::thread::Builder::new()
            .name("http-server".into())
            .spawn(move || {
                let handlers = ThreadPoolExecutor::builder()
                    .max_workers(32)
                    .thread_name_prefix("http-handler")
                    .build()
                    .expect("a valid pool configuration");
                for conn in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = conn {
                        // A dropped connection just fails that one download.
                        let _ = handlers.submit(move || serve(stream));
                    }
                }
            })?;
        Ok(Server {
            addr,
            stop,
            accept: Some(accept),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// The page the server sends for `path`: deterministic, a different size for each page.
fn page_body(path: &str) -> String {
    let n = path.bytes().fold(7usize, |h, b| h * 31 + b as usize) % 4000 + 500;
    format!(
        "<html><body><h1>{path}</h1><p>{}</p></body></html>",
        "lorem ipsum ".repeat(n / 12)
    )
}

fn serve(stream: TcpStream) {
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // Skip the headers, up to the blank line.
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_owned();
    std::thread::sleep(LATENCY); // the network and the far server
    let body = page_body(&path);
    let mut stream = &stream;
    let _ = write!(
        stream,
        "HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// The seed's `download_page`: the status code and the content length, or the error.
fn download_page(addr: SocketAddr, path: &str) -> Result<(u16, usize), String> {
    let fetch = || -> std::io::Result<(u16, usize)> {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        let text = String::from_utf8_lossy(&response);
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map_or(0, |(_, b)| b.len());
        Ok((status, body))
    };
    fetch().map_err(|e| e.to_string())
}

fn io_bound(r: &mut Report) {
    let server = match Server::start() {
        Ok(s) => s,
        Err(e) => {
            r.check(format!("start a local HTTP server ({e})"), false);
            return;
        }
    };
    let addr = server.addr;
    let paths: Vec<String> = (0..PAGES).map(|i| format!("/page/{i}")).collect();
    r.say(format!(
        "a local HTTP server on {addr} answers each request after {} ms; {PAGES} pages to download",
        LATENCY.as_millis()
    ));

    let start = Instant::now();
    let sequential: Vec<Result<(u16, usize), String>> =
        paths.iter().map(|p| download_page(addr, p)).collect();
    let sequential_time = start.elapsed();
    r.say(format!(
        "sequential:          {:5.2} s",
        sequential_time.as_secs_f64()
    ));

    let mut times = Vec::new();
    for workers in [2, 10] {
        let pool = pool(workers);
        let start = Instant::now();
        // Python: results = executor.map(download_page, urls)
        let results: Vec<Result<(u16, usize), String>> = pool
            .map(move |p: String| download_page(addr, &p), paths.clone())
            .expect("the pool is open")
            .map(|r| r.unwrap_or_else(|e| Err(e.to_string())))
            .collect();
        let took = start.elapsed();
        r.say(format!(
            "pool of {workers:>2} workers:  {:5.2} s  ({:.1}× faster than sequential)",
            took.as_secs_f64(),
            sequential_time.as_secs_f64() / took.as_secs_f64()
        ));
        r.check(
            format!("the {workers}-worker pool's pages equal the sequential ones, in order"),
            results == sequential,
        );
        times.push(took);
    }
    let ok = sequential
        .iter()
        .filter(|p| matches!(p, Ok((200, _))))
        .count();
    r.check_eq("pages downloaded with status 200", ok, PAGES);
    r.say("the seed measured 6.0 s sequential, 3.5 s with 2 threads, 1.6 s with 10: threads");
    r.say("overlap their waiting, in Python as in Rust, because the GIL is released during I/O.");
    r.check(
        "10 workers are at least 3× faster than sequential (ideal: 23 waits / 3 rounds ≈ 7.7×)",
        times[1] * 3 < sequential_time,
    );
    drop(server);
}

// ----- CPU-bound -----------------------------------------------------------------------------

/// `n!`, exactly, as base-10⁹ limbs (least significant first).
fn factorial(n: u32) -> Vec<u64> {
    const BASE: u64 = 1_000_000_000;
    let mut limbs = vec![1u64];
    for k in 2..=u64::from(n) {
        let mut carry = 0;
        for limb in limbs.iter_mut() {
            let v = *limb * k + carry;
            *limb = v % BASE;
            carry = v / BASE;
        }
        while carry > 0 {
            limbs.push(carry % BASE);
            carry /= BASE;
        }
    }
    limbs
}

/// The number of decimal digits of `n!` and the sum of those digits.
pub(crate) fn factorial_digits(n: u32) -> (usize, u64) {
    let limbs = factorial(n);
    let top = limbs.last().copied().unwrap_or(0);
    let digits = (limbs.len() - 1) * 9 + top.to_string().len();
    let digit_sum = limbs
        .iter()
        .map(|&l| {
            let (mut l, mut s) = (l, 0);
            while l > 0 {
                s += l % 10;
                l /= 10;
            }
            s
        })
        .sum();
    (digits, digit_sum)
}

fn cpu_bound(r: &mut Report) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    r.say("1. The seed's exact workload: math.factorial of [5, 10, … 40] × 10,000 (80,000 tiny tasks).");
    let tiny: Vec<u32> = [5, 10, 15, 20, 25, 30, 35, 40].repeat(10_000);
    let start = Instant::now();
    let sequential: Vec<(usize, u64)> = tiny.iter().map(|&n| factorial_digits(n)).collect();
    let sequential_time = start.elapsed();
    let pool = pool(cores);
    let start = Instant::now();
    let one_per_item: Vec<(usize, u64)> = pool
        .map(factorial_digits, tiny.clone())
        .expect("the pool is open")
        .map(|r| r.unwrap_or_default())
        .collect();
    let one_per_item_time = start.elapsed();
    let start = Instant::now();
    let chunked: Vec<(usize, u64)> = pool
        .map_with(
            factorial_digits,
            tiny.clone(),
            MapOptions::new().chunksize(1_000),
        )
        .expect("the pool is open")
        .map(|r| r.unwrap_or_default())
        .collect();
    let chunked_time = start.elapsed();
    let per_item = |d: Duration| d.as_nanos() as f64 / tiny.len() as f64;
    r.say(format!(
        "   sequential {:.4} s; pool, one task per item {:.4} s; pool, chunks of 1000 {:.4} s",
        sequential_time.as_secs_f64(),
        one_per_item_time.as_secs_f64(),
        chunked_time.as_secs_f64()
    ));
    r.say(format!(
        "   per item: {:.0} ns of work alone, {:.0} ns as its own task, {:.0} ns in chunks",
        per_item(sequential_time),
        per_item(one_per_item_time),
        per_item(chunked_time)
    ));
    r.say("   The seed measured 0.0097 s sequential and 0.59 s in its pool: Python pays ~10 µs of");
    r.say("   pool overhead per task, and the GIL keeps its 4 threads from computing in parallel.");
    r.say("   Here a task costs a fraction of a microsecond, and chunking amortizes even that.");
    r.check(
        "the pool's results equal the sequential ones (both pool variants)",
        one_per_item == sequential && chunked == sequential,
    );

    r.say(format!(
        "2. Real CPU work: the exact digits of n! for 64 values of n up to 6000, on the {cores} core(s) present."
    ));
    let heavy: Vec<u32> = (0..64).map(|i| 2000 + (i * 397) % 4000).collect();
    let start = Instant::now();
    let sequential: Vec<(usize, u64)> = heavy.iter().map(|&n| factorial_digits(n)).collect();
    let sequential_time = start.elapsed();

    let bar = progress_bar(heavy.len() as u64);
    let start = Instant::now();
    let tasks = heavy.iter().enumerate().map(|(i, &n)| {
        let task = pool
            .submit(move || factorial_digits(n))
            .expect("the pool is open");
        (i, task)
    });
    let mut parallel = vec![(0, 0); heavy.len()];
    for done in as_completed(tasks.collect::<Vec<_>>(), Some(Duration::from_secs(120))) {
        match done {
            Ok((i, task)) => {
                parallel[i] = task.result().unwrap_or_default();
                bar.inc(1);
            }
            Err(e) => {
                r.check(format!("the parallel run finishes ({e})"), false);
                break;
            }
        }
    }
    let parallel_time = start.elapsed();
    bar.finish_and_clear();
    let speedup = sequential_time.as_secs_f64() / parallel_time.as_secs_f64();
    r.say(format!(
        "   sequential {:.3} s; pool of {cores} worker(s) {:.3} s: {speedup:.2}× (ideal {cores}×)",
        sequential_time.as_secs_f64(),
        parallel_time.as_secs_f64()
    ));
    r.check(
        "the pool's digits equal the sequential ones",
        parallel == sequential,
    );
    r.say(format!(
        "   e.g. {}! has {} digits summing to {}",
        heavy[0], sequential[0].0, sequential[0].1
    ));
    r.say(
        "   Why this differs from the seed: CPython's GIL lets one thread run Python bytecode at a",
    );
    r.say("   time, so its threads take turns on CPU work and only add overhead. Rust has no GIL:");
    r.say(
        "   each worker runs on its own core, so CPU-bound work speeds up by about the number of",
    );
    r.say("   cores (minus what the machine is busy with) — as long as each task is big enough");
    r.say("   to dwarf the pool's per-task cost (part 1).");
}

/// A progress bar on the terminal, hidden when stdout is not one.
pub(crate) fn progress_bar(len: u64) -> ProgressBar {
    if !std::io::stdout().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("    {bar:40} {pos}/{len} factorials") {
        bar.set_style(style);
    }
    bar
}

// ----- monitoring ----------------------------------------------------------------------------

fn monitor(r: &mut Report) {
    let pool = pool(3);
    r.say(format!(
        "a pool of 3 workers, before any work: {}",
        describe(&pool)
    ));
    r.check_eq(
        "workers started before the first task",
        pool.stats().workers_alive,
        0,
    );

    // Nine tasks that wait for a signal each: 3 run, 6 queue.
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..9).map(|_| mpsc::channel::<()>()).unzip();
    let tasks: Vec<_> = receivers
        .into_iter()
        .enumerate()
        .map(|(i, rx)| {
            pool.submit(move || {
                let _ = rx.recv();
                i
            })
            .expect("the pool is open")
        })
        .collect();
    // Three workers pick up a task each (if not within 10 s, the check below says so).
    eventually(|| pool.stats().tasks_running >= 3);
    let busy = pool.stats();
    r.say(format!(
        "9 tasks submitted, each waiting for a signal: {}",
        describe(&pool)
    ));
    r.check_eq(
        "(alive, running, queued)",
        (busy.workers_alive, busy.tasks_running, busy.tasks_queued),
        (3, 3, 6),
    );

    r.say("cancel the last two queued tasks (Python: future.cancel()):");
    let cancelled = tasks[7].cancel() && tasks[8].cancel();
    r.check("both cancelled before they started", cancelled);
    r.check("a running task cannot be cancelled", !tasks[0].cancel());

    for tx in &senders {
        let _ = tx.send(());
    }
    let results: Vec<Result<usize, TaskError>> = tasks.into_iter().map(|t| t.result()).collect();
    r.check_eq(
        "results",
        results,
        (0..9)
            .map(|i| {
                if i >= 7 {
                    Err(TaskError::Cancelled)
                } else {
                    Ok(i)
                }
            })
            .collect(),
    );
    pool.shutdown(true, false);
    let end = pool.stats();
    r.say(format!("after shutdown(wait=true): {}", describe(&pool)));
    r.check_eq(
        "(completed, cancelled, alive)",
        (end.tasks_completed, end.tasks_cancelled, end.workers_alive),
        (7, 2, 0),
    );
    r.check(
        "submitting after shutdown is an error, not a crash",
        pool.submit(|| 0).is_err(),
    );
}

fn describe(pool: &ThreadPoolExecutor) -> String {
    let s = pool.stats();
    format!(
        "workers alive {} (idle {}), tasks queued {} running {} completed {} failed {} cancelled {}",
        s.workers_alive,
        s.workers_idle,
        s.tasks_queued,
        s.tasks_running,
        s.tasks_completed,
        s.tasks_failed,
        s.tasks_cancelled
    )
}
