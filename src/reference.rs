//! Image references `host[:port]/path[:tag][@sha256:…]`, always with an explicit registry host:
//! in an air-gapped network there is no default registry to fall back to.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;

/// A reference to a repository on a registry, optionally to one tag or digest in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]`, as written.
    pub registry: String,
    /// Repository path below the host, e.g. `deckhouse/ee/install`.
    pub repository: String,
    /// Tag, when given.
    pub tag: Option<String>,
    /// Digest, when given (it wins over the tag when both are).
    pub digest: Option<Digest>,
}

/// Why a string is not a reference; the message says what form is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference '{input}': {reason}")]
pub struct ReferenceError {
    /// What was given.
    pub input: String,
    /// What is wrong with it, and the form expected.
    pub reason: String,
}

impl Reference {
    /// Parses `host[:port]/path[:tag][@sha256:…]`.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let fail = |reason: &str| ReferenceError {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        if input.contains("://") {
            return Err(fail(
                "write it without a scheme (host[:port]/path); use --insecure for plain HTTP",
            ));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, d)) => (
                rest,
                Some(
                    d.parse::<Digest>()
                        .map_err(|e| fail(&format!("{e}; expected @sha256:<64 hex>")))?,
                ),
            ),
            None => (input, None),
        };
        let Some((registry, path)) = rest.split_once('/') else {
            return Err(fail(
                "expected host[:port]/path[:tag], e.g. registry.example.com/deckhouse/ee:v1.2.3",
            ));
        };
        validate_host(registry).map_err(|r| fail(&r))?;
        // A colon after the last slash starts the tag; earlier colons cannot occur in a path.
        let (repository, tag) = match path.rfind(':') {
            Some(i) if !path[i..].contains('/') => (&path[..i], Some(&path[i + 1..])),
            _ => (path, None),
        };
        validate_repository(repository).map_err(|r| fail(&r))?;
        if let Some(tag) = tag {
            validate_tag(tag).map_err(|r| fail(&r))?;
        }
        Ok(Reference {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// The digest if there is one, else the tag: what goes after `/manifests/` in a URL.
    pub fn target(&self) -> Option<String> {
        match (&self.digest, &self.tag) {
            (Some(d), _) => Some(d.to_string()),
            (None, Some(t)) => Some(t.clone()),
            (None, None) => None,
        }
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn validate_host(host: &str) -> Result<(), String> {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return Err(format!(
            "'{host}' is not a registry host; the reference must start with host[:port]/"
        ));
    }
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return Err(format!("'{port}' is not a port number"));
    }
    Ok(())
}

/// `a/b`, or either alone when the other is empty: repository paths (and paths inside a
/// layout) put together without a stray slash.
pub fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (_, true) => a.to_string(),
        (true, false) => b.to_string(),
        (false, false) => format!("{a}/{b}"),
    }
}

/// Repository names follow the distribution grammar: lowercase path components of letters and
/// digits joined by `.`, `_`, `__` or dashes. Registry 2.8 answers a bare 404 for uppercase
/// names, so they are refused here with a message instead.
pub fn validate_repository(repo: &str) -> Result<(), String> {
    if repo.is_empty() {
        return Err("the repository path is empty; expected host[:port]/path".into());
    }
    for component in repo.split('/') {
        let ok = !component.is_empty()
            && component
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && component.as_bytes()[0].is_ascii_alphanumeric()
            && component.as_bytes()[component.len() - 1].is_ascii_alphanumeric();
        if !ok {
            return Err(format!(
                "repository component '{}' is invalid: use lowercase letters, digits and . _ - \
                 between them",
                crate::report::printable(component)
            ));
        }
    }
    Ok(())
}

/// Tags: up to 128 of `[A-Za-z0-9_.-]`, not starting with `.` or `-`.
pub fn validate_tag(tag: &str) -> Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        && !tag.starts_with(['.', '-']);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag '{}' is invalid: up to 128 letters, digits, '_', '.', '-', not starting with '.' or '-'",
            crate::report::printable(tag)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_users_type() {
        let r = Reference::parse("127.0.0.1:5000/deckhouse/ee:v1.2.3").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "deckhouse/ee");
        assert_eq!(r.tag.as_deref(), Some("v1.2.3"));
        assert_eq!(r.digest, None);
        assert_eq!(r.to_string(), "127.0.0.1:5000/deckhouse/ee:v1.2.3");

        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let r = Reference::parse(&format!("registry.example.com/a/b:t@{d}")).unwrap();
        assert_eq!(r.target().unwrap(), d);
        assert_eq!(r.tag.as_deref(), Some("t"));

        let r = Reference::parse("localhost/x").unwrap();
        assert_eq!((r.tag, r.digest), (None, None));
    }

    #[test]
    fn refuses_what_a_registry_would_refuse() {
        for bad in [
            "https://r.example.com/a:b",
            "justaname",
            "r.example.com/",
            "r.example.com/Upper/case",
            "r.example.com/a//b",
            "r.example.com/a:",
            "r.example.com/a:-x",
            "r.example.com:99999/a",
            "r.example.com/a@sha256:1234",
            "bad host/a",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad} should be refused");
        }
        let err = Reference::parse("https://x/a").unwrap_err().to_string();
        assert!(err.contains("--insecure"), "{err}");
    }
}
