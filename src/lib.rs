//! ferry carries container images and OCI artifacts across an air gap: it pulls them from a
//! registry into a bundle of tar files and pushes a bundle into another registry.

pub mod allocator;
pub mod bundle;
pub mod cli;
pub mod copy;
pub mod digest;
pub mod file_error;
pub mod graph;
pub mod imageset;
pub mod layout;
pub mod list;
pub mod manifest;
pub mod parallel;
pub mod pull;
pub mod push;
pub mod reference;
pub mod referrer_tags;
pub mod registry;
pub mod report;
pub mod segment;
pub mod serve;
pub mod settings;
pub mod small_file;
pub mod source;
pub mod store;
pub mod tar_entries;
pub mod trust;
pub mod verify;
