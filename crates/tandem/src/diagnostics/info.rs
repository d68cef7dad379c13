//! What the detector knows about one primitive: its id, name, first site and statistics.
//!
//! A primitive carries a [`Tag`] (locks: a [`LockDiag`], a tag plus an id and a counter):
//! one pointer, null until something needs details — a name, a first contended wait, a place
//! in the lock-order graph. The details ([`Info`]) are reference-counted: the primitive holds
//! one reference, and the registry (primitive address → details) another, so reports can
//! name a primitive from the address a wait or a hold recorded.
//!
//! Addresses are not identities: a lock may be moved while nobody borrows it, and a dropped
//! lock's address may be reused. So every lock also has an *id*, unique for the life of the
//! process (never reused); holds and waits record `(address, id)`, and a registry lookup
//! only answers when both match. The registry entry is re-keyed whenever the primitive is
//! seen at a new address while borrowed (its first wait, its first acquisition after a
//! move), and removed when the primitive is dropped.

use std::collections::BTreeMap;
use std::panic::Location;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::report::{Primitive, PrimitiveStats};
use super::spin::SpinLock;
use super::{order, PrimitiveKind, Stats};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A new primitive id: unique for the life of the process, never 0.
pub(super) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// Details of one primitive, allocated on first need.
pub(super) struct Info {
    pub(super) id: u64,
    pub(super) kind: PrimitiveKind,
    /// Where the primitive was last seen (its registry key).
    pub(super) key: AtomicUsize,
    name: SpinLock<Option<Arc<str>>>,
    /// Where it was created (`Lock::named`) or first named or waited on.
    created_at: AtomicPtr<Location<'static>>,
    pub(super) acquisitions: AtomicU64,
    pub(super) contended: AtomicU64,
    pub(super) timeouts: AtomicU64,
    pub(super) total_wait_ns: AtomicU64,
    pub(super) max_wait_ns: AtomicU64,
    /// Released at least once by a thread other than the one that acquired it (Python's
    /// `Lock` used as a signal): its holder is not an owner, so it never forms a cycle.
    pub(super) foreign_release: AtomicBool,
    /// Has an edge in the lock-order graph, to be removed when the primitive is dropped.
    pub(super) in_graph: AtomicBool,
}

impl Info {
    fn new(
        id: u64,
        kind: PrimitiveKind,
        name: Option<Arc<str>>,
        site: Option<&'static Location<'static>>,
    ) -> Info {
        Info {
            id,
            kind,
            key: AtomicUsize::new(0),
            name: SpinLock::new(name),
            created_at: AtomicPtr::new(site.map_or(ptr::null_mut(), location_ptr)),
            acquisitions: AtomicU64::new(0),
            contended: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            total_wait_ns: AtomicU64::new(0),
            max_wait_ns: AtomicU64::new(0),
            foreign_release: AtomicBool::new(false),
            in_graph: AtomicBool::new(false),
        }
    }

    pub(super) fn name(&self) -> Option<Arc<str>> {
        self.name.lock().clone()
    }

    pub(super) fn created_at(&self) -> Option<&'static Location<'static>> {
        let p = self.created_at.load(Ordering::Acquire);
        // SAFETY: only `&'static Location` pointers are ever stored.
        (!p.is_null()).then(|| unsafe { &*p })
    }

    /// Records the first site seen, if none is known yet.
    pub(super) fn note_site(&self, site: &'static Location<'static>) {
        if self.created_at.load(Ordering::Relaxed).is_null() {
            let _ = self.created_at.compare_exchange(
                ptr::null_mut(),
                location_ptr(site),
                Ordering::Release,
                Ordering::Relaxed,
            );
        }
    }

    /// The report's view of this primitive.
    pub(super) fn primitive(&self) -> Primitive {
        Primitive {
            kind: self.kind,
            name: self.name().map(|n| n.to_string()),
            created_at: self.created_at(),
            address: self.key.load(Ordering::Relaxed),
        }
    }

    /// Statistics, with `pending` acquisitions not yet folded into `acquisitions`.
    pub(super) fn stats(&self, pending: u64) -> Stats {
        Stats {
            acquisitions: self.acquisitions.load(Ordering::Relaxed) + pending,
            contended: self.contended.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            total_wait: Duration::from_nanos(self.total_wait_ns.load(Ordering::Relaxed)),
            max_wait: Duration::from_nanos(self.max_wait_ns.load(Ordering::Relaxed)),
        }
    }

    /// Adds one wait: `completed` (the primitive was obtained) or a time-out.
    pub(super) fn record_wait(&self, waited: Duration, completed: bool) {
        if completed {
            self.contended.fetch_add(1, Ordering::Relaxed);
        } else {
            self.timeouts.fetch_add(1, Ordering::Relaxed);
        }
        let ns = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        self.total_wait_ns.fetch_add(ns, Ordering::Relaxed);
        self.max_wait_ns.fetch_max(ns, Ordering::Relaxed);
    }
}

fn location_ptr(site: &'static Location<'static>) -> *mut Location<'static> {
    site as *const Location<'static> as *mut Location<'static>
}

/// Address → details of every primitive that has details, re-keyed when seen moved.
static REGISTRY: SpinLock<BTreeMap<usize, Arc<Info>>> = SpinLock::new(BTreeMap::new());

fn register(info: &Arc<Info>, key: usize) {
    let mut map = REGISTRY.lock();
    let old = info.key.swap(key, Ordering::Relaxed);
    if old != 0 && old != key && map.get(&old).is_some_and(|i| Arc::ptr_eq(i, info)) {
        map.remove(&old);
    }
    map.insert(key, Arc::clone(info));
}

fn unregister(info: &Arc<Info>) {
    let mut map = REGISTRY.lock();
    let key = info.key.load(Ordering::Relaxed);
    if map.get(&key).is_some_and(|i| Arc::ptr_eq(i, info)) {
        map.remove(&key);
    }
}

/// The details of the primitive with id `id` seen at `key`, if it has any.
pub(super) fn lookup(key: usize, id: u64) -> Option<Arc<Info>> {
    REGISTRY
        .lock()
        .get(&key)
        .filter(|i| id == 0 || i.id == id)
        .cloned()
}

/// The report's view of a primitive from a hold or a wait.
pub(super) fn describe(key: usize, id: u64, kind: PrimitiveKind) -> Primitive {
    match lookup(key, id) {
        Some(info) => {
            let mut p = info.primitive();
            p.address = key;
            p
        }
        None => Primitive {
            kind,
            name: None,
            created_at: None,
            address: key,
        },
    }
}

/// Contention statistics of every primitive that has details (it was named, waited on, or
/// took part in a nested acquisition), busiest first (by total wait).
pub fn stats() -> Vec<PrimitiveStats> {
    let infos: Vec<Arc<Info>> = REGISTRY.lock().values().cloned().collect();
    let mut all: Vec<PrimitiveStats> = infos
        .iter()
        .map(|i| PrimitiveStats {
            primitive: i.primitive(),
            stats: i.stats(0),
        })
        .collect();
    all.sort_by_key(|p| std::cmp::Reverse(p.stats.total_wait));
    all
}

/// A primitive's diagnostic state: a pointer to its [`Info`], null until needed.
pub(crate) struct Tag {
    /// From `Arc::into_raw`; the tag owns that reference.
    info: AtomicPtr<Info>,
}

impl Tag {
    #[allow(dead_code)]
    pub(crate) const fn new() -> Self {
        Tag {
            info: AtomicPtr::new(ptr::null_mut()),
        }
    }

    fn with(info: Arc<Info>) -> Self {
        Tag {
            info: AtomicPtr::new(Arc::into_raw(info) as *mut Info),
        }
    }

    #[inline]
    pub(super) fn get(&self) -> Option<&Info> {
        let p = self.info.load(Ordering::Acquire);
        // SAFETY: a non-null pointer came from `Arc::into_raw`, and the tag keeps that
        // reference until it is dropped, which needs `&mut self`.
        (!p.is_null()).then(|| unsafe { &*p })
    }

    /// A counted reference to the details, if there are any.
    fn arc(&self) -> Option<Arc<Info>> {
        let p = self.info.load(Ordering::Acquire);
        if p.is_null() {
            return None;
        }
        // SAFETY: `p` came from `Arc::into_raw` and the tag's own reference keeps it alive;
        // this adds a reference for the returned `Arc`.
        unsafe {
            Arc::increment_strong_count(p);
            Some(Arc::from_raw(p))
        }
    }

    /// The details, created and registered at `key` on first need; re-keyed if the
    /// primitive has moved since it was last seen.
    pub(super) fn info(&self, kind: PrimitiveKind, key: usize, id: impl FnOnce() -> u64) -> &Info {
        if let Some(info) = self.get() {
            if info.key.load(Ordering::Relaxed) != key {
                self.rekey(key);
            }
            return info;
        }
        self.create(kind, key, id())
    }

    #[cold]
    fn rekey(&self, key: usize) {
        if let Some(arc) = self.arc() {
            register(&arc, key);
        }
    }

    #[cold]
    fn create(&self, kind: PrimitiveKind, key: usize, id: u64) -> &Info {
        let info = Arc::new(Info::new(id, kind, None, None));
        let raw = Arc::into_raw(Arc::clone(&info)) as *mut Info;
        match self
            .info
            .compare_exchange(ptr::null_mut(), raw, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => register(&info, key),
            Err(_) => {
                // SAFETY: `raw` came from `Arc::into_raw` above and was not published.
                drop(unsafe { Arc::from_raw(raw) });
            }
        }
        self.get().expect("the tag's details were just published")
    }

    /// Sets the name reports use.
    #[allow(dead_code)]
    #[track_caller]
    pub(crate) fn set_name(&self, kind: PrimitiveKind, key: usize, name: String) {
        let info = self.info(kind, key, next_id);
        info.note_site(Location::caller());
        *info.name.lock() = Some(name.into());
    }

    /// The name, if one was set.
    #[allow(dead_code)]
    pub(crate) fn name(&self) -> Option<String> {
        self.get().and_then(Info::name).map(|n| n.to_string())
    }

    /// Contention statistics of the waits announced with this tag.
    #[allow(dead_code)]
    pub(crate) fn stats(&self) -> Stats {
        self.get().map_or_else(Stats::default, |i| i.stats(0))
    }

    /// A counted reference to the details (created on first need), for a wait record.
    pub(super) fn info_arc(&self, kind: PrimitiveKind, key: usize) -> Arc<Info> {
        self.info(kind, key, next_id);
        self.arc().expect("the tag has details")
    }
}

impl Drop for Tag {
    fn drop(&mut self) {
        let p = *self.info.get_mut();
        if p.is_null() {
            return;
        }
        // SAFETY: `p` came from `Arc::into_raw`; this gives back the tag's own reference.
        let info = unsafe { Arc::from_raw(p) };
        unregister(&info);
        if info.in_graph.load(Ordering::Relaxed) {
            order::forget(info.id);
        }
    }
}

/// A lock's diagnostic state: its kind and id, an acquisition counter, and its tag
/// (24 bytes, so a `RawLock` is 32).
///
/// `kind_id` packs the kind (top byte, set at construction) with the id (the rest, 0 until
/// assigned on first need). The counter lives in the lock itself until the lock has
/// details, then in them; either way it is written only by the thread that holds the lock
/// (a load and a store, no read-modify-write), which the lock's own acquire/release
/// ordering keeps exact.
pub(crate) struct LockDiag {
    kind_id: AtomicU64,
    acquisitions: AtomicU64,
    tag: Tag,
}

const KIND_SHIFT: u32 = 56;
const ID_MASK: u64 = (1 << KIND_SHIFT) - 1;

impl LockDiag {
    pub(crate) const fn new(kind: PrimitiveKind) -> Self {
        LockDiag {
            kind_id: AtomicU64::new((kind as u64) << KIND_SHIFT),
            acquisitions: AtomicU64::new(0),
            tag: Tag::new(),
        }
    }

    /// A named lock's state; its creation site is the caller's.
    #[track_caller]
    pub(crate) fn named(kind: PrimitiveKind, name: String) -> Self {
        let id = next_id();
        let info = Info::new(id, kind, Some(name.into()), Some(Location::caller()));
        LockDiag {
            kind_id: AtomicU64::new(((kind as u64) << KIND_SHIFT) | id),
            acquisitions: AtomicU64::new(0),
            tag: Tag::with(Arc::new(info)),
        }
    }

    #[inline]
    pub(super) fn kind(&self) -> PrimitiveKind {
        PrimitiveKind::from_u8(self.kind_byte())
    }

    /// The kind as stored in records (`PrimitiveKind as u8`).
    #[inline]
    pub(super) fn kind_byte(&self) -> u8 {
        (self.kind_id.load(Ordering::Relaxed) >> KIND_SHIFT) as u8
    }

    /// The lock's id, assigned on first need.
    #[inline]
    pub(super) fn id(&self) -> u64 {
        match self.kind_id.load(Ordering::Relaxed) & ID_MASK {
            0 => self.assign_id(),
            id => id,
        }
    }

    #[cold]
    fn assign_id(&self) -> u64 {
        let new = next_id() & ID_MASK;
        let mut current = self.kind_id.load(Ordering::Relaxed);
        loop {
            if current & ID_MASK != 0 {
                return current & ID_MASK;
            }
            match self.kind_id.compare_exchange_weak(
                current,
                current | new,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return new,
                Err(c) => current = c,
            }
        }
    }

    /// The lock's details, created on first need.
    pub(super) fn info(&self, key: usize) -> &Info {
        self.tag.info(self.kind(), key, || self.id())
    }

    /// Counts one acquisition. The caller holds the lock.
    #[inline]
    pub(super) fn count_acquisition(&self, key: usize) {
        match self.tag.get() {
            None => {
                let n = self.acquisitions.load(Ordering::Relaxed);
                self.acquisitions.store(n + 1, Ordering::Relaxed);
            }
            Some(info) => {
                if info.key.load(Ordering::Relaxed) != key {
                    self.tag.rekey(key);
                }
                let pending = self.acquisitions.load(Ordering::Relaxed);
                if pending != 0 {
                    self.acquisitions.store(0, Ordering::Relaxed);
                }
                let n = info.acquisitions.load(Ordering::Relaxed);
                info.acquisitions.store(n + 1 + pending, Ordering::Relaxed);
            }
        }
    }

    /// Marks the lock as part of the lock-order graph (so dropping it cleans the graph).
    #[cold]
    pub(super) fn mark_in_graph(&self, key: usize) {
        self.info(key).in_graph.store(true, Ordering::Relaxed);
    }

    /// Marks the lock as released by a thread other than its acquirer.
    #[cold]
    pub(super) fn mark_foreign_release(&self, key: usize) {
        self.info(key)
            .foreign_release
            .store(true, Ordering::Relaxed);
    }

    #[track_caller]
    pub(crate) fn set_name(&self, key: usize, name: String) {
        let info = self.info(key);
        info.note_site(Location::caller());
        *info.name.lock() = Some(name.into());
    }

    pub(crate) fn name(&self) -> Option<String> {
        self.tag.name()
    }

    pub(crate) fn stats(&self) -> Stats {
        let pending = self.acquisitions.load(Ordering::Relaxed);
        match self.tag.get() {
            Some(info) => info.stats(pending),
            None => Stats {
                acquisitions: pending,
                ..Stats::default()
            },
        }
    }
}
