use clap::Parser;
use statesim::check::{self, CheckError, Tolerances, Verdict};
use statesim::cli::{CheckArgs, Cli, Command, MergeArgs, RunArgs, ValidateArgs};
use statesim::metrics::metric_index;
use statesim::report::{self, default_exporters, render_table, safe_file_name};
use statesim::run::{
    PrecisionTarget, RunError, RunOptions, RunStats, Shard, merge_shards, run_points, run_shard,
    run_to_precision,
};
use statesim::scenario::{self, QUICKSTART, Scenario, ScenarioError, SweepPoint};
use statesim::shard::{self as shard_file, Invocation, ShardFile, ShardFileError};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, thiserror::Error)]
enum CliError {
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
}

/// Exit code 1: the run worked and a check failed (2 is bad input, from any error).
const CHECK_FAILED: u8 = 1;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run(args) => run_command(args).map(|()| ExitCode::SUCCESS),
        Command::Check(args) => check_command(args),
        Command::Merge(args) => merge_command(args).map(|()| ExitCode::SUCCESS),
        Command::Validate(args) => validate_command(args).map(|()| ExitCode::SUCCESS),
        Command::Example => {
            print!("{}", scenario::EXAMPLE);
            Ok(ExitCode::SUCCESS)
        }
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            // One line per problem (a scenario may have several), each marked as an error.
            for line in error.to_string().lines() {
                eprintln!("error: {line}");
            }
            ExitCode::from(2)
        }
    }
}

/// The `--set` overrides, with `--bucket` as the last of them.
fn overrides(args: &RunArgs) -> Vec<String> {
    let mut overrides = args.scenario_args.set.clone();
    if let Some(bucket) = &args.bucket {
        overrides.push(format!("bucket={bucket}"));
    }
    overrides
}

/// The scenario (the built-in quickstart without a path) with the command line's changes, one
/// scenario per sweep point.
fn load_points(args: &RunArgs) -> Result<Vec<SweepPoint>, CliError> {
    let overrides = &overrides(args);
    let mut points = match args.scenario.as_deref() {
        Some(path) => scenario::load_points_file(path, overrides, &args.sweep, true)?,
        None => scenario::load_points_str(
            QUICKSTART,
            "quickstart.toml (built in)",
            Path::new("."),
            overrides,
            &args.sweep,
            true,
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
    choose_warmups(&mut points, args.jobs.map(|n| n.get()), args.quiet)?;
    Ok(points)
}

/// Resolves `warmup = "auto"` and says what it chose.
fn choose_warmups(
    points: &mut [SweepPoint],
    jobs: Option<usize>,
    quiet: bool,
) -> Result<(), CliError> {
    let options = RunOptions {
        jobs,
        progress: false,
        shard: None,
    };
    let chosen = statesim::run::resolve_auto_warmup(points, &options)?;
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
fn run_points_of(points: &[SweepPoint], args: &RunArgs) -> Result<report::Report, CliError> {
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
        eprintln!(
            "running \"{}\": {sweep}{} topologies x {} replications, seed {}",
            first.name,
            first.topologies.len(),
            first.replications,
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
    let options = RunOptions {
        jobs: args.jobs.map(|n| n.get()),
        progress: chatty && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none(),
        shard: None,
    };
    let targets = precision_targets(&args.precision)?;
    let (report, stats) = if targets.is_empty() {
        run_points(points, &options)?
    } else {
        let (report, stats, outcome) =
            run_to_precision(points, &targets, args.max_replications, &options)?;
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
    Ok(report)
}

fn parse_shard(flag: &str) -> Result<Shard, CliError> {
    let bad = || CliError::ShardFlag(flag.to_string());
    let (index, count) = flag.split_once('/').ok_or_else(bad)?;
    let index: usize = index.trim().parse().map_err(|_| bad())?;
    let count: usize = count.trim().parse().map_err(|_| bad())?;
    if count == 0 || index >= count {
        return Err(bad());
    }
    Ok(Shard { index, count })
}

/// What `merge` needs to load the same scenario again, wherever it runs.
fn invocation(args: &RunArgs) -> Result<Invocation, CliError> {
    let (origin, base_dir, text) = match &args.scenario {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
                path: path.clone(),
                source,
            })?;
            let base_dir = path.parent().unwrap_or(Path::new("."));
            let base_dir = base_dir.canonicalize().unwrap_or(base_dir.to_path_buf());
            (path.display().to_string(), base_dir, text)
        }
        None => (
            "quickstart.toml (built in)".to_string(),
            PathBuf::from("."),
            QUICKSTART.to_string(),
        ),
    };
    Ok(Invocation {
        origin,
        base_dir,
        text,
        set: overrides(args),
        sweep: args.sweep.clone(),
        seed: args.seed,
        replications: args.replications,
    })
}

fn run_shard_command(args: &RunArgs, shard: Shard) -> Result<(), CliError> {
    if !args.precision.is_empty() {
        return Err(CliError::Conflict("--shard", "--precision"));
    }
    let points = load_points(args)?;
    let invocation = invocation(args)?;
    let options = RunOptions {
        jobs: args.jobs.map(|n| n.get()),
        progress: !args.quiet
            && std::io::stderr().is_terminal()
            && std::env::var_os("CI").is_none(),
        shard: Some(shard),
    };
    let results = run_shard(&points, &options)?;
    if args.stats {
        eprintln!("{}", describe_stats(&results.stats));
    }
    let dir = results_dir(args.out.as_deref(), &points[0].scenario);
    let path = dir.join(shard_file::file_name(shard));
    let runs = results.runs.len();
    let file = ShardFile {
        version: env!("CARGO_PKG_VERSION").to_string(),
        shard,
        invocation,
        results,
    };
    std::fs::create_dir_all(&dir)
        .and_then(|()| shard_file::write(&path, &file))
        .map_err(|source| CliError::Output {
            path: path.clone(),
            source,
        })?;
    if !args.quiet {
        eprintln!(
            "wrote {} ({runs} runs of shard {} of {})",
            path.display(),
            shard.index,
            shard.count
        );
    }
    Ok(())
}

fn merge_command(args: MergeArgs) -> Result<(), CliError> {
    let mut files = Vec::new();
    for path in &args.shards {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|source| ShardFileError::Read {
                path: path.clone(),
                source,
            })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "shard"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    let shards = files
        .iter()
        .map(|path| shard_file::read(path))
        .collect::<Result<Vec<ShardFile>, _>>()?;
    let Some(first) = shards.first() else {
        return Err(CliError::Merge("no shard files (*.shard) found".into()));
    };
    let (invocation, count) = (first.invocation.clone(), first.shard.count);
    let mut indices = Vec::new();
    for (path, shard) in files.iter().zip(&shards) {
        if shard.version != first.version || shard.invocation != invocation {
            return Err(CliError::Merge(format!(
                "{} is from another run (statesim version, scenario or flags differ from {})",
                path.display(),
                files[0].display()
            )));
        }
        if shard.shard.count != count {
            return Err(CliError::Merge(format!(
                "{} is a shard of {}, {} of {count}",
                path.display(),
                shard.shard.count,
                files[0].display()
            )));
        }
        indices.push(shard.shard.index);
    }
    indices.sort_unstable();
    if indices != (0..count).collect::<Vec<_>>() {
        return Err(CliError::Merge(format!(
            "shards {indices:?} of {count}: each of 0..{count} is needed exactly once"
        )));
    }
    let mut points = scenario::load_points_str(
        &invocation.text,
        &invocation.origin,
        &invocation.base_dir,
        &invocation.set,
        &invocation.sweep,
        true,
    )?;
    for point in &mut points {
        if let Some(seed) = invocation.seed {
            point.scenario.seed = seed;
        }
        if let Some(replications) = invocation.replications {
            point.scenario.replications = replications;
        }
    }
    // The shards chose the same warm-up: the pilots are seeded runs.
    choose_warmups(&mut points, None, true)?;
    let results = shards.into_iter().map(|shard| shard.results).collect();
    let report = merge_shards(&points, results).map_err(|e| CliError::Merge(e.to_string()))?;
    print!("{}", render_table(&report));
    let dir = results_dir(args.out.as_deref(), &points[0].scenario);
    write_results(&report, &dir, !args.quiet)
}

fn precision_targets(flags: &[String]) -> Result<Vec<PrecisionTarget>, CliError> {
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

fn write_results(report: &report::Report, dir: &Path, chatty: bool) -> Result<(), CliError> {
    let written = report::write_files(report, dir, &default_exporters()).map_err(|source| {
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

/// `--out`, or `results/<scenario name>/`.
fn results_dir(out: Option<&Path>, scenario: &Scenario) -> PathBuf {
    out.map_or_else(
        || Path::new("results").join(safe_file_name(&scenario.name)),
        Path::to_path_buf,
    )
}

fn run_command(args: RunArgs) -> Result<(), CliError> {
    if let Some(flag) = &args.shard {
        return run_shard_command(&args, parse_shard(flag)?);
    }
    let points = load_points(&args)?;
    let report = run_points_of(&points, &args)?;
    print!("{}", render_table(&report));
    write_results(
        &report,
        &results_dir(args.out.as_deref(), &points[0].scenario),
        !args.quiet,
    )
}

fn check_command(args: CheckArgs) -> Result<ExitCode, CliError> {
    // Bad flags are bad input: found before the run, not after it.
    if args.run.shard.is_some() {
        return Err(CliError::Conflict(
            "--shard",
            "check (merge the shards, then check)",
        ));
    }
    let tolerances = Tolerances::parse(&args.tolerance)?;
    let baseline = match &args.baseline {
        Some(dir) if !args.update_baseline => Some(check::read_baseline(dir)?),
        _ => None,
    };
    let points = load_points(&args.run)?;
    let scenario = &points[0].scenario;
    if scenario.expectations.is_empty() && args.baseline.is_none() {
        return Err(CliError::NothingToCheck);
    }
    let report = run_points_of(&points, &args.run)?;
    let chatty = !args.run.quiet;
    let mut verdicts = check::check_expectations(scenario, &report);
    if let Some(baseline) = &baseline {
        verdicts.extend(check::check_baseline(&report, baseline, &tolerances));
    }
    write_results(
        &report,
        &results_dir(args.run.out.as_deref(), scenario),
        chatty,
    )?;
    if let (true, Some(dir)) = (args.update_baseline, &args.baseline) {
        write_results(&report, dir, chatty)?;
        eprintln!("baseline updated: {}", dir.display());
    }
    print!("{}", check::render_text(&scenario.name, &verdicts));
    write_verdicts(&args, &scenario.name, &verdicts)?;
    Ok(if verdicts.iter().all(|verdict| verdict.passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(CHECK_FAILED)
    })
}

/// The `--junit` and `--markdown` files.
fn write_verdicts(args: &CheckArgs, scenario: &str, verdicts: &[Verdict]) -> Result<(), CliError> {
    let files = [
        (&args.junit, check::render_junit(scenario, verdicts)),
        (&args.markdown, check::render_markdown(scenario, verdicts)),
    ];
    for (path, text) in files {
        if let Some(path) = path {
            std::fs::write(path, text).map_err(|source| CliError::Output {
                path: path.clone(),
                source,
            })?;
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

fn validate_command(args: ValidateArgs) -> Result<(), CliError> {
    // Every sweep point is loaded and validated, as `run` would.
    let points = scenario::load_points_file(&args.scenario, &args.scenario_args.set, &[], true)?;
    let scenario = &points[0].scenario;
    let mut warnings: Vec<&String> = points.iter().flat_map(|p| &p.scenario.warnings).collect();
    warnings.dedup();
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    let sweep = if points.len() > 1 {
        format!(", {} sweep points", points.len())
    } else {
        String::new()
    };
    let count =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let autoscale = if scenario.autoscale.is_some() {
        ", an autoscaler"
    } else {
        ""
    };
    println!(
        "{}: ok (\"{}\", {}, {}{autoscale}{sweep})",
        args.scenario.display(),
        scenario.name,
        count(scenario.topologies.len(), "topology", "topologies"),
        count(scenario.faults.len(), "fault", "faults"),
    );
    Ok(())
}
