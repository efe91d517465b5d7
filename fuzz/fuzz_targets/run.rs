//! Any bytes as a scenario file, and when it is valid, a short bounded run of every topology:
//! no panic, no unbounded growth (the run's limits stop it), and every run conserves its
//! requests and sessions.
#![no_main]

use libfuzzer_sys::fuzz_target;
use statesim::engine::SimTime;
use statesim::model::{Limits, simulate_within};
use statesim::scenario::{LoadOptions, load_points_str};
use std::path::Path;

/// Events one input may simulate: small, so the fuzzer tries many inputs a second.
const MAX_EVENTS: f64 = 50_000.0;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let options = LoadOptions::default();
    let Ok(mut points) = load_points_str(text, "fuzz.toml", Path::new("."), &options) else {
        return;
    };
    let mut scenario = points.remove(0).scenario;
    scenario.warmup_auto = false;
    scenario.replications = scenario.replications.min(2);
    // Shorten a long scenario until its estimate fits (the bundled ones run for minutes).
    for _ in 0..40 {
        let point = statesim::scenario::SweepPoint {
            params: Vec::new(),
            series_fixed: 0,
            scenario: scenario.clone(),
        };
        let estimate = statesim::budget::estimate(std::slice::from_ref(&point), 1, 1);
        if estimate.events <= MAX_EVENTS && estimate.memory_bytes(1) < 256e6 {
            break;
        }
        let shorter = SimTime::from_nanos(scenario.duration.nanos() / 2);
        if shorter == SimTime::ZERO {
            return;
        }
        scenario.duration = shorter;
        scenario.warmup = scenario.warmup.min(SimTime::from_nanos(shorter.nanos() / 2));
    }
    let limits = Limits::new(64 << 20, None, 4 * MAX_EVENTS as u64);
    for topology in &scenario.topologies {
        for replication in 0..scenario.replications {
            let Ok(run) = simulate_within(&scenario, topology, replication, &limits) else {
                return;
            };
            if let Err(broken) = run.counters.conservation() {
                panic!("{}: {broken}\n{text}", topology.name);
            }
        }
    }
});
