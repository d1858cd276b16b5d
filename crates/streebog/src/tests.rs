//! Both backends against the standard's examples and, differentially, against the `streebog`
//! crate (RustCrypto) on pseudo-random inputs of many lengths fed in random pieces.

use streebog::Digest as _;

use super::*;

// GOST R 34.11-2012, appendix A: M1 is 63 ASCII digits, M2 is 72 bytes of CP1251 text.
const M1: &[u8] = b"012345678901234567890123456789012345678901234567890123456789012";
const M2: [u8; 72] = [
    0xd1, 0xe5, 0x20, 0xe2, 0xe5, 0xf2, 0xf0, 0xe8, 0x2c, 0x20, 0xd1, 0xf2, 0xf0, 0xe8, 0xe1, 0xee,
    0xe6, 0xe8, 0x20, 0xe2, 0xed, 0xf3, 0xf6, 0xe8, 0x2c, 0x20, 0xe2, 0xe5, 0xfe, 0xf2, 0xfa, 0x20,
    0xf1, 0x20, 0xec, 0xee, 0xf0, 0xff, 0x20, 0xf1, 0xf2, 0xf0, 0xe5, 0xeb, 0xe0, 0xec, 0xe8, 0x20,
    0xed, 0xe0, 0x20, 0xf5, 0xf0, 0xe0, 0xe1, 0xf0, 0xfb, 0xff, 0x20, 0xef, 0xeb, 0xfa, 0xea, 0xfb,
    0x20, 0xc8, 0xe3, 0xee, 0xf0, 0xe5, 0xe2, 0xfb,
];

/// Every backend this CPU can run (the table one everywhere).
fn backends() -> Vec<Backend> {
    let mut all = vec![Backend::Table];
    if Backend::detect() != Backend::Table {
        all.push(Backend::detect());
    }
    all
}

fn hash256(backend: Backend, pieces: &[&[u8]]) -> String {
    let mut hasher = Streebog256(Core::new(backend, 0x0101_0101_0101_0101));
    for piece in pieces {
        hasher.update(piece);
    }
    hex(&hasher.finalize())
}

fn hash512(backend: Backend, pieces: &[&[u8]]) -> String {
    let mut hasher = Streebog512(Core::new(backend, 0));
    for piece in pieces {
        hasher.update(piece);
    }
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// xorshift64*: the same pseudo-random bytes on every run.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() >> 56) as u8).collect()
    }

    /// `bytes` cut at a few random places.
    fn pieces<'a>(&mut self, bytes: &'a [u8]) -> Vec<&'a [u8]> {
        let mut cuts: Vec<usize> = (0..self.next() % 5)
            .map(|_| (self.next() % (bytes.len() as u64 + 1)) as usize)
            .collect();
        cuts.sort_unstable();
        let mut pieces = Vec::new();
        let mut from = 0;
        for cut in cuts.into_iter().chain([bytes.len()]) {
            pieces.push(&bytes[from..cut]);
            from = cut;
        }
        pieces
    }
}

#[test]
fn the_standards_examples() {
    for backend in backends() {
        assert_eq!(
            hash256(backend, &[M1]),
            "9d151eefd8590b89daa6ba6cb74af9275dd051026bb149a452fd84e5e57b5500",
            "{backend:?}"
        );
        assert_eq!(
            hash256(backend, &[&M2]),
            "9dd2fe4e90409e5da87f53976d7405b0c0cac628fc669a741d50063c557e8f50",
            "{backend:?}"
        );
        assert_eq!(
            hash512(backend, &[M1]),
            "1b54d01a4af5b9d5cc3d86d68d285462b19abc2475222f35c085122be4ba1ffa\
             00ad30f8767b3a82384c6574f024c311e2a481332b08ef7f41797891c1646f48",
            "{backend:?}"
        );
        assert_eq!(
            hash512(backend, &[&M2]),
            "1e88e62226bfca6f9994f1f2d51569e0daf8475a3b0fe61a5300eee46d961376\
             035fe83549ada2b8620fcd7c496ce5b33f0cb9dddc2b6460143b03dabac9fb28",
            "{backend:?}"
        );
    }
}

#[test]
fn equal_to_the_streebog_crate_on_many_lengths() {
    let mut random = Random(0x5eed);
    // Every length to 4 KiB and a little past, then around block multiples up to 64 KiB.
    let mut lengths: Vec<usize> = (0..=4200).collect();
    for blocks in [127, 128, 1000, 1024] {
        lengths.extend([blocks * 64 - 1, blocks * 64, blocks * 64 + 1]);
    }
    for len in lengths {
        let data = random.bytes(len);
        let pieces = random.pieces(&data);
        let want256 = hex(&streebog::Streebog256::digest(&data));
        let want512 = hex(&streebog::Streebog512::digest(&data));
        for backend in backends() {
            assert_eq!(
                hash256(backend, &pieces),
                want256,
                "{backend:?}, {len} bytes"
            );
            assert_eq!(
                hash512(backend, &pieces),
                want512,
                "{backend:?}, {len} bytes"
            );
        }
    }
}

#[test]
fn counters_carry_past_their_first_word() {
    // A bit counter and a block sum about to overflow their words (states no test could reach
    // by hashing): the carries go on, and both backends agree on what follows.
    let mut random = Random(7);
    for backend in backends() {
        let mut core = Core::new(backend, 0);
        core.n = [u64::MAX - 511, u64::MAX, 0, 0, 0, 0, 0, 0];
        core.sigma = [u64::MAX; 8];
        let mut tables = core.clone();
        tables.backend = Backend::Table;
        let data = random.bytes(3 * 64 + 5);
        core.update(&data);
        tables.update(&data);
        assert_eq!(core.n, [1024, 0, 1, 0, 0, 0, 0, 0], "{backend:?}");
        assert_eq!(core.finish(), tables.finish(), "{backend:?}");
    }
}

#[test]
fn the_public_hashers_pick_a_backend_and_agree() {
    let data = Random(11).bytes(100_000);
    let mut hasher = Streebog256::new();
    hasher.update(&data);
    assert_eq!(
        hex(&hasher.finalize()),
        hex(&streebog::Streebog256::digest(&data))
    );
    let mut hasher = Streebog512::default();
    hasher.update(&data);
    assert_eq!(
        hex(&hasher.finalize()),
        hex(&streebog::Streebog512::digest(&data))
    );
}
