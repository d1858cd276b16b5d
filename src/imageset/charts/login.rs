//! Helm repository logins, from Helm's own `repositories.yaml`, as flux mirror reads them.

use std::path::PathBuf;

use serde::Deserialize;

use super::ChartError;

/// Credentials for a Helm repository, from `repositories.yaml`.
#[derive(Debug, Clone, Default)]
pub struct RepoLogin {
    /// Login.
    pub username: Option<String>,
    /// Password.
    pub password: Option<String>,
}

/// The login Helm's `repositories.yaml` (`$HELM_REPOSITORY_CONFIG`, else
/// `~/.config/helm/repositories.yaml`) has for the repository at `url`; none when the file or
/// the entry is missing.
pub fn repo_login(url: &str) -> Result<RepoLogin, ChartError> {
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
            None => return Ok(RepoLogin::default()),
        },
    };
    let failed = |reason: String| ChartError::Logins {
        path: path.display().to_string(),
        reason,
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RepoLogin::default()),
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
        .map(|r| RepoLogin {
            username: r.username,
            password: r.password,
        })
        .unwrap_or_default())
}
