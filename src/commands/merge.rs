//! `statesim merge`: the shard files of a `run --shard` put back together into one run's results.

use super::{
    CliError, budget_of, check_output_dir, choose_warmups, print, results_dir, write_results,
};
use crate::cli::MergeArgs;
use crate::model::Limits;
use crate::report::render_table;
use crate::run::{RunOptions, merge_shards};
use crate::scenario::{self, LoadOptions};
use crate::shard::{self as shard_file, ShardFile, ShardFileError};
use std::path::PathBuf;

pub fn merge_command(args: MergeArgs) -> Result<(), CliError> {
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
    // Compared without building 0..count: a shard file may claim any count.
    let complete =
        indices.len() == count && indices.iter().enumerate().all(|(i, &index)| i == index);
    if !complete {
        return Err(CliError::Merge(format!(
            "shards {indices:?} of {count}: each of 0..{count} is needed exactly once"
        )));
    }
    let options = LoadOptions {
        overrides: invocation.set.clone(),
        sweeps: invocation.sweep.clone(),
        expand_file_sweep: true,
        allowed_dirs: invocation.allowed_dirs.clone(),
    };
    let mut points = scenario::load_points_str(
        &invocation.text,
        &invocation.origin,
        &invocation.base_dir,
        &options,
    )?;
    for point in &mut points {
        if let Some(seed) = invocation.seed {
            point.scenario.seed = seed;
        }
        if let Some(replications) = invocation.replications {
            point.scenario.replications = replications;
        }
    }
    let dir = results_dir(args.out.as_deref(), &points[0].scenario);
    check_output_dir(&dir)?;
    // The shards chose the same warm-up: the pilots are seeded runs. They run within the
    // budget (a shard file is input like any other).
    let budget = budget_of(&args.budget);
    let options = RunOptions {
        limits: std::sync::Arc::new(Limits::new(budget.max_memory, None, budget.max_events)),
        ..RunOptions::default()
    };
    choose_warmups(&mut points, &options, true)?;
    let results = shards.into_iter().map(|shard| shard.results).collect();
    let report = merge_shards(&points, results).map_err(|e| CliError::Merge(e.to_string()))?;
    print(&render_table(&report))?;
    write_results(&report, &dir, !args.quiet)
}
