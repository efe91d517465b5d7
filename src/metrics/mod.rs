//! Recording during a run and aggregation across replications.
//!
//! Memory stays flat in the number of requests: latencies go into an HDR histogram, counts into
//! counters and levels (busy workers, active sessions) into time integrals.

use crate::engine::SimTime;
use crate::stats::mean_and_half_width;
use hdrhistogram::Histogram;

/// Latencies are recorded in nanoseconds with 3 significant digits. The histogram starts at one
/// hour and resizes itself, so a response of any length is recorded rather than clamped.
const HISTOGRAM_INITIAL_MAX_NS: u64 = 3_600_000_000_000;
const SIGNIFICANT_DIGITS: u8 = 3;

pub fn new_latency_histogram() -> Histogram<u64> {
    let mut histogram = Histogram::new_with_bounds(1, HISTOGRAM_INITIAL_MAX_NS, SIGNIFICANT_DIGITS)
        .expect("static histogram bounds are valid");
    histogram.auto(true);
    histogram
}

/// Counts for the measurement window. Requests belong to it when sent at or after the warm-up;
/// sessions when started after it or still active when it opens, so that
/// `sessions_at_warmup + sessions_started = completed + lost + active`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counters {
    pub requests: u64,
    pub ok: u64,
    pub rejected: u64,
    pub failed: u64,
    pub timed_out: u64,
    /// Sent by the client but without an outcome when the run ended.
    pub in_flight: u64,
    /// Routed to a server that was already down (the balancer had not noticed yet).
    pub requests_to_dead_server: u64,
    /// Sessions already active when the measurement window opened (they are measured from then on).
    pub sessions_at_warmup: u64,
    pub sessions_started: u64,
    pub sessions_completed: u64,
    pub sessions_lost: u64,
    /// Started, neither completed nor lost when the run ended.
    pub sessions_active: u64,
    /// Requests redone by clients that logged in again after losing their session.
    pub requests_redone: u64,
}

/// The time average of a piecewise-constant whole-number level (busy workers, active sessions),
/// counted from `from` on.
///
/// Kept in integers, so it is exact, and cheap to update: a change of `delta` at `t` contributes
/// `delta × (end − max(t, from))` to the integral over `[from, end]`, which is
/// `level × end − Σ delta × max(t, from)`. Only that sum and the level are kept.
#[derive(Clone, Debug)]
pub struct TimeAverage {
    level: i64,
    weighted_starts: i128,
    from: SimTime,
}

impl TimeAverage {
    pub fn new(from: SimTime) -> TimeAverage {
        TimeAverage {
            level: 0,
            weighted_starts: 0,
            from,
        }
    }

    pub fn add(&mut self, now: SimTime, delta: i64) {
        self.level += delta;
        self.weighted_starts += i128::from(delta) * i128::from(now.max(self.from).nanos());
    }

    /// The average level over `[from, end]`; every change must have happened by `end`.
    pub fn average(&self, end: SimTime) -> f64 {
        let span = end.saturating_sub(self.from).nanos();
        if span == 0 {
            return 0.0;
        }
        let end = end.max(self.from).nanos();
        let area = i128::from(self.level) * i128::from(end) - self.weighted_starts;
        area as f64 / span as f64
    }
}

/// Everything one simulation run (one topology, one replication) measured.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub topology: String,
    pub replication: u32,
    pub counters: Counters,
    /// Client-seen latency of requests that completed ok, in nanoseconds.
    pub latency: Histogram<u64>,
    /// Exact sum of the recorded latencies (the histogram mean is rounded to its buckets).
    pub latency_sum_ns: f64,
    /// Length of the measurement window (duration - warmup), in seconds.
    pub window_secs: f64,
    /// Ok responses received during the window.
    pub ok_in_window: u64,
    pub mean_busy_workers: f64,
    pub worker_capacity: f64,
    pub mean_busy_store_workers: f64,
    pub store_capacity: f64,
    pub mean_active_sessions: f64,
    pub session_duration_sum_secs: f64,
    pub peak_session_bytes: f64,
    pub bytes_total: f64,
    pub events: u64,
    /// Requests sent by clients, warm-up included (the simulation's work, for `--stats`).
    pub requests_simulated: u64,
}

fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator > 0.0 {
        numerator / denominator
    } else {
        f64::NAN
    }
}

fn percentile_ms(result: &RunResult, percentile: f64) -> f64 {
    if result.latency.is_empty() {
        f64::NAN
    } else {
        result.latency.value_at_percentile(percentile) as f64 / 1e6
    }
}

/// One column of summary.csv: its name and how to read it off a run.
pub struct Metric {
    pub name: &'static str,
    pub value: fn(&RunResult) -> f64,
}

macro_rules! metric {
    ($name:literal, $f:expr) => {
        Metric {
            name: $name,
            value: $f,
        }
    };
}

/// The per-topology figures, in summary.csv column order. With replications each is the mean over
/// replications (percentiles are taken per replication, then averaged).
pub const METRICS: &[Metric] = &[
    metric!("requests", |r| r.counters.requests as f64),
    metric!("ok", |r| r.counters.ok as f64),
    metric!("rejected", |r| r.counters.rejected as f64),
    metric!("failed", |r| r.counters.failed as f64),
    metric!("timed_out", |r| r.counters.timed_out as f64),
    metric!("in_flight", |r| r.counters.in_flight as f64),
    metric!("availability", |r| ratio(
        r.counters.ok as f64,
        (r.counters.requests - r.counters.in_flight) as f64
    )),
    metric!("latency_mean_ms", |r| ratio(
        r.latency_sum_ns,
        r.counters.ok as f64
    ) / 1e6),
    metric!("latency_p50_ms", |r| percentile_ms(r, 50.0)),
    metric!("latency_p90_ms", |r| percentile_ms(r, 90.0)),
    metric!("latency_p99_ms", |r| percentile_ms(r, 99.0)),
    metric!("latency_p999_ms", |r| percentile_ms(r, 99.9)),
    metric!("latency_max_ms", |r| percentile_ms(r, 100.0)),
    metric!("throughput_rps", |r| ratio(
        r.ok_in_window as f64,
        r.window_secs
    )),
    metric!("sessions_at_warmup", |r| r.counters.sessions_at_warmup
        as f64),
    metric!("sessions_started", |r| r.counters.sessions_started as f64),
    metric!("sessions_completed", |r| r.counters.sessions_completed
        as f64),
    metric!("sessions_lost", |r| r.counters.sessions_lost as f64),
    metric!("sessions_active", |r| r.counters.sessions_active as f64),
    metric!("requests_redone", |r| r.counters.requests_redone as f64),
    metric!(
        "requests_to_dead_server",
        |r| r.counters.requests_to_dead_server as f64
    ),
    metric!("server_utilization", |r| ratio(
        r.mean_busy_workers,
        r.worker_capacity
    )),
    metric!("store_utilization", |r| ratio(
        r.mean_busy_store_workers,
        r.store_capacity
    )),
    metric!("mean_active_sessions", |r| r.mean_active_sessions),
    metric!("session_duration_mean_s", |r| ratio(
        r.session_duration_sum_secs,
        r.counters.sessions_completed as f64
    )),
    metric!("peak_session_memory_mb", |r| r.peak_session_bytes
        / (1024.0 * 1024.0)),
    metric!("bytes_per_request", |r| ratio(
        r.bytes_total,
        r.counters.requests as f64
    )),
    metric!("events", |r| r.events as f64),
];

pub fn metric_index(name: &str) -> Option<usize> {
    METRICS.iter().position(|m| m.name == name)
}

/// The aggregate of one topology's replications.
#[derive(Clone, Debug)]
pub struct TopologySummary {
    pub topology: String,
    /// The sweep point's values of [`crate::report::Report::sweep_keys`] (empty without a sweep).
    pub params: Vec<String>,
    /// Servers in this topology at this point (for efficiency per server).
    pub servers: u32,
    pub state: &'static str,
    pub replications: u32,
    /// Mean over replications of each [`METRICS`] entry, in the same order. NaN where undefined
    /// in every replication (e.g. latency when nothing completed).
    pub values: Vec<f64>,
    /// Half-width of each value's 95% confidence interval (Student t over the replications where
    /// it is defined); NaN with fewer than two.
    pub ci95: Vec<f64>,
    /// Each replication's values, in replication order (replications.csv).
    pub per_replication: Vec<Vec<f64>>,
    /// All replications' latencies pooled, for the distribution in latency.csv.
    pub pooled_latency: Histogram<u64>,
}

impl TopologySummary {
    pub fn get(&self, name: &str) -> f64 {
        metric_index(name).map_or(f64::NAN, |i| self.values[i])
    }

    /// The half-width of `name`'s 95% interval (NaN without replications).
    pub fn ci95_of(&self, name: &str) -> f64 {
        metric_index(name).map_or(f64::NAN, |i| self.ci95[i])
    }
}

impl RunResult {
    /// Every [`METRICS`] figure of this run, in column order.
    pub fn metric_values(&self) -> Vec<f64> {
        METRICS.iter().map(|metric| (metric.value)(self)).collect()
    }
}

/// Averages one topology's replications, given each replication's [`RunResult::metric_values`]
/// (in replication order, so the sums are deterministic) and their pooled latency histogram.
/// Each figure is averaged over the replications where it is defined, with its 95% interval.
pub fn summarize(
    topology: &str,
    state: &'static str,
    replications: Vec<Vec<f64>>,
    pooled_latency: Histogram<u64>,
) -> TopologySummary {
    let (values, ci95) = (0..METRICS.len())
        .map(|column| {
            let defined: Vec<f64> = replications
                .iter()
                .map(|values| values[column])
                .filter(|v| !v.is_nan())
                .collect();
            mean_and_half_width(&defined, 0.95)
        })
        .unzip();
    TopologySummary {
        topology: topology.to_string(),
        params: Vec::new(),
        servers: 0,
        state,
        replications: replications.len() as u32,
        values,
        ci95,
        per_replication: replications,
        pooled_latency,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_average_counts_only_after_the_start() {
        let mut level = TimeAverage::new(SimTime(10));
        level.add(SimTime(0), 4); // 4 from t=0, but only t>=10 counts
        level.add(SimTime(20), -2); // 4 over [10,20], then 2
        level.add(SimTime(25), 1); // 3 over [25,30]
        assert_eq!(
            level.average(SimTime(30)),
            (4.0 * 10.0 + 2.0 * 5.0 + 3.0 * 5.0) / 20.0
        );
        assert_eq!(TimeAverage::new(SimTime(10)).average(SimTime(10)), 0.0);
    }

    #[test]
    fn histogram_records_an_hour_long_response_and_longer() {
        let mut histogram = new_latency_histogram();
        histogram.record(3_600_000_000_000).unwrap();
        histogram.record(10 * 3_600_000_000_000).unwrap();
        assert!(histogram.max() >= 10 * 3_600_000_000_000 * 999 / 1000);
    }
}
