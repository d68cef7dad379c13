//! `concurrent.futures` for Rust: `ThreadPoolExecutor` and its futures (being written).
