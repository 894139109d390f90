//! IP address management: choosing subnets that collide with nothing on the host,
//! and handing out addresses within them (never the network, broadcast, gateway or an
//! auxiliary address, and never one that is taken).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use berth_errdefs::{Error, Result};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

/// One subnet of a network (Docker's `IPAM.Config` entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    pub subnet: IpNet,
    pub gateway: IpAddr,
    /// Where dynamic addresses come from (the whole subnet when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<IpNet>,
    /// Addresses reserved by name (`--aux-address`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aux: BTreeMap<String, IpAddr>,
    /// The last address handed out: the next search starts after it, so a released
    /// address is not reused at once (as libnetwork's allocator does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<IpAddr>,
    /// The user gave this subnet but not its gateway (the first address): inspect
    /// leaves the gateway out, as dockerd shows what was given.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gateway_implied: bool,
}

/// An address pool for automatic subnets (dockerd's `--default-address-pool
/// base=…,size=…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub base: IpNet,
    pub size: u8,
}

/// dockerd's default pools: 172.17–31.0.0/16, then 192.168.0.0/16 in /20s.
pub fn default_pools() -> Vec<Pool> {
    vec![
        Pool { base: "172.17.0.0/16".parse().expect("pool"), size: 16 },
        Pool { base: "172.18.0.0/15".parse().expect("pool"), size: 16 },
        Pool { base: "172.20.0.0/14".parse().expect("pool"), size: 16 },
        Pool { base: "172.24.0.0/14".parse().expect("pool"), size: 16 },
        Pool { base: "172.28.0.0/14".parse().expect("pool"), size: 16 },
        Pool { base: "192.168.0.0/16".parse().expect("pool"), size: 20 },
    ]
}

/// Parse `base=10.10.0.0/16,size=24`.
pub fn parse_pool(s: &str) -> Result<Pool> {
    let mut base = None;
    let mut size = None;
    for kv in s.split(',') {
        match kv.split_once('=') {
            Some(("base", v)) => base = Some(v.parse::<IpNet>().map_err(|e| Error::invalid(format!("invalid base pool {v:?}: {e}")))?),
            Some(("size", v)) => size = Some(v.parse::<u8>().map_err(|_| Error::invalid(format!("invalid pool size {v:?}")))?),
            _ => return Err(Error::invalid(format!("invalid default address pool {s:?}: want base=CIDR,size=N"))),
        }
    }
    let (Some(base), Some(size)) = (base, size) else {
        return Err(Error::invalid(format!("invalid default address pool {s:?}: want base=CIDR,size=N")));
    };
    if size < base.prefix_len() || size > base.max_prefix_len() {
        return Err(Error::invalid(format!("invalid default address pool {s:?}: size {size} does not fit the base")));
    }
    Ok(Pool { base: base.trunc(), size })
}

/// The first subnet from `pools` that overlaps none of `taken` (other networks and the
/// host's routes).
pub fn choose_subnet(pools: &[Pool], taken: &[IpNet]) -> Result<IpNet> {
    for p in pools {
        let Ok(subnets) = p.base.subnets(p.size) else { continue };
        for s in subnets {
            if !taken.iter().any(|t| overlaps(t, &s)) {
                return Ok(s);
            }
        }
    }
    Err(Error::conflict(
        "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network",
    ))
}

pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// A unique-local IPv6 /64 for a network without a given one.
pub fn random_ula() -> IpNet {
    let r: [u8; 5] = rand::random();
    let segs = [0xfd00 | r[0] as u16, u16::from_be_bytes([r[1], r[2]]), u16::from_be_bytes([r[3], r[4]]), 0, 0, 0, 0, 0];
    IpNet::V6(Ipv6Net::new(Ipv6Addr::from(segs), 64).expect("/64"))
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_u128(v: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(v))
    } else {
        IpAddr::V4(Ipv4Addr::from(v as u32))
    }
}

/// The first usable host address of a subnet (the default gateway).
pub fn first_host(net: &IpNet) -> IpAddr {
    from_u128(to_u128(net.network()) + 1, net.network().is_ipv6())
}

impl Subnet {
    /// A subnet with its gateway (the first address unless given), checked as
    /// libnetwork checks a user's IPAM config.
    pub fn new(subnet: IpNet, gateway: Option<IpAddr>, ip_range: Option<IpNet>, aux: BTreeMap<String, IpAddr>) -> Result<Subnet> {
        let subnet = subnet.trunc();
        let hosts = subnet.max_prefix_len() - subnet.prefix_len();
        if hosts < 2 {
            return Err(Error::invalid(format!("invalid subnet {subnet}: too small for containers")));
        }
        let gateway = gateway.unwrap_or_else(|| first_host(&subnet));
        if !subnet.contains(&gateway) {
            return Err(Error::invalid(format!("no matching subnet for gateway {gateway}")));
        }
        if let Some(r) = ip_range {
            if !subnet.contains(&r.network()) || !subnet.contains(&r.broadcast()) {
                return Err(Error::invalid(format!("no matching subnet for range {r}")));
            }
        }
        for (name, ip) in &aux {
            if !subnet.contains(ip) {
                return Err(Error::invalid(format!("no matching subnet for aux-address {ip} ({name})")));
            }
        }
        Ok(Subnet { subnet, gateway, ip_range: ip_range.map(|r| r.trunc()), aux, last: None, gateway_implied: false })
    }

    fn reserved(&self, ip: IpAddr) -> bool {
        let v = to_u128(ip);
        let net = to_u128(self.subnet.network());
        // The network address, and the broadcast address of an IPv4 subnet.
        v == net
            || (ip.is_ipv4() && ip == self.subnet.broadcast())
            || ip == self.gateway
            || self.aux.values().any(|a| *a == ip)
    }

    /// Reserve `want` (a static address) or the next free address of the range.
    pub fn allocate(&mut self, taken: &BTreeMap<IpAddr, String>, want: Option<IpAddr>) -> Result<IpAddr> {
        if let Some(ip) = want {
            if !self.subnet.contains(&ip) {
                return Err(Error::invalid(format!(
                    "Invalid address {ip}: It does not belong to any of this network's subnets"
                )));
            }
            if self.reserved(ip) || taken.contains_key(&ip) {
                return Err(Error::conflict(format!("Address already in use: {ip}")));
            }
            return Ok(ip);
        }
        let range = self.ip_range.unwrap_or(self.subnet);
        let v6 = range.network().is_ipv6();
        let (lo, hi) = (to_u128(range.network()), to_u128(range.broadcast()));
        let start = self.last.map(to_u128).filter(|l| *l >= lo && *l < hi).map(|l| l + 1).unwrap_or(lo);
        // Search [start, hi] then [lo, start).
        let span = hi - lo + 1;
        // Big IPv6 ranges: the first million candidates are enough.
        let tries = span.min(1 << 20);
        for i in 0..tries {
            let v = lo + (start - lo + i) % span;
            let ip = from_u128(v, v6);
            if !self.reserved(ip) && !taken.contains_key(&ip) {
                self.last = Some(ip);
                return Ok(ip);
            }
        }
        Err(Error::conflict(format!("no available IPv{} addresses on this network's address pools", if v6 { 6 } else { 4 })))
    }
}

/// `--ip-range`-style parse with Docker's message.
pub fn parse_net(what: &str, s: &str) -> Result<IpNet> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| Error::invalid(format!("invalid {what}: {s}")))
}

/// The IPv4 network and prefix of an address in a subnet, as `(ip, prefix)`.
pub fn v4_of(net: &IpNet) -> Option<Ipv4Net> {
    match net {
        IpNet::V4(n) => Some(*n),
        IpNet::V6(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn chooses_the_first_free_pool() {
        let host: Vec<IpNet> = vec!["192.0.2.0/24".parse().unwrap(), "172.17.5.0/24".parse().unwrap()];
        assert_eq!(choose_subnet(&default_pools(), &host).unwrap().to_string(), "172.18.0.0/16");
        let p = parse_pool("base=10.10.0.0/16,size=24").unwrap();
        assert_eq!(choose_subnet(std::slice::from_ref(&p), &[]).unwrap().to_string(), "10.10.0.0/24");
        assert_eq!(choose_subnet(&[p], &["10.10.0.0/24".parse().unwrap()]).unwrap().to_string(), "10.10.1.0/24");
        assert!(parse_pool("base=10.0.0.0/16,size=8").is_err());
    }

    #[test]
    fn allocates_in_order_skipping_reserved_and_taken() {
        let mut aux = BTreeMap::new();
        aux.insert("router".to_owned(), ip("10.1.0.3"));
        let mut s = Subnet::new("10.1.0.0/29".parse().unwrap(), None, None, aux).unwrap();
        assert_eq!(s.gateway, ip("10.1.0.1"));
        let mut taken = BTreeMap::new();
        let a = s.allocate(&taken, None).unwrap();
        assert_eq!(a, ip("10.1.0.2"));
        taken.insert(a, "c1".to_owned());
        let b = s.allocate(&taken, None).unwrap();
        assert_eq!(b, ip("10.1.0.4"));
        taken.insert(b, "c2".to_owned());
        // Freed addresses are not reused at once.
        taken.remove(&a);
        assert_eq!(s.allocate(&taken, None).unwrap(), ip("10.1.0.5"));
        taken.insert(ip("10.1.0.5"), "c3".into());
        assert_eq!(s.allocate(&taken, None).unwrap(), ip("10.1.0.6"));
        taken.insert(ip("10.1.0.6"), "c4".into());
        assert_eq!(s.allocate(&taken, None).unwrap(), ip("10.1.0.2"));
        taken.insert(ip("10.1.0.2"), "c5".into());
        assert!(s.allocate(&taken, None).is_err(), "the /29 is full");
        assert!(s.allocate(&taken, Some(ip("10.1.0.4"))).unwrap_err().message().contains("Address already in use"));
        assert!(s.allocate(&taken, Some(ip("10.2.0.4"))).unwrap_err().message().contains("does not belong"));
    }

    #[test]
    fn bad_ipam_configs_are_refused() {
        assert!(Subnet::new("10.0.0.0/24".parse().unwrap(), Some(ip("10.0.1.1")), None, BTreeMap::new()).is_err());
        assert!(Subnet::new("10.0.0.0/24".parse().unwrap(), None, Some("10.0.1.0/28".parse().unwrap()), BTreeMap::new()).is_err());
        let r = Subnet::new("10.0.0.0/24".parse().unwrap(), None, Some("10.0.0.128/25".parse().unwrap()), BTreeMap::new()).unwrap();
        let mut r = r;
        assert_eq!(r.allocate(&BTreeMap::new(), None).unwrap(), ip("10.0.0.128"));
        assert!(random_ula().to_string().starts_with("fd"));
    }
}
