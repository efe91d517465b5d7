//! A results folder read back for `statesim report`: the CSV files a run wrote, as tables looked
//! up by column name, checked for the columns the report uses before anything is drawn.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error("{}: not a folder", .0.display())]
    NotAFolder(PathBuf),
    #[error(
        "{}: not a statesim results folder: summary.csv is missing (write one with `statesim run --out {}`)",
        .0.display(), .0.display()
    )]
    NotResults(PathBuf),
    #[error("{}: {file} is missing; the report needs it (run the scenario again to write it)", dir.display())]
    MissingFile { dir: PathBuf, file: &'static str },
    #[error("{}: cannot read: {source}", path.display())]
    Read { path: PathBuf, source: csv::Error },
    #[error("{}: has no column `{column}` (not written by this version of statesim?)", path.display())]
    MissingColumn { path: PathBuf, column: String },
    #[error("{}:{line}: column `{column}`: expected a number, got \"{value}\"", path.display())]
    NotANumber {
        path: PathBuf,
        line: u64,
        column: String,
        value: String,
    },
    #[error("{}: has no rows", path.display())]
    Empty { path: PathBuf },
    #[error("{}: has {found} rows, but summary.csv has {expected}: the files are of different runs", path.display())]
    Mismatch {
        path: PathBuf,
        found: usize,
        expected: usize,
    },
}

/// One CSV file: its header and rows.
#[derive(Debug)]
pub struct Table {
    path: PathBuf,
    header: csv::StringRecord,
    rows: Vec<csv::StringRecord>,
}

impl Table {
    /// Reads `dir/file`, keeping only the rows `keep` accepts (a timeseries' first replication):
    /// a long results file is streamed, not held whole.
    fn read(
        dir: &Path,
        file: &'static str,
        required: &[&str],
        keep: impl Fn(&csv::StringRecord, &csv::StringRecord) -> bool,
    ) -> Result<Table, FolderError> {
        let path = dir.join(file);
        let failed = |source| FolderError::Read {
            path: path.clone(),
            source,
        };
        let mut reader = csv::Reader::from_path(&path).map_err(failed)?;
        let header = reader.headers().map_err(failed)?.clone();
        let mut table = Table {
            path: path.clone(),
            header,
            rows: Vec::new(),
        };
        for column in required {
            table.column(column)?;
        }
        for record in reader.records() {
            let record = record.map_err(failed)?;
            if keep(&table.header, &record) {
                table.rows.push(record);
            }
        }
        if table.rows.is_empty() {
            return Err(FolderError::Empty { path });
        }
        Ok(table)
    }

    /// The index of a column.
    pub fn column(&self, name: &str) -> Result<usize, FolderError> {
        self.header
            .iter()
            .position(|column| column == name)
            .ok_or_else(|| FolderError::MissingColumn {
                path: self.path.clone(),
                column: name.to_string(),
            })
    }

    /// Whether the file has this column.
    pub fn has(&self, name: &str) -> bool {
        self.header.iter().any(|column| column == name)
    }

    /// The columns whose names start with `prefix`, in file order.
    pub fn columns_starting(&self, prefix: &str) -> Vec<String> {
        self.header
            .iter()
            .filter(|column| column.starts_with(prefix))
            .map(String::from)
            .collect()
    }

    pub fn rows(&self) -> &[csv::StringRecord] {
        &self.rows
    }

    /// Fails unless this table has a row for each of `other`'s (scalability.csv has one per
    /// summary.csv row).
    pub fn row_per_row_of(&self, other: &Table) -> Result<(), FolderError> {
        if self.rows.len() == other.rows.len() {
            Ok(())
        } else {
            Err(FolderError::Mismatch {
                path: self.path.clone(),
                found: self.rows.len(),
                expected: other.rows.len(),
            })
        }
    }

    /// A cell as text.
    pub fn text<'r>(
        &self,
        row: &'r csv::StringRecord,
        column: &str,
    ) -> Result<&'r str, FolderError> {
        Ok(row.get(self.column(column)?).unwrap_or(""))
    }

    /// A cell as a number; an empty cell (a figure the run did not have) is NaN.
    pub fn number(&self, row: &csv::StringRecord, column: &str) -> Result<f64, FolderError> {
        let cell = self.text(row, column)?;
        if cell.is_empty() {
            return Ok(f64::NAN);
        }
        cell.parse().map_err(|_| FolderError::NotANumber {
            path: self.path.clone(),
            line: row.position().map_or(0, |p| p.line()),
            column: column.to_string(),
            value: cell.chars().take(40).collect(),
        })
    }

    /// A row's sweep point: its `param_` cells, in order.
    pub fn point(&self, row: &csv::StringRecord) -> Vec<String> {
        self.header
            .iter()
            .zip(row.iter())
            .filter(|(column, _)| column.starts_with("param_"))
            .map(|(_, cell)| cell.to_string())
            .collect()
    }
}

/// What `statesim report` reads. summary.csv, latency.csv and servers.csv are always written;
/// the others only by runs that have them (more than one topology, a timeseries, faults, a
/// sweep), and their charts are left out without them.
#[derive(Debug)]
pub struct ResultsFolder {
    pub dir: PathBuf,
    pub summary: Table,
    pub latency: Table,
    pub servers: Table,
    pub comparison: Option<Table>,
    pub timeseries: Option<Table>,
    pub faults: Option<Table>,
    pub scalability: Option<Table>,
    /// summary.json's scenario description (empty when a folder of an older version lacks it).
    pub description: String,
}

const SUMMARY_COLUMNS: &[&str] = &[
    "scenario",
    "topology",
    "state",
    "replications",
    "seed",
    "scenario_hash",
    "statesim_version",
    "throughput_rps",
    "throughput_rps_ci95",
    "latency_p99_ms",
    "latency_p99_ms_ci95",
];

/// Reads the results folder `dir`, or says which file is missing or wrong.
pub fn read(dir: &Path) -> Result<ResultsFolder, FolderError> {
    if !dir.is_dir() {
        return Err(FolderError::NotAFolder(dir.to_path_buf()));
    }
    if !dir.join("summary.csv").is_file() {
        return Err(FolderError::NotResults(dir.to_path_buf()));
    }
    let all = |_: &csv::StringRecord, _: &csv::StringRecord| true;
    let required = |file: &'static str, columns: &[&str]| {
        if dir.join(file).is_file() {
            Table::read(dir, file, columns, all)
        } else {
            Err(FolderError::MissingFile {
                dir: dir.to_path_buf(),
                file,
            })
        }
    };
    let optional = |file: &'static str, columns: &[&str]| {
        if dir.join(file).is_file() {
            Table::read(dir, file, columns, all).map(Some)
        } else {
            Ok(None)
        }
    };
    let summary = required("summary.csv", SUMMARY_COLUMNS)?;
    let latency = required("latency.csv", &["topology", "percentile", "latency_ms"])?;
    let servers = required(
        "servers.csv",
        &["topology", "server", "requests", "utilization"],
    )?;
    let comparison = optional("comparison.csv", &super::verdict::COMPARISON_COLUMNS)?;
    let timeseries = if dir.join("timeseries.csv").is_file() {
        Some(Table::read(
            dir,
            "timeseries.csv",
            &TIMESERIES_COLUMNS,
            first_replication,
        )?)
    } else {
        None
    };
    let faults = optional(
        "faults.csv",
        &[
            "topology",
            "replication",
            "kind",
            "start_s",
            "recovered_at_s",
        ],
    )?;
    let scalability = optional("scalability.csv", &["topology", "efficiency", "knee"])?;
    Ok(ResultsFolder {
        dir: dir.to_path_buf(),
        description: description_of(dir),
        summary,
        latency,
        servers,
        comparison,
        timeseries,
        faults,
        scalability,
    })
}

/// The timeseries columns the timeline charts draw.
pub const TIMESERIES_COLUMNS: [&str; 11] = [
    "topology",
    "replication",
    "time_s",
    "throughput_rps",
    "rejected",
    "failed",
    "timed_out",
    "store_unavailable",
    "sessions_lost",
    "latency_p99_ms",
    "active_sessions",
];

/// Keeps replication 0's rows: a timeline shows one run, not an average of runs.
fn first_replication(header: &csv::StringRecord, row: &csv::StringRecord) -> bool {
    header
        .iter()
        .position(|column| column == "replication")
        .and_then(|index| row.get(index))
        .is_none_or(|replication| replication == "0")
}

/// summary.json's description, if the file is there and says one.
fn description_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("summary.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|document| {
            document["scenario"]["description"]
                .as_str()
                .map(String::from)
        })
        .unwrap_or_default()
}
