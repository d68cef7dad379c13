// Port of seed 004's "Barrier": 5 non-blank lines of Python (a fragment).
use pytandem::sync::Barrier;

fn main() {
    let barrier = Barrier::new(3).unwrap();
    let mut arrivals: Vec<usize> = pytandem::thread::scope(|s| {
        let task = || {
            println!("Thread waiting at barrier");
            let index = barrier.wait().unwrap(); // until all three arrive
            println!("Thread proceeding");
            index
        };
        let threads: Vec<_> = (0..3).map(|_| s.spawn(task)).collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    arrivals.sort();
    assert_eq!(arrivals, [0, 1, 2]); // each thread has its own arrival index
}
