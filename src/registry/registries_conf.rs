//! containers-registries.conf(5): the `[[registry]]` tables (prefix, location, insecure,
//! blocked, mirrors) of the files podman, skopeo and buildah read, found and merged as
//! containers/image does: the main file, then the drop-ins of `registries.conf.d/` in name
//! order, a later table replacing an earlier one with the same prefix. Keys ferry has no use
//! for (search registries, short-name aliases, credential helpers) are left alone: the files
//! are shared with those tools.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::mirror_rules::{Mirror, MirrorError, PullFrom, Rule, check_place};

/// The system-wide file.
pub const SYSTEM_FILE: &str = "/etc/containers/registries.conf";
/// The system-wide drop-in directory.
pub const SYSTEM_DIR: &str = "/etc/containers/registries.conf.d";

/// The files to read, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFiles {
    /// The main file.
    pub main: PathBuf,
    /// Whether a missing main file is an error (one named by `CONTAINERS_REGISTRIES_CONF`).
    pub main_required: bool,
    /// Directories whose `*.conf` files are read after it, each in name order.
    pub drop_in_dirs: Vec<PathBuf>,
}

impl ConfigFiles {
    /// The files containers tools read: `$CONTAINERS_REGISTRIES_CONF` alone when set (a
    /// complete configuration: no drop-ins are added to it); else
    /// `~/.config/containers/registries.conf` with its `.d` directory when it exists; else
    /// `/etc/containers/registries.conf`, `/etc/containers/registries.conf.d/` and
    /// `~/.config/containers/registries.conf.d/`.
    pub fn from_env() -> Self {
        let var = |k| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        if let Some(file) = var("CONTAINERS_REGISTRIES_CONF") {
            return ConfigFiles {
                main: file,
                main_required: true,
                drop_in_dirs: Vec::new(),
            };
        }
        let user = var("HOME").map(|h| h.join(".config/containers"));
        if let Some(user) = &user
            && user.join("registries.conf").is_file()
        {
            return ConfigFiles {
                main: user.join("registries.conf"),
                main_required: false,
                drop_in_dirs: vec![user.join("registries.conf.d")],
            };
        }
        let mut drop_in_dirs = vec![PathBuf::from(SYSTEM_DIR)];
        drop_in_dirs.extend(user.map(|u| u.join("registries.conf.d")));
        ConfigFiles {
            main: PathBuf::from(SYSTEM_FILE),
            main_required: false,
            drop_in_dirs,
        }
    }

    /// Reads and merges the files into rules, sorted by prefix. A file that exists but does
    /// not parse, or holds a table containers would refuse, is an error naming it.
    pub fn load(&self) -> Result<Vec<Rule>, MirrorError> {
        let mut rules: BTreeMap<String, Rule> = BTreeMap::new();
        match std::fs::read_to_string(&self.main) {
            Ok(text) => {
                for rule in parse(&text, &self.main, false)? {
                    rules.insert(rule.prefix.clone(), rule);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !self.main_required => {}
            Err(e) => return Err(config_error(&self.main, format!("cannot read it: {e}"))),
        }
        for dir in &self.drop_in_dirs {
            for file in drop_ins(dir)? {
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| config_error(&file, format!("cannot read it: {e}")))?;
                // A drop-in replaces whole tables by prefix, as containers/image merges them.
                for rule in parse(&text, &file, true)? {
                    rules.insert(rule.prefix.clone(), rule);
                }
            }
        }
        Ok(rules.into_values().collect())
    }
}

/// The `*.conf` files of a drop-in directory, in name order; none when it does not exist.
fn drop_ins(dir: &Path) -> Result<Vec<PathBuf>, MirrorError> {
    let listing = match std::fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(config_error(dir, format!("cannot list it: {e}"))),
    };
    let mut files = Vec::new();
    for entry in listing {
        let entry = entry.map_err(|e| config_error(dir, format!("cannot list it: {e}")))?;
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "conf") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn config_error(file: &Path, reason: String) -> MirrorError {
    MirrorError::Config {
        file: file.display().to_string(),
        reason,
    }
}

#[derive(Deserialize, Default)]
struct File {
    #[serde(default)]
    registry: Vec<Table>,
    /// The version 1 format: `[registries.insecure]` and `[registries.block]` lists.
    #[serde(default)]
    registries: Option<V1>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct Table {
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
    #[serde(default)]
    mirror_by_digest_only: bool,
    #[serde(default)]
    pull_from_mirror: Option<String>,
    #[serde(default)]
    mirror: Vec<MirrorTable>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct MirrorTable {
    #[serde(default)]
    location: String,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    pull_from_mirror: Option<String>,
}

#[derive(Deserialize, Default)]
struct V1 {
    #[serde(default)]
    insecure: V1List,
    #[serde(default)]
    block: V1List,
}

#[derive(Deserialize, Default)]
struct V1List {
    #[serde(default)]
    registries: Vec<String>,
}

/// Parses one file into its rules, checked as containers/image checks them. The first of two
/// tables with one prefix wins, as there. `drop_in` files must use the version 2 format.
pub fn parse(text: &str, file: &Path, drop_in: bool) -> Result<Vec<Rule>, MirrorError> {
    let fail = |reason: String| config_error(file, reason);
    let parsed: File = toml::from_str(text).map_err(|e| fail(e.to_string().trim().to_string()))?;
    let origin = file.display().to_string();
    let mut tables = parsed.registry;
    if let Some(v1) = parsed.registries {
        if drop_in {
            return Err(fail(
                "a drop-in file must use the version 2 format ([[registry]] tables)".into(),
            ));
        }
        if !tables.is_empty() {
            return Err(fail(
                "mixes the version 1 ([registries.*]) and version 2 ([[registry]]) formats".into(),
            ));
        }
        // Version 1 lists become tables, as containers/image converts them.
        let mut by_location: Vec<Table> = Vec::new();
        let lists = [
            (&v1.block.registries, true),
            (&v1.insecure.registries, false),
        ];
        for (list, blocks) in lists {
            for location in list {
                let location = location.trim_end_matches('/').to_string();
                let at = match by_location.iter().position(|t| t.location == location) {
                    Some(at) => at,
                    None => {
                        by_location.push(Table {
                            location,
                            ..Table::default()
                        });
                        by_location.len() - 1
                    }
                };
                if blocks {
                    by_location[at].blocked = true;
                } else {
                    by_location[at].insecure = true;
                }
            }
        }
        tables = by_location;
    }
    let mut rules: Vec<Rule> = Vec::new();
    for table in tables {
        let location = place(&table.location, &fail)?;
        let prefix = match place(&table.prefix, &fail)? {
            p if p.is_empty() && location.is_empty() => {
                return Err(fail(
                    "a [[registry]] has neither prefix nor location".into(),
                ));
            }
            p if p.is_empty() => location.clone(),
            p => p,
        };
        let wildcard = prefix.starts_with("*.");
        if !wildcard && location.is_empty() {
            return Err(fail(format!(
                "[[registry]] prefix \"{prefix}\" has no location (only a *.domain prefix may \
                 leave it out)"
            )));
        }
        check_prefix(&prefix).map_err(|r| fail(format!("[[registry]] prefix {r}")))?;
        if !location.is_empty() {
            check_place(&location, false)
                .map_err(|r| fail(format!("[[registry]] location {r}")))?;
        }
        if table.pull_from_mirror.is_some() {
            return Err(fail(format!(
                "pull-from-mirror must not be set for a registry (\"{prefix}\"), only for its \
                 mirrors"
            )));
        }
        let mut mirrors = Vec::new();
        for mirror in table.mirror {
            let mirror_location = place(&mirror.location, &fail)?;
            if mirror_location.is_empty() {
                return Err(fail(format!(
                    "a [[registry.mirror]] of \"{prefix}\" has no location"
                )));
            }
            check_place(&mirror_location, false)
                .map_err(|r| fail(format!("[[registry.mirror]] location {r}")))?;
            if table.mirror_by_digest_only && mirror.pull_from_mirror.is_some() {
                return Err(fail(format!(
                    "\"{prefix}\" sets mirror-by-digest-only and its mirror {mirror_location} \
                     pull-from-mirror: set one of them"
                )));
            }
            let pull_from = match mirror.pull_from_mirror.as_deref() {
                None | Some("" | "all") => PullFrom::All,
                Some("digest-only") => PullFrom::DigestOnly,
                Some("tag-only") => PullFrom::TagOnly,
                Some(other) => {
                    return Err(fail(format!(
                        "pull-from-mirror = \"{other}\" (mirror {mirror_location}): expected \
                         all, digest-only or tag-only"
                    )));
                }
            };
            mirrors.push(Mirror {
                location: mirror_location,
                insecure: mirror.insecure,
                pull_from,
            });
        }
        if rules.iter().any(|r| r.prefix == prefix) {
            continue;
        }
        rules.push(Rule {
            prefix,
            location,
            insecure: table.insecure,
            blocked: table.blocked,
            mirror_by_digest_only: table.mirror_by_digest_only,
            mirrors,
            contact_primary: true,
            origin: origin.clone(),
        });
    }
    Ok(rules)
}

/// A prefix or location as written, without trailing `/`; a scheme is refused.
fn place(value: &str, fail: &impl Fn(String) -> MirrorError) -> Result<String, MirrorError> {
    let value = value.trim_end_matches('/');
    if value.starts_with("http://") || value.starts_with("https://") {
        return Err(fail(format!(
            "'{value}': URI schemes are not supported; write host[:port][/path]"
        )));
    }
    Ok(value.to_string())
}

/// A prefix may also name a tag or digest (`host/repo:tag`), as containers allows.
fn check_prefix(prefix: &str) -> Result<(), String> {
    check_place(prefix, true).or_else(|reason| match crate::reference::Reference::parse(prefix) {
        Ok(r) if r.tag.is_some() || r.digest.is_some() => Ok(()),
        _ => Err(reason),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<Vec<Rule>, MirrorError> {
        parse(text, Path::new("/etc/containers/registries.conf"), false)
    }

    #[test]
    fn registry_tables_and_their_mirrors_are_read() {
        let rules = parsed(
            r#"
unqualified-search-registries = ["docker.io"]
short-name-mode = "enforcing"

[[registry]]
prefix = "docker.io"
location = "docker.io"

[[registry.mirror]]
location = "127.0.0.1:5000/dockerhub"
insecure = true

[[registry.mirror]]
location = "cache.local/hub"
pull-from-mirror = "digest-only"

[[registry]]
location = "quay.io"
blocked = true

[[registry]]
prefix = "*.corp.example"
mirror-by-digest-only = true
[[registry.mirror]]
location = "cache.local/corp"

[aliases]
"nginx" = "docker.io/library/nginx"
"#,
        )
        .unwrap();
        assert_eq!(rules.len(), 3);
        let hub = &rules[0];
        assert_eq!(
            (hub.prefix.as_str(), hub.location.as_str()),
            ("docker.io", "docker.io")
        );
        assert_eq!(hub.mirrors.len(), 2);
        assert!(hub.mirrors[0].insecure && hub.contact_primary);
        assert_eq!(hub.mirrors[1].pull_from, PullFrom::DigestOnly);
        assert_eq!(hub.origin, "/etc/containers/registries.conf");
        assert_eq!(rules[1].prefix, "quay.io");
        assert!(rules[1].blocked);
        assert!(rules[2].location.is_empty() && rules[2].mirror_by_digest_only);
    }

    #[test]
    fn what_containers_refuses_is_refused_with_the_file_named() {
        for (text, needle) in [
            ("[[registry]\nprefix = 1", "TOML parse error"),
            (
                "[[registry]]\nprefix = 1\nlocation = \"a.io\"",
                "invalid type",
            ),
            (
                "[[registry]]\ninsecure = true",
                "neither prefix nor location",
            ),
            ("[[registry]]\nprefix = \"a.io\"", "has no location"),
            ("[[registry]]\nlocation = \"https://a.io\"", "URI schemes"),
            (
                "[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\ninsecure = true",
                "no location",
            ),
            (
                "[[registry]]\nlocation = \"a.io\"\npull-from-mirror = \"all\"",
                "must not be set for a registry",
            ),
            (
                "[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\nlocation = \"m.io\"\npull-from-mirror = \"sometimes\"",
                "expected all, digest-only or tag-only",
            ),
            (
                "[[registry]]\nlocation = \"a.io\"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = \"m.io\"\npull-from-mirror = \"all\"",
                "set one of them",
            ),
            ("[[registry]]\nprefix = \"*.a.io/x\"", "*.domain"),
            (
                "[registries.block]\nregistries = [\"a.io\"]\n[[registry]]\nlocation = \"b.io\"",
                "mixes the version 1",
            ),
        ] {
            let err = parsed(text).unwrap_err().to_string();
            assert!(
                err.starts_with("/etc/containers/registries.conf: "),
                "{err}"
            );
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn version_1_lists_become_tables() {
        let rules = parsed(
            "[registries.search]\nregistries = [\"docker.io\"]\n[registries.insecure]\nregistries = [\"localhost:5000\", \"b.io\"]\n[registries.block]\nregistries = [\"b.io\"]\n",
        )
        .unwrap();
        let got: Vec<(&str, bool, bool)> = rules
            .iter()
            .map(|r| (r.prefix.as_str(), r.insecure, r.blocked))
            .collect();
        assert_eq!(got, [("b.io", true, true), ("localhost:5000", true, false)]);
        let err = parse(
            "[registries.block]\nregistries = [\"a.io\"]\n",
            Path::new("x.conf"),
            true,
        )
        .unwrap_err();
        assert!(err.to_string().contains("version 2"), "{err}");
    }

    #[test]
    fn drop_ins_replace_tables_by_prefix_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("registries.conf");
        std::fs::write(
            &main,
            "[[registry]]\nlocation = \"docker.io\"\n[[registry.mirror]]\nlocation = \"main.local\"\n\n[[registry]]\nlocation = \"quay.io\"\n[[registry.mirror]]\nlocation = \"q.local\"\n",
        )
        .unwrap();
        let d = dir.path().join("registries.conf.d");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(
            d.join("20-late.conf"),
            "[[registry]]\nlocation = \"docker.io\"\n[[registry.mirror]]\nlocation = \"late.local\"\n",
        )
        .unwrap();
        std::fs::write(
            d.join("10-early.conf"),
            "[[registry]]\nlocation = \"docker.io\"\n[[registry.mirror]]\nlocation = \"early.local\"\n\n[[registry]]\nlocation = \"ghcr.io\"\nblocked = true\n",
        )
        .unwrap();
        std::fs::write(d.join("ignored.txt"), "not toml [").unwrap();
        std::fs::create_dir(d.join("sub.conf")).unwrap();
        let files = ConfigFiles {
            main: main.clone(),
            main_required: false,
            drop_in_dirs: vec![d.clone(), dir.path().join("absent")],
        };
        let rules = files.load().unwrap();
        let got: Vec<(&str, &str)> = rules
            .iter()
            .map(|r| {
                (
                    r.prefix.as_str(),
                    r.mirrors.first().map_or("", |m| m.location.as_str()),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("docker.io", "late.local"),
                ("ghcr.io", ""),
                ("quay.io", "q.local")
            ]
        );
        assert!(rules[0].origin.ends_with("20-late.conf"));

        // A broken drop-in is an error naming it; a missing main file is not, unless named.
        std::fs::write(d.join("30-broken.conf"), "[[registry]\n").unwrap();
        let err = files.load().unwrap_err().to_string();
        assert!(err.contains("30-broken.conf"), "{err}");
        let named = ConfigFiles {
            main: dir.path().join("nope.conf"),
            main_required: true,
            drop_in_dirs: Vec::new(),
        };
        assert!(named.load().unwrap_err().to_string().contains("nope.conf"));
        let optional = ConfigFiles {
            main_required: false,
            ..named
        };
        assert!(optional.load().unwrap().is_empty());
    }

    #[test]
    fn the_machines_own_files_parse() {
        // Whatever this machine has must not stop a pull (Debian ships comments and aliases).
        let files = ConfigFiles {
            main: PathBuf::from(SYSTEM_FILE),
            main_required: false,
            drop_in_dirs: vec![PathBuf::from(SYSTEM_DIR)],
        };
        files.load().unwrap();
    }
}
