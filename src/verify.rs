//! `ferry verify`: checks a bundle offline. Every file's size and SHA-256 (and Streebog-256 when
//! the bundle has GOST sums or the user asks), then every manifest and blob of every layout by
//! digest, read in place through the tar index. Problems are collected, not stopped at.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::bundle::names::gostsum_name;
use crate::bundle::sums::{hash_file, read_gostsum};
use crate::bundle::{Archive, ArchiveFile, ArchiveLayouts, Bundle, BundleError, ImageRecord};
use crate::digest::hash_reader;
use crate::parallel::try_map;
use crate::report::{Outcome, Reporter};

/// What `verify` checks beyond sizes and SHA-256.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyOptions {
    /// Check Streebog-256 sums; a file without one is then a problem.
    pub gost: bool,
}

/// What `verify` found.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Archive files checked.
    pub files: usize,
    /// Blobs (manifests included) checked by digest.
    pub blobs: usize,
    /// Tags whose whole graph was found.
    pub images: usize,
    /// Every problem, naming the file (and chunk) it is in.
    pub problems: Vec<String>,
}

/// Checks the bundle in `dir`. An error means the bundle could not be checked at all (or is
/// missing files); problems found while checking are in the report.
pub async fn verify(
    dir: &Path,
    options: VerifyOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<VerifyReport, BundleError> {
    let dir: PathBuf = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let bundle = Bundle::open(&dir)?;
        let mut report = VerifyReport::default();
        check_files(&bundle, options, reporter.as_ref(), &mut report)?;
        let handle = tokio::runtime::Handle::current();
        let mut found = Vec::new();
        for archive in &bundle.archives {
            found.extend(check_archive(
                archive,
                reporter.as_ref(),
                &handle,
                &mut report,
            ));
        }
        if let Some(metadata) = &bundle.metadata {
            compare_images(&metadata.images, &found, &mut report);
        }
        Ok(report)
    })
    .await
    .expect("verify task does not panic")
}

/// Sizes and sums of every archive file, on as many threads as there are cores.
fn check_files(
    bundle: &Bundle,
    options: VerifyOptions,
    reporter: &dyn Reporter,
    report: &mut VerifyReport,
) -> Result<(), BundleError> {
    let files: Vec<&ArchiveFile> = bundle.archives.iter().flat_map(|a| &a.files).collect();
    let total: u64 = files.iter().map(|f| f.size).sum();
    reporter.begin("checking files", files.len() as u64, total);
    let found = try_map(&files, |file| check_file(bundle, file, options, reporter))?;
    let mut problems = found.concat();
    problems.sort();
    report.files = files.len();
    report.problems.extend(problems);
    reporter.finish(&format!("{} files read", files.len()));
    Ok(())
}

fn check_file(
    bundle: &Bundle,
    file: &ArchiveFile,
    options: VerifyOptions,
    reporter: &dyn Reporter,
) -> Result<Vec<String>, BundleError> {
    let sum_file = gostsum_name(&file.name);
    let on_disk = read_gostsum(&bundle.dir.join(&sum_file))?;
    let mut expected_gost: Vec<(String, String)> = Vec::new();
    if let Some(gost) = &file.gost {
        expected_gost.push(("bundle.json".into(), gost.clone()));
    }
    if let Some(gost) = on_disk {
        expected_gost.push((sum_file.clone(), gost));
    }
    let mut problems = Vec::new();
    if options.gost && expected_gost.is_empty() {
        problems.push(format!(
            "{}: no GOST sum to check ({sum_file} is missing)",
            file.name
        ));
    }
    let sums = hash_file(&file.path, !expected_gost.is_empty(), &|n| {
        reporter.bytes(n)
    })?;
    if sums.size != file.size {
        problems.push(format!(
            "{}: {} bytes, expected {} (the file changed while being checked?)",
            file.name, sums.size, file.size
        ));
    }
    if let Some(expected) = &file.sha256
        && *expected != sums.sha256
    {
        problems.push(format!(
            "{}: SHA-256 is {}, bundle.json says {expected} (the file is damaged)",
            file.name, sums.sha256
        ));
    }
    if let Some(actual) = &sums.gost {
        for (origin, expected) in &expected_gost {
            if expected != actual {
                problems.push(format!(
                    "{}: GOST sum is {actual}, {origin} says {expected} (the file is damaged)",
                    file.name
                ));
            }
        }
    }
    reporter.item(&file.name, file.size, Outcome::Checked);
    Ok(problems)
}

/// Tags `bundle.json` lists must be in the archives with the same digest, and the other way
/// round: `ls` and `push` trust the list.
fn compare_images(listed: &[ImageRecord], found: &[ImageRecord], report: &mut VerifyReport) {
    for image in listed {
        match found
            .iter()
            .find(|f| f.path == image.path && f.tag == image.tag)
        {
            None => report.problems.push(format!(
                "bundle.json lists {}:{} but no archive holds it",
                display_path(&image.path),
                image.tag
            )),
            Some(f) if f.digest != image.digest => report.problems.push(format!(
                "bundle.json says {}:{} is {}, the archive holds {}",
                display_path(&image.path),
                image.tag,
                image.digest,
                f.digest
            )),
            Some(_) => {}
        }
    }
    for image in found {
        if !listed
            .iter()
            .any(|l| l.path == image.path && l.tag == image.tag)
        {
            report.problems.push(format!(
                "{}:{} is in an archive but not in bundle.json",
                display_path(&image.path),
                image.tag
            ));
        }
    }
}

fn display_path(path: &str) -> &str {
    if path.is_empty() { "(root)" } else { path }
}

/// Every blob of every layout in the archive by digest, then every tag's graph; returns the
/// tags whose graph is whole.
fn check_archive(
    archive: &Archive,
    reporter: &dyn Reporter,
    handle: &tokio::runtime::Handle,
    report: &mut VerifyReport,
) -> Vec<ImageRecord> {
    let mut images = Vec::new();
    let layouts = match ArchiveLayouts::open(archive) {
        Ok(layouts) => layouts,
        Err(err) => {
            report.problems.push(err.to_string());
            return images;
        }
    };
    let blobs: Vec<(String, crate::bundle::EntryLocation)> = layouts
        .index
        .entries()
        .filter(|(path, _)| is_blob_path(path))
        .map(|(path, location)| (path.to_string(), location))
        .collect();
    let bytes: u64 = blobs.iter().map(|(_, l)| l.size).sum();
    reporter.begin(
        &format!("checking blobs in {}", archive.name),
        blobs.len() as u64,
        bytes,
    );
    for (path, location) in &blobs {
        let hex = path.rsplit('/').next().unwrap_or_default();
        let read = hash_reader(layouts.index.bytes_of(*location).reader(), false, &|n| {
            reporter.bytes(n)
        });
        let place = format!(
            "{} ({})",
            archive.name,
            archive
                .files_holding(location.offset, location.size)
                .join(", ")
        );
        match read {
            Err(e) => report
                .problems
                .push(format!("{place}: cannot read {path}: {e}")),
            Ok(sums) if sums.sha256 != hex => report.problems.push(format!(
                "{place}: {path} does not match its digest (its content hashes to sha256:{})",
                sums.sha256
            )),
            Ok(_) => {}
        }
        report.blobs += 1;
    }
    reporter.finish(&format!(
        "{} blobs checked in {}",
        blobs.len(),
        archive.name
    ));
    for layout in &layouts.layouts {
        for descriptor in &layout.index.manifests {
            match handle.block_on(layouts.image(layout, descriptor)) {
                Ok(Some(image)) => {
                    report.images += 1;
                    images.push(image);
                }
                Ok(None) => report.problems.push(format!(
                    "{}: layout '{}' has an untagged entry {}",
                    archive.name, layout.path, descriptor.digest
                )),
                Err(err) => report.problems.push(err.to_string()),
            }
        }
    }
    images
}

/// `…/blobs/<algorithm>/<hex>` for SHA-256: the files verify can check by name.
fn is_blob_path(path: &str) -> bool {
    let mut parts = path.rsplit('/');
    let (Some(hex), Some(algorithm), Some("blobs")) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    algorithm == "sha256" && hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}
