//! A container's `/etc/hosts` and `/etc/resolv.conf`, as dockerd writes them.

use std::net::IpAddr;

/// Docker's /etc/hosts header.
pub const DEFAULT_HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// Which kind of network a container's /etc files are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetKind {
    /// The host's network: the host's files.
    Host,
    /// `--network none`: loopback only.
    None,
    /// The default bridge: the host's resolvers, names only through /etc/hosts.
    DefaultBridge,
    /// A user-defined network: the embedded DNS server.
    UserDefined,
}

/// What the files are made of.
#[derive(Debug, Clone)]
pub struct EtcInput<'a> {
    pub kind: NetKind,
    pub hostname: &'a str,
    pub domainname: &'a str,
    /// The container's own addresses (its first network's).
    pub addresses: Vec<IpAddr>,
    /// `--add-host name:ip` (the gateway already put for `host-gateway`).
    pub extra_hosts: Vec<(String, String)>,
    /// Legacy links: (address, names) lines.
    pub links: Vec<(IpAddr, Vec<String>)>,
    pub dns: &'a [String],
    pub dns_search: &'a [String],
    pub dns_options: &'a [String],
    /// The host's /etc/hosts and /etc/resolv.conf text.
    pub host_hosts: &'a str,
    pub host_resolv: &'a str,
}

/// `/etc/hosts`.
pub fn hosts(i: &EtcInput<'_>) -> String {
    let mut out = if i.kind == NetKind::Host {
        if i.host_hosts.is_empty() {
            DEFAULT_HOSTS.to_owned()
        } else {
            let mut h = i.host_hosts.to_owned();
            if !h.ends_with('\n') {
                h.push('\n');
            }
            h
        }
    } else {
        DEFAULT_HOSTS.to_owned()
    };
    for (name, ip) in &i.extra_hosts {
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    for (ip, names) in &i.links {
        out.push_str(&format!("{ip}\t{}\n", names.join(" ")));
    }
    if i.kind != NetKind::Host && !i.hostname.is_empty() {
        let names = if i.domainname.is_empty() {
            i.hostname.to_owned()
        } else {
            format!("{}.{} {}", i.hostname, i.domainname, i.hostname)
        };
        for ip in &i.addresses {
            out.push_str(&format!("{ip}\t{names}\n"));
        }
    }
    out
}

fn is_loopback(ns: &str) -> bool {
    ns.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `/etc/resolv.conf`: the embedded server on user-defined networks; the host's
/// resolvers (loopback ones dropped, Google's as a fallback) otherwise; `--dns`,
/// `--dns-search` and `--dns-option` replace what they name.
pub fn resolv_conf(i: &EtcInput<'_>) -> String {
    let mut search: Vec<String> = Vec::new();
    let mut options: Vec<String> = Vec::new();
    let mut servers: Vec<String> = Vec::new();
    for line in i.host_resolv.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => servers.extend(words.next().map(str::to_owned)),
            Some("search") | Some("domain") => search = words.map(str::to_owned).collect(),
            Some("options") => options.extend(words.map(str::to_owned)),
            _ => {}
        }
    }
    if !i.dns.is_empty() {
        servers = i.dns.to_vec();
    }
    if !i.dns_search.is_empty() {
        search = if i.dns_search == ["."] { Vec::new() } else { i.dns_search.to_vec() };
    }
    match i.kind {
        NetKind::UserDefined => {
            servers = vec![crate::dns::ADDRESS.to_string()];
            options.retain(|o| !o.starts_with("ndots:"));
            options.insert(0, "ndots:0".into());
        }
        NetKind::Host => {}
        NetKind::DefaultBridge | NetKind::None => {
            if i.dns.is_empty() {
                servers.retain(|s| !is_loopback(s));
            }
            if servers.is_empty() {
                servers = vec!["8.8.8.8".into(), "8.8.4.4".into()];
            }
        }
    }
    if !i.dns_options.is_empty() {
        for o in i.dns_options {
            let key = o.split(':').next().unwrap_or(o);
            options.retain(|x| x.split(':').next() != Some(key));
            options.push(o.clone());
        }
    }
    // libnetwork's order: search, nameservers, options.
    let mut out = String::new();
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    for s in &servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

/// The resolvers the embedded DNS server forwards to for a container: `--dns`, else
/// the host's (loopback ones included: the daemon forwards from the host's namespace).
pub fn upstreams(dns: &[String], host_resolv: &str) -> Vec<std::net::SocketAddr> {
    if dns.is_empty() {
        crate::dns::nameservers(host_resolv)
    } else {
        dns.iter().filter_map(|d| d.parse::<IpAddr>().ok()).map(|ip| std::net::SocketAddr::new(ip, 53)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(kind: NetKind) -> EtcInput<'static> {
        EtcInput {
            kind,
            hostname: "abc123",
            domainname: "",
            addresses: vec!["172.18.0.2".parse().unwrap()],
            extra_hosts: vec![("db".into(), "10.0.0.9".into())],
            links: vec![],
            dns: &[],
            dns_search: &[],
            dns_options: &[],
            host_hosts: "127.0.0.1 localhost\n10.0.0.1 myhost\n",
            host_resolv: "nameserver 127.0.0.53\nnameserver 10.1.1.1\nsearch corp\noptions edns0 ndots:2\n",
        }
    }

    #[test]
    fn hosts_like_docker() {
        let h = hosts(&input(NetKind::DefaultBridge));
        assert!(h.starts_with(DEFAULT_HOSTS));
        assert!(h.ends_with("10.0.0.9\tdb\n172.18.0.2\tabc123\n"), "{h}");
        let h = hosts(&input(NetKind::Host));
        assert!(h.starts_with("127.0.0.1 localhost\n10.0.0.1 myhost\n") && !h.contains("abc123"), "{h}");
    }

    #[test]
    fn resolv_conf_like_docker() {
        assert_eq!(
            resolv_conf(&input(NetKind::UserDefined)),
            "search corp\nnameserver 127.0.0.11\noptions ndots:0 edns0\n"
        );
        assert_eq!(resolv_conf(&input(NetKind::DefaultBridge)), "search corp\nnameserver 10.1.1.1\noptions edns0 ndots:2\n");
        let dns = vec!["1.1.1.1".to_string()];
        let opts = vec!["ndots:3".to_string()];
        let mut i = input(NetKind::DefaultBridge);
        i.dns = &dns;
        i.dns_options = &opts;
        assert_eq!(resolv_conf(&i), "search corp\nnameserver 1.1.1.1\noptions edns0 ndots:3\n");
        assert_eq!(upstreams(&[], i.host_resolv).len(), 2);
    }
}
