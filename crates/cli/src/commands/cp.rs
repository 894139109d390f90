//! `berth cp`: files between a container and the local filesystem through the
//! archive API, with the docker CLI's rules for what a source and a destination
//! mean (berth-containerfs's `copy` module).

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use berth_containerfs::copy::{self, CopyInfo};
use berth_containerfs::{gopath, ContainerFs, ExtractOptions, PathStat};
use bytes::Bytes;
use hyper::Method;

use crate::cli::CpArgs;
use crate::client::{channel_body, empty, next_chunk, Client, Query};
use crate::format::human_size_prec;
use crate::stream::stderr_is_tty;

/// `CONTAINER:PATH` or a local path (anything absolute or starting with `.` is local,
/// as the docker CLI decides).
fn split(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') || arg.starts_with('.') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) => (Some(c), p),
        None => (None, arg),
    }
}

fn archive_path(ctr: &str) -> String {
    format!("/containers/{ctr}/archive")
}

async fn stat(c: &Client, ctr: &str, path: &str) -> Result<PathStat> {
    let resp = c.request(Method::HEAD, &archive_path(ctr), &Query::new().add("path", path), &[], empty()).await?;
    stat_header(resp.headers())
}

fn stat_header(h: &http::HeaderMap) -> Result<PathStat> {
    h.get("X-Docker-Container-Path-Stat")
        .and_then(|v| v.to_str().ok())
        .and_then(PathStat::from_header)
        .context("unable to decode container path stat header")
}

/// A link target made absolute against the link's directory.
fn absolute_target(link: &str, target: &str) -> String {
    if target.starts_with('/') {
        target.to_owned()
    } else {
        gopath::join(&gopath::split_dir_entry(link).0, target)
    }
}

pub async fn cp(c: &Client, a: CpArgs) -> Result<i32> {
    let (src_ctr, src) = split(&a.src);
    let (dst_ctr, dst) = split(&a.dst);
    if src.is_empty() || dst.is_empty() {
        bail!("filesystem path cannot be empty");
    }
    let progress = !a.quiet && stderr_is_tty();
    match (src_ctr, dst_ctr) {
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("must specify at least one container source"),
        (Some(ctr), None) => from_container(c, ctr, src, dst, a.follow_link, progress).await,
        (None, Some(ctr)) => to_container(c, src, ctr, dst, a.follow_link, a.archive, progress).await,
    }
}

async fn from_container(c: &Client, ctr: &str, src: &str, dst: &str, follow: bool, progress: bool) -> Result<i32> {
    let mut src = src.to_owned();
    let mut rebase_name = String::new();
    if follow {
        if let Ok(st) = stat(c, ctr, &src).await {
            if st.is_symlink() {
                let target = absolute_target(&src, &st.link_target);
                let (resolved, name) = gopath::rebase_name(&src, &target);
                src = resolved;
                rebase_name = name;
            }
        }
    }
    let resp = c.request(Method::GET, &archive_path(ctr), &Query::new().add("path", &src), &[], empty()).await?;
    let st = stat_header(resp.headers())?;
    let mut body = resp.into_body();
    if dst == "-" {
        let mut out = std::io::stdout().lock();
        while let Some(chunk) = next_chunk(&mut body).await? {
            out.write_all(&chunk)?;
        }
        out.flush()?;
        return Ok(0);
    }
    let src_info = CopyInfo { path: src.clone(), exists: true, is_dir: st.is_dir(), rebase_name: rebase_name.clone() };
    let dst_info = copy::destination_info(dst)?;
    let (dst_dir, rename) = copy::prepare(&src_info, &dst_info)?;
    // The entries start with the source's base name; a followed link renamed them to
    // the asked name first, and `prepare` may rename them to the destination's.
    let (_, src_base) = gopath::split_dir_entry(&src);
    let rebase = match (rebase_name.is_empty(), rename) {
        (_, Some((_, new))) => Some((src_base, new)),
        (false, None) => Some((src_base, rebase_name)),
        (true, None) => None,
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let copied = Arc::new(AtomicU64::new(0));
    let counted = copied.clone();
    let extract = tokio::task::spawn_blocking(move || -> Result<()> {
        let fs = ContainerFs::open(std::path::Path::new("/"))?;
        let dest = fs.dest(&dst_dir)?;
        let opts = ExtractOptions { no_overwrite_dir_non_dir: true, no_lchown: true, rebase, ..Default::default() };
        dest.extract(ChanReader { rx, cur: Bytes::new(), counted }, &opts)?;
        Ok(())
    });
    while let Some(chunk) = next_chunk(&mut body).await? {
        if tx.send(chunk).await.is_err() {
            break;
        }
    }
    drop(tx);
    extract.await??;
    if progress {
        eprintln!("Successfully copied {} to {dst}", human_size_prec(copied.load(Ordering::Relaxed) as f64, 3));
    }
    Ok(0)
}

async fn to_container(
    c: &Client,
    src: &str,
    ctr: &str,
    dst: &str,
    follow: bool,
    archive: bool,
    progress: bool,
) -> Result<i32> {
    let mut dst_info = CopyInfo { path: dst.to_owned(), ..Default::default() };
    let mut st = stat(c, ctr, dst).await;
    if let Ok(s) = &st {
        if s.is_symlink() {
            dst_info.path = absolute_target(dst, &s.link_target);
            st = stat(c, ctr, &dst_info.path).await;
        }
    }
    if let Ok(s) = &st {
        if !s.is_dir_or_regular() {
            bail!("destination \"{ctr}:{dst}\" must be a directory or a regular file");
        }
        dst_info.exists = true;
        dst_info.is_dir = s.is_dir();
    }
    let copied = Arc::new(AtomicU64::new(0));
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(16);
    let (dst_dir, producer): (String, Box<dyn FnOnce(ChanWriter) -> Result<()> + Send>) = if src == "-" {
        if !dst_info.is_dir {
            bail!("destination \"{ctr}:{dst}\" must be a directory");
        }
        (dst_info.path.clone(), Box::new(|mut w: ChanWriter| {
            std::io::copy(&mut std::io::stdin().lock(), &mut w)?;
            Ok(())
        }))
    } else {
        let src_info = copy::source_info(src, follow)?;
        let (dst_dir, rename) = copy::prepare(&src_info, &dst_info)?;
        let source = copy::local_source(&src_info, rename.as_ref())?;
        (dst_dir, Box::new(move |w: ChanWriter| {
            let mut w = std::io::BufWriter::with_capacity(256 * 1024, w);
            source.write_tar(&mut w)?;
            w.flush()?;
            Ok(())
        }))
    };
    let counted = copied.clone();
    let err_tx = tx.clone();
    std::thread::spawn(move || {
        if let Err(e) = producer(ChanWriter { tx, counted }) {
            let _ = err_tx.blocking_send(Err(std::io::Error::other(format!("{e:#}"))));
        }
    });
    let q = Query::new()
        .add("path", &dst_dir)
        .add("noOverwriteDirNonDir", "true")
        .add_if(archive, "copyUIDGID", "true");
    c.request(Method::PUT, &archive_path(ctr), &q, &[("Content-Type", "application/x-tar".into())], channel_body(rx))
        .await?;
    if progress {
        eprintln!("Successfully copied {} to {ctr}:{dst}", human_size_prec(copied.load(Ordering::Relaxed) as f64, 3));
    }
    Ok(0)
}

/// Response chunks, read on a blocking thread.
struct ChanReader {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    cur: Bytes,
    counted: Arc<AtomicU64>,
}

impl Read for ChanReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => {
                    self.counted.fetch_add(b.len() as u64, Ordering::Relaxed);
                    self.cur = b;
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur.split_to(n));
        Ok(n)
    }
}

/// A request body written from a blocking thread.
struct ChanWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    counted: Arc<AtomicU64>,
}

impl Write for ChanWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.counted.fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the daemon stopped reading"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_and_local_arguments() {
        assert_eq!(split("ctr:/etc"), (Some("ctr"), "/etc"));
        assert_eq!(split("/abs:x"), (None, "/abs:x"));
        assert_eq!(split("./rel:x"), (None, "./rel:x"));
        assert_eq!(split("file"), (None, "file"));
        assert_eq!(split("ctr:"), (Some("ctr"), ""));
    }

    #[test]
    fn link_targets_are_made_absolute() {
        assert_eq!(absolute_target("/a/link", "b"), "/a/b");
        assert_eq!(absolute_target("/a/link", "/x"), "/x");
        assert_eq!(absolute_target("/a/dir/", "../y"), "/y");
    }
}
