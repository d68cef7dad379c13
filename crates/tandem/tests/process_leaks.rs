//! Nothing is left behind: many spawn/kill/join cycles leave no zombie, no leaked file
//! descriptor and no shared memory entry. One test in its own binary, so no other test's
//! children or descriptors blur the counts.
#![cfg(target_os = "linux")]

pytandem::child_entry!();

use pytandem::process::{Connection, Pipe, Process, ProcessError, Value};
use std::time::Duration;

fn ready_then_block(conn: Connection<u8>) {
    conn.send(&1).unwrap();
    loop {
        std::thread::park();
    }
}

fn touch(v: Value<u64>) -> u64 {
    *v.lock() += 1;
    v.get()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn shm_entries() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Children of this process in any state, and how many of them are zombies.
fn children() -> (usize, usize) {
    let me = std::process::id().to_string();
    let (mut all, mut zombies) = (0, 0);
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("");
        if fields.next() == Some(me.as_str()) {
            all += 1;
            zombies += usize::from(state == "Z");
        }
    }
    (all, zombies)
}

#[test]
fn a_thousand_spawn_kill_join_cycles_leave_nothing_behind() {
    let cycles: usize = std::env::var("TANDEM_PROCESS_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    // Warm up: the supervisor's thread and eventfd are made once, on first use.
    let shared = Value::new(0u64).unwrap();
    assert_eq!(
        Process::spawn(touch, shared.clone())
            .unwrap()
            .join()
            .unwrap(),
        1
    );
    let fds = open_fds();
    let shm = shm_entries();

    for i in 0..cycles {
        let (a, b) = Pipe::new::<u8>().unwrap();
        let child = Process::spawn(ready_then_block, b).unwrap();
        match i % 3 {
            // Killed after it is running.
            0 => {
                assert_eq!(a.recv_timeout(Duration::from_secs(30)).unwrap(), 1);
                child.kill().unwrap();
                assert!(matches!(
                    child.join(),
                    Err(ProcessError::Signaled { signal: 9, .. })
                ));
            }
            // Killed at once, maybe before it ran anything.
            1 => {
                child.kill().unwrap();
                assert!(child.join().is_err());
            }
            // Terminated, and the handle dropped without a join: still reaped.
            _ => {
                assert_eq!(a.recv_timeout(Duration::from_secs(30)).unwrap(), 1);
                child.terminate().unwrap();
                drop(child);
            }
        }
    }
    // Dropped children are reaped by the supervisor as they end.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while children().0 > 0 || !pytandem::process::active_children().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "children left: {:?}",
            children()
        );
        std::thread::yield_now();
    }
    assert_eq!(children(), (0, 0), "no child and no zombie is left");
    assert_eq!(open_fds(), fds, "no file descriptor leaked");
    assert_eq!(shm_entries(), shm, "nothing new in /dev/shm");
    drop(shared);
}
