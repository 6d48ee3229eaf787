//! Secrets handed to users and devices. Only SHA-256 hashes of them are ever stored.

use rand::Rng;
use sha2::{Digest, Sha256};

/// Prefix of API bearer tokens, so leaked tokens are recognisable by secret scanners.
pub const TOKEN_PREFIX: &str = "fvt_";

/// A new random bearer token: prefix + 64 hex characters (256 bits).
pub fn new_token(rng: &mut impl Rng) -> String {
    format!("{TOKEN_PREFIX}{}", random_hex(rng, 32))
}

/// A new random device secret (the id the OsmAnd/Traccar app sends, or an OwnTracks password).
pub fn new_device_secret(rng: &mut impl Rng) -> String {
    random_hex(rng, 16)
}

fn random_hex(rng: &mut impl Rng, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rng.fill(buf.as_mut_slice());
    hex::encode(buf)
}

/// SHA-256 of a secret: what the database stores and looks up.
pub fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Whether `secret` hashes to `hash` (comparison in constant time).
pub fn verify_secret(secret: &str, hash: &[u8]) -> bool {
    let computed = hash_secret(secret);
    computed.len() == hash.len() && computed.iter().zip(hash).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn tokens_are_prefixed_distinct_and_hash_to_32_bytes() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let a = new_token(&mut rng);
        let b = new_token(&mut rng);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 64);
        assert_ne!(a, b);
        assert_eq!(hash_secret(&a).len(), 32);
        assert_ne!(hash_secret(&a), hash_secret(&b));
    }
}
