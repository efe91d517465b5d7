//! `statesim check`: a scenario's `[[expect]]` assertions and a comparison against a baseline
//! results folder, each a pass or fail with the measured value, the bound and the difference;
//! rendered as text (stdout), JUnit XML and Markdown for CI systems.

use crate::metrics::{METRICS, TopologySummary, metric_index};
use crate::report::Report;
use crate::scenario::{Expectation, Scenario};
use crate::text::escape_markup;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Relative tolerance of a baseline comparison when `--tolerance` does not name the metric.
pub const DEFAULT_TOLERANCE: f64 = 0.02;

/// Figures not compared with a baseline: how much work the engine did is not a result.
const NOT_COMPARED: &[&str] = &["events"];

/// One verdict.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Verdict {
    /// Where it comes from: `expect` or `baseline`.
    pub kind: &'static str,
    pub topology: String,
    pub metric: String,
    /// What was measured, e.g. `83.7` or `83.7 ± 0.6`.
    pub measured: String,
    /// What it had to satisfy, e.g. `<= 250` or `82.1 ± 2%`.
    pub bound: String,
    /// How far from the bound (negative: inside it), or why it failed.
    pub difference: String,
    pub passed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("cannot read the baseline {}: {source}", path.display())]
    BaselineUnreadable { path: PathBuf, source: csv::Error },
    #[error(
        "the baseline {} is cut short (no newline at its end): regenerate it with \
         --update-baseline",
        path.display()
    )]
    BaselineTruncated { path: PathBuf },
    #[error("the baseline {} has no column {column}", path.display())]
    BaselineColumn { path: PathBuf, column: String },
    #[error(
        "--tolerance {0}: expected METRIC=RELATIVE (e.g. latency_p99_ms=0.05, or *=0.05 for every figure)"
    )]
    Tolerance(String),
    #[error("--tolerance {0}: no summary.csv figure is named so")]
    ToleranceMetric(String),
}

/// How a verdict names a row: the topology, and a sweep point's values after it
/// (`plain [servers.count=4]`).
fn row_label<'a>(topology: &str, params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let params: Vec<String> = params
        .into_iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    if params.is_empty() {
        topology.to_string()
    } else {
        format!("{topology} [{}]", params.join(", "))
    }
}

fn summary_label(report: &Report, summary: &TopologySummary) -> String {
    row_label(
        &summary.topology,
        report
            .sweep_keys
            .iter()
            .map(String::as_str)
            .zip(summary.params.iter().map(String::as_str)),
    )
}

/// Evaluates every `[[expect]]` of the scenario against the run's summaries (every sweep point's).
pub fn check_expectations(scenario: &Scenario, report: &Report) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    for expectation in &scenario.expectations {
        for summary in &report.summaries {
            if expectation
                .topology
                .as_ref()
                .is_none_or(|name| *name == summary.topology)
            {
                let label = summary_label(report, summary);
                verdicts.push(check_one(expectation, summary, label));
            }
        }
    }
    verdicts
}

fn check_one(expectation: &Expectation, summary: &TopologySummary, label: String) -> Verdict {
    let value = summary.get(&expectation.metric);
    let half_width = summary.ci95_of(&expectation.metric);
    let use_interval = expectation.confidence && !half_width.is_nan();
    let bounds: Vec<String> = [
        expectation.max.map(|max| format!("<= {}", number(max))),
        expectation.min.map(|min| format!(">= {}", number(min))),
        expectation
            .equals
            .map(|equals| format!("== {}", number(equals))),
    ]
    .into_iter()
    .flatten()
    .collect();
    let excess = expectation.excess(value, half_width); // > 0: outside the bound by that much
    let passed = expectation.holds(value, half_width);
    let measured = if use_interval {
        format!("{} ± {}", number(value), number(half_width))
    } else {
        number(value)
    };
    Verdict {
        kind: "expect",
        topology: label,
        metric: expectation.metric.clone(),
        measured,
        bound: bounds.join(", ")
            + if use_interval {
                " (whole 95% interval)"
            } else {
                ""
            },
        difference: if value.is_nan() {
            "not measured in this run".to_string()
        } else if passed {
            "within".to_string()
        } else {
            format!("{} beyond", number(excess))
        },
        passed,
    }
}

/// Relative tolerances by metric, from `--tolerance METRIC=REL` flags (`*` sets the default).
#[derive(Clone, Debug)]
pub struct Tolerances {
    default: f64,
    by_metric: BTreeMap<String, f64>,
}

impl Tolerances {
    pub fn parse(flags: &[String]) -> Result<Tolerances, CheckError> {
        let mut tolerances = Tolerances {
            default: DEFAULT_TOLERANCE,
            by_metric: BTreeMap::new(),
        };
        for flag in flags {
            let (metric, value) = flag
                .split_once('=')
                .ok_or_else(|| CheckError::Tolerance(flag.clone()))?;
            let value: f64 = value
                .trim()
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| CheckError::Tolerance(flag.clone()))?;
            match metric.trim() {
                "*" => tolerances.default = value,
                name if metric_index(name).is_some() => {
                    tolerances.by_metric.insert(name.to_string(), value);
                }
                _ => return Err(CheckError::ToleranceMetric(flag.clone())),
            }
        }
        Ok(tolerances)
    }

    fn of(&self, metric: &str) -> f64 {
        self.by_metric.get(metric).copied().unwrap_or(self.default)
    }
}

/// One topology's figures in a baseline summary.csv, by column name.
type BaselineRow = BTreeMap<String, f64>;

/// Reads `DIR/summary.csv` of a previous run, rows by [`row_label`].
pub fn read_baseline(dir: &Path) -> Result<BTreeMap<String, BaselineRow>, CheckError> {
    let path = dir.join("summary.csv");
    let unreadable = |source| CheckError::BaselineUnreadable {
        path: path.clone(),
        source,
    };
    let bytes = read_bounded(&path).map_err(|source| unreadable(source.into()))?;
    // statesim ends every CSV with a newline: a file without one was cut short (a run killed
    // while writing, a truncated artifact), and comparing with it would fail for the wrong reason.
    if !bytes.ends_with(b"\n") {
        return Err(CheckError::BaselineTruncated { path });
    }
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let headers = reader.headers().map_err(unreadable)?.clone();
    if !headers.iter().any(|h| h == "topology") {
        return Err(CheckError::BaselineColumn {
            path,
            column: "topology".into(),
        });
    }
    let mut rows = BTreeMap::new();
    for record in reader.records() {
        let record = record.map_err(unreadable)?;
        let mut row = BaselineRow::new();
        let mut topology = "";
        let mut params = Vec::new();
        for (header, cell) in headers.iter().zip(record.iter()) {
            if header == "topology" {
                topology = cell;
            } else if let Some(key) = header.strip_prefix("param_") {
                params.push((key, cell));
            } else {
                // Empty cells are missing values (NaN), as statesim writes them.
                row.insert(header.to_string(), cell.parse().unwrap_or(f64::NAN));
            }
        }
        rows.insert(row_label(topology, params), row);
    }
    Ok(rows)
}

/// A baseline summary.csv: at most 64 MiB (one holds a row per topology and sweep point).
fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    const MAX_BASELINE_BYTES: u64 = 64 * 1024 * 1024;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_BASELINE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_BASELINE_BYTES {
        return Err(std::io::Error::other("larger than 64 MiB"));
    }
    Ok(bytes)
}

/// Compares every summary figure with the baseline's: a figure passes when it moved by at most
/// its relative tolerance (both missing counts as equal).
pub fn check_baseline(
    report: &Report,
    baseline: &BTreeMap<String, BaselineRow>,
    tolerances: &Tolerances,
) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    for summary in &report.summaries {
        let label = summary_label(report, summary);
        let Some(row) = baseline.get(&label) else {
            verdicts.push(Verdict {
                kind: "baseline",
                topology: label,
                metric: "*".into(),
                measured: "-".into(),
                bound: "a baseline row".into(),
                difference: "the baseline has no such topology".into(),
                passed: false,
            });
            continue;
        };
        for metric in METRICS.iter().filter(|m| !NOT_COMPARED.contains(&m.name)) {
            let current = summary.get(metric.name);
            let tolerance = tolerances.of(metric.name);
            let verdict = match row.get(metric.name) {
                None => Verdict {
                    kind: "baseline",
                    topology: label.clone(),
                    metric: metric.name.into(),
                    measured: number(current),
                    bound: "a baseline value".into(),
                    difference: "the baseline has no such column".into(),
                    passed: false,
                },
                Some(&base) => compare(&label, metric.name, current, base, tolerance),
            };
            verdicts.push(verdict);
        }
    }
    verdicts
}

fn compare(label: &str, metric: &str, current: f64, base: f64, tolerance: f64) -> Verdict {
    let allowed = tolerance * base.abs();
    let moved = current - base;
    let passed = (current.is_nan() && base.is_nan()) || moved.abs() <= allowed;
    let relative = if base != 0.0 {
        format!(" ({:+.2}%)", 100.0 * moved / base.abs())
    } else {
        String::new()
    };
    Verdict {
        kind: "baseline",
        topology: label.to_string(),
        metric: metric.into(),
        measured: number(current),
        bound: format!("{} ± {}%", number(base), number(100.0 * tolerance)),
        difference: if current.is_nan() != base.is_nan() {
            "measured in only one of the two runs".into()
        } else {
            format!("{}{relative}", signed(moved))
        },
        passed,
    }
}

fn number(value: f64) -> String {
    if value.is_nan() {
        "-".into()
    } else {
        crate::report::format_number(value)
    }
}

fn signed(value: f64) -> String {
    if value.is_nan() {
        "-".into()
    } else if value >= 0.0 {
        format!("+{}", number(value))
    } else {
        number(value)
    }
}

/// The stdout report: every failure in full, then a count.
pub fn render_text(scenario: &str, verdicts: &[Verdict]) -> String {
    let mut out = String::new();
    let failed: Vec<&Verdict> = verdicts.iter().filter(|v| !v.passed).collect();
    for verdict in &failed {
        let _ = writeln!(
            out,
            "FAIL {} {} {}: measured {}, expected {}, {}",
            verdict.kind,
            verdict.topology,
            verdict.metric,
            verdict.measured,
            verdict.bound,
            verdict.difference
        );
    }
    let _ = writeln!(
        out,
        "{}: {} checks, {} passed, {} failed",
        scenario,
        verdicts.len(),
        verdicts.len() - failed.len(),
        failed.len()
    );
    out
}

/// JUnit XML, as CI test reporters read it: one test case per verdict.
pub fn render_junit(scenario: &str, verdicts: &[Verdict]) -> String {
    let failures = verdicts.iter().filter(|v| !v.passed).count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"statesim check\" tests=\"{}\" failures=\"{failures}\">",
        verdicts.len()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\">",
        escape_markup(scenario),
        verdicts.len()
    );
    for verdict in verdicts {
        let name = format!("{} {} {}", verdict.kind, verdict.metric, verdict.bound);
        let _ = write!(
            out,
            "    <testcase classname=\"{}.{}\" name=\"{}\"",
            escape_markup(scenario),
            escape_markup(&verdict.topology),
            escape_markup(&name)
        );
        if verdict.passed {
            out.push_str("/>\n");
        } else {
            let message = format!(
                "measured {}, expected {}, {}",
                verdict.measured, verdict.bound, verdict.difference
            );
            let _ = writeln!(
                out,
                ">\n      <failure message=\"{}\"/>\n    </testcase>",
                escape_markup(&message)
            );
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// A Markdown table for a CI job summary: failures first, then the passes.
pub fn render_markdown(scenario: &str, verdicts: &[Verdict]) -> String {
    let failed = verdicts.iter().filter(|v| !v.passed).count();
    let mut out = format!(
        "### statesim check: {}\n\n{} checks, {} passed, {} failed\n\n",
        markdown(scenario),
        verdicts.len(),
        verdicts.len() - failed,
        failed
    );
    out.push_str("| result | check | topology | metric | measured | expected | difference |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    let ordered = verdicts
        .iter()
        .filter(|v| !v.passed)
        .chain(verdicts.iter().filter(|v| v.passed));
    for verdict in ordered {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            if verdict.passed { "pass" } else { "**FAIL**" },
            verdict.kind,
            markdown(&verdict.topology),
            verdict.metric,
            markdown(&verdict.measured),
            markdown(&verdict.bound),
            markdown(&verdict.difference)
        );
    }
    out
}

fn markdown(text: &str) -> String {
    text.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_escapes_what_xml_reserves() {
        let verdict = Verdict {
            kind: "expect",
            topology: "a<b>&\"c\"".into(),
            metric: "latency_p99_ms".into(),
            measured: "3".into(),
            bound: "<= 2".into(),
            difference: "1 beyond".into(),
            passed: false,
        };
        let xml = render_junit("s", &[verdict]);
        assert!(xml.contains("a&lt;b&gt;&amp;&quot;c&quot;"), "{xml}");
        assert!(xml.contains("&lt;= 2"), "{xml}");
        assert!(xml.contains("failures=\"1\""), "{xml}");
    }

    #[test]
    fn tolerances_parse_names_defaults_and_reject_nonsense() {
        let t = Tolerances::parse(&["latency_p99_ms=0.1".into(), "*=0.05".into()]).unwrap();
        assert_eq!(t.of("latency_p99_ms"), 0.1);
        assert_eq!(t.of("requests"), 0.05);
        assert!(Tolerances::parse(&["latency=0.1".into()]).is_err());
        assert!(Tolerances::parse(&["latency_p99_ms".into()]).is_err());
        assert!(Tolerances::parse(&["latency_p99_ms=-1".into()]).is_err());
    }
}
