//! The load balancer: routing policies over the servers it believes healthy, and the health-check
//! bookkeeping that forms that belief. It never looks at a server's real state.

use crate::engine::SimTime;
use crate::engine::rng::{StreamRng, mix64};
use crate::scenario::{Balancer as BalancerConfig, MAX_EJECTION_TIME, Outlier, Policy, Zones};
use rand::RngExt;

/// Virtual nodes per server on the consistent-hash ring (Envoy's ring hash uses a minimum ring of
/// 1024 entries; 128 per server keeps the load spread within a few percent).
const RING_POINTS_PER_SERVER: u64 = 128;

pub struct Balancer {
    policy: Policy,
    fallback: Policy,
    unhealthy_threshold: u32,
    healthy_threshold: u32,
    /// What the balancer believes of each server, its flags side by side: a request's route
    /// reads them all, from one cache line instead of one line per flag (at 800 servers each
    /// was a first-level cache miss).
    backends: Vec<Backend>,
    consecutive_failures: Vec<u32>,
    consecutive_passes: Vec<u32>,
    /// Servers to route to: the healthy ones, or all of them when none is healthy (fail open, as
    /// ALB and Envoy's panic threshold do).
    candidates: Vec<u32>,
    /// A change since `candidates` was built: rebuilt at the next pick, not at each change, so
    /// that a fleet scaled to thousands at one instant costs one rebuild, not one per server.
    candidates_stale: bool,
    /// Requests dispatched to each server and not yet answered.
    outstanding: Vec<u32>,
    rotation: usize,
    ring: Vec<(u64, u32)>,
    rng: StreamRng,
    outlier: Option<Outlier>,
    /// Times each server has been ejected (the next ejection lasts that much longer).
    ejections: Vec<u32>,
    /// Failed answers in a row from each server.
    failed_answers: Vec<u32>,
    /// With zone affinity: the zones, and the candidates in each (with its own rotation).
    zones: Option<Zones>,
    zone_candidates: Vec<Vec<u32>>,
    zone_rotation: Vec<usize>,
}

/// The balancer's view of one server.
#[derive(Clone, Copy, Debug)]
struct Backend {
    /// As its health checks judge it.
    healthy: bool,
    /// Takes new sessions (false while starting, draining or gone).
    registered: bool,
    /// Receives the traffic of sessions homed on it (false once terminated).
    attached: bool,
    /// Out of the rotation by outlier ejection (passive health checking).
    ejected: bool,
}

impl Backend {
    /// A server of the initial fleet: healthy, registered, attached, not ejected.
    const IN_SERVICE: Backend = Backend {
        healthy: true,
        registered: true,
        attached: true,
        ejected: false,
    };
}

impl Balancer {
    pub fn new(config: &BalancerConfig, servers: u32, zones: &Zones, rng: StreamRng) -> Balancer {
        let affinity = config.zone_affinity && zones.count > 1;
        let n = servers as usize;
        let mut balancer = Balancer {
            policy: config.policy,
            fallback: config.fallback,
            unhealthy_threshold: config.health_check.unhealthy_threshold,
            healthy_threshold: config.health_check.healthy_threshold,
            backends: vec![Backend::IN_SERVICE; n],
            consecutive_failures: vec![0; n],
            consecutive_passes: vec![0; n],
            candidates: Vec::with_capacity(n),
            candidates_stale: false,
            outstanding: vec![0; n],
            rotation: 0,
            ring: Vec::new(),
            rng,
            outlier: config.outlier.clone(),
            ejections: vec![0; n],
            failed_answers: vec![0; n],
            zones: affinity.then(|| zones.clone()),
            zone_candidates: vec![Vec::new(); if affinity { zones.count as usize } else { 0 }],
            zone_rotation: vec![0; if affinity { zones.count as usize } else { 0 }],
        };
        balancer.rebuild_candidates();
        balancer
    }

    /// Servers the balancer believes healthy, among those it routes to.
    pub fn healthy_count(&self) -> usize {
        self.backends
            .iter()
            .filter(|backend| backend.healthy && backend.attached)
            .count()
    }

    pub fn is_healthy(&self, server: u32) -> bool {
        self.backends[server as usize].healthy
    }

    /// Whether new sessions may be placed on `server`.
    pub fn in_service(&self, server: u32) -> bool {
        self.backends[server as usize].registered
    }

    /// A new server, not yet registered (it is starting).
    pub fn add_server(&mut self) {
        self.backends.push(Backend {
            registered: false,
            attached: false,
            ..Backend::IN_SERVICE
        });
        self.consecutive_failures.push(0);
        self.consecutive_passes.push(0);
        self.outstanding.push(0);
        self.ejections.push(0);
        self.failed_answers.push(0);
    }

    /// The server joins the rotation, healthy.
    pub fn register(&mut self, server: u32) {
        let backend = &mut self.backends[server as usize];
        backend.registered = true;
        backend.attached = true;
        backend.healthy = true;
        self.candidates_stale = true;
    }

    /// Deregistration (draining): no new sessions, but sessions homed there still reach it.
    pub fn deregister(&mut self, server: u32) {
        self.backends[server as usize].registered = false;
        self.candidates_stale = true;
    }

    /// The server is gone: nothing is routed to it any more.
    pub fn detach(&mut self, server: u32) {
        let backend = &mut self.backends[server as usize];
        backend.registered = false;
        backend.attached = false;
        self.candidates_stale = true;
    }

    /// Chooses a server for a request. `affinity_key` identifies the session (consistent hashing);
    /// `home` is its sticky server, if any. Returns the server and whether it is a new home.
    /// Always inlined: on every request's path, and called from two copies of the balancer's
    /// step (with zones and without).
    #[inline(always)]
    pub fn route(&mut self, affinity_key: u64, home: Option<u32>) -> u32 {
        match self.policy {
            Policy::Sticky => match home {
                Some(server) if self.reachable(server) => server,
                _ => self.pick(self.fallback, affinity_key),
            },
            policy => self.pick(policy, affinity_key),
        }
    }

    /// `route` with zone affinity: a request without a reachable sticky home goes to a server of
    /// its client's `zone`, picked by the policy among the candidates there (consistent hashing
    /// walks the ring to the first one there); to any zone only when its zone has none.
    pub fn route_near(&mut self, affinity_key: u64, home: Option<u32>, zone: u32) -> u32 {
        let policy = match (self.policy, home) {
            (Policy::Sticky, Some(server)) if self.reachable(server) => return server,
            (Policy::Sticky, _) => self.fallback,
            (policy, _) => policy,
        };
        if self.candidates_stale {
            self.rebuild_candidates();
        }
        let z = zone as usize;
        if self.zone_candidates.get(z).is_none_or(Vec::is_empty) {
            return self.pick(policy, affinity_key);
        }
        if policy == Policy::ConsistentHash {
            let zones = self.zones.as_ref().expect("zone affinity has zones");
            let start = self
                .ring
                .partition_point(|(hash, _)| *hash < mix64(affinity_key));
            let on_ring = (0..self.ring.len())
                .map(|step| self.ring[(start + step) % self.ring.len()].1)
                .find(|server| zones.of(*server) == zone);
            return on_ring.unwrap_or_else(|| self.zone_candidates[z][0]);
        }
        choose(
            policy,
            &self.zone_candidates[z],
            &mut self.zone_rotation[z],
            &mut self.rng,
            &self.outstanding,
        )
    }

    /// Whether a sticky cookie naming `server` is honoured: it is healthy, attached and not
    /// ejected.
    #[inline]
    fn reachable(&self, server: u32) -> bool {
        let backend = self.backends[server as usize];
        backend.healthy && backend.attached && !backend.ejected
    }

    /// A server's answer reaches the balancer: a success ends its run of failures, a failure
    /// extends it. Returns how long the server is ejected for when this failure ejects it.
    pub fn observe_answer(&mut self, server: u32, succeeded: bool) -> Option<SimTime> {
        let outlier = self.outlier.as_ref()?;
        let s = server as usize;
        if succeeded {
            self.failed_answers[s] = 0;
            return None;
        }
        self.failed_answers[s] += 1;
        if self.backends[s].ejected || self.failed_answers[s] < outlier.consecutive_failures {
            return None;
        }
        let fleet = self.backends.iter().filter(|b| b.attached).count();
        let out = self.backends.iter().filter(|b| b.ejected).count();
        let allowed = if outlier.max_ejected_percent > 0.0 {
            ((outlier.max_ejected_percent / 100.0 * fleet as f64) as usize).max(1)
        } else {
            0
        };
        if out >= allowed {
            return None;
        }
        self.backends[s].ejected = true;
        self.ejections[s] += 1;
        self.failed_answers[s] = 0;
        self.candidates_stale = true;
        let time = SimTime::from_nanos(
            outlier
                .ejection_time
                .nanos()
                .saturating_mul(u64::from(self.ejections[s])),
        );
        Some(time.min(MAX_EJECTION_TIME))
    }

    /// The server's ejection is over: it is back in the rotation.
    pub fn unejected(&mut self, server: u32) {
        self.backends[server as usize].ejected = false;
        self.candidates_stale = true;
    }

    /// Whether the policy routes anything by affinity (decides whether `routes_by_affinity` is
    /// worth asking on the request path).
    #[inline]
    pub fn has_affinity(&self) -> bool {
        matches!(self.policy, Policy::Sticky | Policy::ConsistentHash)
    }

    /// Whether a request with this home goes where it goes by affinity (its sticky cookie names
    /// a server the balancer routes to, or consistent hashing places it), rather than by a pick.
    pub fn routes_by_affinity(&self, home: Option<u32>) -> bool {
        match self.policy {
            Policy::Sticky => home.is_some_and(|server| self.reachable(server)),
            Policy::ConsistentHash => true,
            _ => false,
        }
    }

    /// Another server for a failed try, chosen as the policy (a sticky balancer's fallback)
    /// chooses, but not `failed` unless it is the only one. Each pick counts as one: a round
    /// robin that lands on the failed server again moves on to the next.
    #[cold]
    #[inline(never)]
    pub fn redispatch(&mut self, affinity_key: u64, failed: u32) -> u32 {
        if self.candidates_stale {
            self.rebuild_candidates();
        }
        let policy = match self.policy {
            Policy::Sticky => self.fallback,
            policy => policy,
        };
        if policy == Policy::ConsistentHash {
            return self.next_on_ring(affinity_key, failed);
        }
        for _ in 0..self.candidates.len() {
            let server = self.pick(policy, affinity_key);
            if server != failed {
                return server;
            }
        }
        // Random draws that kept landing on it: the next candidate after it, if there is one.
        let position = self
            .candidates
            .iter()
            .position(|s| *s == failed)
            .unwrap_or(0);
        let n = self.candidates.len();
        (1..n)
            .map(|step| self.candidates[(position + step) % n])
            .find(|server| *server != failed)
            .unwrap_or(failed)
    }

    /// The first server after `affinity_key`'s point on the ring that is not `failed`.
    fn next_on_ring(&self, affinity_key: u64, failed: u32) -> u32 {
        let start = self
            .ring
            .partition_point(|(hash, _)| *hash < mix64(affinity_key));
        (0..self.ring.len())
            .map(|step| self.ring[(start + step) % self.ring.len()].1)
            .find(|server| *server != failed)
            .unwrap_or(failed)
    }

    /// Always inlined into `route`, as it was before `redispatch` called it too (measured: as a
    /// call, +2% instructions on the M/M/c benchmark).
    #[inline(always)]
    fn pick(&mut self, policy: Policy, affinity_key: u64) -> u32 {
        if self.candidates_stale {
            self.rebuild_candidates();
        }
        if policy == Policy::ConsistentHash {
            let point = mix64(affinity_key);
            let index = self.ring.partition_point(|(hash, _)| *hash < point);
            return self.ring[index % self.ring.len()].1;
        }
        choose(
            policy,
            &self.candidates,
            &mut self.rotation,
            &mut self.rng,
            &self.outstanding,
        )
    }

    pub fn dispatched(&mut self, server: u32) {
        self.outstanding[server as usize] += 1;
    }

    pub fn answered(&mut self, server: u32) {
        let count = &mut self.outstanding[server as usize];
        *count = count.saturating_sub(1);
    }

    /// Records one health-check result; returns true when the server's health flipped.
    pub fn observe_health_check(&mut self, server: u32, passed: bool) -> bool {
        let s = server as usize;
        if passed {
            self.consecutive_failures[s] = 0;
            self.consecutive_passes[s] += 1;
        } else {
            self.consecutive_passes[s] = 0;
            self.consecutive_failures[s] += 1;
        }
        let healthy = &mut self.backends[s].healthy;
        let flip = if *healthy {
            self.consecutive_failures[s] >= self.unhealthy_threshold
        } else {
            self.consecutive_passes[s] >= self.healthy_threshold
        };
        if flip {
            *healthy = !*healthy;
            self.candidates_stale = true;
        }
        flip
    }

    fn rebuild_candidates(&mut self) {
        self.candidates_stale = false;
        self.candidates.clear();
        let all = 0..self.backends.len() as u32;
        let backends = &self.backends;
        let each = |s: &u32| backends[*s as usize];
        self.candidates.extend(all.clone().filter(|s| {
            let backend = each(s);
            backend.healthy && backend.registered && !backend.ejected
        }));
        // Fail open: every registered server, else every one still attached, else any.
        if self.candidates.is_empty() {
            self.candidates
                .extend(all.clone().filter(|s| each(s).registered));
        }
        if self.candidates.is_empty() {
            self.candidates
                .extend(all.clone().filter(|s| each(s).attached));
        }
        if self.candidates.is_empty() {
            self.candidates.extend(all);
        }
        if let Some(zones) = &self.zones {
            for list in &mut self.zone_candidates {
                list.clear();
            }
            for &server in &self.candidates {
                self.zone_candidates[zones.of(server) as usize].push(server);
            }
        }
        if self.policy == Policy::ConsistentHash || self.fallback == Policy::ConsistentHash {
            self.ring.clear();
            for &server in &self.candidates {
                for point in 0..RING_POINTS_PER_SERVER {
                    let hash = mix64((u64::from(server) << 32) | point);
                    self.ring.push((hash, server));
                }
            }
            self.ring.sort_unstable();
        }
    }
}

/// A pick by `policy` (not consistent hashing, which has its ring) among `candidates`, never
/// empty. Always inlined: `pick` is on every request's path.
#[inline(always)]
fn choose(
    policy: Policy,
    candidates: &[u32],
    rotation: &mut usize,
    rng: &mut StreamRng,
    outstanding: &[u32],
) -> u32 {
    let n = candidates.len();
    match policy {
        Policy::RoundRobin => {
            let server = candidates[*rotation % n];
            *rotation = rotation.wrapping_add(1);
            server
        }
        Policy::Random => candidates[rng.random_range(0..n)],
        Policy::LeastConnections => {
            // Scan from a rotating start so ties spread evenly instead of piling on server 0.
            let start = *rotation % n;
            *rotation = rotation.wrapping_add(1);
            (0..n)
                .map(|i| candidates[(start + i) % n])
                .min_by_key(|server| outstanding[*server as usize])
                .expect("candidates is never empty")
        }
        Policy::PowerOfTwo => {
            if n == 1 {
                return candidates[0];
            }
            let first = rng.random_range(0..n);
            let mut second = rng.random_range(0..n - 1);
            if second >= first {
                second += 1;
            }
            let (a, b) = (candidates[first], candidates[second]);
            if outstanding[b as usize] < outstanding[a as usize] {
                b
            } else {
                a
            }
        }
        Policy::ConsistentHash | Policy::Sticky => {
            unreachable!("consistent hashing walks its ring; validation forbids a sticky fallback")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::stream;
    use crate::scenario::{BalancerRetry, HealthCheck, RetryOn};

    fn balancer(policy: Policy, servers: u32) -> Balancer {
        let config = BalancerConfig {
            policy,
            fallback: Policy::LeastConnections,
            health_check: HealthCheck {
                interval: SimTime::from_secs(10),
                unhealthy_threshold: 2,
                healthy_threshold: 1,
                timeout: SimTime::from_secs(1),
            },
            retry: BalancerRetry {
                retries: 0,
                redispatch: false,
                on: RetryOn::default(),
                pause: SimTime::ZERO,
                server_timeout: None,
            },
            outlier: Some(Outlier {
                consecutive_failures: 3,
                ejection_time: SimTime::from_secs(30),
                max_ejected_percent: 50.0,
            }),
            zone_affinity: false,
        };
        Balancer::new(&config, servers, &Zones::one(), stream(1, 0, "balancer"))
    }

    #[test]
    fn a_redispatch_avoids_the_failed_server_and_takes_the_next_turn() {
        let mut b = balancer(Policy::RoundRobin, 4);
        assert_eq!(b.route(0, None), 0);
        // Server 1's turn is next; the retry of a try that failed on 1 takes 1's turn and 2's.
        assert_eq!(b.redispatch(0, 1), 2);
        assert_eq!(b.route(0, None), 3);
        for policy in [
            Policy::Random,
            Policy::PowerOfTwo,
            Policy::LeastConnections,
            Policy::ConsistentHash,
        ] {
            let mut b = balancer(policy, 3);
            for key in 0..200 {
                let failed = b.route(key, None);
                assert_ne!(b.redispatch(key, failed), failed, "{policy:?}");
            }
        }
        let mut alone = balancer(Policy::RoundRobin, 1);
        assert_eq!(
            alone.redispatch(0, 0),
            0,
            "with one server there is nowhere else"
        );
    }

    #[test]
    fn outliers_are_ejected_after_consecutive_failures_within_the_cap() {
        let mut b = balancer(Policy::RoundRobin, 4);
        assert_eq!(b.observe_answer(1, false), None);
        assert_eq!(b.observe_answer(1, true), None, "a success ends the run");
        assert_eq!(b.observe_answer(1, false), None);
        assert_eq!(b.observe_answer(1, false), None);
        assert_eq!(b.observe_answer(1, false), Some(SimTime::from_secs(30)));
        assert!(
            (0..8).map(|_| b.route(0, None)).all(|s| s != 1),
            "out of the rotation"
        );
        assert!(
            !b.routes_by_affinity(Some(1)),
            "its sticky cookie is not honoured"
        );
        // 50% of 4: a second server may go, a third may not.
        for _ in 0..3 {
            b.observe_answer(2, false);
        }
        assert!((0..3).all(|_| b.observe_answer(3, false).is_none()));
        b.unejected(1);
        assert!((0..8).any(|_| b.route(0, None) == 1));
        for _ in 0..2 {
            b.observe_answer(1, false);
        }
        assert_eq!(
            b.observe_answer(1, false),
            Some(SimTime::from_secs(60)),
            "the second ejection lasts twice as long"
        );
    }

    #[test]
    fn round_robin_skips_unhealthy_servers() {
        let mut b = balancer(Policy::RoundRobin, 3);
        assert!(!b.observe_health_check(1, false));
        assert!(b.observe_health_check(1, false));
        let picks: Vec<u32> = (0..4).map(|_| b.route(0, None)).collect();
        assert_eq!(picks, vec![0, 2, 0, 2]);
        assert!(b.observe_health_check(1, true));
        assert_eq!(b.healthy_count(), 3);
    }

    #[test]
    fn all_unhealthy_fails_open() {
        let mut b = balancer(Policy::Random, 2);
        for server in 0..2 {
            b.observe_health_check(server, false);
            b.observe_health_check(server, false);
        }
        assert_eq!(b.healthy_count(), 0);
        assert!(b.route(0, None) < 2);
    }

    #[test]
    fn least_connections_prefers_the_idle_server() {
        let mut b = balancer(Policy::LeastConnections, 3);
        b.dispatched(0);
        b.dispatched(2);
        assert_eq!(b.route(0, None), 1);
    }

    #[test]
    fn sticky_keeps_a_healthy_home_and_replaces_a_dead_one() {
        let mut b = balancer(Policy::Sticky, 3);
        assert_eq!(b.route(0, Some(2)), 2);
        b.observe_health_check(2, false);
        b.observe_health_check(2, false);
        assert_ne!(b.route(0, Some(2)), 2);
    }

    #[test]
    fn consistent_hash_moves_only_the_keys_of_a_removed_server() {
        let mut b = balancer(Policy::ConsistentHash, 8);
        let before: Vec<u32> = (0..2000).map(|k| b.route(k, None)).collect();
        b.observe_health_check(3, false);
        b.observe_health_check(3, false);
        let after: Vec<u32> = (0..2000).map(|k| b.route(k, None)).collect();
        for (old, new) in before.iter().zip(&after) {
            if *old != 3 {
                assert_eq!(old, new, "a key not on the removed server moved");
            } else {
                assert_ne!(*new, 3);
            }
        }
        let moved = before.iter().filter(|s| **s == 3).count();
        assert!(
            (150..350).contains(&moved),
            "about 1/8 of keys live on one server, got {moved}"
        );
    }
}
