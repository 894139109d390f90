//! Image references, configs and the image store.

pub mod changes;
pub mod config;
pub mod reference;
pub mod store;

pub use config::{History, ImageConfigFile, RootFs};
pub use reference::Reference;
pub use store::{ImageRecord, ImageStore};
