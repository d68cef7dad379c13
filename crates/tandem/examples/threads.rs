// Port of seed 000's example 1 (threads in a critical section): 16 non-blank lines of Python.
use std::sync::Arc;
use tandem::sync::Lock;
use tandem::thread::{current_name, Builder};

fn main() -> std::io::Result<()> {
    let mutex = Arc::new(Lock::new(Vec::new())); // the lock holds the data it guards
    let mut threads = Vec::new();
    for i in 1..=3 {
        let mutex = Arc::clone(&mutex);
        threads.push(Builder::new().name(format!("Thread-{i}")).spawn(move || {
            let mut visitors = mutex.acquire(); // Python: with mutex:
            let name = current_name().unwrap();
            println!("Thread {name} in critical section");
            visitors.push(name);
        })?);
    }
    for t in threads {
        t.join().expect("no thread panics");
    }
    let mut visitors = mutex.acquire().clone();
    visitors.sort();
    assert_eq!(visitors, ["Thread-1", "Thread-2", "Thread-3"]);
    Ok(())
}
