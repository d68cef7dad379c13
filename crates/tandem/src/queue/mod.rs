//! Python's `queue` module: `Queue`, `LifoQueue`, `PriorityQueue`, `SimpleQueue` (being written).
