//! Files an image set names (`credential.fromPath`, `tls.serverAuth.fromPath`) stay inside the
//! config file's directory after every link is resolved, and are read only when they are small
//! regular files: a token outside is never sent, `/dev/zero` is never read.

mod common;

use std::path::Path;

use common::*;

fn set_with_token_from(dir: &Path, registry: &str, from: &str) -> std::path::PathBuf {
    let set = dir.join("set.yaml");
    std::fs::write(
        &set,
        format!(
            "apiVersion: ferry/v1\nkind: ImageSet\nartifacts:\n  - source: {registry}/apps/x\n    \
             tags: [v1]\nhosts:\n  - host: {registry}\n    credential:\n      fromPath: {from}\n"
        ),
    )
    .unwrap();
    set
}

#[test]
fn from_path_cannot_leave_the_config_directory_through_a_link() {
    let registry = Registry::start("plain");
    let proxy = FaultProxy::start(&registry, &[]);
    let home = tempfile::tempdir().unwrap();
    let outside = home.path().join("outside-secret");
    std::fs::write(&outside, "t0ken-from-outside").unwrap();
    let config = home.path().join("config");
    std::fs::create_dir(&config).unwrap();
    std::os::unix::fs::symlink(&outside, config.join("token")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", config.join("zero")).unwrap();
    std::fs::create_dir(config.join("sub")).unwrap();
    std::os::unix::fs::symlink("..", config.join("sub/up")).unwrap();

    for (from, needle) in [
        ("token", "outside the config file's directory"),
        ("zero", "outside the config file's directory"),
        ("sub/up/../outside-secret", "must lie under"),
    ] {
        let set = set_with_token_from(&config, &proxy.host, from);
        let started = std::time::Instant::now();
        let (code, stdout, stderr) = outcome(
            ferry(home.path())
                .args(["--no-progress", "pull", "--insecure"])
                .arg(home.path().join("b"))
                .arg("--images")
                .arg(&set),
        );
        assert_eq!(code, 2, "{from}: {stdout}{stderr}");
        assert!(stderr.contains(needle), "{from}: {stderr}");
        assert!(!stderr.contains("t0ken-from-outside"), "{stderr}");
        assert!(started.elapsed().as_secs() < 20, "{from}: it read forever");
    }
    assert!(
        proxy.requests().is_empty(),
        "nothing reached the registry: {:?}",
        proxy.requests()
    );
    // A link inside the directory to a file inside it is fine; the token is what it says.
    std::fs::write(config.join("real-token"), "t0ken-inside\n").unwrap();
    std::os::unix::fs::symlink(config.join("real-token"), config.join("alias")).unwrap();
    let set = set_with_token_from(&config, &proxy.host, "alias");
    let (code, _, stderr) = outcome(
        ferry(home.path())
            .args(["--no-progress", "pull", "--insecure", "--dry-run"])
            .arg(home.path().join("b"))
            .arg("--images")
            .arg(&set),
    );
    // The registry has no apps/x: the request was made (with the inside token), not refused.
    assert_eq!(code, 1, "{stderr}");
    assert!(
        proxy.requests().iter().any(|r| r.contains("/v2/apps/x/")),
        "{:?}",
        proxy.requests()
    );
    assert_eq!(
        std::fs::read_to_string(&outside).unwrap(),
        "t0ken-from-outside"
    );
}

#[test]
fn an_oversized_or_special_credential_file_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config");
    std::fs::create_dir(&config).unwrap();
    std::fs::write(config.join("big"), vec![b'a'; 1 << 20]).unwrap();
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        config.join("fifo"),
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    for (from, needle) in [("big", "larger than"), ("fifo", "not a regular file")] {
        let set = set_with_token_from(&config, "127.0.0.1:1", from);
        let started = std::time::Instant::now();
        let (code, _, stderr) = outcome(
            ferry(home.path())
                .args(["--no-progress", "pull", "--insecure"])
                .arg(home.path().join("b"))
                .arg("--images")
                .arg(&set),
        );
        assert_eq!(code, 2, "{from}: {stderr}");
        assert!(stderr.contains(needle), "{from}: {stderr}");
        assert!(started.elapsed().as_secs() < 20, "{from}: it waited");
    }
}
