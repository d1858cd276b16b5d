//! One error for a file operation that failed: what ferry was doing, the path, and what the
//! operating system said. Every error that concerns a file names it this one way.

use std::path::{Path, PathBuf};

/// A file operation that failed, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{action} {}: {source}", path.display())]
pub struct FileError {
    /// What ferry was doing ("cannot write").
    pub action: &'static str,
    /// The file or directory.
    pub path: PathBuf,
    /// The operating system's error.
    #[source]
    pub source: std::io::Error,
}

impl FileError {
    /// Turns an I/O error of `action` on `path` into a [`FileError`], for `map_err`.
    pub fn on(action: &'static str, path: impl AsRef<Path>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.as_ref().to_path_buf();
        move |source| FileError {
            action,
            path,
            source,
        }
    }

    /// A failure on `path` that is no I/O error of the system's (a file of the wrong kind,
    /// content that cannot be used), said in `reason`.
    pub fn other(action: &'static str, path: impl AsRef<Path>, reason: impl Into<String>) -> Self {
        FileError {
            action,
            path: path.as_ref().to_path_buf(),
            source: std::io::Error::other(reason.into()),
        }
    }
}
