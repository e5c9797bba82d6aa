//! Domain records shared by the server and the API: `Platform` and `Host` (plain data, no I/O).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::id::{CloudName, ComponentName, HostName, IsvName, PlatformName, TenantName};
use crate::spec::PlatformSpec;

/// A platform as the control plane knows it: the identity from its spec, the spec itself, and the revision of that spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Platform {
    /// Platform name, unique in the control plane.
    pub name: PlatformName,
    /// The isv that runs the platform.
    pub isv: IsvName,
    /// The tenant the platform serves.
    pub tenant: TenantName,
    /// Default cloud of the platform's hosts.
    pub cloud: CloudName,
    /// Human description from the spec.
    pub description: String,
    /// The spec the platform is declared by.
    pub spec: PlatformSpec,
    /// Revision of the spec, increasing by one with every accepted change.
    pub revision: u64,
}

/// A host as the control plane knows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct Host {
    /// Host name, unique within its platform.
    pub name: HostName,
    /// The platform the host belongs to.
    pub platform: PlatformName,
    /// The cloud the host runs in (the host's override or the platform's cloud).
    pub cloud: CloudName,
    /// Names of the components on the host, in spec order.
    pub components: Vec<ComponentName>,
}

impl Platform {
    /// The platform record for a (validated) spec at `revision`.
    pub fn from_spec(spec: PlatformSpec, revision: u64) -> Self {
        Platform {
            name: spec.platform.clone(),
            isv: spec.isv.clone(),
            tenant: spec.tenant.clone(),
            cloud: spec.cloud.clone(),
            description: spec.description.clone(),
            spec,
            revision,
        }
    }

    /// The platform's hosts with their effective cloud.
    pub fn hosts(&self) -> Vec<Host> {
        self.spec.hosts()
    }
}

impl PlatformSpec {
    /// The hosts declared by the spec, in spec order, with their effective cloud.
    pub fn hosts(&self) -> Vec<Host> {
        self.hosts
            .iter()
            .map(|host| Host {
                name: host.name.clone(),
                platform: self.platform.clone(),
                cloud: host.effective_cloud(&self.cloud).clone(),
                components: host.components.iter().map(|c| c.name.clone()).collect(),
            })
            .collect()
    }
}
