//! Reading a few small files out of an image's filesystem without unpacking it: layers are
//! read top layer first, through gzip, zstd or nothing, into a tar reader that stops as soon
//! as every wanted file is found. A small layer is read whole and kept for the bundle
//! ([`super::held`]); a larger one is streamed, so memory stays bounded by the files' size
//! limit, whatever the layer size.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};

use bytes::Bytes;
use serde::Deserialize;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::SourceError;
use super::held::HeldBlobs;
use super::manifest_cache::ManifestCache;
use crate::manifest::{Descriptor, Manifest};
use crate::registry::RegistryClient;

/// Files larger than this are refused: metadata files are a few kilobytes.
pub const FILE_LIMIT: u64 = 4 << 20;

/// Reads `wanted` paths (relative, `/`-separated) from the image `manifest` of `repository`.
/// For an index the first child is read (metadata files are the same on every platform).
/// Layers small enough for `held` are read whole, checked against their digest and kept there,
/// so that the bundle takes them without a second request; a layer already kept is searched in
/// memory. Files not found are absent from the result.
pub(crate) async fn read_image_files(
    client: &RegistryClient,
    repository: &str,
    manifest: &Manifest,
    wanted: &[&str],
    manifests: &ManifestCache,
    held: &mut HeldBlobs,
) -> Result<BTreeMap<String, Vec<u8>>, SourceError> {
    let image = if manifest.is_index() {
        let refs = manifest.references().map_err(|e| SourceError::BadFile {
            image: format!("{repository}@{}", manifest.digest),
            file: "index".into(),
            reason: e.to_string(),
        })?;
        let Some(first) = refs.manifests.first() else {
            return Ok(BTreeMap::new());
        };
        manifests
            .by_digest(client, repository, &first.digest)
            .await?
    } else {
        manifest.clone()
    };
    #[derive(Deserialize)]
    struct Layers {
        #[serde(default)]
        layers: Vec<Descriptor>,
    }
    let layers: Layers =
        serde_json::from_slice(&image.bytes).map_err(|e| SourceError::BadFile {
            image: format!("{repository}@{}", image.digest),
            file: "manifest".into(),
            reason: e.to_string(),
        })?;
    let mut found = BTreeMap::new();
    let mut missing: Vec<String> = wanted.iter().map(|w| w.to_string()).collect();
    for layer in layers.layers.iter().rev() {
        if missing.is_empty() {
            break;
        }
        let looking = missing.clone();
        let (scanned, whole) = if let Some(bytes) = held.get(&layer.digest) {
            (scan_bytes(bytes, looking).await, None)
        } else if held.has_room_for(layer.size) {
            let bytes = Bytes::from(client.read_blob(repository, layer).await?);
            (scan_bytes(bytes.clone(), looking).await, Some(bytes))
        } else {
            let stream = client.blob_stream(repository, &layer.digest).await?;
            let reader = SyncIoBridge::new(StreamReader::new(stream));
            (blocking(move || scan_layer(reader, &looking)).await, None)
        };
        let (files, hidden) = scanned.map_err(|e| SourceError::BadFile {
            image: format!("{repository}@{}", layer.digest),
            file: "layer".into(),
            reason: e.to_string(),
        })?;
        if let Some(bytes) = whole {
            held.keep(layer.digest.clone(), bytes);
        }
        missing.retain(|m| !hidden.contains(m));
        for (path, bytes) in files {
            missing.retain(|m| *m != path);
            found.insert(path, bytes);
        }
    }
    Ok(found)
}

/// Scans a layer held in memory for `wanted` files.
async fn scan_bytes(bytes: Bytes, wanted: Vec<String>) -> std::io::Result<LayerScan> {
    blocking(move || scan_layer(bytes.as_ref(), &wanted)).await
}

/// Runs a layer scan off the async threads: decompressing is CPU work of unknown length.
async fn blocking(
    scan: impl FnOnce() -> std::io::Result<LayerScan> + Send + 'static,
) -> std::io::Result<LayerScan> {
    tokio::task::spawn_blocking(scan)
        .await
        .expect("layer scan does not panic")
}

/// Files found in a layer, and wanted files a whiteout in it deletes.
type LayerScan = (BTreeMap<String, Vec<u8>>, Vec<String>);

/// Scans one layer stream for `wanted` files; a whiteout of one ends the search for it.
fn scan_layer(reader: impl Read, wanted: &[String]) -> std::io::Result<LayerScan> {
    let mut buffered = BufReader::with_capacity(64 * 1024, reader);
    let head = buffered.fill_buf()?;
    let decoded: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(buffered))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?)
    } else {
        Box::new(buffered)
    };
    let mut archive = tar::Archive::new(decoded);
    let mut found = BTreeMap::new();
    let mut hidden = Vec::new();
    let mut remaining: Vec<&str> = wanted.iter().map(String::as_str).collect();
    // Raw entries with capped extension headers: a layer from the source may claim a long
    // name of any size, and the tar crate's own iterator would read it into memory.
    for named in crate::tar_entries::RawEntries::new(archive.entries()?) {
        if remaining.is_empty() {
            break;
        }
        let named = named
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
        let mut entry = named.entry;
        let path = named.name;
        let path = path.trim_start_matches("./").trim_start_matches('/');
        let (dir, name) = path.rsplit_once('/').map_or(("", path), |(d, n)| (d, n));
        if let Some(hidden_name) = name.strip_prefix(".wh.") {
            let whited = crate::reference::join(dir, hidden_name);
            if remaining.contains(&whited.as_str()) {
                remaining.retain(|w| *w != whited);
                hidden.push(whited);
            }
            continue;
        }
        let Some(position) = remaining.iter().position(|w| *w == path) else {
            continue;
        };
        if !entry.header().entry_type().is_file() {
            continue;
        }
        if entry.size() > FILE_LIMIT {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{path} is {} bytes, over the {FILE_LIMIT}-byte limit",
                    entry.size()
                ),
            ));
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes)?;
        found.insert(remaining.remove(position).to_string(), bytes);
    }
    Ok((found, hidden))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, path, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn files_come_out_of_plain_gzip_and_zstd_layers() {
        let tar = tar_of(&[
            ("./etc/other", b"x"),
            ("./version.json", br#"{"version":"v1.2.3"}"#),
            ("deckhouse/candi/images_digests.json", b"{}"),
        ]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(tar.as_slice(), 1).unwrap();
        let wanted = vec![
            "version.json".to_string(),
            "deckhouse/candi/images_digests.json".to_string(),
        ];
        for layer in [tar.clone(), gz, zst] {
            let (found, _) = scan_layer(layer.as_slice(), &wanted).unwrap();
            assert_eq!(found["version.json"], br#"{"version":"v1.2.3"}"#);
            assert_eq!(found["deckhouse/candi/images_digests.json"], b"{}");
        }
    }

    #[test]
    fn a_long_name_claiming_a_gigabyte_is_refused_unread() {
        let mut header = tar::Header::new_gnu();
        header.set_path("././@LongLink").unwrap();
        header.set_entry_type(tar::EntryType::GNULongName);
        header.set_size(1 << 30);
        header.set_cksum();
        // A few megabytes of the claimed gigabyte: the rest never comes.
        let mut layer = header.as_bytes().to_vec();
        layer.extend(std::iter::repeat_n(b'a', 4 << 20));
        let err = scan_layer(layer.as_slice(), &["version.json".to_string()]).unwrap_err();
        assert!(err.to_string().contains("over 64 KiB"), "{err}");
    }

    #[test]
    fn long_names_still_name_their_entry() {
        let long = format!("{}/version.json", "d".repeat(200));
        let tar = tar_of(&[(long.as_str(), b"{}")]);
        let (found, _) = scan_layer(tar.as_slice(), std::slice::from_ref(&long)).unwrap();
        assert_eq!(found[&long], b"{}");
    }

    #[test]
    fn a_whiteout_hides_a_file_of_lower_layers() {
        let tar = tar_of(&[("dir/.wh.version.json", b"")]);
        let (found, hidden) =
            scan_layer(tar.as_slice(), &["dir/version.json".to_string()]).unwrap();
        assert!(found.is_empty());
        assert_eq!(hidden, ["dir/version.json"]);
    }
}
