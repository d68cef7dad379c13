// Port of seed 004's "Race Conditions" (a lock around read-modify-write): 9 non-blank lines of Python.
fn main() {
    let counter = pytandem::sync::Lock::new(0); // Python: counter = 0; lock = threading.Lock()
    pytandem::thread::scope(|s| {
        for _ in 0..10 {
            s.spawn(|| {
                let mut n = counter.acquire(); // with lock:
                let current = *n;
                *n = current + 1; // no other thread can run between the read and the write
            });
        }
    });
    assert_eq!(counter.into_inner(), 10);
}
