//! summary.csv (one row per topology) and latency.csv (the latency distribution, long format).

use super::{Exporter, Report, format_number};
use crate::metrics::METRICS;
use std::io::{self, Write};

pub struct SummaryCsv;

impl Exporter for SummaryCsv {
    fn file_name(&self) -> &'static str {
        "summary.csv"
    }

    fn write(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        let mut writer = csv::Writer::from_writer(out);
        let mut header = vec!["scenario", "topology", "state", "replications", "seed"];
        header.extend(METRICS.iter().map(|m| m.name));
        writer.write_record(&header)?;
        for summary in &report.summaries {
            let mut row = vec![
                report.scenario.clone(),
                summary.topology.clone(),
                summary.state.to_string(),
                summary.replications.to_string(),
                report.seed.to_string(),
            ];
            row.extend(summary.values.iter().map(|v| format_number(*v)));
            writer.write_record(&row)?;
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
        writer.write_record([
            "scenario",
            "topology",
            "percentile",
            "latency_ms",
            "samples",
        ])?;
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
                writer.write_record([
                    report.scenario.as_str(),
                    summary.topology.as_str(),
                    &format_number(percentile),
                    &format_number(value),
                    &samples,
                ])?;
            }
        }
        writer.flush()
    }
}
