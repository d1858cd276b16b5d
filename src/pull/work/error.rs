//! Why a pull's work directory cannot be used.

use std::path::{Path, PathBuf};

use crate::file_error::FileError;

/// Why a work directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    /// Another pull holds the lock.
    #[error("another ferry pull is using the work directory {}", .0.display())]
    Busy(PathBuf),
    /// Something other than ferry's own directory is where the work directory goes.
    #[error("cannot use {} as the pull's work directory: {reason}", path.display())]
    Unsafe {
        /// The path.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] FileError),
}

/// Turns an I/O error of `action` on `path` into a [`WorkError::Io`].
pub fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> WorkError {
    let to_file_error = FileError::on(action, path);
    move |source| WorkError::Io(to_file_error(source))
}

/// `path` is not ferry's own directory, for `reason`.
pub fn unsafe_dir(path: &Path, reason: &'static str) -> WorkError {
    WorkError::Unsafe {
        path: path.to_path_buf(),
        reason,
    }
}
