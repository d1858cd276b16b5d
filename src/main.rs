//! The `ferry` binary: parse the command line, run the command, map errors to exit codes and
//! `hint:` lines.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, Parser};

mod hints;
mod trust_lines;

use ferry::allocator;
use ferry::cli::{Cli, Command};
use ferry::pull::PullOptions;
use ferry::report::human_bytes;
use ferry::report::{BarReporter, PlainReporter, QuietReporter, Reporter};
use ferry::settings::{self, CopySettings, Progress, PullSettings};

/// `println!` that ends the program quietly when stdout is closed early (`ferry ls | head`)
/// instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        // Whatever a registry named goes through the terminal filter.
        let text = format!($($arg)*);
        if let Err(e) = writeln!(std::io::stdout(), "{}", ferry::report::terminal_safe(&text))
            && e.kind() == std::io::ErrorKind::BrokenPipe
        {
            std::process::exit(0);
        }
    }};
}

/// Exit code for an invalid command line, as clap uses it.
const USAGE: u8 = 2;

/// Exit code for an interrupted run (128 + SIGINT), as shells report it.
const INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    allocator::tune();
    let cli = Cli::parse();
    init_logging(cli.global.verbose, cli.global.quiet);
    let reporter: Arc<dyn Reporter> =
        match settings::progress(&cli.global, std::io::stderr().is_terminal()) {
            Progress::Bar => Arc::new(BarReporter::new()),
            Progress::Plain => Arc::new(PlainReporter::new(cli.global.verbose > 0)),
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
    // A server stops on Ctrl-C by itself, letting the requests under way finish.
    let serving = matches!(cli.command, Command::Serve(_));
    runtime.block_on(async move {
        let interrupted = async {
            if serving {
                std::future::pending::<()>().await;
            }
            let _ = tokio::signal::ctrl_c().await;
        };
        tokio::select! {
            result = run(cli.command, reporter, cli.global.quiet) => match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(failure) => {
                    eprintln!("error: {}", ferry::report::terminal_safe(&failure.message));
                    if let Some(hint) = failure.hint {
                        eprintln!("hint: {}", ferry::report::terminal_safe(&hint));
                    }
                    if failure.usage {
                        ExitCode::from(USAGE)
                    } else {
                        ExitCode::FAILURE
                    }
                }
            },
            _ = interrupted => {
                eprintln!("interrupted; nothing unfinished was left under a final name (a pull continues where it stopped when run again)");
                // Now, not when the runtime has waited for hashing threads to finish: files
                // under temporary names are safe to leave as they are.
                std::process::exit(INTERRUPTED.into());
            }
        }
    })
}

/// `ferry serve`'s lines (readiness, then one per request) on stdout.
struct StdoutLog;

impl ferry::serve::LogSink for StdoutLog {
    fn line(&self, text: &str) {
        out!("{text}");
    }
}

/// Completes on Ctrl-C or SIGTERM: a server stops on either.
async fn stop_asked() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// A failed command: its message, the hint that usually fixes it, and whether the command
/// line was at fault (exit code 2).
#[derive(Default)]
struct Failure {
    message: String,
    hint: Option<String>,
    usage: bool,
}

async fn run(command: Command, reporter: Arc<dyn Reporter>, quiet: bool) -> Result<(), Failure> {
    match command {
        Command::Copy(args) => {
            let settings = CopySettings::from_args(*args);
            ferry::copy::copy(
                &settings.source,
                &settings.destination,
                &settings.options,
                reporter,
            )
            .await
            .map(drop)
            .map_err(|e| Failure {
                hint: hints::copy(&e),
                message: e.to_string(),
                ..Failure::default()
            })
        }
        Command::Pull(args) => {
            let settings = PullSettings::from_args(*args).map_err(settings_failure)?;
            if settings.dry_run {
                let plan = ferry::pull::dry_run(&settings.options, reporter.as_ref())
                    .await
                    .map_err(pull_failure)?;
                if settings.json {
                    let text = serde_json::to_string_pretty(&plan.json()).expect("plan serialises");
                    out!("{text}");
                } else {
                    print_plan(&settings.options, &plan);
                }
                for check in plan.space.iter().filter(|c| c.is_short()) {
                    reporter.warn(&format!(
                        "{} has {} free, the pull needs {}",
                        check.dir.display(),
                        human_bytes(check.free),
                        human_bytes(check.needed)
                    ));
                }
                return Ok(());
            }
            let summary = ferry::pull::pull(&settings.options, reporter)
                .await
                .map_err(pull_failure)?;
            if !quiet {
                print_pull_summary(&settings.options, &summary);
            }
            Ok(())
        }
        Command::Push(args) => {
            let options = settings::push_options(*args).map_err(settings_failure)?;
            if options.signature_policy.is_some() && options.key.is_none() {
                reporter.warn(trust_lines::UNSIGNED_NAMES);
            }
            let summary = ferry::push::push(&options, reporter)
                .await
                .map_err(|e| Failure {
                    hint: hints::push(&e),
                    message: e.to_string(),
                    ..Failure::default()
                })?;
            if !quiet {
                print_push_summary(&options, &summary);
            }
            Ok(())
        }
        Command::Verify(args) => {
            let options = settings::verify_options(&args).map_err(trust_failure)?;
            let key_given = options.key.is_some();
            let policy = options
                .policy
                .as_ref()
                .map(|p| (p.file.clone(), p.sha256.clone()));
            let report = ferry::verify::verify(&args.dir, options, reporter)
                .await
                .map_err(|e| match e {
                    ferry::verify::VerifyError::Bundle(e) => bundle_failure(e),
                    ferry::verify::VerifyError::Trust(e) => trust_failure(e),
                })?;
            for problem in &report.problems {
                eprintln!("problem: {}", ferry::report::terminal_safe(problem));
            }
            if let Some(base) = &report.base {
                out!(
                    "{} blobs ({}) are expected at the target, not in the bundle: it is \
                     differential against {} from {}; push checks that the target has them",
                    base.left_out.len(),
                    human_bytes(base.left_out_bytes()),
                    base.describe(),
                    base.source
                );
            }
            let policy = policy.as_ref().map(|(f, sha)| (f.as_path(), sha.as_str()));
            for line in trust_lines::verify(&args.dir, &report, key_given, policy) {
                out!("{line}");
            }
            if report.problems.is_empty() {
                out!(
                    "{}: OK ({} files, {} blobs, {} tags checked)",
                    args.dir.display(),
                    report.files,
                    report.blobs,
                    report.images
                );
                Ok(())
            } else {
                Err(Failure {
                    message: format!(
                        "{} problem(s) found in {}",
                        report.problems.len(),
                        args.dir.display()
                    ),
                    hint: Some(
                        "copy the files named above again from the pull host, or pull again".into(),
                    ),
                    ..Failure::default()
                })
            }
        }
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "ferry", &mut std::io::stdout());
            Ok(())
        }
        Command::Manpage => clap_mangen::Man::new(Cli::command())
            .render(&mut std::io::stdout())
            .map_err(|e| Failure {
                message: format!("cannot write the man page: {e}"),
                ..Failure::default()
            }),
        Command::Serve(args) => {
            let options = settings::serve_options(*args).map_err(source_failure)?;
            ferry::serve::serve(options, Arc::new(StdoutLog), reporter, stop_asked())
                .await
                .map_err(|e| Failure {
                    hint: hints::serve(&e),
                    message: e.to_string(),
                    ..Failure::default()
                })
        }
        Command::Keygen(args) => {
            let line = trust_lines::keygen(&args.prefix).map_err(trust_failure)?;
            if !quiet {
                out!("{line}");
            }
            Ok(())
        }
        Command::Ls(args) => {
            let images = ferry::list::list(&args.dir).await.map_err(bundle_failure)?;
            if args.json {
                let text = serde_json::to_string_pretty(&images).expect("images serialise");
                out!("{text}");
            } else {
                print_table(&images);
            }
            Ok(())
        }
    }
}

fn bundle_failure(e: ferry::bundle::BundleError) -> Failure {
    Failure {
        hint: hints::bundle(&e),
        message: e.to_string(),
        ..Failure::default()
    }
}

fn trust_failure(e: ferry::trust::TrustError) -> Failure {
    Failure {
        hint: hints::trust(&e),
        message: e.to_string(),
        ..Failure::default()
    }
}

fn settings_failure(e: ferry::settings::SettingsError) -> Failure {
    match e {
        ferry::settings::SettingsError::Source(e) => source_failure(e),
        ferry::settings::SettingsError::Trust(e) => trust_failure(e),
    }
}

fn pull_failure(e: ferry::pull::PullError) -> Failure {
    Failure {
        hint: hints::pull(&e),
        message: e.to_string(),
        usage: e.is_usage(),
    }
}

fn source_failure(e: ferry::source::SourceError) -> Failure {
    Failure {
        hint: hints::source(&e),
        message: e.to_string(),
        usage: e.is_usage(),
    }
}

/// The plan for people: per archive its tags and size, then the totals and the disks.
fn print_plan(options: &PullOptions, plan: &ferry::pull::DryRun) {
    out!("plan for {}:", options.source_name());
    for line in &plan.plan.mirrors {
        out!("mirrors: {line}");
    }
    for note in &plan.plan.notes {
        out!("selection: {note}");
    }
    let width = plan
        .archives
        .iter()
        .map(|a| a.name.len())
        .max()
        .unwrap_or(0);
    for archive in &plan.archives {
        let chunks = if archive.chunks > 0 {
            format!(
                "  in {} chunk(s) of at most {}",
                archive.chunks,
                human_bytes(options.chunk_size)
            )
        } else {
            String::new()
        };
        out!(
            "  {:width$}  {:>4} tags  {:>10}{chunks}",
            archive.name,
            archive.tags,
            human_bytes(archive.bytes)
        );
    }
    out!(
        "to download: {} (manifests and blobs, each once)",
        human_bytes(plan.plan.total_bytes())
    );
    out!(
        "bundle: {} in {} archive(s)",
        human_bytes(plan.bundle_bytes()),
        plan.archives.len()
    );
    if let Some(base) = &options.since_bundle {
        out!(
            "left out: {} blobs ({}) that {} holds; push this bundle only where that one went",
            plan.plan.left_out.len(),
            human_bytes(plan.plan.left_out_bytes()),
            base.record.describe()
        );
    }
    for check in &plan.space {
        out!(
            "free space in {}: {} (needs about {})",
            check.dir.display(),
            human_bytes(check.free),
            human_bytes(check.needed)
        );
    }
}

/// What a pull did, for people.
fn print_pull_summary(options: &PullOptions, summary: &ferry::pull::PullSummary) {
    let rate = summary.downloaded as f64 / summary.seconds.max(0.001);
    out!(
        "pulled {} tags ({} blobs) into {}: {} files, {}",
        summary.tags,
        summary.blobs,
        options.dir.display(),
        summary.files,
        human_bytes(summary.bundle_bytes)
    );
    let mut fetched = format!(
        "downloaded {} in {:.1} s ({}/s)",
        human_bytes(summary.downloaded),
        summary.seconds,
        human_bytes(rate as u64)
    );
    if summary.resumed {
        fetched.push_str(&format!(
            "; reused {} from the interrupted pull",
            human_bytes(summary.reused)
        ));
    }
    if summary.relaid > 0 {
        fetched.push_str(&format!(
            "; {} blobs copied from the earlier layout",
            summary.relaid
        ));
    }
    out!("{fetched}");
    for line in trust_lines::pull(options) {
        out!("{line}");
    }
    if let Some(base) = &summary.base {
        out!(
            "differential against {}: {} blobs ({}) left out; the bundle is {}, {:.1}% of the {} \
             a full one would be",
            base.describe(),
            base.left_out.len(),
            human_bytes(base.left_out_bytes()),
            human_bytes(summary.bundle_bytes),
            100.0 * summary.bundle_bytes as f64 / summary.full_bytes.max(1) as f64,
            human_bytes(summary.full_bytes)
        );
    }
}

/// What a push did (or would do), for people.
fn print_push_summary(options: &ferry::push::PushOptions, summary: &ferry::push::PushSummary) {
    use ferry::push::TagStatus;
    let (verb, written) = if options.dry_run {
        ("would push", "to write")
    } else {
        ("pushed", "written")
    };
    out!(
        "{verb} {} to {}: {} tags {written} ({} new, {} updated, {} merged), {} already there, {} drifted, {} skipped",
        options.dir.display(),
        options.target,
        summary.count(&TagStatus::Pushed)
            + summary.count(&TagStatus::Updated)
            + summary.count(&TagStatus::Merged),
        summary.count(&TagStatus::Pushed),
        summary.count(&TagStatus::Updated),
        summary.count(&TagStatus::Merged),
        summary.count(&TagStatus::Present),
        summary.count(&TagStatus::Drifted),
        summary.count(&TagStatus::Skipped),
    );
    let rate = summary.uploaded_bytes as f64 / summary.seconds.max(0.001);
    out!(
        "blobs: {}; {} manifests; {:.1} s ({}/s)",
        summary.blob_counts(options.dry_run),
        summary.manifests,
        summary.seconds,
        human_bytes(rate as u64)
    );
    if summary.uploaded_bytes == 0 && !options.dry_run {
        out!("nothing needed uploading: the target already had every blob");
    }
    if let Some(size) = summary.patch_size {
        let why = if summary.body_refused {
            "the registry (or a proxy before it) refused large request bodies (413)"
        } else {
            "--upload-chunk-size"
        };
        out!(
            "uploads went in PATCHes of {} because {why}",
            human_bytes(size)
        );
    }
    for tag in &summary.tags {
        let previous = tag.previous.as_ref().map(|d| d.short()).unwrap_or_default();
        match tag.status {
            TagStatus::Updated => out!(
                "updated {}:{} {previous} -> {}",
                tag.repository,
                tag.tag,
                tag.digest.short()
            ),
            TagStatus::Merged => out!(
                "merged {}:{}: the target's referrers index {previous} and the bundle's, now {}",
                tag.repository,
                tag.tag,
                tag.digest.short()
            ),
            TagStatus::Drifted => out!(
                "drifted {}:{} is {previous} at the target, {} in the bundle (left as it is)",
                tag.repository,
                tag.tag,
                tag.digest.short()
            ),
            _ => {}
        }
    }
}

/// `ls` as a table for people: repository, tag, short digest, size, the archive holding it and
/// where it came from (when the bundle records it).
fn print_table(images: &[ferry::bundle::ImageRecord]) {
    let path = |p: &str| {
        if p.is_empty() {
            "(root)".to_string()
        } else {
            p.to_string()
        }
    };
    let width = |cells: &mut dyn Iterator<Item = usize>, header: &str| {
        cells.max().unwrap_or(0).max(header.len())
    };
    let width_path = width(
        &mut images.iter().map(|i| path(&i.path).len()),
        "REPOSITORY",
    );
    let width_tag = width(&mut images.iter().map(|i| i.tag.len()), "TAG");
    let width_archive = width(
        &mut images
            .iter()
            .map(|i| i.archive.as_deref().unwrap_or("").len()),
        "ARCHIVE",
    );
    out!(
        "{:width_path$}  {:width_tag$}  {:19}  {:>9}  {:width_archive$}  SOURCE",
        "REPOSITORY",
        "TAG",
        "DIGEST",
        "SIZE",
        "ARCHIVE"
    );
    for image in images {
        out!(
            "{:width_path$}  {:width_tag$}  {:19}  {:>9}  {:width_archive$}  {}",
            path(&image.path),
            image.tag,
            image.digest.short(),
            ferry::report::human_bytes(image.size),
            image.archive.as_deref().unwrap_or("-"),
            image.source.as_deref().unwrap_or("-")
        );
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
