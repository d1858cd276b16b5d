//! GOST R 34.11-2012 (Streebog), the hash of ferry's `.gostsum` files: 256- and 512-bit digests
//! in the byte order `rhash` and d8 print. The compression runs on AVX-512 with GFNI where the
//! CPU has them (two and a half times the `streebog` crate's speed on one core of the
//! development VM, `examples/versus-crate.rs`), else on lookup tables (the crate's speed). A crate of its own so that it is optimised in every build:
//! ferry's tests hash hundreds of MB.

mod consts;
#[cfg(target_arch = "x86_64")]
mod gfni;
mod table;
#[cfg(test)]
mod tests;

/// 512 bits as little-endian 64-bit words, word 0 first: a block, the state, a counter.
type State = [u64; 8];

/// Bytes of a block.
const BLOCK: usize = 64;

/// Where the compression function runs, chosen once per hasher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// Lookup tables: any CPU.
    Table,
    /// AVX-512 (F, BW, VBMI) with GFNI. Only made where the CPU has them.
    #[cfg(target_arch = "x86_64")]
    Gfni,
}

impl Backend {
    /// The fastest this CPU runs.
    fn detect() -> Backend {
        #[cfg(target_arch = "x86_64")]
        if gfni::available() {
            return Backend::Gfni;
        }
        Backend::Table
    }

    /// Hashes whole blocks into `h`, counting them into `n` and `sigma`.
    fn blocks(self, h: &mut State, n: &mut State, sigma: &mut State, data: &[u8]) {
        match self {
            Backend::Table => table::blocks(h, n, sigma, data),
            #[cfg(target_arch = "x86_64")]
            Backend::Gfni => gfni::blocks(h, n, sigma, data),
        }
    }

    /// One compression g_N(h, m).
    fn g(self, h: &mut State, n: &State, m: &State) {
        match self {
            Backend::Table => table::g(h, n, m),
            #[cfg(target_arch = "x86_64")]
            Backend::Gfni => gfni::g(h, n, m),
        }
    }
}

/// The hash function with either initial value; the digest is the whole final state.
#[derive(Clone)]
struct Core {
    backend: Backend,
    h: State,
    /// Bits hashed so far.
    n: State,
    /// The sum of all blocks, modulo 2^512.
    sigma: State,
    buffer: [u8; BLOCK],
    buffered: usize,
}

impl Core {
    fn new(backend: Backend, iv: u64) -> Core {
        Core {
            backend,
            h: [iv; 8],
            n: [0; 8],
            sigma: [0; 8],
            buffer: [0; BLOCK],
            buffered: 0,
        }
    }

    fn update(&mut self, mut bytes: &[u8]) {
        if self.buffered > 0 {
            let take = (BLOCK - self.buffered).min(bytes.len());
            self.buffer[self.buffered..self.buffered + take].copy_from_slice(&bytes[..take]);
            self.buffered += take;
            bytes = &bytes[take..];
            if self.buffered < BLOCK {
                return;
            }
            let block = self.buffer;
            self.backend
                .blocks(&mut self.h, &mut self.n, &mut self.sigma, &block);
            self.buffered = 0;
        }
        // A last whole block is hashed now too: the padding block that follows it in
        // `finish` then holds no message bytes, as the standard has it.
        let whole = bytes.len() / BLOCK * BLOCK;
        self.backend
            .blocks(&mut self.h, &mut self.n, &mut self.sigma, &bytes[..whole]);
        let rest = &bytes[whole..];
        self.buffer[..rest.len()].copy_from_slice(rest);
        self.buffered = rest.len();
    }

    /// Pads the last block (its bytes, then 1, then zeros), hashes it and the counters.
    fn finish(mut self) -> State {
        let mut last = [0u8; BLOCK];
        last[..self.buffered].copy_from_slice(&self.buffer[..self.buffered]);
        last[self.buffered] = 1;
        let m = words(&last);
        self.backend.g(&mut self.h, &self.n, &m);
        add(&mut self.n, &bits(self.buffered));
        add(&mut self.sigma, &m);
        self.backend.g(&mut self.h, &[0; 8], &self.n);
        self.backend.g(&mut self.h, &[0; 8], &self.sigma);
        self.h
    }
}

/// Streebog-256: its digest is the upper half of the final state, with initial value 0x01
/// in every byte.
#[derive(Clone)]
pub struct Streebog256(Core);

impl Streebog256 {
    /// A hasher that has seen no bytes.
    pub fn new() -> Self {
        Self(Core::new(Backend::detect(), 0x0101_0101_0101_0101))
    }

    /// Feeds more bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest of everything fed.
    pub fn finalize(self) -> [u8; 32] {
        let h = self.0.finish();
        let mut out = [0u8; 32];
        for (bytes, word) in out.chunks_exact_mut(8).zip(&h[4..]) {
            bytes.copy_from_slice(&word.to_le_bytes());
        }
        out
    }
}

impl Default for Streebog256 {
    fn default() -> Self {
        Self::new()
    }
}

/// Streebog-512: its digest is the whole final state, with initial value 0.
#[derive(Clone)]
pub struct Streebog512(Core);

impl Streebog512 {
    /// A hasher that has seen no bytes.
    pub fn new() -> Self {
        Self(Core::new(Backend::detect(), 0))
    }

    /// Feeds more bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest of everything fed.
    pub fn finalize(self) -> [u8; 64] {
        let h = self.0.finish();
        let mut out = [0u8; 64];
        for (bytes, word) in out.chunks_exact_mut(8).zip(&h) {
            bytes.copy_from_slice(&word.to_le_bytes());
        }
        out
    }
}

impl Default for Streebog512 {
    fn default() -> Self {
        Self::new()
    }
}

/// A block's bytes as words.
fn words(block: &[u8]) -> State {
    let mut m = [0u64; 8];
    for (word, bytes) in m.iter_mut().zip(block.chunks_exact(8)) {
        *word = u64::from_le_bytes(bytes.try_into().expect("8 bytes"));
    }
    m
}

/// The bit count of `bytes` bytes, as a counter to add.
fn bits(bytes: usize) -> State {
    [8 * bytes as u64, 0, 0, 0, 0, 0, 0, 0]
}

/// `a += b` modulo 2^512.
fn add(a: &mut State, b: &State) {
    let mut carry = false;
    for (x, y) in a.iter_mut().zip(b) {
        let (sum, over) = x.overflowing_add(*y);
        let (sum, over_again) = sum.overflowing_add(carry as u64);
        *x = sum;
        carry = over || over_again;
    }
}
