//! Source resolution against a real registry seeded with the sample distribution
//! (testdata/distribution.toml) by skopeo. Expected plans are written out here from the sample's
//! description; their digests, media types and sizes come from skopeo reading the source, and
//! the digest lists inside images from GNU tar reading the layers skopeo fetched.

mod common;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::{Value, json};

const ROOT: &str = "sample/ee";
const REPOS: [&str; 4] = ["", "install", "install-standalone", "release-channel"];
const PLATFORM_CHANNELS: [(&str, &str); 5] = [
    ("alpha", "v1.63.0"),
    ("beta", "v1.62.2"),
    ("early-access", "v1.62.0"),
    ("stable", "v1.61.1"),
    ("rock-solid", "v1.60.3"),
];

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (_, true) => a.to_string(),
        (true, false) => b.to_string(),
        _ => format!("{a}/{b}"),
    }
}

/// The source registry, seeded once per test.
struct Source {
    registry: Registry,
    /// Raw manifests by reference, as skopeo reads them.
    raw: RefCell<HashMap<String, Vec<u8>>>,
}

impl Source {
    fn seeded(root: &str, extra: &[&str]) -> Source {
        let registry = Registry::start("plain");
        let out = run(Command::new(repo_root().join("scripts/seed-source.sh"))
            .arg(&registry.host)
            .arg(root)
            .args(extra));
        let printed = String::from_utf8(out.stdout).unwrap();
        assert!(printed.contains(&format!("FERRY_SOURCE={}/{root}", registry.host)));
        Source {
            registry,
            raw: RefCell::new(HashMap::new()),
        }
    }

    fn reference(&self, repo: &str, reference: &str) -> String {
        let separator = if reference.starts_with("sha256:") {
            "@"
        } else {
            ":"
        };
        format!("{}{separator}{reference}", join(ROOT, repo))
    }

    fn raw(&self, repo: &str, reference: &str) -> Vec<u8> {
        let key = self.reference(repo, reference);
        if let Some(raw) = self.raw.borrow().get(&key) {
            return raw.clone();
        }
        let raw = self.registry.raw_manifest(&key);
        self.raw.borrow_mut().insert(key, raw.clone());
        raw
    }

    /// Tags of a repository, as skopeo lists them.
    fn tags(&self, repo: &str) -> BTreeSet<String> {
        self.registry.skopeo_tags(&join(ROOT, repo))
    }

    /// A file from an image's filesystem: skopeo fetches the image, GNU tar reads the layer.
    fn file_in_image(&self, repo: &str, tag: &str, path: &str) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        self.registry
            .skopeo_copy_to_dir(&self.reference(repo, tag), dir.path());
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap())
                .unwrap();
        for layer in manifest["layers"].as_array().unwrap().iter().rev() {
            let hex = &layer["digest"].as_str().unwrap()[7..];
            let out = Command::new("tar")
                .arg("-xzOf")
                .arg(dir.path().join(hex))
                .arg(path)
                .output()
                .unwrap();
            if out.status.success() {
                return out.stdout;
            }
        }
        panic!("{repo}:{tag} has no {path}");
    }

    /// Digests named in a JSON file of an image.
    fn digests_in(&self, repo: &str, tag: &str, path: &str) -> Vec<String> {
        let text = String::from_utf8(self.file_in_image(repo, tag, path)).unwrap();
        let mut found: Vec<String> = text
            .match_indices("sha256:")
            .map(|(i, _)| text[i..i + 71].to_string())
            .collect();
        found.sort();
        found.dedup();
        found
    }

    /// Every manifest and blob behind a reference, with sizes, as skopeo reads the manifests.
    fn parts(&self, repo: &str, reference: &str, into: &mut BTreeMap<String, u64>) -> Value {
        let raw = self.raw(repo, reference);
        let digest = format!("sha256:{}", sha256_hex(&raw));
        into.insert(digest, raw.len() as u64);
        let manifest: Value = serde_json::from_slice(&raw).unwrap();
        if let Some(children) = manifest["manifests"].as_array() {
            for child in children.clone() {
                self.parts(repo, child["digest"].as_str().unwrap(), into);
            }
        }
        for blob in manifest["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(manifest.get("config"))
        {
            into.insert(
                blob["digest"].as_str().unwrap().into(),
                blob["size"].as_u64().unwrap(),
            );
        }
        manifest
    }

    /// The dry-run JSON image objects ferry should print for `rows` (path, tag, repo,
    /// reference), and the unique bytes behind them.
    fn expected(&self, rows: &[(String, String, String, String)]) -> (Vec<Value>, u64) {
        let mut all = BTreeMap::new();
        let mut images: Vec<Value> = rows
            .iter()
            .map(|(path, tag, repo, reference)| {
                let mut parts = BTreeMap::new();
                let manifest = self.parts(repo, reference, &mut parts);
                let raw = self.raw(repo, reference);
                all.extend(parts.clone());
                // The archive follows from the path as layouts/deckhouse.yaml says; the source
                // is where the tag was read.
                let archive = match path.split('/').collect::<Vec<_>>().as_slice() {
                    ["modules", name, ..] => format!("module-{name}.tar"),
                    ["modules"] => format!("module-{tag}.tar"),
                    ["security", ..] => "security.tar".to_string(),
                    _ => "platform.tar".to_string(),
                };
                json!({
                    "path": path,
                    "tag": tag,
                    "digest": format!("sha256:{}", sha256_hex(&raw)),
                    "media_type": manifest["mediaType"],
                    "size": parts.values().sum::<u64>(),
                    "archive": archive,
                    "source": format!(
                        "{}/{}",
                        self.registry.host,
                        self.reference(repo, reference)
                    ),
                })
            })
            .collect();
        images.sort_by(|a, b| {
            (a["path"].as_str(), a["tag"].as_str()).cmp(&(b["path"].as_str(), b["tag"].as_str()))
        });
        (images, all.values().sum())
    }
}

type Rows = Vec<(String, String, String, String)>;

fn row(path: &str, tag: &str, repo: &str, reference: &str) -> (String, String, String, String) {
    (path.into(), tag.into(), repo.into(), reference.into())
}

fn platform_rows(source: &Source, versions: &[&str], aliases: &[(&str, &str)]) -> Rows {
    let mut rows = Vec::new();
    for version in versions {
        for repo in REPOS {
            rows.push(row(repo, version, repo, version));
        }
        for digest in source.digests_in("install", version, "deckhouse/candi/images_digests.json") {
            rows.push(row("", &digest[7..], "", &digest));
        }
    }
    for (channel, version) in aliases {
        for repo in REPOS {
            rows.push(row(repo, channel, repo, version));
        }
    }
    rows
}

fn module_rows(
    source: &Source,
    name: &str,
    versions: &[&str],
    aliases: &[(&str, &str)],
    only_extra: bool,
) -> Rows {
    let module = format!("modules/{name}");
    let release = format!("{module}/release");
    let mut rows = Vec::new();
    for version in versions {
        let extras: BTreeMap<String, Value> =
            serde_json::from_slice(&source.file_in_image(&module, version, "extra_images.json"))
                .unwrap();
        for (extra, tag) in extras {
            let tag = match tag {
                Value::String(s) => s,
                other => other.to_string(),
            };
            let repo = format!("{module}/extra/{extra}");
            rows.push(row(&repo, &tag, &repo, &tag));
        }
        if only_extra {
            continue;
        }
        rows.push(row(&module, version, &module, version));
        rows.push(row(&release, version, &release, version));
        for digest in source.digests_in(&module, version, "images_digests.json") {
            rows.push(row(&module, &digest[7..], &module, &digest));
        }
    }
    if !only_extra {
        for (channel, version) in aliases {
            rows.push(row(&release, channel, &release, version));
        }
        rows.push(row("modules", name, "modules", name));
    }
    rows.sort();
    rows.dedup();
    rows
}

fn security_rows() -> Rows {
    [
        ("security/trivy-db", "2"),
        ("security/trivy-bdu", "1"),
        ("security/trivy-java-db", "1"),
        ("security/trivy-checks", "0"),
    ]
    .iter()
    .map(|(repo, tag)| row(repo, tag, repo, tag))
    .collect()
}

const CONSOLE_CHANNELS: [(&str, &str); 5] = [
    ("alpha", "v1.3.0"),
    ("beta", "v1.2.1"),
    ("early-access", "v1.2.1"),
    ("stable", "v1.2.0"),
    ("rock-solid", "v1.1.0"),
];
const ZEROTRUST_CHANNELS: [(&str, &str); 5] = [
    ("alpha", "v0.5.0"),
    ("beta", "v0.5.0"),
    ("early-access", "v0.4.2"),
    ("stable", "v0.4.2"),
    ("rock-solid", "v0.4.0"),
];
const METRICS_CHANNELS: [(&str, &str); 6] = [
    ("alpha", "v2.1.0"),
    ("beta", "v2.1.0"),
    ("early-access", "v2.1.0"),
    ("stable", "v2.1.0"),
    ("rock-solid", "v2.0.0"),
    ("lts", "v2.0.0"),
];
const GATEWAY_CHANNELS: [(&str, &str); 5] = [
    ("alpha", "v1.0.0"),
    ("beta", "v1.0.0"),
    ("early-access", "v1.0.0"),
    ("stable", "v1.0.0"),
    ("rock-solid", "v1.0.0"),
];

/// A module taken as its channels say: the versions they point to, every channel alias.
fn by_channels(source: &Source, name: &str) -> Rows {
    let channels: &[(&str, &str)] = match name {
        "console" => &CONSOLE_CHANNELS,
        "zerotrust" => &ZEROTRUST_CHANNELS,
        "metrics" => &METRICS_CHANNELS,
        "gateway" => &GATEWAY_CHANNELS,
        other => panic!("no module {other} in the sample"),
    };
    let versions: BTreeSet<&str> = channels.iter().map(|(_, v)| *v).collect();
    let versions: Vec<&str> = versions.into_iter().collect();
    module_rows(source, name, &versions, channels, false)
}

/// Runs `ferry pull --dry-run --json` with `args` and returns its JSON.
fn dry_run(source: &Source, home: &Path, args: &[&str]) -> Value {
    let (code, stdout, stderr) = run_plan(
        &source.registry,
        ROOT,
        home,
        &[&["--json"][..], args].concat(),
    );
    assert_eq!(code, 0, "{args:?}: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn check(source: &Source, home: &Path, args: &[&str], rows: Rows) {
    let plan = dry_run(source, home, args);
    let (images, total) = source.expected(&rows);
    let got = plan["images"].as_array().unwrap();
    let keys = |list: &[Value]| -> Vec<(String, String)> {
        list.iter()
            .map(|i| {
                (
                    i["path"].as_str().unwrap().into(),
                    i["tag"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    assert_eq!(keys(got), keys(&images), "{args:?}: the tags differ");
    assert_eq!(
        got, &images,
        "{args:?}: digests, media types or sizes differ"
    );
    assert_eq!(plan["total_bytes"].as_u64().unwrap(), total, "{args:?}");
    for archive in plan["archives"].as_array().unwrap() {
        let bytes = archive["bytes"].as_u64().unwrap();
        assert!(bytes > 0, "{archive}");
    }
}

#[test]
fn dry_run_plans_match_the_source() {
    let source = Source::seeded(ROOT, &[]);
    let home = tempfile::tempdir().unwrap();
    let platform_versions = ["v1.60.3", "v1.61.1", "v1.62.0", "v1.62.2", "v1.63.0"];

    // The sample's tags are what the rule reads: skopeo agrees with the description.
    let release_tags = source.tags("release-channel");
    for v in ["v1.59.0", "v1.59.2", "v1.60.0", "v1.63.0", "stable"] {
        assert!(release_tags.contains(v), "{release_tags:?}");
    }

    // Everything, by default: the rock-solid..alpha rule, every module by its channels, security.
    let mut rows = platform_rows(&source, &platform_versions, &PLATFORM_CHANNELS);
    rows.extend(by_channels(&source, "console"));
    rows.extend(by_channels(&source, "zerotrust"));
    rows.extend(by_channels(&source, "metrics"));
    rows.extend(by_channels(&source, "gateway"));
    rows.extend(security_rows());
    check(&source, home.path(), &[], rows);
    let plan = dry_run(&source, home.path(), &["-c", "20KB"]);
    let names: Vec<&str> = plan["archives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "module-console.tar",
            "module-gateway.tar",
            "module-metrics.tar",
            "module-zerotrust.tar",
            "platform.tar",
            "security.tar"
        ]
    );
    for archive in plan["archives"].as_array().unwrap() {
        let bytes = archive["bytes"].as_u64().unwrap();
        assert_eq!(
            archive["chunks"].as_u64().unwrap(),
            bytes.div_ceil(20_000),
            "{archive}"
        );
    }

    // --since-version below rock-solid lowers the floor; above it changes nothing.
    let lower = [
        "v1.59.2", "v1.60.3", "v1.61.1", "v1.62.0", "v1.62.2", "v1.63.0",
    ];
    let only_platform = ["--no-modules", "--no-security-db"];
    check(
        &source,
        home.path(),
        &[&only_platform[..], &["--since-version", "1.59.1"]].concat(),
        platform_rows(&source, &lower, &PLATFORM_CHANNELS),
    );
    check(
        &source,
        home.path(),
        &[&only_platform[..], &["--since-version", "v1.62.0"]].concat(),
        platform_rows(&source, &platform_versions, &PLATFORM_CHANNELS),
    );

    // --deckhouse-tag: that version only, and every channel points to it.
    let pinned: Vec<(&str, &str)> = PLATFORM_CHANNELS
        .iter()
        .map(|(c, _)| (*c, "v1.61.0"))
        .collect();
    check(
        &source,
        home.path(),
        &[&only_platform[..], &["--deckhouse-tag", "1.61.0"]].concat(),
        platform_rows(&source, &["v1.61.0"], &pinned),
    );

    // Module filters: an exact pin (all channels move to it), a range plus channels, a pin
    // with one channel.
    let modules_only = ["--no-platform", "--no-security-db"];
    let mut rows = module_rows(
        &source,
        "console",
        &["v1.0.0"],
        &CONSOLE_CHANNELS.map(|(c, _)| (c, "v1.0.0")),
        false,
    );
    rows.extend(module_rows(
        &source,
        "zerotrust",
        &["v0.3.0", "v0.4.0", "v0.4.2", "v0.5.0"],
        &ZEROTRUST_CHANNELS,
        false,
    ));
    rows.extend(module_rows(
        &source,
        "metrics",
        &["v2.0.0"],
        &[("stable", "v2.0.0")],
        false,
    ));
    check(
        &source,
        home.path(),
        &[
            &modules_only[..],
            &[
                "-i",
                "console@=1.0.0",
                "-i",
                "zerotrust@>=0.3.0 <0.4.0",
                "-i",
                "metrics@=v2.0.0+stable",
            ],
        ]
        .concat(),
        rows,
    );

    // Excludes: a whole module, and versions of another (with the channels that pointed there).
    let mut rows = module_rows(
        &source,
        "console",
        &["v1.1.0"],
        &[("rock-solid", "v1.1.0")],
        false,
    );
    rows.extend(by_channels(&source, "zerotrust"));
    rows.extend(by_channels(&source, "metrics"));
    check(
        &source,
        home.path(),
        &[
            &modules_only[..],
            &["-e", "console@>=1.2.0", "-e", "gateway"],
        ]
        .concat(),
        rows,
    );

    // Only extra images: a bare name still means the channel versions, never nothing.
    let mut rows = module_rows(
        &source,
        "console",
        &["v1.1.0", "v1.2.0", "v1.2.1", "v1.3.0"],
        &[],
        true,
    );
    rows.extend(module_rows(
        &source,
        "metrics",
        &["v2.0.0", "v2.1.0"],
        &[],
        true,
    ));
    assert!(rows.len() >= 3, "{rows:?}");
    check(
        &source,
        home.path(),
        &[
            &modules_only[..],
            &["--only-extra-images", "-i", "console", "-i", "metrics"],
        ]
        .concat(),
        rows,
    );

    // The structure is data: a layout file that names one security database plans just that.
    let layout = home.path().join("one-db.yaml");
    let text = std::fs::read_to_string(repo_root().join("layouts/deckhouse.yaml")).unwrap();
    let start = text.find("    - { repo: security/trivy-bdu").unwrap();
    std::fs::write(&layout, &text[..start]).unwrap();
    let layout_arg = layout.display().to_string();
    check(
        &source,
        home.path(),
        &["--no-platform", "--no-modules", "--layout", &layout_arg],
        security_rows()[..1].to_vec(),
    );

    // Modules looked for elsewhere: none there is a warning, none there for -i an error.
    let plan = dry_run(
        &source,
        home.path(),
        &[&modules_only[..], &["--modules-path-suffix", "/elsewhere"]].concat(),
    );
    assert!(plan["images"].as_array().unwrap().is_empty(), "{plan}");
    let (code, _, stderr) = run_plan(
        &source.registry,
        ROOT,
        home.path(),
        &["--modules-path-suffix", "/elsewhere", "-i", "console"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--modules-path-suffix"), "{stderr}");

    // An unknown module is a usage error that lists the catalog.
    let (code, _, stderr) = run_plan(&source.registry, ROOT, home.path(), &["-i", "nosuch"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("'nosuch'") && stderr.contains("console, gateway, metrics, zerotrust"),
        "{stderr}"
    );

    // The human plan names every archive and the totals.
    let (code, stdout, stderr) = run_plan(&source.registry, ROOT, home.path(), &["-c", "1"]);
    assert_eq!(code, 0, "{stderr}");
    for needle in [
        "platform.tar",
        "module-zerotrust.tar",
        "security.tar",
        "to download:",
        "bundle: ",
        "free space in",
    ] {
        assert!(stdout.contains(needle), "{needle}: {stdout}");
    }
    assert!(
        !home.path().join("bundle").exists(),
        "a dry run writes nothing"
    );
}
