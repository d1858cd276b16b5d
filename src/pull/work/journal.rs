//! The journal of a pull's work directory: an append-only list of what is finished (blobs in
//! place, files sealed) and how far each big blob has come, read back by a rerun.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;

use super::place::NOFOLLOW;
use crate::bundle::FileRecord;
use crate::bundle::names::parse_archive_file;
use crate::digest::Digest;

/// The journal's name in the work directory.
pub const JOURNAL_FILE: &str = "journal";
/// A journal larger than this is not read (a line per blob and per 16 MiB written).
const JOURNAL_LIMIT: u64 = 64 << 20;
/// The longest journal line ferry writes (`sealed`, a file name, a size, two sums).
const JOURNAL_LINE_LIMIT: usize = 1024;

/// What the journal says is finished.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Blobs in place everywhere they go.
    pub done: HashSet<Digest>,
    /// Blobs cut off mid-way: how many bytes of each are at its first place.
    pub at: HashMap<Digest, u64>,
    /// Files sealed (hashed, synced, renamed into the bundle directory), by name.
    pub sealed: HashMap<String, FileRecord>,
}

/// The append-only journal: one line per event, `done <digest>`, `at <digest> <offset>`,
/// `sealed <file> <size> <sha256> <gost or ->`. A line cut by a crash is ignored.
pub struct Journal {
    file: Mutex<File>,
}

impl Journal {
    /// Opens the journal at `path` for appending (created when missing, never through a link).
    pub fn open(path: &Path) -> std::io::Result<Journal> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .custom_flags(NOFOLLOW)
            .open(path)?;
        Ok(Journal {
            file: Mutex::new(file),
        })
    }

    fn append(&self, line: &str, sync: bool) -> std::io::Result<()> {
        let mut file = self.file.lock().expect("journal lock");
        file.write_all(line.as_bytes())?;
        if sync {
            file.sync_data()?;
        }
        Ok(())
    }

    /// A blob is in place everywhere.
    pub fn done(&self, digest: &Digest) -> std::io::Result<()> {
        self.append(&format!("done {digest}\n"), false)
    }

    /// A blob being written has reached `offset` (synced: this is where a resume starts).
    pub fn at(&self, digest: &Digest, offset: u64) -> std::io::Result<()> {
        self.append(&format!("at {digest} {offset}\n"), true)
    }

    /// A file is about to be renamed into the bundle directory (synced first).
    pub fn sealed(&self, record: &FileRecord) -> std::io::Result<()> {
        let gost = record.gost.as_deref().unwrap_or("-");
        self.append(
            &format!(
                "sealed {} {} {} {gost}\n",
                record.name, record.size, record.sha256
            ),
            true,
        )
    }
}

/// What the journal at `path` says is finished; nothing when it is missing or unreadable.
pub fn read_progress(path: &Path) -> Progress {
    let mut progress = Progress::default();
    let Ok(Some(bytes)) = crate::small_file::read_small(path, JOURNAL_LIMIT) else {
        return progress;
    };
    for line in bytes.split(|&b| b == b'\n') {
        // No line ferry writes is longer: anything else is not a journal line.
        if line.len() > JOURNAL_LINE_LIMIT {
            continue;
        }
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let words: Vec<&str> = line.splitn(6, ' ').collect();
        match words.as_slice() {
            ["done", digest] => {
                if let Ok(digest) = digest.parse::<Digest>() {
                    progress.at.remove(&digest);
                    progress.done.insert(digest);
                }
            }
            ["at", digest, offset] => {
                if let (Ok(digest), Ok(offset)) = (digest.parse::<Digest>(), offset.parse()) {
                    progress.at.insert(digest, offset);
                }
            }
            // Only a plain archive file name: the names are removed or moved on a restart.
            ["sealed", name, size, sha256, gost] if is_archive_file(name) => {
                if let Ok(size) = size.parse() {
                    progress.sealed.insert(
                        name.to_string(),
                        FileRecord {
                            name: name.to_string(),
                            size,
                            sha256: sha256.to_string(),
                            gost: (*gost != "-").then(|| gost.to_string()),
                        },
                    );
                }
            }
            _ => {}
        }
    }
    progress
}

/// True for a plain archive file name (`x.tar`, `x.tar.0001.chunk`): no directory part, so
/// joined to the bundle directory it names a file in it and nowhere else.
pub fn is_archive_file(name: &str) -> bool {
    !name.contains('/') && !name.contains('\0') && parse_archive_file(name).is_some()
}
