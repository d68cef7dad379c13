// Port of seed 000's example 1 (threads in a critical section): 16 non-blank lines of Python.
use pytandem::sync::Lock;
use pytandem::thread::{current_name, scope};

fn main() {
    let mutex = Lock::new(Vec::new()); // the lock holds the data it guards
    scope(|s| {
        for i in 1..=3 {
            s.builder().name(format!("Thread-{i}")).spawn(|| {
                let mut visitors = mutex.acquire(); // Python: with mutex:
                let name = current_name().unwrap();
                println!("Thread {name} in critical section");
                visitors.push(name);
            });
        }
    }); // every thread is joined here: Python's `for t in threads: t.join()`
    let mut visitors = mutex.into_inner();
    visitors.sort();
    assert_eq!(visitors, ["Thread-1", "Thread-2", "Thread-3"]);
}
