//! What `berth compose` shows while it works, as Docker Compose shows it
//! (`--progress auto|tty|plain|json|quiet`):
//! - `tty` (a terminal): one line per resource, redrawn in place — a spinner and the
//!   current state while it is in progress, `✔` and the final state when done, `✘` on
//!   an error, each with its elapsed time — under a `[+] Running done/total` header;
//! - `plain`: a line per state change (` Container web-1  Started`);
//! - `json`: `{"id":"Container web-1","status":"Started"}` per change;
//! - `quiet`: nothing.
//!
//! Anything else the command prints (a build's output, attached logs) first
//! [`suspend`]s the display: the block drawn so far stays on screen and the next
//! event starts a new one.

use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Tty,
    Plain,
    Json,
    Quiet,
}

/// The mode `--progress` and `--ansi` ask for, `auto` deciding by stderr.
pub fn mode(progress: Option<&str>, ansi: &str) -> Result<Mode> {
    let tty = || std::io::IsTerminal::is_terminal(&std::io::stderr()) && ansi != "never";
    Ok(match progress.unwrap_or("auto") {
        "auto" => {
            if tty() {
                Mode::Tty
            } else {
                Mode::Plain
            }
        }
        "tty" => Mode::Tty,
        "plain" => Mode::Plain,
        "json" => Mode::Json,
        "quiet" => Mode::Quiet,
        other => bail!("unsupported --progress value {other:?}: auto, tty, plain, json or quiet"),
    })
}

/// States that end a resource's work (Compose's "done" events).
fn is_done(state: &str) -> bool {
    matches!(
        state,
        "Created" | "Started" | "Stopped" | "Removed" | "Healthy" | "Running" | "Recreated" | "Pulled" | "Built" | "Exited"
            | "Killed" | "Restarted"
    )
}

struct Line {
    id: String,
    state: String,
    started: Instant,
    ended: Option<Instant>,
    error: bool,
}

struct Tty {
    lines: Vec<Line>,
    /// How many lines the last drawing took (to move back over them).
    drawn: usize,
}

struct Display {
    mode: Mode,
    tty: Mutex<Tty>,
}

static DISPLAY: OnceLock<Display> = OnceLock::new();

/// Choose the display for this command (once; later calls change nothing).
pub fn init(mode: Mode) {
    let first = DISPLAY.set(Display { mode, tty: Mutex::new(Tty { lines: Vec::new(), drawn: 0 }) }).is_ok();
    if first && mode == Mode::Tty {
        // spinners and elapsed times move while nothing else happens
        std::thread::spawn(|| loop {
            std::thread::sleep(Duration::from_millis(100));
            if let Some(d) = DISPLAY.get() {
                let mut t = d.tty.lock().unwrap();
                if t.lines.iter().any(|l| l.ended.is_none()) {
                    draw(&mut t);
                }
            }
        });
    }
}

fn display() -> &'static Display {
    DISPLAY.get_or_init(|| Display { mode: Mode::Plain, tty: Mutex::new(Tty { lines: Vec::new(), drawn: 0 }) })
}

/// `kind name` (e.g. `Container web-1`) is now in `state`.
pub fn event(kind: &str, name: &str, state: &str) {
    let d = display();
    match d.mode {
        Mode::Quiet => {}
        Mode::Plain => eprintln!(" {kind} {name}  {state}"),
        Mode::Json => {
            let id = format!("{kind} {name}");
            eprintln!("{}", serde_json::json!({ "id": id, "status": state }));
        }
        Mode::Tty => {
            let id = format!("{kind} {name}");
            let mut t = d.tty.lock().unwrap();
            let now = Instant::now();
            let done = is_done(state);
            let error = state == "Error";
            match t.lines.iter_mut().find(|l| l.id == id) {
                Some(l) => {
                    if l.ended.is_some() && !done && !error {
                        l.started = now; // a new piece of work on the same resource
                    }
                    l.state = state.to_owned();
                    l.ended = (done || error).then_some(now);
                    l.error = error;
                }
                None => t.lines.push(Line {
                    id,
                    state: state.to_owned(),
                    started: now,
                    ended: (done || error).then_some(now),
                    error,
                }),
            }
            draw(&mut t);
        }
    }
}

/// Leave what is drawn on screen and start a new block at the next event (other
/// output follows).
pub fn suspend() {
    let d = display();
    if d.mode != Mode::Tty {
        return;
    }
    let mut t = d.tty.lock().unwrap();
    if !t.lines.is_empty() {
        draw(&mut t);
        let _ = write!(std::io::stderr(), "\x1b[?25h");
    }
    t.lines.clear();
    t.drawn = 0;
}

fn term_width() -> usize {
    // SAFETY: TIOCGWINSZ fills a winsize we own.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(2, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 {
        ws.ws_col as usize
    } else {
        80
    }
}

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

fn render(t: &Tty, width: usize, now: Instant) -> String {
    let done = t.lines.iter().filter(|l| l.ended.is_some()).count();
    let total = t.lines.len();
    let mut out = String::new();
    let header = format!("[+] Running {done}/{total}");
    if done == total {
        out.push_str(&format!("\x1b[34m{header}\x1b[0m\n"));
    } else {
        out.push_str(&format!("{header}\n"));
    }
    let pad = t.lines.iter().map(|l| l.id.chars().count()).max().unwrap_or(0) + 2;
    for l in &t.lines {
        let secs = l.ended.unwrap_or(now).duration_since(l.started).as_secs_f64();
        let time = format!("{secs:.1}s");
        let (mark, state) = if l.error {
            ("\x1b[31m✘\x1b[0m".to_owned(), format!("\x1b[31m{}\x1b[0m", l.state))
        } else if l.ended.is_some() {
            ("\x1b[32m✔\x1b[0m".to_owned(), format!("\x1b[32m{}\x1b[0m", l.state))
        } else {
            let frame = SPINNER[(now.duration_since(l.started).as_millis() / 100) as usize % SPINNER.len()];
            (format!("\x1b[33m{frame}\x1b[0m"), l.state.clone())
        };
        let id = format!("{:<pad$}", l.id);
        // visible width: " ✔ " + id + state; the time goes to the right edge
        let used = 3 + id.chars().count() + l.state.chars().count();
        let gap = width.saturating_sub(used + time.len() + 1).max(1);
        out.push_str(&format!(" {mark} {id}{state}{}\x1b[34m{time}\x1b[0m\n", " ".repeat(gap)));
    }
    out
}

fn draw(t: &mut Tty) {
    let text = render(t, term_width(), Instant::now());
    let mut e = std::io::stderr().lock();
    let up = if t.drawn > 0 { format!("\x1b[{}A", t.drawn) } else { String::new() };
    // back over the last drawing, each line cleared to its end
    let body: String = text.lines().map(|l| format!("{l}\x1b[K\n")).collect();
    let _ = write!(e, "{up}\x1b[0G\x1b[?25l{body}");
    let all_done = t.lines.iter().all(|l| l.ended.is_some());
    if all_done {
        let _ = write!(e, "\x1b[?25h");
    }
    let _ = e.flush();
    t.drawn = text.lines().count();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_follow_the_flag() {
        assert_eq!(mode(Some("plain"), "auto").unwrap(), Mode::Plain);
        assert_eq!(mode(Some("tty"), "auto").unwrap(), Mode::Tty);
        assert_eq!(mode(Some("json"), "auto").unwrap(), Mode::Json);
        assert_eq!(mode(Some("quiet"), "auto").unwrap(), Mode::Quiet);
        // tests run without a terminal on stderr
        assert_eq!(mode(None, "auto").unwrap(), Mode::Plain);
        assert!(mode(Some("fancy"), "auto").unwrap_err().to_string().contains("unsupported --progress value \"fancy\""));
    }

    #[test]
    fn lines_show_state_mark_and_time() {
        let t0 = Instant::now();
        let line = |id: &str, state: &str, ended: Option<Duration>, error: bool| Line {
            id: id.into(),
            state: state.into(),
            started: t0,
            ended: ended.map(|d| t0 + d),
            error,
        };
        let t = Tty {
            lines: vec![
                line("Network p_default", "Created", Some(Duration::from_millis(100)), false),
                line("Container p-web-1", "Starting", None, false),
                line("Container p-db-1", "Error", Some(Duration::ZERO), true),
            ],
            drawn: 0,
        };
        let text = render(&t, 60, t0 + Duration::from_millis(250));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "[+] Running 2/3");
        assert!(lines[1].starts_with(" \x1b[32m✔\x1b[0m Network p_default  \x1b[32mCreated\x1b[0m"), "{:?}", lines[1]);
        assert!(lines[1].ends_with("\x1b[34m0.1s\x1b[0m"), "{:?}", lines[1]);
        assert!(lines[2].contains("⠹") && lines[2].contains("Container p-web-1  Starting") && lines[2].contains("0.2s"), "{:?}", lines[2]);
        assert!(lines[3].contains("\x1b[31m✘\x1b[0m") && lines[3].contains("\x1b[31mError"), "{:?}", lines[3]);
        // every line reaches the same right edge
        let visible = |l: &str| {
            let mut n = 0;
            let mut esc = false;
            for c in l.chars() {
                match (esc, c) {
                    (false, '\x1b') => esc = true,
                    (true, 'm') => esc = false,
                    (true, _) => {}
                    _ => n += 1,
                }
            }
            n
        };
        assert_eq!(visible(lines[1]), 59);
        assert_eq!(visible(lines[2]), 59);
    }
}
