//! Probability distributions: parsed from a scenario value, sampled during the run.
//!
//! A distribution is written either as a plain value (a duration string for times, a number for
//! counts and sizes: a constant) or as a table naming the family:
//! `{ dist = "lognormal", p50 = "5ms", p99 = "40ms" }`. Every table may also carry `min` and `max`,
//! which clamp the samples (TPC-W truncates its think time at 70 s, for instance).

use super::Problem;
use super::units::{parse_bytes, parse_duration};
use crate::engine::SimTime;
use crate::text::{printable, shown};
use rand::{Rng, RngExt};
use rand_distr::{Distribution, Exp1, Gamma, LogNormal, Pareto, StandardNormal, Weibull};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toml::Value;

/// The 99th percentile of the standard normal distribution.
const Z99: f64 = 2.326_347_874_040_841;

/// What a distribution measures: it decides how its values are written and in which unit it samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantity {
    /// Durations, written as strings ("5ms"), sampled in nanoseconds.
    Time,
    /// Whole counts (requests per session), written as numbers.
    Count,
    /// Sizes in bytes, written as numbers or strings ("10KB").
    Bytes,
}

#[derive(Clone, Debug)]
enum Family {
    Constant(f64),
    Exponential {
        mean: f64,
    },
    Uniform {
        low: f64,
        high: f64,
    },
    LogNormal(LogNormal<f64>),
    Gamma(Gamma<f64>),
    Pareto(Pareto<f64>),
    Weibull(Weibull<f64>),
    /// Number of trials up to and including the first success (support 1, 2, ...).
    Geometric {
        ln_one_minus_p: f64,
    },
    Empirical {
        samples: Arc<[f64]>,
    },
}

/// An exponential draw of this mean. `Exp1.sample(rng)`, not `rng.sample(Exp1)`: the compiler
/// kept the latter a call of its own, 16 instructions more a draw.
#[inline(always)]
fn exponential<R: Rng + ?Sized>(mean: f64, rng: &mut R) -> f64 {
    let unit: f64 = Exp1.sample(rng);
    unit * mean
}

/// A log-normal draw: exactly `LogNormal::sample` (the normal's `from_zscore` of a standard
/// normal, then `exp`), with the standard normal drawn by its own `sample` for the same reason.
#[inline(always)]
fn log_normal<R: Rng + ?Sized>(d: &LogNormal<f64>, rng: &mut R) -> f64 {
    let z: f64 = StandardNormal.sample(rng);
    d.from_zscore(z)
}

/// A ready-to-sample distribution; samples are in the [`Quantity`]'s base unit.
#[derive(Clone, Debug)]
pub struct Dist {
    family: Family,
    mean: Option<f64>,
    min: f64,
    max: f64,
    /// The clamped value of a constant, worked out once: most draws in a run are of constants.
    constant: Option<f64>,
    /// The same as a time, for time distributions (which sample nanoseconds).
    constant_time: Option<SimTime>,
}

impl Dist {
    fn new(family: Family, mean: Option<f64>, min: f64, max: f64) -> Dist {
        let constant = match family {
            Family::Constant(value) => Some(value.clamp(min, max)),
            _ => None,
        };
        Dist {
            family,
            mean,
            min,
            max,
            constant,
            constant_time: constant.map(SimTime::from_nanos_f64),
        }
    }

    pub fn constant(value: f64) -> Dist {
        Dist::new(
            Family::Constant(value),
            Some(value),
            f64::NEG_INFINITY,
            f64::INFINITY,
        )
    }

    pub fn zero() -> Dist {
        Dist::constant(0.0)
    }

    /// The constant value, when the distribution is a constant (no draw needed).
    #[inline]
    pub fn as_constant(&self) -> Option<f64> {
        self.constant
    }

    /// [`Dist::as_constant`] as a time, for a time distribution.
    #[inline]
    pub fn as_constant_time(&self) -> Option<SimTime> {
        self.constant_time
    }

    /// The theoretical mean before clamping, where it exists (`None` for a Pareto with shape <= 1).
    pub fn mean(&self) -> Option<f64> {
        self.mean
    }

    /// A draw from the distribution, clamped to its bounds.
    ///
    /// The exponential is drawn here, inlined where it is called; the other families out of
    /// line, so that a caller's frame is not sized for all of them: −15 instructions a request of
    /// the M/M/c benchmark. The log-normal inlined here as well took 5.2% off the instructions
    /// of the scale benchmark at k = 1 (three draws a request) but 1.1% more time (25 pairs).
    #[inline(always)]
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        match &self.family {
            Family::Exponential { mean } => exponential(*mean, rng).clamp(self.min, self.max),
            _ => self.sample_family(rng),
        }
    }

    /// Whether this is an exponential (drawn by [`Dist::sample`] inline).
    #[inline(always)]
    pub(crate) fn is_exponential(&self) -> bool {
        matches!(self.family, Family::Exponential { .. })
    }

    #[inline(never)]
    fn sample_family<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        self.sample_any(rng)
    }

    /// [`Dist::sample`] with every family inlined: for the one out-of-line function that draws
    /// a model's keyed non-exponential values (`World::keyed_other`), where a second call per
    /// draw would be all overhead.
    #[inline(always)]
    pub(crate) fn sample_any<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let raw = match &self.family {
            Family::Constant(v) => *v,
            Family::Exponential { mean } => exponential(*mean, rng),
            Family::LogNormal(d) => log_normal(d, rng),
            Family::Uniform { low, high } => low + (high - low) * rng.random::<f64>(),
            Family::Gamma(d) => d.sample(rng),
            Family::Pareto(d) => d.sample(rng),
            Family::Weibull(d) => d.sample(rng),
            Family::Geometric { ln_one_minus_p } => {
                if *ln_one_minus_p == f64::NEG_INFINITY {
                    1.0
                } else {
                    // Inverse transform: ceil(ln U / ln(1-p)), with U in (0, 1].
                    let u = 1.0 - rng.random::<f64>();
                    (u.ln() / ln_one_minus_p).ceil().max(1.0)
                }
            }
            Family::Empirical { samples } => samples[rng.random_range(0..samples.len())],
        };
        raw.clamp(self.min, self.max)
    }

    /// A sample rounded to a whole count of at least one (requests per session).
    pub fn sample_count<R: Rng + ?Sized>(&self, rng: &mut R) -> u32 {
        let value = match self.constant {
            Some(value) => value,
            None => self.sample(rng),
        };
        Dist::round_count(value)
    }

    /// Rounds a sample to a whole count of at least one.
    pub fn round_count(value: f64) -> u32 {
        // The cast saturates (NaN becomes 0), so this is `round` without the libm call.
        ((value.max(0.0) + (0.5 - 0.25 * f64::EPSILON)) as u32).max(1)
    }
}

/// Where empirical-distribution files are looked up (the scenario file's folder) and which
/// folders they may be in: that folder and any `--allow-path` folder.
pub struct DistContext<'a> {
    pub base_dir: &'a Path,
    pub allowed_dirs: &'a [PathBuf],
}

/// The largest empirical-distribution file read (a million samples take about 10 MB of CSV).
pub const MAX_EMPIRICAL_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Parses a distribution written at `path` in the scenario.
pub fn parse_dist(
    value: &Value,
    quantity: Quantity,
    path: &str,
    context: &DistContext,
) -> Result<Dist, Problem> {
    let mut dist = match value {
        Value::Table(table) => parse_dist_table(table, quantity, path, context)?,
        plain => Dist::constant(parse_scalar(plain, quantity, path)?),
    };
    if quantity == Quantity::Count
        && let Some(count) = dist.as_constant()
        && (count < 1.0 || count.fract() != 0.0)
    {
        return Err(Problem::new(
            path,
            format!(
                "a count is a whole number of at least 1, got {count} (for a mean that is not \
                 whole, use a distribution such as {{ dist = \"geometric\", mean = 2.5 }})"
            ),
        ));
    }
    if quantity == Quantity::Bytes {
        // A heavy tail must not sum to infinity in bytes_per_request.
        dist.max = dist.max.min(MAX_BYTES);
    }
    Ok(dist)
}

/// The largest size a byte quantity takes: 1 TiB.
pub const MAX_BYTES: f64 = 1_099_511_627_776.0;

/// Parses one plain value in the quantity's unit (nanoseconds for times).
pub fn parse_scalar(value: &Value, quantity: Quantity, path: &str) -> Result<f64, Problem> {
    let parsed = match (quantity, value) {
        (Quantity::Time, Value::String(text)) => parse_duration(text).map(|t| t.nanos() as f64),
        (Quantity::Time, Value::Integer(0)) => Ok(0.0),
        (Quantity::Time, Value::Float(x)) if !x.is_finite() => Err(format!(
            "expected a duration such as \"250us\", \"20ms\" or \"1m30s\", got {x}"
        )),
        (Quantity::Time, Value::Integer(_) | Value::Float(_)) => Err(format!(
            "a duration needs a unit: write e.g. \"{value}ms\" or \"{value}s\""
        )),
        (Quantity::Bytes, Value::String(text)) => parse_bytes(text),
        (Quantity::Count | Quantity::Bytes, Value::Integer(n)) => Ok(*n as f64),
        (Quantity::Count | Quantity::Bytes, Value::Float(x)) => Ok(*x),
        (Quantity::Count, _) => Err(format!("expected a number, found {}", value.type_str())),
        (Quantity::Bytes, _) => Err(format!(
            "expected a size in bytes (a number or e.g. \"10KB\"), found {}",
            value.type_str()
        )),
        (Quantity::Time, _) => Err(format!(
            "expected a duration such as \"5ms\" or a distribution table, found {}",
            value.type_str()
        )),
    };
    let number = parsed.map_err(|message| Problem::new(path, message))?;
    if !number.is_finite() || number < 0.0 {
        return Err(Problem::new(
            path,
            format!("must be a finite, non-negative value, got {number}"),
        ));
    }
    if quantity == Quantity::Bytes && number > MAX_BYTES {
        return Err(Problem::new(
            path,
            format!("{number:e} bytes is more than the 1 TiB a size may be"),
        ));
    }
    Ok(number)
}

/// The parameters each family takes (besides `dist`, `min` and `max`).
fn family_keys(family: &str) -> Option<&'static [&'static str]> {
    Some(match family {
        "constant" => &["value"],
        "exponential" | "geometric" => &["mean"],
        "uniform" => &["min", "max"],
        "lognormal" => &["mean", "cv", "p50", "p99"],
        "gamma" => &["mean", "cv"],
        "pareto" => &["shape", "scale", "mean"],
        "weibull" => &["scale", "shape", "mean"],
        "empirical" => &["file", "column", "unit"],
        _ => return None,
    })
}

const FAMILIES: &str =
    "constant, exponential, uniform, lognormal, gamma, pareto, weibull, geometric, empirical";

fn parse_dist_table(
    table: &toml::Table,
    quantity: Quantity,
    path: &str,
    context: &DistContext,
) -> Result<Dist, Problem> {
    let family_name = match table.get("dist") {
        Some(Value::String(name)) => name.as_str(),
        Some(other) => {
            return Err(Problem::new(
                format!("{path}.dist"),
                format!(
                    "expected a string naming the family ({FAMILIES}), found {}",
                    other.type_str()
                ),
            ));
        }
        None => {
            return Err(Problem::new(
                path,
                format!("a distribution table needs `dist = \"...\"` (one of {FAMILIES})"),
            ));
        }
    };
    let params = Params {
        table,
        quantity,
        path,
    };
    // A misspelt key is named as such, not reported as the parameter it was meant to be missing.
    if let Some(keys) = family_keys(family_name) {
        params.reject_unknown(keys)?;
    }
    let (family, mean, allowed): (Family, Option<f64>, &[&str]) = match family_name {
        "constant" => {
            let value = params.required("value")?;
            (Family::Constant(value), Some(value), &["value"])
        }
        "exponential" => {
            let mean = params.positive("mean")?;
            (Family::Exponential { mean }, Some(mean), &["mean"])
        }
        "uniform" => {
            let low = params.required("min")?;
            let high = params.required("max")?;
            if high < low {
                return Err(Problem::new(
                    format!("{path}.max"),
                    "max must be at least min",
                ));
            }
            // For uniform, min/max are the family's parameters, not a clamp.
            let dist = Dist::new(
                Family::Uniform { low, high },
                Some((low + high) / 2.0),
                f64::NEG_INFINITY,
                f64::INFINITY,
            );
            params.reject_unknown(&["min", "max"])?;
            return Ok(dist);
        }
        "lognormal" => parse_lognormal(&params)?,
        "gamma" => {
            let mean = params.positive("mean")?;
            let cv = params.positive_number("cv")?;
            let shape = 1.0 / (cv * cv);
            let gamma = Gamma::new(shape, mean / shape)
                .map_err(|e| Problem::new(path, format!("invalid gamma parameters: {e}")))?;
            (Family::Gamma(gamma), Some(mean), &["mean", "cv"])
        }
        "pareto" => {
            let shape = params.positive_number("shape")?;
            let scale = if table.contains_key("mean") {
                let mean = params.positive("mean")?;
                if shape <= 1.0 {
                    return Err(Problem::new(
                        format!("{path}.shape"),
                        "a Pareto with a finite mean needs shape > 1",
                    ));
                }
                mean * (shape - 1.0) / shape
            } else {
                params.positive("scale")?
            };
            let pareto = Pareto::new(scale, shape)
                .map_err(|e| Problem::new(path, format!("invalid pareto parameters: {e}")))?;
            let mean = (shape > 1.0).then(|| scale * shape / (shape - 1.0));
            (Family::Pareto(pareto), mean, &["shape", "scale", "mean"])
        }
        "weibull" => {
            let shape = params.positive_number("shape")?;
            // E[X] = scale · Γ(1 + 1/shape): either may be given.
            let gamma_term = crate::stats::ln_gamma(1.0 + 1.0 / shape).exp();
            let scale = if table.contains_key("mean") {
                params.positive("mean")? / gamma_term
            } else {
                params.positive("scale")?
            };
            let weibull = Weibull::new(scale, shape)
                .map_err(|e| Problem::new(path, format!("invalid weibull parameters: {e}")))?;
            let mean = Some(scale * gamma_term).filter(|m| m.is_finite());
            (Family::Weibull(weibull), mean, &["scale", "shape", "mean"])
        }
        "geometric" if quantity != Quantity::Count => {
            return Err(Problem::new(
                format!("{path}.dist"),
                "geometric counts trials, so it gives whole numbers: use it for \
                 requests_per_session; for a time or a size use exponential, gamma or lognormal",
            ));
        }
        "geometric" => {
            let mean = params.positive_number("mean")?;
            if mean < 1.0 {
                return Err(Problem::new(
                    format!("{path}.mean"),
                    "a geometric count has mean >= 1 (it counts trials up to the first success)",
                ));
            }
            let p = 1.0 / mean;
            (
                Family::Geometric {
                    ln_one_minus_p: (1.0 - p).ln(),
                },
                Some(mean),
                &["mean"],
            )
        }
        "empirical" => {
            let samples = load_empirical(&params, context)?;
            let mean = samples.iter().sum::<f64>() / samples.len() as f64;
            (
                Family::Empirical { samples },
                Some(mean),
                &["file", "column", "unit"],
            )
        }
        other => {
            return Err(Problem::new(
                format!("{path}.dist"),
                format!(
                    "unknown distribution \"{}\"{}; expected one of {FAMILIES}",
                    shown(other),
                    crate::text::suggestion(other, FAMILIES.split(", "))
                ),
            ));
        }
    };
    params.reject_unknown(allowed)?;
    let min = params.optional("min")?.unwrap_or(f64::NEG_INFINITY);
    let max = params.optional("max")?.unwrap_or(f64::INFINITY);
    if max < min {
        return Err(Problem::new(
            format!("{path}.max"),
            "max must be at least min",
        ));
    }
    Ok(Dist::new(family, mean, min, max))
}

fn parse_lognormal(
    params: &Params,
) -> Result<(Family, Option<f64>, &'static [&'static str]), Problem> {
    let path = params.path;
    let has = |key| params.table.contains_key(key);
    let (mu, sigma) = if has("p50") || has("p99") {
        if has("mean") || has("cv") {
            return Err(Problem::new(
                path,
                "give a lognormal either {mean, cv} or {p50, p99}, not both",
            ));
        }
        let p50 = params.positive("p50")?;
        let p99 = params.positive("p99")?;
        if p99 <= p50 {
            return Err(Problem::new(
                format!("{path}.p99"),
                "p99 must be greater than p50",
            ));
        }
        (p50.ln(), (p99.ln() - p50.ln()) / Z99)
    } else {
        let mean = params.positive("mean")?;
        let cv = params.positive_number("cv")?;
        let sigma2 = (1.0 + cv * cv).ln();
        (mean.ln() - sigma2 / 2.0, sigma2.sqrt())
    };
    let lognormal = LogNormal::new(mu, sigma)
        .map_err(|e| Problem::new(path, format!("invalid lognormal parameters: {e}")))?;
    let mean = (mu + sigma * sigma / 2.0).exp();
    Ok((
        Family::LogNormal(lognormal),
        Some(mean),
        &["mean", "cv", "p50", "p99"],
    ))
}

struct Params<'a> {
    table: &'a toml::Table,
    quantity: Quantity,
    path: &'a str,
}

impl Params<'_> {
    fn key_path(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    fn optional(&self, key: &str) -> Result<Option<f64>, Problem> {
        self.table
            .get(key)
            .map(|value| parse_scalar(value, self.quantity, &self.key_path(key)))
            .transpose()
    }

    fn required(&self, key: &str) -> Result<f64, Problem> {
        self.optional(key)?.ok_or_else(|| {
            Problem::new(self.path, format!("missing `{key}` for this distribution"))
        })
    }

    /// A parameter in the quantity's unit that must be strictly positive.
    fn positive(&self, key: &str) -> Result<f64, Problem> {
        let value = self.required(key)?;
        if value <= 0.0 {
            return Err(Problem::new(
                self.key_path(key),
                "must be greater than zero",
            ));
        }
        Ok(value)
    }

    /// A dimensionless parameter (shape, cv, a count's mean): a plain positive number.
    fn positive_number(&self, key: &str) -> Result<f64, Problem> {
        let path = self.key_path(key);
        let value = match self.table.get(key) {
            None => {
                return Err(Problem::new(
                    self.path,
                    format!("missing `{key}` for this distribution"),
                ));
            }
            Some(Value::Integer(n)) => *n as f64,
            Some(Value::Float(x)) => *x,
            Some(other) => {
                return Err(Problem::new(
                    path,
                    format!("expected a number, found {}", other.type_str()),
                ));
            }
        };
        if !value.is_finite() || value <= 0.0 {
            return Err(Problem::new(
                path,
                format!("must be a positive number, got {value}"),
            ));
        }
        Ok(value)
    }

    fn reject_unknown(&self, allowed: &[&str]) -> Result<(), Problem> {
        for key in self.table.keys() {
            let common = matches!(key.as_str(), "dist" | "min" | "max");
            if !common && !allowed.contains(&key.as_str()) {
                return Err(Problem::new(
                    self.key_path(key),
                    format!(
                        "unknown parameter `{}`{}; this distribution takes {} (and optional \
                         min, max)",
                        shown(key),
                        crate::text::suggestion(key, allowed.iter().copied().chain(["min", "max"])),
                        allowed.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Reads the samples of an empirical distribution from a CSV column.
fn load_empirical(params: &Params, context: &DistContext) -> Result<Arc<[f64]>, Problem> {
    let path = params.path;
    let file = match params.table.get("file") {
        Some(Value::String(file)) => file,
        _ => {
            return Err(Problem::new(
                path,
                "an empirical distribution needs `file = \"observed.csv\"`",
            ));
        }
    };
    let unit_scale = match (params.quantity, params.table.get("unit")) {
        (Quantity::Time, None) => 1e6,
        (Quantity::Time, Some(Value::String(unit))) => parse_duration(&format!("1{unit}"))
            .map_err(|_| {
                Problem::new(
                    format!("{path}.unit"),
                    format!("unknown time unit \"{unit}\"; expected ns, us, ms, s, m or h"),
                )
            })?
            .nanos() as f64,
        (_, None) => 1.0,
        (_, Some(_)) => {
            return Err(Problem::new(
                format!("{path}.unit"),
                "`unit` applies only to time distributions",
            ));
        }
    };
    let full_path = readable_file(file, &format!("{path}.file"), context)?;
    let shown_path = shown(&full_path.display().to_string());
    let bytes = bounded_read(&full_path, &format!("{path}.file"))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes.as_slice());
    let headers = reader
        .headers()
        .map_err(|e| Problem::new(format!("{path}.file"), format!("{shown_path}: {e}")))?
        .clone();
    let column = match params.table.get("column") {
        None => 0,
        Some(Value::String(name)) => headers.iter().position(|h| h == name).ok_or_else(|| {
            Problem::new(
                format!("{path}.column"),
                format!(
                    "{shown_path} has no column \"{}\" (columns: {})",
                    shown(name),
                    column_names(&headers)
                ),
            )
        })?,
        Some(Value::Integer(index)) if *index >= 0 && (*index as usize) < headers.len() => {
            *index as usize
        }
        Some(_) => {
            return Err(Problem::new(
                format!("{path}.column"),
                format!("expected a column name or an index below {}", headers.len()),
            ));
        }
    };
    let mut samples = Vec::new();
    for (row, record) in reader.records().enumerate() {
        let record = record
            .map_err(|e| Problem::new(format!("{path}.file"), format!("{shown_path}: {e}")))?;
        let cell = record.get(column).unwrap_or("").trim();
        if cell.is_empty() {
            continue;
        }
        let value: f64 = cell.parse().map_err(|_| {
            Problem::new(
                format!("{path}.file"),
                format!(
                    "{shown_path} row {}: \"{}\" is not a number",
                    row + 2,
                    printable(cell, 40)
                ),
            )
        })?;
        if !value.is_finite() || value < 0.0 {
            return Err(Problem::new(
                format!("{path}.file"),
                format!(
                    "{shown_path} row {}: values must be finite and non-negative",
                    row + 2
                ),
            ));
        }
        samples.push(value * unit_scale);
    }
    if samples.is_empty() {
        return Err(Problem::new(
            format!("{path}.file"),
            format!("{shown_path} has no values in the chosen column"),
        ));
    }
    Ok(samples.into())
}

/// The file an empirical distribution names, if the scenario may read it: a path relative to
/// the scenario's folder that stays inside it (or inside an `--allow-path` folder), naming a
/// regular file. A scenario is untrusted input: it must not read `/proc/self/environ` or
/// `../../secrets` and show them in an error.
pub(crate) fn readable_file(
    file: &str,
    key: &str,
    context: &DistContext,
) -> Result<PathBuf, Problem> {
    let outside = || {
        Problem::new(
            key,
            format!(
                "\"{}\" is outside the scenario's folder: a scenario reads only files in its own \
                 folder (allow another with --allow-path DIR)",
                shown(file)
            ),
        )
    };
    let joined = context.base_dir.join(file);
    let canonical = joined
        .canonicalize()
        .map_err(|e| Problem::new(key, format!("cannot read \"{}\": {e}", shown(file))))?;
    let inside = std::iter::once(context.base_dir)
        .chain(context.allowed_dirs.iter().map(PathBuf::as_path))
        .filter_map(|dir| dir.canonicalize().ok())
        .any(|root| canonical.starts_with(root));
    if !inside {
        return Err(outside());
    }
    let metadata = std::fs::metadata(&canonical)
        .map_err(|e| Problem::new(key, format!("cannot read \"{}\": {e}", shown(file))))?;
    if !metadata.is_file() {
        return Err(Problem::new(
            key,
            format!("\"{}\" is not a regular file", shown(file)),
        ));
    }
    Ok(canonical)
}

/// The file's bytes, refusing one larger than [`MAX_EMPIRICAL_FILE_BYTES`] (checked on what is
/// read, not only on the size the file claims).
fn bounded_read(path: &Path, key: &str) -> Result<Vec<u8>, Problem> {
    let shown_path = shown(&path.display().to_string());
    let file = std::fs::File::open(path)
        .map_err(|e| Problem::new(key, format!("cannot read {shown_path}: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_EMPIRICAL_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Problem::new(key, format!("cannot read {shown_path}: {e}")))?;
    if bytes.len() as u64 > MAX_EMPIRICAL_FILE_BYTES {
        return Err(Problem::new(
            key,
            format!(
                "{shown_path} is larger than {} MiB, the most an empirical distribution reads",
                MAX_EMPIRICAL_FILE_BYTES / (1024 * 1024)
            ),
        ));
    }
    Ok(bytes)
}

/// A header's column names for a message: at most ten, each cut short and escaped.
fn column_names(headers: &csv::StringRecord) -> String {
    const SHOWN: usize = 10;
    let mut names: Vec<String> = headers
        .iter()
        .take(SHOWN)
        .map(|name| format!("\"{}\"", printable(name, 40)))
        .collect();
    if headers.len() > SHOWN {
        names.push(format!("and {} more", headers.len() - SHOWN));
    }
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// The draws written out for speed are rand_distr's own, bit for bit: every run's results
    /// depend on it (a rand_distr upgrade that changed its `LogNormal` would fail here).
    #[test]
    fn inlined_draws_are_rand_distrs_own() {
        let lognormal = LogNormal::new(-4.6, 0.9).unwrap();
        for seed in 0..2_000 {
            let fresh = || rand_xoshiro::SplitMix64::seed_from_u64(seed);
            let (mut a, mut b) = (fresh(), fresh());
            assert_eq!(
                log_normal(&lognormal, &mut a).to_bits(),
                lognormal.sample(&mut b).to_bits()
            );
            let (mut a, mut b) = (fresh(), fresh());
            let theirs: f64 = b.sample(Exp1);
            assert_eq!(
                exponential(0.25, &mut a).to_bits(),
                (theirs * 0.25).to_bits()
            );
        }
    }

    fn parse(text: &str, quantity: Quantity) -> Result<Dist, Problem> {
        let table: toml::Table = toml::from_str(&format!("d = {text}")).unwrap();
        let context = DistContext {
            base_dir: Path::new("."),
            allowed_dirs: &[],
        };
        parse_dist(&table["d"], quantity, "d", &context)
    }

    fn samples(dist: &Dist, n: usize) -> Vec<f64> {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(9);
        let mut values: Vec<f64> = (0..n).map(|_| dist.sample(&mut rng)).collect();
        values.sort_by(f64::total_cmp);
        values
    }

    fn mean(values: &[f64]) -> f64 {
        values.iter().sum::<f64>() / values.len() as f64
    }

    /// |a - b| within `relative` of b.
    fn close(a: f64, b: f64, relative: f64) -> bool {
        (a - b).abs() <= relative * b.abs()
    }

    #[test]
    fn lognormal_fitted_to_p50_and_p99_reproduces_them() {
        let dist = parse(
            r#"{ dist = "lognormal", p50 = "10ms", p99 = "80ms" }"#,
            Quantity::Time,
        )
        .unwrap();
        let values = samples(&dist, 400_000);
        let quantile = |q: f64| values[(q * values.len() as f64) as usize];
        assert!(close(quantile(0.50), 10e6, 0.01), "p50 {}", quantile(0.5));
        assert!(close(quantile(0.99), 80e6, 0.03), "p99 {}", quantile(0.99));
        assert!(close(mean(&values), dist.mean().unwrap(), 0.01));
    }

    #[test]
    fn every_family_samples_around_its_declared_mean() {
        let cases = [
            (r#"{ dist = "exponential", mean = "5ms" }"#, 5e6),
            (r#"{ dist = "constant", value = "2ms" }"#, 2e6),
            (r#"{ dist = "uniform", min = "1ms", max = "3ms" }"#, 2e6),
            (r#"{ dist = "lognormal", mean = "15ms", cv = 1.2 }"#, 15e6),
            (r#"{ dist = "gamma", mean = "15ms", cv = 0.5 }"#, 15e6),
            (r#"{ dist = "pareto", mean = "4ms", shape = 3.5 }"#, 4e6),
            (r#""7ms""#, 7e6),
        ];
        for (text, expected) in cases {
            let dist = parse(text, Quantity::Time).unwrap();
            assert!(
                close(dist.mean().unwrap(), expected, 1e-9),
                "{text}: declared mean"
            );
            let sampled = mean(&samples(&dist, 200_000));
            assert!(
                close(sampled, expected, 0.02),
                "{text}: sampled mean {sampled}"
            );
        }
        let geometric = parse(r#"{ dist = "geometric", mean = 7 }"#, Quantity::Count).unwrap();
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(3);
        let counts: Vec<f64> = (0..200_000)
            .map(|_| f64::from(geometric.sample_count(&mut rng)))
            .collect();
        assert!(close(mean(&counts), 7.0, 0.02));
        assert!(counts.iter().all(|c| *c >= 1.0));
        let weibull = parse(
            r#"{ dist = "weibull", scale = "10ms", shape = 1.5 }"#,
            Quantity::Time,
        )
        .unwrap();
        assert!(samples(&weibull, 1000).iter().all(|x| *x > 0.0));
        // Shape 2: the mean is scale · √π / 2; given as a mean, the samples average to it.
        let rayleigh = parse(
            r#"{ dist = "weibull", scale = "10ms", shape = 2 }"#,
            Quantity::Time,
        );
        let expected = 10e6 * std::f64::consts::PI.sqrt() / 2.0;
        assert!(close(rayleigh.unwrap().mean().unwrap(), expected, 1e-12));
        let by_mean = parse(
            r#"{ dist = "weibull", mean = "1h", shape = 1.5 }"#,
            Quantity::Time,
        )
        .unwrap();
        assert!(close(by_mean.mean().unwrap(), 3.6e12, 1e-12));
        assert!(close(mean(&samples(&by_mean, 200_000)), 3.6e12, 0.01));
    }

    #[test]
    fn clamps_bound_every_sample() {
        let dist = parse(
            r#"{ dist = "exponential", mean = "7s", max = "10s", min = "1s" }"#,
            Quantity::Time,
        )
        .unwrap();
        let values = samples(&dist, 10_000);
        assert_eq!(values.first().copied(), Some(1e9));
        assert_eq!(values.last().copied(), Some(10e9));
    }

    #[test]
    fn sizes_and_counts_accept_plain_numbers() {
        assert_eq!(
            parse("4096", Quantity::Bytes).unwrap().as_constant(),
            Some(4096.0)
        );
        assert_eq!(
            parse(r#""10KB""#, Quantity::Bytes).unwrap().as_constant(),
            Some(10_000.0)
        );
        assert_eq!(
            parse("3", Quantity::Count).unwrap().as_constant(),
            Some(3.0)
        );
        assert_eq!(parse("0", Quantity::Time).unwrap().as_constant(), Some(0.0));
    }

    #[test]
    fn empirical_resamples_a_csv_column_in_its_unit() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("observed.csv"),
            "host,latency\na,1.5\nb,2.5\nc,\nd,4\n",
        )
        .unwrap();
        let table: toml::Table = toml::from_str(
            r#"d = { dist = "empirical", file = "observed.csv", column = "latency", unit = "ms" }"#,
        )
        .unwrap();
        let context = DistContext {
            base_dir: dir.path(),
            allowed_dirs: &[],
        };
        let dist = parse_dist(&table["d"], Quantity::Time, "d", &context).unwrap();
        let values = samples(&dist, 3000);
        assert!(values.iter().all(|v| [1.5e6, 2.5e6, 4e6].contains(v)));
        assert!(close(mean(&values), 8e6 / 3.0, 0.05));
        for bad in [
            r#"d = { dist = "empirical", file = "observed.csv", column = "nope" }"#,
            r#"d = { dist = "empirical", file = "missing.csv" }"#,
            r#"d = { dist = "empirical", file = "observed.csv", column = "host" }"#,
            r#"d = { dist = "empirical", file = "observed.csv", column = 1, unit = "parsecs" }"#,
        ] {
            let table: toml::Table = toml::from_str(bad).unwrap();
            assert!(
                parse_dist(&table["d"], Quantity::Time, "d", &context).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_tables_name_the_offending_key() {
        let path_of = |text: &str, quantity| parse(text, quantity).unwrap_err().path;
        assert_eq!(path_of(r#"{ mean = "5ms" }"#, Quantity::Time), "d");
        assert_eq!(path_of(r#"{ dist = "normal" }"#, Quantity::Time), "d.dist");
        assert_eq!(
            path_of(
                r#"{ dist = "exponential", mean = "5ms", sd = 1 }"#,
                Quantity::Time
            ),
            "d.sd"
        );
        assert_eq!(
            path_of(r#"{ dist = "exponential", mean = "-5ms" }"#, Quantity::Time),
            "d.mean"
        );
        assert_eq!(
            path_of(r#"{ dist = "exponential", mean = 5 }"#, Quantity::Time),
            "d.mean"
        );
        assert_eq!(
            path_of(
                r#"{ dist = "lognormal", p50 = "5ms", p99 = "5ms" }"#,
                Quantity::Time
            ),
            "d.p99"
        );
        assert_eq!(
            path_of(
                r#"{ dist = "lognormal", p50 = "5ms", mean = "5ms" }"#,
                Quantity::Time
            ),
            "d"
        );
        assert_eq!(
            path_of(
                r#"{ dist = "pareto", mean = "5ms", shape = 0.5 }"#,
                Quantity::Time
            ),
            "d.shape"
        );
        assert_eq!(
            path_of(r#"{ dist = "geometric", mean = 0.5 }"#, Quantity::Count),
            "d.mean"
        );
        assert_eq!(
            path_of(
                r#"{ dist = "uniform", min = "5ms", max = "1ms" }"#,
                Quantity::Time
            ),
            "d.max"
        );
        assert_eq!(
            path_of(
                r#"{ dist = "exponential", mean = "5ms", min = "9ms", max = "1ms" }"#,
                Quantity::Time
            ),
            "d.max"
        );
        assert_eq!(path_of("true", Quantity::Time), "d");
        assert_eq!(path_of("-3", Quantity::Count), "d");
    }
}
