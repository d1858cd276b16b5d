//! `bundle.json`: what a bundle holds (archives and their files with sizes and sums, images
//! with tags and digests) and how it was made. Written last, so its presence means the pull
//! finished.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::BundleError;
use super::sums::{gostsums, sha256sums};
use crate::digest::Digest;
use crate::manifest::SIZE_LIMIT;
use crate::store::{write_atomic_blocking, write_atomic_with};

/// The bundle format this ferry writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;
/// The largest `bundle.json` read (it lists every blob: a few hundred bytes each).
const METADATA_LIMIT: u64 = 128 << 20;
/// The metadata file's name.
pub const BUNDLE_FILE: &str = "bundle.json";
/// The signature of `bundle.json` (`pull --sign-key`): base64 of an ECDSA P-256 signature over
/// SHA-256, as `cosign sign-blob` writes it.
pub const BUNDLE_SIGNATURE: &str = "bundle.json.sig";
/// The `sha256sum -c` list.
pub const SHA256SUMS: &str = "SHA256SUMS";
/// The `rhash -c` list of Streebog-256 sums.
pub const GOSTSUMS: &str = "GOSTSUMS";

/// Makes the content of `bundle.json.sig` from the bytes of `bundle.json`.
pub type Signer<'a> = dyn Fn(&[u8]) -> String + 'a;

/// The content of `bundle.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BundleMetadata {
    /// Bundle format version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// The ferry that wrote the bundle.
    pub ferry_version: String,
    /// When the bundle was sealed (RFC 3339, UTC).
    pub created: String,
    /// The source repository root the bundle was pulled from.
    pub source: String,
    /// What was asked for, after resolution (free-form; written by pull), kept as its JSON
    /// text: read, never expanded into a value tree (a crafted one cannot fill the memory).
    #[serde(default = "empty_request")]
    pub request: Box<serde_json::value::RawValue>,
    /// Every archive, with its files in reading order.
    pub archives: Vec<ArchiveRecord>,
    /// Every tag the bundle holds.
    pub images: Vec<ImageRecord>,
    /// For a differential bundle (`--since-bundle`): the bundle it was made against and the
    /// blobs left out because that one holds them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseRecord>,
    /// With `--verify-signatures`: the policy every image passed (its file name and SHA-256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_policy: Option<PolicyRecord>,
}

/// The earlier bundle a differential bundle leaves blobs out against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseRecord {
    /// SHA-256 of that bundle's `bundle.json`, lowercase hex.
    pub bundle_sha256: String,
    /// When that bundle was made.
    pub created: String,
    /// Where that bundle was pulled from.
    pub source: String,
    /// Every blob this bundle needs but does not hold: the target must have them already.
    pub left_out: Vec<BlobRecord>,
}

impl BaseRecord {
    /// `sha256 <first 12 hex> (created <time>)`, how messages name the base.
    pub fn describe(&self) -> String {
        format!(
            "bundle.json sha256 {} (created {})",
            self.bundle_sha256.get(..12).unwrap_or(&self.bundle_sha256),
            self.created
        )
    }

    /// Bytes left out.
    pub fn left_out_bytes(&self) -> u64 {
        self.left_out
            .iter()
            .fold(0, |sum, b| sum.saturating_add(b.size))
    }
}

/// The signature policy a pull held every image to (`--verify-signatures`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRecord {
    /// The policy file's name (no directory: the path on the pull host means nothing later).
    pub file: String,
    /// SHA-256 of its bytes, lowercase hex: the same file can be named at the checkpoint.
    pub sha256: String,
    /// How many images it accepted.
    pub images: usize,
}

/// One archive: a whole `.tar` or a sequence of chunks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveRecord {
    /// The archive's name (`platform.tar`).
    pub name: String,
    /// Its files in order; concatenated they are the tar.
    pub files: Vec<FileRecord>,
    /// Every blob and manifest it holds, each once, sorted by digest (absent in bundles of
    /// ferry before 0.2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blobs: Vec<BlobRecord>,
}

/// A blob or manifest an archive holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRecord {
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
}

impl BlobRecord {
    /// Records of `blobs` (digest → size), in digest order.
    pub fn list(blobs: &BTreeMap<Digest, u64>) -> Vec<BlobRecord> {
        blobs
            .iter()
            .map(|(digest, size)| BlobRecord {
                digest: digest.clone(),
                size: *size,
            })
            .collect()
    }
}

impl ArchiveRecord {
    /// Bytes of the whole archive.
    pub fn size(&self) -> u64 {
        self.files
            .iter()
            .fold(0, |sum, f| sum.saturating_add(f.size))
    }
}

/// One file of an archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// File name in the bundle directory.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, lowercase hex.
    pub sha256: String,
    /// Streebog-256, lowercase hex, when the bundle was made with GOST digests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gost: Option<String>,
}

/// One tag in the bundle, as `ferry ls --json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Repository path under the target root ("" for the root itself).
    pub path: String,
    /// The tag the image is pushed under.
    pub tag: String,
    /// Digest of its manifest or index.
    pub digest: Digest,
    /// Media type of that manifest or index.
    pub media_type: String,
    /// Every byte the tag needs: its manifests and blobs, each once.
    pub size: u64,
    /// The archive holding it (absent in bundle.json of ferry before 0.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
    /// Where it was pulled from (`host/repo:tag`, `host/repo@digest`, or a chart's URL), when
    /// the bundle records it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Where it was actually read when a mirror (or a registries.conf location) stood in for
    /// the registry `source` names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<String>,
    /// The digest the source has, when `--platform` rewrote the index (`digest` is then the
    /// bundle's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_digest: Option<Digest>,
}

impl BundleMetadata {
    /// Metadata stamped with this ferry's version and the current time.
    pub fn new(
        source: String,
        request: serde_json::Value,
        archives: Vec<ArchiveRecord>,
        mut images: Vec<ImageRecord>,
    ) -> Self {
        sort_images(&mut images);
        BundleMetadata {
            format_version: FORMAT_VERSION,
            ferry_version: env!("CARGO_PKG_VERSION").to_string(),
            created: rfc3339(SystemTime::now()),
            source,
            request: serde_json::value::to_raw_value(&request).expect("a request serialises"),
            archives,
            images,
            base: None,
            signature_policy: None,
        }
    }

    /// Reads `bundle.json` from a bundle directory; `None` when there is none (a d8 bundle).
    pub fn read(dir: &Path) -> Result<Option<Self>, BundleError> {
        Ok(Self::read_file(&dir.join(BUNDLE_FILE))?.map(|(metadata, _)| metadata))
    }

    /// Reads a `bundle.json` file, with the SHA-256 of its bytes; `None` when it does not
    /// exist.
    pub fn read_file(path: &Path) -> Result<Option<(Self, Digest)>, BundleError> {
        match read_bytes(path)? {
            Some(bytes) => Self::from_bytes(&bytes, path).map(Some),
            None => Ok(None),
        }
    }

    /// The SHA-256 of `dir`'s `bundle.json` and, for a differential bundle, the SHA-256 (hex)
    /// its base's `bundle.json` had: which bundle it was made against. Only those are read from
    /// it. `None` when the bundle has no `bundle.json`.
    pub fn read_lineage(dir: &Path) -> Result<Option<(Digest, Option<String>)>, BundleError> {
        #[derive(Deserialize)]
        struct BaseOnly {
            bundle_sha256: String,
        }
        #[derive(Deserialize)]
        struct LineageOnly {
            #[serde(default)]
            base: Option<BaseOnly>,
        }
        Ok(read_part::<LineageOnly>(dir)?
            .map(|(only, bytes)| (Digest::of(&bytes), only.base.map(|b| b.bundle_sha256))))
    }

    /// Only the request of `dir`'s `bundle.json` (what the pull was asked for), without
    /// building the rest: its lists of thousands of images and blobs. `None` when the bundle
    /// has no `bundle.json`.
    pub fn read_request(
        dir: &Path,
    ) -> Result<Option<Box<serde_json::value::RawValue>>, BundleError> {
        #[derive(Deserialize)]
        struct RequestOnly {
            #[serde(default = "empty_request")]
            request: Box<serde_json::value::RawValue>,
        }
        Ok(read_part::<RequestOnly>(dir)?.map(|(only, _)| only.request))
    }

    /// Reads `bundle.json` from bytes already read (and checked against a signature), with
    /// their SHA-256; `path` is named in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<(Self, Digest), BundleError> {
        let path = path.to_path_buf();
        let mut metadata: BundleMetadata =
            serde_json::from_slice(bytes).map_err(|e| BundleError::BadMetadata {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        // Parsed lists grow by doubling; a bundle of thousands of images keeps them for a
        // whole push, so without the spare room.
        metadata.images.shrink_to_fit();
        for archive in &mut metadata.archives {
            archive.blobs.shrink_to_fit();
        }
        if let Some(reason) = metadata.absurd_size() {
            return Err(BundleError::BadMetadata { path, reason });
        }
        if metadata.format_version > FORMAT_VERSION {
            return Err(BundleError::BadMetadata {
                path,
                reason: format!(
                    "it is bundle format {}, this ferry reads up to {FORMAT_VERSION}; update ferry",
                    metadata.format_version
                ),
            });
        }
        Ok((metadata, Digest::of(bytes)))
    }

    /// The first size no bundle can hold (over [`SIZE_LIMIT`]), described.
    fn absurd_size(&self) -> Option<String> {
        let absurd = |size: u64| size > SIZE_LIMIT;
        for archive in &self.archives {
            if let Some(file) = archive.files.iter().find(|f| absurd(f.size)) {
                return Some(format!("file {} claims {} bytes", file.name, file.size));
            }
            if let Some(blob) = archive.blobs.iter().find(|b| absurd(b.size)) {
                return Some(format!("blob {} claims {} bytes", blob.digest, blob.size));
            }
        }
        if let Some(blob) = self
            .base
            .iter()
            .flat_map(|b| &b.left_out)
            .find(|b| absurd(b.size))
        {
            return Some(format!(
                "left-out blob {} claims {} bytes",
                blob.digest, blob.size
            ));
        }
        if let Some(image) = self.images.iter().find(|i| absurd(i.size)) {
            return Some(format!(
                "image {}:{} claims {} bytes",
                image.path, image.tag, image.size
            ));
        }
        None
    }

    /// True when it lists the blobs of its archives (written by ferry 0.2 or later, and not
    /// emptied since): only then can they be held to the archives, or a differential pull be
    /// made against it.
    pub fn lists_blobs(&self) -> bool {
        self.archives.iter().any(|a| !a.blobs.is_empty())
    }

    /// Every blob a target that took this bundle has: what its archives hold and, for a
    /// differential bundle, what it left out (the target had those before).
    pub fn blobs_at_target(&self) -> BTreeMap<Digest, u64> {
        self.archives
            .iter()
            .flat_map(|a| &a.blobs)
            .chain(self.base.iter().flat_map(|b| &b.left_out))
            .map(|b| (b.digest.clone(), b.size))
            .collect()
    }

    /// Writes `SHA256SUMS`, `GOSTSUMS` (when any file has a Streebog sum) and, last,
    /// `bundle.json`, each atomically.
    pub fn seal(&self, dir: &Path) -> Result<(), BundleError> {
        self.seal_signed(dir, None)
    }

    /// [`BundleMetadata::seal`], with `bundle.json.sig` (what `sign` makes of `bundle.json`'s
    /// bytes) written just before `bundle.json`: a bundle is never complete without the
    /// signature it was asked to have.
    pub fn seal_signed(&self, dir: &Path, sign: Option<&Signer>) -> Result<(), BundleError> {
        let store_error = |e: crate::store::StoreError| match e {
            crate::store::StoreError::Io(file) => BundleError::Io(file),
            other => unreachable!("an atomic write only fails with I/O errors: {other}"),
        };
        let files = || self.archives.iter().flat_map(|a| &a.files);
        let sha256 = sha256sums(files().map(|f| (f.name.as_str(), f.sha256.as_str())));
        write_atomic_blocking(&dir.join(SHA256SUMS), sha256.as_bytes()).map_err(store_error)?;
        if let Some(list) =
            gostsums(files().filter_map(|f| Some((f.name.as_str(), f.gost.as_deref()?))))
        {
            write_atomic_blocking(&dir.join(GOSTSUMS), list.as_bytes()).map_err(store_error)?;
        }
        let Some(sign) = sign else {
            // Streamed: the metadata of thousands of images is tens of MiB of JSON.
            let write = |file: &mut dyn std::io::Write| {
                serde_json::to_writer_pretty(&mut *file, self).map_err(std::io::Error::from)?;
                file.write_all(b"\n")
            };
            return write_atomic_with(&dir.join(BUNDLE_FILE), write).map_err(store_error);
        };
        let mut json = serde_json::to_vec_pretty(self).expect("metadata serialises");
        json.push(b'\n');
        write_atomic_blocking(&dir.join(BUNDLE_SIGNATURE), sign(&json).as_bytes())
            .map_err(store_error)?;
        write_atomic_blocking(&dir.join(BUNDLE_FILE), &json).map_err(store_error)
    }
}

/// The bytes of a `bundle.json`; `None` when it does not exist.
/// A few fields of `dir`'s `bundle.json`, parsed as `T` without building the rest, and the
/// file's bytes; `None` when there is no `bundle.json`.
fn read_part<T: serde::de::DeserializeOwned>(
    dir: &Path,
) -> Result<Option<(T, Vec<u8>)>, BundleError> {
    let path = dir.join(BUNDLE_FILE);
    let Some(bytes) = read_bytes(&path)? else {
        return Ok(None);
    };
    let part = serde_json::from_slice(&bytes).map_err(|e| BundleError::BadMetadata {
        path,
        reason: e.to_string(),
    })?;
    Ok(Some((part, bytes)))
}

fn read_bytes(path: &Path) -> Result<Option<Vec<u8>>, BundleError> {
    match crate::small_file::read_small(path, METADATA_LIMIT) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::Other => Err(BundleError::BadMetadata {
            path: path.to_path_buf(),
            reason: format!("{e}; it must be a regular file of at most 128 MiB"),
        }),
        Err(e) => Err(super::io_error("cannot read", path)(e)),
    }
}

fn empty_request() -> Box<serde_json::value::RawValue> {
    serde_json::value::to_raw_value(&serde_json::json!({})).expect("an empty object serialises")
}

/// The order `ls` promises: bytewise by path, then by tag.
pub fn sort_images(images: &mut [ImageRecord]) {
    images.sort_by(|a, b| {
        (a.path.as_bytes(), a.tag.as_bytes()).cmp(&(b.path.as_bytes(), b.tag.as_bytes()))
    });
}

/// `2026-11-23T21:46:11Z` for a point in time (UTC, whole seconds).
fn rfc3339(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_391_171);
        assert_eq!(rfc3339(t), "2026-11-22T23:46:11Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn a_newer_format_is_refused_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = BundleMetadata::new("src".into(), serde_json::json!({}), vec![], vec![]);
        m.format_version = 9;
        m.seal(dir.path()).unwrap();
        let err = BundleMetadata::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("update ferry"), "{err}");
    }

    #[test]
    fn the_request_is_read_alone_as_the_whole_file_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        assert!(BundleMetadata::read_request(dir.path()).unwrap().is_none());
        let asked = serde_json::json!({"layout": "deckhouse", "include_modules": ["a", "b"]});
        BundleMetadata::new("src".into(), asked.clone(), vec![], vec![])
            .seal(dir.path())
            .unwrap();
        let request = BundleMetadata::read_request(dir.path()).unwrap().unwrap();
        let whole = BundleMetadata::read(dir.path()).unwrap().unwrap();
        assert_eq!(request.get(), whole.request.get());
        let parsed: serde_json::Value = serde_json::from_str(request.get()).unwrap();
        assert_eq!(parsed, asked);
        // Not JSON at all: an error, as reading the whole file gives.
        std::fs::write(dir.path().join(BUNDLE_FILE), b"{not json").unwrap();
        assert!(BundleMetadata::read_request(dir.path()).is_err());
    }
}
