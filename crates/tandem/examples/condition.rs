// Port of seed 000's example 3 (a condition variable): 12 non-blank lines of Python.
use pytandem::sync::Condition;

fn main() {
    let condition = Condition::new(false); // Python's data_ready lives inside the condition
    pytandem::thread::scope(|s| {
        s.spawn(|| {
            let mut data_ready = condition.acquire(); // consumer: with condition:
            while !*data_ready {
                data_ready.wait();
            }
            println!("Data consumed");
        });
        let mut data_ready = condition.acquire(); // producer: with condition:
        *data_ready = true;
        data_ready.notify(1);
    });
    assert!(*condition.acquire());
}
