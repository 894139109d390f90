//! Docker Engine API types and wire rules shared by berthd and the berth CLI.

pub mod gojson;
pub mod query;
pub mod stream;
pub mod version;

/// Docker Engine API models (from bollard's `bollard-stubs`).
pub use bollard_stubs::models;
