//! `ferry ls`: every tag a bundle holds, from `bundle.json` when there is one, else found by
//! reading the layouts inside the archives (bundles written by `d8 mirror pull`).

use std::path::Path;

use crate::bundle::metadata::sort_images;
use crate::bundle::{Archive, ArchiveLayouts, ArchiveRecord, Bundle, BundleError, ImageRecord};

/// The tags of the bundle in `dir`, sorted by path then tag.
pub async fn list(dir: &Path) -> Result<Vec<ImageRecord>, BundleError> {
    let dir = dir.to_path_buf();
    let bundle = tokio::task::spawn_blocking(move || Bundle::open(&dir))
        .await
        .expect("open task does not panic")?;
    if let Some(metadata) = &bundle.metadata {
        let mut images = metadata.images.clone();
        sort_images(&mut images);
        return Ok(images);
    }
    scan_images(&bundle).await
}

/// The tags in freshly packed archives, read back from the files (a check that what was
/// written holds what was meant), for `bundle.json`.
pub async fn packed_images(
    dir: &Path,
    records: &[ArchiveRecord],
) -> Result<Vec<ImageRecord>, BundleError> {
    let bundle = Bundle {
        dir: dir.to_path_buf(),
        metadata: None,
        archives: records
            .iter()
            .map(|r| Archive::from_record(dir, r))
            .collect(),
    };
    scan_images(&bundle).await
}

/// The tags found by reading every layout in every archive.
pub async fn scan_images(bundle: &Bundle) -> Result<Vec<ImageRecord>, BundleError> {
    let mut images = Vec::new();
    for archive in &bundle.archives {
        let archive = archive.clone();
        let layouts = tokio::task::spawn_blocking(move || ArchiveLayouts::open(&archive))
            .await
            .expect("index task does not panic")?;
        images.extend(layouts.images().await?);
    }
    sort_images(&mut images);
    Ok(images)
}
