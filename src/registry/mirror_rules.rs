//! Mirror rules as they are written: a registries.conf `[[registry]]` table or the
//! `--source-mirror REGISTRY=HOST[:PORT][/PATH]` values for one prefix, each a prefix with its
//! location and its mirrors; and what can be wrong with one. [`super::mirrors`] picks a rule
//! for an image and reads the places it gives.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::reference::Reference;

/// Which references a mirror serves (registries.conf's `pull-from-mirror`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PullFrom {
    /// Tags and digests.
    All,
    /// Only references by digest: a tag read from a mirror may lag behind the registry.
    DigestOnly,
    /// Only references by tag.
    TagOnly,
}

/// One mirror of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mirror {
    /// `host[:port][/path]` that replaces the rule's prefix.
    pub location: String,
    /// Plain HTTP to this mirror (registries.conf `insecure = true`).
    pub insecure: bool,
    /// Which references it serves.
    pub pull_from: PullFrom,
}

/// Where the images under one prefix are read: a registries.conf `[[registry]]` table, or the
/// `--source-mirror` values given for one prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// The names it applies to: `host[:port]`, `host[:port]/path`, or `*.domain`.
    pub prefix: String,
    /// The registry's own location replacing the prefix; empty for a `*.domain` prefix, whose
    /// names are read where they say.
    pub location: String,
    /// Plain HTTP to the location.
    pub insecure: bool,
    /// Reading these names is refused.
    pub blocked: bool,
    /// Mirrors serve only references by digest (`mirror-by-digest-only`).
    pub mirror_by_digest_only: bool,
    /// The mirrors, in the order they are tried.
    pub mirrors: Vec<Mirror>,
    /// Whether the location is tried after the mirrors. registries.conf rules do, as
    /// containers does; `--source-mirror` rules do not: the command line says where to read.
    pub contact_primary: bool,
    /// Where the rule comes from (`--source-mirror` or a file), for messages.
    #[serde(skip)]
    pub origin: String,
}

/// The origin of rules given on the command line.
pub const COMMAND_LINE: &str = "--source-mirror";

/// One `--source-mirror REGISTRY=HOST[:PORT][/PATH]` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceMirror {
    /// The registry (or `registry/path` prefix) it stands in for.
    pub prefix: String,
    /// Where to read instead.
    pub location: String,
}

/// What can go wrong with mirrors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MirrorError {
    /// A `--source-mirror` value is malformed.
    #[error(
        "invalid source mirror '{input}': {reason}; expected REGISTRY=HOST[:PORT][/PATH], e.g. \
         docker.io=mirror.example.com:5000/dockerhub"
    )]
    Syntax {
        /// What was given.
        input: String,
        /// What is wrong.
        reason: String,
    },
    /// A registries.conf file cannot be read or used.
    #[error("{file}: {reason}")]
    Config {
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// The image's registry is blocked.
    #[error("{name} is blocked: {origin} has prefix \"{prefix}\" with blocked = true")]
    Blocked {
        /// The image.
        name: String,
        /// The rule's prefix.
        prefix: String,
        /// The file holding the rule.
        origin: String,
    },
    /// A rule turns a name into something that is no image reference.
    #[error(
        "{origin}: prefix \"{prefix}\" turns {name} into '{rewritten}', which is no image reference: {reason}"
    )]
    Rewrite {
        /// The image.
        name: String,
        /// The rule's prefix.
        prefix: String,
        /// What it became.
        rewritten: String,
        /// Where the rule comes from.
        origin: String,
        /// Why it does not parse.
        reason: String,
    },
}

impl FromStr for SourceMirror {
    type Err = MirrorError;

    fn from_str(input: &str) -> Result<Self, MirrorError> {
        let fail = |reason: &str| MirrorError::Syntax {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let (prefix, location) = input
            .split_once('=')
            .ok_or_else(|| fail("there is no '='"))?;
        let (prefix, location) = (prefix.trim_end_matches('/'), location.trim_end_matches('/'));
        if prefix.is_empty() || location.is_empty() {
            return Err(fail("both sides of '=' are needed"));
        }
        check_place(prefix, true).map_err(|r| fail(&format!("REGISTRY {r}")))?;
        check_place(location, false).map_err(|r| fail(&format!("the mirror {r}")))?;
        Ok(SourceMirror {
            prefix: prefix.to_string(),
            location: location.to_string(),
        })
    }
}

impl fmt::Display for SourceMirror {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.prefix, self.location)
    }
}

/// Checks a `host[:port][/path]` (or, where `wildcard`, a `*.domain`) without tag or digest.
pub(crate) fn check_place(place: &str, wildcard: bool) -> Result<(), String> {
    if place.contains("://") {
        return Err(format!("'{place}' has a scheme; write host[:port][/path]"));
    }
    if let Some(domain) = place.strip_prefix("*.") {
        if !wildcard {
            return Err(format!("'{place}' is a wildcard; name one host"));
        }
        if domain.is_empty() || domain.contains(['/', ':', '@']) {
            return Err(format!("'{place}' must be *.domain, without port or path"));
        }
        return Ok(());
    }
    let path = place.split_once('/').map_or("", |(_, path)| path);
    if place.contains('@') || path.contains(':') {
        return Err(format!("'{place}' names a tag or digest"));
    }
    // A name under the place must be an image reference.
    Reference::parse(&format!("{place}/x"))
        .map(drop)
        .map_err(|e| format!("'{place}' is not host[:port][/path]: {}", e.reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_mirror_values_need_both_sides_and_no_scheme() {
        let m: SourceMirror = "docker.io=127.0.0.1:5000/dockerhub".parse().unwrap();
        assert_eq!(
            (m.prefix.as_str(), m.location.as_str()),
            ("docker.io", "127.0.0.1:5000/dockerhub")
        );
        let m: SourceMirror = "docker.io/library=mirror.local/".parse().unwrap();
        assert_eq!(m.to_string(), "docker.io/library=mirror.local");
        let m: SourceMirror = "*.example.com=mirror.local".parse().unwrap();
        assert_eq!(m.prefix, "*.example.com");
        for bad in [
            "docker.io",
            "=mirror.local",
            "docker.io=",
            "docker.io=https://mirror.local",
            "docker.io=mirror.local/UPPER",
            "docker.io=*.mirror.local",
            "docker.io/library/nginx:1.0=mirror.local",
            "*.example.com/x=mirror.local",
            "docker io=mirror.local",
        ] {
            let err = bad.parse::<SourceMirror>().unwrap_err().to_string();
            assert!(err.contains("REGISTRY=HOST[:PORT][/PATH]"), "{bad}: {err}");
        }
    }
}
