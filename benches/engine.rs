//! Events per second of the engine on plain M/M/c models (c = 8, rho = 0.8, exponential service,
//! one request per session): random dispatch to 8 single-worker servers, and one shared queue in
//! front of 8 workers. Criterion reports the throughput in events (queue pops) per second.
//!
//! Run: `cargo bench --bench engine`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use statesim::model::simulate;
use statesim::scenario::{Scenario, load_str};
use std::hint::black_box;
use std::path::Path;

/// lambda = 6.4 per ms against 8 workers of mean 1 ms: rho = 0.8; 10 s simulate 64,000 requests.
fn mmc(servers: u32, workers: u32, policy: &str) -> Scenario {
    let text = format!(
        r#"name = "bench"
duration = "10s"
[workload]
sessions_per_second = 6400
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

fn bench_mmc(c: &mut Criterion) {
    let cases = [
        ("random_dispatch_8x1", mmc(8, 1, "random")),
        ("shared_queue_1x8", mmc(1, 8, "round_robin")),
    ];
    let mut group = c.benchmark_group("mmc_rho0.8");
    group.sample_size(20);
    for (name, scenario) in &cases {
        let events = simulate(scenario, &scenario.topologies[0], 0).events;
        group.throughput(Throughput::Elements(events));
        group.bench_function(*name, |b| {
            b.iter(|| black_box(simulate(black_box(scenario), &scenario.topologies[0], 0)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_mmc);
criterion_main!(benches);
