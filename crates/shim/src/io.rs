//! Output fan-out (log + attached clients) and stdin fan-in.

use std::fs::File;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use berth_shim_proto::{encode_frame, ExitStatus, FrameKind};

use crate::log::JsonLog;

struct Sub {
    conn: UnixStream,
    stdout: bool,
    stderr: bool,
}

#[derive(Default)]
struct HubState {
    subs: Vec<Sub>,
    finished: Option<ExitStatus>,
    pumps: usize,
}

/// Where a process's output goes: the log (for the container's own stdio) and every
/// attached connection.
pub struct Hub {
    state: Mutex<HubState>,
    drained: Condvar,
    log: Option<Mutex<JsonLog>>,
}

impl Hub {
    pub fn new(log: Option<JsonLog>) -> Arc<Hub> {
        Arc::new(Hub { state: Mutex::new(HubState::default()), drained: Condvar::new(), log: log.map(Mutex::new) })
    }

    /// Add an attached client, first writing `greeting` (the request's answer) to it
    /// under the hub's lock: once the client has read it, no output can miss it. If
    /// the process already ended it gets the exit at once.
    pub fn subscribe(&self, conn: UnixStream, greeting: &[u8], stdout: bool, stderr: bool) {
        let mut st = self.state.lock().unwrap();
        add_sub(&mut st, conn, greeting, stdout, stderr);
    }

    /// [`Hub::subscribe`] if the hub's lock is free now, after `first`; else the
    /// connection back. The lock is held only while output is written, but a pump
    /// writing to a client that does not read holds it until that client reads: a
    /// caller that must not wait (the shim's accepting thread) leaves the attach to a
    /// thread of its own then.
    pub fn try_subscribe(
        &self,
        conn: UnixStream,
        greeting: &[u8],
        stdout: bool,
        stderr: bool,
        first: impl FnOnce(),
    ) -> Result<(), UnixStream> {
        let mut st = match self.state.try_lock() {
            Ok(st) => st,
            Err(std::sync::TryLockError::WouldBlock) => return Err(conn),
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
        };
        first();
        add_sub(&mut st, conn, greeting, stdout, stderr);
        Ok(())
    }

    fn publish(&self, kind: FrameKind, data: &[u8]) {
        if let Some(log) = &self.log {
            let idx = if kind == FrameKind::Stderr { 1 } else { 0 };
            log.lock().unwrap().write(idx, data);
        }
        let frame = encode_frame(kind, data);
        let mut st = self.state.lock().unwrap();
        st.subs.retain_mut(|s| {
            let wanted = match kind {
                FrameKind::Stdout => s.stdout,
                FrameKind::Stderr => s.stderr,
                FrameKind::Exit => true,
            };
            !wanted || s.conn.write_all(&frame).is_ok()
        });
    }

    /// Copy each of `srcs` to the subscribers until its EOF (or EIO, as a pty master
    /// reports it), all on one thread that polls them: a process's stdout and stderr
    /// take one thread to pump, not two (a thread's start and end were ~0.05 ms of CPU
    /// for every container).
    pub fn spawn_pumps(self: &Arc<Self>, srcs: Vec<(File, FrameKind)>) {
        if srcs.is_empty() {
            return;
        }
        self.state.lock().unwrap().pumps += srcs.len();
        let hub = self.clone();
        std::thread::spawn(move || hub.pump(srcs));
    }

    fn pump(&self, mut open: Vec<(File, FrameKind)>) {
        use std::os::fd::AsRawFd;
        let mut buf = vec![0u8; 32 * 1024];
        // In step with `open` (poll rewrites every `revents`).
        let mut fds: Vec<libc::pollfd> =
            open.iter().map(|(f, _)| libc::pollfd { fd: f.as_raw_fd(), events: libc::POLLIN, revents: 0 }).collect();
        while !open.is_empty() {
            // SAFETY: `fds` is a valid array of `fds.len()` pollfd entries for the call.
            if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) } < 0 {
                if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                // Nothing to wait on any more: count them all as ended.
                for _ in open.drain(..) {
                    self.pump_ended();
                }
                return;
            }
            // In order, stdout before stderr: when both have output waiting (a short
            // process's, all written before this thread first ran), which came first is
            // lost, and a program's output before its error message is the likelier
            // order (dockerd's readers, one per stream, tend to the same). Ended ones
            // are removed afterwards, last first.
            let mut ended = Vec::new();
            for (i, fd) in fds.iter().enumerate() {
                if fd.revents == 0 {
                    continue;
                }
                let done = match open[i].0.read(&mut buf) {
                    Ok(0) => true,
                    Ok(n) => {
                        self.publish(open[i].1, &buf[..n]);
                        false
                    }
                    Err(e) => e.kind() != std::io::ErrorKind::Interrupted,
                };
                if done {
                    ended.push(i);
                }
            }
            for i in ended.into_iter().rev() {
                open.remove(i);
                fds.remove(i);
                self.pump_ended();
            }
        }
    }

    fn pump_ended(&self) {
        let mut st = self.state.lock().unwrap();
        st.pumps -= 1;
        self.drained.notify_all();
    }

    /// Wait until every pump has seen EOF, at most `timeout`.
    pub fn wait_drained(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut st = self.state.lock().unwrap();
        while st.pumps > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            st = self.drained.wait_timeout(st, left).unwrap().0;
        }
    }

    /// The process ended: flush the log, send every client the exit frame, close them.
    pub fn finish(&self, status: &ExitStatus) {
        if let Some(log) = &self.log {
            log.lock().unwrap().flush();
        }
        let mut st = self.state.lock().unwrap();
        st.finished = Some(status.clone());
        for mut s in st.subs.drain(..) {
            send_exit(&mut s.conn, status);
        }
    }
}

/// Write `greeting` to a new subscriber and add it (or, if the process already ended,
/// send it the exit).
fn add_sub(st: &mut HubState, mut conn: UnixStream, greeting: &[u8], stdout: bool, stderr: bool) {
    if conn.write_all(greeting).is_err() {
        return;
    }
    if let Some(status) = &st.finished {
        send_exit(&mut conn, status);
        return;
    }
    st.subs.push(Sub { conn, stdout, stderr });
}

fn send_exit(conn: &mut UnixStream, status: &ExitStatus) {
    let payload = serde_json::to_vec(status).unwrap_or_default();
    let _ = conn.write_all(&encode_frame(FrameKind::Exit, &payload));
    let _ = conn.shutdown(Shutdown::Write);
}

/// The write side of a process's stdin, shared by every attached client.
pub struct StdinSink {
    w: Mutex<Option<File>>,
    once: bool,
}

impl StdinSink {
    pub fn new(w: Option<File>, once: bool) -> Arc<StdinSink> {
        Arc::new(StdinSink { w: Mutex::new(w), once })
    }

    /// Copy a client's bytes into stdin; at the client's EOF close stdin if `once`.
    pub fn spawn_feeder(self: &Arc<Self>, mut conn: UnixStream) {
        let sink = self.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let mut g = sink.w.lock().unwrap();
                        let ok = g.as_mut().is_some_and(|w| w.write_all(&buf[..n]).is_ok());
                        if !ok {
                            break;
                        }
                    }
                }
            }
            if sink.once {
                sink.w.lock().unwrap().take();
            }
        });
    }

    /// Close stdin now.
    pub fn close(&self) {
        self.w.lock().unwrap().take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_shim_proto::read_frame;

    /// An attach served where nothing may wait (the shim's accepting thread) is added
    /// only while the hub is free; while a pump holds it the connection comes back
    /// untouched (no greeting, `first` not run), for a thread of its own.
    #[test]
    fn try_subscribe_never_waits_for_a_busy_hub() {
        let hub = Hub::new(None);
        let (client, conn) = UnixStream::pair().unwrap();
        let mut ran = false;
        let held = hub.state.lock().unwrap();
        let conn = hub.try_subscribe(conn, b"ok\n", true, false, || ran = true).unwrap_err();
        drop(held);
        assert!(!ran, "`first` ran although the hub was busy");
        client.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 8];
        assert!(matches!((&client).read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock), "greeted");
        assert!(hub.try_subscribe(conn, b"ok\n", true, false, || ran = true).is_ok());
        assert!(ran);
        assert_eq!(hub.state.lock().unwrap().subs.len(), 1);
        assert_eq!((&client).read(&mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"ok\n");
    }

    /// Output waiting on both pipes when the pump starts (a short process's) goes out
    /// stdout first: its order between the pipes is lost, and output before an error
    /// message is the likelier one (the log's timestamps, `logs --tail`, follow it).
    #[test]
    fn output_waiting_on_both_pipes_goes_out_stdout_first() {
        let (out_r, mut out_w) = std::io::pipe().unwrap();
        let (err_r, mut err_w) = std::io::pipe().unwrap();
        out_w.write_all(b"output").unwrap();
        err_w.write_all(b"error").unwrap();
        drop((out_w, err_w));
        let hub = Hub::new(None);
        let (client, conn) = UnixStream::pair().unwrap();
        hub.subscribe(conn, b"ok\n", true, true);
        let file = |r: std::io::PipeReader| File::from(std::os::fd::OwnedFd::from(r));
        hub.spawn_pumps(vec![(file(out_r), FrameKind::Stdout), (file(err_r), FrameKind::Stderr)]);
        hub.wait_drained(Duration::from_secs(10));
        hub.finish(&ExitStatus { code: 0, finished_at: String::new(), oom_killed: false, error: None });
        let mut r = std::io::BufReader::new(client);
        let mut greeting = String::new();
        std::io::BufRead::read_line(&mut r, &mut greeting).unwrap();
        let mut kinds = Vec::new();
        while let Some((kind, _)) = read_frame(&mut r).unwrap() {
            kinds.push(kind);
        }
        assert_eq!(kinds, [FrameKind::Stdout, FrameKind::Stderr, FrameKind::Exit]);
    }

    /// One thread pumps both outputs: every byte of each reaches a subscriber as frames
    /// of its kind, and the hub counts both pumps ended once both writers are closed.
    #[test]
    fn one_thread_pumps_stdout_and_stderr_to_the_end() {
        let (out_r, mut out_w) = std::io::pipe().unwrap();
        let (err_r, mut err_w) = std::io::pipe().unwrap();
        let hub = Hub::new(None);
        let (client, conn) = UnixStream::pair().unwrap();
        hub.subscribe(conn, b"ok\n", true, true);
        let file = |r: std::io::PipeReader| File::from(std::os::fd::OwnedFd::from(r));
        hub.spawn_pumps(vec![(file(out_r), FrameKind::Stdout), (file(err_r), FrameKind::Stderr)]);
        out_w.write_all(b"to stdout, ").unwrap();
        err_w.write_all(b"to stderr").unwrap();
        drop(err_w);
        out_w.write_all(b"and more").unwrap();
        drop(out_w);
        hub.wait_drained(Duration::from_secs(10));
        assert_eq!(hub.state.lock().unwrap().pumps, 0, "a pump was not counted ended");
        hub.finish(&ExitStatus { code: 0, finished_at: String::new(), oom_killed: false, error: None });
        let mut r = std::io::BufReader::new(client);
        let mut greeting = String::new();
        std::io::BufRead::read_line(&mut r, &mut greeting).unwrap();
        assert_eq!(greeting, "ok\n");
        let (mut out, mut err, mut exited) = (Vec::new(), Vec::new(), false);
        while let Some((kind, data)) = read_frame(&mut r).unwrap() {
            match kind {
                FrameKind::Stdout => out.extend(data),
                FrameKind::Stderr => err.extend(data),
                FrameKind::Exit => exited = true,
            }
        }
        assert_eq!(out, b"to stdout, and more");
        assert_eq!(err, b"to stderr");
        assert!(exited);
    }
}
