//! libcontainer's own account of a failed container creation.
//!
//! When the container's init process fails to set the container up, libcontainer
//! sends the parent only its outermost error ("failed to prepare rootfs"); what
//! actually failed ("filesystem proc must be mounted on ordinary directory", the
//! mount and its errno) is only logged, with `tracing`, in the init process. The shim
//! keeps libcontainer's error events in a memfd that the init process shares (it is a
//! clone of the shim, not an exec), and adds the innermost cause to the error it
//! reports, so that `docker run` names the real cause.
//!
//! The memfd is close-on-exec: the container's process never sees it.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::OnceLock;

static SINK: OnceLock<File> = OnceLock::new();

/// Keep libcontainer's error events from now on (unless `BERTH_SHIM_LOG` already
/// sends all of its events to the shim's log).
pub fn install() {
    // SAFETY: a NUL-terminated name and valid flags; the fd is checked, then owned.
    let fd = unsafe { libc::memfd_create(c"berth-shim-errors".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return;
    }
    // Appending: after `clear` truncates it, writes start again at its beginning
    // (the offset is shared with the init process's descriptor).
    // SAFETY: F_SETFL on the descriptor just opened.
    unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_APPEND) };
    // SAFETY: `fd` was just opened and nothing else owns it.
    let file = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let Ok(writer) = file.try_clone() else { return };
    if SINK.set(file).is_err() {
        return;
    }
    let writer = std::sync::Mutex::new(writer);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("libcontainer=error"))
        .with_writer(writer)
        .with_ansi(false)
        .without_time()
        .with_level(false)
        .with_target(false)
        .try_init();
}

/// What libcontainer logged so far.
fn logged() -> String {
    let Some(f) = SINK.get() else { return String::new() };
    let mut buf = vec![0u8; 64 * 1024];
    let n = f.read_at(&mut buf, 0).unwrap_or(0);
    buf.truncate(n);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Forget what was logged (before the next creation).
pub fn clear() {
    if let Some(f) = SINK.get() {
        let _ = f.set_len(0);
    }
}

/// `message` (libcontainer's error) with the innermost cause it logged added, if it
/// adds anything.
pub fn with_cause(message: &str) -> String {
    match cause(&logged()) {
        Some(c) if !message.contains(&c) => format!("{message}: {c}"),
        _ => message.to_owned(),
    }
}

/// The innermost cause in libcontainer's error events: the first event (logged where
/// the failure happened, before the outer layers logged it again) with the mount it
/// names shortened to its destination, plus the OS error's message that a later
/// event's `Debug` rendering of the same error carries (`message: "Not a
/// directory"`). When the first event is only the outermost wrapper (`failed to
/// prepare rootfs err=RootFS(Other("..."))`), the innermost message in it.
fn cause(log: &str) -> Option<String> {
    let lines: Vec<&str> = log.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let first = *lines.first()?;
    let os_message = lines.iter().find_map(|l| field(l, "message: \""));
    let text = if first.starts_with("failed to prepare rootfs err=") || first.starts_with("failed to initialize") {
        os_message.clone().or_else(|| innermost_quoted(first)).unwrap_or_else(|| first.to_owned())
    } else {
        let mut t = shorten_mount(first);
        if let Some(m) = os_message.filter(|m| !t.contains(m.as_str())) {
            t = format!("{t}: {m}");
        }
        t
    };
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// The string after the last `key` up to the next `"`.
fn field(s: &str, key: &str) -> Option<String> {
    let at = s.rfind(key)? + key.len();
    let rest = &s[at..];
    let end = rest.find('"')?;
    Some(rest[..end].to_owned())
}

/// `failed to mount Mount { destination: "/x", typ: .. }: why` → `mount /x: why`.
fn shorten_mount(line: &str) -> String {
    let Some(at) = line.find("Mount { destination: \"") else { return line.to_owned() };
    let Some(dest) = field(&line[at..], "destination: \"") else { return line.to_owned() };
    let Some(close) = line[at..].find(" }") else { return line.to_owned() };
    let head = line[..at].trim_end().trim_end_matches("failed to mount").trim_end();
    let tail = &line[at + close + 2..];
    format!("{head}{}mount {dest}{tail}", if head.is_empty() { "" } else { " " })
}

/// The last `"..."` literal of a `Debug` rendering, unescaped (`\"` and `\\`).
fn innermost_quoted(s: &str) -> Option<String> {
    let end = s.rfind("\")")?;
    let bytes = s.as_bytes();
    // Walk back to the opening quote, skipping escaped ones.
    let mut i = end;
    while i > 0 {
        i -= 1;
        if bytes[i] == b'"' && (i == 0 || bytes[i - 1] != b'\\') {
            let inner = &s[i + 1..end];
            return Some(inner.replace("\\\"", "\"").replace("\\\\", "\\"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_innermost_message_of_a_debug_error() {
        let log = "failed to prepare rootfs err=RootFS(Other(\"filesystem proc must be mounted on ordinary directory\"))\n";
        assert_eq!(cause(log).as_deref(), Some("filesystem proc must be mounted on ordinary directory"));
        let log = "failed to mount Mount { destination: \"/r/t\", typ: Some(\"bind\"), options: Some([\"rbind\"]) }: open newly created directory failed\n\
                   failed to prepare rootfs err=Mount(Pathrs(Error(RawOsError { operation: \"open\", source: Os { code: 20, kind: NotADirectory, message: \"Not a directory\" } })))\n";
        assert_eq!(cause(log).as_deref(), Some("mount /r/t: open newly created directory failed: Not a directory"));
        let log = "failed to mknod device err=Nix(EEXIST) path=\"/c/rootfs/dev/null\" major=1 minor=3\n";
        assert_eq!(cause(log).as_deref(), Some("failed to mknod device err=Nix(EEXIST) path=\"/c/rootfs/dev/null\" major=1 minor=3"));
        assert_eq!(cause(""), None);
        assert_eq!(innermost_quoted(r#"E(Other("a \"b\" c"))"#).as_deref(), Some(r#"a "b" c"#));
    }
}
