//! Flags, environment and defaults resolved into the settings the commands run with, in one
//! place, so nothing below the commands knows the command line.

use crate::cli::{CopyArgs, GlobalArgs, TransportArgs};
use crate::copy::{CopyOptions, Endpoint};
use crate::registry::{ClientOptions, Credential, Secret, TransportOptions, UploadMode};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// An indicatif bar (stderr is a terminal).
    Bar,
    /// Plain lines (not a terminal, `--no-progress`, or `--verbose`).
    Plain,
    /// Warnings and errors only (`--quiet`).
    Quiet,
}

/// Picks the progress style: bars only on a terminal, and not with `--verbose`, whose log lines
/// would tear them.
pub fn progress(global: &GlobalArgs, stderr_is_terminal: bool) -> Progress {
    if global.quiet {
        Progress::Quiet
    } else if global.no_progress || global.verbose > 0 || !stderr_is_terminal {
        Progress::Plain
    } else {
        Progress::Bar
    }
}

/// Settings of `ferry copy`.
#[derive(Debug, Clone)]
pub struct CopySettings {
    /// What to copy.
    pub source: Endpoint,
    /// Where to.
    pub destination: Endpoint,
    /// How.
    pub options: CopyOptions,
}

fn transport(args: &TransportArgs) -> TransportOptions {
    TransportOptions {
        insecure: args.insecure,
        tls_skip_verify: args.tls_skip_verify,
    }
}

fn credential(login: &Option<String>, password: &Option<String>) -> Option<Credential> {
    match (login, password) {
        (Some(username), Some(password)) => Some(Credential::Basic {
            username: username.clone(),
            password: Secret::new(password.clone()),
        }),
        _ => None,
    }
}

impl CopySettings {
    /// Resolves `ferry copy` arguments.
    pub fn from_args(args: CopyArgs) -> Self {
        let transport = transport(&args.transport);
        CopySettings {
            options: CopyOptions {
                source: ClientOptions {
                    transport: transport.clone(),
                    credential: credential(&args.source_login, &args.source_password),
                    ..ClientOptions::default()
                },
                destination: ClientOptions {
                    transport,
                    credential: credential(&args.registry_login, &args.registry_password),
                    ..ClientOptions::default()
                },
                concurrency: usize::from(args.concurrency),
                tmp_dir: args.tmp_dir,
                upload_mode: args
                    .upload_chunk_size
                    .map_or(UploadMode::Monolithic, UploadMode::Chunked),
            },
            source: args.source,
            destination: args.destination,
        }
    }
}
