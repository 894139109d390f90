//! Command implementations, one module per group, and the dispatcher.

pub mod auth;
pub mod build;
pub mod compose;
pub mod compose_progress;
pub mod container;
pub mod context;
pub mod cp;
pub mod exec;
pub mod gitctx;
pub mod image;
pub mod logs;
pub mod network;
pub mod run;
pub mod system;
pub mod tools;
pub mod volume;

use anyhow::Result;
use serde_json::Value;

use crate::cli::{Cli, Cmd, ContainerCmd, ImageCmd, SystemCmd};
use crate::client::{ApiError, Client};
use crate::format::Template;

/// The daemon's message of an error, or the error text.
pub fn api_message(e: &anyhow::Error) -> String {
    match e.downcast_ref::<ApiError>() {
        Some(a) => a.message.clone(),
        None => format!("{e:#}"),
    }
}

/// Asks "[y/N]" on the terminal.
pub fn confirm(warning: &str) -> Result<bool> {
    use std::io::Write;
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    std::io::stdout().flush()?;
    let mut s = String::new();
    std::io::stdin().read_line(&mut s)?;
    Ok(matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// `inspect` of named objects, as docker does it: `GET path(name)` for each, the
/// failures reported by `report` (each kind words them its own way), the found ones
/// printed together; exit code 1 if any failed.
pub async fn inspect_each(
    c: &Client,
    names: &[String],
    format: Option<&str>,
    request: impl Fn(&str) -> (String, crate::client::Query),
    report: impl Fn(&str, &anyhow::Error),
) -> Result<i32> {
    let mut out = Vec::new();
    let mut rc = 0;
    for n in names {
        let (path, q) = request(n);
        match c.get_json::<Value>(&path, &q).await {
            Ok(v) => out.push(v),
            Err(e) => {
                report(n, &e);
                rc = 1;
            }
        }
    }
    print_inspect(&out, format)?;
    Ok(rc)
}

/// Prints inspect results as docker does: a 4-space indented JSON array, or one
/// rendered template per object.
pub fn print_inspect(items: &[Value], format: Option<&str>) -> Result<()> {
    match format {
        Some(f) => {
            let t = Template::parse(f)?;
            for it in items {
                println!("{}", t.render(it));
            }
        }
        None => {
            use serde::Serialize;
            let mut buf = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            items.serialize(&mut ser)?;
            println!("{}", String::from_utf8_lossy(&buf));
        }
    }
    Ok(())
}

/// The connection flags of the command line (TLS flags with docker's variables).
pub fn flags(cli: &Cli) -> crate::context::Flags {
    crate::context::Flags {
        host: cli.host.clone(),
        context: cli.context.clone(),
        tls: crate::client::TlsOptions {
            tls: cli.tls,
            verify: cli.tlsverify,
            ca: cli.tlscacert.clone(),
            cert: cli.tlscert.clone(),
            key: cli.tlskey.clone(),
            system_roots: false,
        }
        .with_env(),
    }
}

/// Commands that need no daemon.
pub fn run_offline(cli: &Cli) -> Option<Result<i32>> {
    match &cli.cmd {
        Cmd::Context(cc) => Some(context::run(cc.clone(), &flags(cli), &crate::context::ProcessEnv)),
        Cmd::Logout { server } => Some(auth::logout(server.clone())),
        Cmd::Daemon { args } => Some(tools::exec_daemon(args)),
        _ => None,
    }
}

pub async fn dispatch(cli: Cli) -> Result<i32> {
    match cli.cmd {
        Cmd::Registry(r) => return tools::registry(r).await,
        // `compose config` and `compose version` need no daemon.
        Cmd::Compose(a) if matches!(a.cmd, compose::ComposeCmd::Config(_) | compose::ComposeCmd::Version(_)) => {
            return compose::compose(None, a).await
        }
        Cmd::Debug(d) => return tools::debug(d),
        _ => {}
    }
    let target = crate::context::resolve(&flags(&cli), &crate::context::ProcessEnv, &crate::context::config_dir())?;
    if let Cmd::System(SystemCmd::DialStdio) = cli.cmd {
        return system::dial_stdio(target.host.as_deref(), &target.tls).await;
    }
    let c = Client::connect(target.host.as_deref(), &target.tls).await?;
    match cli.cmd {
        Cmd::Compose(a) => compose::compose(Some(&c), a).await,
        Cmd::Run(a) => run::run(&c, a).await,
        Cmd::Create(a) => run::create(&c, a).await,
        Cmd::Start(a) => run::start(&c, a).await,
        Cmd::Attach(a) => run::attach(&c, a).await,
        Cmd::Wait(a) => run::wait(&c, a).await,
        Cmd::Logs(a) => logs::logs(&c, a).await,
        Cmd::Stop(a) => container::stop(&c, a, false).await,
        Cmd::Restart(a) => container::stop(&c, a, true).await,
        Cmd::Kill(a) => container::kill(&c, a).await,
        Cmd::Rm(a) => container::rm(&c, a).await,
        Cmd::Ps(a) => container::ps(&c, a).await,
        Cmd::Inspect(a) => container::inspect_any(&c, a).await,
        Cmd::Exec(a) => exec::exec(&c, a).await,
        Cmd::Top(a) => container::top(&c, a).await,
        Cmd::Pause(a) => container::simple(&c, "pause", a.containers).await,
        Cmd::Unpause(a) => container::simple(&c, "unpause", a.containers).await,
        Cmd::Rename {
            container,
            new_name,
        } => container::rename(&c, &container, &new_name).await,
        Cmd::Port {
            container,
            private_port,
        } => container::port(&c, &container, private_port.as_deref()).await,
        Cmd::Stats(a) => container::stats(&c, a).await,
        Cmd::Update(a) => container::update(&c, a).await,
        Cmd::Cp(a) => cp::cp(&c, a).await,
        Cmd::Diff { container } => container::diff(&c, &container).await,
        Cmd::Export(a) => container::export(&c, a).await,
        Cmd::Container(cc) => match cc {
            ContainerCmd::Ls(a) => container::ps(&c, a).await,
            ContainerCmd::Prune(a) => container::prune(&c, a).await,
            ContainerCmd::Run(a) => run::run(&c, a).await,
            ContainerCmd::Create(a) => run::create(&c, a).await,
            ContainerCmd::Start(a) => run::start(&c, a).await,
            ContainerCmd::Stop(a) => container::stop(&c, a, false).await,
            ContainerCmd::Restart(a) => container::stop(&c, a, true).await,
            ContainerCmd::Kill(a) => container::kill(&c, a).await,
            ContainerCmd::Rm(a) => container::rm(&c, a).await,
            ContainerCmd::Inspect(a) => {
                container::inspect_containers(&c, &a.names, a.format.as_deref(), a.size).await
            }
            ContainerCmd::Logs(a) => logs::logs(&c, a).await,
            ContainerCmd::Wait(a) => run::wait(&c, a).await,
            ContainerCmd::Exec(a) => exec::exec(&c, a).await,
            ContainerCmd::Attach(a) => run::attach(&c, a).await,
            ContainerCmd::Top(a) => container::top(&c, a).await,
            ContainerCmd::Pause(a) => container::simple(&c, "pause", a.containers).await,
            ContainerCmd::Unpause(a) => container::simple(&c, "unpause", a.containers).await,
            ContainerCmd::Rename {
                container,
                new_name,
            } => container::rename(&c, &container, &new_name).await,
            ContainerCmd::Port {
                container,
                private_port,
            } => container::port(&c, &container, private_port.as_deref()).await,
            ContainerCmd::Stats(a) => container::stats(&c, a).await,
            ContainerCmd::Update(a) => container::update(&c, a).await,
            ContainerCmd::Cp(a) => cp::cp(&c, a).await,
            ContainerCmd::Diff { container } => container::diff(&c, &container).await,
            ContainerCmd::Export(a) => container::export(&c, a).await,
        },
        Cmd::Images(a) => image::images(&c, a).await,
        Cmd::Image(ic) => match ic {
            ImageCmd::Ls(a) => image::images(&c, a).await,
            ImageCmd::Inspect(a) => image::inspect(&c, &a.names, a.format.as_deref()).await,
            ImageCmd::Rm(a) => image::rmi(&c, a).await,
            ImageCmd::Tag { source, target } => image::tag(&c, &source, &target).await,
            ImageCmd::Import(a) => image::import(&c, a).await,
            ImageCmd::History(a) => image::history(&c, a).await,
            ImageCmd::Prune(a) => image::prune(&c, a).await,
            ImageCmd::Pull(a) => image::pull(&c, a).await,
            ImageCmd::Push(a) => image::push(&c, a).await,
            ImageCmd::Save(a) => image::save(&c, a).await,
            ImageCmd::Load(a) => image::load(&c, a).await,
            ImageCmd::Build(a) => build::build(&c, a).await,
        },
        Cmd::Tag { source, target } => image::tag(&c, &source, &target).await,
        Cmd::Rmi(a) => image::rmi(&c, a).await,
        Cmd::Import(a) => image::import(&c, a).await,
        Cmd::Pull(a) => image::pull(&c, a).await,
        Cmd::Push(a) => image::push(&c, a).await,
        Cmd::Save(a) => image::save(&c, a).await,
        Cmd::Load(a) => image::load(&c, a).await,
        Cmd::History(a) => image::history(&c, a).await,
        Cmd::Commit(a) => image::commit(&c, a).await,
        Cmd::Build(a) => build::build(&c, a).await,
        Cmd::Login(a) => auth::login(&c, a).await,
        Cmd::Version { format } => system::version(&c, format.as_deref()).await,
        Cmd::Info { format } => system::info(&c, format.as_deref()).await,
        Cmd::Events(a) => system::events(&c, a).await,
        Cmd::System(sc) => match sc {
            SystemCmd::Df { verbose } => system::df(&c, verbose).await,
            SystemCmd::Info { format } => system::info(&c, format.as_deref()).await,
            SystemCmd::Events(a) => system::events(&c, a).await,
            SystemCmd::Prune(a) => system::prune(&c, a).await,
            SystemCmd::DialStdio => unreachable!("handled above"),
        },
        Cmd::Builder(crate::cli::BuilderCmd::Prune(a)) => build::prune(&c, a).await,
        Cmd::Volume(v) => volume::volume(&c, v).await,
        Cmd::Network(n) => network::network(&c, n).await,
        Cmd::Logout { .. } | Cmd::Daemon { .. } | Cmd::Registry(_) | Cmd::Debug(_) | Cmd::Context(_) => {
            unreachable!("handled above")
        }
    }
}
