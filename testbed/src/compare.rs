//! Measured against simulated, side by side: each figure's mean over the testbed's runs with their
//! range (its own run-to-run spread), the simulation's mean and 95% interval, the relative error,
//! and the agreement the testbed aims for.

use statesim::metrics::TopologySummary;
use std::io::{self, Write};

/// A figure compared, and the relative error it should stay within (none: shown only).
pub struct Compared {
    pub metric: &'static str,
    pub label: &'static str,
    pub target: Option<f64>,
}

pub const COMPARED: &[Compared] = &[
    Compared {
        metric: "latency_p50_ms",
        label: "p50 ms",
        target: Some(0.05),
    },
    Compared {
        metric: "latency_p90_ms",
        label: "p90 ms",
        target: None,
    },
    Compared {
        metric: "latency_p99_ms",
        label: "p99 ms",
        target: Some(0.08),
    },
    Compared {
        metric: "latency_p999_ms",
        label: "p99.9 ms",
        target: None,
    },
    Compared {
        metric: "latency_p99_during_faults_ms",
        label: "p99 during faults ms",
        target: None,
    },
    Compared {
        metric: "throughput_rps",
        label: "throughput req/s",
        target: Some(0.02),
    },
    Compared {
        metric: "server_utilization",
        label: "server utilisation",
        target: Some(0.02),
    },
    Compared {
        metric: "failed",
        label: "requests failed",
        target: Some(0.25),
    },
    Compared {
        metric: "sessions_lost",
        label: "sessions lost",
        target: Some(0.20),
    },
    Compared {
        metric: "balancer_retries",
        label: "balancer retries",
        target: None,
    },
];

/// One row of the comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub topology: String,
    pub metric: &'static str,
    pub label: &'static str,
    pub measured: f64,
    pub measured_min: f64,
    pub measured_max: f64,
    pub runs: usize,
    pub simulated: f64,
    pub simulated_ci95: f64,
    /// (simulated − measured) / measured; NaN when nothing was measured.
    pub relative_error: f64,
    pub target: Option<f64>,
}

impl Row {
    /// Within its target: the relative error, or, when the testbed measured zero, the simulation
    /// at most one in absolute terms (a zero has no relative error).
    pub fn within_target(&self) -> Option<bool> {
        let target = self.target?;
        if self.measured == 0.0 {
            return Some(self.simulated.abs() <= 1.0);
        }
        Some(self.relative_error.abs() <= target)
    }
}

/// The rows of every topology the testbed ran, with its simulated counterpart.
pub fn rows(measured: &[TopologySummary], simulated: &[TopologySummary]) -> Vec<Row> {
    let mut rows = Vec::new();
    for summary in measured {
        let Some(sim) = simulated.iter().find(|s| s.topology == summary.topology) else {
            continue;
        };
        for compared in COMPARED {
            let Some(index) = statesim::metrics::metric_index(compared.metric) else {
                continue;
            };
            let per_run: Vec<f64> = summary
                .per_replication
                .iter()
                .map(|values| values[index])
                .filter(|v| v.is_finite())
                .collect();
            if per_run.is_empty() {
                continue;
            }
            let measured = summary.values[index];
            let simulated = sim.values[index];
            rows.push(Row {
                topology: summary.topology.clone(),
                metric: compared.metric,
                label: compared.label,
                measured,
                measured_min: per_run.iter().copied().fold(f64::INFINITY, f64::min),
                measured_max: per_run.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                runs: per_run.len(),
                simulated,
                simulated_ci95: sim.ci95[index],
                relative_error: if measured == 0.0 {
                    f64::NAN
                } else {
                    (simulated - measured) / measured
                },
                target: compared.target,
            });
        }
    }
    rows
}

fn number(value: f64) -> String {
    match value.abs() {
        v if !v.is_finite() => "-".into(),
        v if v >= 100.0 => format!("{value:.0}"),
        v if v >= 1.0 => format!("{value:.1}"),
        _ => format!("{value:.3}"),
    }
}

/// The side-by-side table, as printed on stdout.
pub fn table(rows: &[Row]) -> String {
    let mut lines = vec![[
        "topology".to_string(),
        "figure".into(),
        "measured (runs' range)".into(),
        "simulated ± 95%".into(),
        "error".into(),
        "target".into(),
    ]];
    for row in rows {
        let verdict = match row.within_target() {
            Some(true) => " ok",
            Some(false) => " MISSED",
            None => "",
        };
        lines.push([
            row.topology.clone(),
            row.label.into(),
            format!(
                "{} ({}–{})",
                number(row.measured),
                number(row.measured_min),
                number(row.measured_max)
            ),
            format!("{} ± {}", number(row.simulated), number(row.simulated_ci95)),
            if row.relative_error.is_finite() {
                format!("{:+.1}%", row.relative_error * 100.0)
            } else {
                "-".into()
            },
            row.target
                .map_or_else(String::new, |t| format!("±{:.0}%{verdict}", t * 100.0)),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for line in &lines {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text
}

/// The rows as a tidy CSV (testbed.csv).
pub fn write_csv(rows: &[Row], out: impl Write) -> io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record([
        "topology",
        "metric",
        "measured",
        "measured_min",
        "measured_max",
        "runs",
        "simulated",
        "simulated_ci95",
        "relative_error",
        "target",
        "within_target",
    ])?;
    for row in rows {
        let cell = |v: f64| statesim::report::format_number(v);
        writer.write_record([
            row.topology.clone(),
            row.metric.to_string(),
            cell(row.measured),
            cell(row.measured_min),
            cell(row.measured_max),
            row.runs.to_string(),
            cell(row.simulated),
            cell(row.simulated_ci95),
            cell(row.relative_error),
            row.target.map_or_else(String::new, cell),
            row.within_target()
                .map_or_else(String::new, |ok| ok.to_string()),
        ])?;
    }
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(measured: f64, simulated: f64, target: Option<f64>) -> Row {
        Row {
            topology: "t".into(),
            metric: "failed",
            label: "requests failed",
            measured,
            measured_min: measured,
            measured_max: measured,
            runs: 3,
            simulated,
            simulated_ci95: 0.0,
            relative_error: if measured == 0.0 {
                f64::NAN
            } else {
                (simulated - measured) / measured
            },
            target,
        }
    }

    #[test]
    fn targets_judge_the_relative_error_and_a_measured_zero_absolutely() {
        assert_eq!(row(100.0, 120.0, Some(0.25)).within_target(), Some(true));
        assert_eq!(row(100.0, 130.0, Some(0.25)).within_target(), Some(false));
        assert_eq!(row(0.0, 0.7, Some(0.25)).within_target(), Some(true));
        assert_eq!(row(0.0, 2.3, Some(0.25)).within_target(), Some(false));
        assert_eq!(row(5.0, 2.0, None).within_target(), None);
    }

    #[test]
    fn the_table_and_csv_show_every_row() {
        let rows = [row(169.0, 174.0, Some(0.25)), row(0.0, 0.0, Some(0.2))];
        let text = table(&rows);
        assert!(text.contains("169 (169–169)"), "{text}");
        assert!(text.contains("+3.0%"), "{text}");
        assert!(text.contains("±25% ok"), "{text}");
        let mut csv = Vec::new();
        write_csv(&rows, &mut csv).unwrap();
        let csv = String::from_utf8(csv).unwrap();
        assert_eq!(csv.lines().count(), 3);
        assert!(csv.lines().nth(1).unwrap().ends_with(",0.25,true"), "{csv}");
    }
}
