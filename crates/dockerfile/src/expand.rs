//! Where Docker expands variables in instructions, and the predefined ARGs.

use crate::instructions::*;
use crate::mount::parse_mount;
use crate::shell::{EmptyEnv, Env, Lex, LexError};

/// Proxy ARGs usable without an `ARG` line (kept out of the image history).
pub const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Automatic platform ARGs of the global scope.
pub const PLATFORM_ARGS: [&str; 8] = [
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
];

/// True for the proxy and automatic platform ARG names.
pub fn is_predefined_arg(name: &str) -> bool {
    PROXY_ARGS.contains(&name) || PLATFORM_ARGS.contains(&name)
}

/// The automatic platform ARGs for `os/arch[/variant]` build and target platforms.
pub fn platform_args(build_platform: &str, target_platform: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (prefix, p) in [("BUILD", build_platform), ("TARGET", target_platform)] {
        let mut parts = p.splitn(3, '/');
        let os = parts.next().unwrap_or("").to_string();
        let arch = parts.next().unwrap_or("").to_string();
        let variant = parts.next().unwrap_or("").to_string();
        out.push((format!("{prefix}PLATFORM"), p.to_string()));
        out.push((format!("{prefix}OS"), os));
        out.push((format!("{prefix}ARCH"), arch));
        out.push((format!("{prefix}VARIANT"), variant));
    }
    out
}

/// Expands variables with the default (`\`) escape token.
pub fn expand_instruction(ins: &Instruction, env: &dyn Env) -> Result<Instruction, LexError> {
    expand_instruction_with(ins, env, &Lex::new('\\'))
}

/// Expands variables where Docker does: ADD, COPY, ENV, EXPOSE (split into
/// words), FROM (base and platform), LABEL, STOPSIGNAL, USER, VOLUME,
/// WORKDIR, ARG, and the values of RUN `--mount`. RUN/CMD/ENTRYPOINT/SHELL,
/// HEALTHCHECK, ONBUILD and MAINTAINER are returned unchanged. Heredoc
/// contents of COPY/ADD with an unquoted terminator are expanded without
/// quote processing.
pub fn expand_instruction_with(
    ins: &Instruction,
    env: &dyn Env,
    lex: &Lex,
) -> Result<Instruction, LexError> {
    let w = |s: &str| lex.process_word(s, env);
    let ws = |v: &[String]| v.iter().map(|s| w(s)).collect::<Result<Vec<_>, _>>();
    let kvs = |v: &[KeyValue]| {
        v.iter()
            .map(|kv| {
                Ok(KeyValue {
                    key: w(&kv.key)?,
                    value: w(&kv.value)?,
                    no_delim: kv.no_delim,
                })
            })
            .collect::<Result<Vec<_>, LexError>>()
    };
    let contents = |v: &[SourceContent]| {
        let mut raw = Lex::new('\\');
        raw.skip_process_quotes = true;
        v.iter()
            .map(|c| {
                let data = if c.expand {
                    raw.process_word(&c.data, env)?
                } else {
                    c.data.clone()
                };
                Ok(SourceContent { data, ..c.clone() })
            })
            .collect::<Result<Vec<_>, LexError>>()
    };
    Ok(match ins {
        Instruction::From {
            base,
            name,
            platform,
        } => Instruction::From {
            base: w(base)?,
            name: name.clone(),
            platform: platform.as_deref().map(w).transpose()?,
        },
        Instruction::Env(v) => Instruction::Env(kvs(v)?),
        Instruction::Label(v) => Instruction::Label(kvs(v)?),
        Instruction::Expose(ports) => {
            let mut out = Vec::new();
            for p in ports {
                out.extend(lex.process_words(p, env)?);
            }
            Instruction::Expose(out)
        }
        Instruction::Volume(v) => Instruction::Volume(ws(v)?),
        Instruction::User(u) => Instruction::User(w(u)?),
        Instruction::Workdir(p) => Instruction::Workdir(w(p)?),
        Instruction::StopSignal(s) => Instruction::StopSignal(w(s)?),
        Instruction::Arg(defs) => Instruction::Arg(
            defs.iter()
                .map(|d| {
                    Ok(ArgDef {
                        key: w(&d.key)?,
                        value: d.value.as_deref().map(w).transpose()?,
                    })
                })
                .collect::<Result<_, LexError>>()?,
        ),
        Instruction::Add(a) => Instruction::Add(Add {
            sources: ws(&a.sources)?,
            contents: contents(&a.contents)?,
            dest: w(&a.dest)?,
            chown: w(&a.chown)?,
            chmod: w(&a.chmod)?,
            checksum: w(&a.checksum)?,
            ..a.clone()
        }),
        Instruction::Copy(c) => {
            if !c.from.is_empty() && lex.process_word(&c.from, &EmptyEnv)? != c.from {
                return Err(LexError(
                    "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround"
                        .into(),
                ));
            }
            Instruction::Copy(Copy {
                sources: ws(&c.sources)?,
                contents: contents(&c.contents)?,
                dest: w(&c.dest)?,
                chown: w(&c.chown)?,
                chmod: w(&c.chmod)?,
                ..c.clone()
            })
        }
        Instruction::Run(r) => {
            let mut mounts = Vec::new();
            for spec in &r.mount_specs {
                let mut ex = |v: &str| lex.process_word(v, env).map_err(|e| e.0);
                mounts.push(parse_mount(spec, &mut ex).map_err(LexError)?);
            }
            Instruction::Run(Run {
                mounts,
                ..r.clone()
            })
        }
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::EnvList;

    #[test]
    fn expands_where_docker_does() {
        let env = EnvList::from_slice(&["D=/app", "P=80 443", "U=me"]);
        let ins = Instruction::Expose(vec!["$P".into()]);
        assert_eq!(
            expand_instruction(&ins, &env).unwrap(),
            Instruction::Expose(vec!["80".into(), "443".into()])
        );
        let ins = Instruction::Workdir("$D/x".into());
        assert_eq!(
            expand_instruction(&ins, &env).unwrap(),
            Instruction::Workdir("/app/x".into())
        );
        let ins = Instruction::Cmd(CommandLine::shell("echo $D"));
        assert_eq!(expand_instruction(&ins, &env).unwrap(), ins);
        assert!(
            is_predefined_arg("no_proxy")
                && is_predefined_arg("TARGETARCH")
                && !is_predefined_arg("PATH")
        );
        let pa = platform_args("linux/amd64", "linux/arm/v7");
        assert!(pa.contains(&("TARGETVARIANT".into(), "v7".into())));
        assert!(pa.contains(&("BUILDARCH".into(), "amd64".into())));
    }
}
