//! Recording compiled out: every hook is an empty inline function, every type zero-sized.

use super::{How, PrimitiveKind, Stats};

/// A lock's diagnostic state: nothing at all.
pub(crate) struct LockDiag;

impl LockDiag {
    #[inline(always)]
    pub(crate) const fn new(_kind: PrimitiveKind) -> Self {
        LockDiag
    }

    #[inline(always)]
    pub(crate) fn named(_kind: PrimitiveKind, _name: String) -> Self {
        LockDiag
    }

    #[inline(always)]
    pub(crate) fn set_name(&self, _key: usize, _name: String) {}

    #[inline(always)]
    pub(crate) fn name(&self) -> Option<String> {
        None
    }

    #[inline(always)]
    pub(crate) fn stats(&self) -> Stats {
        Stats::default()
    }
}

/// Any other primitive's diagnostic state: nothing at all.
pub(crate) struct Tag;

#[allow(dead_code)]
impl Tag {
    #[inline(always)]
    pub(crate) const fn new() -> Self {
        Tag
    }

    #[inline(always)]
    pub(crate) fn set_name(&self, _kind: PrimitiveKind, _key: usize, _name: String) {}

    #[inline(always)]
    pub(crate) fn name(&self) -> Option<String> {
        None
    }

    #[inline(always)]
    pub(crate) fn stats(&self) -> Stats {
        Stats::default()
    }
}

#[inline(always)]
pub(crate) fn lock_acquired(_diag: &LockDiag, _key: usize, _how: How) {}

#[inline(always)]
pub(crate) fn lock_released(_diag: &LockDiag, _key: usize) {}

/// A lock's slow path, as the detector sees it: nothing.
pub(crate) struct LockWait;

#[inline(always)]
pub(crate) fn lock_wait_start(_diag: &LockDiag, _key: usize) -> LockWait {
    LockWait
}

impl LockWait {
    #[inline(always)]
    pub(crate) fn before_park(&self, _diag: &LockDiag, _key: usize) {}

    #[inline(always)]
    pub(crate) fn done(self, _diag: &LockDiag, _acquired: bool) {}
}

#[inline(always)]
#[allow(dead_code)]
pub(crate) fn wait_intent(_kind: PrimitiveKind, _key: usize, _tag: Option<&Tag>) {}

/// The wait layer's recording around one park: nothing.
#[allow(dead_code)]
pub(crate) struct ParkScope;
