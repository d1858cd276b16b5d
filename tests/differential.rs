//! Differential bundles against real registries: pull the sample distribution (plus a large
//! database image) and push it; add a platform release to the source; pull again with
//! `--since-bundle` → a much smaller bundle that `sha256sum -c` and `ferry verify` accept, that
//! pushes onto the target holding the first bundle (a blob it left out is mounted from another
//! repository there), and that an empty target refuses before any blob is sent, naming the base.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

/// Every finished pull is verified (common::pull_insecure).
fn pull(home: &Path, args: &[&str]) -> (i32, String, String) {
    pull_insecure(home, args)
}

#[test]
fn a_differential_bundle_carries_only_what_changed() {
    let source = Registry::start("plain");
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let root = seed_sample(&source, "sample/ee", &[]);
    let set = seed_big_image(&source, work.path(), 8);

    // The first trip: a full bundle, pushed.
    let first = work.path().join("first");
    let (code, stdout, stderr) = pull(
        home.path(),
        &[
            first.to_str().unwrap(),
            "--source",
            &root,
            "--images",
            set.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let target = Registry::start("plain");
    ferry_ok(&mut push_cmd(home.path(), &target, &first, "mirror", &[]));

    // The source gets a new platform release, now on the alpha channel.
    let description =
        std::fs::read_to_string(repo_root().join("testdata/distribution.toml")).unwrap();
    let description = description
        .replace("\"v1.63.0\"]", "\"v1.63.0\", \"v1.64.0\"]")
        .replace("alpha = \"v1.63.0\"", "alpha = \"v1.64.0\"");
    assert!(description.contains("alpha = \"v1.64.0\""));
    let next = work.path().join("next.toml");
    std::fs::write(&next, description).unwrap();
    run(Command::new(repo_root().join("scripts/seed-source.sh"))
        .env("FERRY_DISTRIBUTION", &next)
        .arg(&source.host)
        .arg("sample/ee"));
    // The database also goes to a second path of the bundle this time.
    big_image_set(&set, &source, true);

    let second = work.path().join("second");
    let old_json = first.join("bundle.json");
    let args = [
        second.to_str().unwrap(),
        "--source",
        &root,
        "--images",
        set.to_str().unwrap(),
        "--since-bundle",
        old_json.to_str().unwrap(),
    ];
    // The dry run already says what is left out.
    let mut dry = args.to_vec();
    dry.extend(["--dry-run", "--json"]);
    let (code, stdout, stderr) = pull(home.path(), &dry);
    assert_eq!(code, 0, "{stderr}");
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    assert!(plan["left_out_bytes"].as_u64().unwrap() > 8 << 20, "{plan}");

    let (code, stdout, stderr) = pull(home.path(), &args);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let base_sha = String::from_utf8(run(Command::new("sha256sum").arg(&old_json)).stdout).unwrap()
        [..64]
        .to_string();
    assert!(
        stdout.contains(&format!(
            "differential against bundle.json sha256 {}",
            &base_sha[..12]
        )),
        "{stdout}"
    );
    let percent: f64 = stdout
        .split("% of the")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no percentage in {stdout}"));
    for line in stdout.lines().filter(|l| l.starts_with("differential")) {
        println!("{line}");
    }
    assert!(percent < 20.0, "{stdout}");

    let metadata: Value =
        serde_json::from_slice(&std::fs::read(second.join("bundle.json")).unwrap()).unwrap();
    assert_eq!(metadata["base"]["bundle_sha256"], base_sha.as_str());
    let left_out = metadata["base"]["left_out"].as_array().unwrap();
    let left_bytes: u64 = left_out.iter().map(|b| b["size"].as_u64().unwrap()).sum();
    assert!(left_bytes > 8 << 20);
    let held: u64 = metadata["archives"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["files"].as_array().unwrap())
        .map(|f| f["size"].as_u64().unwrap())
        .sum();
    assert!(held < 2 << 20, "the bundle holds {held} bytes");
    // The new release is there, whole, and nothing left out is also held.
    let images = listed(home.path(), &second);
    assert!(
        images
            .iter()
            .any(|i| i["path"] == "" && i["tag"] == "v1.64.0")
    );
    for blob in metadata["archives"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["blobs"].as_array().unwrap())
    {
        assert!(!left_out.contains(blob), "{blob} is held and left out");
    }

    // Checked without ferry, and by ferry, which says what the target must have.
    run(Command::new("sha256sum")
        .args(["-c", "--quiet", "SHA256SUMS"])
        .current_dir(&second));
    let (code, stdout, stderr) = outcome(ferry(home.path()).arg("verify").arg(&second));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("{} blobs", left_out.len()))
            && stdout.contains("expected at the target"),
        "{stdout}"
    );

    // An empty target: refused before anything is written, naming the base.
    let empty = Registry::start("plain");
    let (code, stdout, stderr) =
        outcome(&mut push_cmd(home.path(), &empty, &second, "mirror", &[]));
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("differential") && stderr.contains(&base_sha[..12]),
        "{stderr}"
    );
    assert!(stderr.contains("hint: push the base bundle"), "{stderr}");
    let log = empty.log();
    assert!(
        !log.contains("\"POST /v2/") && !log.contains("\"PUT /v2/"),
        "something was sent:\n{log}"
    );

    // The target of the first trip takes it; the database's layer is mounted into the new
    // path from where the first push put it.
    let (code, stdout, stderr) =
        outcome(&mut push_cmd(home.path(), &target, &second, "mirror", &[]));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        target.log().lines().any(
            |l| l.contains("\"POST /v2/mirror/copies/big/blobs/uploads/?") && l.contains("mount=")
        ),
        "no mount into copies/big"
    );
    let scratch = tempfile::tempdir().unwrap();
    for reference in ["mirror:v1.64.0", "mirror:alpha", "mirror/copies/big:1"] {
        target.skopeo_copy_out(
            reference,
            scratch.path(),
            &reference.replace(['/', ':'], "-"),
        );
    }
}

#[test]
fn a_base_that_cannot_be_used_is_refused_up_front() {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("bundle");
    let source = "127.0.0.1:9/none/ee";
    let attempt = |base: &Path, dir: &Path| {
        outcome(
            ferry(home.path())
                .args(["pull", "--insecure", "--source", source])
                .arg(dir)
                .arg("--since-bundle")
                .arg(base),
        )
    };
    let (code, _, stderr) = attempt(&work.path().join("missing"), &bundle);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");

    std::fs::create_dir(&bundle).unwrap();
    std::fs::write(bundle.join("bundle.json"), b"{}").unwrap();
    let (code, _, stderr) = attempt(&bundle, &bundle);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("is the bundle directory being written"),
        "{stderr}"
    );
    let (code, _, stderr) = attempt(&bundle.join("bundle.json"), &work.path().join("new"));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("is not valid"), "{stderr}");
    assert!(!work.path().join("new").exists());

    // The same directory however it is spelled: `ferry pull . --force --since-bundle
    // bundle.json` from inside it, or through `..`, must not replace the base's archives.
    for (dir, base) in [
        (".", "bundle.json"),
        (".", "./bundle.json"),
        ("../bundle", "bundle.json"),
        (".", "../bundle"),
    ] {
        let (code, _, stderr) = outcome(
            ferry(home.path())
                .current_dir(&bundle)
                .args(["pull", "--insecure", "--force", "--source", source])
                .arg(dir)
                .args(["--since-bundle", base]),
        );
        assert_eq!(code, 2, "{dir} {base}: {stderr}");
        assert!(
            stderr.contains("is the bundle directory being written"),
            "{dir} {base}: {stderr}"
        );
    }
    // A hard link to the bundle's own bundle.json, elsewhere, is the same base too.
    let linked = work.path().join("linked.json");
    std::fs::hard_link(bundle.join("bundle.json"), &linked).unwrap();
    let (code, _, stderr) = attempt(&linked, &bundle);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("is the bundle directory being written"),
        "{stderr}"
    );
    std::fs::remove_file(&linked).unwrap();
    assert_eq!(names_in(&bundle), ["bundle.json"]);
}
