// Port of seed 004's "Thread Local Storage": 4 non-blank lines of Python (a fragment).
use pytandem::sync::Barrier;
use pytandem::thread::{current_name, scope, Local};

fn main() {
    let (thread_local, all_set) = (Local::new(), Barrier::new(3).unwrap());
    let worker = || {
        thread_local.set(current_name().unwrap()); // Python: thread_local.value = ...name
        all_set.wait().unwrap(); // every thread has set its value: each still reads its own
        thread_local.get().unwrap()
    };
    let values: Vec<String> = scope(|s| {
        let threads: Vec<_> = (0..3)
            .map(|i| s.builder().name(format!("worker-{i}")).spawn(worker))
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    println!("Thread local values: {values:?}");
    assert_eq!(values, ["worker-0", "worker-1", "worker-2"]);
}
