//! berthd: the berth daemon. Flags follow dockerd's, so scripts written for dockerd
//! start berthd unchanged.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser};
use tracing_subscriber::prelude::*;

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
    /// Cgroups made ahead of the next containers' starts, on a cgroup v1 host, each
    /// renamed to its container's when one starts (0 turns this off).
    #[arg(long = "cgroup-pool", default_value_t = 2)]
    cgroup_pool: usize,
    /// Keep the kernel's cgroup migration lock writer-friendly (`favordynmods` on a
    /// cgroup hierarchy, Linux 6.0+): moving a new container into its cgroups then
    /// does not wait for an RCU grace period, about half of creating a container on a
    /// cgroup v1 host. It is the host's setting, for every process; `false` leaves it
    /// as it is.
    #[arg(long = "cgroup-favordynmods", default_value_t = true, action = clap::ArgAction::Set)]
    cgroup_favordynmods: bool,
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
    /// Daemon configuration file (dockerd's daemon.json keys)
    #[arg(long = "config-file", default_value = berthd::settings::DEFAULT_FILE)]
    config_file: PathBuf,
    /// Set key=value labels to the daemon (repeatable)
    #[arg(long = "label")]
    labels: Vec<String>,
    /// Preferred Docker registry mirror (repeatable)
    #[arg(long = "registry-mirror")]
    registry_mirrors: Vec<String>,
    /// Directory of CDI device specs (repeatable; default /etc/cdi and /var/run/cdi)
    #[arg(long = "cdi-spec-dir")]
    cdi_spec_dirs: Vec<PathBuf>,
    /// Set the max concurrent downloads (of the layers of one pull)
    #[arg(long = "max-concurrent-downloads", default_value_t = berth_distribution::MAX_DOWNLOADS)]
    max_concurrent_downloads: usize,
    /// Set the max concurrent uploads (of the layers of one push)
    #[arg(long = "max-concurrent-uploads", default_value_t = 5)]
    max_concurrent_uploads: usize,
    /// Set no-new-privileges by default for new containers
    #[arg(long = "no-new-privileges")]
    no_new_privileges: bool,
    /// Default ulimits for containers (name=soft[:hard], repeatable)
    #[arg(long = "default-ulimit")]
    default_ulimits: Vec<String>,
    /// DNS server for containers that name none (repeatable)
    #[arg(long = "dns")]
    dns: Vec<String>,
    /// DNS search domain for containers that name none (repeatable)
    #[arg(long = "dns-search")]
    dns_search: Vec<String>,
    /// DNS option for containers that name none (repeatable)
    #[arg(long = "dns-opt")]
    dns_opts: Vec<String>,
    /// Default log driver for containers (json-file, local, none)
    #[arg(long = "log-driver")]
    log_driver: Option<String>,
    /// Default log driver options for containers (key=value, repeatable)
    #[arg(long = "log-opt")]
    log_opts: Vec<String>,
    /// User/Group setting for user namespaces (default, user[:group], uid[:gid])
    #[arg(long = "userns-remap")]
    userns_remap: Option<String>,
    /// Containers keep running while the daemon is down (always on in berth)
    #[arg(long = "live-restore")]
    live_restore: bool,
}

/// Flag (clap id) → daemon.json key, for dockerd's flag/file conflict check.
const FILE_KEYS: &[(&str, &str)] = &[
    ("data_root", "data-root"),
    ("exec_root", "exec-root"),
    ("hosts", "hosts"),
    ("pidfile", "pidfile"),
    ("debug", "debug"),
    ("log_level", "log-level"),
    ("insecure_registries", "insecure-registries"),
    ("warm_containers", "warm-containers"),
    ("init_path", "init-path"),
    ("bridge", "bridge"),
    ("bip", "bip"),
    ("fixed_cidr", "fixed-cidr"),
    ("default_address_pool", "default-address-pools"),
    ("mtu", "mtu"),
    ("ip", "ip"),
    ("tls", "tls"),
    ("tlsverify", "tlsverify"),
    ("tlscacert", "tlscacert"),
    ("tlscert", "tlscert"),
    ("tlskey", "tlskey"),
    ("insecure_tcp", "insecure-tcp"),
    ("labels", "labels"),
    ("registry_mirrors", "registry-mirrors"),
    ("cdi_spec_dirs", "cdi-spec-dirs"),
    ("no_new_privileges", "no-new-privileges"),
    ("userns_remap", "userns-remap"),
    ("max_concurrent_downloads", "max-concurrent-downloads"),
    ("max_concurrent_uploads", "max-concurrent-uploads"),
    ("default_ulimits", "default-ulimits"),
    ("dns", "dns"),
    ("dns_search", "dns-search"),
    ("dns_opts", "dns-opts"),
    ("log_driver", "log-driver"),
    ("log_opts", "log-opts"),
    ("live_restore", "live-restore"),
];

/// The flags given on the command line, as daemon.json keys with their values shown
/// as dockerd shows them (`[a b]` for lists).
fn flags_given(m: &clap::ArgMatches) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (id, key) in FILE_KEYS {
        if m.value_source(id) != Some(clap::parser::ValueSource::CommandLine) {
            continue;
        }
        let raw: Vec<String> = m.get_raw(id).into_iter().flatten().map(|v| v.to_string_lossy().into_owned()).collect();
        const LISTS: &[&str] =
            &["hosts", "labels", "insecure-registries", "registry-mirrors", "cdi-spec-dirs", "default-ulimits", "dns", "dns-search", "dns-opts", "default-address-pools", "log-opts"];
        let shown = if raw.is_empty() {
            "true".to_owned()
        } else if LISTS.contains(key) {
            format!("[{}]", raw.join(" "))
        } else {
            raw.join(" ")
        };
        out.insert(key.to_string(), shown);
    }
    out
}

/// glibc gives each thread that allocates while the others hold their arenas one of
/// its own, up to eight per CPU; with tokio's workers and blocking pool that is a dozen
/// arenas, each holding its own freed memory. One per CPU (unless `MALLOC_ARENA_MAX`
/// says otherwise): scale-bench with 500 containers running, berthd's RSS 59.2 MiB,
/// 50.3–54.1 with the limit (three runs).
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpus = libc::c_int::try_from(cpus).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt takes two integers; called before any thread is started.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, cpus);
    }
}

fn main() -> anyhow::Result<()> {
    // Descriptors inherited from whatever started berthd (a build tool's jobserver
    // pipes, a shell's) are not the daemon's to hand on: no shim, helper or hook
    // inherits them.
    // SAFETY: close_range only flags descriptors; none is in use by Rust code yet.
    unsafe {
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC);
    }
    limit_malloc_arenas();
    let matches = Args::command().get_matches();
    let mut args = Args::from_arg_matches(&matches)?;
    let flags = flags_given(&matches);
    let explicit = matches.value_source("config_file") == Some(clap::parser::ValueSource::CommandLine);
    let file = berthd::settings::load(&args.config_file, explicit, &flags)?;
    let flag_values = berthd::settings::Live {
        debug: args.debug,
        labels: args.labels.clone(),
        insecure_registries: args.insecure_registries.clone(),
        registry_mirrors: args.registry_mirrors.clone(),
    };
    if let Some(f) = file {
        merge(&mut args, f);
    }
    let level = if args.debug { "debug" } else { berthd::settings::level_filter(&args.log_level)? };
    let filter = |level: &str| {
        tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("berthd={level},warn")))
    };
    let (filter_layer, handle) = tracing_subscriber::reload::Layer::new(filter(level));
    tracing_subscriber::registry()
        .with(filter_layer)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .init();
    let set_level: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(move |level: &str| {
        let _ = handle.reload(filter(level));
    });
    if args.cgroup_favordynmods {
        match berth_oci::favor_dynmods() {
            Ok(berth_oci::Favor::TurnedOn(at)) => tracing::info!(
                hierarchy = %at.display(),
                "cgroup favordynmods turned on: containers join their cgroups without waiting for an RCU grace period (--cgroup-favordynmods=false leaves the host as it is)"
            ),
            Ok(berth_oci::Favor::AlreadyOn) => tracing::debug!("cgroup favordynmods is on"),
            Ok(berth_oci::Favor::NoV2Hierarchy) => tracing::info!(
                "cgroup favordynmods is off and only v1 hierarchies are mounted, which cannot take it after boot: boot with cgroup_favordynmods=true for faster container starts"
            ),
            Err(e) => tracing::warn!("could not turn cgroup favordynmods on (Linux 6.0 or later has it): {e}"),
        }
    }
    // Containers' cpuset cgroups (cgroup v1) start with their parent's CPUs and memory
    // nodes, so that creating one costs no scheduler-domain rebuild.
    match berth_oci::clone_cpusets(berthd::container::DEFAULT_CGROUP_PARENT) {
        Ok(Some(at)) => tracing::debug!(cgroup = %at.display(), "new cpuset cgroups copy their parent's CPUs and nodes"),
        Ok(None) => {}
        Err(e) => tracing::warn!("could not set cgroup.clone_children on berth's cpuset cgroup: {e}"),
    }
    let hosts = if args.hosts.is_empty() {
        vec![format!("unix://{}", args.exec_root.join("berth.sock").display())]
    } else {
        args.hosts.clone()
    };
    let mut log_opts = std::collections::HashMap::new();
    for o in &args.log_opts {
        let (k, v) = o.split_once('=').with_context(|| format!("invalid --log-opt {o:?}: key=value"))?;
        log_opts.insert(k.to_owned(), v.to_owned());
    }
    let cfg = berthd::Config {
        data_root: args.data_root,
        exec_root: args.exec_root,
        hosts,
        pidfile: args.pidfile,
        insecure_registries: args.insecure_registries,
        shim: args.shim,
        warm_containers: args.warm_containers,
        cgroup_pool: args.cgroup_pool,
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
        debug: args.debug,
        labels: berthd::settings::check_labels(&args.labels)?,
        registry_mirrors: berthd::settings::check_mirrors(&args.registry_mirrors)?,
        no_new_privileges: args.no_new_privileges,
        userns_remap: args.userns_remap.filter(|v| !v.is_empty()),
        max_concurrent_downloads: match args.max_concurrent_downloads {
            0 => anyhow::bail!("invalid max concurrent downloads: 0"),
            n => n,
        },
        max_concurrent_uploads: match args.max_concurrent_uploads {
            0 => anyhow::bail!("invalid max concurrent uploads: 0"),
            n => n,
        },
        default_ulimits: args.default_ulimits.iter().map(|u| berthd::settings::parse_ulimit(u)).collect::<anyhow::Result<_>>()?,
        cdi_spec_dirs: if args.cdi_spec_dirs.is_empty() {
            berth_cdi::DEFAULT_SPEC_DIRS.iter().map(PathBuf::from).collect()
        } else {
            args.cdi_spec_dirs.clone()
        },
        dns: berthd::DnsDefaults { servers: args.dns, search: args.dns_search, options: args.dns_opts },
        log: args.log_driver.map(|driver| (driver, log_opts.clone())).or_else(|| (!log_opts.is_empty()).then(|| ("json-file".to_owned(), log_opts))),
        reload: Some(berthd::settings::Reload { file: args.config_file, explicit, flags, flag_values, set_level }),
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let ran = rt.block_on(berthd::run(cfg));
    // A blocking task that never ends (a build step's thread, say) must not keep a
    // stopped daemon alive: containers run on without it, and it restarts cleanly.
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    ran
}

/// Values from daemon.json for what no flag set (conflicts were refused already).
fn merge(a: &mut Args, f: berthd::settings::FileConfig) {
    fn set<T>(slot: &mut T, v: Option<T>) {
        if let Some(v) = v {
            *slot = v;
        }
    }
    fn set_opt<T>(slot: &mut Option<T>, v: Option<T>) {
        if v.is_some() {
            *slot = v;
        }
    }
    set(&mut a.hosts, f.hosts);
    set(&mut a.tls, f.tls);
    set(&mut a.tlsverify, f.tlsverify);
    set_opt(&mut a.tlscacert, f.tlscacert);
    set_opt(&mut a.tlscert, f.tlscert);
    set_opt(&mut a.tlskey, f.tlskey);
    set(&mut a.insecure_tcp, f.insecure_tcp);
    set(&mut a.data_root, f.data_root);
    set(&mut a.exec_root, f.exec_root);
    set_opt(&mut a.pidfile, f.pidfile);
    set(&mut a.debug, f.debug);
    set(&mut a.log_level, f.log_level);
    set(&mut a.labels, f.labels);
    set(&mut a.live_restore, f.live_restore);
    set(&mut a.insecure_registries, f.insecure_registries);
    set(&mut a.registry_mirrors, f.registry_mirrors);
    set(&mut a.cdi_spec_dirs, f.cdi_spec_dirs);
    set(&mut a.no_new_privileges, f.no_new_privileges);
    set_opt(&mut a.userns_remap, f.userns_remap);
    set(&mut a.max_concurrent_downloads, f.max_concurrent_downloads);
    set(&mut a.max_concurrent_uploads, f.max_concurrent_uploads);
    if let Some(u) = f.default_ulimits {
        a.default_ulimits = u.into_iter().map(|(k, v)| format!("{}={}:{}", if v.name.is_empty() { k } else { v.name }, v.soft, v.hard)).collect();
    }
    set(&mut a.bridge, f.bridge);
    set_opt(&mut a.bip, f.bip);
    set_opt(&mut a.fixed_cidr, f.fixed_cidr);
    set(&mut a.default_address_pool, f.default_address_pools.map(|p| p.iter().map(|p| p.flag()).collect()));
    set(&mut a.mtu, f.mtu);
    set_opt(&mut a.ip, f.ip);
    set(&mut a.dns, f.dns);
    set(&mut a.dns_search, f.dns_search);
    set(&mut a.dns_opts, f.dns_opts);
    set_opt(&mut a.log_driver, f.log_driver);
    set(&mut a.log_opts, f.log_opts.map(|m| m.into_iter().map(|(k, v)| format!("{k}={v}")).collect()));
    set_opt(&mut a.init_path, f.init_path);
    set(&mut a.warm_containers, f.warm_containers);
}
