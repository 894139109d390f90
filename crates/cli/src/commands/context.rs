//! `berth context create/ls/use/inspect/rm/export/import/show/update`, on the docker
//! CLI's context store (see `crate::context`), with docker's messages and formats.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::{anyhow, bail, Context as _, Result};
use serde_json::{json, Value};

use crate::cli::{ContextCmd, ContextCreateArgs, ContextUpdateArgs};
use crate::context::{
    self, default_metadata, validate_name, DockerEndpoint, Env, Flags, Metadata, Store, TlsData, TlsFiles, DEFAULT_CONTEXT,
    DOCKER_ENDPOINT,
};
use crate::format::{print_table, Template};

struct Ctx<'a> {
    flags: &'a Flags,
    env: &'a dyn Env,
    dir: std::path::PathBuf,
    store: Store,
}

impl Ctx<'_> {
    fn current(&self) -> Result<String> {
        context::current(self.flags, self.env, &self.dir)
    }

    fn default_host(&self) -> String {
        context::default_host(self.flags.host.as_deref(), self.env)
    }

    /// A context's metadata, the default one included.
    fn metadata(&self, name: &str) -> Result<Metadata> {
        if name == DEFAULT_CONTEXT {
            return Ok(default_metadata(&self.default_host()));
        }
        self.store.get(name)
    }

    /// A context's TLS files; the default context's are the `--tls*` flags' files.
    fn tls(&self, name: &str) -> Result<TlsData> {
        if name != DEFAULT_CONTEXT {
            return self.store.tls_data(name);
        }
        let mut out = TlsData::new();
        let t = &self.flags.tls;
        if t.enabled() {
            let mut files = BTreeMap::new();
            for (f, p) in [("ca.pem", &t.ca), ("cert.pem", &t.cert), ("key.pem", &t.key)] {
                if let Some(p) = p {
                    files.insert(f.to_owned(), std::fs::read(p).with_context(|| format!("read {}", p.display()))?);
                }
            }
            if !files.is_empty() {
                out.insert(DOCKER_ENDPOINT.to_owned(), files);
            }
        }
        Ok(out)
    }

    fn check_new_name(&self, name: &str) -> Result<()> {
        validate_name(name)?;
        if self.store.exists(name) {
            bail!("context {name:?} already exists");
        }
        Ok(())
    }

    /// Warns when a host variable overrides the contexts.
    fn warn_env_host(&self, what: &str) {
        if let Some((var, _)) = context::env_host(self.env) {
            eprintln!(
                "Warning: {var} environment variable overrides the active context. To use {what}, either set the global --context flag, or unset {var} environment variable."
            );
        }
    }
}

pub fn run(cmd: ContextCmd, flags: &Flags, env: &dyn Env) -> Result<i32> {
    let dir = context::config_dir();
    let c = Ctx { flags, env, store: Store::new(&dir), dir };
    match cmd {
        ContextCmd::Create(a) => create(&c, a),
        ContextCmd::Ls { format, quiet } => ls(&c, format.as_deref(), quiet),
        ContextCmd::Use { name } => use_(&c, &name),
        ContextCmd::Inspect { format, names } => inspect(&c, names, format.as_deref()),
        ContextCmd::Rm { force, names } => rm(&c, &names, force),
        ContextCmd::Export { name, dest } => export(&c, &name, dest),
        ContextCmd::Import { name, source } => import(&c, &name, &source),
        ContextCmd::Show => {
            println!("{}", c.current()?);
            Ok(0)
        }
        ContextCmd::Update(a) => update(&c, a),
    }
}

/// `--docker k=v,k=v` (repeatable; values may be double-quoted as CSV fields).
pub fn parse_docker_opts(items: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for item in items {
        let mut fields = Vec::new();
        let mut cur = String::new();
        let mut quoted = false;
        let mut chars = item.chars().peekable();
        while let Some(ch) = chars.next() {
            match ch {
                '"' if quoted && chars.peek() == Some(&'"') => {
                    cur.push('"');
                    chars.next();
                }
                '"' => quoted = !quoted,
                ',' if !quoted => fields.push(std::mem::take(&mut cur)),
                _ => cur.push(ch),
            }
        }
        if quoted {
            bail!("invalid argument {item:?} for \"--docker\" flag: unterminated quote");
        }
        fields.push(cur);
        for f in fields {
            let (k, v) = f
                .split_once('=')
                .ok_or_else(|| anyhow!("invalid argument {item:?} for \"--docker\" flag: {f} must be formatted as key=value"))?;
            out.insert(k.to_owned(), v.to_owned());
        }
    }
    Ok(out)
}

/// Checks a host as the docker CLI does when a context is made.
fn validate_host(host: &str) -> Result<()> {
    if host.is_empty() || host.starts_with("unix://") {
        return Ok(());
    }
    if host.starts_with("ssh://") {
        crate::ssh::Spec::parse(host).map_err(|e| anyhow!("ssh host connection is not valid: {e}"))?;
        return Ok(());
    }
    if host.starts_with("tcp://") {
        crate::client::Endpoint::parse(Some(host), &crate::client::TlsOptions::default())?;
        return Ok(());
    }
    bail!("unable to parse docker host `{host}`")
}

/// The docker endpoint and TLS files a `--docker` configuration describes.
fn docker_endpoint(c: &Ctx<'_>, cfg: &BTreeMap<String, String>) -> Result<(DockerEndpoint, Option<TlsFiles>)> {
    let allowed = ["from", "host", "ca", "cert", "key", "skip-tls-verify"];
    let unknown: Vec<String> = cfg
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .map(|k| format!("unrecognized config key: {k}"))
        .collect();
    if !unknown.is_empty() {
        bail!("{}", unknown.join("\n"));
    }
    if let Some(from) = cfg.get("from") {
        let m = c.metadata(from)?;
        let ep = m.docker().map_err(|_| anyhow!("unable to get endpoint from context {from:?}"))?;
        return Ok((ep, None));
    }
    let tls = context::tls_from_files(
        cfg.get("ca").map(String::as_str),
        cfg.get("cert").map(String::as_str),
        cfg.get("key").map(String::as_str),
    )
    .map_err(|e| anyhow!("invalid docker endpoint options: {e:#}"))?;
    let skip = match cfg.get("skip-tls-verify").map(String::as_str) {
        None => false,
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => true,
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => false,
        Some(v) => bail!("skip-tls-verify: parsing {v:?}: invalid syntax"),
    };
    let host = cfg.get("host").cloned().unwrap_or_default();
    validate_host(&host).map_err(|e| anyhow!("unable to apply docker endpoint options: {e:#}"))?;
    Ok((DockerEndpoint { host, skip_tls_verify: skip }, tls))
}

fn create(c: &Ctx<'_>, a: ContextCreateArgs) -> Result<i32> {
    c.check_new_name(&a.name)?;
    let from = match (&a.from, a.docker.is_empty()) {
        (Some(_), false) => bail!("cannot use --docker flag when --from is set"),
        (Some(f), true) => Some(f.clone()),
        (None, true) => Some(c.current()?),
        (None, false) => None,
    };
    match from {
        Some(from) => {
            let mut meta = c.metadata(&from)?;
            if let Some(d) = a.description.as_deref().filter(|d| !d.is_empty()) {
                meta.metadata.description = d.to_owned();
            }
            meta.name = a.name.clone();
            let tls = c.tls(&from)?;
            c.store.create_or_update(&meta)?;
            c.store.reset_tls(&a.name, &tls)?;
        }
        None => {
            let cfg = parse_docker_opts(&a.docker)?;
            let (ep, tls) = docker_endpoint(c, &cfg).map_err(|e| anyhow!("unable to create docker endpoint config: {e:#}"))?;
            let meta = Metadata::new(&a.name, a.description.as_deref().unwrap_or(""), &ep);
            c.store.create_or_update(&meta)?;
            let mut data = TlsData::new();
            if let Some(t) = tls {
                data.insert(DOCKER_ENDPOINT.to_owned(), t);
            }
            c.store.reset_tls(&a.name, &data)?;
        }
    }
    println!("{}", a.name);
    eprintln!("Successfully created context {:?}", a.name);
    Ok(0)
}

fn update(c: &Ctx<'_>, a: ContextUpdateArgs) -> Result<i32> {
    validate_name(&a.name)?;
    let mut meta = c.store.get(&a.name)?;
    if let Some(d) = a.description.as_deref().filter(|d| !d.is_empty()) {
        meta.metadata.description = d.to_owned();
    }
    let mut tls = None;
    if !a.docker.is_empty() {
        let cfg = parse_docker_opts(&a.docker)?;
        let (ep, t) = docker_endpoint(c, &cfg).map_err(|e| anyhow!("unable to create docker endpoint config: {e:#}"))?;
        meta.set_docker(&ep);
        tls = Some(t);
    }
    meta.docker()?;
    c.store.create_or_update(&meta)?;
    if let Some(t) = tls {
        c.store.reset_endpoint_tls(&a.name, DOCKER_ENDPOINT, t.as_ref())?;
    }
    println!("{}", a.name);
    eprintln!("Successfully updated context {:?}", a.name);
    Ok(0)
}

fn ls(c: &Ctx<'_>, format: Option<&str>, quiet: bool) -> Result<i32> {
    let current = c.current()?;
    let mut list = vec![default_metadata(&c.default_host())];
    list.extend(c.store.list()?);
    let mut rows: Vec<Value> = list
        .iter()
        .map(|m| {
            let (endpoint, error) = match m.docker() {
                Ok(ep) => (ep.host, String::new()),
                Err(e) => (String::new(), e.to_string()),
            };
            let description = if m.name == DEFAULT_CONTEXT { context::DEFAULT_DESCRIPTION } else { m.metadata.description.as_str() };
            json!({
                "Name": m.name,
                "Current": m.name == current,
                "Description": description,
                "DockerEndpoint": endpoint,
                "Error": error,
            })
        })
        .collect();
    if !list.iter().any(|m| m.name == current) {
        let error = c.store.get(&current).err().map(|e| e.to_string()).unwrap_or_default();
        rows.push(json!({"Name": current, "Current": true, "Description": "", "DockerEndpoint": "", "Error": error}));
    }
    rows.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));
    let s = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_owned();
    match (quiet, format) {
        (true, _) => rows.iter().for_each(|r| println!("{}", s(r, "Name"))),
        (false, None | Some("table")) => {
            let mut table = vec![vec!["NAME".to_owned(), "DESCRIPTION".into(), "DOCKER ENDPOINT".into(), "ERROR".into()]];
            for r in &rows {
                let mark = if r["Current"].as_bool() == Some(true) { " *" } else { "" };
                table.push(vec![format!("{}{mark}", s(r, "Name")), s(r, "Description"), s(r, "DockerEndpoint"), s(r, "Error")]);
            }
            print_table(&table);
        }
        (false, Some("json")) => rows.iter().for_each(|r| println!("{r}")),
        (false, Some(f)) => {
            let t = Template::parse(f)?;
            if t.table {
                println!("{}", t.header(&[("DockerEndpoint", "DOCKER ENDPOINT")]));
            }
            rows.iter().for_each(|r| println!("{}", t.render(r)));
        }
    }
    c.warn_env_host("a context");
    Ok(0)
}

fn use_(c: &Ctx<'_>, name: &str) -> Result<i32> {
    if name != DEFAULT_CONTEXT {
        validate_name(name)?;
        c.store.get(name)?;
    }
    context::set_current(&c.dir, Some(name))?;
    println!("{name}");
    eprintln!("Current context is now {name:?}");
    if name != DEFAULT_CONTEXT {
        c.warn_env_host(&format!("{name:?}"));
    }
    Ok(0)
}

/// `context inspect`'s object, in docker's key order.
#[derive(serde::Serialize)]
struct Inspected {
    #[serde(flatten)]
    meta: Metadata,
    #[serde(rename = "TLSMaterial")]
    tls_material: BTreeMap<String, Vec<String>>,
    #[serde(rename = "Storage")]
    storage: Storage,
}

#[derive(serde::Serialize)]
struct Storage {
    #[serde(rename = "MetadataPath")]
    metadata_path: String,
    #[serde(rename = "TLSPath")]
    tls_path: String,
}

/// Go's JSON encoder escapes <, > and & in strings.
fn go_json_escape(s: &str) -> String {
    s.replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026")
}

fn inspect(c: &Ctx<'_>, mut names: Vec<String>, format: Option<&str>) -> Result<i32> {
    if names.is_empty() {
        names.push(c.current()?);
    }
    let mut items = Vec::new();
    let mut rc = 0;
    for n in &names {
        let r = c.metadata(n).and_then(|m| {
            let (files, storage) = if n == DEFAULT_CONTEXT {
                (BTreeMap::new(), Storage { metadata_path: "<IN MEMORY>".into(), tls_path: "<IN MEMORY>".into() })
            } else {
                (
                    c.store.tls_files(n)?,
                    Storage {
                        metadata_path: c.store.meta_dir(n).display().to_string(),
                        tls_path: c.store.tls_dir(n).display().to_string(),
                    },
                )
            };
            Ok(Inspected { meta: m, tls_material: files, storage })
        });
        match r {
            Ok(v) => items.push(v),
            Err(e) => {
                eprintln!("{e:#}");
                rc = 1;
            }
        }
    }
    match format {
        Some(f) => {
            let t = Template::parse(f)?;
            for it in &items {
                println!("{}", t.render(&serde_json::to_value(it)?));
            }
        }
        None => {
            use serde::Serialize;
            let mut buf = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            items.serialize(&mut ser)?;
            println!("{}", go_json_escape(&String::from_utf8_lossy(&buf)));
        }
    }
    Ok(rc)
}

fn rm(c: &Ctx<'_>, names: &[String], force: bool) -> Result<i32> {
    let current = c.current()?;
    let mut errors = Vec::new();
    for n in names {
        let r = (|| -> Result<()> {
            if n == DEFAULT_CONTEXT {
                bail!("context \"default\" cannot be removed");
            }
            if *n == current {
                if !force {
                    bail!("context {n:?} is in use, set -f flag to force remove");
                }
                context::set_current(&c.dir, None)?;
            }
            if !force && !c.store.meta_dir(n).exists() {
                bail!("context {n:?} does not exist");
            }
            c.store.remove(n)
        })();
        match r {
            Ok(()) => println!("{n}"),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    if errors.is_empty() {
        return Ok(0);
    }
    eprintln!("{}", errors.join("\n"));
    Ok(1)
}

fn export(c: &Ctx<'_>, name: &str, dest: Option<String>) -> Result<i32> {
    if name != DEFAULT_CONTEXT {
        validate_name(name)?;
    }
    let dest = dest.unwrap_or_else(|| format!("{name}.dockercontext"));
    let tar = context::export_tar(&c.metadata(name)?, &c.tls(name)?)?;
    if dest == "-" {
        if std::io::stdout().is_terminal() {
            bail!("cowardly refusing to export to a terminal, specify a file path");
        }
        let mut out = std::io::stdout().lock();
        out.write_all(&tar)?;
        out.flush()?;
        return Ok(0);
    }
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&dest)
        .with_context(|| format!("open {dest}"))?;
    f.write_all(&tar)?;
    eprintln!("Written file {dest:?}");
    Ok(0)
}

fn import(c: &Ctx<'_>, name: &str, source: &str) -> Result<i32> {
    c.check_new_name(name)?;
    let (meta, tls) = if source == "-" {
        context::import_tar(name, std::io::stdin().lock())?
    } else {
        let f = std::fs::File::open(Path::new(source)).with_context(|| format!("open {source}"))?;
        context::import_tar(name, f)?
    };
    meta.docker()?;
    c.store.create_or_update(&meta)?;
    c.store.reset_tls(name, &tls)?;
    println!("{name}");
    eprintln!("Successfully imported context {name:?}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_flag_values() {
        let m = parse_docker_opts(&["host=tcp://h:2376,ca=/a/ca.pem".into(), "skip-tls-verify=true".into()]).unwrap();
        assert_eq!(m["host"], "tcp://h:2376");
        assert_eq!(m["ca"], "/a/ca.pem");
        assert_eq!(m["skip-tls-verify"], "true");
        let m = parse_docker_opts(&[r#""host=unix:///a,b.sock",key=k"#.into()]).unwrap();
        assert_eq!(m["host"], "unix:///a,b.sock");
        assert!(parse_docker_opts(&["hostonly".into()]).is_err());
    }

    #[test]
    fn hosts_checked_like_docker() {
        for ok in ["", "unix:///x.sock", "tcp://1.2.3.4:2376", "ssh://me@h:22/s.sock"] {
            validate_host(ok).unwrap();
        }
        assert_eq!(validate_host("foo").unwrap_err().to_string(), "unable to parse docker host `foo`");
        assert!(validate_host("ssh://u:p@h").is_err());
    }
}
