//! Every constructor the loom build makes non-`const` (written once with `loom_const_fn!`)
//! stays `const` in the library: the primitives can live in `static`s, as std's can.

use pytandem::sync::{BoundedSemaphore, Condition, Condvar, Event, Lock, RLock, Semaphore};

static LOCK: Lock<u32> = Lock::new(1);
static RLOCK: RLock<u32> = RLock::new(2);
static COND: Condition<u32> = Condition::new(3);
static RCOND: Condition<u32, RLock<u32>> = Condition::new_reentrant(4);
static COND_OVER: Condition<u32> = Condition::with_lock(Lock::new(5));
static CONDVAR: Condvar = Condvar::new();
static EVENT: Event = Event::new();
static SEM: Semaphore = Semaphore::new(1);
static BSEM: BoundedSemaphore = BoundedSemaphore::new(1);

#[test]
fn statics_built_by_const_constructors_work() {
    assert_eq!(*LOCK.acquire(), 1);
    assert_eq!(*RLOCK.acquire(), 2);
    assert_eq!(*COND.acquire(), 3);
    assert_eq!(*RCOND.acquire(), 4);
    assert_eq!(*COND_OVER.acquire(), 5);
    let mut g = LOCK.acquire();
    *g += 1;
    assert_eq!(CONDVAR.notify_all(&g), 0);
    drop(g);
    EVENT.set();
    assert!(EVENT.is_set());
    assert_eq!(SEM.acquire().count(), 1);
    assert_eq!(BSEM.available_permits(), 1);
}
