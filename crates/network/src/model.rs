//! What berth records about networks and endpoints.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::ipam::Subnet;

/// Drivers berth implements.
pub const BRIDGE: &str = "bridge";
pub const HOST: &str = "host";
pub const NULL: &str = "null";

/// Bridge driver options (as dockerd names them).
pub const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";
pub const OPT_MTU: &str = "com.docker.network.driver.mtu";
pub const OPT_ICC: &str = "com.docker.network.bridge.enable_icc";
pub const OPT_MASQUERADE: &str = "com.docker.network.bridge.enable_ip_masquerade";
pub const OPT_HOST_BINDING: &str = "com.docker.network.bridge.host_binding_ipv4";
pub const OPT_DEFAULT_BRIDGE: &str = "com.docker.network.bridge.default_bridge";
/// IPv6 on or off as a driver option (compose files set it beside `enable_ipv6`);
/// when given it decides, as in dockerd.
pub const OPT_ENABLE_IPV6: &str = "com.docker.network.enable_ipv6";
/// Options a bridge network accepts; anything else is refused.
pub const BRIDGE_OPTIONS: [&str; 7] =
    [OPT_BRIDGE_NAME, OPT_MTU, OPT_ICC, OPT_MASQUERADE, OPT_HOST_BINDING, OPT_DEFAULT_BRIDGE, OPT_ENABLE_IPV6];

/// A network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    /// 64 hex digits.
    pub id: String,
    pub name: String,
    pub driver: String,
    /// RFC 3339.
    pub created: String,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub enable_ipv6: bool,
    /// As given (none, or a map, maybe empty: dockerd shows null and `{}` apart).
    #[serde(default)]
    pub ipam_options: Option<BTreeMap<String, String>>,
    /// IPv4 subnets first, then IPv6.
    #[serde(default)]
    pub subnets: Vec<Subnet>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The Linux bridge (bridge driver).
    #[serde(default)]
    pub bridge: String,
    #[serde(default)]
    pub mtu: u32,
    /// Containers on it may talk to each other.
    #[serde(default = "yes")]
    pub icc: bool,
    #[serde(default = "yes")]
    pub masquerade: bool,
    /// The host address published ports bind to when the client names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_binding: Option<IpAddr>,
    /// Addresses handed out: address → owner (a container id).
    #[serde(default)]
    pub allocated: BTreeMap<IpAddr, String>,
    /// `bridge`, `host` and `none`: made by berthd, never removed.
    #[serde(default)]
    pub predefined: bool,
}

fn yes() -> bool {
    true
}

impl Network {
    pub fn is_bridge(&self) -> bool {
        self.driver == BRIDGE
    }

    /// The default `bridge` network: containers on it resolve no names (only
    /// /etc/hosts and legacy links), as with Docker.
    pub fn is_default_bridge(&self) -> bool {
        self.predefined && self.driver == BRIDGE
    }

    pub fn subnet_v4(&self) -> Option<&Subnet> {
        self.subnets.iter().find(|s| s.subnet.network().is_ipv4())
    }

    pub fn subnet_v6(&self) -> Option<&Subnet> {
        self.subnets.iter().find(|s| s.subnet.network().is_ipv6())
    }

    /// Ids of the containers with an address here.
    pub fn owners(&self) -> Vec<String> {
        let mut v: Vec<String> = self.allocated.values().cloned().collect();
        v.sort();
        v.dedup();
        v
    }
}

/// One container on one network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub network_id: String,
    /// The network's name when the container joined.
    pub network: String,
    pub endpoint_id: String,
    /// The interface in the container (`eth0`, `eth1`...).
    pub ifname: String,
    /// The host end of its veth pair.
    #[serde(default)]
    pub host_veth: String,
    #[serde(default)]
    pub mac: String,
    #[serde(default)]
    pub ipv4: Option<IpAddr>,
    #[serde(default)]
    pub prefix4: u8,
    #[serde(default)]
    pub gateway4: Option<IpAddr>,
    #[serde(default)]
    pub ipv6: Option<IpAddr>,
    #[serde(default)]
    pub prefix6: u8,
    #[serde(default)]
    pub gateway6: Option<IpAddr>,
    /// Network-scoped names (`--network-alias`, compose service names).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Legacy links: `container:alias`.
    #[serde(default)]
    pub links: Vec<String>,
    /// Static addresses the client asked for (`--ip`, `--ip6`).
    #[serde(default)]
    pub want_ipv4: Option<IpAddr>,
    #[serde(default)]
    pub want_ipv6: Option<IpAddr>,
    /// A MAC address the client asked for.
    #[serde(default)]
    pub want_mac: Option<String>,
    /// Link-local addresses the client asked for (`--link-local-ip`), given to the
    /// container's interface beside its own (a /16 for IPv4, a /64 for IPv6, as dockerd).
    #[serde(default)]
    pub link_local: Vec<IpAddr>,
}

impl Endpoint {
    /// Is it wired up (addresses assigned)?
    pub fn is_active(&self) -> bool {
        self.ipv4.is_some() || self.ipv6.is_some()
    }

    /// Forget what start assigned (at stop), keeping what the client asked for.
    pub fn deactivate(&mut self) {
        self.endpoint_id.clear();
        self.ifname.clear();
        self.host_veth.clear();
        self.mac.clear();
        self.ipv4 = None;
        self.prefix4 = 0;
        self.gateway4 = None;
        self.ipv6 = None;
        self.prefix6 = 0;
        self.gateway6 = None;
    }
}

/// Docker's MAC for an IPv4 address: `02:42` then the address's four bytes.
pub fn mac_for(ip: Option<IpAddr>) -> [u8; 6] {
    match ip {
        Some(IpAddr::V4(a)) => {
            let o = a.octets();
            [0x02, 0x42, o[0], o[1], o[2], o[3]]
        }
        _ => {
            let r: [u8; 4] = rand::random();
            [0x02, 0x42, r[0], r[1], r[2], r[3]]
        }
    }
}

pub fn format_mac(m: &[u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return None;
    }
    let mut out = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        out[i] = u8::from_str_radix(p, 16).ok()?;
    }
    // Unicast only.
    (out[0] & 1 == 0).then_some(out)
}

/// A new random 64-hex-digit id.
pub fn new_id() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_as_docker_makes_them() {
        assert_eq!(format_mac(&mac_for(Some("172.17.0.2".parse().unwrap()))), "02:42:ac:11:00:02");
        assert_eq!(parse_mac("02:42:ac:11:00:02"), Some([2, 0x42, 0xac, 0x11, 0, 2]));
        assert_eq!(parse_mac("01:00:5e:00:00:01"), None, "multicast");
        assert_eq!(parse_mac("nope"), None);
    }
}
