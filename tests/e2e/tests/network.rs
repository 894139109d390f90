//! Bridge networks: names resolved by the embedded DNS server, published ports, isolation,
//! the network API through both CLIs, and what is left on the host (nothing).
//! Traffic goes only to loopback and to addresses inside namespaces berth creates.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use berth_e2e::{wait_until, Cli, Daemon};

/// `GET /hostname` from busybox httpd serving /etc.
fn http_get(addr: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(b"GET /hostname HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split("\r\n\r\n").nth(1).map(|b| b.trim().to_owned())
}

/// `GET /hostname` until it answers `want` (for up to 10 s): one full-suite run saw a
/// published port answer on 127.0.0.1 and, just after, not yet on the gateway address.
fn answers(addr: SocketAddr, want: &str) -> bool {
    wait_until(Duration::from_secs(10), || http_get(addr).as_deref() == Some(want))
}

fn httpd(d: &Daemon, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(extra);
    args.extend(["busybox", "httpd", "-f", "-p", "80", "-h", "/etc"]);
    let id = d.berth(&args).ok().trim().to_owned();
    id[..12].to_owned()
}

/// `wget` from a new container on `net`; its output or the error.
fn fetch_from(d: &Daemon, net: &str, url: &str) -> String {
    let o = d.berth(&["run", "--rm", "--network", net, "busybox", "sh", "-c", &format!("timeout 5 wget -q -O- {url} 2>&1; echo rc=$?")]);
    o.stdout.clone()
}

fn ip_output(args: &[&str]) -> String {
    Command::new("ip").args(args).output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
}

fn gateway(d: &Daemon, net: &str) -> IpAddr {
    let v = d.api("GET", &format!("/networks/{net}")).json();
    v["IPAM"]["Config"][0]["Gateway"].as_str().unwrap().parse().unwrap()
}

#[test]
fn containers_on_a_user_network_reach_each_other_by_name_and_alias() {
    let d = Daemon::start();
    for cli in Cli::ALL {
        let net = format!("app-{}", cli.name());
        let other = format!("other-{}", cli.name());
        d.cli(cli, &["network", "create", &net]).ok();
        d.cli(cli, &["network", "create", &other]).ok();
        let web = format!("web-{}", cli.name());
        let short = httpd(&d, &web, &["--network", &net, "--network-alias", "webalias"]);
        // By name, by alias, by short id; round-trips through the embedded DNS server.
        for host in [web.as_str(), "webalias", short.as_str()] {
            let out = fetch_from(&d, &net, &format!("http://{host}/hostname"));
            assert_eq!(out, format!("{short}\nrc=0\n"), "{}: {host}", cli.name());
        }
        let o = d.berth(&["run", "--rm", "--network", &net, "busybox", "cat", "/etc/resolv.conf"]);
        assert!(o.ok().starts_with("nameserver 127.0.0.11\n"), "{o}");
        // Another network does not see it...
        let out = fetch_from(&d, &other, &format!("http://{web}/hostname"));
        assert!(!out.contains(&short), "{}: {out}", cli.name());
        // ...until it is connected there with an alias of that network.
        d.cli(cli, &["network", "connect", "--alias", "otheralias", &other, &web]).ok();
        let out = fetch_from(&d, &other, "http://otheralias/hostname");
        assert_eq!(out, format!("{short}\nrc=0\n"), "{}", cli.name());
        let v = d.inspect(&web);
        let nets = v["NetworkSettings"]["Networks"].as_object().unwrap();
        assert!(nets.contains_key(&net) && nets.contains_key(&other), "{v}");
        assert!(nets[&other]["Aliases"].as_array().unwrap().iter().any(|a| a == "otheralias"), "{v}");
        assert!(!nets[&other]["IPAddress"].as_str().unwrap().is_empty());
        let inspect = d.api("GET", &format!("/networks/{other}")).json();
        assert!(inspect["Containers"].as_object().unwrap().values().any(|c| c["Name"] == web.as_str()), "{inspect}");
        // Disconnected: unreachable from there again.
        d.cli(cli, &["network", "disconnect", &other, &web]).ok();
        let out = fetch_from(&d, &other, "http://otheralias/hostname");
        assert!(!out.contains(&short), "{}: {out}", cli.name());
        // In use: cannot be removed (403, dockerd's words).
        let o = d.cli(cli, &["network", "rm", &net]);
        assert!(o.code != 0 && o.stderr.contains("has active endpoints"), "{}: {o}", cli.name());
        d.cli(cli, &["rm", "-f", &web]).ok();
        d.cli(cli, &["network", "rm", &net, &other]).ok();
    }
}

#[test]
fn published_ports_answer_from_the_host_and_from_containers() {
    let d = Daemon::start();
    let gw = gateway(&d, "bridge");
    for cli in Cli::ALL {
        let name = format!("pub-{}", cli.name());
        let short = {
            let id = d.cli(cli, &["run", "-d", "--name", &name, "-p", "127.0.0.1::80", "-P", "--expose", "81", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc"]).ok().trim().to_owned();
            id[..12].to_owned()
        };
        let o = d.cli(cli, &["port", &name, "80/tcp"]);
        let port: u16 = o.ok().lines().next().unwrap().rsplit(':').next().unwrap().parse().unwrap();
        assert!(o.ok().starts_with("127.0.0.1:"), "{o}");
        assert!(answers(SocketAddr::from(([127, 0, 0, 1], port)), &short), "{}", cli.name());
        // -P published the exposed 81 too, on a free port.
        let all = d.cli(cli, &["port", &name]);
        assert!(all.ok().contains("81/tcp -> 0.0.0.0:"), "{all}");
        let ps = d.cli(cli, &["ps", "--filter", &format!("name={name}"), "--format", "{{.Ports}}"]);
        assert!(ps.ok().contains(&format!("127.0.0.1:{port}->80/tcp")), "{ps}");
        d.cli(cli, &["rm", "-f", &name]).ok();
        assert!(http_get(SocketAddr::from(([127, 0, 0, 1], port))).is_none(), "still published after removal");
    }
    // A fixed port and a range, reached from the host and (hairpin) from containers on
    // the default bridge and on a user network, through the gateway's address.
    let short = httpd(&d, "fixed", &["-p", "0:80", "-p", "18000-18010:80"]);
    let ports = d.inspect("fixed")["NetworkSettings"]["Ports"]["80/tcp"].clone();
    let host_ports: Vec<u16> = ports.as_array().unwrap().iter().map(|p| p["HostPort"].as_str().unwrap().parse().unwrap()).collect();
    assert_eq!(host_ports.len(), 2, "{ports}");
    assert!(host_ports.iter().any(|p| (18000..=18010).contains(p)), "{host_ports:?}");
    for p in &host_ports {
        assert!(answers(SocketAddr::from(([127, 0, 0, 1], *p)), &short), "127.0.0.1:{p}");
        assert!(answers(SocketAddr::new(gw, *p), &short), "{gw}:{p}");
    }
    d.berth(&["network", "create", "hairpin"]).ok();
    for net in ["bridge", "hairpin"] {
        let out = fetch_from(&d, net, &format!("http://{gw}:{}/hostname", host_ports[0]));
        assert_eq!(out, format!("{short}\nrc=0\n"), "from {net}");
    }
    // The port is held: another container cannot take it.
    let o = d.berth(&["run", "--rm", "-p", &format!("{}:80", host_ports[0]), "busybox", "true"]);
    assert!(o.code == 125 && o.stderr.contains("port is already allocated"), "{o}");
    // UDP, served by the host's python3 bound into the container.
    d.berth(&[
        "run", "-d", "--name", "udp", "-p", "127.0.0.1:0:9999/udp", "-v", "/usr:/usr:ro", "-v", "/lib:/lib:ro", "-v", "/lib64:/lib64:ro",
        "busybox", "/usr/bin/python3", "-c",
        "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('0.0.0.0',9999))\nwhile True:\n d,a=s.recvfrom(100)\n s.sendto(b'pong-'+d,a)",
    ])
    .ok();
    let udp_port: u16 = d.berth(&["port", "udp", "9999/udp"]).ok().trim().rsplit(':').next().unwrap().parse().unwrap();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut got = String::new();
    assert!(wait_until(Duration::from_secs(10), || {
        let _ = sock.send_to(b"ping", ("127.0.0.1", udp_port));
        let mut buf = [0u8; 64];
        match sock.recv_from(&mut buf) {
            Ok((n, _)) => {
                got = String::from_utf8_lossy(&buf[..n]).into_owned();
                true
            }
            Err(_) => false,
        }
    }));
    assert_eq!(got, "pong-ping");
    d.berth(&["rm", "-f", "fixed", "udp"]).ok();
    d.berth(&["network", "rm", "hairpin"]).ok();
}

#[test]
fn networks_are_isolated_and_internal_ones_have_no_way_out() {
    let d = Daemon::start();
    d.berth(&["network", "create", "iso-a"]).ok();
    d.berth(&["network", "create", "--internal", "iso-int"]).ok();
    let short = httpd(&d, "iso-web", &["--network", "iso-a"]);
    let ip = d.inspect("iso-web")["NetworkSettings"]["Networks"]["iso-a"]["IPAddress"].as_str().unwrap().to_owned();
    // From the default bridge, a user network's container is out of reach by address.
    let out = fetch_from(&d, "bridge", &format!("http://{ip}/hostname"));
    assert!(!out.contains(&short), "{out}");
    // The internal network reaches neither the host's bridge address nor anything else.
    let gw = gateway(&d, "bridge");
    let pub_id = httpd(&d, "iso-pub", &["-p", "0:80"]);
    let port = d.inspect("iso-pub")["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"].as_str().unwrap().to_owned();
    assert_eq!(fetch_from(&d, "bridge", &format!("http://{gw}:{port}/hostname")), format!("{pub_id}\nrc=0\n"));
    let out = fetch_from(&d, "iso-int", &format!("http://{gw}:{port}/hostname"));
    assert!(!out.contains(&pub_id), "{out}");
    let o = d.berth(&["run", "--rm", "--network", "iso-int", "busybox", "ip", "route"]);
    assert!(!o.ok().contains("default"), "{o}");
    // --network container: shares the namespace; --network host sees the host's links.
    let o = d.berth(&["run", "--rm", "--network", "container:iso-web", "busybox", "wget", "-q", "-O-", "http://127.0.0.1/hostname"]);
    assert_eq!(o.ok().trim(), short);
    let o = d.berth(&["run", "--rm", "--network", "host", "busybox", "ip", "-o", "link"]);
    assert!(o.ok().contains(d.bridge()), "{o}");
    let o = d.berth(&["run", "--rm", "--network", "none", "busybox", "ip", "-o", "link"]);
    assert_eq!(o.ok().lines().count(), 1, "{o}");
    d.berth(&["rm", "-f", "iso-web", "iso-pub"]).ok();
    d.berth(&["network", "rm", "iso-a", "iso-int"]).ok();
}

#[test]
fn networking_survives_a_daemon_crash_and_leaves_nothing_behind() {
    let mut d = Daemon::start();
    d.berth(&["network", "create", "--subnet", "10.231.0.0/24", "crashnet"]).ok();
    // A subnet given without its gateway shows as given (dockerd's inspect), the
    // first address being the gateway all the same.
    let n = d.api("GET", "/networks/crashnet").json();
    assert_eq!(n["IPAM"]["Config"], serde_json::json!([{"Subnet": "10.231.0.0/24"}]), "{n}");
    let net_id = n["Id"].as_str().unwrap().to_owned();
    let br = format!("br-{}", &net_id[..12]);
    assert!(ip_output(&["-br", "link", "show", &br]).contains(&br));
    let short = httpd(&d, "cweb", &["--network", "crashnet", "-p", "127.0.0.1:0:80"]);
    let port: u16 = d.berth(&["port", "cweb", "80"]).ok().trim().rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(http_get(SocketAddr::from(([127, 0, 0, 1], port))).as_deref(), Some(short.as_str()));
    d.restart();
    // The port still answers, and names still resolve (the DNS server is back).
    assert!(wait_until(Duration::from_secs(10), || http_get(SocketAddr::from(([127, 0, 0, 1], port))).as_deref() == Some(short.as_str())));
    assert_eq!(fetch_from(&d, "crashnet", "http://cweb/hostname"), format!("{short}\nrc=0\n"));
    // An address is never handed out twice across the restart.
    d.berth(&["run", "-d", "--name", "c2", "--network", "crashnet", "busybox", "sleep", "60"]).ok();
    let ip1 = d.inspect("cweb")["NetworkSettings"]["Networks"]["crashnet"]["IPAddress"].clone();
    let ip2 = d.inspect("c2")["NetworkSettings"]["Networks"]["crashnet"]["IPAddress"].clone();
    assert_ne!(ip1, ip2);
    // Static addresses: in the subnet and free, or refused.
    let o = d.berth(&["run", "--rm", "--network", "crashnet", "--ip", "10.231.0.77", "busybox", "ip", "-o", "-4", "addr", "show", "eth0"]);
    assert!(o.ok().contains("10.231.0.77/24"), "{o}");
    let o = d.berth(&["run", "--rm", "--network", "crashnet", "--ip", ip1.as_str().unwrap(), "busybox", "true"]);
    assert!(o.code != 0 && o.stderr.contains("Address already in use"), "{o}");
    let o = d.berth(&["run", "--rm", "--network", "crashnet", "--ip", "10.9.9.9", "busybox", "true"]);
    assert!(o.code != 0 && o.stderr.contains("does not belong"), "{o}");
    // Bad network create requests leave nothing half made.
    for (args, want) in [
        (&["--subnet", "10.231.0.0/16", "dup"][..], "Pool overlaps"),
        (&["--subnet", "10.232.0.0/24", "--gateway", "10.9.0.1", "badgw"][..], "no matching subnet for gateway"),
        (&["crashnet"][..], "already exists"),
        (&["-d", "nosuchdriver", "x"][..], "not found"),
    ] {
        let mut a = vec!["network", "create"];
        a.extend_from_slice(args);
        let o = d.berth(&a);
        assert!(o.code != 0 && o.stderr.contains(want), "{args:?}: {o}");
    }
    d.berth(&["rm", "-f", "cweb", "c2"]).ok();
    d.berth(&["network", "rm", "crashnet"]).ok();
    assert!(http_get(SocketAddr::from(([127, 0, 0, 1], port))).is_none());
    // No link or address of berth's remains: the network's bridge is gone, and no
    // veth is left on it or on the default bridge.
    assert!(ip_output(&["-br", "link", "show", &br]).is_empty(), "{br} is still there");
    assert!(ip_output(&["-br", "link", "show", "master", d.bridge()]).trim().is_empty());
    let addrs = ip_output(&["-br", "addr"]);
    assert!(!addrs.contains("10.231.0."), "addresses:\n{addrs}");
    // The port's rule goes with its container; the network's rules go with the
    // table's next rewrite, moments after the removal.
    let rules = || String::from_utf8_lossy(&Command::new("nft").args(["list", "table", "inet", &d.nft_table()]).output().unwrap().stdout).into_owned();
    assert!(!rules().contains(&format!("dport {port}")), "{}", rules());
    assert!(wait_until(Duration::from_secs(2), || !rules().contains("10.231.0.")), "{}", rules());
}

#[test]
fn the_docker_cli_drives_the_network_api() {
    let d = Daemon::start();
    let o = d.docker(&["network", "create", "--subnet", "10.233.0.0/24", "--ip-range", "10.233.0.128/25", "--gateway", "10.233.0.1", "--aux-address", "router=10.233.0.2", "--label", "team=a", "-o", "com.docker.network.bridge.enable_icc=true", "dk"]);
    assert_eq!(o.code, 0, "{o}");
    let ls = d.docker(&["network", "ls", "--filter", "label=team=a", "--format", "{{.Name}} {{.Driver}} {{.Scope}}"]);
    assert_eq!(ls.ok(), "dk bridge local\n");
    let ls = d.docker(&["network", "ls", "--filter", "type=builtin", "--format", "{{.Name}}"]);
    let mut names: Vec<&str> = ls.ok().lines().collect();
    names.sort();
    assert_eq!(names, ["bridge", "host", "none"]);
    let v: serde_json::Value = serde_json::from_str(d.docker(&["network", "inspect", "dk"]).ok()).unwrap();
    let cfg = &v[0]["IPAM"]["Config"][0];
    assert_eq!((cfg["Subnet"].as_str(), cfg["IPRange"].as_str(), cfg["Gateway"].as_str()), (Some("10.233.0.0/24"), Some("10.233.0.128/25"), Some("10.233.0.1")));
    d.docker(&["run", "-d", "--name", "dk1", "--network", "dk", "busybox", "sleep", "60"]).ok();
    let ip = d.docker(&["inspect", "-f", "{{.NetworkSettings.Networks.dk.IPAddress}}", "dk1"]).ok().trim().to_owned();
    assert_eq!(ip, "10.233.0.128");
    d.docker(&["network", "disconnect", "dk", "dk1"]).ok();
    // a running container disconnected from its only network is on none
    let nets = d.docker(&["inspect", "-f", "{{json .NetworkSettings.Networks}}", "dk1"]);
    assert_eq!(nets.out(), "{}", "{nets}");
    d.docker(&["network", "connect", "--ip", "10.233.0.200", "dk", "dk1"]).ok();
    let o = d.docker(&["exec", "dk1", "ip", "-o", "-4", "addr"]);
    assert!(o.ok().contains("10.233.0.200/24"), "{o}");
    // Events of the network.
    let ev = d.docker(&["events", "--since", "1m", "--until", "0s", "--filter", "type=network", "--format", "{{.Action}}"]);
    let actions: Vec<&str> = ev.ok().lines().collect();
    assert!(actions.contains(&"create") && actions.contains(&"connect") && actions.contains(&"disconnect"), "{actions:?}");
    d.docker(&["rm", "-f", "dk1"]).ok();
    d.docker(&["network", "create", "unused"]).ok();
    let o = d.docker(&["network", "prune", "-f"]);
    assert!(o.ok().contains("dk") && o.ok().contains("unused"), "{o}");
    assert_eq!(d.docker(&["network", "ls", "-q"]).ok().lines().count(), 3);
    // Predefined networks stay.
    let o = d.docker(&["network", "rm", "bridge"]);
    assert!(o.code != 0 && o.stderr.contains("pre-defined network and cannot be removed"), "{o}");
}

#[test]
fn default_bridge_containers_get_hosts_links_and_gateway() {
    let d = Daemon::start();
    let gw = gateway(&d, "bridge");
    d.berth(&["run", "-d", "--name", "db", "-e", "SECRET=s3", "--expose", "5432", "busybox", "sleep", "60"]).ok();
    let o = d.berth(&["run", "--rm", "--link", "db:database", "--add-host", "gw:host-gateway", "busybox", "sh", "-c", "cat /etc/hosts; env | sort"]);
    let out = o.ok();
    let db_ip = d.inspect("db")["NetworkSettings"]["IPAddress"].as_str().unwrap().to_owned();
    assert!(!db_ip.is_empty());
    assert!(out.contains(&format!("{db_ip}\tdatabase db")), "{out}");
    assert!(out.contains(&format!("{gw}\tgw")), "{out}");
    assert!(out.contains(&format!("DATABASE_PORT_5432_TCP=tcp://{db_ip}:5432")), "{out}");
    assert!(out.contains("DATABASE_ENV_SECRET=s3"), "{out}");
    // The legacy top-level fields docker CLI templates and SDKs read.
    let v = d.inspect("db");
    assert_eq!(v["NetworkSettings"]["Gateway"].as_str().unwrap(), gw.to_string());
    assert!(v["NetworkSettings"]["MacAddress"].as_str().unwrap().starts_with("02:42:"));
    d.berth(&["rm", "-f", "db"]).ok();
}

/// `rename` of a running container: its new name resolves on its networks at once,
/// the old one no longer does.
#[test]
fn renamed_containers_answer_to_their_new_name() {
    let d = Daemon::start();
    d.berth(&["network", "create", "ren"]).ok();
    d.berth(&["run", "-d", "--network", "ren", "--name", "before", "busybox", "sleep", "600"]).ok();
    d.berth(&["rename", "before", "after"]).ok();
    let probe = "nslookup after >/dev/null 2>&1 && echo new-ok; nslookup before >/dev/null 2>&1 && echo old-still; true";
    let o = d.berth(&["run", "--rm", "--network", "ren", "busybox", "sh", "-c", probe]);
    assert_eq!(o.ok().trim(), "new-ok", "{o}");
    d.berth(&["rm", "-f", "after"]).ok();
}

/// Addresses, veths and port rules are given back: on a /28 (13 addresses for
/// containers) far more containers than that come and go — `run --rm`, `run -d` with
/// a published port then `rm -f`, `create` + `rm` — and every one gets an address;
/// afterwards nothing of them is left on the bridge or in the nftables table.
#[test]
fn addresses_veths_and_rules_do_not_leak() {
    let d = Daemon::start();
    d.berth(&["network", "create", "--subnet", "10.232.7.0/28", "small"]).ok();
    let br = format!("br-{}", &d.berth(&["network", "inspect", "-f", "{{.Id}}", "small"]).ok().trim()[..12]);
    let fds = || std::fs::read_dir(format!("/proc/{}/fd", d.pid())).unwrap().count();
    // entries naming a container's address (the gateway, 10.232.7.1, is the host's)
    let conntrack = || -> Vec<String> {
        let container = |t: &str| {
            let ip = t.strip_prefix("src=").or_else(|| t.strip_prefix("dst=")).unwrap_or("");
            ip.starts_with("10.232.7.") && ip != "10.232.7.1"
        };
        std::fs::read_to_string("/proc/net/nf_conntrack")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.split_whitespace().any(container))
            .map(str::to_owned)
            .collect()
    };
    let mut fds_before = 0;
    // 67 rounds of three lifecycles: 201 containers through a 13-address subnet
    for i in 0..67 {
        // a UDP query to the gateway leaves a connection-tracking entry on the host
        let o = d.berth(&[
            "run", "--rm", "--network", "small", "busybox", "sh", "-c",
            "nslookup -timeout=1 x 10.232.7.1 >/dev/null 2>&1; ip -4 -o addr show eth0 | grep -c 10.232.7.",
        ]);
        assert_eq!(o.ok().trim(), "1", "run {i}: {o}");
        let id = d.berth(&["run", "-d", "--network", "small", "-p", "127.0.0.1::80", "busybox", "sleep", "60"]).ok().trim().to_owned();
        d.berth(&["rm", "-f", &id]).ok();
        let id = d.berth(&["create", "--network", "small", "busybox", "true"]).ok().trim().to_owned();
        d.berth(&["rm", &id]).ok();
        if i == 0 {
            fds_before = fds();
        }
    }
    let v = d.api("GET", "/networks/small").json();
    assert_eq!(v["Containers"].as_object().map_or(0, |m| m.len()), 0, "{v}");
    // (a `--rm` container's teardown finishes after its client has its exit code)
    let mut veths = String::new();
    let gone = wait_until(Duration::from_secs(5), || {
        veths = ip_output(&["-br", "link", "show", "master", &br]);
        veths.trim().is_empty()
    });
    assert!(gone, "veths left on {br}:\n{veths}");
    let rules = Command::new("nft").args(["list", "table", "inet", &d.nft_table()]).output().unwrap();
    let rules = String::from_utf8_lossy(&rules.stdout);
    // The network's own rules name its subnet; a container's would name its address.
    assert!(!rules.replace("10.232.7.0/28", "").contains("10.232.7."), "rules left:\n{rules}");
    // deleted in batches right after the containers go
    let mut left = Vec::new();
    let gone = wait_until(Duration::from_secs(5), || {
        left = conntrack();
        left.is_empty()
    });
    assert!(gone, "conntrack entries of removed containers are deleted with them: {left:?}");
    let fds_after = fds();
    assert!(fds_after <= fds_before + 8, "berthd's descriptors grew from {fds_before} to {fds_after}");
    d.berth(&["network", "rm", "small"]).ok();
}

/// A client that keeps sending to a published UDP port keeps its connection-tracking
/// entry alive: without deleting it with the container, the packets would go on to
/// the removed container's address and never reach the port's new owner.
#[test]
fn a_published_udp_port_follows_a_replaced_container() {
    let d = Daemon::start();
    let port = berth_e2e::free_port();
    let serve = |name: &str| {
        let code = format!(
            "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('0.0.0.0',9999))\nwhile True:\n d,a=s.recvfrom(100)\n s.sendto(b'{name}',a)"
        );
        d.berth(&[
            "run", "-d", "--name", name, "-p", &format!("127.0.0.1:{port}:9999/udp"), "-v", "/usr:/usr:ro", "-v", "/lib:/lib:ro",
            "-v", "/lib64:/lib64:ro", "busybox", "/usr/bin/python3", "-c", &code,
        ])
        .ok();
    };
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let answer = |sock: &std::net::UdpSocket| {
        let _ = sock.send_to(b"ping", ("127.0.0.1", port));
        let mut buf = [0u8; 64];
        sock.recv_from(&mut buf).ok().map(|(n, _)| String::from_utf8_lossy(&buf[..n]).into_owned())
    };
    serve("udp-old");
    assert!(wait_until(Duration::from_secs(10), || answer(&sock).as_deref() == Some("udp-old")));
    d.berth(&["rm", "-f", "udp-old"]).ok();
    serve("udp-new");
    // the same client socket, sending all along
    let mut last = None;
    let moved = wait_until(Duration::from_secs(10), || {
        last = answer(&sock);
        last.as_deref() == Some("udp-new")
    });
    assert!(moved, "the client's packets never reached the new container (last answer {last:?})");
    d.berth(&["rm", "-f", "udp-new"]).ok();
}

/// `network create --ipv6` with a ULA subnet: containers get addresses from it that
/// work at once (no duplicate address detection wait), reach each other by name over
/// IPv6, and inspect shows them as dockerd does.
#[test]
fn ipv6_networks_work_from_the_first_packet() {
    let d = Daemon::start();
    d.berth(&["network", "create", "--ipv6", "--subnet", "fd00:b3a7::/64", "six"]).ok();
    let n = d.api("GET", "/networks/six").json();
    assert_eq!(n["EnableIPv6"], true, "{n}");
    assert!(n["IPAM"]["Config"].to_string().contains("fd00:b3a7::/64"), "{n}");
    d.berth(&["run", "-d", "--network", "six", "--name", "sixa", "busybox", "sleep", "600"]).ok();
    let v6 = d.inspect("sixa")["NetworkSettings"]["Networks"]["six"]["GlobalIPv6Address"].as_str().unwrap_or("").to_owned();
    assert!(v6.starts_with("fd00:b3a7::"), "{v6}");
    let o = d.berth(&["run", "--rm", "--network", "six", "busybox", "sh", "-c", "ip -6 addr show eth0 scope global | grep -c tentative; ping -6 -c1 -W3 sixa >/dev/null && echo reached"]);
    assert_eq!(o.stdout.split_whitespace().collect::<Vec<_>>(), ["0", "reached"], "{o}");
    d.berth(&["rm", "-f", "sixa"]).ok();
    d.berth(&["network", "rm", "six"]).ok();
}

/// A one-name DNS server on a loopback address of the host: `upstream.test` is
/// 10.1.2.3, every other name has no address. Answers until `stop` is set.
fn fake_upstream(addr: &str, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> std::thread::JoinHandle<usize> {
    let sock = std::net::UdpSocket::bind(addr).expect("bind the fake upstream");
    sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    std::thread::spawn(move || {
        let mut answered = 0;
        let mut buf = [0u8; 512];
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let Ok((n, from)) = sock.recv_from(&mut buf) else { continue };
            let q = &buf[..n];
            // the question: labels from byte 12 to the zero length, then type and class
            let mut i = 12;
            let mut name = Vec::new();
            while i < n && q[i] != 0 {
                let l = q[i] as usize;
                name.push(String::from_utf8_lossy(&q[i + 1..i + 1 + l]).into_owned());
                i += 1 + l;
            }
            let qtype = u16::from_be_bytes([q[i + 1], q[i + 2]]);
            let question = &q[12..i + 5];
            let hit = name.join(".") == "upstream.test" && qtype == 1;
            let mut r = vec![q[0], q[1], 0x81, 0x80, 0, 1, 0, u8::from(hit), 0, 0, 0, 0];
            r.extend_from_slice(question);
            if hit {
                r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 1, 2, 3]);
                answered += 1;
            }
            let _ = sock.send_to(&r, from);
        }
        answered
    })
}

#[test]
fn the_embedded_dns_forwards_other_names_to_the_dns_servers_given() {
    let d = Daemon::start();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // an address of the host's loopback no other test uses (port 53, as --dns has it)
    let upstream = fake_upstream("127.0.0.77:53", stop.clone());
    let net = format!("fwd{}", std::process::id());
    assert!(d.berth(&["network", "create", &net]).success());
    assert!(d.berth(&["run", "-d", "--name", "peer", "--network", &net, "busybox", "sleep", "60"]).success());
    let o = d.berth(&[
        "run", "--rm", "--network", &net, "--dns", "127.0.0.77", "busybox", "sh", "-c",
        "nslookup upstream.test; nslookup peer",
    ]);
    // the container's own resolver is the embedded one; it answers container names
    // itself and forwards the rest, from the host, to the server given
    assert!(o.stdout.contains("10.1.2.3"), "{o}");
    let peer_ip = d.inspect("peer")["NetworkSettings"]["Networks"][&net]["IPAddress"].as_str().unwrap().to_owned();
    assert!(o.stdout.contains(&peer_ip), "peer resolved by the embedded server: {o}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(upstream.join().unwrap() >= 1);
    d.berth(&["rm", "-f", "peer"]);
    d.berth(&["network", "rm", &net]);
}

/// Once `run --rm` has returned, nothing of the container is left on its network: a
/// `network rm` right after it succeeds (dockerd releases a container's endpoints
/// before its waiters hear of the exit). Through the API the `network rm` follows
/// the `wait` within a fraction of a millisecond; through both CLIs end to end.
#[test]
fn a_network_is_free_once_run_rm_on_it_returns() {
    let d = Daemon::start();
    for i in 0..3 {
        let net = format!("rmapi{i}");
        d.berth(&["network", "create", "--subnet", &format!("10.237.{i}.0/24"), &net]).ok();
        let body = serde_json::json!({
            "Image": "busybox", "Cmd": ["true"],
            "ExposedPorts": {"80/tcp": {}},
            "HostConfig": {"AutoRemove": true, "NetworkMode": net,
                           "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}}
        });
        let r = d.api_json("POST", "/v1.41/containers/create", &body);
        assert_eq!(r.status, 201, "{}", r.text());
        let id = r.json()["Id"].as_str().unwrap().to_owned();
        let waited = std::thread::scope(|s| {
            let wait = s.spawn(|| d.api("POST", &format!("/v1.41/containers/{id}/wait?condition=removed")));
            // the wait is taken once its headers are out; they are, before any start
            std::thread::sleep(Duration::from_millis(100));
            let r = d.api("POST", &format!("/v1.41/containers/{id}/start"));
            assert_eq!(r.status, 204, "{}", r.text());
            wait.join().unwrap()
        });
        assert_eq!(waited.status, 200, "{}", waited.text());
        let r = d.api("DELETE", &format!("/v1.41/networks/{net}"));
        assert_eq!(r.status, 204, "network rm {i} right after the removal: {}", r.text());
    }
    for (i, cli) in [(3, Cli::Berth), (4, Cli::Docker)] {
        let net = format!("rmcli{i}");
        d.berth(&["network", "create", "--subnet", &format!("10.237.{i}.0/24"), &net]).ok();
        d.cli(cli, &["run", "--rm", "--network", &net, "-p", "127.0.0.1::80", "busybox", "true"]).ok();
        let o = d.cli(cli, &["network", "rm", &net]);
        assert_eq!(o.code, 0, "{cli:?}: {o}");
    }
}

/// The ifindex of a link, if there is one by that name.
fn ifindex(name: &str) -> Option<u32> {
    std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex")).ok().and_then(|s| s.trim().parse().ok())
}

fn link_with_index(index: u32) -> Option<String> {
    std::fs::read_dir("/sys/class/net").unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).find(|n| ifindex(n) == Some(index))
}

/// A removed network's bridge is kept (down, bare) and taken by the next network,
/// which sees nothing of the old one: not its addresses, not its MTU. A restarted
/// daemon finds the bridges it kept; its shutdown deletes them.
#[test]
fn a_removed_networks_bridge_serves_the_next_network_with_nothing_of_the_old() {
    let mut d = Daemon::start();
    let bridge_of = |d: &Daemon, net: &str| format!("br-{}", &d.berth(&["network", "inspect", "-f", "{{.Id}}", net]).ok().trim()[..12]);
    d.berth(&["network", "create", "--subnet", "10.236.1.0/24", "-o", "com.docker.network.driver.mtu=1400", "old"]).ok();
    let old_br = bridge_of(&d, "old");
    let old_index = ifindex(&old_br).expect("old bridge");
    d.berth(&["run", "--rm", "--network", "old", "busybox", "true"]).ok();
    d.berth(&["network", "rm", "old"]).ok();
    assert_eq!(ifindex(&old_br), None, "{old_br} still there");
    let kept = link_with_index(old_index).expect("the bridge is kept");
    assert!(kept.starts_with("bsp-"), "{kept}");
    assert!(!ip_output(&["-br", "addr"]).contains("10.236.1."));

    d.berth(&["network", "create", "--subnet", "10.236.2.0/24", "new"]).ok();
    let new_br = bridge_of(&d, "new");
    assert_eq!(ifindex(&new_br), Some(old_index), "the kept bridge was not taken");
    assert_eq!(std::fs::read_to_string(format!("/sys/class/net/{new_br}/mtu")).unwrap().trim(), "1500");
    let addrs = ip_output(&["-4", "-o", "addr", "show", "dev", &new_br]);
    assert!(addrs.contains("10.236.2.1/24") && !addrs.contains("10.236.1."), "{addrs}");
    let o = d.berth(&["run", "--rm", "--network", "new", "busybox", "ping", "-c", "1", "-W", "2", "10.236.2.1"]);
    assert!(o.ok().contains("1 packets received"), "{o}");

    d.berth(&["network", "rm", "new"]).ok();
    assert!(link_with_index(old_index).is_some_and(|n| n.starts_with("bsp-")));
    // After a kill -9 the daemon finds the bridge it kept and takes it again.
    d.restart();
    d.berth(&["network", "create", "--subnet", "10.236.3.0/24", "again"]).ok();
    assert_eq!(ifindex(&bridge_of(&d, "again")), Some(old_index));
    d.berth(&["network", "rm", "again"]).ok();
    // A stop deletes it.
    d.stop();
    assert_eq!(link_with_index(old_index), None, "a kept bridge outlived its daemon");
    d.relaunch();
}

/// A daemon whose data root was wiped finds its default bridge still on the host (as
/// docker0 outlives /var/lib/docker): it takes the bridge's address as it is, rather
/// than choosing another subnet and adding a second address to the bridge on every
/// such start until the address pools run out.
#[test]
fn a_wiped_daemon_reuses_its_default_bridges_address() {
    let mut d = Daemon::start();
    let gw = gateway(&d, "bridge");
    let subnet = d.api("GET", "/networks/bridge").json()["IPAM"]["Config"][0]["Subnet"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        d.crash();
        std::fs::remove_file(d.data_root().join("metadata.redb")).unwrap();
        d.relaunch();
        assert_eq!(gateway(&d, "bridge"), gw);
        let v = d.api("GET", "/networks/bridge").json();
        assert_eq!(v["IPAM"]["Config"][0]["Subnet"].as_str().unwrap(), subnet, "{v}");
        let addrs = ip_output(&["-4", "-o", "addr", "show", "dev", d.bridge()]);
        assert_eq!(addrs.lines().count(), 1, "{addrs}");
    }
    // and containers on it get addresses from that subnet
    d.import_busybox();
    let out = d.berth(&["run", "--rm", "busybox", "ip", "-4", "-o", "addr", "show", "eth0"]).ok().to_owned();
    let prefix = subnet.split('.').take(2).collect::<Vec<_>>().join(".");
    assert!(out.contains(&format!("inet {prefix}.")), "{out}");
}

/// What an endpoint asks for, as dockerd takes it: a network name of any characters
/// but `/`, a MAC address shown from the connect on (before the start gives it to the
/// interface), link-local addresses beside the network's own.
#[test]
fn endpoints_take_names_macs_and_link_local_addresses_as_dockerd_does() {
    let d = Daemon::start();
    d.import_busybox();
    d.docker(&["network", "create", "test 01"]).ok();
    assert_eq!(d.docker(&["network", "inspect", "-f", "{{.Name}}", "test 01"]).ok().trim(), "test 01");
    let o = d.docker(&["network", "create", "a/b"]);
    assert!(o.code != 0 && o.stderr.contains("invalid network name"), "{o}");

    let id = d.docker(&["create", "--name", "mac", "busybox", "sleep", "60"]).ok().trim().to_owned();
    d.docker(&["network", "connect", "--link-local-ip", "169.254.8.8", "test 01", "mac"]).ok();
    let r = d.api_json(
        "POST",
        "/v1.41/networks/test%2001/disconnect",
        &serde_json::json!({"Container": id}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = d.api_json(
        "POST",
        "/v1.41/networks/test%2001/connect",
        &serde_json::json!({"Container": id, "EndpointConfig": {"MacAddress": "02:42:ac:11:00:99", "IPAMConfig": {"LinkLocalIPs": ["169.254.8.8"]}}}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let ep = |d: &Daemon| d.inspect("mac")["NetworkSettings"]["Networks"]["test 01"].clone();
    assert_eq!(ep(&d)["MacAddress"], "02:42:ac:11:00:99", "before the start: what was asked for");
    assert_eq!(ep(&d)["IPAMConfig"]["LinkLocalIPs"], serde_json::json!(["169.254.8.8"]));
    d.docker(&["start", "mac"]).ok();
    let addrs = d.docker(&["exec", "mac", "ip", "addr"]).ok().to_owned();
    assert!(addrs.contains("02:42:ac:11:00:99") && addrs.contains("inet 169.254.8.8/16"), "{addrs}");
    assert_eq!(ep(&d)["MacAddress"], "02:42:ac:11:00:99");

    // `run --link-local-ip` on the default bridge, and a bad address refused.
    let o = d.berth(&["run", "--rm", "--link-local-ip", "169.254.9.9", "busybox", "ip", "-o", "-4", "addr", "show", "eth0"]);
    assert!(o.ok().contains("169.254.9.9/16"), "{o}");
    let o = d.docker(&["run", "--rm", "--link-local-ip", "nope", "busybox", "true"]);
    assert!(o.code != 0 && o.stderr.contains("invalid link-local IP address: nope"), "{o}");
    d.docker(&["rm", "-f", "mac"]).ok();
    d.docker(&["network", "rm", "test 01"]).ok();
}

/// Legacy links on a user-defined network, as dockerd answers them: the alias is a
/// name only the linking container resolves (its embedded DNS server), to the linked
/// container's address there; no /etc/hosts line or variables (those are the default
/// bridge's). Both shapes: the docker CLI's (`HostConfig.Links` and the endpoint's
/// `Links`) and compose's (`HostConfig.Links` only), and `network connect --link`.
#[test]
fn links_on_a_user_network_are_names_for_the_linking_container_only() {
    let d = Daemon::start();
    d.import_busybox();
    d.docker(&["network", "create", "lk"]).ok();
    d.docker(&["run", "-d", "--name", "db", "--network", "lk", "busybox", "sleep", "60"]).ok();
    let db_ip = d.docker(&["inspect", "-f", "{{.NetworkSettings.Networks.lk.IPAddress}}", "db"]).ok().trim().to_owned();
    let resolve = "nslookup database 127.0.0.11 | sed -n 's/^Address: //p'; grep -c database /etc/hosts; env | grep -c DATABASE_";
    let o = d.docker(&["run", "--rm", "--network", "lk", "--link", "db:database", "busybox", "sh", "-c", resolve]);
    assert_eq!(o.stdout, format!("{db_ip}\n0\n0\n"), "{o}");
    let o = d.docker(&["run", "--rm", "--network", "lk", "busybox", "sh", "-c", "nslookup database 127.0.0.11 >/dev/null 2>&1; echo $?"]);
    assert_eq!(o.ok(), "1\n", "another container does not see the alias");
    // Compose's shape: the links in HostConfig only.
    let r = d.api_json(
        "POST",
        "/v1.41/containers/create?name=app",
        &serde_json::json!({"Image": "busybox", "Cmd": ["sleep", "60"], "HostConfig": {"NetworkMode": "lk", "Links": ["db:database"]}}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    d.docker(&["start", "app"]).ok();
    let o = d.docker(&["exec", "app", "sh", "-c", "nslookup database 127.0.0.11 | sed -n 's/^Address: //p'"]);
    assert_eq!(o.stdout, format!("{db_ip}\n"), "{o}");
    // network connect --link: the endpoint's own links, shown by inspect.
    d.docker(&["network", "create", "lk2"]).ok();
    d.docker(&["network", "connect", "lk2", "db"]).ok();
    d.docker(&["network", "connect", "--link", "db:store", "lk2", "app"]).ok();
    let db_ip2 = d.docker(&["inspect", "-f", "{{.NetworkSettings.Networks.lk2.IPAddress}}", "db"]).ok().trim().to_owned();
    let o = d.docker(&["exec", "app", "sh", "-c", "nslookup store 127.0.0.11 | sed -n 's/^Address: //p'"]);
    assert_eq!(o.stdout, format!("{db_ip2}\n"), "{o}");
    assert_eq!(d.docker(&["inspect", "-f", "{{json .NetworkSettings.Networks.lk2.Links}}", "app"]).ok().trim(), r#"["db:store"]"#);
    // An endpoint's link names a container that comes later (docker-py's shape): the
    // alias is looked up when it is asked, as libnetwork does.
    let r = d.api_json(
        "POST",
        "/v1.41/containers/create?name=early",
        &serde_json::json!({"Image": "busybox", "Cmd": ["sleep", "60"], "HostConfig": {"NetworkMode": "lk"},
            "NetworkingConfig": {"EndpointsConfig": {"lk": {"Links": ["late:later"]}}}}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    d.docker(&["start", "early"]).ok();
    let ask = ["exec", "early", "sh", "-c", "nslookup later 127.0.0.11 | sed -n 's/^Address: //p'"];
    assert_eq!(d.docker(&ask).stdout, "", "no container named late yet");
    d.docker(&["run", "-d", "--name", "late", "--network", "lk", "busybox", "sleep", "60"]).ok();
    let late_ip = d.docker(&["inspect", "-f", "{{.NetworkSettings.Networks.lk.IPAddress}}", "late"]).ok().trim().to_owned();
    assert_eq!(d.docker(&ask).stdout, format!("{late_ip}\n"));
    d.docker(&["rm", "-f", "app", "db", "early", "late"]).ok();
    d.docker(&["network", "rm", "lk", "lk2"]).ok();
}

/// `com.docker.network.enable_ipv6` as a driver option (compose files give it beside
/// `enable_ipv6`) decides IPv6 as dockerd reads it, with Go's booleans; anything else
/// is refused naming the option.
#[test]
fn the_enable_ipv6_driver_option_decides_ipv6() {
    let d = Daemon::start();
    d.import_busybox();
    let r = d.api_json(
        "POST",
        "/v1.41/networks/create",
        &serde_json::json!({"Name": "v6opt", "Options": {"com.docker.network.enable_ipv6": "True"},
            "IPAM": {"Config": [{"Subnet": "fd00:77::/64"}]}}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let n = d.api("GET", "/v1.41/networks/v6opt").json();
    assert_eq!(n["EnableIPv6"], true, "{n}");
    assert_eq!(n["Options"]["com.docker.network.enable_ipv6"], "True");
    // IPAM options as given: none is null (as the default bridge's), the docker CLI's
    // empty map is `{}`.
    assert_eq!(n["IPAM"]["Options"], serde_json::Value::Null, "{n}");
    assert_eq!(d.api("GET", "/v1.41/networks/bridge").json()["IPAM"]["Options"], serde_json::Value::Null);
    d.docker(&["network", "create", "cli-net"]).ok();
    assert_eq!(d.api("GET", "/v1.41/networks/cli-net").json()["IPAM"]["Options"], serde_json::json!({}));
    d.docker(&["network", "rm", "cli-net"]).ok();
    let o = d.docker(&["run", "--rm", "--network", "v6opt", "busybox", "ip", "-o", "-6", "addr", "show", "eth0", "scope", "global"]);
    assert!(o.ok().contains("fd00:77::"), "{o}");
    let r = d.api_json("POST", "/v1.41/networks/create", &serde_json::json!({"Name": "v6off", "EnableIPv6": true, "Options": {"com.docker.network.enable_ipv6": "false"}}));
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(d.api("GET", "/v1.41/networks/v6off").json()["EnableIPv6"], false);
    let r = d.api_json("POST", "/v1.41/networks/create", &serde_json::json!({"Name": "v6bad", "Options": {"com.docker.network.enable_ipv6": "yes"}}));
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["message"], "driver-opt \"com.docker.network.enable_ipv6\" is not a valid bool");
    d.docker(&["network", "rm", "v6opt", "v6off"]).ok();
}

/// A user-defined network's aliases get the container's short id and its hostname
/// when dockerd connects it there, at its first start: a created container shows only
/// the aliases asked for (docker-compose 1.29 reconnects such a container's networks,
/// with their link-local addresses, when the short id is missing). The hostname is a
/// name the network's DNS answers, as it is with dockerd.
#[test]
fn the_short_id_and_hostname_join_the_aliases_at_the_first_start() {
    let d = Daemon::start();
    d.import_busybox();
    d.docker(&["network", "create", "al"]).ok();
    let id = d.docker(&["create", "--name", "alc", "--network", "al", "--network-alias", "web", "busybox", "true"]).ok().trim().to_owned();
    let aliases = || d.docker(&["inspect", "-f", "{{json .NetworkSettings.Networks.al.Aliases}}", "alc"]).ok().trim().to_owned();
    assert_eq!(aliases(), r#"["web"]"#);
    d.docker(&["start", "-a", "alc"]).ok();
    assert_eq!(aliases(), format!(r#"["web","{}"]"#, &id[..12]));
    // Named by the client too (compose 1.29 does): once.
    d.docker(&["network", "disconnect", "al", "alc"]).ok();
    d.docker(&["network", "connect", "--alias", &id[..12], "al", "alc"]).ok();
    d.docker(&["start", "-a", "alc"]).ok();
    assert_eq!(aliases(), format!(r#"["{}"]"#, &id[..12]));
    d.docker(&["rm", "alc"]).ok();
    // None asked for and never started: null, as dockerd writes it.
    d.docker(&["create", "--name", "alc2", "--network", "al", "busybox", "true"]).ok();
    assert_eq!(d.docker(&["inspect", "-f", "{{json .NetworkSettings.Networks.al.Aliases}}", "alc2"]).ok().trim(), "null");
    d.docker(&["rm", "alc2"]).ok();
    let id = d.docker(&["run", "-d", "--name", "alh", "--hostname", "db.example", "--network", "al", "--network-alias", "x", "busybox", "sleep", "60"]).ok().trim().to_owned();
    let ip = d.docker(&["inspect", "-f", "{{.NetworkSettings.Networks.al.IPAddress}}", "alh"]).ok().trim().to_owned();
    assert_eq!(d.docker(&["inspect", "-f", "{{json .NetworkSettings.Networks.al.Aliases}}", "alh"]).ok().trim(), format!(r#"["x","{}","db.example"]"#, &id[..12]));
    let o = d.docker(&["run", "--rm", "--network", "al", "busybox", "nslookup", "db.example"]);
    assert!(o.ok().contains(&format!("Address: {ip}")) && o.stdout.contains("Non-authoritative answer:"), "{o}");
    d.docker(&["rm", "-f", "alh"]).ok();
    d.docker(&["network", "rm", "al"]).ok();
}

/// A network is looked up when the container starts, as dockerd does: creating a
/// container on one that does not exist yet succeeds (a 404 there would make the
/// docker CLI pull the image), its start fails naming the network, and once the
/// network exists the same container starts on it.
#[test]
fn a_missing_network_fails_the_start_not_the_create() {
    let d = Daemon::start();
    d.import_busybox();
    let o = d.docker(&["run", "--rm", "--network", "later-net", "busybox", "true"]);
    assert_eq!(o.code, 125, "{o}");
    assert!(o.stderr.contains("network later-net not found") && !o.stderr.contains("Unable to find image"), "{o}");
    d.docker(&["create", "--name", "waits", "--network", "later-net", "--network-alias", "w", "busybox", "ip", "-o", "-4", "addr", "show", "eth0"]).ok();
    let o = d.docker(&["start", "waits"]);
    assert!(!o.success() && o.stderr.contains("network later-net not found"), "{o}");
    // Another network connected meanwhile does not stand in for it.
    d.docker(&["network", "create", "--subnet", "10.123.8.0/24", "other-net"]).ok();
    d.docker(&["network", "connect", "other-net", "waits"]).ok();
    let o = d.docker(&["start", "waits"]);
    assert!(!o.success() && o.stderr.contains("network later-net not found"), "{o}");
    d.docker(&["network", "create", "--subnet", "10.123.7.0/24", "later-net"]).ok();
    let o = d.docker(&["start", "-a", "waits"]);
    assert!(o.ok().contains("inet 10.123.7."), "its network is its first: {o}");
    let aliases = d.docker(&["inspect", "-f", "{{json .NetworkSettings.Networks}}", "waits"]).ok().to_owned();
    assert!(aliases.contains("\"w\""), "{aliases}");
    d.docker(&["rm", "waits"]).ok();
    d.docker(&["network", "rm", "later-net", "other-net"]).ok();
}

/// A container taken off its network mode's network stays off it: inspect lists no
/// network, and neither its next start nor a first start puts it back (dockerd starts
/// a container on the networks it lists); a `network connect` does.
#[test]
fn a_disconnected_container_is_not_put_back_on_its_network_at_start() {
    let d = Daemon::start();
    d.docker(&["network", "create", "leave"]).ok();
    let nets = |c: &str| d.docker(&["inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", c]).ok().trim().to_owned();
    let links = |c: &str| d.docker(&["exec", c, "ip", "-o", "link"]).ok().lines().filter(|l| l.contains("eth0")).count();
    d.docker(&["run", "-d", "--network", "leave", "--name", "went", "busybox", "sleep", "600"]).ok();
    d.docker(&["stop", "-t", "0", "went"]).ok();
    d.docker(&["network", "disconnect", "leave", "went"]).ok();
    d.docker(&["start", "went"]).ok();
    assert_eq!((nets("went"), links("went")), (String::new(), 0));
    d.docker(&["stop", "-t", "0", "went"]).ok();
    d.docker(&["network", "connect", "leave", "went"]).ok();
    d.docker(&["start", "went"]).ok();
    assert_eq!((nets("went"), links("went")), ("leave".to_owned(), 1));
    // Never started: the same.
    d.docker(&["create", "--network", "leave", "--name", "fresh", "busybox", "sleep", "600"]).ok();
    assert_eq!(nets("fresh"), "leave");
    d.docker(&["network", "disconnect", "leave", "fresh"]).ok();
    assert_eq!(nets("fresh"), "");
    d.docker(&["start", "fresh"]).ok();
    assert_eq!((nets("fresh"), links("fresh")), (String::new(), 0));
    d.docker(&["rm", "-f", "went", "fresh"]).ok();
}
