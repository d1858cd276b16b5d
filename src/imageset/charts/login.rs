//! Helm repository logins, from Helm's own `repositories.yaml`, as flux mirror reads them.

use std::path::PathBuf;

use serde::Deserialize;

use super::ChartError;
use crate::registry::{Credential, Secret};

/// The login Helm's `repositories.yaml` (`$HELM_REPOSITORY_CONFIG`, else
/// `~/.config/helm/repositories.yaml`) has for the repository at `url`; none when the file or
/// the entry is missing, or the entry has no username.
pub fn repo_login(url: &str) -> Result<Option<Credential>, ChartError> {
    #[derive(Deserialize)]
    struct File {
        #[serde(default)]
        repositories: Vec<Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        url: String,
        #[serde(default)]
        username: Option<String>,
        #[serde(default)]
        password: Option<String>,
    }
    let path = match std::env::var_os("HELM_REPOSITORY_CONFIG") {
        Some(p) => PathBuf::from(p),
        None => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".config/helm/repositories.yaml"),
            None => return Ok(None),
        },
    };
    let failed = |reason: String| ChartError::Logins {
        path: path.display().to_string(),
        reason,
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(failed(e.to_string())),
    };
    // The parser's first line says what and where; its snippet could repeat a password.
    let file: File = serde_saphyr::from_str(&text)
        .map_err(|e| failed(e.to_string().lines().next().unwrap_or_default().into()))?;
    let wanted = url.trim_end_matches('/');
    Ok(file
        .repositories
        .into_iter()
        .find(|r| r.url.trim_end_matches('/') == wanted)
        .and_then(|r| {
            // Helm sends a username without a password as `username:`; so does an empty one.
            Some(Credential::Basic {
                username: r.username?,
                password: Secret::new(r.password.unwrap_or_default()),
            })
        }))
}
