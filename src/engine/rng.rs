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

/// FNV-1a: a stable hash for stream names (std's hasher is not guaranteed stable across releases).
fn hash_name(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// The seed of stream `name` in replication `replication` of a scenario seeded with `seed`.
pub fn stream_seed(seed: u64, replication: u32, name: &str) -> u64 {
    mix64(mix64(mix64(seed) ^ u64::from(replication)) ^ hash_name(name))
}

pub fn stream(seed: u64, replication: u32, name: &str) -> StreamRng {
    StreamRng::seed_from_u64(stream_seed(seed, replication, name))
}

/// A generator for the draw identified by `(stream, a, b)`, e.g. `(service_demand, session, request)`.
#[inline]
pub fn keyed(stream_seed: u64, a: u64, b: u64) -> KeyedRng {
    KeyedRng::seed_from_u64(mix64(mix64(stream_seed ^ a) ^ b))
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
}
