//! A chart's `.tgz` read as it streams past: every byte is hashed and counted (the layer's
//! digest and size), and `<chart>/Chart.yaml` is taken out through gzip and tar on the way.
//! Memory stays bounded whatever the archive holds or claims: extension headers are capped
//! ([`crate::tar_entries`]), Chart.yaml is capped, and the unpacked bytes looked through are
//! capped.

use std::io::{self, Read};

use crate::digest::{Digest, Sha256Hasher};
use crate::report::human_bytes;
use crate::tar_entries::{NamedEntry, RawEntries, TarEntryError};

/// A `Chart.yaml` larger than this is refused (real ones are a few kilobytes).
const CHART_YAML_LIMIT: u64 = 1 << 20;

/// `Chart.yaml` must appear within this many unpacked bytes of the archive (`helm package`
/// writes it first); what follows is hashed, not unpacked.
const SCAN_LIMIT: u64 = 256 << 20;

/// What a chart's archive is, as far as a pull needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartFile {
    /// Its `<chart>/Chart.yaml`.
    pub chart_yaml: String,
    /// The SHA-256 of the `.tgz`.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
}

/// Why a chart's archive is refused.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// More bytes came than the limit allows.
    #[error("it is larger than {}", human_bytes(*limit))]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The bytes stopped coming (the connection failed).
    #[error("the download failed: {0}")]
    Download(String),
    /// It is no gzip-compressed tar.
    #[error("it is not a gzip-compressed tar: {0}")]
    NotTgz(String),
    /// An entry is crafted to exhaust a reader (a huge long name) or cannot be parsed.
    #[error("{0}")]
    Entry(TarEntryError),
    /// It holds no `<chart>/Chart.yaml`.
    #[error("it holds no <chart>/Chart.yaml")]
    NoChartYaml,
    /// `Chart.yaml` is not near the start of the archive.
    #[error(
        "it holds no <chart>/Chart.yaml in its first {} unpacked",
        human_bytes(SCAN_LIMIT)
    )]
    ChartYamlTooDeep,
    /// `Chart.yaml` is larger than any real one.
    #[error("its Chart.yaml is over 1 MiB")]
    ChartYamlTooLarge,
    /// `Chart.yaml` cannot be used.
    #[error("its Chart.yaml cannot be used: {0}")]
    BadChartYaml(String),
}

/// Reads a chart's `.tgz` to its end: its digest, its size and its `Chart.yaml`. More than
/// `limit` bytes are refused as soon as they arrive.
pub fn read_chart(reader: impl Read, limit: u64) -> Result<ChartFile, ArchiveError> {
    let counted = Counted {
        inner: reader,
        hasher: Sha256Hasher::new(),
        count: 0,
        limit,
        failure: None,
    };
    // Go's gzip reader, which Helm uses, reads every member of a multi-member file.
    let mut tar = tar::Archive::new(flate2::read::MultiGzDecoder::new(counted).take(SCAN_LIMIT));
    let found = find_chart_yaml(&mut tar);
    let unpacked = tar.into_inner();
    let scanned_all = unpacked.limit() == 0;
    // The decoder may have buffered bytes it never unpacked: they were counted and hashed
    // below it, where the rest is read now.
    let mut counted = unpacked.into_inner().into_inner();
    counted.check()?;
    let chart_yaml = match found? {
        Some(text) => text,
        None if scanned_all => return Err(ArchiveError::ChartYamlTooDeep),
        None => return Err(ArchiveError::NoChartYaml),
    };
    let drained = io::copy(&mut counted, &mut io::sink());
    counted.check()?;
    drained.map_err(|e| ArchiveError::Download(e.to_string()))?;
    Ok(ChartFile {
        chart_yaml,
        digest: counted.hasher.finish(),
        size: counted.count,
    })
}

/// `<chart>/Chart.yaml` of a chart's tar, if it has one; subcharts' (`<chart>/charts/…`) are
/// deeper and not taken.
fn find_chart_yaml(tar: &mut tar::Archive<impl Read>) -> Result<Option<String>, ArchiveError> {
    let not_tgz = |e: io::Error| ArchiveError::NotTgz(e.to_string());
    for named in RawEntries::new(tar.entries().map_err(not_tgz)?) {
        let NamedEntry { name, entry } = named.map_err(|e| match e {
            TarEntryError::Read { source, .. } => not_tgz(source),
            other => ArchiveError::Entry(other),
        })?;
        let parts: Vec<&str> = name
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        if parts.len() != 2 || parts[1] != "Chart.yaml" || !entry.header().entry_type().is_file() {
            continue;
        }
        if entry.size() > CHART_YAML_LIMIT {
            return Err(ArchiveError::ChartYamlTooLarge);
        }
        let mut text = String::new();
        entry
            .take(CHART_YAML_LIMIT)
            .read_to_string(&mut text)
            .map_err(|e| ArchiveError::BadChartYaml(e.to_string()))?;
        return Ok(Some(text));
    }
    Ok(None)
}

/// Hashes and counts the bytes of the `.tgz` as they are read, refusing more than `limit`.
/// A failure is remembered, so that it is reported as itself rather than as whatever the
/// gzip or tar reader above makes of it.
struct Counted<R> {
    inner: R,
    hasher: Sha256Hasher,
    count: u64,
    limit: u64,
    failure: Option<ArchiveError>,
}

impl<R> Counted<R> {
    /// The failure seen while reading, if any.
    fn check(&mut self) -> Result<(), ArchiveError> {
        match self.failure.take() {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf).inspect_err(|e| {
            self.failure = Some(ArchiveError::Download(e.to_string()));
        })?;
        self.count += n as u64;
        if self.count > self.limit {
            self.failure = Some(ArchiveError::TooLarge { limit: self.limit });
            return Err(io::Error::other("over the chart size limit"));
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tgz(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, path, *data).unwrap();
        }
        let raw = tar.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&raw).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn the_digest_size_and_chart_yaml_come_out_of_one_pass() {
        let bytes = tgz(&[
            ("app/Chart.yaml", b"name: app\nversion: 1.0.0\n"),
            ("app/charts/sub/Chart.yaml", b"name: sub\n"),
            ("app/values.yaml", &[7u8; 100_000]),
        ]);
        let file = read_chart(bytes.as_slice(), 1 << 20).unwrap();
        assert_eq!(file.chart_yaml, "name: app\nversion: 1.0.0\n");
        assert_eq!(file.digest, Digest::of(&bytes));
        assert_eq!(file.size, bytes.len() as u64);
    }

    #[test]
    fn a_subchart_is_not_the_chart() {
        let bytes = tgz(&[("app/charts/sub/Chart.yaml", b"name: sub\n")]);
        assert!(matches!(
            read_chart(bytes.as_slice(), 1 << 20),
            Err(ArchiveError::NoChartYaml)
        ));
    }

    #[test]
    fn more_than_the_limit_is_refused() {
        let bytes = tgz(&[("app/Chart.yaml", b"name: app\n")]);
        let limit = bytes.len() as u64 - 1;
        assert!(matches!(
            read_chart(bytes.as_slice(), limit),
            Err(ArchiveError::TooLarge { limit: l }) if l == limit
        ));
    }

    #[test]
    fn a_file_that_is_no_tgz_is_named_so() {
        let error = read_chart(&b"<html>not found</html>"[..], 1 << 20).unwrap_err();
        assert!(matches!(error, ArchiveError::NotTgz(_)), "{error:?}");
    }
}
