//! The FIFO policy over a `VecDeque`, for the lock-based engine's tests and loom models
//! (the FIFO queues themselves run on the lock-free engine).

use std::collections::VecDeque;

use super::Policy;

/// A FIFO buffer: the policy of `Queue` and `SimpleQueue`.
impl<T> Policy for VecDeque<T> {
    type Item = T;

    #[inline]
    fn push(&mut self, item: T) {
        self.push_back(item);
    }

    #[inline]
    fn pop(&mut self) -> Option<T> {
        self.pop_front()
    }

    #[inline]
    fn len(&self) -> usize {
        VecDeque::len(self)
    }

    fn shrink_to_fit(&mut self) {
        VecDeque::shrink_to_fit(self);
    }

    fn push_from(&mut self, items: &mut VecDeque<T>, n: usize) {
        self.extend(items.drain(..n));
    }

    fn pop_into(&mut self, out: &mut Vec<T>, n: usize) {
        let n = n.min(VecDeque::len(self));
        out.extend(self.drain(..n));
    }
}
