//! `ferry serve` read by real clients: skopeo copies every tag of the sample distribution's
//! bundle (chunked, with GOST sums) and of a `d8 mirror`-style bundle out of it with the
//! bundle's digests, lists exactly what `ferry ls` lists, and is refused when it writes; the
//! distribution registry mirrors it as a pull-through cache; a differential bundle is whole
//! with its base; the referrers API lists what the bundle carries.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

/// `path in the bundle` → its tags and their digests, as `ferry ls` lists them.
fn tags_by_path(home: &Path, bundle: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut paths: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for image in listed(home, bundle) {
        paths
            .entry(image["path"].as_str().unwrap().to_string())
            .or_default()
            .insert(
                image["tag"].as_str().unwrap().to_string(),
                image["digest"].as_str().unwrap().to_string(),
            );
    }
    paths
}

fn served_name(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path.is_empty()) {
        (_, true) => prefix.to_string(),
        (true, false) => path.to_string(),
        (false, false) => format!("{prefix}/{path}"),
    }
}

/// skopeo lists exactly the tags `ferry ls` lists, repository by repository, and `_catalog`
/// lists exactly those repositories.
fn listings_match(
    server: &Server,
    prefix: &str,
    paths: &BTreeMap<String, BTreeMap<String, String>>,
) {
    for (path, tags) in paths {
        let name = served_name(prefix, path);
        let out = run(Command::new("skopeo")
            .args(["list-tags", "--tls-verify=false"])
            .arg(format!("docker://{}", server.at(&name))));
        let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
        let served: BTreeSet<&str> = listed["Tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        let expected: BTreeSet<&str> = tags.keys().map(String::as_str).collect();
        assert_eq!(served, expected, "tags of {name}");
    }
    let catalog = raw_request(&server.host, "GET", "/v2/_catalog", &[]);
    assert_eq!(catalog.status, 200);
    let catalog: Value = serde_json::from_slice(&catalog.body).unwrap();
    let served: BTreeSet<&str> = catalog["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    let expected: BTreeSet<String> = paths.keys().map(|p| served_name(prefix, p)).collect();
    assert_eq!(
        served,
        expected.iter().map(String::as_str).collect::<BTreeSet<_>>()
    );
}

/// Copies every tag out of the server with `skopeo copy --all --preserve-digests` from
/// `clients` threads at once; skopeo checks every blob's digest, the test every manifest's.
fn copies_match(
    server: &Server,
    prefix: &str,
    paths: &BTreeMap<String, BTreeMap<String, String>>,
    clients: usize,
) {
    let work = tempfile::tempdir().unwrap();
    let jobs: Vec<(String, String, String)> = paths
        .iter()
        .flat_map(|(path, tags)| {
            tags.iter()
                .map(move |(tag, digest)| (served_name(prefix, path), tag.clone(), digest.clone()))
        })
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..clients {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some((name, tag, digest)) = jobs.get(i) else {
                        break;
                    };
                    let dir = work.path().join(i.to_string());
                    run(Command::new("skopeo")
                        .args([
                            "copy",
                            "--all",
                            "--preserve-digests",
                            "--src-tls-verify=false",
                        ])
                        .arg(format!("docker://{}:{tag}", server.at(name)))
                        .arg(format!("dir:{}", dir.display())));
                    let manifest = std::fs::read(dir.join("manifest.json")).unwrap();
                    assert_eq!(&sha256_of(&manifest), digest, "{name}:{tag}");
                    let raw = run(Command::new("skopeo")
                        .args(["inspect", "--raw", "--tls-verify=false"])
                        .arg(format!("docker://{}:{tag}", server.at(name))))
                    .stdout;
                    assert_eq!(&sha256_of(&raw), digest, "inspect --raw {name}:{tag}");
                    std::fs::remove_dir_all(&dir).unwrap();
                }
            });
        }
    });
    assert!(next.into_inner() >= jobs.len());
}

#[test]
fn the_sample_bundle_is_served_as_push_would_write_it() {
    let source = Registry::start("plain");
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let root = seed_sample(&source, "sample/ee", &[]);
    // An 8 MiB layer that straddles chunk files, for ranges and parallel readers.
    let set = seed_big_image(&source, work.path(), 8);
    let bundle = work.path().join("bundle");
    let (code, stdout, stderr) = pull_insecure(
        home.path(),
        &[
            bundle.to_str().unwrap(),
            "--source",
            &root,
            "--images",
            set.to_str().unwrap(),
            "-c",
            "3MB",
            "--gost-digest",
        ],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(names_in(&bundle).iter().any(|n| n.ends_with(".0002.chunk")));
    assert!(names_in(&bundle).iter().any(|n| n.ends_with(".gostsum")));

    let mut server = Server::start(
        home.path(),
        &["--prefix", "mirror/ee", bundle.to_str().unwrap()],
    );
    assert!(
        server.ready.contains("listening on http://127.0.0.1:"),
        "{}",
        server.ready
    );
    let paths = tags_by_path(home.path(), &bundle);
    listings_match(&server, "mirror/ee", &paths);
    copies_match(&server, "mirror/ee", &paths, 16);

    // The big layer, in ranges that cross chunk files, against the source registry's bytes.
    let (big_path, big_digest) = paths
        .iter()
        .find_map(|(path, tags)| tags.get("1").map(|d| (path.clone(), d.clone())))
        .unwrap();
    let manifest: Value = serde_json::from_slice(&source.raw_manifest("db/big:1")).unwrap();
    assert_eq!(sha256_of(&source.raw_manifest("db/big:1")), big_digest);
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let whole = raw_request(
        &source.host,
        "GET",
        &format!("/v2/db/big/blobs/{layer}"),
        &[],
    );
    assert_eq!(whole.status, 200);
    assert!(whole.body.len() >= 8 << 20);
    let blob_path = format!("/v2/{}/blobs/{layer}", served_name("mirror/ee", &big_path));
    for (range, from, to) in [
        ("bytes=1000000-7000000", 1_000_000usize, 7_000_001usize),
        ("bytes=0-0", 0, 1),
        (
            &format!("bytes={}-", whole.body.len() - 10) as &str,
            whole.body.len() - 10,
            whole.body.len(),
        ),
        ("bytes=-100", whole.body.len() - 100, whole.body.len()),
    ] {
        let part = raw_request(
            &server.host,
            "GET",
            &blob_path,
            &[&format!("Range: {range}")],
        );
        assert_eq!(part.status, 206, "{range}: {}", part.text());
        assert_eq!(part.body, whole.body[from..to], "{range}");
        assert_eq!(
            part.header("content-range"),
            Some(format!("bytes {from}-{}/{}", to - 1, whole.body.len()).as_str())
        );
    }
    // Sixteen readers of the whole blob at once get its exact bytes.
    std::thread::scope(|scope| {
        for _ in 0..16 {
            scope.spawn(|| {
                let got = raw_request(&server.host, "GET", &blob_path, &[]);
                assert_eq!(got.status, 200);
                assert_eq!(sha256_of(&got.body), layer);
            });
        }
    });

    // Writes are refused, and skopeo says so.
    let layout = sample_layout();
    let (code, _, stderr) = outcome(
        Command::new("skopeo")
            .args(["copy", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:image", layout.path().display()))
            .arg(format!("docker://{}", server.at("mirror/ee/new:v1"))),
    );
    assert_ne!(code, 0);
    // skopeo names the spec's error code (lowercased) and the server's message; the server's
    // log shows the 405 it sent.
    assert!(
        stderr.to_lowercase().contains("unsupported") && stderr.contains("read-only"),
        "{stderr}"
    );
    assert!(
        server.logged(|l| l.contains("\"POST /v2/mirror/ee/new/blobs/uploads/ HTTP/1.1\" 405")),
        "{:?}",
        server.log()
    );
    let put = raw_request(
        &server.host,
        "PUT",
        "/v2/mirror/ee/install/manifests/x",
        &["Content-Length: 0"],
    );
    assert_eq!(put.status, 405);
    assert!(put.text().contains("UNSUPPORTED"), "{}", put.text());
    assert!(
        server.logged(|l| l.contains("\"PUT /v2/mirror/ee/install/manifests/x HTTP/1.1\" 405")),
        "{:?}",
        server.log()
    );

    // SIGTERM stops it cleanly.
    let (code, stderr) = server.stop();
    assert_eq!(code, Some(0), "{stderr}");

    // --modules-path-suffix moves the module tree as it does for push; nothing else moves.
    let server = Server::start(
        home.path(),
        &[
            "--prefix",
            "mirror/ee",
            "--modules-path-suffix",
            "/mods/",
            bundle.to_str().unwrap(),
        ],
    );
    let moved: BTreeMap<String, BTreeMap<String, String>> = paths
        .iter()
        .map(|(path, tags)| {
            let path = match path.strip_prefix("modules") {
                Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("mods{rest}"),
                _ => path.clone(),
            };
            (path, tags.clone())
        })
        .collect();
    assert!(moved.contains_key("mods/console"), "{:?}", moved.keys());
    listings_match(&server, "mirror/ee", &moved);
    let gone = raw_request(
        &server.host,
        "GET",
        "/v2/mirror/ee/modules/console/tags/list",
        &[],
    );
    assert_eq!(gone.status, 404);
    // HEAD of a manifest: its digest, type and length, no body.
    let (tag, digest) = moved["mods/console"].iter().next().unwrap();
    let head = raw_request(
        &server.host,
        "HEAD",
        &format!("/v2/mirror/ee/mods/console/manifests/{tag}"),
        &[],
    );
    assert_eq!(head.status, 200);
    assert_eq!(head.header("docker-content-digest"), Some(digest.as_str()));
    assert!(
        head.header("content-type").unwrap().contains("manifest"),
        "{head:?}"
    );
    assert!(head.body.is_empty());
    let get = raw_request(
        &server.host,
        "GET",
        &format!("/v2/mirror/ee/mods/console/manifests/{digest}"),
        &[],
    );
    assert_eq!(sha256_of(&get.body), *digest);
    assert_eq!(
        head.header("content-length"),
        Some(get.body.len().to_string().as_str())
    );
}

#[test]
fn a_d8_mirror_bundle_is_served_from_its_chunks() {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("tree");
    d8_tree(&tree, Some(30000));
    let tar = work.path().join("platform.tar");
    d8_tar(&tree, &tar, TarOrder::Reversed);
    let bundle = work.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    let chunks = d8_chunks(&tar, &bundle, "platform.tar", 20000);
    assert!(chunks.len() > 2, "{chunks:?}");
    rhash_gostsums(&bundle, &chunks);

    let server = Server::start(
        home.path(),
        &["--prefix", "deckhouse/ee", bundle.to_str().unwrap()],
    );
    let paths = tags_by_path(home.path(), &bundle);
    assert_eq!(paths.len(), 2, "{paths:?}");
    listings_match(&server, "deckhouse/ee", &paths);
    copies_match(&server, "deckhouse/ee", &paths, 4);

    // Without --prefix the root layout has no name: a clear refusal.
    let refused = Server::try_start(home.path(), &[bundle.to_str().unwrap()])
        .err()
        .unwrap();
    assert!(refused.contains("--prefix"), "{refused}");
}

#[test]
fn a_registry_mirrors_it_as_a_pull_through_cache() {
    let source = Registry::start("plain");
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let root = seed_sample(&source, "sample/ee", &[]);
    let bundle = work.path().join("bundle");
    let (code, stdout, stderr) = pull_insecure(
        home.path(),
        &[
            bundle.to_str().unwrap(),
            "--source",
            &root,
            "--no-modules",
            "--no-security-db",
        ],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let server = Server::start(
        home.path(),
        &["--prefix", "deckhouse/ee", bundle.to_str().unwrap()],
    );
    let cache = Registry::start_with("plain", &["--proxy", &format!("http://{}", server.host)]);
    let paths = tags_by_path(home.path(), &bundle);
    let tags = &paths["install"];
    for (tag, digest) in tags.iter().take(3) {
        let dir = work.path().join(format!("copy-{tag}"));
        run(Command::new("skopeo")
            .args([
                "copy",
                "--all",
                "--preserve-digests",
                "--src-tls-verify=false",
            ])
            .arg(format!(
                "docker://{}:{tag}",
                cache.at("deckhouse/ee/install")
            ))
            .arg(format!("dir:{}", dir.display())));
        let manifest = std::fs::read(dir.join("manifest.json")).unwrap();
        assert_eq!(
            &sha256_of(&manifest),
            digest,
            "install:{tag} through the cache"
        );
    }
    // The cache got the bytes from ferry serve.
    assert!(
        server
            .logged(|l| l.contains("GET /v2/deckhouse/ee/install/blobs/sha256:")
                && l.contains("\" 200 ")),
        "{:?}\n{}",
        server.log(),
        cache.log()
    );
}

#[test]
fn a_differential_bundle_is_whole_with_its_base_and_conflicts_are_refused() {
    let source = Registry::start("plain");
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let set = seed_big_image(&source, work.path(), 2);
    // Kept to move the tag back later.
    source.skopeo_retag("db/big:1", "db/big:first");
    let write_set = |copy: bool| big_image_set(&set, &source, copy);
    let base = work.path().join("base");
    let pull = |dir: &Path, extra: &[&str]| {
        let mut args = vec![dir.to_str().unwrap(), "--images", set.to_str().unwrap()];
        args.extend_from_slice(extra);
        let (code, stdout, stderr) = pull_insecure(home.path(), &args);
        assert_eq!(code, 0, "{stdout}\n{stderr}");
    };
    pull(&base, &[]);
    write_set(true);
    let diff = work.path().join("diff");
    let base_json = base.join("bundle.json");
    pull(&diff, &["--since-bundle", base_json.to_str().unwrap()]);
    let metadata: Value =
        serde_json::from_slice(&std::fs::read(diff.join("bundle.json")).unwrap()).unwrap();
    assert!(
        !metadata["base"]["left_out"].as_array().unwrap().is_empty(),
        "{metadata}"
    );

    // Alone, the differential bundle lacks blobs, and says which bundle to add.
    let refused = Server::try_start(home.path(), &[diff.to_str().unwrap()])
        .err()
        .unwrap();
    assert!(
        refused.contains("differential") && refused.contains("base"),
        "{refused}"
    );

    // With its base, every tag of it copies whole.
    let server = Server::start(
        home.path(),
        &[diff.to_str().unwrap(), base.to_str().unwrap()],
    );
    let paths = tags_by_path(home.path(), &diff);
    assert_eq!(paths.len(), 2, "{paths:?}");
    copies_match(&server, "", &paths, 2);
    drop(server);

    // A bundle that gives one name another image cannot be served beside it.
    let other = work.path().join("other-big");
    make_big_layout(&other, "1", 1);
    source.seed(&other, "1", "db/big:1");
    write_set(false);
    let newer = work.path().join("newer");
    pull(&newer, &[]);
    let refused = Server::try_start(
        home.path(),
        &[base.to_str().unwrap(), newer.to_str().unwrap()],
    )
    .err()
    .unwrap();
    assert!(
        refused.contains(":1 is sha256:") && refused.contains("newer"),
        "{refused}"
    );

    // A differential bundle pulled against the base after the tag moved is the later word:
    // beside its base, whichever is named first, the tag is served as it says.
    let moved = work.path().join("moved");
    pull(&moved, &["--since-bundle", base_json.to_str().unwrap()]);
    let was = &tags_by_path(home.path(), &base)["db/big"]["1"];
    let now = &tags_by_path(home.path(), &moved)["db/big"]["1"];
    assert_ne!(was, now, "the tag moved at the source");
    let served = |dirs: &[&PathBuf]| -> Result<String, String> {
        let args: Vec<&str> = dirs.iter().map(|d| d.to_str().unwrap()).collect();
        let server = Server::try_start(home.path(), &args)?;
        let raw = run(Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{}:1", server.at("db/big"))))
        .stdout;
        Ok(sha256_of(&raw))
    };
    for order in [[&base, &moved], [&moved, &base]] {
        assert_eq!(&served(&order).unwrap(), now, "{order:?}");
    }

    // The tag moved back in a bundle pulled against that one: the newest word wins in every
    // order, though it agrees with the oldest.
    source.skopeo_retag("db/big:first", "db/big:1");
    let back = work.path().join("back");
    let moved_json = moved.join("bundle.json");
    pull(&back, &["--since-bundle", moved_json.to_str().unwrap()]);
    for order in [
        [&base, &moved, &back],
        [&base, &back, &moved],
        [&moved, &base, &back],
        [&moved, &back, &base],
        [&back, &base, &moved],
        [&back, &moved, &base],
    ] {
        assert_eq!(&served(&order).unwrap(), was, "{order:?}");
    }

    // Two bundles pulled against one base that disagree: neither is the later word, in any
    // order.
    for order in [
        [&base, &diff, &moved],
        [&base, &moved, &diff],
        [&diff, &base, &moved],
        [&diff, &moved, &base],
        [&moved, &base, &diff],
        [&moved, &diff, &base],
    ] {
        let refused = served(&order).unwrap_err();
        // The two named are the two that disagree, not the base either was pulled against.
        assert!(
            refused.contains("db/big:1 is sha256:")
                && refused.contains(&format!("({})", diff.display()))
                && refused.contains(&format!("({})", moved.display())),
            "{order:?}: {refused}"
        );
    }
}

#[test]
fn the_referrers_api_lists_what_the_bundle_carries() {
    let source = Registry::start("plain");
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("app");
    let image = make_layout(&layout, "v1", "image", &["--layers", "1"]);
    let sig_type = "application/vnd.dev.cosign.artifact.sig.v1+json";
    let sbom_type = "application/spdx+json";
    let (_, artifacts) = attach(
        &layout,
        &image,
        size_of(&layout, &image),
        &format!("{sig_type},{sbom_type}"),
        "1",
    );
    let repo = source.at("apps/app");
    source.seed(&layout, "v1", "apps/app:v1");
    push_layout(
        &layout,
        &format!("sha256-{}", image.trim_start_matches("sha256:")),
        &repo,
    );
    let set = work.path().join("set.yaml");
    std::fs::write(
        &set,
        format!(
            "apiVersion: ferry/v1\nkind: ImageSet\nartifacts:\n  - source: {repo}\n    tags: [v1]\n    includeReferrers: true\n"
        ),
    )
    .unwrap();
    let bundle = work.path().join("bundle");
    let (code, stdout, stderr) = pull_insecure(
        home.path(),
        &[bundle.to_str().unwrap(), "--images", set.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let path = listed(home.path(), &bundle)[0]["path"]
        .as_str()
        .unwrap()
        .to_string();

    let server = Server::start(home.path(), &[bundle.to_str().unwrap()]);
    let asked = format!("/v2/{path}/referrers/{image}");
    let all = raw_request(&server.host, "GET", &asked, &[]);
    assert_eq!(all.status, 200, "{}", all.text());
    assert_eq!(
        all.header("content-type"),
        Some("application/vnd.oci.image.index.v1+json")
    );
    let index: Value = serde_json::from_slice(&all.body).unwrap();
    let found: BTreeMap<String, String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["digest"].as_str().unwrap().to_string(),
                m["artifactType"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: BTreeMap<String, String> = [
        (artifacts[0].0.clone(), sig_type.to_string()),
        (artifacts[1].0.clone(), sbom_type.to_string()),
    ]
    .into();
    assert_eq!(found, expected);
    // Each listed manifest is served, with the size the listing gives.
    for manifest in index["manifests"].as_array().unwrap() {
        let digest = manifest["digest"].as_str().unwrap();
        let got = raw_request(
            &server.host,
            "GET",
            &format!("/v2/{path}/manifests/{digest}"),
            &[],
        );
        assert_eq!(got.status, 200);
        assert_eq!(sha256_of(&got.body), digest);
        assert_eq!(got.body.len() as u64, manifest["size"].as_u64().unwrap());
    }
    let filtered = raw_request(
        &server.host,
        "GET",
        &format!(
            "{asked}?artifactType={}",
            sbom_type.replace('/', "%2F").replace('+', "%2B")
        ),
        &[],
    );
    assert_eq!(filtered.header("oci-filters-applied"), Some("artifactType"));
    let index: Value = serde_json::from_slice(&filtered.body).unwrap();
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "{index}");
    assert_eq!(manifests[0]["digest"], artifacts[1].0.as_str());
    // An image with no referrers gets an empty list, not an error.
    let none = raw_request(
        &server.host,
        "GET",
        &format!("/v2/{path}/referrers/{}", artifacts[1].0),
        &[],
    );
    assert_eq!(none.status, 200);
    let index: Value = serde_json::from_slice(&none.body).unwrap();
    assert!(index["manifests"].as_array().unwrap().is_empty());
}
