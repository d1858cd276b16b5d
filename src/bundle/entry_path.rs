//! The path of an entry in an archive. Most entries are the blobs and manifests of a layout,
//! `<layout>/blobs/sha256/<hex>`: those are held as their layout's path (shared by every entry
//! of the layout) and their digest (shared with the plan) rather than as text, since an archive
//! plan of tens of thousands of blobs held a path string for each for the whole pull.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use crate::digest::Digest;

/// What separates a layout's path from its blobs' digests.
const BLOBS: &str = "blobs/sha256";

/// An entry's path: the same text whichever way it is held. Made only from text or by
/// [`EntryPath::blob`], so that one text is always held one way and equality is the text's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPath(Held);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Held {
    /// `<layout>/blobs/sha256/<hex>`, or `blobs/sha256/<hex>` for the layout at the root ("").
    Blob { layout: Arc<str>, digest: Digest },
    /// Any other path.
    Other(Box<str>),
}

impl EntryPath {
    /// The path of blob `digest` in the layout at `layout` ("" for the root).
    pub fn blob(layout: Arc<str>, digest: Digest) -> EntryPath {
        EntryPath(Held::Blob { layout, digest })
    }

    /// The digest the path names, for a layout's blob or manifest.
    pub fn digest(&self) -> Option<&Digest> {
        match &self.0 {
            Held::Blob { digest, .. } => Some(digest),
            Held::Other(_) => None,
        }
    }

    /// The pieces whose concatenation is the text.
    fn pieces(&self) -> [&str; 5] {
        match &self.0 {
            Held::Blob { layout, digest } if layout.is_empty() => {
                ["", "", BLOBS, "/", digest.hex()]
            }
            Held::Blob { layout, digest } => [layout, "/", BLOBS, "/", digest.hex()],
            Held::Other(text) => [text, "", "", "", ""],
        }
    }

    /// The text's length in bytes.
    pub fn len(&self) -> usize {
        self.pieces().iter().map(|p| p.len()).sum()
    }

    /// True for the empty path (which no archive accepts).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text's bytes, in order.
    fn bytes(&self) -> impl Iterator<Item = u8> + '_ {
        self.pieces().into_iter().flat_map(str::bytes)
    }
}

impl fmt::Display for EntryPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.pieces().iter().try_for_each(|p| f.write_str(p))
    }
}

/// Bytewise order of the text, as tar entries are sorted.
impl Ord for EntryPath {
    fn cmp(&self, other: &Self) -> Ordering {
        match (&self.0, &other.0) {
            // The common case, two blobs of one layout, without walking the layout's path.
            (
                Held::Blob {
                    layout: a,
                    digest: x,
                },
                Held::Blob {
                    layout: b,
                    digest: y,
                },
            ) if a == b => x.hex().cmp(y.hex()),
            _ => self.bytes().cmp(other.bytes()),
        }
    }
}

impl PartialOrd for EntryPath {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A path named by a digest (`…/blobs/sha256/<hex>`) is held as a blob's path; the text is
/// kept exactly either way.
impl From<String> for EntryPath {
    fn from(text: String) -> Self {
        let blob = text.rsplit_once('/').and_then(|(rest, hex)| {
            let layout = match rest.strip_suffix(BLOBS)? {
                "" => "",
                prefix => prefix.strip_suffix('/').filter(|l| !l.is_empty())?,
            };
            let digest: Digest = format!("sha256:{hex}").parse().ok()?;
            Some(EntryPath::blob(layout.into(), digest))
        });
        blob.unwrap_or_else(|| EntryPath(Held::Other(text.into())))
    }
}

impl From<&str> for EntryPath {
    fn from(text: &str) -> Self {
        EntryPath::from(text.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<String> {
        let hex = |c: char| c.to_string().repeat(64);
        vec![
            format!("blobs/sha256/{}", hex('a')),
            format!("blobs/sha256/{}", hex('0')),
            format!("a/blobs/sha256/{}", hex('b')),
            format!("a/b/blobs/sha256/{}", hex('c')),
            format!("a/blobs/sha256/x/blobs/sha256/{}", hex('d')),
            format!("a/blobs/sha256{}", hex('e')),
            format!("/blobs/sha256/{}", hex('f')),
            format!("a//blobs/sha256/{}", hex('f')),
            format!("a/blobs/sha256/{}", "A".repeat(64)),
            format!("a/blobs/sha256/{}", hex('1')),
            "a/blobs/sha256/short".into(),
            "a/blobs/sha256".into(),
            "a/blobs".into(),
            "a/index.json".into(),
            "a/oci-layout".into(),
            "a-b/index.json".into(),
            "a.b".into(),
            "index.json".into(),
            "oci-layout".into(),
            "".into(),
        ]
    }

    #[test]
    fn the_text_is_kept_exactly() {
        for text in samples() {
            let path = EntryPath::from(text.clone());
            assert_eq!(path.to_string(), text);
            assert_eq!(path.len(), text.len(), "{text}");
            assert_eq!(path.bytes().collect::<Vec<u8>>(), text.as_bytes(), "{text}");
        }
    }

    #[test]
    fn only_a_layouts_blob_names_a_digest() {
        let named: Vec<String> = samples()
            .into_iter()
            .filter(|t| EntryPath::from(t.clone()).digest().is_some())
            .collect();
        let hex = |c: char| c.to_string().repeat(64);
        assert_eq!(
            named,
            [
                format!("blobs/sha256/{}", hex('a')),
                format!("blobs/sha256/{}", hex('0')),
                format!("a/blobs/sha256/{}", hex('b')),
                format!("a/b/blobs/sha256/{}", hex('c')),
                format!("a/blobs/sha256/x/blobs/sha256/{}", hex('d')),
                // Held as layout "a/": kept exactly, and refused as not normal by a plan.
                format!("a//blobs/sha256/{}", hex('f')),
                format!("a/blobs/sha256/{}", hex('1')),
            ]
        );
        let digest: Digest = format!("sha256:{}", hex('b')).parse().unwrap();
        assert_eq!(
            EntryPath::blob("a".into(), digest.clone()),
            EntryPath::from(format!("a/blobs/sha256/{}", hex('b')))
        );
        assert_eq!(EntryPath::from("a/index.json").digest(), None);
    }

    #[test]
    fn ordered_as_the_text_is() {
        let texts = samples();
        let mut paths: Vec<EntryPath> = texts.iter().cloned().map(EntryPath::from).collect();
        paths.sort();
        let mut sorted = texts.clone();
        sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let got: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
        assert_eq!(got, sorted);
        for a in &texts {
            for b in &texts {
                let (x, y) = (EntryPath::from(a.clone()), EntryPath::from(b.clone()));
                assert_eq!(x.cmp(&y), a.as_bytes().cmp(b.as_bytes()), "{a} vs {b}");
                assert_eq!(x == y, a == b, "{a} vs {b}");
            }
        }
    }
}
