//! `GET /containers/{id}/json` and `GET /containers/json`.

use std::collections::HashMap;

use berth_api::models::{
    ContainerInspectResponse, ContainerState, ContainerStateStatusEnum, ContainerSummary, ContainerSummaryHostConfig,
    ContainerSummaryNetworkSettings, ContainerSummaryStateEnum, DriverData, EndpointSettings, NetworkSettings,
};
use berth_api::query::Filters;
use berth_errdefs::Result;

use super::{Container, Paths, Record, Status, ZERO_TIME};
use crate::Daemon;

/// Docker's `units.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        120..=3599 => format!("{} minutes", s / 60),
        3600..=7199 => "About an hour".into(),
        7200..=172_799 => format!("{} hours", s / 3600),
        172_800..=1_209_599 => format!("{} days", s / 86_400),
        1_209_600..=5_183_999 => format!("{} weeks", s / 604_800),
        5_184_000..=63_071_999 => format!("{} months", s / 2_592_000),
        _ => format!("{} years", s / 31_536_000),
    }
}

fn since(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t).map(|t| (chrono::Utc::now().timestamp() - t.timestamp()).max(0)).unwrap_or(0)
}

/// The `Status` column of `docker ps`.
pub fn status_text(r: &Record) -> String {
    match r.state.status {
        Status::Created => "Created".into(),
        Status::Running => format!("Up {}", human_duration(since(&r.state.started_at))),
        Status::Paused => format!("Up {} (Paused)", human_duration(since(&r.state.started_at))),
        Status::Restarting => format!("Restarting ({}) {} ago", r.state.exit_code, human_duration(since(&r.state.finished_at))),
        Status::Removing => "Removal In Progress".into(),
        Status::Exited => {
            format!("Exited ({}) {} ago", r.state.exit_code, human_duration(since(&r.state.finished_at)))
        }
        Status::Dead => "Dead".into(),
    }
}

fn state_enum(s: Status) -> ContainerStateStatusEnum {
    match s {
        Status::Created => ContainerStateStatusEnum::CREATED,
        Status::Running => ContainerStateStatusEnum::RUNNING,
        Status::Paused => ContainerStateStatusEnum::PAUSED,
        Status::Restarting => ContainerStateStatusEnum::RESTARTING,
        Status::Removing => ContainerStateStatusEnum::REMOVING,
        Status::Exited => ContainerStateStatusEnum::EXITED,
        Status::Dead => ContainerStateStatusEnum::DEAD,
    }
}

fn summary_state(s: Status) -> ContainerSummaryStateEnum {
    match s {
        Status::Created => ContainerSummaryStateEnum::CREATED,
        Status::Running => ContainerSummaryStateEnum::RUNNING,
        Status::Paused => ContainerSummaryStateEnum::PAUSED,
        Status::Restarting => ContainerSummaryStateEnum::RESTARTING,
        Status::Removing => ContainerSummaryStateEnum::REMOVING,
        Status::Exited => ContainerSummaryStateEnum::EXITED,
        Status::Dead => ContainerSummaryStateEnum::DEAD,
    }
}

fn network_name(r: &Record) -> String {
    match r.host_config.network_mode.as_deref().unwrap_or("default") {
        "default" | "" => "bridge".into(),
        m => m.to_owned(),
    }
}

fn networks(r: &Record) -> HashMap<String, EndpointSettings> {
    let mut m = HashMap::new();
    let mode = network_name(r);
    if !mode.starts_with("container:") {
        m.insert(mode, EndpointSettings::default());
    }
    m
}

fn or_zero(t: &str) -> String {
    if t.is_empty() {
        ZERO_TIME.into()
    } else {
        t.to_owned()
    }
}

/// Full inspect document of a container.
pub fn inspect(d: &Daemon, c: &Container) -> ContainerInspectResponse {
    let r = c.record();
    let paths = Paths::new(d, &r.id);
    let s = r.state.status;
    let created = chrono::DateTime::parse_from_rfc3339(&r.created).ok().map(|t| t.with_timezone(&chrono::Utc));
    let mut graph = HashMap::new();
    graph.insert("UpperDir".to_owned(), d.snap.upper_dir(&r.id).display().to_string());
    graph.insert("MergedDir".to_owned(), paths.rootfs().display().to_string());
    ContainerInspectResponse {
        id: Some(r.id.clone()),
        created,
        path: Some(r.path.clone()),
        args: Some(r.args.clone()),
        state: Some(ContainerState {
            status: Some(state_enum(s)),
            running: Some(s.is_live()),
            paused: Some(s == Status::Paused),
            restarting: Some(s == Status::Restarting),
            oom_killed: Some(r.state.oom_killed),
            dead: Some(s == Status::Dead),
            pid: Some(r.state.pid as i64),
            exit_code: Some(r.state.exit_code),
            error: Some(r.state.error.clone()),
            started_at: Some(or_zero(&r.state.started_at)),
            finished_at: Some(or_zero(&r.state.finished_at)),
            health: None,
        }),
        image: Some(r.image_id.clone()),
        resolv_conf_path: Some(paths.dir.join("resolv.conf").display().to_string()),
        hostname_path: Some(paths.dir.join("hostname").display().to_string()),
        hosts_path: Some(paths.dir.join("hosts").display().to_string()),
        log_path: Some(paths.log(&r.id).display().to_string()),
        name: Some(format!("/{}", r.name)),
        restart_count: Some(r.restart_count),
        driver: Some("overlay2".into()),
        platform: Some("linux".into()),
        mount_label: Some(String::new()),
        process_label: Some(String::new()),
        app_armor_profile: Some(String::new()),
        exec_ids: {
            let ids = d.execs.of_container(&r.id);
            if ids.is_empty() {
                None
            } else {
                Some(ids)
            }
        },
        host_config: Some(r.host_config.clone()),
        graph_driver: Some(DriverData { name: "overlay2".into(), data: graph }),
        mounts: Some(Vec::new()),
        config: Some(r.config.clone()),
        network_settings: Some(NetworkSettings {
            sandbox_id: Some(String::new()),
            sandbox_key: Some(if s.is_live() { Paths::netns(d, &r.id).display().to_string() } else { String::new() }),
            ports: Some(HashMap::new()),
            networks: Some(networks(&r)),
        }),
        ..Default::default()
    }
}

fn command_line(r: &Record) -> String {
    let mut parts = vec![r.path.clone()];
    parts.extend(r.args.iter().cloned());
    parts.join(" ")
}

/// The `docker ps` row of a container.
pub fn summary(r: &Record) -> ContainerSummary {
    let created = chrono::DateTime::parse_from_rfc3339(&r.created).map(|t| t.timestamp()).unwrap_or(0);
    ContainerSummary {
        id: Some(r.id.clone()),
        names: Some(vec![format!("/{}", r.name)]),
        image: Some(r.image.clone()),
        image_id: Some(r.image_id.clone()),
        command: Some(command_line(r)),
        created: Some(created),
        ports: Some(Vec::new()),
        labels: Some(r.config.labels.clone().unwrap_or_default()),
        state: Some(summary_state(r.state.status)),
        status: Some(status_text(r)),
        host_config: Some(ContainerSummaryHostConfig {
            network_mode: Some(r.host_config.network_mode.clone().unwrap_or_else(|| "default".into())),
            annotations: None,
        }),
        network_settings: Some(ContainerSummaryNetworkSettings { networks: Some(networks(r)) }),
        mounts: Some(Vec::new()),
        ..Default::default()
    }
}

/// Does a container pass `docker ps` filters?
fn matches(d: &Daemon, r: &Record, f: &Filters) -> bool {
    let status_ok = f.get("status").is_empty() || f.get("status").iter().any(|s| s == r.state.status.as_str());
    let name_ok = f.get("name").is_empty() || f.get("name").iter().any(|n| r.name.contains(n.trim_start_matches('/')));
    let id_ok = f.get("id").is_empty() || f.get("id").iter().any(|i| r.id.starts_with(i.as_str()));
    let labels = r.config.labels.clone().unwrap_or_default();
    let label_ok = f.match_labels(|k| labels.get(k).map(String::as_str));
    let exited_ok = f.get("exited").is_empty()
        || (r.state.status == Status::Exited && f.get("exited").iter().any(|e| e.parse::<i64>().ok() == Some(r.state.exit_code)));
    let ancestor_ok = f.get("ancestor").is_empty()
        || f.get("ancestor").iter().any(|a| {
            d.images.resolve(a).map(|img| img.id == r.image_id).unwrap_or(false) || a == &r.image
        });
    status_ok && name_ok && id_ok && label_ok && exited_ok && ancestor_ok
}

/// `GET /containers/json`.
pub fn list(d: &Daemon, all: bool, limit: Option<i64>, f: &Filters) -> Result<Vec<ContainerSummary>> {
    f.validate(&["status", "name", "id", "label", "exited", "ancestor", "before", "since", "network", "volume", "health", "is-task", "publish", "expose"])?;
    let mut recs: Vec<Record> = d.containers.all().iter().map(|c| c.record()).collect();
    recs.sort_by(|a, b| b.created.cmp(&a.created));
    let show_all = all || !f.get("status").is_empty() || limit.is_some_and(|l| l > 0);
    let mut out: Vec<ContainerSummary> = recs
        .iter()
        .filter(|r| show_all || r.state.status.is_live())
        .filter(|r| matches(d, r, f))
        .map(summary)
        .collect();
    if let Some(l) = limit.filter(|l| *l > 0) {
        out.truncate(l as usize);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(4), "4 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(4000), "About an hour");
        assert_eq!(human_duration(3 * 3600), "3 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
    }
}
