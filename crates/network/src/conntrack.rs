//! Connection-tracking entries of a container that is gone. The kernel keeps a NATed
//! flow's entry while packets keep coming (a UDP client sending every few seconds
//! keeps it forever), so a published port given to a new container would go on
//! sending that client's packets to the old container's address. When an endpoint
//! goes, berthd deletes every entry that has its address on either side, as
//! libnetwork does; and nothing of a removed container stays in the table.
//!
//! ctnetlink's delete takes one tuple: the table is dumped, filtered here and each
//! match deleted (what `conntrack -D` does), through `netlink-packet-netfilter`'s
//! messages on a `NETLINK_NETFILTER` socket. A dump walks every bucket of the kernel's
//! table (~4-10 ms with the default 262144 buckets, however few entries there are), so
//! it is not done per container on the stop/remove path: a [`Purger`] thread batches
//! the addresses given back, and until their entries are gone the addresses are not
//! handed out again. It skips the walk when the kernel counts no entry at all, and
//! keeps its walks to a twentieth of one CPU when containers come and go back to back.

use std::io;
use std::net::IpAddr;

use netlink_packet_core::NLM_F_ACK;
use netlink_packet_core::NLM_F_DUMP;
use netlink_packet_netfilter::conntrack::{ConntrackAttribute, ConntrackMessage, IPTuple, Tuple};
use netlink_packet_netfilter::{NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily};
use netlink_sys::protocols::NETLINK_NETFILTER;

use crate::nl::Netlink;

/// The addresses of one tuple (source, destination).
fn addresses(t: &[Tuple]) -> Vec<IpAddr> {
    t.iter()
        .filter_map(|t| match t {
            Tuple::Ip(ips) => Some(ips),
            _ => None,
        })
        .flatten()
        .filter_map(|a| match a {
            IPTuple::SourceAddress(ip) | IPTuple::DestinationAddress(ip) => Some(*ip),
            _ => None,
        })
        .collect()
}

/// The original tuple of an entry that has one of `addrs` in either direction.
fn matching(attrs: &[ConntrackAttribute], addrs: &[IpAddr]) -> Option<Vec<Tuple>> {
    let mut orig = None;
    let mut hit = false;
    for a in attrs {
        match a {
            ConntrackAttribute::CtaTupleOrig(t) => {
                hit |= addresses(t).iter().any(|ip| addrs.contains(ip));
                orig = Some(t.clone());
            }
            ConntrackAttribute::CtaTupleReply(t) => hit |= addresses(t).iter().any(|ip| addrs.contains(ip)),
            _ => {}
        }
    }
    orig.filter(|_| hit)
}

/// Delete every conntrack entry (of the calling thread's network namespace) with one of
/// `addrs` as a source or destination, original or reply. Returns how many went.
pub fn purge(addrs: &[IpAddr]) -> io::Result<usize> {
    if addrs.is_empty() {
        return Ok(0);
    }
    let mut nl = Netlink::open_protocol(NETLINK_NETFILTER)?;
    let mut gone = 0;
    for (family, v6) in [(NetfilterProtoFamily::IPv4, false), (NetfilterProtoFamily::IPv6, true)] {
        if !addrs.iter().any(|a| a.is_ipv6() == v6) {
            continue;
        }
        let dump = NetfilterMessage::new(NetfilterHeader::new(family, 0, 0), ConntrackMessage::Get(Vec::new()));
        let entries = nl.exchange(dump, NLM_F_DUMP)?;
        for e in entries {
            let NetfilterMessageInner::Conntrack(ConntrackMessage::New(attrs) | ConntrackMessage::Get(attrs)) = e.inner else {
                continue;
            };
            let Some(orig) = matching(&attrs, addrs) else { continue };
            let del = NetfilterMessage::new(
                NetfilterHeader::new(family, 0, 0),
                ConntrackMessage::Delete(vec![ConntrackAttribute::CtaTupleOrig(orig)]),
            );
            match nl.exchange(del, NLM_F_ACK) {
                Ok(_) => gone += 1,
                // gone by itself since the dump
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(gone)
}

/// Addresses waiting for their entries to be deleted, and the thread that does it.
pub struct Purger {
    pending: std::sync::Mutex<std::collections::BTreeSet<IpAddr>>,
    wake: std::sync::Condvar,
}

/// How long the purger waits for more addresses before a dump.
const BATCH: std::time::Duration = std::time::Duration::from_millis(20);

/// After a dump that took `t`, the purger waits `DUTY × t` (at most [`MAX_REST`]) before
/// the next: with containers coming and going back to back, dumps would otherwise follow
/// each other every `BATCH`, one whole-table walk (~4 ms of CPU here) for every one or
/// two containers. So the walks take a twentieth of one CPU at most, each for more
/// addresses (a bridge's own multicast reports keep a few entries in the table of any
/// host with bridges, so an empty table is the exception).
const DUTY: u32 = 19;
const MAX_REST: std::time::Duration = std::time::Duration::from_secs(1);

/// The kernel's count of entries in this network namespace's table: a walk of an empty
/// table finds nothing. No such file: no connection tracking loaded, no table.
fn table_empty() -> bool {
    match std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_count") {
        Ok(n) => n.trim() == "0",
        Err(e) => e.kind() == io::ErrorKind::NotFound,
    }
}

impl Purger {
    /// Start the purger thread (it lives as long as the process).
    pub fn start() -> std::sync::Arc<Purger> {
        let p = std::sync::Arc::new(Purger { pending: Default::default(), wake: Default::default() });
        let worker = p.clone();
        std::thread::Builder::new()
            .name("conntrack-purge".into())
            .spawn(move || loop {
                {
                    let g = worker.pending.lock().unwrap();
                    drop(worker.wake.wait_while(g, |p| p.is_empty()).unwrap());
                }
                std::thread::sleep(BATCH);
                let t0 = std::time::Instant::now();
                if worker.flush() {
                    std::thread::sleep((t0.elapsed() * DUTY).min(MAX_REST));
                }
            })
            .expect("spawn the conntrack purger");
        p
    }

    /// Delete the entries of `addrs` soon (they stay [`Purger::pending`] until then).
    pub fn add(&self, addrs: &[IpAddr]) {
        if addrs.is_empty() {
            return;
        }
        self.pending.lock().unwrap().extend(addrs);
        self.wake.notify_all();
    }

    /// Addresses whose entries are not deleted yet: not to be handed out again.
    pub fn pending(&self) -> Vec<IpAddr> {
        self.pending.lock().unwrap().iter().copied().collect()
    }

    /// Delete the entries of every pending address now (one dump per family, none when
    /// the table is empty). Returns whether the table was walked.
    pub fn flush(&self) -> bool {
        let batch = self.pending();
        if batch.is_empty() {
            return false;
        }
        // Their containers are gone, so nothing adds entries with these addresses: an
        // empty table now has none to delete.
        let walked = !table_empty();
        if walked {
            if let Err(e) = purge(&batch) {
                tracing::warn!(addresses = ?batch, "delete conntrack entries: {e}");
            }
        }
        let mut g = self.pending.lock().unwrap();
        for ip in &batch {
            g.remove(ip);
        }
        walked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_netfilter::conntrack::{ProtoTuple, Protocol};

    fn tuple(src: &str, dst: &str) -> Vec<Tuple> {
        vec![
            Tuple::Ip(vec![IPTuple::SourceAddress(src.parse().unwrap()), IPTuple::DestinationAddress(dst.parse().unwrap())]),
            Tuple::Proto(vec![ProtoTuple::Protocol(Protocol::Udp), ProtoTuple::SourcePort(5000), ProtoTuple::DestinationPort(53)]),
        ]
    }

    #[test]
    fn entries_match_on_any_side_and_keep_their_original_tuple() {
        let gone: Vec<IpAddr> = vec!["172.28.0.5".parse().unwrap()];
        // a published port: the original tuple names the host, the reply the container
        let dnat = [
            ConntrackAttribute::CtaTupleOrig(tuple("127.0.0.1", "127.0.0.1")),
            ConntrackAttribute::CtaTupleReply(tuple("172.28.0.5", "172.28.0.1")),
        ];
        assert_eq!(matching(&dnat, &gone), Some(tuple("127.0.0.1", "127.0.0.1")));
        // the container's own outbound flow
        let out = [
            ConntrackAttribute::CtaTupleOrig(tuple("172.28.0.5", "10.0.0.1")),
            ConntrackAttribute::CtaTupleReply(tuple("10.0.0.1", "192.168.1.2")),
        ];
        assert!(matching(&out, &gone).is_some());
        let other = [
            ConntrackAttribute::CtaTupleOrig(tuple("172.28.0.6", "10.0.0.1")),
            ConntrackAttribute::CtaTupleReply(tuple("10.0.0.1", "172.28.0.6")),
        ];
        assert!(matching(&other, &gone).is_none());
    }
}
