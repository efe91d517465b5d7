//! `statesim run`: a scenario (or one `--shard` of it), the table on stdout, CSV files in `--out`.

use super::{
    CliError, check_output_dir, choose_warmups, describe_stats, overrides, prepare, print,
    results_dir, run_points_of, write_results,
};
use crate::cli::RunArgs;
use crate::report::render_table;
use crate::run::{Shard, run_shard};
use crate::scenario::{self, QUICKSTART, ScenarioError};
use crate::shard::{self as shard_file, Invocation, ShardFile};
use std::path::PathBuf;

pub fn run_command(args: RunArgs) -> Result<(), CliError> {
    if let Some(flag) = &args.shard {
        return run_shard_command(&args, parse_shard(flag)?);
    }
    let (mut points, options) = prepare(&args, None)?;
    let dir = results_dir(args.out.as_deref(), &points[0].scenario);
    check_output_dir(&dir)?;
    choose_warmups(&mut points, &options, args.quiet)?;
    let report = run_points_of(&points, &args, &options)?;
    // The table first: if stdout fails, nothing has been written.
    print(&render_table(&report))?;
    write_results(&report, &dir, !args.quiet)
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
