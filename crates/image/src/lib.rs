//! Image references, configs and the image store.

pub mod archive;
pub mod changes;
pub mod config;
pub mod layers;
pub mod reference;
pub mod remove;
pub mod store;

pub use config::{History, ImageConfigFile, RootFs};
pub use layers::{Compression, LayerSource};
pub use reference::Reference;
pub use remove::Removal;
pub use store::{ImageRecord, ImageStore};
