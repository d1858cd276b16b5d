//! What one image needs: every manifest and blob with its size, each digest once. Held as a
//! slice sorted by digest and shared by the tags that name the same image: a plan holds one
//! per tag, thousands of them, most of three or four entries, and a map per tag allocated room
//! for eleven.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::digest::Digest;

/// Digest → size of every manifest and blob of one image, each digest once, in digest order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parts(Arc<[(Digest, u64)]>);

impl Parts {
    /// Every digest with its size, in digest order.
    pub fn iter(&self) -> impl Iterator<Item = (&Digest, u64)> {
        self.0.iter().map(|(digest, size)| (digest, *size))
    }

    /// Every digest, in order.
    pub fn keys(&self) -> impl Iterator<Item = &Digest> {
        self.0.iter().map(|(digest, _)| digest)
    }

    /// Every size, in digest order.
    pub fn values(&self) -> impl Iterator<Item = u64> {
        self.0.iter().map(|(_, size)| *size)
    }

    /// The size of `digest`, when the image needs it.
    pub fn get(&self, digest: &Digest) -> Option<u64> {
        self.0
            .binary_search_by(|(d, _)| d.cmp(digest))
            .ok()
            .map(|at| self.0[at].1)
    }

    /// Whether the image needs `digest`.
    pub fn contains_key(&self, digest: &Digest) -> bool {
        self.get(digest).is_some()
    }

    /// How many digests.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the image needs nothing (a plan never holds such an image).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<BTreeMap<Digest, u64>> for Parts {
    fn from(map: BTreeMap<Digest, u64>) -> Self {
        Parts(map.into_iter().collect())
    }
}

/// Pairs as a map takes them: one size per digest, the last one given.
impl FromIterator<(Digest, u64)> for Parts {
    fn from_iter<I: IntoIterator<Item = (Digest, u64)>>(pairs: I) -> Self {
        Parts::from(pairs.into_iter().collect::<BTreeMap<_, _>>())
    }
}

/// Written as the map it stands for (`{"sha256:…": size}`), as state files have it.
impl Serialize for Parts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Parts {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::<Digest, u64>::deserialize(deserializer).map(Parts::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u32) -> Digest {
        Digest::of(&n.to_le_bytes())
    }

    #[test]
    fn every_entry_of_the_map_is_kept_and_found() {
        let map: BTreeMap<Digest, u64> = (0..50).map(|n| (digest(n), u64::from(n) * 7)).collect();
        let parts = Parts::from(map.clone());
        assert_eq!(parts.len(), map.len());
        let back: BTreeMap<Digest, u64> = parts.iter().map(|(d, s)| (d.clone(), s)).collect();
        assert_eq!(back, map);
        for (digest, size) in &map {
            assert_eq!(parts.get(digest), Some(*size), "{digest}");
        }
        assert!(!parts.contains_key(&digest(50)));
        assert!(parts.keys().zip(parts.keys().skip(1)).all(|(a, b)| a < b));
    }

    #[test]
    fn pairs_keep_one_size_per_digest_as_a_map_does() {
        let pairs = [
            (digest(2), 1),
            (digest(1), 5),
            (digest(2), 3),
            (digest(3), 0),
        ];
        let parts: Parts = pairs.iter().cloned().collect();
        let map: BTreeMap<Digest, u64> = pairs.into_iter().collect();
        assert_eq!(parts, Parts::from(map));
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.get(&digest(2)), Some(3));
        assert_eq!(parts.values().sum::<u64>(), 8);
    }

    #[test]
    fn written_and_read_as_the_map_it_stands_for() {
        let map: BTreeMap<Digest, u64> = (0..5).map(|n| (digest(n), u64::from(n))).collect();
        let parts = Parts::from(map.clone());
        let json = serde_json::to_string(&parts).unwrap();
        assert_eq!(json, serde_json::to_string(&map).unwrap());
        assert_eq!(serde_json::from_str::<Parts>(&json).unwrap(), parts);
        assert_eq!(
            serde_json::from_str::<Parts>("{}").unwrap(),
            Parts::default()
        );
    }
}
