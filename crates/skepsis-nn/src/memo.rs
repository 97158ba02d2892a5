//! Forward values shared between related models on one input.
//!
//! The cascading model randomization test (Adebayo et al., "Sanity Checks for Saliency Maps",
//! NeurIPS 2018) explains the same images on a chain of models that differ from the trained
//! one only in the randomized layers; top-down, every layer below them is unchanged, so are
//! its activations. Every method on a model state also runs the same forward pass. A
//! [`TraceMemo`] attached to a model ([`Model::with_trace_memo`](crate::Model::with_trace_memo))
//! keeps the values of the last forward pass on one input (the *anchor*), and the next pass on
//! that input, by this model or by any model derived from it, takes every node whose layer and
//! inputs are unchanged from the memo instead of computing it again.
//!
//! "Unchanged" is decided by identity, never by value: each node of a [`Model`](crate::Model)
//! carries a version drawn from a process-wide counter when the node is built and again when
//! its layer or one of its tensors is replaced (randomizing a layer, converting a dtype);
//! copies of a model share versions. A node is taken from the memo when its version equals the
//! memo's and every value it consumes was itself taken from the memo (or is the anchor input).
//! Results are the same values a fresh pass computes, not approximations of them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use candle_core::{Tensor, TensorId};

/// A fresh node version: never equal to another one drawn in this process.
pub(crate) fn next_version() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Default memory budget of a memo: a forward pass whose values take more bytes than this is
/// not kept (it would hold a large network's activations alive for the whole check).
pub const DEFAULT_TRACE_MEMO_BUDGET: usize = 256 << 20;

/// The values of the last forward pass on the anchor input, with the node versions that
/// produced them. Shared (reference-counted) by a model and every copy derived from it.
pub struct TraceMemo {
    anchor: TensorId,
    budget_bytes: usize,
    last: Mutex<Option<Memoized>>,
}

#[derive(Clone)]
pub(crate) struct Memoized {
    /// Version of every node when its value was computed.
    pub versions: Vec<u64>,
    /// The input and every node's output (the trace).
    pub values: Vec<Tensor>,
}

impl std::fmt::Debug for TraceMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceMemo")
            .field("anchor", &self.anchor)
            .field("budget_bytes", &self.budget_bytes)
            .finish_non_exhaustive()
    }
}

impl TraceMemo {
    /// A memo for passes on `anchor` (the very tensor, or a clone of it) that keeps at most
    /// `budget_bytes` of values.
    pub fn new(anchor: &Tensor, budget_bytes: usize) -> Self {
        TraceMemo { anchor: anchor.id(), budget_bytes, last: Mutex::new(None) }
    }

    /// Whether `x` is the anchor input.
    pub fn is_anchor(&self, x: &Tensor) -> bool {
        x.id() == self.anchor
    }

    /// The last pass on the anchor, if any (a copy of its handles: tensors are shared).
    pub(crate) fn last(&self) -> Option<Memoized> {
        self.last.lock().ok().and_then(|m| m.clone())
    }

    /// Keeps `values` as the last pass when they fit the budget.
    pub(crate) fn keep(&self, versions: &[u64], values: &[Tensor]) {
        let bytes: usize = values.iter().map(|t| t.elem_count() * t.dtype().size_in_bytes()).sum();
        if let Ok(mut last) = self.last.lock() {
            *last = (bytes <= self.budget_bytes)
                .then(|| Memoized { versions: versions.to_vec(), values: values.to_vec() });
        }
    }
}
