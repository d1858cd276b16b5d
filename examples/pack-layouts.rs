//! Packs OCI layout directories into a ferry bundle, the way `ferry pull` seals one, without a
//! registry. Tests and `scripts/bench-pack.sh` use it.
//!
//! ```text
//! cargo run --release --example pack-layouts -- BUNDLE_DIR [--chunk-size SIZE] [--gost] \
//!     [--force] ARCHIVE=[PREFIX]:LAYOUT_DIR...
//! ```
//! `platform.tar=:/tmp/root` puts a layout at the archive root, `platform.tar=install:/tmp/i`
//! under `install/`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;

use ferry::bundle::BundleMetadata;
use ferry::bundle::pack::{PackEntry, PackOptions, layout_entries, pack_archives};

#[derive(Parser)]
struct Args {
    /// Where the bundle goes.
    bundle: PathBuf,
    /// Chunk size (units as in 64MiB, 1GB); none by default.
    #[arg(long, value_parser = ferry::cli::parse_size)]
    chunk_size: Option<u64>,
    /// Write .gostsum files and GOSTSUMS.
    #[arg(long)]
    gost: bool,
    /// Replace archives already in the directory.
    #[arg(long)]
    force: bool,
    /// ARCHIVE=[PREFIX]:LAYOUT_DIR
    #[arg(required = true)]
    layouts: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut archives: BTreeMap<String, Vec<PackEntry>> = BTreeMap::new();
    for spec in &args.layouts {
        let (archive, rest) = spec
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("'{spec}' is not ARCHIVE=[PREFIX]:LAYOUT_DIR"))?;
        let (prefix, dir) = rest
            .split_once(':')
            .ok_or_else(|| anyhow::anyhow!("'{spec}' is not ARCHIVE=[PREFIX]:LAYOUT_DIR"))?;
        archives
            .entry(archive.to_string())
            .or_default()
            .extend(layout_entries(&PathBuf::from(dir), prefix)?);
    }
    let options = PackOptions {
        chunk_size: args.chunk_size.unwrap_or(0),
        gost: args.gost,
        force: args.force,
    };
    let started = Instant::now();
    let records = pack_archives(&args.bundle, archives.into_iter().collect(), &options).await?;
    let seconds = started.elapsed().as_secs_f64();
    let bytes: u64 = records.iter().map(|r| r.size()).sum();
    // Pull knows its images from the plan; here they are read back from what was packed.
    let images = ferry::list::packed_images(&args.bundle, &records).await?;
    BundleMetadata::new(
        "local layouts".into(),
        serde_json::json!({ "layouts": args.layouts }),
        records,
        images,
    )
    .seal(&args.bundle)?;
    println!(
        "packed {bytes} bytes in {seconds:.2} s ({:.0} MB/s)",
        bytes as f64 / seconds / 1e6
    );
    Ok(())
}
