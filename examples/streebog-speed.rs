//! The Streebog limit a GOST figure is held to: ferry's own Streebog-256 hasher (the one pull,
//! pack and verify run) over a file's bytes on one core, as MB/s. The file is read into memory
//! first (up to 512 MiB of it), so the disk is not measured; the time is the CPU time the
//! process got while hashing, so other work on a shared machine does not make the limit look
//! lower than what one core does. SHA-256 over the same bytes is timed too: verify runs it
//! twice beside Streebog, which sets its floor.
//!
//!     cargo run --release --example streebog-speed -- FILE
//!
//! Prints `STREEBOG_MB_PER_SECOND BYTES_HASHED SHA256_MB_PER_SECOND`.

use std::io::Read;
use std::time::Duration;

use bytes::Bytes;
use ferry::digest::{GostHasher, Sha256Hasher};

const PIECE: usize = 1 << 20;
const MOST: u64 = 512 << 20;
const SHA256_PASSES: u32 = 4;

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
    // SHA-256 is fast: four passes, so that the clock's 10 ms ticks stay small beside it.
    let started = cpu_time();
    for _ in 0..SHA256_PASSES {
        let mut sha256 = Sha256Hasher::new();
        for piece in &pieces {
            sha256.update(piece);
        }
        sha256.finish();
    }
    let sha256_seconds = (cpu_time() - started).as_secs_f64() / SHA256_PASSES as f64;
    let started = cpu_time();
    let mut hasher = GostHasher::spawn();
    for piece in pieces {
        hasher.update(piece);
    }
    hasher.finish();
    let seconds = (cpu_time() - started).as_secs_f64();
    let speed = |seconds: f64| bytes as f64 / seconds / 1e6;
    println!("{:.1} {bytes} {:.1}", speed(seconds), speed(sha256_seconds));
}

/// CPU time of this process so far, every thread (Linux: utime + stime, in ticks of 10 ms).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("procfs");
    let after_name = stat.rsplit(')').next().expect("a stat line");
    let ticks: u64 = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|field| field.parse::<u64>().expect("a tick count"))
        .sum();
    Duration::from_millis(10 * ticks)
}
