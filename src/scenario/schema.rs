//! The scenario file as written: serde types with every key optional where a default exists.
//! Distributions stay raw `toml::Value`s here; `resolve` parses them with their key path in hand.

use super::Problem;
use super::units::parse_duration;
use super::{BackoffKind, Jitter, MemoryFull, OnSessionLost, Policy, RetryCondition};
use crate::engine::SimTime;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use toml::{Table, Value};

/// A duration written as a human string ("250us", "1m30s").
#[derive(Clone, Copy, Debug, Default)]
pub struct HumanDuration(pub SimTime);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a duration such as \"250us\", \"20ms\" or \"1m30s\"")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<HumanDuration, E> {
                parse_duration(text).map(HumanDuration).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<HumanDuration, E> {
                if n == 0 {
                    Ok(HumanDuration(SimTime::ZERO))
                } else {
                    Err(E::custom(format!(
                        "a duration needs a unit: write e.g. \"{n}s\" or \"{n}ms\""
                    )))
                }
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<HumanDuration, E> {
                self.visit_i64(i64::try_from(n).unwrap_or(i64::MAX))
            }
            fn visit_f64<E: serde::de::Error>(self, x: f64) -> Result<HumanDuration, E> {
                if !x.is_finite() {
                    // "write NaNs" would be advice the parser then refuses.
                    return Err(E::custom(format!(
                        "expected a duration such as \"250us\", \"20ms\" or \"1m30s\", got {x}"
                    )));
                }
                Err(E::custom(format!(
                    "a duration needs a unit: write e.g. \"{x}s\" or \"{x}ms\""
                )))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `warmup`: a duration, or `"auto"` (detected from a pilot run by MSER-5).
#[derive(Clone, Copy, Debug)]
pub enum WarmupFile {
    Fixed(HumanDuration),
    Auto,
}

impl Default for WarmupFile {
    fn default() -> Self {
        WarmupFile::Fixed(HumanDuration::default())
    }
}

impl<'de> Deserialize<'de> for WarmupFile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        if value.as_str() == Some("auto") {
            return Ok(WarmupFile::Auto);
        }
        HumanDuration::deserialize(value)
            .map(WarmupFile::Fixed)
            .map_err(|error| {
                let message = error.to_string();
                serde::de::Error::custom(format!(
                    "{} (or \"auto\" to detect it)",
                    message.trim_end()
                ))
            })
    }
}

fn default_seed() -> u64 {
    1
}

fn default_replications() -> u32 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_seed")]
    pub seed: u64,
    pub duration: HumanDuration,
    #[serde(default)]
    pub warmup: WarmupFile,
    #[serde(default = "default_replications")]
    pub replications: u32,
    pub workload: WorkloadFile,
    #[serde(default)]
    pub client: ClientFile,
    #[serde(default)]
    pub network: NetworkFile,
    #[serde(default)]
    pub servers: ServersFile,
    #[serde(default)]
    pub balancer: BalancerFile,
    #[serde(default)]
    pub topology: Vec<TopologyFile>,
    /// Read separately, each `[[fault]]` by its `kind` ([`fault_file`]); named here so that it is
    /// a known key.
    #[serde(default, rename = "fault")]
    pub _fault: serde::de::IgnoredAny,
    pub autoscale: Option<AutoscaleFile>,
    /// Width of a timeseries.csv bucket.
    pub bucket: Option<HumanDuration>,
    #[serde(default)]
    pub cost: CostFile,
    #[serde(default)]
    pub expect: Vec<ExpectFile>,
    /// `[slo]`: `latency_p99_ms = { max = 200 }`, `sessions_lost = { equals = 0 }`.
    #[serde(default)]
    pub slo: std::collections::BTreeMap<String, SloFile>,
}

/// One service-level bound of `[slo]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloFile {
    pub max: Option<f64>,
    pub min: Option<f64>,
    pub equals: Option<f64>,
    #[serde(default)]
    pub confidence: bool,
}

/// An assertion for `statesim check`: `{ topology = "*", metric = "latency_p99_ms", max = 250 }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectFile {
    pub topology: String,
    pub metric: String,
    pub max: Option<f64>,
    pub min: Option<f64>,
    pub equals: Option<f64>,
    #[serde(default)]
    pub confidence: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadFile {
    pub sessions_per_second: Option<f64>,
    pub schedule: Option<Vec<SchedulePointFile>>,
    pub schedule_shape: Option<ScheduleShape>,
    pub diurnal: Option<DiurnalFile>,
    pub spike: Option<SpikeFile>,
    pub users: Option<u32>,
    pub between_sessions: Option<Value>,
    pub trace: Option<TraceFile>,
    pub requests_per_session: Option<Value>,
    pub think_time: Option<Value>,
    pub service_time: Value,
    pub request_bytes: Option<Value>,
    pub response_bytes: Option<Value>,
    pub on_session_lost: Option<OnSessionLost>,
    pub idempotent: Option<bool>,
}

/// One point of `workload.schedule`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulePointFile {
    pub at: HumanDuration,
    pub sessions_per_second: f64,
}

/// How `workload.schedule` goes from one point's rate to the next.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleShape {
    /// Linearly, from one point's rate to the next's.
    #[default]
    Linear,
    /// A point's rate holds until the next point.
    Step,
}

/// `workload.diurnal`: a day of traffic, a sinusoid between `trough` and `peak`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiurnalFile {
    pub trough: f64,
    pub peak: f64,
    pub peak_at: HumanDuration,
    pub period: Option<HumanDuration>,
}

/// `workload.trace`: a request log replayed session by session.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceFile {
    pub file: String,
    pub timestamp: Option<String>,
    pub session: Option<String>,
    pub service_time: Option<String>,
    pub request_bytes: Option<String>,
    pub response_bytes: Option<String>,
    pub timestamp_unit: Option<TimeUnit>,
    pub service_time_unit: Option<TimeUnit>,
    pub session_gap: Option<HumanDuration>,
}

/// The unit of a log's time column.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeUnit {
    S,
    Ms,
    Us,
}

impl TimeUnit {
    pub fn seconds(self) -> f64 {
        match self {
            TimeUnit::S => 1.0,
            TimeUnit::Ms => 1e-3,
            TimeUnit::Us => 1e-6,
        }
    }
}

/// `workload.spike`: a flash crowd, the rate times `factor` over `[at, at + duration)`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpikeFile {
    pub at: HumanDuration,
    pub duration: HumanDuration,
    pub factor: f64,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientFile {
    pub timeout: Option<HumanDuration>,
    pub max_attempts: Option<u32>,
    pub backoff: Option<BackoffFile>,
    pub retry_budget: Option<f64>,
    pub hedge_after: Option<HumanDuration>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackoffFile {
    pub kind: Option<BackoffKind>,
    pub base: Option<HumanDuration>,
    pub cap: Option<HumanDuration>,
    pub jitter: Option<Jitter>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoscaleFile {
    pub target_utilization: f64,
    pub sync_period: Option<HumanDuration>,
    pub scale_down_stabilization: Option<HumanDuration>,
    pub min: u32,
    pub max: u32,
    pub startup: Option<HumanDuration>,
    pub drain: Option<HumanDuration>,
}

/// `[cost]`: prices per server hour, store node hour and gigabyte of state traffic.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostFile {
    pub server_per_hour: Option<f64>,
    pub store_per_hour: Option<f64>,
    pub transfer_per_gb: Option<f64>,
    pub cross_zone_per_gb: Option<f64>,
}

#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkFile {
    pub client_balancer: Option<Value>,
    pub balancer_server: Option<Value>,
    pub server_store: Option<Value>,
    pub server_server: Option<Value>,
    pub cross_zone: Option<Value>,
}

#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServersFile {
    pub count: Option<u32>,
    pub workers: Option<u32>,
    pub queue_limit: Option<u32>,
    pub memory_mb: Option<f64>,
    pub on_memory_full: Option<MemoryFull>,
    /// A number of zones, or each server's zone.
    pub zones: Option<Value>,
}

#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalancerFile {
    pub policy: Option<Policy>,
    pub fallback: Option<Policy>,
    pub health_check: Option<HealthCheckFile>,
    pub retries: Option<u32>,
    pub redispatch: Option<bool>,
    pub retry_on: Option<Vec<RetryCondition>>,
    pub retry_pause: Option<HumanDuration>,
    pub server_timeout: Option<HumanDuration>,
    pub outlier: Option<OutlierFile>,
    pub zone_affinity: Option<bool>,
}

/// `balancer.outlier`: each key defaults to Envoy's (5 failures, 30 s, 10%).
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutlierFile {
    pub consecutive_failures: Option<u32>,
    pub ejection_time: Option<HumanDuration>,
    pub max_ejected_percent: Option<f64>,
}

#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckFile {
    pub interval: Option<HumanDuration>,
    pub unhealthy_threshold: Option<u32>,
    pub healthy_threshold: Option<u32>,
    pub timeout: Option<HumanDuration>,
}

#[derive(Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StateKind {
    None,
    Server,
    Store,
    Token,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologyFile {
    pub name: String,
    pub state: StateKind,
    pub session_bytes: Option<Value>,
    pub session_ttl: Option<HumanDuration>,
    pub replication: Option<ReplicationKind>,
    pub replicas: Option<u32>,
    pub replica_placement: Option<crate::scenario::ReplicaPlacement>,
    pub replication_lag: Option<HumanDuration>,
    pub write_fraction: Option<f64>,
    pub store: Option<StoreFile>,
    pub cache: Option<CacheFile>,
    pub token_bytes: Option<Value>,
    pub verify_time: Option<Value>,
    pub servers: Option<ServersFile>,
    pub balancer: Option<BalancerFile>,
    pub network: Option<NetworkFile>,
    pub cost: Option<CostFile>,
}

#[derive(Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ReplicationKind {
    None,
    Sync,
    Async,
    StoreBackup,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheFile {
    pub capacity: u32,
    pub ttl: Option<HumanDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreFile {
    pub shards: Option<u32>,
    pub hot_share: Option<f64>,
    pub workers: Option<u32>,
    pub nodes: Option<u32>,
    pub queue_limit: Option<u32>,
    pub read: Option<Value>,
    pub write: Option<Value>,
    pub write_fraction: Option<f64>,
}

/// The `kind` of a `[[fault]]`, read before the rest of its table.
#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    Crash,
    Hang,
    RandomCrashes,
    RollingRestart,
    Scale,
    StoreOutage,
    Slow,
    Pauses,
    Partition,
    ZoneOutage,
}

/// One `[[fault]]`, by kind. Each kind's keys are their own struct so that a problem inside the
/// table is reported at its key (`fault[0].restart_after`), which serde's internally tagged enums
/// cannot do.
pub enum FaultFile {
    Crash(ServerFaultFile),
    Hang(ServerFaultFile),
    RandomCrashes(RandomCrashesFile),
    RollingRestart(RollingRestartFile),
    Scale(ScaleFile),
    StoreOutage(StoreOutageFile),
    Slow(SlowFile),
    Pauses(PausesFile),
    Partition(PartitionFile),
    ZoneOutage(ZoneOutageFile),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneOutageFile {
    pub at: HumanDuration,
    pub zone: u32,
    pub duration: Option<HumanDuration>,
    pub store_failover: Option<HumanDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionFile {
    pub at: HumanDuration,
    pub server: u32,
    pub duration: Option<HumanDuration>,
    pub from: crate::scenario::PartitionSide,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowFile {
    pub at: HumanDuration,
    pub server: u32,
    pub duration: Option<HumanDuration>,
    pub factor: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PausesFile {
    pub at: Option<HumanDuration>,
    pub server: Option<u32>,
    pub duration: Option<HumanDuration>,
    pub every: HumanDuration,
    pub pause: HumanDuration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFaultFile {
    pub at: HumanDuration,
    pub server: u32,
    pub restart_after: Option<HumanDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomCrashesFile {
    pub mtbf: Value,
    pub mttr: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollingRestartFile {
    pub at: HumanDuration,
    pub batch: Option<u32>,
    pub interval: HumanDuration,
    pub drain: Option<HumanDuration>,
    pub startup: Option<HumanDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleFile {
    pub at: HumanDuration,
    pub count: u32,
    pub drain: Option<HumanDuration>,
    pub startup: Option<HumanDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreOutageFile {
    pub at: HumanDuration,
    pub duration: HumanDuration,
    pub failover: Option<HumanDuration>,
    #[serde(default)]
    pub wipes: bool,
    pub shard: Option<u32>,
}

/// At most this many schema problems are reported from one file (each needs a pass of serde).
const MAX_SCHEMA_PROBLEMS: usize = 50;

/// Deserializes `table` (found at key path `prefix`) into `T`, reporting every problem serde
/// finds rather than the first: after each one the offending value is removed and serde runs
/// again, until it succeeds, a problem cannot be removed (a missing key), or
/// [`MAX_SCHEMA_PROBLEMS`] are found. A missing key that only a removal caused is not reported.
pub fn from_table<T: DeserializeOwned>(mut table: Table, prefix: &str) -> Result<T, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut removed: Vec<String> = Vec::new();
    while problems.len() < MAX_SCHEMA_PROBLEMS {
        let error = match serde_path_to_error::deserialize(Value::Table(table.clone())) {
            Ok(value) if problems.is_empty() => return Ok(value),
            Ok(_) => break,
            Err(error) => error,
        };
        let path = error.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let message = error.inner().message().trim_end().to_string();
        if let Some(field) = missing_field(&message) {
            let full = join_key(&path, field);
            if !removed.contains(&full) {
                problems.push(Problem::new(join_key(prefix, &path), message));
            }
            break;
        }
        problems.push(Problem::new(join_key(prefix, &path), explain(&message)));
        if path.is_empty() || !remove_key(&mut table, &path) {
            break;
        }
        removed.push(path);
    }
    Err(problems)
}

/// One `[[fault]]` table at `path`: its `kind`, then that kind's keys.
pub fn fault_file(value: &Value, path: &str) -> Result<FaultFile, Vec<Problem>> {
    let Value::Table(table) = value else {
        return Err(vec![Problem::new(
            path,
            format!("expected a table ([[fault]]), found {}", value.type_str()),
        )]);
    };
    let mut table = table.clone();
    let Some(kind) = table.remove("kind") else {
        return Err(vec![Problem::new(
            path,
            "a fault needs a `kind`: crash, hang, random_crashes, rolling_restart, scale, \
             store_outage, slow, pauses or partition",
        )]);
    };
    let kind: FaultKind = FaultKind::deserialize(kind).map_err(|error| {
        vec![Problem::new(
            format!("{path}.kind"),
            explain(error.message().trim_end()),
        )]
    })?;
    Ok(match kind {
        FaultKind::Crash => FaultFile::Crash(from_table(table, path)?),
        FaultKind::Hang => FaultFile::Hang(from_table(table, path)?),
        FaultKind::RandomCrashes => FaultFile::RandomCrashes(from_table(table, path)?),
        FaultKind::RollingRestart => FaultFile::RollingRestart(from_table(table, path)?),
        FaultKind::Scale => FaultFile::Scale(from_table(table, path)?),
        FaultKind::StoreOutage => FaultFile::StoreOutage(from_table(table, path)?),
        FaultKind::Slow => FaultFile::Slow(from_table(table, path)?),
        FaultKind::Pauses => FaultFile::Pauses(from_table(table, path)?),
        FaultKind::Partition => FaultFile::Partition(from_table(table, path)?),
        FaultKind::ZoneOutage => FaultFile::ZoneOutage(from_table(table, path)?),
    })
}

fn join_key(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path.is_empty()) {
        (true, _) => path.to_string(),
        (false, true) => prefix.to_string(),
        (false, false) => format!("{prefix}.{path}"),
    }
}

/// The field of serde's "missing field `x`".
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// Removes the value at a serde key path (`topology[1].balancer.policy`). Only a key of a table
/// is removed: taking an element out of an array would shift the indices of later problems.
fn remove_key(table: &mut Table, path: &str) -> bool {
    let Some((parent, key)) = path.rsplit_once('.').map_or(Some(("", path)), Some) else {
        return false;
    };
    if key.contains('[') {
        return false;
    }
    let mut current = table;
    for part in parent.split('.').filter(|p| !p.is_empty()) {
        let (name, indices) = match part.find('[') {
            Some(open) => (&part[..open], &part[open..]),
            None => (part, ""),
        };
        let Some(mut value) = current.get_mut(name) else {
            return false;
        };
        for index in indices.split('[').filter(|i| !i.is_empty()) {
            let Ok(index) = index.trim_end_matches(']').parse::<usize>() else {
                return false;
            };
            let Some(element) = value.as_array_mut().and_then(|array| array.get_mut(index)) else {
                return false;
            };
            value = element;
        }
        let Value::Table(inner) = value else {
            return false;
        };
        current = inner;
    }
    current.remove(key).is_some()
}

/// serde's message for an unknown key or variant, with "did you mean" for a near miss:
/// "unknown field `cuont` (did you mean `count`?), expected one of `count`, `workers`, …".
pub fn explain(message: &str) -> String {
    let unknown = ["unknown field `", "unknown variant `"]
        .iter()
        .find_map(|head| message.strip_prefix(head).map(|rest| (head, rest)));
    let Some((head, rest)) = unknown else {
        return message.to_string();
    };
    let Some((word, expected)) = rest.split_once('`') else {
        return message.to_string();
    };
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    match crate::text::closest(word, candidates) {
        Some(candidate) => format!("{head}{word}` (did you mean `{candidate}`?){expected}"),
        None => message.to_string(),
    }
}
