//! The hints the binary adds to errors: the library's errors carry kinds and data; turning them
//! into the fix a user types, with the flags and files that name it, is the command line's job.

use ferry::bundle::BundleError;
use ferry::copy::CopyError;
use ferry::imageset::charts::ChartError;
use ferry::layout::LayoutError;
use ferry::pull::{PullError, WorkError};
use ferry::push::PushError;
use ferry::registry::{MirrorError, RegistryError};
use ferry::serve::ServeError;
use ferry::source::SourceError;
use ferry::store::StoreError;
use ferry::trust::TrustError;

/// The fix for a RegistryError, when one is known.
pub fn registry(e: &RegistryError) -> Option<String> {
    match e {
            RegistryError::Unreachable { target, .. } => Some(format!(
                "check the host name and port of '{}', the network, and HTTP(S)_PROXY/NO_PROXY; \
                 use --insecure if the registry speaks plain HTTP",
                target.registry
            )),
            RegistryError::Tls { detail, .. } if detail.contains("HTTP") || detail.contains("record") => {
                Some("the registry may speak plain HTTP: try --insecure".into())
            }
            RegistryError::Tls { .. } => Some(
                "point SSL_CERT_FILE (or SSL_CERT_DIR) at the CA that signed the registry's \
                 certificate, or use --tls-skip-verify if you accept the risk"
                    .into(),
            ),
            RegistryError::Unauthorized {
                had_credentials: true,
                ..
            } => Some("check the login and password (or token) given for this registry".into()),
            RegistryError::Unauthorized { .. } => Some(
                "give credentials (--source-login/--source-password or \
                 --registry-login/--registry-password), or log in with `docker login`/`podman login`"
                    .into(),
            ),
            RegistryError::Denied { .. } => {
                Some("the account lacks permission for this repository; ask the registry admin".into())
            }
            RegistryError::NotFound { .. } => {
                Some("check the repository path and tag (`skopeo list-tags` lists tags)".into())
            }
            RegistryError::Status { detail, .. } if detail.contains("HTTPS server") => {
                Some("the registry speaks HTTPS: drop --insecure".into())
            }
            RegistryError::DigestMismatch { .. } => Some(
                "the source registry or something between (proxy, disk) corrupted the data; \
                 retry, and report it to the registry's admin if it persists"
                    .into(),
            ),
            RegistryError::Stalled { .. } => Some(
                "the registry or the network is stuck or very slow; run again to resume, or \
                 raise --stall-timeout for a slow line"
                    .into(),
            ),
            RegistryError::Damaged { .. } => Some(
                "copy the named file again from where it was made (the pull host), then run \
                 the same command again"
                    .into(),
            ),
            RegistryError::Store(StoreError::Io(_)) => {
                Some("check free space and permissions of the destination and --tmp-dir".into())
            }
            _ => None,
        }
}

/// The fix for a BundleError, when one is known.
pub fn bundle(e: &BundleError) -> Option<String> {
    match e {
            BundleError::NotABundle { .. } => {
                Some("point ferry at the directory that `ferry pull` wrote".into())
            }
            BundleError::Incomplete { .. } => Some(
                "copy the missing or damaged files again from the pull host (sizes are in bundle.json)"
                    .into(),
            ),
            BundleError::UnsafeEntry { .. } => Some(
                "this archive was not written by ferry or d8; do not push it, and check where it came from"
                    .into(),
            ),
            BundleError::Inconsistent { .. } => Some(
                "the bundle was changed after it was made: run `ferry verify` on it, and copy it \
                 again from the pull host"
                    .into(),
            ),
            BundleError::Exists { .. } => Some(
                "use --force to replace the archives of an earlier bundle in this directory"
                    .into(),
            ),
            _ => None,
        }
}

/// The fix for a SourceError, when one is known.
pub fn source(e: &SourceError) -> Option<String> {
    match e {
        SourceError::Suspended { .. } => Some(
            "the publisher paused these channels; try again later, or pull a version \
                 explicitly with --deckhouse-tag"
                .into(),
        ),
        SourceError::Registry(e) => registry(e),
        SourceError::Chart { source, .. } => chart(source),
        SourceError::NotAtMirrors { error, .. } => registry(error),
        SourceError::NoModuleCatalog { .. } => {
            Some("check --modules-path-suffix: where the modules live under the source".into())
        }
        SourceError::NoReleaseChannels { .. } => {
            Some("is --source the repository root (the path above release-channel)?".into())
        }
        SourceError::Mirror(MirrorError::Blocked { .. }) => Some(
            "the registries.conf named says this registry must not be read: remove \
                 `blocked = true` there, or read it through a mirror with --source-mirror"
                .into(),
        ),
        _ => None,
    }
}

/// The fix for a PullError, when one is known.
pub fn pull(e: &PullError) -> Option<String> {
    if e.is_disk_full() {
        return Some(
            "the disk is full: free some space (or use --tmp-dir on a bigger disk) and run \
                 the same command again; what is finished is kept"
                .into(),
        );
    }
    match e {
        PullError::Source(e) => source(e),
        PullError::Registry(e) => registry(e),
        PullError::Bundle(e) => bundle(e),
        PullError::Work(WorkError::Busy(_)) => {
            Some("wait for the other pull to end, or give this one its own --tmp-dir".into())
        }
        PullError::Work(WorkError::Unsafe { .. }) => Some(
            "remove it (ferry makes its own work directory), or give the pull another \
                 --tmp-dir"
                .into(),
        ),
        PullError::Work(_) => None,
        PullError::Trust(e) => trust(e),
        PullError::Refused { .. } => Some(
            "have those images signed at the source, or add --skip-unsigned to pull the others \
             without them"
                .into(),
        ),
        PullError::Unreadable { .. } => Some(
            "leave those items out (filters, image set entries), or fix them at the source".into(),
        ),
        PullError::TooManyManifestBytes { .. } => {
            Some("take less in one pull (filters, several image set files pulled apart)".into())
        }
        PullError::ForeignArchives { .. } => Some(
            "move those files out of the bundle directory, or pull into another directory".into(),
        ),
        PullError::Unselected { .. } => Some(
            "fix the selectors (`--dry-run` shows what each one found), or leave --strict \
                 out to take what the others select"
                .into(),
        ),
        PullError::Chart(e) => chart(e),
        PullError::Empty { .. } => {
            Some("check the module filters and component flags; `--dry-run` shows the plan".into())
        }
        PullError::NotEmpty { .. } => Some(
            "pull into an empty directory, or add --force to replace the archives this \
                 pull writes (other files are left alone)"
                .into(),
        ),
        PullError::NoSpace(_) => Some(
            "free some space, put the work directory on another disk with --tmp-dir, or \
                 take less (--no-modules, -e NAME, --since-version)"
                .into(),
        ),
        PullError::Incomplete { error, .. } => pull(error).or_else(|| {
            Some(
                "run the same command again: finished blobs are kept and only the rest is \
                     fetched"
                    .into(),
            )
        }),
    }
}

/// The fix for a PushError, when one is known.
pub fn push(e: &PushError) -> Option<String> {
    match e {
        PushError::Bundle(e) => bundle(e),
        PushError::Registry(e) => registry(e),
        PushError::Repository { repository, source } => match source.as_ref() {
            RegistryError::NotFound { .. } | RegistryError::Denied { .. } => {
                let project = repository.split('/').next().unwrap_or(repository);
                Some(format!(
                    "the registry would not create {repository}: on Harbor, Nexus or GitLab \
                         create the project '{project}' first and give this account push rights"
                ))
            }
            other => registry(other),
        },
        PushError::Immutable { .. } => Some(
            "the registry keeps tags immutable: remove the old tag there, or push with \
                 --no-overwrite to leave it (it is then reported as drifted)"
                .into(),
        ),
        PushError::Incomplete { first, .. } => push(first).or_else(|| {
            Some("run the same command again: what is at the target is not sent twice".into())
        }),
        PushError::ReadBack { .. } => {
            Some("something else writes to these repositories at the same time; push again".into())
        }
        PushError::BaseMissing { .. } => Some(
            "push the base bundle to this target first (or any later full bundle), or pull \
                 a full bundle without --since-bundle"
                .into(),
        ),
        PushError::NotMounted { .. } => Some(
            "allow cross-repository blob mounts on the registry, or push a full bundle \
                 (pulled without --since-bundle)"
                .into(),
        ),
        PushError::Conflicts { .. } => Some(
            "push without --modules-path-suffix, or with a path that no layout of the bundle \
             has already"
                .into(),
        ),
        PushError::Receipt { .. } => None,
        PushError::Trust(e) => trust(e),
        PushError::Refused { .. } => Some(
            "nothing was sent: check that this is the policy the bundle was pulled with (ferry \
             verify --verify-signatures POLICY names every image), or pull again with it"
                .into(),
        ),
    }
}

/// The fix for a TrustError, when one is known.
pub fn trust(e: &TrustError) -> Option<String> {
    match e {
        TrustError::WrongPassphrase { .. } => Some(
            "give the passphrase the key was made with (FERRY_KEY_PASSWORD or the prompt)".into(),
        ),
        TrustError::NoPassphrase { .. } => Some(
            "set FERRY_KEY_PASSWORD (e.g. read -rs FERRY_KEY_PASSWORD; export \
             FERRY_KEY_PASSWORD), or run ferry on a terminal"
                .into(),
        ),
        TrustError::Exists { .. } => {
            Some("choose another PREFIX, or move the old key pair away first".into())
        }
        TrustError::Policy { .. } => {
            Some("fix the field named above; containers-policy.json(5) describes the format".into())
        }
        TrustError::Unsigned { .. } => Some(
            "the pull host signs bundles with ferry pull --sign-key KEY; without --key the \
             bundle is checked by its sums only"
                .into(),
        ),
        TrustError::BadBundleSignature { .. } => Some(
            "do not use this bundle: copy it again from the pull host, and check that the .pub \
             given is the pull host's key"
                .into(),
        ),
        TrustError::Key { .. } | TrustError::File(_) => None,
    }
}

/// The fix for a CopyError, when one is known.
pub fn copy(e: &CopyError) -> Option<String> {
    match e {
        CopyError::Registry(e) => registry(e),
        CopyError::Layout(LayoutError::TagNotFound { .. }) => {
            Some("name one of the layout's tags after the last colon: oci:<dir>:<tag>".into())
        }
        CopyError::Store(StoreError::Io(_)) => {
            Some("check free space and permissions of the destination and --tmp-dir".into())
        }
        _ => None,
    }
}

/// The fix for a ChartError, when one is known.
pub fn chart(e: &ChartError) -> Option<String> {
    match e {
        ChartError::TooLarge { .. } => Some(
            "a chart this large is unusual: check the repository, or raise \
                 --chart-size-limit if it is expected"
                .into(),
        ),
        ChartError::Changed { .. } => Some(
            "the Helm repository replaced the chart file: run with --no-pull-resume to plan \
                 the pull again"
                .into(),
        ),
        ChartError::Fetch(e) => match e {
            RegistryError::Unauthorized { .. } | RegistryError::Denied { .. } => Some(
                "a Helm repository's login comes from Helm's repositories.yaml \
                     ($HELM_REPOSITORY_CONFIG, else ~/.config/helm/repositories.yaml): check \
                     its entry for this repository"
                    .into(),
            ),
            // The registry layer's other hints speak of registries (paths and tags,
            // --insecure); these two hold for a Helm repository as well.
            RegistryError::Stalled { .. } | RegistryError::Config(_) => registry(e),
            _ => None,
        },
        _ => None,
    }
}

/// What to do when `ferry serve` cannot start.
pub fn serve(e: &ServeError) -> Option<String> {
    match e {
        ServeError::Bundle { source, .. } => bundle(source),
        ServeError::Refused { .. } | ServeError::Unverified { .. } => Some(
            "copy the files named above again from the pull host, or pull again; \
             `ferry verify` checks the whole bundle"
                .into(),
        ),
        ServeError::Listen { .. } => {
            Some("pick a free port with --listen ADDR:PORT (ports below 1024 need root)".into())
        }
        ServeError::Tls { .. } => {
            Some("--tls-cert takes a PEM certificate chain, --tls-key its PEM private key".into())
        }
        ServeError::Conflict { .. }
        | ServeError::BaseMissing { .. }
        | ServeError::Htpasswd { .. }
        | ServeError::RootNeedsPrefix { .. } => None,
    }
}
