//! summary.csv (one row per topology), replications.csv (one row per topology and replication),
//! latency.csv (the latency distribution, long format), scalability.csv (sweeps),
//! differences.csv (replications: paired differences between topologies), timeseries.csv (one row
//! per time bucket of each run), faults.csv (one row per fault occurrence of each run) and
//! servers.csv (one row per topology and server).

use super::{Exporter, PROVENANCE_COLUMNS, Report, format_number};
use crate::metrics::{
    FAULT_COLUMNS, METRICS, SERIES_COLUMNS, SERVER_COLUMNS, ServerRow, TopologySummary,
};
use std::io::{self, Write};

/// The columns every file starts with: `scenario`, a sweep's `param_<key>` columns, the file's
/// own `identity` columns, then the provenance (seed, scenario hash, version).
fn leading_columns(report: &Report, identity: &[&str]) -> Vec<String> {
    let mut columns = vec!["scenario".to_string()];
    columns.extend(report.param_columns());
    columns.extend(identity.iter().map(|c| c.to_string()));
    columns.extend(PROVENANCE_COLUMNS.map(String::from));
    columns
}

/// The cells of [`leading_columns`] for one summary's row.
fn leading_cells(
    report: &Report,
    summary: &TopologySummary,
    identity: impl IntoIterator<Item = String>,
) -> Vec<String> {
    let mut cells = vec![report.scenario.clone()];
    cells.extend(summary.params.iter().cloned());
    cells.extend(identity);
    cells.extend(report.provenance());
    cells
}

pub struct SummaryCsv;

impl Exporter for SummaryCsv {
    fn file_name(&self) -> &'static str {
        "summary.csv"
    }

    fn write(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        let mut writer = csv::Writer::from_writer(out);
        let mut header = leading_columns(report, &["topology", "state", "replications"]);
        for metric in METRICS {
            header.push(metric.name.to_string());
            header.push(format!("{}_ci95", metric.name));
        }
        writer.write_record(&header)?;
        for summary in &report.summaries {
            let identity = [
                summary.topology.clone(),
                summary.state.to_string(),
                summary.replications.to_string(),
            ];
            let mut row = leading_cells(report, summary, identity);
            for (value, half_width) in summary.values.iter().zip(&summary.ci95) {
                row.push(format_number(*value));
                row.push(format_number(*half_width));
            }
            writer.write_record(&row)?;
        }
        writer.flush()
    }
}

/// Every replication's figures: what the means and intervals of summary.csv come from.
pub struct ReplicationsCsv;

impl Exporter for ReplicationsCsv {
    fn file_name(&self) -> &'static str {
        "replications.csv"
    }

    fn write(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        let mut writer = csv::Writer::from_writer(out);
        let mut header = leading_columns(report, &["topology", "state", "replication"]);
        header.extend(METRICS.iter().map(|m| m.name.to_string()));
        writer.write_record(&header)?;
        for summary in &report.summaries {
            for (replication, values) in summary.per_replication.iter().enumerate() {
                let identity = [
                    summary.topology.clone(),
                    summary.state.to_string(),
                    replication.to_string(),
                ];
                let mut row = leading_cells(report, summary, identity);
                row.extend(values.iter().map(|v| format_number(*v)));
                writer.write_record(&row)?;
            }
        }
        writer.flush()
    }
}

/// Percentiles reported in latency.csv: 0 to 100 in steps of 0.5, plus the far tail.
pub fn latency_percentiles() -> Vec<f64> {
    let mut percentiles: Vec<f64> = (0..=200).map(|i| f64::from(i) * 0.5).collect();
    percentiles.extend([99.9, 99.95, 99.99]);
    percentiles.sort_by(f64::total_cmp);
    percentiles
}

pub struct LatencyCsv;

impl Exporter for LatencyCsv {
    fn file_name(&self) -> &'static str {
        "latency.csv"
    }

    fn write(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        let mut writer = csv::Writer::from_writer(out);
        let mut header = leading_columns(report, &["topology"]);
        header.extend(["percentile", "latency_ms", "samples"].map(String::from));
        writer.write_record(&header)?;
        let percentiles = latency_percentiles();
        for summary in &report.summaries {
            let histogram = &summary.pooled_latency;
            let samples = histogram.len().to_string();
            for &percentile in &percentiles {
                let value = if histogram.is_empty() {
                    f64::NAN
                } else {
                    histogram.value_at_percentile(percentile) as f64 / 1e6
                };
                let mut row = leading_cells(report, summary, [summary.topology.clone()]);
                row.extend([
                    format_number(percentile),
                    format_number(value),
                    samples.clone(),
                ]);
                writer.write_record(&row)?;
            }
        }
        writer.flush()
    }
}

/// For a sweep: each topology's throughput and latency along the last swept key (the one that
/// varies fastest, with any keys zipped to it; other swept keys split the rows into separate
/// series), its efficiency
/// (throughput per server relative to the series' first point) and whether the `[slo]` holds;
/// `knee` marks the last point of a series before the first one that breaks the SLO (none when
/// the series never breaks it).
pub struct ScalabilityCsv;

/// The rows of one series: a topology at fixed values of the swept keys that do not vary along it.
fn series_of<'r>(report: &'r Report, summary: &TopologySummary) -> Vec<&'r TopologySummary> {
    let fixed = report.series_fixed.min(summary.params.len());
    report
        .summaries
        .iter()
        .filter(|s| s.topology == summary.topology && s.params[..fixed] == summary.params[..fixed])
        .collect()
}

impl Exporter for ScalabilityCsv {
    fn file_name(&self) -> &'static str {
        "scalability.csv"
    }

    fn applies(&self, report: &Report) -> bool {
        !report.sweep_keys.is_empty()
    }

    fn write(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        let mut writer = csv::Writer::from_writer(out);
        let mut header = leading_columns(report, &["topology", "servers"]);
        header.extend(
            [
                "throughput_rps",
                "latency_p50_ms",
                "latency_p99_ms",
                "efficiency",
                "slo_met",
                "knee",
            ]
            .map(String::from),
        );
        writer.write_record(&header)?;
        for summary in &report.summaries {
            let met = slo_met(report, summary);
            let knee = if report.slo.is_empty() {
                String::new()
            } else {
                knee_of(report, summary)
                    .is_some_and(|k| std::ptr::eq(k, summary))
                    .to_string()
            };
            let identity = [summary.topology.clone(), summary.servers.to_string()];
            let mut row = leading_cells(report, summary, identity);
            row.extend([
                format_number(summary.get("throughput_rps")),
                format_number(summary.get("latency_p50_ms")),
                format_number(summary.get("latency_p99_ms")),
                format_number(efficiency(report, summary)),
                met.map_or(String::new(), |m| m.to_string()),
                knee,
            ]);
            writer.write_record(&row)?;
        }
        writer.flush()
    }
}

/// Throughput per server relative to the first point of the summary's series: 1 while adding
/// load (or servers) adds throughput in proportion.
pub fn efficiency(report: &Report, summary: &TopologySummary) -> f64 {
    let per_server = |s: &TopologySummary| s.get("throughput_rps") / f64::from(s.servers.max(1));
    per_server(summary) / per_server(series_of(report, summary)[0])
}

/// The knee of the summary's series: its last point before the first that breaks the `[slo]`.
/// None without an SLO, and for a series that never breaks it (or breaks it at once).
pub fn knee_of<'r>(report: &'r Report, summary: &TopologySummary) -> Option<&'r TopologySummary> {
    if report.slo.is_empty() {
        return None;
    }
    let series = series_of(report, summary);
    let holding = series
        .iter()
        .take_while(|s| slo_met(report, s) == Some(true))
        .count();
    let breaks = holding < series.len();
    holding
        .checked_sub(1)
        .filter(|_| breaks)
        .map(|last| series[last])
}

/// Whether every `[slo]` bound holds for this row; `None` without an SLO.
pub fn slo_met(report: &Report, summary: &TopologySummary) -> Option<bool> {
    if report.slo.is_empty() {
        return None;
    }
    Some(
        report
            .slo
            .iter()
            .all(|bound| bound.holds(summary.get(&bound.metric), summary.ci95_of(&bound.metric))),
    )
}

/// With replications, each topology against the first of its sweep point, replication by
/// replication: both ran on the same random numbers (common random numbers), so the paired
/// difference's interval is far narrower than the two intervals side by side.
pub struct DifferencesCsv;

/// Pairs of (topology, the first topology of its point), for every point.
pub fn paired_rows(report: &Report) -> Vec<(&TopologySummary, &TopologySummary)> {
    let mut pairs = Vec::new();
    let mut reference: Option<&TopologySummary> = None;
    for summary in &report.summaries {
        match reference {
            Some(first) if first.params == summary.params => pairs.push((summary, first)),
            _ => reference = Some(summary),
        }
    }
    pairs
}

/// Mean and 95% half-width of `metric`(topology) − `metric`(reference) over paired replications.
pub fn paired_difference(
    summary: &TopologySummary,
    reference: &TopologySummary,
    metric: usize,
) -> (f64, f64) {
    let differences: Vec<f64> = summary
        .per_replication
        .iter()
        .zip(&reference.per_replication)
        .map(|(a, b)| a[metric] - b[metric])
        .filter(|d| !d.is_nan())
        .collect();
    crate::stats::mean_and_half_width(&differences, 0.95)
}

impl Exporter for DifferencesCsv {
    fn file_name(&self) -> &'static str {
        "differences.csv"
    }

    fn applies(&self, report: &Report) -> bool {
        !paired_rows(report).is_empty() && report.summaries.iter().all(|s| s.replications >= 2)
    }

    fn write(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        let mut writer = csv::Writer::from_writer(out);
        let mut header = leading_columns(report, &["topology", "versus", "metric"]);
        header.extend(["difference", "difference_ci95", "relative"].map(String::from));
        writer.write_record(&header)?;
        for (summary, reference) in paired_rows(report) {
            for (index, metric) in METRICS.iter().enumerate() {
                let (difference, half_width) = paired_difference(summary, reference, index);
                let base = reference.values[index];
                let relative = if base != 0.0 {
                    difference / base
                } else {
                    f64::NAN
                };
                let identity = [
                    summary.topology.clone(),
                    reference.topology.clone(),
                    metric.name.to_string(),
                ];
                let mut row = leading_cells(report, summary, identity);
                row.extend([
                    format_number(difference),
                    format_number(half_width),
                    format_number(relative),
                ]);
                writer.write_record(&row)?;
            }
        }
        writer.flush()
    }
}

/// The course of each run over time: one row per bucket (`bucket`, `--bucket`) per topology and
/// replication, warm-up included, so the failure, its detection and the recovery show.
pub struct TimeseriesCsv;

impl Exporter for TimeseriesCsv {
    fn file_name(&self) -> &'static str {
        "timeseries.csv"
    }

    fn write(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        let mut writer = csv::Writer::from_writer(out);
        let mut header = leading_columns(report, &["topology", "replication"]);
        header.extend(SERIES_COLUMNS.map(String::from));
        writer.write_record(&header)?;
        for summary in &report.summaries {
            for (replication, rows) in summary.series.iter().enumerate() {
                for row in rows {
                    let identity = [summary.topology.clone(), replication.to_string()];
                    let mut cells = leading_cells(report, summary, identity);
                    cells.extend(row.iter().map(|v| format_number(*v)));
                    writer.write_record(&cells)?;
                }
            }
        }
        writer.flush()
    }
}

/// Each fault occurrence in each run: when it began, when the balancer noticed, when the server
/// (or store) served again, and what it cost.
pub struct FaultsCsv;

impl Exporter for FaultsCsv {
    fn file_name(&self) -> &'static str {
        "faults.csv"
    }

    fn applies(&self, report: &Report) -> bool {
        !report.fault_kinds.is_empty()
    }

    fn write(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        let mut writer = csv::Writer::from_writer(out);
        let mut header = leading_columns(report, &["topology", "replication"]);
        header.push(FAULT_COLUMNS[0].into());
        header.push("kind".into());
        header.extend(FAULT_COLUMNS[1..].iter().map(|c| c.to_string()));
        writer.write_record(&header)?;
        for summary in &report.summaries {
            for (replication, rows) in summary.faults.iter().enumerate() {
                for row in rows {
                    let identity = [summary.topology.clone(), replication.to_string()];
                    let mut cells = leading_cells(report, summary, identity);
                    let kind = report.fault_kinds.get(row[0] as usize).copied();
                    cells.push(format_number(row[0]));
                    cells.push(kind.unwrap_or("").to_string());
                    cells.extend(row[1..].iter().map(|v| format_number(*v)));
                    writer.write_record(&cells)?;
                }
            }
        }
        writer.flush()
    }
}

/// Each server of each topology: the tries it was sent, its utilisation, the peak of its session
/// memory (replicas it holds for its peers included) and the sessions it lost, averaged over
/// replications (a server a replication never launched counts as zero there). Sessions lost
/// with the store are no server's, so the column can add up to less than summary.csv's.
pub struct ServersCsv;

impl Exporter for ServersCsv {
    fn file_name(&self) -> &'static str {
        "servers.csv"
    }

    fn write(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        let mut writer = csv::Writer::from_writer(out);
        let mut header = leading_columns(report, &["topology"]);
        header.extend(SERVER_COLUMNS.map(String::from));
        writer.write_record(&header)?;
        for summary in &report.summaries {
            for row in mean_server_rows(&summary.per_server) {
                let mut cells = leading_cells(report, summary, [summary.topology.clone()]);
                cells.extend(row.iter().map(|v| format_number(*v)));
                writer.write_record(&cells)?;
            }
        }
        writer.flush()
    }
}

/// Each server's figures averaged over the replications, by server index.
pub fn mean_server_rows(replications: &[Vec<ServerRow>]) -> Vec<ServerRow> {
    let servers = replications.iter().map(Vec::len).max().unwrap_or(0);
    let count = replications.len().max(1) as f64;
    (0..servers)
        .map(|index| {
            let mut row = [0.0; SERVER_COLUMNS.len()];
            for figures in replications.iter().filter_map(|rows| rows.get(index)) {
                for (sum, value) in row.iter_mut().zip(figures).skip(1) {
                    *sum += value;
                }
            }
            row[0] = index as f64;
            for value in &mut row[1..] {
                *value /= count;
            }
            row
        })
        .collect()
}
