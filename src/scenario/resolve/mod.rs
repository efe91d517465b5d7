//! From the file schema to a validated [`Scenario`]: defaults, range checks and cross-field rules,
//! one module per section. Problems are collected, not returned at the first one, so a user fixes
//! a file in one pass.

mod client;
mod expect;
mod faults;
mod fleet;
mod state;
mod workload;

use super::dist::{DistContext, parse_dist, parse_scalar};
use super::schema::*;
use super::*;
use crate::engine::SimTime;
use toml::Value;

/// At most this many timeseries.csv rows per run (the series is kept in memory until the end, at
/// about 140 bytes a row).
const MAX_BUCKETS: u64 = 1_000_000;

/// The most topologies one scenario compares (each keeps a histogram and a table row).
const MAX_TOPOLOGIES: usize = 1000;
/// The longest scenario or topology name.
const MAX_NAME_CHARS: usize = 100;

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

    /// A name shown in tables, logs and file names: printable, and short enough to read. A name
    /// with a newline and `::error …` would inject commands into a CI log.
    fn name(&mut self, name: &str, path: &str) {
        self.check(
            !name.chars().any(crate::text::is_unsafe),
            path,
            format!(
                "\"{}\" contains a control character; a name is printable text",
                crate::text::shown(name)
            ),
        );
        self.check(
            name.chars().count() <= MAX_NAME_CHARS,
            path,
            format!("a name has at most {MAX_NAME_CHARS} characters"),
        );
    }

    fn check(&mut self, ok: bool, path: impl Into<String>, message: impl Into<String>) {
        if !ok {
            self.problems.push(Problem::new(path, message));
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
}

pub fn resolve(
    raw: ScenarioFile,
    fault_files: &[FaultFile],
    context: &DistContext,
) -> Result<Scenario, Vec<Problem>> {
    let mut r = Resolver {
        problems: Vec::new(),
        context: DistContext {
            base_dir: context.base_dir,
            allowed_dirs: context.allowed_dirs,
        },
    };
    r.check(
        !raw.name.trim().is_empty(),
        "name",
        "the scenario needs a name",
    );
    r.name(&raw.name, "name");
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

    let workload = r.workload(&raw.workload, raw.duration.0);

    let client = r.client(&raw.client);

    r.check(
        !raw.topology.is_empty(),
        "topology",
        "the scenario needs at least one [[topology]]",
    );
    if raw.topology.len() > MAX_TOPOLOGIES {
        // Not resolved one by one: each would be checked against all the others.
        return Err(vec![Problem::new(
            "topology",
            format!(
                "{} topologies: at most {MAX_TOPOLOGIES} are compared in one scenario",
                raw.topology.len()
            ),
        )]);
    }
    let mut topologies: Vec<Topology> = Vec::new();
    for (index, file) in raw.topology.iter().enumerate() {
        let path = format!("topology[{index}]");
        r.check(
            !file.name.trim().is_empty(),
            format!("{path}.name"),
            "a topology needs a name",
        );
        r.name(&file.name, &format!("{path}.name"));
        r.check(
            !topologies.iter().any(|t| t.name == file.name),
            format!("{path}.name"),
            format!("topology name \"{}\" is used twice", file.name),
        );
        let state = r.state(file, &path);
        let servers = r.servers(&raw.servers, file.servers.as_ref(), &path);
        let balancer = r.balancer(&raw.balancer, file.balancer.as_ref(), &path);
        let network = r.network(&raw.network, file.network.as_ref(), &path);
        let cost = r.cost(&raw.cost, file.cost.as_ref(), &path);
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
        r.replica_placement(&state, &servers, file, &path);
        topologies.push(Topology {
            name: file.name.clone(),
            state,
            servers,
            balancer,
            network,
            cost,
        });
    }

    let faults: Vec<Fault> = fault_files
        .iter()
        .enumerate()
        .map(|(index, file)| r.fault(file, &format!("fault[{index}]"), &raw, &topologies))
        .collect();
    r.overlapping_pauses(&faults);
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
