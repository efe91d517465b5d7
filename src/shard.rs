//! The file a `--shard K/N` run writes, and reading it back for `statesim merge`.
//!
//! A shard keeps what the whole run's files are made of, losslessly: each of its runs' figures
//! (floats in their shortest exact form) and each (point, topology)'s latency histogram (HDR V2
//! serialization), plus the invocation, so that `merge` can rebuild the same sweep points and
//! check that every shard belongs to the same run. Text, one record per line; free-form values
//! are hex-encoded so no quoting is needed.

use crate::metrics::{METRICS, RunFigures};
use crate::run::{RunStats, Shard, ShardResults};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

const MAGIC: &str = "statesim-shard 3";

/// What was run: enough to load the same scenario and sweep again.
#[derive(Clone, Debug, PartialEq)]
pub struct Invocation {
    pub origin: String,
    pub base_dir: PathBuf,
    pub text: String,
    pub set: Vec<String>,
    pub sweep: Vec<String>,
    /// `--allow-path` folders, absolute.
    pub allowed_dirs: Vec<PathBuf>,
    pub seed: Option<u64>,
    pub replications: Option<u32>,
}

pub struct ShardFile {
    pub version: String,
    pub shard: Shard,
    pub invocation: Invocation,
    pub results: ShardResults,
}

#[derive(Debug, thiserror::Error)]
pub enum ShardFileError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{}:{line}: {message}", path.display())]
    Malformed {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// The file name of shard `index` of `count`.
pub fn file_name(shard: Shard) -> String {
    format!("shard-{}-of-{}.shard", shard.index, shard.count)
}

pub fn write(path: &Path, file: &ShardFile) -> io::Result<()> {
    let mut out = io::BufWriter::new(std::fs::File::create(path)?);
    let invocation = &file.invocation;
    writeln!(out, "{MAGIC}")?;
    writeln!(out, "version {}", file.version)?;
    writeln!(out, "shard {} {}", file.shard.index, file.shard.count)?;
    writeln!(out, "origin {}", hex(invocation.origin.as_bytes()))?;
    writeln!(
        out,
        "base_dir {}",
        hex(invocation.base_dir.to_string_lossy().as_bytes())
    )?;
    writeln!(out, "text {}", hex(invocation.text.as_bytes()))?;
    for set in &invocation.set {
        writeln!(out, "set {}", hex(set.as_bytes()))?;
    }
    for sweep in &invocation.sweep {
        writeln!(out, "sweep {}", hex(sweep.as_bytes()))?;
    }
    for dir in &invocation.allowed_dirs {
        writeln!(out, "allow {}", hex(dir.to_string_lossy().as_bytes()))?;
    }
    if let Some(seed) = invocation.seed {
        writeln!(out, "seed {seed}")?;
    }
    if let Some(replications) = invocation.replications {
        writeln!(out, "replications {replications}")?;
    }
    for ((point, topology, replication), figures) in &file.results.runs {
        let key = format!("{point} {topology} {replication}");
        write_numbers(&mut out, &format!("run {key}"), &figures.values)?;
        for row in &figures.series {
            write_numbers(&mut out, &format!("series {key}"), row)?;
        }
        for row in &figures.faults {
            write_numbers(&mut out, &format!("fault {key}"), row)?;
        }
        for row in &figures.servers {
            write_numbers(&mut out, &format!("server {key}"), row)?;
        }
    }
    for ((point, topology), histogram) in &file.results.histograms {
        let mut bytes = Vec::new();
        V2Serializer::new()
            .serialize(histogram, &mut bytes)
            .map_err(|error| io::Error::other(format!("{error:?}")))?;
        writeln!(out, "histogram {point} {topology} {}", hex(&bytes))?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()
}

/// One record of numbers. `{:?}` is the shortest text that parses back to the same f64 (and NaN
/// as "NaN").
fn write_numbers(out: &mut impl Write, head: &str, values: &[f64]) -> io::Result<()> {
    write!(out, "{head}")?;
    for value in values {
        write!(out, " {value:?}")?;
    }
    writeln!(out)
}

/// A fixed-width row of numbers (a series or fault row).
fn parse_row<const N: usize>(words: std::str::Split<'_, char>) -> Option<[f64; N]> {
    let values: Vec<f64> = words
        .map(str::parse::<f64>)
        .collect::<Result<_, _>>()
        .ok()?;
    values.try_into().ok()
}

pub fn read(path: &Path) -> Result<ShardFile, ShardFileError> {
    let read_error = |source| ShardFileError::Read {
        path: path.to_path_buf(),
        source,
    };
    let reader = io::BufReader::new(std::fs::File::open(path).map_err(read_error)?);
    let mut version = None;
    let mut shard = None;
    let mut invocation = Invocation {
        origin: String::new(),
        base_dir: PathBuf::new(),
        text: String::new(),
        set: Vec::new(),
        sweep: Vec::new(),
        allowed_dirs: Vec::new(),
        seed: None,
        replications: None,
    };
    let mut runs = Vec::new();
    let mut histograms = Vec::new();
    for (number, line) in reader.lines().enumerate() {
        let line = line.map_err(read_error)?;
        let malformed = |message: &str| ShardFileError::Malformed {
            path: path.to_path_buf(),
            line: number + 1,
            message: message.to_string(),
        };
        if number == 0 {
            if line != MAGIC {
                return Err(malformed("not a statesim shard file"));
            }
            continue;
        }
        let mut words = line.split(' ');
        let kind = words.next().unwrap_or_default();
        let mut next = || words.next().ok_or_else(|| malformed("a field is missing"));
        let text = |word: &str| -> Result<String, ShardFileError> {
            unhex(word)
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| malformed("bad hex text"))
        };
        match kind {
            "version" => version = Some(next()?.to_string()),
            "shard" => {
                let index = next()?.parse().map_err(|_| malformed("bad shard index"))?;
                let count = next()?.parse().map_err(|_| malformed("bad shard count"))?;
                shard = Some(Shard { index, count });
            }
            "origin" => invocation.origin = text(next()?)?,
            "base_dir" => invocation.base_dir = PathBuf::from(text(next()?)?),
            "text" => invocation.text = text(next()?)?,
            "set" => invocation.set.push(text(next()?)?),
            "sweep" => invocation.sweep.push(text(next()?)?),
            "allow" => invocation.allowed_dirs.push(PathBuf::from(text(next()?)?)),
            "seed" => invocation.seed = Some(next()?.parse().map_err(|_| malformed("bad seed"))?),
            "replications" => {
                let replications = next()?.parse().map_err(|_| malformed("bad count"))?;
                invocation.replications = Some(replications);
            }
            "run" | "series" | "fault" | "server" => {
                let point = next()?.parse().map_err(|_| malformed("bad point"))?;
                let topology = next()?.parse().map_err(|_| malformed("bad topology"))?;
                let replication = next()?.parse().map_err(|_| malformed("bad replication"))?;
                let key = (point, topology, replication);
                if kind == "run" {
                    let values = words
                        .map(str::parse::<f64>)
                        .collect::<Result<Vec<f64>, _>>()
                        .map_err(|_| malformed("bad figure"))?;
                    if values.len() != METRICS.len() {
                        return Err(malformed(&format!(
                            "a run has {} figures, this version of statesim writes {}",
                            values.len(),
                            METRICS.len()
                        )));
                    }
                    let figures = RunFigures {
                        values,
                        series: Vec::new(),
                        faults: Vec::new(),
                        servers: Vec::new(),
                    };
                    runs.push((key, figures));
                    continue;
                }
                // Rows follow their run's record.
                let Some((_, figures)) = runs.last_mut().filter(|(k, _)| *k == key) else {
                    return Err(malformed("a row before its run"));
                };
                match kind {
                    "series" => {
                        let row = parse_row(words).ok_or_else(|| malformed("bad series row"))?;
                        figures.series.push(row);
                    }
                    "fault" => {
                        let row = parse_row(words).ok_or_else(|| malformed("bad fault row"))?;
                        figures.faults.push(row);
                    }
                    _ => {
                        let row = parse_row(words).ok_or_else(|| malformed("bad server row"))?;
                        figures.servers.push(row);
                    }
                }
            }
            "histogram" => {
                let point = next()?.parse().map_err(|_| malformed("bad point"))?;
                let topology = next()?.parse().map_err(|_| malformed("bad topology"))?;
                let bytes = unhex(next()?).ok_or_else(|| malformed("bad hex histogram"))?;
                if !plausible_histogram(&bytes) {
                    return Err(malformed(
                        "not a histogram statesim writes (its header claims other bounds, \
                         digits or a longer payload than the record holds)",
                    ));
                }
                let histogram: Histogram<u64> = Deserializer::new()
                    .deserialize(&mut bytes.as_slice())
                    .map_err(|_| malformed("bad histogram"))?;
                histograms.push(((point, topology), histogram));
            }
            _ => return Err(malformed("unknown record")),
        }
    }
    let incomplete = |what: &str| ShardFileError::Malformed {
        path: path.to_path_buf(),
        line: 0,
        message: format!("no {what} record"),
    };
    Ok(ShardFile {
        version: version.ok_or_else(|| incomplete("version"))?,
        shard: shard.ok_or_else(|| incomplete("shard"))?,
        invocation,
        results: ShardResults {
            runs,
            histograms,
            stats: RunStats::default(),
        },
    })
}

/// Whether an HDR V2 record has the header statesim writes (lowest value 1, 3 significant
/// digits) and no more payload than it carries: the deserializer allocates what the header
/// claims, so a forged header could ask for gigabytes.
fn plausible_histogram(bytes: &[u8]) -> bool {
    const HEADER: usize = 40;
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    let long = |at: usize| -> Option<u64> {
        Some(u64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
    };
    let (Some(payload), Some(digits), Some(lowest)) = (word(4), word(12), long(16)) else {
        return false;
    };
    payload as usize <= bytes.len().saturating_sub(HEADER)
        && digits == u32::from(crate::metrics::SIGNIFICANT_DIGITS)
        && lowest == 1
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_nonsense() {
        assert_eq!(unhex(&hex(b"a=1\n\xff")).unwrap(), b"a=1\n\xff");
        assert!(unhex("abc").is_none());
        assert!(unhex("zz").is_none());
    }

    #[test]
    fn floats_round_trip_through_their_debug_text() {
        for value in [0.1, 1.0 / 3.0, 1e-300, f64::MAX, 12_345.678_901_234_5] {
            assert_eq!(format!("{value:?}").parse::<f64>().unwrap(), value);
        }
        assert!(format!("{:?}", f64::NAN).parse::<f64>().unwrap().is_nan());
    }
}
