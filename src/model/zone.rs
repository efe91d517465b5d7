//! Availability zones (`servers.zones`): the zone of a server, of a client and of a store
//! shard's primary; the latency and bytes of each hop that crosses zones; where replicas live
//! (`ReplicaMap`, which `replica_placement` shapes); and `zone_outage`, which takes a zone's
//! servers and store primaries down at one instant.

use super::server::Condition;
use super::{Handle, World};
use crate::engine::SimTime;
use crate::engine::rng::mix64;
use crate::metrics::LossCause;
use crate::scenario::{ReplicaPlacement, State, Zones};

/// Which servers hold each server's replicas (its peers: the first `copies` servers after it in
/// index order, skipping retired ones, that the placement accepts), and whose replicas each
/// server holds (the inverse). Kept as lists rebuilt when the fleet changes, not walked at each
/// use: with zones the relation is not symmetric, so walking backwards does not invert it.
#[derive(Default)]
pub struct ReplicaMap {
    copies: usize,
    /// Server s's peers are `peers[s * copies..][..peer_count[s]]`.
    peers: Vec<u32>,
    peer_count: Vec<u8>,
    /// The servers whose replicas server s holds: `sources[source_start[s]..source_start[s + 1]]`.
    source_start: Vec<u32>,
    sources: Vec<u32>,
    /// A server was launched or retired since the lists were built.
    pub stale: bool,
}

impl ReplicaMap {
    /// No lists yet: built at the first refresh.
    pub fn unbuilt() -> ReplicaMap {
        ReplicaMap {
            stale: true,
            ..ReplicaMap::default()
        }
    }

    /// The servers holding `server`'s replicas, nearest first.
    pub fn peers(&self, server: u32) -> &[u32] {
        let s = server as usize;
        match self.peer_count.get(s) {
            Some(count) => &self.peers[s * self.copies..][..usize::from(*count)],
            None => &[],
        }
    }

    /// The servers whose replicas `server` holds.
    pub fn sources(&self, server: u32) -> &[u32] {
        let s = server as usize;
        if s + 1 >= self.source_start.len() {
            return &[];
        }
        &self.sources[self.source_start[s] as usize..self.source_start[s + 1] as usize]
    }

    /// Builds the lists for `zones` of servers (retired ones take no replicas).
    pub fn build(
        copies: u32,
        placement: ReplicaPlacement,
        zones: &[u32],
        retired: &[bool],
    ) -> ReplicaMap {
        let n = zones.len();
        let copies = copies as usize;
        let mut map = ReplicaMap {
            copies,
            peers: vec![0; n * copies],
            peer_count: vec![0; n],
            ..ReplicaMap::default()
        };
        let runs = same_zone_runs(zones);
        // A retired server has no sessions to replicate (nor holds any replica).
        for home in (0..n).filter(|home| !retired[*home]) {
            let found = walk_to_peers(
                home,
                copies,
                placement,
                zones,
                retired,
                &runs,
                |slot, peer| {
                    map.peers[home * copies + slot] = peer as u32;
                },
            );
            map.peer_count[home] = found as u8;
        }
        // The inverse, as compressed rows: count, prefix-sum, fill.
        let mut held = vec![0u32; n + 1];
        for home in 0..n {
            for &peer in map.peers(home as u32) {
                held[peer as usize + 1] += 1;
            }
        }
        for s in 0..n {
            held[s + 1] += held[s];
        }
        let mut next = held.clone();
        map.sources = vec![0; held[n] as usize];
        for home in 0..n {
            for slot in 0..usize::from(map.peer_count[home]) {
                let peer = map.peers[home * copies + slot] as usize;
                map.sources[next[peer] as usize] = home as u32;
                next[peer] += 1;
            }
        }
        map.source_start = held;
        map
    }
}

/// For each position, how many positions from it (going round) are in its zone, at most `n`:
/// a walk looking for another zone (or for its own) skips a run at once, so one long run of a
/// zone costs one step, not one per server.
fn same_zone_runs(zones: &[u32]) -> Vec<usize> {
    let n = zones.len();
    let mut runs = vec![1usize; n];
    if zones.iter().all(|zone| *zone == zones[0]) {
        return vec![n; n];
    }
    // Two passes backwards round the ring: the second starts from correct values past a
    // boundary between zones, which exists.
    for i in (0..2 * n).rev() {
        let at = i % n;
        let next = (at + 1) % n;
        runs[at] = if zones[next] == zones[at] {
            (runs[next] + 1).min(n)
        } else {
            1
        };
    }
    runs
}

/// Walks from `home` round the servers, calling `found(slot, server)` for each of the first
/// `copies` the placement accepts; returns how many it found.
fn walk_to_peers(
    home: usize,
    copies: usize,
    placement: ReplicaPlacement,
    zones: &[u32],
    retired: &[bool],
    runs: &[usize],
    mut found: impl FnMut(usize, usize),
) -> usize {
    let n = zones.len();
    let mut count = 0;
    let mut distance = 1;
    while distance < n && count < copies {
        let at = (home + distance) % n;
        let skip = match placement {
            ReplicaPlacement::Any => false,
            ReplicaPlacement::SameZone => zones[at] != zones[home],
            ReplicaPlacement::OtherZone => zones[at] == zones[home],
        };
        if skip {
            distance += runs[at];
            continue;
        }
        if !retired[at] {
            found(count, at);
            count += 1;
        }
        distance += 1;
    }
    count
}

/// The zone a session's client is in (`seed` is the run's `client.zone` stream): clients are
/// spread evenly over the zones, the same way in every topology with as many zones.
pub(super) fn client_zone(seed: u64, zones: &Zones, session_id: u64) -> u32 {
    (mix64(session_id ^ seed) % u64::from(zones.count)) as u32
}

impl World<'_> {
    fn zones(&self) -> &Zones {
        &self.topology.servers.zones
    }

    pub(super) fn server_zone(&self, server: u32) -> u32 {
        self.zones().of(server)
    }

    pub(super) fn client_zone(&self, session_id: u64) -> u32 {
        client_zone(self.seeds.client_zone, self.zones(), session_id)
    }

    /// The extra one-way latency of a hop from zone `from` to zone `to` (`lane` tells the hops
    /// of one attempt apart).
    pub(super) fn cross_zone_delay(
        &self,
        from: u32,
        to: u32,
        session_id: u64,
        draw_key: u64,
        lane: u64,
    ) -> SimTime {
        if from == to {
            return SimTime::ZERO;
        }
        Self::draw_time(
            &self.topology.network.cross_zone,
            self.seeds.net_cross_zone,
            session_id,
            draw_key ^ (lane << 52),
        )
    }

    /// The balancer sends a try to `server`: when the server is outside its client's zone the
    /// hop crosses zones, and so do the request, its answer and the token it carries.
    #[cold]
    #[inline(never)]
    pub(super) fn zone_hop_to_server(&mut self, handle: Handle, server: u32) -> SimTime {
        let request = self.requests.get(handle).expect("live request");
        let (session_id, index, key, in_window) = (
            request.session_id,
            request.index,
            request.draw_key,
            request.in_window,
        );
        let (client, at) = (self.client_zone(session_id), self.server_zone(server));
        if client == at {
            return SimTime::ZERO;
        }
        if in_window {
            let token = match &self.topology.state {
                State::Token { token_bytes, .. } => *token_bytes,
                _ => 0.0,
            };
            self.recorder.traffic.cross_zone += self.payload_bytes(session_id, index) + token;
        }
        self.cross_zone_delay(client, at, session_id, key, 0)
    }

    /// The answer's way back from `server` to the client's zone.
    #[cold]
    #[inline(never)]
    pub(super) fn zone_hop_from_server(&self, handle: Handle) -> SimTime {
        let request = self.requests.get(handle).expect("live request");
        let (client, at) = (
            self.client_zone(request.session_id),
            self.server_zone(request.server),
        );
        self.cross_zone_delay(at, client, request.session_id, request.draw_key, 1)
    }

    /// A store operation from `server` to the shard's primary, one way (`lane` 2 out, 3 back):
    /// its latency, and the session's bytes counted once per operation, going out.
    #[cold]
    #[inline(never)]
    pub(super) fn zone_hop_to_store(&mut self, handle: Handle, shard: usize, lane: u64) -> SimTime {
        let request = self.requests.get(handle).expect("live request");
        let (id, key, in_window) = (request.session_id, request.draw_key, request.in_window);
        let server = self.server_zone(request.server);
        let primary = self.zones().of_shard(shard as u32);
        if server == primary {
            return SimTime::ZERO;
        }
        if in_window && lane == 2 {
            self.recorder.traffic.cross_zone += self.topology.state.session_bytes();
        }
        self.cross_zone_delay(server, primary, id, key, lane)
    }

    /// The round trip to replica peer `slot` of `server` crosses zones (both ways) when the
    /// peer is in another zone.
    #[inline(never)]
    pub(super) fn zone_round_trip_to_peer(
        &self,
        server: u32,
        slot: usize,
        session_id: u64,
        draw_key: u64,
    ) -> SimTime {
        let Some(&peer) = self.replica_map.peers(server).get(slot) else {
            return SimTime::ZERO;
        };
        let (home, there) = (self.server_zone(server), self.server_zone(peer));
        let lane = 4 + 2 * slot as u64;
        self.cross_zone_delay(home, there, session_id, draw_key, lane)
            .saturating_add(self.cross_zone_delay(there, home, session_id, draw_key, lane + 1))
    }

    /// The bytes a change of a session on `server` sends to replicas in other zones.
    pub(super) fn cross_zone_replica_bytes(&self, server: u32) -> f64 {
        let home = self.server_zone(server);
        let away = self
            .replica_map
            .peers(server)
            .iter()
            .filter(|peer| self.server_zone(**peer) != home)
            .count();
        away as f64 * self.topology.state.session_bytes()
    }

    /// Rebuilds the replica lists when the fleet has changed since they were built.
    #[inline]
    pub(super) fn refresh_replica_map(&mut self) {
        if self.replica_map.stale {
            self.rebuild_replica_map();
        }
    }

    #[cold]
    #[inline(never)]
    fn rebuild_replica_map(&mut self) {
        let State::Server {
            replica_placement, ..
        } = &self.topology.state
        else {
            self.replica_map.stale = false;
            return;
        };
        let n = self.servers.len() as u32;
        let zones: Vec<u32> = (0..n).map(|s| self.server_zone(s)).collect();
        let retired: Vec<bool> = self
            .servers
            .iter()
            .map(|s| s.condition == Condition::Retired)
            .collect();
        self.replica_map =
            ReplicaMap::build(self.replica_copies, *replica_placement, &zones, &retired);
    }

    /// A zone is lost: each of its servers crashes (every one of them down before any session's
    /// fate is decided, so a replica in the same zone does not count as surviving), each store
    /// shard whose primary is there is out until a replica elsewhere takes over.
    pub(super) fn zone_outage(
        &mut self,
        fault: u32,
        zone: u32,
        duration: Option<SimTime>,
        store_failover: Option<SimTime>,
    ) {
        let lost: Vec<u32> = (0..self.servers.len() as u32)
            .filter(|s| self.server_zone(*s) == zone && self.servers[*s as usize].is_running())
            .collect();
        self.zone_down = Some(zone);
        for server in lost {
            self.open_server_fault(fault, server);
            self.crash(server, LossCause::ZoneOutage);
            self.schedule_restart(server, duration);
        }
        self.zone_down = None;
        let shards = self.stores.len() as u32;
        let back_after = store_failover.or(duration).unwrap_or(SimTime::MAX);
        let in_zone: Vec<u32> = (0..shards)
            .filter(|shard| self.zones().of_shard(*shard) == zone)
            .collect();
        for shard in in_zone {
            self.store_down(fault, back_after, false, Some(shard));
        }
    }

    /// Whether `server` is in the zone going down right now (its replicas are as good as gone).
    pub(super) fn in_zone_going_down(&self, server: u32) -> bool {
        self.zone_down == Some(self.server_zone(server))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk_backwards(copies: u32, server: u32, n: u32, retired: &[bool]) -> Vec<u32> {
        // The old definition: the `copies` live servers before it, going round, not itself.
        let mut found = Vec::new();
        let mut at = server;
        while (found.len() as u32) < copies {
            at = (at + n - 1) % n;
            if at == server {
                break;
            }
            if !retired[at as usize] {
                found.push(at);
            }
        }
        found
    }

    #[test]
    fn any_placement_is_the_next_live_servers_and_its_inverse_the_previous_ones() {
        let zones = vec![0; 7];
        let retired = [false, true, false, false, true, false, false];
        for copies in 1..=6 {
            let map = ReplicaMap::build(copies, ReplicaPlacement::Any, &zones, &retired);
            assert_eq!(map.peers(0), &[2, 3, 5, 6][..(copies as usize).min(4)]);
            // (A retired server holds nothing, and nothing asks what it holds.)
            for server in (0..7).filter(|s| !retired[*s as usize]) {
                let mut sources = map.sources(server).to_vec();
                let mut expected = walk_backwards(copies, server, 7, &retired);
                sources.sort_unstable();
                expected.sort_unstable();
                assert_eq!(sources, expected, "server {server}, {copies} copies");
            }
        }
    }

    #[test]
    fn zone_placements_pick_the_next_servers_of_another_or_the_same_zone() {
        // Two zones in blocks: 0 0 0 1 1 1.
        let zones = [0, 0, 0, 1, 1, 1];
        let retired = [false; 6];
        let other = ReplicaMap::build(2, ReplicaPlacement::OtherZone, &zones, &retired);
        assert_eq!(other.peers(0), &[3, 4]);
        assert_eq!(other.peers(2), &[3, 4]);
        assert_eq!(other.peers(5), &[0, 1]);
        assert_eq!(other.sources(3), &[0, 1, 2]);
        assert!(other.sources(5).is_empty(), "nobody's first two");
        let same = ReplicaMap::build(1, ReplicaPlacement::SameZone, &zones, &retired);
        assert_eq!(same.peers(2), &[0], "round within its zone");
        assert_eq!(same.peers(3), &[4]);
        // Every listed peer is where the placement says, and sources invert peers.
        for (placement, map) in [
            (ReplicaPlacement::OtherZone, &other),
            (ReplicaPlacement::SameZone, &same),
        ] {
            for home in 0..6u32 {
                for &peer in map.peers(home) {
                    let same_zone = zones[peer as usize] == zones[home as usize];
                    assert_eq!(same_zone, placement == ReplicaPlacement::SameZone);
                    assert!(map.sources(peer).contains(&home));
                }
            }
        }
    }

    #[test]
    fn a_long_run_of_one_zone_is_skipped_in_one_step() {
        let mut zones = vec![0u32; 100_000];
        zones[99_999] = 1;
        zones[50_000] = 1;
        let retired = vec![false; zones.len()];
        let map = ReplicaMap::build(1, ReplicaPlacement::OtherZone, &zones, &retired);
        assert_eq!(map.peers(0), &[50_000]);
        assert_eq!(map.peers(50_001), &[99_999]);
        assert_eq!(map.peers(99_999), &[0]);
        assert_eq!(map.sources(50_000).len(), 50_000, "servers 0..50000");
    }
}
