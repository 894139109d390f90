//! `berth compose`: multi-container applications from Compose files. The project is
//! loaded by berth-compose (as Docker Compose v2 loads it) and planned by its `plan`
//! module (names, labels, create bodies, start order); this module sends the
//! requests and shows progress the way Compose does on a non-terminal (one line per
//! resource state on stderr). Projects are found by their `com.docker.compose.*`
//! labels, so `docker compose` and docker-compose 1.29 see the same projects.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use berth_compose::plan::{self, Context, ContainerOptions};
use clap::{Args, Subcommand};
use http::Method;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::client::{api_status, empty, json_body, next_chunk, Client, Query};

#[derive(Args, Debug)]
pub struct ComposeArgs {
    /// Compose configuration files
    #[arg(short = 'f', long = "file")]
    pub file: Vec<String>,
    /// Project name
    #[arg(short = 'p', long = "project-name")]
    pub project_name: Option<String>,
    /// Specify an alternate working directory (default: the path of the first Compose file)
    #[arg(long = "project-directory")]
    pub project_directory: Option<String>,
    /// Specify an alternate environment file
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    /// Specify a profile to enable
    #[arg(long = "profile")]
    pub profile: Vec<String>,
    /// Control when to print ANSI control characters ("never"|"always"|"auto")
    #[arg(long, default_value = "auto")]
    pub ansi: String,
    /// Set type of progress output (auto, tty, plain, json, quiet)
    #[arg(long)]
    pub progress: Option<String>,
    #[command(subcommand)]
    pub cmd: ComposeCmd,
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum ComposeCmd {
    /// Create and start containers
    Up(UpArgs),
    /// Creates containers for a service
    Create(UpArgs),
    /// Stop and remove containers, networks
    Down(DownArgs),
    /// List containers
    Ps(PsArgs),
    /// View output from containers
    Logs(LogsArgs),
    /// Parse, resolve and render compose file in canonical format
    Config(ConfigArgs),
    /// Build or rebuild services
    Build(BuildArgs),
    /// Pull service images
    Pull(ServicesArgs),
    /// Push service images
    Push(ServicesArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Run a one-off command on a service
    Run(RunArgs),
    /// Start services
    Start(ServicesArgs),
    /// Stop services
    Stop(StopArgs),
    /// Restart service containers
    Restart(StopArgs),
    /// Force stop service containers
    Kill(KillArgs),
    /// Removes stopped service containers
    Rm(RmArgs),
    /// Pause services
    Pause(ServicesArgs),
    /// Unpause services
    Unpause(ServicesArgs),
    /// List running compose projects
    Ls(LsArgs),
    /// Display the running processes
    Top(ServicesArgs),
    /// List images used by the created containers
    Images(ImagesArgs),
    /// Print the public port for a port binding
    Port(PortArgs),
    /// Block until containers of all (or specified) services stop.
    Wait(ServicesArgs),
    /// Show the Docker Compose version information
    Version(VersionArgs),
    /// Copy files/folders between a service container and the local filesystem
    Cp(CpArgs),
    /// Receive real time events from containers
    Events(EventsArgs),
    /// Watch build context for service and rebuild/refresh containers when files are updated
    Watch(WatchArgs),
}

#[derive(Args, Debug, Default)]
pub struct WatchArgs {
    /// Do not build and start services before watching
    #[arg(long = "no-up")]
    pub no_up: bool,
    /// hide build output
    #[arg(long)]
    pub quiet: bool,
    pub services: Vec<String>,
}

/// `cp [OPTIONS] SERVICE:SRC_PATH DEST_PATH|-` or `cp [OPTIONS] SRC_PATH|- SERVICE:DEST_PATH`.
#[derive(Args, Debug, Default)]
pub struct CpArgs {
    /// Index of the container if service has multiple replicas (copying into a
    /// service without it copies into every replica)
    #[arg(long)]
    pub index: Option<usize>,
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    pub src: String,
    pub dst: String,
}

#[derive(Args, Debug, Default)]
pub struct EventsArgs {
    /// Output events as a stream of json objects
    #[arg(long)]
    pub json: bool,
    pub services: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct ServicesArgs {
    /// Don't print anything to STDOUT
    #[arg(short = 'q', long)]
    pub quiet: bool,
    pub services: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct UpArgs {
    /// Detached mode: Run containers in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Build images before starting containers
    #[arg(long)]
    pub build: bool,
    /// Don't build an image, even if it's policy
    #[arg(long = "no-build")]
    pub no_build: bool,
    /// Pull image before running ("always"|"missing"|"never")
    #[arg(long)]
    pub pull: Option<String>,
    /// Recreate containers even if their configuration and image haven't changed
    #[arg(long = "force-recreate")]
    pub force_recreate: bool,
    /// If containers already exist, don't recreate them
    #[arg(long = "no-recreate")]
    pub no_recreate: bool,
    /// Don't start linked services
    #[arg(long = "no-deps")]
    pub no_deps: bool,
    /// Don't start the services after creating them
    #[arg(long = "no-start")]
    pub no_start: bool,
    /// Scale SERVICE to NUM instances
    #[arg(long)]
    pub scale: Vec<String>,
    /// Wait for services to be running|healthy. Implies detached mode.
    #[arg(long)]
    pub wait: bool,
    /// Watch source code and rebuild/refresh containers when files are updated.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Maximum duration in seconds to wait for the project to be running|healthy
    #[arg(long = "wait-timeout")]
    pub wait_timeout: Option<u64>,
    /// Remove containers for services not defined in the Compose file
    #[arg(long = "remove-orphans")]
    pub remove_orphans: bool,
    /// Stops all containers if any container was stopped
    #[arg(long = "abort-on-container-exit")]
    pub abort_on_container_exit: bool,
    /// Return the exit code of the selected service container
    #[arg(long = "exit-code-from")]
    pub exit_code_from: Option<String>,
    /// Use this timeout in seconds for container shutdown
    #[arg(short = 't', long)]
    pub timeout: Option<i64>,
    /// Produce monochrome output
    #[arg(long = "no-color")]
    pub no_color: bool,
    /// Don't print prefix in logs
    #[arg(long = "no-log-prefix")]
    pub no_log_prefix: bool,
    pub services: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct DownArgs {
    /// Remove named volumes declared in the "volumes" section and anonymous volumes
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Remove images used by services ("local"|"all")
    #[arg(long)]
    pub rmi: Option<String>,
    /// Remove containers for services not defined in the Compose file
    #[arg(long = "remove-orphans")]
    pub remove_orphans: bool,
    /// Specify a shutdown timeout in seconds
    #[arg(short = 't', long)]
    pub timeout: Option<i64>,
    pub services: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct PsArgs {
    /// Show all stopped containers (including those created by the run command)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Display services
    #[arg(long)]
    pub services: bool,
    /// Format the output: table, json, or a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Filter services by status (paused|restarting|removing|running|dead|created|exited)
    #[arg(long)]
    pub status: Vec<String>,
    /// Filter services by a property (supported filters: status)
    #[arg(long)]
    pub filter: Vec<String>,
    #[arg(value_name = "SERVICE")]
    pub names: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs for each container
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Show logs since timestamp or relative
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp or relative
    #[arg(long)]
    pub until: Option<String>,
    /// Produce monochrome output
    #[arg(long = "no-color")]
    pub no_color: bool,
    /// Don't print prefix in logs
    #[arg(long = "no-log-prefix")]
    pub no_log_prefix: bool,
    /// index of the container if service has multiple replicas
    #[arg(long)]
    pub index: Option<usize>,
    pub services: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct ConfigArgs {
    /// Format the output. Values: [yaml | json]
    #[arg(long, default_value = "yaml")]
    pub format: String,
    /// Only validate the configuration, don't print anything
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Print the service names, one per line
    #[arg(long)]
    pub services: bool,
    /// Print the volume names, one per line
    #[arg(long)]
    pub volumes: bool,
    /// Print the network names, one per line
    #[arg(long)]
    pub networks: bool,
    /// Print the image names, one per line
    #[arg(long)]
    pub images: bool,
    /// Print the profile names, one per line
    #[arg(long)]
    pub profiles: bool,
    /// Don't interpolate environment variables
    #[arg(long = "no-interpolate")]
    pub no_interpolate: bool,
    /// Save to file (default to stdout)
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    pub services_list: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct BuildArgs {
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pub pull: bool,
    /// Don't print anything to STDOUT
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Set build-time variables for services
    #[arg(long = "build-arg")]
    pub build_arg: Vec<String>,
    pub services: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct ExecArgs {
    /// Detached mode: Run command in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Disable pseudo-TTY allocation. By default `docker compose exec` allocates a TTY.
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Run the command as this user
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Path to workdir directory for this command
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Give extended privileges to the process
    #[arg(long)]
    pub privileged: bool,
    /// Index of the container if service has multiple replicas
    #[arg(long, default_value_t = 1)]
    pub index: usize,
    #[arg(required = true, num_args = 2.., trailing_var_arg = true, allow_hyphen_values = true, value_name = "SERVICE COMMAND [ARGS...]")]
    pub args: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Override the entrypoint of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Don't start linked services
    #[arg(long = "no-deps")]
    pub no_deps: bool,
    /// Run command with all service's ports enabled and mapped to the host
    #[arg(long = "service-ports")]
    pub service_ports: bool,
    /// Disable pseudo-TTY allocation (default: auto-detected)
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    /// Run as specified username or uid
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true, value_name = "SERVICE [COMMAND] [ARGS...]")]
    pub args: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct StopArgs {
    /// Specify a shutdown timeout in seconds
    #[arg(short = 't', long)]
    pub timeout: Option<i64>,
    pub services: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct KillArgs {
    /// SIGNAL to send to the container
    #[arg(short = 's', long, default_value = "SIGKILL")]
    pub signal: String,
    /// Remove containers for services not defined in the Compose file
    #[arg(long = "remove-orphans")]
    pub remove_orphans: bool,
    pub services: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct RmArgs {
    /// Don't ask to confirm removal
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Stop the containers, if required, before removing
    #[arg(short = 's', long)]
    pub stop: bool,
    /// Remove any anonymous volumes attached to containers
    #[arg(short = 'v', long)]
    pub volumes: bool,
    pub services: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct LsArgs {
    /// Show all stopped Compose projects
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display project names
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Format the output. Values: [table | json]
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Filter output based on conditions provided
    #[arg(long)]
    pub filter: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct ImagesArgs {
    /// Only display IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Format the output. Values: [table | json]
    #[arg(long, default_value = "table")]
    pub format: String,
    pub services: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct PortArgs {
    /// tcp or udp
    #[arg(long, default_value = "tcp")]
    pub protocol: String,
    /// Index of the container if service has multiple replicas
    #[arg(long, default_value_t = 1)]
    pub index: usize,
    pub service: String,
    pub private_port: u16,
}

#[derive(Args, Debug, Default)]
pub struct VersionArgs {
    /// Shows only Compose's version number
    #[arg(long)]
    pub short: bool,
    /// Format the output. Values: [pretty | json]
    #[arg(short = 'f', long)]
    pub format: Option<String>,
}

/// A loaded project and what its requests are labelled with.
struct Loaded {
    json: Value,
    ctx: Context,
    /// The project's environment (the process's and `.env`'s).
    env: std::collections::BTreeMap<String, String>,
}

fn load(a: &ComposeArgs, interpolate: bool) -> Result<Loaded> {
    let cwd = std::env::current_dir()?;
    let opts = berth_compose::Options {
        working_dir: cwd.clone(),
        project_directory: a.project_directory.as_ref().map(|d| cwd.join(d)),
        files: a.file.iter().map(|f| if f == "-" { f.into() } else { cwd.join(f) }).collect(),
        project_name: a.project_name.clone(),
        env: std::env::vars().collect(),
        env_files: a.env_file.iter().map(|f| cwd.join(f)).collect(),
        profiles: a.profile.clone(),
        interpolate,
        resolve_paths: true,
    };
    let project = berth_compose::load(&opts)?;
    // The model as values: `to_json` is `config`'s output, which escapes `$` as `$$`;
    // the containers get the strings themselves (`$$HOME` in the file is `$HOME`).
    let json: Value = serde_json::to_value(&project)?;
    let ctx = Context {
        project: project.name.clone(),
        working_dir: project.working_dir.to_string_lossy().into_owned(),
        config_files: project.compose_files.iter().map(|f| f.to_string_lossy().into_owned()).collect(),
    };
    Ok(Loaded { json, ctx, env: project.environment.clone() })
}

/// A service's inline and environment secrets and configs (worked out before
/// anything is created, so a missing variable stops `up` first).
fn injected(p: &Loaded, service: &str) -> Result<Vec<plan::InjectedFile>> {
    Ok(plan::secrets_and_configs(&p.json, service, &|k| p.env.get(k).cloned())?.1)
}

/// Copy a service's inline and environment secrets and configs into a created
/// container, as Compose does before starting it.
async fn inject_files(c: &Client, files: &[plan::InjectedFile], cid: &str) -> Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    let mut tar = tar::Builder::new(Vec::new());
    let mut dirs = BTreeSet::new();
    for f in files {
        let rel = f.target.trim_start_matches('/');
        let mut parent = std::path::Path::new(rel).parent();
        let mut chain = Vec::new();
        while let Some(d) = parent.filter(|d| !d.as_os_str().is_empty()) {
            chain.push(d.to_path_buf());
            parent = d.parent();
        }
        for d in chain.into_iter().rev() {
            if dirs.insert(d.clone()) {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                tar.append_data(&mut h, &d, std::io::empty())?;
            }
        }
        let mut h = tar::Header::new_gnu();
        h.set_mode(f.mode);
        h.set_uid(f.uid);
        h.set_gid(f.gid);
        h.set_size(f.content.len() as u64);
        tar.append_data(&mut h, rel, &f.content[..])?;
    }
    let body = tar.into_inner()?;
    c.request(Method::PUT, &format!("/containers/{cid}/archive"), &Query::new().add("path", "/"), &[("Content-Type", "application/x-tar".to_owned())], crate::client::full(body))
        .await?;
    Ok(())
}

/// A resource's new state, shown as `--progress` says (see `compose_progress`).
fn event(kind: &str, name: &str, state: &str) {
    super::compose_progress::event(kind, name, state);
}

fn project_filter(project: &str, extra: &[String]) -> Query {
    let mut labels = vec![format!("{}={project}", plan::LABEL_PROJECT)];
    labels.extend(extra.iter().cloned());
    Query::new().add("filters", json!({ "label": labels }).to_string())
}

/// The project's containers (all states), optionally of some services, one-off
/// `run` containers excluded unless asked for.
async fn containers(c: &Client, project: &str, services: &[String], oneoff: bool) -> Result<Vec<Value>> {
    let mut extra = Vec::new();
    if !oneoff {
        extra.push(format!("{}=False", plan::LABEL_ONEOFF));
    }
    let q = project_filter(project, &extra).add("all", 1);
    let list: Vec<Value> = c.get_json("/containers/json", &q).await?;
    let mut list: Vec<Value> = list
        .into_iter()
        .filter(|x| services.is_empty() || services.iter().any(|s| x["Labels"][plan::LABEL_SERVICE] == json!(s)))
        .collect();
    list.sort_by_key(|x| (label(x, plan::LABEL_SERVICE), label(x, plan::LABEL_NUMBER).parse::<u64>().unwrap_or(0)));
    Ok(list)
}

fn label(x: &Value, k: &str) -> String {
    x["Labels"][k].as_str().unwrap_or_default().to_owned()
}

fn cname(x: &Value) -> String {
    x["Names"][0].as_str().unwrap_or_default().trim_start_matches('/').to_owned()
}

fn id(x: &Value) -> String {
    x["Id"].as_str().unwrap_or_default().to_owned()
}

pub async fn compose(c: Option<&Client>, a: ComposeArgs) -> Result<i32> {
    super::compose_progress::init(super::compose_progress::mode(a.progress.as_deref(), &a.ansi)?);
    let r = compose_cmd(c, a).await;
    super::compose_progress::suspend();
    r
}

async fn compose_cmd(c: Option<&Client>, a: ComposeArgs) -> Result<i32> {
    // Commands that need no daemon.
    match &a.cmd {
        ComposeCmd::Config(o) => return config(&a, o),
        ComposeCmd::Version(v) => return version(v),
        _ => {}
    }
    let c = c.ok_or_else(|| anyhow!("no daemon connection"))?;
    match &a.cmd {
        ComposeCmd::Ls(o) => return ls(c, o).await,
        ComposeCmd::Config(_) | ComposeCmd::Version(_) => unreachable!(),
        _ => {}
    }
    let p = load(&a, true)?;
    match &a.cmd {
        ComposeCmd::Up(o) if o.watch => {
            // up (attached, with its logs, or detached), and the watch beside it
            let w = WatchArgs { no_up: true, services: o.services.clone(), ..Default::default() };
            if o.detach || o.wait {
                let code = up(c, &p, o, true).await?;
                if code != 0 {
                    return Ok(code);
                }
                watch(c, &p, &w).await
            } else {
                let (a, b) = tokio::join!(up(c, &p, o, true), watch(c, &p, &w));
                b?;
                a
            }
        }
        ComposeCmd::Up(o) => up(c, &p, o, true).await,
        ComposeCmd::Create(o) => up(c, &p, o, false).await,
        ComposeCmd::Down(o) => down(c, &p, o).await,
        ComposeCmd::Ps(o) => ps(c, &p, o).await,
        ComposeCmd::Logs(o) => logs(c, &p, o).await,
        ComposeCmd::Build(o) => {
            let services = built_services(&p, &o.services)?;
            for s in services {
                build(c, &p, &s, o).await?;
            }
            Ok(0)
        }
        ComposeCmd::Pull(o) => {
            for s in selected(&p, &o.services)? {
                let svc = &p.json["services"][&s];
                if let Some(img) = svc["image"].as_str() {
                    if !o.quiet {
                        event("Image", img, "Pulling");
                    }
                    super::image::pull_image(c, img, true, true).await?;
                    if !o.quiet {
                        event("Image", img, "Pulled");
                    }
                }
            }
            Ok(0)
        }
        ComposeCmd::Push(o) => {
            for s in selected(&p, &o.services)? {
                let img = plan::image_name(&p.ctx, &s, &p.json["services"][&s]);
                let args = crate::cli::PushArgs { quiet: false, image: img };
                super::image::push(c, args).await?;
            }
            Ok(0)
        }
        ComposeCmd::Exec(o) => exec(c, &p, o).await,
        ComposeCmd::Cp(o) => cp(c, &p, o).await,
        ComposeCmd::Events(o) => events(c, &p, o).await,
        ComposeCmd::Watch(o) => watch(c, &p, o).await,
        ComposeCmd::Run(o) => run(c, &p, o).await,
        ComposeCmd::Start(o) => {
            for level in plan::start_order(&p.json, &o.services, true)? {
                for s in level {
                    for x in containers(c, &p.ctx.project, &[s], false).await? {
                        event("Container", &cname(&x), "Starting");
                        start(c, &id(&x)).await?;
                        event("Container", &cname(&x), "Started");
                    }
                }
            }
            Ok(0)
        }
        ComposeCmd::Stop(o) => stop_all(c, &p, &o.services, o.timeout, false).await,
        ComposeCmd::Restart(o) => {
            for x in containers(c, &p.ctx.project, &o.services, false).await? {
                event("Container", &cname(&x), "Restarting");
                let q = Query::new().opt("t", o.timeout);
                c.request(Method::POST, &format!("/containers/{}/restart", id(&x)), &q, &[], empty()).await?;
                event("Container", &cname(&x), "Started");
            }
            Ok(0)
        }
        ComposeCmd::Kill(o) => {
            for x in containers(c, &p.ctx.project, &o.services, false).await? {
                if x["State"] == "running" {
                    event("Container", &cname(&x), "Killing");
                    c.kill_container(&id(&x), &o.signal).await?;
                    event("Container", &cname(&x), "Killed");
                }
            }
            Ok(0)
        }
        ComposeCmd::Rm(o) => {
            if o.stop {
                stop_all(c, &p, &o.services, None, false).await?;
            }
            let stopped: Vec<Value> =
                containers(c, &p.ctx.project, &o.services, true).await?.into_iter().filter(|x| x["State"] != "running").collect();
            if stopped.is_empty() {
                eprintln!("No stopped containers");
                return Ok(0);
            }
            for x in stopped {
                remove(c, &x, o.volumes).await?;
            }
            Ok(0)
        }
        ComposeCmd::Pause(o) | ComposeCmd::Unpause(o) => {
            let (verb, done) = if matches!(a.cmd, ComposeCmd::Pause(_)) { ("pause", "Paused") } else { ("unpause", "Unpaused") };
            for x in containers(c, &p.ctx.project, &o.services, false).await? {
                c.request(Method::POST, &format!("/containers/{}/{verb}", id(&x)), &Query::new(), &[], empty()).await?;
                event("Container", &cname(&x), done);
            }
            Ok(0)
        }
        ComposeCmd::Top(o) => {
            for x in containers(c, &p.ctx.project, &o.services, false).await? {
                if x["State"] != "running" {
                    continue;
                }
                let top: Value = c.get_json(&format!("/containers/{}/top", id(&x)), &Query::new()).await?;
                println!("{}", cname(&x));
                let titles: Vec<String> = top["Titles"].as_array().into_iter().flatten().map(|t| t.as_str().unwrap_or("").to_owned()).collect();
                let rows: Vec<Vec<String>> = top["Processes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| r.as_array().into_iter().flatten().map(|v| v.as_str().unwrap_or("").to_owned()).collect())
                    .collect();
                print!("{}", crate::format::table(&[vec![titles], rows].concat()));
                println!();
            }
            Ok(0)
        }
        ComposeCmd::Images(o) => images(c, &p, o).await,
        ComposeCmd::Port(o) => {
            let list = containers(c, &p.ctx.project, std::slice::from_ref(&o.service), false).await?;
            let x = list
                .iter()
                .find(|x| label(x, plan::LABEL_NUMBER) == o.index.to_string())
                .ok_or_else(|| anyhow!("service \"{}\" is not running container #{}", o.service, o.index))?;
            for port in x["Ports"].as_array().into_iter().flatten() {
                if port["PrivatePort"] == json!(o.private_port) && port["Type"] == json!(o.protocol) && port["PublicPort"].is_number() {
                    println!("{}:{}", port["IP"].as_str().unwrap_or("0.0.0.0"), port["PublicPort"]);
                    return Ok(0);
                }
            }
            bail!("no port {}/{} for container {}", o.private_port, o.protocol, cname(x))
        }
        ComposeCmd::Wait(o) => {
            let mut code = 0;
            for x in containers(c, &p.ctx.project, &o.services, false).await? {
                let r: Value = c.post_json(&format!("/containers/{}/wait", id(&x)), &Query::new(), None).await?;
                let exit = r["StatusCode"].as_i64().unwrap_or(0);
                if code == 0 {
                    code = exit as i32;
                }
            }
            Ok(code)
        }
        ComposeCmd::Ls(_) | ComposeCmd::Config(_) | ComposeCmd::Version(_) => unreachable!(),
    }
}

fn selected(p: &Loaded, services: &[String]) -> Result<Vec<String>> {
    let all = plan::services(&p.json);
    for s in services {
        if !all.contains(s) {
            bail!("no such service: {s}");
        }
    }
    Ok(if services.is_empty() { all } else { services.to_vec() })
}

fn built_services(p: &Loaded, services: &[String]) -> Result<Vec<String>> {
    Ok(selected(p, services)?.into_iter().filter(|s| p.json["services"][s]["build"].is_object()).collect())
}

fn version(v: &VersionArgs) -> Result<i32> {
    if v.short {
        println!("{}", plan::COMPOSE_VERSION);
    } else if v.format.as_deref() == Some("json") {
        println!("{}", json!({ "version": format!("v{}", plan::COMPOSE_VERSION) }));
    } else {
        println!("berth compose version v{} (Compose Specification, as Docker Compose v{})", env!("CARGO_PKG_VERSION"), plan::COMPOSE_VERSION);
    }
    Ok(0)
}

/// Compose's exit code for a configuration error.
const CONFIG_ERROR: i32 = 15;

fn config(a: &ComposeArgs, o: &ConfigArgs) -> Result<i32> {
    let p = match load(a, !o.no_interpolate) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e:#}");
            return Ok(CONFIG_ERROR);
        }
    };
    let list = |v: &Value| v.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
    let out = if o.services {
        list(&p.json["services"]).join("\n") + "\n"
    } else if o.volumes {
        list(&p.json["volumes"]).join("\n") + "\n"
    } else if o.networks {
        list(&p.json["networks"]).join("\n") + "\n"
    } else if o.images {
        plan::services(&p.json).iter().map(|s| plan::image_name(&p.ctx, s, &p.json["services"][s])).collect::<Vec<_>>().join("\n") + "\n"
    } else if o.profiles {
        let mut set = BTreeSet::new();
        for s in p.json["services"].as_object().into_iter().flatten() {
            for pr in s.1["profiles"].as_array().into_iter().flatten() {
                set.insert(pr.as_str().unwrap_or_default().to_owned());
            }
        }
        set.into_iter().collect::<Vec<_>>().join("\n") + "\n"
    } else {
        match o.format.as_str() {
            "json" => serde_json::to_string_pretty(&p.json)? + "\n",
            "yaml" => to_yaml(&p.json),
            other => bail!("unsupported format {other:?}"),
        }
    };
    if o.quiet {
        return Ok(0);
    }
    match &o.output {
        Some(f) => std::fs::write(f, out).with_context(|| format!("write {f}"))?,
        None => print!("{out}"),
    }
    Ok(0)
}

/// A YAML rendering of a JSON value (block style, strings quoted when YAML would
/// read them as something else).
pub fn to_yaml(v: &Value) -> String {
    fn scalar(s: &str) -> String {
        let first = s.chars().next().unwrap_or(' ');
        let second = s.chars().nth(1).unwrap_or(' ');
        // `-`, `?` and `:` start a plain scalar only when a non-space follows.
        let indicator = "?:-".contains(first) && second == ' ' || s.len() == 1 && "?:-".contains(first);
        let plain = !s.is_empty()
            && !indicator
            && !s.starts_with(|c: char| ",[]{}#&*!|>'\"%@` ".contains(c))
            && !s.ends_with(' ')
            && !s.contains(": ")
            && !s.contains(" #")
            && !s.contains('\n')
            && !matches!(s.to_ascii_lowercase().as_str(), "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "~" | "y" | "n")
            && s.parse::<f64>().is_err();
        if plain {
            s.to_owned()
        } else {
            serde_json::to_string(s).unwrap_or_default()
        }
    }
    fn walk(v: &Value, indent: usize, out: &mut String) {
        let pad = "  ".repeat(indent);
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    match x {
                        Value::Object(inner) if !inner.is_empty() => {
                            out.push_str(&format!("{pad}{}:\n", scalar(k)));
                            walk(x, indent + 1, out);
                        }
                        Value::Array(a) if !a.is_empty() => {
                            out.push_str(&format!("{pad}{}:\n", scalar(k)));
                            walk(x, indent + 1, out);
                        }
                        _ => out.push_str(&format!("{pad}{}: {}\n", scalar(k), leaf(x))),
                    }
                }
            }
            Value::Array(a) => {
                for x in a {
                    match x {
                        Value::Object(inner) if !inner.is_empty() => {
                            let mut sub = String::new();
                            walk(x, indent + 1, &mut sub);
                            let sub = sub.trim_start().to_owned();
                            out.push_str(&format!("{pad}- {sub}"));
                        }
                        Value::Array(inner) if !inner.is_empty() => {
                            out.push_str(&format!("{pad}-\n"));
                            walk(x, indent + 1, out);
                        }
                        _ => out.push_str(&format!("{pad}- {}\n", leaf(x))),
                    }
                }
            }
            other => out.push_str(&format!("{pad}{}\n", leaf(other))),
        }
    }
    fn leaf(v: &Value) -> String {
        match v {
            Value::Null => "null".into(),
            Value::String(s) => scalar(s),
            Value::Object(_) => "{}".into(),
            Value::Array(_) => "[]".into(),
            other => other.to_string(),
        }
    }
    let mut out = String::new();
    walk(v, 0, &mut out);
    out
}

async fn ensure_networks(c: &Client, p: &Loaded, services: &[String]) -> Result<()> {
    let mut used: BTreeSet<String> = BTreeSet::new();
    for s in services {
        let svc = &p.json["services"][s];
        if svc["network_mode"].is_string() {
            continue;
        }
        for (k, _) in plan::service_networks(svc) {
            used.insert(k);
        }
    }
    for key in used {
        let n = &p.json["networks"][&key];
        let name = plan::network_name(&p.json, &key);
        match c.get_json::<Value>(&format!("/networks/{name}"), &Query::new()).await {
            Ok(existing) => {
                if !plan::is_external(n) && existing["Labels"][plan::LABEL_PROJECT].as_str().is_some_and(|l| l != p.ctx.project) {
                    eprintln!("WARN[0000] a network with name {name} exists but was not created for project {:?}.", p.ctx.project);
                }
            }
            Err(e) if api_status(&e) == Some(404) => {
                if plan::is_external(n) {
                    bail!("network {name} declared as external, but could not be found");
                }
                event("Network", &name, "Creating");
                let body = plan::network_body(&p.ctx, &p.json, &key);
                c.post_json::<Value>("/networks/create", &Query::new(), Some(json_body(&body)?)).await?;
                event("Network", &name, "Created");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn ensure_volumes(c: &Client, p: &Loaded, services: &[String]) -> Result<()> {
    let mut used: BTreeSet<String> = BTreeSet::new();
    for s in services {
        for v in p.json["services"][s]["volumes"].as_array().into_iter().flatten() {
            if v["type"] == "volume" {
                if let Some(src) = v["source"].as_str().filter(|s| p.json["volumes"].get(*s).is_some()) {
                    used.insert(src.to_owned());
                }
            }
        }
    }
    for key in used {
        let v = &p.json["volumes"][&key];
        let name = plan::volume_name(&p.json, &key);
        match c.get_json::<Value>(&format!("/volumes/{name}"), &Query::new()).await {
            Ok(_) => {}
            Err(e) if api_status(&e) == Some(404) => {
                if plan::is_external(v) {
                    bail!("external volume \"{name}\" not found");
                }
                event("Volume", &name, "Creating");
                let body = plan::volume_body(&p.ctx, &p.json, &key);
                c.post_json::<Value>("/volumes/create", &Query::new(), Some(json_body(&body)?)).await?;
                event("Volume", &name, "Created");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn image_exists(c: &Client, image: &str) -> Result<bool> {
    match c.get_json::<Value>(&format!("/images/{image}/json"), &Query::new()).await {
        Ok(_) => Ok(true),
        Err(e) if api_status(&e) == Some(404) => Ok(false),
        Err(e) => Err(e),
    }
}

async fn build(c: &Client, p: &Loaded, service: &str, o: &BuildArgs) -> Result<()> {
    let svc = &p.json["services"][service];
    let image = plan::image_name(&p.ctx, service, svc);
    let version: Value = c.get_json("/version", &Query::new()).await?;
    let host_platform = format!("{}/{}", version["Os"].as_str().unwrap_or("linux"), version["Arch"].as_str().unwrap_or("amd64"));
    let b = berth_compose::build::build_plan(&p.json, service, &host_platform)?;
    // An inline Dockerfile and secrets from the project's environment are written
    // to a private directory beside (not into) the context for the build.
    let scratch = std::env::temp_dir().join(format!("berth-compose-{}-{service}", std::process::id()));
    let made = b.inline.is_some() || b.secrets.values().any(|s| matches!(s, berth_compose::build::SecretSource::Env(_)));
    if made {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&scratch)?;
    }
    let inline = match &b.inline {
        Some(text) => {
            std::fs::write(scratch.join("Dockerfile"), text)?;
            Some(scratch.clone())
        }
        None => None,
    };
    let file = match (&inline, &b.dockerfile) {
        (Some(dir), _) => Some(dir.join("Dockerfile").display().to_string()),
        (None, Some(f)) if f.starts_with('/') => Some(f.clone()),
        (None, Some(f)) => Some(format!("{}/{f}", b.context)),
        (None, None) => None,
    };
    let mut args = crate::cli::BuildArgs {
        context: b.context.clone(),
        tag: std::iter::once(image.clone()).chain(b.tags.iter().cloned()).collect(),
        file,
        target: b.target.clone(),
        no_cache: o.no_cache || b.no_cache,
        pull: o.pull || b.pull,
        quiet: true,
        network: b.network.clone(),
        rm: true,
        progress: "plain".into(),
        build_arg: b.args.iter().chain(&o.build_arg).cloned().collect(),
        label: b.labels.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        cache_from: b.cache_from.clone(),
        shm_size: b.shm_size.clone(),
        add_host: b.extra_hosts.clone(),
        ulimit: b.ulimits.clone(),
        ..Default::default()
    };
    for (id, from) in &b.secrets {
        let src = match from {
            berth_compose::build::SecretSource::File(f) => f.clone(),
            berth_compose::build::SecretSource::Env(v) => {
                let Some(value) = p.env.get(v) else {
                    let _ = std::fs::remove_dir_all(&scratch);
                    bail!("service {service}: environment variable {v} of build secret {id} is not set");
                };
                let f = scratch.join(format!("secret-{id}"));
                std::fs::write(&f, value)?;
                f.display().to_string()
            }
        };
        args.secret.push(format!("id={id},src={src}"));
    }
    event("Service", service, "Building");
    // the build's own output follows
    super::compose_progress::suspend();
    let code = super::build::build(c, args).await;
    if made {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    let code = code?;
    if code != 0 {
        bail!("failed to solve: service {service:?} failed to build");
    }
    event("Service", service, "Built");
    Ok(())
}

/// Make sure every selected service has its image: built (with `--build`, or when
/// missing and the service has a build section), or pulled when missing.
async fn prepare_images(c: &Client, p: &Loaded, services: &[String], o: &UpArgs) -> Result<()> {
    for s in services {
        let svc = &p.json["services"][s];
        let image = plan::image_name(&p.ctx, s, svc);
        let policy = o.pull.clone().or_else(|| svc["pull_policy"].as_str().map(str::to_owned)).unwrap_or_else(|| "missing".into());
        if svc["build"].is_object() && !o.no_build && (o.build || policy == "build" || !image_exists(c, &image).await?) {
            build(c, p, s, &BuildArgs::default()).await?;
            continue;
        }
        let pull = match policy.as_str() {
            "always" => true,
            "never" => false,
            _ => !image_exists(c, &image).await?,
        };
        if pull {
            if svc["build"].is_object() && o.no_build {
                bail!("service {s:?} has neither an image nor a build context specified: image not found");
            }
            event("Image", &image, "Pulling");
            super::image::pull_image(c, &image, true, true).await?;
            event("Image", &image, "Pulled");
        }
    }
    Ok(())
}

async fn start(c: &Client, id: &str) -> Result<()> {
    match c.start_container(id).await {
        Ok(()) => Ok(()),
        Err(e) if api_status(&e) == Some(304) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn remove(c: &Client, x: &Value, volumes: bool) -> Result<()> {
    event("Container", &cname(x), "Removing");
    let q = Query::new().add("force", 1).add_if(volumes, "v", 1);
    match c.request(Method::DELETE, &format!("/containers/{}", id(x)), &q, &[], empty()).await {
        Ok(_) => {}
        Err(e) if api_status(&e) == Some(404) => {}
        Err(e) => return Err(e),
    }
    event("Container", &cname(x), "Removed");
    Ok(())
}

/// Remove a network or volume of the project; a failure is a warning, as with Compose.
async fn remove_object(c: &Client, kind: &str, route: &str, name: String) {
    event(kind, &name, "Removing");
    match c.request(Method::DELETE, &format!("/{route}/{name}"), &Query::new(), &[], empty()).await {
        Ok(_) => event(kind, &name, "Removed"),
        Err(e) if api_status(&e) == Some(404) => {}
        Err(e) => eprintln!("WARN[0000] {e:#}"),
    }
}

async fn stop(c: &Client, x: &Value, timeout: Option<i64>) -> Result<()> {
    event("Container", &cname(x), "Stopping");
    let q = Query::new().opt("t", timeout);
    match c.request(Method::POST, &format!("/containers/{}/stop", id(x)), &q, &[], empty()).await {
        Ok(_) => {}
        Err(e) if matches!(api_status(&e), Some(304 | 404)) => {}
        Err(e) => return Err(e),
    }
    event("Container", &cname(x), "Stopped");
    Ok(())
}

/// Stop the project's containers in reverse dependency order.
async fn stop_all(c: &Client, p: &Loaded, services: &[String], timeout: Option<i64>, oneoff: bool) -> Result<i32> {
    let levels = plan::start_order(&p.json, services, true).unwrap_or_else(|_| vec![plan::services(&p.json)]);
    for level in levels.iter().rev() {
        let list = containers(c, &p.ctx.project, level, oneoff).await?;
        let stops = list.iter().filter(|x| x["State"] == "running" || x["State"] == "paused" || x["State"] == "restarting").map(|x| stop(c, x, timeout));
        for r in futures_util::future::join_all(stops).await {
            r?;
        }
    }
    Ok(0)
}

/// Create (or recreate, or keep) a service's containers and return them.
async fn converge(c: &Client, p: &Loaded, service: &str, replicas: usize, o: &UpArgs) -> Result<Vec<(String, String)>> {
    let svc = &p.json["services"][service];
    let hash = plan::config_hash(svc);
    let existing = containers(c, &p.ctx.project, &[service.to_owned()], false).await?;
    let mut out = Vec::new();
    for n in 1..=replicas {
        let cur = existing.iter().find(|x| label(x, plan::LABEL_NUMBER) == n.to_string());
        if let Some(x) = cur {
            let changed = label(x, plan::LABEL_HASH) != hash;
            if o.no_recreate || (!changed && !o.force_recreate) {
                event("Container", &cname(x), "Running");
                out.push((id(x), cname(x)));
                continue;
            }
            event("Container", &cname(x), "Recreate");
            stop(c, x, o.timeout).await?;
            remove(c, x, false).await?;
        }
        let (name, body, others) = plan::container_body(&p.ctx, &p.json, service, &ContainerOptions { number: n, ..Default::default() })?;
        let files = injected(p, service)?;
        event("Container", &name, "Creating");
        let created: Value = c.post_json("/containers/create", &Query::new().add("name", &name), Some(json_body(&body)?)).await?;
        let cid = created["Id"].as_str().unwrap_or_default().to_owned();
        for (net, ep) in others {
            let body = json!({"Container": cid, "EndpointConfig": ep});
            c.post_json::<Value>(&format!("/networks/{net}/connect"), &Query::new(), Some(json_body(&body)?)).await?;
        }
        inject_files(c, &files, &cid).await?;
        event("Container", &name, if cur.is_some() { "Recreated" } else { "Created" });
        out.push((cid, name));
    }
    // Scaled down: the highest numbers go.
    for x in existing.iter().filter(|x| label(x, plan::LABEL_NUMBER).parse::<usize>().unwrap_or(0) > replicas) {
        stop(c, x, o.timeout).await?;
        remove(c, x, false).await?;
    }
    Ok(out)
}

/// Wait for a service's dependencies to meet their `depends_on` conditions.
async fn wait_dependencies(c: &Client, p: &Loaded, service: &str, timeout: Duration) -> Result<()> {
    for (dep, (cond, _restart, required)) in plan::depends_on(&p.json, service) {
        let list = containers(c, &p.ctx.project, std::slice::from_ref(&dep), false).await?;
        for x in list {
            let name = cname(&x);
            let outcome = wait_condition(c, &x, &cond, timeout).await;
            match outcome {
                Ok(()) => {}
                Err(e) if !required => eprintln!("WARN[0000] optional dependency {dep:?} failed: {e:#}"),
                Err(e) => {
                    event("Container", &name, "Error");
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

async fn wait_condition(c: &Client, x: &Value, cond: &str, timeout: Duration) -> Result<()> {
    let name = cname(x);
    let deadline = Instant::now() + timeout;
    match cond {
        "service_healthy" => {
            event("Container", &name, "Waiting");
            loop {
                let i: Value = c.get_json(&format!("/containers/{}/json", id(x)), &Query::new()).await?;
                let h = &i["State"]["Health"];
                if h.is_null() {
                    bail!("container {name} has no healthcheck configured");
                }
                match h["Status"].as_str() {
                    Some("healthy") => {
                        event("Container", &name, "Healthy");
                        return Ok(());
                    }
                    Some("unhealthy") => bail!("dependency failed to start: container {name} is unhealthy"),
                    _ => {}
                }
                if i["State"]["Status"] == "exited" {
                    bail!("dependency failed to start: container {name} exited ({})", i["State"]["ExitCode"]);
                }
                if Instant::now() > deadline {
                    bail!("timeout waiting for {name} to be healthy");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        "service_completed_successfully" => {
            event("Container", &name, "Waiting");
            let r: Value = c
                .post_json(&format!("/containers/{}/wait", id(x)), &Query::new().add("condition", "not-running"), None)
                .await?;
            let code = r["StatusCode"].as_i64().unwrap_or(0);
            if code != 0 {
                bail!("service {:?} didn't complete successfully: exit {code}", label(x, plan::LABEL_SERVICE));
            }
            event("Container", &name, "Exited");
            Ok(())
        }
        _ => Ok(()),
    }
}

fn scale_overrides(list: &[String]) -> Result<BTreeMap<String, usize>> {
    let mut m = BTreeMap::new();
    for s in list {
        let (k, v) = s.split_once('=').ok_or_else(|| anyhow!("invalid --scale {s:?}: SERVICE=NUM"))?;
        m.insert(k.to_owned(), v.parse().with_context(|| format!("invalid --scale {s:?}"))?);
    }
    Ok(m)
}

async fn up(c: &Client, p: &Loaded, o: &UpArgs, start_them: bool) -> Result<i32> {
    let levels = plan::start_order(&p.json, &o.services, o.no_deps)?;
    let services: Vec<String> = levels.iter().flatten().cloned().collect();
    let scale = scale_overrides(&o.scale)?;
    for k in scale.keys() {
        if !plan::services(&p.json).contains(k) {
            bail!("no such service: {k}");
        }
    }
    // Secrets and configs first: a missing variable stops `up` before anything is made.
    for s in &services {
        injected(p, s)?;
    }
    prepare_images(c, p, &services, o).await?;
    ensure_networks(c, p, &services).await?;
    ensure_volumes(c, p, &services).await?;
    if o.remove_orphans {
        let known = plan::services(&p.json);
        for x in containers(c, &p.ctx.project, &[], false).await? {
            if !known.contains(&label(&x, plan::LABEL_SERVICE)) {
                stop(c, &x, o.timeout).await?;
                remove(c, &x, false).await?;
            }
        }
    }
    let wait_timeout = Duration::from_secs(o.wait_timeout.unwrap_or(3600));
    let scale = &scale;
    let mut all: Vec<(String, String, String)> = Vec::new();
    for level in &levels {
        // Services of one level are independent: converge them together.
        let jobs = level.iter().map(|s| async move {
            let n = scale.get(s).copied().unwrap_or_else(|| plan::replicas(&p.json["services"][s]));
            let made = converge(c, p, s, n, o).await?;
            anyhow::Ok((s.clone(), made))
        });
        let mut made = Vec::new();
        for r in futures_util::future::join_all(jobs).await {
            made.push(r?);
        }
        if !start_them || o.no_start {
            for (s, list) in made {
                all.extend(list.into_iter().map(|(i, n)| (s.clone(), i, n)));
            }
            continue;
        }
        let starts = made.iter().map(|(s, list)| async move {
            wait_dependencies(c, p, s, wait_timeout).await?;
            for (cid, name) in list {
                event("Container", name, "Starting");
                start(c, cid).await?;
                event("Container", name, "Started");
            }
            anyhow::Ok(())
        });
        for r in futures_util::future::join_all(starts).await {
            r?;
        }
        for (s, list) in made {
            all.extend(list.into_iter().map(|(i, n)| (s.clone(), i, n)));
        }
    }
    if !start_them || o.no_start {
        return Ok(0);
    }
    if o.wait {
        wait_project(c, &all, wait_timeout).await?;
        return Ok(0);
    }
    if o.detach {
        return Ok(0);
    }
    attached(c, p, &all, o).await
}

/// `up --wait`: every container running (healthy when it has a healthcheck), or a
/// one-shot one exited 0.
async fn wait_project(c: &Client, all: &[(String, String, String)], timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    for (_, cid, name) in all {
        event("Container", name, "Waiting");
        loop {
            let i: Value = c.get_json(&format!("/containers/{cid}/json"), &Query::new()).await?;
            let st = &i["State"];
            let health = st["Health"]["Status"].as_str();
            match (st["Status"].as_str(), health) {
                (Some("running"), None | Some("healthy")) => {
                    event("Container", name, if health.is_some() { "Healthy" } else { "Running" });
                    break;
                }
                (Some("running"), Some("unhealthy")) => bail!("container {name} is unhealthy"),
                (Some("exited"), _) => {
                    if st["ExitCode"] == 0 {
                        event("Container", name, "Exited");
                        break;
                    }
                    bail!("container {name} exited ({})", st["ExitCode"]);
                }
                _ => {}
            }
            if Instant::now() > deadline {
                bail!("timeout waiting for {name}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

const COLORS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

/// Attached `up`: every container's output, prefixed with its service and number,
/// until they all stop (or one does, with `--abort-on-container-exit`), Ctrl-C stops
/// the project.
async fn attached(c: &Client, p: &Loaded, all: &[(String, String, String)], o: &UpArgs) -> Result<i32> {
    let color = !o.no_color && std::env::var_os("NO_COLOR").is_none() && crate::stream::stdout_is_tty();
    let width = all.iter().map(|(s, _, n)| short_name(s, n).len()).max().unwrap_or(0);
    super::compose_progress::suspend();
    eprintln!("Attaching to {}", all.iter().map(|(s, _, n)| short_name(s, n)).collect::<Vec<_>>().join(", "));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(String, i64)>(all.len().max(1));
    for (i, (s, cid, name)) in all.iter().enumerate() {
        let prefix = if o.no_log_prefix {
            String::new()
        } else {
            let p = format!("{:width$} | ", short_name(s, name), width = width);
            if color {
                format!("\x1b[{}m{p}\x1b[0m", COLORS[i % COLORS.len()])
            } else {
                p
            }
        };
        let (c2, cid, tx) = (c.clone(), cid.clone(), tx.clone());
        let s = s.clone();
        tokio::spawn(async move {
            let _ = follow_prefixed(&c2, &cid, &prefix, "all", false).await;
            let code = c2
                .post_json::<Value>(&format!("/containers/{cid}/wait"), &Query::new(), None)
                .await
                .ok()
                .and_then(|r| r["StatusCode"].as_i64())
                .unwrap_or(0);
            let _ = tx.send((s, code)).await;
        });
    }
    drop(tx);
    let mut left = all.len();
    let mut exit = 0i32;
    loop {
        tokio::select! {
            done = rx.recv() => {
                let Some((service, code)) = done else { break };
                left -= 1;
                if let Some(name) = all.iter().find(|(s, _, _)| *s == service).map(|(_, _, n)| n.clone()) {
                    eprintln!("{name} exited with code {code}");
                }
                if o.exit_code_from.as_deref() == Some(service.as_str()) {
                    exit = code as i32;
                }
                if o.abort_on_container_exit || o.exit_code_from.is_some() {
                    eprintln!("Aborting on container exit...");
                    stop_all(c, p, &[], o.timeout, false).await?;
                    break;
                }
                if left == 0 {
                    break;
                }
            }
            _ = tokio::signal::ctrl_c() => {
                eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
                stop_all(c, p, &[], o.timeout, false).await?;
                return Ok(130);
            }
        }
    }
    Ok(exit)
}

fn short_name(service: &str, container: &str) -> String {
    match container.rsplit_once('-') {
        Some((_, n)) if n.chars().all(|c| c.is_ascii_digit()) => format!("{service}-{n}"),
        _ => container.to_owned(),
    }
}

/// A container's log, each line prefixed.
async fn follow_prefixed(c: &Client, cid: &str, prefix: &str, tail: &str, timestamps: bool) -> Result<()> {
    follow_logs(c, cid, prefix, &Query::new().add("follow", 1).add("tail", tail).add_if(timestamps, "timestamps", 1)).await
}

async fn follow_logs(c: &Client, cid: &str, prefix: &str, q: &Query) -> Result<()> {
    let info: Value = c.get_json(&format!("/containers/{cid}/json"), &Query::new()).await?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let q = q.clone().add("stdout", 1).add("stderr", 1);
    let resp = c.request(Method::GET, &format!("/containers/{cid}/logs"), &q, &[], empty()).await?;
    let mut body = resp.into_body();
    let mut buf: Vec<u8> = Vec::new();
    let mut lines: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut out = tokio::io::stdout();
    while let Some(chunk) = next_chunk(&mut body).await? {
        buf.extend_from_slice(&chunk);
        // Demultiplex (unless a TTY), then cut into lines.
        loop {
            let (stream, payload, used) = if tty {
                (0usize, buf.clone(), buf.len())
            } else {
                if buf.len() < 8 {
                    break;
                }
                let len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
                if buf.len() < 8 + len {
                    break;
                }
                (usize::from(buf[0] == 2), buf[8..8 + len].to_vec(), 8 + len)
            };
            buf.drain(..used);
            let pending = &mut lines[stream];
            pending.extend_from_slice(&payload);
            while let Some(i) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=i).collect();
                let mut text = prefix.as_bytes().to_vec();
                text.extend_from_slice(&line);
                out.write_all(&text).await?;
            }
            if tty || buf.is_empty() {
                break;
            }
        }
        out.flush().await?;
    }
    for pending in lines.iter().filter(|l| !l.is_empty()) {
        let mut text = prefix.as_bytes().to_vec();
        text.extend_from_slice(pending);
        text.push(b'\n');
        out.write_all(&text).await?;
    }
    out.flush().await?;
    Ok(())
}

async fn logs(c: &Client, p: &Loaded, o: &LogsArgs) -> Result<i32> {
    let list = containers(c, &p.ctx.project, &o.services, false).await?;
    let list: Vec<Value> = list.into_iter().filter(|x| o.index.is_none_or(|i| label(x, plan::LABEL_NUMBER) == i.to_string())).collect();
    let width = list.iter().map(|x| short_name(&label(x, plan::LABEL_SERVICE), &cname(x)).len()).max().unwrap_or(0);
    let color = !o.no_color && std::env::var_os("NO_COLOR").is_none() && crate::stream::stdout_is_tty();
    let now = chrono::Utc::now().timestamp();
    let since = o.since.as_deref().map(|s| crate::opts::parse_timestamp(s, now)).transpose()?;
    let until = o.until.as_deref().map(|s| crate::opts::parse_timestamp(s, now)).transpose()?;
    let jobs = list.iter().enumerate().map(|(i, x)| {
        let prefix = if o.no_log_prefix {
            String::new()
        } else {
            let p = format!("{:width$} | ", short_name(&label(x, plan::LABEL_SERVICE), &cname(x)), width = width);
            if color {
                format!("\x1b[{}m{p}\x1b[0m", COLORS[i % COLORS.len()])
            } else {
                p
            }
        };
        let q = Query::new()
            .add_if(o.follow, "follow", 1)
            .add("tail", &o.tail)
            .add_if(o.timestamps, "timestamps", 1)
            .opt("since", since.clone())
            .opt("until", until.clone());
        let cid = id(x);
        async move { follow_logs(c, &cid, &prefix, &q).await }
    });
    for r in futures_util::future::join_all(jobs).await {
        r?;
    }
    Ok(0)
}

async fn down(c: &Client, p: &Loaded, o: &DownArgs) -> Result<i32> {
    let all = containers(c, &p.ctx.project, &[], true).await?;
    let known = plan::services(&p.json);
    let targeted = |x: &Value| o.services.is_empty() || o.services.contains(&label(x, plan::LABEL_SERVICE));
    // Stop in reverse dependency order, then remove.
    stop_all(c, p, &o.services, o.timeout, true).await?;
    let mut orphans = false;
    let mut removals = Vec::new();
    for x in all.iter().filter(|x| targeted(x)) {
        let service = label(x, plan::LABEL_SERVICE);
        if !known.contains(&service) && !o.remove_orphans {
            orphans = true;
            continue;
        }
        // The project's services were stopped above, in dependency order; only an
        // orphan (taken with --remove-orphans) may still run.
        let orphan = !known.contains(&service);
        removals.push(async move {
            if orphan && x["State"] == "running" {
                stop(c, x, o.timeout).await?;
            }
            remove(c, x, o.volumes).await
        });
    }
    // Everything left is stopped (or an orphan): removed concurrently, as Compose does.
    for r in futures_util::future::join_all(removals).await {
        r?;
    }
    if orphans {
        eprintln!("WARN[0000] Found orphan containers for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.");
    }
    if !o.services.is_empty() {
        return Ok(0);
    }
    // Networks the project made.
    let nets: Vec<Value> = c.get_json("/networks", &project_filter(&p.ctx.project, &[])).await?;
    let names = nets.iter().map(|n| n["Name"].as_str().unwrap_or_default().to_owned());
    futures_util::future::join_all(names.map(|name| remove_object(c, "Network", "networks", name))).await;
    if o.volumes {
        let vols: Value = c.get_json("/volumes", &project_filter(&p.ctx.project, &[])).await?;
        let names = vols["Volumes"].as_array().into_iter().flatten().map(|v| v["Name"].as_str().unwrap_or_default().to_owned());
        futures_util::future::join_all(names.map(|name| remove_object(c, "Volume", "volumes", name))).await;
    }
    if let Some(rmi) = &o.rmi {
        if !matches!(rmi.as_str(), "local" | "all") {
            bail!("invalid --rmi value {rmi:?}: local or all");
        }
        let mut images = BTreeSet::new();
        for s in &known {
            let svc = &p.json["services"][s];
            if rmi == "all" || svc["image"].is_null() {
                images.insert(plan::image_name(&p.ctx, s, svc));
            }
        }
        for img in images {
            event("Image", &img, "Removing");
            match c.request(Method::DELETE, &format!("/images/{img}"), &Query::new(), &[], empty()).await {
                Ok(_) => event("Image", &img, "Removed"),
                Err(e) if api_status(&e) == Some(404) => {}
                Err(e) => eprintln!("WARN[0000] {e:#}"),
            }
        }
    }
    Ok(0)
}

async fn ps(c: &Client, p: &Loaded, o: &PsArgs) -> Result<i32> {
    if o.services {
        for s in plan::services(&p.json) {
            println!("{s}");
        }
        return Ok(0);
    }
    let mut statuses = o.status.clone();
    for f in &o.filter {
        match f.split_once('=') {
            Some(("status", v)) => statuses.push(v.to_owned()),
            _ => bail!("invalid filter {f:?}: only status=... is supported"),
        }
    }
    let list = containers(c, &p.ctx.project, &o.names, o.all).await?;
    let list: Vec<Value> = list
        .into_iter()
        .filter(|x| o.all || !statuses.is_empty() || x["State"] == "running" || x["State"] == "restarting" || x["State"] == "paused")
        .filter(|x| statuses.is_empty() || statuses.iter().any(|s| x["State"] == json!(s)))
        .collect();
    if o.quiet {
        for x in &list {
            println!("{}", id(x));
        }
        return Ok(0);
    }
    let rows: Vec<Value> = list
        .iter()
        .map(|x| {
            let ports: Vec<String> = x["Ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|pt| match pt["PublicPort"].as_u64() {
                    Some(pp) => format!("{}:{pp}->{}/{}", pt["IP"].as_str().unwrap_or("0.0.0.0"), pt["PrivatePort"], pt["Type"].as_str().unwrap_or("tcp")),
                    None => format!("{}/{}", pt["PrivatePort"], pt["Type"].as_str().unwrap_or("tcp")),
                })
                .collect();
            json!({
                "ID": id(x),
                "Name": cname(x),
                "Names": cname(x),
                "Image": x["Image"],
                "Command": x["Command"],
                "Project": p.ctx.project,
                "Service": label(x, plan::LABEL_SERVICE),
                "Created": x["Created"],
                "State": x["State"],
                "Status": x["Status"],
                "Health": x["Status"].as_str().and_then(|s| s.rsplit_once('(').map(|(_, h)| h.trim_end_matches(')').replace("health: ", ""))).unwrap_or_default(),
                "ExitCode": 0,
                "Publishers": x["Ports"],
                "Ports": ports.join(", "),
                "Labels": x["Labels"],
            })
        })
        .collect();
    match o.format.as_deref() {
        Some("json") => {
            for r in &rows {
                println!("{r}");
            }
        }
        Some(t) if t != "table" => {
            for r in &rows {
                println!("{}", crate::format::Template::parse(t)?.render(r));
            }
        }
        _ => {
            let head: Vec<String> = ["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"].iter().map(|s| s.to_string()).collect();
            let body: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let cmd = r["Command"].as_str().unwrap_or_default();
                    let cmd = if cmd.chars().count() > 20 { format!("\"{}…\"", cmd.chars().take(19).collect::<String>()) } else { format!("\"{cmd}\"") };
                    let created = r["Created"].as_i64().map(crate::format::ago).unwrap_or_default();
                    vec![
                        r["Name"].as_str().unwrap_or_default().to_owned(),
                        r["Image"].as_str().unwrap_or_default().to_owned(),
                        cmd,
                        r["Service"].as_str().unwrap_or_default().to_owned(),
                        created,
                        r["Status"].as_str().unwrap_or_default().to_owned(),
                        r["Ports"].as_str().unwrap_or_default().to_owned(),
                    ]
                })
                .collect();
            print!("{}", crate::format::table(&[vec![head], body].concat()));
        }
    }
    Ok(0)
}

async fn ls(c: &Client, o: &LsArgs) -> Result<i32> {
    let q = Query::new().add("all", 1).add("filters", json!({"label": [plan::LABEL_PROJECT]}).to_string());
    let list: Vec<Value> = c.get_json("/containers/json", &q).await?;
    let mut projects: BTreeMap<String, (BTreeMap<String, usize>, BTreeSet<String>)> = BTreeMap::new();
    for x in &list {
        let name = label(x, plan::LABEL_PROJECT);
        let e = projects.entry(name).or_default();
        *e.0.entry(x["State"].as_str().unwrap_or("unknown").to_owned()).or_default() += 1;
        for f in label(x, plan::LABEL_FILES).split(',').filter(|f| !f.is_empty()) {
            e.1.insert(f.to_owned());
        }
    }
    let mut rows = Vec::new();
    for (name, (states, files)) in projects {
        if !o.all && !states.contains_key("running") {
            continue;
        }
        if !o.filter.iter().all(|f| f.strip_prefix("name=").is_none_or(|n| name.contains(n))) {
            continue;
        }
        let status = states.iter().map(|(s, n)| format!("{s}({n})")).collect::<Vec<_>>().join(", ");
        rows.push(json!({"Name": name, "Status": status, "ConfigFiles": files.into_iter().collect::<Vec<_>>().join(",")}));
    }
    if o.quiet {
        for r in &rows {
            println!("{}", r["Name"].as_str().unwrap_or_default());
        }
    } else if o.format == "json" {
        println!("{}", Value::Array(rows));
    } else {
        let head: Vec<String> = ["NAME", "STATUS", "CONFIG FILES"].iter().map(|s| s.to_string()).collect();
        let body: Vec<Vec<String>> = rows
            .iter()
            .map(|r| ["Name", "Status", "ConfigFiles"].iter().map(|k| r[*k].as_str().unwrap_or_default().to_owned()).collect())
            .collect();
        print!("{}", crate::format::table(&[vec![head], body].concat()));
    }
    Ok(0)
}

async fn images(c: &Client, p: &Loaded, o: &ImagesArgs) -> Result<i32> {
    let list = containers(c, &p.ctx.project, &o.services, false).await?;
    let mut rows = Vec::new();
    for x in &list {
        let img: Value = c.get_json(&format!("/images/{}/json", x["ImageID"].as_str().unwrap_or_default()), &Query::new()).await.unwrap_or(Value::Null);
        let tag = img["RepoTags"][0].as_str().unwrap_or("<none>:<none>");
        let (repo, t) = tag.rsplit_once(':').unwrap_or((tag, "<none>"));
        let iid = x["ImageID"].as_str().unwrap_or_default().trim_start_matches("sha256:");
        rows.push(json!({"ContainerName": cname(x), "Repository": repo, "Tag": t, "ID": &iid[..iid.len().min(12)], "Size": img["Size"]}));
    }
    if o.quiet {
        let ids: BTreeSet<String> = rows.iter().map(|r| r["ID"].as_str().unwrap_or_default().to_owned()).collect();
        for i in ids {
            println!("{i}");
        }
    } else if o.format == "json" {
        println!("{}", Value::Array(rows));
    } else {
        let head: Vec<String> = ["CONTAINER", "REPOSITORY", "TAG", "IMAGE ID", "SIZE"].iter().map(|s| s.to_string()).collect();
        let body: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r["ContainerName"].as_str().unwrap_or_default().to_owned(),
                    r["Repository"].as_str().unwrap_or_default().to_owned(),
                    r["Tag"].as_str().unwrap_or_default().to_owned(),
                    r["ID"].as_str().unwrap_or_default().to_owned(),
                    crate::format::human_size(r["Size"].as_i64().unwrap_or(0)),
                ]
            })
            .collect();
        print!("{}", crate::format::table(&[vec![head], body].concat()));
    }
    Ok(0)
}

/// `compose cp`: the service's container (by `--index`; into a service without one,
/// every replica) stands for the `SERVICE:` side of `berth cp`.
async fn cp(c: &Client, p: &Loaded, o: &CpArgs) -> Result<i32> {
    let split = |s: &str| -> Option<(String, String)> {
        let (svc, path) = s.split_once(':')?;
        (!svc.is_empty() && !svc.contains('/')).then(|| (svc.to_owned(), path.to_owned()))
    };
    let (service, to_container) = match (split(&o.src), split(&o.dst)) {
        (Some((s, _)), None) => (s, false),
        (None, Some((s, _))) => (s, true),
        (Some(_), Some(_)) => bail!("copying between services is not supported"),
        (None, None) => bail!("must specify at least one container source"),
    };
    selected(p, std::slice::from_ref(&service))?;
    let list = containers(c, &p.ctx.project, std::slice::from_ref(&service), false).await?;
    let mut targets: Vec<&Value> = list
        .iter()
        .filter(|x| match o.index {
            Some(i) => label(x, plan::LABEL_NUMBER) == i.to_string(),
            None => to_container || label(x, plan::LABEL_NUMBER) == "1",
        })
        .collect();
    targets.sort_by_key(|x| label(x, plan::LABEL_NUMBER).parse::<usize>().unwrap_or(0));
    if targets.is_empty() {
        bail!("no container found for service \"{service}\"");
    }
    for x in targets {
        let with = |side: &str| match side.split_once(':') {
            Some((svc, path)) if svc == service => format!("{}:{path}", id(x)),
            _ => side.to_owned(),
        };
        let args = crate::cli::CpArgs {
            archive: o.archive,
            follow_link: o.follow_link,
            quiet: true,
            src: with(&o.src),
            dst: with(&o.dst),
        };
        let code = super::cp::cp(c, args).await?;
        if code != 0 {
            return Ok(code);
        }
    }
    Ok(0)
}

/// `compose events`: the project's container events, as Docker Compose prints them
/// (`<time> container <action> <id> (k=v, ...)`, or one JSON object per line), the
/// `com.docker.compose.*` labels left out of the attributes.
async fn events(c: &Client, p: &Loaded, o: &EventsArgs) -> Result<i32> {
    let filters = json!({
        "type": ["container"],
        "label": [format!("{}={}", plan::LABEL_PROJECT, p.ctx.project)],
    });
    let q = Query::new().add("filters", filters.to_string());
    let resp = c.request(Method::GET, "/events", &q, &[], empty()).await?;
    let mut r = crate::client::LineReader::new(resp);
    while let Some(e) = r.next_json::<Value>().await? {
        let attrs = e["Actor"]["Attributes"].as_object().cloned().unwrap_or_default();
        let service = attrs.get(plan::LABEL_SERVICE).and_then(Value::as_str).unwrap_or_default().to_owned();
        if !o.services.is_empty() && !o.services.contains(&service) {
            continue;
        }
        let shown: BTreeMap<&String, &Value> = attrs.iter().filter(|(k, _)| !k.starts_with("com.docker.compose.")).collect();
        let nanos = e["timeNano"].as_i64().unwrap_or_else(|| e["time"].as_i64().unwrap_or(0) * 1_000_000_000);
        let time = chrono::DateTime::from_timestamp(nanos / 1_000_000_000, (nanos % 1_000_000_000) as u32)
            .unwrap_or_default()
            .with_timezone(&chrono::Local);
        let action = e["Action"].as_str().unwrap_or_default();
        let cid = e["Actor"]["ID"].as_str().unwrap_or_default();
        if o.json {
            let line = json!({
                "time": time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                "type": "container",
                "service": service,
                "id": cid,
                "action": action,
                "attributes": shown,
            });
            println!("{line}");
        } else {
            let list: Vec<String> = shown.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect();
            println!("{} container {action} {cid} ({})", time.format("%Y-%m-%d %H:%M:%S%.6f"), list.join(", "));
        }
    }
    Ok(0)
}

/// One `develop.watch` rule of a service.
struct WatchRule {
    service: String,
    path: std::path::PathBuf,
    action: String,
    target: String,
    ignore: Option<berth_builder::dockerignore::Matcher>,
    /// `include`: when given, only the paths it matches count.
    include: Option<berth_builder::dockerignore::Matcher>,
    exec: Vec<String>,
    /// The exec's `user`, `privileged`, `working_dir` and `environment`, as exec
    /// create body fields.
    exec_opts: serde_json::Map<String, Value>,
    /// Copy everything under `path` in before watching.
    initial_sync: bool,
}

/// Every file below `dir` (or `dir` itself, a file).
fn files_below(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(p) = todo.pop() {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => todo.extend(std::fs::read_dir(&p).into_iter().flatten().flatten().map(|e| e.path())),
            Ok(m) if m.is_file() => out.push(p),
            _ => {}
        }
    }
    out
}

/// `compose watch`: bring the services up, then follow their `develop.watch` rules:
/// `sync` copies changed files into the service's containers (and removes deleted
/// ones), `sync+restart` then restarts them, `sync+exec` then runs the rule's command,
/// `restart` restarts, `rebuild` builds the image again and recreates the containers.
async fn watch(c: &Client, p: &Loaded, o: &WatchArgs) -> Result<i32> {
    let mut rules = Vec::new();
    for s in plan::services(&p.json) {
        if !o.services.is_empty() && !o.services.contains(&s) {
            continue;
        }
        for t in p.json["services"][&s]["develop"]["watch"].as_array().into_iter().flatten() {
            let action = t["action"].as_str().unwrap_or_default().to_owned();
            if !matches!(action.as_str(), "sync" | "sync+restart" | "sync+exec" | "restart" | "rebuild") {
                bail!("service {s}: unknown watch action {action:?}");
            }
            if action == "rebuild" && !p.json["services"][&s]["build"].is_object() {
                bail!("service {s}: the rebuild action needs a build section");
            }
            if t["initial_sync"].as_bool() == Some(true) && !action.starts_with("sync") {
                bail!("service {s}: develop.watch initial_sync is only for the sync actions");
            }
            let patterns = |k: &str| -> Option<berth_builder::dockerignore::Matcher> {
                let v: Vec<String> = t[k].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect();
                (!v.is_empty()).then(|| berth_builder::dockerignore::Matcher::parse(&v.join("\n")))
            };
            let exec_opts = watch_exec_options(&t["exec"]);
            rules.push(WatchRule {
                service: s.clone(),
                path: std::path::PathBuf::from(t["path"].as_str().unwrap_or(".")),
                action,
                target: t["target"].as_str().unwrap_or_default().to_owned(),
                ignore: patterns("ignore"),
                include: patterns("include"),
                exec_opts,
                exec: t["exec"]["command"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
                initial_sync: t["initial_sync"].as_bool().unwrap_or(false),
            });
        }
    }
    if rules.is_empty() {
        bail!("none of the selected services is configured for watch, consider setting a 'develop' section");
    }
    if !o.no_up {
        let services: BTreeSet<String> = rules.iter().map(|r| r.service.clone()).collect();
        let code = up(c, p, &UpArgs { detach: true, services: services.into_iter().collect(), ..Default::default() }, true).await?;
        if code != 0 {
            return Ok(code);
        }
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<std::path::PathBuf>();
    let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        if let Ok(ev) = ev {
            if !matches!(ev.kind, notify::EventKind::Access(_)) {
                for path in ev.paths {
                    let _ = tx.send(path);
                }
            }
        }
    })?;
    use notify::Watcher as _;
    for r in &rules {
        watcher
            .watch(&r.path, notify::RecursiveMode::Recursive)
            .with_context(|| format!("watch {}", r.path.display()))?;
    }
    eprintln!("Watch enabled");
    let mut rebuilt = BTreeSet::new();
    for r in rules.iter().filter(|r| r.initial_sync) {
        let all = files_below(&r.path);
        let keep: Vec<&std::path::PathBuf> = all.iter().filter(|f| !watch_ignored(r, f)).collect();
        if !keep.is_empty() {
            apply_watch_rule(c, p, r, &keep, &mut rebuilt).await?;
        }
    }
    loop {
        let first = tokio::select! {
            p = rx.recv() => match p { Some(p) => p, None => break },
            _ = tokio::signal::ctrl_c() => break,
        };
        // changes come in bursts (an editor's save, a git checkout): take them together
        let mut changed = BTreeSet::from([first]);
        let until = tokio::time::Instant::now() + Duration::from_millis(300);
        while let Ok(Some(p)) = tokio::time::timeout_at(until, rx.recv()).await {
            changed.insert(p);
        }
        let mut rebuilt = BTreeSet::new();
        for r in &rules {
            let files: Vec<&std::path::PathBuf> =
                changed.iter().filter(|f| f.starts_with(&r.path)).filter(|f| !watch_ignored(r, f)).collect();
            if files.is_empty() {
                continue;
            }
            if let Err(e) = apply_watch_rule(c, p, r, &files, &mut rebuilt).await {
                eprintln!("watch: service {}: {e:#}", r.service);
            }
        }
    }
    Ok(0)
}

/// Is `f` (below the rule's path) left out by the rule's `ignore` patterns?
/// Is a changed path left out by the rule: matched by `ignore`, or (with `include`)
/// not matched by it (Compose's watch matchers, relative to the rule's path).
fn watch_ignored(r: &WatchRule, f: &std::path::Path) -> bool {
    let rel = f.strip_prefix(&r.path).map(|x| x.to_string_lossy().into_owned()).unwrap_or_default();
    if rel.is_empty() {
        return false;
    }
    r.ignore.as_ref().is_some_and(|m| m.matches(&rel)) || r.include.as_ref().is_some_and(|m| !m.matches(&rel))
}

/// A `develop.watch` rule's `exec` options as exec create fields: `user`, `privileged`,
/// `working_dir`, `environment` (a map or a `K=V` list, as Compose normalizes it).
fn watch_exec_options(exec: &Value) -> serde_json::Map<String, Value> {
    let mut o = serde_json::Map::new();
    if let Some(u) = exec["user"].as_str().filter(|u| !u.is_empty()) {
        o.insert("User".into(), u.into());
    }
    if exec["privileged"].as_bool() == Some(true) {
        o.insert("Privileged".into(), true.into());
    }
    if let Some(w) = exec["working_dir"].as_str().filter(|w| !w.is_empty()) {
        o.insert("WorkingDir".into(), w.into());
    }
    let env: Vec<String> = match &exec["environment"] {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                Value::Null => k.clone(),
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect(),
        Value::Array(a) => a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    };
    if !env.is_empty() {
        o.insert("Env".into(), env.into());
    }
    o
}

async fn apply_watch_rule(
    c: &Client,
    p: &Loaded,
    r: &WatchRule,
    files: &[&std::path::PathBuf],
    rebuilt: &mut BTreeSet<String>,
) -> Result<()> {
    let list = containers(c, &p.ctx.project, std::slice::from_ref(&r.service), false).await?;
    let running: Vec<String> = list.iter().filter(|x| x["State"] == "running").map(id).collect();
    if r.action == "rebuild" {
        if rebuilt.insert(r.service.clone()) {
            eprintln!("Rebuilding service(s) [\"{}\"] after changes were detected...", r.service);
            build(c, p, &r.service, &BuildArgs::default()).await?;
            let o = UpArgs { detach: true, force_recreate: true, no_deps: true, services: vec![r.service.clone()], ..Default::default() };
            up(c, p, &o, true).await?;
            eprintln!("service(s) [\"{}\"] successfully built", r.service);
        }
        return Ok(());
    }
    if r.action.starts_with("sync") {
        eprintln!("Syncing service \"{}\" after {} changes were detected", r.service, files.len());
        let mut present = Vec::new();
        let mut gone = Vec::new();
        for f in files {
            let rel = f.strip_prefix(&r.path).unwrap_or(f.as_path());
            let target = if rel.as_os_str().is_empty() {
                r.target.clone()
            } else {
                format!("{}/{}", r.target.trim_end_matches('/'), rel.display())
            };
            match std::fs::metadata(f) {
                Ok(m) if m.is_file() => {
                    use std::os::unix::fs::PermissionsExt;
                    present.push(plan::InjectedFile {
                        target,
                        content: std::fs::read(f)?,
                        mode: m.permissions().mode() & 0o7777,
                        uid: 0,
                        gid: 0,
                    });
                }
                Ok(_) => {}
                Err(_) => gone.push(target),
            }
        }
        for cid in &running {
            inject_files(c, &present, cid).await?;
            if !gone.is_empty() {
                let cmd: Vec<String> = ["rm", "-rf"].iter().map(|s| s.to_string()).chain(gone.iter().cloned()).collect();
                run_detached_exec(c, cid, &cmd, &serde_json::Map::new()).await?;
            }
        }
    }
    if r.action.ends_with("restart") {
        eprintln!("Restarting service \"{}\" after changes were detected", r.service);
        for cid in &running {
            c.request(Method::POST, &format!("/containers/{cid}/restart"), &Query::new(), &[], empty()).await?;
        }
    }
    if r.action == "sync+exec" && !r.exec.is_empty() {
        for cid in &running {
            run_detached_exec(c, cid, &r.exec, &r.exec_opts).await?;
        }
    }
    Ok(())
}

/// Run `cmd` in a container without waiting for it (an exec started detached), with
/// the exec create fields in `opts`.
async fn run_detached_exec(c: &Client, cid: &str, cmd: &[String], opts: &serde_json::Map<String, Value>) -> Result<()> {
    let mut body = opts.clone();
    body.insert("Cmd".into(), json!(cmd));
    let created: Value =
        c.post_json(&format!("/containers/{cid}/exec"), &Query::new(), Some(json_body(&Value::Object(body))?)).await?;
    let eid = created["Id"].as_str().unwrap_or_default().to_owned();
    let body = serde_json::to_vec(&json!({ "Detach": true }))?;
    c.request(
        Method::POST,
        &format!("/exec/{eid}/start"),
        &Query::new(),
        &[("Content-Type", "application/json".to_owned())],
        crate::client::full(body),
    )
    .await?;
    Ok(())
}

async fn exec(c: &Client, p: &Loaded, o: &ExecArgs) -> Result<i32> {
    let service = &o.args[0];
    selected(p, std::slice::from_ref(service))?;
    let list = containers(c, &p.ctx.project, std::slice::from_ref(service), false).await?;
    let x = list
        .iter()
        .find(|x| label(x, plan::LABEL_NUMBER) == o.index.to_string() && x["State"] == "running")
        .ok_or_else(|| anyhow!("service \"{service}\" is not running"))?;
    let tty = !o.no_tty && crate::stream::stdin_is_tty();
    let args = crate::cli::ExecArgs {
        detach: o.detach,
        interactive: !o.detach,
        tty,
        env: o.env.clone(),
        env_file: Vec::new(),
        user: o.user.clone(),
        workdir: o.workdir.clone(),
        privileged: o.privileged,
        detach_keys: None,
        args: std::iter::once(id(x)).chain(o.args[1..].iter().cloned()).collect(),
    };
    super::exec::exec(c, args).await
}

async fn run(c: &Client, p: &Loaded, o: &RunArgs) -> Result<i32> {
    let service = o.args[0].clone();
    selected(p, std::slice::from_ref(&service))?;
    let up_opts = UpArgs { detach: true, ..Default::default() };
    if !o.no_deps {
        let deps: Vec<String> = plan::depends_on(&p.json, &service).into_keys().collect();
        if !deps.is_empty() {
            up(c, p, &UpArgs { services: deps, ..UpArgs { detach: true, ..Default::default() } }, true).await?;
        }
    }
    prepare_images(c, p, std::slice::from_ref(&service), &up_opts).await?;
    ensure_networks(c, p, std::slice::from_ref(&service)).await?;
    ensure_volumes(c, p, std::slice::from_ref(&service)).await?;
    let tty = !o.no_tty && crate::stream::stdin_is_tty() && !o.detach;
    let opts = ContainerOptions {
        number: 1,
        oneoff: true,
        command: (o.args.len() > 1).then(|| o.args[1..].to_vec()),
        entrypoint: o.entrypoint.as_ref().map(|e| split_words(e)),
        extra_env: o.env.clone(),
        no_ports: !o.service_ports,
        tty: Some(tty),
        stdin_open: Some(!o.detach),
        user: o.user.clone(),
        workdir: o.workdir.clone(),
        extra_volumes: o.volume.clone(),
        name: o.name.clone(),
        auto_remove: o.rm,
    };
    let (name, body, others) = plan::container_body(&p.ctx, &p.json, &service, &opts)?;
    let files = injected(p, &service)?;
    let created: Value = c.post_json("/containers/create", &Query::new().add("name", &name), Some(json_body(&body)?)).await?;
    let cid = created["Id"].as_str().unwrap_or_default().to_owned();
    for (net, ep) in others {
        let body = json!({"Container": cid, "EndpointConfig": ep});
        c.post_json::<Value>(&format!("/networks/{net}/connect"), &Query::new(), Some(json_body(&body)?)).await?;
    }
    inject_files(c, &files, &cid).await?;
    // the container's own output (or its name) follows
    super::compose_progress::suspend();
    if o.detach {
        start(c, &cid).await?;
        println!("{name}");
        return Ok(0);
    }
    super::run::start(c, crate::cli::StartArgs { attach: true, interactive: true, detach_keys: None, containers: vec![cid] }).await
}

/// Split a command line into words the way a POSIX shell would (quotes and
/// backslashes, no expansion), as Compose parses `--entrypoint`.
fn split_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut any = false;
    let mut chars = s.chars();
    let mut quote: Option<char> = None;
    while let Some(ch) = chars.next() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(ch);
                any = true;
            }
            (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    any = true;
                }
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_yaml() {
        assert_eq!(split_words(r#"sh -c 'echo "a b"'"#), ["sh", "-c", "echo \"a b\""]);
        assert_eq!(split_words("a\\ b  c"), ["a b", "c"]);
        let y = to_yaml(&json!({"name": "p", "services": {"web": {"ports": [{"target": 80}], "command": ["a", "true"], "x": null}}}));
        assert_eq!(y, "name: p\nservices:\n  web:\n    command:\n      - a\n      - \"true\"\n    ports:\n      - target: 80\n    x: null\n");
        assert_eq!(short_name("web", "app-web-2"), "web-2");
    }
}
