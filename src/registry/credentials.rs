//! Registry credentials: secrets that never print, and the lookup in the files podman, skopeo
//! and docker write (`REGISTRY_AUTH_FILE`, containers `auth.json`, docker `config.json` with
//! its credential helpers), in the order containers/image uses.

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

use super::error::RegistryError;

/// A secret string. Its `Debug` and `Display` print `***`, so it cannot leak into logs or
/// error messages by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How to prove who we are to one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A login and password (or a token used as a password).
    Basic {
        /// The login.
        username: String,
        /// The password.
        password: Secret,
    },
    /// An OAuth2 refresh token (docker's `identitytoken`), traded at the token service.
    IdentityToken(Secret),
    /// A bearer token sent as it is on every request (an image set's `credential.value`
    /// without `username`, as flux mirror sends it).
    Bearer(Secret),
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AuthFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: HashMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// The files searched, in order: the first that knows the registry wins.
pub fn search_path() -> Vec<PathBuf> {
    let env = |k| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let mut files = Vec::new();
    if let Some(f) = env("REGISTRY_AUTH_FILE") {
        files.push(f);
    }
    if let Some(d) = env("XDG_RUNTIME_DIR") {
        files.push(d.join("containers/auth.json"));
    }
    let home = env("HOME");
    if let Some(h) = &home {
        files.push(h.join(".config/containers/auth.json"));
    }
    if let Some(d) = env("DOCKER_CONFIG") {
        files.push(d.join("config.json"));
    } else if let Some(h) = &home {
        files.push(h.join(".docker/config.json"));
    }
    files
}

/// Finds credentials for `registry` (host[:port]) and `repository` in the usual files. `None`
/// means anonymous access. A file that exists but cannot be parsed is an error: silently going
/// anonymous would only move the failure to a confusing 401 later.
pub fn lookup(registry: &str, repository: &str) -> Result<Option<Credential>, RegistryError> {
    for path in search_path() {
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(RegistryError::Config(format!(
                    "cannot read credentials file {}: {e}",
                    path.display()
                )));
            }
        };
        let file: AuthFile = serde_json::from_slice(&text).map_err(|e| {
            RegistryError::Config(format!(
                "credentials file {} is not valid JSON: {e}",
                path.display()
            ))
        })?;
        if let Some(found) = from_file(&file, &path, registry, repository)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

fn from_file(
    file: &AuthFile,
    path: &Path,
    registry: &str,
    repository: &str,
) -> Result<Option<Credential>, RegistryError> {
    if let Some(helper) = file.cred_helpers.get(registry) {
        return run_helper(helper, registry);
    }
    // Keys may be `host`, `host/namespace`, or old-style URLs; the longest match wins.
    let wanted = format!("{registry}/{repository}");
    let best = file
        .auths
        .iter()
        .filter_map(|(key, entry)| {
            let key = normalize_key(key);
            let matches = key == registry
                || (wanted.starts_with(&key) && wanted.as_bytes().get(key.len()) == Some(&b'/'));
            matches.then_some((key.len(), entry))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, entry)| entry);
    match best {
        Some(entry) => {
            let parsed = parse_entry(entry, path, registry)?;
            if parsed.is_none()
                && let Some(store) = &file.creds_store
            {
                return run_helper(store, registry);
            }
            Ok(parsed)
        }
        None => match &file.creds_store {
            Some(store) => run_helper(store, registry),
            None => Ok(None),
        },
    }
}

fn normalize_key(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let key = key.strip_suffix("/v2/").unwrap_or(key);
    let key = key.strip_suffix("/v1/").unwrap_or(key);
    key.trim_end_matches('/').to_string()
}

fn parse_entry(
    entry: &AuthEntry,
    path: &Path,
    registry: &str,
) -> Result<Option<Credential>, RegistryError> {
    if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credential::IdentityToken(Secret::new(token))));
    }
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.split_once(':')
                    .map(|(u, p)| (u.to_string(), p.to_string()))
            });
        let Some((username, password)) = decoded else {
            return Err(RegistryError::Config(format!(
                "credentials file {}: the \"auth\" entry for {registry} is not base64 of login:password",
                path.display()
            )));
        };
        return Ok(Some(Credential::Basic {
            username,
            password: Secret::new(password),
        }));
    }
    match (&entry.username, &entry.password) {
        (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Credential::Basic {
            username: u.clone(),
            password: Secret::new(p.clone()),
        })),
        _ => Ok(None),
    }
}

/// How long a credential helper may take.
const HELPER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Asks `docker-credential-<name> get` for the registry's credentials.
fn run_helper(name: &str, registry: &str) -> Result<Option<Credential>, RegistryError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct HelperAnswer {
        username: String,
        secret: String,
    }
    let program = format!("docker-credential-{name}");
    let fail = |what: String| RegistryError::Config(format!("credential helper {program}: {what}"));
    // The name comes from a config file: it names a program on PATH, never a path.
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(fail(
            "the helper name may only hold letters, digits, '.', '_' and '-'".into(),
        ));
    }
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run it: {e}")))?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(registry.as_bytes())
        .map_err(|e| fail(format!("cannot write to it: {e}")))?;
    // A helper waiting for a keyring prompt nobody will answer must not hang ferry.
    let deadline = std::time::Instant::now() + HELPER_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "did not answer within {} s",
                    HELPER_TIMEOUT.as_secs()
                )));
            }
            Err(e) => return Err(fail(format!("did not finish: {e}"))),
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("did not finish: {e}")))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stdout);
        // Helpers answer "credentials not found in native keychain" for unknown registries.
        if said.to_lowercase().contains("not found") {
            return Ok(None);
        }
        return Err(fail(format!("failed ({})", out.status)));
    }
    let answer: HelperAnswer = serde_json::from_slice(&out.stdout)
        .map_err(|_| fail("answered something that is not {\"Username\",\"Secret\"}".into()))?;
    if answer.username == "<token>" {
        return Ok(Some(Credential::IdentityToken(Secret::new(answer.secret))));
    }
    Ok(Some(Credential::Basic {
        username: answer.username,
        password: Secret::new(answer.secret),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(json: &str) -> AuthFile {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn secrets_never_print() {
        let c = Credential::Basic {
            username: "u".into(),
            password: Secret::new("hunter2"),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(format!("{}", Secret::new("x")), "***");
    }

    #[test]
    fn the_most_specific_auths_key_wins() {
        // "alice:pw1" and "bob:pw2"
        let f = file(
            r#"{"auths":{"https://r.example:5000":{"auth":"YWxpY2U6cHcx"},
                         "r.example:5000/team":{"auth":"Ym9iOnB3Mg=="}}}"#,
        );
        let p = Path::new("x");
        let team = from_file(&f, p, "r.example:5000", "team/app")
            .unwrap()
            .unwrap();
        let other = from_file(&f, p, "r.example:5000", "teamx/app")
            .unwrap()
            .unwrap();
        let name = |c: Credential| match c {
            Credential::Basic { username, .. } => username,
            _ => panic!(),
        };
        assert_eq!(name(team), "bob");
        assert_eq!(name(other), "alice");
        assert!(from_file(&f, p, "other:5000", "a").unwrap().is_none());
    }

    #[test]
    fn a_broken_auth_entry_is_an_error_not_anonymous() {
        let f = file(r#"{"auths":{"r.example":{"auth":"not base64!"}}}"#);
        let err = from_file(&f, Path::new("/x/config.json"), "r.example", "a").unwrap_err();
        assert!(err.to_string().contains("/x/config.json"), "{err}");
    }
}
