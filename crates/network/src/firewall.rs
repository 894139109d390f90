//! Packet filtering and NAT with nftables: one `inet` table of berth's own, rebuilt as
//! a whole and replaced in one nftables transaction whenever a bridge network or a
//! published port comes or goes (`nft -j -f -` through the `nftables` crate).
//!
//! What the table does:
//! - `prerouting`/`output` (dstnat): traffic to a local address (`fib daddr type
//!   local`) jumps to `ports`, where each published port is a DNAT rule — for other
//!   hosts, for the host itself (127.0.0.1 included, with `route_localnet` on the
//!   bridge) and for containers (hairpin).
//! - `postrouting` (srcnat): containers' outbound traffic is masqueraded; connections
//!   DNATed from 127.0.0.1 or back into their own subnet are masqueraded so the
//!   replies find their way.
//! - `forward` (filter): established and DNATed traffic passes; a network's containers
//!   reach each other (unless `enable_icc=false`) and the outside (unless
//!   `--internal`); nothing crosses from one berth network to another, and nothing
//!   enters a network that was not asked for.
//!
//! Rules in other tables (the host's own firewall) still apply: an accept here does
//! not override a drop there.

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::IpAddr;

use berth_errdefs::{Error, Result};
use ipnet::IpNet;
use nftables::batch::Batch;
use nftables::expr::{Expression, Fib, FibFlag, FibResult, Meta, MetaKey, NamedExpression, Payload, PayloadField, Prefix, SetItem, CT};
use nftables::schema::{Chain, NfListObject, Nftables, Rule, Table};
use nftables::stmt::{JumpTarget, Match, NATFamily, Operator, Statement, NAT};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

/// One bridge network, as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FwNetwork {
    pub bridge: String,
    pub subnets: Vec<IpNet>,
    pub internal: bool,
    pub icc: bool,
    pub masquerade: bool,
}

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }

    pub fn parse(s: &str) -> Option<Proto> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" | "" => Some(Proto::Tcp),
            "udp" => Some(Proto::Udp),
            "sctp" => Some(Proto::Sctp),
            _ => None,
        }
    }
}

/// One published port: `host_ip:host_port/proto` → `container_ip:container_port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMap {
    pub proto: Proto,
    /// `None`: every local address.
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_ip: IpAddr,
    pub container_port: u16,
}

const FAMILY: NfFamily = NfFamily::INet;

fn s(v: &str) -> Expression<'static> {
    Expression::String(Cow::Owned(v.to_owned()))
}

fn matches(left: Expression<'static>, op: Operator, right: Expression<'static>) -> Statement<'static> {
    Statement::Match(Match { left, right, op })
}

fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

fn payload(proto: &str, field: &str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(PayloadField {
        protocol: Cow::Owned(proto.to_owned()),
        field: Cow::Owned(field.to_owned()),
    })))
}

fn ct(key: &str) -> Expression<'static> {
    Expression::Named(NamedExpression::CT(CT { key: Cow::Owned(key.to_owned()), family: None, dir: None }))
}

fn prefix(n: &IpNet) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(Prefix { addr: Box::new(s(&n.network().to_string())), len: n.prefix_len() as u32 }))
}

fn family_of(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "ip"
    } else {
        "ip6"
    }
}

fn set(items: &[String]) -> Expression<'static> {
    Expression::Named(NamedExpression::Set(items.iter().map(|i| SetItem::Element(s(i))).collect()))
}

fn local_daddr() -> Statement<'static> {
    let mut flags = HashSet::new();
    flags.insert(FibFlag::Daddr);
    matches(Expression::Named(NamedExpression::Fib(Fib { result: FibResult::Type, flags })), Operator::EQ, s("local"))
}

fn accept() -> Statement<'static> {
    Statement::Accept(None)
}

fn drop() -> Statement<'static> {
    Statement::Drop(None)
}

struct Builder {
    table: String,
    batch: Batch<'static>,
}

impl Builder {
    fn chain(&mut self, name: &str, kind: Option<(NfChainType, NfHook, i32)>) {
        let mut c = Chain {
            family: FAMILY,
            table: Cow::Owned(self.table.clone()),
            name: Cow::Owned(name.to_owned()),
            ..Chain::default()
        };
        if let Some((t, h, p)) = kind {
            c._type = Some(t);
            c.hook = Some(h);
            c.prio = Some(p);
            c.policy = Some(NfChainPolicy::Accept);
        }
        self.batch.add(NfListObject::Chain(c));
    }

    fn rule(&mut self, chain: &str, expr: Vec<Statement<'static>>) {
        self.batch.add(NfListObject::Rule(Rule {
            family: FAMILY,
            table: Cow::Owned(self.table.clone()),
            chain: Cow::Owned(chain.to_owned()),
            expr: Cow::Owned(expr),
            ..Rule::default()
        }));
    }
}

fn table(name: &str) -> NfListObject<'static> {
    NfListObject::Table(Table { family: FAMILY, name: Cow::Owned(name.to_owned()), ..Table::default() })
}

/// The whole table for these networks and ports, replacing what is there.
pub fn ruleset(name: &str, nets: &[FwNetwork], ports: &[PortMap]) -> Nftables<'static> {
    let mut b = Builder { table: name.to_owned(), batch: Batch::new() };
    // Create-then-delete makes the delete safe when the table is not there yet.
    b.batch.add(table(name));
    b.batch.delete(table(name));
    b.batch.add(table(name));
    b.chain("prerouting", Some((NfChainType::NAT, NfHook::Prerouting, -100)));
    b.chain("output", Some((NfChainType::NAT, NfHook::Output, -100)));
    b.chain("postrouting", Some((NfChainType::NAT, NfHook::Postrouting, 100)));
    b.chain("forward", Some((NfChainType::Filter, NfHook::Forward, 0)));
    b.chain("ports", None);
    b.rule("prerouting", vec![local_daddr(), Statement::Jump(JumpTarget { target: "ports".into() })]);
    b.rule("output", vec![local_daddr(), Statement::Jump(JumpTarget { target: "ports".into() })]);
    for p in ports {
        let mut e = Vec::new();
        if let Some(h) = p.host_ip {
            e.push(matches(payload(family_of(&h), "daddr"), Operator::EQ, s(&h.to_string())));
        } else {
            // Without a host address, a mapping of the other family must not catch
            // this one's packets.
            e.push(matches(meta(MetaKey::Nfproto), Operator::EQ, s(if p.container_ip.is_ipv4() { "ipv4" } else { "ipv6" })));
        }
        e.push(matches(payload(p.proto.as_str(), "dport"), Operator::EQ, Expression::Number(p.host_port as u32)));
        e.push(Statement::DNAT(Some(NAT {
            addr: Some(s(&p.container_ip.to_string())),
            family: Some(if p.container_ip.is_ipv4() { NATFamily::IP } else { NATFamily::IP6 }),
            port: Some(Expression::Number(p.container_port as u32)),
            flags: None,
        })));
        b.rule("ports", e);
    }
    let bridges: Vec<String> = nets.iter().map(|n| n.bridge.clone()).collect();
    // Internal networks first: nothing crosses their bridge, not even a published port
    // reached through the host's address.
    for n in nets.iter().filter(|n| n.internal) {
        let br = || s(&n.bridge);
        b.rule("forward", vec![matches(meta(MetaKey::Iifname), Operator::EQ, br()), matches(meta(MetaKey::Oifname), Operator::NEQ, br()), drop()]);
        b.rule("forward", vec![matches(meta(MetaKey::Oifname), Operator::EQ, br()), matches(meta(MetaKey::Iifname), Operator::NEQ, br()), drop()]);
    }
    b.rule("forward", vec![matches(ct("state"), Operator::IN, set(&["established".into(), "related".into()])), accept()]);
    b.rule("forward", vec![matches(ct("status"), Operator::IN, s("dnat")), accept()]);
    for n in nets {
        let br = || s(&n.bridge);
        for sub in &n.subnets {
            let fam = family_of(&sub.network());
            // Replies to connections DNATed from 127.0.0.1 or from the same subnet.
            if sub.network().is_ipv4() {
                b.rule(
                    "postrouting",
                    vec![
                        matches(meta(MetaKey::Oifname), Operator::EQ, br()),
                        matches(payload("ip", "saddr"), Operator::EQ, prefix(&"127.0.0.0/8".parse().expect("net"))),
                        Statement::Masquerade(None),
                    ],
                );
            }
            b.rule(
                "postrouting",
                vec![
                    matches(meta(MetaKey::Oifname), Operator::EQ, br()),
                    matches(payload(fam, "saddr"), Operator::EQ, prefix(sub)),
                    matches(ct("status"), Operator::IN, s("dnat")),
                    Statement::Masquerade(None),
                ],
            );
            if n.masquerade && !n.internal {
                b.rule(
                    "postrouting",
                    vec![
                        matches(payload(fam, "saddr"), Operator::EQ, prefix(sub)),
                        matches(meta(MetaKey::Oifname), Operator::NEQ, br()),
                        Statement::Masquerade(None),
                    ],
                );
            }
        }
        let iif = || matches(meta(MetaKey::Iifname), Operator::EQ, br());
        let oif = || matches(meta(MetaKey::Oifname), Operator::EQ, br());
        b.rule("forward", vec![iif(), oif(), if n.icc { accept() } else { drop() }]);
        let others: Vec<String> = bridges.iter().filter(|x| **x != n.bridge).cloned().collect();
        if !others.is_empty() {
            b.rule("forward", vec![iif(), matches(meta(MetaKey::Oifname), Operator::IN, set(&others)), drop()]);
        }
        if !n.internal {
            b.rule("forward", vec![iif(), accept()]);
        }
        b.rule("forward", vec![oif(), drop()]);
    }
    b.batch.to_nftables()
}

/// Replace berth's table with `rs`.
pub fn apply(rs: &Nftables<'_>) -> Result<()> {
    nftables::helper::apply_ruleset(rs).map_err(|e| Error::internal(format!("nftables: {e}")))
}

/// Remove a table of berth's (the unit tests clean up with it).
pub fn remove(name: &str) -> Result<()> {
    let mut b = Batch::new();
    b.add(table(name));
    b.delete(table(name));
    apply(&b.to_nftables())
}

/// Is the `nft` tool there? (Bridge networking needs it.)
pub fn available() -> bool {
    std::process::Command::new(nftables::helper::DEFAULT_NFT.unwrap_or("nft"))
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruleset_has_a_dnat_per_port_and_isolation_between_bridges() {
        let nets = vec![
            FwNetwork { bridge: "br-a".into(), subnets: vec!["10.1.0.0/24".parse().unwrap()], internal: false, icc: true, masquerade: true },
            FwNetwork { bridge: "br-b".into(), subnets: vec!["10.2.0.0/24".parse().unwrap()], internal: true, icc: false, masquerade: true },
        ];
        let ports = vec![PortMap {
            proto: Proto::Tcp,
            host_ip: Some("127.0.0.1".parse().unwrap()),
            host_port: 8080,
            container_ip: "10.1.0.2".parse().unwrap(),
            container_port: 80,
        }];
        let json = serde_json::to_string(&ruleset("berth_t", &nets, &ports)).unwrap();
        assert!(json.contains(r#""dnat":{"addr":"10.1.0.2","family":"ip","port":80}"#), "{json}");
        assert!(json.contains(r#""right":{"set":["br-b"]}"#), "{json}");
        // The internal network gets no masquerade for its subnet going out.
        assert_eq!(json.matches(r#""oifname"}},"right":"br-b"}},{"masquerade""#).count(), 0);
        let back: Nftables<'_> = serde_json::from_str(&json).unwrap();
        assert!(back.objects.len() > 10);
        // The kernel takes it (the test runs as root, like the e2e suite).
        if available() {
            let name = format!("berth_unit_{}", std::process::id());
            apply(&ruleset(&name, &nets, &ports)).unwrap();
            let out = std::process::Command::new("nft").args(["list", "table", "inet", &name]).output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("dnat ip to 10.1.0.2:80"), "{text}");
            assert!(text.contains("fib daddr type local jump ports"), "{text}");
            apply(&ruleset(&name, &nets[..1], &[])).unwrap();
            remove(&name).unwrap();
            remove(&name).unwrap();
        }
    }
}
