//! From the file schema to a validated [`Scenario`]: defaults, range checks and cross-field rules.
//! Problems are collected, not returned at the first one, so a user fixes a file in one pass.

use super::dist::{DistContext, parse_dist, parse_scalar};
use super::schema::*;
use super::*;
use crate::engine::SimTime;
use crate::metrics::{METRICS, metric_index};
use std::path::Path;
use toml::Value;

/// Kubernetes readiness-probe defaults: period 10 s, failureThreshold 3, successThreshold 1
/// (kubernetes/kubernetes pkg/apis/core/v1/defaults.go, SetDefaults_Probe).
const DEFAULT_HEALTH_CHECK: HealthCheck = HealthCheck {
    interval: SimTime::from_secs(10),
    unhealthy_threshold: 3,
    healthy_threshold: 1,
    timeout: SimTime::from_secs(1),
};
/// AWS SDKs' standard retry mode: base delay 100 ms, at most 20 s, full jitter.
const DEFAULT_BACKOFF_BASE: SimTime = SimTime::from_millis(100);
const DEFAULT_BACKOFF_CAP: SimTime = SimTime::from_secs(20);
/// Kubernetes terminationGracePeriodSeconds default: 30 s between SIGTERM and SIGKILL.
const DEFAULT_DRAIN: SimTime = SimTime::from_secs(30);
/// Kubernetes HPA: sync period 15 s, scale-down stabilization window 5 minutes.
const DEFAULT_AUTOSCALE_SYNC: SimTime = SimTime::from_secs(15);
const DEFAULT_SCALE_DOWN_STABILIZATION: SimTime = SimTime::from_secs(300);
/// Assumption: an async replica is typically ~100 ms behind its primary.
const DEFAULT_REPLICATION_LAG: SimTime = SimTime::from_millis(100);
/// Assumption: a cached session is trusted for 5 minutes.
const DEFAULT_CACHE_TTL: SimTime = SimTime::from_secs(300);
/// At most this many timeseries.csv rows per run (the series is kept in memory until the end, at
/// about 140 bytes a row).
const MAX_BUCKETS: u64 = 1_000_000;
/// "≤10 KB" typical session state (IBM guidance, see shared research notes).
const DEFAULT_SESSION_BYTES: f64 = 10_000.0;
/// RS256 JWT of a modest payload ≈ 535 bytes.
const DEFAULT_TOKEN_BYTES: f64 = 550.0;
/// RS256 verify in Node.js ≈ 61 µs.
const DEFAULT_VERIFY_NS: f64 = 60_000.0;
/// One Redis node serves ≈75k ops/s unpipelined: ≈13 µs of store time per operation.
const DEFAULT_STORE_OP_NS: f64 = 13_000.0;

struct Resolver<'a> {
    problems: Vec<Problem>,
    context: DistContext<'a>,
}

impl Resolver<'_> {
    fn dist(
        &mut self,
        value: Option<&Value>,
        quantity: Quantity,
        path: &str,
        default: Dist,
    ) -> Dist {
        match value {
            None => default,
            Some(value) => match parse_dist(value, quantity, path, &self.context) {
                Ok(dist) => dist,
                Err(problem) => {
                    self.problems.push(problem);
                    default
                }
            },
        }
    }

    fn bytes(&mut self, value: Option<&Value>, path: &str, default: f64) -> f64 {
        match value.map(|value| parse_scalar(value, Quantity::Bytes, path)) {
            None => default,
            Some(Ok(bytes)) => bytes,
            Some(Err(problem)) => {
                self.problems.push(problem);
                default
            }
        }
    }

    fn check(&mut self, ok: bool, path: impl Into<String>, message: impl Into<String>) {
        if !ok {
            self.problems.push(Problem::new(path, message));
        }
    }

    fn servers(
        &mut self,
        global: &ServersFile,
        local: Option<&ServersFile>,
        path: &str,
    ) -> Servers {
        let local = local.cloned().unwrap_or_default();
        let servers = Servers {
            count: local.count.or(global.count).unwrap_or(1),
            workers: local.workers.or(global.workers).unwrap_or(1),
            queue_limit: local.queue_limit.or(global.queue_limit),
            memory_mb: local.memory_mb.or(global.memory_mb),
            on_memory_full: local
                .on_memory_full
                .or(global.on_memory_full)
                .unwrap_or(MemoryFull::EvictLru),
        };
        let origin = |key: &str, set_locally: bool| merged_key(path, "servers", key, set_locally);
        self.check(
            servers.count >= 1,
            origin("count", local.count.is_some()),
            "a topology needs at least one server",
        );
        self.check(
            servers.count <= 100_000,
            origin("count", local.count.is_some()),
            "at most 100000 servers are supported",
        );
        self.check(
            servers.workers >= 1,
            origin("workers", local.workers.is_some()),
            "a server needs at least one worker",
        );
        if let Some(memory) = servers.memory_mb {
            self.check(
                memory.is_finite() && memory > 0.0,
                origin("memory_mb", local.memory_mb.is_some()),
                format!("must be a positive number of megabytes, got {memory}"),
            );
        }
        servers
    }

    fn balancer(
        &mut self,
        global: &BalancerFile,
        local: Option<&BalancerFile>,
        path: &str,
    ) -> Balancer {
        let local = local.cloned().unwrap_or_default();
        let global_check = global.health_check.clone().unwrap_or_default();
        let local_check = local.health_check.clone().unwrap_or_default();
        let health_check = HealthCheck {
            interval: local_check
                .interval
                .or(global_check.interval)
                .map_or(DEFAULT_HEALTH_CHECK.interval, |d| d.0),
            unhealthy_threshold: local_check
                .unhealthy_threshold
                .or(global_check.unhealthy_threshold)
                .unwrap_or(DEFAULT_HEALTH_CHECK.unhealthy_threshold),
            healthy_threshold: local_check
                .healthy_threshold
                .or(global_check.healthy_threshold)
                .unwrap_or(DEFAULT_HEALTH_CHECK.healthy_threshold),
            timeout: local_check
                .timeout
                .or(global_check.timeout)
                .map_or(DEFAULT_HEALTH_CHECK.timeout, |d| d.0),
        };
        let balancer = Balancer {
            policy: local.policy.or(global.policy).unwrap_or(Policy::RoundRobin),
            fallback: local
                .fallback
                .or(global.fallback)
                .unwrap_or(Policy::LeastConnections),
            health_check,
        };
        let origin = |key: &str, set_locally: bool| merged_key(path, "balancer", key, set_locally);
        self.check(
            balancer.fallback != Policy::Sticky,
            origin("fallback", local.fallback.is_some()),
            "the fallback places a session's first request, so it cannot itself be sticky",
        );
        self.check(
            balancer.health_check.interval > SimTime::ZERO,
            origin("health_check.interval", local_check.interval.is_some()),
            "the health-check interval must be greater than zero",
        );
        self.check(
            balancer.health_check.timeout > SimTime::ZERO,
            origin("health_check.timeout", local_check.timeout.is_some()),
            "the probe timeout must be greater than zero",
        );
        self.check(
            balancer.health_check.unhealthy_threshold >= 1,
            origin(
                "health_check.unhealthy_threshold",
                local_check.unhealthy_threshold.is_some(),
            ),
            "must be at least 1",
        );
        self.check(
            balancer.health_check.healthy_threshold >= 1,
            origin(
                "health_check.healthy_threshold",
                local_check.healthy_threshold.is_some(),
            ),
            "must be at least 1",
        );
        balancer
    }

    /// Each hop's latency: the topology's own value, else the scenario's, else zero.
    fn network(
        &mut self,
        global: &NetworkFile,
        local: Option<&NetworkFile>,
        path: &str,
    ) -> Network {
        let local = local.cloned().unwrap_or_default();
        let mut hop = |local: &Option<Value>, global: &Option<Value>, key: &str| {
            let origin = merged_key(path, "network", key, local.is_some());
            let value = local.as_ref().or(global.as_ref());
            self.dist(value, Quantity::Time, &origin, Dist::zero())
        };
        Network {
            client_balancer: hop(
                &local.client_balancer,
                &global.client_balancer,
                "client_balancer",
            ),
            balancer_server: hop(
                &local.balancer_server,
                &global.balancer_server,
                "balancer_server",
            ),
            server_store: hop(&local.server_store, &global.server_store, "server_store"),
            server_server: hop(&local.server_server, &global.server_server, "server_server"),
        }
    }

    fn state(&mut self, topology: &TopologyFile, path: &str) -> State {
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

    fn replication(&mut self, topology: &TopologyFile, path: &str) -> Replication {
        match topology.replication.unwrap_or(ReplicationKind::None) {
            ReplicationKind::None => Replication::None,
            ReplicationKind::Sync => {
                let peers = topology.replicas.unwrap_or(1);
                self.check(
                    peers >= 1,
                    format!("{path}.replicas"),
                    "sync replication needs at least one replica",
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

    fn fraction(&mut self, value: Option<f64>, path: &str) -> f64 {
        let fraction = value.unwrap_or(1.0);
        self.check(
            (0.0..=1.0).contains(&fraction),
            path,
            format!("must be a fraction between 0 and 1, got {fraction}"),
        );
        fraction
    }

    fn store(&mut self, file: Option<&StoreFile>, path: &str) -> Store {
        let empty = StoreFile {
            workers: None,
            queue_limit: None,
            read: None,
            write: None,
            write_fraction: None,
        };
        let file = file.unwrap_or(&empty);
        let store = Store {
            workers: file.workers.unwrap_or(1),
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

/// The key path a merged setting came from: the topology's override (`topology[1].servers.count`)
/// or the scenario-wide value (`servers.count`).
fn merged_key(topology_path: &str, section: &str, key: &str, set_locally: bool) -> String {
    if set_locally {
        format!("{topology_path}.{section}.{key}")
    } else {
        format!("{section}.{key}")
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

pub fn resolve(raw: ScenarioFile, base_dir: &Path) -> Result<Scenario, Vec<Problem>> {
    let mut r = Resolver {
        problems: Vec::new(),
        context: DistContext { base_dir },
    };
    r.check(
        !raw.name.trim().is_empty(),
        "name",
        "the scenario needs a name",
    );
    r.check(
        raw.duration.0 > SimTime::ZERO,
        "duration",
        "must be greater than zero",
    );
    let (warmup, warmup_auto) = match raw.warmup {
        WarmupFile::Fixed(warmup) => (warmup.0, false),
        WarmupFile::Auto => (SimTime::ZERO, true),
    };
    r.check(
        warmup < raw.duration.0,
        "warmup",
        format!(
            "the warm-up ({}) must end before the run does (duration = {})",
            units::format_duration(warmup),
            units::format_duration(raw.duration.0)
        ),
    );
    r.check(
        (1..=100_000).contains(&raw.replications),
        "replications",
        "must be between 1 and 100000",
    );

    let w = &raw.workload;
    r.check(
        w.sessions_per_second.is_finite() && w.sessions_per_second > 0.0,
        "workload.sessions_per_second",
        format!(
            "must be a positive, finite rate, got {}",
            w.sessions_per_second
        ),
    );
    // Above this the mean gap between arrivals is under 10 ns, below the clock's useful resolution.
    r.check(
        w.sessions_per_second <= 1e8,
        "workload.sessions_per_second",
        "at most 100000000 sessions per second are supported",
    );
    let workload = Workload {
        sessions_per_second: w.sessions_per_second,
        requests_per_session: r.dist(
            w.requests_per_session.as_ref(),
            Quantity::Count,
            "workload.requests_per_session",
            Dist::constant(1.0),
        ),
        think_time: r.dist(
            w.think_time.as_ref(),
            Quantity::Time,
            "workload.think_time",
            Dist::zero(),
        ),
        service_time: r.dist(
            Some(&w.service_time),
            Quantity::Time,
            "workload.service_time",
            Dist::zero(),
        ),
        request_bytes: r.dist(
            w.request_bytes.as_ref(),
            Quantity::Bytes,
            "workload.request_bytes",
            Dist::zero(),
        ),
        response_bytes: r.dist(
            w.response_bytes.as_ref(),
            Quantity::Bytes,
            "workload.response_bytes",
            Dist::zero(),
        ),
        on_session_lost: w.on_session_lost.unwrap_or(OnSessionLost::Abandon),
    };

    let client = r.client(&raw.client);

    r.check(
        !raw.topology.is_empty(),
        "topology",
        "the scenario needs at least one [[topology]]",
    );
    let mut topologies: Vec<Topology> = Vec::new();
    for (index, file) in raw.topology.iter().enumerate() {
        let path = format!("topology[{index}]");
        r.check(
            !file.name.trim().is_empty(),
            format!("{path}.name"),
            "a topology needs a name",
        );
        r.check(
            !topologies.iter().any(|t| t.name == file.name),
            format!("{path}.name"),
            format!("topology name \"{}\" is used twice", file.name),
        );
        let state = r.state(file, &path);
        let servers = r.servers(&raw.servers, file.servers.as_ref(), &path);
        let balancer = r.balancer(&raw.balancer, file.balancer.as_ref(), &path);
        let network = r.network(&raw.network, file.network.as_ref(), &path);
        if let State::Server {
            replication: Replication::Sync { peers },
            ..
        } = &state
        {
            r.check(
                *peers < servers.count,
                format!("{path}.replicas"),
                format!(
                    "{peers} replicas need at least {} servers, and the topology has {}",
                    peers + 1,
                    servers.count
                ),
            );
        }
        topologies.push(Topology {
            name: file.name.clone(),
            state,
            servers,
            balancer,
            network,
        });
    }

    let faults = raw
        .fault
        .iter()
        .enumerate()
        .map(|(index, file)| r.fault(file, &format!("fault[{index}]"), &raw, &topologies))
        .collect();
    let autoscale = raw
        .autoscale
        .as_ref()
        .map(|file| r.autoscale(file, &topologies));
    let bucket = raw.bucket.map_or(SimTime::from_secs(1), |d| d.0);
    r.check(
        bucket > SimTime::ZERO,
        "bucket",
        "the timeseries bucket must be longer than zero",
    );
    if bucket > SimTime::ZERO {
        let buckets = raw.duration.0.nanos() / bucket.nanos();
        r.check(
            buckets <= MAX_BUCKETS,
            "bucket",
            format!(
                "{buckets} buckets of {} in a run of {}: at most {MAX_BUCKETS} are kept; choose a wider bucket",
                units::format_duration(bucket),
                units::format_duration(raw.duration.0)
            ),
        );
    }

    let expectations = raw
        .expect
        .iter()
        .enumerate()
        .map(|(index, file)| r.expectation(file, &format!("expect[{index}]"), &topologies))
        .collect();
    let slo = raw
        .slo
        .iter()
        .map(|(metric, bound)| {
            let as_expectation = ExpectFile {
                topology: "*".into(),
                metric: metric.clone(),
                max: bound.max,
                min: bound.min,
                equals: bound.equals,
                confidence: bound.confidence,
            };
            let path = format!("slo.{metric}");
            r.expectation_at(&as_expectation, &path, &path, &topologies)
        })
        .collect();

    if !r.problems.is_empty() {
        // A shared value is resolved once per topology; report each problem once.
        let mut seen = Vec::new();
        r.problems.retain(|problem| {
            let new = !seen.contains(problem);
            if new {
                seen.push(problem.clone());
            }
            new
        });
        return Err(r.problems);
    }
    let warnings = warnings(&topologies);
    Ok(Scenario {
        name: raw.name,
        description: raw.description,
        seed: raw.seed,
        duration: raw.duration.0,
        warmup,
        warmup_auto,
        replications: raw.replications,
        workload,
        client,
        topologies,
        faults,
        autoscale,
        bucket,
        expectations,
        slo,
        warnings,
        source_hash: 0, // set by the loader, which has the text
    })
}

impl Resolver<'_> {
    fn client(&mut self, file: &ClientFile) -> Client {
        let backoff = file.backoff.as_ref();
        let client = Client {
            timeout: file.timeout.map(|d| d.0),
            max_attempts: file.max_attempts.unwrap_or(1),
            backoff: Backoff {
                kind: backoff
                    .and_then(|b| b.kind)
                    .unwrap_or(BackoffKind::Exponential),
                base: backoff
                    .and_then(|b| b.base)
                    .map_or(DEFAULT_BACKOFF_BASE, |d| d.0),
                cap: backoff
                    .and_then(|b| b.cap)
                    .map_or(DEFAULT_BACKOFF_CAP, |d| d.0),
                jitter: backoff.and_then(|b| b.jitter).unwrap_or(Jitter::Full),
            },
            retry_budget: file.retry_budget,
        };
        self.check(
            client.timeout != Some(SimTime::ZERO),
            "client.timeout",
            "must be greater than zero (leave it out for no timeout)",
        );
        self.check(
            (1..=100).contains(&client.max_attempts),
            "client.max_attempts",
            format!(
                "must be between 1 (no retries) and 100, got {}",
                client.max_attempts
            ),
        );
        self.check(
            client.backoff.cap >= client.backoff.base,
            "client.backoff.cap",
            "the cap must be at least the base delay",
        );
        if let Some(budget) = client.retry_budget {
            self.check(
                budget.is_finite() && budget >= 0.0,
                "client.retry_budget",
                format!("must be a non-negative fraction of requests, got {budget}"),
            );
        }
        client
    }

    fn fault_time(&mut self, at: SimTime, path: &str, duration: SimTime) {
        self.check(
            at < duration,
            format!("{path}.at"),
            format!(
                "the fault at {} would happen after the run ends ({})",
                units::format_duration(at),
                units::format_duration(duration)
            ),
        );
    }

    fn fault_server(&mut self, server: u32, path: &str, topologies: &[Topology]) {
        if let Some(topology) = topologies.iter().find(|t| server >= t.servers.count) {
            self.problems.push(Problem::new(
                format!("{path}.server"),
                format!(
                    "server index {server} is out of range: topology \"{}\" has {} servers (indices 0..{})",
                    topology.name,
                    topology.servers.count,
                    topology.servers.count.saturating_sub(1)
                ),
            ));
        }
    }

    fn fault(
        &mut self,
        file: &FaultFile,
        path: &str,
        raw: &ScenarioFile,
        topologies: &[Topology],
    ) -> Fault {
        let duration = raw.duration.0;
        match file {
            FaultFile::Crash {
                at,
                server,
                restart_after,
            }
            | FaultFile::Hang {
                at,
                server,
                restart_after,
            } => {
                self.fault_time(at.0, path, duration);
                self.fault_server(*server, path, topologies);
                let (at, server, restart_after) = (at.0, *server, restart_after.map(|d| d.0));
                if matches!(file, FaultFile::Crash { .. }) {
                    return Fault::Crash {
                        at,
                        server,
                        restart_after,
                    };
                }
                self.check(
                    raw.client.timeout.is_some(),
                    format!("{path}.kind"),
                    "clients learn of a hung server only through their timeout: set client.timeout",
                );
                Fault::Hang {
                    at,
                    server,
                    restart_after,
                }
            }
            FaultFile::RandomCrashes { mtbf, mttr } => {
                // A plain duration is the mean of an exponential time to failure (a constant
                // rate of failure); a table names any other family.
                let mtbf_value = match mtbf {
                    Value::String(_) => {
                        let mut table = toml::Table::new();
                        table.insert("dist".into(), Value::String("exponential".into()));
                        table.insert("mean".into(), mtbf.clone());
                        Value::Table(table)
                    }
                    other => other.clone(),
                };
                let mtbf_path = format!("{path}.mtbf");
                let mtbf = self.dist(Some(&mtbf_value), Quantity::Time, &mtbf_path, Dist::zero());
                let mttr = self.dist(
                    Some(mttr),
                    Quantity::Time,
                    &format!("{path}.mttr"),
                    Dist::zero(),
                );
                // A failure every few microseconds would flood the run with events.
                self.check(
                    mtbf.mean().is_some_and(|mean| mean >= 1e6),
                    mtbf_path,
                    "the mean time between failures must be at least 1ms",
                );
                Fault::RandomCrashes { mtbf, mttr }
            }
            FaultFile::RollingRestart {
                at,
                batch,
                interval,
                drain,
                startup,
            } => {
                self.fault_time(at.0, path, duration);
                let batch = batch.unwrap_or(1);
                self.check(batch >= 1, format!("{path}.batch"), "must be at least 1");
                self.check(
                    interval.0 > SimTime::ZERO,
                    format!("{path}.interval"),
                    "must be greater than zero",
                );
                Fault::RollingRestart {
                    at: at.0,
                    batch,
                    interval: interval.0,
                    drain: drain.map_or(DEFAULT_DRAIN, |d| d.0),
                    startup: startup.map_or(SimTime::ZERO, |d| d.0),
                }
            }
            FaultFile::Scale {
                at,
                count,
                drain,
                startup,
            } => {
                self.fault_time(at.0, path, duration);
                self.check(
                    (1..=100_000).contains(count),
                    format!("{path}.count"),
                    "a fleet has between 1 and 100000 servers",
                );
                Fault::Scale {
                    at: at.0,
                    count: *count,
                    drain: drain.map_or(DEFAULT_DRAIN, |d| d.0),
                    startup: startup.map_or(SimTime::ZERO, |d| d.0),
                }
            }
            FaultFile::StoreOutage {
                at,
                duration: outage,
                failover,
                wipes,
            } => {
                self.fault_time(at.0, path, duration);
                self.check(
                    outage.0 > SimTime::ZERO,
                    format!("{path}.duration"),
                    "must be greater than zero",
                );
                if let Some(failover) = failover {
                    self.check(
                        failover.0 <= outage.0,
                        format!("{path}.failover"),
                        "a failover after the outage ended would never happen: make it at most the duration",
                    );
                }
                Fault::StoreOutage {
                    at: at.0,
                    duration: outage.0,
                    failover: failover.map(|d| d.0),
                    wipes: *wipes,
                }
            }
        }
    }

    fn autoscale(&mut self, file: &AutoscaleFile, topologies: &[Topology]) -> Autoscale {
        let autoscale = Autoscale {
            target_utilization: file.target_utilization,
            sync_period: file.sync_period.map_or(DEFAULT_AUTOSCALE_SYNC, |d| d.0),
            scale_down_stabilization: file
                .scale_down_stabilization
                .map_or(DEFAULT_SCALE_DOWN_STABILIZATION, |d| d.0),
            min: file.min,
            max: file.max,
            startup: file.startup.map_or(SimTime::ZERO, |d| d.0),
            drain: file.drain.map_or(DEFAULT_DRAIN, |d| d.0),
        };
        self.check(
            autoscale.target_utilization > 0.0 && autoscale.target_utilization <= 1.0,
            "autoscale.target_utilization",
            format!(
                "must be a utilisation in (0, 1], got {}",
                autoscale.target_utilization
            ),
        );
        self.check(
            autoscale.sync_period > SimTime::ZERO,
            "autoscale.sync_period",
            "must be greater than zero",
        );
        self.check(autoscale.min >= 1, "autoscale.min", "must be at least 1");
        self.check(
            autoscale.max >= autoscale.min && autoscale.max <= 100_000,
            "autoscale.max",
            "must be at least min and at most 100000",
        );
        for topology in topologies {
            let count = topology.servers.count;
            if count < autoscale.min || count > autoscale.max {
                self.problems.push(Problem::new(
                    "autoscale",
                    format!(
                        "topology \"{}\" starts with {count} servers, outside min..=max ({}..={})",
                        topology.name, autoscale.min, autoscale.max
                    ),
                ));
            }
        }
        autoscale
    }

    fn expectation(
        &mut self,
        file: &ExpectFile,
        path: &str,
        topologies: &[Topology],
    ) -> Expectation {
        self.expectation_at(file, &format!("{path}.metric"), path, topologies)
    }

    /// `metric_path`: where the metric's name was written (a key of `[slo]`, or `metric`).
    fn expectation_at(
        &mut self,
        file: &ExpectFile,
        metric_path: &str,
        path: &str,
        topologies: &[Topology],
    ) -> Expectation {
        let every = file.topology == "*";
        if !every && !topologies.iter().any(|t| t.name == file.topology) {
            let names: Vec<&str> = topologies.iter().map(|t| t.name.as_str()).collect();
            self.problems.push(Problem::new(
                format!("{path}.topology"),
                format!(
                    "no topology is named \"{}\": expected \"*\" or one of {}",
                    file.topology,
                    names.join(", ")
                ),
            ));
        }
        if metric_index(&file.metric).is_none() {
            self.problems.push(Problem::new(
                metric_path.to_string(),
                format!(
                    "\"{}\" is not a summary.csv figure: expected one of {}",
                    file.metric,
                    METRICS
                        .iter()
                        .map(|m| m.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        self.check(
            file.min.is_some() || file.max.is_some() || file.equals.is_some(),
            path.to_string(),
            "an expectation needs at least one of min, max or equals",
        );
        if let (Some(min), Some(max)) = (file.min, file.max) {
            self.check(
                min <= max,
                format!("{path}.max"),
                "max must be at least min",
            );
        }
        self.check(
            !file.confidence || file.min.is_some() || file.max.is_some(),
            format!("{path}.confidence"),
            "confidence applies to min and max (an interval cannot equal a value)",
        );
        Expectation {
            topology: (!every).then(|| file.topology.clone()),
            metric: file.metric.clone(),
            min: file.min,
            max: file.max,
            equals: file.equals,
            confidence: file.confidence,
        }
    }
}

fn warnings(topologies: &[Topology]) -> Vec<String> {
    topologies
        .iter()
        .filter(|t| {
            matches!(t.state, State::Server { .. })
                && !matches!(t.balancer.policy, Policy::Sticky | Policy::ConsistentHash)
        })
        .map(|t| {
            format!(
                "topology \"{}\" keeps state on the server but routes with {}: every request that \
                 lands away from the session's home loses the session (use policy = \"sticky\")",
                t.name,
                t.balancer.policy.name()
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::scenario::{ScenarioError, load_str};
    use std::path::Path;

    const BASE: &str = r#"name = "t"
duration = "10s"
[workload]
sessions_per_second = 10
service_time = "5ms"
[network]
balancer_server = "100us"
[[topology]]
name = "a"
state = "none"
[[topology]]
name = "b"
state = "none"
network = { balancer_server = "2ms", server_store = "1ms" }
"#;

    #[test]
    fn a_topology_overrides_network_hops_it_names_and_inherits_the_rest() {
        let scenario = load_str(BASE, "t.toml", Path::new("."), &[]).unwrap();
        let hop = |t: usize| scenario.topologies[t].network.balancer_server.as_constant();
        assert_eq!(hop(0), Some(100e3));
        assert_eq!(hop(1), Some(2e6));
        let store_hop = |t: usize| scenario.topologies[t].network.server_store.as_constant();
        assert_eq!(store_hop(0), Some(0.0));
        assert_eq!(store_hop(1), Some(1e6));
    }

    #[test]
    fn a_bad_shared_value_is_reported_once_not_once_per_topology() {
        let text = BASE.replace(
            "balancer_server = \"100us\"",
            "balancer_server = \"100 parsecs\"",
        );
        let Err(ScenarioError::Invalid(diagnostics)) =
            load_str(&text, "t.toml", Path::new("."), &[])
        else {
            panic!("the bad duration must be rejected");
        };
        assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
        assert_eq!(diagnostics[0].key, "network.balancer_server");
    }
}
