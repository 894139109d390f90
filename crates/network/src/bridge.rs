//! The bridge driver's devices: a Linux bridge per network holding the gateway
//! addresses, and a veth pair per container endpoint (one end on the bridge, the other
//! made as `ethN` in the container's namespace).

use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::Path;

use berth_errdefs::{Error, Result};

use crate::model::{format_mac, mac_for, parse_mac, Endpoint, Network};
use crate::netns;
use crate::nl::Netlink;

fn nl_err(what: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::internal(format!("{what}: {e}"))
}

fn write_sysctl(path: &str, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|e| Error::internal(format!("set {path}: {e}")))
}

/// Forwarding on, as dockerd turns it on for bridge networks.
pub fn enable_forwarding(ipv6: bool) -> Result<()> {
    if std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").map(|v| v.trim() != "1").unwrap_or(true) {
        write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
    }
    if ipv6 {
        let p = "/proc/sys/net/ipv6/conf/all/forwarding";
        if std::fs::read_to_string(p).map(|v| v.trim() != "1").unwrap_or(true) {
            write_sysctl(p, "1")?;
        }
    }
    Ok(())
}

/// The MTU of a bridge made without one (the kernel's default for a portless bridge).
const DEFAULT_MTU: u32 = 1500;
/// How many bridges of removed networks are kept for new ones.
const MAX_SPARES: usize = 4;
/// Name prefix of a kept bridge: `bsp-`, 4 hex digits naming the daemon (its nftables
/// table), 6 random ones (within IFNAMSIZ).
const SPARE_PREFIX: &str = "bsp-";

/// Bridges of removed networks, kept down and bare for the next networks to take.
/// Deleting a bridge holds the kernel's RTNL lock through RCU grace periods (40–60 ms
/// here, and concurrent deletions queue behind each other); taking it down, removing
/// its addresses and renaming it takes well under a millisecond, and so does giving
/// it a new network's name, MTU and addresses.
pub struct Spares {
    /// `bsp-` and this daemon's tag: the spares it may take and adopt after a crash
    /// (other daemons on the host keep theirs).
    prefix: String,
    names: std::sync::Mutex<Vec<String>>,
}

impl Spares {
    /// The spares of the daemon whose nftables table is `table`.
    pub fn new(table: &str) -> Spares {
        // FNV-1a: the same tag for the same table in every build.
        let h = table.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
        Spares { prefix: format!("{SPARE_PREFIX}{:04x}", h & 0xffff), names: Default::default() }
    }

    /// The bridge of a removed network (its veths are gone): kept as a spare, or
    /// deleted when enough are kept.
    pub fn retire(&self, name: &str) -> Result<()> {
        let mut nl = Netlink::open().map_err(nl_err("netlink"))?;
        let Some(idx) = nl.link_index(name).map_err(nl_err("look up bridge"))? else { return Ok(()) };
        if self.names.lock().unwrap().len() < MAX_SPARES {
            let spare = format!("{}{}", self.prefix, &hex::encode(rand::random::<[u8; 3]>()));
            let kept = nl
                .set_down(idx)
                .and_then(|_| nl.flush_addresses(idx))
                .and_then(|_| nl.rename(idx, &spare, DEFAULT_MTU));
            if kept.is_ok() {
                self.names.lock().unwrap().push(spare);
                return Ok(());
            }
            tracing::debug!(bridge = name, "keeping the bridge as a spare failed, deleting it: {kept:?}");
        }
        nl.del_link(idx).map_err(|e| Error::internal(format!("delete bridge {name}: {e}")))
    }

    /// A spare renamed to `name` with `mtu`, if one is left (another daemon on the host
    /// may have taken it: then the next, or none).
    fn take(&self, nl: &mut Netlink, name: &str, mtu: u32) -> Option<u32> {
        loop {
            let spare = self.names.lock().unwrap().pop()?;
            let Ok(Some(idx)) = nl.link_index(&spare) else { continue };
            if nl.rename(idx, name, mtu).is_ok() {
                return Some(idx);
            }
            let _ = nl.del_link(idx);
        }
    }

    /// Delete every spare (daemon shutdown).
    pub fn clear(&self) {
        let Ok(mut nl) = Netlink::open() else { return };
        let mine: Vec<String> = std::mem::take(&mut *self.names.lock().unwrap());
        for name in mine {
            if let Ok(Some(idx)) = nl.link_index(&name) {
                let _ = nl.del_link(idx);
            }
        }
    }

    /// Adopt the spares this daemon left behind when it was killed.
    pub fn adopt_leftovers(&self) {
        let Ok(mut nl) = Netlink::open() else { return };
        let Ok(links) = nl.links() else { return };
        let mut names = self.names.lock().unwrap();
        for l in links.into_iter().filter(|l| l.name.starts_with(&self.prefix) && l.master.is_none()) {
            if names.len() < MAX_SPARES {
                names.push(l.name);
            } else if let Ok(Some(idx)) = nl.link_index(&l.name) {
                let _ = nl.del_link(idx);
            }
        }
    }
}

/// Make sure the network's bridge exists, carries its gateway addresses and is up.
pub fn ensure_bridge(net: &Network, spares: &Spares) -> Result<()> {
    let mut nl = Netlink::open().map_err(nl_err("netlink"))?;
    let idx = match nl.link_index(&net.bridge).map_err(nl_err("look up bridge"))? {
        Some(i) => i,
        None => match spares.take(&mut nl, &net.bridge, if net.mtu > 0 { net.mtu } else { DEFAULT_MTU }) {
            Some(i) => i,
            None => {
                let mtu = (net.mtu > 0).then_some(net.mtu);
                nl.add_bridge(&net.bridge, mtu)
                    .map_err(|e| Error::internal(format!("create bridge {}: {e}", net.bridge)))?;
                nl.link_index(&net.bridge)
                    .map_err(nl_err("look up bridge"))?
                    .ok_or_else(|| Error::internal(format!("bridge {} vanished", net.bridge)))?
            }
        },
    };
    for s in &net.subnets {
        nl.add_address(idx, s.gateway, s.subnet.prefix_len())
            .map_err(|e| Error::internal(format!("add {}/{} to {}: {e}", s.gateway, s.subnet.prefix_len(), net.bridge)))?;
    }
    nl.set_up(idx).map_err(nl_err("bring the bridge up"))?;
    // Published ports answer on 127.0.0.1 through DNAT to the bridge.
    let _ = write_sysctl(&format!("/proc/sys/net/ipv4/conf/{}/route_localnet", net.bridge), "1");
    Ok(())
}

/// Delete a network's bridge (its veths are gone by then).
pub fn delete_bridge(name: &str) -> Result<()> {
    let mut nl = Netlink::open().map_err(nl_err("netlink"))?;
    if let Some(idx) = nl.link_index(name).map_err(nl_err("look up bridge"))? {
        nl.del_link(idx).map_err(|e| Error::internal(format!("delete bridge {name}: {e}")))?;
    }
    Ok(())
}

/// A veth name not in use: `veth` and 7 hex digits, as dockerd names them.
fn veth_name() -> String {
    let r: [u8; 4] = rand::random();
    format!("veth{}", &hex::encode(r)[..7])
}

/// Wire the namespace at `ns_path` into `net`: a veth pair, the container end named
/// `ep.ifname` with the endpoint's MAC and addresses (already allocated in `ep`), and
/// the default route when `gateway` says so. On failure nothing is left behind.
pub fn attach(net: &Network, ep: &mut Endpoint, ns_path: &Path, gateway: bool) -> Result<()> {
    let ns = std::fs::File::open(ns_path)
        .map_err(|e| Error::internal(format!("open network namespace {}: {e}", ns_path.display())))?;
    let host = veth_name();
    let mtu = (net.mtu > 0).then_some(net.mtu);
    let mac = match &ep.want_mac {
        Some(m) => parse_mac(m).ok_or_else(|| Error::invalid(format!("invalid MAC address: {m}")))?,
        None => mac_for(ep.ipv4),
    };
    let mut nl = Netlink::open().map_err(nl_err("netlink"))?;
    let bidx = nl
        .link_index(&net.bridge)
        .map_err(nl_err("look up bridge"))?
        .ok_or_else(|| Error::internal(format!("bridge {} is missing", net.bridge)))?;
    nl.add_veth(&host, bidx, &ep.ifname, ns.as_raw_fd(), mac, mtu)
        .map_err(|e| Error::internal(format!("create veth pair {host}: {e}")))?;
    let (ifname, v4, p4, g4, v6, p6, g6) = (ep.ifname.clone(), ep.ipv4, ep.prefix4, ep.gateway4, ep.ipv6, ep.prefix6, ep.gateway6);
    let link_local = ep.link_local.clone();
    let wired = netns::run_in(ns_path, move || {
        let mut nl = Netlink::open().map_err(nl_err("netlink in the container"))?;
        let idx = nl
            .link_index(&ifname)
            .map_err(nl_err("look up the container's veth"))?
            .ok_or_else(|| Error::internal(format!("the container's {ifname} is missing")))?;
        nl.set_up(idx).map_err(|e| Error::internal(format!("bring {ifname} up: {e}")))?;
        if let Some(ip) = v4 {
            nl.add_address(idx, ip, p4).map_err(|e| Error::internal(format!("add {ip}/{p4}: {e}")))?;
        }
        if let Some(ip) = v6 {
            nl.add_address(idx, ip, p6).map_err(|e| Error::internal(format!("add {ip}/{p6}: {e}")))?;
        }
        for ip in link_local {
            let prefix = if ip.is_ipv4() { 16 } else { 64 };
            nl.add_address(idx, ip, prefix).map_err(|e| Error::internal(format!("add link-local {ip}/{prefix}: {e}")))?;
        }
        if gateway {
            for gw in [g4, g6].into_iter().flatten() {
                nl.add_default_route(gw, idx).map_err(|e| Error::internal(format!("default route via {gw}: {e}")))?;
            }
        }
        Ok(())
    });
    if let Err(e) = wired {
        if let Ok(Some(i)) = nl.link_index(&host) {
            let _ = nl.del_link(i);
        }
        return Err(e);
    }
    ep.mac = format_mac(&mac);
    ep.host_veth = host;
    Ok(())
}

/// Remove an endpoint's veth pair (when its namespace outlives the endpoint:
/// `network disconnect`); deleting the namespace removes it too.
pub fn detach(ep: &Endpoint) -> Result<()> {
    if ep.host_veth.is_empty() {
        return Ok(());
    }
    let mut nl = Netlink::open().map_err(nl_err("netlink"))?;
    if let Some(i) = nl.link_index(&ep.host_veth).map_err(nl_err("look up veth"))? {
        match nl.del_link(i) {
            Err(e) if e.raw_os_error() != Some(libc::ENODEV) => {
                return Err(Error::internal(format!("delete {}: {e}", ep.host_veth)))
            }
            _ => {}
        }
    }
    Ok(())
}

/// The first IPv4 address (with its prefix) of the link called `name`, if it exists
/// and has one.
pub fn existing_ipv4(name: &str) -> Option<ipnet::Ipv4Net> {
    let mut nl = Netlink::open().ok()?;
    let idx = nl.link_index(name).ok()??;
    let (ip, len) = nl.ipv4_addresses(idx).ok()?.into_iter().next()?;
    ipnet::Ipv4Net::new(ip, len).ok()
}

/// The host's routed prefixes, to keep new subnets clear of them.
pub fn host_routes() -> Vec<ipnet::IpNet> {
    Netlink::open().and_then(|mut nl| nl.routes()).unwrap_or_default()
}

/// The IPv4 addresses of the host's interfaces (published ports listen on them).
pub fn is_host_address(ip: IpAddr) -> bool {
    std::net::UdpSocket::bind((ip, 0)).is_ok()
}
