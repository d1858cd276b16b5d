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

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("a tokio runtime")
}
