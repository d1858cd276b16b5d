//! The README's first command, `scripts/demo.sh`, runs end to end with the binary under test
//! and ends with its summary: every tag the bundle lists is at the target with the source's
//! exact manifest, as skopeo (not ferry) reads both registries.

mod common;

use std::process::Command;

use common::*;

/// The number in a line `prefix<number><rest>`.
fn number_after(text: &str, prefix: &str) -> usize {
    let line = text
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting '{prefix}' in:\n{text}"));
    line[prefix.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn the_demo_runs_end_to_end() {
    let out = Command::new(repo_root().join("scripts/demo.sh"))
        .env("FERRY_BIN", env!("CARGO_BIN_EXE_ferry"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stdout.lines().last(), Some("demo: OK"), "{stdout}");
    // What `ferry ls` listed, what skopeo found at the target, and the summary agree, and
    // nothing differs: the check a user makes is that every tag of the bundle arrived.
    let listed_line = stdout
        .lines()
        .find(|l| l.ends_with(" tags") && l.starts_with("... "));
    assert!(listed_line.is_some(), "{stdout}");
    let tags_line = listed_line.unwrap();
    let listed_tags: usize = tags_line
        .trim_start_matches("... ")
        .trim_end_matches(" tags")
        .parse()
        .unwrap();
    let matched = number_after(&stdout, "skopeo: ");
    let summary = number_after(&stdout, "tags: ");
    assert!(listed_tags > 0, "{stdout}");
    assert_eq!(matched, listed_tags, "{stdout}");
    assert_eq!(summary, listed_tags, "{stdout}");
    assert!(
        stdout.contains(&format!(
            "skopeo: {listed_tags} tags at the target have the source's exact manifest, 0 differ"
        )),
        "{stdout}"
    );
    assert!(!stderr.contains("DIFFERS"), "{stderr}");
    // The sample has a platform, modules with channels and security databases: each is there.
    for needle in ["platform.tar", "module-"] {
        assert!(
            stdout.contains(needle),
            "'{needle}' in the bundle listing:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("Everything OK"),
        "rhash checked the GOST sums: {stdout}"
    );
}
