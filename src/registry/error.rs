//! Registry errors that say what failed where: registry, repository, object, HTTP status, and
//! the registry's own error code and message; each knows the hint that usually fixes it.

use crate::digest::Digest;
use crate::report::printable;
use crate::store::StoreError;

/// Where a registry operation was aimed: `host[/repository]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host[:port]`.
    pub registry: String,
    /// The repository, when the operation had one.
    pub repository: Option<String>,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.repository {
            Some(repo) => write!(f, "{}/{}", self.registry, repo),
            None => f.write_str(&self.registry),
        }
    }
}

/// What can go wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No connection could be made (DNS, refused, timeout, reset before an answer).
    #[error("cannot reach {target}: {detail}")]
    Unreachable {
        /// The registry.
        target: Target,
        /// The transport's explanation.
        detail: String,
    },
    /// The TLS handshake failed, usually an unknown certificate authority.
    #[error("TLS handshake with {target} failed: {detail}")]
    Tls {
        /// The registry.
        target: Target,
        /// The TLS library's explanation.
        detail: String,
    },
    /// The registry (or its token service) refused the credentials.
    #[error("{target}: authentication failed: {detail}")]
    Unauthorized {
        /// The registry and repository.
        target: Target,
        /// What the server said.
        detail: String,
        /// Whether credentials were sent at all.
        had_credentials: bool,
    },
    /// Authenticated, but not allowed to do this.
    #[error("{target}: access denied: {detail}")]
    Denied {
        /// The registry and repository.
        target: Target,
        /// What the server said.
        detail: String,
    },
    /// The repository, manifest, tag or blob does not exist.
    #[error("{target}: {what} not found{}", detail_suffix(.detail))]
    NotFound {
        /// The registry and repository.
        target: Target,
        /// What was looked for, e.g. "manifest v1.2.3".
        what: String,
        /// The registry's code and message, if it sent any.
        detail: String,
    },
    /// The server answered with an unexpected status.
    #[error("{target}: {what} failed with HTTP {status}{}", detail_suffix(.detail))]
    Status {
        /// The registry and repository.
        target: Target,
        /// The operation, e.g. "PUT manifest v1".
        what: String,
        /// The HTTP status code.
        status: u16,
        /// The registry's code and message, if it sent any.
        detail: String,
    },
    /// The content does not hash to the digest it was asked for: the source is lying or the
    /// data was damaged on the way. Never retried silently.
    #[error("{target}: wrong content for {expected}: the bytes received hash to {actual}")]
    DigestMismatch {
        /// The registry and repository.
        target: Target,
        /// The digest asked for.
        expected: Digest,
        /// What the bytes hash to.
        actual: Digest,
    },
    /// A transfer stopped moving, or moved too little for too long.
    #[error("{target}: {what} stalled: less than 16 KiB arrived in {seconds} s")]
    Stalled {
        /// The registry and repository.
        target: Target,
        /// The transfer.
        what: String,
        /// The stall timeout.
        seconds: u64,
    },
    /// A local copy of a blob (a bundle file, a layout) does not hash to its digest.
    #[error("{digest}: the local copy read from {files} hashes to {actual}; it is damaged")]
    Damaged {
        /// The blob.
        digest: Digest,
        /// What its bytes hash to.
        actual: Digest,
        /// The files it was read from.
        files: String,
    },
    /// The server broke the protocol (missing header, bad range, …).
    #[error("{target}: {detail}")]
    Protocol {
        /// The registry and repository.
        target: Target,
        /// What was wrong.
        detail: String,
    },
    /// Writing or reading local files failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The client could not be set up (certificates, credentials files, helpers).
    #[error("{0}")]
    Config(String),
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

/// The `{"errors":[{code,message,detail}]}` envelope registries send with 4xx and 5xx answers,
/// flattened to `CODE: message (detail)`; for a non-JSON body, its first line.
pub(crate) fn describe_error_body(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
        #[serde(default)]
        detail: Option<serde_json::Value>,
    }
    if let Ok(env) = serde_json::from_slice::<Envelope>(body) {
        let joined = env
            .errors
            .iter()
            .map(|e| {
                let mut s = format!("{}: {}", e.code, e.message);
                match &e.detail {
                    Some(serde_json::Value::String(d)) if !d.is_empty() => s += &format!(" ({d})"),
                    Some(v @ serde_json::Value::Object(_)) => s += &format!(" ({v})"),
                    _ => {}
                }
                s
            })
            .collect::<Vec<_>>()
            .join("; ");
        return printable(&joined);
    }
    let text = String::from_utf8_lossy(body);
    printable(text.lines().next().unwrap_or("").trim())
}

/// Turns a transport error into `Unreachable` or `Tls`, with the innermost cause spelled out
/// (reqwest's own message is only "error sending request").
pub(crate) fn classify_transport(target: Target, err: &reqwest::Error) -> RegistryError {
    let mut chain = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = source {
        let text = e.to_string();
        if chain.last() != Some(&text) {
            chain.push(text);
        }
        source = e.source();
    }
    let detail = chain.iter().skip(1).cloned().collect::<Vec<_>>().join(": ");
    let detail = if detail.is_empty() {
        chain.join(": ")
    } else {
        detail
    };
    let lower = detail.to_lowercase();
    if lower.contains("certificate")
        || lower.contains("tls")
        || lower.contains("handshake")
        || lower.contains("invalidcontenttype")
        || lower.contains("corrupt message")
    {
        RegistryError::Tls { target, detail }
    } else {
        RegistryError::Unreachable { target, detail }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_envelopes_become_one_line() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":"v9"}]}"#;
        assert_eq!(
            describe_error_body(body),
            "MANIFEST_UNKNOWN: manifest unknown (v9)"
        );
        assert_eq!(
            describe_error_body(b"404 page not found\n"),
            "404 page not found"
        );
    }
}
