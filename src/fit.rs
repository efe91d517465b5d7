//! `statesim fit`: a `[workload]` section fitted to a request log (one CSV row per request, with
//! a timestamp and a session id, in time order): the session arrival rate per bucket as a step
//! schedule, requests per session as a geometric distribution, think times (the gaps between a
//! session's requests) and service times as lognormals fitted to their p50 and p99, each with a
//! Kolmogorov–Smirnov distance saying how well it fits.
//!
//! The log is read as a stream: memory holds the sessions still active and a fixed-size sample
//! of each quantity, not the log.

use crate::engine::SimTime;
use crate::scenario::units::format_duration;
use rand::{RngExt, SeedableRng};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// How many values of each quantity are kept for the fits (a uniform reservoir sample).
const SAMPLE: usize = 100_000;

/// How to read the log.
#[derive(Clone, Debug)]
pub struct FitOptions {
    pub timestamp_column: String,
    pub session_column: String,
    /// The column of each request's service time, if the log has one.
    pub service_time_column: Option<String>,
    /// Seconds per unit of the timestamp column (1 for seconds, 0.001 for milliseconds).
    pub timestamp_unit: f64,
    /// Seconds per unit of the service time column.
    pub service_time_unit: f64,
    /// The width of a schedule step.
    pub bucket: SimTime,
    /// A session's next request more than this after its last starts a new session.
    pub session_gap: SimTime,
    /// Where to write each quantity's sample, for empirical distributions (`--samples DIR`).
    pub samples_dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum FitError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Row {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{}: {message}", path.display())]
    Log { path: PathBuf, message: String },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Below this many values an empirical distribution's p99 rests on fewer than ten of them (a
/// sparse tail): the lognormal through p50 and p99 is printed instead.
const EMPIRICAL_AT_LEAST: usize = 1000;

/// A uniform sample of at most [`SAMPLE`] values of a stream (Vitter's algorithm R), seeded so
/// the same log gives the same fit.
struct Reservoir {
    values: Vec<f64>,
    seen: u64,
    rng: crate::engine::rng::StreamRng,
}

impl Reservoir {
    fn new(seed: u64) -> Reservoir {
        Reservoir {
            values: Vec::new(),
            seen: 0,
            rng: crate::engine::rng::StreamRng::seed_from_u64(seed),
        }
    }

    fn push(&mut self, value: f64) {
        self.seen += 1;
        if self.values.len() < SAMPLE {
            self.values.push(value);
        } else {
            let slot = self.rng.random_range(0..self.seen);
            if (slot as usize) < SAMPLE {
                self.values[slot as usize] = value;
            }
        }
    }

    fn sorted(mut self) -> Vec<f64> {
        self.values.sort_by(f64::total_cmp);
        self.values
    }
}

/// What the log says, before fitting.
struct Observed {
    /// Session starts per bucket.
    starts: Vec<u64>,
    requests: u64,
    sessions: u64,
    span_seconds: f64,
    requests_per_session: Reservoir,
    think_seconds: Reservoir,
    service_seconds: Reservoir,
}

/// A session still sending requests: its last request's time and its requests so far.
struct Active {
    last: f64,
    requests: u64,
}

/// Reads the log and prints the fitted `[workload]` section.
pub fn fit(path: &Path, options: &FitOptions) -> Result<String, FitError> {
    let file = std::fs::File::open(path).map_err(|source| FitError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let observed = observe(file, path, options)?;
    render(path, options, observed)
}

/// A quantity's sample, written for an empirical distribution: one value a row under `column`.
fn write_sample(dir: &Path, name: &str, column: &str, values: &[f64]) -> Result<PathBuf, FitError> {
    let path = dir.join(format!("{name}.csv"));
    let mut text = format!("{column}\n");
    for value in values {
        text.push_str(&format!("{value}\n"));
    }
    std::fs::create_dir_all(dir)
        .and_then(|()| crate::output::write_file(&path, &text))
        .map_err(|source| FitError::Write {
            path: path.clone(),
            source,
        })?;
    Ok(path)
}

/// The empirical line for a quantity when a samples folder was asked for and the sample is big
/// enough; None otherwise. `scale` turns seconds into the column's unit.
fn empirical_line(
    options: &FitOptions,
    key: &str,
    sorted: &[f64],
    (column, unit, scale): (&str, Option<&str>, f64),
    parametric: &str,
) -> Result<Option<String>, FitError> {
    let Some(dir) = &options.samples_dir else {
        return Ok(None);
    };
    if sorted.len() < EMPIRICAL_AT_LEAST {
        return Ok(None);
    }
    let values: Vec<f64> = sorted.iter().map(|v| v * scale).collect();
    let path = write_sample(dir, key, column, &values)?;
    let unit = unit.map_or(String::new(), |u| format!(", unit = \"{u}\""));
    Ok(Some(format!(
        "{key} = {{ dist = \"empirical\", file = \"{}\", column = \"{column}\"{unit} }}   # resamples {} values; {parametric}",
        path.display().to_string().replace('\\', "/"),
        sorted.len()
    )))
}

/// Which columns of a log to read, and their units.
#[derive(Clone, Debug, PartialEq)]
pub struct LogColumns {
    pub timestamp: String,
    pub session: String,
    pub service_time: Option<String>,
    /// Seconds per unit of the timestamp column.
    pub timestamp_unit: f64,
    /// Seconds per unit of the service time column.
    pub service_time_unit: f64,
    /// Columns of each request's and response's size in bytes, if the log has them.
    pub request_bytes: Option<String>,
    pub response_bytes: Option<String>,
}

/// One request of a log.
#[derive(Clone, Debug, PartialEq)]
pub struct LogRow {
    /// Seconds since the log's first request.
    pub at: f64,
    pub session: String,
    /// Seconds, when the log has a service time column.
    pub service: Option<f64>,
    /// Request plus response bytes, when the log has either column.
    pub payload: Option<f64>,
}

/// A request log read row by row, each row checked: numbers where numbers belong, in time
/// order. `statesim fit` and `workload.trace` read logs through it.
pub struct LogReader<R: Read> {
    path: PathBuf,
    reader: csv::Reader<R>,
    record: csv::StringRecord,
    time_at: usize,
    session_at: usize,
    service_at: Option<usize>,
    bytes_at: [Option<usize>; 2],
    units: (f64, f64),
    origin: Option<f64>,
    previous: f64,
}

impl LogReader<std::io::BufReader<std::fs::File>> {
    pub fn open(path: &Path, columns: &LogColumns) -> Result<Self, FitError> {
        let file = std::fs::File::open(path).map_err(|source| FitError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        LogReader::new(std::io::BufReader::new(file), path, columns)
    }
}

impl<R: Read> LogReader<R> {
    pub fn new(input: R, path: &Path, columns: &LogColumns) -> Result<Self, FitError> {
        let row_error = |line: u64, message: String| FitError::Row {
            path: path.to_path_buf(),
            line,
            message,
        };
        let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(input);
        let headers = reader
            .headers()
            .map_err(|e| row_error(1, format!("cannot read the header: {e}")))?
            .clone();
        let column = |name: &str| -> Result<usize, FitError> {
            headers.iter().position(|h| h == name).ok_or_else(|| {
                let names: Vec<String> = headers
                    .iter()
                    .take(10)
                    .map(|h| crate::text::printable(h, 40))
                    .collect();
                row_error(
                    1,
                    format!(
                        "no column named \"{}\": the header has {}",
                        crate::text::printable(name, 40),
                        names.join(", ")
                    ),
                )
            })
        };
        Ok(LogReader {
            path: path.to_path_buf(),
            time_at: column(&columns.timestamp)?,
            session_at: column(&columns.session)?,
            service_at: columns.service_time.as_deref().map(column).transpose()?,
            bytes_at: [
                columns.request_bytes.as_deref().map(column).transpose()?,
                columns.response_bytes.as_deref().map(column).transpose()?,
            ],
            reader,
            record: csv::StringRecord::new(),
            units: (columns.timestamp_unit, columns.service_time_unit),
            origin: None,
            previous: f64::NEG_INFINITY,
        })
    }

    /// The next request, or None at the end of the log.
    pub fn next_row(&mut self) -> Result<Option<LogRow>, FitError> {
        let line = self.reader.position().line();
        let row_error = |message: String| FitError::Row {
            path: self.path.clone(),
            line,
            message,
        };
        match self.reader.read_record(&mut self.record) {
            Ok(false) => return Ok(None),
            Ok(true) => {}
            Err(e) => return Err(row_error(format!("cannot read the row: {e}"))),
        }
        let record = &self.record;
        let number = |at: usize, what: &str, unit: f64| -> Result<f64, FitError> {
            let text = record.get(at).unwrap_or("").trim();
            match text.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v * unit),
                _ => Err(row_error(format!(
                    "column {} ({what}): expected a number, got \"{}\"",
                    at + 1,
                    crate::text::printable(text, 40)
                ))),
            }
        };
        let time = number(self.time_at, "timestamp", self.units.0)?;
        if time < self.previous {
            return Err(row_error(format!(
                "the log must be in time order: this row's timestamp is {:.3} s before the \
                 previous row's",
                self.previous - time
            )));
        }
        let service = match self.service_at {
            Some(at) => {
                let service = number(at, "service time", self.units.1)?;
                if service < 0.0 {
                    return Err(row_error("a service time cannot be negative".into()));
                }
                Some(service)
            }
            None => None,
        };
        let mut payload = None;
        for at in self.bytes_at.into_iter().flatten() {
            let bytes = number(at, "bytes", 1.0)?;
            if bytes < 0.0 {
                return Err(row_error("a size in bytes cannot be negative".into()));
            }
            payload = Some(payload.unwrap_or(0.0) + bytes);
        }
        self.previous = time;
        let origin = *self.origin.get_or_insert(time);
        Ok(Some(LogRow {
            at: time - origin,
            session: record.get(self.session_at).unwrap_or("").to_string(),
            service,
            payload,
        }))
    }
}

fn observe(input: impl Read, path: &Path, options: &FitOptions) -> Result<Observed, FitError> {
    let columns = LogColumns {
        timestamp: options.timestamp_column.clone(),
        session: options.session_column.clone(),
        service_time: options.service_time_column.clone(),
        timestamp_unit: options.timestamp_unit,
        service_time_unit: options.service_time_unit,
        request_bytes: None,
        response_bytes: None,
    };
    let mut log = LogReader::new(input, path, &columns)?;
    let bucket = options.bucket.as_secs_f64();
    let gap = options.session_gap.as_secs_f64();
    let mut observed = Observed {
        starts: Vec::new(),
        requests: 0,
        sessions: 0,
        span_seconds: 0.0,
        requests_per_session: Reservoir::new(1),
        think_seconds: Reservoir::new(2),
        service_seconds: Reservoir::new(3),
    };
    let mut active: HashMap<String, Active> = HashMap::new();
    while let Some(row) = log.next_row()? {
        let at = row.at;
        observed.requests += 1;
        observed.span_seconds = at;
        if let Some(service) = row.service {
            observed.service_seconds.push(service);
        }
        match active.get_mut(&row.session) {
            Some(state) if at - state.last <= gap => {
                observed.think_seconds.push(at - state.last);
                state.last = at;
                state.requests += 1;
            }
            existing => {
                if let Some(ended) = existing {
                    observed.requests_per_session.push(ended.requests as f64);
                    *ended = Active {
                        last: at,
                        requests: 1,
                    };
                } else {
                    active.insert(
                        row.session,
                        Active {
                            last: at,
                            requests: 1,
                        },
                    );
                }
                observed.sessions += 1;
                let index = (at / bucket) as usize;
                if observed.starts.len() <= index {
                    observed.starts.resize(index + 1, 0);
                }
                observed.starts[index] += 1;
            }
        }
        // Sessions idle for longer than the gap are over: their counts go into the sample and
        // they leave memory (checked every so often, not per row).
        if observed.requests.is_multiple_of(65_536) {
            let mut ended = Vec::new();
            active.retain(|_, state| {
                let over = at - state.last > gap;
                if over {
                    ended.push(state.requests);
                }
                !over
            });
            // Sorted: a map's order differs from run to run, and the sample must not.
            ended.sort_unstable();
            for requests in ended {
                observed.requests_per_session.push(requests as f64);
            }
        }
    }
    if observed.requests == 0 {
        return Err(FitError::Log {
            path: path.to_path_buf(),
            message: "the log has no rows".into(),
        });
    }
    let mut remaining: Vec<u64> = active.into_values().map(|s| s.requests).collect();
    remaining.sort_unstable();
    for requests in remaining {
        observed.requests_per_session.push(requests as f64);
    }
    Ok(observed)
}

/// The standard normal CDF (Abramowitz and Stegun 7.1.26: error below 1.5e-7).
fn normal_cdf(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    if z >= 0.0 {
        (1.0 + erf) / 2.0
    } else {
        (1.0 - erf) / 2.0
    }
}

/// The value below which `q` of the sorted sample lies.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index]
}

/// The Kolmogorov–Smirnov distance between a sorted sample and a CDF. For a discrete law
/// (`discrete`) the two step functions are compared where they step, at the values themselves;
/// for a continuous one also just below each value.
fn ks_distance(sorted: &[f64], cdf: impl Fn(f64) -> f64, discrete: bool) -> f64 {
    let n = sorted.len() as f64;
    let mut distance: f64 = 0.0;
    let mut i = 0;
    while i < sorted.len() {
        // Ties count together: the empirical CDF jumps once per distinct value.
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1] == sorted[i] {
            j += 1;
        }
        let theory = cdf(sorted[i]);
        distance = distance.max(((j + 1) as f64 / n - theory).abs());
        if !discrete {
            distance = distance.max((theory - i as f64 / n).abs());
        }
        i = j + 1;
    }
    distance
}

/// A duration for the scenario file with 3 significant digits: "2.01s", "78.5ms", "850us".
fn shown(seconds: f64) -> String {
    let (value, unit) = if seconds >= 1.0 {
        (seconds, "s")
    } else if seconds >= 1e-3 {
        (seconds * 1e3, "ms")
    } else {
        (seconds * 1e6, "us")
    };
    let digits = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    let text = format!("{value:.digits$}");
    let trimmed = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{trimmed}{unit}")
}

/// A lognormal through the sample's p50 and p99 (as the scenario file fits it), its line for the
/// `[workload]` section, and its KS distance from the sample. Times in seconds.
fn lognormal_line(key: &str, sorted: &[f64]) -> Option<String> {
    let positive: Vec<f64> = sorted.iter().copied().filter(|v| *v > 0.0).collect();
    if positive.len() < 2 {
        return None;
    }
    let (p50, p99) = (quantile(&positive, 0.5), quantile(&positive, 0.99));
    if p99 <= p50 {
        return Some(format!(
            "{key} = \"{}\"   # every sampled value is about the same",
            shown(p50)
        ));
    }
    let mu = p50.ln();
    let sigma = (p99.ln() - mu) / 2.326_347_874;
    let zeros = sorted.len() - positive.len();
    let d = ks_distance(
        sorted,
        |x| {
            if x <= 0.0 {
                zeros as f64 / sorted.len() as f64
            } else {
                normal_cdf((x.ln() - mu) / sigma)
            }
        },
        false,
    );
    Some(format!(
        "{key} = {{ dist = \"lognormal\", p50 = \"{}\", p99 = \"{}\" }}   # KS distance {d:.3} over {} values{}",
        shown(p50),
        shown(p99),
        sorted.len(),
        verdict(d, sorted.len())
    ))
}

/// Whether a KS distance is within what sampling alone gives (the 5% critical value
/// 1.36 / sqrt(n)).
fn verdict(distance: f64, n: usize) -> String {
    let critical = 1.36 / (n as f64).sqrt();
    if distance <= critical {
        format!(" (within the 5% critical value {critical:.3}: a good fit)")
    } else {
        format!(" (above the 5% critical value {critical:.3}: the shape differs; check the tail)")
    }
}

fn render(path: &Path, options: &FitOptions, observed: Observed) -> Result<String, FitError> {
    let bucket = options.bucket.as_secs_f64();
    let mut out = format!(
        "# fitted by `statesim fit` to {}: {} requests in {} sessions over {}\n\
         # (a session ends when its user sends nothing for {})\n[workload]\n",
        crate::text::printable(&path.display().to_string(), 200),
        observed.requests,
        observed.sessions,
        format_duration(SimTime::from_secs(observed.span_seconds.round() as u64)),
        format_duration(options.session_gap)
    );
    out.push_str("schedule_shape = \"step\"\nschedule = [\n");
    for (index, count) in observed.starts.iter().enumerate() {
        let at = SimTime::from_secs_f64(index as f64 * bucket);
        out.push_str(&format!(
            "  {{ at = \"{}\", sessions_per_second = {} }},\n",
            format_duration(at),
            rate(*count as f64 / bucket)
        ));
    }
    out.push_str("]\n");
    let counts = observed.requests_per_session.sorted();
    let mean = counts.iter().sum::<f64>() / counts.len() as f64;
    let p = 1.0 / mean.max(1.0);
    let d = ks_distance(&counts, |k| 1.0 - (1.0 - p).powf(k.floor()), true);
    let geometric = format!(
        "requests_per_session = {{ dist = \"geometric\", mean = {} }}   # KS distance {d:.3} over {} sessions{}",
        rate(mean),
        counts.len(),
        verdict(d, counts.len())
    );
    let line = empirical_line(
        options,
        "requests_per_session",
        &counts,
        ("requests", None, 1.0),
        &format!(
            "a geometric of mean {} is at KS distance {d:.3}",
            rate(mean)
        ),
    )?;
    out.push_str(&format!("{}\n", line.unwrap_or(geometric)));
    for (key, sorted, column, missing) in [
        (
            "think_time",
            observed.think_seconds.sorted(),
            "think_time_ms",
            "think_time = \"0s\"   # no session in the log sent twice",
        ),
        (
            "service_time",
            observed.service_seconds.sorted(),
            "service_time_ms",
            "service_time = \"10ms\"   # assumption: the log has no service time column \
             (--service-time COLUMN); set yours",
        ),
    ] {
        let Some(lognormal) = lognormal_line(key, &sorted) else {
            out.push_str(&format!("{missing}\n"));
            continue;
        };
        let summary = lognormal.split("   # ").nth(1).unwrap_or("").to_string();
        let line = empirical_line(
            options,
            key,
            &sorted,
            (column, Some("ms"), 1e3),
            &format!("the lognormal through its p50 and p99: {summary}"),
        )?;
        out.push_str(&format!("{}\n", line.unwrap_or(lognormal)));
    }
    Ok(out)
}

/// A rate or mean with enough digits and no trailing noise.
fn rate(value: f64) -> String {
    let text = format!("{value:.4}");
    let trimmed = text.trim_end_matches('0').trim_end_matches('.');
    if trimmed.is_empty() {
        "0".into()
    } else {
        trimmed.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_normal_cdf_is_accurate() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(2.326_347_874) - 0.99).abs() < 1e-6);
        assert!((normal_cdf(-1.959_964) - 0.025).abs() < 1e-6);
    }

    #[test]
    fn the_ks_distance_of_a_sample_to_its_own_law_is_small_and_to_another_large() {
        let sample: Vec<f64> = (1..=1000).map(|i| i as f64 / 1001.0).collect();
        assert!(ks_distance(&sample, |x| x.clamp(0.0, 1.0), false) < 0.002);
        assert!(ks_distance(&sample, |x| (x * x).clamp(0.0, 1.0), false) > 0.2);
        // A fair die against its own step CDF: only sampling error.
        let die: Vec<f64> = (0..600).map(|i| f64::from(i / 100 + 1)).collect();
        assert!(ks_distance(&die, |k| (k.floor() / 6.0).min(1.0), true) < 1e-12);
    }
}
