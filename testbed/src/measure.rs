//! A testbed run's recordings as `statesim run`'s figures: the same [`METRICS`] in the same
//! order, with the same window rules (a request counts if sent after the warm-up; throughput is
//! answers within the window), NaN for what a real deployment does not show.

use crate::load::{Outcome, Recorded};
use crate::plan::{FaultPlan, Plan, TopologyPlan, duration};
use hdrhistogram::Histogram;
use statesim::metrics::{
    METRICS, RunFigures, histogram_percentile_ms, new_latency_histogram, ratio,
};
use std::collections::HashMap;
use std::time::Duration;

/// What HAProxy counted in a run (its `show stat`), when it could be read.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BalancerCounts {
    pub retries: u64,
    pub redispatches: u64,
}

/// One run's figures and its latency histogram (nanoseconds).
pub fn figures(
    recorded: &Recorded,
    plan: &Plan,
    topology: &TopologyPlan,
    balancer: Option<BalancerCounts>,
) -> (RunFigures, Histogram<u64>) {
    let (warmup, end) = (plan.warmup, plan.duration);
    let window_secs = (end - warmup).as_secs_f64();
    let mut latency = new_latency_histogram();
    let mut during_faults = new_latency_histogram();
    let fault_windows: Vec<_> = plan
        .faults
        .iter()
        .map(|fault| fault_window(fault, topology, end))
        .collect();
    let mut count: HashMap<&str, f64> = HashMap::new();
    let mut add = |name: &'static str, value: f64| *count.entry(name).or_default() += value;
    let (mut latency_sum_ns, mut busy_us) = (0.0, 0.0);
    for request in &recorded.requests {
        let done_in_window = request.done >= warmup && request.done < end;
        if done_in_window && request.outcome == Outcome::Ok {
            add("ok_in_window", 1.0);
        }
        if let (true, Some(timing)) = (done_in_window, request.timing) {
            busy_us += timing.busy as f64;
        }
        if request.sent < warmup {
            continue;
        }
        add("requests", 1.0);
        add("attempts", f64::from(request.attempts));
        let name = match request.outcome {
            Outcome::Ok => "ok",
            Outcome::Rejected => "rejected",
            Outcome::Failed | Outcome::Lost => "failed",
            Outcome::TimedOut => "timed_out",
            Outcome::StoreUnavailable => "store_unavailable",
            Outcome::InFlight => "in_flight",
        };
        add(name, 1.0);
        if request.outcome == Outcome::Ok {
            let nanos = (request.done - request.sent).as_nanos() as u64;
            latency_sum_ns += nanos as f64;
            latency.saturating_record(nanos.max(1));
            if fault_windows
                .iter()
                .any(|(from, to)| request.done >= *from && request.done < *to)
            {
                during_faults.saturating_record(nanos.max(1));
            }
        }
    }
    // A session counts if it started in the window or was still going when the window opened
    // (the simulation carries those in, as `sessions_at_warmup`).
    for session in &recorded.sessions {
        if session.started < warmup {
            if session.ended <= warmup {
                continue;
            }
            add("sessions_at_warmup", 1.0);
        } else {
            add("sessions_started", 1.0);
        }
        if session.lost {
            add("sessions_lost", 1.0);
        } else if session.completed {
            add("sessions_completed", 1.0);
        } else {
            add("sessions_active", 1.0);
        }
    }
    let get = |name: &str| count.get(name).copied().unwrap_or(0.0);
    let requests = get("requests");
    let capacity = worker_seconds_up(plan, topology);
    let mut values: HashMap<&str, f64> = HashMap::new();
    for name in [
        "requests",
        "ok",
        "rejected",
        "failed",
        "timed_out",
        "store_unavailable",
        "in_flight",
        "sessions_at_warmup",
        "sessions_started",
        "sessions_completed",
        "sessions_lost",
        "sessions_active",
        "attempts",
    ] {
        values.insert(name, get(name));
    }
    values.insert(
        "availability",
        ratio(get("ok"), requests - get("in_flight")),
    );
    values.insert("latency_mean_ms", ratio(latency_sum_ns, get("ok")) / 1e6);
    for (name, percentile) in [
        ("latency_p50_ms", 50.0),
        ("latency_p90_ms", 90.0),
        ("latency_p99_ms", 99.0),
        ("latency_p999_ms", 99.9),
        ("latency_max_ms", 100.0),
    ] {
        values.insert(name, histogram_percentile_ms(&latency, percentile));
    }
    if !plan.faults.is_empty() {
        values.insert(
            "latency_p99_during_faults_ms",
            histogram_percentile_ms(&during_faults, 99.0),
        );
    }
    values.insert("throughput_rps", ratio(get("ok_in_window"), window_secs));
    values.insert("retry_amplification", ratio(get("attempts"), requests));
    values.insert("server_utilization", ratio(busy_us / 1e6, capacity));
    if let Some(counts) = balancer {
        values.insert(
            "balancer_retries",
            (counts.retries + counts.redispatches) as f64,
        );
    }
    let row = METRICS
        .iter()
        .map(|metric| values.get(metric.name).copied().unwrap_or(f64::NAN))
        .collect();
    (
        RunFigures {
            values: row,
            series: Vec::new(),
            faults: Vec::new(),
            servers: Vec::new(),
        },
        latency,
    )
}

/// Worker-seconds of servers up within the window: a crashed or hung server is out of the
/// capacity until its restart, as in the simulation's utilisation.
fn worker_seconds_up(plan: &Plan, topology: &TopologyPlan) -> f64 {
    let (warmup, end) = (plan.warmup, plan.duration);
    let down: f64 = plan
        .faults
        .iter()
        .map(|fault| {
            let from = fault.at.clamp(warmup, end);
            let to = fault
                .restart_after
                .map_or(end, |after| fault.at.saturating_add(after))
                .clamp(warmup, end);
            (to - from).as_secs_f64()
        })
        .sum();
    let workers = f64::from(topology.workers);
    workers * (f64::from(topology.servers) * (end - warmup).as_secs_f64() - down)
}

/// When a fault's effect lasts: from its start until the restarted server is back in rotation
/// (restart plus `healthy_threshold` probes), or the end of the run.
fn fault_window(fault: &FaultPlan, topology: &TopologyPlan, end: Duration) -> (Duration, Duration) {
    let check = &topology.balancer.health_check;
    let back = fault.restart_after.map_or(end, |after| {
        fault
            .at
            .saturating_add(after)
            .saturating_add(duration(check.interval).saturating_mul(check.healthy_threshold))
    });
    (fault.at, back.min(end))
}
