// Port of seed 000's example 2 (a binary semaphore): 8 non-blank lines of Python.
use pytandem::sync::Semaphore;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

fn main() {
    let (semaphore, inside) = (Semaphore::new(1), AtomicUsize::new(0));
    let semaphore_example = || {
        let _permit = semaphore.acquire(); // Python: with semaphore:
        assert_eq!(inside.fetch_add(1, SeqCst), 0, "one thread at a time");
        inside.fetch_sub(1, SeqCst);
    };
    pytandem::thread::scope(|s| (0..4).for_each(|_| drop(s.spawn(semaphore_example))));
    assert_eq!(semaphore.available_permits(), 1);
}
