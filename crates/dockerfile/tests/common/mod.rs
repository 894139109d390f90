//! Locating the shared conformance data (`BERTH_CONFORMANCE_DIR` or
//! `$CARGO_MANIFEST_DIR/../../../shared/conformance`).

use std::path::PathBuf;

pub fn conformance_dir() -> PathBuf {
    let dir = match std::env::var_os("BERTH_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"),
    };
    let df = dir.join("dockerfile");
    assert!(
        df.is_dir(),
        "conformance data missing: {} (set BERTH_CONFORMANCE_DIR)",
        df.display()
    );
    df
}
