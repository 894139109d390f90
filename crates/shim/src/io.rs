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
    pub fn subscribe(&self, mut conn: UnixStream, greeting: &[u8], stdout: bool, stderr: bool) {
        let mut st = self.state.lock().unwrap();
        if conn.write_all(greeting).is_err() {
            return;
        }
        if let Some(status) = &st.finished {
            let mut c = conn;
            send_exit(&mut c, status);
            return;
        }
        st.subs.push(Sub { conn, stdout, stderr });
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

    /// Copy `src` to the subscribers until EOF (or EIO, as a pty master reports it).
    pub fn spawn_pump(self: &Arc<Self>, mut src: File, kind: FrameKind) {
        self.state.lock().unwrap().pumps += 1;
        let hub = self.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match src.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => hub.publish(kind, &buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
            let mut st = hub.state.lock().unwrap();
            st.pumps -= 1;
            hub.drained.notify_all();
        });
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
