//! The command line as users meet it: `--help` of every command is kept in `tests/help/` so that
//! any change to a flag shows up in review (`FERRY_BLESS=1 cargo test --test help` rewrites the
//! files), the README's flag tables list exactly the flags clap defines, completions and the man
//! page come from the same definitions, and `--version` names the bundle format.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::CommandFactory;
use common::*;

const COMMANDS: [&str; 9] = [
    "",
    "copy",
    "pull",
    "push",
    "serve",
    "verify",
    "ls",
    "keygen",
    "completions",
];

fn help_file(command: &str) -> PathBuf {
    let name = if command.is_empty() { "ferry" } else { command };
    repo_root().join("tests/help").join(format!("{name}.txt"))
}

#[test]
fn help_of_every_command_is_as_reviewed() {
    let home = tempfile::tempdir().unwrap();
    let bless = std::env::var_os("FERRY_BLESS").is_some();
    let mut changed = Vec::new();
    for command in COMMANDS {
        let mut cmd = ferry(home.path());
        if !command.is_empty() {
            cmd.arg(command);
        }
        let (code, stdout, stderr) = outcome(cmd.arg("--help").env_remove("FERRY_STALL_TIMEOUT"));
        assert_eq!(code, 0, "{stderr}");
        let path = help_file(command);
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &stdout).unwrap();
        } else if std::fs::read_to_string(&path).unwrap_or_default() != stdout {
            changed.push(format!("{}:\n{stdout}", path.display()));
        }
    }
    assert!(
        changed.is_empty(),
        "help changed (review, then FERRY_BLESS=1 cargo test --test help):\n{}",
        changed.join("\n")
    );
}

/// Flags and environment variables of a README table: every `--long`, `-s` and the variables
/// in parentheses, from the table that follows `## {heading}`.
fn readme_table(heading: &str) -> BTreeSet<String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let start = readme
        .find(&format!("## {heading}\n"))
        .unwrap_or_else(|| panic!("no section {heading}"));
    let section = &readme[start..];
    let table: Vec<&str> = section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .collect();
    let mut found = BTreeSet::new();
    for row in table {
        let first = row.split(" | ").next().unwrap();
        for word in first.split(['`', ',', ' ', '(', ')']) {
            let word = word.trim_start_matches('|');
            let flag = word.split([' ', '=']).next().unwrap();
            let is_flag = flag.starts_with("--") || (flag.starts_with('-') && flag.len() == 2);
            if is_flag || flag.starts_with("FERRY_") {
                found.insert(flag.to_string());
            }
        }
    }
    found
}

/// The flags and environment variables clap defines for a command, its global ones and the
/// built-in help and version left out.
fn clap_flags(command: &str) -> BTreeSet<String> {
    let cli = ferry::cli::Cli::command();
    let sub = cli.find_subcommand(command).unwrap();
    let mut found = BTreeSet::new();
    for arg in sub.get_arguments() {
        let id = arg.get_id().as_str();
        if ["help", "version", "verbose", "quiet", "no_progress"].contains(&id) {
            continue;
        }
        if let Some(long) = arg.get_long() {
            found.insert(format!("--{long}"));
        }
        if let Some(short) = arg.get_short() {
            found.insert(format!("-{short}"));
        }
        if let Some(env) = arg.get_env() {
            found.insert(env.to_string_lossy().into_owned());
        }
    }
    found
}

#[test]
fn the_readme_lists_every_flag_and_nothing_else() {
    for (command, heading) in [
        ("pull", "`ferry pull`"),
        ("push", "`ferry push`"),
        ("copy", "`ferry copy`"),
        ("serve", "`ferry serve`"),
    ] {
        let readme = readme_table(heading);
        let clap = clap_flags(command);
        let missing: Vec<&String> = clap.difference(&readme).collect();
        let stale: Vec<&String> = readme.difference(&clap).collect();
        assert!(
            missing.is_empty() && stale.is_empty(),
            "{command}: the README lacks {missing:?} and lists unknown {stale:?}"
        );
    }
    let global = readme_table("Global options");
    for flag in ["-v", "--verbose", "-q", "--quiet", "--no-progress"] {
        assert!(global.contains(flag), "README global options lack {flag}");
    }
}

#[test]
fn completions_man_page_and_version_come_from_the_same_definitions() {
    let home = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let (code, stdout, stderr) = outcome(ferry(home.path()).args(["completions", shell]));
        assert_eq!(code, 0, "{stderr}");
        for word in ["pull", "push", "verify", "gost-digest", "no-overwrite"] {
            assert!(stdout.contains(word), "{shell} completion lacks {word}");
        }
    }
    let (code, man, stderr) = outcome(ferry(home.path()).arg("manpage"));
    assert_eq!(code, 0, "{stderr}");
    assert!(man.starts_with(".ie") || man.contains(".TH ferry"), "{man}");
    assert!(man.contains("pull") && man.contains("push"));
    let (code, version, _) = outcome(ferry(home.path()).arg("--version"));
    assert_eq!(code, 0);
    assert_eq!(
        version.trim(),
        format!(
            "ferry {} (bundle format {})",
            env!("CARGO_PKG_VERSION"),
            ferry::bundle::metadata::FORMAT_VERSION
        )
    );
}
