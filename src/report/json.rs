//! summary.json and `--format json`: one document with the provenance, summary.csv's rows and
//! comparison.csv's rows, for scripts and dashboards.
//!
//! The rows are made by running the CSV exporters and reading their output back, so every JSON
//! figure is summary.csv's figure to the digit (`pd.DataFrame(doc["summary"])` is
//! `pd.read_csv("summary.csv")`) and a new column reaches both files at once.

use super::{Exporter, Report, SummaryCsv, verdict::ComparisonCsv};
use serde_json::{Map, Value, json};
use std::io::{self, Write};

/// Columns that hold names, never figures, even when a name happens to look like a number (a
/// scenario hash of 16 decimal digits).
const TEXT_COLUMNS: &[&str] = &[
    "scenario",
    "topology",
    "state",
    "scenario_hash",
    "statesim_version",
    "characteristic",
    "metric",
];

/// The whole document: `statesim_version`, `scenario` (name, description, seed, hash, swept
/// keys), `summary` (summary.csv's rows) and `verdict` (comparison.csv's rows; empty with one
/// topology).
pub fn document(report: &Report) -> io::Result<Value> {
    let [_, hash, version] = report.provenance();
    Ok(json!({
        "statesim_version": version,
        "scenario": {
            "name": report.scenario,
            "description": report.description,
            "seed": report.seed,
            "scenario_hash": hash,
            "sweep_keys": report.sweep_keys,
        },
        "summary": rows_of(&SummaryCsv, report)?,
        "verdict": rows_of(&ComparisonCsv, report)?,
    }))
}

/// An exporter's CSV as an array of objects keyed by its header.
fn rows_of(exporter: &dyn Exporter, report: &Report) -> io::Result<Value> {
    if !exporter.applies(report) {
        return Ok(Value::Array(Vec::new()));
    }
    let mut text = Vec::new();
    exporter.write(report, &mut text)?;
    let mut reader = csv::Reader::from_reader(text.as_slice());
    let header = reader.headers()?.clone();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record?;
        let object: Map<String, Value> = header
            .iter()
            .zip(record.iter())
            .map(|(column, cell)| (column.to_string(), cell_value(column, cell)))
            .collect();
        rows.push(Value::Object(object));
    }
    Ok(Value::Array(rows))
}

/// A CSV cell as JSON: an empty cell is null (as pandas reads it), `true`/`false` a boolean,
/// a figure a number, a name a string.
fn cell_value(column: &str, cell: &str) -> Value {
    if TEXT_COLUMNS.contains(&column) {
        return Value::String(cell.to_string());
    }
    match cell {
        "" => Value::Null,
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => match cell.parse::<u64>() {
            Ok(integer) => Value::from(integer),
            Err(_) => match cell.parse::<f64>() {
                Ok(number) if number.is_finite() => Value::from(number),
                _ => Value::String(cell.to_string()),
            },
        },
    }
}

/// summary.json, beside summary.csv.
pub struct SummaryJson;

impl Exporter for SummaryJson {
    fn file_name(&self) -> &'static str {
        "summary.json"
    }

    fn write(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, &document(report)?)?;
        writeln!(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_keep_their_kind() {
        assert_eq!(
            cell_value("scenario_hash", "1234567890123456"),
            json!("1234567890123456")
        );
        assert_eq!(cell_value("requests", "291648"), json!(291648));
        assert_eq!(cell_value("latency_p99_ms", "85.524479"), json!(85.524479));
        assert_eq!(cell_value("requests_ci95", ""), Value::Null);
        assert_eq!(cell_value("best", "true"), json!(true));
        assert_eq!(
            cell_value("param_balancer.policy", "round_robin"),
            json!("round_robin")
        );
    }
}
