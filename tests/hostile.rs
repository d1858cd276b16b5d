//! A registry that misbehaves on purpose (`scripts/hostile-registry.py`): credentials must
//! never reach another origin, transfers that never end must end with a clear error within the
//! timeouts, and what such a registry sends must not fill the memory.

mod common;

use std::path::Path;
use std::process::{Child, Command};

use common::*;

/// The hostile registry in one mode, stopped when dropped.
struct Hostile {
    child: Child,
    main: String,
    other: String,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Hostile {
    fn start(mode: &str) -> Hostile {
        let dir = tempfile::tempdir().unwrap();
        let port_file = dir.path().join("ports");
        let log = dir.path().join("requests.log");
        let child = Command::new("python3")
            .arg(repo_root().join("scripts/hostile-registry.py"))
            .args(["--mode", mode])
            .arg("--port-file")
            .arg(&port_file)
            .arg("--log")
            .arg(&log)
            .spawn()
            .unwrap();
        assert!(wait_until(10, || port_file.exists()), "it did not start");
        let ports = std::fs::read_to_string(&port_file).unwrap();
        let (main, other) = ports.split_once(' ').unwrap();
        Hostile {
            child,
            main: format!("127.0.0.1:{main}"),
            other: other.to_string(),
            log,
            _dir: dir,
        }
    }

    fn requests(&self, side: &str) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with(&format!("{side} ")))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An image set taking every tag of the hostile registry's `x`, with its login.
fn select_everything(hostile: &Hostile, dir: &Path) -> std::path::PathBuf {
    let set = dir.join("set.yaml");
    std::fs::write(
        &set,
        format!(
            "apiVersion: ferry/v1\nkind: ImageSet\nartifacts:\n  - source: {0}/x\n    \
             selector: {{ regex: {{ pattern: '.*' }}, sortBy: alphabetical, limit: 0 }}\n\
             hosts:\n  - host: {0}\n    username: robot\n    \
             credential: {{ value: S3cretPassw0rd }}\n",
            hostile.main
        ),
    )
    .unwrap();
    set
}

const LOGIN: [&str; 4] = [
    "--source-login",
    "robot",
    "--source-password",
    "S3cretPassw0rd",
];

fn copy_from(hostile: &Hostile, home: &Path, extra: &[&str]) -> (i32, String, u64, f64) {
    let out = home.join("out");
    let source = format!("{}/x:v1", hostile.main);
    let target = format!("oci:{}:v1", out.display());
    let mut args = vec!["--no-progress", "copy", "--insecure"];
    args.extend_from_slice(&LOGIN);
    args.extend_from_slice(extra);
    args.push(&source);
    args.push(&target);
    let m = measured(home, &args);
    (m.code, m.stderr, m.rss_kib, m.seconds)
}

fn assert_short_error(code: i32, stderr: &str, rss_kib: u64, needles: &[&str]) {
    assert_eq!(code, 1, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("S3cretPassw0rd"), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "'{needle}' in:\n{stderr}");
    }
    assert!(rss_kib < 64 * 1024, "peak RSS {rss_kib} KiB");
}

#[test]
fn a_tag_list_linking_to_another_origin_is_not_followed() {
    let hostile = Hostile::start("cross-link");
    let home = tempfile::tempdir().unwrap();
    let source = format!("{}/x", hostile.main);
    let dir = home.path().join("b");
    let mut args = vec!["--no-progress", "pull"];
    let dir_arg = dir.display().to_string();
    args.push(&dir_arg);
    args.extend_from_slice(&["--source", &source, "--insecure", "--dry-run"]);
    args.extend_from_slice(&["--no-platform", "--no-security-db"]);
    args.extend_from_slice(&LOGIN);
    let Measured {
        code,
        stderr,
        rss_kib: rss,
        ..
    } = measured(home.path(), &args);
    assert_short_error(
        code,
        &stderr,
        rss,
        &["links to another host", &hostile.other],
    );
    assert!(
        hostile
            .requests("main")
            .iter()
            .any(|r| r.ends_with(" Basic")),
        "the registry itself did get the login"
    );
    assert!(
        hostile.requests("other").is_empty(),
        "{:?}",
        hostile.requests("other")
    );
}

#[test]
fn an_upload_sent_elsewhere_goes_there_without_the_login() {
    let hostile = Hostile::start("cross-location");
    let home = tempfile::tempdir().unwrap();
    let layout = home.path().join("layout");
    make_layout(&layout, "v1", "image", &["--seed", "5"]);
    let source = format!("oci:{}:v1", layout.display());
    let target = format!("{}/x:v1", hostile.main);
    let mut args = vec![
        "--no-progress",
        "copy",
        "--insecure",
        "-u",
        "robot",
        "-p",
        "S3cretPassw0rd",
    ];
    args.push(&source);
    args.push(&target);
    let Measured { code, stderr, .. } = measured(home.path(), &args);
    assert_eq!(code, 0, "{stderr}");
    let other = hostile.requests("other");
    assert!(
        other.iter().any(|r| r.starts_with("other PUT ")),
        "{other:?}"
    );
    assert!(other.iter().all(|r| r.ends_with(" -")), "{other:?}");
    assert!(
        hostile
            .requests("main")
            .iter()
            .any(|r| r.contains("/manifests/") && r.ends_with(" Basic"))
    );
}

#[test]
fn a_token_service_on_another_host_over_http_never_gets_the_login() {
    let hostile = Hostile::start("realm-elsewhere");
    let home = tempfile::tempdir().unwrap();
    let (code, stderr, _, _) = copy_from(&hostile, home.path(), &[]);
    assert_eq!(code, 0, "{stderr}");
    let other = hostile.requests("other");
    assert!(other.iter().any(|r| r.contains("/token")), "{other:?}");
    assert!(other.iter().all(|r| r.ends_with(" -")), "{other:?}");
    assert!(
        stderr.contains("the token service is another host"),
        "{stderr}"
    );
}

/// A token whose lifetime overflows any clock: it is used (clamped), cached, and the copy is
/// the registry's image byte for byte.
#[test]
fn a_token_that_claims_to_live_forever_is_clamped_and_used() {
    let hostile = Hostile::start("huge-token");
    let home = tempfile::tempdir().unwrap();
    let (code, stderr, _, _) = copy_from(&hostile, home.path(), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // skopeo reads what was written and checks every blob against its digest.
    skopeo_verifies_layout(&home.path().join("out"), "v1");
    let manifest = layout_raw_manifest(&home.path().join("out"), "v1");
    let requests = hostile.requests("main");
    let tokens = requests.iter().filter(|r| r.contains(" /token")).count();
    assert_eq!(tokens, 1, "one token for the whole copy: {requests:?}");
    let bearer = requests
        .iter()
        .filter(|r| r.contains("/v2/x/") && r.ends_with(" Bearer"))
        .count();
    assert!(
        bearer >= 3,
        "manifest and both blobs with the token: {requests:?}"
    );
    // The layout names the manifest skopeo read by its digest.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.path().join("out/index.json")).unwrap())
            .unwrap();
    assert_eq!(
        index["manifests"][0]["digest"],
        ferry::digest::Digest::of(&manifest).to_string()
    );
}

#[test]
fn a_server_that_ignores_range_and_cuts_the_body_is_given_up_on() {
    let hostile = Hostile::start("range-cut");
    let home = tempfile::tempdir().unwrap();
    let (code, stderr, rss, secs) = copy_from(&hostile, home.path(), &[]);
    assert_short_error(code, &stderr, rss, &["keeps ending at byte"]);
    let gets = hostile
        .requests("main")
        .iter()
        .filter(|r| r.contains("GET ") && r.contains("/blobs/"))
        .count();
    assert!(gets <= 8, "{gets} GETs of a blob that never arrives");
    assert!(secs < 60.0, "{secs} s");
}

#[test]
fn a_trickle_stalls_and_ends_within_the_stall_timeout() {
    let hostile = Hostile::start("trickle");
    let home = tempfile::tempdir().unwrap();
    let (code, stderr, rss, secs) = copy_from(&hostile, home.path(), &["--stall-timeout", "1"]);
    assert_short_error(code, &stderr, rss, &["stalled", "hint:"]);
    assert!(secs < 60.0, "{secs} s");
}

#[test]
fn endless_tag_pages_are_cut_off() {
    let hostile = Hostile::start("endless-pages");
    let home = tempfile::tempdir().unwrap();
    let source = format!("{}/x", hostile.main);
    let dir = home.path().join("b").display().to_string();
    let mut args = vec![
        "--no-progress",
        "pull",
        &dir,
        "--source",
        &source,
        "--insecure",
    ];
    args.extend_from_slice(&["--dry-run", "--no-platform", "--no-security-db"]);
    args.extend_from_slice(&LOGIN);
    let Measured {
        code,
        stderr,
        rss_kib: rss,
        seconds: secs,
        ..
    } = measured(home.path(), &args);
    assert_short_error(code, &stderr, rss, &["pages; refusing to follow it"]);
    assert!(secs < 120.0, "{secs} s");
}

#[test]
fn a_hundred_megabyte_error_body_is_not_read() {
    let hostile = Hostile::start("big-error");
    let home = tempfile::tempdir().unwrap();
    let (code, stderr, rss, _) = copy_from(&hostile, home.path(), &[]);
    assert_short_error(code, &stderr, rss, &["not found"]);
    assert!(stderr.len() < 2000, "{} bytes of error", stderr.len());
}

#[tokio::test]
async fn tag_lists_in_pages_are_followed_to_the_end() {
    use ferry::registry::{ClientOptions, Credential, RegistryClient, Secret, TransportOptions};
    let hostile = Hostile::start("paged");
    let options = ClientOptions {
        transport: TransportOptions {
            insecure: true,
            ..TransportOptions::default()
        },
        credential: Some(Credential::Basic {
            username: "robot".into(),
            password: Secret::new("S3cretPassw0rd"),
        }),
        ..ClientOptions::default()
    };
    let client = RegistryClient::new(&hostile.main, "x", options).unwrap();
    let tags = client.list_tags("x").await.unwrap();
    assert_eq!(tags, ["a", "b", "c", "d", "e"]);
    let pages = hostile
        .requests("main")
        .iter()
        .filter(|r| r.contains("/tags/list") && r.ends_with(" Basic"))
        .count();
    assert_eq!(pages, 3);
}

/// Pages of one 16 MB tag each used to pile up to gigabytes (and a dry run printed them): a
/// tag the distribution spec does not allow ends the listing at its first page, named short.
#[test]
fn huge_tags_are_refused_at_the_first_page() {
    let hostile = Hostile::start("huge-tags");
    let home = tempfile::tempdir().unwrap();
    let set = select_everything(&hostile, home.path());
    let dir = home.path().join("b").display().to_string();
    let set_arg = set.display().to_string();
    let mut args = vec!["--no-progress", "pull", &dir, "--images", &set_arg];
    args.extend_from_slice(&["--insecure", "--dry-run"]);
    let Measured {
        code,
        stderr,
        rss_kib: rss,
        ..
    } = measured(home.path(), &args);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("which is not a tag") && stderr.contains("at most 128"),
        "{stderr}"
    );
    assert!(stderr.len() < 4000, "{} bytes of error", stderr.len());
    assert!(rss < 128 * 1024, "peak RSS {rss} KiB");
    let pages = hostile
        .requests("main")
        .iter()
        .filter(|r| r.contains("/tags/list"))
        .count();
    assert!(pages <= 2, "{pages} pages read");
}

/// Tag names with escape sequences and line breaks never reach the terminal as they are: not
/// from a dry run of an image set, not in an error.
#[test]
fn escape_sequences_in_tags_never_reach_the_terminal() {
    let hostile = Hostile::start("escape-tags");
    let home = tempfile::tempdir().unwrap();
    let set = select_everything(&hostile, home.path());
    let (code, stdout, stderr) = outcome(
        ferry(home.path())
            .args(["--no-progress", "pull"])
            .arg(home.path().join("b"))
            .arg("--images")
            .arg(&set)
            .args(["--insecure", "--dry-run"]),
    );
    let all = format!("{stdout}{stderr}");
    assert_eq!(code, 1, "{all}");
    assert!(
        !all.contains('\u{1b}'),
        "an escape reached the terminal: {all:?}"
    );
    assert!(
        !all.lines().any(|l| l.starts_with("warning: a forged line")),
        "{all:?}"
    );
    assert!(all.contains("PWNED") && all.contains("not a tag"), "{all}");
}
