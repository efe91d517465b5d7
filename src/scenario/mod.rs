//! The input: a scenario file, parsed, overridden with `--set`, validated and resolved into typed
//! values the model can run without further checks.
//!
//! Loading is a pipeline: TOML text → `toml::Table` (syntax errors) → `--set` overrides → serde
//! schema (type errors, unknown keys, with their key path) → resolution (ranges and cross-field
//! rules). Every problem carries a key path; [`source::SourceMap`] turns that path back into the file,
//! line and column where the user wrote it, or names the `--set` flag that introduced it.

pub mod dist;
mod overrides;
mod resolve;
mod schema;
pub mod source;
mod sweep;
pub mod units;

use crate::engine::SimTime;
use dist::DistContext;
pub use dist::{Dist, Quantity};
use source::{Diagnostic, Location, SourceMap};
use std::fmt;
use std::path::{Path, PathBuf};

/// The fully commented scenario printed by `statesim example`.
pub const EXAMPLE: &str = include_str!("../../scenarios/example.toml");
/// The scenario `statesim run` uses when given no file.
pub const QUICKSTART: &str = include_str!("../../scenarios/quickstart.toml");

/// A problem found at a key path of the scenario (located in the file later).
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl Problem {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            path: path.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", render_diagnostics(.0))]
    Invalid(Vec<Diagnostic>),
}

fn render_diagnostics(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(Diagnostic::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A validated scenario: every value is in range and every reference resolves.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub seed: u64,
    /// Sessions arrive during `[0, duration)`; the run stops at `duration`.
    pub duration: SimTime,
    /// Metrics of requests sent (and sessions started) before this are discarded.
    pub warmup: SimTime,
    /// `warmup = "auto"`: the run finds the warm-up from a pilot (see `run::detect_warmup`).
    pub warmup_auto: bool,
    pub replications: u32,
    pub workload: Workload,
    pub client: Client,
    pub topologies: Vec<Topology>,
    pub faults: Vec<Fault>,
    /// Assertions checked by `statesim check` (`[[expect]]`).
    pub expectations: Vec<Expectation>,
    /// The service level a sweep's knee is judged by (`[slo]`), as expectations on every topology.
    pub slo: Vec<Expectation>,
    /// `[autoscale]`: a controller that sets the server count from measured utilisation.
    pub autoscale: Option<Autoscale>,
    /// Width of a timeseries.csv bucket (`bucket`, or `--bucket`).
    pub bucket: SimTime,
    /// Legal but probably unintended settings, printed on stderr.
    pub warnings: Vec<String>,
    /// Fingerprint of the scenario as run: its TOML after `--set` overrides, normalised. Written
    /// into every result file so a result can be traced to what produced it.
    pub source_hash: u64,
}

#[derive(Clone, Debug)]
pub struct Workload {
    /// How sessions start: an open Poisson stream (constant or scheduled rate) or a closed loop.
    pub arrivals: Arrivals,
    pub requests_per_session: Dist,
    pub think_time: Dist,
    pub service_time: Dist,
    pub request_bytes: Dist,
    pub response_bytes: Dist,
    pub on_session_lost: OnSessionLost,
    /// Requests may be sent twice safely (GETs): a balancer retries a reset or a 5xx only then.
    pub idempotent: bool,
}

/// How sessions start.
#[derive(Clone, Debug)]
pub enum Arrivals {
    /// Open: a Poisson process of this many sessions a second.
    Constant { sessions_per_second: f64 },
    /// Open: a non-homogeneous Poisson process of a rate that changes over time
    /// (`workload.schedule`, `diurnal`, `spike`).
    Scheduled(RateSchedule),
    /// Closed: `users` users, each starting a session, then after it ends (or is abandoned)
    /// waiting `between_sessions` and starting the next (the partly-open model of Schroeder,
    /// Wierman and Harchol-Balter, NSDI 2006). Each user's first session starts after a
    /// `between_sessions` draw too.
    Users { users: u32, between_sessions: Dist },
    /// A request log replayed (`workload.trace`): each session starts when its first request
    /// does in the log, and sends its next request the log's gap after the previous response.
    Trace(Trace),
}

/// A request log to replay, checked when the scenario was loaded.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    pub path: PathBuf,
    pub columns: crate::fit::LogColumns,
    /// A session's next request later than this after its last starts a new session.
    pub session_gap: SimTime,
    /// What the log holds: requests, sessions, and the seconds from its first to its last row.
    pub requests: u64,
    pub sessions: u64,
    pub span_seconds: f64,
    /// From a session's first request to its last, on average.
    pub mean_session_seconds: f64,
}

impl Arrivals {
    /// The mean rate of session starts over `[0, duration)` (sessions a second), for open
    /// arrivals; None for a closed loop, whose rate depends on how fast sessions end.
    pub fn mean_rate(&self, duration: SimTime) -> Option<f64> {
        match self {
            Arrivals::Constant {
                sessions_per_second,
            } => Some(*sessions_per_second),
            Arrivals::Scheduled(schedule) => {
                let seconds = duration.as_secs_f64().max(1e-9);
                Some(schedule.expected_sessions(0.0, seconds) / seconds)
            }
            Arrivals::Users { .. } => None,
            Arrivals::Trace(trace) => {
                Some(trace.sessions as f64 / trace.span_seconds.max(duration.as_secs_f64()))
            }
        }
    }
}

/// A session rate that changes over time: piecewise linear in time (a step is a segment of
/// constant rate), possibly jumping between segments. The segments cover `[0, ∞)` in order: the
/// last one holds its rate for ever.
#[derive(Clone, Debug, PartialEq)]
pub struct RateSchedule {
    pub segments: Vec<RateSegment>,
}

/// The rate over `[start, end)` (seconds) goes linearly from `from` to `to` (sessions a second).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateSegment {
    pub start: f64,
    pub end: f64,
    pub from: f64,
    pub to: f64,
}

impl RateSegment {
    /// The rate's slope (sessions a second, per second); 0 on the open-ended last segment.
    pub fn slope(&self) -> f64 {
        if self.end.is_finite() && self.end > self.start {
            (self.to - self.from) / (self.end - self.start)
        } else {
            0.0
        }
    }

    /// The sessions expected over `[a, b)` within this segment (the integral of the rate).
    fn expected(&self, a: f64, b: f64) -> f64 {
        let (a, b) = (a.max(self.start), b.min(self.end));
        if b <= a {
            return 0.0;
        }
        let rate = |t: f64| self.from + self.slope() * (t - self.start);
        (rate(a) + rate(b)) / 2.0 * (b - a)
    }
}

impl RateSchedule {
    /// The sessions expected to start over `[from, to)` seconds: the integral of the rate.
    pub fn expected_sessions(&self, from: f64, to: f64) -> f64 {
        self.segments.iter().map(|s| s.expected(from, to)).sum()
    }

    /// The rate at `t` seconds.
    pub fn rate_at(&self, t: f64) -> f64 {
        self.segments
            .iter()
            .rev()
            .find(|s| s.start <= t)
            .map_or(0.0, |s| s.from + s.slope() * (t - s.start))
    }

    /// The highest rate anywhere (at a segment's ends, as the rate is linear between).
    pub fn peak_rate(&self) -> f64 {
        self.segments
            .iter()
            .map(|s| s.from.max(s.to))
            .fold(0.0, f64::max)
    }
}

/// What a client does when it learns that its session state is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnSessionLost {
    /// The user leaves: the session's remaining requests are never sent.
    Abandon,
    /// The user logs in again: a new session starts and redoes the lost session's requests.
    Relogin,
}

#[derive(Clone, Debug)]
pub struct Client {
    /// An attempt with no response after this long counts as timed out.
    pub timeout: Option<SimTime>,
    /// Attempts per request, the first included (1: no retries).
    pub max_attempts: u32,
    pub backoff: Backoff,
    /// Retries may be at most this fraction of requests (a token bucket, as in Finagle's
    /// RetryBudget and gRPC's retry throttling); `None` for no budget.
    pub retry_budget: Option<f64>,
    /// A request still unanswered this long after it was sent gets a second attempt (a hedge,
    /// "The Tail at Scale"); the first answer wins.
    pub hedge_after: Option<SimTime>,
}

/// The wait before a retry (AWS Architecture Blog, "Exponential Backoff And Jitter", 2015).
#[derive(Clone, Debug, PartialEq)]
pub struct Backoff {
    pub kind: BackoffKind,
    pub base: SimTime,
    pub cap: SimTime,
    pub jitter: Jitter,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackoffKind {
    Constant,
    Exponential,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Jitter {
    None,
    Full,
    Equal,
    Decorrelated,
}

/// What a server does when a new session's state does not fit in `memory_mb`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryFull {
    /// Evict the least recently used session (lost, cause `eviction`).
    EvictLru,
    /// Refuse the new session (its request is rejected).
    Refuse,
}

/// A Kubernetes-HPA-like controller: every `sync_period` it sets the desired count to
/// `ceil(running × utilisation / target)` (within a 10% tolerance), scales down only to the
/// highest recommendation of the last `scale_down_stabilization`, and stays within `min..=max`.
#[derive(Clone, Debug, PartialEq)]
pub struct Autoscale {
    pub target_utilization: f64,
    pub sync_period: SimTime,
    pub scale_down_stabilization: SimTime,
    pub min: u32,
    pub max: u32,
    pub startup: SimTime,
    pub drain: SimTime,
}

/// One-way network latencies of each hop.
#[derive(Clone, Debug)]
pub struct Network {
    pub client_balancer: Dist,
    pub balancer_server: Dist,
    pub server_store: Dist,
    /// Between servers (session replication, fetching a replica after a failover).
    pub server_server: Dist,
    /// Added to a hop between two zones (each way): a request to a server outside its client's
    /// zone, a store operation to a shard whose primary is in another zone, a replica elsewhere.
    pub cross_zone: Dist,
}

/// The availability zones servers live in (`servers.zones`).
#[derive(Clone, Debug, PartialEq)]
pub struct Zones {
    /// Zones are numbered `0..count`.
    pub count: u32,
    /// Server i's zone is `of_server[i % len]` (servers added by scaling repeat the list);
    /// empty: `i % count`.
    pub of_server: Vec<u32>,
}

impl Zones {
    /// Every server in one zone: nothing crosses zones.
    pub fn one() -> Zones {
        Zones {
            count: 1,
            of_server: Vec::new(),
        }
    }

    pub fn of(&self, server: u32) -> u32 {
        if self.of_server.is_empty() {
            server % self.count
        } else {
            self.of_server[server as usize % self.of_server.len()]
        }
    }

    /// The zone a store shard's primary lives in (primaries spread over the zones in turn).
    pub fn of_shard(&self, shard: u32) -> u32 {
        shard % self.count
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Servers {
    pub count: u32,
    pub workers: u32,
    /// Waiting room per server; `None` is unbounded, `Some(0)` rejects whenever all workers are busy.
    pub queue_limit: Option<u32>,
    pub memory_mb: Option<f64>,
    pub on_memory_full: MemoryFull,
    pub zones: Zones,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    RoundRobin,
    Random,
    LeastConnections,
    PowerOfTwo,
    ConsistentHash,
    Sticky,
}

impl Policy {
    pub fn name(self) -> &'static str {
        match self {
            Policy::RoundRobin => "round_robin",
            Policy::Random => "random",
            Policy::LeastConnections => "least_connections",
            Policy::PowerOfTwo => "power_of_two",
            Policy::ConsistentHash => "consistent_hash",
            Policy::Sticky => "sticky",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Balancer {
    pub policy: Policy,
    /// How `sticky` places a session's first request (and re-places it when its home is unhealthy).
    pub fallback: Policy,
    pub health_check: HealthCheck,
    pub retry: BalancerRetry,
    /// Passive health checking (outlier ejection), when configured.
    pub outlier: Option<Outlier>,
    /// Prefer servers in the client's zone (all zones when none there is healthy).
    pub zone_affinity: bool,
}

/// Outlier ejection with Envoy's semantics: a server whose answers fail `consecutive_failures`
/// times in a row (5xx, refused, reset or timed out) leaves the rotation for `ejection_time` ×
/// the times it has been ejected (at most `MAX_EJECTION_TIME`), unless `max_ejected_percent` of
/// the fleet is out already (at least one server may always be ejected).
#[derive(Clone, Debug, PartialEq)]
pub struct Outlier {
    pub consecutive_failures: u32,
    pub ejection_time: SimTime,
    pub max_ejected_percent: f64,
}

/// What a partitioned server is cut off from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionSide {
    /// The session store: its store operations fail (store_unavailable).
    Store,
    /// The balancer: requests sent to it and its answers are lost until a timeout, and its
    /// probes time out.
    Balancer,
    /// Its replica peers: sync writes fail, async writes stop reaching the replica, and replicas
    /// it holds cannot be fetched.
    Peers,
}

impl PartitionSide {
    pub fn name(self) -> &'static str {
        match self {
            PartitionSide::Store => "store",
            PartitionSide::Balancer => "balancer",
            PartitionSide::Peers => "peers",
        }
    }
}

/// Envoy's `max_ejection_time` default: an ejection never lasts longer than 300 s.
pub const MAX_EJECTION_TIME: SimTime = SimTime::from_secs(300);

/// What the balancer does when a try fails before the server answers (HAProxy `retries` and
/// `option redispatch`, NGINX `proxy_next_upstream`, Envoy's retry policy).
#[derive(Clone, Debug, PartialEq)]
pub struct BalancerRetry {
    /// Tries after the first (0: none).
    pub retries: u32,
    /// A retry may go to another server. Without it, retries go to the same server.
    pub redispatch: bool,
    /// Which failures are retried.
    pub on: RetryOn,
    /// The wait before retrying the same server (HAProxy's one-second turn-around); a retry
    /// redispatched to another server goes at once.
    pub pause: SimTime,
    /// How long the balancer waits for a server's answer before it gives up on the try (HAProxy
    /// `timeout server`, NGINX `proxy_read_timeout`): a 504, or a retry with `timeout` in
    /// `retry_on`. `None`: it waits as long as the client does.
    pub server_timeout: Option<SimTime>,
}

/// The failures a balancer retries (`balancer.retry_on`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetryOn {
    /// The connection was refused (a dead or starting server): the request never reached it.
    pub connect_failure: bool,
    /// The server died with the request in flight (only for idempotent requests).
    pub reset: bool,
    /// The server answered 5xx: its queue or memory was full, or the store was down (only for
    /// idempotent requests).
    pub status_5xx: bool,
    /// The server did not answer within `server_timeout` (only for idempotent requests).
    pub timeout: bool,
}

/// One value of `balancer.retry_on`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryCondition {
    ConnectFailure,
    Reset,
    Timeout,
    #[serde(rename = "5xx")]
    Status5xx,
}

#[derive(Clone, Debug, PartialEq)]
pub struct HealthCheck {
    pub interval: SimTime,
    pub unhealthy_threshold: u32,
    pub healthy_threshold: u32,
    /// A probe unanswered for this long fails (a hung server never answers).
    pub timeout: SimTime,
}

#[derive(Clone, Debug)]
pub struct Topology {
    pub name: String,
    pub state: State,
    pub servers: Servers,
    pub balancer: Balancer,
    pub network: Network,
    pub cost: Cost,
}

/// Prices (`[cost]`, which a topology may override), in any one currency.
#[derive(Clone, Debug, PartialEq)]
pub struct Cost {
    /// Per running server and hour.
    pub server_per_hour: f64,
    /// Per store node and hour.
    pub store_per_hour: f64,
    /// Per gigabyte (10^9 bytes) of state traffic: store reads and writes, replicas, tokens.
    pub transfer_per_gb: f64,
    /// Per gigabyte of any traffic between zones (requests, answers, state), both directions'
    /// charges together.
    pub cross_zone_per_gb: f64,
}

/// What an hour of a topology uses, to be priced.
#[derive(Clone, Copy, Debug, Default)]
pub struct HourlyUse {
    pub servers: f64,
    pub store_nodes: f64,
    pub state_gigabytes: f64,
    pub cross_zone_gigabytes: f64,
}

impl Cost {
    /// The cost of an hour's use.
    pub fn per_hour(&self, used: HourlyUse) -> f64 {
        used.servers * self.server_per_hour
            + used.store_nodes * self.store_per_hour
            + used.state_gigabytes * self.transfer_per_gb
            + used.cross_zone_gigabytes * self.cross_zone_per_gb
    }
}

impl Topology {
    /// The store sessions reach (as their home, or as a backup copy), if any.
    pub fn store(&self) -> Option<&Store> {
        match &self.state {
            State::Store { store, .. } => Some(store),
            State::Server {
                replication: Replication::StoreBackup(store),
                ..
            } => Some(store),
            _ => None,
        }
    }

    /// Whether sessions reach an external store (as their home, or as a backup copy).
    pub fn has_store(&self) -> bool {
        matches!(
            self.state,
            State::Store { .. }
                | State::Server {
                    replication: Replication::StoreBackup(_),
                    ..
                }
        )
    }
}

/// Where session state lives.
#[derive(Clone, Debug)]
pub enum State {
    /// No session state: a plain queueing system (the validation scenarios).
    Stateless,
    /// In the home server's memory; lost with that server. After the session's last request the
    /// state stays for `session_ttl` (the idle timeout), as servers cannot tell a user who left.
    Server {
        session_bytes: f64,
        session_ttl: SimTime,
        replication: Replication,
        /// Which servers hold a session's replicas.
        replica_placement: ReplicaPlacement,
        /// Share of requests that change the session (and so replicate it).
        write_fraction: f64,
    },
    /// In an external store read on every request and written back with `write_fraction`.
    Store {
        session_bytes: f64,
        store: Store,
        cache: Option<Cache>,
    },
    /// In a signed token carried by every request.
    Token { token_bytes: f64, verify_time: Dist },
}

impl State {
    /// The size of one session's state where it is kept (server memory or a store); 0 for none
    /// and for tokens.
    pub fn session_bytes(&self) -> f64 {
        match self {
            State::Server { session_bytes, .. } | State::Store { session_bytes, .. } => {
                *session_bytes
            }
            State::Stateless | State::Token { .. } => 0.0,
        }
    }

    /// The bytes of one session's state wherever it travels or is kept: its size in server
    /// memory or the store, or the token's.
    pub fn state_bytes(&self) -> f64 {
        match self {
            State::Token { token_bytes, .. } => *token_bytes,
            _ => self.session_bytes(),
        }
    }

    /// How many copies of each session's state exist: the home's and its replicas', the home's
    /// and the store's backup, the store's (a per-server cache is a copy of it, not counted), the
    /// token the client carries.
    pub fn copies(&self) -> f64 {
        match self {
            State::Stateless => 0.0,
            State::Server {
                replication: Replication::StoreBackup(_),
                ..
            } => 2.0,
            State::Server { replication, .. } => 1.0 + f64::from(replication.peer_copies()),
            State::Store { .. } | State::Token { .. } => 1.0,
        }
    }

    /// Where the state lives, in words, for the comparison.
    pub fn placement(&self) -> String {
        match self {
            State::Stateless => "no session state".into(),
            State::Server { replication, .. } => match replication {
                Replication::None => "server memory".into(),
                Replication::Sync { peers: 1 } => "server memory + 1 sync replica".into(),
                Replication::Sync { peers } => format!("server memory + {peers} sync replicas"),
                Replication::Async { .. } => "server memory + 1 async replica".into(),
                Replication::StoreBackup(_) => "server memory + store backup".into(),
            },
            State::Store { cache: None, .. } => "external store".into(),
            State::Store { cache: Some(_), .. } => "external store + server cache".into(),
            State::Token { .. } => "signed token (client)".into(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            State::Stateless => "none",
            State::Server { .. } => "server",
            State::Store { .. } => "store",
            State::Token { .. } => "token",
        }
    }
}

/// How a stateful topology protects its sessions against losing their server.
#[derive(Clone, Debug)]
pub enum Replication {
    None,
    /// Every state write waits for `peers` replicas (the next servers) to acknowledge it; a
    /// session whose home is lost moves to a server that fetches it from a live replica.
    Sync {
        peers: u32,
    },
    /// Writes reach one replica `lag` later; a session written within `lag` of its home's loss is
    /// lost (cause `replication_lag`).
    Async {
        lag: SimTime,
    },
    /// Sticky sessions in memory plus a write-through copy in an external store, read back only
    /// after the session's home is lost.
    StoreBackup(Box<Store>),
}

impl Replication {
    pub fn name(&self) -> &'static str {
        match self {
            Replication::None => "none",
            Replication::Sync { .. } => "sync",
            Replication::Async { .. } => "async",
            Replication::StoreBackup(_) => "store_backup",
        }
    }

    /// The copies of each session kept on other servers' memory: one per sync replica, one for
    /// async, none for a store backup (its copy is in the store).
    pub fn peer_copies(&self) -> u32 {
        match self {
            Replication::Sync { peers } => *peers,
            Replication::Async { .. } => 1,
            Replication::None | Replication::StoreBackup(_) => 0,
        }
    }
}

/// Which servers hold a server's replicas: the next ones in index order (skipping retired
/// ones) that pass this test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicaPlacement {
    /// The next servers, wherever they are.
    Any,
    /// The next servers in the same zone (a zone outage takes every copy).
    SameZone,
    /// The next servers in another zone than the home's.
    OtherZone,
}

impl ReplicaPlacement {
    pub fn name(self) -> &'static str {
        match self {
            ReplicaPlacement::Any => "any",
            ReplicaPlacement::SameZone => "same_zone",
            ReplicaPlacement::OtherZone => "other_zone",
        }
    }
}

/// A per-server cache of store sessions: a hit skips the store read.
#[derive(Clone, Debug, PartialEq)]
pub struct Cache {
    /// Sessions per server; the least recently used is dropped when full.
    pub capacity: u32,
    /// An entry older than this is a miss.
    pub ttl: SimTime,
}

#[derive(Clone, Debug)]
pub struct Store {
    /// Independent queueing stations (a Redis Cluster's primaries); a session lives on the one
    /// its id hashes to.
    pub shards: u32,
    /// The share of sessions on shard 0 (a hot key range), the rest hashed evenly over all
    /// shards; 0 for an even spread.
    pub hot_share: f64,
    /// Workers of each shard.
    pub workers: u32,
    /// What the store is billed as: nodes at `cost.store_per_hour` each (a Redis cluster of N
    /// shards is N nodes, whatever its workers).
    pub nodes: u32,
    pub queue_limit: Option<u32>,
    /// Time a store worker is busy with one read (the network hop is `network.server_store`).
    pub read: Dist,
    pub write: Dist,
    pub write_fraction: f64,
}

/// One `[[expect]]` assertion on a summary.csv figure.
#[derive(Clone, Debug, PartialEq)]
pub struct Expectation {
    /// The topology it applies to; `None` for every topology (`"*"`).
    pub topology: Option<String>,
    /// A summary.csv column (one of [`crate::metrics::METRICS`]).
    pub metric: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub equals: Option<f64>,
    /// With replications: the whole 95% interval must satisfy `min` / `max`, not just the mean.
    pub confidence: bool,
}

impl Expectation {
    /// How far `value` (with its 95% half-width, NaN if none) lies outside the bounds: positive
    /// when it fails, zero or negative when it holds; NaN when there is no value to judge.
    pub fn excess(&self, value: f64, half_width: f64) -> f64 {
        if value.is_nan() {
            return f64::NAN;
        }
        let use_interval = self.confidence && !half_width.is_nan();
        let (low, high) = if use_interval {
            (value - half_width, value + half_width)
        } else {
            (value, value)
        };
        let mut excess = f64::NEG_INFINITY;
        if let Some(max) = self.max {
            excess = excess.max(high - max);
        }
        if let Some(min) = self.min {
            excess = excess.max(min - low);
        }
        if let Some(equals) = self.equals {
            let slack = 1e-9 * equals.abs().max(1.0);
            excess = excess.max((value - equals).abs() - slack);
        }
        excess
    }

    pub fn holds(&self, value: f64, half_width: f64) -> bool {
        self.excess(value, half_width) <= 0.0
    }
}

/// A scheduled disturbance. New kinds add variants; the model matches on them in one place
/// (`model/fault.rs`).
#[derive(Clone, Debug)]
pub enum Fault {
    /// The server stops at `at`: connections reset at once, in-flight requests fail, its memory is
    /// gone; it may come back empty after `restart_after`.
    Crash {
        at: SimTime,
        server: u32,
        restart_after: Option<SimTime>,
    },
    /// The server stops answering but keeps its connections open: requests sent to it are
    /// black-holed until the client times out. Its sessions are unreachable; after
    /// `restart_after` it is restarted empty.
    Hang {
        at: SimTime,
        server: u32,
        restart_after: Option<SimTime>,
    },
    /// Every server fails independently after a time to failure drawn from `mtbf` and comes back
    /// (empty) after a repair time drawn from `mttr`.
    RandomCrashes { mtbf: Dist, mttr: Dist },
    /// A deploy: from `at`, every `interval` the next `batch` servers are replaced. The old ones
    /// stop taking new sessions and are terminated after `drain`; the new ones take traffic after
    /// `startup`.
    RollingRestart {
        at: SimTime,
        batch: u32,
        interval: SimTime,
        drain: SimTime,
        startup: SimTime,
    },
    /// At `at` the fleet becomes `count` servers: new ones take traffic after `startup`, removed
    /// ones (the newest first) drain for `drain`.
    Scale {
        at: SimTime,
        count: u32,
        drain: SimTime,
        startup: SimTime,
    },
    /// The external store is unreachable from `at` for `duration`, or until a replica takes over
    /// after `failover`. With `wipes`, it comes back empty (an in-memory store without
    /// persistence) and every session it held is lost.
    StoreOutage {
        at: SimTime,
        duration: SimTime,
        failover: Option<SimTime>,
        wipes: bool,
        /// One shard of a sharded store; `None`: every shard.
        shard: Option<u32>,
    },
    /// A gray failure: from `at` (for `duration`, or to the end) the server's work takes
    /// `factor` times as long. Its probes still pass.
    Slow {
        at: SimTime,
        server: u32,
        duration: Option<SimTime>,
        factor: f64,
    },
    /// A network partition: from `at` (for `duration`, or to the end) the server cannot reach
    /// one side, nor that side it. Its probes fail only when the side is the balancer.
    Partition {
        at: SimTime,
        server: u32,
        duration: Option<SimTime>,
        from: PartitionSide,
    },
    /// Stop-the-world pauses (a garbage collector): from `at` (for `duration`, or to the end),
    /// every `every` the server (`None`: every server) serves nothing for `pause`. Each server's
    /// pauses start at a random phase of the period; its probes still pass.
    Pauses {
        at: SimTime,
        server: Option<u32>,
        duration: Option<SimTime>,
        every: SimTime,
        pause: SimTime,
    },
    /// A zone is lost at `at`: every server in it crashes (back empty after `duration`, if
    /// given), and every store shard whose primary is there is unreachable until a replica in
    /// another zone takes over after `store_failover` (or the zone is back).
    ZoneOutage {
        at: SimTime,
        zone: u32,
        duration: Option<SimTime>,
        store_failover: Option<SimTime>,
    },
}

impl Fault {
    /// When the fault first acts (random crashes act on their own schedule, from the start).
    pub fn at(&self) -> SimTime {
        match self {
            Fault::Crash { at, .. }
            | Fault::Hang { at, .. }
            | Fault::RollingRestart { at, .. }
            | Fault::Scale { at, .. }
            | Fault::StoreOutage { at, .. }
            | Fault::Slow { at, .. }
            | Fault::Pauses { at, .. }
            | Fault::Partition { at, .. }
            | Fault::ZoneOutage { at, .. } => *at,
            Fault::RandomCrashes { .. } => SimTime::ZERO,
        }
    }

    /// The `kind` as written in the file.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Crash { .. } => "crash",
            Fault::Hang { .. } => "hang",
            Fault::RandomCrashes { .. } => "random_crashes",
            Fault::RollingRestart { .. } => "rolling_restart",
            Fault::Scale { .. } => "scale",
            Fault::StoreOutage { .. } => "store_outage",
            Fault::Slow { .. } => "slow",
            Fault::Pauses { .. } => "pauses",
            Fault::Partition { .. } => "partition",
            Fault::ZoneOutage { .. } => "zone_outage",
        }
    }

    /// When a fault with a duration ends (`None`: it lasts to the end of the run, or has no
    /// duration of its own).
    pub fn ends_at(&self) -> Option<SimTime> {
        match self {
            Fault::Slow { at, duration, .. }
            | Fault::Pauses { at, duration, .. }
            | Fault::Partition { at, duration, .. } => duration.map(|d| at.saturating_add(d)),
            _ => None,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = units::format_duration;
        match self {
            Fault::Crash {
                at,
                server,
                restart_after,
            }
            | Fault::Hang {
                at,
                server,
                restart_after,
            } => {
                write!(f, "{} of server {server} at {}", self.kind(), d(*at))?;
                if let Some(after) = restart_after {
                    write!(f, ", restart after {}", d(*after))?;
                }
                Ok(())
            }
            Fault::RandomCrashes { mtbf, mttr } => {
                let mean = |dist: &Dist| {
                    dist.mean()
                        .map_or("?".into(), |ns| d(SimTime::from_nanos_f64(ns)))
                };
                write!(
                    f,
                    "random crashes (MTBF {}, MTTR {})",
                    mean(mtbf),
                    mean(mttr)
                )?;
                if let (Some(up), Some(down)) = (mtbf.mean(), mttr.mean()) {
                    // Renewal theory: the long-run share of time a server is up.
                    write!(f, ", expected availability {:.4}", up / (up + down))?;
                }
                Ok(())
            }
            Fault::RollingRestart {
                at,
                batch,
                interval,
                ..
            } => write!(
                f,
                "rolling restart at {}, {batch} at a time every {}",
                d(*at),
                d(*interval)
            ),
            Fault::Scale { at, count, .. } => {
                write!(f, "scale to {count} servers at {}", d(*at))
            }
            Fault::StoreOutage {
                at,
                duration,
                shard,
                ..
            } => {
                write!(f, "store outage")?;
                if let Some(shard) = shard {
                    write!(f, " of shard {shard}")?;
                }
                write!(f, " at {} for {}", d(*at), d(*duration))
            }
            Fault::Slow {
                at,
                server,
                duration,
                factor,
            } => {
                write!(f, "server {server} {factor}x slower from {}", d(*at))?;
                if let Some(duration) = duration {
                    write!(f, " for {}", d(*duration))?;
                }
                Ok(())
            }
            Fault::Partition {
                at,
                server,
                duration,
                from,
            } => {
                write!(
                    f,
                    "server {server} cut off from the {} at {}",
                    from.name(),
                    d(*at)
                )?;
                if let Some(duration) = duration {
                    write!(f, " for {}", d(*duration))?;
                }
                Ok(())
            }
            Fault::Pauses {
                at,
                server,
                duration,
                every,
                pause,
            } => {
                match server {
                    Some(server) => write!(f, "server {server} pauses")?,
                    None => write!(f, "every server pauses")?,
                }
                write!(f, " {} every {} from {}", d(*pause), d(*every), d(*at))?;
                if let Some(duration) = duration {
                    write!(f, " for {}", d(*duration))?;
                }
                Ok(())
            }
            Fault::ZoneOutage {
                at, zone, duration, ..
            } => {
                write!(f, "outage of zone {zone} at {}", d(*at))?;
                if let Some(duration) = duration {
                    write!(f, " for {}", d(*duration))?;
                }
                Ok(())
            }
        }
    }
}

/// Reads and validates a scenario file, applying `--set` overrides. A `[sweep]` in the file is
/// ignored here: [`load_points_file`] expands it.
pub fn load_file(path: &Path, overrides: &[String]) -> Result<Scenario, ScenarioError> {
    let options = LoadOptions {
        overrides: overrides.to_vec(),
        ..LoadOptions::default()
    };
    let mut points = load_points_file(path, &options)?;
    Ok(points.remove(0).scenario)
}

/// Parses and validates scenario text (see [`load_file`]). `origin` names it in messages;
/// empirical files are looked up relative to `base_dir`.
pub fn load_str(
    text: &str,
    origin: &str,
    base_dir: &Path,
    overrides: &[String],
) -> Result<Scenario, ScenarioError> {
    let options = LoadOptions {
        overrides: overrides.to_vec(),
        ..LoadOptions::default()
    };
    let mut points = load_points_str(text, origin, base_dir, &options)?;
    Ok(points.remove(0).scenario)
}

/// One point of a sweep: the swept keys' values (in [`SweepPoint`] key order) and the scenario
/// they give. A scenario without a sweep is one point with no parameters.
#[derive(Clone, Debug)]
pub struct SweepPoint {
    pub params: Vec<(String, String)>,
    /// How many leading `params` stay fixed along a series: all but the last sweep group's keys
    /// (the group that varies fastest; zipped keys vary together).
    pub series_fixed: usize,
    pub scenario: Scenario,
}

/// What the command line changes about a scenario, and what it lets the scenario read.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// `--set key=value`, in order.
    pub overrides: Vec<String>,
    /// `--sweep key=values`, in order.
    pub sweeps: Vec<String>,
    /// Expand the file's `[sweep]` table (`validate` and `run` do; a plain load ignores it).
    pub expand_file_sweep: bool,
    /// `--allow-path`: folders besides the scenario's own that its files may be read from.
    pub allowed_dirs: Vec<PathBuf>,
}

/// Reads a scenario file and expands its sweep: the `[sweep]` table (when `expand_file_sweep`)
/// and `--sweep` flags, as a cartesian product in order (file keys, then flags; the last key
/// varies fastest).
pub fn load_points_file(
    path: &Path,
    options: &LoadOptions,
) -> Result<Vec<SweepPoint>, ScenarioError> {
    let text = read_scenario_text(path)?;
    let base_dir = folder_of(path);
    load_points_str(&text, &path.display().to_string(), base_dir, options)
}

/// The largest scenario file read (the biggest bundled one is under 10 KB).
pub const MAX_SCENARIO_BYTES: u64 = 16 * 1024 * 1024;

/// A scenario file's text: at most [`MAX_SCENARIO_BYTES`], UTF-8 (an error names the line,
/// column and byte offset of the first invalid byte).
pub fn read_scenario_text(path: &Path) -> Result<String, ScenarioError> {
    use std::io::Read;
    let read_error = |source| ScenarioError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_SCENARIO_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_SCENARIO_BYTES {
        return Err(read_error(std::io::Error::other(format!(
            "larger than {} MiB; a scenario file is a few kilobytes",
            MAX_SCENARIO_BYTES / (1024 * 1024)
        ))));
    }
    String::from_utf8(bytes).map_err(|error| {
        let offset = error.utf8_error().valid_up_to();
        let valid = String::from_utf8_lossy(&error.as_bytes()[..offset]).into_owned();
        let origin = path.display().to_string();
        ScenarioError::Invalid(vec![SourceMap::new(&origin, &valid).at_offset(
            offset,
            format!("not valid UTF-8 (byte offset {offset}); a scenario is UTF-8 text"),
        )])
    })
}

/// The folder a scenario file is in (`.` for a bare file name, whose parent is empty).
pub fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// [`load_points_file`] for text.
pub fn load_points_str(
    text: &str,
    origin: &str,
    base_dir: &Path,
    options: &LoadOptions,
) -> Result<Vec<SweepPoint>, ScenarioError> {
    let (overrides, sweeps) = (&options.overrides, &options.sweeps);
    let context = DistContext {
        base_dir,
        allowed_dirs: &options.allowed_dirs,
    };
    let source = SourceMap::new(origin, text);
    let mut table: toml::Table = toml::from_str(text)
        .map_err(|error| ScenarioError::Invalid(vec![source.syntax_error(&error)]))?;
    let mut assigned = Vec::new();
    for assignment in overrides {
        let path = overrides::apply(&mut table, assignment).map_err(|problem| {
            ScenarioError::Invalid(vec![source.set_error(assignment, problem)])
        })?;
        assigned.push((path, Location::Set(assignment.clone())));
    }
    // Normalised (re-serialised) so that comments and layout do not change the fingerprint; the
    // sweep is part of what was run.
    let mut fingerprint = table.to_string();
    for flag in sweeps {
        fingerprint.push_str(&format!("\n--sweep {flag}"));
    }
    let source_hash = crate::engine::rng::stable_hash(&fingerprint);
    let file_sweep = table.remove("sweep");
    let mut groups = Vec::new();
    if options.expand_file_sweep
        && let Some(file_sweep) = file_sweep
    {
        groups = sweep::file_groups(&file_sweep)
            .map_err(|problems| invalid(&source, problems, &assigned))?;
    }
    for flag in sweeps {
        let axis = sweep::flag_axis(flag).map_err(|problem| {
            ScenarioError::Invalid(vec![SourceMap::assignment_error(
                Location::Flag(format!("--sweep {flag}")),
                problem,
            )])
        })?;
        // A flag replaces the file's values of its key.
        for group in &mut groups {
            group.0.retain(|existing| existing.key != axis.key);
        }
        groups.retain(|group| !group.0.is_empty());
        groups.push(sweep::Group(vec![axis]));
    }
    if let Err(problem) = sweep::point_count(&groups) {
        let diagnostic = match sweeps.last() {
            Some(flag) => {
                SourceMap::assignment_error(Location::Flag(format!("--sweep {flag}")), problem)
            }
            None => source.locate(problem, &assigned),
        };
        return Err(ScenarioError::Invalid(vec![diagnostic]));
    }
    let mut points = Vec::new();
    let mut diagnostics = Vec::new();
    let all_keys: usize = groups.iter().map(|group| group.0.len()).sum();
    let series_fixed = all_keys - groups.last().map_or(0, |group| group.0.len());
    for params in sweep::cartesian(&groups) {
        let mut point_table = table.clone();
        let mut point_assigned = assigned.clone();
        for (key, value) in &params {
            let assignment = format!("{key}={value}");
            match overrides::apply(&mut point_table, &assignment) {
                Ok(path) => point_assigned.push((path, Location::Sweep(assignment))),
                Err(problem) => diagnostics.push(SourceMap::assignment_error(
                    Location::Sweep(assignment),
                    problem,
                )),
            }
        }
        match resolve_table(point_table, &context) {
            Ok(mut scenario) => {
                scenario.source_hash = source_hash;
                points.push(SweepPoint {
                    params,
                    series_fixed,
                    scenario,
                });
            }
            Err(problems) => diagnostics.extend(
                problems
                    .into_iter()
                    .map(|problem| source.locate(problem, &point_assigned)),
            ),
        }
    }
    if diagnostics.is_empty() {
        Ok(points)
    } else {
        // In reading order (the file, then flags and sweep points), each problem once.
        diagnostics.sort_by(|a, b| a.location.cmp(&b.location));
        diagnostics.dedup();
        Err(ScenarioError::Invalid(diagnostics))
    }
}

fn invalid(
    source: &SourceMap,
    problems: Vec<Problem>,
    assigned: &[(String, Location)],
) -> ScenarioError {
    let mut diagnostics: Vec<Diagnostic> = problems
        .into_iter()
        .map(|problem| source.locate(problem, assigned))
        .collect();
    diagnostics.sort_by(|a, b| a.location.cmp(&b.location));
    ScenarioError::Invalid(diagnostics)
}

/// The schema and validation steps, after overrides. Every schema problem of the file (and of
/// each `[[fault]]`) is reported together; range and cross-field problems come once the schema
/// holds, as they may only be consequences of a value of the wrong type.
fn resolve_table(table: toml::Table, context: &DistContext) -> Result<Scenario, Vec<Problem>> {
    let raw: Result<schema::ScenarioFile, Vec<Problem>> = schema::from_table(table.clone(), "");
    let mut problems = raw.as_ref().err().cloned().unwrap_or_default();
    let fault_values = match table.get("fault") {
        Some(toml::Value::Array(faults)) => faults.as_slice(),
        None => &[],
        Some(other) => {
            problems.push(Problem::new(
                "fault",
                format!(
                    "expected an array of tables ([[fault]]), found {}",
                    other.type_str()
                ),
            ));
            &[]
        }
    };
    let mut faults = Vec::new();
    for (index, value) in fault_values.iter().enumerate() {
        match schema::fault_file(value, &format!("fault[{index}]")) {
            Ok(fault) => faults.push(fault),
            Err(more) => problems.extend(more),
        }
    }
    match raw {
        Ok(raw) if problems.is_empty() => resolve::resolve(raw, &faults, context),
        _ => Err(problems),
    }
}
