//! Flags, environment and defaults resolved into the settings the commands run with, in one
//! place, so nothing below the commands knows the command line.

use std::path::PathBuf;

use crate::bundle::{Base, BundleMetadata};
use crate::cli::{
    CopyArgs, GlobalArgs, LogFormatArg, PullArgs, PushArgs, ServeArgs, TransportArgs, VerifyArgs,
};
use crate::copy::{CopyOptions, Endpoint};
use crate::imageset::charts::ChartOptions;
use crate::imageset::config::ImageSet;
use crate::imageset::list::{ListedImage, parse_list};
use crate::pull::{PullOptions, RegistryAccess};
use crate::push::{Aliases, PushOptions};
use crate::reference::Reference;
use crate::registry::registries_conf::ConfigFiles;
use crate::registry::{ClientOptions, Credential, Mirrors, Secret, TransportOptions, UploadMode};
use crate::serve::{Limits, LogFormat, ServeOptions, ServedBundle, TlsFiles};
use crate::source::description::DEFAULT_LAYOUT;
use crate::source::{Description, Request, SourceError, SourceRoot, Take};
use crate::trust::{Policy, PrivateKey, PublicKey, TrustError, check_bundle_signature};
use crate::verify::VerifyOptions;

/// Why a command's settings cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A flag, a layout or an image set that cannot be used.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A key, a policy or a bundle signature that cannot be used or does not hold.
    #[error(transparent)]
    Trust(#[from] TrustError),
}

/// The environment variable a key's passphrase is read from.
pub const PASSPHRASE_VAR: &str = "FERRY_KEY_PASSWORD";

/// The passphrase of the encrypted key `path`: `FERRY_KEY_PASSWORD`, else asked on the
/// terminal (never echoed, never printed).
pub fn key_passphrase(path: &std::path::Path) -> Result<zeroize::Zeroizing<String>, String> {
    if let Some(value) = std::env::var_os(PASSPHRASE_VAR) {
        return value
            .into_string()
            .map(zeroize::Zeroizing::new)
            .map_err(|_| format!("{PASSPHRASE_VAR} is not UTF-8"));
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Err(format!(
            "set {PASSPHRASE_VAR}, or run on a terminal to be asked"
        ));
    }
    rpassword::prompt_password(format!("passphrase for {}: ", path.display()))
        .map(zeroize::Zeroizing::new)
        .map_err(|e| format!("cannot read it from the terminal: {e}"))
}

/// The passphrase for a new key: `FERRY_KEY_PASSWORD`, else asked twice on the terminal.
pub fn new_key_passphrase(key: &std::path::Path) -> Result<zeroize::Zeroizing<String>, TrustError> {
    let no = |reason: String| TrustError::NoPassphrase {
        path: key.to_path_buf(),
        reason,
    };
    if std::env::var_os(PASSPHRASE_VAR).is_some() {
        return key_passphrase(key).map_err(no);
    }
    let first = key_passphrase(key).map_err(no)?;
    let again = rpassword::prompt_password("the same passphrase again: ")
        .map(zeroize::Zeroizing::new)
        .map_err(|e| no(format!("cannot read it from the terminal: {e}")))?;
    if first != again {
        return Err(no("the two passphrases differ".into()));
    }
    Ok(first)
}

/// `ferry verify` arguments: the public key and the policy read before the bundle is.
pub fn verify_options(args: &VerifyArgs) -> Result<VerifyOptions, TrustError> {
    Ok(VerifyOptions {
        gost: args.gost,
        key: args.key.as_deref().map(PublicKey::read).transpose()?,
        policy: args
            .verify_signatures
            .as_deref()
            .map(Policy::load)
            .transpose()?,
    })
}

/// Reads a signing key (`--sign-key`), asking for its passphrase only when it is encrypted.
pub fn sign_key(path: &std::path::Path) -> Result<PrivateKey, TrustError> {
    PrivateKey::read(path, &mut || key_passphrase(path))
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// An indicatif bar (stderr is a terminal).
    Bar,
    /// Plain lines (not a terminal, `--no-progress`, or `--verbose`).
    Plain,
    /// Warnings and errors only (`--quiet`).
    Quiet,
}

/// Picks the progress style: bars only on a terminal, and not with `--verbose`, whose log lines
/// would tear them.
pub fn progress(global: &GlobalArgs, stderr_is_terminal: bool) -> Progress {
    if global.quiet {
        Progress::Quiet
    } else if global.no_progress || global.verbose > 0 || !stderr_is_terminal {
        Progress::Plain
    } else {
        Progress::Bar
    }
}

/// Settings of `ferry copy`.
#[derive(Debug, Clone)]
pub struct CopySettings {
    /// What to copy.
    pub source: Endpoint,
    /// Where to.
    pub destination: Endpoint,
    /// How.
    pub options: CopyOptions,
}

fn transport(args: &TransportArgs) -> TransportOptions {
    TransportOptions {
        insecure: args.insecure,
        tls_skip_verify: args.tls_skip_verify,
        stall_timeout: std::time::Duration::from_secs(args.stall_timeout),
        roots_pem: None,
    }
}

fn credential(login: &Option<String>, password: &Option<String>) -> Option<Credential> {
    match (login, password) {
        (Some(username), Some(password)) => Some(Credential::Basic {
            username: username.clone(),
            password: Secret::new(password.clone()),
        }),
        _ => None,
    }
}

impl CopySettings {
    /// Resolves `ferry copy` arguments.
    pub fn from_args(args: CopyArgs) -> Self {
        let transport = transport(&args.transport);
        CopySettings {
            options: CopyOptions {
                source: ClientOptions {
                    transport: transport.clone(),
                    credential: credential(
                        &args.source_login.source_login,
                        &args.source_login.source_password,
                    ),
                    ..ClientOptions::default()
                },
                destination: ClientOptions {
                    transport,
                    credential: credential(
                        &args.registry_login.registry_login,
                        &args.registry_login.registry_password,
                    ),
                    ..ClientOptions::default()
                },
                concurrency: usize::from(args.concurrency),
                tmp_dir: args.tmp_dir,
                upload_mode: args
                    .upload_chunk_size
                    .map_or(UploadMode::Monolithic, UploadMode::Chunked),
            },
            source: args.source,
            destination: args.destination,
        }
    }
}

/// Settings of `ferry pull`.
#[derive(Debug, Clone)]
pub struct PullSettings {
    /// How the pull runs.
    pub options: PullOptions,
    /// Print the plan only.
    pub dry_run: bool,
    /// Print the plan as JSON.
    pub json: bool,
}

impl PullSettings {
    /// Resolves `ferry pull` arguments; a layout description that cannot be used is an error
    /// in the command line (exit code 2).
    pub fn from_args(args: PullArgs) -> Result<Self, SettingsError> {
        // Keys and policies first: a wrong passphrase is said before anything else is done.
        let sign_key = args.sign_key.as_deref().map(sign_key).transpose()?;
        let signature_policy = args
            .verify_signatures
            .as_deref()
            .map(Policy::load)
            .transpose()?;
        Ok(Self::with_trust(args, sign_key, signature_policy)?)
    }

    /// The rest of [`PullSettings::from_args`], once the key and the policy are read.
    fn with_trust(
        args: PullArgs,
        sign_key: Option<PrivateKey>,
        signature_policy: Option<Policy>,
    ) -> Result<Self, SourceError> {
        let description = Description::load(&args.layout)?;
        let credential = match &args.license {
            Some(token) => Some(Credential::Basic {
                username: "license-token".into(),
                password: Secret::new(token.clone()),
            }),
            None => credential(
                &args.source_login.source_login,
                &args.source_login.source_password,
            ),
        };
        let image_sets = args
            .images
            .iter()
            .map(|file| ImageSet::load(file, !args.no_envsubst))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SourceError::Usage(e.to_string()))?;
        let (image_list, list_text) = match &args.images_from_list {
            None => (Vec::new(), String::new()),
            Some(file) => {
                let text = read_list(file).map_err(SourceError::Usage)?;
                let images = parse_list(&text)
                    .map_err(|e| SourceError::Usage(format!("{}: {e}", file.display())))?;
                (images, text)
            }
        };
        // Mirrors: the command line's, then containers' registries.conf files. A registry
        // they block is refused here, before any request.
        let mirrors = Mirrors::new(&args.source_mirror, ConfigFiles::from_env().load()?);
        let asked = asked_names(args.source.as_ref(), &image_sets, &image_list);
        for name in &asked {
            mirrors.sources(name)?;
        }
        // Without a source there is no platform layout to take anything from.
        let layout = args.source.is_some();
        let request = Request {
            platform: layout && !args.no_platform,
            modules: layout && (!args.no_modules || !args.include.is_empty()),
            security: layout && !args.no_security_db,
            only_extra_images: args.only_extra_images,
            since_version: args.since_version,
            platform_tag: args.deckhouse_tag,
            include: args.include,
            exclude: args.exclude,
            modules_path_suffix: args.modules_path_suffix,
            take: Take {
                platforms: {
                    let mut platforms = args.platforms.clone();
                    platforms.sort();
                    platforms.dedup();
                    platforms
                },
                // Signatures are referrers: a policy needs them found, and they travel along.
                referrers: args.include_referrers || args.verify_signatures.is_some(),
            },
        };
        let sets_record: Vec<serde_json::Value> = args
            .images
            .iter()
            .map(|file| {
                serde_json::json!({
                    "file": file.display().to_string(),
                    "sha256": std::fs::read(file)
                        .map(|b| crate::digest::Digest::of(&b).hex().to_string())
                        .unwrap_or_default(),
                })
            })
            .collect();
        if let Some(old) = &args.since_bundle {
            // With --force the new archives would replace the very files the base holds.
            let old_dir = if old.is_dir() {
                old.clone()
            } else {
                // A bare `bundle.json` is in the current directory.
                match old.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
                    _ => PathBuf::from("."),
                }
            };
            let same = |a: &std::path::Path, b: &std::path::Path| matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b);
            // The same file under another name (a hard link) is the same base too.
            let same_file = |a: &std::path::Path, b: &std::path::Path| {
                use std::os::unix::fs::MetadataExt;
                matches!((std::fs::metadata(a), std::fs::metadata(b)),
                    (Ok(a), Ok(b)) if (a.dev(), a.ino()) == (b.dev(), b.ino()))
            };
            let old_file = if old.is_dir() {
                old.join(crate::bundle::metadata::BUNDLE_FILE)
            } else {
                old.clone()
            };
            let written = args.dir.join(crate::bundle::metadata::BUNDLE_FILE);
            if same(&old_dir, &args.dir) || same_file(&old_file, &written) {
                return Err(SourceError::Usage(format!(
                    "--since-bundle {} is the bundle directory being written; pull the new \
                     bundle into another directory",
                    old.display()
                )));
            }
        }
        let since_bundle = args
            .since_bundle
            .as_deref()
            .map(Base::read)
            .transpose()
            .map_err(|e| SourceError::Usage(format!("--since-bundle: {e}")))?;
        let mut request_record = serde_json::json!({
            "source": args.source.as_ref().map(|s| s.to_string()),
            "image_sets": sets_record,
            "images_from_list": (!list_text.is_empty())
                .then(|| crate::digest::Digest::of(list_text.as_bytes()).hex().to_string()),
            "no_envsubst": args.no_envsubst,
            "layout": args.layout,
            "layout_sha256": description.fingerprint,
            "platform": request.platform,
            "modules": request.modules,
            "security_databases": request.security,
            "only_extra_images": request.only_extra_images,
            "since_version": request.since_version.as_ref().map(|v| v.to_string()),
            "platform_tag": request.platform_tag,
            "include_modules": request.include.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
            "exclude_modules": request.exclude.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
            "modules_path_suffix": request.modules_path_suffix,
            "platforms": request.take.platforms.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            "include_referrers": request.take.referrers,
            "since_bundle": since_bundle.as_ref().map(|b| b.record.bundle_sha256.clone()),
        });
        // Another policy is another request: a rerun does not continue a plan it did not check.
        // Recorded only when given, so that pulls without one resume as before.
        if let Some(policy) = &signature_policy {
            request_record["signature_policy_sha256"] = policy.sha256.clone().into();
            request_record["skip_unsigned"] = args.skip_unsigned.into();
        }
        // Other mirrors are another request: a rerun starts over rather than mix sources.
        // Recorded only when a rule applies, so that pulls without mirrors resume as before.
        let applied = mirrors.applied(asked.iter().map(String::as_str));
        if !applied.is_empty() {
            request_record["source_mirrors"] =
                serde_json::to_value(applied).expect("rules serialise");
        }
        let tmp_dir = args.tmp_dir.unwrap_or_else(|| args.dir.join(".tmp"));
        let transport = transport(&args.transport);
        let access = RegistryAccess::new(
            ClientOptions {
                transport: transport.clone(),
                credential,
                ..ClientOptions::default()
            },
            args.source.as_ref().map(|s| s.registry.clone()),
            &image_sets,
            mirrors,
        );
        Ok(PullSettings {
            options: PullOptions {
                tmp_dir,
                dir: args.dir,
                source: args.source,
                image_sets,
                image_list,
                access,
                charts: ChartOptions {
                    transport,
                    size_limit: args.chart_size_limit,
                },
                description,
                request,
                chunk_size: args.chunk_size,
                gost: args.gost_digest,
                concurrency: usize::from(args.concurrency),
                force: args.force,
                no_resume: args.no_pull_resume,
                strict: args.strict,
                since_bundle,
                signature_policy,
                skip_unsigned: args.skip_unsigned,
                sign_key,
                request_record,
            },
            dry_run: args.dry_run,
            json: args.json,
        })
    }
}

/// The names a pull asks for, as mirror rules match them: the source root, every image set
/// entry's repository, every listed image with its tag or digest.
fn asked_names(
    source: Option<&SourceRoot>,
    image_sets: &[ImageSet],
    image_list: &[ListedImage],
) -> Vec<String> {
    let mut names: Vec<String> = source.iter().map(|s| s.to_string()).collect();
    for set in image_sets {
        for artifact in &set.artifacts {
            // A malformed source is reported when the set is resolved.
            if let Ok(r) = crate::reference::Reference::parse(&artifact.source) {
                names.push(format!("{}/{}", r.registry, r.repository));
            }
        }
    }
    for image in image_list {
        let separator = if image.digest.is_some() { '@' } else { ':' };
        names.push(format!(
            "{}/{}{separator}{}",
            image.registry,
            image.repository,
            image.reference()
        ));
    }
    names
}

/// An image list from a file, or from stdin for `-`; at most 16 MiB.
fn read_list(file: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    let mut text = String::new();
    let limit = 16 << 20;
    let result = if file.as_os_str() == "-" {
        std::io::stdin().take(limit + 1).read_to_string(&mut text)
    } else {
        std::fs::File::open(file).and_then(|f| f.take(limit + 1).read_to_string(&mut text))
    };
    result.map_err(|e| format!("{}: cannot read the image list: {e}", file.display()))?;
    if text.len() as u64 > limit {
        return Err(format!("{}: the image list is over 16 MiB", file.display()));
    }
    Ok(text)
}

/// `ferry push` arguments resolved into the push's options, the alias tags from the layout
/// description the bundle was pulled with.
pub fn push_options(args: PushArgs) -> Result<PushOptions, SettingsError> {
    // The bundle's signature is checked before anything else of the bundle is read, even the
    // layout name below.
    let key = args.key.as_deref().map(PublicKey::read).transpose()?;
    if let Some(key) = &key {
        check_bundle_signature(&args.dir, key)?;
    }
    let signature_policy = args
        .verify_signatures
        .as_deref()
        .map(Policy::load)
        .transpose()?;
    let description = push_description(&args.dir)?;
    Ok(PushOptions {
        target: Reference {
            registry: args.target.registry,
            repository: args.target.path,
            tag: None,
            digest: None,
        },
        dir: args.dir,
        client: ClientOptions {
            transport: transport(&args.transport),
            credential: credential(
                &args.registry_login.registry_login,
                &args.registry_login.registry_password,
            ),
            ..ClientOptions::default()
        },
        modules_path: args
            .modules_path_suffix
            .map(|s| s.trim_matches('/').to_string()),
        aliases: Aliases {
            channels: description.all_channels().map(str::to_string).collect(),
            catalog: description
                .modules
                .path_suffix
                .trim_matches('/')
                .to_string(),
        },
        concurrency: usize::from(args.concurrency),
        // A size of 0 asks for nothing: one PUT per blob, as without the flag.
        upload_mode: args
            .upload_chunk_size
            .filter(|&size| size > 0)
            .map_or(UploadMode::Monolithic, UploadMode::Chunked),
        no_overwrite: args.no_overwrite,
        receipt: args.receipt,
        dry_run: args.dry_run,
        key,
        signature_policy,
    })
}

/// `ferry serve` arguments resolved into the server's options; each bundle's module catalog
/// from the layout description it was pulled with, as for push.
pub fn serve_options(args: ServeArgs) -> Result<ServeOptions, SourceError> {
    let bundles = args
        .dirs
        .into_iter()
        .map(|dir| {
            let description = push_description(&dir)?;
            Ok(ServedBundle {
                catalog: description
                    .modules
                    .path_suffix
                    .trim_matches('/')
                    .to_string(),
                dir,
            })
        })
        .collect::<Result<Vec<_>, SourceError>>()?;
    Ok(ServeOptions {
        bundles,
        listen: args.listen,
        prefix: args
            .prefix
            .map(|p| p.trim_matches('/').to_string())
            .unwrap_or_default(),
        modules_path: args
            .modules_path_suffix
            .map(|s| s.trim_matches('/').to_string()),
        tls: args
            .tls_cert
            .zip(args.tls_key)
            .map(|(cert, key)| TlsFiles { cert, key }),
        htpasswd: args.htpasswd,
        verify: args.verify,
        log_format: match args.log_format {
            LogFormatArg::Common => LogFormat::Common,
            LogFormatArg::Json => LogFormat::Json,
        },
        limits: Limits {
            connections: usize::from(args.max_connections),
            idle_timeout: std::time::Duration::from_secs(args.idle_timeout),
            ..Limits::default()
        },
    })
}

/// The layout description a bundle is pushed by: the built-in one `bundle.json` says it was
/// pulled with, else the default. A description file named there stays on the pull side of the
/// gap, and a `d8 mirror pull` bundle names none. A `bundle.json` that cannot be read is left to
/// the push, which refuses the bundle naming the problem.
fn push_description(dir: &std::path::Path) -> Result<Description, SourceError> {
    let named = BundleMetadata::read_request(dir)
        .ok()
        .flatten()
        .and_then(|request| {
            // Only the layout's name is read out of the request kept as text.
            #[derive(serde::Deserialize)]
            struct Asked {
                layout: Option<String>,
            }
            serde_json::from_str::<Asked>(request.get()).ok()?.layout
        });
    named
        .as_deref()
        .and_then(Description::built_in)
        .unwrap_or_else(|| Description::load(DEFAULT_LAYOUT))
}
