//! Tar entries read raw, with their extension headers applied by us: a GNU long name or a PAX
//! `path` names the entry that follows it, and an extension payload is read only when it is
//! small. The tar crate's own iterator would read a long name of any size into memory, so a
//! crafted archive of a few megabytes could claim gigabytes; every tar ferry reads from
//! outside (bundle archives, Helm charts) goes through here.

use std::io::Read;

/// The largest GNU long-name or PAX extension payload read (real ones hold one path).
pub const EXTENSION_LIMIT: u64 = 64 << 10;

/// Why an extension header over [`EXTENSION_LIMIT`] is refused, as the errors say it.
pub const EXTENSION_TOO_LARGE: &str = "an extension header (long name or PAX) over 64 KiB";

/// What can be wrong with a tar's entries.
#[derive(Debug, thiserror::Error)]
pub enum TarEntryError {
    /// The bytes cannot be read as a tar (or cannot be read at all).
    #[error("{source}")]
    Read {
        /// Where the header being read starts.
        offset: u64,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An extension header claims more than any path needs.
    #[error("entry '{entry}' is {EXTENSION_TOO_LARGE}")]
    ExtensionTooLarge {
        /// Where its header starts.
        offset: u64,
        /// Its name as the header gives it (`././@LongLink` for GNU long names).
        entry: String,
    },
    /// A PAX header cannot be parsed, or says something ferry does not support.
    #[error("{reason}")]
    BadPax {
        /// Where its header starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

impl TarEntryError {
    /// Where in the tar the problem is.
    pub fn offset(&self) -> u64 {
        match self {
            TarEntryError::Read { offset, .. }
            | TarEntryError::ExtensionTooLarge { offset, .. }
            | TarEntryError::BadPax { offset, .. } => *offset,
        }
    }
}

/// An entry with the name its extension headers give it.
pub struct NamedEntry<'a, R: Read> {
    /// The PAX `path`, else the GNU long name, else the header's own name (not normalised).
    pub name: String,
    /// The entry, raw: its header is the entry's own, its size the header's.
    pub entry: tar::Entry<'a, R>,
}

/// The entries of a tar, extension headers folded into the entries they describe. GNU
/// long-link entries (link targets) are passed on as entries of their own.
pub struct RawEntries<'a, R: Read> {
    entries: tar::Entries<'a, R>,
    end: u64,
}

impl<'a, R: Read> RawEntries<'a, R> {
    /// Wraps the entries of an archive (switching them to raw mode).
    pub fn new(entries: tar::Entries<'a, R>) -> Self {
        RawEntries {
            entries: entries.raw(true),
            end: 0,
        }
    }

    /// Where the data of the last entry read ends, padded to a block: the next header's offset.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// The next raw entry, with `end` moved past it.
    fn next_raw(&mut self) -> Option<Result<tar::Entry<'a, R>, TarEntryError>> {
        let entry = match self.entries.next()? {
            Ok(entry) => entry,
            Err(source) => {
                return Some(Err(TarEntryError::Read {
                    offset: self.end,
                    source,
                }));
            }
        };
        let offset = entry.raw_header_position();
        self.end = match entry
            .raw_file_position()
            .checked_add(entry.size().div_ceil(512) * 512)
        {
            Some(end) => end,
            None => {
                return Some(Err(TarEntryError::Read {
                    offset,
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "an entry size overflows",
                    ),
                }));
            }
        };
        Some(Ok(entry))
    }
}

impl<'a, R: Read> Iterator for RawEntries<'a, R> {
    type Item = Result<NamedEntry<'a, R>, TarEntryError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut long_name: Option<String> = None;
        let mut pax: Option<Pax> = None;
        loop {
            let mut entry = match self.next_raw()? {
                Ok(entry) => entry,
                Err(e) => return Some(Err(e)),
            };
            let kind = entry.header().entry_type();
            let offset = entry.raw_header_position();
            let size = entry.size();
            if kind.is_gnu_longname()
                || kind.is_pax_local_extensions()
                || kind.is_pax_global_extensions()
            {
                if size > EXTENSION_LIMIT {
                    return Some(Err(TarEntryError::ExtensionTooLarge {
                        offset,
                        entry: String::from_utf8_lossy(&entry.path_bytes()).into_owned(),
                    }));
                }
                let mut payload = Vec::with_capacity(size as usize);
                if let Err(source) = entry.read_to_end(&mut payload) {
                    return Some(Err(TarEntryError::Read { offset, source }));
                }
                if kind.is_gnu_longname() {
                    let name = payload.split(|&b| b == 0).next().unwrap_or_default();
                    long_name = Some(String::from_utf8_lossy(name).into_owned());
                } else if kind.is_pax_local_extensions() {
                    match Pax::parse(&payload) {
                        Ok(parsed) => pax = Some(parsed),
                        Err(reason) => {
                            return Some(Err(TarEntryError::BadPax {
                                offset,
                                reason: reason.into(),
                            }));
                        }
                    }
                }
                continue;
            }
            let pax = pax.unwrap_or_default();
            let name = match (pax.path, long_name) {
                (Some(path), _) => path,
                (None, Some(name)) => name,
                (None, None) => String::from_utf8_lossy(&entry.path_bytes()).into_owned(),
            };
            if pax.size.is_some_and(|s| s != size) {
                return Some(Err(TarEntryError::BadPax {
                    offset,
                    reason: format!(
                        "entry '{name}' has a PAX size other than its header's (not supported)"
                    ),
                }));
            }
            return Some(Ok(NamedEntry { name, entry }));
        }
    }
}

/// What a PAX extended header says about the next entry.
#[derive(Debug, Default)]
struct Pax {
    path: Option<String>,
    size: Option<u64>,
}

impl Pax {
    /// Parses `<length> <key>=<value>\n` records.
    fn parse(mut payload: &[u8]) -> Result<Pax, &'static str> {
        let mut pax = Pax::default();
        while !payload.is_empty() {
            let space = payload
                .iter()
                .position(|&b| b == b' ')
                .ok_or("a PAX record without a length")?;
            let length: usize = std::str::from_utf8(&payload[..space])
                .ok()
                .and_then(|n| n.parse().ok())
                .filter(|&n| n > space + 1 && n <= payload.len())
                .ok_or("a PAX record with a bad length")?;
            let record = &payload[space + 1..length];
            let record = record.strip_suffix(b"\n").unwrap_or(record);
            if let Some(eq) = record.iter().position(|&b| b == b'=') {
                let value = String::from_utf8_lossy(&record[eq + 1..]).into_owned();
                match &record[..eq] {
                    b"path" => pax.path = Some(value),
                    b"size" => {
                        pax.size = Some(
                            value
                                .parse()
                                .map_err(|_| "a PAX size that is not a number")?,
                        )
                    }
                    _ => {}
                }
            }
            payload = &payload[length..];
        }
        Ok(pax)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: tar::EntryType, name: &[u8], size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
        header.set_size(size);
        header.set_mode(0o644);
        header.set_cksum();
        header
    }

    fn names(tar: &[u8]) -> Result<Vec<(String, u64)>, TarEntryError> {
        let mut archive = tar::Archive::new(tar);
        RawEntries::new(archive.entries().unwrap())
            .map(|e| e.map(|e| (e.name, e.entry.size())))
            .collect()
    }

    #[test]
    fn long_names_and_pax_paths_name_the_next_entry() {
        let long = "d/".repeat(80) + "file";
        let mut builder = tar::Builder::new(Vec::new());
        let mut plain = header(tar::EntryType::Regular, b"short", 3);
        builder
            .append_data(&mut plain, "short", &b"abc"[..])
            .unwrap();
        let mut file = header(tar::EntryType::Regular, b"x", 2);
        builder.append_data(&mut file, &long, &b"hi"[..]).unwrap();
        builder
            .append_pax_extensions([("path", &b"from/pax"[..])])
            .unwrap();
        let pax_file = header(tar::EntryType::Regular, b"ignored", 1);
        builder.append(&pax_file, &b"z"[..]).unwrap();
        let tar = builder.into_inner().unwrap();
        assert_eq!(
            names(&tar).unwrap(),
            [
                ("short".to_string(), 3),
                (long, 2),
                ("from/pax".to_string(), 1)
            ]
        );
    }

    #[test]
    fn a_huge_long_name_is_refused_before_it_is_read() {
        // The header alone: the 1 GiB it announces is never there, nor asked for.
        let bomb = header(tar::EntryType::GNULongName, b"././@LongLink", 1 << 30);
        let error = names(bomb.as_bytes()).unwrap_err();
        assert!(
            matches!(&error, TarEntryError::ExtensionTooLarge { offset: 0, entry } if entry == "././@LongLink"),
            "{error:?}"
        );
        assert!(error.to_string().contains("over 64 KiB"));
    }
}
