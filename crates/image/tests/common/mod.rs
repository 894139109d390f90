//! Helpers shared by the integration tests of this crate.
pub mod oci_schema;
