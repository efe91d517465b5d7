//! summary.csv (one row per topology), replications.csv (one row per topology and replication)
//! and latency.csv (the latency distribution, long format).

use super::{Exporter, PROVENANCE_COLUMNS, Report, format_number};
use crate::metrics::METRICS;
use std::io::{self, Write};

pub struct SummaryCsv;

impl Exporter for SummaryCsv {
    fn file_name(&self) -> &'static str {
        "summary.csv"
    }

    fn write(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        let mut writer = csv::Writer::from_writer(out);
        let mut header = vec!["scenario".to_string()];
        header.extend(report.param_columns());
        header.extend(
            ["topology", "state", "replications"]
                .into_iter()
                .chain(PROVENANCE_COLUMNS)
                .map(String::from),
        );
        for metric in METRICS {
            header.push(metric.name.to_string());
            header.push(format!("{}_ci95", metric.name));
        }
        writer.write_record(&header)?;
        for summary in &report.summaries {
            let mut row = vec![report.scenario.clone()];
            row.extend(summary.params.iter().cloned());
            row.extend([
                summary.topology.clone(),
                summary.state.to_string(),
                summary.replications.to_string(),
            ]);
            row.extend(report.provenance());
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
        let mut header = vec!["scenario".to_string()];
        header.extend(report.param_columns());
        header.extend(
            ["topology", "state", "replication"]
                .into_iter()
                .chain(PROVENANCE_COLUMNS)
                .chain(METRICS.iter().map(|m| m.name))
                .map(String::from),
        );
        writer.write_record(&header)?;
        for summary in &report.summaries {
            for (replication, values) in summary.per_replication.iter().enumerate() {
                let mut row = vec![report.scenario.clone()];
                row.extend(summary.params.iter().cloned());
                row.extend([
                    summary.topology.clone(),
                    summary.state.to_string(),
                    replication.to_string(),
                ]);
                row.extend(report.provenance());
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
        let mut header = vec!["scenario".to_string()];
        header.extend(report.param_columns());
        header.extend(
            ["topology", "percentile", "latency_ms", "samples"]
                .into_iter()
                .chain(PROVENANCE_COLUMNS)
                .map(String::from),
        );
        writer.write_record(&header)?;
        let provenance = report.provenance();
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
                writer.write_record(
                    std::iter::once(report.scenario.as_str())
                        .chain(summary.params.iter().map(String::as_str))
                        .chain([
                            summary.topology.as_str(),
                            &format_number(percentile),
                            &format_number(value),
                            &samples,
                        ])
                        .chain(provenance.iter().map(String::as_str)),
                )?;
            }
        }
        writer.flush()
    }
}
