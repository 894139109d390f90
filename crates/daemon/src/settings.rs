//! `daemon.json`: dockerd's configuration file, read the way dockerd reads it. Keys
//! are the long flag names (lists in the plural: `hosts`, `labels`,
//! `insecure-registries`, `registry-mirrors`, `default-address-pools`); a key that
//! berthd does not know, or one also given as a flag, stops the daemon with dockerd's
//! message; dockerd keys whose feature berthd lacks are refused by name instead of
//! being ignored. `SIGHUP` re-reads the file and applies what dockerd applies live
//! (`debug`, `labels`, `insecure-registries`, `registry-mirrors`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::Value;

/// Where berthd looks when `--config-file` is not given.
pub const DEFAULT_FILE: &str = "/etc/berth/daemon.json";

/// The keys berthd supports.
const KNOWN: &[&str] = &[
    "hosts",
    "tls",
    "tlsverify",
    "tlscacert",
    "tlscert",
    "tlskey",
    "insecure-tcp",
    "data-root",
    "exec-root",
    "pidfile",
    "debug",
    "log-level",
    "labels",
    "live-restore",
    "insecure-registries",
    "registry-mirrors",
    "bridge",
    "bip",
    "fixed-cidr",
    "default-address-pools",
    "mtu",
    "ip",
    "dns",
    "dns-search",
    "dns-opts",
    "log-driver",
    "log-opts",
    "init-path",
    "features",
    "warm-containers",
    "cdi-spec-dirs",
    "no-new-privileges",
    "userns-remap",
    "default-ulimits",
    "max-concurrent-downloads",
    "max-concurrent-uploads",
];

/// dockerd keys whose feature berthd does not have: refused, never ignored.
const UNSUPPORTED: &[&str] = &[
    "max-download-attempts",
    "storage-driver",
    "storage-opts",
    "runtimes",
    "default-runtime",
    "exec-opts",
    "cgroup-parent",
    "iptables",
    "ip6tables",
    "ip-forward",
    "ip-masq",
    "icc",
    "ipv6",
    "fixed-cidr-v6",
    "userland-proxy",
    "experimental",
    "authorization-plugins",
    "selinux-enabled",
    "seccomp-profile",
    "default-shm-size",
    "default-cgroupns-mode",
    "default-ipc-mode",
    "shutdown-timeout",
    "containerd",
    "cluster-store",
    "swarm-default-advertise-addr",
    "node-generic-resources",
    "metrics-addr",
    "raw-logs",
    "allow-nondistributable-artifacts",
    "group",
    "oom-score-adjust",
    "debug-key",
];

/// One of daemon.json's `default-ulimits`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FileUlimit {
    #[serde(default)]
    pub name: String,
    pub hard: i64,
    pub soft: i64,
}

/// `--default-ulimit name=soft[:hard]` (dockerd's `units.ParseUlimit`): a name, a
/// soft limit and a hard limit (the soft one when absent), soft <= hard.
pub fn parse_ulimit(s: &str) -> anyhow::Result<(String, i64, i64)> {
    let (name, v) = s.split_once('=').ok_or_else(|| anyhow::anyhow!("invalid ulimit argument: {s}"))?;
    let num = |x: &str| x.parse::<i64>().map_err(|_| anyhow::anyhow!("invalid ulimit argument: {s}"));
    let (soft, hard) = match v.split_once(':') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(v)?, num(v)?),
    };
    if soft > hard {
        anyhow::bail!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}");
    }
    Ok((name.to_owned(), soft, hard))
}

/// The file's values, typed (every key optional).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct FileConfig {
    pub hosts: Option<Vec<String>>,
    pub tls: Option<bool>,
    pub tlsverify: Option<bool>,
    pub tlscacert: Option<PathBuf>,
    pub tlscert: Option<PathBuf>,
    pub tlskey: Option<PathBuf>,
    pub insecure_tcp: Option<bool>,
    pub data_root: Option<PathBuf>,
    pub exec_root: Option<PathBuf>,
    pub pidfile: Option<PathBuf>,
    pub debug: Option<bool>,
    pub log_level: Option<String>,
    pub labels: Option<Vec<String>>,
    pub live_restore: Option<bool>,
    pub insecure_registries: Option<Vec<String>>,
    pub registry_mirrors: Option<Vec<String>>,
    pub cdi_spec_dirs: Option<Vec<PathBuf>>,
    pub no_new_privileges: Option<bool>,
    pub userns_remap: Option<String>,
    pub max_concurrent_downloads: Option<usize>,
    pub max_concurrent_uploads: Option<usize>,
    /// dockerd's form: `{"nofile": {"Name": "nofile", "Hard": 2048, "Soft": 1024}}`.
    pub default_ulimits: Option<std::collections::BTreeMap<String, FileUlimit>>,
    pub bridge: Option<String>,
    pub bip: Option<String>,
    pub fixed_cidr: Option<String>,
    pub default_address_pools: Option<Vec<Pool>>,
    pub mtu: Option<u32>,
    pub ip: Option<String>,
    pub dns: Option<Vec<String>>,
    pub dns_search: Option<Vec<String>>,
    pub dns_opts: Option<Vec<String>>,
    pub log_driver: Option<String>,
    pub log_opts: Option<HashMap<String, String>>,
    pub init_path: Option<PathBuf>,
    pub features: Option<HashMap<String, bool>>,
    pub warm_containers: Option<usize>,
}

/// One `default-address-pools` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    pub base: String,
    pub size: u32,
}

impl Pool {
    /// As the `--default-address-pool` flag takes it.
    pub fn flag(&self) -> String {
        format!("base={},size={}", self.base, self.size)
    }
}

/// Read and check `path`. `explicit`: given with `--config-file` (then a missing file
/// is an error; the default file may be absent). `flags`: the flags given on the
/// command line, as (file key, value as shown) — a key in both is a conflict.
pub fn load(path: &Path, explicit: bool, flags: &BTreeMap<String, String>) -> Result<Option<FileConfig>> {
    let raw = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(None),
        Err(e) => bail!("unable to configure the Docker daemon with file {}: open {}: {e}", path.display(), path.display()),
    };
    parse(&raw, flags).map(Some).with_context(|| format!("unable to configure the Docker daemon with file {}", path.display()))
}

fn parse(raw: &[u8], flags: &BTreeMap<String, String>) -> Result<FileConfig> {
    let map: serde_json::Map<String, Value> = serde_json::from_slice(raw).context("invalid JSON")?;
    let mut unknown: Vec<&str> = map.keys().map(String::as_str).filter(|k| !KNOWN.contains(k) && !UNSUPPORTED.contains(k)).collect();
    unknown.sort_unstable();
    if !unknown.is_empty() {
        bail!("the following directives don't match any configuration option: {}", unknown.join(", "));
    }
    let conflicts: Vec<String> = map
        .iter()
        .filter_map(|(k, v)| flags.get(k).map(|f| format!("{k}: (from flag: {f}, from file: {})", show(v))))
        .collect();
    if !conflicts.is_empty() {
        bail!("the following directives are specified both as a flag and in the configuration file: {}", conflicts.join(", "));
    }
    let mut refused: Vec<&str> = map.keys().map(String::as_str).filter(|k| UNSUPPORTED.contains(k)).collect();
    refused.sort_unstable();
    if !refused.is_empty() {
        bail!("berthd does not support these dockerd options: {}", refused.join(", "));
    }
    let cfg: FileConfig = serde_json::from_value(Value::Object(map)).context("invalid value")?;
    if cfg.live_restore == Some(false) {
        bail!("live-restore cannot be turned off: berth's containers always outlive the daemon (each has its own shim)");
    }
    for (name, on) in cfg.features.iter().flatten() {
        match (name.as_str(), on) {
            ("buildkit", false) => {}
            ("buildkit", true) => bail!("feature buildkit: berthd builds with the classic builder (POST /build), not BuildKit"),
            _ => bail!("unknown feature {name:?} (berthd knows: buildkit)"),
        }
    }
    if let Some(level) = &cfg.log_level {
        level_filter(level)?;
    }
    Ok(cfg)
}

/// A value as Go's `%v` shows it in dockerd's conflict message.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(show).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => format!("map[{}]", m.iter().map(|(k, v)| format!("{k}:{}", show(v))).collect::<Vec<_>>().join(" ")),
        other => other.to_string(),
    }
}

/// `--log-level`/`log-level` as a tracing level, refusing what dockerd refuses.
pub fn level_filter(level: &str) -> Result<&'static str> {
    Ok(match level {
        "debug" => "debug",
        "info" => "info",
        "warn" => "warn",
        "error" | "fatal" | "panic" => "error",
        "trace" => "trace",
        other => bail!("unable to parse logging level: {other}"),
    })
}

/// What the daemon changes while running, on `SIGHUP` (dockerd's reloadable subset
/// that berthd has).
#[derive(Debug, Clone, Default)]
pub struct Live {
    pub debug: bool,
    pub labels: Vec<String>,
    pub insecure_registries: Vec<String>,
    pub registry_mirrors: Vec<String>,
}

/// How to re-read the configuration on `SIGHUP`.
#[derive(Clone)]
pub struct Reload {
    pub file: PathBuf,
    pub explicit: bool,
    /// The command line's flags (file key → value shown), still conflicts on reload.
    pub flags: BTreeMap<String, String>,
    /// The values given as flags, kept when the file does not set them.
    pub flag_values: Live,
    /// Applies a new log level (a tracing reload handle).
    pub set_level: std::sync::Arc<dyn Fn(&str) + Send + Sync>,
}

impl std::fmt::Debug for Reload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reload").field("file", &self.file).field("flags", &self.flags).finish_non_exhaustive()
    }
}

impl Reload {
    /// Re-read the file; the new live settings (labels and mirrors checked as at
    /// start), or why the file was refused (the running configuration then stays).
    pub fn read(&self) -> Result<Live> {
        let file = load(&self.file, self.explicit, &self.flags)?.unwrap_or_default();
        let debug = file.debug.unwrap_or(self.flag_values.debug);
        let level = if debug { "debug" } else { file.log_level.as_deref().map(level_filter).transpose()?.unwrap_or("info") };
        (self.set_level)(level);
        Ok(Live {
            debug,
            labels: check_labels(file.labels.as_ref().unwrap_or(&self.flag_values.labels))?,
            insecure_registries: file.insecure_registries.unwrap_or_else(|| self.flag_values.insecure_registries.clone()),
            registry_mirrors: check_mirrors(file.registry_mirrors.as_ref().unwrap_or(&self.flag_values.registry_mirrors))?,
        })
    }
}

/// Check `registry-mirrors` entries as dockerd does: absolute http(s) URLs with no
/// path, query or credentials; returned without a trailing slash.
pub fn check_mirrors(mirrors: &[String]) -> Result<Vec<String>> {
    mirrors
        .iter()
        .map(|m| {
            let u = url::Url::parse(m).map_err(|_| anyhow::anyhow!("invalid mirror: {m:?} is not a valid URI"))?;
            if !matches!(u.scheme(), "http" | "https") {
                bail!("invalid mirror: unsupported scheme {:?} in {m:?}", u.scheme());
            }
            if u.path() != "/" && !u.path().is_empty() || u.query().is_some() || !u.username().is_empty() || u.password().is_some() {
                bail!("invalid mirror: path, query or credentials in mirror URL {m:?}");
            }
            Ok(m.trim_end_matches('/').to_owned())
        })
        .collect()
}

/// Check `labels` as dockerd does: `key=value`, and one value per key.
pub fn check_labels(labels: &[String]) -> Result<Vec<String>> {
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for l in labels {
        let Some((k, v)) = l.split_once('=') else { bail!("bad attribute format: {l}") };
        if let Some(old) = seen.insert(k, v) {
            if old != v {
                bail!("conflict labels for {k}={old} and {k}={v}");
            }
        }
    }
    let mut out: Vec<String> = seen.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn dockerds_messages_for_unknown_keys_and_conflicts() {
        let e = parse(br#"{"hosts":["unix:///x"],"bogus":1,"also-bogus":true}"#, &flags(&[])).unwrap_err();
        assert_eq!(e.to_string(), "the following directives don't match any configuration option: also-bogus, bogus");
        let e = parse(br#"{"hosts":["tcp://0.0.0.0:2376"]}"#, &flags(&[("hosts", "[unix:///a.sock]")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the following directives are specified both as a flag and in the configuration file: hosts: (from flag: [unix:///a.sock], from file: [tcp://0.0.0.0:2376])"
        );
    }

    #[test]
    fn dockerd_keys_without_the_feature_are_refused_by_name() {
        let e = parse(br#"{"storage-driver":"vfs"}"#, &flags(&[])).unwrap_err();
        assert!(e.to_string().contains("does not support these dockerd options: storage-driver"), "{e}");
        let f = parse(br#"{"userns-remap":"default"}"#, &flags(&[])).unwrap();
        assert_eq!(f.userns_remap.as_deref(), Some("default"));
        assert!(parse(br#"{"live-restore":false}"#, &flags(&[])).is_err());
        assert!(parse(br#"{"features":{"buildkit":true}}"#, &flags(&[])).is_err());
        assert!(parse(br#"{"log-level":"loud"}"#, &flags(&[])).is_err());
        let e = parse(br#"{"mtu":"big"}"#, &flags(&[])).unwrap_err();
        assert!(format!("{e:#}").contains("invalid type"), "{e:#}");
    }

    #[test]
    fn every_supported_key_parses() {
        let cfg = parse(
            br#"{"hosts":["unix:///s"],"tls":true,"tlsverify":true,"tlscacert":"/c","tlscert":"/d","tlskey":"/e",
                "insecure-tcp":false,"data-root":"/d","exec-root":"/e","pidfile":"/p","debug":true,"log-level":"warn",
                "labels":["a=b"],"live-restore":true,"insecure-registries":["r:5000"],"registry-mirrors":["http://m:5000"],
                "bridge":"br9","bip":"10.1.0.1/24","fixed-cidr":"10.1.0.0/25","default-address-pools":[{"base":"10.9.0.0/16","size":24}],
                "mtu":1400,"ip":"127.0.0.1","dns":["10.0.0.2"],"dns-search":["example"],"dns-opts":["ndots:2"],
                "log-driver":"json-file","log-opts":{"max-size":"1m"},"init-path":"/i","features":{"buildkit":false},"warm-containers":0}"#,
            &flags(&[]),
        )
        .unwrap();
        assert_eq!(cfg.default_address_pools.unwrap()[0].flag(), "base=10.9.0.0/16,size=24");
        assert_eq!(cfg.mtu, Some(1400));
        assert_eq!(cfg.log_opts.unwrap()["max-size"], "1m");
    }

    #[test]
    fn a_missing_default_file_is_fine_an_explicit_one_is_not() {
        let p = Path::new("/nonexistent/berth/daemon.json");
        assert!(load(p, false, &flags(&[])).unwrap().is_none());
        let e = load(p, true, &flags(&[])).unwrap_err();
        assert!(e.to_string().starts_with("unable to configure the Docker daemon with file /nonexistent/berth/daemon.json"), "{e}");
    }

    #[test]
    fn mirrors_and_labels_are_checked() {
        assert_eq!(check_mirrors(&["http://127.0.0.1:5000/".into()]).unwrap(), vec!["http://127.0.0.1:5000"]);
        assert!(check_mirrors(&["ftp://m".into()]).is_err());
        assert!(check_mirrors(&["https://m/v2/x".into()]).is_err());
        assert!(check_mirrors(&["mirror:5000".into()]).is_err());
        assert_eq!(check_labels(&["b=1".into(), "a=2".into(), "b=1".into()]).unwrap(), vec!["a=2", "b=1"]);
        assert!(check_labels(&["a=1".into(), "a=2".into()]).unwrap_err().to_string().contains("conflict labels"));
        assert!(check_labels(&["novalue".into()]).is_err());
    }
}
