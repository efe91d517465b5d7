//! What of a scenario the testbed can play for real, and how: a validated scenario (statesim's own
//! parser and checks) narrowed to the documented subset. Anything outside it is refused by name,
//! before a process starts.

use statesim::engine::SimTime;
use statesim::scenario::{
    Arrivals, Balancer, Client, Fault, Policy, Replication, Scenario, State, Workload,
};
use std::time::Duration;

/// A scenario as the testbed plays it.
#[derive(Clone, Debug)]
pub struct Plan {
    pub scenario: String,
    pub seed: u64,
    pub duration: Duration,
    pub warmup: Duration,
    pub sessions_per_second: f64,
    pub workload: Workload,
    pub client: Client,
    pub topologies: Vec<TopologyPlan>,
    pub faults: Vec<FaultPlan>,
}

/// One topology: the fleet the orchestrator starts and the balancer's configuration.
#[derive(Clone, Debug)]
pub struct TopologyPlan {
    pub name: String,
    pub servers: u32,
    pub workers: u32,
    pub queue_limit: Option<u32>,
    pub state: StateMode,
    pub balancer: Balancer,
}

/// Where the backends keep a session.
#[derive(Clone, Debug, PartialEq)]
pub enum StateMode {
    /// No state: every request stands alone.
    None,
    /// In the backend's memory, dropped after `ttl` idle and on a restart.
    Memory { ttl: Duration },
    /// In Redis: a GET on every request, a SET of `session_bytes` on a `write_fraction` of them.
    Redis {
        session_bytes: usize,
        write_fraction: f64,
    },
    /// In an RS256 JWT of about `token_bytes` the backend signs on a session's first request and
    /// verifies on every later one.
    Token { token_bytes: usize },
}

impl StateMode {
    /// The name `statesim run` gives the state mechanism (summary.csv's `state` column).
    pub fn name(&self) -> &'static str {
        match self {
            StateMode::None => "none",
            StateMode::Memory { .. } => "server",
            StateMode::Redis { .. } => "store",
            StateMode::Token { .. } => "token",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FaultKind {
    /// `kill -9`: connections reset, memory gone.
    Crash,
    /// `kill -STOP`: connections stay open and nothing answers; the restart is a `kill -9` and a
    /// fresh process.
    Hang,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FaultPlan {
    pub kind: FaultKind,
    pub at: Duration,
    pub server: u32,
    pub restart_after: Option<Duration>,
}

/// Why a scenario cannot be played by the testbed.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("the testbed cannot play {what}: {why}")]
pub struct Unsupported {
    pub what: String,
    pub why: String,
}

fn unsupported(what: impl Into<String>, why: impl Into<String>) -> Unsupported {
    Unsupported {
        what: what.into(),
        why: why.into(),
    }
}

pub fn duration(time: SimTime) -> Duration {
    Duration::from_nanos(time.nanos())
}

/// The largest session state the testbed writes to Redis.
pub const MAX_SESSION_BYTES: f64 = 1024.0 * 1024.0;

/// The largest token: it travels in an HTTP header, and HAProxy's buffer is 16 KiB.
pub const MAX_TOKEN_BYTES: f64 = 8192.0;

/// The most requests a second the load generator is asked to send.
pub const MAX_REQUESTS_PER_SECOND: f64 = 20_000.0;

/// The largest fleet: every backend is a process with `workers` threads on a 2-core machine.
pub const MAX_SERVERS: u32 = 32;
pub const MAX_WORKERS: u32 = 256;

/// Narrows `scenario` to the topologies named in `only` (all when empty), refusing what the
/// testbed does not support.
pub fn plan(scenario: &Scenario, only: &[String]) -> Result<Plan, Unsupported> {
    for name in only {
        if !scenario.topologies.iter().any(|t| &t.name == name) {
            let names: Vec<_> = scenario
                .topologies
                .iter()
                .map(|t| t.name.as_str())
                .collect();
            return Err(unsupported(
                format!("topology `{name}`"),
                format!(
                    "the scenario has none of that name (it has {})",
                    names.join(", ")
                ),
            ));
        }
    }
    let sessions_per_second = match &scenario.workload.arrivals {
        Arrivals::Constant {
            sessions_per_second,
        } => *sessions_per_second,
        _ => {
            return Err(unsupported(
                "workload arrivals other than `sessions_per_second`",
                "only a constant Poisson rate is played (schedules, users and traces are not)",
            ));
        }
    };
    let offered =
        sessions_per_second * scenario.workload.requests_per_session.mean().unwrap_or(1.0);
    if offered > MAX_REQUESTS_PER_SECOND {
        return Err(unsupported(
            format!("{offered:.0} requests a second"),
            format!(
                "one machine's loopback plays at most {MAX_REQUESTS_PER_SECOND:.0} (a connection \
                 per request through HAProxy)"
            ),
        ));
    }
    check_client(&scenario.client)?;
    if scenario.autoscale.is_some() {
        return Err(unsupported("[autoscale]", "the fleet is fixed"));
    }
    let faults = scenario
        .faults
        .iter()
        .enumerate()
        .map(|(index, fault)| fault_plan(index, fault))
        .collect::<Result<Vec<_>, _>>()?;
    let topologies = scenario
        .topologies
        .iter()
        .filter(|t| only.is_empty() || only.contains(&t.name))
        .map(|topology| {
            let name = &topology.name;
            let servers = &topology.servers;
            if servers.count > MAX_SERVERS || servers.workers > MAX_WORKERS {
                return Err(unsupported(
                    format!("topology `{name}`'s fleet"),
                    format!("at most {MAX_SERVERS} servers of {MAX_WORKERS} workers"),
                ));
            }
            if servers.memory_mb.is_some() {
                return Err(unsupported(
                    format!("topology `{name}`'s servers.memory_mb"),
                    "backends do not limit memory",
                ));
            }
            if servers.zones.count > 1 {
                return Err(unsupported(
                    format!("topology `{name}`'s zones"),
                    "everything runs on one machine",
                ));
            }
            check_balancer(name, &topology.balancer)?;
            for fault in &faults {
                if fault.server >= servers.count {
                    return Err(unsupported(
                        format!("a fault of server {}", fault.server),
                        format!("topology `{name}` has {} servers", servers.count),
                    ));
                }
            }
            Ok(TopologyPlan {
                name: name.clone(),
                servers: servers.count,
                workers: servers.workers,
                queue_limit: servers.queue_limit,
                state: state_mode(name, &topology.state)?,
                balancer: topology.balancer.clone(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Plan {
        scenario: scenario.name.clone(),
        seed: scenario.seed,
        duration: duration(scenario.duration),
        warmup: duration(scenario.warmup),
        sessions_per_second,
        workload: scenario.workload.clone(),
        client: scenario.client.clone(),
        topologies,
        faults,
    })
}

fn check_client(client: &Client) -> Result<(), Unsupported> {
    if client.hedge_after.is_some() {
        return Err(unsupported(
            "client.hedge_after",
            "the load generator does not hedge",
        ));
    }
    if client.retry_budget.is_some() {
        return Err(unsupported(
            "client.retry_budget",
            "the load generator retries up to max_attempts without a budget",
        ));
    }
    Ok(())
}

fn check_balancer(name: &str, balancer: &Balancer) -> Result<(), Unsupported> {
    if balancer.outlier.is_some() {
        return Err(unsupported(
            format!("topology `{name}`'s balancer.outlier"),
            "HAProxy's observe/error-limit differs from Envoy's outlier ejection",
        ));
    }
    if balancer.retry.pause > SimTime::from_secs(1) {
        return Err(unsupported(
            format!("topology `{name}`'s balancer.retry_pause above 1s"),
            "HAProxy waits min(timeout connect, 1s) before retrying the same server",
        ));
    }
    let routes = |policy: Policy| policy != Policy::Sticky;
    if !routes(balancer.fallback) {
        return Err(unsupported(
            format!("topology `{name}`'s balancer.fallback"),
            "sticky cannot place a first request",
        ));
    }
    Ok(())
}

fn state_mode(name: &str, state: &State) -> Result<StateMode, Unsupported> {
    match state {
        State::Stateless => Ok(StateMode::None),
        State::Server {
            session_ttl,
            replication: Replication::None,
            ..
        } => Ok(StateMode::Memory {
            ttl: duration(*session_ttl),
        }),
        State::Server { replication, .. } => Err(unsupported(
            format!("topology `{name}`'s {} replication", replication.name()),
            "backends keep sessions in their own memory only",
        )),
        State::Store {
            session_bytes,
            store,
            cache: None,
        } if store.shards == 1 => {
            if *session_bytes > MAX_SESSION_BYTES {
                return Err(unsupported(
                    format!("topology `{name}`'s session_bytes"),
                    "at most 1 MiB per session",
                ));
            }
            Ok(StateMode::Redis {
                session_bytes: *session_bytes as usize,
                write_fraction: store.write_fraction,
            })
        }
        State::Store { .. } => Err(unsupported(
            format!("topology `{name}`'s store"),
            "one Redis without shards or a server cache",
        )),
        State::Token { token_bytes, .. } => {
            if *token_bytes > MAX_TOKEN_BYTES {
                return Err(unsupported(
                    format!("topology `{name}`'s token_bytes"),
                    "at most 8 KiB: the token travels in a header",
                ));
            }
            Ok(StateMode::Token {
                token_bytes: *token_bytes as usize,
            })
        }
    }
}

fn fault_plan(index: usize, fault: &Fault) -> Result<FaultPlan, Unsupported> {
    match *fault {
        Fault::Crash {
            at,
            server,
            restart_after,
        } => Ok(FaultPlan {
            kind: FaultKind::Crash,
            at: duration(at),
            server,
            restart_after: restart_after.map(duration),
        }),
        Fault::Hang {
            at,
            server,
            restart_after,
        } => Ok(FaultPlan {
            kind: FaultKind::Hang,
            at: duration(at),
            server,
            restart_after: restart_after.map(duration),
        }),
        _ => Err(unsupported(
            format!("fault[{index}] (kind `{}`)", fault.kind()),
            "the testbed injects `crash` (kill -9) and `hang` (kill -STOP) faults",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn scenario(text: &str) -> Scenario {
        statesim::scenario::load_str(text, "test.toml", Path::new("."), &[]).unwrap()
    }

    const BASE: &str = r#"
name = "t"
duration = "60s"
warmup = "10s"
[workload]
sessions_per_second = 10
requests_per_session = 5
think_time = "1s"
service_time = "20ms"
[servers]
count = 2
workers = 2
[[topology]]
name = "sticky"
state = "server"
balancer = { policy = "sticky" }
[[topology]]
name = "redis"
state = "store"
[[fault]]
kind = "crash"
at = "30s"
server = 1
restart_after = "10s"
"#;

    #[test]
    fn the_subset_is_planned() {
        let plan = plan(&scenario(BASE), &[]).unwrap();
        assert_eq!(plan.topologies.len(), 2);
        assert!(matches!(plan.topologies[0].state, StateMode::Memory { .. }));
        assert!(matches!(plan.topologies[1].state, StateMode::Redis { .. }));
        assert_eq!(
            plan.faults,
            vec![FaultPlan {
                kind: FaultKind::Crash,
                at: Duration::from_secs(30),
                server: 1,
                restart_after: Some(Duration::from_secs(10)),
            }]
        );
        assert_eq!(plan.duration, Duration::from_secs(60));
    }

    #[test]
    fn more_load_than_loopback_can_play_is_refused() {
        let heavy = ["workload.sessions_per_second=10000000".to_string()];
        let scenario = statesim::scenario::load_str(BASE, "t.toml", Path::new("."), &heavy);
        let error = plan(&scenario.unwrap(), &[]).unwrap_err();
        assert!(
            error.to_string().contains("50000000 requests a second"),
            "{error}"
        );
    }

    #[test]
    fn tokens_are_played() {
        let text =
            format!("{BASE}\n[[topology]]\nname = \"jwt\"\nstate = \"token\"\ntoken_bytes = 550\n");
        let plan = plan(&scenario(&text), &["jwt".into()]).unwrap();
        assert_eq!(
            plan.topologies[0].state,
            StateMode::Token { token_bytes: 550 }
        );
    }

    #[test]
    fn topologies_can_be_chosen_and_unknown_names_are_refused() {
        let chosen = plan(&scenario(BASE), &["redis".into()]).unwrap();
        assert_eq!(chosen.topologies.len(), 1);
        let error = plan(&scenario(BASE), &["nope".into()]).unwrap_err();
        assert!(
            error.to_string().contains("it has sticky, redis"),
            "{error}"
        );
    }

    #[test]
    fn what_the_testbed_cannot_play_is_refused_by_name() {
        let cases = [
            (
                "[[topology]]\nname = \"cached\"\nstate = \"store\"\ncache = { capacity = 10 }\n",
                "topology `cached`'s store",
            ),
            (
                "[[topology]]\nname = \"big\"\nstate = \"token\"\ntoken_bytes = 20000\n",
                "token_bytes",
            ),
            (
                "[[topology]]\nname = \"repl\"\nstate = \"server\"\nreplication = \"sync\"\nreplicas = 1\n",
                "sync replication",
            ),
            (
                "[[fault]]\nkind = \"store_outage\"\nat = \"20s\"\nduration = \"5s\"\n",
                "store_outage",
            ),
            ("[client]\nhedge_after = \"50ms\"\n", "hedge_after"),
        ];
        for (extra, expected) in cases {
            let text = format!("{BASE}\n{extra}");
            let error = plan(&scenario(&text), &[]).unwrap_err();
            assert!(error.to_string().contains(expected), "{error}");
        }
    }
}
