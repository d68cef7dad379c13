//! `event.*`: tandem's `Event` against an event built the textbook way on std's (and
//! parking_lot's) `Mutex<bool>` + `Condvar`, and CPython's `threading.Event`.

use std::time::Duration;

use super::{time, Bench};

/// The operations the ping-pong needs, for every implementation.
trait PingPongEvent: Sync {
    fn set(&self);
    fn clear(&self);
    fn wait(&self);
}

impl PingPongEvent for pytandem::sync::Event {
    fn set(&self) {
        pytandem::sync::Event::set(self);
    }
    fn clear(&self) {
        pytandem::sync::Event::clear(self);
    }
    fn wait(&self) {
        pytandem::sync::Event::wait(self);
    }
}

/// Python's own `Event` design: a flag under a mutex, and a condition variable.
#[derive(Default)]
struct StdEvent {
    flag: std::sync::Mutex<bool>,
    changed: std::sync::Condvar,
}

impl PingPongEvent for StdEvent {
    fn set(&self) {
        *self.flag.lock().unwrap() = true;
        self.changed.notify_all();
    }
    fn clear(&self) {
        *self.flag.lock().unwrap() = false;
    }
    fn wait(&self) {
        let mut flag = self.flag.lock().unwrap();
        while !*flag {
            flag = self.changed.wait(flag).unwrap();
        }
    }
}

/// The same on parking_lot's mutex and condition variable.
#[derive(Default)]
struct PlEvent {
    flag: parking_lot::Mutex<bool>,
    changed: parking_lot::Condvar,
}

impl PingPongEvent for PlEvent {
    fn set(&self) {
        *self.flag.lock() = true;
        self.changed.notify_all();
    }
    fn clear(&self) {
        *self.flag.lock() = false;
    }
    fn wait(&self) {
        let mut flag = self.flag.lock();
        while !*flag {
            self.changed.wait(&mut flag);
        }
    }
}

/// `iters` round trips between two threads: this one sets `ping` and waits for `pong`, the
/// other waits for `ping`, clears it and sets `pong`.
fn ping_pong<E: PingPongEvent + Default>(iters: u64) -> Duration {
    let (ping, pong) = (E::default(), E::default());
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..iters {
                ping.wait();
                ping.clear();
                pong.set();
            }
        });
        time(|| {
            for _ in 0..iters {
                ping.set();
                pong.wait();
                pong.clear();
            }
        })
    })
}

pub(crate) fn benches() -> Vec<Bench> {
    vec![Bench::new(
        "event.pingpong",
        "one round trip: set, wait, clear on two events between two threads",
    )
    .native("tandem", ping_pong::<pytandem::sync::Event>)
    .native("std", ping_pong::<StdEvent>)
    .native("parking_lot", ping_pong::<PlEvent>)
    .cpython(
        "import threading\nping = threading.Event()\npong = threading.Event()\n\
         def other(k):\n    for _ in range(k):\n        ping.wait()\n        ping.clear()\n        pong.set()\n",
        "t = threading.Thread(target=other, args=(n,))\n\
         t.start()\n\
         for _ in range(n):\n    ping.set()\n    pong.wait()\n    pong.clear()\n\
         t.join()",
    )]
}

pub(crate) fn sizes() -> Vec<(&'static str, usize)> {
    vec![
        ("tandem Event", std::mem::size_of::<pytandem::sync::Event>()),
        ("std Mutex<bool> + Condvar", std::mem::size_of::<StdEvent>()),
        (
            "parking_lot Mutex<bool> + Condvar",
            std::mem::size_of::<PlEvent>(),
        ),
    ]
}
