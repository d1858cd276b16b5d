//! Image sets and image lists against real registries: flux mirror's tag selection (regex with
//! extract, semver ranges, alphabetical and numerical sorts, limits), explicit tags, a config
//! from flux mirror's documentation, `${VAR}`, unknown keys, per-host logins, Helm charts from
//! an HTTP repository served on 127.0.0.1, and lists of plain references. skopeo checks what
//! lands at the target.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

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

fn pull(home: &Path, args: &[&str]) -> (i32, String, String) {
    outcome(
        ferry(home)
            .args(["--no-progress", "pull", "--insecure"])
            .args(args),
    )
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

/// A Helm repository on 127.0.0.1: `index.yaml` and the chart files in `dir`.
struct HelmRepo {
    child: Child,
    url: String,
}

impl HelmRepo {
    fn serve(dir: &Path) -> HelmRepo {
        let port_file = dir.join(".port");
        let script = format!(
            r#"
import functools, http.server, os
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory="{dir}")
handler.log_message = lambda *a: None
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
open("{port}.tmp", "w").write(str(server.server_address[1]))
os.rename("{port}.tmp", "{port}")
server.serve_forever()
"#,
            dir = dir.display(),
            port = port_file.display()
        );
        let child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .spawn()
            .unwrap();
        assert!(wait_until(10, || port_file.exists()));
        let port = std::fs::read_to_string(&port_file).unwrap();
        HelmRepo {
            child,
            url: format!("http://127.0.0.1:{}", port.trim()),
        }
    }
}

impl Drop for HelmRepo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A chart's .tgz as `helm package` makes it: `<name>/Chart.yaml` and a template.
fn chart_tgz(name: &str, version: &str) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let files = [
        (
            format!("{name}/Chart.yaml"),
            format!("apiVersion: v2\nname: {name}\nversion: {version}\ndescription: test chart\n"),
        ),
        (
            format!("{name}/templates/cm.yaml"),
            format!("kind: ConfigMap\nmetadata:\n  name: {name}-{version}\n"),
        ),
    ];
    for (path, text) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, path, text.as_bytes()).unwrap();
    }
    let raw = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).unwrap();
    gz.finish().unwrap()
}

#[test]
fn helm_charts_become_oci_artifacts_with_the_tgz_unchanged() {
    let repo_dir = tempfile::tempdir().unwrap();
    let mut index = String::from("apiVersion: v1\nentries:\n  nginx:\n");
    let mut made = std::collections::BTreeMap::new();
    for version in ["15.1.0", "15.2.0", "16.0.0", "14.9.9"] {
        let bytes = chart_tgz("nginx", version);
        std::fs::write(repo_dir.path().join(format!("nginx-{version}.tgz")), &bytes).unwrap();
        index.push_str(&format!(
            "  - name: nginx\n    version: {version}\n    urls:\n    - nginx-{version}.tgz\n"
        ));
        made.insert(version, bytes);
    }
    std::fs::write(repo_dir.path().join("index.yaml"), index).unwrap();
    let helm = HelmRepo::serve(repo_dir.path());

    // The charts example of flux mirror's documentation, its source rewritten to loopback.
    let work = tempfile::tempdir().unwrap();
    let config = write(
        work.path(),
        "charts.yaml",
        &format!(
            r#"apiVersion: mirror.plugin.fluxcd.io/v1beta1
kind: Config
charts:
  - name: nginx
    source: {}
    destination: oci://quay.io/example/charts
    version: ">=15.0.0 <16.0.0"
    limit: 5
"#,
            helm.url
        ),
    );
    let home = tempfile::tempdir().unwrap();
    let config_arg = config.to_str().unwrap();
    let one = home.path().join("one");
    let plan = dry_json(home.path(), &one, &["--images", config_arg]);
    assert_eq!(tags_at(&plan, "example/charts/nginx"), ["15.1.0", "15.2.0"]);
    let (code, _, stderr) = pull(
        home.path(),
        &[one.to_str().unwrap(), "--images", config_arg],
    );
    assert_eq!(code, 0, "{stderr}");
    ferry_ok(
        ferry(home.path())
            .args(["--no-progress", "verify"])
            .arg(&one),
    );

    // The same chart pulled again has the same digest.
    let two = home.path().join("two");
    let (code, _, stderr) = pull(
        home.path(),
        &[two.to_str().unwrap(), "--images", config_arg],
    );
    assert_eq!(code, 0, "{stderr}");
    let digests = |dir: &Path| -> Vec<String> {
        let (_, stdout, _) = outcome(ferry(home.path()).args(["ls", "--json"]).arg(dir));
        let listed: Value = serde_json::from_str(&stdout).unwrap();
        listed
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["digest"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(digests(&one), digests(&two));

    // Pushed, it is a Helm OCI artifact whose layer is the .tgz byte for byte.
    let target = Registry::start("plain");
    ferry_ok(
        ferry(home.path())
            .args(["--no-progress", "push", "--insecure"])
            .arg(&one)
            .arg(target.at("oci")),
    );
    let manifest: Value =
        serde_json::from_slice(&target.raw_manifest("oci/example/charts/nginx:15.2.0")).unwrap();
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.cncf.helm.config.v1+json"
    );
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
    );
    let scratch = tempfile::tempdir().unwrap();
    run(Command::new("skopeo")
        .args(["copy", "-q", "--src-tls-verify=false"])
        .arg(format!(
            "docker://{}",
            target.at("oci/example/charts/nginx:15.2.0")
        ))
        .arg(format!("dir:{}", scratch.path().display())));
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let pulled = std::fs::read(scratch.path().join(&layer[7..])).unwrap();
    assert_eq!(pulled, made["15.2.0"]);
    let config_blob = manifest["config"]["digest"].as_str().unwrap();
    let config_json: Value =
        serde_json::from_slice(&std::fs::read(scratch.path().join(&config_blob[7..])).unwrap())
            .unwrap();
    assert_eq!(config_json["name"], "nginx");
    assert_eq!(config_json["version"], "15.2.0");

    // version and limit: only the highest 15.x.
    let narrow = write(
        work.path(),
        "narrow.yaml",
        &format!(
            "apiVersion: mirror.plugin.fluxcd.io/v1beta1\nkind: Config\ncharts:\n  - name: nginx\n    source: {}\n    destination: oci://quay.io/example/charts\n    version: \"15.x\"\n    limit: 1\n",
            helm.url
        ),
    );
    let plan = dry_json(
        home.path(),
        &home.path().join("three"),
        &["--images", narrow.to_str().unwrap()],
    );
    assert_eq!(tags_at(&plan, "example/charts/nginx"), ["15.2.0"]);
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
