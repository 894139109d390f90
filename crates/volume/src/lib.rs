//! Volumes and mount specifications.
//!
//! `spec` turns what clients send (`HostConfig.Binds` strings, `HostConfig.Mounts`
//! objects, `--tmpfs` options, `--volumes-from`) into [`MountPoint`]s with dockerd's
//! rules and error messages, so a bad specification is refused when the container is
//! created, not when it starts.

pub mod spec;
pub mod store;

pub use store::{check_driver, copy_up, Volume, Volumes};
pub use spec::{check_tmpfs_options, clean_path, parse_bind, parse_mount, parse_volumes_from, tmpfs_options, validate_name, Kind, MountPoint};
