//! `statesim validate`: load and check a scenario without running it.

use super::CliError;
use crate::cli::ValidateArgs;
use crate::scenario::{self, LoadOptions};

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
