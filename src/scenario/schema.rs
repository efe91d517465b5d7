//! The scenario file as written: serde types with every key optional where a default exists.
//! Distributions stay raw `toml::Value`s here; `resolve` parses them with their key path in hand.

use super::units::parse_duration;
use super::{BackoffKind, Jitter, MemoryFull, OnSessionLost, Policy};
use crate::engine::SimTime;
use serde::{Deserialize, Deserializer};
use toml::Value;

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
    #[serde(default)]
    pub fault: Vec<FaultFile>,
    pub autoscale: Option<AutoscaleFile>,
    /// Width of a timeseries.csv bucket.
    pub bucket: Option<HumanDuration>,
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
    pub sessions_per_second: f64,
    pub requests_per_session: Option<Value>,
    pub think_time: Option<Value>,
    pub service_time: Value,
    pub request_bytes: Option<Value>,
    pub response_bytes: Option<Value>,
    pub on_session_lost: Option<OnSessionLost>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientFile {
    pub timeout: Option<HumanDuration>,
    pub max_attempts: Option<u32>,
    pub backoff: Option<BackoffFile>,
    pub retry_budget: Option<f64>,
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

#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkFile {
    pub client_balancer: Option<Value>,
    pub balancer_server: Option<Value>,
    pub server_store: Option<Value>,
    pub server_server: Option<Value>,
}

#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServersFile {
    pub count: Option<u32>,
    pub workers: Option<u32>,
    pub queue_limit: Option<u32>,
    pub memory_mb: Option<f64>,
    pub on_memory_full: Option<MemoryFull>,
}

#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalancerFile {
    pub policy: Option<Policy>,
    pub fallback: Option<Policy>,
    pub health_check: Option<HealthCheckFile>,
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
    pub replication_lag: Option<HumanDuration>,
    pub write_fraction: Option<f64>,
    pub store: Option<StoreFile>,
    pub cache: Option<CacheFile>,
    pub token_bytes: Option<Value>,
    pub verify_time: Option<Value>,
    pub servers: Option<ServersFile>,
    pub balancer: Option<BalancerFile>,
    pub network: Option<NetworkFile>,
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
    pub workers: Option<u32>,
    pub queue_limit: Option<u32>,
    pub read: Option<Value>,
    pub write: Option<Value>,
    pub write_fraction: Option<f64>,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultFile {
    Crash {
        at: HumanDuration,
        server: u32,
        restart_after: Option<HumanDuration>,
    },
    Hang {
        at: HumanDuration,
        server: u32,
        restart_after: Option<HumanDuration>,
    },
    RandomCrashes {
        mtbf: Value,
        mttr: Value,
    },
    RollingRestart {
        at: HumanDuration,
        batch: Option<u32>,
        interval: HumanDuration,
        drain: Option<HumanDuration>,
        startup: Option<HumanDuration>,
    },
    Scale {
        at: HumanDuration,
        count: u32,
        drain: Option<HumanDuration>,
        startup: Option<HumanDuration>,
    },
    StoreOutage {
        at: HumanDuration,
        duration: HumanDuration,
        failover: Option<HumanDuration>,
        #[serde(default)]
        wipes: bool,
    },
}
