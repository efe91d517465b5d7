//! The work a command will do, estimated before it starts, so that a scenario asking for more
//! than `--max-events` or `--max-memory` is refused up front (exit 2, with the estimate) instead
//! of running for hours or aborting out of memory. The estimate is deliberately simple and on the
//! generous side; the runs themselves enforce the same limits as they go (`model::Limits`), so
//! what the estimate misses (a retry storm, a queue that grows without end) is caught there.

use crate::engine::SimTime;
use crate::metrics::{FaultRow, METRICS, SeriesRow, ServerRow};
use crate::scenario::{Arrivals, Fault, Replication, Scenario, State, SweepPoint, Topology};

/// `--max-events` by default: about two to eight minutes on two cores.
pub const DEFAULT_MAX_EVENTS: u64 = 5_000_000_000;
/// `--max-memory` by default.
pub const DEFAULT_MAX_MEMORY: u64 = 2 * GIB;
/// The least live state a run is allowed, whatever the fixed costs: room for a busy fleet.
const MIN_LIVE_BYTES_PER_RUN: u64 = 16 * MIB;

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

/// A latency histogram at 3 significant digits holding latencies up to about an hour.
const HISTOGRAM_BYTES: f64 = 256.0 * 1024.0;
/// Live state per active session (its slab entry, its request, their pending events), measured
/// generously: the session and request structs are under 200 bytes each.
const SESSION_BYTES: f64 = 512.0;
/// Per finished session whose state a server keeps for `session_ttl`: its expiry time in the
/// server's list (4 bytes, a gap from the one before, in a list that grows by doubling), not the
/// session itself.
const LINGERING_BYTES: f64 = 8.0;
/// Per server: its queues, cache and balancer entries, before any request.
const SERVER_BYTES: f64 = 1024.0;
/// A validated scenario in memory (one per sweep point), before its topologies.
const SCENARIO_BYTES: f64 = 4096.0;
const TOPOLOGY_BYTES: f64 = 1024.0;

/// What a command may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub max_events: u64,
    pub max_memory: u64,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget {
            max_events: DEFAULT_MAX_EVENTS,
            max_memory: DEFAULT_MAX_MEMORY,
        }
    }
}

/// What a command will do, roughly.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Estimate {
    /// Simulations (sweep points × topologies × replications, and warm-up pilots).
    pub runs: u64,
    /// Events over every run.
    pub events: f64,
    /// Memory held until the report is written: every run's timeseries and fault rows and
    /// figures, the pooled histograms, the scenarios.
    pub kept_bytes: f64,
    /// The largest part of `kept_bytes`, named, for the message.
    pub largest_kept: (String, f64),
    /// Live state of the busiest run (sessions in flight, servers), held by each running thread.
    pub live_bytes_per_run: f64,
    /// The run that takes the most events, for the message: (what, events).
    pub biggest_run: (String, f64),
}

impl Estimate {
    /// Memory at the peak: what is kept plus each thread's live run.
    pub fn memory_bytes(&self, threads: usize) -> f64 {
        self.kept_bytes + threads as f64 * self.live_bytes_per_run
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BudgetError {
    #[error(
        "this run would take about {} events ({} runs; the biggest, {}, about {} events), more \
         than --max-events {} allows: shorten `duration`, lower the load, the sweep or the \
         replications, or raise --max-events",
        human(*events), runs, biggest.0, human(biggest.1), human(*max as f64)
    )]
    Events {
        events: f64,
        runs: u64,
        biggest: (String, f64),
        max: u64,
    },
    #[error(
        "this run would hold about {} in memory (the largest part: {}, {}), more than \
         --max-memory {} allows: widen `bucket`, lower the load, the sweep or the replications, \
         or raise --max-memory",
        mib(*bytes), largest.0, mib(largest.1), mib(*max as f64)
    )]
    Memory {
        bytes: f64,
        largest: (String, f64),
        max: u64,
    },
}

/// `1.2e10`, or a plain integer below a million.
fn human(count: f64) -> String {
    if count < 1e6 {
        format!("{count:.0}")
    } else {
        format!("{count:.1e}")
    }
}

fn mib(bytes: f64) -> String {
    if bytes >= GIB as f64 {
        format!("{:.1} GiB", bytes / GIB as f64)
    } else {
        format!("{:.0} MiB", (bytes / MIB as f64).ceil())
    }
}

/// The estimate of running every point with `replications_at_least` replications or more
/// (`--precision` starts at five), on `threads` threads.
pub fn estimate(points: &[SweepPoint], replications_at_least: u32, threads: usize) -> Estimate {
    let mut total = Estimate::default();
    let mut kept_parts: Vec<(String, f64)> = vec![
        ("timeseries rows".into(), 0.0),
        ("fault rows".into(), 0.0),
        ("server rows".into(), 0.0),
        ("histograms".into(), 0.0),
        ("scenarios and figures".into(), 0.0),
    ];
    for point in points {
        let scenario = &point.scenario;
        let replications = scenario.replications.max(replications_at_least) as f64;
        let pilots = if scenario.warmup_auto { 1.0 } else { 0.0 };
        kept_parts[4].1 += SCENARIO_BYTES + scenario.topologies.len() as f64 * TOPOLOGY_BYTES;
        for topology in &scenario.topologies {
            let run = RunEstimate::of(scenario, topology);
            let runs = replications + pilots;
            total.runs += runs as u64;
            total.events += runs * run.events;
            if run.events > total.biggest_run.1 {
                total.biggest_run = (format!("topology \"{}\"", topology.name), run.events);
            }
            total.live_bytes_per_run = total.live_bytes_per_run.max(run.live_bytes);
            kept_parts[0].1 += replications * run.buckets * size_of::<SeriesRow>() as f64;
            kept_parts[1].1 += replications * run.fault_rows * size_of::<FaultRow>() as f64;
            kept_parts[2].1 += replications * run.server_rows * size_of::<ServerRow>() as f64;
            kept_parts[3].1 += HISTOGRAM_BYTES;
            kept_parts[4].1 += replications * (METRICS.len() * 8) as f64;
        }
    }
    kept_parts[3].1 += threads as f64 * HISTOGRAM_BYTES;
    total.kept_bytes = kept_parts.iter().map(|(_, bytes)| bytes).sum();
    let live = ("live sessions and requests".to_string(), {
        threads as f64 * total.live_bytes_per_run
    });
    total.largest_kept = kept_parts
        .into_iter()
        .chain([live])
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or_default();
    total
}

/// Refuses an estimate beyond the budget; otherwise returns the live bytes each run may hold:
/// its share of what the kept figures leave of `--max-memory`.
pub fn check(estimate: &Estimate, budget: &Budget, threads: usize) -> Result<u64, BudgetError> {
    if estimate.events > budget.max_events as f64 {
        return Err(BudgetError::Events {
            events: estimate.events,
            runs: estimate.runs,
            biggest: estimate.biggest_run.clone(),
            max: budget.max_events,
        });
    }
    let bytes = estimate.memory_bytes(threads);
    if bytes > budget.max_memory as f64 {
        return Err(BudgetError::Memory {
            bytes,
            largest: estimate.largest_kept.clone(),
            max: budget.max_memory,
        });
    }
    let left = budget.max_memory as f64 - estimate.kept_bytes;
    let share = (left / threads.max(1) as f64) as u64;
    Ok(share.max(MIN_LIVE_BYTES_PER_RUN))
}

/// One run of one topology.
struct RunEstimate {
    events: f64,
    buckets: f64,
    fault_rows: f64,
    /// servers.csv rows: every server that ever existed (each launch has a fault row).
    server_rows: f64,
    live_bytes: f64,
}

impl RunEstimate {
    fn of(scenario: &Scenario, topology: &Topology) -> RunEstimate {
        let seconds = scenario.duration.as_secs_f64();
        let workload = &scenario.workload;
        let per_session = match &workload.arrivals {
            Arrivals::Trace(trace) => trace.requests as f64 / trace.sessions.max(1) as f64,
            _ => typical(&workload.requests_per_session).max(1.0),
        };
        // Little's law: sessions in the system = arrival rate × how long one lasts.
        let active_seconds =
            per_session * (typical(&workload.think_time) + typical(&workload.service_time)) / 1e9;
        // Sessions started, those active at once, and the most that start per second (whose
        // states then linger for session_ttl at a few bytes each).
        let (sessions, concurrent, starts_per_second) = match &workload.arrivals {
            Arrivals::Constant {
                sessions_per_second,
            } => (
                sessions_per_second * seconds,
                sessions_per_second * active_seconds.min(seconds),
                *sessions_per_second,
            ),
            Arrivals::Scheduled(schedule) => (
                schedule.expected_sessions(0.0, seconds),
                schedule.peak_rate() * active_seconds.min(seconds),
                schedule.peak_rate(),
            ),
            Arrivals::Users {
                users,
                between_sessions,
            } => {
                // Each user starts a session every cycle; a cycle shorter than a microsecond
                // (no think time, no service time) is counted as one, so a closed loop that would
                // spin at one instant is refused, not run.
                let cycle = (active_seconds + typical(between_sessions) / 1e9).max(1e-6);
                let users = f64::from(*users);
                (users * (seconds / cycle + 1.0), users, users / cycle)
            }
            Arrivals::Trace(trace) => {
                let rate = trace.sessions as f64 / trace.span_seconds.max(1.0);
                let life = trace.mean_session_seconds;
                // The log's rate may peak above its mean: four times it, at most every session.
                let concurrent = (4.0 * rate * life.min(seconds)).min(trace.sessions as f64);
                (trace.sessions as f64, concurrent, 4.0 * rate)
            }
        };
        let concurrent = concurrent + 1.0;
        let lingering =
            (starts_per_second * lingering_seconds(topology).min(seconds)).min(sessions);
        let requests = sessions * per_session;
        let servers = peak_servers(scenario, topology) as f64;
        let per = |period: SimTime| seconds / period.as_secs_f64().max(1e-9);

        let mut events = requests * events_per_request(scenario, topology);
        let mut fault_rows = 0.0;
        if !scenario.faults.is_empty() || scenario.autoscale.is_some() {
            // A probe and its answer (or its timeout) per server and interval.
            events += 2.0 * servers * per(topology.balancer.health_check.interval);
        }
        for fault in &scenario.faults {
            fault_rows += match fault {
                Fault::RandomCrashes { mtbf, mttr } => {
                    let cycle = typical(mtbf) + typical(mttr);
                    let failures = servers * seconds * 1e9 / cycle.max(1.0);
                    events += 4.0 * failures;
                    failures
                }
                Fault::RollingRestart { .. } | Fault::Scale { .. } => {
                    events += 4.0 * servers;
                    servers
                }
                _ => 1.0,
            };
        }
        if let Some(autoscale) = &scenario.autoscale {
            events += per(autoscale.sync_period);
            fault_rows += per(autoscale.sync_period).min(servers * 10.0);
        }
        let buckets = per(scenario.bucket).ceil();
        events += buckets;

        RunEstimate {
            events,
            buckets,
            fault_rows,
            server_rows: servers + fault_rows,
            live_bytes: concurrent * SESSION_BYTES
                + lingering * LINGERING_BYTES
                + servers * SERVER_BYTES,
        }
    }
}

/// A distribution's mean, or where it has none (a Pareto with shape ≤ 1) a huge value: such a
/// scenario is refused unless it clamps the samples.
fn typical(dist: &crate::scenario::Dist) -> f64 {
    dist.mean().filter(|mean| mean.is_finite()).unwrap_or(1e18)
}

/// How long a stateful server keeps a finished session's state.
fn lingering_seconds(topology: &Topology) -> f64 {
    match &topology.state {
        State::Server { session_ttl, .. } => session_ttl.as_secs_f64(),
        _ => 0.0,
    }
}

/// Events a request takes: send, balancer, server, compute, reply, think; more with a store,
/// replication or timeouts (zero-latency hops run inline and take none, so this is an upper
/// figure).
fn events_per_request(scenario: &Scenario, topology: &Topology) -> f64 {
    let mut events = 6.0;
    if topology.has_store() {
        events += 4.0;
    }
    if let State::Server { replication, .. } = &topology.state {
        events += match replication {
            Replication::Sync { peers } => 2.0 * f64::from(*peers),
            Replication::Async { .. } => 1.0,
            Replication::None | Replication::StoreBackup(_) => 0.0,
        };
    }
    if scenario.client.timeout.is_some() {
        events += 1.0;
    }
    events * f64::from(scenario.client.max_attempts).sqrt()
}

/// The most servers a topology runs at once: its count, a scale fault's, the autoscaler's cap.
fn peak_servers(scenario: &Scenario, topology: &Topology) -> u32 {
    let scaled = scenario.faults.iter().filter_map(|fault| match fault {
        Fault::Scale { count, .. } => Some(*count),
        Fault::RollingRestart { batch, .. } => Some(topology.servers.count + batch),
        _ => None,
    });
    let autoscaled = scenario.autoscale.as_ref().map(|autoscale| autoscale.max);
    scaled
        .chain(autoscaled)
        .fold(topology.servers.count, u32::max)
}

/// The estimate in a line, for `validate`.
pub fn describe(estimate: &Estimate, threads: usize) -> String {
    format!(
        "about {} events in {} run{}, {} of memory",
        human(estimate.events),
        estimate.runs,
        if estimate.runs == 1 { "" } else { "s" },
        mib(estimate.memory_bytes(threads))
    )
}
