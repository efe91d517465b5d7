//! `statesim fit LOG`: a `[workload]` section fitted to a request log, on stdout.

use super::{CliError, print};
use crate::cli::FitArgs;
use crate::engine::SimTime;
use crate::fit::{FitOptions, fit};
use crate::scenario::units::parse_duration;

pub fn fit_command(args: FitArgs) -> Result<(), CliError> {
    let options = FitOptions {
        timestamp_column: args.timestamp,
        session_column: args.session,
        service_time_column: args.service_time,
        timestamp_unit: unit("--timestamp-unit", &args.timestamp_unit)?,
        service_time_unit: unit("--service-time-unit", &args.service_time_unit)?,
        bucket: duration("--bucket", &args.bucket)?,
        session_gap: duration("--session-gap", &args.session_gap)?,
        samples_dir: args.samples,
    };
    print(&fit(&args.log, &options)?)
}

/// Seconds per unit.
fn unit(flag: &'static str, value: &str) -> Result<f64, CliError> {
    match value {
        "s" => Ok(1.0),
        "ms" => Ok(1e-3),
        "us" => Ok(1e-6),
        _ => Err(CliError::Flag {
            flag,
            value: value.to_string(),
            expected: "expected s, ms or us",
        }),
    }
}

fn duration(flag: &'static str, value: &str) -> Result<SimTime, CliError> {
    match parse_duration(value) {
        Ok(duration) if duration >= SimTime::from_secs(1) => Ok(duration),
        _ => Err(CliError::Flag {
            flag,
            value: value.to_string(),
            expected: "expected a duration of at least 1s, e.g. 1m",
        }),
    }
}
