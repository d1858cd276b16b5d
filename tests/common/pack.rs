//! Local layouts packed into bundles without a registry, through the pipeline `ferry pull`
//! writes archives with: the library's asynchronous packing run to its end for a test.

use std::path::Path;

use ferry::bundle::pack::{PackEntry, PackOptions};
use ferry::bundle::{ArchiveRecord, BundleError};

/// Packs `archives` into `dir` (see `ferry::bundle::pack::pack_archives`).
pub fn pack_archives(
    dir: &Path,
    archives: Vec<(String, Vec<PackEntry>)>,
    options: &PackOptions,
) -> Result<Vec<ArchiveRecord>, BundleError> {
    runtime().block_on(ferry::bundle::pack::pack_archives(dir, archives, options))
}

/// Packs one archive `name` into `dir` (see `ferry::bundle::pack::pack_archive`).
pub fn pack_archive(
    dir: &Path,
    name: &str,
    entries: Vec<PackEntry>,
    options: &PackOptions,
) -> Result<ArchiveRecord, BundleError> {
    runtime().block_on(ferry::bundle::pack::pack_archive(
        dir, name, entries, options,
    ))
}

/// Writes `SHA256SUMS`, `GOSTSUMS` and `bundle.json` for archives packed into `dir`, the tags
/// read back from the files, as a pull seals a bundle.
pub fn seal_bundle(dir: &Path, records: Vec<ArchiveRecord>) {
    let images = runtime()
        .block_on(ferry::list::packed_images(dir, &records))
        .unwrap();
    ferry::bundle::BundleMetadata::new("test".into(), serde_json::json!({}), records, images)
        .seal(dir)
        .unwrap();
}

/// Packs `entries` as the one archive `name` of a bundle in `dir` and seals it; gives the
/// archive's record as `bundle.json` holds it.
pub fn sealed_archive(dir: &Path, name: &str, entries: Vec<PackEntry>) -> ArchiveRecord {
    let records = pack_archives(
        dir,
        vec![(name.to_string(), entries)],
        &PackOptions::default(),
    )
    .unwrap();
    let record = records[0].clone();
    seal_bundle(dir, records);
    record
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("a tokio runtime")
}
