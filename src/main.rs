use clap::Parser;
use statesim::cli::{Cli, Command};
use statesim::commands;
use statesim::scenario;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run(args) => commands::run_command(args).map(|()| ExitCode::SUCCESS),
        Command::Check(args) => commands::check_command(args),
        Command::Merge(args) => commands::merge_command(args).map(|()| ExitCode::SUCCESS),
        Command::Validate(args) => commands::validate_command(args).map(|()| ExitCode::SUCCESS),
        Command::Fit(args) => commands::fit_command(args).map(|()| ExitCode::SUCCESS),
        Command::Report(args) => commands::report_command(args).map(|()| ExitCode::SUCCESS),
        Command::Completions(args) => {
            commands::completions_command(args).map(|()| ExitCode::SUCCESS)
        }
        Command::Man => commands::man_command().map(|()| ExitCode::SUCCESS),
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
            ExitCode::from(error.exit_code())
        }
    }
}
