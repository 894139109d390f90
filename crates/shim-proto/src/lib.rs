//! berthd ↔ berth-shim protocol: JSON request/response lines, then framed streams.

pub mod islands;

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

/// Name of the exit status file the shim leaves beside its socket.
pub const EXIT_FILE: &str = "exit.json";
/// Name of the shim's socket in the container's exec-root directory.
pub const SOCKET_FILE: &str = "shim.sock";
/// Name of the shim's own log (its stderr) in the container's exec-root directory.
pub const LOG_FILE: &str = "shim.log";
/// The cgroup v1 controllers whose hierarchies get a container's own cgroup, the ones
/// libcontainer's v1 manager puts the init process in (libcgroups
/// `v1::controller_type::CONTROLLERS`): the shim's cgroup tree binds them, berthd's
/// cgroup pool makes entries in them.
pub const MANAGED_CONTROLLERS: [&str; 12] = [
    "cpu", "cpuacct", "cpuset", "devices", "hugetlb", "memory", "pids", "perf_event", "blkio", "net_prio", "net_cls",
    "freezer",
];
/// A file of /proc (or of a cgroup hierarchy), whole. The kernel makes these as they
/// are read and reports a size of 0, so `fs::read_to_string` reads them with doubling
/// 32-byte probes: nine reads for a 2 KiB mountinfo, each walking the mount table
/// again. With room for 8 KiB up front, two (the last one finding the end).
pub fn read_proc(path: impl AsRef<std::path::Path>) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::with_capacity(8192);
    std::fs::File::open(path)?.read_to_string(&mut text)?;
    Ok(text)
}

/// A container's cgroup (its spec's `cgroupsPath`) in the unified tree and in each
/// hierarchy under `/sys/fs/cgroup` (the v1 ones; on v2, other cgroups: harmless, the
/// path is not there). None for an empty path.
fn cgroup_dirs(cgroups_path: &str) -> Option<Vec<std::path::PathBuf>> {
    let rel = cgroups_path.trim_start_matches('/');
    if rel.is_empty() {
        return None;
    }
    let root = std::path::Path::new("/sys/fs/cgroup");
    let mut dirs = vec![root.join(rel)];
    if let Ok(entries) = std::fs::read_dir(root) {
        dirs.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()).map(|p| p.join(rel)));
    }
    Some(dirs)
}

/// Remove a container's cgroup (its spec's `cgroupsPath`, `/berth/<id>`) in every
/// hierarchy under `/sys/fs/cgroup` — the v1 ones and the unified tree. The shim does
/// when it reaps the container, berthd when the shim did not. Only empty cgroups go
/// (rmdir refuses others, so a live container is never touched); one a process killed
/// with the container has not yet left is tried again, with growing pauses, for up to
/// `patience`. True when none is left.
pub fn remove_cgroup(cgroups_path: &str, patience: std::time::Duration) -> bool {
    let Some(dirs) = cgroup_dirs(cgroups_path) else { return false };
    let t0 = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(1);
    let mut gone = true;
    for d in &dirs {
        loop {
            match std::fs::remove_dir(d) {
                Ok(()) => break,
                Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => break,
                Err(_) if t0.elapsed() < patience => {
                    std::thread::sleep(pause);
                    pause *= 2;
                }
                Err(_) => {
                    gone = false;
                    break;
                }
            }
        }
    }
    gone
}

/// Kill (SIGKILL) every process left in a container's cgroup, in each hierarchy it is
/// in (v2's `cgroup.kill` where there is one): for a container whose shim is gone, so
/// that nothing of it runs on once it is recorded as exited. Returns how many
/// cgroups held processes.
pub fn kill_cgroup(cgroups_path: &str) -> usize {
    let Some(dirs) = cgroup_dirs(cgroups_path) else { return 0 };
    let mut held = 0;
    for d in &dirs {
        let Ok(procs) = std::fs::read_to_string(d.join("cgroup.procs")) else { continue };
        let pids: Vec<i32> = procs.lines().filter_map(|l| l.trim().parse().ok()).collect();
        if pids.is_empty() {
            continue;
        }
        held += 1;
        if std::fs::write(d.join("cgroup.kill"), "1").is_err() {
            for pid in pids {
                // SAFETY: kill takes two integers.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }
    // A paused container's processes die only once thawed (the kill is pending by
    // then, so none of them runs on).
    for d in &dirs {
        let _ = std::fs::write(d.join("freezer.state"), "THAWED");
        let _ = std::fs::write(d.join("cgroup.freeze"), "0");
    }
    held
}

/// Where in the container's exec-root directory the shim mounts the cgroup v1 tree the
/// runtime binds at `/sys/fs/cgroup`, for the moment of the container's creation (the
/// daemon detaches one a crashed shim left before it removes the directory).
pub const CGROUPFS_DIR: &str = "cgroupfs";

/// One request, the first line of every connection.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Request {
    /// Stream the container's stdio over this connection.
    Attach { stdin: bool, stdout: bool, stderr: bool },
    /// Start the created container's process.
    Start,
    /// Start a container created with `--deferred` (a warm sandbox): its process is
    /// only chosen now. Answers `Started`, or `Error` when the executable cannot run.
    Launch { args: Vec<String>, env: Vec<String> },
    /// Send a signal to the init process (or every process when `all`).
    Kill { signal: i32, all: bool },
    /// Resize the container's terminal.
    Resize { height: u16, width: u16 },
    /// Answer once the container has exited.
    Wait,
    /// Current pid and status.
    State,
    /// Run an extra process in the container and stream its stdio over this connection.
    /// `process` is an OCI runtime-spec `Process` object.
    Exec { id: String, process: serde_json::Value, tty: bool, stdin: bool },
    /// Resize the terminal of a running exec.
    ResizeExec { id: String, height: u16, width: u16 },
    /// Freeze / thaw the container's processes.
    Pause,
    Resume,
}

/// How a process ended.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ExitStatus {
    /// Exit code, or 128 + signal number when killed by a signal.
    pub code: i32,
    /// RFC 3339 time of the exit.
    pub finished_at: String,
    #[serde(default)]
    pub oom_killed: bool,
    /// Set when the process could not be started at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One response line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Response {
    Ok,
    Started { pid: i32 },
    Exited(ExitStatus),
    State { pid: i32, running: bool, paused: bool },
    Error { message: String },
}

/// The shim's first line on stdout.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Ready {
    Ok {
        shim_pid: i32,
        init_pid: i32,
        /// How long creating the container took inside the shim (diagnostics).
        #[serde(default)]
        create_micros: u64,
    },
    Error { message: String },
}

/// Frame kinds of a stream from the shim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    Stdout = 1,
    Stderr = 2,
    /// Last frame: the process exited; payload is an [`ExitStatus`] as JSON.
    Exit = 0xff,
}

impl FrameKind {
    pub fn from_u8(b: u8) -> Option<FrameKind> {
        match b {
            1 => Some(FrameKind::Stdout),
            2 => Some(FrameKind::Stderr),
            0xff => Some(FrameKind::Exit),
            _ => None,
        }
    }
}

/// Encode a frame header + payload.
pub fn encode_frame(kind: FrameKind, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + payload.len());
    v.push(kind as u8);
    v.extend_from_slice(&[0, 0, 0]);
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// Read one frame (blocking). `Ok(None)` at a clean end of stream.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<(FrameKind, Vec<u8>)>> {
    let mut h = [0u8; 8];
    match r.read_exact(&mut h) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let kind = FrameKind::from_u8(h[0]).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad frame kind"))?;
    let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)?;
    Ok(Some((kind, buf)))
}

/// Write a value as one JSON line.
pub fn write_line<T: Serialize>(w: &mut impl Write, v: &T) -> io::Result<()> {
    let mut s = serde_json::to_vec(v)?;
    s.push(b'\n');
    w.write_all(&s)?;
    w.flush()
}

fn peek(s: &std::os::unix::net::UnixStream, buf: &mut [u8]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: recv into a buffer we own, with its length.
        let n = unsafe { libc::recv(s.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_PEEK) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Read one JSON line from a socket without consuming anything after it (an attach
/// may carry stdin right behind its request): peek, then take exactly the line.
pub fn read_line_socket<T: for<'de> Deserialize<'de>>(s: &mut std::os::unix::net::UnixStream) -> io::Result<T> {
    let mut line = Vec::with_capacity(256);
    let mut buf = [0u8; 4096];
    loop {
        let n = peek(s, &mut buf)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
        }
        let (take, done) = match buf[..n].iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (n, false),
        };
        s.read_exact(&mut buf[..take])?;
        line.extend_from_slice(&buf[..take]);
        if line.len() > 16 << 20 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
        }
        if done {
            line.pop();
            return serde_json::from_slice(&line).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e));
        }
    }
}

/// Read one JSON line byte by byte (so no stream data after it is consumed).
pub fn read_line<T: for<'de> Deserialize<'de>>(r: &mut impl Read) -> io::Result<T> {
    let mut buf = Vec::with_capacity(128);
    let mut b = [0u8; 1];
    loop {
        if r.read(&mut b)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
        }
        if b[0] == b'\n' {
            break;
        }
        buf.push(b[0]);
        if buf.len() > 16 << 20 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
        }
    }
    serde_json::from_slice(&buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// A unix socket path usable for `bind`/`connect` even when `dir/name` is longer than
/// `sun_path` allows (108 bytes): long paths go through `/proc/self/fd/<dirfd>/name`.
/// Keep the returned guard alive until the bind or connect is done.
pub fn socket_path(dir: &std::path::Path, name: &str) -> io::Result<(Option<std::fs::File>, std::path::PathBuf)> {
    let full = dir.join(name);
    if full.as_os_str().len() < 100 {
        return Ok((None, full));
    }
    let guard = std::fs::File::open(dir)?;
    use std::os::fd::AsRawFd;
    let p = std::path::PathBuf::from(format!("/proc/self/fd/{}/{name}", guard.as_raw_fd()));
    Ok((Some(guard), p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_are_read_whole_small_or_past_the_first_buffer() {
        let maps = read_proc("/proc/self/mountinfo").unwrap();
        assert!(maps.ends_with('\n') && maps.lines().any(|l| l.contains(" / / ")), "{maps}");
        // smaps runs to tens of KiB: read on past the 8 KiB the buffer starts with.
        let smaps = read_proc("/proc/self/smaps").unwrap();
        assert!(smaps.len() > 8192, "{}", smaps.len());
        assert!(smaps.ends_with('\n') && smaps.contains("VmFlags:"));
        assert!(read_proc("/proc/self/no-such-file").is_err());
    }

    #[test]
    fn socket_line_leaves_what_follows() {
        let (mut a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut out = Vec::new();
        write_line(&mut out, &Request::Launch { args: vec!["x".repeat(5000)], env: vec![] }).unwrap();
        out.extend_from_slice(b"stdin bytes");
        let writer = std::thread::spawn(move || {
            // In pieces, so the reader sees partial lines.
            for chunk in out.chunks(1000) {
                a.write_all(chunk).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        });
        let req: Request = read_line_socket(&mut b).unwrap();
        assert!(matches!(req, Request::Launch { ref args, .. } if args[0].len() == 5000));
        writer.join().unwrap();
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"stdin bytes");
    }

    #[test]
    fn lines_and_frames_roundtrip() {
        let mut buf = Vec::new();
        write_line(&mut buf, &Request::Attach { stdin: true, stdout: true, stderr: false }).unwrap();
        buf.extend(encode_frame(FrameKind::Stdout, b"hi\n"));
        buf.extend(encode_frame(FrameKind::Exit, br#"{"code":3,"finished_at":"t"}"#));
        let mut r = &buf[..];
        let req: Request = read_line(&mut r).unwrap();
        assert_eq!(req, Request::Attach { stdin: true, stdout: true, stderr: false });
        assert_eq!(read_frame(&mut r).unwrap(), Some((FrameKind::Stdout, b"hi\n".to_vec())));
        let (k, p) = read_frame(&mut r).unwrap().unwrap();
        assert_eq!(k, FrameKind::Exit);
        let st: ExitStatus = serde_json::from_slice(&p).unwrap();
        assert_eq!(st.code, 3);
        assert_eq!(read_frame(&mut r).unwrap(), None);
    }
}
