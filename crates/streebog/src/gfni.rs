//! The compression function on AVX-512 with GFNI: the whole 512-bit state in one register.
//!
//! A round L(P(S(x))) is done as: S on all 64 bytes by two 128-byte table permutes
//! (`vpermi2b`) and a blend on the top bit; then, since P only moves byte `i` of word `j` to
//! byte `j` of word `i`, output byte `m` of word `i` is the XOR over `j` of an 8x8 bit matrix
//! `M[m][j]` (from A) applied to byte `i` of substituted word `j`. One `vgf2p8affineqb` applies
//! a matrix per 64-bit lane to all eight bytes of the lane: with word `j` broadcast to every
//! lane and `M[m][j]` in lane `m`, it yields the share of word `j` in every output byte at once,
//! eight of them XORed make the round. Its result has output byte `m` of word `i` in byte `i`
//! of lane `m`: the transposed layout. The state is kept transposed through a whole block (the
//! substitution and the XORs do not care, the broadcast reads the transposed word), so only the
//! message, the counter and the result are transposed, once a block.

use core::arch::x86_64::*;

use crate::consts::{A, C, PI};
use crate::{BLOCK, State, add, bits, words};

/// True where the CPU has what this backend needs.
pub(crate) fn available() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vbmi")
        && is_x86_feature_detected!("gfni")
}

/// 64 bytes as eight little-endian words (the register layout of a byte index vector).
const fn pack(bytes: [u8; 64]) -> State {
    let mut words = [0u64; 8];
    let mut i = 0;
    while i < 64 {
        words[i / 8] |= (bytes[i] as u64) << (8 * (i % 8));
        i += 1;
    }
    words
}

/// Byte `8m + i` takes byte `8i + m`: the 8x8 byte transposition (its own inverse).
const TRANSPOSE: State = {
    let mut index = [0u8; 64];
    let mut at = 0;
    while at < 64 {
        index[at] = ((at % 8) * 8 + at / 8) as u8;
        at += 1;
    }
    pack(index)
};

/// `BROADCAST[j]`: every lane takes word `j` of a transposed state (byte `i` of lane `m`
/// takes byte `j` of lane `i`).
const BROADCAST: [State; 8] = {
    let mut all = [[0u64; 8]; 8];
    let mut j = 0;
    while j < 8 {
        let mut index = [0u8; 64];
        let mut at = 0;
        while at < 64 {
            index[at] = ((at % 8) * 8 + j) as u8;
            at += 1;
        }
        all[j] = pack(index);
        j += 1;
    }
    all
};

/// `MATRIX[j]`, lane `m`: the bit matrix taking byte `j` of a word to its share of the word's
/// output byte `m` under L. Row `r` (output bit `r`) is the byte at `7 - r`, as
/// `vgf2p8affineqb` reads it; its bit `k` is bit `8m + r` of `A[8j + k]`.
const MATRIX: [State; 8] = {
    let mut all = [[0u64; 8]; 8];
    let mut j = 0;
    while j < 8 {
        let mut m = 0;
        while m < 8 {
            let mut r = 0;
            while r < 8 {
                let mut row = 0u64;
                let mut k = 0;
                while k < 8 {
                    row |= (A[8 * j + k] >> (8 * m + r) & 1) << k;
                    k += 1;
                }
                all[j][m] |= row << (8 * (7 - r));
                r += 1;
            }
            m += 1;
        }
        j += 1;
    }
    all
};

/// The substitution in four 64-byte quarters.
const PI_QUARTERS: [State; 4] = {
    let mut all = [[0u64; 8]; 4];
    let mut q = 0;
    while q < 4 {
        let mut bytes = [0u8; 64];
        let mut i = 0;
        while i < 64 {
            bytes[i] = PI[64 * q + i];
            i += 1;
        }
        all[q] = pack(bytes);
        q += 1;
    }
    all
};

/// Hashes whole blocks into `h`, counting them into `n` and `sigma`.
pub(crate) fn blocks(h: &mut State, n: &mut State, sigma: &mut State, data: &[u8]) {
    // SAFETY: only `Backend::Gfni` calls this, and it is made only where `available()` holds.
    unsafe { blocks_avx512(h, n, sigma, data) }
}

/// One compression g_N(h, m).
pub(crate) fn g(h: &mut State, n: &State, m: &State) {
    // SAFETY: as in `blocks`.
    unsafe { g_avx512(h, n, m) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,gfni")]
fn blocks_avx512(h: &mut State, n: &mut State, sigma: &mut State, data: &[u8]) {
    let k = Constants::load();
    let mut state = k.transpose(load(h));
    for block in data.chunks_exact(BLOCK) {
        let m = words(block);
        state = k.g(state, k.transpose(load(n)), k.transpose(load(&m)));
        add(n, &bits(BLOCK));
        add(sigma, &m);
    }
    store(h, k.transpose(state));
}

#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,gfni")]
fn g_avx512(h: &mut State, n: &State, m: &State) {
    let k = Constants::load();
    let state = k.g(
        k.transpose(load(h)),
        k.transpose(load(n)),
        k.transpose(load(m)),
    );
    store(h, k.transpose(state));
}

/// The constants in registers (the compiler keeps what fits).
struct Constants {
    pi: [__m512i; 4],
    transpose: __m512i,
    broadcast: [__m512i; 8],
    matrix: [__m512i; 8],
    /// The round constants, transposed.
    c: [__m512i; 12],
}

impl Constants {
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,gfni")]
    fn load() -> Constants {
        let transpose = load(&TRANSPOSE);
        Constants {
            pi: PI_QUARTERS.map(|q| load(&q)),
            transpose,
            broadcast: BROADCAST.map(|b| load(&b)),
            matrix: MATRIX.map(|m| load(&m)),
            c: C.map(|c| _mm512_permutexvar_epi8(transpose, load(&c))),
        }
    }

    /// Between the word layout and the transposed one (either way).
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,gfni")]
    #[inline]
    fn transpose(&self, x: __m512i) -> __m512i {
        _mm512_permutexvar_epi8(self.transpose, x)
    }

    /// L(P(S(a ^ b))) of transposed states, transposed.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,gfni")]
    #[inline]
    fn lps(&self, a: __m512i, b: __m512i) -> __m512i {
        let x = _mm512_xor_si512(a, b);
        let low = _mm512_permutex2var_epi8(self.pi[0], x, self.pi[1]);
        let high = _mm512_permutex2var_epi8(self.pi[2], x, self.pi[3]);
        let s = _mm512_mask_blend_epi8(_mm512_movepi8_mask(x), low, high);
        let share = |j: usize| {
            let word = _mm512_permutexvar_epi8(self.broadcast[j], s);
            _mm512_gf2p8affine_epi64_epi8::<0>(word, self.matrix[j])
        };
        // 0x96: the XOR of three inputs.
        let a = _mm512_ternarylogic_epi64::<0x96>(share(0), share(1), share(2));
        let b = _mm512_ternarylogic_epi64::<0x96>(share(3), share(4), share(5));
        let c = _mm512_ternarylogic_epi64::<0x96>(share(6), share(7), a);
        _mm512_xor_si512(b, c)
    }

    /// g_N(h, m) of transposed states: E(LPS(h ^ N), m) ^ h ^ m.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,gfni")]
    #[inline]
    fn g(&self, h: __m512i, n: __m512i, m: __m512i) -> __m512i {
        let mut key = self.lps(h, n);
        let mut block = m;
        for c in &self.c {
            // The message and the key schedule are two chains the CPU runs side by side.
            block = self.lps(block, key);
            key = self.lps(key, *c);
        }
        _mm512_ternarylogic_epi64::<0x96>(h, _mm512_xor_si512(block, key), m)
    }
}

#[target_feature(enable = "avx512f")]
#[inline]
fn load(words: &State) -> __m512i {
    // SAFETY: reads the 64 bytes of `words`; the load needs no alignment.
    unsafe { _mm512_loadu_si512(words.as_ptr().cast()) }
}

#[target_feature(enable = "avx512f")]
#[inline]
fn store(words: &mut State, x: __m512i) {
    // SAFETY: writes the 64 bytes of `words`; the store needs no alignment.
    unsafe { _mm512_storeu_si512(words.as_mut_ptr().cast(), x) }
}
