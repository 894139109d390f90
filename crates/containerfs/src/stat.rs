//! `ContainerPathStat`: what `HEAD /containers/{id}/archive` reports about a path,
//! with Go's `os.FileMode` bits, as the docker CLI decodes it.

use base64::Engine;
use serde::{Deserialize, Serialize};

pub const MODE_DIR: u32 = 1 << 31;
pub const MODE_SYMLINK: u32 = 1 << 27;
pub const MODE_DEVICE: u32 = 1 << 26;
pub const MODE_NAMED_PIPE: u32 = 1 << 25;
pub const MODE_SOCKET: u32 = 1 << 24;
pub const MODE_SETUID: u32 = 1 << 23;
pub const MODE_SETGID: u32 = 1 << 22;
pub const MODE_CHAR_DEVICE: u32 = 1 << 21;
pub const MODE_STICKY: u32 = 1 << 20;

/// Go's `os.FileMode` for a Unix `st_mode`.
pub fn go_mode(st_mode: u32) -> u32 {
    let mut m = st_mode & 0o777;
    match st_mode & libc::S_IFMT {
        libc::S_IFDIR => m |= MODE_DIR,
        libc::S_IFLNK => m |= MODE_SYMLINK,
        libc::S_IFBLK => m |= MODE_DEVICE,
        libc::S_IFCHR => m |= MODE_DEVICE | MODE_CHAR_DEVICE,
        libc::S_IFIFO => m |= MODE_NAMED_PIPE,
        libc::S_IFSOCK => m |= MODE_SOCKET,
        _ => {}
    }
    if st_mode & libc::S_ISUID != 0 {
        m |= MODE_SETUID;
    }
    if st_mode & libc::S_ISGID != 0 {
        m |= MODE_SETGID;
    }
    if st_mode & libc::S_ISVTX != 0 {
        m |= MODE_STICKY;
    }
    m
}

/// The stat of a path in a container, as the archive API's
/// `X-Docker-Container-Path-Stat` header carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    pub mode: u32,
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

impl PathStat {
    pub fn from_stat(name: String, st: &libc::stat, link_target: String) -> PathStat {
        PathStat {
            name,
            size: st.st_size,
            mode: go_mode(st.st_mode),
            mtime: rfc3339(st.st_mtime, st.st_mtime_nsec),
            link_target,
        }
    }

    pub fn is_dir(&self) -> bool {
        self.mode & MODE_DIR != 0
    }

    pub fn is_symlink(&self) -> bool {
        self.mode & MODE_SYMLINK != 0
    }

    /// Is this something `docker cp` may copy onto (a directory or a regular file)?
    pub fn is_dir_or_regular(&self) -> bool {
        self.mode & (MODE_SYMLINK | MODE_DEVICE | MODE_NAMED_PIPE | MODE_SOCKET) == 0
    }

    /// The header value: base64 of the JSON object.
    pub fn header_value(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Decode a header value (standard or URL-safe base64, as clients have sent both).
    pub fn from_header(v: &str) -> Option<PathStat> {
        let v = v.trim();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(v)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(v))
            .ok()?;
        serde_json::from_slice(&raw).ok()
    }
}

/// A Unix time as Go marshals a `time.Time` (RFC 3339 with nanoseconds, UTC).
fn rfc3339(secs: i64, nsec: i64) -> String {
    chrono::DateTime::from_timestamp(secs, nsec.clamp(0, 999_999_999) as u32)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_as_go_encodes_them() {
        assert_eq!(go_mode(libc::S_IFDIR | 0o755), MODE_DIR | 0o755);
        assert_eq!(go_mode(libc::S_IFREG | 0o4755), MODE_SETUID | 0o755);
        assert_eq!(go_mode(libc::S_IFLNK | 0o777), MODE_SYMLINK | 0o777);
        assert_eq!(go_mode(libc::S_IFCHR | 0o666), MODE_DEVICE | MODE_CHAR_DEVICE | 0o666);
        assert_eq!(go_mode(libc::S_IFDIR | 0o1777), MODE_DIR | MODE_STICKY | 0o777);
    }

    #[test]
    fn header_round_trip() {
        let s = PathStat {
            name: "x".into(),
            size: 3,
            mode: MODE_DIR | 0o755,
            mtime: rfc3339(1_700_000_000, 5),
            link_target: String::new(),
        };
        assert_eq!(s.mtime, "2023-11-14T22:13:20.000000005Z");
        let v = s.header_value();
        assert_eq!(PathStat::from_header(&v), Some(s));
        let json: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::STANDARD.decode(v).unwrap(),
        )
        .unwrap();
        assert_eq!(json["linkTarget"], "");
        assert_eq!(json["mode"], 2147484141u64);
    }
}
