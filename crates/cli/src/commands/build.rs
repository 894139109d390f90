//! `build`: tars the context (honouring .dockerignore), posts it to `/build` with
//! docker's query parameters and renders the stream.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http::Method;
use serde_json::Value;

use crate::cli::BuildArgs;
use crate::client::{stream_body, Client, LineReader, Query};
use crate::format::human_size;
use crate::progress::{stream_error, BuildDisplay, StreamError};
use crate::stream::{stderr_is_tty, stdout_is_tty};
use berth_builder::dockerignore::Matcher;

/// A context entry found by the walk, written to the tar afterwards.
struct Found {
    path: PathBuf,
    name: String,
    meta: std::fs::Metadata,
}

impl Found {
    /// Bytes it takes in the archive: header (plus GNU long-name records) and data.
    fn tar_size(&self) -> usize {
        let long = if self.name.len() + 1 > 100 {
            1024 + self.name.len().div_ceil(512) * 512
        } else {
            0
        };
        let data = if self.meta.is_file() {
            (self.meta.len() as usize).div_ceil(512) * 512
        } else {
            0
        };
        512 + long + data
    }
}

fn append_entry(tar: &mut tar::Builder<Vec<u8>>, f: &Found) -> Result<()> {
    let (meta, path, name) = (&f.meta, &f.path, f.name.as_str());
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    h.set_uid(0);
    h.set_gid(0);
    let _ = h.set_username("");
    let _ = h.set_groupname("");
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path)?;
        h.set_size(0);
        tar.append_link(&mut h, name, target)?;
    } else if meta.is_dir() {
        h.set_size(0);
        tar.append_data(&mut h, format!("{name}/"), std::io::empty())?;
    } else if meta.is_file() {
        let mut file =
            std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
        if h.set_path(name).is_ok() {
            // The common case: the file is read straight into the archive buffer.
            let buf = tar.get_mut();
            let at = buf.len();
            buf.extend_from_slice(&[0; 512]);
            let n = file
                .read_to_end(buf)
                .with_context(|| format!("read {}", path.display()))?;
            h.set_size(n as u64);
            h.set_cksum();
            buf[at..at + 512].copy_from_slice(h.as_bytes());
            buf.resize(buf.len() + (512 - n % 512) % 512, 0);
        } else {
            // A long name: the tar crate writes the GNU long-name records.
            tar.append_data(&mut h, name, file)?;
        }
    }
    Ok(())
}

fn walk(
    found: &mut Vec<Found>,
    root: &Path,
    rel: &str,
    m: &Matcher,
    keep: &[String],
) -> Result<()> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("read {}", dir.display()))?
        .collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let child = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let ft = e.file_type()?;
        let ignored = m.matches(&child) && !keep.contains(&child);
        let add = |found: &mut Vec<Found>, child: &str| -> Result<()> {
            let path = e.path();
            let meta = std::fs::symlink_metadata(&path)
                .with_context(|| format!("stat {}", path.display()))?;
            found.push(Found {
                path,
                name: child.to_owned(),
                meta,
            });
            Ok(())
        };
        if ft.is_dir() {
            if ignored
                && !m.has_exclusions()
                && !keep.iter().any(|k| k.starts_with(&format!("{child}/")))
            {
                continue;
            }
            if !ignored {
                add(found, &child)?;
            }
            walk(found, root, &child, m, keep)?;
        } else if !ignored {
            add(found, &child)?;
        }
    }
    Ok(())
}

/// Tars `root`, leaving out what .dockerignore excludes (but always keeping the
/// Dockerfile and .dockerignore themselves, as docker does). Uncompressed, like
/// docker's; the buffer is sized from the walk so it is never regrown.
pub fn context_tar(root: &Path, dockerfile_rel: &str) -> Result<Vec<u8>> {
    let ignore = std::fs::read_to_string(root.join(".dockerignore")).unwrap_or_default();
    let m = Matcher::parse(&ignore);
    let keep = vec![dockerfile_rel.to_string(), ".dockerignore".to_string()];
    let mut found = Vec::new();
    walk(&mut found, root, "", &m, &keep)?;
    // room for the entries, the end-of-archive blocks, and a file appended later
    let size: usize = found.iter().map(Found::tar_size).sum::<usize>() + 8192;
    let mut tar = tar::Builder::new(Vec::with_capacity(size));
    tar.follow_symlinks(false);
    for f in &found {
        append_entry(&mut tar, f)?;
    }
    Ok(tar.into_inner()?)
}

fn single_file_tar(name: &str, content: &[u8]) -> Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o600);
    h.set_mtime(chrono::Utc::now().timestamp() as u64);
    tar.append_data(&mut h, name, content)?;
    Ok(tar.into_inner()?)
}

/// A tar on stdin, plain or gzip-compressed (the daemon unpacks both); anything
/// else is a Dockerfile.
fn is_tar(b: &[u8]) -> bool {
    b.starts_with(&[0x1f, 0x8b]) || (b.len() > 262 && &b[257..262] == b"ustar")
}

fn kv_json(items: &[String]) -> String {
    let m: BTreeMap<String, Value> = items
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), Value::String(v.to_string())),
            None => match std::env::var(l) {
                Ok(v) => (l.to_string(), Value::String(v)),
                Err(_) => (l.to_string(), Value::Null),
            },
        })
        .collect();
    serde_json::to_string(&m).unwrap_or_default()
}

/// Query string for `POST /build`, with only the params that are set (docker CLI 28).
pub fn build_query(a: &BuildArgs, dockerfile: &str, remote: Option<&str>) -> Result<Query> {
    let mut q = Query::new();
    let swap = match a.memory_swap.as_deref() {
        Some("-1") => Some(-1),
        Some(v) => Some(crate::opts::parse_ram(v)?),
        None => None,
    };
    let ulimits = a
        .ulimit
        .iter()
        .map(|u| crate::opts::parse_ulimit(u))
        .collect::<Result<Vec<_>>>()?;
    q = q
        .opt(
            "memory",
            a.memory
                .as_deref()
                .map(crate::opts::parse_ram)
                .transpose()?,
        )
        .opt("memswap", swap)
        .opt(
            "shmsize",
            a.shm_size
                .as_deref()
                .map(crate::opts::parse_ram)
                .transpose()?,
        )
        .opt("cpushares", a.cpu_shares)
        .opt("cpusetcpus", a.cpuset_cpus.as_deref())
        .opt("cpuperiod", a.cpu_period)
        .opt("cpuquota", a.cpu_quota);
    if !ulimits.is_empty() {
        q = q.add(
            "ulimits",
            serde_json::to_string(&ulimits).unwrap_or_default(),
        );
    }
    if !a.build_arg.is_empty() {
        q = q.add("buildargs", kv_json(&a.build_arg));
    }
    if !a.cache_from.is_empty() {
        q = q.add(
            "cachefrom",
            serde_json::to_string(&a.cache_from).unwrap_or_default(),
        );
    }
    q = q
        .add("dockerfile", dockerfile)
        .add_if(a.force_rm, "forcerm", 1);
    if !a.label.is_empty() {
        q = q.add("labels", kv_json(&a.label));
    }
    q = q
        .opt("networkmode", a.network.as_deref())
        .add_if(a.no_cache, "nocache", 1)
        .add_if(a.pull, "pull", 1)
        .add_if(a.quiet, "q", 1)
        .opt("remote", remote)
        .add_if(!a.rm, "rm", 0);
    for t in &a.tag {
        q = q.add("t", t);
    }
    for h in &a.add_host {
        q = q.add("extrahosts", h);
    }
    q = q
        .opt("cgroupparent", a.cgroup_parent.as_deref())
        .opt("platform", a.platform.as_deref().map(str::to_ascii_lowercase).as_deref());
    Ok(q.opt("target", a.target.as_deref()).add("version", 1))
}

/// One `--secret` value: `id=ID[,src=PATH|,source=PATH][,env=VAR][,type=file|env]`
/// (with neither src nor env, the variable named like the id, as buildx does).
pub fn read_secret(spec: &str) -> Result<(String, Vec<u8>)> {
    let (mut id, mut src, mut env, mut typ) = (None, None, None, None);
    for field in spec.split(',') {
        let (k, v) = field
            .split_once('=')
            .with_context(|| format!("invalid secret {spec:?}: {field:?} is not key=value"))?;
        match k.to_ascii_lowercase().as_str() {
            "id" => id = Some(v.to_owned()),
            "src" | "source" => src = Some(v.to_owned()),
            "env" => env = Some(v.to_owned()),
            "type" => typ = Some(v.to_owned()),
            other => bail!("unexpected key '{other}' in '{field}'"),
        }
    }
    let id = id
        .or_else(|| {
            src.as_deref()
                .and_then(|s| Path::new(s).file_name())
                .map(|n| n.to_string_lossy().into_owned())
        })
        .or_else(|| env.clone())
        .with_context(|| format!("invalid secret {spec:?}: id is required"))?;
    let from_env = |var: &str| -> Result<Vec<u8>> {
        std::env::var_os(var)
            .map(|v| std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()).to_vec())
            .with_context(|| format!("secret {id}: environment variable {var} is not set"))
    };
    let data = match (typ.as_deref(), src, env) {
        (Some("env"), Some(s), _) | (_, None, Some(s)) => from_env(&s)?,
        (Some("env"), None, None) => from_env(&id)?,
        (_, Some(s), _) => std::fs::read(&s).with_context(|| format!("secret {id}: read {s}"))?,
        (_, None, None) => from_env(&id)
            .with_context(|| format!("secret {id}: give src=<file> or env=<variable>"))?,
    };
    Ok((id, data))
}

/// The `X-Berth-Build-Secrets` header value (berth's extension of `POST /build`):
/// base64 of `{"id": base64(content)}`.
pub fn secrets_header(specs: &[String]) -> Result<Option<String>> {
    use base64::Engine;
    if specs.is_empty() {
        return Ok(None);
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut m = BTreeMap::new();
    for s in specs {
        let (id, data) = read_secret(s)?;
        m.insert(id, b64.encode(data));
    }
    Ok(Some(b64.encode(serde_json::to_vec(&m)?)))
}

pub async fn build(c: &Client, a: BuildArgs) -> Result<i32> {
    let secrets = secrets_header(&a.secret)?;
    for t in &a.tag {
        crate::opts::Reference::parse(t).with_context(|| format!("invalid tag {t:?}"))?;
    }
    let mut remote = None;
    let mut clone_dir: Option<tempfile::TempDir> = None;
    let (tar, dockerfile) = if a.context == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf)?;
        if is_tar(&buf) {
            (
                Some(buf),
                a.file.clone().unwrap_or_else(|| "Dockerfile".into()),
            )
        } else {
            (
                Some(single_file_tar("Dockerfile", &buf)?),
                "Dockerfile".to_string(),
            )
        }
    } else if !super::gitctx::is_git_url(&a.context) && a.context.contains("://") {
        // A tar or Dockerfile URL: the daemon downloads it.
        remote = Some(a.context.clone());
        (None, a.file.clone().unwrap_or_else(|| "Dockerfile".into()))
    } else {
        // A git context is cloned here, and `-f` is relative to the clone.
        let root = if super::gitctx::is_git_url(&a.context) {
            let tmp = clone_dir.insert(tempfile::tempdir()?);
            super::gitctx::clone(&a.context, tmp.path())?
        } else {
            std::fs::canonicalize(&a.context).with_context(|| {
                format!("unable to prepare context: path {:?} not found", a.context)
            })?
        };
        if !root.is_dir() {
            bail!(
                "unable to prepare context: context must be a directory: {}",
                root.display()
            );
        }
        let df_path: PathBuf = match &a.file {
            Some(f) if f == "-" => PathBuf::from("-"),
            Some(f) if clone_dir.is_some() => root.join(f),
            Some(f) => std::path::absolute(f)?,
            None => root.join("Dockerfile"),
        };
        if df_path == Path::new("-") {
            let mut content = Vec::new();
            std::io::stdin().read_to_end(&mut content)?;
            let name = format!("__dockerfile-{}", std::process::id());
            let mut t = context_tar(&root, &name)?;
            append_to_tar(&mut t, &name, &content)?;
            (Some(t), name)
        } else {
            let df_abs = std::fs::canonicalize(&df_path).with_context(|| {
                format!("unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}: no such file or directory", df_path.display())
            })?;
            match df_abs.strip_prefix(&root) {
                Ok(rel) => {
                    let rel = rel.to_string_lossy().into_owned();
                    (Some(context_tar(&root, &rel)?), rel)
                }
                Err(_) => {
                    let name = format!(".dockerfile.{:x}", std::process::id());
                    let content = std::fs::read(&df_abs)?;
                    let mut t = context_tar(&root, &name)?;
                    append_to_tar(&mut t, &name, &content)?;
                    (Some(t), name)
                }
            }
        }
    };
    let plain_out = !a.quiet;
    let tty = stderr_is_tty() && a.progress != "plain" && !a.quiet;
    if let Some(t) = &tar {
        if plain_out && !tty {
            println!(
                "Sending build context to Berth daemon  {}",
                human_size(t.len() as i64)
            );
        }
    }
    let q = build_query(&a, &dockerfile, remote.as_deref())?;
    let body = match tar {
        Some(t) => {
            // Chunks of one shared buffer (no copies), streamed like docker's upload.
            let t = Bytes::from(t);
            let chunks: Vec<std::io::Result<Bytes>> = (0..t.len())
                .step_by(256 * 1024)
                .map(|i| Ok(t.slice(i..t.len().min(i + 256 * 1024))))
                .collect();
            stream_body(futures_util::stream::iter(chunks))
        }
        None => crate::client::empty(),
    };
    let mut headers = vec![
        ("Content-Type", "application/x-tar".to_owned()),
        ("X-Registry-Config", "e30=".to_owned()),
    ];
    if let Some(s) = secrets {
        headers.push(("X-Berth-Build-Secrets", s));
    }
    let resp = c
        .request(Method::POST, "/build", &q, &headers, body)
        .await?;
    let mut reader = LineReader::new(resp);
    let mut display = tty.then(BuildDisplay::new);
    let mut image_id: Option<String> = None;
    let mut failure: Option<StreamError> = None;
    // A quiet build's output: the daemon sends the image id alone (or, when the build
    // fails, what it kept aside), shown as the docker CLI shows it.
    let mut quiet_text = String::new();
    while let Some(line) = reader.next_line().await? {
        let Ok(msg) = serde_json::from_slice::<Value>(&line) else {
            continue;
        };
        if let Some(e) = stream_error(&msg) {
            failure = Some(e);
            break;
        }
        if let Some(id) = msg["aux"]["ID"].as_str() {
            image_id = Some(id.to_string());
        }
        let text = msg["stream"].as_str().or(msg["status"].as_str());
        if let Some(text) = text {
            if a.quiet {
                quiet_text.push_str(text);
                continue;
            }
            match display.as_mut() {
                Some(d) => d.feed(text),
                None => {
                    print!("{text}");
                    if msg["stream"].is_null() {
                        println!();
                    }
                }
            }
        }
    }
    if let Some(d) = display.as_mut() {
        d.done(failure.is_some());
    }
    if let Some(e) = failure {
        eprint!("{quiet_text}");
        eprintln!("{}", e.message);
        return Ok(e.code.filter(|c| *c != 0).unwrap_or(1) as i32);
    }
    if a.quiet {
        print!("{quiet_text}");
        if image_id.is_none() {
            image_id = Some(quiet_text.trim().to_owned()).filter(|t| t.starts_with("sha256:"));
        }
    }
    if let (Some(f), Some(id)) = (&a.iidfile, &image_id) {
        std::fs::write(f, id).with_context(|| format!("writing image ID to {f}"))?;
    }
    if !stdout_is_tty() {
        use std::io::Write;
        std::io::stdout().flush()?;
    }
    Ok(0)
}

/// Appends one more file to a finished tar archive (before its end-of-archive blocks).
fn append_to_tar(t: &mut Vec<u8>, name: &str, content: &[u8]) -> Result<()> {
    // a finished archive ends with at least two zero blocks; drop them and re-append
    while t.len() >= 512 && t[t.len() - 512..].iter().all(|b| *b == 0) {
        t.truncate(t.len() - 512);
    }
    let mut b = tar::Builder::new(std::mem::take(t));
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o600);
    b.append_data(&mut h, name, content)?;
    *t = b.into_inner()?;
    Ok(())
}

/// `builder prune`: remove the build cache (`POST /build/prune`).
pub async fn prune(c: &Client, a: crate::cli::BuilderPruneArgs) -> Result<i32> {
    let warning = if a.all {
        "WARNING! This will remove all build cache."
    } else {
        "WARNING! This will remove all dangling build cache."
    };
    if !a.force && !super::confirm(warning)? {
        return Ok(0);
    }
    let keep = a
        .keep_storage
        .as_deref()
        .map(crate::opts::parse_ram)
        .transpose()?;
    let q = Query::new()
        .add_if(a.all, "all", 1)
        .opt("keep-storage", keep)
        .opt("filters", crate::client::filters_json(&a.filter));
    let v: Value = c.post_json("/build/prune", &q, None).await?;
    if let Some(ids) = v["CachesDeleted"].as_array().filter(|l| !l.is_empty()) {
        println!("Deleted build cache objects:");
        for id in ids {
            println!("{}", id.as_str().unwrap_or(""));
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        crate::format::human_size(v["SpaceReclaimed"].as_i64().unwrap_or(0))
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(tar_bytes: &[u8]) -> Vec<String> {
        let mut a = tar::Archive::new(tar_bytes);
        a.entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn context_respects_dockerignore() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::write(p.join("Dockerfile"), "FROM busybox\n").unwrap();
        std::fs::write(
            p.join(".dockerignore"),
            "secret.txt\nlogs\n*.tmp\nDockerfile\n",
        )
        .unwrap();
        std::fs::write(p.join("hello.txt"), "hi").unwrap();
        std::fs::write(p.join("secret.txt"), "s").unwrap();
        std::fs::write(p.join("x.tmp"), "t").unwrap();
        std::fs::create_dir(p.join("logs")).unwrap();
        std::fs::write(p.join("logs/a.log"), "l").unwrap();
        std::fs::create_dir(p.join("src")).unwrap();
        std::fs::write(p.join("src/main.c"), "c").unwrap();
        let t = context_tar(p, "Dockerfile").unwrap();
        let n = names(&t);
        assert!(n.contains(&"Dockerfile".to_string()), "{n:?}");
        assert!(n.contains(&".dockerignore".to_string()));
        assert!(n.contains(&"hello.txt".to_string()));
        assert!(n.contains(&"src/main.c".to_string()));
        assert!(
            !n.iter()
                .any(|x| x.contains("secret") || x.contains("logs") || x.ends_with(".tmp")),
            "{n:?}"
        );
        let mut t2 = t.clone();
        append_to_tar(&mut t2, ".dockerfile.x", b"FROM x").unwrap();
        assert!(names(&t2).contains(&".dockerfile.x".to_string()));
    }

    #[test]
    fn context_tar_keeps_contents_modes_links_and_long_names() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::write(p.join("Dockerfile"), "FROM busybox\n").unwrap();
        std::fs::write(p.join("empty"), "").unwrap();
        let big: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::create_dir(p.join("sub")).unwrap();
        std::fs::write(p.join("sub/big.bin"), &big).unwrap();
        std::fs::set_permissions(
            p.join("sub/big.bin"),
            std::fs::Permissions::from_mode(0o751),
        )
        .unwrap();
        let long = "l".repeat(120);
        std::fs::write(p.join(&long), "long name").unwrap();
        std::os::unix::fs::symlink("sub/big.bin", p.join("link")).unwrap();
        let t = context_tar(p, "Dockerfile").unwrap();
        assert_eq!(t.len() % 512, 0);
        let mut a = tar::Archive::new(&t[..]);
        let mut seen = BTreeMap::new();
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mode = e.header().mode().unwrap();
            let link = e
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned());
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            seen.insert(name, (mode, link, data));
        }
        assert_eq!(seen["sub/big.bin"].2, big);
        assert_eq!(seen["sub/big.bin"].0 & 0o7777, 0o751);
        assert_eq!(seen["empty"].2, b"");
        assert_eq!(seen["Dockerfile"].2, b"FROM busybox\n");
        assert_eq!(seen[&long].2, b"long name");
        assert_eq!(seen["link"].1.as_deref(), Some("sub/big.bin"));
        assert!(seen.contains_key("sub/"));
    }

    #[test]
    fn query_params() {
        let a = BuildArgs {
            tag: vec!["t1".into(), "t2:opt".into()],
            build_arg: vec!["MYARG=xyz".into()],
            no_cache: true,
            target: Some("base".into()),
            rm: true,
            context: ".".into(),
            ..Default::default()
        };
        assert_eq!(
            build_query(&a, "Dockerfile", None).unwrap().encode(),
            "buildargs=%7B%22MYARG%22%3A%22xyz%22%7D&dockerfile=Dockerfile&nocache=1&t=t1&t=t2%3Aopt&target=base&version=1"
        );
    }

    #[test]
    fn secrets_from_files_and_env() {
        use base64::Engine;
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("tok.txt");
        std::fs::write(&f, "file-secret").unwrap();
        std::env::set_var("BERTH_TEST_SECRET_ENV", "env-secret");
        let (id, data) = read_secret(&format!("id=tok,src={}", f.display())).unwrap();
        assert_eq!((id.as_str(), data.as_slice()), ("tok", &b"file-secret"[..]));
        let (id, data) = read_secret("id=e,env=BERTH_TEST_SECRET_ENV").unwrap();
        assert_eq!((id.as_str(), data.as_slice()), ("e", &b"env-secret"[..]));
        let (id, _) = read_secret(&format!("src={}", f.display())).unwrap();
        assert_eq!(id, "tok.txt");
        assert!(read_secret("id=x,src=/nonexistent/berth").is_err());
        assert!(read_secret("id=x,bogus=1").is_err());
        let h = secrets_header(&["id=e,env=BERTH_TEST_SECRET_ENV".into()])
            .unwrap()
            .unwrap();
        let b64 = base64::engine::general_purpose::STANDARD;
        let v: serde_json::Value = serde_json::from_slice(&b64.decode(h).unwrap()).unwrap();
        assert_eq!(b64.decode(v["e"].as_str().unwrap()).unwrap(), b"env-secret");
    }

    #[test]
    fn tar_detection() {
        let t = single_file_tar("Dockerfile", b"FROM x").unwrap();
        assert!(is_tar(&t));
        assert!(!is_tar(b"FROM busybox\n"));
    }
}
