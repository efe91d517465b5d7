//! `statesim check`: run, then judge the results by the file's `[[expect]]` and a `--baseline`.

use super::{CHECK_FAILED, CliError, load_points, results_dir, run_points_of, write_results};
use crate::check::{self, Tolerances, Verdict};
use crate::cli::CheckArgs;
use std::process::ExitCode;

pub fn check_command(args: CheckArgs) -> Result<ExitCode, CliError> {
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
