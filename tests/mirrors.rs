//! Source mirrors against real registries: `--source-mirror` and containers' registries.conf
//! (`CONTAINERS_REGISTRIES_CONF`, the user's file and its drop-ins) send an image list's
//! Docker Hub names, an image set's entries and a platform `--source` to a mirror on 127.0.0.1;
//! the bundle keeps the names asked for; the mirror host's own credentials and `insecure`
//! setting apply; blocked registries and malformed values are refused. Every ferry run here
//! has its proxies pointed at a closed port, so any request beyond loopback would fail: a pull
//! that succeeds never touched the internet.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use common::*;
use serde_json::Value;

/// `ferry` that can reach 127.0.0.1 only: anything else goes to a proxy on a closed port.
fn offline(home: &Path) -> Command {
    let mut cmd = ferry(home);
    for var in ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"] {
        cmd.env(var, "http://127.0.0.1:9");
    }
    // The machine's registries.conf stays out of it unless a test writes its own.
    cmd.env(
        "CONTAINERS_REGISTRIES_CONF",
        home.join("no-registries.conf"),
    );
    std::fs::write(home.join("no-registries.conf"), "").unwrap();
    cmd
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

/// Pushes a `kind` layout (its own content by `seed`) to `registry` as `reference`; returns
/// its digest.
fn seed(registry: &Registry, work: &Path, reference: &str, kind: &str, seed: u32) -> String {
    let layout = work.join(format!("layout-{seed}"));
    let digest = make_layout(&layout, "t", kind, &["--seed", &seed.to_string()]);
    registry.seed(&layout, "t", reference);
    digest
}

/// A mirror holding Docker Hub's nginx:latest, alpine:3.19 (a two-platform index) and a
/// busybox listed by digest, under `root/library/...`; the list naming them as a cluster
/// would; busybox's digest.
fn hub_mirror(mirror: &Registry, work: &Path, root: &str) -> (PathBuf, String) {
    seed(
        mirror,
        work,
        &format!("{root}/library/nginx:latest"),
        "image",
        1,
    );
    seed(
        mirror,
        work,
        &format!("{root}/library/alpine:3.19"),
        "index",
        2,
    );
    let busybox = seed(
        mirror,
        work,
        &format!("{root}/library/busybox:1.36"),
        "artifact",
        3,
    );
    let list = write(
        work,
        "images.txt",
        &format!("nginx\ndocker.io/library/alpine:3.19   # pinned by tag\nbusybox@{busybox}\n"),
    );
    (list, busybox)
}

/// `ferry ls --json` as (path, tag, source, mirror), sorted as ls sorts.
fn listing(home: &Path, dir: &Path) -> Vec<(String, String, String, String)> {
    listed(home, dir)
        .iter()
        .map(|i| {
            let text = |k: &str| i[k].as_str().unwrap_or_default().to_string();
            (text("path"), text("tag"), text("source"), text("mirror"))
        })
        .collect()
}

fn pull_list(home: &Path, dir: &Path, list: &Path, args: &[&str]) -> (i32, String, String) {
    outcome(
        offline(home)
            .args(["--no-progress", "pull"])
            .arg(dir)
            .arg("--images-from-list")
            .arg(list)
            .args(args),
    )
}

#[test]
fn an_image_list_of_docker_hub_names_is_read_through_a_source_mirror() {
    let mirror = Registry::start("plain");
    let work = tempfile::tempdir().unwrap();
    let (list, busybox) = hub_mirror(&mirror, work.path(), "dockerhub");
    let hex = busybox.strip_prefix("sha256:").unwrap();
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("bundle");
    let flag = format!("docker.io={}/dockerhub", mirror.host);
    let args = ["--insecure", "--source-mirror", &flag];

    // The dry run says which mirror docker.io is read through.
    let (code, stdout, stderr) = pull_list(
        home.path(),
        &dir,
        &list,
        &[&args[..], &["--dry-run"]].concat(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(&format!(
            "docker.io: 3 image(s) read through the mirror {}/dockerhub for docker.io (--source-mirror)",
            mirror.host
        )),
        "{stdout}"
    );

    let (code, stdout, stderr) = pull_list(home.path(), &dir, &list, &args);
    assert_eq!(code, 0, "{stdout}\n{stderr}\n{}", mirror.log());
    verified(home.path(), &dir);
    let host = &mirror.host;
    assert_eq!(
        listing(home.path(), &dir),
        [
            (
                "docker.io/library/alpine".to_string(),
                "3.19".to_string(),
                "docker.io/library/alpine:3.19".to_string(),
                format!("{host}/dockerhub/library/alpine:3.19")
            ),
            (
                "docker.io/library/busybox".to_string(),
                hex.to_string(),
                format!("docker.io/library/busybox@{busybox}"),
                format!("{host}/dockerhub/library/busybox@{busybox}")
            ),
            (
                "docker.io/library/nginx".to_string(),
                "latest".to_string(),
                "docker.io/library/nginx:latest".to_string(),
                format!("{host}/dockerhub/library/nginx:latest")
            ),
        ]
    );
    // The request records the mirror: another mirror on a rerun is another request.
    let bundle: Value =
        serde_json::from_slice(&std::fs::read(dir.join("bundle.json")).unwrap()).unwrap();
    assert_eq!(
        bundle["request"]["source_mirrors"][0]["mirrors"][0]["location"],
        format!("{host}/dockerhub")
    );

    // What lands at a target is what the mirror has, byte for byte.
    let target = Registry::start("plain");
    ferry_ok(&mut push_cmd(home.path(), &target, &dir, "site", &[]));
    for (pushed, original) in [
        ("docker.io/library/nginx:latest", "library/nginx:latest"),
        ("docker.io/library/alpine:3.19", "library/alpine:3.19"),
        (
            &format!("docker.io/library/busybox:{hex}"),
            "library/busybox:1.36",
        ),
    ] {
        assert_eq!(
            target.raw_manifest(&format!("site/{pushed}")),
            mirror.raw_manifest(&format!("dockerhub/{original}")),
            "{pushed}"
        );
    }

    // The same through FERRY_SOURCE_MIRROR, with a mirror path prefix that is longer.
    let (code, stdout, stderr) = outcome(
        offline(home.path())
            .args(["pull", "--insecure", "--dry-run", "--json"])
            .arg(home.path().join("b2"))
            .arg("--images-from-list")
            .arg(&list)
            .env(
                "FERRY_SOURCE_MIRROR",
                format!("quay.io=x.invalid,docker.io/library={host}/dockerhub/library"),
            ),
    );
    assert_eq!(code, 0, "{stderr}");
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(plan["images"].as_array().unwrap().len(), 3);
    assert_eq!(
        plan["images"][2]["mirror"],
        format!("{host}/dockerhub/library/nginx:latest")
    );
}

#[test]
fn registries_conf_mirrors_are_tried_in_order_and_drop_ins_override() {
    let mirror = Registry::start("plain");
    let work = tempfile::tempdir().unwrap();
    let (list, _) = hub_mirror(&mirror, work.path(), "hub");
    let host = &mirror.host;
    let home = tempfile::tempdir().unwrap();
    // The first mirror lacks the images (not found: the next is tried); the second has them.
    // insecure = true is what lets ferry speak plain HTTP to it: no --insecure here.
    let conf = write(
        work.path(),
        "registries.conf",
        &format!(
            r#"unqualified-search-registries = ["docker.io"]

[[registry]]
prefix = "docker.io"
location = "docker.io"

[[registry.mirror]]
location = "{host}/empty"
insecure = true

[[registry.mirror]]
location = "{host}/hub"
insecure = true

[aliases]
"nginx" = "docker.io/library/nginx"
"#
        ),
    );
    let dir = home.path().join("bundle");
    let (code, stdout, stderr) = outcome(
        offline(home.path())
            .args(["--no-progress", "pull"])
            .arg(&dir)
            .arg("--images-from-list")
            .arg(&list)
            .env("CONTAINERS_REGISTRIES_CONF", &conf),
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    verified(home.path(), &dir);
    let got = listing(home.path(), &dir);
    assert_eq!(got.len(), 3);
    for (path, _, source, read) in &got {
        assert!(source.starts_with(&format!("{path}:")) || source.starts_with(&format!("{path}@")));
        assert!(read.starts_with(&format!("{host}/hub/library/")), "{read}");
    }
    assert!(
        stderr.contains(&format!("{host}/empty/library/nginx")),
        "the note says the first mirror lacked it: {stderr}"
    );

    // Without insecure = true the mirror is asked over HTTPS, and the error names it.
    let strict = write(
        work.path(),
        "strict.conf",
        &format!(
            "[[registry]]\nlocation = \"docker.io\"\n[[registry.mirror]]\nlocation = \"{host}/hub\"\n"
        ),
    );
    let (code, _, stderr) = outcome(
        offline(home.path())
            .args(["pull", "--dry-run"])
            .arg(home.path().join("b-strict"))
            .arg("--images-from-list")
            .arg(&list)
            .env("CONTAINERS_REGISTRIES_CONF", &strict),
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(host.as_str()), "{stderr}");

    // The user's own registries.conf with a drop-in that replaces its docker.io table (no
    // CONTAINERS_REGISTRIES_CONF): the drop-in's mirror is the one used.
    let user_home = tempfile::tempdir().unwrap();
    write(
        user_home.path(),
        ".config/containers/registries.conf",
        &format!(
            "[[registry]]\nlocation = \"docker.io\"\n[[registry.mirror]]\nlocation = \"{host}/empty\"\ninsecure = true\n"
        ),
    );
    write(
        user_home.path(),
        ".config/containers/registries.conf.d/50-hub.conf",
        &format!(
            "[[registry]]\nlocation = \"docker.io\"\n[[registry.mirror]]\nlocation = \"{host}/hub\"\ninsecure = true\n"
        ),
    );
    let mut cmd = offline(user_home.path());
    cmd.env_remove("CONTAINERS_REGISTRIES_CONF");
    let (code, stdout, stderr) = outcome(
        cmd.args(["pull", "--dry-run", "--json"])
            .arg(user_home.path().join("b"))
            .arg("--images-from-list")
            .arg(&list),
    );
    assert_eq!(code, 0, "{stderr}");
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    for image in plan["images"].as_array().unwrap() {
        let read = image["mirror"].as_str().unwrap();
        assert!(read.starts_with(&format!("{host}/hub/")), "{read}");
    }

    // A registries.conf that does not parse is a usage error naming it.
    let broken = write(work.path(), "broken.conf", "[[registry]\nlocation = 1\n");
    let (code, _, stderr) = outcome(
        offline(home.path())
            .args(["pull", "--dry-run"])
            .arg(home.path().join("b3"))
            .arg("--images-from-list")
            .arg(&list)
            .env("CONTAINERS_REGISTRIES_CONF", &broken),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(broken.to_str().unwrap()), "{stderr}");
}

#[test]
fn a_mirror_is_reached_with_its_own_credentials() {
    let mirror = Registry::start("basic");
    let work = tempfile::tempdir().unwrap();
    let (list, _) = hub_mirror(&mirror, work.path(), "hub");
    let host = &mirror.host;
    let (user, password) = (
        mirror.user.clone().unwrap(),
        mirror.password.clone().unwrap(),
    );
    let auth_file = |password: &str| {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        write(
            work.path(),
            &format!("auth-{}.json", password.len()),
            &format!(r#"{{"auths": {{"{host}": {{"auth": "{token}"}}}}}}"#),
        )
    };
    let home = tempfile::tempdir().unwrap();
    let flag = format!("docker.io={host}/hub");
    let pull = |dir: &str, auth: Option<&Path>| {
        let mut cmd = offline(home.path());
        cmd.args([
            "--no-progress",
            "pull",
            "--insecure",
            "--source-mirror",
            &flag,
        ])
        .arg(home.path().join(dir))
        .arg("--images-from-list")
        .arg(&list);
        if let Some(auth) = auth {
            cmd.env("REGISTRY_AUTH_FILE", auth);
        }
        outcome(&mut cmd)
    };

    let (code, stdout, stderr) = pull("good", Some(&auth_file(&password)));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    verified(home.path(), &home.path().join("good"));
    assert_eq!(listing(home.path(), &home.path().join("good")).len(), 3);

    let wrong = "not-the-password";
    let (code, stdout, stderr) = pull("wrong", Some(&auth_file(wrong)));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!("{host}/hub/library/"))
            && stderr.contains("authentication failed"),
        "{stderr}"
    );
    assert!(!stderr.contains(wrong) && !stdout.contains(wrong) && !stderr.contains(&password));

    let (code, _, stderr) = pull("none", None);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(host.as_str()) && stderr.contains("authentication failed"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: give credentials"), "{stderr}");
}

#[test]
fn image_sets_and_a_platform_source_are_read_through_mirrors() {
    let mirror = Registry::start("plain");
    let work = tempfile::tempdir().unwrap();
    let host = &mirror.host;
    // An image set entry whose tags are listed at the mirror, and one with explicit tags.
    seed(&mirror, work.path(), "quay/team/app:1.0.0", "image", 10);
    seed(&mirror, work.path(), "quay/team/app:1.1.0", "image", 11);
    seed(&mirror, work.path(), "quay/team/tool:v2", "index", 12);
    let set = write(
        work.path(),
        "apps.yaml",
        "apiVersion: ferry/v1\nkind: ImageSet\nartifacts:\n  - source: quay.io/team/app\n    selector: {semver: '>=1.0.0', limit: 0}\n  - source: quay.io/team/tool\n    destination: example.com/tools/tool\n    tags: [v2]\n",
    );
    // A platform source whose only content is a security database image.
    seed(
        &mirror,
        work.path(),
        "vendor/deckhouse/ee/security/db:1",
        "artifact",
        13,
    );
    let layout = one_database_layout(work.path(), "security/db", "1");
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("bundle");
    let (code, stdout, stderr) = outcome(
        offline(home.path())
            .args(["--no-progress", "pull", "--insecure"])
            .arg(&dir)
            .args(["--source", "registry.example.com/deckhouse/ee"])
            .args(["--no-platform", "--no-modules", "--layout"])
            .arg(&layout)
            .arg("--images")
            .arg(&set)
            .args(["--source-mirror", &format!("quay.io={host}/quay")])
            .args([
                "--source-mirror",
                &format!("registry.example.com={host}/vendor"),
            ]),
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    verified(home.path(), &dir);
    let got = listing(home.path(), &dir);
    let expect = [
        (
            "security/db",
            "1",
            "registry.example.com/deckhouse/ee/security/db:1",
            "vendor/deckhouse/ee/security/db:1",
        ),
        (
            "team/app",
            "1.0.0",
            "quay.io/team/app:1.0.0",
            "quay/team/app:1.0.0",
        ),
        (
            "team/app",
            "1.1.0",
            "quay.io/team/app:1.1.0",
            "quay/team/app:1.1.0",
        ),
        (
            "tools/tool",
            "v2",
            "quay.io/team/tool:v2",
            "quay/team/tool:v2",
        ),
    ];
    assert_eq!(got.len(), expect.len(), "{got:?}");
    for ((path, tag, source, read), want) in got.iter().zip(expect) {
        assert_eq!(
            (path.as_str(), tag.as_str(), source.as_str()),
            (want.0, want.1, want.2)
        );
        assert_eq!(read, &format!("{host}/{}", want.3));
    }
    let bundle: Value =
        serde_json::from_slice(&std::fs::read(dir.join("bundle.json")).unwrap()).unwrap();
    assert_eq!(bundle["source"], "registry.example.com/deckhouse/ee");
}

#[test]
fn blocked_registries_and_malformed_mirrors_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let list = write(work.path(), "images.txt", "nginx\nquay.io/a/b:1\n");
    let conf = write(
        work.path(),
        "registries.conf",
        "[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\nblocked = true\n",
    );
    let (code, stdout, stderr) = outcome(
        offline(home.path())
            .args(["pull", "--dry-run"])
            .arg(home.path().join("b"))
            .arg("--images-from-list")
            .arg(&list)
            .env("CONTAINERS_REGISTRIES_CONF", &conf),
    );
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains("docker.io/library/nginx:latest is blocked")
            && stderr.contains(conf.to_str().unwrap())
            && stderr.contains("hint:"),
        "{stderr}"
    );
    assert!(!home.path().join("b").exists());

    for (value, needle) in [
        ("docker.io", "there is no '='"),
        ("docker.io=", "both sides"),
        ("docker.io=https://mirror.local", "has a scheme"),
        ("docker.io=Mirror.local/UPPER", "is not host[:port][/path]"),
        (
            "docker.io/library/nginx:1.0=mirror.local",
            "names a tag or digest",
        ),
    ] {
        for by_env in [false, true] {
            let mut cmd = offline(home.path());
            cmd.args(["pull", "--dry-run"])
                .arg(home.path().join("b"))
                .arg("--images-from-list")
                .arg(&list);
            if by_env {
                cmd.env("FERRY_SOURCE_MIRROR", value);
            } else {
                cmd.arg("--source-mirror").arg(value);
            }
            let (code, _, stderr) = outcome(&mut cmd);
            assert_eq!(code, 2, "{value}: {stderr}");
            assert!(
                stderr.contains("REGISTRY=HOST[:PORT][/PATH]") && stderr.contains(needle),
                "{value}: {stderr}"
            );
        }
    }
}
