use clap::Parser;
use statesim::cli::{Cli, Command, RunArgs, ValidateArgs};
use statesim::report::{self, default_exporters, render_table, safe_file_name};
use statesim::run::{RunError, RunOptions, RunStats, run};
use statesim::scenario::{self, QUICKSTART, Scenario, ScenarioError};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("{0}")]
    Scenario(#[from] ScenarioError),
    #[error("{0}")]
    Run(#[from] RunError),
    #[error("cannot write results to {}: {source}", path.display())]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run(args) => run_command(args),
        Command::Validate(args) => validate_command(args),
        Command::Example => {
            print!("{}", scenario::EXAMPLE);
            Ok(())
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line per problem (a scenario may have several), each marked as an error.
            for line in error.to_string().lines() {
                eprintln!("error: {line}");
            }
            ExitCode::from(2)
        }
    }
}

fn load(path: Option<&Path>, overrides: &[String]) -> Result<Scenario, ScenarioError> {
    match path {
        Some(path) => scenario::load_file(path, overrides),
        None => scenario::load_str(
            QUICKSTART,
            "quickstart.toml (built in)",
            Path::new("."),
            overrides,
        ),
    }
}

fn run_command(args: RunArgs) -> Result<(), CliError> {
    let mut scenario = load(args.scenario.as_deref(), &args.scenario_args.set)?;
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    if let Some(replications) = args.replications {
        scenario.replications = replications;
    }
    let chatty = !args.quiet;
    for warning in &scenario.warnings {
        eprintln!("warning: {warning}");
    }
    if chatty {
        eprintln!(
            "running \"{}\": {} topologies x {} replications, seed {}",
            scenario.name,
            scenario.topologies.len(),
            scenario.replications,
            scenario.seed
        );
        for fault in &scenario.faults {
            eprintln!("  fault: {fault}");
        }
    }
    let options = RunOptions {
        jobs: args.jobs.map(|n| n.get()),
        progress: chatty && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none(),
    };
    let (report, stats) = run(&scenario, &options)?;
    if args.stats {
        eprintln!("{}", describe_stats(&stats));
    }
    warn_about_memory(&scenario, &report);
    print!("{}", render_table(&report));
    let dir = args
        .out
        .unwrap_or_else(|| Path::new("results").join(safe_file_name(&scenario.name)));
    let written = report::write_files(&report, &dir, &default_exporters()).map_err(|source| {
        CliError::Output {
            path: dir.clone(),
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

fn describe_stats(stats: &RunStats) -> String {
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

/// Session memory beyond `servers.memory_mb` would not fit; eviction is not modelled (yet), so say so.
fn warn_about_memory(scenario: &Scenario, report: &report::Report) {
    for (topology, summary) in scenario.topologies.iter().zip(&report.summaries) {
        let peak = summary.get("peak_session_memory_mb");
        if let Some(limit) = topology.servers.memory_mb.filter(|limit| peak > *limit) {
            eprintln!(
                "warning: topology \"{}\": a server held {peak:.1} MiB of sessions, more than \
                 servers.memory_mb = {limit} (the model does not evict; results assume it fits)",
                topology.name
            );
        }
    }
}

fn validate_command(args: ValidateArgs) -> Result<(), CliError> {
    let scenario = scenario::load_file(&args.scenario, &args.scenario_args.set)?;
    for warning in &scenario.warnings {
        eprintln!("warning: {warning}");
    }
    println!(
        "{}: ok (\"{}\", {} topologies, {} faults)",
        args.scenario.display(),
        scenario.name,
        scenario.topologies.len(),
        scenario.faults.len()
    );
    Ok(())
}
