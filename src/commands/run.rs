//! `statesim run`: a scenario (or one `--shard` of it), the table on stdout, CSV files in `--out`.

use super::{
    CliError, check_output_dir, choose_warmups, describe_stats, json_text, overrides, prepare,
    print, results_dir, run_points_of, write_report, write_results,
};
use crate::cli::{Format, RunArgs};
use crate::model::{Limits, LoggedRequest, simulate_with_request_log};
use crate::output;
use crate::report::{json, render_table};
use crate::run::{Shard, run_shard};
use crate::scenario::Scenario;
use crate::scenario::{self, QUICKSTART, ScenarioError};
use crate::shard::{self as shard_file, Invocation, ShardFile};
use std::io::Write;
use std::path::Path;
use std::path::PathBuf;

pub fn run_command(args: RunArgs) -> Result<(), CliError> {
    if let Some(flag) = &args.shard {
        return run_shard_command(&args, parse_shard(flag)?);
    }
    let (mut points, options) = prepare(&args, None)?;
    let dir = results_dir(args.out.as_deref(), &points[0].scenario);
    check_output_dir(&dir)?;
    if let Some(file) = &args.request_log {
        output::check_file(file).map_err(|source| CliError::Output {
            path: file.clone(),
            source,
        })?;
    }
    choose_warmups(&mut points, &options, args.quiet)?;
    let report = run_points_of(&points, &args, &options)?;
    // Stdout first: if it fails, nothing has been written.
    match args.format {
        Format::Table => print(&render_table(&report))?,
        Format::Json => print(&json_text(json::document(&report))?)?,
    }
    write_results(&report, &dir, !args.quiet)?;
    if args.report {
        write_report(&dir, !args.quiet)?;
    }
    if let Some(file) = &args.request_log {
        write_request_log(&points[0].scenario, file).map_err(|source| CliError::Output {
            path: file.clone(),
            source,
        })?;
        if !args.quiet {
            eprintln!("wrote {}", file.display());
        }
    }
    Ok(())
}

/// Runs the first topology's first replication again with its requests streamed to `file`
/// (through a file beside it, renamed when complete). The run is the one the results hold: the
/// same seed gives the same requests.
fn write_request_log(scenario: &Scenario, file: &Path) -> std::io::Result<()> {
    let parent = scenario::folder_of(file);
    let partial = parent.join(format!(".request-log.partial-{}", std::process::id()));
    let written = (|| {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&partial)?);
        writeln!(out, "timestamp,session,service_ms")?;
        let mut failure = None;
        let mut log = |request: LoggedRequest| {
            if failure.is_none()
                && let Err(error) = writeln!(
                    out,
                    "{:.9},{}.{},{:.6}",
                    request.at,
                    request.session,
                    request.life,
                    request.service * 1e3
                )
            {
                failure = Some(error);
            }
        };
        let limits = Limits::unlimited();
        // The budget was checked for the whole run: this one run of it cannot exceed it.
        let _ = simulate_with_request_log(scenario, &scenario.topologies[0], 0, &limits, &mut log);
        if let Some(error) = failure {
            return Err(error);
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()
    })();
    match written.and_then(|()| std::fs::rename(&partial, file)) {
        Ok(()) => Ok(()),
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            Err(error)
        }
    }
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
            let base_dir = scenario::folder_of(path);
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
        allowed_dirs: args
            .scenario_args
            .allow_path
            .iter()
            .map(|dir| dir.canonicalize().unwrap_or_else(|_| dir.clone()))
            .collect(),
        seed: args.seed,
        replications: args.replications,
    })
}

fn run_shard_command(args: &RunArgs, shard: Shard) -> Result<(), CliError> {
    if !args.precision.is_empty() {
        return Err(CliError::Conflict("--shard", "--precision"));
    }
    if args.request_log.is_some() {
        return Err(CliError::Conflict("--shard", "--request-log"));
    }
    let (mut points, options) = prepare(args, Some(shard))?;
    let invocation = invocation(args)?;
    let dir = results_dir(args.out.as_deref(), &points[0].scenario);
    check_output_dir(&dir)?;
    choose_warmups(&mut points, &options, args.quiet)?;
    let results = run_shard(&points, &options)?;
    if args.stats {
        eprintln!("{}", describe_stats(&results.stats));
    }
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
