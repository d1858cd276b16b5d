//! Basic authentication from an htpasswd file with bcrypt entries, the one form the
//! distribution registry reads (`htpasswd -B`). A bcrypt check costs milliseconds of CPU by
//! design, so a login that passed is remembered (by a SHA-256 of the password, never the
//! password) and later requests of the same client cost a hash lookup.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

use base64::Engine;

use super::error::ServeError;
use crate::digest::Digest;

/// How large an htpasswd file may be.
const FILE_LIMIT: u64 = 1 << 20;
/// How many passed logins are remembered before the memory is cleared.
const REMEMBERED: usize = 1024;

/// The users an htpasswd file lets in.
#[derive(Debug)]
pub struct Htpasswd {
    users: HashMap<String, String>,
    passed: Mutex<HashSet<(String, Digest)>>,
}

impl Htpasswd {
    /// Reads `path`: `user:hash` lines, blank lines and `#` comments. A hash that is not bcrypt
    /// is refused, naming its line.
    pub fn read(path: &Path) -> Result<Htpasswd, ServeError> {
        let fail = |reason: String| ServeError::Htpasswd {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = read_config_file(path, FILE_LIMIT).map_err(fail)?;
        let text = String::from_utf8(bytes).map_err(|_| fail("is not UTF-8 text".into()))?;
        let mut users = HashMap::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let number = number + 1;
            let Some((user, hash)) = line.split_once(':') else {
                return Err(fail(format!("line {number} is not user:hash")));
            };
            if !["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) {
                return Err(fail(format!(
                    "line {number}: the entry of '{}' is not a bcrypt hash; write it with \
                     htpasswd -B (the distribution registry reads bcrypt only)",
                    crate::report::printable(user)
                )));
            }
            users.insert(user.to_string(), hash.to_string());
        }
        if users.is_empty() {
            return Err(fail("lists no user".into()));
        }
        Ok(Htpasswd {
            users,
            passed: Mutex::new(HashSet::new()),
        })
    }

    /// The user an `Authorization` header logs in, if it is a `Basic` one with a user and
    /// password the file accepts. Blocking: a bcrypt check takes milliseconds.
    pub fn login(&self, header: Option<&str>) -> Option<String> {
        // The scheme's name is case-insensitive (RFC 9110).
        let (scheme, encoded) = header?.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let encoded = encoded.trim();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (user, password) = decoded.split_once(':')?;
        let Some(hash) = self.users.get(user) else {
            // As slow as a wrong password, so timing does not tell which users exist.
            let _ = bcrypt::verify(password, unknown_user_hash());
            return None;
        };
        let key = (user.to_string(), Digest::of(password.as_bytes()));
        if self.passed.lock().expect("not poisoned").contains(&key) {
            return Some(key.0);
        }
        if !bcrypt::verify(password, hash).unwrap_or(false) {
            return None;
        }
        let mut passed = self.passed.lock().expect("not poisoned");
        if passed.len() >= REMEMBERED {
            passed.clear();
        }
        passed.insert(key.clone());
        Some(key.0)
    }
}

/// A bcrypt hash no password matches in practice, of the cost `htpasswd -B` uses.
fn unknown_user_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        bcrypt::hash(Digest::of(b"ferry: no such user").to_string(), 5)
            .expect("bcrypt hashes any password")
    })
}

/// Reads a small file the server is configured with (links followed), naming what is wrong.
pub(super) fn read_config_file(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    match crate::small_file::read_small_linked(path, limit) {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err("does not exist".into()),
        Err(e) => Err(format!("cannot be read: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(credentials: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        )
    }

    #[test]
    fn bcrypt_entries_let_their_users_in_and_no_one_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        std::fs::write(&path, format!("# users\n\nalice:{hash}\n")).unwrap();
        let file = Htpasswd::read(&path).unwrap();
        assert_eq!(
            file.login(Some(&basic("alice:s3cret"))),
            Some("alice".into())
        );
        // Remembered, and still only for the right password.
        assert_eq!(
            file.login(Some(&basic("alice:s3cret"))),
            Some("alice".into())
        );
        assert_eq!(file.login(Some(&basic("alice:wrong"))), None);
        assert_eq!(file.login(Some(&basic("bob:s3cret"))), None);
        assert_eq!(file.login(Some("Bearer x")), None);
        let lower = basic("alice:s3cret").replace("Basic", "basic");
        assert_eq!(file.login(Some(&lower)), Some("alice".into()));
        assert_eq!(file.login(Some("Basic !!!")), None);
        assert_eq!(file.login(None), None);
    }

    #[test]
    fn other_hashes_are_refused_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        std::fs::write(&path, "alice:$apr1$abc$def\n").unwrap();
        let err = Htpasswd::read(&path).unwrap_err().to_string();
        assert!(
            err.contains("line 1") && err.contains("htpasswd -B"),
            "{err}"
        );
        std::fs::write(&path, "\n# nobody\n").unwrap();
        assert!(
            Htpasswd::read(&path)
                .unwrap_err()
                .to_string()
                .contains("no user")
        );
    }
}
