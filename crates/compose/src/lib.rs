//! berth-compose: loads Compose files the way Docker Compose v2 (compose-go) does and
//! produces the normalized project model — what `docker compose config` prints.
//!
//! The pipeline follows compose-go: YAML decoding (anchors, merge keys, `!reset` /
//! `!override`), interpolation from the environment and `.env`, `extends`, `include`,
//! merging of several files, JSON-schema validation against the Compose Specification,
//! canonicalization of short syntaxes, default values, relative path resolution,
//! normalization (default network, implicit dependencies, resource names), profiles,
//! consistency checks and `env_file` resolution.
//!
//! ```no_run
//! let opts = berth_compose::Options {
//!     working_dir: "/srv/app".into(),
//!     env: std::env::vars().collect(),
//!     ..Default::default()
//! };
//! let project = berth_compose::load(&opts)?;
//! println!("{}", project.to_json()?);
//! # Ok::<(), berth_compose::Error>(())
//! ```

pub mod build;
mod dotenv;
mod error;
mod format;
mod interpolate;
mod loader;
mod merge;
mod normalize;
mod path;
mod paths;
mod project;
mod template;
mod transform;
pub mod plan;
pub mod types;
mod validate;
pub mod value;
mod yaml;

pub use error::{Error, Result};
pub use loader::{
    load, load_model, normalize_project_name, Options, DEFAULT_FILE_NAMES,
    DEFAULT_OVERRIDE_FILE_NAMES,
};
pub use project::Project;
pub use template::{substitute, TemplateError};
pub use validate::COMPOSE_SPEC_SCHEMA;
