//! `statesim report DIR`, `statesim completions SHELL` and `statesim man`: files about statesim
//! and its results rather than runs.

use super::{CliError, print};
use crate::cli::{Cli, CompletionsArgs, ReportArgs};
use crate::report::html;
use clap::CommandFactory;
use std::path::Path;

pub fn report_command(args: ReportArgs) -> Result<(), CliError> {
    write_report(&args.dir, !args.quiet)
}

/// Writes report.html and its charts into a results folder; says which files it wrote.
pub(crate) fn write_report(dir: &Path, chatty: bool) -> Result<(), CliError> {
    let written = html::write(dir)?;
    if chatty {
        for path in written.iter().filter(|p| p.ends_with(html::REPORT_FILE)) {
            eprintln!(
                "wrote {} ({} charts beside it)",
                path.display(),
                written.len() - 1
            );
        }
    }
    Ok(())
}

pub fn completions_command(args: CompletionsArgs) -> Result<(), CliError> {
    let mut text = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "statesim", &mut text);
    print(&String::from_utf8_lossy(&text))
}

pub fn man_command() -> Result<(), CliError> {
    let mut text = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut text)
        .map_err(CliError::Stdout)?;
    print(&String::from_utf8_lossy(&text))
}
