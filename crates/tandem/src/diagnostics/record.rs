//! Per-thread records: the locks a thread holds and the wait it is in, written only by that
//! thread and read by the detector.
//!
//! # The record and its sequence counter
//! Each thread that acquires a lock or waits while recording is on gets one
//! [`ThreadRecord`], registered once in a global list. Only its own thread writes it, with
//! plain (relaxed) stores bracketed by a sequence counter — a seqlock:
//!
//! | `seq`  | meaning                                                  |
//! |--------|----------------------------------------------------------|
//! | odd    | the owner is writing; readers retry                      |
//! | even   | stable; its value is the *epoch* of the last write       |
//!
//! A hold records the epoch of its push and a wait the epoch of its start, so "the same hold"
//! and "the same wait" can be recognised across two looks: that is how the detector confirms
//! a cycle is not a coincidence of two racing snapshots.
//!
//! # Releases by another thread
//! A `Lock` may be released by a thread that did not acquire it (Python allows it, and a
//! `LockGuard` is `Send`). The releaser cannot edit the acquirer's record (one writer only),
//! so it posts `(address, id)` to that record's mailbox before the lock is actually released;
//! readers subtract the mailbox from the holds, and the owner applies it at its next hook.
//!
//! # The switch
//! `STATE` packs "recording on" (bit 0) with a generation (the rest), bumped by every
//! [`enable`] and [`disable`]. A record belongs to the generation it was last reset in;
//! records of another generation are ignored by readers and reset by their owner on its
//! next hook, so switching never leaves a stale hold behind.

use std::cell::{Cell, OnceCell, RefCell};
use std::panic::Location;
use std::ptr;
use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::info::{Info, LockDiag, Tag};
use super::order;
use super::spin::SpinLock;
use super::{How, PrimitiveKind};

// ---------------------------------------------------------------------------------------
// The switch

/// Bit 0: recording is on; bits 1..: the generation.
static STATE: AtomicU64 = AtomicU64::new(0);
const ON: u64 = 1;

/// Starts recording: from now on acquisitions, releases and waits are recorded (each
/// thread's earlier holds are unknown to the detector). Does nothing if recording is on.
pub fn enable() {
    anchor();
    let _ = STATE.fetch_update(Ordering::AcqRel, Ordering::Relaxed, |s| {
        (s & ON == 0).then_some((((s >> 1) + 1) << 1) | ON)
    });
}

/// Stops recording. Reports made afterwards see nothing until the next [`enable`].
pub fn disable() {
    let _ = STATE.fetch_update(Ordering::AcqRel, Ordering::Relaxed, |s| {
        (s & ON != 0).then_some(((s >> 1) + 1) << 1)
    });
}

/// Whether recording is on.
pub fn is_enabled() -> bool {
    STATE.load(Ordering::Relaxed) & ON != 0
}

/// The switch's current value (on bit and generation).
#[inline(always)]
pub(super) fn state() -> u64 {
    STATE.load(Ordering::Relaxed)
}

static ANCHOR: OnceLock<Instant> = OnceLock::new();

/// The instant record timestamps count from.
pub(super) fn anchor() -> Instant {
    *ANCHOR.get_or_init(Instant::now)
}

fn nanos_since_anchor(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(anchor()).as_nanos()).unwrap_or(u64::MAX - 1)
}

/// Now, in nanoseconds since the anchor.
pub(super) fn now_ns() -> u64 {
    nanos_since_anchor(Instant::now())
}

/// `wait_deadline` when the wait has none.
const NO_DEADLINE: u64 = u64::MAX;

// ---------------------------------------------------------------------------------------
// Records

/// Holds one thread can record; deeper nesting is counted but not recorded (the detector
/// then cannot see those holds: a missed report, never a false one).
pub(super) const CAP: usize = 64;

/// `Slot::meta`: the kind in the low bits, and this flag once the hold has an edge in the
/// lock-order graph (the lock is marked at release, so dropping it cleans the graph).
pub(super) const IN_GRAPH: u8 = 0x80;

#[derive(Default)]
pub(super) struct Slot {
    key: AtomicUsize,
    id: AtomicU64,
    site: AtomicPtr<Location<'static>>,
    meta: AtomicU8,
    epoch: AtomicU64,
}

pub(super) struct ThreadRecord {
    /// Registration order: stable identity of the thread for the life of the process.
    pub(super) serial: u64,
    pub(super) name: Option<String>,
    pub(super) thread_id: std::thread::ThreadId,
    seq: AtomicU64,
    /// The `STATE` this record's contents belong to.
    generation: AtomicU64,
    len: AtomicUsize,
    slots: Box<[Slot]>,
    /// Holds beyond `CAP`, unrecorded.
    overflow: AtomicUsize,
    wait_active: AtomicBool,
    wait_key: AtomicUsize,
    wait_id: AtomicU64,
    wait_kind: AtomicU8,
    wait_site: AtomicPtr<Location<'static>>,
    wait_since: AtomicU64,
    wait_deadline: AtomicU64,
    wait_epoch: AtomicU64,
    /// `(address, id)` of holds released by other threads, not yet removed by the owner.
    mailbox: SpinLock<Vec<(usize, u64)>>,
    has_mail: AtomicBool,
    pub(super) alive: AtomicBool,
}

/// A consistent copy of one hold.
#[derive(Clone, Copy, Debug)]
pub(super) struct HoldView {
    pub(super) key: usize,
    pub(super) id: u64,
    pub(super) kind: PrimitiveKind,
    pub(super) site: Option<&'static Location<'static>>,
    pub(super) epoch: u64,
}

/// A consistent copy of one wait.
#[derive(Clone, Copy, Debug)]
pub(super) struct WaitView {
    pub(super) key: usize,
    pub(super) id: u64,
    pub(super) kind: PrimitiveKind,
    pub(super) site: Option<&'static Location<'static>>,
    /// Nanoseconds since the anchor.
    pub(super) since: u64,
    pub(super) deadline: Option<u64>,
    pub(super) epoch: u64,
}

/// A consistent copy of a record.
pub(super) struct RecordView {
    pub(super) holds: Vec<HoldView>,
    pub(super) wait: Option<WaitView>,
}

fn site_of(p: *mut Location<'static>) -> Option<&'static Location<'static>> {
    // SAFETY: only `&'static Location` pointers are ever stored in records.
    (!p.is_null()).then(|| unsafe { &*p })
}

fn site_ptr(site: &'static Location<'static>) -> *mut Location<'static> {
    site as *const Location<'static> as *mut Location<'static>
}

static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

/// Every thread that has a record; dead threads' records stay while they still hold locks.
static THREADS: SpinLock<Vec<Arc<ThreadRecord>>> = SpinLock::new(Vec::new());

impl ThreadRecord {
    fn new() -> ThreadRecord {
        let current = std::thread::current();
        ThreadRecord {
            serial: NEXT_SERIAL.fetch_add(1, Ordering::Relaxed),
            name: current.name().map(str::to_owned),
            thread_id: current.id(),
            seq: AtomicU64::new(0),
            generation: AtomicU64::new(state()),
            len: AtomicUsize::new(0),
            slots: (0..CAP).map(|_| Slot::default()).collect(),
            overflow: AtomicUsize::new(0),
            wait_active: AtomicBool::new(false),
            wait_key: AtomicUsize::new(0),
            wait_id: AtomicU64::new(0),
            wait_kind: AtomicU8::new(0),
            wait_site: AtomicPtr::new(ptr::null_mut()),
            wait_since: AtomicU64::new(0),
            wait_deadline: AtomicU64::new(NO_DEADLINE),
            wait_epoch: AtomicU64::new(0),
            mailbox: SpinLock::new(Vec::new()),
            has_mail: AtomicBool::new(false),
            alive: AtomicBool::new(true),
        }
    }

    /// Owner only: one consistent change, `f` getting the epoch it will publish.
    #[inline]
    fn write<R>(&self, f: impl FnOnce(u64) -> R) -> R {
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        let r = f(s + 2);
        self.seq.store(s + 2, Ordering::Release);
        r
    }

    /// The generation the record belongs to (readers compare it with the switch).
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// A consistent copy of the holds and the wait, the mailbox subtracted; `None` if the
    /// owner kept writing (the detector then treats the thread as unknown this time).
    pub(super) fn read(&self) -> Option<RecordView> {
        let mailbox = self.mailbox.lock();
        let mut view = self.read_unlocked()?;
        for posted in mailbox.iter() {
            if let Some(i) = view.holds.iter().rposition(|h| (h.key, h.id) == *posted) {
                view.holds.remove(i);
            }
        }
        Some(view)
    }

    fn read_unlocked(&self) -> Option<RecordView> {
        for attempt in 0..1000 {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 & 1 == 1 {
                if attempt > 16 {
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
                continue;
            }
            let len = self.len.load(Ordering::Relaxed).min(CAP);
            let holds = self.slots[..len]
                .iter()
                .map(|s| HoldView {
                    key: s.key.load(Ordering::Relaxed),
                    id: s.id.load(Ordering::Relaxed),
                    kind: PrimitiveKind::from_u8(s.meta.load(Ordering::Relaxed) & !IN_GRAPH),
                    site: site_of(s.site.load(Ordering::Relaxed)),
                    epoch: s.epoch.load(Ordering::Relaxed),
                })
                .collect();
            let wait = self.wait_active.load(Ordering::Relaxed).then(|| WaitView {
                key: self.wait_key.load(Ordering::Relaxed),
                id: self.wait_id.load(Ordering::Relaxed),
                kind: PrimitiveKind::from_u8(self.wait_kind.load(Ordering::Relaxed)),
                site: site_of(self.wait_site.load(Ordering::Relaxed)),
                since: self.wait_since.load(Ordering::Relaxed),
                deadline: match self.wait_deadline.load(Ordering::Relaxed) {
                    NO_DEADLINE => None,
                    d => Some(d),
                },
                epoch: self.wait_epoch.load(Ordering::Relaxed),
            });
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == s1 {
                return Some(RecordView { holds, wait });
            }
        }
        None
    }

    /// Owner only: brings the record to the current generation and applies the mailbox.
    #[cold]
    fn fix_up(&self, state: u64) {
        let mut mailbox = self.mailbox.lock();
        if self.generation.load(Ordering::Relaxed) != state {
            self.write(|_| {
                self.len.store(0, Ordering::Relaxed);
                self.generation.store(state, Ordering::Relaxed);
            });
            self.overflow.store(0, Ordering::Relaxed);
            mailbox.clear();
        } else {
            for (key, id) in mailbox.drain(..) {
                self.remove(key, id);
            }
        }
        self.has_mail.store(false, Ordering::Relaxed);
    }

    /// Owner only: removes the topmost hold of `(key, id)`; its `meta`, or `None`.
    fn remove(&self, key: usize, id: u64) -> Option<u8> {
        let len = self.len.load(Ordering::Relaxed);
        let i = (0..len).rev().find(|&i| {
            self.slots[i].key.load(Ordering::Relaxed) == key
                && self.slots[i].id.load(Ordering::Relaxed) == id
        })?;
        let meta = self.slots[i].meta.load(Ordering::Relaxed);
        self.write(|_| {
            for j in i..len - 1 {
                let (to, from) = (&self.slots[j], &self.slots[j + 1]);
                to.key
                    .store(from.key.load(Ordering::Relaxed), Ordering::Relaxed);
                to.id
                    .store(from.id.load(Ordering::Relaxed), Ordering::Relaxed);
                to.site
                    .store(from.site.load(Ordering::Relaxed), Ordering::Relaxed);
                to.meta
                    .store(from.meta.load(Ordering::Relaxed), Ordering::Relaxed);
                to.epoch
                    .store(from.epoch.load(Ordering::Relaxed), Ordering::Relaxed);
            }
            self.len.store(len - 1, Ordering::Relaxed);
        });
        Some(meta)
    }
}

/// The records of every known thread (dead ones without holds are dropped from the list).
pub(super) fn threads() -> Vec<Arc<ThreadRecord>> {
    let mut list = THREADS.lock();
    list.retain(|r| r.alive.load(Ordering::Relaxed) || r.len.load(Ordering::Relaxed) != 0);
    list.clone()
}

fn register() -> Arc<ThreadRecord> {
    let record = Arc::new(ThreadRecord::new());
    let mut list = THREADS.lock();
    // Exited threads without holds are forgotten here too, so a program that starts many
    // threads and never runs the detector does not accumulate their records.
    list.retain(|r| r.alive.load(Ordering::Relaxed) || r.len.load(Ordering::Relaxed) != 0);
    list.push(Arc::clone(&record));
    record
}

// ---------------------------------------------------------------------------------------
// The calling thread's side

/// What the next park is on, set just before it by the primitive.
struct Intent {
    key: usize,
    id: u64,
    kind: PrimitiveKind,
    site: &'static Location<'static>,
    /// Details to count the wait in (primitives other than locks; locks count their own).
    count_in: Option<Arc<Info>>,
}

struct Local {
    record: OnceCell<Arc<ThreadRecord>>,
    intent: Cell<Option<Intent>>,
    /// Lock-order pairs this thread has already given the global graph (direct-mapped).
    edges: RefCell<Vec<(u64, u64)>>,
}

impl Local {
    fn record(&self) -> &Arc<ThreadRecord> {
        self.record.get_or_init(register)
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        if let Some(record) = self.record.get() {
            record.alive.store(false, Ordering::Relaxed);
        }
    }
}

thread_local! {
    static LOCAL: Local = const {
        Local {
            record: OnceCell::new(),
            intent: Cell::new(None),
            edges: RefCell::new(Vec::new()),
        }
    };
}

/// The calling thread's record, if it has one (for the detector's "me").
pub(super) fn current_record() -> Option<Arc<ThreadRecord>> {
    LOCAL.try_with(|l| l.record.get().cloned()).ok().flatten()
}

// ---------------------------------------------------------------------------------------
// Lock hooks

/// The calling thread has just taken the lock at `key`, at the caller's site.
#[inline(always)]
#[track_caller]
pub(crate) fn lock_acquired(diag: &LockDiag, key: usize, how: How) {
    let state = state();
    if state & ON != 0 {
        acquired(diag, key, how, state, Location::caller());
    }
}

#[inline(never)]
fn acquired(diag: &LockDiag, key: usize, how: How, state: u64, site: &'static Location<'static>) {
    diag.count_acquisition(key);
    let id = diag.id();
    let kind = diag.kind_byte();
    let _ = LOCAL.try_with(|local| {
        let Some(rec) = local.record.get() else {
            return push_first(local, key, id, kind, how, state, site);
        };
        if rec.generation.load(Ordering::Relaxed) != state || rec.has_mail.load(Ordering::Relaxed) {
            rec.fix_up(state);
        }
        let len = rec.len.load(Ordering::Relaxed);
        if len >= CAP {
            rec.overflow
                .store(rec.overflow.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            return;
        }
        rec.write(|epoch| {
            let slot = &rec.slots[len];
            slot.key.store(key, Ordering::Relaxed);
            slot.id.store(id, Ordering::Relaxed);
            slot.site.store(site_ptr(site), Ordering::Relaxed);
            slot.meta.store(kind, Ordering::Relaxed);
            slot.epoch.store(epoch, Ordering::Relaxed);
            rec.len.store(len + 1, Ordering::Relaxed);
        });
        if len != 0 && how != How::Try {
            order_check(local, rec, len);
        }
    });
}

#[cold]
fn push_first(
    local: &Local,
    key: usize,
    id: u64,
    kind: u8,
    _how: How,
    state: u64,
    site: &'static Location<'static>,
) {
    let rec = local.record();
    if rec.generation.load(Ordering::Relaxed) != state {
        rec.fix_up(state);
    }
    rec.write(|epoch| {
        let slot = &rec.slots[0];
        slot.key.store(key, Ordering::Relaxed);
        slot.id.store(id, Ordering::Relaxed);
        slot.site.store(site_ptr(site), Ordering::Relaxed);
        slot.meta.store(kind, Ordering::Relaxed);
        slot.epoch.store(epoch, Ordering::Relaxed);
        rec.len.store(1, Ordering::Relaxed);
    });
}

/// The lock at `key` is about to be released by the calling thread.
#[inline(always)]
pub(crate) fn lock_released(diag: &LockDiag, key: usize) {
    let state = state();
    if state & ON != 0 {
        released(diag, key, state);
    }
}

#[inline(never)]
fn released(diag: &LockDiag, key: usize, state: u64) {
    let id = diag.id();
    let popped = LOCAL
        .try_with(|local| {
            let rec = local.record.get()?;
            if rec.generation.load(Ordering::Relaxed) != state
                || rec.has_mail.load(Ordering::Relaxed)
            {
                rec.fix_up(state);
            }
            let len = rec.len.load(Ordering::Relaxed);
            if len != 0 {
                let top = &rec.slots[len - 1];
                if top.key.load(Ordering::Relaxed) == key && top.id.load(Ordering::Relaxed) == id {
                    let meta = top.meta.load(Ordering::Relaxed);
                    rec.write(|_| rec.len.store(len - 1, Ordering::Relaxed));
                    return Some(meta);
                }
            }
            rec.remove(key, id)
        })
        .ok()
        .flatten();
    match popped {
        Some(meta) if meta & IN_GRAPH != 0 => diag.mark_in_graph(key),
        Some(_) => {}
        None => release_elsewhere(diag, key, id, state),
    }
}

/// A release of a hold the calling thread did not record: post it to the record that has it.
#[cold]
fn release_elsewhere(diag: &LockDiag, key: usize, id: u64, state: u64) {
    let me = current_record();
    let mut found = false;
    {
        let list = THREADS.lock();
        for rec in list.iter() {
            if me.as_ref().is_some_and(|m| Arc::ptr_eq(m, rec)) || rec.generation() != state {
                continue;
            }
            let mut mailbox = rec.mailbox.lock();
            let Some(view) = rec.read_unlocked() else {
                continue;
            };
            let held = view
                .holds
                .iter()
                .filter(|h| (h.key, h.id) == (key, id))
                .count();
            let posted = mailbox.iter().filter(|p| **p == (key, id)).count();
            if held > posted {
                mailbox.push((key, id));
                rec.has_mail.store(true, Ordering::Release);
                found = true;
                break;
            }
        }
    }
    if found {
        diag.mark_foreign_release(key);
    } else if let Some(me) = me {
        // One of this thread's own holds beyond `CAP`.
        let overflow = me.overflow.load(Ordering::Relaxed);
        if overflow != 0 && me.generation() == state {
            me.overflow.store(overflow - 1, Ordering::Relaxed);
        }
    }
}

/// The lock-order end a slot describes.
fn end_of(slot: &Slot) -> order::End {
    order::End {
        key: slot.key.load(Ordering::Relaxed),
        id: slot.id.load(Ordering::Relaxed),
        kind: PrimitiveKind::from_u8(slot.meta.load(Ordering::Relaxed) & !IN_GRAPH),
        site: site_of(slot.site.load(Ordering::Relaxed)),
    }
}

/// Nested acquisition: the hold just pushed at `index`, after the ones below it.
#[cold]
fn order_check(local: &Local, rec: &ThreadRecord, index: usize) {
    let new = &rec.slots[index];
    if order_edges(local, rec, index, end_of(new)) {
        new.meta.store(
            new.meta.load(Ordering::Relaxed) | IN_GRAPH,
            Ordering::Relaxed,
        );
    }
}

/// Sends the pairs "each of the `held` lowest holds, then `then`" that this thread has not
/// sent before to the lock-order graph; whether there were any.
fn order_edges(local: &Local, rec: &ThreadRecord, held: usize, then: order::End) -> bool {
    const CACHE: usize = 256;
    let mut fresh = Vec::new();
    {
        let mut edges = local.edges.borrow_mut();
        if edges.is_empty() {
            edges.resize(CACHE, (0, 0));
        }
        for (i, slot) in rec.slots[..held].iter().enumerate() {
            let held_id = slot.id.load(Ordering::Relaxed);
            if held_id == then.id {
                continue;
            }
            let h = (held_id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ then.id)
                .wrapping_mul(0xD6E8_FEB8_6659_FD93);
            let entry = &mut edges[(h >> 56) as usize % CACHE];
            if *entry != (held_id, then.id) {
                *entry = (held_id, then.id);
                fresh.push(i);
            }
        }
    }
    if fresh.is_empty() {
        return false;
    }
    let ends: Vec<order::End> = fresh.iter().map(|&i| end_of(&rec.slots[i])).collect();
    for &i in &fresh {
        let meta = &rec.slots[i].meta;
        meta.store(meta.load(Ordering::Relaxed) | IN_GRAPH, Ordering::Relaxed);
    }
    order::add_edges(rec, &ends, then);
    true
}

/// A lock's slow path: times the parks and says what they are on.
pub(crate) struct LockWait {
    on: bool,
    site: &'static Location<'static>,
    /// When the slow path began (recording on): a contended acquisition's wait is all the
    /// time the caller spent in it, spinning included, as the caller experienced it.
    start: Option<Instant>,
    key: usize,
}

/// The calling thread found the lock at `key` taken and enters its slow path.
#[inline]
#[track_caller]
pub(crate) fn lock_wait_start(diag: &LockDiag, key: usize) -> LockWait {
    let state = state();
    let on = state & ON != 0;
    let wait = LockWait {
        on,
        site: Location::caller(),
        start: on.then(Instant::now),
        key,
    };
    if wait.on {
        wait.order_check(diag, state);
    }
    wait
}

impl LockWait {
    /// About to wait for this lock while holding others: those are lock-order edges even
    /// if the wait times out (the acquisition never happens, the danger was real).
    #[cold]
    fn order_check(&self, diag: &LockDiag, state: u64) {
        let then = order::End {
            key: self.key,
            id: diag.id(),
            kind: diag.kind(),
            site: Some(self.site),
        };
        let fresh = LOCAL
            .try_with(|local| {
                let Some(rec) = local.record.get() else {
                    return false;
                };
                let held = rec.len.load(Ordering::Relaxed);
                rec.generation() == state && held != 0 && order_edges(local, rec, held, then)
            })
            .unwrap_or(false);
        if fresh {
            diag.mark_in_graph(self.key);
        }
    }

    /// About to park on the lock: announce it to the wait layer.
    pub(crate) fn before_park(&self, diag: &LockDiag, key: usize) {
        if !self.on {
            return;
        }
        let info = diag.info(key);
        info.note_site(self.site);
        let intent = Intent {
            key,
            id: diag.id(),
            kind: diag.kind(),
            site: self.site,
            count_in: None,
        };
        let _ = LOCAL.try_with(|l| l.intent.set(Some(intent)));
    }

    /// The slow path ends: the lock was taken (`acquired`) or the deadline passed.
    pub(crate) fn done(self, diag: &LockDiag, acquired: bool) {
        if !self.on {
            return;
        }
        let waited = self.start.map_or(Duration::ZERO, |t| t.elapsed());
        diag.info(self.key).record_wait(waited, acquired);
    }
}

// ---------------------------------------------------------------------------------------
// Wait hooks

/// Says what the calling thread's next park on `key` is on (see the module docs of
/// `diagnostics`). Call it just before `wait::park`.
#[inline]
#[track_caller]
#[allow(dead_code)]
pub(crate) fn wait_intent(kind: PrimitiveKind, key: usize, tag: Option<&Tag>) {
    if state() & ON == 0 {
        return;
    }
    let site = Location::caller();
    let count_in = tag.map(|t| t.info_arc(kind, key));
    if let Some(info) = &count_in {
        info.note_site(site);
    }
    let intent = Intent {
        key,
        id: count_in.as_ref().map_or(0, |i| i.id),
        kind,
        site,
        count_in,
    };
    let _ = LOCAL.try_with(|l| l.intent.set(Some(intent)));
}

/// The wait layer's record of one park: begun before it, armed in `before_sleep` (the thread
/// is queued), ended when the park returns.
pub(crate) struct ParkScope {
    record: Option<Arc<ThreadRecord>>,
    intent: Option<Intent>,
    key: usize,
    deadline: Option<Instant>,
    armed: Cell<bool>,
}

impl ParkScope {
    #[inline]
    pub(crate) fn begin(key: usize, deadline: Option<Instant>) -> ParkScope {
        let state = state();
        if state & ON == 0 {
            return ParkScope {
                record: None,
                intent: None,
                key,
                deadline,
                armed: Cell::new(false),
            };
        }
        Self::begin_on(key, deadline, state)
    }

    #[cold]
    fn begin_on(key: usize, deadline: Option<Instant>, state: u64) -> ParkScope {
        let (record, intent) = LOCAL
            .try_with(|l| {
                let intent = l.intent.take().filter(|i| i.key == key);
                let record = Arc::clone(l.record());
                if record.generation() != state || record.has_mail.load(Ordering::Relaxed) {
                    record.fix_up(state);
                }
                (Some(record), intent)
            })
            .unwrap_or((None, None));
        ParkScope {
            record,
            intent,
            key,
            deadline,
            armed: Cell::new(false),
        }
    }

    /// In `before_sleep`: the thread is queued; record the wait (own record only: never
    /// parks, never panics).
    #[inline]
    pub(crate) fn arm(&self) {
        let Some(rec) = &self.record else {
            return;
        };
        let (id, kind, site) = match &self.intent {
            Some(i) => (i.id, i.kind, site_ptr(i.site)),
            None => (0, PrimitiveKind::Unknown, ptr::null_mut()),
        };
        let since = nanos_since_anchor(Instant::now());
        let deadline = self.deadline.map_or(NO_DEADLINE, nanos_since_anchor);
        rec.write(|epoch| {
            rec.wait_key.store(self.key, Ordering::Relaxed);
            rec.wait_id.store(id, Ordering::Relaxed);
            rec.wait_kind.store(kind as u8, Ordering::Relaxed);
            rec.wait_site.store(site, Ordering::Relaxed);
            rec.wait_since.store(since, Ordering::Relaxed);
            rec.wait_deadline.store(deadline, Ordering::Relaxed);
            rec.wait_epoch.store(epoch, Ordering::Relaxed);
            rec.wait_active.store(true, Ordering::Relaxed);
        });
        self.armed.set(true);
    }
}

impl Drop for ParkScope {
    fn drop(&mut self) {
        if !self.armed.get() {
            return;
        }
        let Some(rec) = &self.record else {
            return;
        };
        let since = rec.wait_since.load(Ordering::Relaxed);
        rec.write(|_| rec.wait_active.store(false, Ordering::Relaxed));
        if let Some(info) = self.intent.as_ref().and_then(|i| i.count_in.as_ref()) {
            let waited =
                Duration::from_nanos(nanos_since_anchor(Instant::now()).saturating_sub(since));
            info.record_wait(waited, true);
        }
    }
}
