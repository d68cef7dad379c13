//! Threads: named, joinable with a timeout, panics reported; per-object thread-local storage.
