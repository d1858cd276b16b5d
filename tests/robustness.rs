//! Randomized robustness of every reader of untrusted input: `bundle.json`, the tar headers and
//! chunks, the layouts' `index.json` and manifests, image set files, and the pull's own state
//! and journal. Each test makes a small valid input, then many seeded mutations of it (byte
//! flips, truncations, huge numbers, odd names) and runs the real binary on each: it must end
//! within a bounded time, never panic, exit 0 or 1 (2 for a file given on the command line that
//! is not usable, as for any bad argument) with a message, and write nothing outside the bundle.
//!
//! `FERRY_FUZZ_CASES=N` runs N cases per reader instead of the default few dozen;
//! `FERRY_FUZZ_SEED=S` starts from another seed. A failure names the seed and case to replay.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

/// Runs verify, ls and push (to `target`) on a mutated bundle; none may write anywhere.
fn read_everywhere(label: &str, sandbox: &Sandbox, target: &Registry, case: usize) {
    let before = snapshot(sandbox.root.path(), Path::new("/nonexistent"));
    let home = sandbox.home();
    let bundle = sandbox.bundle();
    let mut verify = ferry(&home);
    verify
        .args(["--no-progress", "verify", "--gost"])
        .arg(&bundle);
    judge(
        &format!("{label} verify"),
        bounded(&mut verify, LIMIT),
        &[0, 1],
    );
    let mut ls = ferry(&home);
    ls.args(["ls", "--json"]).arg(&bundle);
    judge(&format!("{label} ls"), bounded(&mut ls, LIMIT), &[0, 1]);
    let mut push = push_cmd(&home, target, &bundle, &format!("case{case}"), &[]);
    judge(&format!("{label} push"), bounded(&mut push, LIMIT), &[0, 1]);
    assert_eq!(
        snapshot(sandbox.root.path(), Path::new("/nonexistent")),
        before,
        "{label}: a reader wrote or removed a file"
    );
}

/// A small valid bundle as pull seals it: a root layout with an image, an index and an
/// artifact, a nested layout, chunks of 3000 bytes, GOST sums.
fn valid_bundle(dir: &Path) {
    use ferry::bundle::pack::{PackOptions, layout_entries};
    let layouts = tempfile::tempdir().unwrap();
    let small = ["--layer-size", "1500", "--layers", "1"];
    for (i, kind) in KINDS.iter().enumerate() {
        let seed = (i + 30).to_string();
        make_layout(
            layouts.path(),
            kind,
            kind,
            &[&small[..], &["--seed", &seed]].concat(),
        );
    }
    let nested = layouts.path().join("sub/app");
    make_layout(
        &nested,
        "v1",
        "image",
        &[&small[..], &["--seed", "40"]].concat(),
    );
    let records = pack_archives(
        dir,
        vec![(
            "platform.tar".into(),
            layout_entries(layouts.path(), "").unwrap(),
        )],
        &PackOptions {
            chunk_size: 3000,
            gost: true,
            force: false,
        },
    )
    .unwrap();
    seal_bundle(dir, records);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for item in std::fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        let target = to.join(item.file_name());
        if item.file_type().unwrap().is_dir() {
            copy_dir(&item.path(), &target);
        } else {
            std::fs::copy(item.path(), &target).unwrap();
        }
    }
}

#[test]
fn mutated_bundle_json_never_panics_hangs_or_writes() {
    let target = Registry::start("plain");
    let base = tempfile::tempdir().unwrap();
    valid_bundle(base.path());
    let original: Value =
        serde_json::from_slice(&std::fs::read(base.path().join("bundle.json")).unwrap()).unwrap();
    let mut rng = Rng(seed() ^ 1);
    for case in 0..cases(60) {
        let sandbox = Sandbox::new();
        copy_dir(base.path(), &sandbox.bundle());
        let path = sandbox.bundle().join("bundle.json");
        if rng.below(3) == 0 {
            let mut bytes = std::fs::read(&path).unwrap();
            mutate_bytes(&mut bytes, &mut rng);
            std::fs::write(&path, bytes).unwrap();
        } else {
            let mut value = original.clone();
            for _ in 0..=rng.below(3) {
                mutate_json(&mut value, &mut rng);
            }
            std::fs::write(&path, serde_json::to_vec(&value).unwrap()).unwrap();
        }
        let label = format!("FERRY_FUZZ_SEED={} case {case} (bundle.json)", seed());
        read_everywhere(&label, &sandbox, &target, case);
    }
}

#[test]
fn mutated_archive_files_never_panic_hang_or_write() {
    let target = Registry::start("plain");
    let base = tempfile::tempdir().unwrap();
    valid_bundle(base.path());
    let chunks: Vec<String> = names_in(base.path())
        .into_iter()
        .filter(|n| n.ends_with(".chunk"))
        .collect();
    assert!(chunks.len() > 5, "{chunks:?}");
    let mut rng = Rng(seed() ^ 2);
    for case in 0..cases(60) {
        let sandbox = Sandbox::new();
        copy_dir(base.path(), &sandbox.bundle());
        let bundle = sandbox.bundle();
        // Without bundle.json the tar itself is all there is to go by (a d8 bundle).
        if rng.below(2) == 0 {
            for name in ["bundle.json", "SHA256SUMS", "GOSTSUMS"] {
                std::fs::remove_file(bundle.join(name)).unwrap();
            }
        }
        let chunk = bundle.join(rng.pick(&chunks));
        let mut bytes = std::fs::read(&chunk).unwrap();
        match rng.below(5) {
            // A header's size field: octal digits, or a base-256 number, of any size.
            0 => {
                let block = rng.below(bytes.len() / 512) * 512;
                let field = if rng.below(2) == 0 {
                    b"77777777777\0".to_vec()
                } else {
                    let mut f = vec![0x80u8];
                    f.extend((0..11).map(|_| rng.next() as u8));
                    f
                };
                if block + 136 <= bytes.len() {
                    bytes[block + 124..block + 136].copy_from_slice(&field);
                }
            }
            1 => std::fs::remove_file(&chunk).unwrap(),
            2 => {
                let other = bundle.join(rng.pick(&chunks));
                bytes = std::fs::read(other).unwrap();
            }
            _ => mutate_bytes(&mut bytes, &mut rng),
        }
        if chunk.exists() {
            std::fs::write(&chunk, bytes).unwrap();
        }
        let label = format!("FERRY_FUZZ_SEED={} case {case} (archive files)", seed());
        read_everywhere(&label, &sandbox, &target, case);
    }
}

/// index.json and manifests inside the archives, mutated and packed by GNU tar (so ferry's own
/// writer cannot have refused them); half of the manifests are put back under their new digest,
/// so the mutation reaches the readers past the digest check.
#[test]
fn mutated_layouts_never_panic_hang_or_write() {
    let target = Registry::start("plain");
    let layouts = tempfile::tempdir().unwrap();
    for (i, kind) in KINDS.iter().enumerate() {
        let seed = (i + 50).to_string();
        make_layout(
            layouts.path(),
            kind,
            kind,
            &["--layer-size", "800", "--layers", "1", "--seed", &seed],
        );
    }
    let mut rng = Rng(seed() ^ 3);
    for case in 0..cases(60) {
        let sandbox = Sandbox::new();
        let tree = sandbox.root.path().join("tree");
        copy_dir(layouts.path(), &tree);
        let index_path = tree.join("index.json");
        let mut index: Value =
            serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
        if rng.below(3) == 0 {
            mutate_json(&mut index, &mut rng);
        } else {
            let manifests = index["manifests"].as_array().unwrap().clone();
            let pick = rng.below(manifests.len());
            let digest = manifests[pick]["digest"].as_str().unwrap().to_string();
            let path = tree
                .join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:"));
            let mut manifest: Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            for _ in 0..=rng.below(2) {
                mutate_json(&mut manifest, &mut rng);
            }
            let bytes = serde_json::to_vec(&manifest).unwrap();
            if rng.below(2) == 0 {
                std::fs::write(&path, &bytes).unwrap();
            } else {
                let new = ferry::digest::Digest::of(&bytes);
                std::fs::write(tree.join("blobs/sha256").join(new.hex()), &bytes).unwrap();
                index["manifests"][pick]["digest"] = new.to_string().into();
                index["manifests"][pick]["size"] = bytes.len().into();
            }
        }
        std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
        std::fs::create_dir(sandbox.bundle()).unwrap();
        run(Command::new("tar")
            .args(["--format=gnu", "-cf"])
            .arg(sandbox.bundle().join("platform.tar"))
            .arg("-C")
            .arg(&tree)
            .arg("."));
        std::fs::remove_dir_all(&tree).unwrap();
        let label = format!("FERRY_FUZZ_SEED={} case {case} (layouts)", seed());
        read_everywhere(&label, &sandbox, &target, case);
    }
}

#[test]
fn mutated_image_sets_never_panic_hang_or_write() {
    let source = Registry::start("plain");
    let layout = tempfile::tempdir().unwrap();
    make_layout(layout.path(), "1.2.0", "image", &["--layer-size", "500"]);
    source.seed(layout.path(), "1.2.0", "apps/x:1.2.0");
    source.seed(layout.path(), "1.2.0", "apps/x:1.3.0-rc1");
    let host = &source.host;
    let valid = format!(
        "apiVersion: mirror.plugin.fluxcd.io/v1beta1\nkind: Config\nartifacts:\n  \
         - source: {host}/apps/x\n    destination: mirror.example/apps/x\n    selector:\n      \
         regex:\n        pattern: '^(?P<v>[0-9.]+)(-rc[0-9]+)?$'\n        extract: '$v'\n      \
         semver: '>=1.0.0'\n      sortBy: semver\n      limit: 2\n    includeReferrers: false\n\
         hosts:\n  - host: {host}\n    username: someone\n    credential:\n      value: s3cret\n"
    );
    let mut rng = Rng(seed() ^ 4);
    for case in 0..cases(60) {
        let sandbox = Sandbox::new();
        let mut bytes = valid.clone().into_bytes();
        if rng.below(2) == 0 {
            mutate_bytes(&mut bytes, &mut rng);
        } else {
            // A value swapped for an odd one, as a YAML scalar.
            let text = String::from_utf8(bytes).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            let at = rng.below(lines.len());
            let mut changed: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            if let Some((key, _)) = lines[at].split_once(": ") {
                let odd = rng.pick(&odd_strings()).clone();
                changed[at] = format!("{key}: {}", serde_json::to_string(&odd).unwrap());
            } else {
                changed[at] = format!("{}  # {}", lines[at], "x".repeat(rng.below(100)));
            }
            bytes = changed.join("\n").into_bytes();
        }
        let set = sandbox.root.path().join("set.yaml");
        std::fs::write(&set, &bytes).unwrap();
        let before = sandbox.outside();
        let mut cmd = ferry(&sandbox.home());
        cmd.args(["--no-progress", "pull", "--insecure", "--dry-run"])
            .arg(sandbox.bundle())
            .arg("--images")
            .arg(&set);
        let label = format!("FERRY_FUZZ_SEED={} case {case} (image set)", seed());
        judge(&label, bounded(&mut cmd, LIMIT), &[0, 1, 2]);
        assert_eq!(sandbox.outside(), before, "{label}: a file changed");
        assert!(!sandbox.bundle().exists(), "{label}: a dry run wrote");
    }
}

/// A pull interrupted for real leaves a state file and a journal; mutated, they must never make
/// a rerun panic, touch anything outside the bundle, or finish a bundle verify refuses.
#[test]
fn mutated_work_state_never_panics_or_reaches_outside() {
    let source = Registry::start("plain");
    let layouts = tempfile::tempdir().unwrap();
    make_layout(
        layouts.path(),
        "1",
        "image",
        &[
            "--layers",
            "6",
            "--layer-size",
            "400000",
            "--compress",
            "none",
        ],
    );
    source.seed(layouts.path(), "1", "src/db:1");
    let description = one_database_layout(layouts.path(), "db", "1");
    let slow = FaultProxy::start(&source, &["--rate", "0.4"]);
    let pull = |home: &Path, host: &str, dir: &Path| {
        let mut cmd = ferry(home);
        cmd.args(["--no-progress", "pull"])
            .arg(dir)
            .args(["--source", &format!("{host}/src"), "--insecure"])
            .args(["--no-platform", "--no-modules", "--layout"])
            .arg(&description)
            .args(["-c", "200KB"]);
        cmd
    };
    // The seed: a pull cut after some blobs (and files) were finished.
    let seed_home = tempfile::tempdir().unwrap();
    let cut = seed_home.path().join("cut");
    let mut child = pull(seed_home.path(), &slow.host, &cut)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let journal = cut.join(".tmp/ferry-pull/journal");
    let reached = wait_until(60, || {
        std::fs::read_to_string(&journal)
            .map(|j| j.lines().filter(|l| l.starts_with("done ")).count() >= 2)
            .unwrap_or(false)
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(reached, "the pull never got far enough to be cut");
    let work = cut.join(".tmp/ferry-pull");
    let state: Value =
        serde_json::from_slice(&std::fs::read(work.join("state.json")).unwrap()).unwrap();
    let journal_text = std::fs::read_to_string(work.join("journal")).unwrap();

    let mut rng = Rng(seed() ^ 5);
    for case in 0..cases(30) {
        let sandbox = Sandbox::new();
        copy_dir(&cut, &sandbox.bundle());
        let work = sandbox.bundle().join(".tmp/ferry-pull");
        let outside = sandbox.root.path().join("outside");
        match rng.below(3) {
            0 => {
                let mut value = state.clone();
                mutate_json(&mut value, &mut rng);
                std::fs::write(work.join("state.json"), serde_json::to_vec(&value).unwrap())
                    .unwrap();
            }
            1 => {
                let mut bytes = journal_text.clone().into_bytes();
                mutate_bytes(&mut bytes, &mut rng);
                std::fs::write(work.join("journal"), bytes).unwrap();
            }
            _ => {
                // Lines naming files elsewhere, as a planted journal would.
                let names = [
                    outside.join("notes.txt").display().to_string(),
                    "../outside/platform.tar".into(),
                    "../../outside/d/x.tar".into(),
                    "security.tar.0000.chunk".into(),
                    "x".repeat(5000),
                ];
                let mut text = journal_text.clone();
                for _ in 0..=rng.below(3) {
                    let name = rng.pick(&names);
                    text.push_str(&format!("sealed {name} 7 {} -\n", "0".repeat(64)));
                }
                std::fs::write(work.join("journal"), text).unwrap();
            }
        }
        let before = sandbox.outside();
        let label = format!("FERRY_FUZZ_SEED={} case {case} (state and journal)", seed());
        let result = bounded(
            &mut pull(&sandbox.home(), &source.host, &sandbox.bundle()),
            LIMIT,
        );
        let succeeded = result.0 == Some(0);
        judge(&label, result, &[0, 1]);
        assert_eq!(sandbox.outside(), before, "{label}: a file outside changed");
        if succeeded {
            verified(&sandbox.home(), &sandbox.bundle());
        }
    }
}
