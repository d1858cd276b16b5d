//! The compression function on lookup tables, for any CPU: the substitution, the byte
//! transposition and the linear map of one state byte folded into a table of 256 words, one
//! table per word of the state (16 KiB), so a round is 64 lookups.

use crate::consts::{A, C, PI};
use crate::{BLOCK, State, add, bits, words};

/// `TABLE[j][v]`: the linear map of byte `j` of a word being `PI[v]`. Byte `i` of state word
/// `j` lands, transposed, as byte `j` of word `i`; so word `i` of a round's output is the XOR
/// over `j` of `TABLE[j][byte i of word j]`.
const TABLE: [[u64; 256]; 8] = {
    let mut table = [[0u64; 256]; 8];
    let mut j = 0;
    while j < 8 {
        let mut v = 0;
        while v < 256 {
            let mut sum = 0u64;
            let mut k = 0;
            while k < 8 {
                if PI[v] >> k & 1 == 1 {
                    sum ^= A[8 * j + k];
                }
                k += 1;
            }
            table[j][v] = sum;
            v += 1;
        }
        j += 1;
    }
    table
};

/// L(P(S(a ^ b))), one round.
#[inline(always)]
fn lps(a: &State, b: &State) -> State {
    let mut x = [0u64; 8];
    for i in 0..8 {
        x[i] = a[i] ^ b[i];
    }
    let mut out = [0u64; 8];
    for (j, word) in x.iter().enumerate() {
        let mut word = *word;
        for out in out.iter_mut() {
            *out ^= TABLE[j][(word & 0xff) as usize];
            word >>= 8;
        }
    }
    out
}

/// One compression g_N(h, m): h becomes E(LPS(h ^ N), m) ^ h ^ m.
pub(crate) fn g(h: &mut State, n: &State, m: &State) {
    let mut key = lps(h, n);
    let mut block = *m;
    for c in &C {
        block = lps(&block, &key);
        key = lps(&key, c);
    }
    for i in 0..8 {
        h[i] ^= block[i] ^ key[i] ^ m[i];
    }
}

/// Hashes whole blocks into `h`, counting them into `n` and `sigma`.
pub(crate) fn blocks(h: &mut State, n: &mut State, sigma: &mut State, data: &[u8]) {
    for block in data.chunks_exact(BLOCK) {
        let m = words(block);
        g(h, n, &m);
        add(n, &bits(BLOCK));
        add(sigma, &m);
    }
}
