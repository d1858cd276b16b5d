//! Content digests: the `sha256:<hex>` identifiers of OCI content, and hashers (SHA-256 and
//! GOST R 34.11-2012 Streebog) that see every byte exactly once as it streams past.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use std::io::Read;

use bytes::{Bytes, BytesMut};
use ferry_streebog::Streebog256;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Digest as _;

/// A content digest. Only `sha256` exists in the registries ferry talks to, so it is the only
/// algorithm accepted; anything else is refused at parse time rather than misread later.
///
/// The hex is shared, not copied, by every clone: a plan of thousands of images names each
/// blob in its images, its archive entries, its download jobs and its journal, and one
/// allocation serves them all. (Held inline, 64 bytes made every error naming two digests too
/// large to return.)
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: Arc<str>,
}

/// Why a string is not a digest.
#[derive(Debug, thiserror::Error)]
#[error("invalid digest '{input}': {reason}")]
pub struct DigestParseError {
    input: String,
    reason: &'static str,
}

impl Digest {
    /// The digest of a byte slice held in memory (manifests, configs: small things).
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_sha256(sha2::Sha256::digest(bytes).as_slice())
    }

    fn from_sha256(raw: &[u8]) -> Digest {
        Digest {
            hex: hex::encode(raw).into(),
        }
    }

    /// The 64 lowercase hex characters without the algorithm prefix.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The algorithm name, always `sha256`.
    pub fn algorithm(&self) -> &'static str {
        "sha256"
    }

    /// A short form for progress lines: `sha256:0123456789ab`.
    pub fn short(&self) -> String {
        format!("sha256:{}", &self.hex[..12])
    }
}

impl FromStr for Digest {
    type Err = DigestParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason| {
            Err(DigestParseError {
                input: s.to_string(),
                reason,
            })
        };
        let Some(hex) = s.strip_prefix("sha256:") else {
            return fail("expected 'sha256:' followed by 64 hex characters");
        };
        if hex.len() != 64 {
            return fail("a sha256 digest has 64 hex characters");
        }
        if !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return fail("only lowercase hex characters are allowed");
        }
        Ok(Digest { hex: hex.into() })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Incremental SHA-256 that yields a [`Digest`].
#[derive(Clone, Default)]
pub struct Sha256Hasher(sha2::Sha256);

impl Sha256Hasher {
    /// A hasher that has seen no bytes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds more bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Digest {
        Digest::from_sha256(self.0.finalize().as_slice())
    }
}

/// Streebog-256 (GOST R 34.11-2012) of a byte slice, as lowercase hex in the byte order that
/// `rhash --gost12-256` and d8's `.gostsum` files print.
pub fn streebog256_hex(bytes: &[u8]) -> String {
    let mut hasher = Streebog256::new();
    hasher.update(bytes);
    hex::encode(hasher.finalize())
}

/// Streebog-256 computed on a thread of its own.
///
/// Streebog runs at a third (with GFNI) to a tenth of SHA-256's speed, so hashing it inline
/// would make every writer as slow as Streebog. Bytes are handed over as cheap `Bytes` clones through a bounded
/// channel: the writer runs ahead by at most a few buffers, and memory stays flat.
pub struct GostHasher {
    sender: Option<SyncSender<Bytes>>,
    worker: Option<JoinHandle<String>>,
}

impl GostHasher {
    /// Buffers that may wait for the hashing thread before the writer blocks. Four of 1 MiB
    /// keep it fed as well as sixteen did (pulls of 1 GB, alternating), and a chunked pull's
    /// peak RSS fell from 59 MiB to 33 MiB: one hasher per sealer or verified file.
    const QUEUE: usize = 4;

    /// Starts the hashing thread.
    pub fn spawn() -> Self {
        let (sender, receiver): (SyncSender<Bytes>, Receiver<Bytes>) = sync_channel(Self::QUEUE);
        let worker = std::thread::Builder::new()
            .name("ferry-streebog".into())
            .spawn(move || {
                let mut hasher = Streebog256::new();
                for chunk in receiver {
                    hasher.update(&chunk);
                }
                hex::encode(hasher.finalize())
            })
            .expect("spawning a hashing thread");
        GostHasher {
            sender: Some(sender),
            worker: Some(worker),
        }
    }

    /// Queues bytes for hashing; blocks only when the thread is [`Self::QUEUE`] buffers behind.
    pub fn update(&mut self, bytes: Bytes) {
        if let Some(sender) = &self.sender {
            // The thread only stops when the sender is dropped, so a send cannot fail here.
            let _ = sender.send(bytes);
        }
    }

    /// Waits for the thread and returns the lowercase hex digest.
    pub fn finish(mut self) -> String {
        drop(self.sender.take());
        self.worker
            .take()
            .expect("finish is called once")
            .join()
            .expect("the hashing thread does not panic")
    }
}

impl Drop for GostHasher {
    fn drop(&mut self) {
        drop(self.sender.take());
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// What hashing a file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSums {
    /// Bytes read.
    pub size: u64,
    /// SHA-256, lowercase hex.
    pub sha256: String,
    /// Streebog-256, lowercase hex, when asked for.
    pub gost: Option<String>,
}

/// Reads a byte stream once to its end, hashing SHA-256 inline and Streebog-256 (when `gost`)
/// on another thread. `progress` hears every buffer.
pub fn hash_reader(
    mut reader: impl Read,
    gost: bool,
    progress: &(dyn Fn(u64) + Sync),
) -> std::io::Result<FileSums> {
    const BUFFER: usize = 1 << 20;
    let mut sha256 = Sha256Hasher::new();
    let mut streebog = gost.then(GostHasher::spawn);
    let mut size = 0;
    loop {
        // A fresh buffer each time: the Streebog thread may still hold the last one.
        let mut buffer = BytesMut::zeroed(BUFFER);
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        buffer.truncate(n);
        sha256.update(&buffer);
        if let Some(hasher) = &mut streebog {
            hasher.update(buffer.freeze());
        }
        size += n as u64;
        progress(n as u64);
    }
    Ok(FileSums {
        size,
        sha256: sha256.finish().hex().to_string(),
        gost: streebog.map(GostHasher::finish),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // GOST R 34.11-2012, appendix A: M1 is 63 ASCII digits, M2 is 72 bytes of CP1251 text.
    const M1: &[u8] = b"012345678901234567890123456789012345678901234567890123456789012";
    const M2: [u8; 72] = [
        0xd1, 0xe5, 0x20, 0xe2, 0xe5, 0xf2, 0xf0, 0xe8, 0x2c, 0x20, 0xd1, 0xf2, 0xf0, 0xe8, 0xe1,
        0xee, 0xe6, 0xe8, 0x20, 0xe2, 0xed, 0xf3, 0xf6, 0xe8, 0x2c, 0x20, 0xe2, 0xe5, 0xfe, 0xf2,
        0xfa, 0x20, 0xf1, 0x20, 0xec, 0xee, 0xf0, 0xff, 0x20, 0xf1, 0xf2, 0xf0, 0xe5, 0xeb, 0xe0,
        0xec, 0xe8, 0x20, 0xed, 0xe0, 0x20, 0xf5, 0xf0, 0xe0, 0xe1, 0xf0, 0xfb, 0xff, 0x20, 0xef,
        0xeb, 0xfa, 0xea, 0xfb, 0x20, 0xc8, 0xe3, 0xee, 0xf0, 0xe5, 0xe2, 0xfb,
    ];

    #[test]
    fn streebog_256_matches_the_standard() {
        assert_eq!(
            streebog256_hex(M1),
            "9d151eefd8590b89daa6ba6cb74af9275dd051026bb149a452fd84e5e57b5500"
        );
        assert_eq!(
            streebog256_hex(&M2),
            "9dd2fe4e90409e5da87f53976d7405b0c0cac628fc669a741d50063c557e8f50"
        );
    }

    #[test]
    fn threaded_streebog_equals_one_shot() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let mut hasher = GostHasher::spawn();
        for piece in data.chunks(4099) {
            hasher.update(Bytes::copy_from_slice(piece));
        }
        assert_eq!(hasher.finish(), streebog256_hex(&data));
    }

    #[test]
    fn sha256_incremental_equals_one_shot() {
        let data = vec![42u8; 100_003];
        let mut hasher = Sha256Hasher::new();
        for piece in data.chunks(777) {
            hasher.update(piece);
        }
        assert_eq!(hasher.finish(), Digest::of(&data));
        assert_eq!(
            Digest::of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn digest_parsing_refuses_what_it_cannot_verify() {
        let good = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(good.parse::<Digest>().unwrap().to_string(), good);
        assert!("sha256:abc".parse::<Digest>().is_err());
        assert!("sha512:e3b0".parse::<Digest>().is_err());
        assert!(good.to_uppercase().parse::<Digest>().is_err());
        assert!(good.replace("sha256:", "").parse::<Digest>().is_err());
    }
}
