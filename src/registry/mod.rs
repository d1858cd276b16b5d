//! A client for OCI distribution registries: transport, authentication, manifests, tags,
//! blob downloads and uploads, the transfer engine writing images, and, through the same
//! request loop, the files of web repositories (Helm repositories). It knows nothing of bundles
//! or products.

mod auth;
mod blobs;
mod body;
mod client;
pub mod credentials;
mod download;
mod error;
mod manifests;
pub mod mirror_rules;
pub mod mirrors;
mod pages;
mod referrers;
pub mod registries_conf;
mod small_blob;
mod tags;
mod transfer;
mod transport;
mod upload_body;
mod uploads;
mod web;

pub use auth::Scope;
pub use blobs::ProgressFn;
pub use client::{ClientOptions, RegistryClient, RetryPolicy};
pub use credentials::{Credential, Secret};
pub use error::{RegistryError, Target};
pub use mirror_rules::{MirrorError, SourceMirror};
pub use mirrors::Mirrors;
pub use transfer::{PlaceError, Placed, Transfer};
pub use transport::TransportOptions;
pub use uploads::{BodySize, Mount, UploadMode};
pub use web::{WebClient, WebFile, WebRepository};
