//! The `tandem` program from the outside: its commands, arguments, exit codes and output
//! formats (the JSON line format is a documented interface).

use std::process::{Command, Output};

fn tandem(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(args)
        .output()
        .expect("the tandem binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("UTF-8 output")
}

fn python_available() -> bool {
    Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn tour_list_names_every_scenario_with_its_seeds() {
    let out = tandem(&["tour", "--list"]);
    assert!(out.status.success());
    let text = stdout(&out);
    for name in [
        "lock-race",
        "singleton",
        "semaphore-pool",
        "barrier",
        "queue-3p3c",
        "pool-io",
        "pool-cpu",
        "bank-transfer",
        "pipe",
        "process-memory",
        "process-sync",
        "lock-owner-died",
        "process-queue",
        "process-pool",
        "pool-worker-killed",
    ] {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("`tour --list` does not list {name}:\n{text}"));
        assert!(line.contains("seeds:"), "{name} does not cite its seeds");
    }
}

#[test]
fn a_tour_scenario_checks_its_own_outcome() {
    let out = tandem(&["tour", "lock-race"]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("expected"), "no self-check printed:\n{text}");
}

#[test]
fn an_unknown_scenario_fails_and_says_how_to_list_them() {
    let out = tandem(&["tour", "no-such-scenario"]);
    assert!(!out.status.success());
    let all = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(
        all.contains("no-such-scenario") && all.contains("--list"),
        "{all}"
    );
}

#[test]
fn bench_json_prints_one_object_per_benchmark_and_impl() {
    let out = tandem(&["bench", "lock.uncontended", "--quick", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let mut impls = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
        assert_eq!(v["bench"], "lock.uncontended");
        let ns = v["ns_per_op"].as_f64().expect("ns_per_op is a number");
        let (min, max) = (v["min"].as_f64().unwrap(), v["max"].as_f64().unwrap());
        assert!(
            0.0 < min && min <= ns && ns <= max,
            "min ≤ median ≤ max: {line}"
        );
        assert_eq!(v["runs"], 3, "--quick runs three times");
        impls.push(v["impl"].as_str().unwrap().to_owned());
    }
    let mut expected = vec!["tandem", "std", "parking_lot"];
    if python_available() {
        expected.push("cpython");
    }
    assert_eq!(impls, expected);
}

#[test]
fn bench_markdown_prints_the_benchmarks_md_table() {
    let out = tandem(&["bench", "rlock", "--quick", "--markdown"]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("### `rlock.reentrant` — "), "{text}");
    assert!(text.contains("| impl | ns/op (median) | min–max | tandem ÷ impl |"));
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("| parking_lot |"))
        .collect();
    assert_eq!(rows.len(), 1, "{text}");
    assert!(
        rows[0].trim_end().ends_with("× |"),
        "a ratio to tandem: {}",
        rows[0]
    );
}

#[test]
fn bench_svg_draws_every_benchmark_of_the_run() {
    let path = std::env::temp_dir().join(format!("tandem-chart-{}.svg", std::process::id()));
    let file = path.to_str().expect("a UTF-8 temp path");
    let out = tandem(&[
        "bench",
        "lock.uncontended",
        "rlock",
        "--quick",
        "--json",
        "--svg",
        file,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let svg = std::fs::read_to_string(&path).expect("the chart was written");
    std::fs::remove_file(&path).ok();

    // Well-formed XML whose root is an SVG element.
    let doc = roxmltree::Document::parse(&svg).expect("the chart is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let texts: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(str::trim)
        .collect();
    // Every benchmark and implementation the run measured is named.
    let mut named = Vec::new();
    for line in stdout(&out).lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        named.push(v["bench"].as_str().unwrap().to_owned());
        named.push(v["impl"].as_str().unwrap().to_owned());
    }
    assert!(
        named.contains(&"lock.uncontended".to_owned())
            && named.contains(&"rlock.reentrant".to_owned())
    );
    for name in &named {
        assert!(
            texts.contains(&name.as_str()),
            "the chart does not name {name}: {texts:?}"
        );
    }
    // The caption names the CPU.
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    if let Some(model) = cpuinfo.lines().find(|l| l.starts_with("model name")) {
        let model = model.split_once(':').unwrap().1.trim();
        assert!(
            texts.iter().any(|t| t.contains(model)),
            "no {model:?} in {texts:?}"
        );
    }
}

#[test]
fn bench_list_and_bad_prefixes() {
    let out = tandem(&["bench", "--list"]);
    assert!(out.status.success());
    let text = stdout(&out);
    for name in [
        "lock.contended",
        "queue.mpmc.unbounded",
        "executor.submit_result",
    ] {
        assert!(text.contains(name), "`bench --list` lacks {name}");
    }
    let out = tandem(&["bench", "no.such.bench"]);
    assert!(!out.status.success(), "an unmatched prefix is an error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--list"));
    let out = tandem(&["bench", "--json", "--markdown"]);
    assert!(
        !out.status.success(),
        "two output formats at once are refused"
    );
}

#[test]
fn a_closed_pipe_ends_the_program_quietly() {
    // `tandem bench ... | head -1`: the reader goes away after one line while the benchmarks
    // still have lines to print.
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["bench", "lock", "rlock", "--quick"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the tandem binary runs");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut first)
        .expect("one line");
    assert!(first.starts_with("tandem bench:"), "{first}");
    // The reader is dropped here: the next line the program prints hits a closed pipe.
    let out = child.wait_with_output().expect("the program ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked"),
        "a panic on a closed pipe:\n{stderr}"
    );
    assert!(out.status.success(), "{:?}", out.status);
}

#[test]
fn the_process_benchmarks_have_their_names_and_impls() {
    let out = tandem(&["bench", "--list", "process", "pipe"]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    for (bench, impls) in [
        (
            "process.spawn_join",
            "[tandem, floor, cpython-fork, cpython-spawn]",
        ),
        ("pipe.roundtrip.8b", "[tandem, floor, ipc-channel, cpython]"),
        ("pipe.roundtrip.4k", "[tandem, floor, ipc-channel, cpython]"),
        ("pipe.stream", "[tandem, floor, ipc-channel, cpython]"),
        (
            "process.lock.uncontended",
            "[tandem, thread-lock, pthread-robust, cpython]",
        ),
        (
            "process.lock.handoff",
            "[tandem, floor, pthread-robust, cpython]",
        ),
        ("process.semaphore", "[tandem, cpython]"),
        ("process.barrier.round", "[tandem, cpython]"),
        ("process.lock.recovery.p50", "[tandem]"),
        ("process.lock.recovery.p99", "[tandem]"),
        (
            "process.queue.spsc",
            "[tandem, floor, ipc-channel, cpython, cpython-simple]",
        ),
        (
            "process.queue.mpmc",
            "[tandem, floor, ipc-channel, cpython, cpython-simple]",
        ),
        (
            "process.queue.spsc.1k",
            "[tandem, floor, ipc-channel, cpython, cpython-simple]",
        ),
        (
            "process.pool.submit_result",
            "[tandem, cpython, cpython-pool]",
        ),
        ("process.pool.map", "[tandem, cpython, cpython-pool]"),
        ("process.pool.respawn", "[tandem]"),
    ] {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(bench))
            .unwrap_or_else(|| panic!("no {bench} in:\n{text}"));
        assert!(line.ends_with(impls), "{line}");
    }
}

#[test]
fn the_process_tours_pass() {
    let out = tandem(&[
        "tour",
        "pipe",
        "process-memory",
        "process-sync",
        "lock-owner-died",
        "process-queue",
        "process-pool",
        "pool-worker-killed",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout(&out).contains("7 scenario(s), 35 checks, all passed"),
        "{}",
        stdout(&out)
    );
}

/// A child started from a different build of a program refuses to run the function (it
/// would otherwise jump to an offset that means something else in that binary).
#[cfg(target_os = "linux")]
#[test]
fn a_child_from_a_different_build_refuses_with_a_clear_error() {
    use pytandem::process::{Process, ProcessError};
    fn square(x: u64) -> u64 {
        x * x
    }
    let child = Process::builder()
        .executable(env!("CARGO_BIN_EXE_tandem"))
        .spawn(square, 3)
        .unwrap();
    let err = child.join().unwrap_err();
    assert!(matches!(err, ProcessError::Refused { .. }), "{err:?}");
    assert!(err.to_string().contains("different build"), "{err}");
    assert_eq!(err.exitcode(), Some(2));
}
