//! A selector that selects nothing is a warning, and with `--strict` an error naming every such
//! selector, before anything is downloaded.

mod common;

use std::path::Path;

use common::*;

fn pull(home: &Path, dir: &Path, source: &str, args: &[&str]) -> (i32, String, String) {
    outcome(
        ferry(home)
            .args(["--no-progress", "pull"])
            .arg(dir)
            .args(["--source", source, "--insecure", "--no-platform"])
            .args(["--no-security-db"])
            .args(args),
    )
}

#[test]
fn selectors_that_select_nothing_warn_and_fail_with_strict() {
    let registry = Registry::start("plain");
    let source = seed_sample(&registry, "sample/ee", &[]);
    let home = tempfile::tempdir().unwrap();

    // A module filter that leaves one module no version; the other modules are taken.
    let filters = ["-e", "console@>=0.0.0"];
    let dir = home.path().join("lenient");
    let (code, stdout, stderr) = pull(home.path(), &dir, &source, &filters);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stderr.contains("warning: module 'console': nothing matches the filters"),
        "{stderr}"
    );
    verified(home.path(), &dir);
    let paths: Vec<String> = listed(home.path(), &dir)
        .iter()
        .map(|i| i["path"].as_str().unwrap().to_string())
        .collect();
    assert!(paths.iter().any(|p| p == "modules/metrics"), "{paths:?}");
    assert!(!paths.iter().any(|p| p.contains("console")), "{paths:?}");

    let dir = home.path().join("strict");
    let (code, stdout, stderr) = pull(
        home.path(),
        &dir,
        &source,
        &[&filters[..], &["--strict"]].concat(),
    );
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains("--strict: 1 selector(s) selected nothing")
            && stderr.contains("module 'console'")
            && stderr.contains("hint:"),
        "{stderr}"
    );
    assert!(!dir.exists(), "nothing was written");

    // -e naming a module the catalog lacks, and an image set whose selector keeps no tag.
    let set = home.path().join("set.yaml");
    std::fs::write(
        &set,
        format!(
            "apiVersion: ferry/v1\nkind: ImageSet\nartifacts:\n  - source: {}/sample/ee/security/trivy-db\n    \
             selector: {{ semver: '>=100' }}\n",
            registry.host
        ),
    )
    .unwrap();
    let set_arg = set.display().to_string();
    let args = ["-e", "nosuch", "--images", &set_arg, "--dry-run"];
    let args = [&args[..], &["--strict"]].concat();
    let (code, stdout, stderr) = pull(home.path(), &home.path().join("d"), &source, &args);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains("2 selector(s) selected nothing")
            && stderr.contains("has no module 'nosuch'")
            && stderr.contains("the selector keeps no tag"),
        "{stderr}"
    );
    // Without --strict the same plan goes through with both warnings.
    let args = ["-e", "nosuch", "--images", &set_arg, "--dry-run"];
    let (code, stdout, stderr) = pull(home.path(), &home.path().join("d"), &source, &args);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(stderr.matches("warning: ").count(), 2, "{stderr}");
}
