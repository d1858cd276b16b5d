//! The `ferry` binary: parse the command line, run the command, map errors to exit codes and
//! `hint:` lines.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use ferry::cli::{Cli, Command};
use ferry::report::{BarReporter, PlainReporter, QuietReporter, Reporter};
use ferry::settings::{self, CopySettings, Progress};

/// Exit code for an interrupted run (128 + SIGINT), as shells report it.
const INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.global.verbose, cli.global.quiet);
    let reporter: Arc<dyn Reporter> =
        match settings::progress(&cli.global, std::io::stderr().is_terminal()) {
            Progress::Bar => Arc::new(BarReporter::new()),
            Progress::Plain => Arc::new(PlainReporter::new()),
            Progress::Quiet => Arc::new(QuietReporter),
        };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        tokio::select! {
            result = run(cli.command, reporter) => match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(failure) => {
                    eprintln!("error: {}", failure.message);
                    if let Some(hint) = failure.hint {
                        eprintln!("hint: {hint}");
                    }
                    ExitCode::FAILURE
                }
            },
            _ = tokio::signal::ctrl_c() => {
                eprintln!("interrupted; finished blobs are kept, partial ones are not published");
                ExitCode::from(INTERRUPTED)
            }
        }
    })
}

/// A failed command: its message and the hint that usually fixes it.
struct Failure {
    message: String,
    hint: Option<String>,
}

async fn run(command: Command, reporter: Arc<dyn Reporter>) -> Result<(), Failure> {
    match command {
        Command::Copy(args) => {
            let settings = CopySettings::from_args(args);
            ferry::copy::copy(
                &settings.source,
                &settings.destination,
                &settings.options,
                reporter,
            )
            .await
            .map(drop)
            .map_err(|e| Failure {
                hint: e.hint(),
                message: e.to_string(),
            })
        }
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    // Only ferry's own events: libraries' log lines would repeat what ferry's errors say.
    let level = match (quiet, verbose) {
        (true, _) => "ferry=error",
        (false, 0) => "ferry=warn",
        (false, 1) => "ferry=info",
        (false, _) => "ferry=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .init();
}
