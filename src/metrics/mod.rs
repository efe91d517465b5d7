//! Recording during a run and aggregation across replications.
//!
//! Memory stays flat in the number of requests: latencies go into an HDR histogram, counts into
//! counters and levels (busy workers, active sessions) into time integrals.

pub mod series;

use crate::engine::SimTime;
use crate::stats::mean_and_half_width;
use hdrhistogram::Histogram;

/// Latencies are recorded in nanoseconds with 3 significant digits. The histogram starts at one
/// hour and resizes itself, so a response of any length is recorded rather than clamped.
const HISTOGRAM_INITIAL_MAX_NS: u64 = 3_600_000_000_000;
pub const SIGNIFICANT_DIGITS: u8 = 3;

pub fn new_latency_histogram() -> Histogram<u64> {
    let mut histogram = Histogram::new_with_bounds(1, HISTOGRAM_INITIAL_MAX_NS, SIGNIFICANT_DIGITS)
        .expect("static histogram bounds are valid");
    histogram.auto(true);
    histogram
}

/// Why a session's state was lost (summary.csv has a `sessions_lost_<cause>` column for each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossCause {
    /// Its home server crashed.
    Crash,
    /// Its home server hung (the state is unreachable; the server is restarted empty).
    Hang,
    /// Its home server was terminated at the end of a deploy's drain.
    Drain,
    /// Its home server was removed by a scale-in (or the autoscaler) at the end of its drain.
    ScaleIn,
    /// Its home server ran out of session memory and evicted it.
    Eviction,
    /// Its home server was lost and the async replica had not received its last write.
    ReplicationLag,
    /// The store came back empty after an outage.
    StoreOutage,
    /// A request reached a server other than the session's home (non-sticky routing).
    Misrouted,
    /// Its home server's zone was lost, with every copy of the session in it.
    ZoneOutage,
}

impl LossCause {
    pub const ALL: [LossCause; 9] = [
        LossCause::Crash,
        LossCause::Hang,
        LossCause::Drain,
        LossCause::ScaleIn,
        LossCause::Eviction,
        LossCause::ReplicationLag,
        LossCause::StoreOutage,
        LossCause::Misrouted,
        LossCause::ZoneOutage,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LossCause::Crash => "crash",
            LossCause::Hang => "hang",
            LossCause::Drain => "drain",
            LossCause::ScaleIn => "scale_in",
            LossCause::Eviction => "eviction",
            LossCause::ReplicationLag => "replication_lag",
            LossCause::StoreOutage => "store_outage",
            LossCause::Misrouted => "misrouted",
            LossCause::ZoneOutage => "zone_outage",
        }
    }
}

/// Latencies (ns) counted the way [`new_latency_histogram`] indexes them (1 ns resolution,
/// 3 significant digits: 2,048 sub-buckets per power of two), in a plain array. Recording is a
/// leading-zero count, a shift and an increment, with none of the histogram's bookkeeping on the
/// hot path; [`LatencyRecorder::to_histogram`] turns it into the equal HDR histogram at the end.
#[derive(Clone, Debug, Default)]
pub struct LatencyRecorder {
    counts: Vec<u64>,
}

impl LatencyRecorder {
    /// log2 of half the sub-buckets (HDR's `sub_bucket_half_count_magnitude` at 3 digits).
    const HALF_MAGNITUDE: u32 = 10;
    /// HDR's `leading_zero_count_base`: 64 - log2(2,048 sub-buckets).
    const ZERO_COUNT_BASE: u32 = 53;
    const SUB_BUCKET_MASK: u64 = (1 << (Self::HALF_MAGNITUDE + 1)) - 1;

    pub fn new() -> LatencyRecorder {
        LatencyRecorder::default()
    }

    /// HDR's `index_for`: the bucket is the power of two, the sub-bucket the value's top bits.
    fn index(value: u64) -> usize {
        let bucket = Self::ZERO_COUNT_BASE - (value | Self::SUB_BUCKET_MASK).leading_zeros();
        let sub_bucket = (value >> bucket) as usize;
        ((bucket as usize + 1) << Self::HALF_MAGNITUDE) + sub_bucket - (1 << Self::HALF_MAGNITUDE)
    }

    /// The lowest value counted at `index` (HDR's `value_from_index`).
    fn lowest_value(index: usize) -> u64 {
        let half = 1usize << Self::HALF_MAGNITUDE;
        let bucket = (index >> Self::HALF_MAGNITUDE) as i64 - 1;
        let sub_bucket = (index & (half - 1)) + half;
        if bucket < 0 {
            (sub_bucket - half) as u64
        } else {
            (sub_bucket as u64) << bucket
        }
    }

    #[inline]
    pub fn record(&mut self, value: u64) {
        let index = Self::index(value.max(1));
        if index >= self.counts.len() {
            self.grow(index);
        }
        self.counts[index] += 1;
    }

    #[cold]
    fn grow(&mut self, index: usize) {
        self.counts.resize((index + 1).next_power_of_two(), 0);
    }

    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(|count| *count == 0)
    }

    /// The HDR histogram these counts make, equal to recording each value into it directly.
    pub fn to_histogram(&self) -> Histogram<u64> {
        let mut histogram = new_latency_histogram();
        for (index, count) in self.counts.iter().enumerate() {
            if *count > 0 {
                // Auto-resizing: recording cannot fail for a positive value.
                let _ = histogram.record_n(Self::lowest_value(index).max(1), *count);
            }
        }
        histogram
    }
}

/// Counts for the measurement window. Requests belong to it when first sent at or after the
/// warm-up; sessions when started after it or still active when it opens, so that
/// `sessions_at_warmup + sessions_started = completed + lost + active`, and `requests = ok +
/// rejected + failed + timed_out + store_unavailable + in_flight`. A request counts once, with
/// the outcome of its last attempt.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counters {
    pub requests: u64,
    pub ok: u64,
    pub rejected: u64,
    pub failed: u64,
    pub timed_out: u64,
    /// The store was down when the request needed it.
    pub store_unavailable: u64,
    /// Sent by the client but without a final outcome when the run ended (an attempt on its way,
    /// or waiting to be retried).
    pub in_flight: u64,
    /// Attempts routed to a server that was already down or hung (the balancer had not noticed).
    pub requests_to_dead_server: u64,
    /// Attempts sent, first attempts and retries.
    pub attempts: u64,
    /// Tries the balancer sent again after a refused connection, a reset or a 5xx (they do not
    /// count as the client's attempts).
    pub balancer_retries: u64,
    /// Outlier ejections in the window.
    pub outlier_ejections: u64,
    /// Requests that sent a hedge (`client.hedge_after`).
    pub hedged_requests: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// Sessions already active when the measurement window opened (they are measured from then on).
    pub sessions_at_warmup: u64,
    pub sessions_started: u64,
    pub sessions_completed: u64,
    pub sessions_lost: u64,
    /// `sessions_lost` by [`LossCause`], in [`LossCause::ALL`] order.
    pub sessions_lost_by: [u64; LossCause::ALL.len()],
    /// Sessions whose home was lost but whose state was recovered from a replica or the store.
    pub sessions_failed_over: u64,
    /// Started, neither completed nor lost when the run ended.
    pub sessions_active: u64,
    /// Requests redone by clients that logged in again after losing their session.
    pub requests_redone: u64,
}

/// Bytes moved by the requests of the window, by what moved them. The state's share (store,
/// replication, token) is what differs between topologies; payloads are the workload's.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Traffic {
    /// Request and response payloads: the same in every topology.
    pub payload: f64,
    /// Sessions read from and written to the store (a cache hit moves none; the hybrid's
    /// write-through copies and failover reads are store traffic too).
    pub store: f64,
    /// Session copies sent to replicas when a session is created or changes: to every replica
    /// (sync) or the one (async).
    pub replication: f64,
    /// Tokens carried by requests.
    pub token: f64,
    /// Everything that crossed zones: requests and answers to servers outside the client's
    /// zone, store operations to a primary in another zone, copies to replicas there. Part of
    /// it is counted above too (it is another cut of the same bytes).
    pub cross_zone: f64,
}

impl Traffic {
    /// The bytes the state placement moves: what `bytes_per_request` counts.
    pub fn state(&self) -> f64 {
        self.store + self.replication + self.token
    }
}

impl Counters {
    /// The conservation laws every run obeys: each request ends in exactly one outcome or is
    /// still in flight, each session is completed, lost or still active, and losses add up by
    /// cause. The tests and the fuzzer hold every run to them.
    pub fn conservation(&self) -> Result<(), String> {
        let outcomes =
            self.ok + self.rejected + self.failed + self.timed_out + self.store_unavailable;
        if self.requests != outcomes + self.in_flight {
            return Err(format!(
                "{} requests, but {outcomes} outcomes and {} in flight",
                self.requests, self.in_flight
            ));
        }
        let sessions = self.sessions_at_warmup + self.sessions_started;
        let ended = self.sessions_completed + self.sessions_lost + self.sessions_active;
        if sessions != ended {
            return Err(format!(
                "{sessions} sessions, but {ended} completed, lost or active"
            ));
        }
        if self.sessions_lost != self.sessions_lost_by.iter().sum::<u64>() {
            return Err("sessions lost do not add up by cause".into());
        }
        if self.attempts < self.requests {
            return Err("fewer attempts than requests".into());
        }
        Ok(())
    }
}

/// The integral over time of a piecewise-constant whole-number level (busy workers, active
/// sessions, servers up), from time zero.
///
/// Kept in integers, so it is exact, and cheap to update: a change of `delta` at `t` contributes
/// `delta × (now − t)` to the integral up to `now`, which is `level × now − Σ delta × t`. Only
/// that sum and the level are kept; the average over a window is the difference of two areas.
#[derive(Clone, Debug, Default)]
pub struct TimeAverage {
    level: i64,
    weighted_starts: i128,
}

impl TimeAverage {
    pub fn new() -> TimeAverage {
        TimeAverage::default()
    }

    pub fn add(&mut self, now: SimTime, delta: i64) {
        self.level += delta;
        self.weighted_starts += i128::from(delta) * i128::from(now.nanos());
    }

    pub fn level(&self) -> i64 {
        self.level
    }

    /// The integral (level × ns) over `[0, now]`; every change must have happened by `now`.
    pub fn area(&self, now: SimTime) -> i128 {
        i128::from(self.level) * i128::from(now.nanos()) - self.weighted_starts
    }

    /// The average level over `[from, end]`, given the area at `from`.
    pub fn average_since(&self, from: SimTime, area_at_from: i128, end: SimTime) -> f64 {
        let span = end.saturating_sub(from).nanos();
        if span == 0 {
            return 0.0;
        }
        (self.area(end) - area_at_from) as f64 / span as f64
    }
}

/// The columns of timeseries.csv after the identifying ones: one row per bucket of a run.
pub const SERIES_COLUMNS: [&str; 18] = [
    "time_s",
    "requests",
    "retries",
    "ok",
    "throughput_rps",
    "rejected",
    "failed",
    "timed_out",
    "store_unavailable",
    "sessions_lost",
    "latency_p50_ms",
    "latency_p99_ms",
    "active_sessions",
    "healthy_servers",
    "servers_running",
    "server_utilization",
    "store_utilization",
    "load_imbalance",
];

pub type SeriesRow = [f64; SERIES_COLUMNS.len()];

/// The columns of faults.csv after the identifying ones: one row per fault occurrence on a server
/// (or on the store) in a run. Times are seconds of simulated time; empty when it never happened.
pub const FAULT_COLUMNS: [&str; 7] = [
    "fault",
    "server",
    "start_s",
    "detected_at_s",
    "recovered_at_s",
    "requests_failed",
    "sessions_lost",
];

pub type FaultRow = [f64; FAULT_COLUMNS.len()];

/// The columns of servers.csv after the identifying ones: one row per server that existed in a
/// run (averaged over replications in the file). Utilisation is over the whole window, so a
/// server that ran for part of it shows less.
pub const SERVER_COLUMNS: [&str; 5] = [
    "server",
    "requests",
    "utilization",
    "peak_session_memory_mb",
    "sessions_lost",
];

pub type ServerRow = [f64; SERVER_COLUMNS.len()];

/// Everything one simulation run (one topology, one replication) measured.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub topology: String,
    pub replication: u32,
    pub counters: Counters,
    /// Client-seen latency of requests that completed ok (all their attempts), in nanoseconds.
    pub latency: Histogram<u64>,
    /// Latency of each ok attempt on its own.
    pub attempt_latency: Histogram<u64>,
    /// Client-seen latency of ok requests completed while a fault was under way (a server or
    /// the store not yet recovered, a fleet change not complete), and after the first fault
    /// while none was.
    pub latency_during_faults: Histogram<u64>,
    pub latency_after_faults: Histogram<u64>,
    /// Exact sum of the recorded latencies (the histogram mean is rounded to its buckets).
    pub latency_sum_ns: f64,
    /// Length of the measurement window (duration - warmup), in seconds.
    pub window_secs: f64,
    /// Ok responses received during the window.
    pub ok_in_window: u64,
    pub mean_busy_workers: f64,
    /// Workers of the running servers, averaged over the window (servers come and go).
    pub worker_capacity: f64,
    pub mean_busy_store_workers: f64,
    pub store_capacity: f64,
    /// Servers up (serving) and provisioned (up, hung, down or starting), averaged over the window.
    pub mean_servers_up: f64,
    pub mean_servers_provisioned: f64,
    pub mean_active_sessions: f64,
    pub session_duration_sum_secs: f64,
    pub peak_session_bytes: f64,
    /// Bytes moved by requests of the window, by what moved them.
    pub traffic: Traffic,
    /// What the topology cost an hour over the window (`[cost]`).
    pub cost_per_hour: f64,
    /// The busiest server's tries in the window over the mean server's.
    pub load_imbalance: f64,
    /// Session memory per server at steady state, projected by Little's law (bytes).
    pub session_memory_steady_bytes: f64,
    /// The size of one session's state (or token), and how many copies of it exist.
    pub session_state_bytes: f64,
    pub state_copies: f64,
    /// Availability zones the topology's servers are spread over.
    pub zones: u32,
    /// When a server, and when a store shard, was first found saturated (its queue growing
    /// without bound), in seconds of simulated time.
    pub servers_saturated_at_s: Option<f64>,
    pub store_saturated_at_s: Option<f64>,
    pub events: u64,
    /// Requests sent by clients, warm-up included (the simulation's work, for `--stats`).
    pub requests_simulated: u64,
    /// timeseries.csv rows, the whole run (warm-up included).
    pub series: Vec<SeriesRow>,
    /// faults.csv rows.
    pub faults: Vec<FaultRow>,
    /// servers.csv rows.
    pub servers: Vec<ServerRow>,
}

/// `numerator / denominator`, NaN when the denominator is not positive (a figure undefined in a
/// run, left out of the means over replications).
pub fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator > 0.0 {
        numerator / denominator
    } else {
        f64::NAN
    }
}

fn percentile_ms(result: &RunResult, percentile: f64) -> f64 {
    histogram_percentile_ms(&result.latency, percentile)
}

/// A percentile of a nanosecond histogram in milliseconds; NaN when it is empty.
pub fn histogram_percentile_ms(histogram: &Histogram<u64>, percentile: f64) -> f64 {
    if histogram.is_empty() {
        f64::NAN
    } else {
        histogram.value_at_percentile(percentile) as f64 / 1e6
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
    metric!("store_unavailable", |r| r.counters.store_unavailable as f64),
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
    metric!("sessions_lost_crash", |r| lost_by(r, 0)),
    metric!("sessions_lost_hang", |r| lost_by(r, 1)),
    metric!("sessions_lost_drain", |r| lost_by(r, 2)),
    metric!("sessions_lost_scale_in", |r| lost_by(r, 3)),
    metric!("sessions_lost_eviction", |r| lost_by(r, 4)),
    metric!("sessions_lost_replication_lag", |r| lost_by(r, 5)),
    metric!("sessions_lost_store_outage", |r| lost_by(r, 6)),
    metric!("sessions_lost_misrouted", |r| lost_by(r, 7)),
    metric!("sessions_lost_zone_outage", |r| lost_by(r, 8)),
    metric!("sessions_failed_over", |r| r.counters.sessions_failed_over
        as f64),
    metric!(
        "requests_to_dead_server",
        |r| r.counters.requests_to_dead_server as f64
    ),
    metric!("attempts", |r| r.counters.attempts as f64),
    metric!("retry_amplification", |r| ratio(
        r.counters.attempts as f64,
        r.counters.requests as f64
    )),
    metric!("balancer_retries", |r| r.counters.balancer_retries as f64),
    metric!("outlier_ejections", |r| r.counters.outlier_ejections as f64),
    metric!("hedged_requests", |r| r.counters.hedged_requests as f64),
    metric!("load_imbalance", |r| r.load_imbalance),
    metric!("saturated_servers", |r| f64::from(u8::from(
        r.servers_saturated_at_s.is_some()
    ))),
    metric!("saturated_store", |r| f64::from(u8::from(
        r.store_saturated_at_s.is_some()
    ))),
    metric!("saturated_at_s", |r| {
        let first = [r.servers_saturated_at_s, r.store_saturated_at_s];
        first
            .into_iter()
            .flatten()
            .reduce(f64::min)
            .unwrap_or(f64::NAN)
    }),
    metric!("cost_per_hour", |r| r.cost_per_hour),
    metric!("cost_per_million_requests", |r| ratio(
        r.cost_per_hour * 1e6,
        r.ok_in_window as f64 / r.window_secs * 3600.0
    )),
    metric!("attempt_latency_p50_ms", |r| histogram_percentile_ms(
        &r.attempt_latency,
        50.0
    )),
    metric!("attempt_latency_p99_ms", |r| histogram_percentile_ms(
        &r.attempt_latency,
        99.0
    )),
    metric!("latency_p99_during_faults_ms", |r| histogram_percentile_ms(
        &r.latency_during_faults,
        99.0
    )),
    metric!("latency_p99_after_faults_ms", |r| histogram_percentile_ms(
        &r.latency_after_faults,
        99.0
    )),
    metric!("sessions_lost_per_fault", |r| per_fault(r, 6)),
    metric!("failed_per_fault", |r| per_fault(r, 5)),
    metric!("time_to_detect_s", |r| mean_fault_delay(r, 3)),
    metric!("time_to_recover_s", |r| mean_fault_delay(r, 4)),
    metric!("cache_hit_ratio", |r| ratio(
        r.counters.cache_hits as f64,
        (r.counters.cache_hits + r.counters.cache_misses) as f64
    )),
    metric!("server_availability", |r| ratio(
        r.mean_servers_up,
        r.mean_servers_provisioned
    )),
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
    metric!("session_memory_steady_mb", |r| r
        .session_memory_steady_bytes
        / (1024.0 * 1024.0)),
    metric!("store_bytes_per_request", |r| ratio(
        r.traffic.store,
        r.counters.requests as f64
    )),
    metric!("replication_bytes_per_request", |r| ratio(
        r.traffic.replication,
        r.counters.requests as f64
    )),
    metric!("token_bytes_per_request", |r| ratio(
        r.traffic.token,
        r.counters.requests as f64
    )),
    metric!("bytes_per_request", |r| ratio(
        r.traffic.state(),
        r.counters.requests as f64
    )),
    // Not a figure of a topology in one zone (as a store's utilisation is not one without a
    // store): the comparison leaves it out unless a topology has zones.
    metric!("cross_zone_bytes_per_request", |r| if r.zones > 1 {
        ratio(r.traffic.cross_zone, r.counters.requests as f64)
    } else {
        f64::NAN
    }),
    metric!("session_state_bytes", |r| r.session_state_bytes),
    metric!("state_copies", |r| r.state_copies),
    metric!("events", |r| r.events as f64),
];

/// The mean time from a fault's start to its `column` of [`FAULT_COLUMNS`] (detection or
/// recovery), over the faults where that happened; NaN if none did.
fn mean_fault_delay(result: &RunResult, column: usize) -> f64 {
    let delays: Vec<f64> = result
        .faults
        .iter()
        .filter(|row| !row[column].is_nan())
        .map(|row| row[column] - row[2])
        .collect();
    ratio(delays.iter().sum(), delays.len() as f64)
}

/// The mean over the run's fault occurrences (faults.csv rows, warm-up included) of their
/// `column` of [`FAULT_COLUMNS`] (requests failed, sessions lost); NaN without faults.
fn per_fault(result: &RunResult, column: usize) -> f64 {
    let total: f64 = result.faults.iter().map(|row| row[column]).sum();
    ratio(total, result.faults.len() as f64)
}

fn lost_by(result: &RunResult, cause: usize) -> f64 {
    result.counters.sessions_lost_by[cause] as f64
}

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
    /// Where the state lives, in words ([`crate::scenario::State::placement`]).
    pub placement: String,
    pub replications: u32,
    /// Mean over replications of each [`METRICS`] entry, in the same order. NaN where undefined
    /// in every replication (e.g. latency when nothing completed).
    pub values: Vec<f64>,
    /// Half-width of each value's 95% confidence interval (Student t over the replications where
    /// it is defined); NaN with fewer than two.
    pub ci95: Vec<f64>,
    /// Each replication's values, in replication order (replications.csv).
    pub per_replication: Vec<Vec<f64>>,
    /// Each replication's timeseries.csv rows, in replication order.
    pub series: Vec<Vec<SeriesRow>>,
    /// Each replication's faults.csv rows, in replication order.
    pub faults: Vec<Vec<FaultRow>>,
    /// Each replication's servers.csv rows, in replication order.
    pub per_server: Vec<Vec<ServerRow>>,
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

/// What a run leaves behind once its histograms are pooled: its figures and its rows.
#[derive(Clone, Debug, PartialEq)]
pub struct RunFigures {
    /// [`RunResult::metric_values`].
    pub values: Vec<f64>,
    pub series: Vec<SeriesRow>,
    pub faults: Vec<FaultRow>,
    pub servers: Vec<ServerRow>,
}

impl RunResult {
    /// The run's figures; its rows are moved, not copied (a long run's series is megabytes).
    pub fn into_figures(mut self) -> RunFigures {
        RunFigures {
            values: self.metric_values(),
            series: std::mem::take(&mut self.series),
            faults: std::mem::take(&mut self.faults),
            servers: std::mem::take(&mut self.servers),
        }
    }
}

/// Averages one topology's replications, given each replication's figures (in replication
/// order, so the sums are deterministic) and their pooled latency histogram. Each figure is
/// averaged over the replications where it is defined, with its 95% interval.
pub fn summarize(
    topology: &str,
    state: &'static str,
    runs: Vec<RunFigures>,
    pooled_latency: Histogram<u64>,
) -> TopologySummary {
    let mut replications = Vec::with_capacity(runs.len());
    let mut series = Vec::with_capacity(runs.len());
    let mut faults = Vec::with_capacity(runs.len());
    let mut per_server = Vec::with_capacity(runs.len());
    for run in runs {
        replications.push(run.values);
        series.push(run.series);
        faults.push(run.faults);
        per_server.push(run.servers);
    }
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
        placement: String::new(),
        replications: replications.len() as u32,
        values,
        ci95,
        per_replication: replications,
        series,
        faults,
        per_server,
        pooled_latency,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_average_of_a_window_is_the_difference_of_two_areas() {
        let mut level = TimeAverage::new();
        level.add(SimTime(0), 4); // 4 from t=0, but only t>=10 counts
        let at_ten = level.area(SimTime(10));
        assert_eq!(at_ten, 40);
        level.add(SimTime(20), -2); // 4 over [10,20], then 2
        level.add(SimTime(25), 1); // 3 over [25,30]
        assert_eq!(
            level.average_since(SimTime(10), at_ten, SimTime(30)),
            (4.0 * 10.0 + 2.0 * 5.0 + 3.0 * 5.0) / 20.0
        );
        assert_eq!(level.level(), 3);
        assert_eq!(level.average_since(SimTime(10), 0, SimTime(10)), 0.0);
    }

    #[test]
    fn the_latency_recorder_makes_the_histogram_direct_recording_makes() {
        use rand::{RngExt, SeedableRng};
        let mut rng = crate::engine::rng::StreamRng::seed_from_u64(11);
        let mut recorder = LatencyRecorder::new();
        let mut direct = new_latency_histogram();
        let mut values: Vec<u64> = vec![1, 2, 2047, 2048, 2049, 4095, 4096, 1 << 40, u64::MAX / 4];
        // Log-uniform from 1 ns to about 10 hours.
        values.extend((0..50_000).map(|_| 10f64.powf(rng.random::<f64>() * 13.6) as u64));
        for value in values {
            recorder.record(value);
            direct.record(value.max(1)).unwrap();
        }
        let converted = recorder.to_histogram();
        assert!(converted == direct, "the converted histogram differs");
        assert_eq!(converted.len(), direct.len());
        for percentile in [0.0, 50.0, 99.0, 99.9, 100.0] {
            assert_eq!(
                converted.value_at_percentile(percentile),
                direct.value_at_percentile(percentile)
            );
        }
    }

    #[test]
    fn histogram_records_an_hour_long_response_and_longer() {
        let mut histogram = new_latency_histogram();
        histogram.record(3_600_000_000_000).unwrap();
        histogram.record(10 * 3_600_000_000_000).unwrap();
        assert!(histogram.max() >= 10 * 3_600_000_000_000 * 999 / 1000);
    }
}
