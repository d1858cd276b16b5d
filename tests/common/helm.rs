//! A Helm repository on 127.0.0.1 (`scripts/helm-repo.py`) and charts made for it, for the
//! chart tests.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use super::{repo_root, wait_until};

/// A Helm repository on 127.0.0.1 serving the files of its directory.
pub struct HelmRepo {
    child: Child,
    /// The directory served.
    pub dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    log: PathBuf,
    _state: tempfile::TempDir,
}

impl HelmRepo {
    /// Serves a new, empty directory; `rate` (MB/s) slows every body down.
    pub fn serve(rate: Option<f64>) -> HelmRepo {
        let dir = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let port_file = state.path().join("port");
        let log = state.path().join("requests.log");
        let mut cmd = Command::new("python3");
        cmd.arg(repo_root().join("scripts/helm-repo.py"))
            .arg(dir.path())
            .arg("--port-file")
            .arg(&port_file)
            .arg("--log")
            .arg(&log);
        if let Some(rate) = rate {
            cmd.args(["--rate", &rate.to_string()]);
        }
        let child = cmd.spawn().unwrap();
        assert!(wait_until(10, || port_file.exists()));
        let port = std::fs::read_to_string(&port_file).unwrap();
        HelmRepo {
            child,
            dir,
            url: format!("http://127.0.0.1:{}", port.trim()),
            log,
            _state: state,
        }
    }

    /// Writes chart files and an `index.yaml` listing them: (name, version, bytes).
    pub fn publish(&self, charts: &[(&str, &str, &[u8])]) {
        let mut index = String::from("apiVersion: v1\nentries:\n");
        let mut names: Vec<&str> = charts.iter().map(|c| c.0).collect();
        names.dedup();
        for name in names {
            index.push_str(&format!("  {name}:\n"));
            for (_, version, bytes) in charts.iter().filter(|c| c.0 == name) {
                let file = self.file_name(name, version);
                std::fs::write(self.dir.path().join(&file), bytes).unwrap();
                index.push_str(&format!(
                    "  - name: {name}\n    version: \"{version}\"\n    urls:\n    - {file}\n"
                ));
            }
        }
        std::fs::write(self.dir.path().join("index.yaml"), index).unwrap();
    }

    /// The chart file of a version (long versions get a short file name).
    pub fn file_name(&self, name: &str, version: &str) -> String {
        let short: String = version.chars().take(20).collect();
        format!("{name}-{short}.tgz")
    }

    /// The requests served, as `GET <path> <Range or -> <status>`.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Sets the speed of bodies from now on (MB/s; 0 = full speed).
    pub fn set_rate(&self, rate: f64) {
        std::fs::write(self.dir.path().join("rate"), rate.to_string()).unwrap();
    }
}

impl Drop for HelmRepo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A chart's .tgz as `helm package` makes it: `<name>/Chart.yaml` first, then a template and
/// `extra_bytes` of incompressible data (stored, not deflated: making it stays fast).
pub fn chart_tgz(name: &str, version: &str, extra_bytes: usize) -> Vec<u8> {
    let mut files = vec![
        (
            format!("{name}/Chart.yaml"),
            format!("apiVersion: v2\nname: {name}\nversion: {version}\ndescription: test chart\n")
                .into_bytes(),
        ),
        (
            format!("{name}/templates/cm.yaml"),
            format!("kind: ConfigMap\nmetadata:\n  name: {name}\n").into_bytes(),
        ),
    ];
    if extra_bytes > 0 {
        files.push((
            format!("{name}/files/blob.bin"),
            noise(extra_bytes, version),
        ));
    }
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, path, data.as_slice()).unwrap();
    }
    let raw = tar.into_inner().unwrap();
    let level = if extra_bytes > 0 {
        flate2::Compression::none()
    } else {
        flate2::Compression::default()
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), level);
    gz.write_all(&raw).unwrap();
    gz.finish().unwrap()
}

/// `len` pseudo-random bytes, different for every seed.
pub fn noise(len: usize, seed: &str) -> Vec<u8> {
    let mut state = seed.bytes().fold(0x9e37_79b9_7f4a_7c15u64, |s, b| {
        (s ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    }) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// An image set taking `chart` from `repo` into `example/charts/<chart>`.
pub fn charts_file(dir: &Path, repo: &HelmRepo, chart: &str, version: &str, limit: u32) -> PathBuf {
    let path = dir.join(format!("{}.yaml", chart.to_lowercase()));
    std::fs::write(
        &path,
        format!(
            "apiVersion: mirror.plugin.fluxcd.io/v1beta1\nkind: Config\ncharts:\n  - name: {chart}\n    source: {}\n    destination: oci://quay.io/example/charts\n    version: \"{version}\"\n    limit: {limit}\n",
            repo.url
        ),
    )
    .unwrap();
    path
}
