//! Command-line types (clap derive). Parsing only; `main.rs` validates and acts.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "statesim",
    version,
    about = "Simulate stateful vs stateless session architectures under the same workload",
    long_about = "statesim runs every topology of a scenario (sticky sessions with state in server \
memory, an external session store, signed tokens, ...) against the same simulated client workload \
and reports latency percentiles, throughput, sessions lost, memory, traffic and cost, then a \
comparison by characteristic (state management, fault tolerance, scalability, resource \
utilisation, data redundancy, load balancing, latency, cost) with the best of each starred.\n\n\
Exit codes: 0 success, 1 a check failed, 2 bad input or usage (a scenario beyond --max-events \
or --max-memory included), 3 stopped by --time-limit."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario (the built-in quickstart when no file is given) and write CSV results.
    Run(RunArgs),
    /// Run a scenario and check its results: the file's [[expect]] assertions and/or a baseline
    /// results folder. Exit 0 when everything holds, 1 when a check fails, 2 on bad input.
    Check(CheckArgs),
    /// Combine the shard files of a `run --shard` into the files one whole run would have written.
    Merge(MergeArgs),
    /// Check a scenario file for errors without running it.
    Validate(ValidateArgs),
    /// Print a fully commented scenario that documents every key.
    Example,
    /// Write report.html into a results folder: the verdict table and SVG charts (latency
    /// distribution, timelines around faults, sweep curves, sessions lost by cause, load per
    /// server), self-contained, from the folder's CSV files.
    Report(ReportArgs),
    /// Print a shell completion script: `statesim completions bash > ~/.local/share/bash-completion/completions/statesim`.
    Completions(CompletionsArgs),
    /// Print the man page (roff): `statesim man > ~/.local/share/man/man1/statesim.1`.
    Man,
    /// Fit a [workload] section to a request log: a CSV with one row per request, in time order,
    /// with a timestamp and a session id (and optionally the service time). Prints the session
    /// rate per bucket as a schedule, requests per session, think time and service time, each
    /// with a Kolmogorov-Smirnov distance saying how well it fits.
    Fit(FitArgs),
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A results folder written by `statesim run` (or `check`, or `merge`).
    pub dir: PathBuf,

    /// No informational messages on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct FitArgs {
    /// The log (CSV with a header row).
    pub log: PathBuf,

    /// The column of each request's time.
    #[arg(long, value_name = "COLUMN", default_value = "timestamp")]
    pub timestamp: String,

    /// The timestamp's unit: s or ms.
    #[arg(long, value_name = "UNIT", default_value = "s")]
    pub timestamp_unit: String,

    /// The column of each request's session id (a session cookie, a user id).
    #[arg(long, value_name = "COLUMN", default_value = "session")]
    pub session: String,

    /// The column of each request's service time, if the log has one (nginx's $request_time).
    #[arg(long, value_name = "COLUMN")]
    pub service_time: Option<String>,

    /// The service time's unit: s or ms.
    #[arg(long, value_name = "UNIT", default_value = "s")]
    pub service_time_unit: String,

    /// The width of a step of the fitted schedule.
    #[arg(long, value_name = "DURATION", default_value = "1m")]
    pub bucket: String,

    /// A session's next request later than this after its last starts a new session (the
    /// server's idle timeout).
    #[arg(long, value_name = "DURATION", default_value = "30m")]
    pub session_gap: String,

    /// Write each quantity's sample into DIR (think_time.csv, service_time.csv,
    /// requests_per_session.csv) and print empirical distributions that resample them, for
    /// quantities of at least 1,000 values (fewer make a sparse tail: the lognormal is printed).
    #[arg(long, value_name = "DIR")]
    pub samples: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ScenarioArgs {
    /// Override any scenario key: `servers.count=16`, `workload.service_time=5ms`,
    /// `topology.stateful.session_bytes=4096`. The value is read as TOML where it parses (number,
    /// boolean, inline table) and as a string otherwise. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,

    /// Let the scenario read files (empirical distributions) from DIR too. Without it, a scenario
    /// reads only regular files inside its own folder: a scenario from a pull request cannot
    /// read the CI's secrets. Repeatable.
    #[arg(long, value_name = "DIR")]
    pub allow_path: Vec<PathBuf>,
}

/// What `run` and `check` share: which scenario, with which changes, run how.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario file (TOML). Without it, runs the built-in quickstart.
    pub scenario: Option<PathBuf>,

    #[command(flatten)]
    pub scenario_args: ScenarioArgs,

    /// Sweep a key over values, like --set for each: `servers.count=2,4,8`, a range
    /// `workload.sessions_per_second=100..400:50`, or a geometric one `servers.count=2..64:*2`.
    /// Repeatable: the points are the cartesian product (with the file's [sweep]). Each point's
    /// values become `param_<key>` columns.
    #[arg(long, value_name = "KEY=VALUES")]
    pub sweep: Vec<String>,

    /// Seed for every random stream (overrides the file's `seed`).
    #[arg(long)]
    pub seed: Option<u64>,

    /// Width of a timeseries.csv row, e.g. `5s` or `100ms` (overrides the file's `bucket`;
    /// default 1s). Same as `--set bucket=DURATION`.
    #[arg(long, value_name = "DURATION")]
    pub bucket: Option<String>,

    /// Independent replications per topology (overrides the file's `replications`).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub replications: Option<u32>,

    /// Keep adding replications until the 95% interval of METRIC is within REL of its mean for
    /// every topology, e.g. `latency_p99_ms=0.05`. Repeatable. Starts from --replications (at
    /// least 5) and stops at --max-replications.
    #[arg(long, value_name = "METRIC=REL")]
    pub precision: Vec<String>,

    /// Run only jobs INDEX, INDEX+COUNT, INDEX+2·COUNT, ... of the run's jobs (sweep points ×
    /// topologies × replications), e.g. `--shard 0/4` .. `--shard 3/4` on four machines, and
    /// write `shard-INDEX-of-COUNT.shard` into --out; `statesim merge` puts them together.
    #[arg(long, value_name = "INDEX/COUNT")]
    pub shard: Option<String>,

    /// The cap for --precision.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(2..=100_000))]
    pub max_replications: u32,

    /// Directory for the result files (summary.csv, latency.csv, timeseries.csv, servers.csv,
    /// comparison.csv, ...) [default: results/<scenario name>]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Also write the requests the clients sent in the first topology's first replication (of
    /// the first sweep point) to FILE, one CSV row each: `timestamp,session,service_ms`, the
    /// format `workload.trace` replays and `statesim fit` reads.
    #[arg(long, value_name = "FILE")]
    pub request_log: Option<PathBuf>,

    /// Simulations to run in parallel [default: number of cores]. Results do not depend on it.
    #[arg(long, short = 'j', value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub jobs: Option<u16>,

    #[command(flatten)]
    pub budget: BudgetArgs,

    /// End a run as soon as a server's or the store's queue is found growing without bound
    /// (every worker busy for at least 30 s of simulated time while the queue grew by more than
    /// the workers and more than chance explains, 3√(2 × arrivals)): exit code 2, nothing
    /// written. Without it the run goes on and a warning names the station.
    #[arg(long)]
    pub stop_on_saturation: bool,

    /// Stop after this much wall-clock time, e.g. `10m`: exit code 3, nothing written.
    #[arg(long, value_name = "DURATION", value_parser = parse_wall_time)]
    pub time_limit: Option<std::time::Duration>,

    /// What stdout gets: the table, or one JSON document (provenance, summary.csv's rows,
    /// comparison.csv's rows, and with check the checks) for scripts and dashboards.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Also write report.html (and the SVG charts it embeds) into the results folder, as
    /// `statesim report` does.
    #[arg(long)]
    pub report: bool,

    /// No progress bar and no informational messages on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Print how much was simulated and how fast on stderr: events, requests, events/s,
    /// requests/s, threads and the process's peak memory. Shown even with --quiet.
    #[arg(long)]
    pub stats: bool,
}

/// What `run` and `check` print on stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table per characteristic, best starred (and check's verdicts).
    Table,
    /// One JSON document, the same as summary.json (with check: plus `checks` and `passed`).
    Json,
}

/// How much work a scenario may ask for: a scenario is untrusted input.
#[derive(Debug, Args)]
pub struct BudgetArgs {
    /// Refuse a run estimated to take more simulated events than this (over every sweep point,
    /// topology and replication), and stop one that passes it, e.g. `2e10` [default: 5e9].
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub max_events: Option<u64>,

    /// Refuse a run estimated to need more memory than this, and stop a run whose queues
    /// outgrow it, e.g. `8GiB` [default: 2GiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_memory: Option<u64>,
}

fn parse_count(text: &str) -> Result<u64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("expected a number such as 2e10, got \"{text}\""))?;
    if (1.0..1.8e19).contains(&value) {
        Ok(value as u64)
    } else {
        Err(format!(
            "expected a positive number below 1.8e19, got {text}"
        ))
    }
}

fn parse_size(text: &str) -> Result<u64, String> {
    let bytes = crate::scenario::units::parse_bytes(text)?;
    if (1.0..1.8e19).contains(&bytes) {
        Ok(bytes as u64)
    } else {
        Err(format!("expected a size such as 8GiB, got {text}"))
    }
}

fn parse_wall_time(text: &str) -> Result<std::time::Duration, String> {
    let time = crate::scenario::units::parse_duration(text)?;
    if time.nanos() == 0 {
        return Err("the time limit must be longer than zero".into());
    }
    Ok(std::time::Duration::from_nanos(time.nanos()))
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub run: RunArgs,

    /// A results folder of an earlier run (its summary.csv) to compare every figure with.
    #[arg(long, value_name = "DIR")]
    pub baseline: Option<PathBuf>,

    /// Relative tolerance of one figure against the baseline, e.g. `latency_p99_ms=0.05`;
    /// `*=0.05` sets the default (0.02). Repeatable.
    #[arg(long, value_name = "METRIC=REL", requires = "baseline")]
    pub tolerance: Vec<String>,

    /// Write this run's results into the --baseline folder instead of comparing with it (the
    /// [[expect]] assertions are still checked).
    #[arg(long, requires = "baseline")]
    pub update_baseline: bool,

    /// Also write the verdicts as JUnit XML (for CI test reporters).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Also write the verdicts as a Markdown table (for a CI job summary).
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Folders holding the shard files (or the shard files themselves).
    #[arg(required = true)]
    pub shards: Vec<PathBuf>,

    /// Directory for the merged results [default: results/<scenario name>]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// No informational messages on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    #[command(flatten)]
    pub budget: BudgetArgs,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Scenario file (TOML) to check.
    pub scenario: PathBuf,

    #[command(flatten)]
    pub scenario_args: ScenarioArgs,

    #[command(flatten)]
    pub budget: BudgetArgs,
}
