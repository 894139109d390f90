//! What BuildKit's dockerfile2llb does for RUN before running it: heredoc
//! scripts (`RUN <<EOF`) and `--mount` specifications turned into the mounts the
//! engine sets up, plus the part of the cache key they contribute.

use std::collections::BTreeMap;

use berth_dockerfile::{
    chomp_heredoc_content, heredoc::parse_heredoc, Mount, MountType, Run, ShareMode,
};

use crate::backend::{CacheSharing, Failure, RunMount, RunMountKind, SecretBytes, SecretEnv};
use crate::context::{clean, Context, Kind};
use crate::copy::{hash_entries, OutEntry};

fn fail(msg: impl Into<String>) -> Failure {
    Failure::invalid(msg)
}

/// Where BuildKit puts a heredoc script that has a shebang.
pub const PIPES_DIR: &str = "/dev/pipes";

fn entry(kind: Kind, mode: u32, data: Vec<u8>) -> OutEntry {
    OutEntry {
        kind,
        mode,
        uid: 0,
        gid: 0,
        mtime: chrono::Utc::now().timestamp().max(0) as u64,
        data,
    }
}

/// The command of a RUN with heredocs (`shell` prepends the stage's SHELL):
/// * the command is a single heredoc starting with `#!`: the document is a 0755
///   file under `/dev/pipes/` (a read-only mount) and the shell runs that file;
/// * the command is a single heredoc: its (tab-stripped for `<<-`) content is
///   the shell's command;
/// * otherwise the shell gets the command line followed by every heredoc body
///   and terminator, and handles them itself.
///
/// Returns the argv and the inline-script mount, if any.
pub fn heredoc_command(
    r: &Run,
    shell: &dyn Fn(Vec<String>) -> Vec<String>,
) -> Result<(Vec<String>, Option<RunMount>), Failure> {
    if r.files.is_empty() {
        return Ok((Vec::new(), None));
    }
    if r.cmd.args.len() != 1 || !r.cmd.prepend_shell {
        return Err(fail("parsing produces more than one file for RUN"));
    }
    let line = &r.cmd.args[0];
    let single = parse_heredoc(line.trim()).ok().flatten();
    let Some(_) = single else {
        let mut full = line.clone();
        for f in &r.files {
            full.push('\n');
            full.push_str(&f.data);
            full.push_str(&f.name);
        }
        return Ok((shell(vec![full]), None));
    };
    let f = &r.files[0];
    let data = if f.chomp {
        chomp_heredoc_content(&f.data)
    } else {
        f.data.clone()
    };
    if data.starts_with("#!") {
        let mut files = BTreeMap::new();
        files.insert(String::new(), entry(Kind::Dir, 0o755, Vec::new()));
        files.insert(f.name.clone(), entry(Kind::File, 0o755, data.into_bytes()));
        let path = format!("{PIPES_DIR}/{}", f.name);
        let m = RunMount {
            target: PIPES_DIR.into(),
            readonly: true,
            kind: RunMountKind::Files(files),
        };
        return Ok((shell(vec![path]), Some(m)));
    }
    Ok((shell(vec![data]), None))
}

/// Mounts of one RUN, resolved.
#[derive(Debug, Default)]
pub struct Resolved {
    pub mounts: Vec<RunMount>,
    pub secret_env: Vec<SecretEnv>,
    /// What the mounts add to the cache key's text (never secret content).
    pub key: String,
    /// Hash of the context files bind-mounted (like COPY's content hash).
    pub content: String,
}

/// Inputs to [`resolve_mounts`].
pub struct MountEnv<'a> {
    pub workdir: &'a str,
    pub ctx: &'a Context,
    pub secrets: &'a BTreeMap<String, SecretBytes>,
    /// `from=`: a stage name/index or an image, to an image id.
    pub from_image: &'a mut dyn FnMut(&str) -> Result<String, Failure>,
}

fn abs_target(workdir: &str, t: &str) -> Result<String, Failure> {
    if t.is_empty() {
        return Err(fail("invalid mount target \"\": a target is required"));
    }
    let joined = if t.starts_with('/') {
        t.to_owned()
    } else {
        format!("{}/{t}", if workdir.is_empty() { "/" } else { workdir })
    };
    let c = clean(&joined);
    if c.is_empty() {
        return Err(fail(format!("invalid mount target {:?}", format!("/{c}"))));
    }
    Ok(format!("/{c}"))
}

fn basename(p: &str) -> &str {
    p.trim_end_matches('/').rsplit('/').next().unwrap_or(p)
}

/// A context entry as a mount file: context files are mounted owned by root.
fn owned_by_root(e: &crate::context::Entry) -> OutEntry {
    OutEntry { kind: e.kind.clone(), mode: e.mode, uid: 0, gid: 0, mtime: e.mtime, data: e.data.clone() }
}

/// The context subtree at `src` as mount files (`""` is the root).
fn context_files(ctx: &Context, src: &str) -> Result<BTreeMap<String, OutEntry>, Failure> {
    let src = clean(src);
    let mut out = BTreeMap::new();
    let root = if src.is_empty() {
        entry(Kind::Dir, 0o755, Vec::new())
    } else {
        let e = ctx.get(&src).ok_or_else(|| {
            fail(format!(
                "failed to compute cache key: failed to calculate checksum of ref: \"/{src}\": not found"
            ))
        })?;
        if let Kind::Symlink(_) = e.kind {
            return Err(fail(format!(
                "RUN --mount: the bind source \"/{src}\" is a symbolic link; name its target instead"
            )));
        }
        owned_by_root(e)
    };
    let is_dir = root.kind == Kind::Dir;
    out.insert(String::new(), root);
    if is_dir {
        let prefix_len = if src.is_empty() { 0 } else { src.len() + 1 };
        for (p, e) in ctx.descendants(&src) {
            out.insert(p[prefix_len..].to_owned(), owned_by_root(e));
        }
    }
    Ok(out)
}

/// Turn parsed `--mount`s into engine mounts, as BuildKit does.
pub fn resolve_mounts(mounts: &[Mount], env: MountEnv<'_>) -> Result<Resolved, Failure> {
    let mut r = Resolved::default();
    let mut content = Vec::new();
    for m in mounts {
        match m.typ {
            MountType::Bind => {
                let target = abs_target(env.workdir, &m.target)?;
                if m.from.is_empty() {
                    let files = context_files(env.ctx, &m.source)?;
                    let h = hash_entries(&files);
                    r.key.push_str(&format!(
                        "bind context src=/{} target={target} ro={} hash={h}\n",
                        clean(&m.source),
                        m.read_only
                    ));
                    content.push(h);
                    r.mounts.push(RunMount {
                        target,
                        readonly: m.read_only,
                        kind: RunMountKind::Files(files),
                    });
                } else {
                    let id = (env.from_image)(&m.from)?;
                    let path = format!("/{}", clean(&m.source));
                    r.key.push_str(&format!(
                        "bind image={id} src={path} target={target} ro={}\n",
                        m.read_only
                    ));
                    r.mounts.push(RunMount {
                        target,
                        readonly: m.read_only,
                        kind: RunMountKind::Image { image_id: id, path },
                    });
                }
            }
            MountType::Cache => {
                if !m.from.is_empty() || !m.source.is_empty() {
                    return Err(fail(
                        "RUN --mount=type=cache with from= or source= is not supported by berth",
                    ));
                }
                let target = abs_target(env.workdir, &m.target)?;
                let id = if m.cache_id.is_empty() {
                    target.clone()
                } else {
                    m.cache_id.clone()
                };
                let sharing = match m.cache_sharing {
                    None | Some(ShareMode::Shared) => CacheSharing::Shared,
                    Some(ShareMode::Private) => CacheSharing::Private,
                    Some(ShareMode::Locked) => CacheSharing::Locked,
                };
                let (mode, uid, gid) = (
                    m.mode.unwrap_or(0o755),
                    m.uid.unwrap_or(0),
                    m.gid.unwrap_or(0),
                );
                r.key.push_str(&format!(
                    "cache id={id} target={target} sharing={sharing:?} mode={mode:o} uid={uid} gid={gid} ro={}\n",
                    m.read_only
                ));
                r.mounts.push(RunMount {
                    target,
                    readonly: m.read_only,
                    kind: RunMountKind::Cache {
                        id,
                        sharing,
                        mode,
                        uid,
                        gid,
                    },
                });
            }
            MountType::Tmpfs => {
                let target = abs_target(env.workdir, &m.target)?;
                r.key
                    .push_str(&format!("tmpfs target={target} size={}\n", m.size_limit));
                r.mounts.push(RunMount {
                    target,
                    readonly: false,
                    kind: RunMountKind::Tmpfs { size: m.size_limit },
                });
            }
            MountType::Secret => {
                let id = if !m.source.is_empty() {
                    m.source.clone()
                } else if !m.cache_id.is_empty() {
                    m.cache_id.clone()
                } else {
                    basename(&m.target).to_owned()
                };
                let target = if !m.target.is_empty() {
                    Some(abs_target(env.workdir, &m.target)?)
                } else if m.env.is_none() {
                    Some(format!("/run/secrets/{}", basename(&id)))
                } else {
                    None
                };
                let (mode, uid, gid) = (
                    m.mode.unwrap_or(0o400),
                    m.uid.unwrap_or(0),
                    m.gid.unwrap_or(0),
                );
                r.key.push_str(&format!(
                    "secret id={id} target={target:?} env={:?} required={} mode={mode:o} uid={uid} gid={gid}\n",
                    m.env, m.required
                ));
                let Some(data) = env.secrets.get(&id) else {
                    if m.required {
                        return Err(fail(format!("secret {id}: not found")));
                    }
                    continue;
                };
                if let Some(target) = target {
                    r.mounts.push(RunMount {
                        target,
                        readonly: true,
                        kind: RunMountKind::Secret {
                            data: data.clone(),
                            mode,
                            uid,
                            gid,
                        },
                    });
                }
                if let Some(name) = &m.env {
                    r.secret_env.push(SecretEnv {
                        name: name.clone(),
                        value: data.clone(),
                    });
                }
            }
            MountType::Ssh => {
                if m.required {
                    return Err(fail(
                        "RUN --mount=type=ssh: no SSH agent can be forwarded to berth's classic builder",
                    ));
                }
                r.key.push_str("ssh (not forwarded)\n");
            }
        }
    }
    r.content = content.join(",");
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Entry;
    use berth_dockerfile::{CommandLine, InlineFile};

    fn sh(mut a: Vec<String>) -> Vec<String> {
        let mut v = vec!["/bin/sh".to_owned(), "-c".to_owned()];
        v.append(&mut a);
        v
    }

    fn run(cmd: &str, files: &[(&str, &str, bool)]) -> Run {
        Run {
            cmd: CommandLine::shell(cmd),
            files: files
                .iter()
                .map(|(n, d, c)| InlineFile {
                    name: n.to_string(),
                    data: d.to_string(),
                    chomp: *c,
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn heredoc_commands() {
        let (argv, m) =
            heredoc_command(&run("<<EOF", &[("EOF", "echo hi\n", false)]), &sh).unwrap();
        assert_eq!(argv, ["/bin/sh", "-c", "echo hi\n"]);
        assert!(m.is_none());
        let (argv, _) =
            heredoc_command(&run("<<-EOF", &[("EOF", "\techo hi\n", true)]), &sh).unwrap();
        assert_eq!(argv[2], "echo hi\n");
        let (argv, m) = heredoc_command(
            &run(
                "<<EOF",
                &[("EOF", "#!/usr/bin/env python3\nprint(1)\n", false)],
            ),
            &sh,
        )
        .unwrap();
        assert_eq!(argv, ["/bin/sh", "-c", "/dev/pipes/EOF"]);
        let m = m.unwrap();
        assert!(m.readonly && m.target == "/dev/pipes");
        let RunMountKind::Files(f) = m.kind else {
            panic!()
        };
        assert_eq!(f["EOF"].mode, 0o755);
        assert_eq!(f["EOF"].data, b"#!/usr/bin/env python3\nprint(1)\n");
        let (argv, _) = heredoc_command(
            &run(
                "<<A cat > /f1 && cat <<B > /f2",
                &[("A", "a\n", false), ("B", "b\n", false)],
            ),
            &sh,
        )
        .unwrap();
        assert_eq!(argv[2], "<<A cat > /f1 && cat <<B > /f2\na\nA\nb\nB");
    }

    fn resolve(
        specs: &[&str],
        ctx: &Context,
        secrets: &BTreeMap<String, SecretBytes>,
    ) -> Result<Resolved, Failure> {
        let mounts: Vec<Mount> = specs
            .iter()
            .map(|s| berth_dockerfile::parse_mount(s, &mut |v| Ok(v.to_owned())).unwrap())
            .collect();
        resolve_mounts(
            &mounts,
            MountEnv {
                workdir: "/app",
                ctx,
                secrets,
                from_image: &mut |f| Ok(format!("sha256:{f}")),
            },
        )
    }

    #[test]
    fn mounts_resolve_like_buildkit() {
        let mut ctx = Context::default();
        ctx.insert("src/a.txt".into(), Entry::file(0o644, "A"));
        let mut secrets = BTreeMap::new();
        secrets.insert("tok".to_owned(), SecretBytes(b"s3cret".to_vec()));
        let r = resolve(
            &[
                "type=cache,target=.cache",
                "type=bind,source=src,target=/src",
                "type=bind,from=builder,source=/out,target=/o,rw",
                "type=tmpfs,target=/t,size=1m",
                "type=secret,id=tok",
                "type=secret,id=tok,env=TOKEN",
                "type=secret,id=missing",
            ],
            &ctx,
            &secrets,
        )
        .unwrap();
        let targets: Vec<&str> = r.mounts.iter().map(|m| m.target.as_str()).collect();
        assert_eq!(
            targets,
            ["/app/.cache", "/src", "/o", "/t", "/run/secrets/tok"]
        );
        assert!(
            matches!(&r.mounts[0].kind, RunMountKind::Cache { id, mode: 0o755, .. } if id == "/app/.cache")
        );
        assert!(r.mounts[1].readonly && !r.mounts[2].readonly);
        assert!(
            matches!(&r.mounts[2].kind, RunMountKind::Image { image_id, path } if image_id == "sha256:builder" && path == "/out")
        );
        assert!(matches!(
            r.mounts[3].kind,
            RunMountKind::Tmpfs { size: 1048576 }
        ));
        assert!(matches!(
            &r.mounts[4].kind,
            RunMountKind::Secret { mode: 0o400, .. }
        ));
        assert_eq!(r.secret_env.len(), 1);
        assert_eq!(r.secret_env[0].name, "TOKEN");
        assert!(!r.key.contains("s3cret") && !format!("{r:?}").contains("s3cret"));
        // the bound context files are part of the key
        let mut ctx2 = ctx.clone();
        ctx2.insert("src/a.txt".into(), Entry::file(0o644, "B"));
        let r2 = resolve(&["type=bind,source=src,target=/src"], &ctx2, &secrets).unwrap();
        let r1 = resolve(&["type=bind,source=src,target=/src"], &ctx, &secrets).unwrap();
        assert_ne!(r1.content, r2.content);
        // errors
        let e = resolve(&["type=secret,id=nope,required"], &ctx, &secrets).unwrap_err();
        assert_eq!(e.message, "secret nope: not found");
        let e = resolve(&["type=bind,source=missing,target=/m"], &ctx, &secrets).unwrap_err();
        assert!(
            e.message.contains("\"/missing\": not found"),
            "{}",
            e.message
        );
        assert!(resolve(&["type=tmpfs,target=/"], &ctx, &secrets).is_err());
    }
}
