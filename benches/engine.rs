//! Simulation speed, in events per second (an event = one pop from the event queue) and in
//! simulated requests per second (designs differ in events per request, so compare the latter
//! across simulators):
//!
//! * `mmc_random_8x1`: M/M/c, c = 8, rho = 0.8, one request per session, exponential service,
//!   random dispatch to 8 single-worker servers (8 x M/M/1);
//! * `mmc_shared_1x8`: the same load on one shared queue in front of 8 workers (M/M/8);
//! * `quickstart`: the bundled quickstart (sessions, three topologies, a crash), all topologies;
//! * `fleet64_least_connections`, `fleet64_power_of_two`: 64 single-worker servers at rho = 0.8
//!   behind the two load-aware policies (least connections scans every server per request).
//!
//! Run: `cargo bench --bench engine` (criterion prints `thrpt` in elements/s: events in the
//! `events` group, requests in the `requests` group).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use statesim::model::simulate;
use statesim::scenario::{Scenario, load_file, load_str};
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

/// Poisson arrivals at rho = 0.8 against `servers` × `workers` workers of mean 1 ms.
fn mmc(servers: u32, workers: u32, policy: &str, duration: &str) -> Scenario {
    let rate = 800.0 * f64::from(servers * workers);
    let text = format!(
        r#"name = "bench"
duration = "{duration}"
[workload]
sessions_per_second = {rate}
service_time = {{ dist = "exponential", mean = "1ms" }}
[servers]
count = {servers}
workers = {workers}
[balancer]
policy = "{policy}"
[[topology]]
name = "mmc"
state = "none"
"#
    );
    load_str(&text, "bench.toml", Path::new("."), &[]).expect("benchmark scenario is valid")
}

fn quickstart() -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quickstart.toml");
    load_file(&path, &[]).expect("the bundled quickstart is valid")
}

/// One benchmark iteration: every topology of the scenario, replication 0.
/// Returns (events, requests simulated).
fn simulate_all(scenario: &Scenario) -> (u64, u64) {
    scenario
        .topologies
        .iter()
        .map(|topology| simulate(scenario, topology, 0))
        .fold((0, 0), |(events, requests), run| {
            (events + run.events, requests + run.requests_simulated)
        })
}

fn cases() -> Vec<(&'static str, Scenario)> {
    vec![
        ("mmc_random_8x1", mmc(8, 1, "random", "10s")),
        ("mmc_shared_1x8", mmc(1, 8, "round_robin", "10s")),
        ("quickstart", quickstart()),
        (
            "fleet64_least_connections",
            mmc(64, 1, "least_connections", "2s"),
        ),
        ("fleet64_power_of_two", mmc(64, 1, "power_of_two", "2s")),
    ]
}

fn bench_speed(c: &mut Criterion) {
    let cases = cases();
    for unit in ["events", "requests"] {
        let mut group = c.benchmark_group(unit);
        group
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3));
        for (name, scenario) in &cases {
            let (events, requests) = simulate_all(scenario);
            let per_iteration = if unit == "events" { events } else { requests };
            group.throughput(Throughput::Elements(per_iteration));
            group.bench_function(*name, |b| b.iter(|| simulate_all(black_box(scenario))));
        }
        group.finish();
    }
}

criterion_group!(benches, bench_speed);
criterion_main!(benches);
