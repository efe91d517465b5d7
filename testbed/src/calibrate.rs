//! Calibration: what the deployment really spent, turned into scenario keys. The simulation is
//! then fed the service times the backends really slept and the hop overheads measured under
//! load, instead of the scenario's nominal values.
//!
//! - Service time: each answer's worker time (`X-Busy-Us`: reading the request, the sleep as
//!   the kernel served it, answering) less its Redis round trips, which the simulation adds
//!   itself. The sleep alone (`X-Service-Us`) leaves out the worker's own overhead: about
//!   0.1 ms a request here, enough to move the 99th percentile by a few percent.
//! - Hops: a request's latency at the client minus its time inside the backend
//!   (`X-Backend-Us`): connecting, HAProxy's work both ways and loopback. The simulation draws
//!   `network.client_balancer` each way, so it gets half of each sample; `balancer_server` is
//!   then zero.
//! - Store: each Redis round trip (`X-Get-Us`, `X-Set-Us`) less the store's own service time,
//!   halved for `network.server_store` (drawn each way).
//!
//! Each quantity becomes an empirical distribution: a CSV of samples in microseconds that the
//! scenario resamples (`{ dist = "empirical", file, column = "us", unit = "us" }`).

use crate::load::{Outcome, Recorded};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Samples of one deployment, pooled over every run and topology, in microseconds.
#[derive(Debug, Default)]
pub struct Samples {
    pub service: Vec<f64>,
    pub hop: Vec<f64>,
    pub store_round_trip: Vec<f64>,
}

/// The most samples kept of each quantity (the simulation resamples them).
const MAX_SAMPLES: usize = 500_000;

impl Samples {
    /// Adds a run's answered requests. Only first attempts that succeeded count, so a retry's
    /// wait is not taken for a hop.
    pub fn add(&mut self, recorded: &Recorded) {
        for request in &recorded.requests {
            let Some(timing) = request.timing else {
                continue;
            };
            if request.outcome != Outcome::Ok || self.service.len() >= MAX_SAMPLES {
                continue;
            }
            let store = timing.get.unwrap_or(0) + timing.set.unwrap_or(0);
            self.service.push(timing.busy.saturating_sub(store) as f64);
            if request.attempts == 1 {
                let client = request.attempt_latency.as_secs_f64() * 1e6;
                self.hop.push((client - timing.backend as f64).max(0.0));
            }
            self.store_round_trip
                .extend(timing.get.iter().chain(&timing.set).map(|&us| us as f64));
        }
    }
}

/// The `--set` overrides that feed a deployment's samples to the simulation, and the files they
/// read. `store_service_us` is the store's own mean service time in the scenario, taken out of
/// each round trip.
pub fn write(samples: &Samples, dir: &Path, store_service_us: f64) -> io::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let mut overrides = Vec::new();
    if !samples.service.is_empty() {
        let file = write_column(&dir.join("service_us.csv"), &samples.service)?;
        overrides.push(format!("workload.service_time={}", empirical(&file)));
    }
    if !samples.hop.is_empty() {
        let halves: Vec<f64> = samples.hop.iter().map(|us| us / 2.0).collect();
        let file = write_column(&dir.join("hop_us.csv"), &halves)?;
        overrides.push(format!("network.client_balancer={}", empirical(&file)));
        overrides.push("network.balancer_server=\"0us\"".into());
    }
    if !samples.store_round_trip.is_empty() {
        let halves: Vec<f64> = samples
            .store_round_trip
            .iter()
            .map(|us| ((us - store_service_us) / 2.0).max(0.0))
            .collect();
        let file = write_column(&dir.join("store_hop_us.csv"), &halves)?;
        overrides.push(format!("network.server_store={}", empirical(&file)));
    }
    let mut listing = std::fs::File::create(dir.join("overrides.txt"))?;
    for line in &overrides {
        writeln!(listing, "--set '{line}'")?;
    }
    Ok(overrides)
}

fn empirical(file: &Path) -> String {
    format!(
        "{{ dist = \"empirical\", file = \"{}\", column = \"us\", unit = \"us\" }}",
        file.display()
    )
}

fn write_column(path: &Path, values: &[f64]) -> io::Result<PathBuf> {
    let mut out = io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "us")?;
    for value in values {
        writeln!(out, "{value:.1}")?;
    }
    out.flush()?;
    std::path::absolute(path)
}

/// The median of `values` (NaN when empty), for the printed summary.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{RequestRecord, Timing};
    use std::time::Duration;

    #[test]
    fn samples_become_empirical_overrides_the_scenario_reads() {
        let answered = |attempts, latency_us: u64| RequestRecord {
            sent: Duration::ZERO,
            done: Duration::from_micros(latency_us),
            outcome: Outcome::Ok,
            status: 200,
            attempts,
            attempt_latency: Duration::from_micros(latency_us),
            timing: Some(Timing {
                backend: 20_100,
                service: 20_050,
                busy: 20_090,
                get: Some(130),
                set: None,
            }),
        };
        let recorded = Recorded {
            requests: vec![answered(1, 20_500), answered(2, 21_000)],
            sessions: Vec::new(),
        };
        let mut samples = Samples::default();
        samples.add(&recorded);
        assert_eq!(samples.service, vec![19_960.0, 19_960.0]); // busy less the Redis GET
        assert_eq!(samples.hop, vec![400.0]); // a retried request's wait is no hop
        let dir = std::env::temp_dir().join(format!("testbed-calibrate-{}", std::process::id()));
        let overrides = write(&samples, &dir, 30.0).unwrap();
        assert_eq!(overrides.len(), 4);
        assert_eq!(
            std::fs::read_to_string(dir.join("hop_us.csv")).unwrap(),
            "us\n200.0\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("store_hop_us.csv")).unwrap(),
            "us\n50.0\n50.0\n"
        );
        // The scenario accepts them.
        let base = "name = \"t\"\nduration = \"1m\"\n[workload]\nsessions_per_second = 1\n[[topology]]\nname = \"r\"\nstate = \"store\"\n";
        let options = statesim::scenario::LoadOptions {
            overrides,
            allowed_dirs: vec![dir.clone()],
            ..Default::default()
        };
        let points =
            statesim::scenario::load_points_str(base, "t.toml", Path::new("."), &options).unwrap();
        let service = &points[0].scenario.workload.service_time;
        assert!((service.mean().unwrap_or(f64::NAN) - 19_960_000.0).abs() < 1.0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
