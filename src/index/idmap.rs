//! Hash maps keyed by outlet id that keep neighbouring ids in neighbouring slots.
//!
//! A pass over a million outlets looks each one up in several maps (index, visit ledger). With a
//! scrambling hash every lookup is a cache miss. Here the id's low 8 bits are kept as the low bits
//! of the hash and only the rest is scrambled: each block of 256 consecutive ids lands in 256
//! consecutive slots, so the outlet index iterates block by block and the ledger's slots for those
//! ids are read in the same order, streamed instead of probed. The blocks themselves are spread,
//! so runs of ids far apart (the id sequence is shared by all orgs, and one org's imports come in
//! separate runs) do not pile onto the same slots. The 7 top bits, which hashbrown compares before
//! the keys, are mixed from the whole id.

use std::hash::{BuildHasherDefault, Hasher};

/// A map keyed by outlet id (see the module documentation).
pub type IdMap<V> = std::collections::HashMap<i64, V, BuildHasherDefault<IdHasher>>;

/// The hasher of [`IdMap`]: the id itself, its top 7 bits mixed.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        const TOP: u64 = 0x7F << 57;
        let block = (self.0 >> 8).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let block = block ^ (block >> 29);
        let slot = (self.0 & 0xFF) | (block << 8);
        (slot & !TOP) | (self.0.wrapping_mul(0xD6E8_FEB8_6659_FD93) & TOP)
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used for i64 keys; a fallback that still spreads.
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_i64(&mut self, id: i64) {
        self.0 = id as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbouring_ids_hash_to_neighbouring_slots() {
        let hash = |id: i64| {
            let mut h = IdHasher::default();
            h.write_i64(id);
            h.finish()
        };
        let mask = (1 << 20) - 1;
        for id in [1_i64, 1000, 123_456] {
            // Within a block of 256.
            assert_eq!(hash(id + 1) & mask, (hash(id) & mask) + 1);
        }
        // Two runs of ids 2^18 apart do not share their slots (with the id as the slot they would
        // all collide in a table of 2^18 slots): about as many distinct slots as a random hash.
        let mask = (1 << 18) - 1;
        let slots: std::collections::HashSet<u64> =
            (0..100_000).chain((1 << 18)..(1 << 18) + 100_000).map(|id| hash(id) & mask).collect();
        assert!(slots.len() > 120_000, "{} distinct slots of 200,000 ids", slots.len());
        // The tag bits differ between neighbours.
        assert_ne!(hash(1) >> 57, hash(2) >> 57);
        let m: IdMap<u8> = (0..1000).map(|id| (id, 1)).collect();
        assert_eq!(m.get(&999), Some(&1));
        assert_eq!(m.get(&1000), None);
    }
}
