//! `ferry pull` end to end against a registry seeded by skopeo with the sample distribution:
//! every bundle is checked by tools that are not ferry (sha256sum, rhash, GNU tar, skopeo) and
//! must list exactly what the dry run planned. Resume, disk-full and bad-input runs too.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use common::*;
use serde_json::Value;

const ROOT: &str = "sample/ee";

fn pull_cmd(home: &Path, source: &str, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = ferry(home);
    cmd.args(["--no-progress", "pull"])
        .arg(dir)
        .args(["--source", source, "--insecure"])
        .args(args);
    cmd
}

fn json_of(cmd: &mut Command) -> Value {
    let (code, stdout, stderr) = outcome(cmd);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// The checks every bundle must pass, with tools other than ferry where they exist.
fn check_bundle(home: &Path, dir: &Path, dry: &Value, gost: bool) {
    // The archives are those the dry run planned, with the sizes it planned.
    let metadata: Value =
        serde_json::from_slice(&std::fs::read(dir.join("bundle.json")).unwrap()).unwrap();
    let planned: Vec<(String, u64, u64)> = dry["archives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_string(),
                a["bytes"].as_u64().unwrap(),
                a["chunks"].as_u64().unwrap(),
            )
        })
        .collect();
    let written: Vec<(String, u64, u64)> = metadata["archives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let files = a["files"].as_array().unwrap();
            let size = files.iter().map(|f| f["size"].as_u64().unwrap()).sum();
            let chunked = files[0]["name"].as_str().unwrap().ends_with(".chunk");
            (
                a["name"].as_str().unwrap().to_string(),
                size,
                if chunked { files.len() as u64 } else { 0 },
            )
        })
        .collect();
    assert_eq!(written, planned, "{}", dir.display());
    for archive in metadata["archives"].as_array().unwrap() {
        for file in archive["files"].as_array().unwrap() {
            let name = file["name"].as_str().unwrap();
            assert_eq!(
                std::fs::metadata(dir.join(name)).unwrap().len(),
                file["size"].as_u64().unwrap()
            );
        }
        assert!(!archive["blobs"].as_array().unwrap().is_empty());
    }

    // What ls lists is what the dry run planned.
    let listed = json_of(ferry(home).arg("ls").arg("--json").arg(dir));
    assert_eq!(listed, dry["images"], "{}", dir.display());

    let mut verify = ferry(home);
    verify.args(["--no-progress", "verify"]).arg(dir);
    if gost {
        verify.arg("--gost");
    }
    ferry_ok(&mut verify);
    run(Command::new("sha256sum")
        .args(["--strict", "--quiet", "-c", "SHA256SUMS"])
        .current_dir(dir));
    if gost {
        let rhash = run(Command::new("rhash")
            .args(["-c", "GOSTSUMS"])
            .current_dir(dir));
        assert!(String::from_utf8_lossy(&rhash.stdout).contains("Everything OK"));
    } else {
        assert!(!dir.join("GOSTSUMS").exists());
    }
    let names = names_in(dir);
    assert!(
        names
            .iter()
            .all(|n| !n.starts_with('.') && !n.ends_with(".ferry-tmp")),
        "nothing but the bundle is left: {names:?}"
    );
    for name in &names {
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.join(name)).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o644, "{name}");
    }
}

/// Joins an archive's files (chunks in order) and extracts it with GNU tar.
fn extract(dir: &Path, archive: &str, into: &Path) {
    let metadata: Value =
        serde_json::from_slice(&std::fs::read(dir.join("bundle.json")).unwrap()).unwrap();
    let record = metadata["archives"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == archive)
        .unwrap();
    let tar = into.join("joined.tar");
    let mut joined = std::fs::File::create(&tar).unwrap();
    for file in record["files"].as_array().unwrap() {
        let mut part = std::fs::File::open(dir.join(file["name"].as_str().unwrap())).unwrap();
        std::io::copy(&mut part, &mut joined).unwrap();
    }
    drop(joined);
    let out = into.join("tree");
    std::fs::create_dir_all(&out).unwrap();
    run(Command::new("tar").arg("-xf").arg(&tar).arg("-C").arg(&out));
}

#[test]
fn bundles_hold_what_the_dry_run_planned_and_pass_independent_checks() {
    let registry = Registry::start("plain");
    let source = seed_sample(&registry, ROOT, &[]);
    let home = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str], bool); 6] = [
        ("default", &[], false),
        ("chunked", &["-c", "200KB", "--gost-digest"], true),
        (
            "filtered",
            &[
                "--no-platform",
                "--no-security-db",
                "-i",
                "console@~1.2.0",
                "-i",
                "metrics",
            ],
            false,
        ),
        ("modules", &["--no-platform", "--no-security-db"], false),
        (
            "tag",
            &[
                "--deckhouse-tag",
                "v1.62.2",
                "--no-modules",
                "--gost-digest",
            ],
            true,
        ),
        (
            "since",
            &["--since-version", "1.59.0", "--no-modules", "-c", "50KB"],
            false,
        ),
    ];
    for (name, args, gost) in cases {
        let dir = home.path().join(name);
        let dry = json_of(&mut pull_cmd(
            home.path(),
            &source,
            &dir,
            &[args, &["--dry-run", "--json"][..]].concat(),
        ));
        assert!(!dir.exists(), "a dry run writes nothing");
        let stdout = {
            let (code, stdout, stderr) = outcome(&mut pull_cmd(home.path(), &source, &dir, args));
            assert_eq!(code, 0, "{name}: {stderr}");
            stdout
        };
        assert!(
            stdout.contains(&format!(
                "pulled {} tags",
                dry["images"].as_array().unwrap().len()
            )),
            "{name}: {stdout}"
        );
        check_bundle(home.path(), &dir, &dry, gost);
    }

    // An extracted archive is a set of layouts skopeo reads, with the source's exact bytes.
    for (case, archive, layout, tag, reference) in [
        (
            "default",
            "platform.tar",
            "install",
            "stable",
            "install:stable",
        ),
        ("chunked", "platform.tar", "", "v1.62.2", ":v1.62.2"),
        (
            "modules",
            "module-console.tar",
            "modules/console",
            "v1.2.0",
            "modules/console:v1.2.0",
        ),
    ] {
        let scratch = tempfile::tempdir().unwrap();
        extract(&home.path().join(case), archive, scratch.path());
        let path = scratch.path().join("tree").join(layout);
        let raw = layout_raw_manifest(&path, tag);
        let repo = if reference.starts_with(':') {
            format!("{ROOT}{reference}")
        } else {
            format!("{ROOT}/{reference}")
        };
        assert_eq!(raw, registry.raw_manifest(&repo), "{case} {reference}");
        skopeo_verifies_layout(&path, tag);
    }
}

/// A registry with one image of one big random layer, named as a security database so that a
/// layout file can pull it alone.
struct BigSource {
    registry: Registry,
    layout_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl BigSource {
    fn new(mib: u32) -> BigSource {
        let registry = Registry::start("plain");
        let dir = tempfile::tempdir().unwrap();
        make_big_layout(&dir.path().join("layout"), "v1", mib);
        registry.seed(&dir.path().join("layout"), "v1", "big/ee/security/big:1");
        let layout_file = one_database_layout(dir.path(), "security/big", "1");
        BigSource {
            registry,
            layout_file,
            _dir: dir,
        }
    }

    fn pull(&self, home: &Path, host: &str, dir: &Path) -> Command {
        pull_cmd(
            home,
            &format!("{host}/big/ee"),
            dir,
            &[
                "--no-platform",
                "--no-modules",
                "--layout",
                self.layout_file.to_str().unwrap(),
            ],
        )
    }
}

fn journal_offsets(dir: &Path) -> Vec<u64> {
    std::fs::read_to_string(dir.join(".tmp/ferry-pull/journal"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("at "))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect()
}

fn kill_when(mut child: Child, dir: &Path, ready: impl Fn(&Path) -> bool) {
    let reached = wait_until(60, || ready(dir));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(reached, "the pull never got far enough to be cut");
}

#[test]
fn a_pull_killed_mid_blob_resumes_at_the_journaled_byte() {
    let big = BigSource::new(200);
    let proxy = FaultProxy::start(&big.registry, &["--rate", "40"]);
    let home = tempfile::tempdir().unwrap();

    let whole = home.path().join("whole");
    // With GOST sums, so that verifying it takes long enough to be interrupted below.
    ferry_ok(
        big.pull(home.path(), &big.registry.host, &whole)
            .arg("--gost-digest"),
    );
    verified(home.path(), &whole);

    // Ctrl-C first: exit 130 at once, nothing under a final name.
    let cut = home.path().join("cut");
    let child = big
        .pull(home.path(), &proxy.host, &cut)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_until(60, || !journal_offsets(&cut).is_empty()));
    let stderr = interrupt(child, std::time::Duration::from_secs(3));
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(!cut.join("security.tar").exists());

    // Then kill -9, further on.
    let child = big.pull(home.path(), &proxy.host, &cut).spawn().unwrap();
    kill_when(child, &cut, |dir| journal_offsets(dir).len() >= 3);
    assert!(
        !cut.join("security.tar").exists() && !cut.join("bundle.json").exists(),
        "kill -9 left a file with a final name: {:?}",
        names_in(&cut)
    );
    let offsets = journal_offsets(&cut);
    let resumed_at = *offsets.last().unwrap();
    std::fs::copy(
        cut.join(".tmp/ferry-pull/journal"),
        home.path().join("journal.txt"),
    )
    .unwrap();
    assert!(resumed_at > 0 && resumed_at < 200 << 20);

    let before = proxy.requests().len();
    let (code, stdout, stderr) = outcome(&mut big.pull(home.path(), &proxy.host, &cut));
    assert_eq!(code, 0, "{stderr}");
    verified(home.path(), &cut);
    assert!(stderr.contains("resuming the pull started"), "{stderr}");
    assert!(stdout.contains("reused"), "{stdout}");
    // The rerun asked only for the rest of the layer, from the journaled byte.
    let journal = std::fs::read_to_string(home.path().join("journal.txt")).unwrap();
    let layer = journal
        .lines()
        .filter_map(|l| l.strip_prefix("at "))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .next_back()
        .unwrap();
    let rerun: Vec<String> = proxy.requests()[before..]
        .iter()
        .filter(|r| r.contains(&layer))
        .cloned()
        .collect();
    assert_eq!(rerun.len(), 1, "{rerun:?}");
    assert!(
        rerun[0].contains(&format!("bytes={resumed_at}- 206")),
        "{rerun:?} (journal: {offsets:?})"
    );
    // Byte for byte the bundle of an uninterrupted pull.
    assert_eq!(
        std::fs::read(cut.join("security.tar")).unwrap(),
        std::fs::read(whole.join("security.tar")).unwrap()
    );
    assert_eq!(
        std::fs::read(cut.join("SHA256SUMS")).unwrap(),
        std::fs::read(whole.join("SHA256SUMS")).unwrap()
    );

    // Ctrl-C stops a verify at once, not when the hashing is done.
    let child = ferry(home.path())
        .args(["--no-progress", "verify", "--gost"])
        .arg(&whole)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    interrupt(child, std::time::Duration::from_millis(800));
}

/// Sends Ctrl-C (SIGINT) to a child with a piped stderr; it must exit with 130 within `within`.
/// Returns its stderr.
fn interrupt(child: Child, within: std::time::Duration) -> String {
    let sent = std::time::Instant::now();
    run(Command::new("kill").args(["-INT", &child.id().to_string()]));
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(sent.elapsed() < within, "{:?} after Ctrl-C", sent.elapsed());
    stderr
}

#[test]
fn a_changed_chunk_size_reuses_finished_blobs_without_fetching_them_again() {
    let registry = Registry::start("plain");
    seed_sample(&registry, ROOT, &[]);
    let proxy = FaultProxy::start(&registry, &["--rate", "0.01"]);
    let home = tempfile::tempdir().unwrap();
    let source = format!("{}/{ROOT}", proxy.host);
    let args = ["--no-modules", "--gost-digest"];

    let dir = home.path().join("bundle");
    let child = pull_cmd(home.path(), &source, &dir, &args).spawn().unwrap();
    let done = |dir: &Path| {
        std::fs::read_to_string(dir.join(".tmp/ferry-pull/journal"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("done "))
            .count()
    };
    kill_when(child, &dir, |d| done(d) >= 20);
    let journal = std::fs::read_to_string(dir.join(".tmp/ferry-pull/journal")).unwrap();
    let finished: Vec<String> = journal
        .lines()
        .filter_map(|l| l.strip_prefix("done "))
        .map(str::to_string)
        .collect();

    let before = proxy.requests().len();
    let rechunked = [&args[..], &["-c", "20KB"]].concat();
    let (code, stdout, stderr) = outcome(&mut pull_cmd(home.path(), &source, &dir, &rechunked));
    assert_eq!(code, 0, "{stderr}");
    verified(home.path(), &dir);
    assert!(stderr.contains("copied into the new layout"), "{stderr}");
    assert!(
        stdout.contains("copied from the earlier layout"),
        "{stdout}"
    );
    let fetched_again: Vec<String> = proxy.requests()[before..]
        .iter()
        .filter(|r| finished.iter().any(|d| r.contains(d.as_str())))
        .cloned()
        .collect();
    assert!(fetched_again.is_empty(), "{fetched_again:?}");

    // The same bundle as a pull made with -c 20KB from the start.
    let fresh = home.path().join("fresh");
    ferry_ok(&mut pull_cmd(
        home.path(),
        &registry.at(ROOT),
        &fresh,
        &rechunked,
    ));
    assert_eq!(
        std::fs::read(dir.join("SHA256SUMS")).unwrap(),
        std::fs::read(fresh.join("SHA256SUMS")).unwrap()
    );
    assert_eq!(
        std::fs::read(dir.join("GOSTSUMS")).unwrap(),
        std::fs::read(fresh.join("GOSTSUMS")).unwrap()
    );
}

#[test]
fn a_full_disk_is_refused_up_front_or_fails_cleanly_and_then_resumes() {
    let home = tempfile::tempdir().unwrap();

    // Too small from the start: refused before the first blob, with both numbers.
    let registry = Registry::start("plain");
    let source = seed_sample(&registry, ROOT, &[]);
    let small = Tmpfs::mount("100k");
    let dir = small.path().join("bundle");
    let (code, _, stderr) = outcome(&mut pull_cmd(home.path(), &source, &dir, &[]));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("not enough free space") && stderr.contains("free, the pull needs"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint:") && stderr.contains("--tmp-dir"),
        "{stderr}"
    );
    assert!(!dir.exists(), "a refused pull leaves nothing behind");

    // Space that runs out mid-run: a clear error, nothing under a final name; freeing the
    // space and running again finishes the bundle.
    let big = BigSource::new(120);
    let proxy = FaultProxy::start(&big.registry, &["--rate", "30"]);
    let disk = Tmpfs::mount("160m");
    let dir = disk.path().join("bundle");
    let child = big
        .pull(home.path(), &proxy.host, &dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_until(60, || !journal_offsets(&dir).is_empty()));
    let filler = disk.path().join("filler");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![1u8; 1 << 20];
        while file.write_all(&block).is_ok() {}
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("No space left") && stderr.contains("hint: the disk is full"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !dir.join("security.tar").exists() && !dir.join("bundle.json").exists(),
        "{:?}",
        names_in(&dir)
    );
    std::fs::remove_file(&filler).unwrap();
    let (code, stdout, stderr) = outcome(&mut big.pull(home.path(), &proxy.host, &dir));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("reused"), "{stdout}");
    verified(home.path(), &dir);
}

#[test]
fn bad_input_ends_in_a_short_error() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("bundle");
    let short = |code: i32, expected: i32, stderr: &str, needles: &[&str]| {
        assert_eq!(code, expected, "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(stderr.lines().count() <= 8, "too long:\n{stderr}");
        for needle in needles {
            assert!(stderr.contains(needle), "'{needle}' in:\n{stderr}");
        }
    };

    for (chunk, needle) in [
        ("-1", "less than zero"),
        ("0.0000001", "tar block"),
        ("nan", "not a number"),
    ] {
        let (code, _, stderr) = outcome(&mut pull_cmd(
            home.path(),
            "127.0.0.1:9/x",
            &dir,
            &["-c", chunk],
        ));
        short(code, 2, &stderr, &[needle]);
    }
    assert!(!dir.exists(), "usage errors touch nothing");

    let (code, _, stderr) = outcome(&mut pull_cmd(home.path(), "127.0.0.1:1/x/y", &dir, &[]));
    short(code, 1, &stderr, &["cannot reach 127.0.0.1:1"]);

    let registry = Registry::start("basic");
    let password = "NotTheP4ssw0rd";
    let (code, stdout, stderr) =
        outcome(pull_cmd(home.path(), &registry.at(ROOT), &dir, &[]).args([
            "--source-login",
            "ferry",
            "--source-password",
            password,
        ]));
    short(code, 1, &stderr, &["authentication failed", "hint:"]);
    assert!(!stderr.contains(password) && !stdout.contains(password));

    let plain = Registry::start("plain");
    let source = seed_sample(&plain, ROOT, &[]);
    let (code, _, stderr) = outcome(&mut pull_cmd(
        home.path(),
        &source,
        &dir,
        &["--no-platform", "--no-modules", "--no-security-db"],
    ));
    short(code, 1, &stderr, &["nothing to take"]);

    let busy = home.path().join("busy");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), "mine").unwrap();
    let (code, _, stderr) = outcome(&mut pull_cmd(home.path(), &source, &busy, &[]));
    short(code, 1, &stderr, &["is not empty", "notes.txt", "--force"]);
    assert_eq!(
        names_in(&busy),
        ["notes.txt"],
        "a refused pull leaves nothing behind"
    );

    // With --force the bundle goes beside the unrelated files, which stay, even those whose
    // names look like ferry's temporary files; what a crashed ferry left is removed.
    let users = [
        "platform.tar my draft.ferry-tmp",
        "platform.tarball.ferry-tmp",
    ];
    let leftovers = [
        "platform.tar.ferry-tmp",
        "platform.tar.0007.chunk.ferry-tmp",
        "platform.tar.gostsum.ferry-tmp",
    ];
    for name in users.iter().chain(&leftovers) {
        std::fs::write(busy.join(name), "x").unwrap();
    }
    ferry_ok(&mut pull_cmd(
        home.path(),
        &source,
        &busy,
        &["--force", "--no-modules"],
    ));
    verified(home.path(), &busy);
    assert!(busy.join("notes.txt").exists() && busy.join("bundle.json").exists());
    for name in users {
        assert!(busy.join(name).exists(), "{name} is the user's");
    }
    for name in leftovers {
        assert!(!busy.join(name).exists(), "{name} is ferry's leftover");
    }
}
