//! How each metadata instruction changes the image config, and the history text
//! (`/bin/sh -c #(nop) ...`) the classic builder records for it.

use std::collections::HashMap;
use std::time::Duration;

use berth_api::models::{HealthConfig, ImageConfig};
use berth_dockerfile::dump::go_quote_list;
use berth_dockerfile::{CommandLine, Healthcheck, Instruction};
use berth_errdefs::{Error, Result};

use crate::context::clean;

/// The default SHELL.
pub fn default_shell() -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into()]
}

/// The stage's shell (SHELL instruction or the default).
pub fn shell_of(cfg: &ImageConfig) -> Vec<String> {
    cfg.shell
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(default_shell)
}

/// A RUN/CMD/ENTRYPOINT command line as argv: shell form gets the shell prepended.
pub fn argv(cl: &CommandLine, cfg: &ImageConfig) -> Vec<String> {
    if cl.prepend_shell {
        let mut v = shell_of(cfg);
        v.push(cl.args.first().cloned().unwrap_or_default());
        v
    } else {
        cl.args.clone()
    }
}

/// `/bin/sh -c #(nop) ` + text, as `withCmdCommentString` writes it (one space).
pub fn nop(text: &str) -> String {
    format!("/bin/sh -c #(nop) {text}")
}

/// As `commit(comment)` writes it: `#(nop) ` and the comment joined by a space (two).
pub fn nop2(text: &str) -> String {
    format!("/bin/sh -c #(nop)  {text}")
}

/// The command dockerd records for a metadata step, from its history text: the
/// shell, then `#(nop) ` and the comment as separate words ([`nop2`]'s two spaces) or
/// as one ([`nop`]'s, COPY and ADD).
pub fn nop_cmd(created_by: &str) -> Vec<String> {
    let shell = ["/bin/sh".to_owned(), "-c".to_owned()];
    match created_by.strip_prefix("/bin/sh -c ") {
        Some(rest) => match rest.strip_prefix("#(nop)  ") {
            Some(comment) => shell.into_iter().chain(["#(nop) ".to_owned(), comment.to_owned()]).collect(),
            None => shell.into_iter().chain([rest.to_owned()]).collect(),
        },
        None => vec![created_by.to_owned()],
    }
}

/// dockerd's `container_config` of a build step's image: the image's config as the
/// step's container had it, with the step's command, the parent image and the
/// container's host name.
pub fn container_config(cfg: &ImageConfig, cmd: Vec<String>, parent: &str, hostname: &str) -> serde_json::Value {
    let mut v = serde_json::to_value(cfg).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("Hostname".into(), hostname.into());
        o.insert("Cmd".into(), cmd.into());
        o.insert("Image".into(), parent.into());
    }
    v
}

/// Set `KEY=VALUE` in an env list, replacing an existing key in place.
pub fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let item = format!("{key}={value}");
    match env.iter_mut().find(|e| e.split('=').next() == Some(key)) {
        Some(e) => *e = item,
        None => env.push(item),
    }
}

/// The value of `key` in an env list.
pub fn get_env<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter()
        .find_map(|e| e.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
}

/// `80` → `80/tcp`; ranges `8000-8002/udp` expand. Errors on invalid ports.
pub fn parse_ports(spec: &str) -> Result<Vec<String>> {
    let (ports, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(Error::invalid(format!("invalid proto: {proto}")));
    }
    let bad = || Error::invalid(format!("invalid containerPort: {ports}"));
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (
            a.parse::<u16>().map_err(|_| bad())?,
            b.parse::<u16>().map_err(|_| bad())?,
        ),
        None => {
            let p = ports.parse::<u16>().map_err(|_| bad())?;
            (p, p)
        }
    };
    if hi < lo {
        return Err(bad());
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

fn go_duration(d: Duration) -> String {
    berth_api::query::go_duration_string(d)
}

/// What a metadata instruction did: the history `created_by` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub created_by: String,
}

/// Per-stage state the config evolution needs besides the config itself.
#[derive(Debug, Clone, Default)]
pub struct StageFlags {
    /// CMD was set in this stage (ENTRYPOINT then keeps it).
    pub cmd_set: bool,
}

/// Apply an already-expanded metadata instruction (everything but FROM, RUN, COPY,
/// ADD) to `cfg`. `author` is the image's author (MAINTAINER). ARG changes nothing in
/// the config but is recorded (`arg_text` is `KEY` or `KEY=VALUE`).
pub fn apply(
    cfg: &mut ImageConfig,
    author: &mut Option<String>,
    flags: &mut StageFlags,
    ins: &Instruction,
) -> Result<Applied> {
    let created_by = match ins {
        Instruction::Env(kvs) => {
            let mut env = cfg.env.take().unwrap_or_default();
            let mut text = "ENV".to_owned();
            for kv in kvs {
                set_env(&mut env, &kv.key, &kv.value);
                text.push_str(&format!(" {}={}", kv.key, kv.value));
            }
            cfg.env = Some(env);
            nop2(&text)
        }
        Instruction::Label(kvs) => {
            let mut labels: HashMap<String, String> = cfg.labels.take().unwrap_or_default();
            let mut text = "LABEL".to_owned();
            for kv in kvs {
                labels.insert(kv.key.clone(), kv.value.clone());
                text.push_str(&format!(" {}={}", kv.key, kv.value));
            }
            cfg.labels = Some(labels);
            nop2(&text)
        }
        Instruction::Maintainer(m) => {
            *author = Some(m.clone());
            nop2(&format!("MAINTAINER {m}"))
        }
        Instruction::Expose(ports) => {
            let mut exposed = cfg.exposed_ports.take().unwrap_or_default();
            let mut added = Vec::new();
            for p in ports {
                for port in parse_ports(p)? {
                    if !exposed.contains(&port) {
                        exposed.push(port.clone());
                    }
                    added.push(port);
                }
            }
            exposed.sort();
            cfg.exposed_ports = Some(exposed);
            nop2(&format!("EXPOSE {}", added.join(" ")))
        }
        Instruction::Volume(vols) => {
            let mut v = cfg.volumes.take().unwrap_or_default();
            for vol in vols {
                if vol.trim().is_empty() {
                    return Err(Error::invalid(
                        "VOLUME specified can not be an empty string",
                    ));
                }
                if !v.contains(vol) {
                    v.push(vol.clone());
                }
            }
            cfg.volumes = Some(v);
            nop2(&format!("VOLUME [{}]", vols.join(" ")))
        }
        Instruction::User(u) => {
            cfg.user = Some(u.clone());
            nop2(&format!("USER {u}"))
        }
        Instruction::Workdir(w) => {
            let base = cfg
                .working_dir
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "/".into());
            let joined = if w.starts_with('/') {
                w.clone()
            } else {
                format!("{base}/{w}")
            };
            let wd = format!("/{}", clean(&joined));
            cfg.working_dir = Some(wd.clone());
            nop(&format!("WORKDIR {wd}"))
        }
        Instruction::Cmd(cl) => {
            let cmd = argv(cl, cfg);
            cfg.cmd = Some(cmd.clone());
            flags.cmd_set = true;
            nop2(&format!("CMD {}", go_quote_list(&cmd)))
        }
        Instruction::Entrypoint(cl) => {
            let ep = if cl.prepend_shell && cl.args.first().is_none_or(|s| s.is_empty()) {
                Vec::new()
            } else {
                argv(cl, cfg)
            };
            cfg.entrypoint = if ep.is_empty() {
                None
            } else {
                Some(ep.clone())
            };
            if !flags.cmd_set {
                cfg.cmd = None;
            }
            nop2(&format!("ENTRYPOINT {}", go_quote_list(&ep)))
        }
        Instruction::Shell(sh) => {
            cfg.shell = Some(sh.clone());
            nop2(&format!("SHELL [{}]", sh.join(" ")))
        }
        Instruction::StopSignal(s) => {
            cfg.stop_signal = Some(s.clone());
            nop2(&format!("STOPSIGNAL {s}"))
        }
        Instruction::Healthcheck(h) => {
            let text = match h {
                Healthcheck::None => {
                    cfg.healthcheck = Some(HealthConfig {
                        test: Some(vec!["NONE".into()]),
                        ..Default::default()
                    });
                    "HEALTHCHECK &{[\"NONE\"] \"0s\" \"0s\" \"0s\" '\\x00'}".to_owned()
                }
                Healthcheck::Check {
                    test,
                    interval,
                    timeout,
                    start_period,
                    start_interval,
                    retries,
                } => {
                    let ns = |d: &Duration| {
                        if d.is_zero() {
                            None
                        } else {
                            Some(d.as_nanos() as i64)
                        }
                    };
                    cfg.healthcheck = Some(HealthConfig {
                        test: Some(test.clone()),
                        interval: ns(interval),
                        timeout: ns(timeout),
                        start_period: ns(start_period),
                        start_interval: ns(start_interval),
                        retries: if *retries == 0 {
                            None
                        } else {
                            Some(*retries as i64)
                        },
                    });
                    format!(
                        "HEALTHCHECK &{{{} \"{}\" \"{}\" \"{}\" '\\x{:02x}'}}",
                        go_quote_list(test),
                        go_duration(*interval),
                        go_duration(*timeout),
                        go_duration(*start_period),
                        retries
                    )
                }
            };
            nop2(&text)
        }
        Instruction::Onbuild { expression } => {
            let t = expression.trim_start();
            let kw = t
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            if matches!(kw.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                return Err(Error::invalid(format!(
                    "{kw} isn't allowed as an ONBUILD trigger"
                )));
            }
            let mut ob = cfg.on_build.take().unwrap_or_default();
            ob.push(expression.clone());
            cfg.on_build = Some(ob);
            nop2(&format!("ONBUILD {expression}"))
        }
        Instruction::Arg(defs) => {
            let text: Vec<String> = defs
                .iter()
                .map(|d| match &d.value {
                    Some(v) => format!("{}={v}", d.key),
                    None => d.key.clone(),
                })
                .collect();
            nop2(&format!("ARG {}", text.join(" ")))
        }
        other => {
            return Err(Error::internal(format!(
                "{} is not a metadata instruction",
                other.keyword()
            )))
        }
    };
    Ok(Applied { created_by })
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_dockerfile::{ArgDef, KeyValue};

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: v.into(),
            no_delim: false,
        }
    }

    #[test]
    fn config_evolution() {
        let mut cfg = ImageConfig {
            env: Some(vec!["PATH=/bin".into()]),
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        };
        let mut author = None;
        let mut f = StageFlags::default();
        let a = apply(
            &mut cfg,
            &mut author,
            &mut f,
            &Instruction::Env(vec![kv("A", "1"), kv("PATH", "/usr/bin")]),
        )
        .unwrap();
        assert_eq!(a.created_by, "/bin/sh -c #(nop)  ENV A=1 PATH=/usr/bin");
        assert_eq!(cfg.env.as_deref().unwrap(), ["PATH=/usr/bin", "A=1"]);

        apply(
            &mut cfg,
            &mut author,
            &mut f,
            &Instruction::Workdir("/app".into()),
        )
        .unwrap();
        let a = apply(
            &mut cfg,
            &mut author,
            &mut f,
            &Instruction::Workdir("sub/../x".into()),
        )
        .unwrap();
        assert_eq!(cfg.working_dir.as_deref(), Some("/app/x"));
        assert_eq!(a.created_by, "/bin/sh -c #(nop) WORKDIR /app/x");

        // ENTRYPOINT without CMD in this stage drops the inherited CMD.
        apply(
            &mut cfg,
            &mut author,
            &mut f,
            &Instruction::Entrypoint(CommandLine::exec(["/run"])),
        )
        .unwrap();
        assert_eq!(cfg.cmd, None);
        apply(
            &mut cfg,
            &mut author,
            &mut f,
            &Instruction::Shell(vec!["/bin/ash".into(), "-ec".into()]),
        )
        .unwrap();
        let a = apply(
            &mut cfg,
            &mut author,
            &mut f,
            &Instruction::Cmd(CommandLine::shell("echo $HOME")),
        )
        .unwrap();
        assert_eq!(
            cfg.cmd.as_deref().unwrap(),
            ["/bin/ash", "-ec", "echo $HOME"]
        );
        assert_eq!(
            a.created_by,
            "/bin/sh -c #(nop)  CMD [\"/bin/ash\" \"-ec\" \"echo $HOME\"]"
        );
        // ...but keeps a CMD set in the stage.
        apply(
            &mut cfg,
            &mut author,
            &mut f,
            &Instruction::Entrypoint(CommandLine::exec(["/run2"])),
        )
        .unwrap();
        assert!(cfg.cmd.is_some());

        let a = apply(
            &mut cfg,
            &mut author,
            &mut f,
            &Instruction::Expose(vec!["80".into(), "53/udp".into(), "90-91".into()]),
        )
        .unwrap();
        assert_eq!(
            cfg.exposed_ports.as_deref().unwrap(),
            ["53/udp", "80/tcp", "90/tcp", "91/tcp"]
        );
        assert_eq!(
            a.created_by,
            "/bin/sh -c #(nop)  EXPOSE 80/tcp 53/udp 90/tcp 91/tcp"
        );
        assert!(apply(
            &mut cfg,
            &mut author,
            &mut f,
            &Instruction::Expose(vec!["x".into()])
        )
        .is_err());

        apply(
            &mut cfg,
            &mut author,
            &mut f,
            &Instruction::Label(vec![kv("a", "b c")]),
        )
        .unwrap();
        assert_eq!(cfg.labels.as_ref().unwrap()["a"], "b c");
        apply(
            &mut cfg,
            &mut author,
            &mut f,
            &Instruction::User("1000:1000".into()),
        )
        .unwrap();
        assert_eq!(cfg.user.as_deref(), Some("1000:1000"));
        apply(
            &mut cfg,
            &mut author,
            &mut f,
            &Instruction::Volume(vec!["/data".into()]),
        )
        .unwrap();
        assert_eq!(cfg.volumes.as_deref().unwrap(), ["/data"]);
        apply(
            &mut cfg,
            &mut author,
            &mut f,
            &Instruction::StopSignal("SIGUSR1".into()),
        )
        .unwrap();
        assert_eq!(cfg.stop_signal.as_deref(), Some("SIGUSR1"));
        apply(
            &mut cfg,
            &mut author,
            &mut f,
            &Instruction::Maintainer("me".into()),
        )
        .unwrap();
        assert_eq!(author.as_deref(), Some("me"));
        apply(
            &mut cfg,
            &mut author,
            &mut f,
            &Instruction::Onbuild {
                expression: "RUN echo hi".into(),
            },
        )
        .unwrap();
        assert_eq!(cfg.on_build.as_deref().unwrap(), ["RUN echo hi"]);
        assert!(apply(
            &mut cfg,
            &mut author,
            &mut f,
            &Instruction::Onbuild {
                expression: "FROM x".into()
            }
        )
        .is_err());

        let hc = Healthcheck::Check {
            test: vec!["CMD-SHELL".into(), "true".into()],
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(90),
            start_period: Duration::ZERO,
            start_interval: Duration::ZERO,
            retries: 3,
        };
        let a = apply(&mut cfg, &mut author, &mut f, &Instruction::Healthcheck(hc)).unwrap();
        let h = cfg.healthcheck.clone().unwrap();
        assert_eq!(h.interval, Some(5_000_000_000));
        assert_eq!(h.retries, Some(3));
        assert_eq!(h.start_period, None);
        assert_eq!(a.created_by, "/bin/sh -c #(nop)  HEALTHCHECK &{[\"CMD-SHELL\" \"true\"] \"5s\" \"1m30s\" \"0s\" '\\x03'}");
        let a = apply(
            &mut cfg,
            &mut author,
            &mut f,
            &Instruction::Arg(vec![ArgDef {
                key: "V".into(),
                value: Some("1".into()),
            }]),
        )
        .unwrap();
        assert_eq!(a.created_by, "/bin/sh -c #(nop)  ARG V=1");
    }
}
