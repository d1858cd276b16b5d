//! Test bench shared by the integration tests: real registries started by
//! `scripts/dev-registry.sh`, layouts written by `scripts/mkoci.py`, skopeo as the independent
//! client, and the `ferry` binary run as a user runs it.
#![allow(dead_code)] // each test binary uses its own part of the bench

mod artifacts;
mod bundles;
mod fuzz;
mod helm;
mod pack;
mod registry;
mod serve;
mod signing;

#[allow(unused_imports)] // each test binary uses its own part of the bench
pub use artifacts::*;
#[allow(unused_imports)]
pub use bundles::*;
#[allow(unused_imports)]
pub use fuzz::*;
#[allow(unused_imports)]
pub use helm::*;
#[allow(unused_imports)]
pub use pack::*;
#[allow(unused_imports)]
pub use registry::*;
#[allow(unused_imports)]
pub use serve::*;
#[allow(unused_imports)]
pub use signing::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn script(name: &str) -> PathBuf {
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
    isolated(Command::new(env!("CARGO_BIN_EXE_ferry")), home)
}

/// `ferry` run by `wrapper` (e.g. strace and its options), isolated as [`ferry`] is.
pub fn ferry_under(home: &Path, wrapper: &[&str]) -> Command {
    let mut cmd = Command::new(wrapper[0]);
    cmd.args(&wrapper[1..]).arg(env!("CARGO_BIN_EXE_ferry"));
    isolated(cmd, home)
}

fn isolated(mut cmd: Command, home: &Path) -> Command {
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

/// What a ferry run measured by GNU time gave.
#[derive(Debug)]
pub struct Measured {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Peak resident memory, KiB.
    pub rss_kib: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Runs ferry (isolated as [`ferry`] does) under `/usr/bin/time` for its peak memory and time.
pub fn measured(home: &Path, args: &[&str]) -> Measured {
    let stats = home.join("time.out");
    let inner = ferry(home);
    let mut cmd = Command::new("/usr/bin/time");
    cmd.args(["-f", "%M %e", "-o"])
        .arg(&stats)
        .arg(inner.get_program());
    for (key, value) in inner.get_envs() {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    cmd.args(args);
    let (code, stdout, stderr) = outcome(&mut cmd);
    // GNU time writes "Command exited with non-zero status N" first when it fails.
    let text = std::fs::read_to_string(&stats).unwrap();
    let last = text.lines().last().unwrap().to_string();
    let (rss, secs) = last.split_once(' ').unwrap();
    Measured {
        code,
        stdout,
        stderr,
        rss_kib: rss.parse().unwrap(),
        seconds: secs.parse().unwrap(),
    }
}

/// `ferry verify DIR EXTRA…`: (exit code, stdout and stderr together).
pub fn verify_output(dir: &Path, extra: &[&str]) -> (i32, String) {
    let home = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = outcome(
        ferry(home.path())
            .args(["--no-progress", "verify"])
            .arg(dir)
            .args(extra),
    );
    (code, format!("{stdout}{stderr}"))
}

/// `ferry ls --json DIR`, parsed whole.
pub fn ls_json(dir: &Path) -> serde_json::Value {
    let home = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = outcome(ferry(home.path()).arg("ls").arg("--json").arg(dir));
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

/// `ferry pull -q --insecure --dry-run` of `root` at `registry` with `args`, into `home/bundle`:
/// (exit code, stdout, stderr).
pub fn run_plan(
    registry: &Registry,
    root: &str,
    home: &Path,
    args: &[&str],
) -> (i32, String, String) {
    let mut cmd = ferry(home);
    cmd.args(["pull", "-q"])
        .arg(home.join("bundle"))
        .arg("--source")
        .arg(registry.at(root))
        .args(["--insecure", "--dry-run"])
        .args(args);
    outcome(&mut cmd)
}

/// SHA-256 of `bytes` in hex, by coreutils' sha256sum, not by ferry's own hasher.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    let out = run(Command::new("sha256sum").arg(file.path()));
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}
