//! Image set files: flux mirror's `Config` (`apiVersion: mirror.plugin.fluxcd.io/v1beta1`),
//! read as its users write it, or ferry's own `kind: ImageSet` of the same shape with explicit
//! `tags`. `${VAR}` is replaced from the environment first (an unset variable is an error);
//! unknown keys are errors naming the key and the line; features ferry does not have (keyless
//! verification, cloud token providers, mTLS) are refused by name, never ignored.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use crate::source::PlatformSpec;

/// flux mirror's API version.
pub const FLUX_API: &str = "mirror.plugin.fluxcd.io/v1beta1";
/// ferry's own API version for `kind: ImageSet`.
pub const FERRY_API: &str = "ferry/v1";

/// Files larger than this are not image sets.
const FILE_LIMIT: u64 = 4 << 20;

/// An image set file, parsed and checked.
#[derive(Debug, Clone)]
pub struct ImageSet {
    /// The file it came from.
    pub file: PathBuf,
    /// Its archive in the bundle: `images-<file stem>.tar`.
    pub archive: String,
    /// Images to take.
    pub artifacts: Vec<Artifact>,
    /// Helm charts to take.
    pub charts: Vec<Chart>,
    /// Per-host credentials and CAs, by `host[:port]`.
    pub hosts: BTreeMap<String, Host>,
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct File {
    api_version: String,
    kind: String,
    #[serde(default)]
    artifacts: Vec<Artifact>,
    #[serde(default)]
    charts: Vec<Chart>,
    #[serde(default)]
    hosts: Vec<HostEntry>,
}

/// One repository whose tags are taken.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Artifact {
    /// `host[:port]/repo` to read from.
    pub source: String,
    /// `host[:port]/repo` it is meant for; its path is the path in the bundle.
    #[serde(default)]
    pub destination: Option<String>,
    /// How tags are chosen.
    #[serde(default)]
    pub selector: Option<Selector>,
    /// Exactly these tags (ImageSet).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Referrers (signatures, SBOMs) of the tags.
    #[serde(default)]
    pub include_referrers: bool,
    /// Keyless signature verification: refused.
    #[serde(default)]
    pub verify: Option<serde::de::IgnoredAny>,
    /// Overwrite behaviour at the destination (push decides; accepted).
    #[serde(default)]
    pub overwrite: Option<bool>,
    /// Platforms to keep of every index (ImageSet); the command line's `--platform` otherwise.
    #[serde(default)]
    pub platforms: Vec<PlatformSpec>,
}

/// flux mirror's tag selector.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Selector {
    /// Prefilter, and the comparison key.
    #[serde(default)]
    pub regex: Option<RegexSelector>,
    /// A semver range the key must satisfy.
    #[serde(default)]
    pub semver: Option<String>,
    /// `semver` (default), `alphabetical` or `numerical`.
    #[serde(default)]
    pub sort_by: Option<String>,
    /// How many to keep, highest first (default 1; 0 = all).
    #[serde(default)]
    pub limit: Option<u64>,
}

/// `regex: {pattern, extract}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegexSelector {
    /// Tags that do not match are dropped.
    pub pattern: String,
    /// A replacement with named groups (`$version`): the comparison key.
    #[serde(default)]
    pub extract: Option<String>,
}

/// A Helm chart in an HTTP(S) Helm repository.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Chart {
    /// The chart's name in the repository.
    pub name: String,
    /// The repository URL (`https://…`, serving `index.yaml`).
    pub source: String,
    /// `oci://host/path` it is meant for; `<path>/<name>` is the path in the bundle.
    pub destination: String,
    /// A semver range (default `*`).
    #[serde(default)]
    pub version: Option<String>,
    /// How many versions, highest first (default 1; 0 = all).
    #[serde(default)]
    pub limit: Option<u64>,
    /// Overwrite behaviour at the destination (accepted).
    #[serde(default)]
    pub overwrite: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct HostEntry {
    host: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    credential: Option<CredentialEntry>,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    tls: Option<TlsEntry>,
    #[serde(default)]
    max_chunk_size: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CredentialEntry {
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    from_path: Option<String>,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    jwk_path: Option<String>,
    #[serde(default)]
    jwk_value: Option<String>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    aud: Option<String>,
    #[serde(default)]
    exp: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TlsEntry {
    #[serde(default)]
    server_auth: Option<ServerAuthEntry>,
    #[serde(default)]
    client_auth: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ServerAuthEntry {
    #[serde(default)]
    from_path: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    spiffe: Option<serde::de::IgnoredAny>,
}

/// How to reach one host.
#[derive(Debug, Clone, Default)]
pub struct Host {
    /// Login for a username/password pair (`username` + `credential.value`).
    pub username: Option<String>,
    /// The credential: a password with `username`, else a bearer token sent as it is.
    pub credential: Option<String>,
    /// PEM certificates trusted for this host instead of the system's.
    pub ca_pem: Option<Vec<u8>>,
}

/// Why an image set file cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", file.display())]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// What is wrong (with the line, when the parser knows it).
    pub reason: String,
}

impl ImageSet {
    /// Reads `path`, replacing `${VAR}` from the environment unless `envsubst` is off.
    pub fn load(path: &Path, envsubst: bool) -> Result<ImageSet, ConfigError> {
        let fail = |reason: String| ConfigError {
            file: path.to_path_buf(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
        if !meta.is_file() || meta.len() > FILE_LIMIT {
            return Err(fail("not a regular file of at most 4 MiB".into()));
        }
        let raw =
            std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
        let text = if envsubst {
            substitute(&raw, |name| std::env::var(name).ok()).map_err(fail)?
        } else {
            raw
        };
        let file: File = serde_saphyr::from_str(&text).map_err(|e| {
            // The parser's first line says what and where; its snippet would repeat secrets.
            fail(e.to_string().lines().next().unwrap_or_default().to_string())
        })?;
        match (file.api_version.as_str(), file.kind.as_str()) {
            (FLUX_API, "Config") | (FERRY_API, "ImageSet") => {}
            (api, kind) => {
                return Err(fail(format!(
                    "apiVersion '{api}' kind '{kind}' is neither flux mirror's \
                     ({FLUX_API}, Config) nor ferry's ({FERRY_API}, ImageSet)"
                )));
            }
        }
        let ferry_kind = file.kind == "ImageSet";
        if file.artifacts.is_empty() && file.charts.is_empty() {
            return Err(fail("it lists no artifacts and no charts".into()));
        }
        for (i, artifact) in file.artifacts.iter().enumerate() {
            let at = format!("artifacts[{i}] ({})", artifact.source);
            if artifact.verify.is_some() {
                return Err(fail(format!(
                    "{at}: verify (keyless cosign verification) is not supported by ferry; \
                     verify signatures before the pull, or remove the verify block"
                )));
            }
            if !artifact.platforms.is_empty() && !ferry_kind {
                return Err(fail(format!(
                    "{at}: platforms is ferry's own field (kind: ImageSet, apiVersion: {FERRY_API})"
                )));
            }
            if !ferry_kind && (artifact.destination.is_none() || artifact.selector.is_none()) {
                return Err(fail(format!(
                    "{at}: flux mirror's Config needs destination and selector"
                )));
            }
            if !artifact.tags.is_empty() && !ferry_kind {
                return Err(fail(format!(
                    "{at}: tags is ferry's own field (kind: ImageSet, apiVersion: {FERRY_API})"
                )));
            }
            if artifact.tags.is_empty() && artifact.selector.is_none() {
                return Err(fail(format!("{at}: give a selector or tags")));
            }
            for tag in &artifact.tags {
                crate::reference::validate_tag(tag).map_err(|e| fail(format!("{at}: {e}")))?;
            }
        }
        for (i, chart) in file.charts.iter().enumerate() {
            // The bundle holds the chart at `<destination path>/<name>`: refused here, before
            // anything is downloaded, rather than by `verify` or `push` on the other side.
            super::charts::check_name(&chart.name).map_err(|e| {
                fail(format!(
                    "charts[{i}] ({} from the Helm repository {}): {e}",
                    chart.name, chart.source
                ))
            })?;
        }
        // A bare file name's directory is the current one.
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let mut hosts = BTreeMap::new();
        for entry in file.hosts {
            let host = read_host(&entry, dir)
                .map_err(|reason| fail(format!("hosts ({}): {reason}", entry.host)))?;
            if hosts.insert(entry.host.clone(), host).is_some() {
                return Err(fail(format!("hosts: '{}' is listed twice", entry.host)));
            }
        }
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let stem: String = stem
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        Ok(ImageSet {
            file: path.to_path_buf(),
            archive: format!("images-{stem}.tar"),
            artifacts: file.artifacts,
            charts: file.charts,
            hosts,
        })
    }
}

fn read_host(entry: &HostEntry, dir: &Path) -> Result<Host, String> {
    if entry.provider.is_some() {
        return Err("provider (cloud registry identity) is not supported by ferry".into());
    }
    let mut host = Host {
        username: entry.username.clone(),
        ..Host::default()
    };
    if let Some(credential) = &entry.credential {
        if credential.provider.is_some()
            || credential.jwk_path.is_some()
            || credential.jwk_value.is_some()
        {
            return Err(
                "credential.provider, jwkPath and jwkValue (minted tokens) are not supported \
                 by ferry; give credential.value or credential.fromPath"
                    .into(),
            );
        }
        if credential.iss.is_some()
            || credential.sub.is_some()
            || credential.aud.is_some()
            || credential.exp.is_some()
        {
            return Err("iss, sub, aud and exp only go with minted tokens".into());
        }
        host.credential = match (&credential.value, &credential.from_path) {
            (Some(value), None) => Some(value.clone()),
            (None, Some(file)) => {
                let bytes = read_confined(dir, file, CREDENTIAL_LIMIT)
                    .map_err(|e| format!("credential.fromPath {file}: {e}"))?;
                Some(
                    String::from_utf8(bytes)
                        .map_err(|_| format!("credential.fromPath {file}: it is not text"))?
                        .trim()
                        .to_string(),
                )
            }
            _ => return Err("credential needs exactly one of value and fromPath".into()),
        };
    }
    if let Some(tls) = &entry.tls {
        if tls.client_auth.is_some() {
            return Err("tls.clientAuth (mTLS) is not supported by ferry".into());
        }
        if let Some(server) = &tls.server_auth {
            if server.spiffe.is_some() {
                return Err("tls.serverAuth.spiffe is not supported by ferry".into());
            }
            host.ca_pem = match (&server.value, &server.from_path) {
                (Some(pem), None) => Some(pem.clone().into_bytes()),
                (None, Some(file)) => Some(
                    read_confined(dir, file, CA_LIMIT)
                        .map_err(|e| format!("tls.serverAuth.fromPath {file}: {e}"))?,
                ),
                _ => return Err("tls.serverAuth needs exactly one of value and fromPath".into()),
            };
        }
    }
    let _ = entry.max_chunk_size;
    Ok(host)
}

/// The largest credential file read (a token or a password).
const CREDENTIAL_LIMIT: u64 = 64 << 10;
/// The largest CA bundle read.
const CA_LIMIT: u64 = 1 << 20;

/// Reads `file`, relative to the config's directory, which neither its path nor any link on
/// the way may leave; at most `limit` bytes of a regular file.
fn read_confined(dir: &Path, file: &str, limit: u64) -> Result<Vec<u8>, String> {
    let path = confined(dir, file)?;
    let base = dir
        .canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", dir.display()))?;
    let resolved = path.canonicalize().map_err(|e| e.to_string())?;
    if !resolved.starts_with(&base) {
        return Err(format!(
            "it resolves to {}, outside the config file's directory",
            resolved.display()
        ));
    }
    crate::small_file::read_small(&resolved, limit)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "it does not exist".to_string())
}

/// `file` relative to the config's directory, which it may not leave.
fn confined(dir: &Path, file: &str) -> Result<PathBuf, String> {
    let relative = Path::new(file);
    if relative.is_absolute()
        || relative
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::Prefix(_)))
    {
        return Err(format!(
            "'{file}' must lie under the config file's directory (relative, no '..')"
        ));
    }
    Ok(dir.join(relative))
}

/// Replaces every `${NAME}` with `lookup(NAME)`; an unset variable is an error naming it and
/// its line.
pub fn substitute(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    for (number, line) in text.split_inclusive('\n').enumerate() {
        let mut rest = line;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err(format!("line {}: '${{' without a closing '}}'", number + 1));
            };
            let name = &after[..end];
            let value = lookup(name).ok_or_else(|| {
                format!(
                    "line {}: ${{{name}}} is not set in the environment (set it, or use \
                     --no-envsubst to keep ${{...}} as written)",
                    number + 1
                )
            })?;
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_replaced_or_named_with_their_line() {
        let env = |n: &str| (n == "TOKEN").then(|| "s3cret".to_string());
        assert_eq!(
            substitute("a: ${TOKEN}\nb: x${TOKEN}y\n", env).unwrap(),
            "a: s3cret\nb: xs3crety\n"
        );
        let err = substitute("a: 1\nb: ${MISSING}\n", env).unwrap_err();
        assert!(
            err.contains("line 2") && err.contains("${MISSING}"),
            "{err}"
        );
    }

    #[test]
    fn paths_stay_under_the_config_directory() {
        let dir = Path::new("/etc/ferry");
        assert_eq!(
            confined(dir, "certs/ca.crt").unwrap(),
            dir.join("certs/ca.crt")
        );
        assert!(confined(dir, "../x").is_err());
        assert!(confined(dir, "/etc/shadow").is_err());
    }
}
