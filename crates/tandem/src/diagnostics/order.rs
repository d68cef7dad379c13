//! The lock-order checker: one global graph of "A was held when B was taken" edges.
//!
//! Each thread sends the graph only the pairs it has not sent before (a small per-thread
//! cache), so a program that keeps taking the same locks in the same order touches the graph
//! once per pair. Adding the edge A → B first looks for a path B ⇝ A: if there is one, the
//! two orders (or a longer chain of them) can deadlock when run at the same time, and that is
//! reported once, with every site involved, whether or not a deadlock ever happens.
//!
//! Nodes are lock ids (never reused); a lock's node and edges are removed when it is dropped,
//! so the graph only grows with the locks alive at once.

use std::collections::{HashMap, HashSet};
use std::panic::Location;
use std::sync::Arc;

use super::info::{self, Info};
use super::record::ThreadRecord;
use super::report::{LockOrderViolation, OrderEdge, Primitive};
use super::spin::SpinLock;
use super::PrimitiveKind;

/// How many nodes one path search may visit before giving up (a missed report at worst).
const SEARCH_LIMIT: usize = 10_000;
/// Reports kept for [`take_lock_order_violations`] at most.
const KEEP: usize = 1_000;

/// One end of a new edge, as the acquiring thread recorded it.
pub(super) struct End {
    pub(super) key: usize,
    pub(super) id: u64,
    pub(super) kind: PrimitiveKind,
    pub(super) site: Option<&'static Location<'static>>,
}

/// A lock as the graph remembers it: its details if it has any (its name may come later).
#[derive(Clone)]
struct Node {
    key: usize,
    id: u64,
    kind: PrimitiveKind,
    info: Option<Arc<Info>>,
}

impl Node {
    fn primitive(&self) -> Primitive {
        match &self.info {
            Some(i) => {
                let mut p = i.primitive();
                p.address = self.key;
                p
            }
            None => Primitive {
                kind: self.kind,
                name: None,
                created_at: None,
                address: self.key,
            },
        }
    }
}

#[derive(Clone)]
struct Edge {
    thread: String,
    first: Node,
    first_site: Option<&'static Location<'static>>,
    then: Node,
    then_site: Option<&'static Location<'static>>,
}

impl Edge {
    fn report(&self) -> OrderEdge {
        OrderEdge {
            thread: self.thread.clone(),
            first: self.first.primitive(),
            first_site: self.first_site,
            then: self.then.primitive(),
            then_site: self.then_site,
        }
    }
}

#[derive(Default)]
struct Graph {
    out: HashMap<u64, HashMap<u64, Edge>>,
    into: HashMap<u64, HashSet<u64>>,
    reported: HashSet<Vec<u64>>,
    pending: Vec<LockOrderViolation>,
}

impl Graph {
    /// A path of edges from `from` to `to`, if one exists within the search limit.
    fn path(&self, from: u64, to: u64) -> Option<Vec<Edge>> {
        let mut parent: HashMap<u64, u64> = HashMap::new();
        let mut stack = vec![from];
        let mut seen = HashSet::from([from]);
        while let Some(node) = stack.pop() {
            if node == to {
                let mut path = Vec::new();
                let mut at = to;
                while at != from {
                    let prev = parent[&at];
                    path.push(self.out[&prev][&at].clone());
                    at = prev;
                }
                path.reverse();
                return Some(path);
            }
            if seen.len() > SEARCH_LIMIT {
                return None;
            }
            if let Some(next) = self.out.get(&node) {
                for &n in next.keys() {
                    if seen.insert(n) {
                        parent.insert(n, node);
                        stack.push(n);
                    }
                }
            }
        }
        None
    }
}

static GRAPH: SpinLock<Option<Graph>> = SpinLock::new(None);

type Callback = Arc<dyn Fn(&LockOrderViolation) + Send + Sync>;
static CALLBACK: SpinLock<Option<Callback>> = SpinLock::new(None);

fn thread_name(rec: &ThreadRecord) -> String {
    match &rec.name {
        Some(n) => n.clone(),
        None => format!("{:?}", rec.thread_id),
    }
}

/// Adds the edges `held[i] → then` taken by the thread of `rec`; reports every cycle one
/// of them closes for the first time.
pub(super) fn add_edges(rec: &ThreadRecord, held: &[End], then: End) {
    let node = |e: &End| Node {
        key: e.key,
        id: e.id,
        kind: e.kind,
        info: info::lookup(e.key, e.id),
    };
    let then_node = node(&then);
    let thread = thread_name(rec);
    let mut found = Vec::new();
    {
        let mut graph = GRAPH.lock();
        let graph = graph.get_or_insert_with(Graph::default);
        for h in held {
            if graph
                .out
                .get(&h.id)
                .is_some_and(|m| m.contains_key(&then.id))
            {
                continue;
            }
            let edge = Edge {
                thread: thread.clone(),
                first: node(h),
                first_site: h.site,
                then: then_node.clone(),
                then_site: then.site,
            };
            let earlier = graph.path(then.id, h.id);
            graph
                .out
                .entry(h.id)
                .or_default()
                .insert(then.id, edge.clone());
            graph.into.entry(then.id).or_default().insert(h.id);
            let Some(earlier) = earlier else {
                continue;
            };
            let mut cycle: Vec<u64> = earlier.iter().map(|e| e.first.id).collect();
            cycle.push(h.id);
            cycle.sort_unstable();
            cycle.dedup();
            if !graph.reported.insert(cycle) {
                continue;
            }
            let violation = LockOrderViolation {
                now: edge.report(),
                earlier: earlier.iter().map(Edge::report).collect(),
            };
            if graph.pending.len() < KEEP {
                graph.pending.push(violation.clone());
            }
            found.push(violation);
        }
    }
    if found.is_empty() {
        return;
    }
    let callback = CALLBACK.lock().clone();
    if let Some(callback) = callback {
        for v in &found {
            callback(v);
        }
    }
}

/// Removes a dropped lock's node and edges.
pub(super) fn forget(id: u64) {
    let mut graph = GRAPH.lock();
    let Some(graph) = graph.as_mut() else {
        return;
    };
    if let Some(targets) = graph.out.remove(&id) {
        for t in targets.keys() {
            if let Some(sources) = graph.into.get_mut(t) {
                sources.remove(&id);
            }
        }
    }
    if let Some(sources) = graph.into.remove(&id) {
        for s in sources {
            if let Some(targets) = graph.out.get_mut(&s) {
                targets.remove(&id);
            }
        }
    }
}

/// Takes the lock-order inversions found so far (each is reported once, the first time it
/// is seen), oldest first.
///
/// ```
/// # #[cfg(feature = "diagnostics")] {
/// use pytandem::diagnostics;
/// use pytandem::sync::Lock;
///
/// diagnostics::enable();
/// let (a, b) = (Lock::named((), "a"), Lock::named((), "b"));
/// {
///     let _a = a.acquire();
///     let _b = b.acquire(); // a, then b
/// }
/// {
///     let _b = b.acquire();
///     let _a = a.acquire(); // b, then a: could deadlock against the above
/// }
/// let found = diagnostics::take_lock_order_violations();
/// assert!(found.iter().any(|v| v.to_string().contains("\"a\"")));
/// # }
/// ```
pub fn take_lock_order_violations() -> Vec<LockOrderViolation> {
    GRAPH
        .lock()
        .as_mut()
        .map(|g| std::mem::take(&mut g.pending))
        .unwrap_or_default()
}

/// Calls `callback` with each lock-order inversion the moment it is first seen, on the
/// thread whose acquisition revealed it (which holds the locks involved: the callback must
/// not wait for them). Replaces any earlier callback. Inversions are also kept for
/// [`take_lock_order_violations`].
pub fn on_lock_order_violation(callback: impl Fn(&LockOrderViolation) + Send + Sync + 'static) {
    *CALLBACK.lock() = Some(Arc::new(callback));
}
