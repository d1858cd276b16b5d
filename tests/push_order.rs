//! The order and number of a push's requests, read from the access log of the registry that
//! took them (the distribution registry logs each request when it has answered it): every
//! manifest arrives after the blobs and child manifests it names, manifests go out while other
//! blobs are still uploading, nothing is asked or written twice; and small blobs go whole in
//! one POST where the registry takes that, in POST + PUT where it does not.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use common::*;
use serde_json::Value;

const ROOT: &str = "sample/ee";
const TARGET: &str = "mirror/ee";

/// One request of an access log: method, path, query and status.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Request {
    method: String,
    path: String,
    query: String,
    status: u16,
}

/// The requests of a distribution registry's access log, in the order it answered them.
fn requests(log: &str) -> Vec<Request> {
    log.lines()
        .filter_map(|line| {
            let (_, rest) = line.split_once("] \"")?;
            let (request, rest) = rest.split_once("\" ")?;
            let mut words = request.split(' ');
            let (method, target) = (words.next()?, words.next()?);
            let status = rest.split(' ').next()?.parse().ok()?;
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            Some(Request {
                method: method.to_string(),
                path: path.to_string(),
                query: query.replace("%3A", ":"),
                status,
            })
        })
        .collect()
}

/// The value of `key` in a query string.
fn param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
}

/// (repository, blob digest) a request shows the repository holding once answered: an upload
/// finished, a mount made, a blob found there.
fn blob_held(request: &Request) -> Option<(String, String)> {
    let repo_of = |suffix: &str| request.path.strip_prefix("/v2/")?.split(suffix).next();
    match (request.method.as_str(), request.status) {
        ("PUT", 201) if request.path.contains("/blobs/uploads/") => Some((
            repo_of("/blobs/uploads/")?.to_string(),
            param(&request.query, "digest")?.to_string(),
        )),
        ("POST", 201) => {
            let digest = param(&request.query, "mount").or(param(&request.query, "digest"))?;
            Some((repo_of("/blobs/uploads/")?.to_string(), digest.to_string()))
        }
        ("HEAD", 200) if request.path.contains("/blobs/sha256:") => {
            let (repo, digest) = request.path.strip_prefix("/v2/")?.split_once("/blobs/")?;
            Some((repo.to_string(), digest.to_string()))
        }
        _ => None,
    }
}

/// A manifest PUT: (repository, reference).
fn manifest_put(request: &Request) -> Option<(String, String)> {
    if request.method != "PUT" || request.status != 201 {
        return None;
    }
    let (repo, reference) = request
        .path
        .strip_prefix("/v2/")?
        .split_once("/manifests/")?;
    Some((repo.to_string(), reference.to_string()))
}

/// A manifest read back: its digest and what it names.
#[derive(Debug, Clone)]
struct Fetched {
    digest: String,
    blobs: Vec<String>,
    children: Vec<String>,
}

/// The manifest `repository` holds under `reference`, read back with curl.
fn fetch(registry: &Registry, repository: &str, reference: &str) -> Fetched {
    let accept = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
                  application/vnd.docker.distribution.manifest.list.v2+json, \
                  application/vnd.docker.distribution.manifest.v2+json";
    let out = run(std::process::Command::new("curl")
        .args(["-sf", "-H"])
        .arg(format!("Accept: {accept}"))
        .arg(format!(
            "http://{}/v2/{repository}/manifests/{reference}",
            registry.host
        )));
    let manifest: Value = serde_json::from_slice(&out.stdout).unwrap();
    let digests = |key: &str| -> Vec<String> {
        manifest[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| d["digest"].as_str().unwrap().to_string())
            .collect()
    };
    let mut blobs = digests("layers");
    blobs.extend(digests("blobs"));
    blobs.extend(manifest["config"]["digest"].as_str().map(str::to_string));
    Fetched {
        digest: format!("sha256:{}", sha256_hex(&out.stdout)),
        blobs,
        children: digests("manifests"),
    }
}

/// The sample distribution pulled into a bundle in `home`.
fn sample_bundle(home: &Path) -> std::path::PathBuf {
    let source = Registry::start("plain");
    let src = seed_sample(&source, ROOT, &[]);
    let bundle = home.join("bundle");
    let (code, _, stderr) = pull_insecure(home, &[bundle.to_str().unwrap(), "--source", &src]);
    assert_eq!(code, 0, "{stderr}");
    bundle
}

#[test]
fn manifests_follow_their_own_blobs_and_nothing_is_asked_or_written_twice() {
    let home = tempfile::tempdir().unwrap();
    let bundle = sample_bundle(home.path());
    let target = Registry::start("plain");
    let (code, _, stderr) = outcome(&mut push_cmd(home.path(), &target, &bundle, TARGET, &[]));
    assert_eq!(code, 0, "{stderr}");
    let log = requests(&target.log());
    let tags = listed(home.path(), &bundle).len();

    // Each manifest PUT comes after every blob and child manifest it names, in its repository.
    let mut held: HashSet<(String, String)> = HashSet::new();
    let mut written: HashSet<(String, String)> = HashSet::new();
    let mut fetched: HashMap<(String, String), Fetched> = HashMap::new();
    let mut puts = 0;
    for request in &log {
        if let Some(blob) = blob_held(request) {
            held.insert(blob);
        }
        let Some((repo, reference)) = manifest_put(request) else {
            continue;
        };
        puts += 1;
        let Fetched {
            digest,
            blobs,
            children,
        } = fetched
            .entry((repo.clone(), reference.clone()))
            .or_insert_with(|| fetch(&target, &repo, &reference))
            .clone();
        for blob in &blobs {
            assert!(
                held.contains(&(repo.clone(), blob.clone())),
                "{repo}:{reference} was written before its blob {blob} was there"
            );
        }
        for child in &children {
            assert!(
                written.contains(&(repo.clone(), child.clone())),
                "{repo}:{reference} was written before its child {child}"
            );
        }
        written.insert((repo, digest));
    }

    // Manifests went out while blobs were still uploading, not after the last of them.
    let last_blob = log.iter().rposition(|r| blob_held(r).is_some()).unwrap();
    let first_manifest = log.iter().position(|r| manifest_put(r).is_some()).unwrap();
    assert!(
        first_manifest < last_blob,
        "every manifest waited for every blob: first manifest at request {first_manifest}, last blob at {last_blob}"
    );

    // Nothing asked or written twice: one HEAD per tag, one PUT per manifest reference, one
    // existence check per blob and repository.
    let mut seen: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for r in &log {
        let asks = r.method == "HEAD" || (r.method == "PUT" && r.path.contains("/manifests/"));
        if asks {
            *seen
                .entry((r.method.clone(), r.path.clone(), r.query.clone()))
                .or_default() += 1;
        }
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "asked or written more than once: {twice:?}"
    );
    // A tagged image is written by its tag's PUT alone, not by digest as well.
    let by_digest: HashSet<(&String, &String)> = fetched
        .iter()
        .filter(|((_, reference), _)| reference.starts_with("sha256:"))
        .map(|((repo, _), f)| (repo, &f.digest))
        .collect();
    for ((repo, reference), f) in &fetched {
        assert!(
            reference.starts_with("sha256:") || !by_digest.contains(&(repo, &f.digest)),
            "{repo}:{reference} was written by digest and again by its tag"
        );
    }
    let manifest_heads = log
        .iter()
        .filter(|r| r.method == "HEAD" && r.path.contains("/manifests/"))
        .count();
    assert_eq!(manifest_heads, tags, "one HEAD per tag and no read-back");
    assert!(
        puts >= tags,
        "every tag was written: {puts} PUTs for {tags} tags"
    );

    // The registry opens a session for a blob sent whole in its POST: after that answer, the
    // uploads in flight at most tried it too, and every blob went up in POST + PUT.
    let whole_posts = log
        .iter()
        .filter(|r| r.method == "POST" && param(&r.query, "digest").is_some())
        .count();
    assert!(
        (1..=8).contains(&whole_posts),
        "{whole_posts} POSTs carried a whole blob to a registry that does not store them"
    );
}

#[test]
fn small_blobs_go_whole_in_one_post_where_the_registry_takes_it() {
    let home = tempfile::tempdir().unwrap();
    let bundle = sample_bundle(home.path());
    let target = Registry::start("plain");
    let proxy = FaultProxy::start(&target, &["--single-post-uploads"]);
    let mut cmd = ferry(home.path());
    cmd.args(["--no-progress", "push"])
        .arg(&bundle)
        .arg(format!("{}/{TARGET}", proxy.host))
        .arg("--insecure");
    let (code, stdout, stderr) = outcome(&mut cmd);
    assert_eq!(code, 0, "{stderr}");

    // Every blob went in one request, and none in a session of its own.
    let sent = proxy.requests();
    let whole = sent
        .iter()
        .filter(|l| l.starts_with("POST ") && l.contains("?digest=") && l.ends_with(" 201"))
        .count();
    let sessions = sent
        .iter()
        .filter(|l| l.starts_with("PUT ") && l.contains("/blobs/uploads/"))
        .count();
    assert!(
        whole > 0,
        "no blob went whole in a POST:\n{}",
        sent.join("\n")
    );
    assert_eq!(
        sessions,
        0,
        "blobs went up in sessions:\n{}",
        sent.join("\n")
    );
    assert!(stdout.contains(&format!("{whole} uploaded")), "{stdout}");

    // The registry holds what the bundle lists, as skopeo reads it.
    let images = listed(home.path(), &bundle);
    for image in &images {
        let path = image["path"].as_str().unwrap();
        let tag = image["tag"].as_str().unwrap();
        let repository = match path {
            "" => TARGET.to_string(),
            p => format!("{TARGET}/{p}"),
        };
        let digest = fetch(&target, &repository, tag).digest;
        assert_eq!(
            digest,
            image["digest"].as_str().unwrap(),
            "{repository}:{tag}"
        );
    }
    let platform = images.iter().find(|i| i["path"] == "").unwrap();
    target.skopeo_verifies(&format!("{TARGET}:{}", platform["tag"].as_str().unwrap()));
}
