//! What stops a plan, and what does not: a suspended release channel stops the platform but
//! not the modules and databases, nor a version it does not point at; arguments that cannot be
//! right are usage errors (exit 2) that show the form expected, before any network or disk work.

mod common;

use common::*;
use serde_json::Value;

#[test]
fn a_suspended_channel_stops_the_platform_but_not_the_rest() {
    let registry = Registry::start("plain");
    seed_sample(&registry, "paused/ee", &["--suspend", "stable"]);
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| run_plan(&registry, "paused/ee", home.path(), args);
    let (code, _, stderr) = run(&[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("suspended release channel(s): stable") && stderr.contains("hint:"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&["--deckhouse-tag", "stable"]);
    assert_eq!(code, 1, "{stderr}");

    // The rest: without the platform, the modules and databases are all planned.
    let plan = |args: &[&str]| -> Vec<Value> {
        let (code, stdout, stderr) = run(&[&["--json"][..], args].concat());
        assert_eq!(code, 0, "{args:?}: {stderr}");
        let plan: Value = serde_json::from_str(&stdout).unwrap();
        plan["images"].as_array().unwrap().clone()
    };
    let images = plan(&["--no-platform"]);
    let paths: std::collections::BTreeSet<&str> =
        images.iter().map(|i| i["path"].as_str().unwrap()).collect();
    for module in ["console", "gateway", "metrics", "zerotrust"] {
        assert!(
            paths.contains(format!("modules/{module}").as_str()),
            "{paths:?}"
        );
    }
    assert!(
        paths.iter().any(|p| p.starts_with("security/")),
        "{paths:?}"
    );
    assert!(
        !paths.contains("") && !paths.contains("install") && !paths.contains("release-channel"),
        "no platform image: {paths:?}"
    );

    // A version the suspended channel does not point at: every channel in the bundle points
    // to it, the suspended one included, and nothing else of the platform is taken.
    let images = plan(&[
        "--deckhouse-tag",
        "v1.62.2",
        "--no-modules",
        "--no-security-db",
    ]);
    let root: Vec<&Value> = images.iter().filter(|i| i["path"] == "").collect();
    let version = root.iter().find(|i| i["tag"] == "v1.62.2").unwrap();
    for channel in ["alpha", "beta", "early-access", "stable", "rock-solid"] {
        let alias = root
            .iter()
            .find(|i| i["tag"] == channel)
            .unwrap_or_else(|| panic!("no {channel} in {root:?}"));
        assert_eq!(alias["digest"], version["digest"], "{channel}");
    }
    let versions: Vec<&str> = root
        .iter()
        .filter_map(|i| i["tag"].as_str())
        .filter(|t| t.starts_with('v') && t.len() < 64)
        .collect();
    assert_eq!(versions, ["v1.62.2"], "only the tag asked for");
}

#[test]
fn bad_pull_arguments_are_usage_errors() {
    let home = tempfile::tempdir().unwrap();
    let layout = home.path().join("typo.yaml");
    let text = std::fs::read_to_string(repo_root().join("layouts/deckhouse.yaml")).unwrap();
    std::fs::write(
        &layout,
        text.replace("  floor: rock-solid\n", "  floor: rock-solid\n  flor: x\n"),
    )
    .unwrap();
    let layout_arg = layout.display().to_string();
    let cases: Vec<(Vec<&str>, &[&str])> = vec![
        (vec!["-i", "mod@"], &["missing", "shell", "accepted forms"]),
        (vec!["-i", "mod@>"], &["shell", "quote"]),
        (
            vec!["-i", "mod@1.x.y.z"],
            &["not a version constraint", "accepted forms"],
        ),
        (vec!["--since-version", "1.x"], &["not a version"]),
        (
            vec!["--deckhouse-tag", "v1.2.3", "--since-version", "1.0.0"],
            &["cannot be used with"],
        ),
        (vec!["-i", "a", "-e", "b"], &["cannot be used with"]),
        (vec!["--layout", &layout_arg], &["flor"]),
        (vec!["--layout", "nonesuch"], &["built in: deckhouse"]),
        (vec!["-c", "-1"], &["less than zero"]),
    ];
    for (args, needles) in cases {
        let mut cmd = ferry(home.path());
        cmd.args([
            "pull",
            "b",
            "--source",
            "127.0.0.1:9/sample/ee",
            "--dry-run",
        ])
        .args(&args);
        let (code, _, stderr) = outcome(&mut cmd);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        for needle in needles {
            assert!(
                stderr.contains(needle),
                "{args:?} should say '{needle}': {stderr}"
            );
        }
    }
    let mut cmd = ferry(home.path());
    cmd.args(["pull", "b", "--source", "127.0.0.1:5000", "--dry-run"]);
    let (code, _, stderr) = outcome(&mut cmd);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("missing the repository path"), "{stderr}");
    assert!(!home.path().join("b").exists());
}
