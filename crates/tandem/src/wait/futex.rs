//! The wait layer's second backend: futex words in shared memory, for waits between
//! processes (PROCESSES.md, "The wait layer across processes").
//!
//! A cross-process primitive keeps all of its state in 32-bit words of a shared mapping and
//! blocks with "sleep while this word equals X, until this deadline" ([`wait`]) and "wake n
//! sleepers on this word" ([`wake`]). The futexes are *shared* (no `FUTEX_PRIVATE_FLAG`): the
//! kernel keys them by the physical page, so a wake in one process reaches a sleeper in
//! another. `EINTR` and spurious returns are absorbed here, against the caller's one
//! [`Deadline`]; diagnostics record the wait here, once, for every process primitive.

use super::Deadline;
use rustix::io::Errno;
use rustix::thread::futex;
use std::sync::atomic::AtomicU32;

/// Sleeps while `*word == expected`, until woken or `deadline` passes; whether the deadline
/// had *not* passed when it returned.
///
/// Returns `true` on a wake, on a value that no longer matched, and on a signal: the caller
/// re-checks its own condition and calls again with the same deadline (a spurious return is
/// indistinguishable from a wake, as with every futex protocol). Returns `false` only once
/// the deadline has passed.
pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline: Deadline) -> bool {
    if deadline.has_passed() {
        return false;
    }
    let timeout = deadline.remaining_timespec();
    #[cfg(feature = "diagnostics")]
    let scope = {
        let scope = crate::diagnostics::ParkScope::begin(super::key_of(word), deadline.instant());
        scope.arm();
        scope
    };
    let result = futex::wait(word, futex::Flags::empty(), expected, timeout.as_ref());
    #[cfg(feature = "diagnostics")]
    drop(scope);
    match result {
        Err(Errno::TIMEDOUT) => !deadline.has_passed(),
        // Woken, the word already differed (EAGAIN), or a signal (EINTR): the caller
        // re-checks. No other error is possible for a valid, aligned word.
        _ => true,
    }
}

/// Spins while `*word == expected`, for about `LINGER`: whether the word changed.
///
/// A process primitive calls this before [`wait`] when a prompt answer is likely (a
/// hand-off between two processes): waking a process that sleeps in the kernel costs tens
/// of microseconds on a virtual machine whose idle CPU halts, while a waiter that lingers a
/// few microseconds sees the change without sleeping, and its waker, seeing nobody asleep,
/// makes no system call. Bounded: an idle waiter then sleeps and costs nothing.
pub(crate) fn linger(word: &AtomicU32, expected: u32) -> bool {
    linger_until(|| word.load(std::sync::atomic::Ordering::Acquire) != expected)
}

/// [`linger`] for any condition: spins until `ready()` or about [`LINGER`] has passed.
pub(crate) fn linger_until(mut ready: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    loop {
        for _ in 0..64 {
            if ready() {
                return true;
            }
            std::hint::spin_loop();
        }
        if start.elapsed() >= LINGER {
            return false;
        }
    }
}

/// How long [`linger`] spins.
pub(crate) const LINGER: std::time::Duration = std::time::Duration::from_micros(20);

/// Wakes up to `n` processes or threads sleeping on `word` (`u32::MAX`: all); how many
/// were woken.
pub(crate) fn wake(word: &AtomicU32, n: u32) -> usize {
    // The kernel reads the count as an `int`: `u32::MAX` would be -1, which wakes one.
    let n = n.min(i32::MAX as u32);
    futex::wake(word, futex::Flags::empty(), n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_changed_word_returns_at_once() {
        let word = AtomicU32::new(1);
        assert!(wait(&word, 0, Deadline::NEVER));
    }

    #[test]
    fn a_passed_deadline_times_out() {
        let word = AtomicU32::new(0);
        assert!(!wait(&word, 0, Deadline::after(Duration::ZERO)));
        let d = Deadline::after(Duration::from_millis(20));
        while wait(&word, 0, d) {}
        assert!(d.has_passed());
    }

    #[test]
    fn waking_all_wakes_every_sleeper() {
        let word = Arc::new(AtomicU32::new(0));
        let sleepers: Vec<_> = (0..3)
            .map(|_| {
                let w = Arc::clone(&word);
                std::thread::spawn(move || {
                    while w.load(Ordering::SeqCst) == 0 {
                        wait(&w, 0, Deadline::NEVER);
                    }
                })
            })
            .collect();
        // The sleepers re-wait after every wake while the word is 0, so they keep going
        // back to sleep; sooner or later one wake finds all three asleep and must wake all.
        let deadline = Deadline::after(Duration::from_secs(30));
        let mut most = 0;
        while most < 3 && !deadline.has_passed() {
            most = most.max(wake(&word, u32::MAX));
            std::thread::yield_now();
        }
        assert_eq!(most, 3, "one wake(u32::MAX) woke every sleeper");
        word.store(1, Ordering::SeqCst);
        wake(&word, u32::MAX);
        for s in sleepers {
            s.join().unwrap();
        }
    }

    #[test]
    fn wake_reaches_a_sleeper() {
        let word = Arc::new(AtomicU32::new(0));
        let w = Arc::clone(&word);
        let t = std::thread::spawn(move || {
            while w.load(Ordering::SeqCst) == 0 {
                wait(&w, 0, Deadline::NEVER);
            }
        });
        word.store(1, Ordering::SeqCst);
        wake(&word, u32::MAX);
        t.join().unwrap();
        assert_eq!(wake(&word, 1), 0);
    }
}
