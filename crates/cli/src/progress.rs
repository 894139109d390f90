//! Rendering of JSON-message streams (pull, push, load, import, build).

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Result;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use crate::client::LineReader;

/// An error reported inside a JSON-message stream (`errorDetail`).
#[derive(Debug, Clone)]
pub struct StreamError {
    pub code: Option<i64>,
    pub message: String,
}
impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
impl std::error::Error for StreamError {}

pub fn stream_error(msg: &Value) -> Option<StreamError> {
    let detail = msg.get("errorDetail");
    let message = detail
        .and_then(|d| d.get("message"))
        .and_then(Value::as_str)
        .or_else(|| msg.get("error").and_then(Value::as_str))?;
    Some(StreamError {
        code: detail.and_then(|d| d.get("code")).and_then(Value::as_i64),
        message: message.to_string(),
    })
}

fn out(to_stderr: bool, s: &str) {
    use std::io::Write;
    if to_stderr {
        let _ = write!(std::io::stderr(), "{s}");
    } else {
        let mut o = std::io::stdout();
        let _ = write!(o, "{s}");
        let _ = o.flush();
    }
}

/// Docker's jsonmessage display: on a terminal one redrawn line per layer id, else
/// `id: status` lines with byte-progress updates left out.
pub struct JsonDisplay {
    tty: bool,
    to_stderr: bool,
    mp: MultiProgress,
    bars: HashMap<String, ProgressBar>,
    last_status: HashMap<String, String>,
}

impl JsonDisplay {
    pub fn new(tty: bool, to_stderr: bool) -> JsonDisplay {
        let target = if !tty {
            ProgressDrawTarget::hidden()
        } else if to_stderr {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::stdout()
        };
        JsonDisplay {
            tty,
            to_stderr,
            mp: MultiProgress::with_draw_target(target),
            bars: HashMap::new(),
            last_status: HashMap::new(),
        }
    }

    fn line(&self, s: &str) {
        if self.tty && !self.bars.is_empty() {
            let _ = self.mp.println(s.trim_end_matches('\n'));
        } else {
            out(self.to_stderr, s);
        }
    }

    /// Shows one message; returns the stream error if it carries one.
    pub fn show(&mut self, msg: &Value) -> Result<(), StreamError> {
        if let Some(e) = stream_error(msg) {
            return Err(e);
        }
        if let Some(s) = msg.get("stream").and_then(Value::as_str) {
            self.line(s);
            return Ok(());
        }
        let status = msg.get("status").and_then(Value::as_str).unwrap_or("");
        let id = msg.get("id").and_then(Value::as_str).unwrap_or("");
        let has_progress = msg
            .get("progressDetail")
            .and_then(|d| d.get("current"))
            .is_some();
        if id.is_empty() {
            if !status.is_empty() {
                self.line(&format!("{status}\n"));
            }
            return Ok(());
        }
        if !self.tty {
            if has_progress {
                return Ok(());
            }
            if self.last_status.get(id).map(String::as_str) == Some(status) {
                return Ok(());
            }
            self.last_status.insert(id.to_string(), status.to_string());
            out(self.to_stderr, &format!("{id}: {status}\n"));
            return Ok(());
        }
        let progress = msg.get("progress").and_then(Value::as_str).unwrap_or("");
        let bar = self.bars.entry(id.to_string()).or_insert_with(|| {
            let b = self.mp.add(ProgressBar::new(0));
            b.set_style(
                ProgressStyle::with_template("{prefix}: {wide_msg}").expect("static template"),
            );
            b.set_prefix(id.to_string());
            b
        });
        if progress.is_empty() {
            bar.set_message(status.to_string());
        } else {
            bar.set_message(format!("{status} {progress}"));
        }
        Ok(())
    }

    pub fn finish(&mut self) {
        for b in self.bars.values() {
            b.abandon();
        }
    }
}

/// Drains a JSON-message response through a [`JsonDisplay`]; returns the `aux` objects.
pub async fn render(
    mut reader: LineReader,
    tty: bool,
    to_stderr: bool,
    quiet: bool,
) -> Result<Vec<Value>> {
    let mut disp = JsonDisplay::new(tty, to_stderr);
    let mut aux = Vec::new();
    while let Some(line) = reader.next_line().await? {
        let msg: Value = match serde_json::from_slice(&line) {
            Ok(v) => v,
            Err(_) => {
                if !quiet {
                    out(to_stderr, &format!("{}\n", String::from_utf8_lossy(&line)));
                }
                continue;
            }
        };
        if let Some(a) = msg.get("aux") {
            aux.push(a.clone());
        }
        if quiet {
            if let Some(e) = stream_error(&msg) {
                disp.finish();
                return Err(e.into());
            }
            continue;
        }
        if let Err(e) = disp.show(&msg) {
            disp.finish();
            return Err(e.into());
        }
    }
    disp.finish();
    Ok(aux)
}

/// BuildKit-like rendering of the classic builder's stream on a terminal: one line
/// per step with its timing or CACHED, container output indented under it.
pub struct BuildDisplay {
    mp: MultiProgress,
    current: Option<(usize, ProgressBar, Instant, bool)>,
    step_no: usize,
    pending: String,
}

impl BuildDisplay {
    pub fn new() -> BuildDisplay {
        BuildDisplay {
            mp: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            current: None,
            step_no: 0,
            pending: String::new(),
        }
    }

    fn finish_step(&mut self) {
        if let Some((n, bar, start, cached)) = self.current.take() {
            let what = bar.message();
            if cached {
                bar.set_prefix(format!("#{n} CACHED"));
                bar.finish_with_message(what);
            } else {
                bar.set_prefix(format!("#{n} DONE {:.1}s", start.elapsed().as_secs_f64()));
                bar.finish_with_message(what);
            }
        }
    }

    /// Feeds one `stream` text (may hold partial or several lines).
    pub fn feed(&mut self, text: &str) {
        self.pending.push_str(text);
        while let Some(pos) = self.pending.find('\n') {
            let line: String = self.pending.drain(..=pos).collect();
            self.line(line.trim_end_matches('\n'));
        }
        // "Step N/M : X" arrives without its newline first
        if self.pending.starts_with("Step ") && self.pending.contains(" : ") {
            let l = std::mem::take(&mut self.pending);
            self.line(&l);
        }
    }

    fn line(&mut self, line: &str) {
        if line.is_empty() {
            return;
        }
        if let Some(rest) = line.strip_prefix("Step ") {
            self.finish_step();
            self.step_no += 1;
            let (frac, instr) = rest.split_once(" : ").unwrap_or((rest, ""));
            let bar = self.mp.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{spinner}] {msg}")
                    .expect("static template"),
            );
            bar.set_prefix(format!("#{}", self.step_no));
            bar.set_message(format!("[{frac}] {instr}"));
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            self.current = Some((self.step_no, bar, Instant::now(), false));
            return;
        }
        if line.trim() == "---> Using cache" {
            if let Some(c) = self.current.as_mut() {
                c.3 = true;
            }
            return;
        }
        if line.starts_with(" ---> ") || line.starts_with("Removing intermediate container") {
            return;
        }
        if line.starts_with("Successfully built") || line.starts_with("Successfully tagged") {
            self.finish_step();
            let _ = self.mp.println(line);
            return;
        }
        let elapsed = self
            .current
            .as_ref()
            .map(|c| c.2.elapsed().as_secs_f64())
            .unwrap_or(0.0);
        let _ = self
            .mp
            .println(format!("#{} {:.3} {}", self.step_no, elapsed, line));
    }

    pub fn done(&mut self, failed: bool) {
        if !self.pending.is_empty() {
            let l = std::mem::take(&mut self.pending);
            self.line(&l);
        }
        if failed {
            if let Some((n, bar, _, _)) = self.current.take() {
                bar.set_prefix(format!("#{n} ERROR"));
                let m = bar.message();
                bar.abandon_with_message(m);
            }
        }
        self.finish_step();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stream_errors() {
        let e = stream_error(&json!({"errorDetail":{"code":3,"message":"boom"},"error":"boom"}))
            .unwrap();
        assert_eq!(e.code, Some(3));
        assert_eq!(e.message, "boom");
        assert!(stream_error(&json!({"status":"ok"})).is_none());
        let e = stream_error(&json!({"error":"x"})).unwrap();
        assert_eq!(e.code, None);
    }

    #[test]
    fn plain_display_skips_byte_progress() {
        let mut d = JsonDisplay::new(false, true);
        d.show(
            &json!({"status":"Downloading","progressDetail":{"current":1,"total":2},"id":"abc"}),
        )
        .unwrap();
        assert!(d.last_status.is_empty());
        d.show(&json!({"status":"Pull complete","progressDetail":{},"id":"abc"}))
            .unwrap();
        assert_eq!(
            d.last_status.get("abc").map(String::as_str),
            Some("Pull complete")
        );
        assert!(d.show(&json!({"error":"bad"})).is_err());
    }
}
