//! The `iotwatch` binary: parse arguments, run, map errors to exit codes
//! (0 success, 1 fatal error, 2 usage error).

use std::process::ExitCode;

use clap::Parser;
use iotwatch::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse(); // exits with 2 on a usage error
    let result = match cli.command {
        Command::Analyze(args) => iotwatch::cli::analyze::run(args),
        Command::Monitor(args) => iotwatch::cli::monitor::run(*args),
        Command::Tui(args) => iotwatch::tui::run(*args),
        Command::Devices(args) => iotwatch::cli::store::devices(args),
        Command::Events(args) => iotwatch::cli::store::events(args),
        Command::Signatures(args) => iotwatch::cli::signatures::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // A closed pipe (iotwatch ... | head) is not a failure.
            let broken_pipe = err.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            });
            if broken_pipe {
                return ExitCode::SUCCESS;
            }
            eprintln!("iotwatch: {err:#}");
            ExitCode::from(1)
        }
    }
}
