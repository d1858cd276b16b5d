//! One policy requirement (`{"type": "sigstoreSigned", …}`) read strictly, as
//! containers-policy.json(5) asks: a field the type does not have, a missing or doubled key, a
//! `signedIdentity` of an unknown type is an error naming the field. Requirements ferry cannot
//! check (GPG `signedBy`, Fulcio certificates, Rekor, PKI) are read, and refuse every image
//! they apply to: a policy is never weakened.

use std::path::PathBuf;

use base64::Engine as _;
use serde_json::{Map, Value};

use super::identity::{DockerReference, SignedIdentity, expand};

/// A problem at a field: (where, what).
pub type FieldError = (String, String);

/// Where a sigstore public key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `keyPath`, `keyPaths`: a PEM file.
    Path(PathBuf),
    /// `keyData`, `keyDatas`: base64 of the PEM text.
    Data(Vec<u8>),
}

/// One requirement; every requirement of a scope must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `insecureAcceptAnything`.
    AcceptAnything,
    /// `reject`.
    Reject,
    /// `sigstoreSigned` with keys: a signature by one of `keys` whose identity `identity`
    /// accepts.
    Sigstore {
        /// The keys, any of which may have signed.
        keys: Vec<KeySource>,
        /// Which signed names are accepted.
        identity: SignedIdentity,
        /// Where the requirement is in the file, for messages.
        field: String,
    },
    /// A requirement ferry reads but cannot check, named.
    Unsupported {
        /// What it is.
        what: String,
    },
}

/// Reads the requirement at `field`.
pub fn parse(value: &Value, field: &str) -> Result<Requirement, FieldError> {
    let object = object(value, field)?;
    let kind = string(object, field, "type")?;
    let allowed: &[&str] = match kind {
        "insecureAcceptAnything" | "reject" => &["type"],
        "signedBy" => &[
            "type",
            "keyType",
            "keyPath",
            "keyPaths",
            "keyData",
            "signedIdentity",
        ],
        "sigstoreSigned" => &[
            "type",
            "keyPath",
            "keyPaths",
            "keyData",
            "keyDatas",
            "fulcio",
            "pki",
            "rekorPublicKeyPath",
            "rekorPublicKeyPaths",
            "rekorPublicKeyData",
            "rekorPublicKeyDatas",
            "signedIdentity",
        ],
        other => {
            return Err((
                format!("{field}.type"),
                format!(
                    "unknown requirement type '{other}' (known: insecureAcceptAnything, reject, \
                     signedBy, sigstoreSigned)"
                ),
            ));
        }
    };
    only(object, field, allowed)?;
    let identity = match object.get("signedIdentity") {
        Some(value) => signed_identity(value, &format!("{field}.signedIdentity"))?,
        None => SignedIdentity::MatchRepoDigestOrExact,
    };
    match kind {
        "insecureAcceptAnything" => Ok(Requirement::AcceptAnything),
        "reject" => Ok(Requirement::Reject),
        "signedBy" => {
            let key_type = string(object, field, "keyType")?;
            if key_type != "GPGKeys" {
                return Err((
                    format!("{field}.keyType"),
                    format!("'{key_type}' is not a key type (only GPGKeys is)"),
                ));
            }
            exactly_one(object, field, &["keyPath", "keyPaths", "keyData"])?;
            Ok(Requirement::Unsupported {
                what: format!("{field} is signedBy (GPG simple signing), which ferry cannot check"),
            })
        }
        _ => {
            let source = exactly_one(
                object,
                field,
                &[
                    "keyPath", "keyPaths", "keyData", "keyDatas", "fulcio", "pki",
                ],
            )?;
            let rekor = [
                "rekorPublicKeyPath",
                "rekorPublicKeyPaths",
                "rekorPublicKeyData",
                "rekorPublicKeyDatas",
            ]
            .into_iter()
            .find(|k| object.contains_key(*k));
            if matches!(source, "fulcio" | "pki") || rekor.is_some() {
                let what = rekor.unwrap_or(source);
                return Ok(Requirement::Unsupported {
                    what: format!(
                        "{field} asks for {what}, which ferry cannot check (it checks \
                         signatures by keys only)"
                    ),
                });
            }
            let keys = keys(object, field, source)?;
            Ok(Requirement::Sigstore {
                keys,
                identity,
                field: field.to_string(),
            })
        }
    }
}

fn keys(
    object: &Map<String, Value>,
    field: &str,
    source: &str,
) -> Result<Vec<KeySource>, FieldError> {
    let at = format!("{field}.{source}");
    let value = &object[source];
    let items: Vec<(String, &str)> = match value {
        Value::String(s) => vec![(at.clone(), s.as_str())],
        Value::Array(list) if source.ends_with('s') => {
            if list.is_empty() {
                return Err((at, "an empty list".into()));
            }
            list.iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_str()
                        .map(|s| (format!("{at}[{i}]"), s))
                        .ok_or_else(|| (format!("{at}[{i}]"), "not a string".into()))
                })
                .collect::<Result<_, FieldError>>()?
        }
        _ => {
            let expected = if source.ends_with('s') {
                "a list of strings"
            } else {
                "a string"
            };
            return Err((at, format!("not {expected}")));
        }
    };
    items
        .into_iter()
        .map(|(at, text)| {
            if text.is_empty() {
                return Err((at, "empty".into()));
            }
            if source.starts_with("keyData") {
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map(KeySource::Data)
                    .map_err(|e| (at, format!("not base64: {e}")))
            } else {
                Ok(KeySource::Path(PathBuf::from(text)))
            }
        })
        .collect()
}

fn signed_identity(value: &Value, field: &str) -> Result<SignedIdentity, FieldError> {
    let object = object(value, field)?;
    let kind = string(object, field, "type")?;
    let (allowed, identity): (&[&str], _) = match kind {
        "matchExact" => (&["type"], SignedIdentity::MatchExact),
        "matchRepoDigestOrExact" => (&["type"], SignedIdentity::MatchRepoDigestOrExact),
        "matchRepository" => (&["type"], SignedIdentity::MatchRepository),
        "exactReference" => {
            let text = string(object, field, "dockerReference")?;
            let reference = DockerReference::parse(text)
                .map_err(|e| (format!("{field}.dockerReference"), e))?;
            if reference.is_name_only() {
                return Err((
                    format!("{field}.dockerReference"),
                    format!("'{text}' has neither tag nor digest"),
                ));
            }
            (
                &["type", "dockerReference"],
                SignedIdentity::ExactReference(reference),
            )
        }
        "exactRepository" => {
            let text = string(object, field, "dockerRepository")?;
            let reference = DockerReference::parse(text)
                .map_err(|e| (format!("{field}.dockerRepository"), e))?;
            if !reference.is_name_only() {
                return Err((
                    format!("{field}.dockerRepository"),
                    format!("'{text}' is a repository: no tag or digest"),
                ));
            }
            (
                &["type", "dockerRepository"],
                SignedIdentity::ExactRepository(reference.name),
            )
        }
        "remapIdentity" => {
            let prefix = prefix_of(object, field, "prefix")?;
            let signed_prefix = prefix_of(object, field, "signedPrefix")?;
            (
                &["type", "prefix", "signedPrefix"],
                SignedIdentity::RemapIdentity {
                    prefix,
                    signed_prefix,
                },
            )
        }
        other => {
            return Err((
                format!("{field}.type"),
                format!(
                    "unknown signedIdentity type '{other}' (known: matchExact, \
                     matchRepoDigestOrExact, matchRepository, exactReference, exactRepository, \
                     remapIdentity)"
                ),
            ));
        }
    };
    only(object, field, allowed)?;
    Ok(identity)
}

/// A `prefix`/`signedPrefix`: a host, namespace or repository, fully expanded, without tag or
/// digest.
fn prefix_of(object: &Map<String, Value>, field: &str, key: &str) -> Result<String, FieldError> {
    let text = string(object, field, key)?;
    let at = format!("{field}.{key}");
    if text.is_empty() || text.contains('@') || text.ends_with('/') || text.contains("//") {
        return Err((
            at,
            format!("'{text}' is not a host, namespace or repository"),
        ));
    }
    if text.contains('/') && expand(text) != text {
        return Err((
            at,
            format!("'{text}' is not in the fully expanded form (e.g. docker.io/library/busybox)"),
        ));
    }
    let last = text.rsplit('/').next().unwrap_or_default();
    if text.contains('/') && last.contains(':') {
        return Err((at, format!("'{text}' has a tag; a prefix has none")));
    }
    Ok(text.to_string())
}

fn object<'v>(value: &'v Value, field: &str) -> Result<&'v Map<String, Value>, FieldError> {
    value
        .as_object()
        .ok_or_else(|| (field.to_string(), "not a JSON object".into()))
}

fn string<'v>(
    object: &'v Map<String, Value>,
    field: &str,
    key: &str,
) -> Result<&'v str, FieldError> {
    match object.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err((format!("{field}.{key}"), "not a string".into())),
        None => Err((format!("{field}.{key}"), "missing".into())),
    }
}

/// Refuses any field not in `allowed`.
fn only(object: &Map<String, Value>, field: &str, allowed: &[&str]) -> Result<(), FieldError> {
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err((
            format!("{field}.{unknown}"),
            format!(
                "unknown field (this requirement has {})",
                allowed.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

/// Exactly one of `keys` is present: which.
fn exactly_one<'k>(
    object: &Map<String, Value>,
    field: &str,
    keys: &[&'k str],
) -> Result<&'k str, FieldError> {
    let present: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| object.contains_key(*k))
        .collect();
    match present.as_slice() {
        [one] => Ok(keys.iter().copied().find(|k| k == one).expect("present")),
        [] => Err((
            field.to_string(),
            format!("needs one of {}", keys.join(", ")),
        )),
        _ => Err((
            field.to_string(),
            format!("has {}; exactly one may be given", present.join(" and ")),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Requirement, FieldError> {
        parse(&serde_json::from_str(text).unwrap(), "default[0]")
    }

    #[test]
    fn strict_reading_names_the_field() {
        assert_eq!(p(r#"{"type":"reject"}"#).unwrap(), Requirement::Reject);
        let (field, reason) = p(r#"{"type":"reject","keyPath":"/k"}"#).unwrap_err();
        assert_eq!(field, "default[0].keyPath");
        assert!(reason.contains("unknown field"));
        let (field, _) = p(r#"{"type":"sigstoreSigend","keyPath":"/k"}"#).unwrap_err();
        assert_eq!(field, "default[0].type");
        let (field, reason) =
            p(r#"{"type":"sigstoreSigned","keyPath":"/a","keyData":"QQ=="}"#).unwrap_err();
        assert_eq!(field, "default[0]");
        assert!(reason.contains("exactly one"), "{reason}");
        let (field, _) = p(r#"{"type":"sigstoreSigned","keyPath":"/a",
            "signedIdentity":{"type":"matchRepository","dockerRepository":"x/y"}}"#)
        .unwrap_err();
        assert_eq!(field, "default[0].signedIdentity.dockerRepository");
        let (field, _) = p(r#"{"type":"sigstoreSigned","keyPath":"/a",
            "signedIdentity":{"type":"matchEverything"}}"#)
        .unwrap_err();
        assert_eq!(field, "default[0].signedIdentity.type");
    }

    #[test]
    fn what_ferry_cannot_check_is_read_and_refuses() {
        let r = p(r#"{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k.gpg"}"#).unwrap();
        assert!(matches!(r, Requirement::Unsupported { .. }));
        let r = p(r#"{"type":"sigstoreSigned","keyPath":"/k","rekorPublicKeyPath":"/r"}"#).unwrap();
        assert!(matches!(r, Requirement::Unsupported { what } if what.contains("rekor")));
    }
}
