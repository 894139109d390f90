//! `berth_builder::Backend` on top of the daemon. Runs on a blocking thread: async
//! container operations go through the runtime handle.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use berth_api::models::{ContainerCreateBody, HostConfig};
use berth_builder::{Backend, DirCache, RunEvent, RunOutcome, RunSpec};
use berth_errdefs::{Error, Result, ResultExt};
use berth_image::store::ImageRecord;
use berth_image::{ImageConfigFile, Reference};
use berth_metadata::Table;
use berth_shim_proto::FrameKind;
use tokio::io::AsyncReadExt;

use super::mounts;
use crate::container::{self, lifecycle::WaitCondition, PendingAttach};
use crate::Daemon;

/// Parsed image configs by image id. An id is the digest of its config, so an entry
/// never goes stale; the caller has already checked that the image still exists.
static CONFIGS: std::sync::LazyLock<Mutex<HashMap<String, ImageConfigFile>>> =
    std::sync::LazyLock::new(Default::default);
const CONFIGS_MAX: usize = 512;

/// The config of an image (a cache step looks up one per instruction).
fn parsed_config(d: &Daemon, rec: &ImageRecord) -> Result<ImageConfigFile> {
    if let Some(c) = CONFIGS.lock().unwrap().get(&rec.id) {
        return Ok(c.clone());
    }
    let cfg = d.images.config(rec)?;
    let mut m = CONFIGS.lock().unwrap();
    if m.len() >= CONFIGS_MAX {
        m.clear();
    }
    m.insert(rec.id.clone(), cfg.clone());
    Ok(cfg)
}

/// The daemon as the builder's backend. Clones share the build's stop flag, so the
/// builder can run independent stages on several threads.
#[derive(Clone)]
pub struct DaemonBackend {
    d: Arc<Daemon>,
    rt: tokio::runtime::Handle,
    cache: DirCache,
    gone: Arc<std::sync::atomic::AtomicBool>,
    /// Resource limits for every RUN step (`docker build --memory` ...).
    limits: HostConfig,
    /// Registry credentials for the images the build pulls (`X-Registry-Config`).
    auths: Arc<std::collections::HashMap<String, berth_distribution::Credentials>>,
    /// Step containers being removed in the background (see `remove_container`).
    removing: Arc<Mutex<Vec<tokio::task::JoinHandle<Result<()>>>>>,
}

impl DaemonBackend {
    /// `gone` is set when the client disconnects (or a stage of a concurrent build
    /// fails): the build stops before the next step, and a running step is killed.
    pub fn new(
        d: Arc<Daemon>,
        rt: tokio::runtime::Handle,
        gone: Arc<std::sync::atomic::AtomicBool>,
        limits: HostConfig,
        auths: std::collections::HashMap<String, berth_distribution::Credentials>,
    ) -> Result<DaemonBackend> {
        let cache = super::cache(&d)?;
        Ok(DaemonBackend {
            d,
            rt,
            cache,
            gone,
            limits,
            auths: Arc::new(auths),
            removing: Default::default(),
        })
    }

    /// Wait for the step containers still being removed; the build's stream ends
    /// only after this, so a client never sees them.
    pub fn settle(&self) -> Result<()> {
        let pending = std::mem::take(&mut *self.removing.lock().unwrap());
        self.rt.block_on(async {
            let mut first = Ok(());
            for h in pending {
                let r = h.await.map_err(|e| Error::internal(e.to_string())).and_then(|r| r);
                if let (Err(e), Ok(())) = (r, &first) {
                    first = Err(e);
                }
            }
            first
        })
    }

    fn tmp_dir(&self) -> Result<std::path::PathBuf> {
        let p = self.d.cfg.data_root.join("tmp");
        std::fs::create_dir_all(&p).ctx("create tmp dir")?;
        Ok(p)
    }

    /// Remove what the runtime left in an upper dir: mount points for the files
    /// berthd bind-mounts (they are empty files the image did not have).
    fn drop_runtime_artifacts(upper: &Path) {
        for f in ["etc/hosts", "etc/hostname", "etc/resolv.conf", ".dockerenv"] {
            let p = upper.join(f);
            if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file() && m.len() == 0) {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
    /// A rebuild that tags the image the tag already names changes nothing durable:
    /// only the image's last-tag time is updated (as Docker does), by group commit (a
    /// crash within 100 ms may keep the older time). Returns false,
    /// writing nothing, when the tag is new or names another image.
    fn retag_unchanged(&self, image_id: &str, r: &Reference) -> Result<bool> {
        let key = r.familiar();
        self.d.commit(false, |tx| {
            if tx.get::<String>(Table::Tags, &key)?.as_deref() != Some(image_id) {
                return Ok(false);
            }
            let Some(mut rec) = tx.get::<ImageRecord>(Table::Images, image_id)? else {
                return Ok(false);
            };
            rec.last_tag_time = Some(berth_image::config::now_rfc3339());
            tx.put(Table::Images, image_id, &rec)?;
            Ok(true)
        })
    }

    /// Create, attach to, start and wait for a build container: (id, exit code).
    fn run_container(
        &mut self,
        body: ContainerCreateBody,
        ev: &mut dyn FnMut(RunEvent<'_>),
    ) -> Result<(String, i64)> {
        let d = self.d.clone();
        self.rt.block_on(async {
            let cid = container::create::create_opts(&d, None, body, container::create::Origin::BuildStep).await?;
            let c = d.containers.get(&cid)?;
            ev(RunEvent::Started(&cid));
            let (tx, rx) = tokio::sync::oneshot::channel();
            c.pending.lock().unwrap().push(PendingAttach::Waiting {
                stdin: false,
                stdout: true,
                stderr: true,
                tx,
            });
            if let Err(e) = container::start::start(&d, &c).await {
                // Nothing ran: do not leave the container behind.
                let _ = container::lifecycle::remove(&d, &c, true, true).await;
                return Err(e);
            }
            if let Ok(mut s) = rx.await {
                let gone = self.gone.clone();
                let (d2, c2) = (d.clone(), c.clone());
                // The build is stopped: kill the step (its output then ends).
                let killer = tokio::spawn(async move {
                    let mut tick = tokio::time::interval(std::time::Duration::from_millis(50));
                    loop {
                        tick.tick().await;
                        if gone.load(std::sync::atomic::Ordering::Relaxed) {
                            let _ = container::lifecycle::kill(&d2, &c2, libc::SIGKILL).await;
                            return;
                        }
                    }
                });
                let mut header = [0u8; 8];
                while s.read_exact(&mut header).await.is_ok() {
                    let len =
                        u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
                    let mut payload = vec![0u8; len];
                    if s.read_exact(&mut payload).await.is_err() {
                        break;
                    }
                    match FrameKind::from_u8(header[0]) {
                        Some(FrameKind::Stdout) => ev(RunEvent::Output(&payload)),
                        Some(FrameKind::Stderr) => ev(RunEvent::ErrOutput(&payload)),
                        _ => break,
                    }
                }
                killer.abort();
            }
            let code = container::lifecycle::wait(&c, WaitCondition::NotRunning).await;
            Ok::<_, Error>((cid, code))
        })
    }
}

impl Backend for DaemonBackend {
    fn image(&mut self, name: &str) -> Result<(String, ImageConfigFile)> {
        let rec = self.d.images.resolve(name)?;
        let cfg = parsed_config(&self.d, &rec)?;
        Ok((rec.id, cfg))
    }

    fn create_image(&mut self, cfg: &ImageConfigFile) -> Result<String> {
        Ok(self.d.images.create_image(cfg)?.id)
    }

    fn add_layer(&mut self, tar: &[u8]) -> Result<String> {
        Ok(self.d.images.add_layer(tar)?.0.to_string())
    }

    fn with_rootfs(
        &mut self,
        image_id: &str,
        f: &mut dyn FnMut(&Path) -> Result<()>,
    ) -> Result<()> {
        let rec = self.d.images.resolve(image_id)?;
        let tmp = format!("build-{}", hex::encode(rand::random::<[u8; 8]>()));
        let target = self.d.cfg.exec_root.join("build").join(&tmp);
        let mounted = self.d.snap.mount_readonly(&rec.layers, &target);
        let r = match mounted {
            Ok(()) => f(&target),
            Err(e) => Err(e),
        };
        let _ = berth_snapshot::unmount(&target);
        let _ = std::fs::remove_dir(&target);
        r
    }

    fn run(
        &mut self,
        image_id: &str,
        spec: &RunSpec,
        ev: &mut dyn FnMut(RunEvent<'_>),
    ) -> Result<RunOutcome> {
        let d = self.d.clone();
        let network = match spec.network_mode.as_str() {
            "" => "default".to_owned(),
            m => m.to_owned(),
        };
        // Mountpoints the image lacks: the runtime creates them in the upper dir.
        let mut missing = Vec::new();
        if !spec.mounts.is_empty() {
            let targets: Vec<String> = spec.mounts.iter().map(|m| m.target.clone()).collect();
            self.with_rootfs(image_id, &mut |root| {
                missing = mounts::missing_in_image(root, &targets);
                Ok(())
            })?;
        }
        let mut prepared = mounts::Prepared::new(&d, &spec.mounts)?;
        let mut env = spec.env.clone();
        env.extend(
            spec.secret_env
                .iter()
                .map(|s| format!("{}={}", s.name, String::from_utf8_lossy(&s.value.0))),
        );
        let body = ContainerCreateBody {
            image: Some(image_id.to_owned()),
            cmd: Some(spec.cmd.clone()),
            entrypoint: Some(vec![String::new()]),
            env: Some(env),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            host_config: Some(HostConfig {
                network_mode: Some(network),
                binds: (!prepared.binds.is_empty()).then(|| prepared.binds.clone()),
                tmpfs: (!prepared.tmpfs.is_empty()).then(|| prepared.tmpfs.clone()),
                ..self.limits.clone()
            }),
            ..Default::default()
        };
        let t0 = std::time::Instant::now();
        let ran = self.run_container(body, ev);
        prepared.release(&d);
        let (cid, code) = ran?;
        let t_run = t0.elapsed();
        let mut diff_id = None;
        let upper = self.d.snap.upper_dir(&cid);
        if code == 0 {
            Self::drop_runtime_artifacts(&upper);
            mounts::drop_mountpoints(&upper, &missing);
        }
        // A step that changed nothing adds no layer (dockerd: an empty diff is an
        // `empty_layer` history entry, not a layer).
        let changed = std::fs::read_dir(&upper).map(|mut d| d.next().is_some()).unwrap_or(true);
        if code == 0 && changed {
            let tmp = self.tmp_dir()?.join(format!("diff-{cid}.tar"));
            let written = std::fs::File::create(&tmp)
                .ctx("create layer file")
                .and_then(|f| berth_snapshot::write_diff(&upper, std::io::BufWriter::new(f), self.d.snap.idmap()));
            let stored = written.and_then(|()| {
                let f = std::fs::File::open(&tmp)?;
                self.d.images.add_layer(f)
            });
            let _ = std::fs::remove_file(&tmp);
            diff_id = Some(stored?.0.to_string());
        }
        tracing::debug!(id = %cid, ran = ?t_run, committed = ?t0.elapsed(), "build step ran");
        Ok(RunOutcome {
            container_id: cid,
            exit_code: code,
            diff_id,
        })
    }

    fn create_container(&mut self, image_id: &str, cmd: &[String]) -> Result<String> {
        let d = self.d.clone();
        let body = ContainerCreateBody {
            image: Some(image_id.to_owned()),
            cmd: Some(cmd.to_vec()),
            entrypoint: Some(vec![String::new()]),
            ..Default::default()
        };
        self.rt
            .block_on(container::create::create_opts(&d, None, body, container::create::Origin::BuildStep))
    }

    /// Removal (unmount, deleting the upper dir, the record) runs in the background,
    /// beside the next step; [`DaemonBackend::settle`] waits for it.
    fn remove_container(&mut self, id: &str) -> Result<()> {
        let d = self.d.clone();
        let c = d.containers.get(id)?;
        let task = self
            .rt
            .spawn(async move { container::lifecycle::remove(&d, &c, true, true).await });
        self.removing.lock().unwrap().push(task);
        Ok(())
    }

    fn tag(&mut self, image_id: &str, reference: &str) -> Result<String> {
        let r = Reference::parse_tagged(reference)?;
        if !self.retag_unchanged(image_id, &r)? {
            self.d.images.tag(image_id, &r)?;
        }
        let mut attrs = std::collections::HashMap::new();
        attrs.insert("name".to_owned(), r.familiar());
        self.d.events.emit(
            berth_api::models::EventMessageTypeEnum::IMAGE,
            "tag",
            image_id,
            attrs,
        );
        Ok(r.familiar())
    }

    fn cancelled(&mut self) -> bool {
        self.gone.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn pull(&mut self, reference: &str, progress: &mut dyn FnMut(serde_json::Value)) -> Result<()> {
        let mut r = berth_image::Reference::parse(reference)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some("latest".into());
        }
        let creds = berth_distribution::Credentials::for_domain(&self.auths, &r.domain);
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let d = self.d.clone();
        let pulling = self.rt.spawn(async move {
            d.resolve_pull(r.clone(), creds, "").await?.run(tx).await?;
            let attrs = [("name".to_owned(), r.familiar_name())].into_iter().collect();
            d.events.emit(berth_api::models::EventMessageTypeEnum::IMAGE, "pull", &r.familiar(), attrs);
            Ok(())
        });
        while let Some(m) = rx.blocking_recv() {
            if let Ok(v) = serde_json::to_value(&m) {
                progress(v);
            }
        }
        self.rt.block_on(pulling).map_err(|e| berth_errdefs::Error::internal(format!("pull: {e}")))?
    }

    fn fork(&mut self) -> Option<Box<dyn Backend + Send>> {
        Some(Box::new(self.clone()))
    }

    fn cancel(&mut self) {
        self.gone.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn cache_get(&mut self, key: &str) -> Vec<String> {
        self.cache.get(key)
    }

    fn cache_put(&mut self, key: &str, image_id: &str) -> Result<()> {
        self.cache.put(key, image_id)
    }
}
