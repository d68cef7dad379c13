// Port of seed 004's "Producer-Consumer": 19 non-blank lines of Python.
use pytandem::queue::Queue;

fn main() {
    let q = Queue::new();
    let consumed: Vec<i32> = pytandem::thread::scope(|s| {
        let consumer = s.spawn(|| {
            let mut consumed = Vec::new();
            for item in &q {
                // ends once the queue is shut down and drained: no `None` sentinel
                println!("Consumed: {item}");
                consumed.push(item);
                q.task_done().unwrap();
            }
            consumed
        });
        for i in 0..5 {
            q.put(i).unwrap();
            println!("Produced: {i}");
        }
        q.join(); // every item was processed
        q.shutdown(false);
        consumer.join().unwrap()
    });
    assert_eq!(consumed, [0, 1, 2, 3, 4]);
}
