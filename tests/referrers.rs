//! `--include-referrers` / `includeReferrers` against distribution 2.8, which has no referrers
//! API: a signature and an SBOM attached to an image in the referrers tag schema, a signature
//! of that SBOM, and a cosign-style `.sig` tag travel through pull and push; at the target the
//! tag-schema index is merged with the one the target already had, subjects are written before
//! what refers to them, and skopeo finds everything byte for byte. Then the same registry behind
//! `scripts/fault-proxy.py --referrers-api` (which adds the OCI 1.1 API): referrers only the API
//! knows are found and carried as a tag-schema index ferry makes.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

fn listed_digests(raw: &[u8]) -> Vec<String> {
    let index: Value = serde_json::from_slice(raw).unwrap();
    let mut digests: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_string())
        .collect();
    digests.sort();
    digests
}

#[test]
fn signatures_and_sboms_travel_and_the_target_index_is_merged() {
    let source = Registry::start("plain");
    let target = Registry::start("plain");
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("app");

    // The image, a signature and an SBOM of it, a signature of the SBOM, a cosign .sig tag.
    let image = make_layout(&layout, "v1", "image", &["--layers", "1"]);
    let hex = image.trim_start_matches("sha256:").to_string();
    let sig_type = "application/vnd.dev.cosign.artifact.sig.v1+json";
    let (index, artifacts) = attach(
        &layout,
        &image,
        size_of(&layout, &image),
        &format!("{sig_type},application/spdx+json"),
        "1",
    );
    let (signature, sbom) = (artifacts[0].clone(), artifacts[1].clone());
    let (sbom_index, sbom_sigs) = attach(&layout, &sbom.0, sbom.1, sig_type, "2");
    make_layout(
        &layout,
        &format!("sha256-{hex}.sig"),
        "artifact",
        &[
            "--layers",
            "1",
            "--layer-size",
            "300",
            "--config-type",
            "application/vnd.oci.image.config.v1+json",
            "--layer-type",
            "application/vnd.dev.cosign.simplesigning.v1+json",
        ],
    );
    // Another image's referrers, which nothing asks for.
    let other = make_layout(&layout, "v2", "image", &["--layers", "1", "--seed", "9"]);
    attach(&layout, &other, size_of(&layout, &other), sig_type, "3");
    let repo = source.at("apps/app");
    source.seed(&layout, "v1", "apps/app:v1");
    source.seed(&layout, "v2", "apps/app:v2");
    source.seed(
        &layout,
        &format!("sha256-{hex}.sig"),
        &format!("apps/app:sha256-{hex}.sig"),
    );
    push_layout(&layout, &format!("sha256-{hex}"), &repo);
    let sbom_hex = sbom.0.trim_start_matches("sha256:");
    push_layout(&layout, &format!("sha256-{sbom_hex}"), &repo);
    push_layout(
        &layout,
        &format!("sha256-{}", other.trim_start_matches("sha256:")),
        &repo,
    );

    let set = work.path().join("signed.yaml");
    let write_set = |referrers: bool| {
        std::fs::write(
            &set,
            format!(
                "apiVersion: ferry/v1\nkind: ImageSet\nartifacts:\n  - source: {repo}\n    tags: [v1]\n    includeReferrers: {referrers}\n"
            ),
        )
        .unwrap();
    };
    let pull = |dir: &Path, extra: &[&str]| {
        let mut cmd = ferry(home.path());
        cmd.args(["--no-progress", "pull", "--insecure"])
            .arg(dir)
            .arg("--images")
            .arg(&set)
            .args(extra);
        outcome(&mut cmd)
    };

    // Without referrers asked for: the image alone.
    write_set(false);
    let (code, stdout, stderr) = pull(&work.path().join("plain"), &["--dry-run", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(plan["images"].as_array().unwrap().len(), 1, "{plan}");

    // The set asks: the schema index, the cosign tag, the SBOM's own referrers; not v2's.
    write_set(true);
    let bundle = work.path().join("bundle");
    let (code, stdout, stderr) = pull(&bundle, &[]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let images = listed(home.path(), &bundle);
    let mut tags: Vec<&str> = images.iter().map(|i| i["tag"].as_str().unwrap()).collect();
    tags.sort();
    let mut expected = vec![
        format!("sha256-{hex}"),
        format!("sha256-{hex}.sig"),
        format!("sha256-{sbom_hex}"),
        "v1".to_string(),
    ];
    expected.sort();
    assert_eq!(tags, expected);
    let schema = images
        .iter()
        .find(|i| i["tag"] == format!("sha256-{hex}"))
        .unwrap();
    assert_eq!(
        schema["digest"],
        index.as_str(),
        "the source's index, unchanged"
    );
    let sbom_schema = images
        .iter()
        .find(|i| i["tag"] == format!("sha256-{sbom_hex}"))
        .unwrap();
    assert_eq!(sbom_schema["digest"], sbom_index.as_str());
    verified(home.path(), &bundle);
    // --include-referrers on the command line finds the same, for every path the image goes
    // to (here a second destination too).
    std::fs::write(
        &set,
        format!(
            "apiVersion: ferry/v1\nkind: ImageSet\nartifacts:\n  - source: {repo}\n    tags: [v1]\n  - source: {repo}\n    destination: mirror.example/copies/app\n    tags: [v1]\n"
        ),
    )
    .unwrap();
    let (code, stdout, stderr) = pull(
        &work.path().join("flag"),
        &["--include-referrers", "--dry-run", "--json"],
    );
    assert_eq!(code, 0, "{stderr}");
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    for path in ["apps/app", "copies/app"] {
        let at: Vec<&Value> = plan["images"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["path"] == path)
            .collect();
        assert_eq!(at.len(), 4, "{path}: {plan}");
    }

    // The target already lists an attestation of the image under the same schema tag.
    let (their_index, theirs) = attach(
        &layout,
        &image,
        size_of(&layout, &image),
        "application/vnd.in-toto+json",
        "4",
    );
    let target_repo = target.at("mirror/apps/app");
    push_layout(&layout, &format!("sha256-{hex}"), &target_repo);
    assert_eq!(
        listed_digests(&target.raw_manifest(&format!("mirror/apps/app:sha256-{hex}"))),
        vec![theirs[0].0.clone()]
    );

    // Pushes the bundle; returns what it printed and the receipt.
    let push = || {
        let receipt_file = work.path().join("receipt.json");
        let (code, stdout, stderr) = outcome(&mut push_cmd(
            home.path(),
            &target,
            &bundle,
            "mirror",
            &["--receipt", receipt_file.to_str().unwrap()],
        ));
        assert_eq!(code, 0, "{stdout}\n{stderr}");
        (stdout, receipt(&receipt_file))
    };
    let (stdout, entries) = push();
    assert!(stdout.contains("1 merged"), "{stdout}");
    let merged = entries
        .values()
        .find(|e| e["tag"] == format!("sha256-{hex}"))
        .unwrap();
    assert_eq!(merged["status"], "merged");
    assert_eq!(merged["previous"], their_index.as_str());

    // The merged index lists the bundle's referrers and the target's own.
    let raw = target.raw_manifest(&format!("mirror/apps/app:sha256-{hex}"));
    let mut all = vec![signature.0.clone(), sbom.0.clone(), theirs[0].0.clone()];
    all.sort();
    assert_eq!(listed_digests(&raw), all);
    assert_eq!(merged["digest"].as_str().unwrap(), {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &raw).unwrap();
        let out = run(Command::new("sha256sum").arg(file.path()));
        format!("sha256:{}", &String::from_utf8(out.stdout).unwrap()[..64])
    });
    // Every referrer arrived byte for byte and names its subject.
    for (digest, subject) in [
        (&signature.0, &image),
        (&sbom.0, &image),
        (&sbom_sigs[0].0, &sbom.0),
    ] {
        let at_target = target.raw_manifest(&format!("mirror/apps/app@{digest}"));
        assert_eq!(
            at_target,
            source.raw_manifest(&format!("apps/app@{digest}"))
        );
        let manifest: Value = serde_json::from_slice(&at_target).unwrap();
        assert_eq!(manifest["subject"]["digest"], subject.as_str());
    }
    assert_eq!(
        target.raw_manifest(&format!("mirror/apps/app:sha256-{sbom_hex}")),
        source.raw_manifest(&format!("apps/app:sha256-{sbom_hex}"))
    );
    assert_eq!(
        listed_digests(&target.raw_manifest(&format!("mirror/apps/app:sha256-{sbom_hex}"))),
        vec![sbom_sigs[0].0.clone()]
    );
    assert_eq!(
        target.raw_manifest(&format!("mirror/apps/app:sha256-{hex}.sig")),
        source.raw_manifest(&format!("apps/app:sha256-{hex}.sig"))
    );
    // skopeo copies the signed image and the signature tag whole.
    let scratch = tempfile::tempdir().unwrap();
    for tag in ["v1".to_string(), format!("sha256-{hex}.sig")] {
        target.skopeo_copy_out(&format!("mirror/apps/app:{tag}"), scratch.path(), &tag);
    }

    // Subjects before what refers to them: the image's manifest (written by its tag's PUT)
    // before its signature and SBOM, the SBOM before its signature.
    let log = target.log();
    let put = |reference: &str| {
        log.lines()
            .position(|l| l.contains(&format!("\"PUT /v2/mirror/apps/app/manifests/{reference} ")))
            .unwrap_or_else(|| panic!("no PUT of {reference}"))
    };
    assert!(put("v1") < put(&signature.0));
    assert!(put("v1") < put(&sbom.0));
    assert!(put(&sbom.0) < put(&sbom_sigs[0].0));

    // Pushed again: the merged index is recognised, nothing is written.
    let (stdout, entries) = push();
    assert!(stdout.contains("0 tags written"), "{stdout}");
    assert!(
        entries.values().all(|e| e["status"] == "present"),
        "{entries:?}"
    );

    // The image's layer damaged on the way: nothing that refers to the image, however
    // indirectly (the SBOM's signature index, the `.sig` tag by its name), reaches a fresh
    // target, and the error names the blob and the tags, not a manifest the registry refused.
    let raw: Value = serde_json::from_slice(&source.raw_manifest("apps/app:v1")).unwrap();
    let layer = raw["layers"][0]["digest"].as_str().unwrap();
    damage_entry(&bundle, &format!("apps/app/blobs/sha256/{}", &layer[7..]));
    let fresh = Registry::start("plain");
    let receipt_file = work.path().join("damaged.json");
    let (code, stdout, stderr) = outcome(&mut push_cmd(
        home.path(),
        &fresh,
        &bundle,
        "mirror",
        &["--receipt", receipt_file.to_str().unwrap()],
    ));
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stderr.contains(layer) && stderr.contains("damaged"),
        "{stderr}"
    );
    assert!(stderr.contains("4 tag(s) were not written"), "{stderr}");
    let entries = receipt(&receipt_file);
    assert_eq!(entries.len(), 4, "{entries:?}");
    assert!(
        entries.values().all(|e| e["status"] == "skipped"),
        "{entries:?}"
    );
    let log = fresh.log();
    assert!(
        !log.contains("\"PUT /v2/mirror/apps/app/manifests/"),
        "no manifest of the image or of what refers to it:\n{log}"
    );
}

/// GETs a URL on 127.0.0.1 with Python's standard library (no ferry code involved).
fn http_get(url: &str) -> Vec<u8> {
    run(Command::new("python3")
        .arg("-c")
        .arg("import sys, urllib.request; sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1]).read())")
        .arg(url))
    .stdout
}

#[test]
fn referrers_come_from_the_api_where_the_source_has_one() {
    // distribution 2.8 behind a proxy that adds the OCI 1.1 referrers API.
    let source = Registry::start("plain");
    let api = FaultProxy::start(&source, &["--referrers-api"]);
    let target = Registry::start("plain");
    let target_api = FaultProxy::start(&target, &["--referrers-api"]);
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("app");
    let image = make_layout(&layout, "v1", "image", &["--layers", "1"]);
    let hex = image.trim_start_matches("sha256:");
    let (_, artifacts) = attach(
        &layout,
        &image,
        size_of(&layout, &image),
        "application/vnd.dev.cosign.artifact.sig.v1+json,application/spdx+json",
        "1",
    );
    skopeo_push(&layout, "v1", &format!("{}/apps/app:v1", api.host));
    // The referrers alone, no schema tag: only the API knows them.
    push_layout_children(
        &layout,
        &format!("sha256-{hex}"),
        &format!("{}/apps/app", api.host),
    );

    let list = work.path().join("list.txt");
    std::fs::write(&list, format!("{}/apps/app:v1\n", api.host)).unwrap();
    let bundle = work.path().join("bundle");
    ferry_ok(
        ferry(home.path())
            .args(["--no-progress", "pull", "--insecure", "--include-referrers"])
            .arg(&bundle)
            .arg("--images-from-list")
            .arg(&list),
    );
    assert!(
        api.requests()
            .iter()
            .any(|r| r.starts_with(&format!("GET /v2/apps/app/referrers/{image} - 200"))),
        "{:?}",
        api.requests()
    );
    let images = listed(home.path(), &bundle);
    let schema = images
        .iter()
        .find(|i| i["tag"] == format!("sha256-{hex}"))
        .unwrap_or_else(|| panic!("no referrers tag in {images:?}"));
    assert!(
        schema["source"]
            .as_str()
            .unwrap()
            .ends_with(&format!("referrers of {image}")),
        "{schema}"
    );
    verified(home.path(), &bundle);

    // Pushed through the target's API proxy: the tag schema is written, and the registry's
    // own index (the API) lists the same referrers.
    let path = schema["path"].as_str().unwrap().to_string();
    let mut cmd = ferry(home.path());
    cmd.args(["--no-progress", "push", "--insecure"])
        .arg(&bundle)
        .arg(format!("{}/mirror", target_api.host));
    ferry_ok(&mut cmd);
    let mut expected: Vec<String> = artifacts.iter().map(|(d, _)| d.clone()).collect();
    expected.sort();
    let schema_raw = target.raw_manifest(&format!("mirror/{path}:sha256-{hex}"));
    assert_eq!(listed_digests(&schema_raw), expected);
    let index: Value = serde_json::from_slice(&schema_raw).unwrap();
    let order: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert_eq!(order, expected, "a made index is sorted by digest");
    let answer = http_get(&format!(
        "http://{}/v2/mirror/{path}/referrers/{image}",
        target_api.host
    ));
    assert_eq!(listed_digests(&answer), expected);
}

/// A referrers listing over the 4 MiB a bundle reader takes as one index: the pull used to
/// finish with exit 0 and leave a bundle its own verify refused. It is refused at pull time,
/// naming the image whose referrers they are.
#[test]
fn referrers_too_many_for_one_index_are_refused_at_pull() {
    let source = Registry::start("plain");
    let api = FaultProxy::start(&source, &["--referrers-api"]);
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("app");
    let image = make_layout(&layout, "v1", "image", &["--layers", "1"]);
    let hex = image.trim_start_matches("sha256:");
    let types: Vec<String> = (0..5)
        .map(|i| format!("application/vnd.ferry.test.big{i}"))
        .collect();
    let out = run(Command::new("python3")
        .arg(repo_root().join("scripts/mkoci.py"))
        .arg(&layout)
        .arg(format!("sha256-{hex}"))
        .arg("referrers")
        .arg("--subject")
        .arg(format!(
            "{image}:{}:{OCI_MANIFEST}",
            size_of(&layout, &image)
        ))
        .args(["--artifact-types", &types.join(",")])
        .args(["--annotation-bytes", &(1 << 20).to_string()]));
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 6);
    skopeo_push(&layout, "v1", &format!("{}/apps/big:v1", api.host));
    push_layout_children(
        &layout,
        &format!("sha256-{hex}"),
        &format!("{}/apps/big", api.host),
    );

    let list = work.path().join("list.txt");
    std::fs::write(&list, format!("{}/apps/big:v1\n", api.host)).unwrap();
    let bundle = work.path().join("bundle");
    let (code, stdout, stderr) = outcome(
        ferry(home.path())
            .args(["--no-progress", "pull", "--insecure", "--include-referrers"])
            .arg(&bundle)
            .arg("--images-from-list")
            .arg(&list),
    );
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("referrers of {image}")) && stderr.contains("apps/big"),
        "{stderr}"
    );
    assert!(
        !bundle.join("bundle.json").exists(),
        "no bundle is left looking complete"
    );
}

fn push_layout_children(layout: &Path, tag: &str, dest: &str) {
    run(Command::new("python3")
        .arg(repo_root().join("scripts/push-layout.py"))
        .arg(layout)
        .arg(tag)
        .arg(dest)
        .arg("--children-only"));
}

/// skopeo pushes a layout tag, byte for byte, to `dest` (`host:port/repo:tag`), plain HTTP.
fn skopeo_push(layout: &Path, tag: &str, dest: &str) {
    run(Command::new("skopeo")
        .args([
            "copy",
            "-q",
            "--preserve-digests",
            "--dest-tls-verify=false",
        ])
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{dest}")));
}
