//! What a bundle's archives hold, checked the one way `verify` and `push` share: every tag's
//! graph followed through its layout's manifests (each checked against its digest), every blob
//! a descriptor names present in the layout with the size the descriptor says (or among the
//! blobs a differential bundle left out), and the tags held to the list in `bundle.json`, which
//! `ls` shows and push writes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::blob_lists::BlobLists;
use super::layouts::ArchiveLayouts;
use super::metadata::ImageRecord;
use crate::digest::Digest;
use crate::graph::Graph;
use crate::layout::entry_tag;
use crate::manifest::Descriptor;

/// One tag found whole.
#[derive(Debug, Clone)]
pub struct FoundTag {
    /// Which layout of the archive ([`ArchiveLayouts::layouts`]) holds it.
    pub layout: usize,
    /// The tag as `ls` describes it.
    pub image: ImageRecord,
    /// Its manifests (children first) and blobs; shared by the tags of a layout that name the
    /// same manifest, which is followed once.
    pub graph: Arc<Graph>,
}

/// What one archive holds, and what is wrong with it.
#[derive(Debug, Default)]
pub struct ArchiveContents {
    /// Every tag whose graph is whole.
    pub tags: Vec<FoundTag>,
    /// One line per problem, naming the archive and the layout.
    pub problems: Vec<String>,
}

impl ArchiveContents {
    /// Each tag found whole as its layout's place and its graph.
    pub fn graphs(&self) -> impl Iterator<Item = (usize, &Arc<Graph>)> {
        self.tags.iter().map(|t| (t.layout, &t.graph))
    }
}

/// Follows every tagged descriptor of every layout of `layouts`. `left_out` are the blobs a
/// differential bundle expects at the target instead, with their sizes. The layouts' entries
/// (`index.json`'s descriptors) are taken out as they are followed: what they say lives on in
/// the found tags, and a bundle of thousands of tags would otherwise hold both at once.
/// Blocking: call it on a blocking thread inside the runtime (the walker is async).
pub fn check_archive(
    layouts: &mut ArchiveLayouts,
    left_out: &BTreeMap<Digest, u64>,
    handle: &tokio::runtime::Handle,
) -> ArchiveContents {
    let mut contents = ArchiveContents::default();
    let entries: Vec<Vec<Descriptor>> = layouts
        .layouts
        .iter_mut()
        .map(|layout| std::mem::take(&mut layout.index.manifests))
        .collect();
    let layouts = &*layouts;
    for (index, (layout, entries)) in layouts.layouts.iter().zip(entries).enumerate() {
        // Tags naming one manifest (channels, thousands of them in a crafted bundle) share
        // what following it found: the first such tag's place in `contents.tags`.
        let mut followed: HashMap<(Digest, u64), usize> = HashMap::new();
        for descriptor in entries {
            let descriptor = &descriptor;
            let key = (descriptor.digest.clone(), descriptor.size);
            if let (Some(&first), Some(tag)) = (followed.get(&key), entry_tag(descriptor)) {
                let first: &FoundTag = &contents.tags[first];
                let found = FoundTag {
                    layout: index,
                    image: ImageRecord {
                        tag: tag.to_string(),
                        ..first.image.clone()
                    },
                    graph: first.graph.clone(),
                };
                contents.tags.push(found);
                continue;
            }
            match handle.block_on(layouts.image(layout, descriptor, left_out)) {
                Ok(Some((image, graph))) => {
                    followed.insert(key, contents.tags.len());
                    contents.tags.push(FoundTag {
                        layout: index,
                        image,
                        graph: Arc::new(graph),
                    })
                }
                Ok(None) => contents.problems.push(format!(
                    "{}: layout '{}' has an untagged entry {}",
                    layouts.archive, layout.path, descriptor.digest
                )),
                Err(err) => contents.problems.push(err.to_string()),
            }
        }
    }
    contents
}

/// Every archive of `bundle` indexed and every tag followed (blobs a differential bundle left
/// out, as `bundle.json` lists them, excused), then held to `bundle.json`: what push and serve
/// build on. `bundle.json`'s lists of blobs are held to what the tags need ([`BlobLists`]),
/// each archive's taken out of `bundle` on the way. Any problem refuses the bundle as
/// [`BundleError::Inconsistent`], every one named. Blocking: call it on a blocking thread
/// inside the runtime.
pub fn check_bundle(
    bundle: &mut super::Bundle,
    handle: &tokio::runtime::Handle,
) -> Result<(Vec<ArchiveLayouts>, Vec<ArchiveContents>), super::BundleError> {
    let left_out: BTreeMap<Digest, u64> = bundle
        .metadata
        .iter()
        .flat_map(|m| &m.base)
        .flat_map(|b| &b.left_out)
        .map(|b| (b.digest.clone(), b.size))
        .collect();
    let mut lists = BlobLists::new(bundle.metadata.as_ref());
    let mut opened = Vec::new();
    let mut contents = Vec::new();
    for archive in &bundle.archives {
        let mut layouts = ArchiveLayouts::open(archive)?;
        let found = check_archive(&mut layouts, &left_out, handle);
        // Taken, not borrowed: nothing after the check reads it (a differential pull reads
        // bundle.json itself), and at thousands of images it is among the largest things held
        // through a push.
        let listed = bundle
            .metadata
            .iter_mut()
            .flat_map(|m| &mut m.archives)
            .find(|a| a.name == archive.name)
            .map(|a| std::mem::take(&mut a.blobs))
            .unwrap_or_default();
        lists.archive(&listed, &layouts, found.graphs(), found.problems.is_empty());
        contents.push(found);
        opened.push(layouts);
    }
    let mut problems = lists.finish(&left_out);
    let listed = bundle.metadata.as_ref().map(|m| m.images.as_slice());
    problems.extend(tag_problems(listed, &contents));
    if !problems.is_empty() {
        return Err(super::BundleError::Inconsistent { problems });
    }
    Ok((opened, contents))
}

/// Tags `bundle.json` lists must be in the archives with the same digest, and the other way
/// round: `ls` shows the list and push writes exactly what it shows.
pub fn compare_images(listed: &[ImageRecord], found: &[&ImageRecord]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut listed_counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for image in listed {
        *listed_counts
            .entry((image.path.as_str(), image.tag.as_str()))
            .or_default() += 1;
    }
    for ((path, tag), count) in listed_counts {
        if count > 1 {
            problems.push(format!(
                "bundle.json lists {}:{tag} {count} times",
                display_path(path)
            ));
        }
    }
    let by_name: BTreeMap<(&str, &str), &ImageRecord> = found
        .iter()
        .map(|f| ((f.path.as_str(), f.tag.as_str()), *f))
        .collect();
    let listed_names: BTreeMap<(&str, &str), &ImageRecord> = listed
        .iter()
        .map(|l| ((l.path.as_str(), l.tag.as_str()), l))
        .collect();
    for image in listed {
        let name = format!("{}:{}", display_path(&image.path), image.tag);
        let Some(f) = by_name.get(&(image.path.as_str(), image.tag.as_str())) else {
            problems.push(format!("bundle.json lists {name} but no archive holds it"));
            continue;
        };
        // What `ls` shows beside the digest is held to the archives too; the first that
        // disagrees is named: (differs, what bundle.json says, what the archive holds).
        let archive_differs = image.archive.is_some() && f.archive != image.archive;
        let fields = [
            (
                f.digest != image.digest,
                format!("is {}", image.digest),
                format!("the archive holds {}", f.digest),
            ),
            (
                f.media_type != image.media_type,
                format!("is a {}", image.media_type),
                format!("the archive holds a {}", f.media_type),
            ),
            (
                f.size != image.size,
                format!("needs {} bytes", image.size),
                format!("the archive's graph has {}", f.size),
            ),
            (
                archive_differs,
                format!("is in {}", image.archive.as_deref().unwrap_or_default()),
                format!("it is in {}", f.archive.as_deref().unwrap_or_default()),
            ),
        ];
        if let Some((_, says, holds)) = fields.into_iter().find(|(differs, ..)| *differs) {
            problems.push(format!("bundle.json says {name} {says}, {holds}"));
        }
    }
    for image in found {
        if !listed_names.contains_key(&(image.path.as_str(), image.tag.as_str())) {
            problems.push(format!(
                "{}:{} is in an archive but not in bundle.json",
                display_path(&image.path),
                image.tag
            ));
        }
    }
    problems
}

/// `(root)` for the archive root's path.
pub fn display_path(path: &str) -> &str {
    if path.is_empty() { "(root)" } else { path }
}

/// The problems of a whole bundle's tags, given each archive's contents: what
/// [`check_archive`] found, and with `bundle.json` what [`compare_images`] finds.
pub fn tag_problems(listed: Option<&[ImageRecord]>, archives: &[ArchiveContents]) -> Vec<String> {
    let mut problems: Vec<String> = archives
        .iter()
        .flat_map(|a| a.problems.iter().cloned())
        .collect();
    // Borrowed, not cloned: a bundle of ten thousand tags made megabytes of copies here, at
    // the peak of a push's memory.
    let found: Vec<&ImageRecord> = archives
        .iter()
        .flat_map(|a| a.tags.iter().map(|t| &t.image))
        .collect();
    problems.extend(duplicate_tags(&found));
    if let Some(listed) = listed {
        problems.extend(compare_images(listed, &found));
    }
    problems
}

/// Tags held more than once, across layouts and archives.
fn duplicate_tags(found: &[&ImageRecord]) -> Vec<String> {
    let mut problems = Vec::new();
    // A tag held twice is two images under one name: which one a target ends up with would
    // depend on the order of the writes.
    let mut counts: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for image in found {
        counts
            .entry((image.path.as_str(), image.tag.as_str()))
            .or_default()
            .push(image.archive.as_deref().unwrap_or("?"));
    }
    for ((path, tag), archives) in &counts {
        if archives.len() > 1 {
            problems.push(format!(
                "{}:{tag} is held {} times ({}); a tag names one image",
                display_path(path),
                archives.len(),
                archives.join(", ")
            ));
        }
    }
    problems
}
