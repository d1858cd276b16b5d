//! Module filters `name[@constraint]` and what they select from a module's tags and channels.
//!
//! Forms: `name` (what the channels point to), `name@1.3.0` = `name@^1.3.0` (Cargo caret),
//! `name@~1.3.0`, `name@">=1.1.0 <1.3.0"` (spaces or commas), `name@">=2 || ~1.3"`, each plus
//! the channel versions; `name@=tag` (only that tag; every channel points to it) and
//! `name@=tag+channel` (only that channel points to it).

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use semver::{Version, VersionReq};

/// The accepted forms, shown with every parse error.
pub const FORMS: &str = "accepted forms: NAME, NAME@1.3.0 (same as ^1.3.0), NAME@~1.3.0, \
NAME@'>=1.1.0 <1.3.0', NAME@=v1.3.0, NAME@=v1.3.0+stable";

/// A set of versions: alternatives (`||`), each a Cargo-style requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionSet {
    alternatives: Vec<VersionReq>,
}

impl VersionSet {
    /// Parses `^1.3`, `~1.3.0`, `>=1.1.0 <1.3.0`, `>=1.1.0, <1.3.0`, `>=2 || ~1.3`, with or
    /// without a leading `v` on each version.
    pub fn parse(text: &str) -> Result<VersionSet, String> {
        let mut alternatives = Vec::new();
        for alternative in text.split("||") {
            // Glue a lone operator to the version after it, then join with commas as semver
            // wants: ">= 1.1 <2" -> ">=1.1, <2".
            let mut parts: Vec<String> = Vec::new();
            let mut pending = String::new();
            for token in alternative
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|t| !t.is_empty())
            {
                if token.chars().all(|c| "<>=~^".contains(c)) {
                    pending.push_str(token);
                    continue;
                }
                let split = token
                    .find(|c: char| !"<>=~^".contains(c))
                    .unwrap_or(token.len());
                let (op, version) = token.split_at(split);
                let version = version.strip_prefix(['v', 'V']).unwrap_or(version);
                parts.push(format!("{pending}{op}{version}"));
                pending.clear();
            }
            if !pending.is_empty() || parts.is_empty() {
                return Err(format!("'{text}' has an operator without a version"));
            }
            let req = VersionReq::parse(&parts.join(", "))
                .map_err(|e| format!("'{text}' is not a version constraint: {e}"))?;
            alternatives.push(req);
        }
        Ok(VersionSet { alternatives })
    }

    /// True when `version` satisfies any alternative.
    pub fn matches(&self, version: &Version) -> bool {
        self.alternatives.iter().any(|req| req.matches(version))
    }
}

/// What one filter asks of a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Constraint {
    /// Only what the channels point to.
    Channels,
    /// Every tag in the set, plus what the channels point to.
    Versions(VersionSet),
    /// Exactly this tag; channels point to it (all, or only `channel`).
    Exact {
        /// The tag, any string.
        tag: String,
        /// The one channel that points to it.
        channel: Option<String>,
    },
}

/// One `-i`/`-e` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleFilter {
    /// The module's name.
    pub name: String,
    /// What it selects.
    pub constraint: Constraint,
}

impl FromStr for ModuleFilter {
    type Err = String;

    fn from_str(input: &str) -> Result<Self, String> {
        let (name, constraint) = match input.split_once('@') {
            None => (input, None),
            Some((name, constraint)) => (name, Some(constraint.trim())),
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
        {
            return Err(format!(
                "'{input}': '{name}' is not a module name (lowercase letters, digits, '-', '_', '.'); {FORMS}"
            ));
        }
        let constraint = match constraint {
            None => Constraint::Channels,
            Some(c) if c.is_empty() || c.chars().all(|ch| "<>=~^!".contains(ch)) => {
                return Err(format!(
                    "'{input}': the version constraint after '@' is missing. An unquoted '>' or \
                     '<' is taken by the shell as a redirect: quote the argument, e.g. \
                     -i '{name}@>=1.2.0'; {FORMS}"
                ));
            }
            Some(c) if c.contains('/') => {
                return Err(format!(
                    "'{input}': the constraint looks like a path, not a version (did the shell \
                     expand something?); {FORMS}"
                ));
            }
            Some(c)
                if c.starts_with('=')
                    && !c.starts_with("==")
                    && !c.starts_with("=<")
                    && !c.starts_with("=>") =>
            {
                let pin = &c[1..];
                let (tag, channel) = match pin.split_once('+') {
                    Some((tag, channel)) => (tag, Some(channel.to_string())),
                    None => (pin, None),
                };
                crate::reference::validate_tag(tag)
                    .map_err(|e| format!("'{input}': {e}; {FORMS}"))?;
                if channel.as_deref() == Some("") {
                    return Err(format!(
                        "'{input}': a channel name is missing after '+'; {FORMS}"
                    ));
                }
                Constraint::Exact {
                    tag: tag.to_string(),
                    channel,
                }
            }
            Some(c) => Constraint::Versions(
                VersionSet::parse(c).map_err(|e| format!("'{input}': {e}; {FORMS}"))?,
            ),
        };
        Ok(ModuleFilter {
            name: name.to_string(),
            constraint,
        })
    }
}

impl std::fmt::Display for VersionSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let alternatives: Vec<String> = self.alternatives.iter().map(|r| r.to_string()).collect();
        f.write_str(&alternatives.join(" || "))
    }
}

impl std::fmt::Display for ModuleFilter {
    /// The filter in its accepted form (`name`, `name@>=1.1.0, <1.3.0`, `name@=tag+channel`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.constraint {
            Constraint::Channels => write!(f, "{}", self.name),
            Constraint::Versions(set) => write!(f, "{}@{set}", self.name),
            Constraint::Exact { tag, channel: None } => write!(f, "{}@={tag}", self.name),
            Constraint::Exact {
                tag,
                channel: Some(channel),
            } => write!(f, "{}@={tag}+{channel}", self.name),
        }
    }
}

/// A tag as a version: `v1.2.3` or `1.2.3`.
pub fn tag_version(tag: &str) -> Option<Version> {
    Version::parse(tag.strip_prefix('v').unwrap_or(tag)).ok()
}

/// What a module offers: its tags and where its channels point.
#[derive(Debug, Clone, Default)]
pub struct ModuleOffer {
    /// Tags of the module repository.
    pub tags: Vec<String>,
    /// Channel → version tag, for every channel the module has.
    pub channels: BTreeMap<String, String>,
}

/// What a module's filters select.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Version tags to take.
    pub versions: BTreeSet<String>,
    /// Channel → version tag, for the channel tags the bundle will hold.
    pub aliases: BTreeMap<String, String>,
}

/// Applies the include constraints (OR-ed; none means "what the channels point to") and then
/// the exclude sets to one module. `channel_names` are the channels an exact pin without
/// `+channel` is aliased to.
pub fn select(
    includes: &[&Constraint],
    excludes: &[&VersionSet],
    offer: &ModuleOffer,
    channel_names: &[String],
) -> Selection {
    let default = [&Constraint::Channels];
    let includes = if includes.is_empty() {
        &default[..]
    } else {
        includes
    };
    let mut selection = Selection::default();
    let mut follows_channels = false;
    let mut pins = Vec::new();
    for constraint in includes {
        match constraint {
            Constraint::Channels => follows_channels = true,
            Constraint::Versions(set) => {
                follows_channels = true;
                selection.versions.extend(
                    offer
                        .tags
                        .iter()
                        .filter(|t| tag_version(t).is_some_and(|v| set.matches(&v)))
                        .cloned(),
                );
            }
            Constraint::Exact { tag, channel } => {
                selection.versions.insert(tag.clone());
                pins.push((tag, channel));
            }
        }
    }
    if follows_channels {
        for (channel, version) in &offer.channels {
            selection.versions.insert(version.clone());
            selection.aliases.insert(channel.clone(), version.clone());
        }
    } else if let [(tag, None)] = pins.as_slice() {
        for channel in channel_names {
            selection.aliases.insert(channel.clone(), (*tag).clone());
        }
    }
    for (tag, channel) in &pins {
        if let Some(channel) = channel {
            selection.aliases.insert(channel.clone(), (*tag).clone());
        }
    }
    for set in excludes {
        selection
            .versions
            .retain(|t| !tag_version(t).is_some_and(|v| set.matches(&v)));
    }
    let kept = selection.versions.clone();
    selection
        .aliases
        .retain(|_, version| kept.contains(version));
    selection
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer() -> ModuleOffer {
        ModuleOffer {
            tags: [
                "v0.3.9", "v0.4.0", "v0.4.7", "v0.5.0", "v1.0.0", "v1.1.0", "v1.2.0", "v1.2.5",
                "v1.3.0", "v1.3.2", "v1.4.0", "v2.0.0", "bobV1",
            ]
            .map(String::from)
            .to_vec(),
            channels: [
                ("alpha", "v1.4.0"),
                ("beta", "v1.3.2"),
                ("early-access", "v1.3.2"),
                ("stable", "v1.2.5"),
                ("rock-solid", "v1.2.5"),
            ]
            .map(|(c, v)| (c.to_string(), v.to_string()))
            .into(),
        }
    }

    fn channels() -> Vec<String> {
        ["alpha", "beta", "early-access", "stable", "rock-solid"]
            .map(String::from)
            .to_vec()
    }

    fn versions_of(filters: &[&str], excludes: &[&str]) -> Vec<String> {
        selection_of(filters, excludes)
            .versions
            .into_iter()
            .collect()
    }

    fn selection_of(filters: &[&str], excludes: &[&str]) -> Selection {
        let parsed: Vec<ModuleFilter> = filters.iter().map(|f| f.parse().unwrap()).collect();
        let includes: Vec<&Constraint> = parsed.iter().map(|f| &f.constraint).collect();
        let excluded: Vec<ModuleFilter> = excludes.iter().map(|f| f.parse().unwrap()).collect();
        let sets: Vec<&VersionSet> = excluded
            .iter()
            .filter_map(|f| match &f.constraint {
                Constraint::Versions(s) => Some(s),
                _ => None,
            })
            .collect();
        select(&includes, &sets, &offer(), &channels())
    }

    const CHANNEL_VERSIONS: [&str; 3] = ["v1.2.5", "v1.3.2", "v1.4.0"];

    #[test]
    fn a_bare_name_takes_what_the_channels_point_to() {
        assert_eq!(versions_of(&["m"], &[]), CHANNEL_VERSIONS);
        let s = selection_of(&["m"], &[]);
        assert_eq!(s.aliases["stable"], "v1.2.5");
        assert_eq!(s.aliases.len(), 5);
    }

    #[test]
    fn a_bare_version_is_a_caret() {
        let expected = ["v1.2.5", "v1.3.0", "v1.3.2", "v1.4.0"];
        assert_eq!(versions_of(&["m@1.3.0"], &[]), expected);
        assert_eq!(versions_of(&["m@^1.3.0"], &[]), expected);
        assert_eq!(versions_of(&["m@v1.3.0"], &[]), expected);
    }

    #[test]
    fn a_zero_major_caret_stays_within_its_minor() {
        assert_eq!(
            versions_of(&["m@0.4.0"], &[]),
            ["v0.4.0", "v0.4.7", "v1.2.5", "v1.3.2", "v1.4.0"]
        );
    }

    #[test]
    fn a_tilde_stays_within_its_minor() {
        assert_eq!(
            versions_of(&["m@~1.2.0"], &[]),
            ["v1.2.0", "v1.2.5", "v1.3.2", "v1.4.0"]
        );
    }

    #[test]
    fn ranges_take_spaces_or_commas_and_alternatives() {
        let expected = ["v1.1.0", "v1.2.0", "v1.2.5", "v1.3.2", "v1.4.0"];
        assert_eq!(versions_of(&["m@>=1.1.0 <1.3.0"], &[]), expected);
        assert_eq!(versions_of(&["m@>=1.1.0,<1.3.0"], &[]), expected);
        assert_eq!(versions_of(&["m@>= v1.1.0, < 1.3.0"], &[]), expected);
        assert_eq!(
            versions_of(&["m@>=2 || ~0.3"], &[]),
            ["v0.3.9", "v1.2.5", "v1.3.2", "v1.4.0", "v2.0.0"]
        );
    }

    #[test]
    fn an_exact_tag_is_all_there_is_and_every_channel_points_to_it() {
        let s = selection_of(&["m@=v1.3.0"], &[]);
        assert_eq!(s.versions.into_iter().collect::<Vec<_>>(), ["v1.3.0"]);
        assert_eq!(s.aliases.len(), 5);
        assert!(s.aliases.values().all(|v| v == "v1.3.0"));
        let s = selection_of(&["m@=bobV1"], &[]);
        assert_eq!(s.versions.into_iter().collect::<Vec<_>>(), ["bobV1"]);
    }

    #[test]
    fn an_exact_tag_with_a_channel_moves_only_that_channel() {
        let s = selection_of(&["m@=v1.3.0+stable"], &[]);
        assert_eq!(s.versions.into_iter().collect::<Vec<_>>(), ["v1.3.0"]);
        assert_eq!(
            s.aliases,
            BTreeMap::from([("stable".to_string(), "v1.3.0".to_string())])
        );
    }

    #[test]
    fn repeated_filters_are_ored() {
        let s = selection_of(&["m@=v1.0.0", "m@~0.4"], &[]);
        assert_eq!(
            s.versions.iter().collect::<Vec<_>>(),
            ["v0.4.0", "v0.4.7", "v1.0.0", "v1.2.5", "v1.3.2", "v1.4.0"]
        );
        // A channel-following filter keeps the channels where they are.
        assert_eq!(s.aliases["alpha"], "v1.4.0");
    }

    #[test]
    fn an_exclude_with_a_constraint_drops_versions_and_their_channels() {
        let s = selection_of(&["m@^1.0"], &["m@>=1.3.0"]);
        assert_eq!(
            s.versions.iter().collect::<Vec<_>>(),
            ["v1.0.0", "v1.1.0", "v1.2.0", "v1.2.5"]
        );
        assert_eq!(
            s.aliases.keys().collect::<Vec<_>>(),
            ["rock-solid", "stable"]
        );
        // Without includes the module follows its channels, minus the excluded ones.
        assert_eq!(versions_of(&[], &["m@~1.3"]), ["v1.2.5", "v1.4.0"]);
    }

    #[test]
    fn malformed_filters_explain_the_forms() {
        for (input, needle) in [
            ("mod@", "shell"),
            ("mod@>", "shell"),
            ("mod@>=", "shell"),
            ("mod@1.x.y.z", "not a version constraint"),
            ("mod@>=1.0 <", "operator without a version"),
            ("Mod", "not a module name"),
            ("mod@=v1+", "channel name is missing"),
            ("mod@./x", "path"),
        ] {
            let err = input.parse::<ModuleFilter>().unwrap_err();
            assert!(err.contains(needle), "{input}: {err}");
            assert!(err.contains("accepted forms"), "{input}: {err}");
        }
    }
}
