//! Seeded random-number streams.
//!
//! Every logical stream gets its own generator, seeded from `hash(scenario seed, replication, stream
//! name)`, so adding a stream never shifts another. Two kinds exist:
//!
//! * sequential streams ([`stream`]) for draws whose order is fixed by the stream itself (session
//!   arrivals, a balancer's random choices);
//! * keyed draws ([`keyed`]) for per-entity values (request `i` of session `k`): the generator is
//!   derived from the key, so the value does not depend on when, or in which topology, it is drawn.
//!   That is what gives every topology the identical client workload (common random numbers).

use rand::SeedableRng;
use rand_xoshiro::{SplitMix64, Xoshiro256PlusPlus};

/// Generator for sequential streams.
pub type StreamRng = Xoshiro256PlusPlus;
/// Short-lived generator for keyed draws.
pub type KeyedRng = SplitMix64;

/// The SplitMix64 finaliser: a fast bijective mixer with good avalanche.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a: a stable hash of text, the same on every platform and release (std's hasher is not
/// guaranteed stable across releases). Names streams, and fingerprints scenarios.
pub fn stable_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// The seed of stream `name` in replication `replication` of a scenario seeded with `seed`.
pub fn stream_seed(seed: u64, replication: u32, name: &str) -> u64 {
    mix64(mix64(mix64(seed) ^ u64::from(replication)) ^ stable_hash(name))
}

pub fn stream(seed: u64, replication: u32, name: &str) -> StreamRng {
    StreamRng::seed_from_u64(stream_seed(seed, replication, name))
}

/// A generator for the draw identified by `(stream, a, b)`, e.g. `(service_demand, session, request)`.
///
/// One mixing round over `(stream, a)`, then `b` (a small index) flips low bits of the state:
/// SplitMix64 mixes its state again for every output, and its states advance by an odd constant,
/// so keys that differ only in `b` give unrelated outputs without a second round. This runs for
/// most draws of a run, and each round is a chain of multiplies the CPU has to wait for.
#[inline]
pub fn keyed(stream_seed: u64, a: u64, b: u64) -> KeyedRng {
    KeyedRng::seed_from_u64(mix64(stream_seed ^ a) ^ b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_are_independent_of_each_other_and_reproducible() {
        let a1 = stream(7, 0, "arrivals").next_u64();
        let a2 = stream(7, 0, "arrivals").next_u64();
        let b = stream(7, 0, "balancer").next_u64();
        let r1 = stream(7, 1, "arrivals").next_u64();
        assert_eq!(a1, a2);
        assert_ne!(a1, b);
        assert_ne!(a1, r1);
    }

    #[test]
    fn keyed_draws_depend_only_on_the_key() {
        let s = stream_seed(1, 0, "demand");
        assert_eq!(keyed(s, 3, 4).next_u64(), keyed(s, 3, 4).next_u64());
        assert_ne!(keyed(s, 3, 4).next_u64(), keyed(s, 4, 3).next_u64());
    }

    /// Keys that differ only in `b` (a request's index) or in `a` (the session) must give
    /// uniform, uncorrelated values: checked with a chi-square over 16 bins and the correlation
    /// of neighbouring keys, over 80,000 draws.
    #[test]
    fn neighbouring_keys_give_uniform_uncorrelated_draws() {
        let s = stream_seed(1, 0, "workload.service_time");
        let uniform =
            |a: u64, b: u64| (keyed(s, a, b).next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let (sessions, requests) = (10_000u64, 8u64);
        let mut bins = [0u32; 16];
        let (mut sum_xy_b, mut sum_xy_a, mut pairs_b, mut pairs_a) = (0.0, 0.0, 0.0, 0.0);
        for a in 0..sessions {
            for b in 0..requests {
                let x = uniform(a, b);
                bins[(x * 16.0) as usize] += 1;
                if b + 1 < requests {
                    sum_xy_b += (x - 0.5) * (uniform(a, b + 1) - 0.5);
                    pairs_b += 1.0;
                }
                if a + 1 < sessions {
                    sum_xy_a += (x - 0.5) * (uniform(a + 1, b) - 0.5);
                    pairs_a += 1.0;
                }
            }
        }
        let expected = (sessions * requests) as f64 / 16.0;
        let chi_square: f64 = bins
            .iter()
            .map(|&n| (f64::from(n) - expected).powi(2) / expected)
            .sum();
        // 15 degrees of freedom: P(chi-square > 37.7) = 0.001.
        assert!(
            chi_square < 37.7,
            "chi-square {chi_square:.1} over {bins:?}"
        );
        // Correlation of two uniforms: variance 1/12 each; its standard error is 1/sqrt(pairs).
        for (sum, pairs, what) in [(sum_xy_b, pairs_b, "b"), (sum_xy_a, pairs_a, "a")] {
            let correlation = sum / pairs * 12.0;
            assert!(
                correlation.abs() < 4.0 / pairs.sqrt(),
                "correlation {correlation:.4} between keys one apart in {what}"
            );
        }
    }
}
