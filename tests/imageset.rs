//! Image sets and image lists against real registries: flux mirror's tag selection (regex with
//! extract, semver ranges, alphabetical and numerical sorts, limits), explicit tags, a config
//! from flux mirror's documentation, `${VAR}`, unknown keys, per-host logins, and lists of
//! plain references. skopeo checks what lands at the target. Helm charts are in `charts.rs`.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// Pushes a small image for every `repo:tag` (each its own content) with skopeo.
fn seed_tags(registry: &Registry, work: &Path, repo: &str, tags: &[&str]) {
    for (i, tag) in tags.iter().enumerate() {
        let layout = work.join(format!("{}-{i}", repo.replace('/', "-")));
        make_layout(&layout, tag, "image", &["--seed", &format!("{}", 100 + i)]);
        registry.seed(&layout, tag, &format!("{repo}:{tag}"));
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Every finished pull is verified (common::pull_insecure).
fn pull(home: &Path, args: &[&str]) -> (i32, String, String) {
    pull_insecure(home, args)
}

fn dry_json(home: &Path, dir: &Path, args: &[&str]) -> Value {
    let mut all = vec![dir.to_str().unwrap(), "--dry-run", "--json"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = pull(home, &all);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

fn tags_at(plan: &Value, path: &str) -> Vec<String> {
    plan["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["path"] == path)
        .map(|i| i["tag"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn selectors_choose_the_tags_flux_mirror_would() {
    let registry = Registry::start("plain");
    let work = tempfile::tempdir().unwrap();
    seed_tags(
        &registry,
        work.path(),
        "apps/stamped",
        &[
            "main-abc123-1700000000",
            "main-def456-1700000500",
            "main-0a0a0a-999",
            "latest",
        ],
    );
    seed_tags(
        &registry,
        work.path(),
        "apps/semver",
        &["5.9.0", "6.0.0", "6.1.2", "6.2.0", "7.0.0"],
    );
    seed_tags(
        &registry,
        work.path(),
        "apps/releases",
        &[
            "RELEASE.2023-12-31",
            "RELEASE.2024-01-02",
            "RELEASE.2024-11-12",
        ],
    );
    let host = &registry.host;
    let set = write(
        work.path(),
        "apps.yaml",
        &format!(
            r#"apiVersion: ferry/v1
kind: ImageSet
artifacts:
  - source: {host}/apps/stamped
    destination: mirror.example.com/team/stamped
    selector:
      regex:
        pattern: '^.+-[0-9a-f]+-(?P<ts>\d+)$'
        extract: '$ts'
      sortBy: numerical
      limit: 2
  - source: {host}/apps/semver
    selector:
      semver: "6.x"
      limit: 0
  - source: {host}/apps/releases
    selector:
      sortBy: alphabetical
      limit: 2
  - source: {host}/apps/semver
    destination: mirror.example.com/pinned/semver
    tags: ["5.9.0"]
"#
        ),
    );
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("bundle");
    let set_arg = set.to_str().unwrap();
    let plan = dry_json(home.path(), &dir, &["--images", set_arg]);
    assert_eq!(
        tags_at(&plan, "team/stamped"),
        ["main-abc123-1700000000", "main-def456-1700000500"]
    );
    assert_eq!(tags_at(&plan, "apps/semver"), ["6.0.0", "6.1.2", "6.2.0"]);
    assert_eq!(
        tags_at(&plan, "apps/releases"),
        ["RELEASE.2024-01-02", "RELEASE.2024-11-12"]
    );
    assert_eq!(tags_at(&plan, "pinned/semver"), ["5.9.0"]);
    let archives: Vec<&str> = plan["archives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(archives, ["images-apps.tar"]);

    // The human plan says why each tag went.
    let (code, stdout, stderr) = pull(
        home.path(),
        &[dir.to_str().unwrap(), "--dry-run", "--images", set_arg],
    );
    assert_eq!(code, 0, "{stderr}");
    for needle in [
        "latest: does not match the regex",
        "main-0a0a0a-999: beyond the limit of 2",
        "7.0.0: outside the semver range",
        "RELEASE.2023-12-31: beyond the limit of 2",
    ] {
        assert!(stdout.contains(needle), "{needle}: {stdout}");
    }

    // Pulled, pushed, and at the target byte for byte.
    let (code, _, stderr) = pull(home.path(), &[dir.to_str().unwrap(), "--images", set_arg]);
    assert_eq!(code, 0, "{stderr}");
    ferry_ok(
        ferry(home.path())
            .args(["--no-progress", "verify"])
            .arg(&dir),
    );
    let listed: Value = {
        let (_, stdout, _) = outcome(ferry(home.path()).args(["ls", "--json"]).arg(&dir));
        serde_json::from_str(&stdout).unwrap()
    };
    assert_eq!(listed, plan["images"]);
    let target = Registry::start("plain");
    ferry_ok(
        ferry(home.path())
            .args(["--no-progress", "push", "--insecure"])
            .arg(&dir)
            .arg(target.at("mirror")),
    );
    assert_eq!(
        target.raw_manifest("mirror/team/stamped:main-def456-1700000500"),
        registry.raw_manifest("apps/stamped:main-def456-1700000500")
    );
    assert_eq!(
        target.raw_manifest("mirror/pinned/semver:5.9.0"),
        registry.raw_manifest("apps/semver:5.9.0")
    );
}

#[test]
fn variables_logins_and_bad_files() {
    let registry = Registry::start("basic");
    let work = tempfile::tempdir().unwrap();
    seed_tags(&registry, work.path(), "apps/semver", &["1.0.0", "1.1.0"]);
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("bundle");
    // flux mirror's artifact example with its hosts section, rewritten to loopback: the login
    // comes from the config, its secret from the environment.
    let config = write(
        work.path(),
        "login.yaml",
        r#"apiVersion: mirror.plugin.fluxcd.io/v1beta1
kind: Config
artifacts:
  - source: ${REGISTRY}/apps/semver
    destination: quay.io/my-org/semver
    selector:
      semver: ">=1.0.0 <2.0.0"
      limit: 10
hosts:
  - host: ${REGISTRY}
    username: 'ferry'
    credential:
      value: ${REGISTRY_TOKEN}
"#,
    );
    let config_arg = config.to_str().unwrap();
    let password = registry.password.clone().unwrap();
    let mut cmd = ferry(home.path());
    cmd.args(["--no-progress", "pull", "--insecure", "--dry-run", "--json"])
        .arg(&dir)
        .args(["--images", config_arg])
        .env("REGISTRY", &registry.host)
        .env("REGISTRY_TOKEN", &password);
    let (code, stdout, stderr) = outcome(&mut cmd);
    assert_eq!(code, 0, "{stderr}");
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(tags_at(&plan, "my-org/semver"), ["1.0.0", "1.1.0"]);
    assert!(!stdout.contains(&password) && !stderr.contains(&password));

    // An unset variable is named with its line.
    let mut cmd = ferry(home.path());
    cmd.args(["pull", "--insecure", "--dry-run"])
        .arg(&dir)
        .args(["--images", config_arg])
        .env("REGISTRY", &registry.host)
        .env_remove("REGISTRY_TOKEN");
    let (code, _, stderr) = outcome(&mut cmd);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("line 13") && stderr.contains("${REGISTRY_TOKEN} is not set"),
        "{stderr}"
    );
    // --no-envsubst keeps ${...}, which is then not a registry.
    let (code, _, stderr) = outcome(
        ferry(home.path())
            .args(["pull", "--insecure", "--dry-run", "--no-envsubst"])
            .arg(&dir)
            .args(["--images", config_arg]),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("${REGISTRY}"), "{stderr}");

    // Unknown keys and refused features are named.
    for (name, text, needles) in [
        (
            "typo.yaml",
            "apiVersion: ferry/v1\nkind: ImageSet\nartifacts:\n  - source: x.io/a\n    tags: [v1]\n    bogus: 1\n",
            &["line 6", "unknown field `bogus`"][..],
        ),
        (
            "verify.yaml",
            "apiVersion: mirror.plugin.fluxcd.io/v1beta1\nkind: Config\nartifacts:\n  - source: x.io/a\n    destination: y.io/a\n    selector: {semver: '*'}\n    verify:\n      provider: cosign\n",
            &["verify", "not supported"][..],
        ),
        (
            "kind.yaml",
            "apiVersion: v1\nkind: Pod\n",
            &["neither flux mirror's"][..],
        ),
    ] {
        let file = write(work.path(), name, text);
        let (code, _, stderr) = outcome(
            ferry(home.path())
                .args(["pull", "--dry-run"])
                .arg(&dir)
                .arg("--images")
                .arg(&file),
        );
        assert_eq!(code, 2, "{name}: {stderr}");
        for needle in needles {
            assert!(stderr.contains(needle), "{name}: {needle}: {stderr}");
        }
    }
}

#[test]
fn image_lists_keep_their_registry_in_the_path() {
    let registry = Registry::start("plain");
    let work = tempfile::tempdir().unwrap();
    seed_tags(&registry, work.path(), "apps/semver", &["1.0.0", "2.0.0"]);
    seed_tags(&registry, work.path(), "tools/kubectl", &["v1.31.0"]);
    let pinned = ferry::digest::Digest::of(&registry.raw_manifest("apps/semver:2.0.0"));
    let host = &registry.host;
    let list = write(
        work.path(),
        "images.txt",
        &format!(
            "# what the cluster runs\n{host}/apps/semver:1.0.0 {host}/tools/kubectl:v1.31.0\n\n{host}/apps/semver@{pinned}  # pinned\n"
        ),
    );
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("bundle");
    let prefix = host.replace(':', "_");
    let plan = dry_json(
        home.path(),
        &dir,
        &["--images-from-list", list.to_str().unwrap()],
    );
    assert_eq!(
        tags_at(&plan, &format!("{prefix}/apps/semver")),
        ["1.0.0".to_string(), pinned.hex().to_string()]
    );
    assert_eq!(
        tags_at(&plan, &format!("{prefix}/tools/kubectl")),
        ["v1.31.0"]
    );
    assert_eq!(plan["archives"][0]["name"], "images-list.tar");
    let (code, _, stderr) = pull(
        home.path(),
        &[
            dir.to_str().unwrap(),
            "--images-from-list",
            list.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, _) = outcome(ferry(home.path()).arg("ls").arg(&dir));
    assert_eq!(code, 0);
    assert!(
        stdout.contains("images-list.tar")
            && stdout.contains(&format!("{host}/tools/kubectl:v1.31.0")),
        "ls names archive and source: {stdout}"
    );
    let target = Registry::start("plain");
    ferry_ok(
        ferry(home.path())
            .args(["--no-progress", "push", "--insecure"])
            .arg(&dir)
            .arg(target.at("mirror")),
    );
    assert_eq!(
        target.raw_manifest(&format!("mirror/{prefix}/tools/kubectl:v1.31.0")),
        registry.raw_manifest("tools/kubectl:v1.31.0")
    );
}

#[test]
fn a_host_ca_from_the_config_is_trusted_for_that_host() {
    let registry = Registry::start("tls");
    let work = tempfile::tempdir().unwrap();
    for (i, tag) in ["1.0.0", "1.1.0"].iter().enumerate() {
        let layout = work.path().join(format!("l{i}"));
        make_layout(&layout, tag, "image", &["--seed", &format!("{}", 200 + i)]);
        registry.seed(&layout, tag, &format!("apps/tls:{tag}"));
    }
    std::fs::copy(registry.ca.as_ref().unwrap(), work.path().join("ca.pem")).unwrap();
    let host = &registry.host;
    let config = write(
        work.path(),
        "tls.yaml",
        &format!(
            "apiVersion: ferry/v1\nkind: ImageSet\nartifacts:\n  - source: {host}/apps/tls\n    selector: {{semver: '*', limit: 0}}\nhosts:\n  - host: {host}\n    tls:\n      serverAuth:\n        fromPath: ca.pem\n"
        ),
    );
    let home = tempfile::tempdir().unwrap();
    // No SSL_CERT_FILE and no --insecure: the CA comes from the image set alone.
    let (code, stdout, stderr) = outcome(
        ferry(home.path())
            .args(["--no-progress", "pull", "--dry-run", "--json"])
            .arg(home.path().join("b"))
            .arg("--images")
            .arg(&config),
    );
    assert_eq!(code, 0, "{stderr}");
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(tags_at(&plan, "apps/tls"), ["1.0.0", "1.1.0"]);
    // A path out of the config's directory is refused.
    let escape = write(
        work.path(),
        "escape.yaml",
        &format!(
            "apiVersion: ferry/v1\nkind: ImageSet\nartifacts:\n  - source: {host}/apps/tls\n    tags: [1.0.0]\nhosts:\n  - host: {host}\n    tls:\n      serverAuth:\n        fromPath: ../ca.pem\n"
        ),
    );
    let (code, _, stderr) = outcome(
        ferry(home.path())
            .args(["pull", "--dry-run"])
            .arg(home.path().join("b"))
            .arg("--images")
            .arg(&escape),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("under the config file's directory"),
        "{stderr}"
    );
}
