//! berthd: the berth daemon. Flags follow dockerd's, so scripts written for dockerd
//! start berthd unchanged.

use std::path::PathBuf;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "berthd", version, about = "The berth container engine daemon (Docker Engine API)")]
struct Args {
    /// Root of persistent state: images, containers, logs.
    #[arg(long = "data-root", default_value = "/var/lib/berth")]
    data_root: PathBuf,
    /// Root of runtime state: mounts, sockets, bundles.
    #[arg(long = "exec-root", default_value = "/run/berth")]
    exec_root: PathBuf,
    /// Address to listen on (unix:///path/to.sock, tcp://host:port; repeatable).
    #[arg(short = 'H', long = "host")]
    hosts: Vec<String>,
    /// Write the daemon's pid to this file.
    #[arg(short = 'p', long = "pidfile")]
    pidfile: Option<PathBuf>,
    /// Debug logging.
    #[arg(short = 'D', long = "debug")]
    debug: bool,
    /// Log level (debug, info, warn, error).
    #[arg(short = 'l', long = "log-level", default_value = "info")]
    log_level: String,
    /// Registries reachable over plain HTTP.
    #[arg(long = "insecure-registry")]
    insecure_registries: Vec<String>,
    /// Path of the berth-shim binary (default: next to berthd, then PATH).
    #[arg(long = "shim", env = "BERTH_SHIM")]
    shim: Option<PathBuf>,
    /// Containers kept created ahead of time per recently run container shape, so
    /// `run` only has to start one (0 turns this off).
    #[arg(long = "warm-containers", default_value_t = 1)]
    warm_containers: usize,
    /// Path to the static init binary `--init` runs as pid 1 (default: docker-init or
    /// tini-static from PATH).
    #[arg(long = "init-path")]
    init_path: Option<PathBuf>,
    /// Attach containers to this network bridge (`none`: no default bridge).
    #[arg(short = 'b', long = "bridge", default_value = "berth0")]
    bridge: String,
    /// The default bridge's address and prefix (e.g. 172.30.0.1/16).
    #[arg(long = "bip")]
    bip: Option<String>,
    /// Containers on the default bridge get addresses from this range.
    #[arg(long = "fixed-cidr")]
    fixed_cidr: Option<String>,
    /// Address pool for new networks: base=CIDR,size=N (repeatable).
    #[arg(long = "default-address-pool")]
    default_address_pool: Vec<String>,
    /// MTU of the default bridge and new networks.
    #[arg(long = "mtu", default_value_t = 0)]
    mtu: u32,
    /// Default host address published ports bind to.
    #[arg(long = "ip")]
    ip: Option<String>,
    /// Use TLS; implied by --tlsverify
    #[arg(long = "tls")]
    tls: bool,
    /// Use TLS and verify the remote (clients must present a certificate signed by the CA)
    #[arg(long = "tlsverify")]
    tlsverify: bool,
    /// Trust certs signed only by this CA (default ~/.docker/ca.pem)
    #[arg(long = "tlscacert")]
    tlscacert: Option<PathBuf>,
    /// Path to TLS certificate file (default ~/.docker/cert.pem)
    #[arg(long = "tlscert")]
    tlscert: Option<PathBuf>,
    /// Path to TLS key file (default ~/.docker/key.pem)
    #[arg(long = "tlskey")]
    tlskey: Option<PathBuf>,
    /// Listen on tcp:// without mutual TLS (anyone who reaches the port gets root)
    #[arg(long = "insecure-tcp")]
    insecure_tcp: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let level = if args.debug { "debug".to_owned() } else { args.log_level.clone() };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("berthd={level},warn"))),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let hosts = if args.hosts.is_empty() {
        vec![format!("unix://{}", args.exec_root.join("berth.sock").display())]
    } else {
        args.hosts.clone()
    };
    let cfg = berthd::Config {
        data_root: args.data_root,
        exec_root: args.exec_root,
        hosts,
        pidfile: args.pidfile,
        insecure_registries: args.insecure_registries,
        shim: args.shim,
        warm_containers: args.warm_containers,
        init_path: args.init_path,
        network: berthd::NetworkFlags {
            bridge: args.bridge,
            bip: args.bip,
            fixed_cidr: args.fixed_cidr,
            pools: args.default_address_pool,
            mtu: args.mtu,
            ip: args.ip,
        },
        tls: berthd::TlsFlags {
            tls: args.tls,
            verify: args.tlsverify,
            ca: args.tlscacert,
            cert: args.tlscert,
            key: args.tlskey,
            insecure_tcp: args.insecure_tcp,
        },
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(berthd::run(cfg))
}
