// Port of seed 004's "Thread Pool": 5 non-blank lines of Python.
use pytandem::executor::ThreadPoolExecutor;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let executor = ThreadPoolExecutor::with_max_workers(3); // with ... as executor:
    let results: Result<Vec<u64>, _> = executor.map(|x| x * x, 0..10)?.collect();
    assert_eq!(results?, [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
    Ok(())
}
