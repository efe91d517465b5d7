//! The answer: the classic comparison of where session state lives, characteristic by
//! characteristic, in this run's measured figures, the best per row marked, and a few plain
//! sentences of the trade-off. On stdout below the table, and as `comparison.csv` (tidy: one row
//! per characteristic, figure and topology).
//!
//! A winner is named only where the figures show one: with replications, a topology whose
//! paired 95% interval of the difference to the best includes zero ties with it ("no
//! significant difference"); with one run, only equal values tie.

use super::{
    Exporter, PROVENANCE_COLUMNS, Report, efficiency, format_number, knee_of, paired_difference,
    slo_met,
};
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

/// How a figure of the comparison is read off a topology.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// The summary.csv figure of the same name.
    Summary,
    /// The summary figure, then a `<name>_vs_best` row: the paired difference to the best.
    SummaryAndDifference,
    /// Throughput per server relative to the first point of the sweep series (sweeps only).
    Efficiency,
    /// 1 when every `[slo]` bound holds, 0 when one breaks (sweeps with an SLO only).
    SloMet,
}

struct Figure {
    name: &'static str,
    better: Better,
    source: Source,
}

const fn figure(name: &'static str, better: Better) -> Figure {
    Figure {
        name,
        better,
        source: Source::Summary,
    }
}

/// A characteristic of the comparison and the figures that measure it.
struct Characteristic {
    name: &'static str,
    figures: &'static [Figure],
}

const CHARACTERISTICS: &[Characteristic] = &[
    Characteristic {
        name: "state management",
        figures: &[
            figure("session_state_bytes", Better::Neither),
            figure("bytes_per_request", Better::Lower),
        ],
    },
    Characteristic {
        name: "fault tolerance",
        figures: &[
            figure("sessions_lost", Better::Lower),
            figure("sessions_lost_per_fault", Better::Lower),
            figure("failed", Better::Lower),
            figure("failed_per_fault", Better::Lower),
            figure("availability", Better::Higher),
        ],
    },
    Characteristic {
        name: "scalability",
        figures: &[
            // Descriptive: a ratio of means has no interval to tell 2.98 from 2.97 with.
            Figure {
                name: "efficiency",
                better: Better::Neither,
                source: Source::Efficiency,
            },
            Figure {
                name: "slo_met",
                better: Better::Higher,
                source: Source::SloMet,
            },
        ],
    },
    Characteristic {
        name: "resource utilisation",
        figures: &[
            figure("session_memory_steady_mb", Better::Lower),
            figure("peak_session_memory_mb", Better::Lower),
            figure("server_utilization", Better::Neither),
            figure("store_utilization", Better::Neither),
        ],
    },
    Characteristic {
        name: "data redundancy",
        figures: &[
            figure("state_copies", Better::Neither),
            figure("store_bytes_per_request", Better::Neither),
            figure("replication_bytes_per_request", Better::Neither),
            figure("token_bytes_per_request", Better::Neither),
        ],
    },
    Characteristic {
        name: "load balancing",
        figures: &[figure("load_imbalance", Better::Lower)],
    },
    Characteristic {
        name: "latency",
        figures: &[
            Figure {
                name: "latency_p50_ms",
                better: Better::Lower,
                source: Source::SummaryAndDifference,
            },
            Figure {
                name: "latency_p99_ms",
                better: Better::Lower,
                source: Source::SummaryAndDifference,
            },
        ],
    },
    Characteristic {
        name: "cost",
        figures: &[
            figure("cost_per_hour", Better::Lower),
            figure("cost_per_million_requests", Better::Lower),
            figure("cross_zone_bytes_per_request", Better::Lower),
        ],
    },
];

/// One row of comparison.csv.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The sweep point's values (empty without a sweep).
    pub params: Vec<String>,
    pub characteristic: &'static str,
    pub metric: String,
    pub topology: String,
    pub value: f64,
    pub ci95: f64,
    /// The best of its figure, or tied with the best.
    pub best: bool,
}

/// The summaries of each sweep point (the whole report without a sweep), in order.
fn points(report: &Report) -> Vec<&[TopologySummary]> {
    report
        .summaries
        .chunk_by(|a, b| a.params == b.params)
        .collect()
}

/// The comparison of a run of two or more topologies, point by point for a sweep.
pub fn comparison(report: &Report) -> Vec<Row> {
    points(report)
        .into_iter()
        .filter(|point| point.len() >= 2)
        .flat_map(|point| point_comparison(report, point))
        .collect()
}

/// The comparison of one point's topologies. A figure no topology has (a store's utilisation
/// in a run without one, per-fault figures without faults) is left out.
fn point_comparison(report: &Report, point: &[TopologySummary]) -> Vec<Row> {
    let mut rows = Vec::new();
    for characteristic in CHARACTERISTICS {
        for figure in characteristic.figures {
            let Some(measured) = measure(report, point, figure) else {
                continue;
            };
            if measured.iter().all(|(value, _)| value.is_nan()) {
                continue;
            }
            let (best, winner) = best_of(point, &measured, figure);
            let row = |metric: String, summary: &TopologySummary, value, ci95, best| Row {
                params: summary.params.clone(),
                characteristic: characteristic.name,
                metric,
                topology: summary.topology.clone(),
                value,
                ci95,
                best,
            };
            for ((summary, &(value, ci95)), &best) in point.iter().zip(&measured).zip(&best) {
                rows.push(row(figure.name.to_string(), summary, value, ci95, best));
            }
            if figure.source == Source::SummaryAndDifference
                && let Some(winner) = winner
                && let Some(index) = metric_index(figure.name)
            {
                for (summary, &best) in point.iter().zip(&best) {
                    let (difference, half_width) = difference_to(summary, &point[winner], index);
                    let metric = format!("{}_vs_best", figure.name);
                    rows.push(row(metric, summary, difference, half_width, best));
                }
            }
        }
    }
    rows
}

/// Each topology's value of `figure` and its 95% half-width (NaN where there is none); None
/// when the figure does not apply to this report.
fn measure(report: &Report, point: &[TopologySummary], figure: &Figure) -> Option<Vec<(f64, f64)>> {
    match figure.source {
        Source::Summary | Source::SummaryAndDifference => {
            let index = metric_index(figure.name)?;
            Some(
                point
                    .iter()
                    .map(|s| (s.values[index], s.ci95[index]))
                    .collect(),
            )
        }
        Source::Efficiency if !report.sweep_keys.is_empty() => Some(
            point
                .iter()
                .map(|s| (efficiency(report, s), f64::NAN))
                .collect(),
        ),
        Source::SloMet if !report.sweep_keys.is_empty() && !report.slo.is_empty() => Some(
            point
                .iter()
                .map(|s| {
                    let met = slo_met(report, s).unwrap_or(false);
                    (if met { 1.0 } else { 0.0 }, f64::NAN)
                })
                .collect(),
        ),
        Source::Efficiency | Source::SloMet => None,
    }
}

/// `summary`'s figure `index` minus `reference`'s: the paired mean and 95% half-width with
/// replications, the plain difference (and no interval) with one run.
fn difference_to(
    summary: &TopologySummary,
    reference: &TopologySummary,
    index: usize,
) -> (f64, f64) {
    if std::ptr::eq(summary, reference) {
        return (0.0, 0.0);
    }
    if summary.replications >= 2 && reference.replications >= 2 {
        paired_difference(summary, reference, index)
    } else {
        (summary.values[index] - reference.values[index], f64::NAN)
    }
}

/// For each topology, whether it is the best of the figure or not significantly different from
/// the best; and which is the best. All false for a descriptive figure or when no topology has
/// a value. Summary figures tie by the paired 95% interval of the difference; computed ones only
/// when equal.
fn best_of(
    point: &[TopologySummary],
    measured: &[(f64, f64)],
    figure: &Figure,
) -> (Vec<bool>, Option<usize>) {
    let none = (vec![false; point.len()], None);
    let sign = match figure.better {
        Better::Lower => 1.0,
        Better::Higher => -1.0,
        Better::Neither => return none,
    };
    let Some(winner) = (0..point.len())
        .filter(|&i| !measured[i].0.is_nan())
        .min_by(|&a, &b| (sign * measured[a].0).total_cmp(&(sign * measured[b].0)))
    else {
        return none;
    };
    let index = match figure.source {
        Source::Summary | Source::SummaryAndDifference => metric_index(figure.name),
        Source::Efficiency | Source::SloMet => None,
    };
    let best = (0..point.len())
        .map(|i| {
            let value = measured[i].0;
            if i == winner || value == measured[winner].0 {
                return true;
            }
            let (summary, best) = (&point[i], &point[winner]);
            let paired = summary.replications >= 2 && best.replications >= 2;
            let Some(index) = index.filter(|_| paired && !value.is_nan()) else {
                return false;
            };
            let (difference, half_width) = paired_difference(summary, best, index);
            !half_width.is_nan()
                && (difference - half_width..=difference + half_width).contains(&0.0)
        })
        .collect();
    (best, Some(winner))
}

/// The comparison for stdout: where each topology keeps its state, then a block per
/// characteristic, each figure's topologies with the best marked `*` (or "no significant
/// difference"), then the trade-off in plain sentences. For a sweep: each series' knee and
/// efficiency, then the comparison at the last point.
pub fn render_verdict(report: &Report) -> String {
    let Some(point) = points(report).into_iter().rfind(|p| p.len() >= 2) else {
        return String::new();
    };
    let mut out = String::from("\ncomparison (* best of the row):\n");
    if !report.sweep_keys.is_empty() {
        out.push_str(&render_sweep_scalability(report, point));
        let at: Vec<String> = report
            .sweep_keys
            .iter()
            .zip(&point[0].params)
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        out.push_str(&format!("  at the last point, {}:\n", at.join(" ")));
    }
    let cells: Vec<String> = point
        .iter()
        .map(|s| format!("{}: {}", s.topology, s.placement))
        .collect();
    out.push_str(&format!("  where state lives: {}\n", cells.join(" | ")));
    let rows = point_comparison(report, point);
    for characteristic in CHARACTERISTICS {
        out.push_str(&format!("  {}\n", characteristic.name));
        let own = rows
            .iter()
            .filter(|row| row.characteristic == characteristic.name)
            .collect::<Vec<_>>();
        for figure in own.chunks(point.len()) {
            out.push_str(&render_figure(point, figure));
        }
        if characteristic.name == "scalability" {
            out.push_str(&render_bottleneck(point, report.sweep_keys.is_empty()));
        }
    }
    for sentence in trade_off(point) {
        out.push_str(&sentence);
        out.push('\n');
    }
    out
}

/// One figure's line: each topology's value, its interval, `*` on the best.
fn render_figure(point: &[TopologySummary], figure: &[&Row]) -> String {
    let first = &figure[0];
    let difference = first.metric.ends_with("_vs_best");
    let cells: Vec<String> = figure
        .iter()
        .map(|row| {
            let mark = if row.best { "*" } else { "" };
            let interval = if row.ci95.is_nan() || row.ci95 == 0.0 {
                String::new()
            } else {
                format!(" ± {}", shown_number(row.ci95))
            };
            let sign = if difference && row.value > 0.0 {
                "+"
            } else {
                ""
            };
            format!(
                "{} {sign}{}{interval}{mark}",
                row.topology,
                shown_number(row.value)
            )
        })
        .collect();
    let winners = figure.iter().filter(|row| row.best).count();
    let replicated = point.iter().all(|s| s.replications >= 2);
    let tie = match (winners > 1 && !difference, replicated) {
        (false, _) => "",
        (true, true) => "  (no significant difference between the starred)",
        (true, false) => "  (tied)",
    };
    format!("    {:<30} {}{tie}\n", first.metric, cells.join(" | "))
}

/// Where each topology's capacity runs out first at this load: the servers or the store, by
/// utilisation, or the station found saturated; without a sweep, how to measure scalability
/// itself.
fn render_bottleneck(point: &[TopologySummary], hint: bool) -> String {
    let cells: Vec<String> = point
        .iter()
        .map(|s| {
            let (server, store) = (s.get("server_utilization"), s.get("store_utilization"));
            let saturated = saturated_stations(s);
            if !saturated.is_empty() {
                format!(
                    "{} saturated = {} (from {:.0} s)",
                    s.topology,
                    saturated.join(" + "),
                    s.get("saturated_at_s")
                )
            } else if store > server {
                format!("{} store ({:.0}%)", s.topology, 100.0 * store)
            } else {
                format!("{} servers ({:.0}%)", s.topology, 100.0 * server)
            }
        })
        .collect();
    let mut out = format!("    {:<30} {}\n", "bottleneck", cells.join(" | "));
    if hint {
        out.push_str(
            "    (efficiency and the knee need a sweep with an [slo], e.g. \
             --sweep workload.sessions_per_second=100,200,400; scalability.csv then has them)\n",
        );
    }
    out
}

/// The kinds of station found saturated in any replication of `summary`: "store", "server".
fn saturated_stations(summary: &TopologySummary) -> Vec<&'static str> {
    [
        ("store", "saturated_store"),
        ("server", "saturated_servers"),
    ]
    .into_iter()
    .filter(|(_, column)| summary.get(column) > 0.0)
    .map(|(name, _)| name)
    .collect()
}

/// A line for stderr per topology (and sweep point) with a saturated station: its figures
/// describe a queue that was still growing when the run ended.
pub fn saturation_warnings(report: &Report) -> Vec<String> {
    report
        .summaries
        .iter()
        .filter_map(|s| {
            let saturated = saturated_stations(s);
            if saturated.is_empty() {
                return None;
            }
            let point = match report.point_of(s) {
                pairs if pairs.is_empty() => String::new(),
                pairs => format!(" at {}", pairs.join(", ")),
            };
            let share = |column: &str| (s.get(column) * f64::from(s.replications)).round();
            let counts: Vec<String> = [
                ("store", "saturated_store"),
                ("server", "saturated_servers"),
            ]
            .into_iter()
            .filter(|(_, column)| s.get(column) > 0.0)
            .map(|(name, column)| {
                format!(
                    "{name} in {} of {} replications",
                    share(column),
                    s.replications
                )
            })
            .collect();
            Some(format!(
                "topology \"{}\"{point} is saturated ({}; first from {:.1} s of simulated \
                 time): a queue kept growing for 30 s while every worker was busy, so the load \
                 passed that station's capacity, for good (then its latency and memory figures \
                 grow with the run's length) or for a while (timeseries.csv shows which). \
                 --stop-on-saturation ends such a run there",
                s.topology,
                counts.join(", "),
                s.get("saturated_at_s"),
            ))
        })
        .collect()
}

/// A sweep's scalability per topology: the knee of each series (the last point that meets the
/// `[slo]`) and the efficiency at the last point.
fn render_sweep_scalability(report: &Report, point: &[TopologySummary]) -> String {
    let key = report.sweep_keys.last().map_or("", String::as_str);
    let cells: Vec<String> = point
        .iter()
        .map(|s| {
            let knee = match knee_of(report, s) {
                Some(knee) => format!("knee at {key}={}", knee.params.last().map_or("", |v| v)),
                None if report.slo.is_empty() => "no [slo], no knee".into(),
                None => "no knee (the [slo] never breaks, or breaks at once)".into(),
            };
            format!(
                "{} efficiency {} at the last point, {knee}",
                s.topology,
                shown_number(efficiency(report, s))
            )
        })
        .collect();
    format!("  scalability over the sweep: {}\n", cells.join(" | "))
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
fn trade_off(summaries: &[TopologySummary]) -> Vec<String> {
    let get = |s: &TopologySummary, name: &str| s.get(name);
    let by = |name: &'static str| {
        move |a: &&TopologySummary, b: &&TopologySummary| get(a, name).total_cmp(&get(b, name))
    };
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

/// comparison.csv's own columns, between the sweep's `param_` columns and the provenance.
pub const COMPARISON_COLUMNS: [&str; 6] = [
    "characteristic",
    "metric",
    "topology",
    "value",
    "ci95",
    "best",
];

impl Exporter for ComparisonCsv {
    fn file_name(&self) -> &'static str {
        "comparison.csv"
    }

    fn applies(&self, report: &Report) -> bool {
        !comparison(report).is_empty()
    }

    fn write(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        let mut writer = csv::Writer::from_writer(out);
        let mut header = vec!["scenario".to_string()];
        header.extend(report.param_columns());
        header.extend(COMPARISON_COLUMNS.map(String::from));
        header.extend(PROVENANCE_COLUMNS.map(String::from));
        writer.write_record(&header)?;
        for row in comparison(report) {
            let mut cells = vec![report.scenario.clone()];
            cells.extend(row.params);
            cells.extend([
                row.characteristic.to_string(),
                row.metric,
                row.topology,
                format_number(row.value),
                format_number(row.ci95),
                row.best.to_string(),
            ]);
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

    /// `best_of` for the summary figure `name` read the way the comparison reads it.
    fn best(summaries: &[TopologySummary], name: &'static str, better: Better) -> Vec<bool> {
        let figure = figure(name, better);
        let measured = measure(&report(summaries), summaries, &figure).unwrap();
        best_of(summaries, &measured, &figure).0
    }

    fn report(summaries: &[TopologySummary]) -> Report {
        Report {
            scenario: "test".into(),
            seed: 1,
            scenario_hash: 0,
            sweep_keys: Vec::new(),
            series_fixed: 0,
            slo: Vec::new(),
            fault_kinds: Vec::new(),
            description: String::new(),
            summaries: summaries.to_vec(),
        }
    }

    #[test]
    fn a_difference_whose_interval_holds_zero_is_a_tie_and_a_clear_one_is_not() {
        let name = "latency_p50_ms";
        let index = metric_index(name).unwrap();
        let summaries = vec![
            topology("best", index, &[1.0, 2.0, 3.0, 2.0]),
            // Paired differences 0.5, -0.2, 0.1, -0.1: the interval straddles zero.
            topology("close", index, &[1.5, 1.8, 3.1, 1.9]),
            // Paired differences 1.0, 1.1, 0.9, 1.0: clearly worse.
            topology("slow", index, &[2.0, 3.1, 3.9, 3.0]),
        ];
        assert_eq!(best(&summaries, name, Better::Lower), [true, true, false]);
        assert_eq!(
            best(&summaries, name, Better::Higher),
            [false, false, true],
            "higher is better: the slow one wins, clearly"
        );
        assert_eq!(
            best(&summaries, name, Better::Neither),
            [false, false, false]
        );
    }

    /// The `_vs_best` rows are differences to the best itself, not to the first topology tied
    /// with it: the best's row is 0 and the others are paired differences to it.
    #[test]
    fn differences_to_the_best_are_to_the_best_not_to_a_tie() {
        let name = "latency_p99_ms";
        let index = metric_index(name).unwrap();
        let summaries = vec![
            topology("tied", index, &[1.5, 1.8, 3.1, 1.9]),
            topology("best", index, &[1.0, 2.0, 3.0, 2.0]),
            topology("slow", index, &[2.0, 3.1, 3.9, 3.0]),
        ];
        let rows = point_comparison(&report(&summaries), &summaries);
        let difference = |topology: &str| {
            rows.iter()
                .find(|r| r.metric == "latency_p99_ms_vs_best" && r.topology == topology)
                .map(|r| (r.value, r.best))
                .unwrap()
        };
        assert_eq!(difference("best"), (0.0, true));
        let (tied, tied_best) = difference("tied");
        assert!((tied - 0.075).abs() < 1e-12 && tied_best, "{tied}");
        let (slow, slow_best) = difference("slow");
        assert!((slow - 1.0).abs() < 1e-12 && !slow_best, "{slow}");
    }
}
