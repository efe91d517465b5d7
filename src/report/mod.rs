//! Writers: the stdout table and the CSV files. Each file format is an [`Exporter`]; adding one
//! (JSON, SVG) means one more type here, not a change to the run.

pub mod charts;
mod csv_files;
pub mod folder;
pub mod html;
pub mod json;
mod table;
pub mod verdict;

use crate::metrics::TopologySummary;
use crate::scenario::Expectation;
pub use csv_files::{
    DifferencesCsv, FaultsCsv, LatencyCsv, ReplicationsCsv, ScalabilityCsv, ServersCsv, SummaryCsv,
    TimeseriesCsv, efficiency, knee_of, mean_server_rows, paired_difference, paired_rows, slo_met,
};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
pub use table::render_table;

/// What a run produced, ready to be written.
#[derive(Clone, Debug)]
pub struct Report {
    pub scenario: String,
    /// The scenario's `description` (summary.json and report.html show it).
    pub description: String,
    pub seed: u64,
    /// [`crate::scenario::Scenario::source_hash`] of the scenario that was run.
    pub scenario_hash: u64,
    /// The swept keys (empty without a sweep); each summary has its point's values.
    pub sweep_keys: Vec<String>,
    /// How many leading swept keys are fixed along a series of scalability.csv (the last sweep
    /// group varies along it).
    pub series_fixed: usize,
    /// The scenario's `[slo]`, for the knee of a sweep.
    pub slo: Vec<Expectation>,
    /// The `kind` of each scenario fault, by index (faults.csv names them); the autoscaler, when
    /// there is one, is one past the last.
    pub fault_kinds: Vec<&'static str>,
    pub summaries: Vec<TopologySummary>,
}

impl Report {
    /// A sweep point's values as `key=value` (empty without a sweep).
    pub fn point_of(&self, summary: &TopologySummary) -> Vec<String> {
        self.sweep_keys
            .iter()
            .zip(&summary.params)
            .map(|(key, value)| format!("{key}={value}"))
            .collect()
    }

    /// The `param_<key>` columns of a sweep.
    pub fn param_columns(&self) -> Vec<String> {
        self.sweep_keys
            .iter()
            .map(|key| format!("param_{key}"))
            .collect()
    }

    /// What every result file records about its origin: `seed`, `scenario_hash` (16 hex digits)
    /// and `statesim_version`, as columns.
    pub fn provenance(&self) -> [String; 3] {
        [
            self.seed.to_string(),
            format!("{:016x}", self.scenario_hash),
            env!("CARGO_PKG_VERSION").to_string(),
        ]
    }
}

/// The column names of [`Report::provenance`].
pub const PROVENANCE_COLUMNS: [&str; 3] = ["seed", "scenario_hash", "statesim_version"];

pub trait Exporter {
    fn file_name(&self) -> &'static str;
    /// Whether this report has anything for the file (scalability.csv needs a sweep).
    fn applies(&self, _report: &Report) -> bool {
        true
    }
    fn write(&self, report: &Report, out: &mut dyn Write) -> io::Result<()>;
}

pub fn default_exporters() -> Vec<Box<dyn Exporter>> {
    vec![
        Box::new(SummaryCsv),
        Box::new(json::SummaryJson),
        Box::new(ReplicationsCsv),
        Box::new(LatencyCsv),
        Box::new(ScalabilityCsv),
        Box::new(DifferencesCsv),
        Box::new(TimeseriesCsv),
        Box::new(FaultsCsv),
        Box::new(ServersCsv),
        Box::new(verdict::ComparisonCsv),
    ]
}

/// Writes every exporter's file into `dir`. Each file is written beside its final name and then
/// renamed, so a reader never sees a half-written file.
pub fn write_files(
    report: &Report,
    dir: &Path,
    exporters: &[Box<dyn Exporter>],
) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for exporter in exporters.iter().filter(|e| e.applies(report)) {
        let path = dir.join(exporter.file_name());
        let partial = dir.join(format!(".{}.partial", exporter.file_name()));
        let mut file = io::BufWriter::new(std::fs::File::create(&partial)?);
        exporter.write(report, &mut file)?;
        file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&partial, &path)?;
        written.push(path);
    }
    Ok(written)
}

/// Formats a figure for CSV: integers without a fraction, others with up to 6 decimals, NaN as an
/// empty cell (read as missing by pandas and R).
pub fn format_number(value: f64) -> String {
    if value.is_nan() {
        return String::new();
    }
    if value.fract() == 0.0 && value.abs() < 1e15 {
        return format!("{value:.0}");
    }
    let text = format!("{value:.6}");
    let trimmed = text.trim_end_matches('0').trim_end_matches('.');
    if trimmed == "-0" {
        "0".into()
    } else {
        trimmed.into()
    }
}

/// Directory-safe form of a scenario name.
pub fn safe_file_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let cleaned = cleaned.trim_matches('.').to_string();
    if cleaned.is_empty() {
        "scenario".into()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_format_tidily() {
        assert_eq!(format_number(12.0), "12");
        assert_eq!(format_number(0.125), "0.125");
        assert_eq!(format_number(1.0 / 3.0), "0.333333");
        assert_eq!(format_number(f64::NAN), "");
        assert_eq!(format_number(-0.0000001), "0");
    }

    #[test]
    fn names_become_safe_directories() {
        assert_eq!(safe_file_name("quick start/../x"), "quick_start_.._x");
        assert_eq!(safe_file_name(".."), "scenario");
    }
}
