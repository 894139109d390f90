//! The engine interface of the builder ([`Backend`]) and the build's options and
//! outcome types.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use berth_errdefs::{Error, Result};
use berth_image::ImageConfigFile;

/// Bytes that never show up in `Debug` output (secrets).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretBytes(pub Vec<u8>);

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<secret: {} bytes>", self.0.len())
    }
}

/// How a cache mount is shared between concurrent builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheSharing {
    /// Any number of users at once (the default).
    #[default]
    Shared,
    /// A busy cache gives a fresh, throw-away directory instead.
    Private,
    /// One user at a time; others wait.
    Locked,
}

/// Where a RUN mount's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunMountKind {
    /// Files the builder has in hand (a context subtree, an inline heredoc script),
    /// written to a fresh host directory for the run and removed after it. The key
    /// `""` is the mount root itself: a file root gives a single-file mount.
    Files(BTreeMap<String, crate::copy::OutEntry>),
    /// `path` (absolute) inside an image's root filesystem, on a throw-away
    /// writable layer (so `rw` writes are discarded).
    Image { image_id: String, path: String },
    /// A persistent directory (`<data-root>/buildcache/mounts/…`) named by `id`,
    /// created with `mode`/`uid`/`gid`; it outlives the build and is never part of a layer.
    Cache {
        id: String,
        sharing: CacheSharing,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// An empty tmpfs (`size` in bytes, 0 = unlimited).
    Tmpfs { size: i64 },
    /// A single secret file (content never logged, stored or cached).
    Secret {
        data: SecretBytes,
        mode: u32,
        uid: u32,
        gid: u32,
    },
}

/// One `RUN --mount` (or inline file) mounted over the container's rootfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMount {
    /// Absolute path in the container.
    pub target: String,
    pub readonly: bool,
    pub kind: RunMountKind,
}

/// How to run one RUN step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSpec {
    pub cmd: Vec<String>,
    /// Build args visible to the command (`KEY=VALUE`), on top of the image's Env.
    pub env: Vec<String>,
    /// `default` (the build's), `none` or `host`.
    pub network_mode: String,
    /// Extra mounts; their targets never end up in the committed layer.
    pub mounts: Vec<RunMount>,
    /// Secrets exposed as environment variables (`KEY=VALUE`, `RUN --mount=type=secret,env=`).
    pub secret_env: Vec<SecretEnv>,
}

/// A secret given to a RUN as an environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretEnv {
    pub name: String,
    pub value: SecretBytes,
}

/// What a running step reports.
pub enum RunEvent<'a> {
    /// The container was created (print `Running in`).
    Started(&'a str),
    /// Output of the command on its stdout.
    Output(&'a [u8]),
    /// Output of the command on its stderr (shown in red, as dockerd shows it).
    ErrOutput(&'a [u8]),
}

/// The result of a RUN.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub container_id: String,
    pub exit_code: i64,
    /// The container's changes stored as a layer (exit code 0 only; none when it
    /// changed nothing).
    pub diff_id: Option<String>,
}

/// What the builder needs from the engine.
pub trait Backend {
    /// A local image by reference or id: (id, config).
    fn image(&mut self, name: &str) -> Result<(String, ImageConfigFile)>;
    /// Pull `reference` from its registry (a `FROM` or `COPY --from` image that is
    /// not here, or every `FROM` image with `pull`), passing the pull's progress
    /// messages on as JSON. The default: no registry to pull from.
    fn pull(&mut self, reference: &str, progress: &mut dyn FnMut(serde_json::Value)) -> Result<()> {
        let _ = progress;
        Err(Error::not_found(format!("No such image: {reference}")))
    }
    /// Store an image config; returns the image id.
    fn create_image(&mut self, cfg: &ImageConfigFile) -> Result<String>;
    /// Store an uncompressed layer tar; returns its diff id.
    fn add_layer(&mut self, tar: &[u8]) -> Result<String>;
    /// Call `f` with the image's root filesystem mounted read-only.
    fn with_rootfs(&mut self, image_id: &str, f: &mut dyn FnMut(&Path) -> Result<()>)
        -> Result<()>;
    /// Run a command in a new container of `image_id`, commit its changes as a
    /// layer when it exits 0. The container is left for [`Backend::remove_container`].
    fn run(
        &mut self,
        image_id: &str,
        spec: &RunSpec,
        ev: &mut dyn FnMut(RunEvent<'_>),
    ) -> Result<RunOutcome>;
    /// Create (not start) a container of `image_id` with `cmd`, as the classic
    /// builder does for metadata steps; returns its id.
    fn create_container(&mut self, image_id: &str, cmd: &[String]) -> Result<String>;
    fn remove_container(&mut self, id: &str) -> Result<()>;
    /// Tag an image; returns the familiar reference (`t1:latest`).
    fn tag(&mut self, image_id: &str, reference: &str) -> Result<String>;
    /// Images recorded for a cache key, newest first.
    fn cache_get(&mut self, key: &str) -> Vec<String>;
    fn cache_put(&mut self, key: &str, image_id: &str) -> Result<()>;
    /// The client went away (or [`Backend::cancel`] was called): stop before the next step.
    fn cancelled(&mut self) -> bool {
        false
    }
    /// A handle on the same engine for another thread, so independent stages can
    /// be built at the same time; `None` (the default) builds one stage at a time.
    fn fork(&mut self) -> Option<Box<dyn Backend + Send>> {
        None
    }
    /// Stop the whole build: [`Backend::cancelled`] turns true for this handle and
    /// its forks, and a step they are running is stopped.
    fn cancel(&mut self) {}
}

/// `POST /build` options.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Path of the Dockerfile inside the context.
    pub dockerfile: String,
    pub tags: Vec<String>,
    pub build_args: HashMap<String, Option<String>>,
    pub labels: BTreeMap<String, String>,
    pub no_cache: bool,
    pub target: Option<String>,
    pub quiet: bool,
    /// Remove intermediate containers after a successful step (default true).
    pub rm: bool,
    /// Remove them after a failed step too.
    pub force_rm: bool,
    pub network_mode: String,
    pub cache_from: Vec<String>,
    pub pull: bool,
    /// Build secrets by id (berth's `X-Berth-Build-Secrets` extension).
    pub secrets: BTreeMap<String, SecretBytes>,
}

/// Why a build failed (sent as `errorDetail`, or as the HTTP status and message when
/// the build fails before its first line of output, as dockerd answers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// A RUN step's exit code.
    pub code: Option<i64>,
    pub message: String,
    pub kind: berth_errdefs::Kind,
}

impl Failure {
    /// A failure caused by the Dockerfile or the build's options.
    pub fn invalid(message: impl Into<String>) -> Failure {
        Failure { code: None, message: message.into(), kind: berth_errdefs::Kind::InvalidArgument }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure {
            code: None,
            message: e.message().to_owned(),
            kind: e.kind(),
        }
    }
}
