//! berth's image builder (Docker's classic builder, `POST /build`): everything that
//! does not need the engine. The daemon implements [`Backend`] with its own
//! containers, layers and images and calls [`build`].

pub mod backend;
pub mod build;
pub mod cache;
pub mod config;
pub mod context;
pub mod copy;
pub mod dockerignore;
pub mod messages;
pub mod plan;
pub mod remote;
pub mod runmount;

pub use backend::{CacheSharing, RunMount, RunMountKind, SecretBytes, SecretEnv};
pub use build::{build, Backend, BuildOptions, Failure, RunEvent, RunOutcome, RunSpec};
pub use cache::{cache_key, cache_mount_dir, DirCache, KeyInput};
pub use context::Context;
pub use messages::Msg;
