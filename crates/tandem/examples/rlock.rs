// Port of seed 004's "RLock (Reentrant Lock)": 7 non-blank lines of Python (a fragment).
use pytandem::sync::RLock;

fn recursive_function(rlock: &RLock<()>, depth: usize) {
    let _guard = rlock.acquire(); // Python: with rlock: (again, on the same thread)
    println!("Lock acquired, held {} times", rlock.recursion_count());
    assert_eq!(rlock.recursion_count(), depth);
    if depth < 3 {
        recursive_function(rlock, depth + 1);
    }
}

fn main() {
    let rlock = RLock::new(());
    recursive_function(&rlock, 1);
    assert!(!rlock.locked()); // every level was released
}
