//! Contexts, in the docker CLI's store so both CLIs share them: `$DOCKER_CONFIG`
//! (default `~/.docker`) holds `contexts/meta/<sha256(name)>/meta.json`,
//! `contexts/tls/<sha256(name)>/docker/{ca,cert,key}.pem` and, in `config.json`, the
//! `currentContext` key. And the choice of the daemon a command talks to, by docker's
//! precedence: `--context` > `-H` > `BERTH_HOST`/`DOCKER_HOST` >
//! `BERTH_CONTEXT`/`DOCKER_CONTEXT` > `currentContext` > the default socket.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::client::{TlsOptions, DEFAULT_SOCKET};

pub const DEFAULT_CONTEXT: &str = "default";
pub const DOCKER_ENDPOINT: &str = "docker";
/// The description docker gives the default context (kept word for word).
pub const DEFAULT_DESCRIPTION: &str = "Current DOCKER_HOST based configuration";
const META_FILE: &str = "meta.json";
const TLS_FILES: [&str; 3] = ["ca.pem", "cert.pem", "key.pem"];
const MAX_IMPORT: u64 = 10 << 20;

/// The docker CLI's configuration directory: `$DOCKER_CONFIG`, else `~/.docker`.
pub fn config_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .or_else(|| nix::unistd::User::from_uid(nix::unistd::getuid()).ok().flatten().map(|u| u.dir))
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".docker")
}

/// A context's `Metadata`: docker's `Description` plus whatever else is there.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContextMeta {
    #[serde(rename = "Description", default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `docker` endpoint of a context.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DockerEndpoint {
    #[serde(rename = "Host", default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    #[serde(rename = "SkipTLSVerify", default)]
    pub skip_tls_verify: bool,
}

/// `meta.json`. Other endpoints than `docker` are kept as they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    #[serde(rename = "Name", alias = "name", default)]
    pub name: String,
    #[serde(rename = "Metadata", alias = "metadata", default)]
    pub metadata: ContextMeta,
    #[serde(rename = "Endpoints", alias = "endpoints", default)]
    pub endpoints: BTreeMap<String, Value>,
}

impl Metadata {
    pub fn new(name: &str, description: &str, ep: &DockerEndpoint) -> Metadata {
        let mut endpoints = BTreeMap::new();
        endpoints.insert(DOCKER_ENDPOINT.to_owned(), serde_json::to_value(ep).expect("endpoint json"));
        Metadata {
            name: name.to_owned(),
            metadata: ContextMeta { description: description.to_owned(), extra: Map::new() },
            endpoints,
        }
    }

    /// The `docker` endpoint.
    pub fn docker(&self) -> Result<DockerEndpoint> {
        let v = self
            .endpoints
            .get(DOCKER_ENDPOINT)
            .ok_or_else(|| anyhow!("cannot find docker endpoint in context"))?;
        serde_json::from_value(v.clone()).map_err(|e| anyhow!("endpoint {DOCKER_ENDPOINT:?} is not of type EndpointMeta: {e}"))
    }

    pub fn set_docker(&mut self, ep: &DockerEndpoint) {
        self.endpoints.insert(DOCKER_ENDPOINT.to_owned(), serde_json::to_value(ep).expect("endpoint json"));
    }
}

/// TLS files of one endpoint: file name → content.
pub type TlsFiles = BTreeMap<String, Vec<u8>>;
/// TLS files of one context: endpoint → file name → content.
pub type TlsData = BTreeMap<String, TlsFiles>;

/// docker's rule for context names.
pub fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() {
        bail!("context name cannot be empty");
    }
    if name == DEFAULT_CONTEXT {
        bail!("\"default\" is a reserved context name");
    }
    let b = name.as_bytes();
    let ok = b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..].iter().all(|c| c.is_ascii_alphanumeric() || b"_.+-".contains(c));
    if !ok {
        bail!("context name {name:?} is invalid, names are validated against regexp \"^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$\"");
    }
    Ok(())
}

/// The context store under `<config dir>/contexts`.
#[derive(Debug, Clone)]
pub struct Store {
    pub root: PathBuf,
}

fn id(name: &str) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(name.as_bytes()))
}

/// Writes `data` to `path` through a temporary file renamed into place.
fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().context("no parent directory")?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("f"),
        std::process::id()
    ));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("open {}", tmp.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))?;
    Ok(())
}

impl Store {
    pub fn new(config_dir: &Path) -> Store {
        Store { root: config_dir.join("contexts") }
    }

    pub fn meta_dir(&self, name: &str) -> PathBuf {
        self.root.join("meta").join(id(name))
    }

    pub fn tls_dir(&self, name: &str) -> PathBuf {
        self.root.join("tls").join(id(name))
    }

    pub fn exists(&self, name: &str) -> bool {
        self.meta_dir(name).join(META_FILE).is_file()
    }

    pub fn get(&self, name: &str) -> Result<Metadata> {
        let file = self.meta_dir(name).join(META_FILE);
        let data = match std::fs::read(&file) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("context {name:?}: context not found: open {}: no such file or directory", file.display())
            }
            Err(e) => return Err(anyhow!("context {name:?}: {e}")),
        };
        serde_json::from_slice(&data).map_err(|e| anyhow!("context {name:?}: parsing {}: {e}", file.display()))
    }

    /// Every stored context, sorted by name.
    pub fn list(&self) -> Result<Vec<Metadata>> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
            let rd = match std::fs::read_dir(dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            for e in rd {
                let e = e?;
                if e.file_type()?.is_dir() {
                    let p = e.path();
                    if p.join(META_FILE).is_file() {
                        out.push(p.join(META_FILE));
                    }
                    walk(&p, out)?;
                }
            }
            Ok(())
        }
        let mut files = Vec::new();
        walk(&self.root.join("meta"), &mut files).context("failed to read metadata")?;
        let mut res = Vec::new();
        for f in files {
            let data = std::fs::read(&f).with_context(|| format!("read {}", f.display()))?;
            res.push(
                serde_json::from_slice::<Metadata>(&data)
                    .map_err(|e| anyhow!("failed to read metadata: parsing {}: {e}", f.display()))?,
            );
        }
        res.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(res)
    }

    pub fn create_or_update(&self, meta: &Metadata) -> Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = self.meta_dir(&meta.name);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&dir)
            .with_context(|| format!("create {}", dir.display()))?;
        write_atomic(&dir.join(META_FILE), &serde_json::to_vec(meta)?, 0o644)
    }

    pub fn remove(&self, name: &str) -> Result<()> {
        for d in [self.meta_dir(name), self.tls_dir(name)] {
            match std::fs::remove_dir_all(&d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(anyhow!("failed to remove context {name}: {e}")),
            }
        }
        Ok(())
    }

    /// TLS file names per endpoint.
    pub fn tls_files(&self, name: &str) -> Result<BTreeMap<String, Vec<String>>> {
        let mut out = BTreeMap::new();
        let rd = match std::fs::read_dir(self.tls_dir(name)) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(anyhow!("failed to list TLS files for context {name}: {e}")),
        };
        for ep in rd {
            let ep = ep?;
            if !ep.file_type()?.is_dir() {
                continue;
            }
            let mut files = Vec::new();
            for f in std::fs::read_dir(ep.path())? {
                let f = f?;
                if !f.file_type()?.is_dir() {
                    files.push(f.file_name().to_string_lossy().into_owned());
                }
            }
            files.sort();
            out.insert(ep.file_name().to_string_lossy().into_owned(), files);
        }
        Ok(out)
    }

    pub fn tls_data(&self, name: &str) -> Result<TlsData> {
        let mut out = TlsData::new();
        for (ep, files) in self.tls_files(name)? {
            let mut m = BTreeMap::new();
            for f in files {
                let p = self.tls_dir(name).join(&ep).join(&f);
                m.insert(f, std::fs::read(&p).with_context(|| format!("read {}", p.display()))?);
            }
            out.insert(ep, m);
        }
        Ok(out)
    }

    /// Replaces one endpoint's TLS files (none: removes them).
    pub fn reset_endpoint_tls(&self, name: &str, endpoint: &str, files: Option<&TlsFiles>) -> Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = self.tls_dir(name).join(endpoint);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(anyhow!("failed to remove TLS data for endpoint {endpoint}: {e}")),
        }
        let Some(files) = files.filter(|f| !f.is_empty()) else { return Ok(()) };
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
        for (f, data) in files {
            write_atomic(&dir.join(f), data, 0o600)?;
        }
        Ok(())
    }

    /// Replaces all of a context's TLS files.
    pub fn reset_tls(&self, name: &str, data: &TlsData) -> Result<()> {
        match std::fs::remove_dir_all(self.tls_dir(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(anyhow!("failed to remove TLS data: {e}")),
        }
        for (ep, files) in data {
            self.reset_endpoint_tls(name, ep, Some(files))?;
        }
        Ok(())
    }
}

/// The default context's metadata: the host berth would use without a context (no
/// description in it: `context ls` shows [`DEFAULT_DESCRIPTION`], as docker does).
pub fn default_metadata(default_host: &str) -> Metadata {
    Metadata::new(DEFAULT_CONTEXT, "", &DockerEndpoint { host: default_host.to_owned(), skip_tls_verify: false })
}

/// An exported context as docker writes it: `meta.json`, then `tls/`, `tls/<endpoint>/`
/// and the files, all owned by 0:0 at the epoch.
pub fn export_tar(meta: &Metadata, tls: &TlsData) -> Result<Vec<u8>> {
    fn header(path: &str, mode: u32, size: u64, kind: tar::EntryType) -> Result<tar::Header> {
        let mut h = tar::Header::new_ustar();
        h.set_path(path)?;
        h.set_mode(mode);
        h.set_size(size);
        h.set_entry_type(kind);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        Ok(h)
    }
    let mut b = tar::Builder::new(Vec::new());
    let m = serde_json::to_vec(meta)?;
    b.append(&header(META_FILE, 0o644, m.len() as u64, tar::EntryType::Regular)?, &m[..])?;
    b.append(&header("tls", 0o700, 0, tar::EntryType::Directory)?, std::io::empty())?;
    for (ep, files) in tls {
        b.append(&header(&format!("tls/{ep}"), 0o700, 0, tar::EntryType::Directory)?, std::io::empty())?;
        for (f, data) in files {
            b.append(&header(&format!("tls/{ep}/{f}"), 0o600, data.len() as u64, tar::EntryType::Regular)?, &data[..])?;
        }
    }
    Ok(b.into_inner()?)
}

/// Reads an exported context (docker's tar format; at most 10 MiB) as `name`.
pub fn import_tar(name: &str, reader: impl Read) -> Result<(Metadata, TlsData)> {
    let mut limited = reader.take(MAX_IMPORT + 1);
    let mut buf = Vec::new();
    limited.read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_IMPORT {
        bail!("read limit of 10485760 bytes exceeded");
    }
    if buf.starts_with(b"PK\x03\x04") {
        bail!("zip context archives are not supported by berth; export the context as a tar archive");
    }
    let mut ar = tar::Archive::new(&buf[..]);
    let mut meta = None;
    let mut tls = TlsData::new();
    for entry in ar.entries().context("reading the context archive")? {
        let mut entry = entry.context("reading the context archive")?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let clean = path != META_FILE && !path.starts_with("tls/");
        if clean {
            bail!("{path}: unexpected context file");
        }
        if path.contains('\\') {
            bail!("{path}: unexpected '\\' in path");
        }
        if path.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
            bail!("{path}: unexpected path format");
        }
        let mut data = Vec::new();
        entry.read_to_end(&mut data)?;
        if path == META_FILE {
            let mut m: Metadata = serde_json::from_slice(&data).map_err(|e| anyhow!("parsing {META_FILE}: {e}"))?;
            m.name = name.to_owned();
            meta = Some(m);
        } else {
            let rest = &path["tls/".len()..];
            let (ep, file) = rest.split_once('/').ok_or_else(|| anyhow!("archive format is invalid"))?;
            if file.contains('/') {
                bail!("archive format is invalid");
            }
            tls.entry(ep.to_owned()).or_default().insert(file.to_owned(), data);
        }
    }
    let meta = meta.ok_or_else(|| anyhow!("invalid context: no metadata found"))?;
    Ok((meta, tls))
}

/// `config.json` as a JSON object (empty if there is none).
pub fn read_config(dir: &Path) -> Result<Map<String, Value>> {
    let p = dir.join("config.json");
    match std::fs::read(&p) {
        Ok(d) if d.iter().all(|b| b.is_ascii_whitespace()) => Ok(Map::new()),
        Ok(d) => match serde_json::from_slice(&d) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => bail!("{}: not a JSON object", p.display()),
            Err(e) => bail!("loading config file: {}: {e}", p.display()),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(anyhow!("loading config file: {}: {e}", p.display())),
    }
}

/// Sets (or, for `None`/"default", removes) `currentContext` in `config.json`, keeping
/// every other key and the file's mode.
pub fn set_current(dir: &Path, name: Option<&str>) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut cfg = read_config(dir)?;
    match name.filter(|n| *n != DEFAULT_CONTEXT && !n.is_empty()) {
        Some(n) => {
            if cfg.get("currentContext").and_then(Value::as_str) == Some(n) {
                return Ok(());
            }
            cfg.insert("currentContext".into(), Value::String(n.to_owned()));
        }
        None => {
            if cfg.remove("currentContext").is_none() {
                return Ok(());
            }
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let p = dir.join("config.json");
    let mode = std::fs::metadata(&p).map(|m| m.permissions().mode() & 0o7777).unwrap_or(0o600);
    // docker's layout: tab-indented.
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    Value::Object(cfg).serialize(&mut ser)?;
    write_atomic(&p, &out, mode)
}

/// The environment a resolution looks at.
pub trait Env {
    fn get(&self, key: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;
impl Env for ProcessEnv {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.is_empty())
    }
}

/// The host set by `BERTH_HOST` or `DOCKER_HOST`, if any (and which variable).
pub fn env_host(env: &dyn Env) -> Option<(&'static str, String)> {
    ["BERTH_HOST", "DOCKER_HOST"].into_iter().find_map(|k| env.get(k).map(|v| (k, v)))
}

/// The host of the default context: `-H`, `BERTH_HOST`, `DOCKER_HOST`, the default socket.
pub fn default_host(flag_host: Option<&str>, env: &dyn Env) -> String {
    flag_host
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
        .or_else(|| env_host(env).map(|(_, h)| h))
        .unwrap_or_else(|| format!("unix://{DEFAULT_SOCKET}"))
}

/// The name of the context in use, by docker's precedence: `--context`, then `default`
/// if a host is given (`-H`, `BERTH_HOST`, `DOCKER_HOST`), then `BERTH_CONTEXT`,
/// `DOCKER_CONTEXT`, the config's `currentContext`, `default`.
pub fn current_name(flag_context: Option<&str>, flag_host: Option<&str>, env: &dyn Env, config_current: Option<&str>) -> String {
    if let Some(c) = flag_context.filter(|c| !c.is_empty()) {
        return c.to_owned();
    }
    if flag_host.is_some_and(|h| !h.is_empty()) || env_host(env).is_some() {
        return DEFAULT_CONTEXT.to_owned();
    }
    if let Some(c) = ["BERTH_CONTEXT", "DOCKER_CONTEXT"].into_iter().find_map(|k| env.get(k)) {
        return c;
    }
    config_current.filter(|c| !c.is_empty()).unwrap_or(DEFAULT_CONTEXT).to_owned()
}

/// Where a command connects, and with which TLS settings.
#[derive(Debug, Clone)]
pub struct Target {
    /// The host (`None`: the default socket).
    pub host: Option<String>,
    pub tls: TlsOptions,
}

/// Everything a resolution needs from the command line.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub host: Option<String>,
    pub context: Option<String>,
    /// TLS flags (with `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH` applied): used for the
    /// default context only, as docker does.
    pub tls: TlsOptions,
}

/// The current context's name as `context ls/show` see it.
pub fn current(flags: &Flags, env: &dyn Env, dir: &Path) -> Result<String> {
    let cfg = read_config(dir)?;
    Ok(current_name(
        flags.context.as_deref(),
        flags.host.as_deref(),
        env,
        cfg.get("currentContext").and_then(Value::as_str),
    ))
}

/// Resolves the daemon a command talks to.
pub fn resolve(flags: &Flags, env: &dyn Env, dir: &Path) -> Result<Target> {
    if flags.context.as_deref().is_some_and(|c| !c.is_empty()) && flags.host.as_deref().is_some_and(|h| !h.is_empty()) {
        bail!("conflicting options: cannot specify both --host and --context");
    }
    let cfg = read_config(dir)?;
    let from_config = cfg.get("currentContext").and_then(Value::as_str);
    let name = current_name(flags.context.as_deref(), flags.host.as_deref(), env, from_config);
    if name == DEFAULT_CONTEXT {
        let host = flags
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .or_else(|| env_host(env).map(|(_, h)| h));
        return Ok(Target { host, tls: flags.tls.clone() });
    }
    let store = Store::new(dir);
    if !store.exists(&name) {
        if from_config == Some(name.as_str()) && flags.context.is_none() {
            bail!(
                "Current context {name:?} is not found on the file system, please check your config file at {}",
                dir.join("config.json").display()
            );
        }
        // docker's wording for a context that is not there.
        return Err(store.get(&name).err().unwrap_or_else(|| anyhow!("context {name:?} not found")));
    }
    let meta = store.get(&name)?;
    let ep = meta.docker()?;
    let tls_dir = store.tls_dir(&name).join(DOCKER_ENDPOINT);
    let file = |f: &str| Some(tls_dir.join(f)).filter(|p| p.is_file());
    let (ca, cert, key) = (file("ca.pem"), file("cert.pem"), file("key.pem"));
    let has_tls = ca.is_some() || cert.is_some() || key.is_some();
    let is_tcp = ep.host.starts_with("tcp://");
    let tls = if is_tcp && (has_tls || ep.skip_tls_verify) {
        TlsOptions { tls: true, verify: !ep.skip_tls_verify, ca, cert, key, system_roots: true }
    } else {
        TlsOptions::default()
    };
    Ok(Target { host: Some(ep.host).filter(|h| !h.is_empty()), tls })
}

/// Reads the TLS files named in `--docker ca=...,cert=...,key=...` (docker checks the
/// CA and the key pair when the context is made).
pub fn tls_from_files(ca: Option<&str>, cert: Option<&str>, key: Option<&str>) -> Result<Option<TlsFiles>> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let read = |p: &str| std::fs::read(p).with_context(|| format!("open {p}"));
    let mut files = BTreeMap::new();
    if let Some(ca) = ca.filter(|s| !s.is_empty()) {
        let data = read(ca)?;
        let n = CertificateDer::pem_slice_iter(&data).filter(|c| c.is_ok()).count();
        if n == 0 {
            bail!("failed to retrieve context tls info: ca.pem seems invalid");
        }
        files.insert(TLS_FILES[0].to_owned(), data);
    }
    match (cert.filter(|s| !s.is_empty()), key.filter(|s| !s.is_empty())) {
        (Some(c), Some(k)) => {
            let (c, k) = (read(c)?, read(k)?);
            if CertificateDer::pem_slice_iter(&c).next().is_none_or(|r| r.is_err()) {
                bail!("failed to retrieve context tls info: cert.pem seems invalid");
            }
            if PrivateKeyDer::from_pem_slice(&k).is_err() {
                bail!("no valid private key found");
            }
            files.insert(TLS_FILES[1].to_owned(), c);
            files.insert(TLS_FILES[2].to_owned(), k);
        }
        (None, None) => {}
        _ => bail!("cert and key must both be given"),
    }
    Ok(Some(files).filter(|f| !f.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct MapEnv(HashMap<&'static str, &'static str>);
    impl Env for MapEnv {
        fn get(&self, key: &str) -> Option<String> {
            self.0.get(key).map(|v| v.to_string())
        }
    }
    fn env(pairs: &[(&'static str, &'static str)]) -> MapEnv {
        MapEnv(pairs.iter().copied().collect())
    }

    #[test]
    fn names() {
        assert!(validate_name("ab").is_ok());
        assert!(validate_name("a1_.+-z").is_ok());
        for bad in ["", "a", "default", "-ab", "a b", "a/b", "é1"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_are_sha256_of_the_name() {
        // the same directory docker uses (checked against `docker context create xx`)
        assert_eq!(id("xx"), "5dde896887f6754c9b15bfe3a441ae4806df2fde94001311e08bf110622e0bbe");
    }

    #[test]
    fn precedence() {
        let none = env(&[]);
        assert_eq!(current_name(None, None, &none, None), "default");
        assert_eq!(current_name(None, None, &none, Some("cfg")), "cfg");
        assert_eq!(current_name(None, None, &env(&[("DOCKER_CONTEXT", "dc")]), Some("cfg")), "dc");
        assert_eq!(current_name(None, None, &env(&[("DOCKER_CONTEXT", "dc"), ("BERTH_CONTEXT", "bc")]), Some("cfg")), "bc");
        // a host in the environment beats contexts from the environment and the config
        assert_eq!(current_name(None, None, &env(&[("DOCKER_HOST", "unix:///x"), ("BERTH_CONTEXT", "bc")]), Some("cfg")), "default");
        assert_eq!(current_name(None, Some("unix:///h"), &none, Some("cfg")), "default");
        // --context beats everything
        assert_eq!(current_name(Some("flag"), None, &env(&[("BERTH_HOST", "unix:///x")]), Some("cfg")), "flag");
        assert_eq!(default_host(None, &env(&[("DOCKER_HOST", "unix:///d"), ("BERTH_HOST", "unix:///b")])), "unix:///b");
        assert_eq!(default_host(Some("tcp://h:1"), &env(&[("BERTH_HOST", "unix:///b")])), "tcp://h:1");
        assert_eq!(default_host(None, &none), "unix:///run/berth/berth.sock");
    }

    fn tmp() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn resolution_through_the_store() {
        let dir = tmp();
        let s = Store::new(dir.path());
        s.create_or_update(&Metadata::new("ctx", "d", &DockerEndpoint { host: "unix:///ctx.sock".into(), skip_tls_verify: false }))
            .unwrap();
        let none = env(&[]);
        let flags = Flags::default();
        let t = resolve(&flags, &none, dir.path()).unwrap();
        assert_eq!(t.host, None);
        set_current(dir.path(), Some("ctx")).unwrap();
        let t = resolve(&flags, &none, dir.path()).unwrap();
        assert_eq!(t.host.as_deref(), Some("unix:///ctx.sock"));
        assert!(!t.tls.enabled());
        // BERTH_HOST wins over the config's context, -H over BERTH_HOST
        let t = resolve(&flags, &env(&[("BERTH_HOST", "unix:///env.sock")]), dir.path()).unwrap();
        assert_eq!(t.host.as_deref(), Some("unix:///env.sock"));
        let f = Flags { host: Some("unix:///flag.sock".into()), ..Default::default() };
        assert_eq!(resolve(&f, &none, dir.path()).unwrap().host.as_deref(), Some("unix:///flag.sock"));
        // --context and -H together are refused
        let f = Flags { host: Some("unix:///flag.sock".into()), context: Some("ctx".into()), ..Default::default() };
        assert!(resolve(&f, &none, dir.path()).unwrap_err().to_string().contains("conflicting options"));
        // an unknown context
        let f = Flags { context: Some("nope".into()), ..Default::default() };
        assert!(resolve(&f, &none, dir.path()).unwrap_err().to_string().contains("context not found"));
        set_current(dir.path(), Some("gone")).unwrap();
        assert!(resolve(&flags, &none, dir.path()).unwrap_err().to_string().contains("is not found on the file system"));
        // the default context resets the key
        set_current(dir.path(), Some("default")).unwrap();
        assert!(!read_config(dir.path()).unwrap().contains_key("currentContext"));
    }

    #[test]
    fn tcp_contexts_use_their_tls_files() {
        let dir = tmp();
        let s = Store::new(dir.path());
        s.create_or_update(&Metadata::new("tls", "", &DockerEndpoint { host: "tcp://h:2376".into(), skip_tls_verify: false }))
            .unwrap();
        let mut files = BTreeMap::new();
        files.insert("ca.pem".to_string(), b"x".to_vec());
        s.reset_endpoint_tls("tls", DOCKER_ENDPOINT, Some(&files)).unwrap();
        let f = Flags { context: Some("tls".into()), ..Default::default() };
        let t = resolve(&f, &env(&[]), dir.path()).unwrap();
        assert!(t.tls.tls && t.tls.verify);
        assert_eq!(t.tls.ca, Some(s.tls_dir("tls").join("docker/ca.pem")));
        assert_eq!(t.tls.cert, None);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.tls_dir("tls").join("docker/ca.pem")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn config_keys_are_kept() {
        let dir = tmp();
        std::fs::write(dir.path().join("config.json"), r#"{"auths":{"r":{"auth":"YTpi"}},"credsStore":"pass","x":[1,2]}"#).unwrap();
        set_current(dir.path(), Some("abc")).unwrap();
        let c = read_config(dir.path()).unwrap();
        assert_eq!(c["currentContext"], "abc");
        assert_eq!(c["auths"]["r"]["auth"], "YTpi");
        assert_eq!(c["credsStore"], "pass");
        assert_eq!(c["x"], serde_json::json!([1, 2]));
        set_current(dir.path(), None).unwrap();
        let c = read_config(dir.path()).unwrap();
        assert!(!c.contains_key("currentContext"));
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn store_round_trip_and_docker_layout() {
        let dir = tmp();
        let s = Store::new(dir.path());
        let mut m = Metadata::new("xx", "", &DockerEndpoint { host: "unix:///tmp/nothing.sock".into(), skip_tls_verify: false });
        s.create_or_update(&m).unwrap();
        // byte for byte what `docker context create xx --docker host=unix:///tmp/nothing.sock` writes
        assert_eq!(
            std::fs::read_to_string(dir.path().join("contexts/meta").join(id("xx")).join("meta.json")).unwrap(),
            r#"{"Name":"xx","Metadata":{},"Endpoints":{"docker":{"Host":"unix:///tmp/nothing.sock","SkipTLSVerify":false}}}"#
        );
        m.metadata.description = "desc".into();
        m.metadata.extra.insert("Custom".into(), Value::from(1));
        m.endpoints.insert("kubernetes".into(), serde_json::json!({"Namespace": "x"}));
        s.create_or_update(&m).unwrap();
        assert_eq!(s.get("xx").unwrap(), m);
        assert_eq!(s.list().unwrap().len(), 1);
        // docker's lowercase keys are read too
        let lower: Metadata = serde_json::from_str(r#"{"name":"a","metadata":{"Description":"d"},"endpoints":{"docker":{"Host":"h"}}}"#).unwrap();
        assert_eq!(lower.docker().unwrap().host, "h");
        s.remove("xx").unwrap();
        assert!(s.list().unwrap().is_empty());
        assert!(s.get("xx").unwrap_err().to_string().contains("context not found"));
    }

    #[test]
    fn export_import_round_trip() {
        let m = Metadata::new("src", "d", &DockerEndpoint { host: "tcp://h:2376".into(), skip_tls_verify: true });
        let mut tls = TlsData::new();
        tls.entry("docker".into()).or_default().insert("ca.pem".into(), b"CA".to_vec());
        tls.entry("docker".into()).or_default().insert("key.pem".into(), b"KEY".to_vec());
        let tar = export_tar(&m, &tls).unwrap();
        let mut ar = tar::Archive::new(&tar[..]);
        let names: Vec<(String, u32)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.path().unwrap().to_string_lossy().into_owned(), e.header().mode().unwrap())
            })
            .collect();
        assert_eq!(
            names,
            [
                ("meta.json".to_string(), 0o644),
                ("tls".into(), 0o700),
                ("tls/docker".into(), 0o700),
                ("tls/docker/ca.pem".into(), 0o600),
                ("tls/docker/key.pem".into(), 0o600)
            ]
        );
        let (m2, tls2) = import_tar("dst", &tar[..]).unwrap();
        assert_eq!(m2.name, "dst");
        assert_eq!(m2.docker().unwrap(), m.docker().unwrap());
        assert_eq!(m2.metadata.description, "d");
        assert_eq!(tls2, tls);
    }

    #[test]
    fn hostile_imports_are_refused() {
        let bad = |path: &str| {
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.set_size(2);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            // set_path refuses "..": write the name bytes directly.
            h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
            h.set_cksum();
            b.append(&h, &b"{}"[..]).unwrap();
            b.into_inner().unwrap()
        };
        for p in ["../meta.json", "tls/../../x", "other.txt", "tls/docker/a/b", "tls/x"] {
            assert!(import_tar("n", &bad(p)[..]).is_err(), "{p}");
        }
        assert!(import_tar("n", &bad("tls/docker/ca.pem")[..]).unwrap_err().to_string().contains("no metadata"));
        assert!(import_tar("n", &b"PK\x03\x04rest"[..]).unwrap_err().to_string().contains("zip"));
    }
}
