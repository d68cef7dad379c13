//! Cross-process synchronization: a process `Lock` uncontended and handed between two
//! processes, a process `Semaphore`, a `Barrier` round between two processes, and how fast
//! a lock whose holder is SIGKILLed reaches a blocked waiter. Against tandem's thread
//! `Lock`, a raw shared-futex floor, glibc's robust process-shared `pthread_mutex` (through
//! `libc`), and CPython's `multiprocessing`.

use super::{time, Bench};
use pytandem::process::{
    Barrier, Connection, Event, Lock, Pipe, Process, RawArray, RawValue, Semaphore,
};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub(crate) fn benches() -> Vec<Bench> {
    vec![
        Bench::new(
            "process.lock.uncontended",
            "process Lock acquire + release, one thread",
        )
        .native("tandem", |iters| {
            let lock = Lock::new(()).expect("lock");
            time(|| {
                for _ in 0..iters {
                    drop(lock.acquire());
                }
            })
        })
        .native("thread-lock", |iters| {
            let lock = pytandem::sync::Lock::new(());
            time(|| {
                for _ in 0..iters {
                    drop(lock.acquire());
                }
            })
        })
        .native("pthread-robust", |iters| {
            let shared = pthread::Shared::new();
            time(|| {
                for _ in 0..iters {
                    shared.lock();
                    shared.unlock();
                }
            })
        })
        .cpython(
            "import multiprocessing as mp\nlock = mp.Lock()",
            "for _ in range(n):\n    lock.acquire()\n    lock.release()",
        ),
        Bench::new(
            "process.lock.handoff",
            "a round trip between two processes, each waking the other (2 processes, 2 cores)",
        )
        .native("tandem", {
            let child = std::cell::RefCell::new(None::<(Event, Event, Reaped)>);
            move |iters| {
                let mut child = child.borrow_mut();
                let (ping, pong, _) = child.get_or_insert_with(|| {
                    let (ping, pong) = (Event::new().expect("event"), Event::new().expect("event"));
                    let p =
                        Process::spawn(event_pong, (ping.clone(), pong.clone())).expect("spawn");
                    (ping, pong, Reaped(p))
                });
                time(|| {
                    for _ in 0..iters {
                        ping.set();
                        pong.wait();
                        pong.clear();
                    }
                })
            }
        })
        .native("floor", {
            let child = std::cell::RefCell::new(None::<(RawValue<u32>, Reaped)>);
            move |iters| {
                let mut child = child.borrow_mut();
                let (turn, _) = child.get_or_insert_with(|| {
                    let turn = RawValue::new(0u32).expect("shared word");
                    let p = Process::spawn(futex_pong, turn.clone()).expect("spawn");
                    (turn, Reaped(p))
                });
                time(|| {
                    for _ in 0..iters {
                        turn.store(1, Ordering::SeqCst);
                        futex_wake(turn);
                        while turn.load(Ordering::SeqCst) == 1 {
                            futex_wait(turn, 1);
                        }
                    }
                })
            }
        })
        .native("pthread-robust", {
            let child = std::cell::RefCell::new(None::<(RawArray<u64>, Reaped)>);
            move |iters| {
                let mut child = child.borrow_mut();
                let (memory, _) = child.get_or_insert_with(|| {
                    let memory = pthread::memory();
                    let p = Process::spawn(pthread_pong, memory.clone()).expect("spawn");
                    (memory, Reaped(p))
                });
                let shared = pthread::Shared::at(memory);
                time(|| {
                    for _ in 0..iters {
                        shared.ping();
                    }
                })
            }
        })
        .cpython(CPY_HANDOFF, CPY_HANDOFF_BODY),
        Bench::new(
            "process.semaphore",
            "process Semaphore acquire + release, one thread",
        )
        .native("tandem", |iters| {
            let sem = Semaphore::new(1).expect("semaphore");
            time(|| {
                for _ in 0..iters {
                    drop(sem.acquire());
                }
            })
        })
        .cpython(
            "import multiprocessing as mp\nsem = mp.Semaphore(1)",
            "for _ in range(n):\n    sem.acquire()\n    sem.release()",
        ),
        Bench::new(
            "process.barrier.round",
            "one round of a 2-party Barrier, this process and a child (2 processes, 2 cores)",
        )
        .native("tandem", {
            let child = std::cell::RefCell::new(None::<(Barrier, Reaped)>);
            move |iters| {
                let mut child = child.borrow_mut();
                let (barrier, _) = child.get_or_insert_with(|| {
                    let barrier = Barrier::new(2).expect("barrier");
                    let p = Process::spawn(barrier_loop, barrier.clone()).expect("spawn");
                    (barrier, Reaped(p))
                });
                time(|| {
                    for _ in 0..iters {
                        barrier.wait().expect("barrier");
                    }
                })
            }
        })
        .cpython(CPY_BARRIER, "for _ in range(n):\n    b.wait()"),
        recovery("process.lock.recovery.p50", 0.50),
        recovery("process.lock.recovery.p99", 0.99),
    ]
}

pub(crate) fn sizes() -> Vec<(&'static str, usize)> {
    vec![("process::Lock<()>", std::mem::size_of::<Lock<()>>())]
}

/// A child killed and reaped when the benchmark is done with it.
struct Reaped(Process<()>);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.join_timeout(Duration::from_secs(30));
    }
}

/// From the SIGKILL of a lock's holder to a blocked waiter holding it, over `iters` trials;
/// reported as the `quantile` (the runner returns quantile × iters, so that the harness's
/// ns per operation is the quantile).
fn recovery(name: &'static str, quantile: f64) -> Bench {
    Bench::new(
        name,
        "ns from SIGKILL of a process Lock's holder (a child) to a blocked waiter holding it",
    )
    .native("tandem", move |iters| {
        let lock = Lock::new(()).expect("lock");
        let mut samples: Vec<Duration> = (0..iters).map(|_| one_recovery(&lock)).collect();
        samples.sort();
        let at = ((samples.len() as f64 - 1.0) * quantile).round() as usize;
        samples[at] * iters as u32
    })
}

fn one_recovery(lock: &Lock<()>) -> Duration {
    let (a, b) = Pipe::new::<u8>().expect("pipe");
    let holder = Process::spawn(hold, (lock.clone(), b)).expect("spawn");
    a.recv().expect("the holder holds the lock");
    let waiting = std::sync::Barrier::new(2);
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            waiting.wait();
            let _g = lock.acquire().unwrap_or_else(|died| died.into_inner());
            Instant::now()
        });
        waiting.wait();
        // The waiter is about to block (it may not be asleep yet: then it measures less).
        let killed = Instant::now();
        holder.kill().expect("kill");
        let got = waiter.join().expect("waiter");
        let _ = holder.join();
        got.saturating_duration_since(killed)
    })
}

fn hold(args: (Lock<()>, Connection<u8>)) {
    let (lock, conn) = args;
    let g = lock.acquire().unwrap_or_else(|died| died.into_inner());
    conn.send(&1).expect("send");
    std::mem::forget(g);
    loop {
        std::thread::park();
    }
}

fn event_pong(events: (Event, Event)) {
    let (ping, pong) = events;
    loop {
        ping.wait();
        ping.clear();
        pong.set();
    }
}

fn barrier_loop(barrier: Barrier) {
    while barrier.wait().is_ok() {}
}

fn futex_wait(word: &AtomicU32, value: u32) {
    let _ = rustix::thread::futex::wait(word, rustix::thread::futex::Flags::empty(), value, None);
}

fn futex_wake(word: &AtomicU32) {
    let _ = rustix::thread::futex::wake(word, rustix::thread::futex::Flags::empty(), 1);
}

fn futex_pong(turn: RawValue<u32>) {
    loop {
        while turn.load(Ordering::SeqCst) == 0 {
            futex_wait(&turn, 0);
        }
        turn.store(0, Ordering::SeqCst);
        futex_wake(&turn);
    }
}

fn pthread_pong(memory: RawArray<u64>) {
    let shared = pthread::Shared::at(&memory);
    shared.pong_forever();
}

/// glibc's robust, process-shared mutex and a process-shared condition variable, in
/// shared memory that tandem maps (the only `unsafe` of the CLI: it is a peer's C API).
#[allow(unsafe_code)]
mod pthread {
    use pytandem::process::RawArray;
    use std::sync::atomic::AtomicU64;

    /// Words of shared memory: a mutex, a condition variable and a turn flag fit.
    const WORDS: usize = 32;
    const _: () = assert!(
        std::mem::size_of::<libc::pthread_mutex_t>()
            + std::mem::size_of::<libc::pthread_cond_t>()
            + 8
            <= WORDS * 8
    );

    /// Shared memory holding an initialized mutex and condition variable.
    pub(super) fn memory() -> RawArray<u64> {
        let memory = RawArray::<u64>::new(WORDS).expect("shared memory");
        let s = Shared::at(&memory);
        // SAFETY: the memory is fresh, large enough (asserted above) and 8-aligned; the
        // attribute objects live on this stack frame until destroyed below.
        unsafe {
            let mut ma: libc::pthread_mutexattr_t = std::mem::zeroed();
            libc::pthread_mutexattr_init(&mut ma);
            libc::pthread_mutexattr_setpshared(&mut ma, libc::PTHREAD_PROCESS_SHARED);
            libc::pthread_mutexattr_setrobust(&mut ma, libc::PTHREAD_MUTEX_ROBUST);
            libc::pthread_mutex_init(s.mutex, &ma);
            libc::pthread_mutexattr_destroy(&mut ma);
            let mut ca: libc::pthread_condattr_t = std::mem::zeroed();
            libc::pthread_condattr_init(&mut ca);
            libc::pthread_condattr_setpshared(&mut ca, libc::PTHREAD_PROCESS_SHARED);
            libc::pthread_cond_init(s.cond, &ca);
            libc::pthread_condattr_destroy(&mut ca);
        }
        memory
    }

    /// Pointers into the shared memory (valid while the `RawArray` lives).
    pub(super) struct Shared {
        mutex: *mut libc::pthread_mutex_t,
        cond: *mut libc::pthread_cond_t,
        turn: *mut u64,
        _own: Option<RawArray<u64>>,
    }

    impl Shared {
        /// A robust mutex in its own fresh shared memory (for the uncontended row).
        pub(super) fn new() -> Shared {
            let memory = memory();
            let mut s = Shared::at(&memory);
            s._own = Some(memory);
            s
        }

        pub(super) fn at(memory: &RawArray<u64>) -> Shared {
            let base = memory.as_ptr() as *mut AtomicU64 as *mut u8;
            let mutex = base.cast::<libc::pthread_mutex_t>();
            // SAFETY: offsets within the WORDS * 8 bytes (asserted above), 8-aligned.
            let cond = unsafe { base.add(std::mem::size_of::<libc::pthread_mutex_t>()) }.cast();
            // SAFETY: as above.
            let turn = unsafe { base.add(WORDS * 8 - 8) }.cast::<u64>();
            Shared {
                mutex,
                cond,
                turn,
                _own: None,
            }
        }

        pub(super) fn lock(&self) {
            // SAFETY: an initialized process-shared mutex in live shared memory.
            let r = unsafe { libc::pthread_mutex_lock(self.mutex) };
            if r == libc::EOWNERDEAD {
                // SAFETY: as above; we hold it and mark it consistent again.
                unsafe { libc::pthread_mutex_consistent(self.mutex) };
            }
        }

        pub(super) fn unlock(&self) {
            // SAFETY: held by this thread (taken by `lock`).
            unsafe { libc::pthread_mutex_unlock(self.mutex) };
        }

        fn turn(&self) -> u64 {
            // SAFETY: read under the mutex: no concurrent write.
            unsafe { self.turn.read_volatile() }
        }

        fn set_turn(&self, t: u64) {
            // SAFETY: written under the mutex.
            unsafe { self.turn.write_volatile(t) }
        }

        fn wait(&self) {
            // SAFETY: the mutex is held; both objects are initialized and process-shared.
            unsafe { libc::pthread_cond_wait(self.cond, self.mutex) };
        }

        fn signal(&self) {
            // SAFETY: an initialized process-shared condition variable.
            unsafe { libc::pthread_cond_signal(self.cond) };
        }

        /// Hands the turn to the other process and waits for it back.
        pub(super) fn ping(&self) {
            self.lock();
            self.set_turn(1);
            self.signal();
            while self.turn() == 1 {
                self.wait();
            }
            self.unlock();
        }

        pub(super) fn pong_forever(&self) -> ! {
            self.lock();
            loop {
                while self.turn() == 0 {
                    self.wait();
                }
                self.set_turn(0);
                self.signal();
            }
        }
    }
}

const CPY_HANDOFF: &str = "import multiprocessing as mp
def pong(ping, back):
    while True:
        ping.wait()
        ping.clear()
        back.set()
if __name__ == '__main__':
    e_ping, e_pong = mp.Event(), mp.Event()
    p = mp.get_context('fork').Process(target=pong, args=(e_ping, e_pong), daemon=True)
    p.start()";

const CPY_HANDOFF_BODY: &str = "for _ in range(n):
    e_ping.set()
    e_pong.wait()
    e_pong.clear()";

const CPY_BARRIER: &str = "import multiprocessing as mp
def loop(b):
    while True:
        b.wait()
if __name__ == '__main__':
    b = mp.Barrier(2)
    p = mp.get_context('fork').Process(target=loop, args=(b,), daemon=True)
    p.start()";
