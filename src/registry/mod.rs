//! A client for OCI distribution registries: transport, authentication, manifests, tags,
//! blob downloads and uploads, and the transfer engine writing images. It knows nothing of
//! bundles or products.

mod auth;
mod blobs;
mod client;
pub mod credentials;
mod error;
mod manifests;
pub mod mirrors;
mod pages;
mod referrers;
pub mod registries_conf;
mod tags;
mod transfer;
mod transport;
mod upload_body;
mod uploads;

pub use auth::Scope;
pub use blobs::ProgressFn;
pub use client::{ClientOptions, RegistryClient, RetryPolicy};
pub use credentials::{Credential, Secret};
pub use error::{RegistryError, Target};
pub use mirrors::{MirrorError, Mirrors, SourceMirror};
pub use transfer::{PlaceError, Placed, Transfer};
pub use transport::{TransportOptions, http_client};
pub use uploads::{BodySize, Mount, UploadMode};
