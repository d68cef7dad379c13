//! The detector: reads every thread's record, builds the wait-for graph, finds its cycles,
//! and confirms each with a second look.
//!
//! An edge T → U means "T waits on a lock whose recorded holder is U"; only waits on locks
//! (`PrimitiveKind::has_owner`) make edges, and never on a lock that was ever released by a
//! thread other than its acquirer (its holder is then not an owner). Each thread waits on at
//! most one thing, so the graph is a functional graph and its cycles are found in linear
//! time.
//!
//! A cycle is reported only if a second look, a moment later, finds the very same cycle:
//! the same waits (same wait epochs: no thread woke and waited again) on the same holds
//! (same hold epochs: no lock was released and re-taken). Records are read under their
//! sequence counters, so each look is consistent per thread; the second look rules out a
//! cycle assembled from moments that never coexisted.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::info::{describe, lookup};
use super::record::{now_ns, state, threads, HoldView, RecordView, ThreadRecord, WaitView};
use super::report::{
    label, Deadlock, DeadlockedThread, HeldLock, ThreadDump, ThreadState, Waiting,
};
use crate::wait::{self, Deadline};

/// The pause between the two looks of [`check_deadlock`].
const CONFIRM: Duration = Duration::from_millis(10);

struct View {
    rec: Arc<ThreadRecord>,
    view: RecordView,
}

/// Thread `t` waits (`wait`) for a lock that thread `holder` holds (`hold`).
#[derive(Clone, Copy)]
struct Link {
    t: usize,
    wait: WaitView,
    holder: usize,
    hold: HoldView,
}

/// What makes a cycle the same cycle: per link, (thread, wait epoch, holder, hold epoch),
/// rotated to start at the lowest thread serial.
pub(super) type Identity = Vec<(u64, u64, u64, u64)>;

fn collect() -> Vec<View> {
    let state = state();
    if state & 1 == 0 {
        return Vec::new();
    }
    threads()
        .into_iter()
        .filter(|r| r.generation() == state)
        .filter_map(|rec| rec.read().map(|view| View { rec, view }))
        .collect()
}

fn holders(views: &[View]) -> HashMap<(usize, u64), (usize, HoldView)> {
    let mut map = HashMap::new();
    for (i, v) in views.iter().enumerate() {
        for h in &v.view.holds {
            map.insert((h.key, h.id), (i, *h));
        }
    }
    map
}

fn cycles(views: &[View]) -> Vec<Vec<Link>> {
    let holders = holders(views);
    let next: Vec<Option<Link>> = views
        .iter()
        .enumerate()
        .map(|(t, v)| {
            let wait = v.view.wait?;
            if !wait.kind.has_owner() || wait.id == 0 {
                return None;
            }
            let &(holder, hold) = holders.get(&(wait.key, wait.id))?;
            if lookup(wait.key, wait.id)
                .is_some_and(|info| info.foreign_release.load(Ordering::Relaxed))
            {
                return None;
            }
            Some(Link {
                t,
                wait,
                holder,
                hold,
            })
        })
        .collect();
    // 0: not visited, 1: on the current path, 2: done.
    let mut color = vec![0u8; views.len()];
    let mut found = Vec::new();
    for start in 0..views.len() {
        let mut path = Vec::new();
        let mut at = Some(start);
        while let Some(t) = at.filter(|&t| color[t] == 0) {
            color[t] = 1;
            path.push(t);
            at = next[t].map(|link| link.holder);
        }
        // The walk ended on a thread of this very walk: a cycle (ending on a thread of an
        // earlier walk, or on one that waits for nothing, is not).
        if let Some(at) = at.filter(|&t| color[t] == 1) {
            if let Some(pos) = path.iter().position(|&p| p == at) {
                found.push(path[pos..].iter().filter_map(|&p| next[p]).collect());
            }
        }
        for p in path {
            color[p] = 2;
        }
    }
    found
}

fn identity(cycle: &[Link], views: &[View]) -> Identity {
    let mut id: Identity = cycle
        .iter()
        .map(|l| {
            (
                views[l.t].rec.serial,
                l.wait.epoch,
                views[l.holder].rec.serial,
                l.hold.epoch,
            )
        })
        .collect();
    if let Some(min) = (0..id.len()).min_by_key(|&i| id[i].0) {
        id.rotate_left(min);
    }
    id
}

fn held_locks(view: &RecordView) -> Vec<HeldLock> {
    view.holds
        .iter()
        .map(|h| HeldLock {
            lock: describe(h.key, h.id, h.kind),
            taken_at: h.site,
        })
        .collect()
}

fn elapsed(since: u64, now: u64) -> Duration {
    Duration::from_nanos(now.saturating_sub(since))
}

fn build(cycle: &[Link], views: &[View]) -> Deadlock {
    let now = now_ns();
    let position: HashMap<usize, usize> = cycle.iter().enumerate().map(|(i, l)| (l.t, i)).collect();
    let threads = cycle
        .iter()
        .map(|l| {
            let v = &views[l.t];
            DeadlockedThread {
                name: v.rec.name.clone(),
                id: v.rec.thread_id,
                waiting_for: describe(l.wait.key, l.wait.id, l.wait.kind),
                waiting_at: l.wait.site,
                waited: elapsed(l.wait.since, now),
                gives_up_in: l.wait.deadline.map(|d| elapsed(now, d)),
                held_by: position.get(&l.holder).copied().unwrap_or(0),
                taken_at: l.hold.site,
                holding: held_locks(&v.view),
            }
        })
        .collect();
    Deadlock { threads }
}

/// Finds the cycles present in two looks separated by `pause` (which returns `false` to
/// give up), with their identities.
pub(super) fn confirmed(pause: impl FnOnce() -> bool) -> Vec<(Identity, Deadlock)> {
    let first = collect();
    let candidates: HashSet<Identity> =
        cycles(&first).iter().map(|c| identity(c, &first)).collect();
    if candidates.is_empty() || !pause() {
        return Vec::new();
    }
    let second = collect();
    cycles(&second)
        .iter()
        .filter_map(|c| {
            let id = identity(c, &second);
            candidates.contains(&id).then(|| (id, build(c, &second)))
        })
        .collect()
}

/// Parks the calling thread for `d` through the wait layer, unrecorded (nobody wakes it).
pub(super) fn pause(d: Duration) {
    let deadline = Deadline::after(d);
    let key = wait::key_of(&deadline);
    while !deadline.has_passed() {
        // SAFETY: the key is the address of a local of this frame, which no one else parks
        // on or unparks; the closures do nothing, so they neither panic nor call the wait
        // layer.
        unsafe {
            wait::park_unrecorded(
                key,
                || true,
                || {},
                |_, _| {},
                wait::DEFAULT_PARK_TOKEN,
                deadline.instant(),
            );
        }
    }
}

/// Looks for deadlocks now: every set of threads each waiting for a tandem lock held by the
/// next, confirmed by a second look about 10 ms later (so it takes that long when it finds a
/// candidate, and no time otherwise). Empty when recording is off.
///
/// A thread waiting for a `Lock` it already holds itself is a deadlock of one thread (the
/// classic `Lock`-instead-of-`RLock` bug) — unless the program releases that lock from
/// another thread, which Python allows: a lock released at least once by a thread other
/// than its acquirer is treated as ownerless from then on and never reported.
///
/// ```
/// # #[cfg(feature = "diagnostics")] {
/// use std::time::Duration;
/// use pytandem::diagnostics;
/// use pytandem::sync::Lock;
///
/// diagnostics::enable();
/// let lock = Lock::named((), "config");
/// std::thread::scope(|s| {
///     s.spawn(|| {
///         lock.acquire().forget(); // Python: lock.acquire()
///         // ... and again on the same thread: it waits for itself (30 s at most here).
///         assert!(lock.acquire_timeout(Duration::from_secs(30)).is_some());
///     });
///     let found = loop {
///         let found = diagnostics::check_deadlock();
///         if !found.is_empty() {
///             break found;
///         }
///         std::thread::yield_now();
///     };
///     assert_eq!(found[0].threads.len(), 1);
///     assert!(found[0].to_string().contains("Lock \"config\""));
///     lock.release().unwrap(); // another thread may release a Lock: the waiter goes on
/// });
/// # }
/// ```
pub fn check_deadlock() -> Vec<Deadlock> {
    confirmed(|| {
        pause(CONFIRM);
        true
    })
    .into_iter()
    .map(|(_, d)| d)
    .collect()
}

/// A thread dump: every thread that waits in tandem or holds a tandem lock right now, what
/// it waits on (kind, name, where, for how long, held by whom) and what it holds (where it
/// took each lock). Empty when recording is off.
pub fn snapshot() -> ThreadDump {
    let views = collect();
    let holders = holders(&views);
    let now = now_ns();
    let threads = views
        .iter()
        .filter(|v| v.view.wait.is_some() || !v.view.holds.is_empty())
        .map(|v| ThreadState {
            name: v.rec.name.clone(),
            id: v.rec.thread_id,
            alive: v.rec.alive.load(Ordering::Relaxed),
            waiting: v.view.wait.map(|w| Waiting {
                on: describe(w.key, w.id, w.kind),
                at: w.site,
                waited: elapsed(w.since, now),
                gives_up_in: w.deadline.map(|d| elapsed(now, d)),
                held_by: (w.id != 0)
                    .then(|| holders.get(&(w.key, w.id)))
                    .flatten()
                    .map(|(h, _)| label(views[*h].rec.name.as_deref(), views[*h].rec.thread_id)),
            }),
            holding: held_locks(&v.view),
        })
        .collect();
    ThreadDump { threads }
}
