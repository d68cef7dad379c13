//! (being written)

use super::Bench;

pub(crate) fn benches() -> Vec<Bench> {
    Vec::new()
}

pub(crate) fn sizes() -> Vec<(&'static str, usize)> {
    Vec::new()
}
