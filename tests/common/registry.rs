//! Real registries for the tests: the distribution registry in its variants, a fault proxy in
//! front of one, the sample distribution seeded into one, and skopeo reading them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use super::{outcome, run, script};

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
    /// checked) from this registry into the layout `dir` under `tag`.
    pub fn skopeo_copy_out(&self, reference: &str, dir: &Path, tag: &str) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "-q", "--all", "--preserve-digests"]);
        cmd.args(self.skopeo_args("src"));
        cmd.arg(format!("docker://{}", self.at(reference)));
        cmd.arg(format!("oci:{}:{tag}", dir.display()));
        run(&mut cmd);
    }

    /// skopeo reads `reference` whole, every blob checked against its digest.
    pub fn skopeo_verifies(&self, reference: &str) {
        let scratch = tempfile::tempdir().unwrap();
        self.skopeo_copy_out(reference, scratch.path(), "x");
    }

    /// skopeo copies `reference` (one platform, as `docker pull` would) into a `dir:`
    /// directory: `manifest.json` and a file per blob named by its hex digest.
    pub fn skopeo_copy_to_dir(&self, reference: &str, dir: &Path) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "-q"]);
        cmd.args(self.skopeo_args("src"));
        cmd.arg(format!("docker://{}", self.at(reference)));
        cmd.arg(format!("dir:{}", dir.display()));
        run(&mut cmd);
    }

    /// skopeo finds no manifest at `reference`.
    pub fn lacks(&self, reference: &str) -> bool {
        let mut cmd = Command::new("skopeo");
        cmd.arg("inspect").arg("--raw");
        for a in self.skopeo_args("src") {
            cmd.arg(a.replace("--src-", "--"));
        }
        cmd.arg(format!("docker://{}", self.at(reference)));
        let (code, _, stderr) = outcome(&mut cmd);
        code != 0 && (stderr.contains("manifest unknown") || stderr.contains("not found"))
    }

    /// The tags skopeo lists in `repository`.
    pub fn skopeo_tags(&self, repository: &str) -> std::collections::BTreeSet<String> {
        let mut cmd = Command::new("skopeo");
        cmd.arg("list-tags");
        for a in self.skopeo_args("src") {
            cmd.arg(a.replace("--src-", "--"));
        }
        cmd.arg(format!("docker://{}", self.at(repository)));
        let listed: serde_json::Value = serde_json::from_slice(&run(&mut cmd).stdout).unwrap();
        listed["Tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect()
    }

    /// Points `to` at what `from` is, inside this registry, with skopeo.
    pub fn skopeo_retag(&self, from: &str, to: &str) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "-q", "--all", "--preserve-digests"]);
        cmd.args(self.skopeo_args("src"));
        cmd.args(self.skopeo_args("dest"));
        cmd.arg(format!("docker://{}", self.at(from)));
        cmd.arg(format!("docker://{}", self.at(to)));
        run(&mut cmd);
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

/// Seeds `source` with `db/big:1`, one random layer of `mib` MiB (a layout made under `work`),
/// and writes `work/set.yaml` taking it; returns the set's path.
pub fn seed_big_image(source: &Registry, work: &Path, mib: u32) -> PathBuf {
    let big = work.join("big");
    super::make_big_layout(&big, "1", mib);
    source.seed(&big, "1", "db/big:1");
    let set = work.join("set.yaml");
    big_image_set(&set, source, false);
    set
}

/// Writes an image set taking `db/big:1` from `source`, and with `copy` the same image a second
/// time to `mirror.example/copies/big`.
pub fn big_image_set(path: &Path, source: &Registry, copy: bool) {
    let mut text = format!(
        "apiVersion: ferry/v1\nkind: ImageSet\nartifacts:\n  - source: {}\n    tags: ['1']\n",
        source.at("db/big")
    );
    if copy {
        text.push_str(&format!(
            "  - source: {}\n    destination: mirror.example/copies/big\n    tags: ['1']\n",
            source.at("db/big")
        ));
    }
    std::fs::write(path, text).unwrap();
}
