//! Reproducing closed-form queueing results.
//!
//! Each scenario runs R = 10 independent replications. The tolerance is derived from the run, not
//! picked: the replication means are i.i.d., so the estimate's standard error is s/sqrt(R), and we
//! accept the theory if it lies within t(0.9995, R-1) standard errors (a 99.9% two-sided interval:
//! a correct model fails one such test in a thousand; the seeds are fixed, so the verdict is
//! stable). Longer runs shrink s, and with it the tolerance, as 1/sqrt(run length). Percentiles
//! add the HDR histogram's quantisation (3 significant digits: 0.1% of the value).

use super::support::{
    folder_with, load, metric, number, read_csv, run_in, simulate, simulate_text,
};
use statesim::metrics::RunResult;

/// 0.9995 quantiles of Student's t for 1..=30 degrees of freedom.
const T_999: [f64; 30] = [
    636.62, 31.599, 12.924, 8.610, 6.869, 5.959, 5.408, 5.041, 4.781, 4.587, 4.437, 4.318, 4.221,
    4.140, 4.073, 4.015, 3.965, 3.922, 3.883, 3.850, 3.819, 3.792, 3.768, 3.745, 3.725, 3.707,
    3.690, 3.674, 3.659, 3.646,
];

struct Estimate {
    mean: f64,
    half_width: f64,
}

fn estimate(samples: &[f64]) -> Estimate {
    let n = samples.len();
    assert!(n >= 2, "need replications to estimate the error");
    let mean = samples.iter().sum::<f64>() / n as f64;
    let variance = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let t = T_999.get(n - 2).copied().unwrap_or(3.291);
    Estimate {
        mean,
        half_width: t * (variance / n as f64).sqrt(),
    }
}

fn assert_theory(
    what: &str,
    runs: &[RunResult],
    value: impl Fn(&RunResult) -> f64,
    theory: f64,
    quantisation: f64,
) {
    let samples: Vec<f64> = runs.iter().map(value).collect();
    let e = estimate(&samples);
    let tolerance = e.half_width + quantisation * theory.abs();
    let error = (e.mean - theory).abs();
    eprintln!(
        "{what}: simulated {:.4} ± {:.4}, theory {theory:.4} (error {:.2}%, tolerance {:.2}%)",
        e.mean,
        e.half_width,
        100.0 * error / theory,
        100.0 * tolerance / theory
    );
    assert!(
        error <= tolerance,
        "{what}: simulated {:.5} differs from theory {theory:.5} by {error:.5} > tolerance {tolerance:.5}",
        e.mean
    );
    // The test must be able to fail: a tolerance wider than 10% would accept a wrong model.
    assert!(
        tolerance < 0.1 * theory.abs(),
        "{what}: run too short, tolerance {tolerance}"
    );
}

const HDR_QUANTISATION: f64 = 0.001;

fn erlang_c(servers: u32, offered: f64) -> f64 {
    let b = erlang_b(servers, offered);
    let rho = offered / f64::from(servers);
    b / (1.0 - rho + rho * b)
}

/// Erlang B by the stable recursion B(0) = 1, B(k) = a B(k-1) / (k + a B(k-1)).
fn erlang_b(servers: u32, offered: f64) -> f64 {
    (1..=servers).fold(1.0, |b, k| offered * b / (f64::from(k) + offered * b))
}

#[test]
fn mm1_mean_and_p99_response_time() {
    let runs = simulate(&load("scenarios/validation/mm1.toml", &[]));
    let (lambda, mu) = (0.8, 1.0); // per ms
    assert_theory(
        "M/M/1 mean",
        &runs,
        |r| metric(r, "latency_mean_ms"),
        1.0 / (mu - lambda),
        0.0,
    );
    let p99 = (100.0f64).ln() / (mu - lambda);
    assert_theory(
        "M/M/1 p99",
        &runs,
        |r| metric(r, "latency_p99_ms"),
        p99,
        HDR_QUANTISATION,
    );
}

#[test]
fn mmc_shared_queue_matches_erlang_c() {
    let runs = simulate(&load("scenarios/validation/mmc.toml", &[]));
    let (lambda, mu, c) = (3.0, 1.0, 4);
    let waiting = erlang_c(c, lambda / mu);
    assert!(
        (waiting - 0.5094).abs() < 1e-3,
        "Erlang C formula check: {waiting}"
    );
    let mean = waiting / (f64::from(c) * mu - lambda) + 1.0 / mu;
    assert_theory(
        "M/M/4 mean (Erlang C)",
        &runs,
        |r| metric(r, "latency_mean_ms"),
        mean,
        0.0,
    );
}

#[test]
fn loss_system_blocking_matches_erlang_b() {
    let runs = simulate(&load("scenarios/validation/erlang_b.toml", &[]));
    let blocking = erlang_b(5, 4.0);
    assert!(
        (blocking - 0.1991).abs() < 1e-3,
        "Erlang B formula check: {blocking}"
    );
    assert_theory(
        "Erlang B blocking",
        &runs,
        |r| metric(r, "rejected") / metric(r, "requests"),
        blocking,
        0.0,
    );
}

#[test]
fn md1_mean_matches_pollaczek_khinchine() {
    let runs = simulate(&load("scenarios/validation/md1.toml", &[]));
    let (lambda, service) = (0.7, 1.0);
    let rho = lambda * service;
    let wait = lambda * service * service / (2.0 * (1.0 - rho));
    assert_theory(
        "M/D/1 mean",
        &runs,
        |r| metric(r, "latency_mean_ms"),
        wait + service,
        0.0,
    );
}

#[test]
fn mg1_mean_matches_pollaczek_khinchine() {
    let scenario = load("scenarios/validation/mg1.toml", &[]);
    let service = &scenario.workload.service_time;
    let mean_ms = service.mean().unwrap() / 1e6;
    let cv: f64 = 1.5;
    let second_moment = mean_ms * mean_ms * (1.0 + cv * cv);
    assert!((mean_ms - 1.0).abs() < 1e-9);
    let lambda = 0.7;
    let wait = lambda * second_moment / (2.0 * (1.0 - lambda * mean_ms));
    let runs = simulate(&scenario);
    assert_theory(
        "M/G/1 mean",
        &runs,
        |r| metric(r, "latency_mean_ms"),
        wait + mean_ms,
        0.0,
    );
}

#[test]
fn random_dispatch_equals_independent_mm1_queues() {
    let runs = simulate(&load("scenarios/validation/random_dispatch.toml", &[]));
    let (lambda, mu, n) = (3.2, 1.0, 4.0);
    assert_theory(
        "random dispatch mean",
        &runs,
        |r| metric(r, "latency_mean_ms"),
        1.0 / (mu - lambda / n),
        0.0,
    );
}

#[test]
fn littles_law_holds_for_active_sessions() {
    let runs = simulate(&load("scenarios/validation/littles_law.toml", &[]));
    let (rate, requests, think, service) = (100.0, 5.0, 0.050, 0.001);
    let duration = requests * service + (requests - 1.0) * think;
    assert_theory(
        "active sessions vs lambda x E[W] (closed form)",
        &runs,
        |r| metric(r, "mean_active_sessions"),
        rate * duration,
        0.0,
    );
    // Little's law itself, run by run, with the measured arrival rate and sojourn time. Both come
    // from the same sample path, so only the window's edges separate them: O(W / window) = 0.05%.
    for run in &runs {
        let l = metric(run, "mean_active_sessions");
        let lambda = metric(run, "sessions_started") / run.window_secs;
        let w = metric(run, "session_duration_mean_s");
        assert!(
            (l - lambda * w).abs() / l < 0.005,
            "L = {l}, lambda W = {}",
            lambda * w
        );
    }
}

/// The balancer finds a crash only through health checks: with `unhealthy_threshold` failed
/// probes needed, the crash is detected D after it happens, and until then round robin keeps
/// sending requests to the dead server. Each one's connection is refused and the balancer
/// redispatches it, which takes the next server's turn too: of every 8 turns the dead server
/// takes one and its redispatch another, so 1 request in 7 meets it (1/(n - 1), as HAProxy's
/// round robin gives). Counts in D are Poisson, so the tolerance is 4 standard deviations; and
/// no request fails but those in flight at the crash (the reset of a request that is not known
/// to be idempotent is not retried).
#[test]
fn health_checks_detect_a_crash_after_threshold_failed_probes() {
    let text = r#"name = "detection"
duration = "200s"
[workload]
sessions_per_second = 1000
service_time = "1ms"
[servers]
count = 8
workers = 4
[balancer.health_check]
interval = "10s"
unhealthy_threshold = 3
[[topology]]
name = "rr"
state = "none"
[[fault]]
kind = "crash"
at = "100s"
server = 3
"#;
    let run = &simulate_text(text)[0];
    let detection_secs = metric(run, "time_to_detect_s");
    // The third failed probe comes two intervals after the first, which comes within one.
    assert!(
        (20.0..=30.0).contains(&detection_secs),
        "detected after {detection_secs} s"
    );
    let expected = 1000.0 * detection_secs / 7.0;
    let observed = run.counters.requests_to_dead_server as f64;
    let tolerance = 4.0 * (1000.0 * detection_secs).sqrt() / 7.0 + 1.0;
    eprintln!("requests to the dead server: {observed}, expected {expected} ± {tolerance:.0}");
    assert!(
        (observed - expected).abs() <= tolerance,
        "{observed} vs {expected}"
    );
    assert_eq!(
        run.counters.balancer_retries, run.counters.requests_to_dead_server,
        "each refused try is retried once, elsewhere"
    );
    assert!(run.counters.failed <= 4, "{:?}", run.counters);
}

/// The probe phase is uniform: a server's first probe goes at a random point of the interval,
/// so the time to detect a crash is uniform on [(threshold - 1) · interval, threshold ·
/// interval] (a refused probe fails at once), with mean (threshold - 1/2) · interval; a hung
/// server's probes fail only at their timeout, which adds it. Over R replications the sample
/// mean's standard deviation is interval / sqrt(12 R): the tolerance is 4 of them.
#[test]
fn detection_time_is_uniform_over_a_probe_interval() {
    for (kind, timeout_s) in [("crash", 0.0), ("hang", 2.0)] {
        let text = format!(
            r#"name = "phase"
duration = "60s"
replications = 200
[workload]
sessions_per_second = 20
service_time = "1ms"
[client]
timeout = "5s"
[servers]
count = 4
[balancer.health_check]
interval = "10s"
unhealthy_threshold = 3
timeout = "2s"
[[topology]]
name = "rr"
state = "none"
[[fault]]
kind = "{kind}"
at = "10s"
server = 1
"#
        );
        let runs = simulate_text(&text);
        let (interval, threshold) = (10.0, 3.0);
        let (low, high) = ((threshold - 1.0) * interval, threshold * interval);
        let detections: Vec<f64> = runs.iter().map(|r| metric(r, "time_to_detect_s")).collect();
        for d in &detections {
            assert!(
                (low + timeout_s..=high + timeout_s).contains(d),
                "{kind}: detected after {d} s, outside [{low}, {high}] + {timeout_s}"
            );
        }
        let mean = detections.iter().sum::<f64>() / detections.len() as f64;
        let expected = (threshold - 0.5) * interval + timeout_s;
        let tolerance = 4.0 * interval / (12.0 * detections.len() as f64).sqrt();
        assert!(
            (mean - expected).abs() <= tolerance,
            "{kind}: mean detection {mean:.2} s, expected {expected} ± {tolerance:.2}"
        );
        // Uniform, not bunched: each third of the interval holds about a third of the runs.
        let thirds: Vec<usize> = (0..3)
            .map(|third| {
                let from = low + timeout_s + interval * third as f64 / 3.0;
                detections
                    .iter()
                    .filter(|d| (from..from + interval / 3.0).contains(*d))
                    .count()
            })
            .collect();
        assert!(
            thirds.iter().all(|&n| n >= 40),
            "{kind}: detections per third of the interval {thirds:?}"
        );
    }
}

/// Common random numbers: topologies that model the same system see the identical workload and
/// therefore produce identical figures, sample path for sample path.
#[test]
fn every_topology_replays_the_identical_workload() {
    let text = r#"name = "crn"
duration = "60s"
warmup = "10s"
[workload]
sessions_per_second = 50
requests_per_session = { dist = "geometric", mean = 5 }
think_time = { dist = "exponential", mean = "200ms" }
service_time = { dist = "lognormal", p50 = "10ms", p99 = "80ms" }
request_bytes = { dist = "uniform", min = 100, max = 900 }
[network]
balancer_server = { dist = "exponential", mean = "100us" }
[servers]
count = 4
workers = 2
[[topology]]
name = "plain"
state = "none"
[[topology]]
name = "free-token"
state = "token"
token_bytes = 0
verify_time = "0s"
[[topology]]
name = "sticky-state"
state = "server"
balancer = { policy = "sticky" }
"#;
    let runs = simulate_text(text);
    let (plain, token, sticky) = (&runs[0], &runs[1], &runs[2]);
    assert_eq!(plain.counters, token.counters);
    assert_eq!(plain.latency_sum_ns, token.latency_sum_ns);
    assert_eq!(plain.traffic, token.traffic);
    // A different routing changes latencies, not the workload: the same sessions arrive, and the
    // same requests are sent, give or take the few that latency moves across the window's edges.
    assert_eq!(
        plain.counters.sessions_started,
        sticky.counters.sessions_started
    );
    let edge = plain.counters.requests.abs_diff(sticky.counters.requests);
    assert!(
        edge * 1000 <= plain.counters.requests,
        "{edge} requests differ"
    );
    assert_ne!(plain.latency_sum_ns, sticky.latency_sum_ns);
}

#[test]
fn the_store_is_a_queueing_station_of_its_own() {
    let runs = simulate(&load("scenarios/validation/store_mm1.toml", &[]));
    let (lambda, mu) = (0.8, 1.0);
    assert_theory(
        "store M/M/1 mean",
        &runs,
        |r| metric(r, "latency_mean_ms"),
        1.0 / (mu - lambda),
        0.0,
    );
    assert_theory(
        "store utilisation",
        &runs,
        |r| metric(r, "store_utilization"),
        lambda / mu,
        0.0,
    );
}

#[test]
fn token_verification_occupies_the_worker() {
    let runs = simulate(&load("scenarios/validation/token_md1.toml", &[]));
    let (lambda, service) = (1.0, 0.5 + 0.2);
    let wait = lambda * service * service / (2.0 * (1.0 - lambda * service));
    assert_theory(
        "token M/D/1 mean",
        &runs,
        |r| metric(r, "latency_mean_ms"),
        wait + service,
        0.0,
    );
}

/// Without queueing and with constant times, a request's latency is the exact sum of its path:
/// client→balancer→server and back (2 × (2 + 0.5) ms), the demand (1 ms), plus per topology the
/// store read and write round trips (2 × (2 × 0.3 + 0.1) ms) or the verification (0.06 ms).
#[test]
fn latency_is_the_sum_of_the_request_path() {
    let text = r#"name = "path"
duration = "20s"
[workload]
sessions_per_second = 20
requests_per_session = 3
think_time = "100ms"
service_time = "1ms"
[network]
client_balancer = "2ms"
balancer_server = "500us"
server_store = "300us"
[servers]
count = 2
workers = 100
[[topology]]
name = "plain"
state = "none"
[[topology]]
name = "memory"
state = "server"
balancer = { policy = "sticky" }
[[topology]]
name = "store"
state = "store"
store = { workers = 100, read = "100us", write = "100us", write_fraction = 1.0 }
[[topology]]
name = "token"
state = "token"
verify_time = "60us"
"#;
    let expected_ms = [6.0, 6.0, 7.4, 6.06];
    for (run, expected) in simulate_text(text).iter().zip(expected_ms) {
        for column in ["latency_p50_ms", "latency_max_ms", "latency_mean_ms"] {
            let value = metric(run, column);
            // HDR buckets hold 3 significant digits.
            assert!(
                (value - expected).abs() <= expected * 1e-3,
                "{}: {column} = {value}, expected {expected}",
                run.topology
            );
        }
    }
}

/// Cost is arithmetic on measured quantities: servers as provisioned × their price, store nodes
/// (one per store worker) × theirs, and state traffic × the price of a gigabyte. A fixed fleet
/// whose requests each read a 10 KB session from the store (and never write it) moves exactly
/// 10 KB of state per request; a fleet scaled from 4 to 8 servers halfway through pays for 6.
#[test]
fn cost_is_what_the_fleet_ran_and_the_state_it_moved() {
    let text = r#"name = "cost"
duration = "100s"
[workload]
sessions_per_second = 50
service_time = "2ms"
[servers]
count = 4
[cost]
server_per_hour = 1.0
store_per_hour = 10.0
transfer_per_gb = 100.0
[[topology]]
name = "store"
state = "store"
session_bytes = 10000
store = { workers = 2, nodes = 3, write_fraction = 0.0 }
"#;
    let run = &simulate_text(text)[0];
    let hours = run.window_secs / 3600.0;
    let gigabytes_per_hour = run.counters.attempts as f64 * 10_000.0 / 1e9 / hours;
    // The store is billed by its nodes, not its workers.
    let expected = 4.0 * 1.0 + 3.0 * 10.0 + gigabytes_per_hour * 100.0;
    let cost = metric(run, "cost_per_hour");
    assert!(
        (cost - expected).abs() < 1e-9 * expected,
        "{cost} vs {expected}"
    );
    let per_million = metric(run, "cost_per_million_requests");
    let requests_per_hour = run.ok_in_window as f64 / run.window_secs * 3600.0;
    assert!((per_million - expected / requests_per_hour * 1e6).abs() < 1e-9 * per_million);

    // A topology's own prices override the scenario's; a fleet that grows pays for what ran.
    let scaled =
        text.replace(
            "state = \"store\"",
            "state = \"none\"\ncost = { server_per_hour = 3.0 }",
        )
        .replace("session_bytes = 10000\n", "")
        .replace(
            "store = { workers = 2, nodes = 3, write_fraction = 0.0 }\n",
            "",
        ) + "[[fault]]\nkind = \"scale\"\nat = \"50s\"\ncount = 8\n";
    let run = &simulate_text(&scaled)[0];
    let cost = metric(run, "cost_per_hour");
    assert!(
        (cost - 6.0 * 3.0).abs() < 1e-6,
        "4 servers for 50 s, 8 for 50 s: {cost}"
    );
}

/// Traffic is counted where it happens. A store read crosses the network only on a cache miss,
/// so with no writes a cached topology's store bytes are its misses × the session size, and per
/// request (1 − hit ratio) × the uncached figure. Sync replication sends a copy to each replica
/// when a session is created and whenever it changes: per request, replicas × session bytes ×
/// (the share of first requests + write_fraction × the rest).
#[test]
fn store_and_replication_bytes_follow_from_hits_and_writes() {
    let text = r#"name = "traffic"
duration = "300s"
[workload]
sessions_per_second = 40
requests_per_session = 8
think_time = { dist = "exponential", mean = "2s" }
service_time = "1ms"
[servers]
count = 4
workers = 4
[[topology]]
name = "uncached"
state = "store"
session_bytes = 5000
store = { workers = 4, write_fraction = 0.0 }
[[topology]]
name = "cached"
state = "store"
session_bytes = 5000
store = { workers = 4, write_fraction = 0.0 }
cache = { capacity = 100000 }
balancer = { policy = "sticky" }
[[topology]]
name = "sync"
state = "server"
session_bytes = 5000
replication = "sync"
replicas = 2
write_fraction = 0.3
balancer = { policy = "sticky" }
"#;
    let runs = simulate_text(text);
    let (uncached, cached, sync) = (&runs[0], &runs[1], &runs[2]);
    let c = &cached.counters;
    assert_eq!(cached.traffic.store, c.cache_misses as f64 * 5000.0);
    let hit_ratio = c.cache_hits as f64 / (c.cache_hits + c.cache_misses) as f64;
    assert!(
        hit_ratio > 0.5,
        "sticky routing keeps sessions in the cache: {hit_ratio}"
    );
    let expected = (1.0 - hit_ratio) * metric(uncached, "store_bytes_per_request");
    let measured = metric(cached, "store_bytes_per_request");
    // Lookups and requests differ only by the few requests in flight at the window's edges.
    assert!(
        (measured - expected).abs() < 0.01 * expected,
        "{measured} vs {expected}"
    );
    assert_eq!(metric(uncached, "store_bytes_per_request"), 5000.0);
    assert_eq!(metric(cached, "bytes_per_request"), measured);

    let requests = sync.counters.requests as f64;
    let first = (sync.counters.sessions_started as f64 / requests).min(1.0);
    let expected = 2.0 * 5000.0 * (first + 0.3 * (1.0 - first));
    let measured = metric(sync, "replication_bytes_per_request");
    // The writes are Bernoulli(0.3) draws: 4 standard deviations of their share.
    let tolerance = 2.0 * 5000.0 * 4.0 * (0.3 * 0.7 / requests).sqrt() + 0.01 * expected;
    assert!(
        (measured - expected).abs() < tolerance,
        "{measured} vs {expected} ± {tolerance}"
    );
    assert_eq!(metric(sync, "store_bytes_per_request"), 0.0);
}

/// `load_imbalance` is the busiest server's tries in the window over the mean server's. Round
/// robin deals requests one by one, so no server gets more than one above the mean's floor:
/// the figure is at most 1 + servers / requests. Sticky placement deals whole sessions, so a
/// server can be ahead by whole sessions.
#[test]
fn round_robin_spreads_requests_evenly_and_sticky_sessions_do_not() {
    let text = r#"name = "spread"
duration = "120s"
warmup = "20s"
[workload]
sessions_per_second = 30
requests_per_session = { dist = "geometric", mean = 10 }
think_time = { dist = "exponential", mean = "1s" }
service_time = "1ms"
[servers]
count = 4
workers = 4
[[topology]]
name = "rr"
state = "none"
[[topology]]
name = "sticky"
state = "server"
balancer = { policy = "sticky", fallback = "round_robin" }
"#;
    let runs = simulate_text(text);
    let (rr, sticky) = (&runs[0], &runs[1]);
    let bound = 1.0 + 4.0 / rr.counters.requests as f64;
    let spread = metric(rr, "load_imbalance");
    assert!((1.0..=bound).contains(&spread), "{spread} above {bound}");
    assert!(
        metric(sticky, "load_imbalance") > bound,
        "{}",
        metric(sticky, "load_imbalance")
    );
}

/// The verdict names a winner only where the figures make it certain, and calls two identical
/// topologies a tie ("no significant difference": their paired differences are all zero).
#[test]
fn the_verdict_names_certain_winners_and_ties_identical_topologies() {
    let text = r#"name = "verdict"
duration = "120s"
warmup = "10s"
replications = 4
[workload]
sessions_per_second = 20
requests_per_session = 5
think_time = { dist = "exponential", mean = "2s" }
service_time = { dist = "exponential", mean = "2ms" }
[network]
server_store = "2ms"
[servers]
count = 4
workers = 2
[[topology]]
name = "sticky"
state = "server"
session_ttl = "5m"
balancer = { policy = "sticky" }
network = { balancer_server = "1ms" }
[[topology]]
name = "store"
state = "store"
[[topology]]
name = "token"
state = "token"
[[topology]]
name = "token-again"
state = "token"
[[fault]]
kind = "crash"
at = "60s"
server = 1
"#;
    let run = run_in(folder_with(&[("v.toml", text)]), &["v.toml", "--quiet"]);
    let rows = read_csv(&run.out("comparison.csv"));
    let best = |metric: &str| -> Vec<String> {
        rows.iter()
            .filter(|r| r["metric"] == metric && r["best"] == "true")
            .map(|r| r["topology"].clone())
            .collect()
    };
    // Only the sticky fleet keeps sessions in a server's memory: it alone loses any.
    assert_eq!(best("sessions_lost"), ["store", "token", "token-again"]);
    // A 4 ms store round trip, or 2 ms more on the sticky fleet's network, is far beyond the
    // 60 µs of a token's verification: the tokens answer first, and the two identical token
    // topologies cannot be told apart.
    assert_eq!(best("latency_p50_ms"), ["token", "token-again"]);
    assert!(
        run.stdout
            .contains("no significant difference between the starred"),
        "{}",
        run.stdout
    );
    // The most server memory per session is the sticky fleet's; a store costs a node.
    assert!(!best("peak_session_memory_mb").contains(&"sticky".to_string()));
    assert!(!best("cost_per_hour").contains(&"store".to_string()));
    assert!(run.stdout.contains("lost 0 sessions"), "{}", run.stdout);
}

/// `session_memory_steady_mb` is Little's law: arrival rate × (session life + session_ttl) ×
/// session bytes × copies / servers. A run long beside the state's life reaches it: the
/// busiest server's peak sits above the mean M sessions it projects by the fluctuation of a
/// count around M, a few standard deviations (4 √M) at the most. Sync replication holds one copy
/// more of every session.
#[test]
fn steady_session_memory_is_what_a_long_run_reaches() {
    let text = r#"name = "steady"
duration = "600s"
[workload]
sessions_per_second = 100
requests_per_session = 5
think_time = { dist = "exponential", mean = "1s" }
service_time = "1ms"
[servers]
count = 4
workers = 4
[[topology]]
name = "sticky"
state = "server"
session_bytes = 10000
session_ttl = "30s"
balancer = { policy = "sticky", fallback = "round_robin" }
[[topology]]
name = "sync"
state = "server"
session_bytes = 10000
session_ttl = "30s"
replication = "sync"
replicas = 1
balancer = { policy = "sticky", fallback = "round_robin" }
"#;
    let runs = simulate_text(text);
    let (plain, sync) = (&runs[0], &runs[1]);
    let steady = metric(plain, "session_memory_steady_mb");
    let peak = metric(plain, "peak_session_memory_mb");
    let sessions = steady * 1024.0 * 1024.0 / 10_000.0;
    let high = 1.0 + 4.0 / sessions.sqrt();
    assert!(
        (1.0..=high).contains(&(peak / steady)),
        "peak {peak:.2} MiB against a steady state of {steady:.2} MiB ({sessions:.0} sessions, at most x{high:.3})"
    );
    let ratio = metric(sync, "session_memory_steady_mb") / steady;
    assert!(
        (ratio - 2.0).abs() < 0.02,
        "one replica doubles it: x{ratio:.3}"
    );
    // The replicas live in the peers' memory: each server holds its own M sessions and its
    // neighbour's, a count of mean 2M, so its peak is within 1 + 4/sqrt(2M) of twice the
    // projection, and twice the unreplicated peak within both intervals.
    let sync_steady = metric(sync, "session_memory_steady_mb");
    let sync_peak = metric(sync, "peak_session_memory_mb");
    let sync_high = 1.0 + 4.0 / (2.0 * sessions).sqrt();
    assert!(
        (1.0..=sync_high).contains(&(sync_peak / sync_steady)),
        "sync peak {sync_peak:.2} MiB against a steady state of {sync_steady:.2} MiB"
    );
    let doubled = sync_peak / peak;
    assert!(
        (2.0 / high..=2.0 * sync_high).contains(&doubled),
        "one replica doubles the peak: x{doubled:.3}"
    );
    // A short run's peak is far below; the table says so.
    let short = run_in(
        folder_with(&[("s.toml", &text.replace("600s", "15s"))]),
        &["s.toml", "--quiet"],
    );
    assert!(
        short.stdout.contains("sticky: peak session memory"),
        "{}",
        short.stdout
    );
}

/// A replica takes memory on its peer like the session itself, so under a memory limit the
/// replicated fleet fills up with (1 + replicas) copies; but a session its home evicts is not
/// lost while a replica holds it: its next server fetches it, as after a crash. No server ever
/// holds more than its limit.
#[test]
fn replicas_fill_peers_memory_and_save_evicted_sessions() {
    let text = r#"name = "evictions"
duration = "120s"
warmup = "10s"
[workload]
sessions_per_second = 50
requests_per_session = 10
think_time = { dist = "exponential", mean = "1s" }
service_time = "1ms"
[servers]
count = 4
workers = 4
memory_mb = 1
[[topology]]
name = "plain"
state = "server"
session_bytes = 20000
balancer = { policy = "sticky", fallback = "round_robin" }
[[topology]]
name = "sync"
state = "server"
session_bytes = 20000
replication = "sync"
replicas = 1
balancer = { policy = "sticky", fallback = "round_robin" }
"#;
    let runs = simulate_text(text);
    let (plain, sync) = (&runs[0], &runs[1]);
    // 1 MiB holds 52 states of 20 kB; each server is offered 50/4 × 10 s ≈ 125 sessions.
    let limit_mb = (1024.0 * 1024.0 / 20_000.0f64).floor() * 20_000.0 / (1024.0 * 1024.0);
    for run in [plain, sync] {
        let peak = metric(run, "peak_session_memory_mb");
        assert!(peak <= limit_mb + 1e-9, "{}: {peak} MiB", run.topology);
        assert!(peak > 0.9 * limit_mb, "{}: {peak} MiB", run.topology);
    }
    assert!(
        metric(plain, "sessions_lost_eviction") > 100.0,
        "{}",
        metric(plain, "sessions_lost_eviction")
    );
    assert_eq!(metric(sync, "sessions_lost_eviction"), 0.0);
    assert!(metric(sync, "sessions_failed_over") > 100.0);
    for row in &sync.servers {
        assert!(
            row[3] <= limit_mb + 1e-9,
            "server {}: {} MiB",
            row[0],
            row[3]
        );
    }
}

/// servers.csv adds up to the summary: the servers' tries are the tries the balancer sent in the
/// window, their mean utilisation is the fleet's (a fixed fleet), the busiest one's peak memory
/// is the topology's peak, and the sessions they lost are the topology's.
#[test]
fn servers_csv_adds_up_to_the_summary() {
    let text = r#"name = "per-server"
duration = "120s"
warmup = "10s"
[workload]
sessions_per_second = 30
requests_per_session = 6
think_time = { dist = "exponential", mean = "1s" }
service_time = { dist = "exponential", mean = "20ms" }
[servers]
count = 5
workers = 2
[[topology]]
name = "sticky"
state = "server"
session_ttl = "10s"
balancer = { policy = "sticky", fallback = "least_connections" }
[[topology]]
name = "store"
state = "store"
[[fault]]
kind = "crash"
server = 2
at = "60s"
"#;
    let run = run_in(folder_with(&[("s.toml", text)]), &["s.toml", "--quiet"]);
    let servers = read_csv(&run.out("servers.csv"));
    for topology in ["sticky", "store"] {
        let rows: Vec<_> = servers
            .iter()
            .filter(|r| r["topology"] == topology)
            .collect();
        assert_eq!(rows.len(), 5, "{topology}: one row per server");
        let summary = run.topology(topology);
        let sum = |column: &str| -> f64 { rows.iter().map(|r| number(r, column)).sum() };
        let max =
            |column: &str| -> f64 { rows.iter().map(|r| number(r, column)).fold(0.0, f64::max) };
        let tries = number(&summary, "attempts") + number(&summary, "balancer_retries");
        let requests = sum("requests");
        // Tries are counted by the bucket they were sent in, requests by when the client sent
        // them: the two windows differ by the tries in flight at its edges.
        assert!(
            (requests - tries).abs() < 0.005 * tries,
            "{topology}: {requests} tries on the servers, {tries} sent"
        );
        assert_eq!(sum("sessions_lost"), number(&summary, "sessions_lost"));
        assert_eq!(
            max("peak_session_memory_mb"),
            number(&summary, "peak_session_memory_mb")
        );
        // Busy worker-time adds up. The fleet's utilisation is over the capacity running (the
        // crashed server's workers are missing while it is down), each server's over its whole
        // window: Σ utilisation = fleet utilisation × servers × the share of them up.
        let each = sum("utilization");
        let fleet =
            number(&summary, "server_utilization") * 5.0 * number(&summary, "server_availability");
        assert!(
            (each - fleet).abs() < 1e-4 * fleet,
            "{topology}: {each} against {fleet}"
        );
    }
    let sticky: Vec<_> = servers
        .iter()
        .filter(|r| r["topology"] == "sticky")
        .collect();
    assert!(number(sticky[2], "sessions_lost") > 0.0);
    assert!(
        sticky
            .iter()
            .enumerate()
            .all(|(i, r)| i == 2 || number(r, "sessions_lost") == 0.0),
        "only the crashed server loses sessions"
    );
}

/// Bisection for the t where a decreasing function crosses zero, within [0, high].
fn solve_decreasing(f: impl Fn(f64) -> f64, high: f64) -> f64 {
    let (mut low, mut high) = (0.0, high);
    for _ in 0..200 {
        let mid = 0.5 * (low + high);
        if f(mid) > 0.0 {
            low = mid;
        } else {
            high = mid;
        }
    }
    0.5 * (low + high)
}

#[test]
fn a_slow_server_is_an_mm1_at_its_slowed_rate() {
    // Random dispatch splits the Poisson stream into Poisson streams (round robin would make
    // Erlang ones): each of the 4 servers is an M/M/1 with lambda = 0.3 per ms, three at mu = 1
    // and server 0, twice as slow, at mu = 0.5 (rho 0.6). A request's response time is then
    // exponential with rate mu - lambda on its server, and the fleet's the 3:1 mixture.
    let runs = simulate(&load(
        "scenarios/validation/random_dispatch.toml",
        &[
            "workload.sessions_per_second=1200",
            "fault=[{kind = \"slow\", at = \"0s\", server = 0, factor = 2}]",
        ],
    ));
    let (fast, slow) = (1.0 - 0.3, 0.5 - 0.3);
    assert_theory(
        "slow server mixture mean",
        &runs,
        |r| metric(r, "latency_mean_ms"),
        0.75 / fast + 0.25 / slow,
        0.0,
    );
    let survival = |t: f64| 0.75 * (-fast * t).exp() + 0.25 * (-slow * t).exp() - 0.01;
    assert_theory(
        "slow server mixture p99",
        &runs,
        |r| metric(r, "latency_p99_ms"),
        solve_decreasing(survival, 1000.0),
        HDR_QUANTISATION,
    );
    // Its own utilisation: lambda / mu = 0.6, the others 0.3 (fleet mean 0.375).
    assert_theory(
        "fleet utilisation with one slow server",
        &runs,
        |r| metric(r, "server_utilization"),
        (0.6 + 3.0 * 0.3) / 4.0,
        0.0,
    );
}

#[test]
fn periodic_pauses_add_the_mean_residual_delay() {
    // One server with workers to spare (no queueing), a deterministic 10 ms service and pauses of
    // P = 100 ms every T = 1 s. A Poisson arrival falls in a pause with probability P/T and then
    // waits its residual, P/2 on average; otherwise a pause starts during its service with
    // probability d/T and adds P. Mean latency: d + P (P/2 + d) / T = 10 + 6 = 16 ms.
    let runs = simulate_text(
        r#"
name = "pauses"
seed = 21
duration = "300s"
warmup = "5s"
replications = 10
[workload]
sessions_per_second = 50
service_time = "10ms"
[servers]
count = 1
workers = 64
[[topology]]
name = "paused"
state = "none"
[[fault]]
kind = "pauses"
every = "1s"
pause = "100ms"
"#,
    );
    let (d, p, t) = (10.0, 100.0, 1000.0);
    assert_theory(
        "mean latency with periodic pauses",
        &runs,
        |r| metric(r, "latency_mean_ms"),
        d + p * (p / 2.0 + d) / t,
        0.0,
    );
}

#[test]
fn one_shard_down_fails_the_share_of_sessions_that_hash_to_it() {
    // A store of 4 shards with shard 1 down for the whole run: every session is one request and
    // its state sits on the shard its id hashes to, so a request fails (store_unavailable) with
    // probability 1/4. With hot_share = 0.5, half the sessions sit on shard 0 and the rest
    // spread evenly: shard 0 down fails 0.5 + 0.5/4 = 0.625 of them.
    let scenario = |hot_share: f64, shard: u32| {
        format!(
            r#"
name = "shards"
seed = 5
duration = "120s"
warmup = "1s"
replications = 10
[workload]
sessions_per_second = 200
service_time = "1ms"
[servers]
count = 2
workers = 8
[[topology]]
name = "store"
state = "store"
[topology.store]
shards = 4
hot_share = {hot_share}
workers = 4
[[fault]]
kind = "store_outage"
at = "0s"
duration = "120s"
shard = {shard}
"#
        )
    };
    let share = |r: &RunResult| metric(r, "store_unavailable") / metric(r, "requests");
    assert_theory(
        "one of 4 shards down",
        &simulate_text(&scenario(0.0, 1)),
        share,
        0.25,
        0.0,
    );
    assert_theory(
        "the hot shard down",
        &simulate_text(&scenario(0.5, 0)),
        share,
        0.625,
        0.0,
    );
}

#[test]
fn a_hedge_caps_the_slow_servers_requests_at_hedge_after_plus_a_fast_answer() {
    // Two servers under random dispatch, server 1 ten times slower, a deterministic 10 ms of
    // work, workers to spare (no queueing). A request on the fast server answers in 10 ms, before
    // the 30 ms hedge; one on the slow server (100 ms) is hedged at 30 ms to the fast one, which
    // answers 10 ms later: 40 ms. Mean d/2 + (H + d)/2 = 25 ms (55 without the hedge), and half
    // the requests send a second attempt: retry amplification 1.5.
    let text = |hedge: &str| {
        format!(
            r#"
name = "hedge"
seed = 8
duration = "300s"
warmup = "5s"
replications = 10
[workload]
sessions_per_second = 20
service_time = "10ms"
[client]
{hedge}
[servers]
count = 2
workers = 32
[balancer]
policy = "random"
[[topology]]
name = "token"
state = "none"
[[fault]]
kind = "slow"
at = "0s"
server = 1
factor = 10
"#
        )
    };
    let hedged = simulate_text(&text("hedge_after = \"30ms\""));
    let plain = simulate_text(&text(""));
    assert_theory(
        "hedged mean",
        &hedged,
        |r| metric(r, "latency_mean_ms"),
        25.0,
        0.0,
    );
    assert_theory(
        "unhedged mean",
        &plain,
        |r| metric(r, "latency_mean_ms"),
        55.0,
        0.0,
    );
    assert_theory(
        "hedged retry amplification",
        &hedged,
        |r| metric(r, "retry_amplification"),
        1.5,
        0.0,
    );
    for run in hedged.iter().chain(&plain) {
        run.counters.conservation().unwrap();
        assert!(metric(run, "latency_max_ms") <= 100.0 * (1.0 + HDR_QUANTISATION));
    }
    for run in &hedged {
        let max = metric(run, "latency_max_ms");
        assert!(
            max <= 40.0 * (1.0 + HDR_QUANTISATION),
            "every answer within H + d: {max}"
        );
    }
}

#[test]
fn a_zone_outage_loses_exactly_the_sessions_homed_there_without_a_copy_elsewhere() {
    // Sticky sessions placed round robin over 4 servers in 2 zones (0 1 0 1): half of them live
    // in zone 1. Sessions are an M/G/∞ system, so by Little's law λ·W are active when zone 1 goes
    // down (W = 4 think times of 2 s + 5 services of 1 ms = 8.005 s), and half of those are lost:
    // λ·W/2 = 400.25. A sync replica on the next server of the same zone dies with its home, so
    // the count is the same; a replica in the other zone saves every session (the run goes on
    // until the balancer has seen the zone go, and the sessions have moved).
    let runs = simulate_text(
        r#"
name = "zone-outage"
seed = 3
duration = "160s"
warmup = "1s"
replications = 20
[workload]
sessions_per_second = 100
requests_per_session = { dist = "geometric", mean = 5 }
think_time = { dist = "exponential", mean = "2s" }
service_time = "1ms"
[servers]
count = 4
workers = 64
zones = 2
[balancer]
policy = "sticky"
fallback = "round_robin"
[[topology]]
name = "memory"
state = "server"
[[topology]]
name = "same-zone"
state = "server"
replication = "sync"
replica_placement = "same_zone"
[[topology]]
name = "other-zone"
state = "server"
replication = "sync"
replica_placement = "other_zone"
[[fault]]
kind = "zone_outage"
zone = 1
at = "120s"
"#,
    );
    let of = |name: &str| -> Vec<RunResult> {
        runs.iter()
            .filter(|r| r.topology == name)
            .cloned()
            .collect()
    };
    let expected = 100.0 * (4.0 * 2.0 + 5.0 * 0.001) / 2.0;
    for name in ["memory", "same-zone"] {
        assert_theory(
            &format!("{name}: sessions lost with zone 1 of 2"),
            &of(name),
            |r| metric(r, "sessions_lost_zone_outage"),
            expected,
            0.0,
        );
    }
    for run in of("other-zone") {
        assert_eq!(metric(&run, "sessions_lost"), 0.0, "a copy survives");
        assert!(metric(&run, "sessions_failed_over") > 100.0);
    }
}

#[test]
fn hops_between_zones_add_their_latency_and_their_bytes() {
    // Constant hops: 1 ms of work, 1 ms more each way between zones, 2 zones of 2 servers
    // (0 1 0 1) under round robin, clients spread over the zones at random. A request whose
    // server is outside its client's zone pays 2 ms and moves its 1,000 bytes across; the share
    // that does is read back from the bytes, and the mean latency must be 1 + 2 × share exactly.
    // With zone affinity none crosses. With a store (one shard, its primary in zone 0) the half
    // of the requests on zone-1 servers also pay a 2 ms round trip to it, and move the 2,000-byte
    // session across.
    let runs = simulate_text(
        r#"
name = "cross-zone"
seed = 4
duration = "61s"
warmup = "1s"
[workload]
sessions_per_second = 200
service_time = "1ms"
request_bytes = 1000
[network]
cross_zone = "1ms"
[servers]
count = 4
workers = 64
zones = 2
[balancer]
policy = "round_robin"
[[topology]]
name = "any-zone"
state = "none"
[[topology]]
name = "same-zone"
state = "none"
balancer = { zone_affinity = true }
[[topology]]
name = "store"
state = "store"
session_bytes = 2000
store = { workers = 64, read = "1ms", write = "1ms", write_fraction = 0.0 }
"#,
    );
    let run = |name: &str| runs.iter().find(|r| r.topology == name).unwrap();
    let crossing = metric(run("any-zone"), "cross_zone_bytes_per_request") / 1000.0;
    assert!((crossing - 0.5).abs() < 0.02, "clients spread: {crossing}");
    let mean = metric(run("any-zone"), "latency_mean_ms");
    assert!((mean - (1.0 + 2.0 * crossing)).abs() < 1e-3, "{mean} ms");
    assert_eq!(
        metric(run("same-zone"), "cross_zone_bytes_per_request"),
        0.0
    );
    assert!((metric(run("same-zone"), "latency_mean_ms") - 1.0).abs() < 1e-3);
    let store = run("store");
    let store_crossing =
        (metric(store, "cross_zone_bytes_per_request") - 1000.0 * crossing) / 2000.0;
    assert!((store_crossing - 0.5).abs() < 1e-3, "{store_crossing}");
    let mean = metric(store, "latency_mean_ms");
    let expected = 2.0 + 2.0 * crossing + 2.0 * 0.5;
    assert!(
        (mean - expected).abs() < 0.01,
        "{mean} ms, expected {expected}"
    );
}

/// An M/M/c queue with `servers` single-worker servers under random dispatch at load `rho`, as
/// a scenario (each server is an M/M/1 at `rho`).
fn mm1_fleet(rho: f64, duration: &str, replications: u32, store: &str) -> String {
    format!(
        r#"
name = "saturation"
seed = 12
duration = "{duration}"
warmup = "1s"
replications = {replications}
[workload]
sessions_per_second = {}
service_time = {{ dist = "exponential", mean = "10ms" }}
[servers]
count = 4
workers = 1
[balancer]
policy = "random"
[[topology]]
name = "fleet"
{store}
"#,
        rho * 400.0
    )
}

#[test]
fn an_overloaded_queue_is_found_saturated_and_a_heavily_loaded_stable_one_never() {
    // ρ = 1.2: each server's queue grows by 20 requests a second; detected after one 30 s
    // window (it is full from the first seconds on).
    let overloaded = simulate_text(&mm1_fleet(1.2, "120s", 3, "state = \"none\""));
    for run in &overloaded {
        assert_eq!(metric(run, "saturated_servers"), 1.0);
        assert_eq!(metric(run, "saturated_store"), 0.0);
        let at = metric(run, "saturated_at_s");
        assert!(at < 15.0, "the window showing it starts early: {at} s");
    }
    // ρ = 0.9 for an hour in each of 4 replications (1,440 windows of 30 s per server): busy
    // stretches with a queue come and go, and none is called saturated.
    let stable = simulate_text(&mm1_fleet(0.9, "3600s", 4, "state = \"none\""));
    for run in &stable {
        assert_eq!(metric(run, "saturated_servers"), 0.0, "ρ = 0.9 is stable");
        assert!(metric(run, "saturated_at_s").is_nan());
    }
    // A store that can do 50 operations a second for 240 requests a second: the servers wait
    // for it with their worker held, so their queues grow while the store's stays within 4; the
    // store is what saturated.
    let store = simulate_text(&mm1_fleet(
        0.6,
        "120s",
        1,
        "state = \"store\"\n[topology.store]\nread = \"20ms\"\nwrite_fraction = 0",
    ));
    assert_eq!(metric(&store[0], "saturated_store"), 1.0);
    assert_eq!(metric(&store[0], "saturated_servers"), 0.0);
}
