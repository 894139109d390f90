//! Healthchecks, as dockerd runs them (moby `daemon/health.go`): the image's
//! `HEALTHCHECK` or `--health-*` probe runs in the container every interval; exit 0
//! is healthy, anything else a failure, a probe over its timeout a failure with
//! exit -1. `Retries` failures in a row make the container `unhealthy`; failures in
//! the start period do not count until the first success. Each change of status is a
//! `health_status: <status>` event; the last five results are kept in
//! `State.Health.Log`, each output cut at 4096 bytes.

use std::sync::Arc;
use std::time::Duration;

use berth_api::models::{EventMessageTypeEnum, HealthConfig};
use serde::{Deserialize, Serialize};

use super::{event_attrs, now, Container, Record, Status};
use crate::Daemon;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: i64 = 3;
const MAX_LOG_ENTRIES: usize = 5;
pub const MAX_OUTPUT: usize = 4096;

pub const STARTING: &str = "starting";
pub const HEALTHY: &str = "healthy";
pub const UNHEALTHY: &str = "unhealthy";

/// `State.Health`, persisted with the record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub failing_streak: i64,
    pub log: Vec<Probe>,
}

/// One probe's result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

/// A probe to run, with dockerd's defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub cmd: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub retries: i64,
}

fn nanos(v: Option<i64>, default: Duration) -> Duration {
    match v {
        Some(n) if n > 0 => Duration::from_nanos(n as u64),
        _ => default,
    }
}

/// The probe a container runs, if any: none without a test, with `NONE`, or with
/// an empty command.
pub fn check(hc: Option<&HealthConfig>, shell: Option<&[String]>) -> Option<Check> {
    let hc = hc?;
    let test = hc.test.as_ref()?;
    let cmd = match test.first().map(String::as_str) {
        Some("CMD") => test[1..].to_vec(),
        Some("CMD-SHELL") => {
            let mut sh = shell.filter(|s| !s.is_empty()).map(<[String]>::to_vec).unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
            sh.push(test[1..].join(" "));
            sh
        }
        _ => return None,
    };
    if cmd.is_empty() {
        return None;
    }
    Some(Check {
        cmd,
        interval: nanos(hc.interval, DEFAULT_INTERVAL),
        timeout: nanos(hc.timeout, DEFAULT_TIMEOUT),
        start_period: nanos(hc.start_period, Duration::ZERO),
        retries: hc.retries.filter(|r| *r > 0).unwrap_or(DEFAULT_RETRIES),
    })
}

/// Apply a probe's result to the health state (`started_at` is when the container
/// started, for the start period). Returns whether the status changed.
pub fn apply(h: &mut Health, result: Probe, check: &Check, started_at: &str) -> bool {
    let old = h.status.clone();
    h.log.push(result.clone());
    if h.log.len() > MAX_LOG_ENTRIES {
        let extra = h.log.len() - MAX_LOG_ENTRIES;
        h.log.drain(..extra);
    }
    if result.exit_code == 0 {
        h.failing_streak = 0;
        h.status = HEALTHY.into();
    } else {
        let in_start_period = h.status == STARTING && {
            let start = chrono::DateTime::parse_from_rfc3339(&result.start).ok();
            let began = chrono::DateTime::parse_from_rfc3339(started_at).ok();
            match (start, began) {
                (Some(s), Some(b)) => (s - b).to_std().unwrap_or_default() < check.start_period,
                _ => false,
            }
        };
        if !in_start_period {
            h.failing_streak += 1;
            if h.failing_streak >= check.retries {
                h.status = UNHEALTHY.into();
            }
        }
    }
    h.status != old
}

/// Start the container's monitor (at start and when a running container is
/// re-adopted): status `starting`, streak 0, the log kept.
pub fn start_monitor(d: &Arc<Daemon>, c: &Arc<Container>) {
    let rec = c.record();
    let Some(check) = check(rec.config.healthcheck.as_ref(), rec.config.shell.as_deref()) else { return };
    let _ = c.update_lazy(d, |r| {
        let h = r.state.health.get_or_insert_with(Health::default);
        h.status = STARTING.into();
        h.failing_streak = 0;
    });
    let run = c.subscribe().borrow().exits;
    let (d, c) = (d.clone(), c.clone());
    tokio::spawn(async move {
        let mut rx = c.subscribe();
        loop {
            let stopped = rx.wait_for(|w| w.exits != run || !w.running || w.removed);
            tokio::select! {
                _ = stopped => return,
                _ = tokio::time::sleep(check.interval) => {}
            }
            if c.status() != Status::Running {
                // Paused: no probe, as dockerd (its exec would fail).
                continue;
            }
            let result = probe(&d, &c, &check).await;
            if c.subscribe().borrow().exits != run {
                return;
            }
            let mut changed = None;
            let rec = c.update_lazy(&d, |r| {
                let started = r.state.started_at.clone();
                let h = r.state.health.get_or_insert_with(Health::default);
                if apply(h, result, &check, &started) {
                    changed = Some(h.status.clone());
                }
            });
            if let (Some(status), Ok(rec)) = (changed, rec) {
                d.events.emit(EventMessageTypeEnum::CONTAINER, &format!("health_status: {status}"), &rec.id, event_attrs(&rec));
            }
        }
    });
}

/// Run one probe in the container.
async fn probe(d: &Arc<Daemon>, c: &Arc<Container>, check: &Check) -> Probe {
    let start = now();
    let (exit_code, output) = match super::exec::run_probe(d, c, check.cmd.clone(), check.timeout).await {
        Ok(Some((code, out))) => (code, out),
        Ok(None) => (-1, format!("Health check exceeded timeout ({})", berth_api::query::go_duration_string(check.timeout))),
        Err(e) => (-1, e.to_string()),
    };
    Probe { start, end: now(), exit_code, output }
}

/// `State.Health` for inspect.
pub fn to_api(h: &Health) -> berth_api::models::Health {
    let date = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok().map(|d| d.with_timezone(&chrono::Utc));
    berth_api::models::Health {
        status: h.status.parse().ok(),
        failing_streak: Some(h.failing_streak),
        log: Some(
            h.log
                .iter()
                .map(|p| berth_api::models::HealthcheckResult {
                    start: date(&p.start),
                    end: date(&p.end),
                    exit_code: Some(p.exit_code),
                    output: Some(p.output.clone()),
                })
                .collect(),
        ),
    }
}

/// The health a container shows in `ps` and the `health` filter: `none` without a
/// check.
pub fn status(r: &Record) -> &str {
    match &r.state.health {
        Some(h) if check(r.config.healthcheck.as_ref(), None).is_some() && !h.status.is_empty() => &h.status,
        _ => "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hc(test: &[&str]) -> HealthConfig {
        HealthConfig { test: Some(test.iter().map(|s| s.to_string()).collect()), ..Default::default() }
    }

    #[test]
    fn probes_from_the_config() {
        let c = check(Some(&hc(&["CMD-SHELL", "exit 1"])), None).unwrap();
        assert_eq!(c.cmd, ["/bin/sh", "-c", "exit 1"]);
        assert_eq!((c.interval, c.timeout, c.retries), (DEFAULT_INTERVAL, DEFAULT_TIMEOUT, 3));
        let c = check(Some(&hc(&["CMD-SHELL", "x"])), Some(&["bash".into(), "-ec".into()])).unwrap();
        assert_eq!(c.cmd, ["bash", "-ec", "x"]);
        assert_eq!(check(Some(&hc(&["CMD", "true", "x"])), None).unwrap().cmd, ["true", "x"]);
        assert!(check(Some(&hc(&["NONE"])), None).is_none());
        assert!(check(Some(&hc(&[])), None).is_none());
        assert!(check(None, None).is_none());
    }

    fn result(at: &str, code: i64) -> Probe {
        Probe { start: at.into(), end: at.into(), exit_code: code, output: String::new() }
    }

    #[test]
    fn retries_start_period_and_log_length() {
        let started = "2026-01-01T00:00:00Z";
        let mut c = check(Some(&hc(&["CMD", "x"])), None).unwrap();
        c.retries = 2;
        c.start_period = Duration::from_secs(10);
        let mut h = Health { status: STARTING.into(), ..Default::default() };
        // Failures in the start period do not count.
        assert!(!apply(&mut h, result("2026-01-01T00:00:05Z", 1), &c, started));
        assert_eq!((h.status.as_str(), h.failing_streak), (STARTING, 0));
        // After it they do.
        assert!(!apply(&mut h, result("2026-01-01T00:00:11Z", 1), &c, started));
        assert!(apply(&mut h, result("2026-01-01T00:00:12Z", 1), &c, started));
        assert_eq!((h.status.as_str(), h.failing_streak), (UNHEALTHY, 2));
        assert!(apply(&mut h, result("2026-01-01T00:00:13Z", 0), &c, started));
        assert_eq!((h.status.as_str(), h.failing_streak), (HEALTHY, 0));
        for i in 0..10 {
            apply(&mut h, result(&format!("2026-01-01T00:01:{i:02}Z"), 0), &c, started);
        }
        assert_eq!(h.log.len(), MAX_LOG_ENTRIES);
        assert_eq!(h.log[4].start, "2026-01-01T00:01:09Z");
        // A success in the start period makes it healthy at once.
        let mut h = Health { status: STARTING.into(), ..Default::default() };
        assert!(apply(&mut h, result("2026-01-01T00:00:01Z", 0), &c, started));
        assert_eq!(h.status, HEALTHY);
    }
}
