//! The policy reader against the examples of containers-policy.json(5), written out here as the
//! man page prints them (its `/* */` comments dropped: the page says they are not JSON). Every
//! scope of the `docker` transport is looked up with an image it covers and one it does not.

use std::path::Path;

use ferry::trust::{DockerReference, KeySource, Policy, Requirement, SignedIdentity};

/// "A reasonably locked-down system".
const LOCKED_DOWN: &str = r#"{
    "default": [{"type": "reject"}],
    "transports": {
        "docker": {
            "docker.io/openshift": [{"type": "insecureAcceptAnything"}],
            "docker.io/library/busybox": [{"type": "insecureAcceptAnything"}],
            "*.temporary-project.example.com": [{"type": "insecureAcceptAnything"}],
            "hostname:5000/myns/sigstore-signed-with-full-references": [
                {
                    "type": "sigstoreSigned",
                    "keyPath": "/path/to/sigstore-pubkey.pub"
                }
            ],
            "hostname:5000/myns/sigstore-signed-allows-malicious-tag-substitution": [
                {
                    "type": "sigstoreSigned",
                    "keyPath": "/path/to/sigstore-pubkey.pub",
                    "signedIdentity": {"type": "matchRepository"}
                }
            ]
        },
        "dir": {
            "": [{"type": "insecureAcceptAnything"}]
        },
        "atomic": {
            "hostname:5000/myns/official": [
                {
                    "type": "signedBy",
                    "keyType": "GPGKeys",
                    "keyPath": "/path/to/official-pubkey.gpg"
                }
            ],
            "hostname:5000/vendor/product": [
                {
                    "type": "signedBy",
                    "keyType": "GPGKeys",
                    "keyPath": "/path/to/vendor-pubkey.gpg",
                    "signedIdentity": {
                        "type": "exactRepository",
                        "dockerRepository": "vendor-hostname/product/repository"
                    }
                },
                {
                    "type": "signedBy",
                    "keyType": "GPGKeys",
                    "keyPath": "/path/to/reviewer-pubkey.gpg"
                }
            ],
            "private-mirror:5000/vendor-mirror": [
                {
                    "type": "signedBy",
                    "keyType": "GPGKeys",
                    "keyPath": "/path/to/vendor-pubkey.gpg",
                    "signedIdentity": {
                        "type": "remapIdentity",
                        "prefix": "private-mirror:5000/vendor-mirror",
                        "signedPrefix": "vendor.example.com"
                    }
                }
            ]
        }
    }
}"#;

/// "Completely disable security, allow all images, do not trust any signatures".
const ANYTHING: &str = r#"{
    "default": [{"type": "insecureAcceptAnything"}]
}"#;

fn lookup<'p>(policy: &'p Policy, image: &str) -> (String, &'p [Requirement]) {
    policy.requirements_for(Some(&DockerReference::parse(image).unwrap()))
}

#[test]
fn the_man_pages_locked_down_system() {
    let policy = Policy::from_bytes(LOCKED_DOWN.as_bytes(), Path::new("policy.json")).unwrap();
    let accept = [Requirement::AcceptAnything];
    let reject = [Requirement::Reject];

    let (scope, found) = lookup(&policy, "docker.io/openshift/hello-openshift:latest");
    assert_eq!(scope, r#"transports.docker["docker.io/openshift"]"#);
    assert_eq!(found, accept);
    // busybox is docker.io/library/busybox in the fully expanded form.
    assert_eq!(lookup(&policy, "busybox:latest").1, accept);
    assert_eq!(
        lookup(&policy, "docker.io/library/busybox@sha256:ab").1,
        accept
    );
    assert_eq!(lookup(&policy, "docker.io/library/alpine:3").1, reject);
    assert_eq!(
        lookup(&policy, "a.b.temporary-project.example.com/x/y:1").1,
        accept
    );
    assert_eq!(
        lookup(&policy, "temporary-project.example.com/x/y:1").1,
        reject
    );
    assert_eq!(lookup(&policy, "quay.io/other/image:1").0, "default");

    let (_, full) = lookup(
        &policy,
        "hostname:5000/myns/sigstore-signed-with-full-references:v1",
    );
    let Requirement::Sigstore { keys, identity, .. } = &full[0] else {
        panic!("{full:?}")
    };
    assert_eq!(
        keys,
        &[KeySource::Path("/path/to/sigstore-pubkey.pub".into())]
    );
    assert_eq!(identity, &SignedIdentity::MatchRepoDigestOrExact);
    let (_, cosign) = lookup(
        &policy,
        "hostname:5000/myns/sigstore-signed-allows-malicious-tag-substitution:v1",
    );
    assert!(matches!(
        &cosign[0],
        Requirement::Sigstore {
            identity: SignedIdentity::MatchRepository,
            ..
        }
    ));
    // A namespace scope covers what is below it, not a sibling that shares a prefix.
    assert_eq!(lookup(&policy, "docker.io/openshiftx/a:1").1, reject);
}

#[test]
fn the_man_pages_accept_everything() {
    let policy = Policy::from_bytes(ANYTHING.as_bytes(), Path::new("policy.json")).unwrap();
    assert_eq!(
        lookup(&policy, "registry.example/anything:1").1,
        [Requirement::AcceptAnything]
    );
}

#[test]
fn the_man_pages_shapes_with_one_mistake_each_are_named() {
    let cases = [
        (
            LOCKED_DOWN.replacen("\"keyType\": \"GPGKeys\"", "\"keyType\": \"X509\"", 1),
            r#"transports.atomic["hostname:5000/myns/official"][0].keyType"#,
        ),
        (
            LOCKED_DOWN.replacen("\"signedPrefix\"", "\"signed_prefix\"", 1),
            r#"transports.atomic["private-mirror:5000/vendor-mirror"][0].signedIdentity.signedPrefix: missing"#,
        ),
        (
            LOCKED_DOWN.replacen("\"dockerRepository\"", "\"dockerReference\"", 1),
            r#"transports.atomic["hostname:5000/vendor/product"][0].signedIdentity.dockerRepository: missing"#,
        ),
        (
            LOCKED_DOWN.replacen(
                "\"keyPath\": \"/path/to/sigstore-pubkey.pub\"",
                "\"keyPaths\": []",
                1,
            ),
            r#"transports.docker["hostname:5000/myns/sigstore-signed-with-full-references"][0].keyPaths: an empty list"#,
        ),
        (
            LOCKED_DOWN.replacen("\"docker.io/library/busybox\"", "\"library/busybox\"", 1),
            r#"transports.docker["library/busybox"]: 'library/busybox' is not in the fully expanded form"#,
        ),
        (
            ANYTHING.replace("default", "defaults"),
            "policy.json: defaults: unknown field",
        ),
    ];
    for (text, expected) in cases {
        let error = Policy::from_bytes(text.as_bytes(), Path::new("policy.json"))
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "{error}\nexpected: {expected}");
        assert!(error.starts_with("policy.json: "), "{error}");
    }
}
