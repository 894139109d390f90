//! The images a build leaves and the build cache, as Docker users see them:
//! intermediate images hidden from `images` (shown with `-a`), `rmi` pruning the
//! untagged parents, `image prune` taking dangling images only, and `system df` /
//! `builder prune` accounting for the build cache.

use std::fs;
use std::path::{Path, PathBuf};

use berth_e2e::{Cli, Daemon, Output};

fn context(files: &[(&str, &str)]) -> PathBuf {
    berth_e2e::dir_with("berth-buildcache-ctx", files)
}

fn build(d: &Daemon, cli: Cli, ctx: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["build"];
    args.extend_from_slice(extra);
    let c = ctx.to_str().unwrap().to_owned();
    args.push(&c);
    let o = d.cli(cli, &args);
    assert_eq!(o.code, 0, "{o}");
    o
}

fn image_id(d: &Daemon, name: &str) -> String {
    let r = d.api("GET", &format!("/v1.41/images/{name}/json"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["Id"].as_str().unwrap().to_owned()
}

fn ids(d: &Daemon, all: bool) -> Vec<String> {
    let r = d.api(
        "GET",
        &format!("/v1.41/images/json{}", if all { "?all=1" } else { "" }),
    );
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["Id"].as_str().unwrap().to_owned())
        .collect()
}

fn parents(d: &Daemon, id: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = id.to_owned();
    loop {
        let p = d.api("GET", &format!("/v1.41/images/{cur}/json")).json()["Parent"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        if p.is_empty() {
            return out;
        }
        out.push(p.clone());
        cur = p;
    }
}

const DF: &str = "FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy.txt\nENV X=1\n";

#[test]
fn intermediate_images_are_hidden_and_pruned_with_their_image() {
    let d = Daemon::start();
    let ctx = context(&[("Dockerfile", DF), ("a.txt", "one\n")]);
    build(&d, Cli::Docker, &ctx, &["-t", "app"]);
    let app = image_id(&d, "app");
    let busybox = image_id(&d, "busybox");
    let chain = parents(&d, &app);
    assert_eq!(chain.len(), 3, "COPY, RUN, then busybox: {chain:?}");
    assert_eq!(chain[2], busybox);
    // `images` shows the tagged ones only; `-a` the steps too.
    let mut shown = ids(&d, false);
    shown.sort();
    let mut want = vec![app.clone(), busybox.clone()];
    want.sort();
    assert_eq!(shown, want);
    let all = ids(&d, true);
    assert!(chain[..2].iter().all(|p| all.contains(p)), "{all:?}");
    let o = d.docker(&["images", "-a"]);
    assert_eq!(o.stdout.matches("<none>").count(), 4, "{o}");
    // A step image with children cannot go, even forced.
    let o = d.docker(&["rmi", "-f", &chain[0]]);
    assert_ne!(o.code, 0);
    assert!(
        o.stderr.contains(&format!(
            "conflict: unable to delete {} (cannot be forced) - image has dependent child images",
            &chain[0][7..19]
        )),
        "{o}"
    );

    // A changed file: the old image is left dangling; its COPY and RUN steps with it.
    fs::write(ctx.join("a.txt"), "two\n").unwrap();
    build(&d, Cli::Berth, &ctx, &["-t", "app"]);
    let app2 = image_id(&d, "app");
    assert_ne!(app, app2);
    let dangling = d
        .api(
            "GET",
            "/v1.41/images/json?filters=%7B%22dangling%22%3A%5B%22true%22%5D%7D",
        )
        .json();
    assert_eq!(dangling.as_array().unwrap().len(), 1, "{dangling}");
    assert_eq!(dangling[0]["Id"], app.as_str());
    let o = d.docker(&["image", "prune", "-f"]);
    assert_eq!(o.code, 0, "{o}");
    for gone in [&app, &chain[0], &chain[1]] {
        assert!(
            o.stdout.contains(&format!("deleted: {gone}")),
            "{gone}: {o}"
        );
    }
    assert!(!o.stdout.contains("Total reclaimed space: 0B"), "{o}");
    assert!(
        d.api("GET", &format!("/v1.41/images/{busybox}/json"))
            .status
            == 200
    );
    // The new image and its cache are untouched: a rebuild is all cache hits.
    let again = build(&d, Cli::Docker, &ctx, &["-t", "app"]);
    assert_eq!(again.stdout.matches("Using cache").count(), 3, "{again}");
    assert_eq!(image_id(&d, "app"), app2);
    let r = d.cli(Cli::Berth, &["run", "--rm", "app", "cat", "/copy.txt"]);
    assert_eq!(r.stdout, "two\n", "{r}");

    // --no-prune keeps the parents; plain rmi takes the untagged chain.
    let chain2 = parents(&d, &app2);
    d.docker(&["tag", "app", "app:keep"]);
    let o = d.docker(&["rmi", "--no-prune", "app:keep"]);
    assert!(o.stdout.contains("Untagged: app:keep"), "{o}");
    let o = d.docker(&["rmi", "app"]);
    assert_eq!(o.code, 0, "{o}");
    for gone in [&app2, &chain2[0], &chain2[1]] {
        assert!(
            o.stdout.contains(&format!("Deleted: {gone}")),
            "{gone}: {o}"
        );
    }
    assert_eq!(ids(&d, true), vec![busybox.clone()], "only busybox is left");
    fs::remove_dir_all(&ctx).ok();
}

#[test]
fn images_in_use_or_tagged_are_never_pruned() {
    let d = Daemon::start();
    let ctx = context(&[("Dockerfile", DF), ("a.txt", "one\n")]);
    build(&d, Cli::Berth, &ctx, &["-t", "app"]);
    let app = image_id(&d, "app");
    // A container of an untagged image keeps it (and its parents).
    let step = parents(&d, &app)[0].clone();
    let c = d.docker(&["create", &step, "true"]);
    assert_eq!(c.code, 0, "{c}");
    d.docker(&["rmi", "app"]);
    let o = d.docker(&["image", "prune", "-af"]);
    assert_eq!(o.code, 0, "{o}");
    let left = ids(&d, true);
    assert!(left.contains(&step), "{left:?}");
    assert!(!left.contains(&app), "{left:?}");
    let busybox = image_id(&d, "busybox");
    assert!(
        left.contains(&busybox),
        "busybox is the step's ancestor: {left:?}"
    );
    fs::remove_dir_all(&ctx).ok();
}

#[test]
fn system_df_and_builder_prune_account_for_the_build_cache() {
    let d = Daemon::start();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=cache,target=/cache dd if=/dev/zero of=/cache/blob bs=1024 count=512 2>/dev/null\nRUN head -c 262144 /dev/urandom > /big\nCMD [\"true\"]\n",
    )]);
    build(&d, Cli::Docker, &ctx, &["-t", "cached"]);
    // The old image of a rebuild (--no-cache) is what only the cache keeps.
    build(&d, Cli::Berth, &ctx, &["--no-cache", "-t", "cached"]);
    let df = d.api("GET", "/v1.41/system/df").json();
    let cache = df["BuildCache"].as_array().unwrap().clone();
    let mount = cache
        .iter()
        .find(|r| r["Type"] == "exec.cachemount")
        .unwrap_or_else(|| panic!("{df}"));
    assert!(mount["Size"].as_i64().unwrap() >= 512 * 1024, "{mount}");
    assert_eq!(mount["Description"], "cached mount /cache");
    assert_eq!(mount["InUse"], false);
    let step = cache
        .iter()
        .find(|r| {
            r["Type"] == "regular"
                && r["Shared"] == false
                && r["Size"].as_i64().unwrap() >= 256 * 1024
        })
        .unwrap_or_else(|| panic!("the old build's RUN layer: {df}"));
    assert!(
        step["Description"]
            .as_str()
            .unwrap()
            .contains("head -c 262144 /dev/urandom > /big"),
        "{step}"
    );
    assert!(
        df["BuilderSize"].as_i64().unwrap() >= (512 + 256) * 1024,
        "{df}"
    );
    for cli in berth_e2e::Cli::ALL {
        let o = d.cli(cli, &["system", "df"]);
        let line = o
            .stdout
            .lines()
            .find(|l| l.starts_with("Build Cache"))
            .unwrap_or_else(|| panic!("{o}"));
        assert!(!line.contains(" 0B "), "{}: {line}", cli.name());
    }
    // Only images the cache keeps go; the tagged image stays.
    let tagged = image_id(&d, "cached");
    let o = d.docker(&["builder", "prune", "-f"]);
    assert_eq!(o.code, 0, "{o}");
    assert!(o.stdout.contains("Deleted build cache objects:"), "{o}");
    let total = o
        .stdout
        .lines()
        .find(|l| l.starts_with("Total reclaimed space:"))
        .unwrap_or_else(|| panic!("{o}"));
    assert!(total.ends_with("MB") || total.ends_with("kB"), "{total}");
    assert_eq!(image_id(&d, "cached"), tagged);
    let df = d.api("GET", "/v1.41/system/df").json();
    assert_eq!(df["BuilderSize"], 0, "{df}");
    assert!(
        !df["BuildCache"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["Type"] == "exec.cachemount"),
        "{df}"
    );
    // The cache is gone: the next build reruns every step.
    let again = build(&d, Cli::Berth, &ctx, &["-t", "cached"]);
    assert_eq!(again.stdout.matches("Using cache").count(), 0, "{again}");
    let o = d.cli(
        Cli::Berth,
        &["builder", "prune", "-f", "--filter", "until=24h"],
    );
    assert_eq!(o.code, 0, "{o}");
    assert!(
        o.stdout.contains("Total reclaimed space: 0B"),
        "nothing is a day old: {o}"
    );
    // `label` (which `docker system prune --filter label=x` sends to every prune)
    // matches no cache record, as with dockerd; an unknown filter is refused.
    let o = d.api(
        "POST",
        "/v1.41/build/prune?filters=%7B%22label%22%3A%5B%22x%22%5D%7D",
    );
    assert_eq!((o.status, o.json()), (200, serde_json::json!({"CachesDeleted": null, "SpaceReclaimed": 0})), "{}", o.text());
    let o = d.docker(&["system", "prune", "-f", "--filter", "label=x"]);
    assert!(o.success() && o.stdout.contains("Total reclaimed space: 0B"), "{o}");
    let o = d.api(
        "POST",
        "/v1.41/build/prune?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D",
    );
    assert_eq!(o.status, 400, "{}", o.text());
    fs::remove_dir_all(&ctx).ok();
}
