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

/// Two layouts that `--modules-path-suffix` sends to one repository (`modules/x` → `mods/x`
/// beside a layout `mods/x` of the bundle) and that give a tag two images: whichever were
/// written last would win. push refuses before the target hears a word, naming both, as serve
/// does; with the same image under the tag, the push goes ahead.
#[test]
fn layouts_sent_to_one_repository_may_not_give_a_tag_two_images() {
    let work = tempfile::tempdir().unwrap();
    let (one, two) = (work.path().join("one"), work.path().join("two"));
    let first = make_layout(&one, "v1", "image", &["--seed", "1"]);
    let second = make_layout(&two, "v1", "image", &["--seed", "2"]);
    let dir = work.path().join("bundle");
    let mut entries = ferry::bundle::pack::layout_entries(&one, "modules/x").unwrap();
    entries.extend(ferry::bundle::pack::layout_entries(&two, "mods/x").unwrap());
    sealed_archive(&dir, "module-x.tar", entries);
    let home = tempfile::tempdir().unwrap();
    verified(home.path(), &dir);
    let (code, stdout, stderr) = outcome(
        ferry(home.path())
            .args(["--no-progress", "push", "--insecure"])
            .arg(&dir)
            .arg("127.0.0.1:1/t")
            .args(["--modules-path-suffix", "/mods"]),
    );
    assert_eq!(code, 1, "{stdout}{stderr}");
    for needle in [
        "give a tag two images",
        "t/mods/x:v1",
        &first,
        &second,
        "layout 'modules/x'",
        "layout 'mods/x'",
        "hint: push without --modules-path-suffix",
    ] {
        assert!(stderr.contains(needle), "'{needle}' in {stderr}");
    }
    assert!(!stderr.contains("cannot reach"), "{stderr}");

    // The same image under both: nothing to choose between, the push goes on to the target.
    let target = Registry::start("plain");
    let same = work.path().join("same");
    let mut entries = ferry::bundle::pack::layout_entries(&one, "modules/x").unwrap();
    entries.extend(ferry::bundle::pack::layout_entries(&one, "mods/x").unwrap());
    sealed_archive(&same, "module-x.tar", entries);
    let (code, stdout, stderr) = outcome(&mut push_cmd(
        home.path(),
        &target,
        &same,
        "t",
        &["--modules-path-suffix", "/mods"],
    ));
    assert_eq!(code, 0, "{stdout}{stderr}");
    let landed = ferry::digest::Digest::of(&target.raw_manifest("t/mods/x:v1"));
    assert_eq!(landed.to_string(), first);
}
