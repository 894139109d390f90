//! Docker's progress messages: sizes as `units.HumanSize` prints them and the
//! pre-rendered bar of `jsonmessage.JSONProgress` (as a daemon renders it, for a
//! 200-column "terminal").

use berth_api::stream::{JsonMessage, ProgressDetail};

/// `units.HumanSize`: decimal units, 4 significant digits (`128B`, `19.97kB`, `1.988MB`).
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{}{}", sig4(v), UNITS[i])
}

/// Go's `%.4g` for values below 1000.
fn sig4(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let digits = v.abs().log10().floor() as i32 + 1;
    let decimals = (4 - digits).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// The `progress` string: `[=====>      ]  1.222MB/1.988MB`.
pub fn bar(current: u64, total: u64) -> String {
    if total == 0 {
        return format!("{:>8}", human_size(current));
    }
    let pct = ((current as f64 / total as f64 * 100.0) as usize / 2).min(50);
    format!(
        "[{}>{}] {:>8}/{}",
        "=".repeat(pct),
        " ".repeat(50 - pct),
        human_size(current),
        human_size(total)
    )
}

/// A status line for one layer: `{"status":..,"progressDetail":{},"id":..}`.
pub fn layer_status(status: &str, id: &str) -> JsonMessage {
    JsonMessage {
        status: Some(status.into()),
        progress_detail: Some(ProgressDetail::default()),
        id: Some(id.into()),
        ..Default::default()
    }
}

/// A byte-progress line for one layer.
pub fn layer_progress(status: &str, id: &str, current: u64, total: u64) -> JsonMessage {
    JsonMessage {
        status: Some(status.into()),
        progress_detail: Some(ProgressDetail {
            current: Some(current as i64),
            total: Some(total as i64),
        }),
        progress: Some(bar(current, total)),
        id: Some(id.into()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_go_units() {
        assert_eq!(human_size(128), "128B");
        assert_eq!(human_size(2048), "2.048kB");
        assert_eq!(human_size(19968), "19.97kB");
        assert_eq!(human_size(1987569), "1.988MB");
        assert_eq!(human_size(1222000), "1.222MB");
        assert_eq!(human_size(0), "0B");
    }

    #[test]
    fn bar_matches_recorded_lines() {
        let full = format!("[{}>]     128B/128B", "=".repeat(50));
        assert_eq!(bar(128, 128), full);
        assert_eq!(
            bar(19968, 1987569),
            format!("[>{}]  19.97kB/1.988MB", " ".repeat(50))
        );
        let line = layer_progress("Downloading", "14e97b80fb65", 128, 128).to_line();
        let s = String::from_utf8(line.to_vec()).unwrap();
        assert!(s.starts_with(r#"{"status":"Downloading","progressDetail":{"current":128,"total":128},"progress":"[===="#), "{s}");
        assert!(
            s.ends_with("128B/128B\",\"id\":\"14e97b80fb65\"}\r\n"),
            "{s}"
        );
    }
}
