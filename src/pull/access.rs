//! How a pull reaches each registry it reads: the transport flags for all, the `--source` login
//! for the source registry only, an image set's credentials and CA for the hosts it lists, and
//! the mirrors that stand in for source registries.

use std::collections::{BTreeMap, HashMap};

use crate::imageset::config::{Host, ImageSet};
use crate::registry::{ClientOptions, Credential, Mirrors, RegistryClient, RegistryError, Secret};
use crate::source::Plan;

/// Per registry, how to reach it.
#[derive(Debug, Clone)]
pub struct RegistryAccess {
    /// The transport flags, with the `--source` login (or none: the credential files).
    options: ClientOptions,
    /// The registry the `--source` login is for.
    source_registry: Option<String>,
    /// What the image set files say about hosts, by `host[:port]`.
    hosts: BTreeMap<String, Host>,
    /// The mirrors that stand in for source registries (`--source-mirror`, registries.conf).
    mirrors: Mirrors,
}

impl RegistryAccess {
    /// Access with `options` (whose credential is for `source_registry` only), the hosts the
    /// image sets list (where two name one host, the later set's word counts) and `mirrors`.
    pub fn new(
        options: ClientOptions,
        source_registry: Option<String>,
        image_sets: &[ImageSet],
        mirrors: Mirrors,
    ) -> Self {
        let hosts = image_sets
            .iter()
            .flat_map(|set| set.hosts.clone())
            .collect();
        RegistryAccess {
            options,
            source_registry,
            hosts,
            mirrors,
        }
    }

    /// The mirror rules in force.
    pub fn mirrors(&self) -> &Mirrors {
        &self.mirrors
    }

    /// How to reach `registry`: the transport flags (plain HTTP also where registries.conf says
    /// `insecure = true`); the `--source` login for the source registry; an image set's
    /// credentials and CA for the hosts it lists; else the docker and containers credential
    /// files. A mirror host is reached as any other host: with its own credentials, never those
    /// of the registry it stands in for.
    pub fn client_options(&self, registry: &str) -> ClientOptions {
        let mut options = self.options.clone();
        // registries.conf's `insecure = true` for a registry or mirror located at this host.
        options.transport.insecure |= self.mirrors.insecure(registry);
        if self.source_registry.as_deref() == Some(registry) {
            return options;
        }
        options.credential = None;
        if let Some(host) = self.hosts.get(registry) {
            options.credential = host.credential.as_ref().map(|value| match &host.username {
                Some(username) => Credential::Basic {
                    username: username.clone(),
                    password: Secret::new(value.clone()),
                },
                None => Credential::Bearer(Secret::new(value.clone())),
            });
            options.transport.roots_pem = host.ca_pem.clone();
        }
        options
    }

    /// A client for `repository` at `registry`.
    pub fn client(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<RegistryClient, RegistryError> {
        RegistryClient::new(registry, repository, self.client_options(registry))
    }

    /// A client for every registry `plan` reads blobs from.
    pub fn clients_of(
        &self,
        plan: &Plan,
    ) -> Result<HashMap<String, RegistryClient>, RegistryError> {
        let mut clients = HashMap::new();
        for image in &plan.images {
            if image.registry.is_empty() || clients.contains_key(&image.registry) {
                continue;
            }
            let client = self.client(&image.registry, &image.repository)?;
            clients.insert(image.registry.clone(), client);
        }
        Ok(clients)
    }
}

impl crate::imageset::Clients for RegistryAccess {
    fn client(&self, registry: &str) -> Result<RegistryClient, RegistryError> {
        RegistryAccess::client(self, registry, "")
    }

    fn mirrors(&self) -> &Mirrors {
        &self.mirrors
    }
}
