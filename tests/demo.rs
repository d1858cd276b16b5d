//! The README's first command, `scripts/demo.sh`, runs end to end with the binary under test
//! and ends with its summary: every tag at the target has the source's exact manifest.

mod common;

use std::process::Command;

use common::*;

#[test]
fn the_demo_runs_end_to_end() {
    let out = Command::new(repo_root().join("scripts/demo.sh"))
        .env("FERRY_BIN", env!("CARGO_BIN_EXE_ferry"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let summary: Vec<&str> = stdout.lines().rev().take(2).collect();
    assert_eq!(summary[0], "demo: OK", "{stdout}");
    assert!(summary[1].starts_with("tags: 113 "), "{stdout}");
    assert!(
        stdout
            .contains("skopeo: 113 tags at the target have the source's exact manifest, 0 differ"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Everything OK"),
        "rhash checked the GOST sums: {stdout}"
    );
}
