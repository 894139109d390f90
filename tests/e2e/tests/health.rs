//! Healthchecks (`--health-*`, the image's HEALTHCHECK, `--no-healthcheck`) with
//! dockerd's states, log, events and `ps` output, and the event filters.

use std::time::Duration;

use berth_e2e::{wait_until, Cli, Daemon};

fn health(d: &Daemon, name: &str) -> serde_json::Value {
    d.inspect(name)["State"]["Health"].clone()
}

#[test]
fn a_failing_check_turns_unhealthy_and_a_passing_one_healthy() {
    let d = Daemon::start();
    let t0 = chrono_now(&d);
    for cli in Cli::ALL {
        let n = format!("hc-{}", cli.name());
        d.cli(cli, &[
            "run", "-d", "--name", &n, "--health-cmd", "test -f /tmp/ok && echo fine", "--health-interval", "200ms",
            "--health-retries", "2", "--health-timeout", "2s", "busybox", "sleep", "600",
        ])
        .ok();
        assert_eq!(health(&d, &n)["Status"], "starting");
        let ps = d.cli(cli, &["ps", "--filter", &format!("name={n}"), "--format", "{{.Status}}"]);
        assert!(ps.ok().contains("(health: starting)"), "{ps}");
        assert!(wait_until(Duration::from_secs(10), || health(&d, &n)["Status"] == "unhealthy"), "{}", health(&d, &n));
        let h = health(&d, &n);
        assert!(h["FailingStreak"].as_i64().unwrap() >= 2, "{h}");
        assert_eq!(h["Log"][0]["ExitCode"], 1);
        let ps = d.cli(cli, &["ps", "--filter", "health=unhealthy", "--format", "{{.Names}} {{.Status}}"]);
        assert!(ps.ok().contains(&format!("{n} Up")) && ps.ok().contains("(unhealthy)"), "{ps}");
        d.cli(cli, &["exec", &n, "touch", "/tmp/ok"]).ok();
        assert!(wait_until(Duration::from_secs(10), || health(&d, &n)["Status"] == "healthy"));
        let h = health(&d, &n);
        assert_eq!(h["FailingStreak"], 0);
        let last = h["Log"].as_array().unwrap().last().unwrap().clone();
        assert_eq!((last["ExitCode"].as_i64(), last["Output"].as_str()), (Some(0), Some("fine\n")), "{h}");
        assert!(h["Log"].as_array().unwrap().len() <= 5);
        let ps = d.cli(cli, &["ps", "--filter", "health=healthy", "--format", "{{.Names}}"]);
        assert!(ps.ok().lines().any(|l| l == n), "{ps}");
    }
    // The transitions were events, found by the event filter's prefix rule.
    let until = chrono_now(&d);
    let o = d.docker(&[
        "events", "--since", &t0.to_string(), "--until", &(until + 1).to_string(), "--filter", "event=health_status",
        "--filter", "container=hc-berth", "--format", "{{.Action}}",
    ]);
    let actions: Vec<&str> = o.ok().lines().collect();
    assert_eq!(actions, ["health_status: unhealthy", "health_status: healthy"], "{o}");
}

#[test]
fn probe_timeout_image_healthcheck_and_no_healthcheck() {
    let d = Daemon::start();
    d.berth(&[
        "run", "-d", "--name", "slow", "--health-cmd", "sleep 5", "--health-interval", "200ms", "--health-timeout",
        "300ms", "--health-retries", "1", "busybox", "sleep", "600",
    ])
    .ok();
    assert!(wait_until(Duration::from_secs(10), || health(&d, "slow")["Status"] == "unhealthy"));
    let log = health(&d, "slow")["Log"][0].clone();
    assert_eq!((log["ExitCode"].as_i64(), log["Output"].as_str()), (Some(-1), Some("Health check exceeded timeout (300ms)")));
    // A timed-out probe is killed: no sleeps pile up.
    let o = d.berth(&["exec", "slow", "sh", "-c", "ps -o args | grep -c '^sleep 5$' || true"]);
    assert!(o.ok().trim().parse::<i32>().unwrap() <= 2, "{o}");

    let ctx = berth_e2e::dir_with(
        "berth-hc",
        &[("Dockerfile", "FROM busybox\nHEALTHCHECK --interval=200ms --retries=1 CMD [\"false\"]\n")],
    );
    d.berth(&["build", "-q", "-t", "hcimg", &ctx.to_string_lossy()]).ok();
    d.berth(&["run", "-d", "--name", "img", "hcimg", "sleep", "600"]).ok();
    assert!(wait_until(Duration::from_secs(10), || health(&d, "img")["Status"] == "unhealthy"));
    d.berth(&["run", "-d", "--name", "nohc", "--no-healthcheck", "hcimg", "sleep", "600"]).ok();
    std::thread::sleep(Duration::from_millis(600));
    assert!(health(&d, "nohc").is_null(), "{}", health(&d, "nohc"));
    let o = d.docker(&["ps", "--filter", "health=none", "--format", "{{.Names}}"]);
    assert_eq!(o.ok(), "nohc\n");
    // Restarted: starting again.
    d.berth(&["restart", "-t", "0", "img"]).ok();
    assert_eq!(health(&d, "img")["Status"], "starting");
    let _ = std::fs::remove_dir_all(&ctx);
}

#[test]
fn event_filters_match_as_dockerd() {
    let d = Daemon::start();
    let t0 = chrono_now(&d);
    d.berth(&["tag", "busybox", "evimg:v1"]).ok();
    d.berth(&["run", "--name", "ev1", "--label", "team=a", "evimg:v1", "true"]).ok();
    d.berth(&["run", "--name", "ev2", "busybox", "true"]).ok();
    d.berth(&["volume", "create", "evvol"]).ok();
    let t1 = chrono_now(&d) + 1;
    let ev = |filters: &[&str]| -> Vec<String> {
        let mut args = vec!["events", "--since", &*Box::leak(t0.to_string().into_boxed_str()), "--until", &*Box::leak(t1.to_string().into_boxed_str()), "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}"];
        for f in filters {
            args.push("--filter");
            args.push(f);
        }
        d.docker(&args).ok().lines().map(str::to_owned).collect()
    };
    let by_image = ev(&["image=evimg", "event=start"]);
    assert_eq!(by_image, ["container start ev1"]);
    assert_eq!(ev(&["label=team=a", "event=die"]), ["container die ev1"]);
    assert_eq!(ev(&["container=ev2", "event=start"]), ["container start ev2"]);
    // Volume events name the volume by the actor's id (no name attribute).
    assert_eq!(ev(&["type=volume"]), ["volume create <no value>"]);
    assert_eq!(ev(&["volume=evv"]), ["volume create <no value>"]);
    assert!(ev(&["volume=other"]).is_empty());
    assert!(ev(&["type=image", "event=tag"]).iter().any(|l| l.starts_with("image tag")));
    // Relative times are durations before now.
    let recent = d.docker(&["events", "--since", "1m", "--until", "0s", "--filter", "container=ev1", "--filter", "event=create"]);
    assert_eq!(recent.ok().lines().count(), 1, "{recent}");
}

fn chrono_now(_d: &Daemon) -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}
