//! `containers-policy.json` (containers-policy.json(5)): a global `default` list of
//! requirements and per-transport scopes. ferry reads images from registries, so it looks up
//! the `docker` transport: the most specific scope that matches an image (its full reference,
//! its repository, each enclosing namespace, its host, `*.domain` wildcards, the transport's
//! `""`) wins, else `default`. Other transports are read and checked, never used.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::error::TrustError;
use super::identity::DockerReference;
use super::requirement::{self, FieldError, Requirement};
use crate::bundle::PolicyRecord;
use crate::digest::Digest;
use crate::file_error::FileError;

/// Any JSON document in which no object names a field twice; reading one keeps nothing.
struct NoDuplicates;

impl<'de> serde::Deserialize<'de> for NoDuplicates {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NoDuplicatesVisitor)
    }
}

struct NoDuplicatesVisitor;

impl<'de> serde::de::Visitor<'de> for NoDuplicatesVisitor {
    type Value = NoDuplicates;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, _: bool) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_i64<E>(self, _: i64) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_u64<E>(self, _: u64) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_f64<E>(self, _: f64) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_str<E>(self, _: &str) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_unit<E>(self) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<NoDuplicates, A::Error> {
        while seq.next_element::<NoDuplicates>()?.is_some() {}
        Ok(NoDuplicates)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<NoDuplicates, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "the field \"{}\" is given twice in one object",
                    crate::report::printable(&key)
                )));
            }
            map.next_value::<NoDuplicates>()?;
        }
        Ok(NoDuplicates)
    }
}

/// The largest policy file read.
const POLICY_LIMIT: u64 = 1 << 20;

/// A policy file, read.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Where it was read.
    pub file: PathBuf,
    /// SHA-256 of its bytes, lowercase hex.
    pub sha256: String,
    default: Vec<Requirement>,
    /// Transport → scope → requirements.
    transports: BTreeMap<String, BTreeMap<String, Vec<Requirement>>>,
}

impl Policy {
    /// Reads and checks a policy file; an error names the file and the field.
    pub fn load(path: &Path) -> Result<Policy, TrustError> {
        // Named by the user: a link is followed.
        let bytes = match crate::small_file::read_small_linked(path, POLICY_LIMIT) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Err(FileError::other("cannot read", path, "no such file").into()),
            Err(e) => return Err(FileError::on("cannot read", path)(e).into()),
        };
        Self::from_bytes(&bytes, path)
    }

    /// Reads a policy from its bytes; `path` is named in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Policy, TrustError> {
        let fail = |(field, reason): FieldError| TrustError::Policy {
            path: path.to_path_buf(),
            field,
            reason,
        };
        // containers-policy.json(5) rejects a file with a field given twice, and so does
        // podman: a reader keeping only the last one would enforce what a reviewer did not see.
        serde_json::from_slice::<NoDuplicates>(bytes).map_err(|e| {
            fail((
                format!("line {} column {}", e.line(), e.column()),
                format!("not a policy: {e}"),
            ))
        })?;
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            fail((
                format!("line {} column {}", e.line(), e.column()),
                format!("not JSON: {e}"),
            ))
        })?;
        let top = value
            .as_object()
            .ok_or_else(|| fail(("the top level".into(), "not a JSON object".into())))?;
        if let Some(unknown) = top
            .keys()
            .find(|k| !["default", "transports"].contains(&k.as_str()))
        {
            return Err(fail((
                unknown.clone(),
                "unknown field (a policy has default and transports)".into(),
            )));
        }
        let default = match top.get("default") {
            Some(list) => requirements(list, "default").map_err(fail)?,
            None => {
                return Err(fail((
                    "default".into(),
                    "missing (the global default is mandatory)".into(),
                )));
            }
        };
        let mut transports = BTreeMap::new();
        if let Some(value) = top.get("transports") {
            let map = value
                .as_object()
                .ok_or_else(|| fail(("transports".into(), "not a JSON object".into())))?;
            for (transport, scopes) in map {
                let at = format!("transports.{transport}");
                let scopes = scopes
                    .as_object()
                    .ok_or_else(|| fail((at.clone(), "not a JSON object".into())))?;
                let mut read = BTreeMap::new();
                for (scope, list) in scopes {
                    let at = format!("{at}[\"{scope}\"]");
                    if transport == "docker" {
                        docker_scope(scope).map_err(|reason| fail((at.clone(), reason)))?;
                    }
                    read.insert(scope.clone(), requirements(list, &at).map_err(fail)?);
                }
                transports.insert(transport.clone(), read);
            }
        }
        Ok(Policy {
            file: path.to_path_buf(),
            sha256: Digest::of(bytes).hex().to_string(),
            default,
            transports,
        })
    }

    /// The requirements for an image, with the scope they come from
    /// (`transports.docker["host/repo"]`, or `default`). An image not from a registry (a Helm
    /// chart read over HTTP) has no `docker` scope: the global `default` speaks for it.
    pub fn requirements_for(&self, image: Option<&DockerReference>) -> (String, &[Requirement]) {
        if let (Some(image), Some(scopes)) = (image, self.transports.get("docker")) {
            for scope in scopes_of(image) {
                if let Some(list) = scopes.get(&scope) {
                    return (format!("transports.docker[\"{scope}\"]"), list);
                }
            }
        }
        ("default".to_string(), &self.default)
    }

    /// The record `bundle.json` keeps of this policy having accepted `images` images.
    pub fn record(&self, images: usize) -> PolicyRecord {
        PolicyRecord {
            file: self
                .file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            sha256: self.sha256.clone(),
            images,
        }
    }
}

fn requirements(value: &Value, field: &str) -> Result<Vec<Requirement>, FieldError> {
    let list = value
        .as_array()
        .ok_or_else(|| (field.to_string(), "not a list of requirements".into()))?;
    if list.is_empty() {
        return Err((
            field.to_string(),
            "an empty list (write [{\"type\": \"insecureAcceptAnything\"}] to require nothing)"
                .into(),
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, item)| requirement::parse(item, &format!("{field}[{i}]")))
        .collect()
}

/// A `docker` scope: `""`, `*.domain`, or a fully expanded reference or prefix of one.
fn docker_scope(scope: &str) -> Result<(), String> {
    if scope.is_empty() {
        return Ok(());
    }
    if let Some(domain) = scope.strip_prefix("*.") {
        if domain.is_empty() || domain.contains(['*', '/', ':']) {
            return Err(format!("'{scope}' is not a wildcard scope (*.example.com)"));
        }
        return Ok(());
    }
    if scope.contains('*') || scope.contains("://") || scope.chars().any(char::is_whitespace) {
        return Err(format!(
            "'{scope}' is not a docker scope (host[:port][/namespace[/repo[:tag|@digest]]])"
        ));
    }
    if let Some((host, _)) = scope.split_once('/') {
        DockerReference::parse(scope)?;
        // Scopes are compared as written: a short name would never match anything.
        if !(host.contains('.') || host.contains(':') || host == "localhost") {
            return Err(format!(
                "'{scope}' is not in the fully expanded form (docker.io/library/busybox, not \
                 busybox)"
            ));
        }
    }
    Ok(())
}

/// The scopes that may hold an image's requirements, most specific first.
fn scopes_of(image: &DockerReference) -> Vec<String> {
    let mut scopes = Vec::new();
    if !image.is_name_only() {
        scopes.push(image.to_string());
        // A reference with both names the image by digest too, and by tag.
        if image.tag.is_some() && image.digest.is_some() {
            scopes.push(
                DockerReference {
                    digest: None,
                    ..image.clone()
                }
                .to_string(),
            );
        }
    }
    let mut name = image.name.as_str();
    loop {
        scopes.push(name.to_string());
        match name.rsplit_once('/') {
            Some((parent, _)) => name = parent,
            None => break,
        }
    }
    // The host without its port, label by label: *.b.example, *.example.
    let host = name.split(':').next().unwrap_or(name);
    let mut rest = host;
    while let Some((_, parent)) = rest.split_once('.') {
        scopes.push(format!("*.{parent}"));
        rest = parent;
    }
    scopes.push(String::new());
    scopes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(text: &str) -> Policy {
        Policy::from_bytes(text.as_bytes(), Path::new("/etc/p.json")).unwrap()
    }

    #[test]
    fn a_field_given_twice_anywhere_is_refused() {
        for text in [
            r#"{"default":[{"type":"reject"}],"default":[{"type":"insecureAcceptAnything"}]}"#,
            r#"{"default":[{"type":"reject","type":"insecureAcceptAnything"}]}"#,
            r#"{"default":[{"type":"reject"}],"transports":{"docker":{
                "r.example/apps":[{"type":"reject"}],
                "r.example/apps":[{"type":"insecureAcceptAnything"}]}}}"#,
            r#"{"default":[{"type":"sigstoreSigned","keyData":"a","keyData":"b",
                "signedIdentity":{"type":"matchRepository"}}]}"#,
        ] {
            let err = Policy::from_bytes(text.as_bytes(), Path::new("/etc/p.json"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("/etc/p.json") && err.contains("given twice"),
                "{err}"
            );
        }
    }

    #[test]
    fn the_most_specific_scope_wins() {
        let p = policy(
            r#"{"default":[{"type":"reject"}],"transports":{"docker":{
                "reg.example:5000/ns/app:v1":[{"type":"insecureAcceptAnything"}],
                "reg.example:5000/ns":[{"type":"reject"}],
                "reg.example:5000":[{"type":"insecureAcceptAnything"}],
                "*.corp.example":[{"type":"insecureAcceptAnything"}],
                "":[{"type":"reject"}]}}}"#,
        );
        let scope = |s: &str| {
            p.requirements_for(Some(&DockerReference::parse(s).unwrap()))
                .0
        };
        assert_eq!(
            scope("reg.example:5000/ns/app:v1"),
            r#"transports.docker["reg.example:5000/ns/app:v1"]"#
        );
        assert_eq!(
            scope("reg.example:5000/ns/app:v2"),
            r#"transports.docker["reg.example:5000/ns"]"#
        );
        assert_eq!(
            scope("reg.example:5000/other:v2"),
            r#"transports.docker["reg.example:5000"]"#
        );
        assert_eq!(
            scope("a.b.corp.example/x:1"),
            r#"transports.docker["*.corp.example"]"#
        );
        assert_eq!(scope("elsewhere.example/x:1"), r#"transports.docker[""]"#);
        assert_eq!(p.requirements_for(None).0, "default");
    }

    #[test]
    fn errors_name_the_file_and_field() {
        let fail = |text: &str| {
            Policy::from_bytes(text.as_bytes(), Path::new("/etc/p.json"))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            fail(r#"{"default":[{"type":"reject"}],"transport":{}}"#),
            "/etc/p.json: transport: unknown field (a policy has default and transports)"
        );
        assert!(fail(r#"{"transports":{}}"#).starts_with("/etc/p.json: default: missing"));
        assert!(
            fail(r#"{"default":[{"type":"reject"}],"transports":{"docker":{"library/busybox":[{"type":"reject"}]}}}"#)
                .contains(r#"transports.docker["library/busybox"]"#)
        );
        assert!(fail("{").starts_with("/etc/p.json: line 1 column 1"));
    }
}
