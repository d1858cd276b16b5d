//! What a pull refuses because a bundle could not hold it, against a real registry: one tag
//! asked for as two images, named with both sources, before anything is downloaded.

mod common;

use common::*;

#[test]
fn a_tag_asked_for_as_two_images_is_refused_at_pull() {
    let registry = Registry::start("plain");
    let layouts = tempfile::tempdir().unwrap();
    make_layout(layouts.path(), "v1", "image", &["--seed", "31"]);
    let other = make_layout(layouts.path(), "v2", "image", &["--seed", "32"]);
    registry.seed(layouts.path(), "v1", "app/one:v1");
    registry.seed(layouts.path(), "v2", "app/one:v2");
    let home = tempfile::tempdir().unwrap();
    let list = home.path().join("list.txt");
    // The same repository and tag, once as the tag and once pinned to another image.
    std::fs::write(
        &list,
        format!(
            "{host}/app/one:v1\n{host}/app/one:v1@{other}\n",
            host = registry.host
        ),
    )
    .unwrap();
    let bundle = home.path().join("bundle");
    let (code, stdout, stderr) = outcome(
        ferry(home.path())
            .args(["--no-progress", "pull", "--insecure"])
            .arg(&bundle)
            .arg("--images-from-list")
            .arg(&list),
    );
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains("app/one:v1 would be placed twice") && stderr.contains(&other),
        "{stderr}"
    );
    assert!(!bundle.exists(), "nothing was written");
    // Nothing but manifests was read: no blob was downloaded for a plan that is refused.
    let fetched: Vec<String> = registry
        .log()
        .lines()
        .filter(|l| l.contains("\"GET /v2/") && l.contains("/blobs/") && l.contains("ferry/"))
        .map(str::to_string)
        .collect();
    assert!(fetched.is_empty(), "a blob was fetched: {fetched:?}");
}
