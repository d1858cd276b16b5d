//! `--modules-path-suffix` says where modules live at the source (pull) or go at the target
//! (push); the bundle is the same whatever the source's shape: modules are at `modules/` in it.

mod common;

use std::process::Command;

use common::*;

#[test]
fn a_source_modules_path_does_not_leak_into_the_bundle() {
    let source = Registry::start("plain");
    let out = run(Command::new(repo_root().join("scripts/seed-source.sh"))
        .env("FERRY_SEED_MODULES_PATH", "mods")
        .arg(&source.host)
        .arg("shifted/ee"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FERRY_SOURCE="));
    let home = tempfile::tempdir().unwrap();
    let bundle = home.path().join("bundle");
    ferry_ok(
        ferry(home.path())
            .args(["--no-progress", "pull"])
            .arg(&bundle)
            .args(["--source", &source.at("shifted/ee"), "--insecure"])
            .args(["--no-platform", "--no-security-db", "-i", "console"])
            .args(["--modules-path-suffix", "/mods"]),
    );
    verified(home.path(), &bundle);
    let paths: std::collections::BTreeSet<String> = listed(home.path(), &bundle)
        .iter()
        .map(|i| i["path"].as_str().unwrap().to_string())
        .collect();
    assert!(paths.contains("modules"), "the catalog: {paths:?}");
    assert!(paths.contains("modules/console"), "{paths:?}");
    assert!(paths.contains("modules/console/release"), "{paths:?}");
    assert!(
        paths.iter().all(|p| p.starts_with("modules")),
        "nothing under mods/: {paths:?}"
    );

    // Pushed with the default, the modules land under modules/; with a suffix, under it.
    let target = Registry::start("plain");
    ferry_ok(&mut push_cmd(home.path(), &target, &bundle, "t/ee", &[]));
    let source_tag = source.raw_manifest("shifted/ee/mods/console/release:stable");
    assert_eq!(
        target.raw_manifest("t/ee/modules/console/release:stable"),
        source_tag
    );
    assert_eq!(
        target.raw_manifest("t/ee/modules:console"),
        source.raw_manifest("shifted/ee/mods:console")
    );
    ferry_ok(&mut push_cmd(
        home.path(),
        &target,
        &bundle,
        "u/ee",
        &["--modules-path-suffix", "/elsewhere/mods"],
    ));
    assert_eq!(
        target.raw_manifest("u/ee/elsewhere/mods/console/release:stable"),
        source_tag
    );
}
