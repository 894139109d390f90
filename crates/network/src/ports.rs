//! Published ports: host ports chosen (a given one, the first free one of a range, or
//! one the kernel picks) and held by a bound socket for as long as they are published,
//! so the host cannot hand them to anything else (and a port already in use is found
//! before any rule is written), as dockerd's port allocator and proxy hold them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};

use berth_errdefs::{Error, Result};
use nix::sys::socket::{bind, getsockname, socket, AddressFamily, SockFlag, SockType, SockaddrIn, SockaddrIn6, SockaddrStorage};

use crate::firewall::Proto;

/// One `-p` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRequest {
    pub proto: Proto,
    pub container_port: u16,
    pub host_ip: Option<IpAddr>,
    /// A port or range on the host; `None` (or 0): any free port.
    pub host_ports: Option<(u16, u16)>,
}

/// A port as published.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Binding {
    pub proto: Proto,
    pub container_port: u16,
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
}

impl serde::Serialize for Proto {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Proto {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = String::deserialize(d)?;
        Proto::parse(&v).ok_or_else(|| serde::de::Error::custom(format!("unknown protocol {v}")))
    }
}

/// The sockets that hold a container's published ports.
#[derive(Debug, Default)]
pub struct Reserved(#[allow(dead_code)] Vec<OwnedFd>);

/// Bind `ip:port` for `proto` (port 0: the kernel picks); the socket and the port.
/// (SCTP ports are not held: the kernel module may not even be loaded; such a port
/// must be given.)
fn hold(proto: Proto, ip: IpAddr, port: u16) -> std::io::Result<(Option<OwnedFd>, u16)> {
    let family = if ip.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
    let ty = match proto {
        Proto::Tcp => SockType::Stream,
        Proto::Udp => SockType::Datagram,
        Proto::Sctp if port != 0 => return Ok((None, port)),
        Proto::Sctp => return Err(std::io::Error::other("an SCTP port must be published with a host port")),
    };
    let fd = socket(family, ty, SockFlag::SOCK_CLOEXEC, None)?;
    match SocketAddr::new(ip, port) {
        SocketAddr::V4(a) => bind(fd.as_raw_fd(), &SockaddrIn::from(a))?,
        SocketAddr::V6(a) => bind(fd.as_raw_fd(), &SockaddrIn6::from(a))?,
    }
    let got: SockaddrStorage = getsockname(fd.as_raw_fd())?;
    let port = got.as_sockaddr_in().map(|a| a.port()).or_else(|| got.as_sockaddr_in6().map(|a| a.port())).unwrap_or(port);
    Ok((Some(fd), port))
}

/// How long a given port that is in use may take to come free. A port released a
/// moment ago (its container removed, as `compose up` does before it recreates one)
/// stays bound while any process spawned meanwhile (berthd's `nft`, a shim) still
/// holds a copy of berthd's descriptors: close-on-exec ones go only at its `execve`.
const RELEASE_GRACE: std::time::Duration = std::time::Duration::from_millis(250);

/// [`hold`] a port the user gave, waiting out [`RELEASE_GRACE`] while it is in use.
fn hold_given(proto: Proto, ip: IpAddr, port: u16) -> std::io::Result<(Option<OwnedFd>, u16)> {
    let deadline = std::time::Instant::now() + RELEASE_GRACE;
    loop {
        match hold(proto, ip, port) {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            r => return r,
        }
    }
}

fn in_use(proto: Proto, ip: Option<IpAddr>, port: u16) -> Error {
    let ip = ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into());
    Error::internal(format!(
        "driver failed programming external connectivity on endpoint: Bind for {ip}:{port} failed: port is already allocated ({})",
        proto.as_str()
    ))
}

/// Choose and hold host ports for `reqs`. A range maps to a range of the same length
/// one to one; a single host range for one container port takes its first free port.
pub fn reserve(reqs: &[PortRequest], default_ip: Option<IpAddr>) -> Result<(Vec<Binding>, Reserved)> {
    let mut held = Vec::new();
    let mut out = Vec::new();
    for r in reqs {
        let host_ip = r.host_ip.or(default_ip);
        let bind_ip = host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let (fd, port) = match r.host_ports {
            None | Some((0, 0)) => hold(r.proto, bind_ip, 0).map_err(|e| Error::internal(format!("allocate a host port: {e}")))?,
            Some((a, b)) if a == b => hold_given(r.proto, bind_ip, a).map_err(|_| in_use(r.proto, host_ip, a))?,
            Some((a, b)) => {
                let taken: Vec<u16> = out.iter().filter(|x: &&Binding| x.proto == r.proto).map(|x| x.host_port).collect();
                let mut found = None;
                for p in a..=b {
                    if taken.contains(&p) {
                        continue;
                    }
                    if let Ok(h) = hold(r.proto, bind_ip, p) {
                        found = Some(h);
                        break;
                    }
                }
                found.ok_or_else(|| in_use(r.proto, host_ip, a))?
            }
        };
        held.extend(fd);
        out.push(Binding { proto: r.proto, container_port: r.container_port, host_ip, host_port: port });
    }
    Ok((out, Reserved(held)))
}

/// Hold the ports of bindings made before (after a daemon restart).
pub fn rehold(bindings: &[Binding]) -> Reserved {
    let mut held = Vec::new();
    for b in bindings {
        let ip = b.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        match hold(b.proto, ip, b.host_port) {
            Ok((fd, _)) => held.extend(fd),
            Err(e) => tracing::warn!("cannot hold published port {ip}:{}/{}: {e}", b.host_port, b.proto.as_str()),
        }
    }
    Reserved(held)
}

/// Parse a `-p` host part `8080`, `8000-8010` or empty.
pub fn parse_host_ports(s: &str) -> Result<Option<(u16, u16)>> {
    if s.is_empty() {
        return Ok(None);
    }
    let bad = || Error::invalid(format!("invalid hostPort: {s}"));
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u16 = a.parse().map_err(|_| bad())?;
    let b: u16 = b.parse().map_err(|_| bad())?;
    if a > b {
        return Err(bad());
    }
    Ok(Some((a, b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs in a network namespace of its own: on the host, any other process (a
    /// parallel test's connection, say) may take a released ephemeral port before the
    /// test binds it again.
    #[test]
    fn reserves_ports_and_refuses_taken_ones() {
        std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare a network namespace (needs root)");
            crate::netns::loopback_up().expect("loopback up");
            reserve_refuse_release();
        })
        .join()
        .unwrap();
    }

    /// A given port that comes free within the grace is taken; one that stays in use
    /// is refused once the grace has passed.
    #[test]
    fn a_given_port_released_meanwhile_is_taken() {
        std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare a network namespace (needs root)");
            crate::netns::loopback_up().expect("loopback up");
            let lo: IpAddr = "127.0.0.1".parse().unwrap();
            let (fd, port) = hold(Proto::Tcp, lo, 0).unwrap();
            let req = PortRequest { proto: Proto::Tcp, container_port: 80, host_ip: Some(lo), host_ports: Some((port, port)) };
            let t = std::time::Instant::now();
            assert!(reserve(std::slice::from_ref(&req), None).is_err());
            assert!(t.elapsed() >= RELEASE_GRACE);
            let releaser = std::thread::spawn(move || {
                std::thread::sleep(RELEASE_GRACE / 5);
                drop(fd);
            });
            let (b, _held) = reserve(&[req], None).expect("taken once released");
            assert_eq!(b[0].host_port, port);
            releaser.join().unwrap();
        })
        .join()
        .unwrap();
    }

    fn reserve_refuse_release() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let (b, held) = reserve(
            &[
                PortRequest { proto: Proto::Tcp, container_port: 80, host_ip: Some(lo), host_ports: None },
                PortRequest { proto: Proto::Udp, container_port: 53, host_ip: Some(lo), host_ports: None },
            ],
            None,
        )
        .unwrap();
        assert!(b[0].host_port > 0 && b[1].host_port > 0);
        // The same TCP port again is refused while held.
        let again = PortRequest { proto: Proto::Tcp, container_port: 80, host_ip: Some(lo), host_ports: Some((b[0].host_port, b[0].host_port)) };
        let e = reserve(std::slice::from_ref(&again), None).unwrap_err();
        assert!(e.message().contains("port is already allocated"), "{}", e.message());
        // A range skips it.
        let range = PortRequest { host_ports: Some((b[0].host_port, b[0].host_port.saturating_add(5))), ..again.clone() };
        let (r, _h2) = reserve(&[range], None).unwrap();
        assert_ne!(r[0].host_port, b[0].host_port);
        drop(held);
        // Released with its sockets (a process another test's thread spawns meanwhile,
        // the firewall tests' `nft`, holds them until it execs: the grace covers it).
        assert!(reserve(std::slice::from_ref(&again), None).is_ok(), "released with its sockets");
        assert_eq!(parse_host_ports("8000-8002").unwrap(), Some((8000, 8002)));
        assert!(parse_host_ports("9-8").is_err());
    }
}
