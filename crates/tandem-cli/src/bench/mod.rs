//! `tandem bench`: every primitive against its peers, in one process run, as ratios.
//!
//! # Adding benchmarks (the harness API)
//! Each file in this folder covers one primitive and exports two functions, registered in
//! [`all_benches`] and [`all_sizes`]:
//!
//! ```ignore
//! pub(crate) fn benches() -> Vec<Bench> {
//!     vec![Bench::new("lock.uncontended", "acquire + release, one thread")
//!         .native("tandem", |iters| {
//!             let lock = pytandem::sync::Lock::new(0u64);
//!             time(|| {
//!                 for _ in 0..iters {
//!                     *lock.acquire() += 1;
//!                 }
//!             })
//!         })
//!         .native("std", |iters| { /* the same with std::sync::Mutex */ })
//!         .cpython("import threading\nlock = threading.Lock()\n",
//!                  "for _ in range(n):\n    with lock:\n        pass\n")]
//! }
//!
//! pub(crate) fn sizes() -> Vec<(&'static str, usize)> {
//!     vec![("Lock<()>", std::mem::size_of::<pytandem::sync::Lock<()>>())]
//! }
//! ```
//!
//! - A native runner gets an iteration count `iters` and returns the wall time of exactly
//!   `iters` operations (set-up such as spawning threads may be outside or inside the timed
//!   part; [`time`] measures a closure). The harness calibrates `iters` so one run lasts about
//!   [`Settings::target`], then repeats, the native impls' runs interleaved round-robin (see
//!   [`run_natives`]): the figure is the median ns per operation over the runs, with min and
//!   max.
//! - A CPython runner is two snippets of Python: `setup` runs once, `body` runs `n`
//!   operations with `n` already defined (indent nothing: the harness indents it into a
//!   function). It runs under `python3` when it is on the PATH, with the same calibration.
//! - Impl names are the peers' names: `tandem`, `std`, `parking_lot`, `crossbeam`, `flume`,
//!   `rayon`, `threadpool`, `cpython`. The first impl is the one the others are compared to
//!   (always `tandem`).

mod barrier;
mod chart;
mod condition;
mod diagnostics;
mod event;
mod executor;
mod lock;
#[cfg(target_os = "linux")]
pub(crate) mod process;
#[cfg(target_os = "linux")]
mod process_pool;
#[cfg(target_os = "linux")]
mod process_queue;
#[cfg(target_os = "linux")]
mod process_sync;
mod queue;
mod rlock;
mod semaphore;

use crate::out::outln;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;

/// Arguments of `tandem bench`.
#[derive(Args, Debug)]
pub(crate) struct BenchArgs {
    /// Run only the benchmarks whose names start with one of these prefixes
    /// (e.g. `lock` or `queue.mpmc`).
    prefixes: Vec<String>,
    /// Fewer and shorter repetitions (a smoke run; figures are noisier).
    #[arg(long)]
    quick: bool,
    /// Print one JSON object per line (benchmark × implementation) instead of tables.
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// Print Markdown tables (the format of BENCHMARKS.md) instead of text tables.
    #[arg(long)]
    markdown: bool,
    /// List the benchmarks and exit.
    #[arg(long)]
    list: bool,
    /// Also draw the run as an SVG chart in FILE: per benchmark, each implementation's
    /// ns/op on a log scale, the CPU model in the caption.
    #[arg(long, value_name = "FILE")]
    svg: Option<std::path::PathBuf>,
}

/// One benchmark file's two exports: its benchmarks and its `size_of` rows.
type Module = (fn() -> Vec<Bench>, fn() -> Vec<(&'static str, usize)>);

/// Every benchmark file, in the order they run (one list, so a new file is registered once).
const MODULES: &[Module] = &[
    (lock::benches, lock::sizes),
    (rlock::benches, rlock::sizes),
    (semaphore::benches, semaphore::sizes),
    (event::benches, event::sizes),
    (condition::benches, condition::sizes),
    (barrier::benches, barrier::sizes),
    (queue::benches, queue::sizes),
    (executor::benches, executor::sizes),
    (diagnostics::benches, diagnostics::sizes),
    #[cfg(target_os = "linux")]
    (process::benches, process::sizes),
    #[cfg(target_os = "linux")]
    (process_sync::benches, process_sync::sizes),
    #[cfg(target_os = "linux")]
    (process_queue::benches, process_queue::sizes),
    #[cfg(target_os = "linux")]
    (process_pool::benches, process_pool::sizes),
];

/// Every benchmark, in the order they are run.
fn all_benches() -> Vec<Bench> {
    MODULES.iter().flat_map(|(benches, _)| benches()).collect()
}

/// `size_of` every primitive.
fn all_sizes() -> Vec<(&'static str, usize)> {
    MODULES.iter().flat_map(|(_, sizes)| sizes()).collect()
}

/// How long and how often to run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    /// Wall time one run should last.
    pub(crate) target: Duration,
    /// Runs per implementation.
    pub(crate) runs: usize,
}

/// A native runner: given an iteration count, the time those iterations took.
type NativeFn = Box<dyn Fn(u64) -> Duration>;

enum Runner {
    Native(NativeFn),
    /// Not measured, and why (a peer that cannot do this operation).
    Skip(&'static str),
    CPython {
        setup: &'static str,
        body: &'static str,
    },
}

struct Impl {
    name: &'static str,
    runner: Runner,
}

/// One benchmark: one operation, measured for tandem and each peer.
pub(crate) struct Bench {
    name: &'static str,
    about: &'static str,
    impls: Vec<Impl>,
}

impl Bench {
    /// A benchmark named `name` (`primitive.case`), whose operation `about` describes.
    pub(crate) fn new(name: &'static str, about: &'static str) -> Self {
        Bench {
            name,
            about,
            impls: Vec::new(),
        }
    }

    /// Adds a Rust implementation.
    pub(crate) fn native(
        mut self,
        name: &'static str,
        run: impl Fn(u64) -> Duration + 'static,
    ) -> Self {
        self.impls.push(Impl {
            name,
            runner: Runner::Native(Box::new(run)),
        });
        self
    }

    /// Lists a peer that cannot run this benchmark, with the reason (printed, not measured).
    pub(crate) fn skip(mut self, name: &'static str, why: &'static str) -> Self {
        self.impls.push(Impl {
            name,
            runner: Runner::Skip(why),
        });
        self
    }

    /// Adds CPython's implementation: `setup` once, then `body` runs `n` operations.
    pub(crate) fn cpython(self, setup: &'static str, body: &'static str) -> Self {
        self.cpython_as("cpython", setup, body)
    }

    /// Adds a CPython implementation under another name (`cpython-fork`, say).
    pub(crate) fn cpython_as(
        mut self,
        name: &'static str,
        setup: &'static str,
        body: &'static str,
    ) -> Self {
        self.impls.push(Impl {
            name,
            runner: Runner::CPython { setup, body },
        });
        self
    }
}

/// Times one call of `f`.
pub(crate) fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// Runs `per_thread(iters / threads)` on `threads` threads started together; the span from
/// the first thread's start to the last thread's end, as the threads themselves saw it.
///
/// Timed by the workers rather than by the spawning thread: with more threads than cores,
/// the spawning thread may not run again until the workers are done, and would then time
/// almost nothing.
pub(crate) fn contended(threads: usize, iters: u64, per_thread: impl Fn(u64) + Sync) -> Duration {
    let start_line = Barrier::new(threads);
    let share = (iters / threads as u64).max(1);
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    start_line.wait();
                    let start = Instant::now();
                    per_thread(share);
                    (start, Instant::now())
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a benchmark thread panicked"))
            .collect()
    });
    let first = spans
        .iter()
        .map(|s| s.0)
        .min()
        .expect("at least one thread");
    let last = spans
        .iter()
        .map(|s| s.1)
        .max()
        .expect("at least one thread");
    last - first
}

/// One implementation's figures, in ns per operation.
#[derive(Clone, Debug, Serialize)]
struct Figures {
    bench: &'static str,
    #[serde(rename = "impl")]
    implementation: &'static str,
    ns_per_op: f64,
    min: f64,
    max: f64,
    runs: usize,
}

enum Outcome {
    Measured(Figures),
    Skipped(String),
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn figures(bench: &'static str, implementation: &'static str, mut per_op: Vec<f64>) -> Figures {
    per_op.sort_by(|a, b| a.total_cmp(b));
    Figures {
        bench,
        implementation,
        ns_per_op: median(&per_op),
        min: per_op[0],
        max: per_op[per_op.len() - 1],
        runs: per_op.len(),
    }
}

/// Calibrates `f`: doubles the iterations until one run takes a tenth of the target, then
/// scales them so one run lasts about the target.
fn calibrate(f: &NativeFn, s: Settings) -> u64 {
    let mut iters = 1u64;
    loop {
        let took = f(iters);
        if took >= s.target / 10 || iters >= 1 << 40 {
            let per_iter = took.as_secs_f64() / iters as f64;
            return ((s.target.as_secs_f64() / per_iter.max(1e-12)) as u64).max(1);
        }
        iters *= 2;
    }
}

/// Runs every native impl of a benchmark `s.runs` times, interleaved: run 1 of each impl,
/// then run 2 of each, and so on. A shift in the machine's load during the benchmark (this
/// is a shared 2-core VM) then lands on every impl alike instead of on whichever ran last,
/// so the ratios compare like with like.
fn run_natives(
    bench: &'static str,
    natives: &[(&'static str, &NativeFn)],
    s: Settings,
) -> Vec<Figures> {
    let iters: Vec<u64> = natives.iter().map(|(_, f)| calibrate(f, s)).collect();
    let mut per_op = vec![Vec::with_capacity(s.runs); natives.len()];
    for _ in 0..s.runs {
        for (i, (_, f)) in natives.iter().enumerate() {
            per_op[i].push(f(iters[i]).as_nanos() as f64 / iters[i] as f64);
        }
    }
    natives
        .iter()
        .zip(per_op)
        .map(|((name, _), runs)| figures(bench, name, runs))
        .collect()
}

/// The Python side of the harness: calibrates like `run_native` and prints ns per op. It
/// runs only in the main module, so `multiprocessing`'s spawned children (which import the
/// script again) only define the setup's functions.
const PY_RUNNER: &str = r#"
import json, sys, time
def __measure(n):
    start = time.perf_counter()
    __bench(n)
    return time.perf_counter() - start
if __name__ == '__main__':
    target, runs = float(sys.argv[1]), int(sys.argv[2])
    n = 1
    while True:
        took = __measure(n)
        if took >= target / 10 or n >= 1 << 30:
            n = max(1, int(target / max(took / n, 1e-12)))
            break
        n *= 2
    print(json.dumps([__measure(n) * 1e9 / n for _ in range(runs)]))
"#;

fn python_available() -> bool {
    Command::new("python3")
        .arg("-c")
        .arg("pass")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run_cpython(
    bench: &'static str,
    implementation: &'static str,
    setup: &str,
    body: &str,
    s: Settings,
) -> Result<Figures, String> {
    let indented: String = body.lines().map(|l| format!("    {l}\n")).collect();
    let script = format!("{setup}\ndef __bench(n):\n{indented}    pass\n{PY_RUNNER}");
    // A file, not `python3 -c`: multiprocessing's `spawn` start method imports the main
    // module again in the child, which needs a path.
    let path = std::env::temp_dir().join(format!(
        "tandem-bench-{}-{}.py",
        std::process::id(),
        bench.replace('.', "_")
    ));
    std::fs::write(&path, script).map_err(|e| format!("could not write the script: {e}"))?;
    let out = Command::new("python3")
        .arg(&path)
        .arg(s.target.as_secs_f64().to_string())
        .arg(s.runs.to_string())
        .output();
    let _ = std::fs::remove_file(&path);
    let out = out.map_err(|e| format!("could not run python3: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "python3 failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let per_op: Vec<f64> = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("python3 printed something unexpected ({e})"))?;
    if per_op.is_empty() {
        return Err("python3 measured nothing".into());
    }
    Ok(figures(bench, implementation, per_op))
}

/// tandem's median among `outcomes`, if it was measured.
fn tandem_median(outcomes: &[(&'static str, Outcome)]) -> Option<f64> {
    outcomes.iter().find_map(|(name, o)| match o {
        Outcome::Measured(f) if *name == "tandem" => Some(f.ns_per_op),
        _ => None,
    })
}

/// tandem's median ÷ this impl's, as printed in the last column (empty for tandem itself).
fn ratio(tandem: Option<f64>, name: &str, f: &Figures) -> String {
    match tandem {
        Some(t) if name != "tandem" => format!("{:.2}×", t / f.ns_per_op),
        _ => String::new(),
    }
}

/// One benchmark's figures as a Markdown table, as BENCHMARKS.md records them.
fn print_markdown(bench: &Bench, outcomes: &[(&'static str, Outcome)]) {
    outln!("\n### `{}` — {}\n", bench.name, bench.about);
    outln!("| impl | ns/op (median) | min–max | tandem ÷ impl |");
    outln!("| --- | ---: | ---: | ---: |");
    let tandem = tandem_median(outcomes);
    for (name, outcome) in outcomes {
        match outcome {
            Outcome::Measured(f) => {
                let ratio = ratio(tandem, name, f);
                outln!(
                    "| {name} | {} | {}–{} | {ratio} |",
                    fmt_ns(f.ns_per_op),
                    fmt_ns(f.min),
                    fmt_ns(f.max)
                );
            }
            Outcome::Skipped(why) => outln!("| {name} | not measured: {why} | | |"),
        }
    }
}

fn print_table(bench: &Bench, outcomes: &[(&'static str, Outcome)]) {
    outln!("\n{} — {}", bench.name, bench.about);
    outln!(
        "  {:<12} {:>12} {:>22} {:>16}",
        "impl",
        "ns/op",
        "min–max",
        "tandem ÷ impl"
    );
    let tandem = tandem_median(outcomes);
    for (name, outcome) in outcomes {
        match outcome {
            Outcome::Measured(f) => {
                let ratio = ratio(tandem, name, f);
                outln!(
                    "  {:<12} {:>12} {:>22} {:>16}",
                    name,
                    fmt_ns(f.ns_per_op),
                    format!("{}–{}", fmt_ns(f.min), fmt_ns(f.max)),
                    ratio
                );
            }
            Outcome::Skipped(why) => outln!("  {name:<12} (not measured: {why})"),
        }
    }
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 10_000.0 {
        format!("{:.1} µs", ns / 1000.0)
    } else if ns >= 100.0 {
        format!("{ns:.0}")
    } else {
        format!("{ns:.1}")
    }
}

/// Runs `tandem bench`; `false` if a benchmark could not run.
pub(crate) fn run(args: &BenchArgs) -> bool {
    let benches: Vec<Bench> = all_benches()
        .into_iter()
        .filter(|b| {
            args.prefixes.is_empty() || args.prefixes.iter().any(|p| b.name.starts_with(p.as_str()))
        })
        .collect();
    if args.list {
        for b in &benches {
            let impls: Vec<_> = b.impls.iter().map(|i| i.name).collect();
            outln!("{:<28} {} [{}]", b.name, b.about, impls.join(", "));
        }
        return true;
    }
    if benches.is_empty() {
        eprintln!(
            "no benchmark matches {:?}; `tandem bench --list` lists them",
            args.prefixes
        );
        return false;
    }
    let settings = if args.quick {
        Settings {
            target: Duration::from_millis(4),
            runs: 3,
        }
    } else {
        Settings {
            target: Duration::from_millis(40),
            runs: 7,
        }
    };
    let python = python_available();
    if !args.json {
        outln!(
            "tandem bench: {} benchmark(s), {} run(s) of ~{} ms each; ratio = tandem's ns/op ÷ the peer's (below 1 means tandem is faster)",
            benches.len(),
            settings.runs,
            settings.target.as_millis()
        );
        if !python {
            outln!("note: python3 is not on the PATH, so CPython is not measured");
        }
    }
    let mut charted: Vec<Figures> = Vec::new();
    for bench in &benches {
        let natives: Vec<(&'static str, &NativeFn)> = bench
            .impls
            .iter()
            .filter_map(|imp| match &imp.runner {
                Runner::Native(f) => Some((imp.name, f)),
                Runner::CPython { .. } | Runner::Skip(_) => None,
            })
            .collect();
        let mut measured = run_natives(bench.name, &natives, settings).into_iter();
        let mut outcomes = Vec::new();
        for imp in &bench.impls {
            let outcome = match &imp.runner {
                Runner::Native(_) => {
                    Outcome::Measured(measured.next().expect("one figure per native impl"))
                }
                Runner::Skip(why) => Outcome::Skipped((*why).into()),
                Runner::CPython { .. } if !python => {
                    Outcome::Skipped("python3 not on the PATH".into())
                }
                Runner::CPython { setup, body } => {
                    match run_cpython(bench.name, imp.name, setup, body, settings) {
                        Ok(f) => Outcome::Measured(f),
                        Err(e) => Outcome::Skipped(e),
                    }
                }
            };
            if let Outcome::Measured(f) = &outcome {
                if args.json {
                    outln!("{}", serde_json::to_string(f).expect("figures serialize"));
                }
                if args.svg.is_some() {
                    charted.push(f.clone());
                }
            }
            outcomes.push((imp.name, outcome));
        }
        if args.markdown {
            print_markdown(bench, &outcomes);
        } else if !args.json {
            print_table(bench, &outcomes);
        }
        let _ = std::io::stdout().flush();
    }
    if args.markdown && args.prefixes.is_empty() {
        outln!("\n### `size_of`\n\n| type | bytes |\n| --- | ---: |");
        for (name, size) in all_sizes() {
            outln!("| {name} | {size} |");
        }
    } else if !args.json && args.prefixes.is_empty() {
        outln!("\nsize_of:");
        for (name, size) in all_sizes() {
            outln!("  {name:<28} {size:>4} bytes");
        }
    }
    if let Some(path) = &args.svg {
        let written = chart::svg(&charted, &chart::cpu_model())
            .and_then(|svg| std::fs::write(path, svg).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!(
                "tandem bench: cannot write the chart to {}: {e}",
                path.display()
            );
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[1.0, 2.0, 9.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 4.0, 9.0]), 3.0);
        let f = figures("b", "i", vec![5.0, 1.0, 3.0]);
        assert_eq!((f.ns_per_op, f.min, f.max, f.runs), (3.0, 1.0, 5.0, 3));
    }

    #[test]
    fn runs_are_interleaved_after_calibration() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let imp = |name: &'static str| -> NativeFn {
            let log = Arc::clone(&log);
            Box::new(move |iters| {
                log.lock().unwrap().push((name, iters));
                // One iteration "takes" 1 ms, so calibration stops at once.
                Duration::from_millis(iters)
            })
        };
        let (a, b) = (imp("a"), imp("b"));
        let settings = Settings {
            target: Duration::from_millis(10),
            runs: 3,
        };
        let figs = run_natives("x", &[("a", &a), ("b", &b)], settings);
        assert_eq!(figs.len(), 2);
        assert!(figs.iter().all(|f| f.runs == 3 && f.ns_per_op == 1e6));
        let timed: Vec<&str> = log.lock().unwrap()[2..].iter().map(|(n, _)| *n).collect();
        assert_eq!(timed, ["a", "b", "a", "b", "a", "b"], "round-robin runs");
        assert!(
            log.lock().unwrap()[2..]
                .iter()
                .all(|&(_, iters)| iters == 10),
            "each run lasts about the target"
        );
    }
}
