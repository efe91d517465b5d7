//! `statesim check`: run, then judge the results by the file's `[[expect]]` and a `--baseline`.

use super::{
    CHECK_FAILED, CliError, check_output_dir, choose_warmups, json_text, prepare, print,
    results_dir, run_points_of, write_report, write_results,
};
use crate::check::{self, Tolerances, Verdict};
use crate::cli::{CheckArgs, Format};
use crate::output;
use crate::report::{Report, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub fn check_command(args: CheckArgs) -> Result<ExitCode, CliError> {
    // Bad flags are bad input: found before the run, not after it.
    if args.run.request_log.is_some() {
        return Err(CliError::Conflict("--request-log", "check (use run)"));
    }
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
    let (mut points, options) = prepare(&args.run, None)?;
    if points[0].scenario.expectations.is_empty() && args.baseline.is_none() {
        return Err(CliError::NothingToCheck);
    }
    let chatty = !args.run.quiet;
    let dir = output_dir(
        &args,
        results_dir(args.run.out.as_deref(), &points[0].scenario),
    );
    check_outputs(&args, &dir)?;
    choose_warmups(&mut points, &options, args.run.quiet)?;
    let scenario = &points[0].scenario;
    let report = run_points_of(&points, &args.run, &options)?;
    let mut verdicts = check::check_expectations(scenario, &report);
    if let Some(baseline) = &baseline {
        verdicts.extend(check::check_baseline(&report, baseline, &tolerances));
    }
    match args.run.format {
        Format::Table => print(&check::render_text(&scenario.name, &verdicts))?,
        Format::Json => print(&json_text(checked_document(&report, &verdicts))?)?,
    }
    write_results(&report, &dir, chatty)?;
    if args.run.report {
        write_report(&dir, chatty)?;
    }
    if let (true, Some(baseline)) = (args.update_baseline, &args.baseline) {
        write_results(&report, baseline, chatty)?;
        eprintln!("baseline updated: {}", baseline.display());
    }
    write_verdicts(&args, &scenario.name, &verdicts)?;
    Ok(if verdicts.iter().all(|verdict| verdict.passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(CHECK_FAILED)
    })
}

/// The results' JSON document with the checks: `checks` (one object per verdict) and `passed`.
fn checked_document(report: &Report, verdicts: &[Verdict]) -> std::io::Result<serde_json::Value> {
    let mut document = json::document(report)?;
    document["checks"] = serde_json::to_value(verdicts)?;
    document["passed"] = verdicts.iter().all(|verdict| verdict.passed).into();
    Ok(document)
}

/// Where this run's results go: `--out` (or the default folder), except that `check` never
/// writes into its `--baseline` unless told to (`--update-baseline`): a gate that overwrote its
/// baseline with the run it judges would pass forever after. Then `<folder>-check` beside it.
fn output_dir(args: &CheckArgs, dir: PathBuf) -> PathBuf {
    match &args.baseline {
        Some(baseline) if !args.update_baseline && output::same_place(&dir, baseline) => {
            let name = dir
                .file_name()
                .map_or("results".into(), |n| n.to_string_lossy().into_owned());
            let elsewhere = dir.with_file_name(format!("{name}-check"));
            eprintln!(
                "note: {} is the --baseline folder, which check writes only with \
                 --update-baseline; this run's results go to {}",
                dir.display(),
                elsewhere.display()
            );
            elsewhere
        }
        _ => dir,
    }
}

/// Every file `check` will write must be writable before it runs.
fn check_outputs(args: &CheckArgs, dir: &Path) -> Result<(), CliError> {
    check_output_dir(dir)?;
    if let (true, Some(baseline)) = (args.update_baseline, &args.baseline) {
        check_output_dir(baseline)?;
    }
    for file in [&args.junit, &args.markdown].into_iter().flatten() {
        output::check_file(file).map_err(|source| CliError::Output {
            path: file.clone(),
            source,
        })?;
    }
    Ok(())
}

/// The `--junit` and `--markdown` files.
fn write_verdicts(args: &CheckArgs, scenario: &str, verdicts: &[Verdict]) -> Result<(), CliError> {
    let files = [
        (&args.junit, check::render_junit(scenario, verdicts)),
        (&args.markdown, check::render_markdown(scenario, verdicts)),
    ];
    for (path, text) in files {
        if let Some(path) = path {
            output::write_file(path, &text).map_err(|source| CliError::Output {
                path: path.clone(),
                source,
            })?;
        }
    }
    Ok(())
}
