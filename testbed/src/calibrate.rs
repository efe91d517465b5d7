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
    /// Signing or verifying tokens.
    pub verify: Vec<f64>,
}

/// The most samples kept of each quantity (the simulation resamples them).
const MAX_SAMPLES: usize = 500_000;

/// One answered request as calibration sees it, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Observed {
    /// As the client saw it, for its last attempt.
    pub latency: f64,
    /// Accepted to answered, inside the server (queueing included).
    pub backend: f64,
    /// The worker's time on it (its store round trips included).
    pub busy: f64,
    /// Its store round trips.
    pub store: [Option<f64>; 2],
    /// Signing or verifying its token.
    pub verify: Option<f64>,
    /// Attempts the client made (a retried request's wait is no hop).
    pub attempts: u32,
}

impl Samples {
    /// Adds a run's answered requests.
    pub fn add(&mut self, recorded: &Recorded) {
        for request in &recorded.requests {
            let Some(timing) = request.timing else {
                continue;
            };
            if request.outcome != Outcome::Ok {
                continue;
            }
            self.add_one(Observed {
                latency: request.attempt_latency.as_secs_f64() * 1e6,
                backend: timing.backend as f64,
                busy: timing.busy as f64,
                store: [
                    timing.get.map(|us| us as f64),
                    timing.set.map(|us| us as f64),
                ],
                verify: timing.verify.map(|us| us as f64),
                attempts: request.attempts,
            });
        }
    }

    /// Adds one successful request.
    pub fn add_one(&mut self, observed: Observed) {
        if self.service.len() >= MAX_SAMPLES {
            return;
        }
        // The simulation adds a token's verification itself (`verify_time`); signing a new token
        // has no key of its own and stays in the service time.
        let store: f64 = observed.store.iter().flatten().sum();
        let verify = observed.verify.unwrap_or(0.0);
        self.service.push((observed.busy - store - verify).max(0.0));
        self.verify.extend(observed.verify);
        if observed.attempts == 1 {
            self.hop
                .push((observed.latency - observed.backend).max(0.0));
        }
        self.store_round_trip
            .extend(observed.store.iter().flatten());
    }

    /// Reads a request log with the columns of a testbed run's requests.csv: `latency_ms`,
    /// `backend_us` and `busy_us`, and optionally `store_get_us`, `store_set_us`, `attempts` (1
    /// when absent) and `outcome` (rows other than `ok` are skipped).
    pub fn read_log(&mut self, path: &Path) -> Result<usize, LogError> {
        let error = |line: u64, message: String| LogError {
            path: path.to_path_buf(),
            line,
            message,
        };
        let mut reader = csv::Reader::from_path(path).map_err(|e| error(0, e.to_string()))?;
        let headers = reader
            .headers()
            .map_err(|e| error(1, e.to_string()))?
            .clone();
        let column = |name: &str| headers.iter().position(|h| h.trim() == name);
        let required = |name: &str| {
            column(name).ok_or_else(|| {
                error(
                    1,
                    format!(
                        "no `{name}` column (it has: {})",
                        headers.iter().take(10).collect::<Vec<_>>().join(", ")
                    ),
                )
            })
        };
        let (latency, backend, busy) = (
            required("latency_ms")?,
            required("backend_us")?,
            required("busy_us")?,
        );
        let (get, set) = (column("store_get_us"), column("store_set_us"));
        let verify = column("verify_us");
        let (attempts, outcome) = (column("attempts"), column("outcome"));
        let mut used = 0;
        for (row, record) in reader.records().enumerate() {
            let line = row as u64 + 2;
            let record = record.map_err(|e| error(line, e.to_string()))?;
            if outcome.is_some_and(|i| record.get(i).is_some_and(|v| v != "ok")) {
                continue;
            }
            let number = |index: usize| -> Result<f64, LogError> {
                let cell = record.get(index).unwrap_or("").trim();
                cell.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .ok_or_else(|| {
                        error(
                            line,
                            format!(
                                "`{}` is not a duration: \"{}\"",
                                &headers[index],
                                statesim::text::shown(cell)
                            ),
                        )
                    })
            };
            let optional = |index: Option<usize>| -> Result<Option<f64>, LogError> {
                match index {
                    Some(i) if !record.get(i).unwrap_or("").trim().is_empty() => {
                        number(i).map(Some)
                    }
                    _ => Ok(None),
                }
            };
            self.add_one(Observed {
                latency: number(latency)? * 1e3,
                backend: number(backend)?,
                busy: number(busy)?,
                store: [optional(get)?, optional(set)?],
                verify: optional(verify)?,
                attempts: optional(attempts)?.map_or(1, |a| a as u32),
            });
            used += 1;
        }
        Ok(used)
    }
}

/// A request log calibration cannot read.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}: {message}", path.display())]
pub struct LogError {
    pub path: PathBuf,
    pub line: u64,
    pub message: String,
}

/// The `--set` overrides that feed a deployment's samples to the simulation, and the files they
/// read. `store_service_us` is the store's own mean service time in the scenario, taken out of
/// each round trip; each of `token_topologies` gets the measured verification times.
pub fn write(
    samples: &Samples,
    dir: &Path,
    store_service_us: f64,
    token_topologies: &[String],
) -> io::Result<Vec<String>> {
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
    if !samples.verify.is_empty() {
        let file = write_column(&dir.join("verify_us.csv"), &samples.verify)?;
        for name in token_topologies {
            overrides.push(format!("topology.{name}.verify_time={}", empirical(&file)));
        }
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
                verify: None,
            }),
        };
        let recorded = Recorded {
            requests: vec![answered(1, 20_500), answered(2, 21_000)],
            sessions: Vec::new(),
        };
        // What a run writes, calibration reads back the same.
        let log = std::env::temp_dir().join(format!("testbed-log-{}.csv", std::process::id()));
        recorded
            .write_requests(std::fs::File::create(&log).unwrap())
            .unwrap();
        let mut from_log = Samples::default();
        assert_eq!(from_log.read_log(&log).unwrap(), 2);
        std::fs::remove_file(&log).unwrap();
        let mut samples = Samples::default();
        samples.add(&recorded);
        assert_eq!(samples.service, vec![19_960.0, 19_960.0]); // busy less the Redis GET
        assert_eq!(samples.hop, vec![400.0]); // a retried request's wait is no hop
        assert_eq!(from_log.service, samples.service);
        assert_eq!(from_log.hop, samples.hop);
        assert_eq!(from_log.store_round_trip, samples.store_round_trip);
        let dir = std::env::temp_dir().join(format!("testbed-calibrate-{}", std::process::id()));
        let overrides = write(&samples, &dir, 30.0, &[]).unwrap();
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

#[cfg(test)]
mod log_tests {
    use super::*;

    #[test]
    fn a_log_without_its_columns_or_with_garbage_is_refused_by_line() {
        let dir = std::env::temp_dir().join(format!("testbed-badlog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.csv");
        std::fs::write(&missing, "latency_ms,backend_us\n1,2\n").unwrap();
        let error = Samples::default().read_log(&missing).unwrap_err();
        assert!(
            error.to_string().contains(":1: no `busy_us` column"),
            "{error}"
        );
        let garbage = dir.join("garbage.csv");
        std::fs::write(&garbage, "latency_ms,backend_us,busy_us\n1,2,3\n1,x,3\n").unwrap();
        let error = Samples::default().read_log(&garbage).unwrap_err();
        assert!(
            error
                .to_string()
                .contains(":3: `backend_us` is not a duration"),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
