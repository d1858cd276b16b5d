//! Helm charts in image sets, from a Helm repository served on 127.0.0.1
//! (`scripts/helm-repo.py`): charts become Helm OCI artifacts with the `.tgz` unchanged; they
//! stream into the bundle with flat memory and count as downloaded; a crafted chart is refused
//! without eating memory; names and versions a bundle could not hold are refused before any
//! chart is downloaded; an interrupted pull continues a chart at its byte, and a chart the
//! repository changed in the meantime is named. Every bundle a pull finishes is verified.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

fn pull(home: &Path, args: &[&str]) -> (i32, String, String) {
    outcome(
        ferry(home)
            .args(["--no-progress", "pull", "--insecure"])
            .args(args),
    )
}

/// `ferry pull DIR --images CONFIG` under GNU time.
fn measured_pull(home: &Path, dir: &Path, config: &Path) -> Measured {
    measured(
        home,
        &[
            "--no-progress",
            "pull",
            dir.to_str().unwrap(),
            "--images",
            config.to_str().unwrap(),
        ],
    )
}

/// The manifest of `path:tag` in a bundle's archive, read from the tar.
fn manifest_in_bundle(home: &Path, dir: &Path, archive: &str, path: &str, tag: &str) -> Value {
    let listed = listed(home, dir);
    let image = listed
        .iter()
        .find(|i| i["path"] == path && i["tag"] == tag)
        .unwrap_or_else(|| panic!("{path}:{tag} is not in {listed:?}"));
    let digest = image["digest"].as_str().unwrap();
    let wanted = format!("{path}/blobs/sha256/{}", &digest[7..]);
    let mut tar = tar::Archive::new(std::fs::File::open(dir.join(archive)).unwrap());
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_str() == Some(wanted.as_str()) {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            return serde_json::from_slice(&bytes).unwrap();
        }
    }
    panic!("{wanted} is not in {archive}");
}

/// `sha256sum FILE`, as `sha256:<hex>`.
fn sha256sum(file: &Path) -> String {
    let out = run(Command::new("sha256sum").arg(file));
    let text = String::from_utf8(out.stdout).unwrap();
    format!("sha256:{}", text.split_whitespace().next().unwrap())
}

/// How the summary writes a byte count (ferry's `human_bytes`).
fn human(n: u64) -> String {
    let mut value = n as f64;
    let mut unit = 0;
    let units = ["B", "kB", "MB", "GB"];
    while value >= 1000.0 && unit < units.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

#[test]
fn helm_charts_become_oci_artifacts_with_the_tgz_unchanged() {
    let helm = HelmRepo::serve(None);
    let made: Vec<(String, Vec<u8>)> = ["15.1.0", "15.2.0", "16.0.0", "14.9.9"]
        .iter()
        .map(|v| (v.to_string(), chart_tgz("nginx", v, 0)))
        .collect();
    let published: Vec<(&str, &str, &[u8])> = made
        .iter()
        .map(|(v, b)| ("nginx", v.as_str(), b.as_slice()))
        .collect();
    helm.publish(&published);

    // The charts example of flux mirror's documentation, its source rewritten to loopback.
    let work = tempfile::tempdir().unwrap();
    let config = charts_file(work.path(), &helm, "nginx", ">=15.0.0 <16.0.0", 5);
    let home = tempfile::tempdir().unwrap();
    let config_arg = config.to_str().unwrap();
    let one = home.path().join("one");
    let (code, stdout, stderr) = pull(
        home.path(),
        &[
            one.to_str().unwrap(),
            "--images",
            config_arg,
            "--dry-run",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    let tags: Vec<&str> = plan["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["path"] == "example/charts/nginx")
        .map(|i| i["tag"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["15.1.0", "15.2.0"]);
    let (code, _, stderr) = pull(
        home.path(),
        &[one.to_str().unwrap(), "--images", config_arg],
    );
    assert_eq!(code, 0, "{stderr}");
    verified(home.path(), &one);

    // The same chart pulled again has the same digest.
    let two = home.path().join("two");
    let (code, _, stderr) = pull(
        home.path(),
        &[two.to_str().unwrap(), "--images", config_arg],
    );
    assert_eq!(code, 0, "{stderr}");
    verified(home.path(), &two);
    let digests = |dir: &Path| -> Vec<String> {
        listed(home.path(), dir)
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
    target.skopeo_copy_to_dir("oci/example/charts/nginx:15.2.0", scratch.path());
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let pulled = std::fs::read(scratch.path().join(&layer[7..])).unwrap();
    assert_eq!(pulled, made[1].1);
    let config_blob = manifest["config"]["digest"].as_str().unwrap();
    let config_json: Value =
        serde_json::from_slice(&std::fs::read(scratch.path().join(&config_blob[7..])).unwrap())
            .unwrap();
    assert_eq!(config_json["name"], "nginx");
    assert_eq!(config_json["version"], "15.2.0");

    // version and limit: only the highest 15.x.
    let narrow = charts_file(work.path(), &helm, "nginx", "15.x", 1);
    let (code, stdout, stderr) = pull(
        home.path(),
        &[
            home.path().join("three").to_str().unwrap(),
            "--images",
            narrow.to_str().unwrap(),
            "--dry-run",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(plan["images"][0]["tag"], "15.2.0");
    assert_eq!(plan["images"].as_array().unwrap().len(), 1);
}

/// A GNU long-name entry claiming 1 GiB (of zeros: about 1 MB gzip-compressed) at the start
/// of a chart, made with gzip as any tool would.
fn long_name_bomb(file: &Path) {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::GNULongName);
    header.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
    header.set_size(1 << 30);
    header.set_mode(0o644);
    header.set_cksum();
    let mut gzip = Command::new("gzip")
        .args(["-1", "-c"])
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(file).unwrap())
        .spawn()
        .unwrap();
    let mut stdin = gzip.stdin.take().unwrap();
    stdin.write_all(header.as_bytes()).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        stdin.write_all(&zeros).unwrap();
    }
    drop(stdin);
    assert!(gzip.wait().unwrap().success());
}

#[test]
fn a_chart_with_a_huge_long_name_is_refused_without_eating_memory() {
    let helm = HelmRepo::serve(None);
    helm.publish(&[("huge", "1.0.0", b"")]);
    let tgz = helm.dir.path().join(helm.file_name("huge", "1.0.0"));
    long_name_bomb(&tgz);
    let size = std::fs::metadata(&tgz).unwrap().len();
    assert!(size < 8 << 20, "the crafted chart is {size} bytes");

    let work = tempfile::tempdir().unwrap();
    let config = charts_file(work.path(), &helm, "huge", "*", 1);
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("bundle");
    let Measured {
        code,
        stderr,
        rss_kib,
        ..
    } = measured_pull(home.path(), &dir, &config);
    assert!(rss_kib < 200 * 1024, "peak RSS {rss_kib} KiB: {stderr}");
    assert_eq!(code, 1, "{stderr}");
    for needle in ["huge", "1.0.0", "huge-1.0.0.tgz", "long name", "64 KiB"] {
        assert!(stderr.contains(needle), "'{needle}' in:\n{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!dir.exists(), "a refused pull leaves nothing behind");
}

#[test]
fn charts_stream_with_flat_memory() {
    const CHARTS: usize = 4;
    const EACH: usize = 40 << 20;
    let helm = HelmRepo::serve(None);
    let versions: Vec<String> = (0..CHARTS).map(|i| format!("1.{i}.0")).collect();
    let made: Vec<Vec<u8>> = versions.iter().map(|v| chart_tgz("big", v, EACH)).collect();
    let published: Vec<(&str, &str, &[u8])> = versions
        .iter()
        .zip(&made)
        .map(|(v, b)| ("big", v.as_str(), b.as_slice()))
        .collect();
    helm.publish(&published);
    let total: u64 = made.iter().map(|b| b.len() as u64).sum();
    drop(made);

    let work = tempfile::tempdir().unwrap();
    let config = charts_file(work.path(), &helm, "big", "*", 0);
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("bundle");
    let Measured {
        code,
        stdout,
        stderr,
        rss_kib,
        ..
    } = measured_pull(home.path(), &dir, &config);
    assert_eq!(code, 0, "{stderr}");
    verified(home.path(), &dir);
    // Memory stays flat: within ferry's 64 MiB goal, whatever the charts weigh (160 MiB here;
    // holding them in memory took about 770 MiB).
    assert!(
        rss_kib < 64 * 1024,
        "peak RSS {rss_kib} KiB for {total} bytes of charts"
    );
    // Every layer is the .tgz the repository served, byte for byte.
    for version in &versions {
        let manifest = manifest_in_bundle(
            home.path(),
            &dir,
            "images-big.tar",
            "example/charts/big",
            version,
        );
        let served = helm.dir.path().join(helm.file_name("big", version));
        assert_eq!(manifest["layers"][0]["digest"], sha256sum(&served));
        assert_eq!(
            manifest["layers"][0]["size"],
            std::fs::metadata(&served).unwrap().len()
        );
    }
    assert!(
        stdout.contains(&format!("downloaded {}", human(total))),
        "{stdout}"
    );
}

#[test]
fn chart_bytes_count_as_downloaded_in_the_summary() {
    let helm = HelmRepo::serve(None);
    let tgz = chart_tgz("app", "2.0.0", 3 << 20);
    helm.publish(&[("app", "2.0.0", &tgz)]);
    let work = tempfile::tempdir().unwrap();
    let config = charts_file(work.path(), &helm, "app", "*", 1);
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("bundle");
    let (code, stdout, stderr) = pull(
        home.path(),
        &[dir.to_str().unwrap(), "--images", config.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{stderr}");
    verified(home.path(), &dir);
    let expected = format!("downloaded {} in", human(tgz.len() as u64));
    assert!(stdout.contains(&expected), "'{expected}' in:\n{stdout}");
}

#[test]
fn a_chart_named_upper_is_refused_at_pull() {
    let helm = HelmRepo::serve(None);
    let tgz = chart_tgz("Upper", "1.0.0", 0);
    helm.publish(&[("Upper", "1.0.0", &tgz)]);
    let work = tempfile::tempdir().unwrap();
    let config = charts_file(work.path(), &helm, "Upper", "*", 1);
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("bundle");
    let (code, _, stderr) = pull(
        home.path(),
        &[dir.to_str().unwrap(), "--images", config.to_str().unwrap()],
    );
    assert_eq!(code, 2, "{stderr}");
    for needle in ["'Upper'", &helm.url, "lowercase"] {
        assert!(stderr.contains(needle), "'{needle}' in:\n{stderr}");
    }
    assert_eq!(
        helm.requests(),
        Vec::<String>::new(),
        "nothing is downloaded"
    );
    assert!(!dir.exists());
}

#[test]
fn an_overlong_chart_version_is_refused_at_pull() {
    let helm = HelmRepo::serve(None);
    let version = format!("1.0.0+{}", "a".repeat(200));
    let tgz = chart_tgz("app", &version, 0);
    helm.publish(&[("app", &version, &tgz)]);
    let work = tempfile::tempdir().unwrap();
    let config = charts_file(work.path(), &helm, "app", "*", 1);
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("bundle");
    let (code, _, stderr) = pull(
        home.path(),
        &[dir.to_str().unwrap(), "--images", config.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{stderr}");
    for needle in ["'app'", "1.0.0+aaaa", &helm.url, "128"] {
        assert!(stderr.contains(needle), "'{needle}' in:\n{stderr}");
    }
    // Only the index was read: no chart of a version that cannot be carried.
    let requests = helm.requests();
    assert!(
        requests.iter().all(|r| r.starts_with("GET /index.yaml ")),
        "{requests:?}"
    );
    assert!(!dir.exists());
}

#[test]
fn a_chart_over_the_size_limit_is_refused_naming_the_flag() {
    let helm = HelmRepo::serve(None);
    let tgz = chart_tgz("app", "1.0.0", 2 << 20);
    helm.publish(&[("app", "1.0.0", &tgz)]);
    let work = tempfile::tempdir().unwrap();
    let config = charts_file(work.path(), &helm, "app", "*", 1);
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("bundle");
    let args = [dir.to_str().unwrap(), "--images", config.to_str().unwrap()];
    let (code, _, stderr) = pull(
        home.path(),
        &[&args[..], &["--chart-size-limit", "1MiB"]].concat(),
    );
    assert_eq!(code, 1, "{stderr}");
    for needle in ["app-1.0.0.tgz", "1.0 MB", "--chart-size-limit"] {
        assert!(stderr.contains(needle), "'{needle}' in:\n{stderr}");
    }
    let (code, _, stderr) = pull(
        home.path(),
        &[&args[..], &["--chart-size-limit", "3MiB"]].concat(),
    );
    assert_eq!(code, 0, "{stderr}");
    verified(home.path(), &dir);
}

/// Starts a pull of `config` into `dir` and kills it (SIGKILL) once the journal says a chart
/// blob has reached a checkpoint.
fn pull_killed_mid_chart(home: &Path, dir: &Path, config: &Path) {
    let mut child = ferry(home)
        .args(["--no-progress", "pull", "--insecure"])
        .arg(dir)
        .arg("--images")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let journal = dir.join(".tmp/ferry-pull/journal");
    let reached = wait_until(120, || {
        std::fs::read_to_string(&journal).is_ok_and(|j| j.lines().any(|l| l.starts_with("at ")))
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(reached, "the pull never reached a checkpoint");
}

#[test]
fn an_interrupted_chart_pull_continues_at_its_byte() {
    // 10 MB/s: the first 16 MiB checkpoint comes after ~2 s of the fill.
    let helm = HelmRepo::serve(Some(10.0));
    let tgz = chart_tgz("big", "1.0.0", 48 << 20);
    helm.publish(&[("big", "1.0.0", &tgz)]);
    let served = helm.dir.path().join(helm.file_name("big", "1.0.0"));
    let work = tempfile::tempdir().unwrap();
    let config = charts_file(work.path(), &helm, "big", "*", 1);
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("bundle");
    pull_killed_mid_chart(home.path(), &dir, &config);

    helm.set_rate(0.0);
    let (code, stdout, stderr) = pull(
        home.path(),
        &[dir.to_str().unwrap(), "--images", config.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("resuming"), "{stderr}");
    assert!(stdout.contains("reused"), "{stdout}");
    // The rerun asked for the rest only.
    let requests = helm.requests();
    let last = requests.last().unwrap();
    assert!(
        last.starts_with("GET /big-1.0.0.tgz bytes=") && last.ends_with(" 206"),
        "{requests:?}"
    );
    verified(home.path(), &dir);
    let manifest = manifest_in_bundle(
        home.path(),
        &dir,
        "images-big.tar",
        "example/charts/big",
        "1.0.0",
    );
    assert_eq!(manifest["layers"][0]["digest"], sha256sum(&served));
}

#[test]
fn a_chart_changed_between_plan_and_fill_is_named() {
    let helm = HelmRepo::serve(None);
    let tgz = chart_tgz("app", "1.0.0", 1 << 20);
    helm.publish(&[("app", "1.0.0", &tgz)]);
    // The repository replaces the file once it has been sent whole: the plan reads the first,
    // the fill gets the second.
    let served = helm.dir.path().join(helm.file_name("app", "1.0.0"));
    let mut other = tgz.clone();
    let last = other.len() - 20;
    other[last] ^= 0xff;
    std::fs::write(served.with_extension("tgz.then"), &other).unwrap();
    let work = tempfile::tempdir().unwrap();
    let config = charts_file(work.path(), &helm, "app", "*", 1);
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("bundle");
    let args = [dir.to_str().unwrap(), "--images", config.to_str().unwrap()];
    let (code, _, stderr) = pull(home.path(), &args);
    assert_eq!(code, 1, "{stderr}");
    let url = format!("{}/app-1.0.0.tgz", helm.url);
    for needle in [url.as_str(), "changed", "--no-pull-resume"] {
        assert!(stderr.contains(needle), "'{needle}' in:\n{stderr}");
    }
    // Planned afresh, the chart as it is now is taken.
    let (code, _, stderr) = pull(home.path(), &[&args[..], &["--no-pull-resume"]].concat());
    assert_eq!(code, 0, "{stderr}");
    verified(home.path(), &dir);
    let manifest = manifest_in_bundle(
        home.path(),
        &dir,
        "images-app.tar",
        "example/charts/app",
        "1.0.0",
    );
    assert_eq!(manifest["layers"][0]["digest"], sha256sum(&served));
}
