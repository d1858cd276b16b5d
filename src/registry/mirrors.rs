//! Source mirrors: where an image is read when a mirror stands in for its registry. The rules
//! ([`super::mirror_rules`]) come from `--source-mirror REGISTRY=HOST[:PORT][/PATH]` and from
//! the `[[registry]]` tables of containers' registries.conf (see [`super::registries_conf`]);
//! an image's name picks one rule by its longest matching prefix, as containers/image picks
//! it, and the rule gives the places to read it from, in order.

use super::mirror_rules::{COMMAND_LINE, Mirror, MirrorError, PullFrom, Rule, SourceMirror};
use crate::reference::Reference;

/// One place to read an image from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// `host[:port]`.
    pub registry: String,
    /// The repository there.
    pub repository: String,
    /// The tag or digest there (`None` when a repository was asked for).
    pub reference: Option<String>,
    /// What stands in for the image's own name, for messages: `mirror LOCATION for PREFIX
    /// (ORIGIN)` or `location LOCATION for PREFIX (ORIGIN)`; `None` when the source is the
    /// name itself.
    pub via: Option<String>,
}

impl Source {
    /// `host/repository`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

/// The rules in force: those of the command line first, then those of registries.conf.
#[derive(Debug, Clone, Default)]
pub struct Mirrors {
    command_line: Vec<Rule>,
    config: Vec<Rule>,
}

impl Mirrors {
    /// The rules of `--source-mirror` values (several for one prefix are its mirrors in the
    /// order given) and of registries.conf.
    pub fn new(command_line: &[SourceMirror], config: Vec<Rule>) -> Self {
        let mut rules: Vec<Rule> = Vec::new();
        for given in command_line {
            let mirror = Mirror {
                location: given.location.clone(),
                insecure: false,
                pull_from: PullFrom::All,
            };
            match rules.iter_mut().find(|r| r.prefix == given.prefix) {
                Some(rule) if rule.mirrors.contains(&mirror) => {}
                Some(rule) => rule.mirrors.push(mirror),
                None => rules.push(Rule {
                    location: if given.prefix.starts_with("*.") {
                        String::new()
                    } else {
                        given.prefix.clone()
                    },
                    prefix: given.prefix.clone(),
                    insecure: false,
                    blocked: false,
                    mirror_by_digest_only: false,
                    mirrors: vec![mirror],
                    contact_primary: false,
                    origin: COMMAND_LINE.into(),
                }),
            }
        }
        Mirrors {
            command_line: rules,
            config,
        }
    }

    /// True when no rule is in force.
    pub fn is_empty(&self) -> bool {
        self.command_line.is_empty() && self.config.is_empty()
    }

    /// The rule for `name` (`host/repo[:tag|@digest]`): the longest matching prefix of the
    /// command line's, else of registries.conf's.
    pub fn rule(&self, name: &str) -> Option<&Rule> {
        longest(&self.command_line, name).or_else(|| longest(&self.config, name))
    }

    /// Where to read `name` (`host/repo[:tag|@digest]`), in the order to try: the rule's
    /// mirrors that serve this kind of reference, then (for registries.conf rules) the
    /// registry's location. Without a rule, the name itself.
    pub fn sources(&self, name: &str) -> Result<Vec<Source>, MirrorError> {
        let Some(rule) = self.rule(name) else {
            return Ok(vec![parse_source(name, name, None, None)?]);
        };
        if rule.blocked {
            return Err(MirrorError::Blocked {
                name: name.to_string(),
                prefix: rule.prefix.clone(),
                origin: rule.origin.clone(),
            });
        }
        let matched = matching_prefix(name, &rule.prefix).expect("the rule matches");
        let by_digest = name.contains('@');
        let mut sources = Vec::new();
        for mirror in &rule.mirrors {
            let serves = match (rule.mirror_by_digest_only, mirror.pull_from) {
                (true, _) | (false, PullFrom::DigestOnly) => by_digest,
                (false, PullFrom::TagOnly) => !by_digest,
                (false, PullFrom::All) => true,
            };
            if serves {
                let rewritten = format!("{}{}", mirror.location, &name[matched..]);
                let via = format!(
                    "mirror {} for {} ({})",
                    mirror.location, rule.prefix, rule.origin
                );
                sources.push(parse_source(name, &rewritten, Some(via), Some(rule))?);
            }
        }
        if rule.contact_primary || sources.is_empty() {
            // A wildcard prefix has no location: its names are read where they say.
            let (rewritten, via) = if rule.location.is_empty() || rule.location == rule.prefix {
                (name.to_string(), None)
            } else {
                (
                    format!("{}{}", rule.location, &name[matched..]),
                    Some(format!(
                        "location {} for {} ({})",
                        rule.location, rule.prefix, rule.origin
                    )),
                )
            };
            sources.push(parse_source(name, &rewritten, via, Some(rule))?);
        }
        Ok(sources)
    }

    /// True when registries.conf says `host` is reached over plain HTTP (`insecure = true` on
    /// a registry or mirror located there).
    pub fn insecure(&self, host: &str) -> bool {
        let on = |location: &str| location.split('/').next() == Some(host);
        self.config.iter().any(|rule| {
            // A `*.domain` registry is located at every host it matches.
            let primary = if rule.location.is_empty() {
                matching_prefix(host, &rule.prefix).is_some()
            } else {
                on(&rule.location)
            };
            (rule.insecure && primary) || rule.mirrors.iter().any(|m| m.insecure && on(&m.location))
        })
    }

    /// The rules that apply to any of `names`, each once, in the order found: what a pull
    /// records so that other mirrors start it over.
    pub fn applied<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Vec<&Rule> {
        let mut found: Vec<&Rule> = Vec::new();
        for name in names {
            if let Some(rule) = self.rule(name)
                && !found.contains(&rule)
            {
                found.push(rule);
            }
        }
        found
    }
}

fn longest<'a>(rules: &'a [Rule], name: &str) -> Option<&'a Rule> {
    rules
        .iter()
        .filter(|r| matching_prefix(name, &r.prefix).is_some())
        // The first of equally long prefixes wins, as in containers/image.
        .fold(None, |best: Option<&Rule>, r| match best {
            Some(b) if b.prefix.len() >= r.prefix.len() => Some(b),
            _ => Some(r),
        })
}

/// How much of `name` the prefix matches, as containers/image matches it: the whole prefix,
/// followed by the end of the name, `/`, `:` or `@`; `*.domain` matches a host that ends in
/// `.domain`. `None` when it does not match.
pub fn matching_prefix(name: &str, prefix: &str) -> Option<usize> {
    let end = if let Some(domain) = prefix.strip_prefix('*') {
        let at = name.find(domain)?;
        if name[..at].contains('/') {
            return None;
        }
        at + domain.len()
    } else {
        if !name.starts_with(prefix) {
            return None;
        }
        prefix.len()
    };
    match name[end..].chars().next() {
        None | Some('/' | ':' | '@') => Some(end),
        Some(_) => None,
    }
}

fn parse_source(
    name: &str,
    rewritten: &str,
    via: Option<String>,
    rule: Option<&Rule>,
) -> Result<Source, MirrorError> {
    let reference = Reference::parse(rewritten).map_err(|e| MirrorError::Rewrite {
        name: name.to_string(),
        prefix: rule.map(|r| r.prefix.clone()).unwrap_or_default(),
        rewritten: rewritten.to_string(),
        origin: rule.map(|r| r.origin.clone()).unwrap_or_default(),
        reason: e.reason,
    })?;
    Ok(Source {
        reference: reference.target(),
        registry: reference.registry,
        repository: reference.repository,
        via,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_rule(prefix: &str, location: &str, mirrors: &[&str]) -> Rule {
        Rule {
            prefix: prefix.into(),
            location: location.into(),
            insecure: false,
            blocked: false,
            mirror_by_digest_only: false,
            mirrors: mirrors
                .iter()
                .map(|m| Mirror {
                    location: m.to_string(),
                    insecure: false,
                    pull_from: PullFrom::All,
                })
                .collect(),
            contact_primary: true,
            origin: "registries.conf".into(),
        }
    }

    fn names(sources: &[Source]) -> Vec<String> {
        sources
            .iter()
            .map(|s| format!("{}:{}", s.name(), s.reference.clone().unwrap_or_default()))
            .collect()
    }

    #[test]
    fn prefixes_match_whole_path_components() {
        assert_eq!(
            matching_prefix("docker.io/library/nginx:latest", "docker.io"),
            Some(9)
        );
        assert_eq!(
            matching_prefix("docker.io/library/nginx:latest", "docker.io/library"),
            Some(17)
        );
        assert_eq!(
            matching_prefix("docker.io/library/nginx:latest", "docker.io/library/nginx"),
            Some(23)
        );
        assert_eq!(
            matching_prefix("docker.io/library/nginx", "docker.io/lib"),
            None
        );
        assert_eq!(matching_prefix("docker.iox/a", "docker.io"), None);
        assert_eq!(
            matching_prefix("a.example.com/app", "*.example.com"),
            Some(13)
        );
        assert_eq!(
            matching_prefix("b.a.example.com:5000/app", "*.example.com"),
            Some(15)
        );
        assert_eq!(matching_prefix("example.com/app", "*.example.com"), None);
        assert_eq!(
            matching_prefix("x.io/a.example.com/app", "*.example.com"),
            None
        );
    }

    #[test]
    fn the_longest_prefix_wins_and_the_command_line_before_files() {
        let mirrors = Mirrors::new(
            &[],
            vec![
                file_rule("docker.io", "docker.io", &["m1.local/hub"]),
                file_rule("docker.io/library", "docker.io/library", &["m2.local"]),
            ],
        );
        let got = mirrors.sources("docker.io/library/nginx:latest").unwrap();
        assert_eq!(
            names(&got),
            ["m2.local/nginx:latest", "docker.io/library/nginx:latest"]
        );
        assert_eq!(
            got[0].via.as_deref(),
            Some("mirror m2.local for docker.io/library (registries.conf)")
        );
        assert_eq!(got[1].via, None);
        let got = mirrors.sources("docker.io/bitnami/redis:7").unwrap();
        assert_eq!(
            names(&got),
            ["m1.local/hub/bitnami/redis:7", "docker.io/bitnami/redis:7"]
        );
        // Unmatched names are read where they say.
        let got = mirrors.sources("quay.io/a/b:1").unwrap();
        assert_eq!(names(&got), ["quay.io/a/b:1"]);

        // A --source-mirror decides alone: its mirrors, in order, and never the registry.
        let cli: Vec<SourceMirror> = ["docker.io=c1.local:5000/hub", "docker.io=c2.local"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let mirrors = Mirrors::new(&cli, mirrors.config.clone());
        let got = mirrors.sources("docker.io/library/nginx:latest").unwrap();
        assert_eq!(
            names(&got),
            [
                "c1.local:5000/hub/library/nginx:latest",
                "c2.local/library/nginx:latest"
            ]
        );
        assert_eq!(
            got[0].via.as_deref(),
            Some("mirror c1.local:5000/hub for docker.io (--source-mirror)")
        );
    }

    #[test]
    fn digest_and_tag_only_mirrors_serve_their_kind() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let mut rule = file_rule(
            "r.io",
            "r.io",
            &["all.local", "digests.local", "tags.local"],
        );
        rule.mirrors[1].pull_from = PullFrom::DigestOnly;
        rule.mirrors[2].pull_from = PullFrom::TagOnly;
        let mirrors = Mirrors::new(&[], vec![rule.clone()]);
        assert_eq!(
            names(&mirrors.sources("r.io/app:v1").unwrap()),
            ["all.local/app:v1", "tags.local/app:v1", "r.io/app:v1"]
        );
        assert_eq!(
            names(&mirrors.sources(&format!("r.io/app@{digest}")).unwrap()),
            [
                format!("all.local/app:{digest}"),
                format!("digests.local/app:{digest}"),
                format!("r.io/app:{digest}")
            ]
        );
        // mirror-by-digest-only: no mirror for tags at all.
        rule.mirror_by_digest_only = true;
        for m in &mut rule.mirrors {
            m.pull_from = PullFrom::All;
        }
        let mirrors = Mirrors::new(&[], vec![rule]);
        assert_eq!(
            names(&mirrors.sources("r.io/app:v1").unwrap()),
            ["r.io/app:v1"]
        );
        assert_eq!(
            mirrors
                .sources(&format!("r.io/app@{digest}"))
                .unwrap()
                .len(),
            4
        );
    }

    #[test]
    fn locations_blocked_registries_and_insecure_hosts() {
        let mut moved = file_rule("example.com/foo", "internal.example.com:5000/bar", &[]);
        moved.insecure = true;
        let mut blocked = file_rule("evil.io", "evil.io", &[]);
        blocked.blocked = true;
        let mut wild = file_rule("*.corp.io", "", &["cache.local"]);
        wild.mirrors[0].insecure = true;
        let mirrors = Mirrors::new(&[], vec![moved, blocked, wild]);
        let got = mirrors.sources("example.com/foo/app:1").unwrap();
        assert_eq!(names(&got), ["internal.example.com:5000/bar/app:1"]);
        assert_eq!(
            got[0].via.as_deref(),
            Some("location internal.example.com:5000/bar for example.com/foo (registries.conf)")
        );
        let err = mirrors.sources("evil.io/x:1").unwrap_err();
        assert!(
            matches!(&err, MirrorError::Blocked { prefix, .. } if prefix == "evil.io"),
            "{err}"
        );
        assert!(err.to_string().contains("registries.conf"), "{err}");
        assert_eq!(
            names(&mirrors.sources("a.corp.io/team/app:2").unwrap()),
            ["cache.local/team/app:2", "a.corp.io/team/app:2"]
        );
        assert!(mirrors.insecure("internal.example.com:5000"));
        assert!(mirrors.insecure("cache.local"));
        assert!(!mirrors.insecure("example.com"));
        assert!(!mirrors.insecure("a.corp.io"));
        let mut insecure_wild = file_rule("*.lab.io", "", &[]);
        insecure_wild.insecure = true;
        let lab = Mirrors::new(&[], vec![insecure_wild]);
        assert!(lab.insecure("r.lab.io:5000") && lab.insecure("a.b.lab.io"));
        assert!(!lab.insecure("lab.io") && !lab.insecure("r.lab.io.evil"));
        // A --source-mirror for a blocked registry reads only the mirror: it is not refused.
        let cli = ["evil.io=good.local".parse().unwrap()];
        let mirrors = Mirrors::new(&cli, mirrors.config.clone());
        assert_eq!(
            names(&mirrors.sources("evil.io/x:1").unwrap()),
            ["good.local/x:1"]
        );
    }

    #[test]
    fn applied_rules_are_listed_once() {
        let cli = ["docker.io=m.local".parse().unwrap()];
        let mirrors = Mirrors::new(&cli, vec![file_rule("quay.io", "quay.io", &["q.local"])]);
        let applied = mirrors.applied([
            "docker.io/library/nginx:latest",
            "docker.io/library/alpine:3",
            "ghcr.io/x/y:1",
        ]);
        assert_eq!(applied.len(), 1);
        assert_eq!(applied[0].origin, COMMAND_LINE);
        assert!(mirrors.applied(["ghcr.io/x/y:1"]).is_empty());
    }
}
