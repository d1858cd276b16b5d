//! The `index.json` of a layout a pull writes, serialised straight from the plan's tags: the
//! same bytes as [`crate::layout::index_bytes`] gives for the same tags, without a descriptor
//! and an annotations map per tag first (a layout of thousands of digest-pinned tags made
//! megabytes of them at the pull's peak) and into a buffer of exactly its size.

use std::io::Write;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::digest::Digest;
use crate::manifest::{OCI_INDEX, REF_NAME, SHORT_TAG};

/// One tag of a layout: the tag and the manifest (or index) it names.
pub struct TagEntry<'a> {
    /// The tag.
    pub tag: &'a str,
    /// The manifest's media type.
    pub media_type: &'a str,
    /// The manifest's digest.
    pub digest: &'a Digest,
    /// The manifest's size.
    pub size: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Index<'a> {
    schema_version: u32,
    media_type: &'static str,
    manifests: &'a [TagEntry<'a>],
}

impl Serialize for TagEntry<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The field order of a descriptor; annotations in key order, as a sorted map has them.
        let mut map = serializer.serialize_map(Some(4))?;
        map.serialize_entry("mediaType", self.media_type)?;
        map.serialize_entry("digest", self.digest)?;
        map.serialize_entry("size", &self.size)?;
        map.serialize_entry("annotations", &Annotations(self.tag))?;
        map.end()
    }
}

/// The two annotations that carry a tag.
struct Annotations<'a>(&'a str);

impl Serialize for Annotations<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        let (first, second) = if SHORT_TAG < REF_NAME {
            (SHORT_TAG, REF_NAME)
        } else {
            (REF_NAME, SHORT_TAG)
        };
        map.serialize_entry(first, self.0)?;
        map.serialize_entry(second, self.0)?;
        map.end()
    }
}

/// Counts bytes instead of keeping them.
struct Counter(usize);

impl Write for Counter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The bytes of the `index.json` naming `entries`, sorted by tag.
pub fn index_json(entries: &mut [TagEntry<'_>]) -> Vec<u8> {
    entries.sort_by(|a, b| a.tag.cmp(b.tag));
    let index = Index {
        schema_version: 2,
        media_type: OCI_INDEX,
        manifests: entries,
    };
    let write = |out: &mut dyn Write| {
        let mut serializer = serde_json::Serializer::pretty(out);
        index
            .serialize(&mut serializer)
            .expect("an index serialises");
    };
    // Measured first, then written into a buffer of that size: grown by doubling, a big
    // index would hold up to twice its bytes until the writer let go of it.
    let mut counter = Counter(0);
    write(&mut counter);
    let mut bytes = Vec::with_capacity(counter.0 + 1);
    write(&mut bytes);
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{Index as LayoutIndex, index_bytes, tagged};
    use crate::manifest::{Descriptor, OCI_MANIFEST};

    #[test]
    fn the_same_bytes_as_an_index_of_tagged_descriptors() {
        let digest = |c: char| -> Digest {
            format!("sha256:{}", c.to_string().repeat(64))
                .parse()
                .unwrap()
        };
        let (a, b, c) = (digest('a'), digest('b'), digest('c'));
        let pinned = "c".repeat(64);
        let mut entries = vec![
            TagEntry {
                tag: "v1.2.0",
                media_type: OCI_MANIFEST,
                digest: &a,
                size: 420,
            },
            TagEntry {
                tag: "alpha",
                media_type: OCI_INDEX,
                digest: &b,
                size: 7,
            },
            TagEntry {
                tag: &pinned,
                media_type: OCI_MANIFEST,
                digest: &c,
                size: 0,
            },
        ];
        let mut expected = LayoutIndex::default();
        for entry in &entries {
            let descriptor = Descriptor::new(entry.media_type, entry.digest.clone(), entry.size);
            expected.manifests.push(tagged(entry.tag, &descriptor));
        }
        let bytes = index_json(&mut entries);
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            String::from_utf8(index_bytes(&mut expected)).unwrap()
        );
        assert_eq!(bytes.capacity(), bytes.len());
    }

    #[test]
    fn an_empty_layout_has_an_empty_list() {
        let mut expected = LayoutIndex::default();
        assert_eq!(index_json(&mut []), index_bytes(&mut expected));
    }
}
