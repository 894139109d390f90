//! The embedded DNS server of user-defined networks: each container on such a network
//! gets `nameserver 127.0.0.11` and a UDP and TCP socket bound there inside its own
//! network namespace, served by the daemon. A socket belongs to one container, so an
//! answer is scoped to the networks that container is on: the names of the containers
//! it shares a network with (container names, network aliases, short ids) resolve to
//! their addresses, several in shuffled order (round robin); anything else goes to the
//! container's upstream resolvers (the host's, or `--dns`) from the host's namespace.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use berth_errdefs::{Error, Result};
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where containers find the embedded server (as with Docker).
pub const ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
/// TTL of local answers (Docker's).
const TTL: u32 = 600;
/// How long an upstream server gets to answer.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);

/// The daemon's view of names, per asking container.
pub trait Resolve: Send + Sync + 'static {
    /// The addresses `name` has on the networks `asker` is on; `None` when no
    /// container there has that name.
    fn lookup(&self, asker: &str, name: &str) -> Option<Vec<IpAddr>>;
    /// The name of the container with address `ip` on a network `asker` is on.
    fn reverse(&self, asker: &str, ip: IpAddr) -> Option<String>;
    /// Where to send what is not a container's name.
    fn upstreams(&self, asker: &str) -> Vec<SocketAddr>;
}

/// The answer to a query that is about the containers (None: forward it).
pub fn answer_local(query: &[u8], asker: &str, r: &dyn Resolve) -> Option<Vec<u8>> {
    let msg = Message::from_vec(query).ok()?;
    if msg.metadata.message_type != MessageType::Query || msg.metadata.op_code != OpCode::Query || msg.queries.len() != 1 {
        return None;
    }
    let q = &msg.queries[0];
    if q.query_class() != DNSClass::IN {
        return None;
    }
    let qname = q.name().clone();
    let ascii = qname.to_ascii().to_ascii_lowercase();
    let name = ascii.trim_end_matches('.');
    let mut answers: Vec<Record> = Vec::new();
    match q.query_type() {
        RecordType::PTR => {
            let ip = reverse_name(name)?;
            let found = r.reverse(asker, ip)?;
            let target = Name::from_ascii(format!("{found}.")).ok()?;
            answers.push(Record::from_rdata(qname.clone(), TTL, RData::PTR(PTR(target))));
        }
        t @ (RecordType::A | RecordType::AAAA | RecordType::ANY) => {
            let mut ips = r.lookup(asker, name)?;
            shuffle(&mut ips);
            for ip in ips {
                match ip {
                    IpAddr::V4(a) if t != RecordType::AAAA => {
                        answers.push(Record::from_rdata(qname.clone(), TTL, RData::A(A(a))))
                    }
                    IpAddr::V6(a) if t != RecordType::A => {
                        answers.push(Record::from_rdata(qname.clone(), TTL, RData::AAAA(AAAA(a))))
                    }
                    _ => {}
                }
            }
        }
        // A name of ours asked for another type: it exists, with nothing of that type.
        _ => {
            r.lookup(asker, name)?;
        }
    }
    let mut resp = Message::response(msg.metadata.id, OpCode::Query);
    resp.metadata.recursion_desired = msg.metadata.recursion_desired;
    // dockerd's embedded server does not claim authority for the names it answers
    // (`nslookup` in a container prints "Non-authoritative answer:").
    resp.metadata.recursion_available = true;
    resp.metadata.response_code = ResponseCode::NoError;
    resp.add_query(q.clone());
    resp.add_answers(answers);
    resp.to_vec().ok()
}

/// `4.3.2.1.in-addr.arpa` → 1.2.3.4 (and the IPv6 nibble form).
fn reverse_name(name: &str) -> Option<IpAddr> {
    if let Some(v4) = name.strip_suffix(".in-addr.arpa") {
        let mut parts: Vec<u8> = v4.split('.').map(|p| p.parse().ok()).collect::<Option<Vec<u8>>>()?;
        if parts.len() != 4 {
            return None;
        }
        parts.reverse();
        return Some(IpAddr::V4(Ipv4Addr::new(parts[0], parts[1], parts[2], parts[3])));
    }
    let v6 = name.strip_suffix(".ip6.arpa")?;
    let nibbles: Vec<u8> = v6.split('.').map(|n| u8::from_str_radix(n, 16).ok()).collect::<Option<Vec<u8>>>()?;
    if nibbles.len() != 32 {
        return None;
    }
    let mut b = [0u8; 16];
    for (i, pair) in nibbles.iter().rev().collect::<Vec<_>>().chunks(2).enumerate() {
        b[i] = (pair[0] << 4) | pair[1];
    }
    Some(IpAddr::V6(b.into()))
}

fn shuffle(v: &mut [IpAddr]) {
    for i in (1..v.len()).rev() {
        let j = rand::random_range(0..=i);
        v.swap(i, j);
    }
}

/// SERVFAIL for a query nobody could answer.
fn servfail(query: &[u8]) -> Option<Vec<u8>> {
    let msg = Message::from_vec(query).ok()?;
    let mut resp = Message::error_msg(msg.metadata.id, msg.metadata.op_code, ResponseCode::ServFail);
    resp.add_queries(msg.queries.clone());
    resp.metadata.recursion_available = true;
    resp.to_vec().ok()
}

/// Ask the upstream servers over UDP, one after another.
async fn forward_udp(query: &[u8], upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
    for up in upstreams {
        let bind: SocketAddr = if up.is_ipv4() { "0.0.0.0:0".parse().ok()? } else { "[::]:0".parse().ok()? };
        let Ok(sock) = tokio::net::UdpSocket::bind(bind).await else { continue };
        if sock.connect(up).await.is_err() || sock.send(query).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 65535];
        if let Ok(Ok(n)) = tokio::time::timeout(UPSTREAM_TIMEOUT, sock.recv(&mut buf)).await {
            if n >= 2 && query.len() >= 2 && buf[..2] == query[..2] {
                buf.truncate(n);
                return Some(buf);
            }
        }
    }
    None
}

/// Ask the upstream servers over TCP.
async fn forward_tcp(query: &[u8], upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
    for up in upstreams {
        let Ok(Ok(mut s)) = tokio::time::timeout(UPSTREAM_TIMEOUT, tokio::net::TcpStream::connect(up)).await else {
            continue;
        };
        let mut framed = (query.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(query);
        let asked = async {
            s.write_all(&framed).await.ok()?;
            let len = s.read_u16().await.ok()? as usize;
            let mut buf = vec![0u8; len];
            s.read_exact(&mut buf).await.ok()?;
            Some(buf)
        };
        if let Ok(Some(b)) = tokio::time::timeout(UPSTREAM_TIMEOUT, asked).await {
            return Some(b);
        }
    }
    None
}

/// Serve one container's UDP socket until it is closed (the namespace went away, or
/// the daemon stops serving it).
pub async fn serve_udp(sock: tokio::net::UdpSocket, asker: String, r: Arc<dyn Resolve>) {
    let sock = Arc::new(sock);
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf).await else { return };
        let query = buf[..n].to_vec();
        if let Some(a) = answer_local(&query, &asker, &*r) {
            let _ = sock.send_to(&a, from).await;
            continue;
        }
        // Forwarding waits for the network: do not hold up the next query.
        let (sock, r, asker) = (sock.clone(), r.clone(), asker.clone());
        tokio::spawn(async move {
            let ups = r.upstreams(&asker);
            let a = match forward_udp(&query, &ups).await {
                Some(a) => Some(a),
                None => servfail(&query),
            };
            if let Some(a) = a {
                let _ = sock.send_to(&a, from).await;
            }
        });
    }
}

/// Serve one container's TCP listener.
pub async fn serve_tcp(l: tokio::net::TcpListener, asker: String, r: Arc<dyn Resolve>) {
    loop {
        let Ok((mut s, _)) = l.accept().await else { return };
        let (r, asker) = (r.clone(), asker.clone());
        tokio::spawn(async move {
            loop {
                let Ok(Ok(len)) = tokio::time::timeout(Duration::from_secs(10), s.read_u16()).await else { return };
                let mut q = vec![0u8; len as usize];
                if s.read_exact(&mut q).await.is_err() {
                    return;
                }
                let a = match answer_local(&q, &asker, &*r) {
                    Some(a) => Some(a),
                    None => match forward_tcp(&q, &r.upstreams(&asker)).await {
                        Some(a) => Some(a),
                        None => servfail(&q),
                    },
                };
                let Some(a) = a else { return };
                let mut framed = (a.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&a);
                if s.write_all(&framed).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// The UDP and TCP sockets at 127.0.0.11:53 inside a container's namespace.
pub fn bind_in(netns: &Path) -> Result<(std::net::UdpSocket, std::net::TcpListener)> {
    crate::netns::run_in(netns, || {
        let addr = SocketAddr::from((ADDRESS, 53));
        let u = std::net::UdpSocket::bind(addr).map_err(|e| Error::internal(format!("DNS socket {addr}/udp: {e}")))?;
        let t = std::net::TcpListener::bind(addr).map_err(|e| Error::internal(format!("DNS socket {addr}/tcp: {e}")))?;
        u.set_nonblocking(true)?;
        t.set_nonblocking(true)?;
        Ok((u, t))
    })
}

/// Upstream servers from resolv.conf text (`nameserver` lines), on port 53.
pub fn nameservers(resolv_conf: &str) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|ns| ns.trim().split('%').next()?.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;

    struct Fixed;
    impl Resolve for Fixed {
        fn lookup(&self, _asker: &str, name: &str) -> Option<Vec<IpAddr>> {
            match name {
                "web" => Some(vec!["10.0.0.2".parse().unwrap(), "10.0.0.3".parse().unwrap()]),
                "db" => Some(vec!["10.0.0.4".parse().unwrap()]),
                _ => None,
            }
        }
        fn reverse(&self, _asker: &str, ip: IpAddr) -> Option<String> {
            (ip == "10.0.0.4".parse::<IpAddr>().unwrap()).then(|| "db".to_owned())
        }
        fn upstreams(&self, _asker: &str) -> Vec<SocketAddr> {
            Vec::new()
        }
    }

    fn ask(name: &str, t: RecordType) -> Vec<u8> {
        let mut m = Message::query();
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        m.to_vec().unwrap()
    }

    #[test]
    fn answers_container_names_and_forwards_the_rest() {
        let a = Message::from_vec(&answer_local(&ask("web.", RecordType::A), "c1", &Fixed).unwrap()).unwrap();
        assert_eq!(a.answers.len(), 2);
        assert_eq!(a.metadata.response_code, ResponseCode::NoError);
        assert!(!a.metadata.authoritative && a.metadata.recursion_available, "dockerd's flags");
        let a = Message::from_vec(&answer_local(&ask("WEB", RecordType::AAAA), "c1", &Fixed).unwrap()).unwrap();
        assert!(a.answers.is_empty(), "a name without IPv6 has no AAAA, and is not NXDOMAIN");
        let a = Message::from_vec(&answer_local(&ask("4.0.0.10.in-addr.arpa.", RecordType::PTR), "c1", &Fixed).unwrap()).unwrap();
        assert_eq!(a.answers[0].data.to_string(), "db.");
        assert!(answer_local(&ask("example.com.", RecordType::A), "c1", &Fixed).is_none());
        assert!(servfail(&ask("example.com.", RecordType::A)).is_some());
    }

    #[test]
    fn reverse_names_and_nameservers() {
        assert_eq!(reverse_name("2.0.17.172.in-addr.arpa"), Some("172.17.0.2".parse().unwrap()));
        let v6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa";
        assert_eq!(reverse_name(v6), Some("fd00::1".parse().unwrap()));
        assert_eq!(nameservers("# x\nnameserver 10.0.0.1\nnameserver fe80::1%eth0\nsearch a"), vec![
            "10.0.0.1:53".parse::<SocketAddr>().unwrap(),
            "[fe80::1]:53".parse().unwrap()
        ]);
    }
}
