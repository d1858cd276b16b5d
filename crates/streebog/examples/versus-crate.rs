//! ferry-streebog against the `streebog` crate (RustCrypto), Streebog-256 over the same
//! pseudo-random 64 MiB on one core, rounds alternating; the median MB/s of each over the CPU
//! time its thread got (so other load on the machine does not count).
//!
//!     cargo run --release -p ferry-streebog --example versus-crate [ROUNDS]
//!
//! Prints `ferry-streebog MB_PER_S  streebog-crate MB_PER_S  ratio`.

use std::time::Duration;

use streebog::Digest as _;

const BYTES: usize = 64 << 20;

/// CPU time of this thread so far (Linux: utime + stime in clock ticks of 10 ms).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("procfs");
    let after_name = stat.rsplit(')').next().expect("a stat line");
    let fields: Vec<u64> = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|f| f.parse().expect("a tick count"))
        .collect();
    Duration::from_millis(10 * (fields[0] + fields[1]))
}

fn speed(hash: impl FnOnce()) -> f64 {
    let start = thread_cpu();
    hash();
    BYTES as f64 / (thread_cpu() - start).as_secs_f64() / 1e6
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(5, |r| r.parse().expect("ROUNDS"));
    let mut state = 0x5eed_u64;
    let data: Vec<u8> = (0..BYTES)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        ours.push(speed(|| {
            let mut hasher = ferry_streebog::Streebog256::new();
            hasher.update(&data);
            std::hint::black_box(hasher.finalize());
        }));
        theirs.push(speed(|| {
            std::hint::black_box(streebog::Streebog256::digest(&data));
        }));
    }
    let (ours, theirs) = (median(ours), median(theirs));
    println!(
        "ferry-streebog {ours:.0}  streebog-crate {theirs:.0}  {:.2}x",
        ours / theirs
    );
}
