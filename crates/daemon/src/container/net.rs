//! A container's networks: which ones it asks for (at create and `network connect`),
//! wiring them into its namespace when it starts and undoing that when it stops, its
//! /etc files, its published ports and its names for the embedded DNS server. The
//! mechanics live in `berth_network`; this is the container's side of it.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use berth_api::models::{EndpointSettings, HostConfig, NetworkingConfig};
use berth_errdefs::{Error, Result};
use berth_network::etc::{EtcInput, NetKind};
use berth_network::firewall::Proto;
use berth_network::ports::{Binding, PortRequest};
use berth_network::{Endpoint, Network};

use super::{Paths, Record};
use crate::Daemon;

/// The network mode as dockerd reads it: `default` is the default bridge.
pub fn mode(hc: &HostConfig) -> &str {
    match hc.network_mode.as_deref().unwrap_or("") {
        "" | "default" => "bridge",
        m => m,
    }
}

/// Does the container get a namespace of its own (rather than the host's or
/// another container's)?
pub fn own_namespace(hc: &HostConfig) -> bool {
    let m = mode(hc);
    m != "host" && !m.starts_with("container:")
}

fn endpoint_for(n: &Network, cfg: Option<&EndpointSettings>) -> Result<Endpoint> {
    let mut ep = Endpoint { network_id: n.id.clone(), network: n.name.clone(), ..Default::default() };
    let Some(cfg) = cfg else { return Ok(ep) };
    let aliases: Vec<String> = cfg.aliases.clone().unwrap_or_default().into_iter().filter(|a| !a.is_empty()).collect();
    let ipam = cfg.ipam_config.clone().unwrap_or_default();
    let want4 = ipam.ipv4_address.filter(|a| !a.is_empty());
    let want6 = ipam.ipv6_address.filter(|a| !a.is_empty());
    if n.is_default_bridge() {
        if !aliases.is_empty() {
            return Err(Error::invalid("network-scoped alias is supported only for containers in user defined networks"));
        }
        if want4.is_some() || want6.is_some() {
            return Err(Error::invalid(
                "user specified IP address is supported only when connecting to networks with user configured subnets",
            ));
        }
    }
    if !n.is_bridge() && (!aliases.is_empty() || want4.is_some() || want6.is_some()) {
        return Err(Error::invalid(format!("network {} does not take aliases or addresses", n.name)));
    }
    if cfg.driver_opts.as_ref().is_some_and(|o| !o.is_empty()) {
        return Err(Error::invalid("the bridge driver takes no endpoint driver options"));
    }
    // Links given for one network: on a user-defined network, names only this
    // container resolves (the default bridge's come from HostConfig.Links).
    for l in cfg.links.iter().flatten() {
        let (name, alias) = parse_link(l);
        if name.is_empty() || alias.is_empty() {
            return Err(Error::invalid(format!("invalid link: {l:?}")));
        }
        ep.links.push(format!("{name}:{alias}"));
    }
    ep.aliases = aliases;
    ep.want_ipv4 = want4
        .map(|a| match a.parse::<IpAddr>() {
            Ok(IpAddr::V4(v)) => Ok(IpAddr::V4(v)),
            _ => Err(Error::invalid(format!("invalid IPv4 address: {a}"))),
        })
        .transpose()?;
    ep.want_ipv6 = want6
        .map(|a| match a.parse::<IpAddr>() {
            Ok(IpAddr::V6(v)) => Ok(IpAddr::V6(v)),
            _ => Err(Error::invalid(format!("invalid IPv6 address: {a}"))),
        })
        .transpose()?;
    if let Some(ip) = ep.want_ipv4.or(ep.want_ipv6) {
        if !n.subnets.iter().any(|s| s.subnet.contains(&ip)) {
            return Err(Error::invalid(format!(
                "Invalid address {ip}: It does not belong to any of this network's subnets"
            )));
        }
    }
    for a in ipam.link_local_ips.iter().flatten().filter(|a| !a.is_empty()) {
        let ip = a.parse::<IpAddr>().map_err(|_| Error::invalid(format!("invalid link-local IP address: {a}")))?;
        if !n.is_bridge() {
            return Err(Error::invalid(format!("network {} does not take link-local addresses", n.name)));
        }
        ep.link_local.push(ip);
    }
    if let Some(m) = cfg.mac_address.clone().filter(|m| !m.is_empty()) {
        if berth_network::model::parse_mac(&m).is_none() {
            return Err(Error::invalid(format!("invalid MAC address: {m}")));
        }
        ep.want_mac = Some(m);
    }
    Ok(ep)
}

/// dockerd's `validateNetContainerMode`: what a container sharing another's network
/// (or the host's) cannot have.
pub fn validate_mode(hostname: &str, mac: bool, exposed: bool, hc: &HostConfig) -> Result<()> {
    let m = mode(hc);
    let conflict = |what: &str| Err(Error::invalid(format!("conflicting options: {what}")));
    if let Some(rest) = m.strip_prefix("container:") {
        if rest.is_empty() {
            return Err(Error::invalid("Invalid network mode: invalid container format container:<name|id>"));
        }
        if !hostname.is_empty() {
            return conflict("hostname and the network mode");
        }
        if hc.links.as_ref().is_some_and(|l| !l.is_empty()) {
            return conflict("container type network can't be used with links. This would result in undefined behavior");
        }
        if hc.dns.as_ref().is_some_and(|l| !l.is_empty()) {
            return conflict("dns and the network mode");
        }
        if hc.extra_hosts.as_ref().is_some_and(|l| !l.is_empty()) {
            return conflict("custom host-to-IP mapping and the network mode");
        }
        if hc.port_bindings.as_ref().is_some_and(|p| !p.is_empty()) || hc.publish_all_ports.unwrap_or(false) {
            return conflict("port publishing and the container type network mode");
        }
        if exposed {
            return conflict("port exposing and the container type network mode");
        }
    }
    if (m == "host" || m.starts_with("container:")) && mac {
        return conflict("mac-address and the network mode");
    }
    if m == "host" && hc.links.as_ref().is_some_and(|l| !l.is_empty()) {
        return conflict("host type networking can't be used with links. This would result in undefined behavior");
    }
    if m == "none" && publishes(hc) {
        return conflict("port publishing and the none network mode (it has no address to publish on)");
    }
    Ok(())
}

/// Does the container ask for a host port (`-p` with a binding, `-P`)?
pub fn publishes(hc: &HostConfig) -> bool {
    hc.port_bindings.as_ref().is_some_and(|p| p.values().any(|b| b.as_ref().is_some_and(|b| !b.is_empty())))
        || hc.publish_all_ports.unwrap_or(false)
}

/// The endpoints a create request asks for: its network mode's network, with the
/// settings `NetworkingConfig` gives for it (and any other networks it names).
pub fn endpoints_for_create(d: &Daemon, hc: &HostConfig, nc: Option<&NetworkingConfig>, mac: Option<&str>) -> Result<Vec<Endpoint>> {
    let m = mode(hc).to_owned();
    let configs = nc.and_then(|n| n.endpoints_config.clone()).unwrap_or_default();
    if m == "host" || m == "none" || m.starts_with("container:") {
        for (k, cfg) in &configs {
            if k != &m && k != "default" {
                return Err(Error::invalid(format!("container sharing network namespace with another container or host cannot be connected to any other network ({k})")));
            }
            // An address the mode has no network to take it from (dockerd's
            // `ErrUnsupportedNetworkAndIP`).
            let ipam = cfg.ipam_config.as_ref();
            if ipam.and_then(|i| i.ipv4_address.as_deref()).is_some_and(|a| !a.is_empty())
                || ipam.and_then(|i| i.ipv6_address.as_deref()).is_some_and(|a| !a.is_empty())
            {
                return Err(Error::invalid("user specified IP address is supported on user defined networks only"));
            }
        }
        // A `container:` mode's container is looked up at start, as dockerd does (a
        // 404 here would make the docker CLI pull the image).
        return Ok(Vec::new());
    }
    if m == "bridge" && d.networks.config().default_bridge == "none" {
        return Ok(Vec::new());
    }
    let primary = d.networks.get(&m)?;
    let own = configs.get(&m).or_else(|| configs.get("default")).or_else(|| configs.get(&primary.name)).or_else(|| configs.get(&primary.id));
    let mut ep = endpoint_for(&primary, own)?;
    if ep.want_mac.is_none() {
        ep.want_mac = mac.filter(|m| !m.is_empty()).map(str::to_owned);
        if let Some(m) = &ep.want_mac {
            if berth_network::model::parse_mac(m).is_none() {
                return Err(Error::invalid(format!("invalid MAC address: {m}")));
            }
        }
    }
    let mut out = vec![ep];
    for (k, cfg) in &configs {
        if k == &m || k == "default" || k == &primary.name || k == &primary.id {
            continue;
        }
        let n = d.networks.get(k)?;
        if out.iter().any(|e| e.network_id == n.id) {
            continue;
        }
        out.push(endpoint_for(&n, Some(cfg))?);
    }
    Ok(out)
}

/// Created with `NetworkDisabled`: on no network, whatever its mode names.
pub fn network_disabled(rec: &Record) -> bool {
    rec.config.network_disabled == Some(true)
}

/// Does the network mode name a network of its own (not the default bridge, the
/// host's, none, or another container's)?
pub fn names_a_network(hc: &HostConfig) -> bool {
    let m = mode(hc);
    !matches!(m, "bridge" | "host" | "none") && !m.starts_with("container:")
}

/// A container created while its network did not exist has no endpoint there yet: it
/// is made now, at the start, as dockerd connects a container then (first, before
/// those `network connect` added meanwhile), or the start fails with the network's
/// 404. Returns the record with it, when it made one.
pub fn resolve_deferred(d: &Daemon, c: &super::Container, rec: &Record) -> Result<Option<Record>> {
    if !names_a_network(&rec.host_config) || rec.mode_network_left || network_disabled(rec) {
        return Ok(None);
    }
    let m = mode(&rec.host_config);
    if rec.endpoints.iter().any(|e| e.network == m || e.network_id == m) {
        return Ok(None);
    }
    let n = d.networks.get(m)?;
    if rec.endpoints.iter().any(|e| e.network_id == n.id) {
        return Ok(None);
    }
    let mut eps = endpoints_for_create(d, &rec.host_config, rec.networking.as_ref(), rec.config_mac.as_deref())?;
    for e in &rec.endpoints {
        if !eps.iter().any(|x| x.network_id == e.network_id) {
            eps.push(e.clone());
        }
    }
    c.update(d, |r| r.endpoints = eps).map(Some)
}

/// Whether `n` is the network a container's network mode names.
fn is_mode_network(d: &Daemon, hc: &HostConfig, n: &Network) -> bool {
    d.networks.get(mode(hc)).is_ok_and(|p| p.id == n.id)
}

/// An endpoint to add with `network connect`.
pub fn endpoint_for_connect(n: &Network, cfg: Option<&EndpointSettings>) -> Result<Endpoint> {
    endpoint_for(n, cfg)
}

/// `-p` and `-P` as port requests: `PortBindings`, then every exposed port not bound
/// yet when `PublishAllPorts`.
pub fn port_requests(rec: &Record) -> Result<Vec<PortRequest>> {
    let hc = &rec.host_config;
    let mut out = Vec::new();
    let parse_key = |k: &str| -> Result<(u16, Proto)> {
        let (p, proto) = k.split_once('/').unwrap_or((k, "tcp"));
        let proto = Proto::parse(proto).ok_or_else(|| Error::invalid(format!("invalid proto: {proto}")))?;
        let port = p.parse::<u16>().map_err(|_| Error::invalid(format!("invalid port: {k}")))?;
        Ok((port, proto))
    };
    for (k, binds) in hc.port_bindings.iter().flatten() {
        let (port, proto) = parse_key(k)?;
        let list = binds.clone().unwrap_or_default();
        let list = if list.is_empty() { vec![Default::default()] } else { list };
        for b in list {
            let b: berth_api::models::PortBinding = b;
            let host_ip = match b.host_ip.as_deref().unwrap_or("") {
                "" => None,
                ip => Some(ip.parse::<IpAddr>().map_err(|_| Error::invalid(format!("invalid host IP: {ip}")))?),
            };
            let host_ports = berth_network::ports::parse_host_ports(b.host_port.as_deref().unwrap_or(""))?;
            out.push(PortRequest { proto, container_port: port, host_ip, host_ports });
        }
    }
    if hc.publish_all_ports.unwrap_or(false) {
        for k in rec.config.exposed_ports.iter().flatten() {
            let (port, proto) = parse_key(k)?;
            if !out.iter().any(|r| r.container_port == port && r.proto == proto) {
                out.push(PortRequest { proto, container_port: port, host_ip: None, host_ports: None });
            }
        }
    }
    Ok(out)
}

/// What wiring a container's namespace produced.
pub struct Wired {
    pub endpoints: Vec<Endpoint>,
    pub ports: Vec<Binding>,
}

/// Wire the container's networks into its namespace at `netns` (blocking): addresses,
/// veths, the default route through its first network, published ports. Whatever
/// fails leaves things for [`unwire`] to undo.
pub fn wire(d: &Daemon, rec: &Record, netns: &Path) -> Result<Wired> {
    let mut eps = rec.endpoints.clone();
    for (i, ep) in eps.iter_mut().enumerate() {
        ep.deactivate();
        ep.ifname = format!("eth{i}");
        ep.endpoint_id = berth_network::model::new_id();
        d.networks.allocate(&rec.id, ep)?;
        d.networks.connect(ep, netns, i == 0)?;
    }
    let reqs = port_requests(rec)?;
    let mut ports = Vec::new();
    if !reqs.is_empty() {
        let Some(first) = eps.first() else {
            return Err(Error::invalid("publishing ports needs a network with addresses (not --network none)"));
        };
        let ip = first.ipv4.or(first.ipv6).ok_or_else(|| Error::internal("the container got no address"))?;
        let n = d.networks.get(&first.network_id)?;
        ports = d.networks.publish(&rec.id, ip, n.host_binding, &reqs)?;
    }
    Ok(Wired { endpoints: eps, ports })
}

/// An endpoint's aliases on a user-defined network once connected: those asked for,
/// then, as dockerd adds them when it connects a container there, its short id and its
/// hostname (`--hostname`; the default hostname is the short id), each unless present.
pub fn connected_aliases(rec: &Record, ep: &Endpoint) -> Vec<String> {
    let mut v = ep.aliases.clone();
    let host = rec.config.hostname.as_deref().filter(|h| !h.is_empty());
    for a in std::iter::once(&rec.id[..12]).chain(host) {
        if !v.iter().any(|x| x == a) {
            v.push(a.to_owned());
        }
    }
    v
}

/// The names a container answers to on a network: its name and its aliases (with its
/// short id and hostname).
pub fn dns_names(rec: &Record, ep: &Endpoint) -> Vec<String> {
    let mut v = vec![rec.name.clone()];
    v.extend(connected_aliases(rec, ep).into_iter().filter(|a| *a != rec.name));
    v
}

/// Does the container use the embedded DNS server (a user-defined network)?
pub fn uses_dns(d: &Daemon, eps: &[Endpoint]) -> bool {
    eps.iter().any(|e| d.networks.get(&e.network_id).is_ok_and(|n| n.is_bridge() && !n.is_default_bridge()))
}

/// Register the container's names and serve DNS in its namespace (user-defined
/// networks only, as with Docker).
pub fn start_dns(d: &Arc<Daemon>, rec: &Record, eps: &[Endpoint], netns: &Path) -> Result<()> {
    if !uses_dns(d, eps) {
        return Ok(());
    }
    register_names(d, rec, eps);
    let (udp, tcp) = berth_network::dns::bind_in(netns)?;
    let rt = tokio::runtime::Handle::try_current().map_err(|_| Error::internal("no runtime to serve DNS on"))?;
    let _guard = rt.enter();
    let udp = tokio::net::UdpSocket::from_std(udp)?;
    let tcp = tokio::net::TcpListener::from_std(tcp)?;
    let resolver: Arc<dyn berth_network::dns::Resolve> = Arc::new(DnsView(d.clone()));
    let t1 = rt.spawn(berth_network::dns::serve_udp(udp, rec.id.clone(), resolver.clone()));
    let t2 = rt.spawn(berth_network::dns::serve_tcp(tcp, rec.id.clone(), resolver));
    let old = d.dns_tasks.lock().unwrap().insert(rec.id.clone(), vec![t1.abort_handle(), t2.abort_handle()]);
    for h in old.into_iter().flatten() {
        h.abort();
    }
    Ok(())
}

/// The names of every network the container is on, for the DNS server.
pub fn register_names(d: &Daemon, rec: &Record, eps: &[Endpoint]) {
    let names = eps
        .iter()
        .filter(|e| e.is_active())
        .map(|e| (e.network_id.clone(), dns_names(rec, e), [e.ipv4, e.ipv6].into_iter().flatten().collect()))
        .collect();
    let host_resolv = std::fs::read_to_string(&d.networks.config().host_resolv).unwrap_or_default();
    let own = rec.host_config.dns.as_deref().filter(|v| !v.is_empty());
    let ups = berth_network::etc::upstreams(own.unwrap_or(&d.cfg.dns.servers), &host_resolv);
    d.networks.register(&rec.id, names, ups, dns_links(d, rec, eps));
}

/// The container's legacy links as its DNS server answers them: each endpoint's own
/// and, on the first network, `HostConfig.Links` (what `--link` and compose's `links`
/// give), each alias naming the linked container's address on that network (dockerd
/// resolves links on user-defined networks so; on the default bridge they are also
/// /etc/hosts lines, see [`links`]).
fn dns_links(d: &Daemon, rec: &Record, eps: &[Endpoint]) -> Vec<berth_network::NameLink> {
    let mut out = Vec::new();
    for (i, e) in eps.iter().enumerate().filter(|(_, e)| e.is_active()) {
        let host_links = if i == 0 { rec.host_config.links.clone().unwrap_or_default() } else { Vec::new() };
        for l in e.links.iter().chain(&host_links) {
            let (name, alias) = parse_link(l);
            // By id when it names one now; else by name, whenever it comes.
            let target = d.containers.get(name).ok().filter(|t| t.id.starts_with(name)).map_or_else(|| name.to_owned(), |t| t.id.clone());
            out.push(berth_network::NameLink { network_id: e.network_id.clone(), alias: alias.to_owned(), target });
        }
    }
    out
}

/// The daemon as the DNS server's resolver (the network manager holds the names).
struct DnsView(Arc<Daemon>);

impl berth_network::dns::Resolve for DnsView {
    fn lookup(&self, asker: &str, name: &str) -> Option<Vec<IpAddr>> {
        self.0.networks.lookup(asker, name)
    }
    fn reverse(&self, asker: &str, ip: IpAddr) -> Option<String> {
        self.0.networks.reverse(asker, ip)
    }
    fn upstreams(&self, asker: &str) -> Vec<std::net::SocketAddr> {
        self.0.networks.upstreams(asker)
    }
}

/// Undo what [`wire`] and [`start_dns`] did for `id` (blocking; the namespace itself,
/// and with it the container's veths, goes with the caller).
pub fn unwire(d: &Daemon, id: &str) {
    for h in d.dns_tasks.lock().unwrap().remove(id).into_iter().flatten() {
        h.abort();
    }
    d.networks.unregister(id);
    if let Err(e) = d.networks.unpublish(id) {
        tracing::warn!(%id, "unpublish ports: {e}");
    }
    if let Err(e) = d.networks.release_all(id) {
        tracing::warn!(%id, "release addresses: {e}");
    }
}

/// Write /etc/hostname, /etc/hosts and /etc/resolv.conf for the container.
pub fn write_etc_files(d: &Daemon, rec: &Record, eps: &[Endpoint], files: &berth_oci::EtcFiles) -> Result<()> {
    let hc = &rec.host_config;
    let m = mode(hc);
    let kind = if m == "host" {
        NetKind::Host
    } else if eps.is_empty() {
        NetKind::None
    } else if uses_dns(d, eps) {
        NetKind::UserDefined
    } else {
        NetKind::DefaultBridge
    };
    let gateway = eps.first().and_then(|e| e.gateway4);
    let mut extra = Vec::new();
    for h in hc.extra_hosts.iter().flatten() {
        let (name, ip) = h.split_once(':').ok_or_else(|| Error::invalid(format!("invalid extra host {h}")))?;
        let ip = if ip == "host-gateway" {
            match gateway.or_else(|| d.networks.default_bridge().ok().and_then(|n| n.subnet_v4().map(|s| s.gateway))) {
                Some(g) => g.to_string(),
                None => return Err(Error::invalid("host-gateway needs a bridge network")),
            }
        } else {
            ip.to_owned()
        };
        extra.push((name.to_owned(), ip));
    }
    let hostname = rec.config.hostname.clone().unwrap_or_default();
    let domainname = rec.config.domainname.clone().unwrap_or_default();
    let host_hosts = std::fs::read_to_string(&d.networks.config().host_hosts).unwrap_or_default();
    let host_resolv = std::fs::read_to_string(&d.networks.config().host_resolv).unwrap_or_default();
    let input = EtcInput {
        kind,
        hostname: &hostname,
        domainname: &domainname,
        addresses: eps.first().map(|e| [e.ipv4, e.ipv6].into_iter().flatten().collect()).unwrap_or_default(),
        extra_hosts: extra,
        links: links(d, rec, eps),
        // The container's own, else the daemon's `--dns*` settings.
        dns: hc.dns.as_ref().filter(|v| !v.is_empty()).unwrap_or(&d.cfg.dns.servers),
        dns_search: hc.dns_search.as_ref().filter(|v| !v.is_empty()).unwrap_or(&d.cfg.dns.search),
        dns_options: hc.dns_options.as_ref().filter(|v| !v.is_empty()).unwrap_or(&d.cfg.dns.options),
        host_hosts: &host_hosts,
        host_resolv: &host_resolv,
    };
    std::fs::write(&files.hostname, format!("{hostname}\n"))?;
    std::fs::write(&files.hosts, berth_network::etc::hosts(&input))?;
    std::fs::write(&files.resolv_conf, berth_network::etc::resolv_conf(&input))?;
    // a remapped container's root may edit them, as any container's root can
    for f in [&files.hostname, &files.hosts, &files.resolv_conf] {
        berth_userns::chown_to_root(f, d.remap())?;
    }
    Ok(())
}

/// Is the container's first network the default bridge, where legacy links are
/// /etc/hosts lines and variables (dockerd: only there; elsewhere its DNS answers them)?
fn links_by_hosts(d: &Daemon, first: Option<&Endpoint>) -> bool {
    first.is_some_and(|e| d.networks.get(&e.network_id).is_ok_and(|n| n.is_default_bridge()))
}

/// `--link name:alias` hosts lines (the linked container's address on the default
/// bridge, with the alias, its name and its hostname).
fn links(d: &Daemon, rec: &Record, eps: &[Endpoint]) -> Vec<(IpAddr, Vec<String>)> {
    let mut out = Vec::new();
    let Some(first) = eps.first() else { return out };
    if !links_by_hosts(d, Some(first)) {
        return out;
    }
    for l in rec.host_config.links.iter().flatten() {
        let (name, alias) = parse_link(l);
        let Ok(other) = d.containers.get(name) else { continue };
        let o = other.record();
        let Some(ip) = o.endpoints.iter().find(|e| e.network_id == first.network_id).and_then(|e| e.ipv4) else { continue };
        let mut names = vec![alias.to_owned()];
        let oname = o.name.clone();
        if oname != alias {
            names.push(oname);
        }
        if let Some(h) = o.config.hostname.clone().filter(|h| !names.contains(h)) {
            names.push(h);
        }
        out.push((ip, names));
    }
    out
}

/// `name:alias` (or `name`, the alias being the name), leading slashes off.
pub fn parse_link(l: &str) -> (&str, &str) {
    let (n, a) = l.split_once(':').unwrap_or((l, l));
    (n.trim_start_matches('/'), a.trim_start_matches('/').rsplit('/').next().unwrap_or(a))
}

/// The environment variables a legacy link gives (`ALIAS_PORT_80_TCP=tcp://ip:80`,
/// `ALIAS_NAME=/me/alias`, the linked container's `ENV` as `ALIAS_ENV_*`).
pub fn link_env(d: &Daemon, rec: &Record) -> Vec<String> {
    let mut out = Vec::new();
    if !links_by_hosts(d, rec.endpoints.first()) {
        return out;
    }
    for l in rec.host_config.links.iter().flatten() {
        let (name, alias) = parse_link(l);
        let Ok(other) = d.containers.get(name) else { continue };
        let o = other.record();
        let Some(ip) = o.endpoints.first().and_then(|e| e.ipv4) else { continue };
        let p = alias.to_ascii_uppercase().replace('-', "_");
        out.push(format!("{p}_NAME=/{}/{alias}", rec.name));
        let mut ports: Vec<(u16, String)> = o
            .config
            .exposed_ports
            .iter()
            .flatten()
            .filter_map(|k| {
                let (port, proto) = k.split_once('/').unwrap_or((k, "tcp"));
                Some((port.parse().ok()?, proto.to_owned()))
            })
            .collect();
        ports.sort();
        if let Some((port, proto)) = ports.first() {
            out.push(format!("{p}_PORT={proto}://{ip}:{port}"));
        }
        for (port, proto) in &ports {
            let k = format!("{p}_PORT_{port}_{}", proto.to_ascii_uppercase());
            out.push(format!("{k}={proto}://{ip}:{port}"));
            out.push(format!("{k}_ADDR={ip}"));
            out.push(format!("{k}_PORT={port}"));
            out.push(format!("{k}_PROTO={proto}"));
        }
        for e in o.config.env.iter().flatten() {
            let Some((k, v)) = e.split_once('=') else { continue };
            if k == "HOME" || k == "PATH" || k == "HOSTNAME" {
                continue;
            }
            out.push(format!("{p}_ENV_{k}={v}"));
        }
    }
    out
}

/// After a daemon restart: a running container's ports and DNS come back.
pub fn restore(d: &Arc<Daemon>, rec: &Record) {
    if !own_namespace(&rec.host_config) || rec.endpoints.iter().all(|e| !e.is_active()) {
        return;
    }
    if let Some(ip) = rec.endpoints.first().and_then(|e| e.ipv4.or(e.ipv6)) {
        if !rec.ports.is_empty() {
            if let Err(e) = d.networks.republish(&rec.id, ip, &rec.ports) {
                tracing::warn!(id = %rec.id, "republish ports: {e}");
            }
        }
    }
    if let Err(e) = start_dns(d, rec, &rec.endpoints, &Paths::netns(d, &rec.id)) {
        tracing::warn!(id = %rec.id, "restart DNS: {e}");
    }
}

fn network_event(d: &Daemon, action: &str, n: &Network, container: Option<&str>) {
    let mut attrs = std::collections::HashMap::new();
    attrs.insert("name".to_owned(), n.name.clone());
    attrs.insert("type".to_owned(), n.driver.clone());
    if let Some(c) = container {
        attrs.insert("container".to_owned(), c.to_owned());
    }
    d.events.emit(berth_api::models::EventMessageTypeEnum::NETWORK, action, &n.id, attrs);
}

/// Emit a network event (create, destroy...).
pub fn emit(d: &Daemon, action: &str, n: &Network) {
    network_event(d, action, n, None);
}

/// The events of a container's start or stop on its networks.
pub fn emit_for(d: &Daemon, action: &str, rec: &Record) {
    // dockerd joins a container of the host or none mode to that network too
    let m = mode(&rec.host_config);
    if rec.endpoints.is_empty() && matches!(m, "host" | "none") {
        if let Ok(n) = d.networks.get(m) {
            network_event(d, action, &n, Some(&rec.id));
        }
    }
    for ep in &rec.endpoints {
        if let Ok(n) = d.networks.get(&ep.network_id) {
            network_event(d, action, &n, Some(&rec.id));
        }
    }
}

/// `POST /networks/{id}/connect`: on a running container the endpoint is wired at
/// once; on a stopped one it is recorded for its next start.
pub async fn connect(d: &Arc<Daemon>, c: &Arc<super::Container>, n: &Network, cfg: Option<&EndpointSettings>) -> Result<()> {
    let _op = c.op.lock().await;
    let rec = c.record();
    if !own_namespace(&rec.host_config) || mode(&rec.host_config) == "none" {
        return Err(Error::invalid("container sharing network namespace with another container or host cannot be connected to any other network"));
    }
    if !n.is_bridge() {
        return Err(Error::invalid("container cannot be disconnected from host network or connected to host network"));
    }
    if rec.endpoints.iter().any(|e| e.network_id == n.id) {
        return Err(Error::conflict(format!("{} is already attached to network {}", rec.name, n.name)));
    }
    let mut ep = endpoint_for_connect(n, cfg)?;
    // The container config's MAC address is its network mode's network's, however
    // often it is connected there (compose 1.29 reconnects a created container).
    let primary = is_mode_network(d, &rec.host_config, n);
    if primary && ep.want_mac.is_none() {
        ep.want_mac = rec.config_mac.clone();
    }
    if rec.state.status.is_live() {
        ep.ifname = format!("eth{}", rec.endpoints.len());
        ep.endpoint_id = berth_network::model::new_id();
        let (d2, id, ns) = (d.clone(), rec.id.clone(), Paths::netns(d, &rec.id));
        let mut ep2 = ep.clone();
        ep = tokio::task::spawn_blocking(move || -> Result<Endpoint> {
            d2.networks.allocate(&id, &mut ep2)?;
            if let Err(e) = d2.networks.connect(&mut ep2, &ns, false) {
                let _ = d2.networks.release(&ep2.network_id, &id);
                return Err(e);
            }
            Ok(ep2)
        })
        .await
        .map_err(|e| Error::internal(e.to_string()))??;
    }
    let updated = c.update(d, |r| {
        r.endpoints.push(ep.clone());
        r.mode_network_left &= !primary;
    })?;
    if updated.state.status.is_live() {
        let dns_running = d.dns_tasks.lock().unwrap().contains_key(&updated.id);
        if uses_dns(d, &updated.endpoints) && !dns_running {
            // Its first user-defined network: the embedded DNS server starts and its
            // resolv.conf points there from now on (rewritten in place: it is bound).
            start_dns(d, &updated, &updated.endpoints, &Paths::netns(d, &updated.id))?;
            let files = Paths::new(d, &updated.id).etc_files(updated.ephemeral());
            write_etc_files(d, &updated, &updated.endpoints, &files)?;
        } else {
            register_names(d, &updated, &updated.endpoints);
        }
    }
    network_event(d, "connect", n, Some(&rec.id));
    Ok(())
}

/// `POST /networks/{id}/disconnect`.
pub async fn disconnect(d: &Arc<Daemon>, c: &Arc<super::Container>, n: &Network, _force: bool) -> Result<()> {
    let _op = c.op.lock().await;
    let rec = c.record();
    if !n.is_bridge() && mode(&rec.host_config) == n.name {
        return Err(Error::invalid("container cannot be disconnected from host network or connected to host network"));
    }
    let Some(ep) = rec.endpoints.iter().find(|e| e.network_id == n.id).cloned() else {
        return Err(Error::conflict(format!("container {} is not connected to the network {}", rec.id, n.name)));
    };
    if rec.state.status.is_live() && ep.is_active() {
        let (d2, id) = (d.clone(), rec.id.clone());
        let ep2 = ep.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            d2.networks.disconnect(&ep2)?;
            d2.networks.release(&ep2.network_id, &id)
        })
        .await
        .map_err(|e| Error::internal(e.to_string()))??;
    }
    let mode_net = is_mode_network(d, &rec.host_config, n);
    let updated = c.update(d, |r| {
        r.endpoints.retain(|e| e.network_id != n.id);
        r.mode_network_left |= mode_net;
    })?;
    if updated.state.status.is_live() {
        register_names(d, &updated, &updated.endpoints);
    }
    network_event(d, "disconnect", n, Some(&rec.id));
    Ok(())
}
