//! Test bench shared by the integration tests: real registries started by
//! `scripts/dev-registry.sh`, layouts written by `scripts/mkoci.py`, skopeo as the independent
//! client, and the `ferry` binary run as a user runs it.
#![allow(dead_code)] // each test binary uses its own part of the bench

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn script(name: &str) -> PathBuf {
    repo_root().join("scripts").join(name)
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A registry on 127.0.0.1, stopped when dropped.
pub struct Registry {
    pub dir: tempfile::TempDir,
    pub host: String,
    pub tls: bool,
    pub user: Option<String>,
    pub password: Option<String>,
    pub ca: Option<PathBuf>,
    pub cert_dir: Option<PathBuf>,
}

impl Registry {
    /// Starts a registry of a `scripts/dev-registry.sh` variant: plain, basic, tls, tls-basic,
    /// token. Fails (never skips) when the registry is not installed.
    pub fn start(variant: &str) -> Self {
        Self::start_with(variant, &[])
    }

    pub fn start_with(variant: &str, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = run(Command::new(script("dev-registry.sh"))
            .arg("start")
            .arg(variant)
            .arg(dir.path())
            .args(extra));
        let env: HashMap<String, String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Registry {
            host: env["FERRY_TEST_REGISTRY"].clone(),
            tls: env["FERRY_TEST_SCHEME"] == "https",
            user: env.get("FERRY_TEST_USER").cloned(),
            password: env.get("FERRY_TEST_PASSWORD").cloned(),
            ca: env.get("FERRY_TEST_CA").map(PathBuf::from),
            cert_dir: env.get("FERRY_TEST_CERT_DIR").map(PathBuf::from),
            dir,
        }
    }

    /// `host:port/<path>`.
    pub fn at(&self, path: &str) -> String {
        format!("{}/{path}", self.host)
    }

    /// skopeo options for this registry on one side (`src` or `dest`).
    pub fn skopeo_args(&self, side: &str) -> Vec<String> {
        let mut args = Vec::new();
        match &self.cert_dir {
            Some(dir) => args.push(format!("--{side}-cert-dir={}", dir.display())),
            None => args.push(format!("--{side}-tls-verify=false")),
        }
        if let (Some(u), Some(p)) = (&self.user, &self.password) {
            args.push(format!("--{side}-creds={u}:{p}"));
        }
        args
    }

    /// The manifest bytes skopeo reads for `path:tag` on this registry.
    pub fn raw_manifest(&self, reference: &str) -> Vec<u8> {
        let mut cmd = Command::new("skopeo");
        cmd.arg("inspect").arg("--raw");
        for a in self.skopeo_args("src") {
            // `inspect` takes the unprefixed forms.
            cmd.arg(a.replace("--src-", "--"));
        }
        cmd.arg(format!("docker://{}", self.at(reference)));
        run(&mut cmd).stdout
    }

    /// Has skopeo copy `reference` (every platform, digests preserved, so every blob is
    /// checked) from this plain-HTTP registry into the layout `dir` under `tag`.
    pub fn skopeo_copy_out(&self, reference: &str, dir: &Path, tag: &str) {
        run(Command::new("skopeo")
            .args([
                "copy",
                "-q",
                "--all",
                "--preserve-digests",
                "--src-tls-verify=false",
            ])
            .arg(format!("docker://{}", self.at(reference)))
            .arg(format!("oci:{}:{tag}", dir.display())));
    }

    /// Pushes a layout's tag here with skopeo, byte for byte.
    pub fn seed(&self, layout: &Path, tag: &str, reference: &str) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "-q", "--all", "--preserve-digests"]);
        cmd.args(self.skopeo_args("dest"));
        cmd.arg(format!("oci:{}:{tag}", layout.display()));
        cmd.arg(format!("docker://{}", self.at(reference)));
        run(&mut cmd);
    }

    /// Options that let `ferry` reach this registry: transport flags and, for TLS, the CA.
    pub fn ferry_transport(&self, cmd: &mut Command) {
        match &self.ca {
            Some(ca) => {
                cmd.env("SSL_CERT_FILE", ca);
            }
            None => {
                cmd.arg("--insecure");
            }
        }
    }

    /// The registry's log, for diagnosing failures.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = Command::new(script("dev-registry.sh"))
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes a layout tag with `scripts/mkoci.py` and returns the root digest.
pub fn make_layout(dir: &Path, tag: &str, kind: &str, extra: &[&str]) -> String {
    let out = run(Command::new("python3")
        .arg(script("mkoci.py"))
        .arg(dir)
        .arg(tag)
        .arg(kind)
        .args(extra));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The three kinds of content ferry must carry: a single image, a two-platform index, and an
/// artifact with its own config and layer media types.
pub const KINDS: [&str; 3] = ["image", "index", "artifact"];

/// A layout holding one tag of each kind (tag = kind).
pub fn sample_layout() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (i, kind) in KINDS.iter().enumerate() {
        let seed = (i + 1).to_string();
        make_layout(dir.path(), kind, kind, &["--seed", &seed]);
    }
    dir
}

/// The `ferry` binary, isolated from the machine's credentials, certificates and proxies.
pub fn ferry(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    for var in [
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REGISTRY_AUTH_FILE",
        "DOCKER_CONFIG",
        "XDG_RUNTIME_DIR",
        "FERRY_SOURCE_LOGIN",
        "FERRY_SOURCE_PASSWORD",
        "FERRY_REGISTRY_LOGIN",
        "FERRY_REGISTRY_PASSWORD",
    ] {
        cmd.env_remove(var);
    }
    // Mirrors only where a test sets them: an empty registries.conf instead of the machine's.
    let registries_conf = std::env::temp_dir().join("ferry-tests-empty-registries.conf");
    if !registries_conf.exists() {
        std::fs::write(&registries_conf, "").unwrap();
    }
    cmd.env("HOME", home)
        .env("CONTAINERS_REGISTRIES_CONF", &registries_conf)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
    cmd
}

/// Runs a command and returns (exit code, stdout, stderr).
pub fn outcome(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs ferry and insists on success, showing its output otherwise.
pub fn ferry_ok(cmd: &mut Command) -> String {
    let (code, stdout, stderr) = outcome(cmd);
    assert_eq!(code, 0, "ferry failed:\n{stdout}\n{stderr}");
    stderr
}

/// `skopeo inspect --raw oci:<dir>:<tag>`.
pub fn layout_raw_manifest(dir: &Path, tag: &str) -> Vec<u8> {
    run(Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}:{tag}", dir.display())))
    .stdout
}

/// Has skopeo copy a layout tag to a scratch layout with `--preserve-digests`, which checks the
/// digest of every blob on the way.
pub fn skopeo_verifies_layout(dir: &Path, tag: &str) {
    let scratch = tempfile::tempdir().unwrap();
    run(Command::new("skopeo")
        .args(["copy", "-q", "--all", "--preserve-digests"])
        .arg(format!("oci:{}:{tag}", dir.display()))
        .arg(format!("oci:{}:{tag}", scratch.path().display())));
}

/// A `scripts/fault-proxy.py` in front of a registry, stopped when dropped.
pub struct FaultProxy {
    child: Child,
    pub host: String,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl FaultProxy {
    pub fn start(upstream: &Registry, flags: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port_file = dir.path().join("port");
        let log = dir.path().join("requests.log");
        let mut child = Command::new("python3")
            .arg(script("fault-proxy.py"))
            .arg("--upstream")
            .arg(&upstream.host)
            .arg("--port-file")
            .arg(&port_file)
            .arg("--log")
            .arg(&log)
            .args(flags)
            .spawn()
            .expect("python3 runs the fault proxy");
        for _ in 0..200 {
            if let Ok(port) = std::fs::read_to_string(&port_file) {
                return FaultProxy {
                    child,
                    host: format!("127.0.0.1:{}", port.trim()),
                    log,
                    _dir: dir,
                };
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the fault proxy did not start");
    }

    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Seeds `registry` with the sample distribution (testdata/distribution.toml) under `root`
/// with skopeo, and returns the `--source` value.
pub fn seed_sample(registry: &Registry, root: &str, extra: &[&str]) -> String {
    let out = run(Command::new(script("seed-source.sh"))
        .arg(&registry.host)
        .arg(root)
        .args(extra));
    let printed = String::from_utf8(out.stdout).unwrap();
    let source = registry.at(root);
    assert!(printed.contains(&format!("FERRY_SOURCE={source}")));
    source
}

/// Writes a layout whose image has one random layer of `mib` MiB (scripts/mkbig.py).
pub fn make_big_layout(dir: &Path, tag: &str, mib: u32) {
    run(Command::new("python3")
        .arg(script("mkbig.py"))
        .arg(dir)
        .arg(tag)
        .arg(mib.to_string()));
}

/// A layout description (layouts/deckhouse.yaml) whose only security database is `repo:tag`:
/// a way to pull one arbitrary image with `--no-platform --no-modules`.
pub fn one_database_layout(dir: &Path, repo: &str, tag: &str) -> PathBuf {
    let text = std::fs::read_to_string(repo_root().join("layouts/deckhouse.yaml")).unwrap();
    let cut = text.find("  databases:").unwrap();
    let path = dir.join("one-db.yaml");
    std::fs::write(
        &path,
        format!(
            "{}  databases:\n    - {{ repo: {repo}, tag: \"{tag}\" }}\n",
            &text[..cut]
        ),
    )
    .unwrap();
    path
}

/// A tmpfs of a fixed size mounted on a fresh directory, unmounted when dropped. The tests
/// run as root (CI does); a mount that fails fails the test.
pub struct Tmpfs {
    pub dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path()));
        Tmpfs { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Names in a directory, sorted.
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Waits until `check` holds, for at most `secs` seconds.
pub fn wait_until(secs: u64, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

/// Rewrites a layout's index.json the way d8 writes it: full source references in `ref.name`,
/// the push tag in `short_tag` (or only `ref.name`), and d8's index media type.
pub fn make_d8_style(layout: &Path, repository: &str, drop_short_tag_of: Option<&str>) {
    let path = layout.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    index["mediaType"] = "application/vnd.oci.image.layout.v1+json".into();
    for descriptor in index["manifests"].as_array_mut().unwrap() {
        let tag = descriptor["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .unwrap()
            .to_string();
        let annotations = descriptor["annotations"].as_object_mut().unwrap();
        annotations.insert(
            "org.opencontainers.image.ref.name".into(),
            format!("registry.example.com:5000/{repository}:{tag}").into(),
        );
        if drop_short_tag_of != Some(tag.as_str()) {
            annotations.insert("io.deckhouse.image.short_tag".into(), tag.into());
        }
    }
    std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
}

/// `ferry push DIR TARGET/PATH` with the target's transport and credentials.
pub fn push_cmd(home: &Path, target: &Registry, dir: &Path, path: &str, args: &[&str]) -> Command {
    let mut cmd = ferry(home);
    cmd.args(["--no-progress", "push"])
        .arg(dir)
        .arg(target.at(path));
    target.ferry_transport(&mut cmd);
    if let (Some(user), Some(password)) = (&target.user, &target.password) {
        cmd.env("FERRY_REGISTRY_LOGIN", user)
            .env("FERRY_REGISTRY_PASSWORD", password);
    }
    cmd.args(args);
    cmd
}

/// `ferry ls --json DIR`, parsed.
pub fn listed(home: &Path, dir: &Path) -> Vec<serde_json::Value> {
    let (code, stdout, stderr) = outcome(ferry(home).args(["ls", "--json"]).arg(dir));
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str::<serde_json::Value>(&stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// The pull → verify invariant: every bundle a pull finishes passes `ferry verify`. Every test
/// that completes a pull calls this on the result; it returns verify's output.
pub fn verified(home: &Path, dir: &Path) -> String {
    let (code, stdout, stderr) = outcome(ferry(home).args(["--no-progress", "verify"]).arg(dir));
    assert_eq!(
        code, 0,
        "ferry verify refused a bundle that ferry pull finished:\n{stdout}\n{stderr}"
    );
    format!("{stdout}{stderr}")
}

/// `ferry pull --no-progress --insecure ARGS`, the bundle directory first in `args`; a pull
/// that finishes is held to the pull → verify invariant at once.
pub fn pull_insecure(home: &Path, args: &[&str]) -> (i32, String, String) {
    let result = outcome(
        ferry(home)
            .args(["--no-progress", "pull", "--insecure"])
            .args(args),
    );
    if result.0 == 0 && !args.contains(&"--dry-run") {
        verified(home, Path::new(args[0]));
    }
    result
}
