//! The answer: the classic comparison of where session state lives, characteristic by
//! characteristic, in this run's measured figures, the best per row marked, and a few plain
//! sentences of the trade-off. On stdout below the table, and as `comparison.csv` (tidy: one row
//! per characteristic, figure and topology).
//!
//! A winner is named only where the figures show one: with replications, a topology whose
//! paired 95% interval of the difference to the best includes zero ties with it ("no
//! significant difference"); with one run, only equal values tie.

use super::{Exporter, PROVENANCE_COLUMNS, Report, format_number, paired_difference};
use crate::metrics::{TopologySummary, metric_index};
use std::io::{self, Write};

/// Which way a figure is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Better {
    Lower,
    Higher,
    /// Descriptive: no direction is better in itself (a utilisation, bytes of one kind).
    Neither,
}

/// A characteristic of the comparison and the summary figures that measure it.
struct Characteristic {
    name: &'static str,
    figures: &'static [(&'static str, Better)],
}

const CHARACTERISTICS: &[Characteristic] = &[
    Characteristic {
        name: "state management",
        figures: &[("bytes_per_request", Better::Lower)],
    },
    Characteristic {
        name: "fault tolerance",
        figures: &[
            ("sessions_lost", Better::Lower),
            ("failed", Better::Lower),
            ("availability", Better::Higher),
        ],
    },
    Characteristic {
        name: "scalability",
        figures: &[
            ("server_utilization", Better::Neither),
            ("store_utilization", Better::Neither),
        ],
    },
    Characteristic {
        name: "resource utilisation",
        figures: &[
            ("session_memory_steady_mb", Better::Lower),
            ("peak_session_memory_mb", Better::Lower),
        ],
    },
    Characteristic {
        name: "data redundancy",
        figures: &[
            ("store_bytes_per_request", Better::Neither),
            ("replication_bytes_per_request", Better::Neither),
            ("token_bytes_per_request", Better::Neither),
        ],
    },
    Characteristic {
        name: "load balancing",
        figures: &[("load_imbalance", Better::Lower)],
    },
    Characteristic {
        name: "latency",
        figures: &[
            ("latency_p50_ms", Better::Lower),
            ("latency_p99_ms", Better::Lower),
        ],
    },
    Characteristic {
        name: "cost",
        figures: &[
            ("cost_per_hour", Better::Lower),
            ("cost_per_million_requests", Better::Lower),
        ],
    },
];

/// One row of comparison.csv.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub characteristic: &'static str,
    pub metric: &'static str,
    pub topology: String,
    pub value: f64,
    pub ci95: f64,
    /// The best of its figure, or tied with the best.
    pub best: bool,
}

/// The comparison of a run of two or more topologies (none for a sweep: each point would be a
/// comparison of its own, and scalability.csv holds the sweep's answer).
pub fn comparison(report: &Report) -> Vec<Row> {
    if !report.sweep_keys.is_empty() || report.summaries.len() < 2 {
        return Vec::new();
    }
    let mut rows = Vec::new();
    for characteristic in CHARACTERISTICS {
        for &(metric, better) in characteristic.figures {
            let Some(index) = metric_index(metric) else {
                continue;
            };
            let best = best_of(&report.summaries, index, better);
            for (summary, best) in report.summaries.iter().zip(best) {
                rows.push(Row {
                    characteristic: characteristic.name,
                    metric,
                    topology: summary.topology.clone(),
                    value: summary.values[index],
                    ci95: summary.ci95[index],
                    best,
                });
            }
        }
    }
    rows
}

/// For each topology, whether it is the best of figure `index` or not significantly different
/// from the best. All false for a descriptive figure or when no topology has a value.
fn best_of(summaries: &[TopologySummary], index: usize, better: Better) -> Vec<bool> {
    let sign = match better {
        Better::Lower => 1.0,
        Better::Higher => -1.0,
        Better::Neither => return vec![false; summaries.len()],
    };
    let Some(winner) = summaries
        .iter()
        .filter(|s| !s.values[index].is_nan())
        .min_by(|a, b| (sign * a.values[index]).total_cmp(&(sign * b.values[index])))
    else {
        return vec![false; summaries.len()];
    };
    summaries
        .iter()
        .map(|summary| {
            if std::ptr::eq(summary, winner) {
                return true;
            }
            if summary.values[index].is_nan() {
                return false;
            }
            if summary.values[index] == winner.values[index] {
                return true;
            }
            let paired = summary.replications >= 2 && winner.replications >= 2;
            if !paired {
                return false;
            }
            let (difference, half_width) = paired_difference(summary, winner, index);
            !half_width.is_nan()
                && (difference - half_width..=difference + half_width).contains(&0.0)
        })
        .collect()
}

/// The comparison for stdout: a block per characteristic, each figure's topologies with the
/// best marked `*` (or "no significant difference"), then the trade-off in plain sentences.
pub fn render_verdict(report: &Report) -> String {
    let rows = comparison(report);
    if rows.is_empty() {
        return String::new();
    }
    let mut out = String::from("\ncomparison (* best of the row):\n");
    let mut characteristic = "";
    for figure in rows.chunks(report.summaries.len()) {
        let first = &figure[0];
        if first.characteristic != characteristic {
            characteristic = first.characteristic;
            out.push_str(&format!("  {characteristic}\n"));
        }
        let cells: Vec<String> = figure
            .iter()
            .map(|row| {
                let mark = if row.best { "*" } else { "" };
                let interval = if row.ci95.is_nan() || row.ci95 == 0.0 {
                    String::new()
                } else {
                    format!(" ± {}", shown_number(row.ci95))
                };
                format!(
                    "{} {}{interval}{mark}",
                    row.topology,
                    shown_number(row.value)
                )
            })
            .collect();
        let winners = figure.iter().filter(|row| row.best).count();
        let replicated = report.summaries.iter().all(|s| s.replications >= 2);
        let tie = match (winners > 1, replicated) {
            (false, _) => "",
            (true, true) => "  (no significant difference between the starred)",
            (true, false) => "  (tied)",
        };
        out.push_str(&format!(
            "    {:<30} {}{tie}\n",
            first.metric,
            cells.join(" | ")
        ));
    }
    for sentence in trade_off(report) {
        out.push_str(&sentence);
        out.push('\n');
    }
    out
}

fn shown_number(value: f64) -> String {
    if value.is_nan() {
        "-".into()
    } else if value.abs() >= 100.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else if value.abs() >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

/// Two or three sentences of the trade-off in this run's numbers: who lost the fewest sessions
/// and what that costs, who answered fastest. Facts only, no advice.
fn trade_off(report: &Report) -> Vec<String> {
    let get = |s: &TopologySummary, name: &str| s.get(name);
    let by = |name: &'static str| {
        move |a: &&TopologySummary, b: &&TopologySummary| get(a, name).total_cmp(&get(b, name))
    };
    let summaries = &report.summaries;
    let (Some(safest), Some(fastest), Some(cheapest)) = (
        summaries.iter().min_by(by("sessions_lost")),
        summaries.iter().min_by(by("latency_p50_ms")),
        summaries.iter().min_by(by("cost_per_hour")),
    ) else {
        return Vec::new();
    };
    let mut sentences = Vec::new();
    let lost = |s: &TopologySummary| get(s, "sessions_lost");
    let worst = summaries
        .iter()
        .max_by(by("sessions_lost"))
        .unwrap_or(safest);
    if lost(worst) > lost(safest) {
        sentences.push(format!(
            "{} lost {} sessions and failed {} requests; {} lost {} and failed {}.",
            safest.topology,
            shown_number(lost(safest)),
            shown_number(get(safest, "failed")),
            worst.topology,
            shown_number(lost(worst)),
            shown_number(get(worst, "failed")),
        ));
    } else {
        sentences.push(format!(
            "Every topology lost {} sessions.",
            shown_number(lost(safest))
        ));
    }
    let slowest = summaries
        .iter()
        .max_by(by("latency_p50_ms"))
        .unwrap_or(fastest);
    let p50 = |s: &TopologySummary| get(s, "latency_p50_ms");
    if p50(slowest) > p50(fastest) {
        sentences.push(format!(
            "{} answered fastest at p50 ({} ms), {} ms ahead of {}.",
            fastest.topology,
            shown_number(p50(fastest)),
            shown_number(p50(slowest) - p50(fastest)),
            slowest.topology
        ));
    }
    let dearest = summaries
        .iter()
        .max_by(by("cost_per_hour"))
        .unwrap_or(cheapest);
    let cost = |s: &TopologySummary| get(s, "cost_per_hour");
    if cost(dearest) > cost(cheapest) {
        sentences.push(format!(
            "{} costs {} an hour, {} {} ({} more).",
            cheapest.topology,
            shown_number(cost(cheapest)),
            dearest.topology,
            shown_number(cost(dearest)),
            shown_number(cost(dearest) - cost(cheapest))
        ));
    }
    sentences
}

/// comparison.csv: `scenario, characteristic, metric, topology, value, ci95, best` and the
/// provenance columns.
pub struct ComparisonCsv;

impl Exporter for ComparisonCsv {
    fn file_name(&self) -> &'static str {
        "comparison.csv"
    }

    fn applies(&self, report: &Report) -> bool {
        !comparison(report).is_empty()
    }

    fn write(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        let mut writer = csv::Writer::from_writer(out);
        let mut header: Vec<&str> = vec![
            "scenario",
            "characteristic",
            "metric",
            "topology",
            "value",
            "ci95",
            "best",
        ];
        header.extend(PROVENANCE_COLUMNS);
        writer.write_record(&header)?;
        for row in comparison(report) {
            let mut cells = vec![
                report.scenario.clone(),
                row.characteristic.to_string(),
                row.metric.to_string(),
                row.topology,
                format_number(row.value),
                format_number(row.ci95),
                row.best.to_string(),
            ];
            cells.extend(report.provenance());
            writer.write_record(&cells)?;
        }
        writer.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{METRICS, RunFigures, new_latency_histogram, summarize};

    /// A topology whose replications give `values` for figure `index` (0 for the others).
    fn topology(name: &str, index: usize, values: &[f64]) -> TopologySummary {
        let runs = values
            .iter()
            .map(|value| {
                let mut figures = vec![0.0; METRICS.len()];
                figures[index] = *value;
                RunFigures {
                    values: figures,
                    series: Vec::new(),
                    faults: Vec::new(),
                    servers: Vec::new(),
                }
            })
            .collect();
        summarize(name, "none", runs, new_latency_histogram())
    }

    #[test]
    fn a_difference_whose_interval_holds_zero_is_a_tie_and_a_clear_one_is_not() {
        let index = metric_index("latency_p50_ms").unwrap();
        let summaries = vec![
            topology("best", index, &[1.0, 2.0, 3.0, 2.0]),
            // Paired differences 0.5, -0.2, 0.1, -0.1: the interval straddles zero.
            topology("close", index, &[1.5, 1.8, 3.1, 1.9]),
            // Paired differences 1.0, 1.1, 0.9, 1.0: clearly worse.
            topology("slow", index, &[2.0, 3.1, 3.9, 3.0]),
        ];
        assert_eq!(
            best_of(&summaries, index, Better::Lower),
            [true, true, false]
        );
        assert_eq!(
            best_of(&summaries, index, Better::Higher),
            [false, false, true],
            "higher is better: the slow one wins, clearly"
        );
        assert_eq!(
            best_of(&summaries, index, Better::Neither),
            [false, false, false]
        );
    }
}
