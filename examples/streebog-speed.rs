//! The Streebog limit a GOST figure is held to: ferry's own Streebog-256 hasher (the one pull,
//! pack and verify run) over a file's bytes on one core, as MB/s. The file is read into memory
//! first (up to 512 MiB of it), so the disk is not measured.
//!
//!     cargo run --release --example streebog-speed -- FILE
//!
//! Prints `MB_PER_SECOND BYTES_HASHED`.

use std::io::Read;
use std::time::Instant;

use bytes::Bytes;
use ferry::digest::GostHasher;

const PIECE: usize = 1 << 20;
const MOST: u64 = 512 << 20;

fn main() {
    let path = std::env::args_os()
        .nth(1)
        .expect("usage: streebog-speed FILE");
    let mut pieces = Vec::new();
    let mut file = std::fs::File::open(&path)
        .expect("the file opens")
        .take(MOST);
    loop {
        let mut piece = vec![0u8; PIECE];
        let n = file.read(&mut piece).expect("the file reads");
        if n == 0 {
            break;
        }
        piece.truncate(n);
        pieces.push(Bytes::from(piece));
    }
    let bytes: usize = pieces.iter().map(Bytes::len).sum();
    let started = Instant::now();
    let mut hasher = GostHasher::spawn();
    for piece in pieces {
        hasher.update(piece);
    }
    hasher.finish();
    let seconds = started.elapsed().as_secs_f64();
    println!("{:.1} {bytes}", bytes as f64 / seconds / 1e6);
}
