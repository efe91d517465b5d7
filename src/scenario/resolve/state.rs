//! Where session state lives: a topology's `state` and what goes with it (replication, the store,
//! the cache, the token).

use super::Resolver;
use crate::engine::SimTime;
use crate::scenario::schema::*;
use crate::scenario::*;

/// Assumption: an async replica is typically ~100 ms behind its primary.
const DEFAULT_REPLICATION_LAG: SimTime = SimTime::from_millis(100);
/// Assumption: a cached session is trusted for 5 minutes.
const DEFAULT_CACHE_TTL: SimTime = SimTime::from_secs(300);
/// "≤10 KB" typical session state (IBM guidance, see shared research notes).
const DEFAULT_SESSION_BYTES: f64 = 10_000.0;
/// RS256 JWT of a modest payload ≈ 535 bytes.
const DEFAULT_TOKEN_BYTES: f64 = 550.0;
/// RS256 verify in Node.js ≈ 61 µs.
const DEFAULT_VERIFY_NS: f64 = 60_000.0;
/// One Redis node serves ≈75k ops/s unpipelined: ≈13 µs of store time per operation.
const DEFAULT_STORE_OP_NS: f64 = 13_000.0;

/// The most sync replicas a session has (each is a copy of every session in another server's
/// memory; real deployments keep one or two).
const MAX_REPLICAS: u32 = 16;

impl Resolver<'_> {
    pub(super) fn state(&mut self, topology: &TopologyFile, path: &str) -> State {
        let misplaced = |key: &str, present: bool, problems: &mut Vec<Problem>| {
            if present {
                problems.push(Problem::new(
                    format!("{path}.{key}"),
                    format!(
                        "`{key}` does not apply to state = \"{}\"",
                        state_name(topology.state)
                    ),
                ));
            }
        };
        let problems = &mut self.problems;
        let store_backup = topology.replication == Some(ReplicationKind::StoreBackup);
        match topology.state {
            StateKind::None => misplaced("store", topology.store.is_some(), problems),
            StateKind::Server if !store_backup => {
                misplaced("store", topology.store.is_some(), problems)
            }
            _ => {}
        }
        if topology.state != StateKind::Server {
            misplaced("replication", topology.replication.is_some(), problems);
            misplaced(
                "write_fraction",
                topology.write_fraction.is_some(),
                problems,
            );
        }
        let kind = topology.replication.unwrap_or(ReplicationKind::None);
        if kind != ReplicationKind::Sync {
            misplaced("replicas", topology.replicas.is_some(), problems);
        }
        if !matches!(kind, ReplicationKind::Sync | ReplicationKind::Async) {
            misplaced(
                "replica_placement",
                topology.replica_placement.is_some(),
                problems,
            );
        }
        if kind != ReplicationKind::Async {
            misplaced(
                "replication_lag",
                topology.replication_lag.is_some(),
                problems,
            );
        }
        if topology.state != StateKind::Store {
            misplaced("cache", topology.cache.is_some(), problems);
        }
        match topology.state {
            StateKind::None | StateKind::Server | StateKind::Store => {
                misplaced("token_bytes", topology.token_bytes.is_some(), problems);
                misplaced("verify_time", topology.verify_time.is_some(), problems);
            }
            StateKind::Token => {}
        }
        match topology.state {
            StateKind::None | StateKind::Token => {
                misplaced("session_bytes", topology.session_bytes.is_some(), problems)
            }
            _ => {}
        }
        if topology.state != StateKind::Server {
            misplaced("session_ttl", topology.session_ttl.is_some(), problems);
        }
        if topology.state == StateKind::Token {
            misplaced("store", topology.store.is_some(), problems);
        }
        match topology.state {
            StateKind::None => State::Stateless,
            StateKind::Server => State::Server {
                session_bytes: self.bytes(
                    topology.session_bytes.as_ref(),
                    &format!("{path}.session_bytes"),
                    DEFAULT_SESSION_BYTES,
                ),
                session_ttl: topology.session_ttl.map_or(SimTime::ZERO, |d| d.0),
                replication: self.replication(topology, path),
                replica_placement: topology.replica_placement.unwrap_or(ReplicaPlacement::Any),
                write_fraction: self
                    .fraction(topology.write_fraction, &format!("{path}.write_fraction")),
            },
            StateKind::Store => {
                let session_bytes = self.bytes(
                    topology.session_bytes.as_ref(),
                    &format!("{path}.session_bytes"),
                    DEFAULT_SESSION_BYTES,
                );
                let store = self.store(topology.store.as_ref(), &format!("{path}.store"));
                let cache = topology.cache.as_ref().map(|cache| {
                    self.check(
                        cache.capacity >= 1,
                        format!("{path}.cache.capacity"),
                        "a cache holds at least one session",
                    );
                    Cache {
                        capacity: cache.capacity,
                        ttl: cache.ttl.map_or(DEFAULT_CACHE_TTL, |d| d.0),
                    }
                });
                State::Store {
                    session_bytes,
                    store,
                    cache,
                }
            }
            StateKind::Token => State::Token {
                token_bytes: self.bytes(
                    topology.token_bytes.as_ref(),
                    &format!("{path}.token_bytes"),
                    DEFAULT_TOKEN_BYTES,
                ),
                verify_time: self.dist(
                    topology.verify_time.as_ref(),
                    Quantity::Time,
                    &format!("{path}.verify_time"),
                    Dist::constant(DEFAULT_VERIFY_NS),
                ),
            },
        }
    }

    /// Zone-aware replica placement needs zones, and enough servers that pass its test for
    /// every home to have its replicas.
    pub(super) fn replica_placement(
        &mut self,
        state: &State,
        servers: &Servers,
        file: &TopologyFile,
        path: &str,
    ) {
        let State::Server {
            replication,
            replica_placement,
            ..
        } = state
        else {
            return;
        };
        if *replica_placement == ReplicaPlacement::Any {
            return;
        }
        let origin = format!("{path}.replica_placement");
        let zones = &servers.zones;
        if zones.count < 2 && *replica_placement == ReplicaPlacement::OtherZone {
            self.problems.push(Problem::new(
                origin,
                "replicas in another zone need at least two zones: set servers.zones",
            ));
            return;
        }
        let mut per_zone = vec![0u32; zones.count as usize];
        for server in 0..servers.count {
            per_zone[zones.of(server) as usize] += 1;
        }
        let peers = replication.peer_copies();
        let fewest_eligible = per_zone
            .iter()
            .filter(|n| **n > 0)
            .map(|in_zone| match replica_placement {
                ReplicaPlacement::SameZone => in_zone - 1,
                _ => servers.count - in_zone,
            })
            .min()
            .unwrap_or(0);
        if fewest_eligible < peers {
            self.problems.push(Problem::new(
                if file.replicas.is_some() {
                    format!("{path}.replicas")
                } else {
                    origin
                },
                format!(
                    "{peers} replica(s) {} need that many servers there for every server, and \
                     one zone's servers have only {fewest_eligible}",
                    match replica_placement {
                        ReplicaPlacement::SameZone => "in the same zone",
                        _ => "in another zone",
                    }
                ),
            ));
        }
    }

    fn replication(&mut self, topology: &TopologyFile, path: &str) -> Replication {
        match topology.replication.unwrap_or(ReplicationKind::None) {
            ReplicationKind::None => Replication::None,
            ReplicationKind::Sync => {
                let peers = topology.replicas.unwrap_or(1);
                self.check(
                    (1..=MAX_REPLICAS).contains(&peers),
                    format!("{path}.replicas"),
                    format!(
                        "sync replication needs 1 to {MAX_REPLICAS} replicas (each is a full \
                         copy of every session), got {peers}"
                    ),
                );
                Replication::Sync { peers }
            }
            ReplicationKind::Async => Replication::Async {
                lag: topology
                    .replication_lag
                    .map_or(DEFAULT_REPLICATION_LAG, |d| d.0),
            },
            ReplicationKind::StoreBackup => Replication::StoreBackup(Box::new(
                self.store(topology.store.as_ref(), &format!("{path}.store")),
            )),
        }
    }

    fn store(&mut self, file: Option<&StoreFile>, path: &str) -> Store {
        // Redis Cluster's hash slots: 16384, so at most as many primaries.
        const MAX_SHARDS: u32 = 16_384;
        let empty = StoreFile {
            shards: None,
            hot_share: None,
            workers: None,
            nodes: None,
            queue_limit: None,
            read: None,
            write: None,
            write_fraction: None,
        };
        let file = file.unwrap_or(&empty);
        let shards = file.shards.unwrap_or(1);
        let store = Store {
            shards,
            hot_share: file.hot_share.unwrap_or(0.0),
            workers: file.workers.unwrap_or(1),
            // A cluster of N shards is billed as N nodes unless said otherwise.
            nodes: file.nodes.unwrap_or(shards.max(1)),
            queue_limit: file.queue_limit,
            read: self.dist(
                file.read.as_ref(),
                Quantity::Time,
                &format!("{path}.read"),
                Dist::constant(DEFAULT_STORE_OP_NS),
            ),
            write: self.dist(
                file.write.as_ref(),
                Quantity::Time,
                &format!("{path}.write"),
                Dist::constant(DEFAULT_STORE_OP_NS),
            ),
            write_fraction: file.write_fraction.unwrap_or(1.0),
        };
        self.check(
            store.workers >= 1,
            format!("{path}.workers"),
            "the store needs at least one worker",
        );
        self.check(
            (1..=MAX_SHARDS).contains(&store.shards),
            format!("{path}.shards"),
            format!(
                "must be between 1 and {MAX_SHARDS} shards, got {}",
                store.shards
            ),
        );
        self.check(
            (0.0..=1.0).contains(&store.hot_share),
            format!("{path}.hot_share"),
            format!(
                "must be the share of sessions on shard 0, between 0 and 1, got {}",
                store.hot_share
            ),
        );
        self.check(
            (1..=1_000_000).contains(&store.nodes),
            format!("{path}.nodes"),
            format!("must be between 1 and 1000000 nodes, got {}", store.nodes),
        );
        self.check(
            (0.0..=1.0).contains(&store.write_fraction),
            format!("{path}.write_fraction"),
            format!(
                "must be a fraction between 0 and 1, got {}",
                store.write_fraction
            ),
        );
        store
    }
}

fn state_name(kind: StateKind) -> &'static str {
    match kind {
        StateKind::None => "none",
        StateKind::Server => "server",
        StateKind::Store => "store",
        StateKind::Token => "token",
    }
}
