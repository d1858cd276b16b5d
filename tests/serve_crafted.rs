//! `ferry serve` against hostile and wrong clients: crafted paths, digests, ranges and headers
//! get clear status codes and no file outside the bundle is ever opened (strace watches);
//! idle and slow clients are cut off without stopping the others; TLS with a CA the test makes
//! and bcrypt logins let in the right user only; `--verify` refuses a damaged bundle.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// A `d8 mirror`-style bundle (chunked, with GOST sums) in `work/bundle`; no registry needed.
fn d8_bundle(work: &Path) -> PathBuf {
    let tree = work.join("tree");
    d8_tree(&tree, Some(30000));
    let tar = work.join("platform.tar");
    d8_tar(&tree, &tar, TarOrder::Sorted);
    let bundle = work.join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    let chunks = d8_chunks(&tar, &bundle, "platform.tar", 20000);
    rhash_gostsums(&bundle, &chunks);
    std::fs::remove_dir_all(&tree).unwrap();
    std::fs::remove_file(&tar).unwrap();
    bundle
}

/// The digest of `deckhouse/ee:v1.2.3` as served, its first layer's digest and size.
fn image_and_layer(server: &Server) -> (String, String, u64) {
    let got = raw_request(
        &server.host,
        "GET",
        "/v2/deckhouse/ee/manifests/v1.2.3",
        &[],
    );
    assert_eq!(got.status, 200, "{}", got.text());
    let manifest: Value = serde_json::from_slice(&got.body).unwrap();
    let layer = &manifest["layers"][0];
    (
        got.header("docker-content-digest").unwrap().to_string(),
        layer["digest"].as_str().unwrap().to_string(),
        layer["size"].as_u64().unwrap(),
    )
}

fn error_code(response: &RawResponse) -> String {
    let body: Value = serde_json::from_slice(&response.body)
        .unwrap_or_else(|_| panic!("not a spec error body: {}", response.text()));
    body["errors"][0]["code"].as_str().unwrap().to_string()
}

#[test]
fn crafted_requests_get_clear_answers_and_nothing_outside_is_read() {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let bundle = d8_bundle(work.path());
    // What a path that escaped the bundle would find.
    let canary = work.path().join("secret");
    std::fs::create_dir_all(&canary).unwrap();
    std::fs::write(canary.join("blobs"), "CANARY").unwrap();
    let canary_digest = sha256_of(b"CANARY");
    let trace = work.path().join("trace");
    let mut server = Server::traced(
        home.path(),
        &trace,
        &[
            "--prefix",
            "deckhouse/ee",
            "--idle-timeout",
            "2",
            "--max-connections",
            "8",
            bundle.to_str().unwrap(),
        ],
    );
    let (_, layer, layer_size) = image_and_layer(&server);
    let host = server.host.clone();

    for (path, status, code) in [
        ("/v2/../../../../etc/passwd".to_string(), 404, "NOT_FOUND"),
        (
            format!("/v2/../secret/blobs/{canary_digest}"),
            400,
            "NAME_INVALID",
        ),
        (
            format!("/v2/%2e%2e/secret/blobs/{canary_digest}"),
            400,
            "NAME_INVALID",
        ),
        (
            format!("/v2/deckhouse/ee/%2e%2e/%2e%2e/secret/blobs/{canary_digest}"),
            400,
            "NAME_INVALID",
        ),
        (
            "/v2/deckhouse/ee/blobs/..%2f..%2fsecret%2fblobs".to_string(),
            400,
            "DIGEST_INVALID",
        ),
        (
            format!("/v2/{}/tags/list", "a".repeat(300)),
            400,
            "NAME_INVALID",
        ),
        (
            "/v2/deckhouse/ee/blobs/sha256:abc".to_string(),
            400,
            "DIGEST_INVALID",
        ),
        (
            format!("/v2/deckhouse/ee/blobs/sha512:{}", "0".repeat(128)),
            400,
            "DIGEST_INVALID",
        ),
        (
            "/v2/deckhouse/ee/manifests/sha256:nope".to_string(),
            400,
            "DIGEST_INVALID",
        ),
        (
            "/v2/deckhouse/ee/manifests/-bad-tag".to_string(),
            404,
            "MANIFEST_UNKNOWN",
        ),
        (
            format!("/v2/deckhouse/ee/blobs/{canary_digest}"),
            404,
            "BLOB_UNKNOWN",
        ),
        (
            "/v2/deckhouse/none/tags/list".to_string(),
            404,
            "NAME_UNKNOWN",
        ),
        (
            "/v2/deckhouse/ee/manifests/v9.9.9".to_string(),
            404,
            "MANIFEST_UNKNOWN",
        ),
        ("/v2/_catalog?n=many".to_string(), 400, "UNSUPPORTED"),
        (
            "/v2/deckhouse/ee/blobs/uploads/123".to_string(),
            404,
            "BLOB_UPLOAD_UNKNOWN",
        ),
    ] {
        let got = raw_request(&host, "GET", &path, &[]);
        assert_eq!(got.status, status, "{path}: {}", got.text());
        assert_eq!(error_code(&got), code, "{path}");
        assert!(!got.text().contains("CANARY"));
    }
    for method in ["POST", "PUT", "PATCH", "DELETE"] {
        let got = raw_request(
            &host,
            method,
            "/v2/deckhouse/ee/blobs/uploads/",
            &["Content-Length: 0"],
        );
        assert_eq!(got.status, 405, "{method}");
        assert_eq!(error_code(&got), "UNSUPPORTED");
        assert_eq!(got.header("allow"), Some("GET, HEAD"));
    }

    // A range past the end: 416 with the blob's length; HEAD gives headers only.
    let blob = format!("/v2/deckhouse/ee/blobs/{layer}");
    let past = raw_request(
        &host,
        "GET",
        &blob,
        &[&format!("Range: bytes={layer_size}-")],
    );
    assert_eq!(past.status, 416);
    assert_eq!(
        past.header("content-range"),
        Some(format!("bytes */{layer_size}").as_str())
    );
    let head = raw_request(&host, "HEAD", &blob, &[]);
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(layer_size.to_string().as_str())
    );
    assert_eq!(head.header("docker-content-digest"), Some(layer.as_str()));
    assert!(head.body.is_empty());

    // Headers too large or too many: 431, and the server goes on.
    let long = format!("X-Long: {}", "a".repeat(64 * 1024));
    assert_eq!(raw_request(&host, "GET", "/v2/", &[&long]).status, 431);
    let many: Vec<String> = (0..200).map(|i| format!("X-{i}: v")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(raw_request(&host, "GET", "/v2/", &many).status, 431);
    // Not HTTP at all.
    let mut junk = TcpStream::connect(&host).unwrap();
    junk.write_all(b"\x16\x03\x01\x02\x00garbage\r\n\r\n")
        .unwrap();
    junk.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = junk.read_to_end(&mut answer);
    assert!(!String::from_utf8_lossy(&answer).contains("CANARY"));

    // Idle connections fill the eight slots; they are closed after two silent seconds, and a
    // real client waiting behind them is then served.
    let idle: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(&host).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let served = raw_request(&host, "GET", "/v2/", &[]);
    assert_eq!(served.status, 200);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1000),
        "served before any slot freed: {waited:?}"
    );
    assert!(waited < Duration::from_secs(8), "{waited:?}");
    for mut stream in idle {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(
            stream.read(&mut buf).unwrap_or(0),
            0,
            "an idle connection was closed"
        );
    }

    // A slow-loris client dribbling its headers a byte at a time is cut off by the header
    // deadline (10 s) while others are served.
    let slow_host = host.clone();
    let slow = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(&slow_host).unwrap();
        let request = b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let started = Instant::now();
        for byte in request.iter().cycle() {
            if stream.write_all(&[*byte]).is_err() {
                return started.elapsed();
            }
            std::thread::sleep(Duration::from_millis(500));
            if started.elapsed() > Duration::from_secs(30) {
                break;
            }
        }
        started.elapsed()
    });
    for _ in 0..5 {
        assert_eq!(raw_request(&host, "GET", "/v2/", &[]).status, 200);
        std::thread::sleep(Duration::from_millis(500));
    }
    let cut_after = slow.join().unwrap();
    assert!(
        cut_after < Duration::from_secs(20),
        "the slow client was never cut off"
    );
    assert!(server.running(), "the server stays up");
    assert_eq!(raw_request(&host, "GET", "/v2/", &[]).status, 200);
    drop(server);

    // Every file the server opened under the work directory is one of the bundle's.
    let trace = std::fs::read_to_string(&trace).unwrap();
    let work_dir = work.path().to_str().unwrap();
    let bundle_dir = bundle.to_str().unwrap();
    let mut opened_in_bundle = 0;
    for line in trace.lines().filter(|l| l.contains("open")) {
        let Some(path) = line.split('"').nth(1) else {
            continue;
        };
        if path.starts_with(bundle_dir) {
            opened_in_bundle += 1;
        } else {
            assert!(
                !path.starts_with(work_dir),
                "opened outside the bundle: {line}"
            );
            assert!(!path.contains("secret"), "{line}");
        }
    }
    assert!(
        opened_in_bundle > 0,
        "strace saw the server open its bundle:\n{trace}"
    );
}

#[test]
fn tls_and_logins_let_in_the_right_user_only() {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let bundle = d8_bundle(work.path());
    let certs = work.path().join("certs");
    run(Command::new(repo_root().join("scripts/dev-registry.sh"))
        .arg("certs")
        .arg(&certs));
    let htpasswd = work.path().join("htpasswd");
    let out = run(Command::new("htpasswd").args(["-Bbn", "alice", "s3cret"]));
    std::fs::write(&htpasswd, out.stdout).unwrap();
    let server = Server::start(
        home.path(),
        &[
            "--prefix",
            "deckhouse/ee",
            "--tls-cert",
            certs.join("server.crt").to_str().unwrap(),
            "--tls-key",
            certs.join("server.key").to_str().unwrap(),
            "--htpasswd",
            htpasswd.to_str().unwrap(),
            "--log-format",
            "json",
            bundle.to_str().unwrap(),
        ],
    );
    let ready: Value = serde_json::from_str(&server.ready).unwrap();
    assert!(
        ready["url"]
            .as_str()
            .unwrap()
            .starts_with("https://127.0.0.1:"),
        "{ready}"
    );
    let digest = listed(home.path(), &bundle)
        .into_iter()
        .find(|i| i["tag"] == "v1.2.3")
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let cert_dir = format!("--cert-dir={}", certs.join("skopeo").display());
    let image = format!("docker://{}", server.at("deckhouse/ee:v1.2.3"));

    // The right login, and the CA the test made: the bundle's bytes.
    let raw = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        &cert_dir,
        "--creds",
        "alice:s3cret",
        &image,
    ]))
    .stdout;
    assert_eq!(sha256_of(&raw), digest);
    // A wrong password or none: 401 and no bytes of the image.
    for creds in [
        &["--creds", "alice:wrong"][..],
        &["--creds", "mallory:s3cret"][..],
        &["--no-creds"][..],
    ] {
        let (code, stdout, stderr) = outcome(
            Command::new("skopeo")
                .args(["inspect", "--raw", &cert_dir])
                .args(creds)
                .arg(&image),
        );
        assert_ne!(code, 0, "{creds:?}");
        assert!(stdout.is_empty(), "{stdout}");
        assert!(
            stderr.contains("401") || stderr.to_lowercase().contains("unauthorized"),
            "{stderr}"
        );
    }
    let curl = |user: &str| {
        let out = run(Command::new("curl")
            .args(["-s", "-w", "\n%{http_code}", "--cacert"])
            .arg(certs.join("ca.crt"))
            .args(["-u", user])
            .arg(format!(
                "https://{}/v2/deckhouse/ee/manifests/v1.2.3",
                server.host
            )));
        String::from_utf8(out.stdout).unwrap()
    };
    let refused = curl("alice:wrong");
    assert!(refused.ends_with("\n401"), "{refused}");
    assert!(
        refused.contains("UNAUTHORIZED") && !refused.contains("layers"),
        "{refused}"
    );
    let allowed = curl("alice:s3cret");
    assert!(
        allowed.ends_with("\n200") && allowed.contains("layers"),
        "{allowed}"
    );
    // Without the CA, the certificate is not trusted.
    let (code, _, _) = outcome(
        Command::new("curl")
            .args(["-s", "-u", "alice:s3cret"])
            .arg(format!("https://{}/v2/", server.host)),
    );
    assert_ne!(code, 0);
    // Plain HTTP to the TLS port gets nothing.
    let mut plain = TcpStream::connect(&server.host).unwrap();
    plain
        .write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!String::from_utf8_lossy(&answer).contains("200 OK"));

    // The log is JSON, names the user who logged in, and never holds a password.
    assert!(server.logged(|l| l.contains("\"user\":\"alice\"")));
    let log = server.log();
    let records: Vec<Value> = log
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(records.iter().any(|r| r["status"] == 401));
    assert!(
        records
            .iter()
            .any(|r| r["status"] == 200 && r["user"] == "alice")
    );
    assert!(
        !log.iter()
            .any(|l| l.contains("s3cret") || l.contains("wrong")),
        "{log:?}"
    );
}

#[test]
fn a_damaged_bundle_is_refused_at_start() {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let bundle = d8_bundle(work.path());
    // One byte changed inside a chunk (not in a tar header): the size still fits, the sums
    // do not. Without --verify the server starts (clients check digests); with it, it refuses.
    let chunk = bundle.join("platform.tar.0001.chunk");
    let mut bytes = std::fs::read(&chunk).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x55;
    std::fs::write(&chunk, &bytes).unwrap();
    let refused = Server::try_start(
        home.path(),
        &["--prefix", "p", "--verify", bundle.to_str().unwrap()],
    )
    .err()
    .expect("--verify refuses a damaged bundle");
    assert!(refused.contains("platform.tar.0001.chunk"), "{refused}");

    // A ferry bundle whose file is shorter than bundle.json says is refused without --verify.
    let sealed = work.path().join("sealed");
    sealed_bundle(&sealed, false);
    let file = sealed.join("platform.tar");
    let len = std::fs::metadata(&file).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(len - 512)
        .unwrap();
    let refused = Server::try_start(home.path(), &["--prefix", "p", sealed.to_str().unwrap()])
        .err()
        .expect("a truncated file is refused");
    assert!(
        refused.contains("platform.tar") && refused.contains("bundle.json says"),
        "{refused}"
    );
}

#[test]
fn stalled_readers_and_dribbled_handshakes_hold_bounded_resources() {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    make_big_layout(&layout, "v1", 64);
    let bundle = work.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    d8_tar(&layout, &bundle.join("platform.tar"), TarOrder::Sorted);
    let certs = work.path().join("certs");
    run(Command::new(repo_root().join("scripts/dev-registry.sh"))
        .arg("certs")
        .arg(&certs));
    let server = Server::start(
        home.path(),
        &[
            "--prefix",
            "big",
            "--max-connections",
            "200",
            bundle.to_str().unwrap(),
        ],
    );
    let (_, layer, size) = {
        let got = raw_request(&server.host, "GET", "/v2/big/manifests/v1", &[]);
        let manifest: Value = serde_json::from_slice(&got.body).unwrap();
        let layer = &manifest["layers"][0];
        (
            (),
            layer["digest"].as_str().unwrap().to_string(),
            layer["size"].as_u64().unwrap(),
        )
    };
    assert!(size >= 64 << 20);
    let before = server.rss_kib();
    // 190 clients ask for the 64 MiB layer and read nothing: what the server reads ahead for
    // them is bounded by one budget (32 MiB), not by the number of clients.
    let request = format!("GET /v2/big/blobs/{layer} HTTP/1.1\r\nHost: x\r\n\r\n");
    let stalled: Vec<TcpStream> = (0..190)
        .map(|_| {
            let mut stream = TcpStream::connect(&server.host).unwrap();
            stream.write_all(request.as_bytes()).unwrap();
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    let during = server.rss_kib();
    println!("RSS {before} KiB before, {during} KiB with 190 stalled readers");
    assert!(
        during < before + 48 * 1024,
        "RSS grew from {before} KiB to {during} KiB with 190 stalled readers"
    );
    // Others are still served, whole.
    let got = raw_request(&server.host, "GET", &format!("/v2/big/blobs/{layer}"), &[]);
    assert_eq!(got.status, 200);
    assert_eq!(sha256_of(&got.body), layer);
    drop(stalled);

    // HTTP/2 is not spoken: a client that starts with its preface gets no stream, at most an
    // HTTP/1 error, and the server goes on.
    let mut h2 = TcpStream::connect(&server.host).unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
    h2.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answer = Vec::new();
    let _ = h2.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "{answer}"
    );
    assert_eq!(raw_request(&server.host, "GET", "/v2/", &[]).status, 200);
    drop(server);

    // A TLS handshake dribbled a byte a second keeps no connection past the 10 s deadline,
    // though every byte resets the idle clock.
    let server = Server::start(
        home.path(),
        &[
            "--prefix",
            "big",
            "--idle-timeout",
            "3",
            "--tls-cert",
            certs.join("server.crt").to_str().unwrap(),
            "--tls-key",
            certs.join("server.key").to_str().unwrap(),
            bundle.to_str().unwrap(),
        ],
    );
    let mut stream = TcpStream::connect(&server.host).unwrap();
    let started = Instant::now();
    let mut cut = None;
    // The first bytes of a ClientHello record, then padding, one at a time.
    for byte in [0x16u8, 0x03, 0x01, 0x02, 0x00]
        .iter()
        .chain([0u8; 40].iter())
    {
        if stream.write_all(&[*byte]).is_err() {
            cut = Some(started.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let cut = cut.unwrap_or_else(|| started.elapsed());
    assert!(
        cut < Duration::from_secs(16),
        "the handshake was held for {cut:?}"
    );
}
