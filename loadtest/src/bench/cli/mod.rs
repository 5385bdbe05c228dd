//! The `infergate-bench` command line: `run`, `compare` and `report`.

use std::process::ExitCode;

use clap::Parser;

use super::compare::compare;
use super::output::Document;
use super::report;

mod args;
mod endpoint;
mod redact;
mod run;
#[cfg(test)]
mod tests;

pub use args::{Cli, Cmd, RunArgs};
pub use endpoint::endpoint;
pub use redact::redact;

/// The entry point of the binary.
pub fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Run(args) => run::run(*args, &argv),
        Cmd::Compare { files } => compare(&files).map(|text| {
            print!("{text}");
            ExitCode::SUCCESS
        }),
        Cmd::Report { file, out } => Document::read_json(&file).and_then(|doc| {
            report::write(&doc, &out)?;
            eprintln!("report written to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("infergate-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
