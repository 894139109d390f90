//! A synchronous rtnetlink client: messages built with `rtnetlink`'s builders, sent
//! over a plain `NETLINK_ROUTE` socket (which belongs to the network namespace of the
//! thread that opened it). Container networking runs on the daemon's blocking threads
//! (`container::start::prepare`), so a blocking socket fits better than an async
//! connection per namespace.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::RawFd;

use netlink_packet_core::{
    NetlinkDeserializable, NetlinkMessage, NetlinkPayload, NetlinkSerializable, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP,
    NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::link::{InfoData, InfoVeth, LinkAttribute, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use rtnetlink::{AddressMessageBuilder, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

/// One link as a dump reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// The bridge it is attached to, if any.
    pub master: Option<u32>,
}

pub struct Netlink {
    sock: Socket,
    seq: u32,
}

fn decode_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("netlink: {e}"))
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Netlink> {
        Netlink::open_protocol(NETLINK_ROUTE)
    }

    /// A socket of another netlink family (`NETLINK_NETFILTER` for conntrack).
    pub(crate) fn open_protocol(protocol: isize) -> io::Result<Netlink> {
        let mut sock = Socket::new(protocol)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Netlink { sock, seq: 0 })
    }

    fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.exchange(msg, flags)
    }

    /// Send one request and collect the replies up to its ack (or the end of a dump).
    pub(crate) fn exchange<T>(&mut self, msg: T, flags: u16) -> io::Result<Vec<T>>
    where
        T: NetlinkSerializable + NetlinkDeserializable + std::fmt::Debug,
        NetlinkPayload<T>: From<T>,
    {
        self.seq = self.seq.wrapping_add(1);
        let mut nl = NetlinkMessage::from(msg);
        nl.header.flags = NLM_F_REQUEST | flags;
        nl.header.sequence_number = self.seq;
        nl.finalize();
        let mut buf = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut buf);
        self.sock.send(&buf, 0)?;
        let mut out = Vec::new();
        loop {
            let (data, _) = self.sock.recv_from_full()?;
            let mut off = 0;
            while off < data.len() {
                let m = NetlinkMessage::<T>::deserialize(&data[off..]).map_err(decode_err)?;
                let len = m.header.length as usize;
                if len == 0 {
                    break;
                }
                off += (len + 3) & !3;
                if m.header.sequence_number != self.seq {
                    continue;
                }
                match m.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            Some(_) => Err(e.to_io()),
                            None => Ok(out),
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::InnerMessage(i) => out.push(i),
                    _ => {}
                }
            }
        }
    }

    fn change(&mut self, msg: RouteNetlinkMessage) -> io::Result<()> {
        self.request(msg, NLM_F_ACK).map(drop)
    }

    fn create(&mut self, msg: RouteNetlinkMessage) -> io::Result<()> {
        self.request(msg, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL).map(drop)
    }

    /// Every link of the namespace.
    pub fn links(&mut self) -> io::Result<Vec<Link>> {
        let msg = LinkMessage::default();
        let replies = self.request(RouteNetlinkMessage::GetLink(msg), NLM_F_DUMP)?;
        Ok(replies
            .into_iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => Some(link_of(&l)),
                _ => None,
            })
            .collect())
    }

    /// The index of the link called `name`, if there is one.
    pub fn link_index(&mut self, name: &str) -> io::Result<Option<u32>> {
        let msg = LinkUnspec::new_with_name(name).build();
        match self.request(RouteNetlinkMessage::GetLink(msg), NLM_F_ACK) {
            Ok(r) => Ok(r.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Create a bridge (down; [`Netlink::set_up`] brings it up).
    pub fn add_bridge(&mut self, name: &str, mtu: Option<u32>) -> io::Result<()> {
        let mut b = LinkBridge::new(name);
        if let Some(m) = mtu {
            b = b.mtu(m);
        }
        self.create(RouteNetlinkMessage::NewLink(b.build()))
    }

    /// Create a veth pair in one request: `host` here, up and on the bridge `master`;
    /// `peer` directly in the namespace of `peer_ns` (an open namespace file) with MAC
    /// address `peer_mac`, down (the kernel cannot open a veth end before its pair is
    /// complete: [`Netlink::set_up`] it there). Named and addressed as they are made, the
    /// ends need no rename (a sysfs rename and a uevent) and three fewer round trips.
    pub fn add_veth(
        &mut self,
        host: &str,
        master: u32,
        peer: &str,
        peer_ns: RawFd,
        peer_mac: [u8; 6],
        mtu: Option<u32>,
    ) -> io::Result<()> {
        let mut p = LinkMessageBuilder::<LinkUnspec>::new()
            .name(peer.to_owned())
            .setns_by_fd(peer_ns)
            .address(peer_mac.to_vec());
        let mut b = LinkVeth::new(host, peer).controller(master).up();
        if let Some(m) = mtu {
            p = p.mtu(m);
            b = b.mtu(m);
        }
        let msg = b.set_info_data(InfoData::Veth(InfoVeth::Peer(p.build()))).build();
        self.create(RouteNetlinkMessage::NewLink(msg))
    }

    pub fn set_up(&mut self, index: u32) -> io::Result<()> {
        self.change(RouteNetlinkMessage::SetLink(LinkUnspec::new_with_index(index).up().build()))
    }

    pub fn set_down(&mut self, index: u32) -> io::Result<()> {
        self.change(RouteNetlinkMessage::SetLink(LinkUnspec::new_with_index(index).down().build()))
    }

    /// Rename a (down) link and set its MTU.
    pub fn rename(&mut self, index: u32, name: &str, mtu: u32) -> io::Result<()> {
        self.change(RouteNetlinkMessage::SetLink(LinkUnspec::new_with_index(index).name(name.to_owned()).mtu(mtu).build()))
    }

    /// Delete every address of a link.
    pub fn flush_addresses(&mut self, index: u32) -> io::Result<()> {
        use netlink_packet_route::address::AddressMessage;
        let replies = self.request(RouteNetlinkMessage::GetAddress(AddressMessage::default()), NLM_F_DUMP)?;
        for r in replies {
            let RouteNetlinkMessage::NewAddress(a) = r else { continue };
            if a.header.index != index {
                continue;
            }
            match self.change(RouteNetlinkMessage::DelAddress(a)) {
                // gone with an earlier one (IPv6 link-local addresses go with the link's down)
                Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => {}
                r => r?,
            }
        }
        Ok(())
    }

    /// The IPv4 addresses of a link, with their prefix lengths, in the kernel's order.
    pub fn ipv4_addresses(&mut self, index: u32) -> io::Result<Vec<(Ipv4Addr, u8)>> {
        use netlink_packet_route::address::{AddressAttribute, AddressMessage};
        let replies = self.request(RouteNetlinkMessage::GetAddress(AddressMessage::default()), NLM_F_DUMP)?;
        Ok(replies
            .into_iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewAddress(a) if a.header.index == index => {
                    let len = a.header.prefix_len;
                    a.attributes.iter().find_map(|at| match at {
                        AddressAttribute::Local(IpAddr::V4(ip)) => Some((*ip, len)),
                        _ => None,
                    })
                }
                _ => None,
            })
            .collect())
    }

    pub fn del_link(&mut self, index: u32) -> io::Result<()> {
        self.change(RouteNetlinkMessage::DelLink(LinkUnspec::new_with_index(index).build()))
    }

    /// Add an address; one that is already there is fine. IPv6 addresses skip
    /// duplicate address detection (`IFA_F_NODAD`, as dockerd adds them): the
    /// addresses come from berth's own allocator, and a tentative address could not
    /// be used for the first second or two of a container's life.
    pub fn add_address(&mut self, index: u32, ip: IpAddr, prefix: u8) -> io::Result<()> {
        use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags};
        let msg = match ip {
            IpAddr::V4(a) => AddressMessageBuilder::<Ipv4Addr>::new().index(index).address(a, prefix).build(),
            IpAddr::V6(a) => {
                let mut m = AddressMessageBuilder::<Ipv6Addr>::new().index(index).address(a, prefix).build();
                m.header.flags |= AddressHeaderFlags::Nodad;
                m.attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
                m
            }
        };
        match self.create(RouteNetlinkMessage::NewAddress(msg)) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            r => r,
        }
    }

    /// The default route via `gw` on link `dev` (the kernel needs the link for a
    /// link-local gateway, fe80::/64 networks' own).
    pub fn add_default_route(&mut self, gw: IpAddr, dev: u32) -> io::Result<()> {
        let msg = match gw {
            IpAddr::V4(a) => RouteMessageBuilder::<Ipv4Addr>::new().gateway(a).output_interface(dev).build(),
            IpAddr::V6(a) => RouteMessageBuilder::<Ipv6Addr>::new().gateway(a).output_interface(dev).build(),
        };
        match self.create(RouteNetlinkMessage::NewRoute(msg)) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            r => r,
        }
    }

    /// The IPv4 and IPv6 prefixes routed on this host (to choose subnets that do not
    /// overlap them).
    pub fn routes(&mut self) -> io::Result<Vec<ipnet::IpNet>> {
        use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
        let mut out = Vec::new();
        for family in [netlink_packet_route::AddressFamily::Inet, netlink_packet_route::AddressFamily::Inet6] {
            let mut msg = RouteMessage::default();
            msg.header.address_family = family;
            for r in self.request(RouteNetlinkMessage::GetRoute(msg), NLM_F_DUMP)? {
                let RouteNetlinkMessage::NewRoute(r) = r else { continue };
                let len = r.header.destination_prefix_length;
                for a in &r.attributes {
                    if let RouteAttribute::Destination(d) = a {
                        let ip = match d {
                            RouteAddress::Inet(v4) => IpAddr::V4(*v4),
                            RouteAddress::Inet6(v6) => IpAddr::V6(*v6),
                            _ => continue,
                        };
                        if let Ok(n) = ipnet::IpNet::new(ip, len) {
                            out.push(n.trunc());
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

fn link_of(l: &LinkMessage) -> Link {
    let mut name = String::new();
    let mut master = None;
    for a in &l.attributes {
        match a {
            LinkAttribute::IfName(n) => name = n.clone(),
            LinkAttribute::Controller(m) => master = Some(*m),
            _ => {}
        }
    }
    Link { index: l.header.index, name, master }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_loopback() {
        let mut nl = Netlink::open().unwrap();
        let links = nl.links().unwrap();
        assert!(links.iter().any(|l| l.name == "lo"), "{links:?}");
        assert_eq!(nl.link_index("lo").unwrap(), links.iter().find(|l| l.name == "lo").map(|l| l.index));
        assert_eq!(nl.link_index("berth-nolink").unwrap(), None);
    }
}
