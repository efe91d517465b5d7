//! `statesim validate`: load and check a scenario without running it.

use super::{CliError, budget_of, print};
use crate::budget;
use crate::cli::ValidateArgs;
use crate::scenario::{self, LoadOptions};
use crate::text::count;

pub fn validate_command(args: ValidateArgs) -> Result<(), CliError> {
    // Every sweep point is loaded and validated, as `run` would.
    let options = LoadOptions {
        overrides: args.scenario_args.set.clone(),
        expand_file_sweep: true,
        allowed_dirs: args.scenario_args.allow_path.clone(),
        ..LoadOptions::default()
    };
    let points = scenario::load_points_file(&args.scenario, &options)?;
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
    let autoscale = if scenario.autoscale.is_some() {
        ", an autoscaler"
    } else {
        ""
    };
    // The same estimate and budget as `run` (on as many threads as it would use).
    let threads = crate::run::threads(None);
    let estimate = budget::estimate(&points, 1, threads);
    budget::check(&estimate, &budget_of(&args.budget), threads)?;
    print(&format!(
        "{}: ok (\"{}\", {}, {}{autoscale}{sweep}); {}\n",
        args.scenario.display(),
        scenario.name,
        count(scenario.topologies.len() as u64, "topology", "topologies"),
        count(scenario.faults.len() as u64, "fault", "faults"),
        budget::describe(&estimate, threads),
    ))
}
