//! k-nearest search on unit-sphere coordinates: a packed k-d tree snapshot (kiddo, cache-friendly
//! flat layout) for the bulk of an org's outlets, and an exact best-first branch and bound over
//! rstar trees for the outlets changed since the snapshot and for selective filters.
//!
//! Squared chord distance orders points exactly like great-circle distance. Ties go to the smaller
//! outlet id, so answers do not depend on how the trees happen to be laid out.

use kiddo::SquaredEuclidean;
use kiddo::immutable::float::kdtree::ImmutableKdTree;
use rstar::primitives::GeomWithData;
use rstar::{ParentNode, PointDistance, RTree, RTreeNode};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::num::NonZero;

/// An R-tree entry: unit-sphere position and outlet id.
pub(crate) type Node = GeomWithData<[f64; 3], i64>;

/// A candidate: squared chord distance and outlet id.
pub(crate) type Near = (f64, i64);

/// Order of candidates: distance, then id.
pub(crate) fn cmp_near(a: &Near, b: &Near) -> Ordering {
    a.0.total_cmp(&b.0).then(a.1.cmp(&b.1))
}

/// Beyond this many raw candidates a filtered snapshot search gives way to the branch and bound
/// (the filter rejects most outlets near the point, e.g. a caller scoped to a far territory).
const MAX_SNAPSHOT_ASK: usize = 512;

/// The outlets of an index as they were at its last (re)build, packed for k-nearest queries.
/// Outlets moved or removed since are marked stale here and answered from elsewhere.
pub(crate) struct Snapshot {
    tree: ImmutableKdTree<f64, u32, 3, 32>,
    /// Outlet id of each slot (slot = position in the build input). Built in spatial order, so
    /// the slots of one query's answers share cache lines.
    ids: Vec<i64>,
    stale: Vec<bool>,
    stale_count: usize,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("len", &self.ids.len())
            .field("stale_count", &self.stale_count)
            .finish_non_exhaustive()
    }
}

impl Snapshot {
    /// `points` with unique ids, best in spatial order; `None` when empty or too large for u32 slots.
    pub(crate) fn build(points: &[([f64; 3], i64)]) -> Option<Snapshot> {
        if points.is_empty() || u32::try_from(points.len()).is_err() {
            return None;
        }
        let xyz: Vec<[f64; 3]> = points.iter().map(|p| p.0).collect();
        let ids: Vec<i64> = points.iter().map(|p| p.1).collect();
        Some(Snapshot {
            tree: ImmutableKdTree::new_from_slice(&xyz),
            stale: vec![false; ids.len()],
            ids,
            stale_count: 0,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    pub(crate) fn stale_count(&self) -> usize {
        self.stale_count
    }

    /// Stops answering for an outlet at `xyz` (moved or removed); returns whether it was live here.
    pub(crate) fn retire(&mut self, id: i64, xyz: &[f64; 3]) -> bool {
        let here = self.tree.within_unsorted_exclusive::<SquaredEuclidean>(xyz, 0.0, true);
        let slot = here.iter().map(|n| n.item as usize).find(|&slot| self.ids[slot] == id && !self.stale[slot]);
        let Some(slot) = slot else { return false };
        self.stale[slot] = true;
        self.stale_count += 1;
        true
    }

    /// The `k` nearest live outlets that `keep` accepts, nearest first; `None` when the filter is
    /// too selective for this structure and the caller should search exhaustively instead.
    pub(crate) fn nearest(&self, q: &[f64; 3], k: usize, keep: &mut impl FnMut(i64) -> bool) -> Option<Vec<Near>> {
        let mut ask = (k + 1).min(self.ids.len());
        loop {
            let found = self.tree.nearest_n::<SquaredEuclidean>(q, NonZero::new(ask)?);
            let mut near: Vec<Near> = found
                .iter()
                .filter(|n| !self.stale[n.item as usize])
                .map(|n| (n.distance, self.ids[n.item as usize]))
                .filter(|n| keep(n.1))
                .collect();
            near.sort_by(cmp_near);
            let exhausted = found.len() < ask || ask == self.ids.len();
            // Done when everything is seen, or when k are found and the farthest point looked at lies
            // strictly beyond the k-th (so no tie at the k-th distance is left out).
            let settled = near.len() >= k && found.last().is_some_and(|last| last.distance > near[k - 1].0);
            if exhausted || settled {
                near.truncate(k);
                return Some(near);
            }
            if ask >= MAX_SNAPSHOT_ASK {
                return None;
            }
            ask = (ask * 4).min(self.ids.len());
        }
    }
}

/// A subtree waiting in the best-first search, keyed by its envelope's squared distance.
struct Open<'a> {
    d2: f64,
    node: &'a ParentNode<Node>,
}

impl PartialEq for Open<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.d2 == other.d2
    }
}

impl Eq for Open<'_> {}

impl PartialOrd for Open<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Open<'_> {
    /// Reversed: `BinaryHeap` pops the nearest subtree first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.d2.total_cmp(&self.d2)
    }
}

/// The `k` nearest entries of an R-tree that `keep` accepts, nearest first: best-first branch and
/// bound that opens a subtree only while it may hold a point nearer than the current k-th best.
pub(crate) fn branch_and_bound<P: rstar::RTreeParams>(
    tree: &RTree<Node, P>,
    q: &[f64; 3],
    k: usize,
    keep: &mut impl FnMut(i64) -> bool,
) -> Vec<Near> {
    let mut best: Vec<Near> = Vec::with_capacity(k + 1);
    if k == 0 || tree.size() == 0 {
        return best;
    }
    let mut open: BinaryHeap<Open<'_>> = BinaryHeap::with_capacity(64);
    open.push(Open { d2: 0.0, node: tree.root() });
    while let Some(Open { d2, node }) = open.pop() {
        if best.len() == k && d2 > best[k - 1].0 {
            break;
        }
        for child in node.children() {
            match child {
                RTreeNode::Leaf(leaf) => {
                    let candidate = (leaf.distance_2(q), leaf.data);
                    if best.len() == k && cmp_near(&candidate, &best[k - 1]).is_ge() {
                        continue;
                    }
                    if !keep(leaf.data) {
                        continue;
                    }
                    let at = best.partition_point(|b| cmp_near(b, &candidate).is_lt());
                    best.insert(at, candidate);
                    best.truncate(k);
                }
                RTreeNode::Parent(parent) => {
                    let d2 = parent.envelope().distance_2(q);
                    if best.len() < k || d2 <= best[k - 1].0 {
                        open.push(Open { d2, node: parent });
                    }
                }
            }
        }
    }
    best
}

/// Merges two nearest-first lists into the `k` nearest.
pub(crate) fn merge(mut a: Vec<Near>, b: Vec<Near>, k: usize) -> Vec<Near> {
    if b.is_empty() {
        return a;
    }
    a.extend(b);
    a.sort_by(cmp_near);
    a.truncate(k);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_at_the_kth_distance_go_to_the_smaller_id() {
        // Ten outlets on one spot, the query elsewhere: whichever way the tree lays them out, the
        // three nearest are the three smallest ids.
        let points: Vec<([f64; 3], i64)> = (1..=10).map(|id| ([1.0, 0.0, 0.0], id)).collect();
        let snapshot = Snapshot::build(&points).expect("non-empty");
        let got = snapshot.nearest(&[0.0, 1.0, 0.0], 3, &mut |_| true).expect("unfiltered");
        assert_eq!(got.iter().map(|n| n.1).collect::<Vec<_>>(), vec![1, 2, 3]);
    }

    #[test]
    fn retired_outlets_are_not_answered() {
        let points: Vec<([f64; 3], i64)> = vec![([1.0, 0.0, 0.0], 1), ([0.9, 0.1, 0.0], 2), ([0.0, 1.0, 0.0], 3)];
        let mut snapshot = Snapshot::build(&points).expect("non-empty");
        assert!(!snapshot.retire(1, &[0.0, 1.0, 0.0]), "not at that position");
        assert!(snapshot.retire(1, &[1.0, 0.0, 0.0]));
        assert!(!snapshot.retire(1, &[1.0, 0.0, 0.0]), "retiring twice counts once");
        assert_eq!(snapshot.stale_count(), 1);
        let got = snapshot.nearest(&[1.0, 0.0, 0.0], 1, &mut |_| true).expect("unfiltered");
        assert_eq!(got[0].1, 2);
    }
}
