//! Shared helpers for the integration tests.

use assert_cmd::Command;
use statesim::metrics::{METRICS, RunResult, metric_index};
use statesim::run::{RunOptions, run_jobs};
use statesim::scenario::{Scenario, load_file};
use std::path::{Path, PathBuf};

pub fn project_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

pub fn statesim() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_statesim"));
    command.env_remove("CI");
    command
}

pub fn load(relative: &str, overrides: &[&str]) -> Scenario {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    load_file(&project_path(relative), &overrides)
        .unwrap_or_else(|e| panic!("{relative} should load: {e}"))
}

/// Every run of a scenario given as text (for tests whose scenario is the test's own).
pub fn simulate_text(text: &str) -> Vec<RunResult> {
    let scenario = statesim::scenario::load_str(text, "inline.toml", Path::new("."), &[])
        .unwrap_or_else(|e| panic!("the test's scenario should load: {e}"));
    simulate(&scenario)
}

/// Every replication of every topology, in job order.
pub fn simulate(scenario: &Scenario) -> Vec<RunResult> {
    run_jobs(scenario, &RunOptions::default()).expect("thread pool starts")
}

/// The value of summary column `name` for one run.
pub fn metric(run: &RunResult, name: &str) -> f64 {
    let index = metric_index(name).unwrap_or_else(|| panic!("no metric {name}"));
    (METRICS[index].value)(run)
}

/// What a test that runs every bundled scenario sets on `file` to keep it short: the large
/// fleet runs a tenth of its rate on a tenth of its servers for a minute (its faults moved
/// into that minute), the same shape of model.
pub fn quick(file: &str) -> Vec<&'static str> {
    if file.ends_with("large-fleet.toml") {
        vec![
            "workload.sessions_per_second=2000",
            "servers.count=80",
            "duration=60s",
            "warmup=20s",
            "fault.0.at=30s",
            "fault.0.server=40",
            "fault.1.at=40s",
            "fault.1.count=88",
        ]
    } else {
        Vec::new()
    }
}

/// Every bundled scenario file, relative to the project root.
pub fn bundled_scenarios() -> Vec<String> {
    let mut files = Vec::new();
    for dir in ["scenarios", "scenarios/validation"] {
        for entry in std::fs::read_dir(project_path(dir)).expect("scenarios folder exists") {
            let path = entry.expect("readable entry").path();
            if path.extension().is_some_and(|e| e == "toml") {
                let name = path.file_name().unwrap().to_string_lossy().to_string();
                files.push(format!("{dir}/{name}"));
            }
        }
    }
    files.sort();
    assert!(
        files.len() >= 9,
        "expected the bundled scenarios, found {files:?}"
    );
    files
}

pub fn read_csv(path: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut reader =
        csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            headers
                .iter()
                .map(String::from)
                .zip(record.iter().map(String::from))
                .collect()
        })
        .collect()
}

pub type Row = std::collections::BTreeMap<String, String>;

/// A finished, successful `statesim run` in its own temporary folder (results in `out/`).
pub struct Finished {
    pub dir: tempfile::TempDir,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn out(&self, file: &str) -> PathBuf {
        self.dir.path().join("out").join(file)
    }

    pub fn summary(&self) -> Vec<Row> {
        read_csv(&self.out("summary.csv"))
    }

    /// The summary row of one topology.
    pub fn topology(&self, name: &str) -> Row {
        self.summary()
            .into_iter()
            .find(|row| row["topology"] == name)
            .unwrap_or_else(|| panic!("no topology {name} in summary.csv"))
    }
}

/// A numeric cell of a CSV row.
pub fn number(row: &Row, column: &str) -> f64 {
    row[column]
        .parse()
        .unwrap_or_else(|_| panic!("{column} = {:?} is not a number", row[column]))
}

/// Runs `statesim run ARGS --out out` inside `dir` (which may hold scenario files) and asserts
/// that it succeeded.
pub fn run_in(dir: tempfile::TempDir, args: &[&str]) -> Finished {
    let output = statesim()
        .current_dir(dir.path())
        .arg("run")
        .args(args)
        .args(["--out", "out"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        output.status.success(),
        "statesim run {args:?} failed:\n{stderr}"
    );
    Finished {
        dir,
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr,
    }
}

/// [`run_in`] a fresh temporary folder.
pub fn run_ok(args: &[&str]) -> Finished {
    run_in(tempfile::TempDir::new().unwrap(), args)
}

/// A temporary folder holding `files` (name, contents).
pub fn folder_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::TempDir::new().unwrap();
    for (name, contents) in files {
        std::fs::write(dir.path().join(name), contents).unwrap();
    }
    dir
}

/// A shortened quickstart (the crash moved inside the shorter run) for tests that need a run.
pub const SHORT_QUICKSTART: &[&str] = &[
    "--quiet",
    "--set",
    "duration=40s",
    "--set",
    "warmup=5s",
    "--set",
    "fault.0.at=20s",
];
