//! What a pull asks the source for, read from the registry's own access log: the sample
//! distribution has release channels pointing at versions also taken by their own tags, and
//! images whose small metadata layers the resolver reads (channel files, digest lists); still
//! every manifest and every blob is fetched once, and nothing is asked with a HEAD that a GET
//! answers.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::*;
use serde_json::Value;

const ROOT: &str = "sample/ee";

/// One request of the access log: method and path (query left off).
fn requests(log: &str) -> Vec<(String, String)> {
    log.lines()
        .filter_map(|line| {
            let quoted = line.split('"').nth(1)?;
            let mut words = quoted.split(' ');
            let (method, path) = (words.next()?, words.next()?);
            let path = path.strip_prefix("/v2/")?.split('?').next()?;
            words
                .next()?
                .starts_with("HTTP/")
                .then(|| (method.to_string(), path.to_string()))
        })
        .collect()
}

#[test]
fn a_pull_with_channel_aliases_fetches_every_manifest_and_blob_once() {
    let registry = Registry::start("plain");
    let source = seed_sample(&registry, ROOT, &[]);
    let seeded = registry.log().len();
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("bundle");
    let mut pull = ferry(home.path());
    pull.args(["--no-progress", "pull"])
        .arg(&dir)
        .args(["--source", &source, "--insecure"]);
    ferry_ok(&mut pull);
    ferry_ok(ferry(home.path()).arg("verify").arg(&dir));
    let log = registry.log();
    let sent = requests(&log[seeded..]);
    assert!(
        !sent.is_empty(),
        "the registry logged no request of the pull"
    );

    // What each tag of the bundle points at, by the source repository it came from.
    let (code, listed, stderr) = outcome(ferry(home.path()).args(["ls", "--json"]).arg(&dir));
    assert_eq!(code, 0, "{stderr}");
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let tagged: HashMap<(String, String), String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|image| {
            let path = image["path"].as_str().unwrap();
            let repo = if path.is_empty() {
                ROOT.to_string()
            } else {
                format!("{ROOT}/{path}")
            };
            let tag = image["tag"].as_str().unwrap().to_string();
            ((repo, tag), image["digest"].as_str().unwrap().to_string())
        })
        .collect();

    let mut times: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut blobs = 0;
    for (method, path) in &sent {
        assert_eq!(method, "GET", "a pull only GETs: {method} /v2/{path}");
        let object = if let Some((_, digest)) = path.split_once("/blobs/") {
            blobs += 1;
            format!("blob {digest}")
        } else if let Some((repo, reference)) = path.split_once("/manifests/") {
            // A tag is asked once to learn what it points at; the bytes it answers with are
            // that manifest, so asking for its digest as well would be a second fetch.
            match tagged.get(&(repo.to_string(), reference.to_string())) {
                Some(digest) if !reference.starts_with("sha256:") => {
                    times
                        .entry(format!("tag {repo}:{reference}"))
                        .or_default()
                        .push(path.clone());
                    format!("manifest {digest}")
                }
                _ if reference.starts_with("sha256:") => format!("manifest {reference}"),
                // A tag the bundle does not hold (a channel the source lacks): asked once.
                _ => format!("tag {repo}:{reference}"),
            }
        } else {
            continue;
        };
        times.entry(object).or_default().push(path.clone());
    }
    let twice: Vec<(&String, &Vec<String>)> = times
        .iter()
        .filter(|(object, paths)| {
            // Two tags may point at one manifest: each tag is its own question.
            let by_tags = object.starts_with("manifest ")
                && paths.iter().all(|p| !p.contains("/manifests/sha256:"));
            paths.len() > 1 && !by_tags
        })
        .collect();
    assert!(
        twice.is_empty(),
        "fetched more than once: {twice:#?}\nall requests: {sent:#?}"
    );
    assert!(blobs > 0, "the pull fetched no blob: {sent:#?}");
}
