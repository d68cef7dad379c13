//! Unit tests of the lock-based queue engine (`core.rs`).

use super::*;
use std::time::Duration;

fn fifo(maxsize: usize) -> Core<VecDeque<u32>> {
    Core::new(VecDeque::new(), maxsize)
}

#[test]
fn put_get_and_counts() {
    let q = fifo(2);
    assert_eq!(q.maxsize(), Some(2));
    q.put(1, Wait::No).unwrap();
    q.put(2, Wait::FOREVER).unwrap();
    assert!(q.is_full());
    assert!(matches!(q.put(3, Wait::No), Err(PutFail::Full(3))));
    let d = Deadline::after(Duration::from_millis(5));
    assert!(matches!(q.put(4, Wait::Until(d)), Err(PutFail::Timeout(4))));
    assert_eq!(q.unfinished_tasks(), 2);
    assert_eq!(q.get(Wait::No), Ok(1));
    assert_eq!(q.get_many(5, Wait::No), Ok(vec![2]));
    assert_eq!(q.get(Wait::No), Err(GetFail::Empty));
    assert_eq!(q.get_many(0, Wait::No), Ok(vec![]));
    assert_eq!(q.waiting_getters(), 0);
    assert_eq!(q.waiting_putters(), 0);
}

#[test]
fn put_many_fills_then_waits() {
    let q = fifo(2);
    std::thread::scope(|s| {
        s.spawn(|| q.put_many((0..5).collect()).unwrap());
        let mut got = Vec::new();
        while got.len() < 5 {
            got.extend(q.get_many(10, Wait::FOREVER).unwrap());
        }
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
    });
}

#[test]
fn shutdown_immediate_settles_tasks() {
    let q = fifo(usize::MAX);
    assert_eq!(q.maxsize(), None);
    q.put(1, Wait::No).unwrap();
    q.put(2, Wait::No).unwrap();
    assert_eq!(q.get(Wait::No), Ok(1));
    assert_eq!(q.shutdown(true), vec![2]);
    assert_eq!(q.unfinished_tasks(), 1, "the item got is still in flight");
    assert!(!q.join(Deadline::after(Duration::ZERO)));
    q.task_done().unwrap();
    assert!(q.join(Deadline::NEVER));
    assert_eq!(q.task_done(), Err(TaskDoneError));
    assert!(matches!(q.put(3, Wait::No), Err(PutFail::ShutDown(3))));
    assert_eq!(q.get(Wait::FOREVER), Err(GetFail::ShutDown));
    assert_eq!(
        q.put_many((4..6).collect()),
        Err(VecDeque::from(vec![4, 5]))
    );
}
