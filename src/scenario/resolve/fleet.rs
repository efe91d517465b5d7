//! The fleet sections: `[servers]`, `[balancer]` and `[network]`, each merged from a topology's
//! override over the scenario-wide value.

use super::Resolver;
use crate::engine::SimTime;
use crate::scenario::schema::*;
use crate::scenario::*;
use toml::Value;

/// Kubernetes readiness-probe defaults: period 10 s, failureThreshold 3, successThreshold 1
/// (kubernetes/kubernetes pkg/apis/core/v1/defaults.go, SetDefaults_Probe).
const DEFAULT_HEALTH_CHECK: HealthCheck = HealthCheck {
    interval: SimTime::from_secs(10),
    unhealthy_threshold: 3,
    healthy_threshold: 1,
    timeout: SimTime::from_secs(1),
};

/// Prices of one major cloud by default (AWS us-east-1 on-demand list prices, as published in
/// 2024; replace them with your own): an m6i.large server (2 vCPU, 8 GiB) at $0.096 an hour, an
/// ElastiCache cache.m6g.large Redis node at $0.149 an hour, and traffic between availability
/// zones at $0.01 per GB in each direction (traffic within a zone is free: set 0 when the store
/// sits beside the servers). With `servers.zones`, every byte between zones is also priced at
/// `cross_zone_per_gb`: $0.02, the $0.01 charged out of one zone and the $0.01 into the other.
const DEFAULT_COST: Cost = Cost {
    server_per_hour: 0.096,
    store_per_hour: 0.149,
    transfer_per_gb: 0.01,
    cross_zone_per_gb: 0.02,
};

/// The most availability zones a topology spreads over (a cloud region has three to six).
const MAX_ZONES: u32 = 64;

/// The largest price a `[cost]` key takes.
const MAX_PRICE: f64 = 1e9;

/// What a balancer does out of the box when a try fails, as NGINX does by default
/// (`proxy_next_upstream error timeout`: a connection error or a reset goes to the next server;
/// since 1.9.13 a request that may have had effects is not sent twice) with HAProxy's `retries 3`
/// and its one-second pause before retrying the same server (`option redispatch` sends the last
/// retry of a sticky request elsewhere).
const DEFAULT_RETRY: BalancerRetry = BalancerRetry {
    retries: 3,
    redispatch: true,
    on: RetryOn {
        connect_failure: true,
        reset: true,
        status_5xx: false,
        timeout: false,
    },
    pause: SimTime::from_secs(1),
    server_timeout: None,
};

fn retry_conditions(conditions: &[RetryCondition]) -> RetryOn {
    let mut on = RetryOn::default();
    for condition in conditions {
        match condition {
            RetryCondition::ConnectFailure => on.connect_failure = true,
            RetryCondition::Reset => on.reset = true,
            RetryCondition::Status5xx => on.status_5xx = true,
            RetryCondition::Timeout => on.timeout = true,
        }
    }
    on
}

/// The shortest period of anything that repeats on its own (probes, the autoscaler's loop).
pub(super) const MIN_PERIOD: SimTime = SimTime::from_millis(1);

impl Resolver<'_> {
    pub(super) fn servers(
        &mut self,
        global: &ServersFile,
        local: Option<&ServersFile>,
        path: &str,
    ) -> Servers {
        let local = local.cloned().unwrap_or_default();
        let mut servers = Servers {
            count: local.count.or(global.count).unwrap_or(1),
            workers: local.workers.or(global.workers).unwrap_or(1),
            queue_limit: local.queue_limit.or(global.queue_limit),
            memory_mb: local.memory_mb.or(global.memory_mb),
            on_memory_full: local
                .on_memory_full
                .or(global.on_memory_full)
                .unwrap_or(MemoryFull::EvictLru),
            zones: Zones::one(),
        };
        let origin = |key: &str, set_locally: bool| merged_key(path, "servers", key, set_locally);
        if let Some(zones) = local.zones.as_ref().or(global.zones.as_ref()) {
            servers.zones =
                self.zones(zones, servers.count, origin("zones", local.zones.is_some()));
        }
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

    /// `servers.zones`: a number of zones (server i in zone i mod N), or each server's zone.
    fn zones(&mut self, value: &Value, count: u32, origin: String) -> Zones {
        let expected = format!(
            "expected a number of zones (1 to {MAX_ZONES}) or a list of each server's zone \
             (numbers from 0)"
        );
        match value {
            Value::Integer(zones) => {
                let valid = (1..=i64::from(MAX_ZONES)).contains(zones);
                self.check(valid, origin, format!("{expected}, got {zones}"));
                Zones {
                    count: if valid { *zones as u32 } else { 1 },
                    of_server: Vec::new(),
                }
            }
            Value::Array(list) => {
                let of_server: Vec<u32> = list
                    .iter()
                    .filter_map(|zone| zone.as_integer())
                    .filter(|zone| (0..i64::from(MAX_ZONES)).contains(zone))
                    .map(|zone| zone as u32)
                    .collect();
                if of_server.len() != list.len() {
                    let bad = list
                        .iter()
                        .find(|zone| {
                            !zone
                                .as_integer()
                                .is_some_and(|z| (0..i64::from(MAX_ZONES)).contains(&z))
                        })
                        .map_or(String::new(), ToString::to_string);
                    self.problems.push(Problem::new(
                        origin,
                        format!(
                            "each server's zone is a number from 0 to {}, got {bad}",
                            MAX_ZONES - 1
                        ),
                    ));
                    return Zones::one();
                }
                if of_server.len() != count as usize {
                    self.problems.push(Problem::new(
                        origin,
                        format!(
                            "a list of zones names each server's zone: {count} servers need {count} \
                             entries, got {} (or write the number of zones)",
                            of_server.len()
                        ),
                    ));
                    return Zones::one();
                }
                Zones {
                    count: of_server.iter().max().map_or(1, |max| max + 1),
                    of_server,
                }
            }
            other => {
                self.problems.push(Problem::new(
                    origin,
                    format!("{expected}, got a {}", other.type_str()),
                ));
                Zones::one()
            }
        }
    }

    pub(super) fn balancer(
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
        let retry_on = local.retry_on.clone().or(global.retry_on.clone());
        let mut balancer = Balancer {
            policy: local.policy.or(global.policy).unwrap_or(Policy::RoundRobin),
            fallback: local
                .fallback
                .or(global.fallback)
                .unwrap_or(Policy::LeastConnections),
            health_check,
            retry: BalancerRetry {
                retries: local
                    .retries
                    .or(global.retries)
                    .unwrap_or(DEFAULT_RETRY.retries),
                redispatch: local
                    .redispatch
                    .or(global.redispatch)
                    .unwrap_or(DEFAULT_RETRY.redispatch),
                on: retry_on
                    .as_deref()
                    .map_or(DEFAULT_RETRY.on, retry_conditions),
                pause: local
                    .retry_pause
                    .or(global.retry_pause)
                    .map_or(DEFAULT_RETRY.pause, |d| d.0),
                server_timeout: local.server_timeout.or(global.server_timeout).map(|d| d.0),
            },
            outlier: None,
            zone_affinity: local
                .zone_affinity
                .or(global.zone_affinity)
                .unwrap_or(false),
        };
        let outlier_file = local.outlier.as_ref().or(global.outlier.as_ref());
        balancer.outlier = outlier_file.map(|file| {
            self.outlier(
                file,
                &merged_key(path, "balancer", "outlier", local.outlier.is_some()),
            )
        });
        let origin = |key: &str, set_locally: bool| merged_key(path, "balancer", key, set_locally);
        self.check(
            balancer.retry.retries <= 10,
            origin("retries", local.retries.is_some()),
            format!(
                "at most 10 retries (HAProxy's default is 3), got {}",
                balancer.retry.retries
            ),
        );
        self.check(
            balancer.retry.server_timeout != Some(SimTime::ZERO),
            origin("server_timeout", local.server_timeout.is_some()),
            "must be greater than zero (leave it out to wait as long as the client)",
        );
        self.check(
            !balancer.retry.on.timeout || balancer.retry.server_timeout.is_some(),
            origin("retry_on", local.retry_on.is_some()),
            "retrying on `timeout` needs balancer.server_timeout: how long the balancer waits",
        );
        self.check(
            balancer.fallback != Policy::Sticky,
            origin("fallback", local.fallback.is_some()),
            "the fallback places a session's first request, so it cannot itself be sticky",
        );
        // A real balancer probes every few seconds; a nanosecond interval would be billions of
        // probe events and nothing to learn from them.
        self.check(
            balancer.health_check.interval >= MIN_PERIOD,
            origin("health_check.interval", local_check.interval.is_some()),
            "the health-check interval must be at least 1ms",
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

    /// `balancer.outlier`, with Envoy's defaults for the keys it leaves out.
    fn outlier(&mut self, file: &OutlierFile, origin: &str) -> Outlier {
        let outlier = Outlier {
            consecutive_failures: file.consecutive_failures.unwrap_or(5),
            ejection_time: file.ejection_time.map_or(SimTime::from_secs(30), |d| d.0),
            max_ejected_percent: file.max_ejected_percent.unwrap_or(10.0),
        };
        self.check(
            outlier.consecutive_failures >= 1,
            format!("{origin}.consecutive_failures"),
            "must be at least 1 (Envoy's default is 5)",
        );
        self.check(
            outlier.ejection_time >= MIN_PERIOD && outlier.ejection_time <= MAX_EJECTION_TIME,
            format!("{origin}.ejection_time"),
            "must be between 1ms and 300s (Envoy's default is 30s)",
        );
        self.check(
            (0.0..=100.0).contains(&outlier.max_ejected_percent),
            format!("{origin}.max_ejected_percent"),
            format!(
                "must be a percentage in [0, 100] (Envoy's default is 10), got {}",
                outlier.max_ejected_percent
            ),
        );
        outlier
    }

    /// The topology's prices, each from its own `cost`, else the scenario's, else the default.
    pub(super) fn cost(&mut self, global: &CostFile, local: Option<&CostFile>, path: &str) -> Cost {
        let local = local.cloned().unwrap_or_default();
        let mut price = |local: Option<f64>, global: Option<f64>, default: f64, key: &str| {
            let value = local.or(global).unwrap_or(default);
            // Bounded so that a fleet's hourly cost stays finite in summary.csv.
            self.check(
                (0.0..=MAX_PRICE).contains(&value),
                merged_key(path, "cost", key, local.is_some()),
                format!(
                    "must be a price between 0 and {MAX_PRICE:e}, got {}",
                    if value.abs() >= 1e15 {
                        format!("{value:e}")
                    } else {
                        value.to_string()
                    }
                ),
            );
            value
        };
        Cost {
            server_per_hour: price(
                local.server_per_hour,
                global.server_per_hour,
                DEFAULT_COST.server_per_hour,
                "server_per_hour",
            ),
            store_per_hour: price(
                local.store_per_hour,
                global.store_per_hour,
                DEFAULT_COST.store_per_hour,
                "store_per_hour",
            ),
            transfer_per_gb: price(
                local.transfer_per_gb,
                global.transfer_per_gb,
                DEFAULT_COST.transfer_per_gb,
                "transfer_per_gb",
            ),
            cross_zone_per_gb: price(
                local.cross_zone_per_gb,
                global.cross_zone_per_gb,
                DEFAULT_COST.cross_zone_per_gb,
                "cross_zone_per_gb",
            ),
        }
    }

    /// Each hop's latency: the topology's own value, else the scenario's, else zero.
    pub(super) fn network(
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
            cross_zone: hop(&local.cross_zone, &global.cross_zone, "cross_zone"),
        }
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
