//! [`Networks`]: the daemon's networks — records in the metadata store, their bridges
//! and firewall table on the host, address allocation, published ports and the names
//! the embedded DNS server answers.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use berth_errdefs::{Error, Result};
use berth_metadata::{Db, Table};
use ipnet::IpNet;

use crate::firewall::{FwNetwork, PortMap};
use crate::ipam::{self, Pool, Subnet};
use crate::model::{self, Endpoint, Network, BRIDGE, HOST, NULL};
use crate::ports::{Binding, PortRequest, Reserved};
use crate::{bridge, firewall};

/// Daemon settings (dockerd's flags of the same names).
#[derive(Debug, Clone)]
pub struct Config {
    /// The default bridge's Linux name (`-b/--bridge`, default `berth0`).
    pub default_bridge: String,
    /// `--bip`: the default bridge's gateway address and subnet.
    pub bip: Option<IpNet>,
    /// `--fixed-cidr`: where the default bridge's containers get addresses.
    pub fixed_cidr: Option<IpNet>,
    /// `--default-address-pool`.
    pub pools: Vec<Pool>,
    /// `--mtu` (0: the kernel's default).
    pub mtu: u32,
    /// berth's nftables table (`inet`).
    pub table: String,
    /// `--ip`: the host address published ports bind to by default.
    pub default_bind: Option<IpAddr>,
    pub host_resolv: PathBuf,
    pub host_hosts: PathBuf,
}

/// What a `network create` asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: String,
    pub driver: String,
    pub internal: bool,
    pub attachable: bool,
    pub enable_ipv6: bool,
    pub ipam_driver: String,
    pub ipam_options: Option<BTreeMap<String, String>>,
    /// (subnet, ip range, gateway, aux addresses) as given.
    pub configs: Vec<PoolRequest>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// One IPAM pool as asked for: (subnet, ip range, gateway, aux addresses).
pub type PoolRequest = (Option<String>, Option<String>, Option<String>, BTreeMap<String, String>);

/// A container's entry on one network: (network id, names, addresses).
type NameEntry = (String, Vec<String>, Vec<IpAddr>);

struct State {
    nets: BTreeMap<String, Network>,
    /// Published ports by container: the rules, and the sockets holding them.
    ports: BTreeMap<String, Vec<PortMap>>,
    held: HashMap<String, Reserved>,
}

/// A container's names on the networks it is on (for the embedded DNS server).
#[derive(Debug, Clone, Default)]
struct Names {
    /// container id → (network id, names, addresses)
    by_container: HashMap<String, Vec<NameEntry>>,
    /// container id → upstream resolvers
    upstreams: HashMap<String, Vec<SocketAddr>>,
    /// container id → its legacy links on user-defined networks: names only it
    /// resolves, to another container's addresses on one network.
    links: HashMap<String, Vec<NameLink>>,
}

/// A legacy link as the embedded DNS server answers it (`--link db:database` on a
/// user-defined network: `database`, asked by the linking container, is `db`'s
/// address on that network). The target is looked up when the alias is asked, as
/// libnetwork does, so a link may name a container made or started after the
/// linking one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameLink {
    pub network_id: String,
    pub alias: String,
    /// The linked container as the link names it: a name it answers to on that
    /// network, or its id.
    pub target: String,
}

pub struct Networks {
    cfg: Config,
    db: Arc<Db>,
    state: Arc<Mutex<State>>,
    /// The nftables table still has rules of networks removed since it was last
    /// written (see [`Networks::remove`]).
    fw_stale: Arc<std::sync::atomic::AtomicBool>,
    /// A thread is about to rewrite it.
    fw_settling: Arc<std::sync::atomic::AtomicBool>,
    names: RwLock<Names>,
    /// Deletes the conntrack entries of addresses given back, in batches.
    purger: Arc<crate::conntrack::Purger>,
    /// Bridges of removed networks, for new networks to take.
    spares: bridge::Spares,
}

/// Host-wide lock while subnets are chosen and bridges get their addresses, so two
/// daemons on one host never pick the same subnet (released when dropped).
struct HostLock(#[allow(dead_code)] nix::fcntl::Flock<std::fs::File>);

impl HostLock {
    fn take() -> Result<HostLock> {
        let f = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open("/run/berth-networks.lock")?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
            .map(HostLock)
            .map_err(|(_, e)| Error::internal(format!("lock /run/berth-networks.lock: {e}")))
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// dockerd 20.10 takes any network name ("test 01", "é"); berthd all but those with a
/// `/`, which its routes could not address as one path segment, and control characters.
fn valid_name(n: &str) -> bool {
    !n.contains('/') && !n.chars().any(char::is_control)
}

impl Networks {
    /// Load the networks, make the predefined ones (`bridge`, `host`, `none`), and put
    /// every bridge and the firewall table in place.
    pub fn open(db: Arc<Db>, cfg: Config) -> Result<Networks> {
        let mut nets: BTreeMap<String, Network> = db.list::<Network>(Table::Networks)?.into_iter().collect();
        // Records from before IPAM options were kept as given wrote an empty map for
        // none; the predefined networks are given none.
        for n in nets.values_mut().filter(|n| n.predefined) {
            n.ipam_options = None;
        }
        let have = |d: &str, nets: &BTreeMap<String, Network>| nets.values().any(|n| n.predefined && n.driver == d);
        for (name, driver) in [("host", HOST), ("none", NULL)] {
            if !have(driver, &nets) {
                let n = Network {
                    id: model::new_id(),
                    name: name.into(),
                    driver: driver.into(),
                    created: now(),
                    internal: false,
                    attachable: false,
                    enable_ipv6: false,
                    ipam_options: None,
                    subnets: Vec::new(),
                    options: BTreeMap::new(),
                    labels: BTreeMap::new(),
                    bridge: String::new(),
                    mtu: 0,
                    icc: true,
                    masquerade: true,
                    host_binding: None,
                    allocated: BTreeMap::new(),
                    predefined: true,
                };
                db.put(Table::Networks, &n.id, &n)?;
                nets.insert(n.id.clone(), n);
            }
        }
        let spares = bridge::Spares::new(&cfg.table);
        let me = Networks {
            cfg,
            db,
            state: Arc::new(Mutex::new(State { nets, ports: BTreeMap::new(), held: HashMap::new() })),
            fw_stale: Default::default(),
            fw_settling: Default::default(),
            names: RwLock::new(Names::default()),
            purger: crate::conntrack::Purger::start(),
            spares,
        };
        me.spares.adopt_leftovers();
        me.ensure_default_bridge()?;
        let bridges: Vec<Network> = me.state.lock().unwrap().nets.values().filter(|n| n.is_bridge()).cloned().collect();
        if !bridges.is_empty() {
            bridge::enable_forwarding(bridges.iter().any(|n| n.enable_ipv6))?;
        }
        for n in &bridges {
            bridge::ensure_bridge(n, &me.spares)?;
        }
        me.apply_firewall(&me.state.lock().unwrap())?;
        Ok(me)
    }

    fn ensure_default_bridge(&self) -> Result<()> {
        if self.cfg.default_bridge == "none" {
            return Ok(());
        }
        let mut st = self.state.lock().unwrap();
        if let Some(n) = st.nets.values_mut().find(|n| n.is_default_bridge()) {
            // Flags may change between starts: --mtu applies to the bridge as it is.
            if self.cfg.mtu > 0 && n.mtu != self.cfg.mtu {
                n.mtu = self.cfg.mtu;
                let n = n.clone();
                self.db.put(Table::Networks, &n.id, &n)?;
            }
            return Ok(());
        }
        let _lock = HostLock::take()?;
        let taken = self.taken_subnets(&st);
        // A bridge of that name left by an earlier daemon (a wiped data root) keeps its
        // address, as dockerd keeps docker0's: choosing a new subnet would add a second
        // address to it on every such start, until the pools ran out.
        let existing = match self.cfg.bip {
            Some(_) => None,
            None => bridge::existing_ipv4(&self.cfg.default_bridge)
                .map(IpNet::V4)
                .filter(|a| !st.nets.values().any(|n| n.subnets.iter().any(|s| s.subnet.contains(&a.addr())))),
        };
        let (subnet, gateway) = match self.cfg.bip.or(existing) {
            Some(bip) => (bip.trunc(), Some(bip.addr())),
            None => (ipam::choose_subnet(&self.cfg.pools, &taken)?, None),
        };
        let s = Subnet::new(subnet, gateway, self.cfg.fixed_cidr, BTreeMap::new())?;
        let mut options = BTreeMap::new();
        options.insert(model::OPT_BRIDGE_NAME.to_owned(), self.cfg.default_bridge.clone());
        options.insert(model::OPT_DEFAULT_BRIDGE.to_owned(), "true".to_owned());
        options.insert(model::OPT_ICC.to_owned(), "true".to_owned());
        options.insert(model::OPT_MASQUERADE.to_owned(), "true".to_owned());
        options.insert(model::OPT_HOST_BINDING.to_owned(), "0.0.0.0".to_owned());
        options.insert(model::OPT_MTU.to_owned(), if self.cfg.mtu > 0 { self.cfg.mtu } else { 1500 }.to_string());
        let n = Network {
            id: model::new_id(),
            name: "bridge".into(),
            driver: BRIDGE.into(),
            created: now(),
            internal: false,
            attachable: false,
            enable_ipv6: false,
            ipam_options: None,
            subnets: vec![s],
            options,
            labels: BTreeMap::new(),
            bridge: self.cfg.default_bridge.clone(),
            mtu: self.cfg.mtu,
            icc: true,
            masquerade: true,
            host_binding: None,
            allocated: BTreeMap::new(),
            predefined: true,
        };
        bridge::ensure_bridge(&n, &self.spares)?;
        self.db.put(Table::Networks, &n.id, &n)?;
        st.nets.insert(n.id.clone(), n);
        Ok(())
    }

    /// Subnets other networks (of this daemon, and the host's routes) use.
    fn taken_subnets(&self, st: &State) -> Vec<IpNet> {
        let mut v: Vec<IpNet> = st.nets.values().flat_map(|n| n.subnets.iter().map(|s| s.subnet)).collect();
        v.extend(bridge::host_routes().into_iter().filter(|r| r.prefix_len() > 0));
        v
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Every network.
    pub fn list(&self) -> Vec<Network> {
        self.state.lock().unwrap().nets.values().cloned().collect()
    }

    /// A network by full id, name, or unique id prefix (dockerd's order).
    pub fn get(&self, key: &str) -> Result<Network> {
        let st = self.state.lock().unwrap();
        find(&st.nets, key).cloned()
    }

    /// The default bridge network.
    pub fn default_bridge(&self) -> Result<Network> {
        let st = self.state.lock().unwrap();
        st.nets.values().find(|n| n.is_default_bridge()).cloned().ok_or_else(|| Error::not_found("network bridge not found"))
    }

    /// `POST /networks/create`. Nothing is left behind when it fails.
    pub fn create(&self, req: CreateRequest) -> Result<Network> {
        if req.name.is_empty() {
            return Err(Error::invalid("network name must not be empty"));
        }
        if !valid_name(&req.name) {
            return Err(Error::invalid(format!(
                "invalid network name {:?}: berthd takes no '/' or control character in a network name",
                req.name
            )));
        }
        let driver = if req.driver.is_empty() { BRIDGE.to_owned() } else { req.driver.clone() };
        match driver.as_str() {
            BRIDGE => {}
            HOST | NULL => {
                return Err(Error::forbidden(format!("only one instance of \"{driver}\" network is allowed")))
            }
            "macvlan" | "ipvlan" | "overlay" => {
                return Err(Error::invalid(format!("berthd does not support the {driver} network driver (only bridge)")))
            }
            other => return Err(Error::not_found(format!("plugin \"{other}\" not found"))),
        }
        if !matches!(req.ipam_driver.as_str(), "" | "default") {
            return Err(Error::not_found(format!("plugin \"{}\" not found", req.ipam_driver)));
        }
        for k in req.options.keys() {
            if !model::BRIDGE_OPTIONS.contains(&k.as_str()) {
                return Err(Error::invalid(format!(
                    "unknown option {k:?} for the bridge driver (supported: {})",
                    model::BRIDGE_OPTIONS.join(", ")
                )));
            }
        }
        let flag = |k: &str, default: bool| -> Result<bool> {
            match req.options.get(k).map(String::as_str) {
                None => Ok(default),
                Some("true") | Some("1") => Ok(true),
                Some("false") | Some("0") => Ok(false),
                Some(v) => Err(Error::invalid(format!("invalid value {v:?} for option {k}"))),
            }
        };
        let enable_ipv6 = match req.options.get(model::OPT_ENABLE_IPV6) {
            None => req.enable_ipv6,
            Some(v) => go_bool(v)
                .ok_or_else(|| Error::invalid(format!("driver-opt {:?} is not a valid bool", model::OPT_ENABLE_IPV6)))?,
        };
        let icc = flag(model::OPT_ICC, true)?;
        let masquerade = flag(model::OPT_MASQUERADE, true)?;
        let mtu = match req.options.get(model::OPT_MTU) {
            Some(v) => v.parse::<u32>().map_err(|_| Error::invalid(format!("invalid MTU {v:?}")))?,
            None => self.cfg.mtu,
        };
        let host_binding = match req.options.get(model::OPT_HOST_BINDING) {
            Some(v) => Some(v.parse::<IpAddr>().map_err(|_| Error::invalid(format!("invalid host binding address {v:?}")))?),
            None => None,
        };
        let id = model::new_id();
        let bridge_name = match req.options.get(model::OPT_BRIDGE_NAME) {
            Some(b) => {
                if b.is_empty() || b.len() > 15 || b.contains('/') || b.contains(char::is_whitespace) {
                    return Err(Error::invalid(format!("invalid bridge name {b:?}")));
                }
                b.clone()
            }
            None => format!("br-{}", &id[..12]),
        };

        let mut st = self.state.lock().unwrap();
        if st.nets.values().any(|n| n.name == req.name) {
            return Err(Error::conflict(format!("network with name {} already exists", req.name)));
        }
        if st.nets.values().any(|n| n.bridge == bridge_name) {
            return Err(Error::conflict(format!("bridge name {bridge_name} is used by another network")));
        }
        let _lock = HostLock::take()?;
        let mut taken = self.taken_subnets(&st);
        let mut subnets: Vec<Subnet> = Vec::new();
        for (subnet, range, gw, aux) in &req.configs {
            let subnet = match subnet {
                Some(s) => ipam::parse_net("subnet", s)?,
                None => return Err(Error::invalid("an IPAM config needs a subnet")),
            };
            let range = range.as_deref().filter(|r| !r.is_empty()).map(|r| ipam::parse_net("ip-range", r)).transpose()?;
            let gw = gw
                .as_deref()
                .filter(|g| !g.is_empty())
                .map(|g| g.parse::<IpAddr>().map_err(|_| Error::invalid(format!("invalid gateway {g:?}"))))
                .transpose()?;
            let mut auxm = BTreeMap::new();
            for (k, v) in aux {
                auxm.insert(k.clone(), v.parse::<IpAddr>().map_err(|_| Error::invalid(format!("invalid aux address {v:?}")))?);
            }
            let mut s = Subnet::new(subnet, gw, range, auxm)?;
            s.gateway_implied = gw.is_none();
            if s.subnet.network().is_ipv6() && !enable_ipv6 {
                return Err(Error::invalid("an IPv6 subnet needs --ipv6 (EnableIPv6)"));
            }
            // A subnet asked for clashes with other networks' only, as in dockerd's
            // IPAM (the host's routes keep clear only the subnets berthd chooses: one
            // may ask for fe80::/64, which every interface routes).
            if st.nets.values().flat_map(|n| &n.subnets).map(|n| n.subnet).chain(subnets.iter().map(|n| n.subnet)).any(|t| ipam::overlaps(&t, &s.subnet)) {
                return Err(Error::forbidden("Pool overlaps with other one on this address space"));
            }
            taken.push(s.subnet);
            subnets.push(s);
        }
        if !subnets.iter().any(|s| s.subnet.network().is_ipv4()) {
            let s = ipam::choose_subnet(&self.cfg.pools, &taken)?;
            subnets.insert(0, Subnet::new(s, None, None, BTreeMap::new())?);
        }
        if enable_ipv6 && !subnets.iter().any(|s| s.subnet.network().is_ipv6()) {
            subnets.push(Subnet::new(ipam::random_ula(), None, None, BTreeMap::new())?);
        }
        subnets.sort_by_key(|s| s.subnet.network().is_ipv6());
        let options = req.options.clone();
        let n = Network {
            id: id.clone(),
            name: req.name.clone(),
            driver,
            created: now(),
            internal: req.internal,
            attachable: req.attachable,
            enable_ipv6,
            ipam_options: req.ipam_options.clone(),
            subnets,
            options,
            labels: req.labels.clone(),
            bridge: bridge_name.clone(),
            mtu,
            icc,
            masquerade,
            host_binding,
            allocated: BTreeMap::new(),
            predefined: false,
        };
        let made = (|| -> Result<()> {
            bridge::enable_forwarding(n.enable_ipv6)?;
            bridge::ensure_bridge(&n, &self.spares)?;
            st.nets.insert(id.clone(), n.clone());
            self.apply_firewall(&st)?;
            self.db.put(Table::Networks, &id, &n)
        })();
        if let Err(e) = made {
            st.nets.remove(&id);
            let _ = bridge::delete_bridge(&bridge_name);
            let _ = self.apply_firewall(&st);
            return Err(e);
        }
        Ok(n)
    }

    /// `DELETE /networks/{id}`: refused while a container holds an address on it.
    pub fn remove(&self, key: &str) -> Result<Network> {
        let mut st = self.state.lock().unwrap();
        let n = find(&st.nets, key)?.clone();
        if n.predefined {
            return Err(Error::forbidden(format!("{} is a pre-defined network and cannot be removed", n.name)));
        }
        if !n.allocated.is_empty() {
            return Err(Error::forbidden(format!(
                "error while removing network: network {} id {} has active endpoints",
                n.name, n.id
            )));
        }
        st.nets.remove(&n.id);
        // Not under the lock: the bridge is named after this network's id, nothing new
        // can take it meanwhile. It is kept as a spare for the next network (deleting
        // it would wait on the kernel for tens of ms).
        drop(st);
        if n.is_bridge() {
            self.spares.retire(&n.bridge)?;
            // Its rules go with the table's next rewrite, soon after and off this
            // request's path: rewriting the table waits on the kernel (~15 ms, and
            // removals of several networks would queue). Until then they name a bridge
            // that no longer exists and a subnet no interface has; the rewrite before a
            // network takes that subnet again, or before a port is published, is
            // immediate.
            self.fw_stale.store(true, std::sync::atomic::Ordering::SeqCst);
            self.settle_firewall();
        }
        self.db.delete(Table::Networks, &n.id)?;
        Ok(n)
    }

    /// Allocate the endpoint's addresses on its network, for `owner` (a container id).
    /// The allocation is committed before the address is used; restarts reconcile it
    /// with the running containers ([`Networks::reconcile`]).
    /// Addresses whose conntrack entries are still to be deleted are not handed out
    /// (new flows of their next owner would go with them); when nothing else is free,
    /// or one is asked for by name, the entries are deleted first.
    pub fn allocate(&self, owner: &str, ep: &mut Endpoint) -> Result<Network> {
        let mut pending = self.purger.pending();
        if [ep.want_ipv4, ep.want_ipv6].iter().flatten().any(|w| pending.contains(w)) {
            self.purger.flush();
            pending = self.purger.pending();
        }
        let orig = ep.clone();
        match self.allocate_once(owner, ep, &pending) {
            Err(e) if e.kind() == berth_errdefs::Kind::Conflict && !pending.is_empty() => {
                *ep = orig;
                self.purger.flush();
                self.allocate_once(owner, ep, &[])
            }
            r => r,
        }
    }

    /// One allocation attempt, `pending` addresses counted as taken.
    fn allocate_once(&self, owner: &str, ep: &mut Endpoint, pending: &[IpAddr]) -> Result<Network> {
        let mut st = self.state.lock().unwrap();
        let n = st.nets.get_mut(&ep.network_id).ok_or_else(|| Error::not_found(format!("network {} not found", ep.network)))?;
        if !n.is_bridge() {
            return Ok(n.clone());
        }
        let before = n.clone();
        let mut got = Vec::new();
        let result = (|| -> Result<()> {
            for i in 0..n.subnets.len() {
                let v6 = n.subnets[i].subnet.network().is_ipv6();
                let want = if v6 { ep.want_ipv6 } else { ep.want_ipv4 };
                if let Some(w) = want.filter(|w| !n.subnets[i].subnet.contains(w)) {
                    // A static address of the other subnet of the same family.
                    if n.subnets.iter().any(|s| s.subnet.contains(&w)) {
                        continue;
                    }
                }
                let ip = if pending.is_empty() || want.is_some() {
                    n.subnets[i].allocate(&n.allocated, want)?
                } else {
                    let mut taken = n.allocated.clone();
                    taken.extend(pending.iter().map(|ip| (*ip, String::new())));
                    n.subnets[i].allocate(&taken, want)?
                };
                n.allocated.insert(ip, owner.to_owned());
                got.push(ip);
                let s = &n.subnets[i];
                if v6 {
                    if ep.ipv6.is_none() {
                        ep.ipv6 = Some(ip);
                        ep.prefix6 = s.subnet.prefix_len();
                        ep.gateway6 = Some(s.gateway);
                    }
                } else if ep.ipv4.is_none() {
                    ep.ipv4 = Some(ip);
                    ep.prefix4 = s.subnet.prefix_len();
                    ep.gateway4 = Some(s.gateway);
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            *n = before;
            ep.deactivate();
            return Err(e);
        }
        let n = n.clone();
        self.db.update_lazy(|tx| tx.put(Table::Networks, &n.id, &n))?;
        Ok(n)
    }

    /// Give back every address `owner` holds, on every network (its container stopped
    /// or is gone).
    pub fn release_all(&self, owner: &str) -> Result<()> {
        let ids: Vec<String> = {
            let st = self.state.lock().unwrap();
            st.nets.values().filter(|n| n.allocated.values().any(|o| o == owner)).map(|n| n.id.clone()).collect()
        };
        for id in ids {
            self.release(&id, owner)?;
        }
        Ok(())
    }

    /// Give back every address `owner` holds on `network_id`. Their connection-tracking
    /// entries go too, soon after (see [`crate::conntrack`]).
    pub fn release(&self, network_id: &str, owner: &str) -> Result<()> {
        let mut st = self.state.lock().unwrap();
        let Some(n) = st.nets.get_mut(network_id) else { return Ok(()) };
        let freed: Vec<IpAddr> = n.allocated.iter().filter(|(_, o)| *o == owner).map(|(ip, _)| *ip).collect();
        n.allocated.retain(|_, o| o != owner);
        if !freed.is_empty() {
            let n = n.clone();
            self.db.update_lazy(|tx| tx.put(Table::Networks, &n.id, &n))?;
        }
        drop(st);
        self.purger.add(&freed);
        Ok(())
    }

    /// After a restart: every allocation whose owner is not in `live` (running
    /// containers and warm sandboxes) is freed, and every live endpoint's address is
    /// marked taken (a lazily committed allocation may have been lost in a crash).
    pub fn reconcile(&self, live: &HashMap<String, Vec<Endpoint>>) -> Result<()> {
        let mut st = self.state.lock().unwrap();
        let mut changed = Vec::new();
        for n in st.nets.values_mut() {
            let before = n.allocated.clone();
            n.allocated.retain(|_, owner| live.contains_key(owner));
            for (owner, eps) in live {
                for ep in eps.iter().filter(|e| e.network_id == n.id) {
                    for ip in [ep.ipv4, ep.ipv6].into_iter().flatten() {
                        n.allocated.insert(ip, owner.clone());
                    }
                }
            }
            if n.allocated != before {
                changed.push(n.clone());
            }
        }
        for n in changed {
            self.db.update_lazy(|tx| tx.put(Table::Networks, &n.id, &n))?;
        }
        Ok(())
    }

    /// Wire an allocated endpoint into the namespace at `netns`.
    pub fn connect(&self, ep: &mut Endpoint, netns: &Path, gateway: bool) -> Result<()> {
        let n = self.get(&ep.network_id)?;
        if !n.is_bridge() {
            return Ok(());
        }
        // An internal network gives no way out, not even a default route.
        bridge::attach(&n, ep, netns, gateway && !n.internal)
    }

    /// Unwire an endpoint whose namespace lives on (`network disconnect`).
    pub fn disconnect(&self, ep: &Endpoint) -> Result<()> {
        bridge::detach(ep)
    }

    /// Publish `owner`'s ports (to `container_ip`), holding the host ports.
    pub fn publish(&self, owner: &str, container_ip: IpAddr, default_ip: Option<IpAddr>, reqs: &[PortRequest]) -> Result<Vec<Binding>> {
        let (bindings, held) = crate::ports::reserve(reqs, default_ip.or(self.cfg.default_bind))?;
        let mut st = self.state.lock().unwrap();
        let maps: Vec<PortMap> = bindings
            .iter()
            .map(|b| PortMap {
                proto: b.proto,
                host_ip: b.host_ip.filter(|ip| !ip.is_unspecified()),
                host_port: b.host_port,
                container_ip,
                container_port: b.container_port,
            })
            .collect();
        st.ports.insert(owner.to_owned(), maps);
        if let Err(e) = self.apply_firewall(&st) {
            st.ports.remove(owner);
            let _ = self.apply_firewall(&st);
            return Err(e);
        }
        st.held.insert(owner.to_owned(), held);
        Ok(bindings)
    }

    /// Publish ports recorded before a restart again (rules and held sockets).
    pub fn republish(&self, owner: &str, container_ip: IpAddr, bindings: &[Binding]) -> Result<()> {
        let held = crate::ports::rehold(bindings);
        let mut st = self.state.lock().unwrap();
        st.ports.insert(
            owner.to_owned(),
            bindings
                .iter()
                .map(|b| PortMap {
                    proto: b.proto,
                    host_ip: b.host_ip.filter(|ip| !ip.is_unspecified()),
                    host_port: b.host_port,
                    container_ip,
                    container_port: b.container_port,
                })
                .collect(),
        );
        st.held.insert(owner.to_owned(), held);
        self.apply_firewall(&st)
    }

    /// Stop publishing `owner`'s ports.
    pub fn unpublish(&self, owner: &str) -> Result<()> {
        let mut st = self.state.lock().unwrap();
        let had = st.ports.remove(owner).is_some();
        st.held.remove(owner);
        if had {
            self.apply_firewall(&st)?;
        }
        Ok(())
    }

    /// Rewrite berth's nftables table from the state.
    fn apply_firewall(&self, st: &State) -> Result<()> {
        apply_rules(&self.cfg.table, st)?;
        self.fw_stale.store(false, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Rewrite the table on a thread of its own shortly (once for removals that come
    /// together), if nothing else has rewritten it by then.
    fn settle_firewall(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        if self.fw_settling.swap(true, SeqCst) {
            return;
        }
        let (state, stale, settling) = (self.state.clone(), self.fw_stale.clone(), self.fw_settling.clone());
        let table = self.cfg.table.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(10));
            settling.store(false, SeqCst);
            let st = state.lock().unwrap();
            if stale.swap(false, SeqCst) {
                if let Err(e) = apply_rules(&table, &st) {
                    tracing::warn!("rewrite the firewall table after a network removal: {e}");
                    stale.store(true, SeqCst);
                }
            }
        });
    }

    /// Daemon shutdown: the spare bridges go (the networks' own bridges stay, with
    /// their networks).
    pub fn shutdown(&self) {
        self.spares.clear();
    }

    /// Record the names a container answers to on each of its networks.
    pub fn register(&self, owner: &str, names: Vec<(String, Vec<String>, Vec<IpAddr>)>, upstreams: Vec<SocketAddr>, links: Vec<NameLink>) {
        let mut g = self.names.write().unwrap();
        g.by_container.insert(owner.to_owned(), names);
        g.upstreams.insert(owner.to_owned(), upstreams);
        g.links.insert(owner.to_owned(), links);
    }

    pub fn unregister(&self, owner: &str) {
        let mut g = self.names.write().unwrap();
        g.by_container.remove(owner);
        g.upstreams.remove(owner);
        g.links.remove(owner);
    }
}

/// A boolean as Go's `strconv.ParseBool` reads it (how dockerd reads driver options).
fn go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn find<'a>(nets: &'a BTreeMap<String, Network>, key: &str) -> Result<&'a Network> {
    let missing = || Error::not_found(format!("network {key} not found"));
    if key.is_empty() {
        return Err(missing());
    }
    if let Some(n) = nets.get(key) {
        return Ok(n);
    }
    if let Some(n) = nets.values().find(|n| n.name == key) {
        return Ok(n);
    }
    let mut by_prefix = nets.values().filter(|n| n.id.starts_with(key));
    match (by_prefix.next(), by_prefix.next()) {
        (Some(n), None) => Ok(n),
        (Some(_), Some(_)) => Err(Error::invalid(format!("network {key} is ambiguous"))),
        _ => Err(missing()),
    }
}

impl crate::dns::Resolve for Networks {
    fn lookup(&self, asker: &str, name: &str) -> Option<Vec<IpAddr>> {
        let g = self.names.read().unwrap();
        let mine: Vec<&String> = g.by_container.get(asker)?.iter().map(|(n, _, _)| n).collect();
        let mut out = Vec::new();
        // The asker's own links first: an alias names the linked container there.
        for l in g.links.get(asker).into_iter().flatten().filter(|l| l.alias.eq_ignore_ascii_case(name)) {
            for (owner, entries) in &g.by_container {
                let named = |names: &[String]| *owner == l.target || names.iter().any(|n| n.eq_ignore_ascii_case(&l.target));
                let theirs = entries.iter().filter(|(net, names, _)| *net == l.network_id && named(names));
                out.extend(theirs.flat_map(|(_, _, ips)| ips.iter().copied()));
            }
        }
        if !out.is_empty() {
            out.sort();
            out.dedup();
            return Some(out);
        }
        for entries in g.by_container.values() {
            for (net, names, ips) in entries {
                if mine.contains(&net) && names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                    out.extend(ips.iter().copied());
                }
            }
        }
        out.sort();
        out.dedup();
        (!out.is_empty()).then_some(out)
    }

    fn reverse(&self, asker: &str, ip: IpAddr) -> Option<String> {
        let g = self.names.read().unwrap();
        let mine: Vec<&String> = g.by_container.get(asker)?.iter().map(|(n, _, _)| n).collect();
        for entries in g.by_container.values() {
            for (net, names, ips) in entries {
                if mine.contains(&net) && ips.contains(&ip) {
                    return names.first().cloned();
                }
            }
        }
        None
    }

    fn upstreams(&self, asker: &str) -> Vec<SocketAddr> {
        self.names.read().unwrap().upstreams.get(asker).cloned().unwrap_or_default()
    }
}

/// Write berth's nftables table `table` from the state.
fn apply_rules(table: &str, st: &State) -> Result<()> {
    let nets: Vec<FwNetwork> = st
        .nets
        .values()
        .filter(|n| n.is_bridge())
        .map(|n| FwNetwork {
            bridge: n.bridge.clone(),
            subnets: n.subnets.iter().map(|s| s.subnet).collect(),
            internal: n.internal,
            icc: n.icc,
            masquerade: n.masquerade,
        })
        .collect();
    let ports: Vec<PortMap> = st.ports.values().flatten().cloned().collect();
    firewall::apply(&firewall::ruleset(table, &nets, &ports))
}
