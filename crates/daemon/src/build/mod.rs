//! The image builder's engine side: [`DaemonBackend`] implements
//! `berth_builder::Backend` with berthd's own containers, layers and images.

mod backend;
pub mod mounts;
pub mod usage;

pub use backend::DaemonBackend;

use berth_builder::DirCache;
use berth_errdefs::Result;

use crate::Daemon;

/// The persistent build cache (`<data-root>/buildcache`).
pub fn cache(d: &Daemon) -> Result<DirCache> {
    DirCache::open(d.cfg.data_root.join("buildcache"))
}
