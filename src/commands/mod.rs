//! One module per command (`run`, `check`, `merge`, `validate`); what they share lives here:
//! loading the scenario with the command line's changes, running it, writing its results, and the
//! error type `main` turns into a message and an exit code.

mod check;
mod fit;
mod merge;
mod report_files;
mod run;
mod validate;

pub use check::check_command;
pub use fit::fit_command;
pub use merge::merge_command;
pub(crate) use report_files::write_report;
pub use report_files::{completions_command, man_command, report_command};
pub use run::run_command;
pub use validate::validate_command;

use crate::budget::{self, Budget, BudgetError};
use crate::check::CheckError;
use crate::cli::{BudgetArgs, RunArgs};
use crate::metrics::metric_index;
use crate::model::Limits;
use crate::output;
use crate::report::{self, default_exporters, safe_file_name};
use crate::run::{
    PrecisionTarget, RunError, RunOptions, RunStats, Shard, run_points, run_to_precision,
};
use crate::scenario::{self, LoadOptions, QUICKSTART, Scenario, ScenarioError, SweepPoint};
use crate::shard::ShardFileError;
use crate::text::count;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Scenario(#[from] ScenarioError),
    #[error("{0}")]
    Run(#[from] RunError),
    #[error("{0}")]
    Check(#[from] CheckError),
    #[error("cannot write results to {}: {source}", path.display())]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "nothing to check: the scenario has no [[expect]] assertions and no --baseline was given"
    )]
    NothingToCheck,
    #[error(
        "--precision {0}: expected METRIC=REL with a summary.csv figure and REL > 0, e.g. latency_p99_ms=0.05"
    )]
    Precision(String),
    #[error("--shard {0}: expected INDEX/COUNT with INDEX < COUNT, e.g. --shard 0/4")]
    ShardFlag(String),
    #[error("{0} cannot be combined with {1}")]
    Conflict(&'static str, &'static str),
    #[error("{0}")]
    ShardFile(#[from] ShardFileError),
    #[error("{0}")]
    Merge(String),
    #[error("{0}")]
    Budget(#[from] BudgetError),
    #[error("cannot write to stdout: {0}")]
    Stdout(std::io::Error),
    #[error("{0}")]
    Fit(#[from] crate::fit::FitError),
    #[error("{0}")]
    Report(#[from] crate::report::html::ReportError),
    #[error("{flag} {value}: {expected}")]
    Flag {
        flag: &'static str,
        value: String,
        expected: &'static str,
    },
}

impl CliError {
    /// 3 when `--time-limit` stopped the run, 2 for every other error (bad input or usage).
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Run(error) if error.is_time_limit() => TIME_LIMIT,
            _ => BAD_INPUT,
        }
    }
}

/// Exit code 1: the run worked and a check failed.
pub const CHECK_FAILED: u8 = 1;
/// Exit code 2: bad input or usage, including a scenario beyond the budget.
pub const BAD_INPUT: u8 = 2;
/// Exit code 3: `--time-limit` stopped the run; nothing was written.
pub const TIME_LIMIT: u8 = 3;

/// The `--set` overrides, with `--bucket` as the last of them.
pub(crate) fn overrides(args: &RunArgs) -> Vec<String> {
    let mut overrides = args.scenario_args.set.clone();
    if let Some(bucket) = &args.bucket {
        overrides.push(format!("bucket={bucket}"));
    }
    overrides
}

/// The command line's changes to the scenario and the folders it may read from.
pub(crate) fn load_options(args: &RunArgs) -> LoadOptions {
    LoadOptions {
        overrides: overrides(args),
        sweeps: args.sweep.clone(),
        expand_file_sweep: true,
        allowed_dirs: args.scenario_args.allow_path.clone(),
    }
}

/// The scenario (the built-in quickstart without a path) with the command line's changes, one
/// scenario per sweep point.
pub(crate) fn load_points(args: &RunArgs) -> Result<Vec<SweepPoint>, CliError> {
    let options = load_options(args);
    let mut points = match args.scenario.as_deref() {
        Some(path) => scenario::load_points_file(path, &options)?,
        None => scenario::load_points_str(
            QUICKSTART,
            "quickstart.toml (built in)",
            Path::new("."),
            &options,
        )?,
    };
    for point in &mut points {
        if let Some(seed) = args.seed {
            point.scenario.seed = seed;
        }
        if let Some(replications) = args.replications {
            point.scenario.replications = replications;
        }
    }
    Ok(points)
}

/// The scenario's points, loaded and within the budget (refused up front otherwise), and the
/// options every run of the command shares. `warmup = "auto"` is resolved by [`choose_warmups`]
/// once the outputs are known to be writable.
pub(crate) fn prepare(
    args: &RunArgs,
    shard: Option<Shard>,
) -> Result<(Vec<SweepPoint>, RunOptions), CliError> {
    let points = load_points(args)?;
    let jobs = args.jobs.map(usize::from);
    let threads = crate::run::threads(jobs);
    let least_replications = if args.precision.is_empty() { 1 } else { 5 };
    let mut estimate = budget::estimate(&points, least_replications, threads);
    if let Some(shard) = shard {
        let share = shard.count as f64;
        estimate.events /= share;
        estimate.kept_bytes /= share;
    }
    let budget = budget_of(&args.budget);
    let live_bytes_per_run = budget::check(&estimate, &budget, threads)?;
    let deadline = args.time_limit.map(|limit| Instant::now() + limit);
    let mut limits = Limits::new(live_bytes_per_run, deadline, budget.max_events);
    limits.stop_on_saturation = args.stop_on_saturation;
    let options = RunOptions {
        jobs,
        progress: progress_visible(args.quiet),
        shard,
        limits: Arc::new(limits),
    };
    Ok((points, options))
}

/// `--max-events` and `--max-memory`, or their defaults.
pub(crate) fn budget_of(args: &BudgetArgs) -> Budget {
    let default = Budget::default();
    Budget {
        max_events: args.max_events.unwrap_or(default.max_events),
        max_memory: args.max_memory.unwrap_or(default.max_memory),
    }
}

/// A progress bar only for a person watching: not with --quiet, not in CI, not into a file.
pub(crate) fn progress_visible(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

/// Resolves `warmup = "auto"` and says what it chose.
pub(crate) fn choose_warmups(
    points: &mut [SweepPoint],
    options: &RunOptions,
    quiet: bool,
) -> Result<(), CliError> {
    let chosen = crate::run::resolve_auto_warmup(points, options)?;
    if quiet {
        return Ok(());
    }
    for (point, cut) in points.iter().zip(chosen) {
        if let Some(cut) = cut {
            let at: Vec<String> = point
                .params
                .iter()
                .map(|(k, v)| format!(" {k}={v}"))
                .collect();
            eprintln!(
                "warm-up{}: auto chose {} (MSER-5 on the mean latency per second of a pilot run)",
                at.concat(),
                scenario::units::format_duration(cut)
            );
        }
    }
    Ok(())
}

/// Runs every point; messages on stderr.
pub(crate) fn run_points_of(
    points: &[SweepPoint],
    args: &RunArgs,
    options: &RunOptions,
) -> Result<report::Report, CliError> {
    let chatty = !args.quiet;
    let first = &points[0].scenario;
    let mut warnings: Vec<&String> = points.iter().flat_map(|p| &p.scenario.warnings).collect();
    warnings.dedup();
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    if chatty {
        let sweep = if points.len() > 1 {
            format!("{} sweep points x ", points.len())
        } else {
            String::new()
        };
        let replications = if args.precision.is_empty() {
            count(u64::from(first.replications), "replication", "replications")
        } else {
            format!(
                "replications until --precision holds (at most {})",
                args.max_replications
            )
        };
        eprintln!(
            "running \"{}\": {sweep}{} x {replications}, seed {}",
            first.name,
            count(first.topologies.len() as u64, "topology", "topologies"),
            first.seed
        );
        for fault in &first.faults {
            eprintln!("  fault: {fault}");
        }
        if let Some(autoscale) = &first.autoscale {
            eprintln!(
                "  autoscaler: {}..{} servers, target utilisation {:.0}%, every {}",
                autoscale.min,
                autoscale.max,
                autoscale.target_utilization * 100.0,
                scenario::units::format_duration(autoscale.sync_period)
            );
        }
    }
    let targets = precision_targets(&args.precision)?;
    let (report, stats) = if targets.is_empty() {
        run_points(points, options)?
    } else {
        let (report, stats, outcome) =
            run_to_precision(points, &targets, args.max_replications, options)?;
        match outcome.unmet {
            None if chatty => eprintln!(
                "precision reached with {} replications",
                outcome.replications
            ),
            None => {}
            Some((metric, relative, wanted)) => eprintln!(
                "warning: stopped at --max-replications {}: the 95% interval of {metric} is still \
                 ±{:.1}% of its mean (wanted ±{:.1}%)",
                outcome.replications,
                100.0 * relative,
                100.0 * wanted
            ),
        }
        (report, stats)
    };
    if args.stats {
        eprintln!("{}", describe_stats(&stats));
    }
    for warning in report::verdict::saturation_warnings(&report) {
        eprintln!("warning: {warning}");
    }
    Ok(report)
}

pub(crate) fn precision_targets(flags: &[String]) -> Result<Vec<PrecisionTarget>, CliError> {
    flags
        .iter()
        .map(|flag| {
            let bad = || CliError::Precision(flag.clone());
            let (metric, relative) = flag.split_once('=').ok_or_else(bad)?;
            let metric = metric_index(metric.trim()).ok_or_else(bad)?;
            let relative: f64 = relative.trim().parse().map_err(|_| bad())?;
            if !(relative > 0.0 && relative.is_finite()) {
                return Err(bad());
            }
            Ok(PrecisionTarget { metric, relative })
        })
        .collect()
}

pub(crate) fn write_results(
    report: &report::Report,
    dir: &Path,
    chatty: bool,
) -> Result<(), CliError> {
    let written = output::write_results(report, dir, &default_exporters()).map_err(|source| {
        CliError::Output {
            path: dir.to_path_buf(),
            source,
        }
    })?;
    if chatty {
        for path in written {
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
}

/// Refuses a results folder that cannot be written, before anything is simulated.
pub(crate) fn check_output_dir(dir: &Path) -> Result<(), CliError> {
    output::check_dir(dir).map_err(|source| CliError::Output {
        path: dir.to_path_buf(),
        source,
    })
}

/// A JSON document as stdout text, one line per key.
pub(crate) fn json_text(document: std::io::Result<serde_json::Value>) -> Result<String, CliError> {
    let document = document.map_err(CliError::Stdout)?;
    let mut text =
        serde_json::to_string_pretty(&document).map_err(|e| CliError::Stdout(e.into()))?;
    text.push('\n');
    Ok(text)
}

/// Prints on stdout; a full disk is an error, a closed pipe is not.
pub(crate) fn print(text: &str) -> Result<(), CliError> {
    output::print_stdout(text).map_err(CliError::Stdout)
}

/// `--out`, or `results/<scenario name>/`.
pub(crate) fn results_dir(out: Option<&Path>, scenario: &Scenario) -> PathBuf {
    out.map_or_else(
        || Path::new("results").join(safe_file_name(&scenario.name)),
        Path::to_path_buf,
    )
}

pub(crate) fn describe_stats(stats: &RunStats) -> String {
    let seconds = stats.elapsed.as_secs_f64().max(1e-9);
    let peak = match peak_rss_bytes() {
        Some(bytes) => format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0)),
        None => "unknown on this platform".to_string(),
    };
    format!(
        "stats: {} simulations on {} threads in {:.3} s: {} events ({:.2} M/s), {} requests \
         ({:.2} M/s); peak RSS {peak}",
        stats.simulations,
        stats.threads,
        seconds,
        stats.events,
        stats.events as f64 / seconds / 1e6,
        stats.requests,
        stats.requests as f64 / seconds / 1e6,
    )
}

/// The process's peak resident memory (Linux's VmHWM), where the platform tells it.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
