//! The wait layer's loom backend: the `parking_lot_core` contract on loom's `Mutex` and
//! `Condvar`, so loom models explore the primitives' real slow paths.
//!
//! One global table (reset by loom for every execution) holds every parked thread in arrival
//! order. A timed park is modelled as "may time out at any moment": after one yield, a thread
//! that was not unparked times out. That is a legal (if impatient) behaviour of the real
//! backend, so every model that passes here holds for real timeouts too.
#![allow(unreachable_pub)]

use loom::sync::{Condvar, Mutex};
use std::time::Instant;

/// Result of a park operation.
#[derive(Copy, Clone, Eq, PartialEq, Debug)]
pub enum ParkResult {
    /// Unparked by another thread with the given token.
    Unparked(UnparkToken),
    /// The validation callback returned false.
    Invalid,
    /// The timeout expired.
    TimedOut,
}

impl ParkResult {
    #[allow(dead_code)]
    pub fn is_unparked(self) -> bool {
        matches!(self, ParkResult::Unparked(_))
    }
}

/// Result of an unpark operation.
#[derive(Copy, Clone, Default, Eq, PartialEq, Debug)]
pub struct UnparkResult {
    pub unparked_threads: usize,
    pub requeued_threads: usize,
    pub have_more_threads: bool,
    pub be_fair: bool,
}

/// What `unpark_requeue` does.
#[derive(Copy, Clone, Eq, PartialEq, Debug)]
#[allow(dead_code)]
pub enum RequeueOp {
    Abort,
    UnparkOneRequeueRest,
    RequeueAll,
    UnparkOne,
    RequeueOne,
}

/// What `unpark_filter` does with each thread.
#[derive(Copy, Clone, Eq, PartialEq, Debug)]
#[allow(dead_code)]
pub enum FilterOp {
    Unpark,
    Skip,
    Stop,
}

/// A value passed from an unparker to a parked thread.
#[derive(Copy, Clone, Eq, PartialEq, Debug)]
pub struct UnparkToken(pub usize);

/// A value associated with a parked thread.
#[derive(Copy, Clone, Eq, PartialEq, Debug)]
pub struct ParkToken(pub usize);

pub const DEFAULT_UNPARK_TOKEN: UnparkToken = UnparkToken(0);
pub const DEFAULT_PARK_TOKEN: ParkToken = ParkToken(0);

struct Entry {
    id: usize,
    key: usize,
    token: ParkToken,
    /// `Some` once unparked; the entry then leaves the queue.
    woken: Option<UnparkToken>,
}

struct Table {
    next_id: usize,
    queue: Vec<Entry>,
    /// Unparked entries whose thread has not picked up its token yet.
    woken: Vec<Entry>,
    /// What `unpark_one` reports as `be_fair` (the real backend says so about every
    /// 0.5 ms): off unless a model turns it on with [`set_be_fair`], so the fair hand-off
    /// paths it selects are explored too.
    be_fair: bool,
}

struct Global {
    table: Mutex<Table>,
    cv: Condvar,
}

loom::lazy_static! {
    static ref GLOBAL: Global = Global {
        table: Mutex::new(Table {
            next_id: 0,
            queue: Vec::new(),
            woken: Vec::new(),
            be_fair: false,
        }),
        cv: Condvar::new(),
    };
}

impl Table {
    fn has_key(&self, key: usize) -> bool {
        self.queue.iter().any(|e| e.key == key)
    }

    fn wake_at(&mut self, index: usize, token: UnparkToken) {
        let mut entry = self.queue.remove(index);
        entry.woken = Some(token);
        self.woken.push(entry);
    }
}

/// Exponential spin, then yield; under loom every step yields.
pub struct SpinWait {
    counter: u32,
}

impl SpinWait {
    pub fn new() -> Self {
        SpinWait { counter: 0 }
    }

    pub fn reset(&mut self) {
        self.counter = 0;
    }

    pub fn spin(&mut self) -> bool {
        if self.counter >= 2 {
            return false;
        }
        self.counter += 1;
        loom::thread::yield_now();
        true
    }
}

/// # Safety
/// Same contract as `parking_lot_core::park`.
pub unsafe fn park(
    key: usize,
    validate: impl FnOnce() -> bool,
    before_sleep: impl FnOnce(),
    timed_out: impl FnOnce(usize, bool),
    park_token: ParkToken,
    timeout: Option<Instant>,
) -> ParkResult {
    let id;
    {
        let mut table = GLOBAL.table.lock().unwrap();
        if !validate() {
            return ParkResult::Invalid;
        }
        id = table.next_id;
        table.next_id += 1;
        table.queue.push(Entry {
            id,
            key,
            token: park_token,
            woken: None,
        });
    }
    before_sleep();
    if timeout.is_some() {
        loom::thread::yield_now();
    }
    let mut table = GLOBAL.table.lock().unwrap();
    loop {
        if let Some(pos) = table.woken.iter().position(|e| e.id == id) {
            let entry = table.woken.remove(pos);
            return ParkResult::Unparked(entry.woken.expect("woken entries carry a token"));
        }
        if timeout.is_some() {
            let pos = table
                .queue
                .iter()
                .position(|e| e.id == id)
                .expect("parked entry is queued");
            let entry = table.queue.remove(pos);
            let was_last = !table.has_key(entry.key);
            timed_out(entry.key, was_last);
            return ParkResult::TimedOut;
        }
        table = GLOBAL.cv.wait(table).unwrap();
    }
}

/// Makes every later `unpark_one` of this execution report `be_fair` (the real backend's
/// periodic "be fair now"), so a model can explore the fair hand-off paths.
#[allow(dead_code)]
pub fn set_be_fair(on: bool) {
    GLOBAL.table.lock().unwrap().be_fair = on;
}

/// # Safety
/// Same contract as `parking_lot_core::unpark_one`.
pub unsafe fn unpark_one(
    key: usize,
    callback: impl FnOnce(UnparkResult) -> UnparkToken,
) -> UnparkResult {
    let mut table = GLOBAL.table.lock().unwrap();
    let mut result = UnparkResult::default();
    match table.queue.iter().position(|e| e.key == key) {
        Some(pos) => {
            result.unparked_threads = 1;
            result.be_fair = table.be_fair;
            result.have_more_threads = table
                .queue
                .iter()
                .enumerate()
                .any(|(i, e)| i != pos && e.key == key);
            let token = callback(result);
            table.wake_at(pos, token);
            drop(table);
            GLOBAL.cv.notify_all();
        }
        None => {
            callback(result);
        }
    }
    result
}

/// # Safety
/// Same contract as `parking_lot_core::unpark_all`.
pub unsafe fn unpark_all(key: usize, unpark_token: UnparkToken) -> usize {
    let mut table = GLOBAL.table.lock().unwrap();
    let mut count = 0;
    while let Some(pos) = table.queue.iter().position(|e| e.key == key) {
        table.wake_at(pos, unpark_token);
        count += 1;
    }
    drop(table);
    GLOBAL.cv.notify_all();
    count
}

/// # Safety
/// Same contract as `parking_lot_core::unpark_filter`.
pub unsafe fn unpark_filter(
    key: usize,
    mut filter: impl FnMut(ParkToken) -> FilterOp,
    callback: impl FnOnce(UnparkResult) -> UnparkToken,
) -> UnparkResult {
    let mut table = GLOBAL.table.lock().unwrap();
    let mut chosen = Vec::new();
    for (i, e) in table.queue.iter().enumerate() {
        if e.key != key {
            continue;
        }
        match filter(e.token) {
            FilterOp::Unpark => chosen.push(i),
            FilterOp::Skip => {}
            FilterOp::Stop => break,
        }
    }
    let mut result = UnparkResult {
        unparked_threads: chosen.len(),
        ..Default::default()
    };
    result.have_more_threads = table
        .queue
        .iter()
        .enumerate()
        .any(|(i, e)| e.key == key && !chosen.contains(&i));
    let token = callback(result);
    for (removed, i) in chosen.into_iter().enumerate() {
        table.wake_at(i - removed, token);
    }
    drop(table);
    GLOBAL.cv.notify_all();
    result
}

/// # Safety
/// Same contract as `parking_lot_core::unpark_requeue`.
pub unsafe fn unpark_requeue(
    key_from: usize,
    key_to: usize,
    validate: impl FnOnce() -> RequeueOp,
    callback: impl FnOnce(RequeueOp, UnparkResult) -> UnparkToken,
) -> UnparkResult {
    let mut table = GLOBAL.table.lock().unwrap();
    let mut result = UnparkResult::default();
    let op = validate();
    if op == RequeueOp::Abort {
        return result;
    }
    let positions: Vec<usize> = table
        .queue
        .iter()
        .enumerate()
        .filter(|(_, e)| e.key == key_from)
        .map(|(i, _)| i)
        .collect();
    let (unpark, requeue): (Option<usize>, &[usize]) = match op {
        RequeueOp::Abort => unreachable!("handled above"),
        RequeueOp::UnparkOneRequeueRest => (
            positions.first().copied(),
            positions.get(1..).unwrap_or(&[]),
        ),
        RequeueOp::RequeueAll => (None, &positions[..]),
        RequeueOp::UnparkOne => (positions.first().copied(), &[]),
        RequeueOp::RequeueOne => (None, positions.get(..1).unwrap_or(&[])),
    };
    result.unparked_threads = usize::from(unpark.is_some());
    result.requeued_threads = requeue.len();
    let requeued_ids: Vec<usize> = requeue.iter().map(|&i| table.queue[i].id).collect();
    let unpark_id = unpark.map(|i| table.queue[i].id);
    // Requeued threads go to the back of the target queue, as in parking_lot_core.
    for id in &requeued_ids {
        let pos = table
            .queue
            .iter()
            .position(|e| e.id == *id)
            .expect("queued");
        let mut entry = table.queue.remove(pos);
        entry.key = key_to;
        table.queue.push(entry);
    }
    // As in parking_lot_core: only the "one" operations report whether more threads are
    // still parked on the source key.
    if matches!(op, RequeueOp::UnparkOne | RequeueOp::RequeueOne) {
        result.have_more_threads = table
            .queue
            .iter()
            .any(|e| e.key == key_from && Some(e.id) != unpark_id);
    }
    let token = callback(op, result);
    if let Some(id) = unpark_id {
        let pos = table.queue.iter().position(|e| e.id == id).expect("queued");
        table.wake_at(pos, token);
    }
    drop(table);
    GLOBAL.cv.notify_all();
    result
}
