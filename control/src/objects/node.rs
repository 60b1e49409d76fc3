//! `v1` Node: its name and `status.addresses`, all that `nodePortLB` needs (Traefik balances a
//! NodePort Service over every Node's InternalIP addresses).

use serde::{Deserialize, Serialize};

use super::meta::ObjectMeta;

/// The address type Traefik uses for `nodePortLB` servers.
pub const NODE_INTERNAL_IP: &str = "InternalIP";

/// A Node object (cluster scoped: the store files it under the default namespace).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Status.
    #[serde(default)]
    pub status: NodeStatus,
}

impl Node {
    /// The node's InternalIP addresses, in the order the Node lists them.
    pub fn internal_ips(&self) -> impl Iterator<Item = &str> {
        self.status.addresses.iter().filter(|a| a.type_ == NODE_INTERNAL_IP).map(|a| a.address.as_str())
    }
}

/// `status` of a Node.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    /// Addresses reachable on the node.
    #[serde(default)]
    pub addresses: Vec<NodeAddress>,
}

/// One entry of `status.addresses`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeAddress {
    /// `InternalIP`, `ExternalIP`, `Hostname`, `InternalDNS` or `ExternalDNS`.
    #[serde(default, rename = "type")]
    pub type_: String,
    /// The address.
    #[serde(default)]
    pub address: String,
}
