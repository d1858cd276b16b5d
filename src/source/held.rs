//! Layers the resolver reads whole while looking into images (channel files, digest lists):
//! small ones are kept, so the bundle takes them from memory instead of fetching them again.
//! Bounded per blob and in total, since the plan holds them until the pull ends.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::digest::Digest;

/// A layer larger than this is streamed through the file search and not kept.
pub const HELD_BLOB_LIMIT: u64 = 1 << 20;
/// Layers are kept up to this many bytes in all; later ones are streamed.
pub const HELD_TOTAL_LIMIT: u64 = 8 << 20;

/// The layers kept so far, by digest.
#[derive(Debug, Default)]
pub struct HeldBlobs {
    blobs: BTreeMap<Digest, Bytes>,
    bytes: u64,
}

impl HeldBlobs {
    /// True when a layer of `size` bytes is to be read whole and kept.
    pub fn has_room_for(&self, size: u64) -> bool {
        size <= HELD_BLOB_LIMIT && self.bytes.saturating_add(size) <= HELD_TOTAL_LIMIT
    }

    /// Keeps `bytes`, which hash to `digest`.
    pub fn keep(&mut self, digest: Digest, bytes: Bytes) {
        let size = bytes.len() as u64;
        if self.blobs.insert(digest, bytes).is_none() {
            self.bytes += size;
        }
    }

    /// The bytes of a kept layer.
    pub fn get(&self, digest: &Digest) -> Option<Bytes> {
        self.blobs.get(digest).cloned()
    }

    /// The kept layers that `needed` says the bundle takes; the others are dropped.
    pub fn into_needed(self, needed: impl Fn(&Digest) -> bool) -> BTreeMap<Digest, Bytes> {
        self.blobs.into_iter().filter(|(d, _)| needed(d)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_bounded_per_blob_and_in_total() {
        let mut held = HeldBlobs::default();
        assert!(held.has_room_for(HELD_BLOB_LIMIT));
        assert!(!held.has_room_for(HELD_BLOB_LIMIT + 1));
        for i in 0..(HELD_TOTAL_LIMIT / HELD_BLOB_LIMIT) {
            let bytes = Bytes::from(vec![i as u8; HELD_BLOB_LIMIT as usize]);
            held.keep(Digest::of(&bytes), bytes);
        }
        assert!(!held.has_room_for(1));
        let first = Digest::of(&vec![0u8; HELD_BLOB_LIMIT as usize]);
        let kept = held.into_needed(|d| *d == first);
        assert_eq!(kept.keys().collect::<Vec<_>>(), [&first]);
    }
}
