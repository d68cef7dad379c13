//! The pool's job queue and worker bookkeeping: a lock-free push for submitters, a short
//! lock for the workers that take jobs, and workers that spin briefly and then park on the
//! wait layer.
//!
//! `list.rs` is the job list itself (the lock-free push, the locked pop); this file is the
//! worker bookkeeping around it.
//!
//! # Why not `crate::queue`
//! DESIGN.md builds the executor on `queue` + `sync`; this queue uses the same pieces (a
//! `Lock`, parking through `crate::wait`), but a pool needs what a general queue does not
//! offer: (1) a submitter that never waits for a worker — with more threads than cores, a
//! worker preempted while holding a shared queue lock would stall every submission, so the
//! push here is lock-free; (2) deciding at submission whether to start a worker (Python's
//! "reuse an idle worker, else start one up to `max_workers`"), reserving it so a racing
//! `shutdown(wait = true)` waits for it; (3) waking a sleeping worker only when no worker is
//! already spinning for work (one futex wake per burst, not per task); (4) the count of live
//! workers, which `shutdown(wait = true)` parks on.
//!
//! # Sleeping and waking
//! A worker that finds the queue empty spins briefly if no other worker is spinning, then
//! registers in `sleepers` (sequentially consistent), re-checks the queue and parks on the
//! address of `sleepers`, validating (inside the wait layer's queue lock) that the queue is
//! still empty and open. A pusher, after its (sequentially consistent) claim, reads
//! `sleepers`: either it sees the registration and wakes one sleeper, or the sleeper's
//! re-check sees the job. A sleeper leaves `sleepers` exactly once: decremented by the waker
//! that unparks it (in the wake-up callback), or by itself when its check or validation fails.
//!
//! A pusher skips the wake while a worker is counted in `spinning`, counting on it: so a
//! worker that spun takes on the wake when it takes a job — even if it had stopped spinning
//! and found the job in its re-check before sleeping — and wakes a sleeper if more jobs are
//! queued and nobody spins now (`searcher_should_wake`). Each side orders its store
//! (claim; `spinning` or `sleepers`) before its loads with a sequentially consistent fence,
//! so of two racing sides at least one sees the other (loom models
//! `spinner_or_submitter_wakes_the_sleeper` and `two_workers_nested_wait`).

use std::ptr;
use std::sync::Arc;

use crossbeam_utils::CachePadded;

use super::cell::Run;
use super::error::BrokenPool;
use super::scope::ScopeTicket;
use crate::diagnostics::{self, PrimitiveKind};
use crate::primitive::atomic::{fence, AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use crate::sync::Lock;
use crate::wait::{self, Deadline, Latch, ParkResult, SpinWait, UnparkResult};

mod list;
use list::*;

/// One queued task, and the scope it belongs to if it is scoped. Fields drop in order: the
/// task's reference first, then the ticket that lets its scope end.
pub(crate) struct Job {
    pub(crate) task: Arc<dyn Run>,
    /// Held for its `Drop` only.
    #[allow(dead_code)]
    pub(crate) ticket: Option<ScopeTicket>,
}

/// What `push` decided.
pub(crate) enum Pushed {
    /// Queued; an existing worker will take it.
    Queued,
    /// Queued, and a worker was reserved under this index: start it.
    Spawn(usize),
}

pub(crate) struct Injector {
    tail_index: CachePadded<AtomicUsize>,
    tail_block: CachePadded<AtomicPtr<Block>>,
    /// One emptied block kept for the next install, so a steady stream of jobs allocates
    /// and frees no blocks (and no block crosses from a worker's free to a submitter's
    /// malloc).
    spare: AtomicPtr<Block>,
    consumer: Lock<Head>,
    /// `Head::index`, published for reading without the lock.
    head_index: CachePadded<AtomicUsize>,
    /// Workers registered to sleep; its address is their key.
    sleepers: AtomicUsize,
    /// Workers spinning for work right now (at most one, by policy).
    spinning: AtomicUsize,
    /// Workers started (or reserved) and not yet gone: a latch `wait_all_exited` waits on
    /// to reach zero.
    alive: Latch,
    /// Worker indices handed out.
    started: AtomicUsize,
    /// Indices handed out whose worker never started: handed out again first, so failed
    /// spawns do not use up the pool's `max_workers` slots.
    returned: Lock<Vec<usize>>,
}

// SAFETY: slots are written by the one pusher that claimed them and read by the one consumer
// holding `consumer`, ordered by `written` (release/acquire); blocks are freed only by that
// consumer once nothing else can reach them (module docs). Jobs are `Send`.
unsafe impl Sync for Injector {}
// SAFETY: as above; the raw block pointers are owned by the queue.
unsafe impl Send for Injector {}

impl Injector {
    pub(crate) fn new() -> Self {
        let first = Box::into_raw(Block::new());
        Injector {
            tail_index: CachePadded::new(AtomicUsize::new(0)),
            tail_block: CachePadded::new(AtomicPtr::new(first)),
            spare: AtomicPtr::new(ptr::null_mut()),
            consumer: Lock::new(Head {
                index: 0,
                block: first,
            }),
            head_index: CachePadded::new(AtomicUsize::new(0)),
            sleepers: AtomicUsize::new(0),
            spinning: AtomicUsize::new(0),
            alive: Latch::new(0),
            started: AtomicUsize::new(0),
            returned: Lock::new(Vec::new()),
        }
    }

    /// Live workers, reserved ones included (a snapshot).
    pub(crate) fn alive(&self) -> usize {
        self.alive.count()
    }

    /// Worker indices handed out (a snapshot): indices `0..started()` may have slots.
    pub(crate) fn started(&self) -> usize {
        self.started.load(Ordering::Relaxed)
    }

    /// Queues `job`, or hands it back if the queue is closed. When fewer than `max_workers`
    /// live and the queued jobs would outnumber the idle workers (`alive - busy(started)`),
    /// reserves a worker and returns `Spawn` with its index.
    #[inline]
    pub(crate) fn push(
        &self,
        job: Job,
        max_workers: usize,
        busy: impl FnOnce(usize) -> usize,
    ) -> Result<Pushed, Job> {
        let alive = self.alive.count();
        let reserved = alive < max_workers && self.reserve(alive, busy);
        if let Err(job) = self.push_job(job) {
            if reserved {
                self.leave();
            }
            return Err(job);
        }
        if reserved {
            return Ok(Pushed::Spawn(self.take_index()));
        }
        if self.submitter_should_wake() {
            self.wake_one();
        }
        Ok(Pushed::Queued)
    }

    /// After a push (its claim on the tail index is the store): whether to wake a sleeping
    /// worker, which is needed unless a spinning worker will find the job.
    ///
    /// The mirror of [`spinner_should_wake`](Self::spinner_should_wake): each side stores
    /// (tail index; `spinning`), then loads the other's location (`spinning`; tail index).
    /// The fences order each store before its loads, so at least one side sees the other's
    /// store: either this push sees `spinning == 0` and wakes a sleeper, or the spinner sees
    /// the job and wakes one (store buffering; loom model
    /// `spinner_or_submitter_wakes_the_sleeper`).
    #[inline]
    fn submitter_should_wake(&self) -> bool {
        fence(Ordering::SeqCst);
        self.sleepers.load(Ordering::Relaxed) != 0 && self.spinning.load(Ordering::Relaxed) == 0
    }

    /// A worker that searched for work (it spun, even if it then stopped spinning and found
    /// the job on its way to sleep) took a job: whether to wake a sleeping worker for the
    /// jobs still queued (parallelism spreads one wake at a time). `still_spinning`: it is
    /// still counted in `spinning`, and leaves the count now. Pairs with
    /// [`submitter_should_wake`](Self::submitter_should_wake): a submitter that saw this
    /// worker's `spinning` count skipped its wake, so this check must run even when the
    /// worker found the job after leaving the count.
    fn searcher_should_wake(&self, still_spinning: bool) -> bool {
        if still_spinning {
            self.spinning.fetch_sub(1, Ordering::Relaxed);
        }
        fence(Ordering::SeqCst);
        self.len() != 0
            && self.sleepers.load(Ordering::Relaxed) != 0
            && self.spinning.load(Ordering::Relaxed) == 0
    }

    /// Reserves a new worker if the queue (with one more job) would outnumber the idle ones.
    #[cold]
    fn reserve(&self, alive: usize, busy: impl FnOnce(usize) -> usize) -> bool {
        let idle = alive.saturating_sub(busy(self.started()));
        self.len() >= idle && self.alive.increment_from(alive)
    }

    /// An index for a reserved worker: one given back by a failed start, else a new one.
    /// Indices stay below the number of live workers plus those given back, so below
    /// `max_workers`.
    #[cold]
    fn take_index(&self) -> usize {
        match self.returned.acquire().pop() {
            Some(index) => index,
            None => self.started.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Worker `index` (reserved) could not start: its index is free again, and the worker
    /// counts as gone. Returns how many workers remain.
    pub(crate) fn spawn_failed(&self, index: usize) -> usize {
        self.returned.acquire().push(index);
        self.leave()
    }

    /// Takes the next job for a worker, waiting for one; `None` when the queue is closed and
    /// empty (the worker then counts as gone). `busy` is set, under the consumer lock, when a
    /// job is taken.
    pub(crate) fn pop(&self, busy: &AtomicBool) -> Option<Job> {
        let mut spin = SpinWait::new();
        let mut spinning = false;
        // Became a spinner since it last slept: a submitter may be counting on it.
        let mut searched = false;
        loop {
            let popped = {
                let mut head = self.consumer.acquire();
                let popped = self.try_pop(&mut head);
                if popped.is_ok() {
                    busy.store(true, Ordering::Relaxed);
                }
                popped
            };
            match popped {
                Ok(job) => {
                    if searched && self.searcher_should_wake(spinning) {
                        self.wake_one();
                    }
                    return Some(job);
                }
                Err(Empty::Closed) => {
                    if spinning {
                        self.spinning.fetch_sub(1, Ordering::Relaxed);
                    }
                    self.leave();
                    return None;
                }
                Err(Empty::Open) => {}
            }
            // One worker at a time spins for work; the others sleep at once, so idle
            // workers beyond the first cost no CPU the submitters could use.
            if !spinning && self.spinning.load(Ordering::Relaxed) == 0 {
                spinning = true;
                searched = true;
                self.spinning.fetch_add(1, Ordering::Relaxed);
            }
            let mut found = false;
            while spinning && spin.spin() {
                if self.has_news() {
                    found = true;
                    break;
                }
            }
            if found {
                continue;
            }
            if spinning {
                self.spinning.fetch_sub(1, Ordering::Relaxed);
                spinning = false;
            }
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            // Pairs with the fence in `submitter_should_wake`: either the submitter sees
            // this registration, or the check below sees its job (store buffering again).
            fence(Ordering::SeqCst);
            if self.has_news() {
                self.sleepers.fetch_sub(1, Ordering::Relaxed);
                continue;
            }
            diagnostics::wait_intent(PrimitiveKind::Queue, self.sleep_key(), None);
            let validate = || {
                let park = !self.has_news();
                if !park {
                    self.sleepers.fetch_sub(1, Ordering::Relaxed);
                }
                park
            };
            // SAFETY: the key is the address of this queue's `sleepers`; `validate` only
            // touches this queue's atomics, never panics and never calls the wait layer.
            let parked = unsafe {
                wait::park(
                    self.sleep_key(),
                    validate,
                    || {},
                    |_, _| {},
                    wait::DEFAULT_PARK_TOKEN,
                    None,
                )
            };
            if parked != ParkResult::Invalid {
                // It slept: whoever woke it (a submitter, one wake per job) answers for the
                // job it will find.
                searched = false;
            }
            spin.reset();
        }
    }

    fn sleep_key(&self) -> usize {
        wait::key_of(&self.sleepers)
    }

    /// Wakes one sleeping worker if one is registered (after a worker failed to start).
    pub(crate) fn wake_sleeper(&self) {
        if self.sleepers.load(Ordering::SeqCst) != 0 {
            self.wake_one();
        }
    }

    /// Wakes one sleeping worker, if any is parked.
    #[cold]
    fn wake_one(&self) -> bool {
        let callback = |result: UnparkResult| {
            if result.unparked_threads != 0 {
                self.sleepers.fetch_sub(1, Ordering::Relaxed);
            }
            wait::DEFAULT_UNPARK_TOKEN
        };
        // SAFETY: the key is the address of this queue's `sleepers`; the callback only
        // touches this queue's atomics, never panics and never calls the wait layer.
        let result = unsafe { wait::unpark_one(self.sleep_key(), callback) };
        result.unparked_threads != 0
    }

    /// Refuses further pushes and wakes every sleeping worker; queued jobs stay. Whether
    /// this call closed it.
    pub(crate) fn close(&self) -> bool {
        let was = self.tail_index.fetch_or(MARK_BIT, Ordering::SeqCst);
        // Registered sleepers that have not parked yet fail validation (closed) instead.
        while self.wake_one() {}
        was & MARK_BIT == 0
    }

    /// A reserved worker that could not start, or a worker leaving, is gone. Returns how
    /// many remain.
    pub(crate) fn leave(&self) -> usize {
        self.alive.count_down()
    }

    /// Blocks until every worker is gone (call after `close`).
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub(crate) fn wait_all_exited(&self) {
        self.alive.wait_until(Deadline::NEVER);
    }

    /// Fails every queued job with `broken`; how many it failed.
    pub(crate) fn fail_all(&self, broken: &BrokenPool) -> usize {
        self.drain()
            .into_iter()
            .filter(|job| job.task.fail_unstarted(broken))
            .count()
    }

    /// Cancels every queued job; how many it cancelled.
    pub(crate) fn cancel_all(&self) -> usize {
        self.drain()
            .into_iter()
            .filter(|job| job.task.cancel_unstarted())
            .count()
    }
}

impl Drop for Injector {
    fn drop(&mut self) {
        // Jobs nobody will run (the pool is gone): cancel them so their owners are told.
        self.cancel_all();
        let head = self.consumer.get_mut();
        // SAFETY: nothing else can reach the queue; the head block is the last one left
        // (drained), and owns no unread job; the spare owns none either.
        unsafe {
            drop(Box::from_raw(head.block));
            let spare = self.spare.swap(ptr::null_mut(), Ordering::Relaxed);
            if !spare.is_null() {
                drop(Box::from_raw(spare));
            }
        }
    }
}

#[cfg(all(test, tandem_loom))]
mod loom_tests {
    use super::*;
    use crate::executor::cell::{Cell, CellApi};
    use std::convert::Infallible;

    fn counting_cell(
        ran: &Arc<AtomicUsize>,
        id: usize,
    ) -> Arc<Cell<(), Infallible, impl FnOnce() -> Result<(), Infallible> + Send>> {
        let ran = Arc::clone(ran);
        Arc::new(Cell::new(move || {
            ran.fetch_add(1 << (8 * id), Ordering::SeqCst);
            Ok::<(), Infallible>(())
        }))
    }

    fn job(ran: &Arc<AtomicUsize>, id: usize) -> Job {
        Job {
            task: counting_cell(ran, id),
            ticket: None,
        }
    }

    #[test]
    fn push_races_a_worker_going_to_sleep() {
        push_then_close(false);
    }

    #[test]
    fn push_wakes_a_sleeping_worker() {
        push_then_close(true);
    }

    /// A worker that finds the queue empty goes to sleep while (or before) a submitter
    /// pushes: the job is never stranded (loom reports a deadlock if the sleeper is not
    /// woken), and close lets the worker leave.
    fn push_then_close(sleep_first: bool) {
        loom::model(move || {
            let q = Arc::new(Injector::new());
            let ran = Arc::new(AtomicUsize::new(0));
            // Reserve the one worker (as the pool's first submission does).
            assert!(matches!(
                q.push(job(&ran, 0), 1, |_| 0),
                Ok(Pushed::Spawn(0))
            ));
            let q2 = Arc::clone(&q);
            let worker = loom::thread::spawn(move || {
                let busy = AtomicBool::new(false);
                while let Some(job) = q2.pop(&busy) {
                    job.task.run(&|_| {});
                    busy.store(false, Ordering::Relaxed);
                }
            });
            // The second job, kept to wait on before closing: close would wake the worker
            // anyway, so only this proves the push itself woke it.
            let cell = counting_cell(&ran, 1);
            let task = Arc::clone(&cell) as Arc<dyn Run>;
            if sleep_first {
                // Let the worker run dry and register to sleep (it spins only briefly
                // under loom before it registers).
                while q.sleepers.load(Ordering::SeqCst) == 0 {
                    loom::thread::yield_now();
                }
            }
            let pushed = q.push(Job { task, ticket: None }, 1, |_| 0);
            assert!(matches!(pushed, Ok(Pushed::Queued)));
            assert!(cell.header().wait_until(crate::wait::Deadline::NEVER));
            q.close();
            worker.join().unwrap();
            assert_eq!(ran.load(Ordering::SeqCst), 0x101);
            assert_eq!(q.alive(), 0);
            assert!(q.push(job(&ran, 2), 1, |_| 0).is_err(), "closed");
        });
    }

    /// The two sides of the "a spinning worker will take it" shortcut, with one worker
    /// spinning (it has just found a job) and another asleep: the submitter pushes a second
    /// job and skips the wake if it still sees the spinner; the spinner stops spinning and
    /// looks for more work to hand to the sleeper. One of the two must decide to wake the
    /// sleeper, or the second job waits behind the first (with nested waits at
    /// `max_workers`, forever). A store-buffering pattern: without a sequentially consistent
    /// fence between each side's store and its load, both can read the other's old value.
    #[test]
    fn spinner_or_submitter_wakes_the_sleeper() {
        loom::model(|| {
            let q = Arc::new(Injector::new());
            let ran = Arc::new(AtomicUsize::new(0));
            // Worker A took the first job while spinning; worker B is registered to sleep.
            q.spinning.store(1, Ordering::Relaxed);
            q.sleepers.store(1, Ordering::Relaxed);
            let submitter = {
                let (q, ran) = (Arc::clone(&q), Arc::clone(&ran));
                loom::thread::spawn(move || {
                    assert!(q.push_job(job(&ran, 1)).is_ok());
                    q.submitter_should_wake()
                })
            };
            let spinner_wakes = q.searcher_should_wake(true);
            let submitter_wakes = submitter.join().unwrap();
            assert!(
                spinner_wakes || submitter_wakes,
                "nobody wakes the sleeper for the second job"
            );
            drop(q.drain());
        });
    }

    /// Two workers, each taking one job: the first job waits for the second (a nested
    /// wait at `max_workers`). Whichever worker spins and whichever sleeps, the second job
    /// is never stranded behind the first (loom reports the deadlock if nobody wakes the
    /// sleeper). The whole path of `spinner_or_submitter_wakes_the_sleeper`, with real
    /// workers.
    #[test]
    fn two_workers_nested_wait() {
        loom::model(|| {
            let q = Arc::new(Injector::new());
            q.alive.increment();
            q.alive.increment();
            let workers: Vec<_> = (0..2)
                .map(|_| {
                    let q = Arc::clone(&q);
                    loom::thread::spawn(move || {
                        let busy = AtomicBool::new(false);
                        let job = q.pop(&busy).expect("one job each");
                        job.task.run(&|_| {});
                    })
                })
                .collect();
            let ran = Arc::new(AtomicUsize::new(0));
            let inner = counting_cell(&ran, 1);
            let outer = {
                let (inner, ran) = (Arc::clone(&inner), Arc::clone(&ran));
                Arc::new(Cell::new(move || {
                    assert!(inner.header().wait_until(crate::wait::Deadline::NEVER));
                    ran.fetch_add(1, Ordering::SeqCst);
                    Ok::<(), Infallible>(())
                }))
            };
            for task in [Arc::clone(&outer) as Arc<dyn Run>, inner as Arc<dyn Run>] {
                let pushed = q.push(Job { task, ticket: None }, 2, |_| 0);
                assert!(matches!(pushed, Ok(Pushed::Queued)));
            }
            for w in workers {
                w.join().unwrap();
            }
            assert_eq!(ran.load(Ordering::SeqCst), 0x101);
        });
    }

    /// Two submitters push at once across a block boundary (blocks hold two jobs under
    /// loom): one claims the block's last slot and installs the next block, the other waits
    /// for it and lands in the new block. Every job comes out exactly once.
    #[test]
    fn concurrent_pushes_cross_a_block() {
        loom::model(|| {
            let q = Arc::new(Injector::new());
            let ran = Arc::new(AtomicUsize::new(0));
            assert!(q.push_job(job(&ran, 0)).is_ok());
            let pushers: Vec<_> = (1..3)
                .map(|id| {
                    let (q, ran) = (Arc::clone(&q), Arc::clone(&ran));
                    loom::thread::spawn(move || assert!(q.push_job(job(&ran, id)).is_ok()))
                })
                .collect();
            for p in pushers {
                p.join().unwrap();
            }
            assert_eq!(q.len(), 3);
            for job in q.drain() {
                assert!(job.task.run(&|_| {}));
            }
            assert_eq!(ran.load(Ordering::SeqCst), 0x01_01_01, "each job ran once");
            assert_eq!(q.len(), 0);
        });
    }

    /// The consumer takes a block's last job while its pusher is still installing the next
    /// block: it waits for the slot, follows `next`, and recycles the emptied block; later
    /// pushes reuse it.
    #[test]
    fn pop_races_the_block_install() {
        loom::model(|| {
            let q = Arc::new(Injector::new());
            let ran = Arc::new(AtomicUsize::new(0));
            assert!(q.push_job(job(&ran, 0)).is_ok());
            let pusher = {
                let (q, ran) = (Arc::clone(&q), Arc::clone(&ran));
                loom::thread::spawn(move || assert!(q.push_job(job(&ran, 1)).is_ok()))
            };
            let mut head = q.consumer.acquire();
            let first = q.try_pop(&mut head).ok().expect("pushed before");
            let second = q.try_pop(&mut head).ok();
            drop(head);
            pusher.join().unwrap();
            let second = second.or_else(|| q.drain().pop()).expect("pushed now");
            first.task.run(&|_| {});
            second.task.run(&|_| {});
            assert_eq!(ran.load(Ordering::SeqCst), 0x01_01);
            // Two more: the next block fills, and the recycled one is installed after it.
            for id in 2..4 {
                assert!(q.push_job(job(&ran, id)).is_ok());
            }
            for job in q.drain() {
                assert!(job.task.run(&|_| {}));
            }
            assert_eq!(ran.load(Ordering::SeqCst), 0x01_01_01_01);
        });
    }
}
