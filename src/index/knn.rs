//! Searches on unit-sphere coordinates: a packed static k-d tree snapshot (flat arrays, leaves of a
//! few cache lines) holds the bulk of an org's outlets and answers k-nearest, within-distance and
//! box queries; an exact best-first branch and bound over an rstar tree answers k-nearest for the
//! outlets changed since the snapshot.
//!
//! Squared chord distance orders points exactly like great-circle distance. Ties go to the smaller
//! outlet id, so answers do not depend on how the trees happen to be laid out.

use rstar::primitives::GeomWithData;
use rstar::{ParentNode, PointDistance, RTree, RTreeNode};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// An R-tree entry: unit-sphere position and outlet id.
pub(crate) type Node = GeomWithData<[f64; 3], i64>;

/// A candidate: squared chord distance and outlet id.
pub(crate) type Near = (f64, i64);

/// Order of candidates: distance, then id.
pub(crate) fn cmp_near(a: &Near, b: &Near) -> Ordering {
    a.0.total_cmp(&b.0).then(a.1.cmp(&b.1))
}

/// Most points in a leaf of the packed tree: a leaf is a few cache lines of coordinates.
const LEAF: usize = 8;

/// The outlets of an index as they were at its last (re)build, packed for k-nearest queries: a
/// static k-d tree in implicit (Eytzinger) layout whose leaves are contiguous runs of slots, so a
/// query reads few cache lines. Outlets moved or removed since are marked stale here and answered
/// from elsewhere.
pub(crate) struct Snapshot {
    /// Split coordinate of each internal node (root 0, children of `n` at `2n+1`, `2n+2`).
    split: Vec<f64>,
    /// Split axis of each internal node.
    axis: Vec<u8>,
    /// Levels of internal nodes; every leaf sits at this depth.
    depth: u32,
    /// Unit-sphere position and outlet id ([`STALE`] once retired) of each slot, in tree order (a
    /// leaf's slots share cache lines).
    slots: Vec<([f64; 3], i64)>,
    /// Latitude and longitude of each slot, degrees, as given (box and radius queries decide on these).
    lat_lon: Vec<[f64; 2]>,
    stale_count: usize,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("len", &self.slots.len())
            .field("stale_count", &self.stale_count)
            .finish_non_exhaustive()
    }
}

/// The id of a retired slot (outlet ids are positive).
const STALE: i64 = i64::MIN;

/// What a snapshot is built from: unit-sphere position, outlet id, `[lat, lon]` in degrees.
pub(crate) type Entry = ([f64; 3], i64, [f64; 2]);

/// Squared distance, summed in the order the pruning bound uses (see [`Snapshot::descend`]).
pub(crate) fn dist2(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    let (dx, dy, dz) = (a[0] - b[0], a[1] - b[1], a[2] - b[2]);
    (dx * dx + dy * dy) + dz * dz
}

/// A child of an internal node: its node index and the slots `[first, end)` it covers.
type Side = (usize, usize, usize);

/// One k-nearest query in progress.
struct Search<'q, F> {
    q: &'q [f64; 3],
    k: usize,
    keep: F,
    best: Vec<Near>,
}

impl<F: FnMut(i64) -> bool> Search<'_, F> {
    /// Whether a subtree whose points are at least `bound` away may still hold an answer (ties at
    /// the k-th distance included: they may carry a smaller id).
    fn open(&self, bound: f64) -> bool {
        self.best.len() < self.k || bound <= self.best[self.k - 1].0
    }
}

impl Snapshot {
    /// `points` with unique ids, reordered in place into the tree; `None` when empty.
    pub(crate) fn build(mut slots: Vec<Entry>) -> Option<Snapshot> {
        if slots.is_empty() {
            return None;
        }
        let mut depth = 0;
        while slots.len().div_ceil(1 << depth) > LEAF {
            depth += 1;
        }
        let internal = (1usize << depth) - 1;
        let mut split = vec![0.0; internal];
        let mut axis = vec![0u8; internal];
        Self::partition(&mut slots, 0, 0, depth, &mut split, &mut axis);
        let lat_lon = slots.iter().map(|e| e.2).collect();
        let slots = slots.into_iter().map(|e| (e.0, e.1)).collect();
        Some(Snapshot { split, axis, depth, slots, lat_lon, stale_count: 0 })
    }

    /// Splits `slots` at its middle along its widest axis: the left half lies at or below the split
    /// coordinate, the right half at or above it.
    fn partition(slots: &mut [Entry], node: usize, level: u32, depth: u32, split: &mut [f64], axis: &mut [u8]) {
        if level == depth {
            return;
        }
        let mut lo = [f64::INFINITY; 3];
        let mut hi = [f64::NEG_INFINITY; 3];
        for (p, _, _) in slots.iter() {
            for d in 0..3 {
                lo[d] = lo[d].min(p[d]);
                hi[d] = hi[d].max(p[d]);
            }
        }
        let d = (0..3).max_by(|&a, &b| (hi[a] - lo[a]).total_cmp(&(hi[b] - lo[b]))).unwrap_or(0);
        let mid = slots.len() / 2;
        slots.select_nth_unstable_by(mid, |a, b| a.0[d].total_cmp(&b.0[d]));
        split[node] = slots[mid].0[d];
        axis[node] = d as u8;
        let (left, right) = slots.split_at_mut(mid);
        Self::partition(left, 2 * node + 1, level + 1, depth, split, axis);
        Self::partition(right, 2 * node + 2, level + 1, depth, split, axis);
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn stale_count(&self) -> usize {
        self.stale_count
    }

    /// Stops answering for an outlet at `xyz` (moved or removed); returns whether it was live here.
    pub(crate) fn retire(&mut self, id: i64, xyz: &[f64; 3]) -> bool {
        let Some(slot) = self.find(0, 0, 0, self.slots.len(), xyz, id) else { return false };
        self.slots[slot].1 = STALE;
        self.stale_count += 1;
        true
    }

    fn find(&self, node: usize, level: u32, lo: usize, hi: usize, xyz: &[f64; 3], id: i64) -> Option<usize> {
        if level == self.depth {
            return (lo..hi)
                .find(|&s| self.slots[s].1 == id && self.slots[s].0.map(f64::to_bits) == xyz.map(f64::to_bits));
        }
        let (d, at, mid) = (usize::from(self.axis[node]), self.split[node], lo + (hi - lo) / 2);
        let left = if xyz[d] <= at { self.find(2 * node + 1, level + 1, lo, mid, xyz, id) } else { None };
        left.or_else(|| if xyz[d] >= at { self.find(2 * node + 2, level + 1, mid, hi, xyz, id) } else { None })
    }

    /// The `k` nearest live outlets that `keep` accepts, nearest first.
    pub(crate) fn nearest(&self, q: &[f64; 3], k: usize, keep: &mut impl FnMut(i64) -> bool) -> Vec<Near> {
        if k == 0 {
            return Vec::new();
        }
        let mut search = Search { q, k, keep, best: Vec::with_capacity(k + 1) };
        self.descend(0, 0, 0, self.slots.len(), &mut [0.0; 3], &mut search);
        search.best
    }

    /// Calls `visit` with each live outlet (id, `[lat, lon]`) within squared chord `max_d2` of `q`.
    pub(crate) fn within(&self, q: &[f64; 3], max_d2: f64, visit: &mut impl FnMut(i64, &[f64; 2])) {
        self.within_rec(0, 0, 0, self.slots.len(), q, max_d2, &mut [0.0; 3], visit);
    }

    #[allow(clippy::too_many_arguments)]
    fn within_rec(
        &self,
        node: usize,
        level: u32,
        lo: usize,
        hi: usize,
        q: &[f64; 3],
        max_d2: f64,
        off: &mut [f64; 3],
        visit: &mut impl FnMut(i64, &[f64; 2]),
    ) {
        if level == self.depth {
            for slot in lo..hi {
                let (xyz, id) = &self.slots[slot];
                if dist2(q, xyz) <= max_d2 && *id != STALE {
                    visit(*id, &self.lat_lon[slot]);
                }
            }
            return;
        }
        let (d, diff, near, far) = self.sides(node, lo, hi, q);
        self.within_rec(near.0, level + 1, near.1, near.2, q, max_d2, off, visit);
        let old = off[d];
        off[d] = diff.abs();
        if (off[0] * off[0] + off[1] * off[1]) + off[2] * off[2] <= max_d2 {
            self.within_rec(far.0, level + 1, far.1, far.2, q, max_d2, off, visit);
        }
        off[d] = old;
    }

    /// Calls `visit` with each live outlet (id, `[lat, lon]`) inside the axis-aligned box `[lo, hi]`.
    pub(crate) fn in_box(&self, lo: &[f64; 3], hi: &[f64; 3], visit: &mut impl FnMut(i64, &[f64; 2])) {
        self.box_rec(0, 0, 0, self.slots.len(), lo, hi, visit);
    }

    #[allow(clippy::too_many_arguments)]
    fn box_rec(
        &self,
        node: usize,
        level: u32,
        first: usize,
        end: usize,
        lo: &[f64; 3],
        hi: &[f64; 3],
        visit: &mut impl FnMut(i64, &[f64; 2]),
    ) {
        if level == self.depth {
            for slot in first..end {
                let (p, id) = &self.slots[slot];
                if (0..3).all(|d| lo[d] <= p[d] && p[d] <= hi[d]) && *id != STALE {
                    visit(*id, &self.lat_lon[slot]);
                }
            }
            return;
        }
        let (d, at, mid) = (usize::from(self.axis[node]), self.split[node], first + (end - first) / 2);
        if lo[d] <= at {
            self.box_rec(2 * node + 1, level + 1, first, mid, lo, hi, visit);
        }
        if hi[d] >= at {
            self.box_rec(2 * node + 2, level + 1, mid, end, lo, hi, visit);
        }
    }

    /// Of internal node `node` covering slots `[lo, hi)`: its split axis, `q`'s signed offset from
    /// the split, and its children (node, first slot, end slot), the one on `q`'s side first.
    fn sides(&self, node: usize, lo: usize, hi: usize, q: &[f64; 3]) -> (usize, f64, Side, Side) {
        let (d, mid) = (usize::from(self.axis[node]), lo + (hi - lo) / 2);
        let diff = q[d] - self.split[node];
        let (left, right) = ((2 * node + 1, lo, mid), (2 * node + 2, mid, hi));
        if diff < 0.0 { (d, diff, left, right) } else { (d, diff, right, left) }
    }

    /// Depth-first, nearer child first; `off` holds the per-axis distance from the query to the
    /// current cell, so `(off0² + off1²) + off2²` bounds the distance of every point in it from
    /// below, rounding included (same operations, same order as [`dist2`], all monotonic).
    fn descend<F: FnMut(i64) -> bool>(
        &self,
        node: usize,
        level: u32,
        lo: usize,
        hi: usize,
        off: &mut [f64; 3],
        s: &mut Search<'_, F>,
    ) {
        if level == self.depth {
            self.scan(lo, hi, s);
            return;
        }
        let (d, diff, near, far) = self.sides(node, lo, hi, s.q);
        self.descend(near.0, level + 1, near.1, near.2, off, s);
        let old = off[d];
        off[d] = diff.abs();
        let bound = (off[0] * off[0] + off[1] * off[1]) + off[2] * off[2];
        if s.open(bound) {
            self.descend(far.0, level + 1, far.1, far.2, off, s);
        }
        off[d] = old;
    }

    fn scan<F: FnMut(i64) -> bool>(&self, lo: usize, hi: usize, s: &mut Search<'_, F>) {
        for slot in lo..hi {
            let (xyz, id) = &self.slots[slot];
            let d2 = dist2(s.q, xyz);
            let full = s.best.len() == s.k;
            if full && d2 > s.best[s.k - 1].0 {
                continue;
            }
            if *id == STALE {
                continue;
            }
            let candidate = (d2, *id);
            if full && cmp_near(&candidate, &s.best[s.k - 1]).is_ge() {
                continue;
            }
            if !(s.keep)(candidate.1) {
                continue;
            }
            let at = s.best.partition_point(|b| cmp_near(b, &candidate).is_lt());
            s.best.insert(at, candidate);
            s.best.truncate(s.k);
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
        let points: Vec<Entry> = (1..=10).map(|id| ([1.0, 0.0, 0.0], id, [0.0, 0.0])).collect();
        let snapshot = Snapshot::build(points).expect("non-empty");
        let got = snapshot.nearest(&[0.0, 1.0, 0.0], 3, &mut |_| true);
        assert_eq!(got.iter().map(|n| n.1).collect::<Vec<_>>(), vec![1, 2, 3]);
    }

    #[test]
    fn retired_outlets_are_not_answered() {
        let points: Vec<Entry> =
            vec![([1.0, 0.0, 0.0], 1, [0.0, 0.0]), ([0.9, 0.1, 0.0], 2, [0.0, 6.3]), ([0.0, 1.0, 0.0], 3, [0.0, 90.0])];
        let mut snapshot = Snapshot::build(points).expect("non-empty");
        assert!(!snapshot.retire(1, &[0.0, 1.0, 0.0]), "not at that position");
        assert!(snapshot.retire(1, &[1.0, 0.0, 0.0]));
        assert!(!snapshot.retire(1, &[1.0, 0.0, 0.0]), "retiring twice counts once");
        assert_eq!(snapshot.stale_count(), 1);
        let got = snapshot.nearest(&[1.0, 0.0, 0.0], 1, &mut |_| true);
        assert_eq!(got[0].1, 2);
    }
}
