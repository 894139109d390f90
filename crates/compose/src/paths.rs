//! Resolution of relative paths in a model against the project (or included/extended
//! file's) directory, like compose-go's `paths.ResolveRelativePaths`.

use crate::path::{is_abs, is_windows_abs, join, KeyPath};
use crate::value::{Map, Value};

/// Context for path resolution.
pub struct Resolver<'a> {
    /// Directory relative paths are resolved against (may itself be relative).
    pub working_dir: &'a str,
    /// `$HOME`, for `~` expansion.
    pub home: Option<&'a str>,
}

#[derive(Clone, Copy)]
enum Kind {
    Context,
    MaybeUnix,
    Abs,
    Extends,
    SymbolicLink,
    VolumeMount,
    VolumeDriverOpts,
}

const RESOLVERS: &[(&str, Kind)] = &[
    ("services.*.build.context", Kind::Context),
    ("services.*.build.additional_contexts.*", Kind::Context),
    ("services.*.build.ssh.*", Kind::MaybeUnix),
    ("services.*.env_file.*.path", Kind::Abs),
    ("services.*.label_file.*", Kind::Abs),
    ("services.*.extends.file", Kind::Extends),
    ("services.*.develop.watch.*.path", Kind::SymbolicLink),
    ("services.*.volumes.*", Kind::VolumeMount),
    ("configs.*.file", Kind::MaybeUnix),
    ("secrets.*.file", Kind::MaybeUnix),
    ("include.path", Kind::Abs),
    ("include.project_directory", Kind::Abs),
    ("include.env_file", Kind::Abs),
    ("volumes.*", Kind::VolumeDriverOpts),
];

/// Whether a reference is a remote resource (git or OCI) rather than a local file.
pub fn is_remote_resource(p: &str) -> bool {
    p.starts_with("oci://")
        || p.starts_with("git@")
        || p.starts_with("https://")
        || p.starts_with("http://")
        || p.starts_with("git://")
        || p.starts_with("ssh://")
}

fn is_remote_context(p: &str) -> bool {
    [
        "https://",
        "http://",
        "git://",
        "ssh://",
        "github.com/",
        "git@",
    ]
    .iter()
    .any(|x| p.starts_with(x))
}

impl Resolver<'_> {
    /// Resolves every relative path of `model` in place.
    pub fn resolve(&self, model: &mut Map) -> Result<(), String> {
        for (k, v) in model.iter_mut() {
            self.walk(v, &KeyPath::root().next(k))?;
        }
        Ok(())
    }

    fn walk(&self, v: &mut Value, p: &KeyPath) -> Result<(), String> {
        for (pattern, kind) in RESOLVERS {
            if p.matches(pattern) {
                return self.apply(*kind, v);
            }
        }
        match v {
            Value::Map(m) => {
                for (k, e) in m.iter_mut() {
                    self.walk(e, &p.next(k))?;
                }
            }
            Value::Seq(items) => {
                let next = p.next("[]");
                for e in items.iter_mut() {
                    self.walk(e, &next)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// `~` expansion with `$HOME`.
    pub fn expand_user(&self, p: &str) -> String {
        if let Some(rest) = p.strip_prefix('~') {
            if let Some(home) = self.home {
                return join(home, rest);
            }
        }
        p.to_string()
    }

    fn abs_path(&self, v: &mut Value) -> Result<(), String> {
        match v {
            Value::Seq(items) => {
                for e in items.iter_mut() {
                    self.abs_path(e)?;
                }
                Ok(())
            }
            Value::String(s) => {
                let e = self.expand_user(s);
                *s = if is_abs(&e) || e.is_empty() {
                    e
                } else {
                    join(self.working_dir, &e)
                };
                Ok(())
            }
            other => Err(format!("unexpected type {}", other.kind())),
        }
    }

    fn maybe_unix_path(&self, v: &mut Value) {
        if let Value::String(s) = v {
            let e = self.expand_user(s);
            *s = if !is_abs(&e) && !is_windows_abs(&e) {
                join(self.working_dir, &e)
            } else {
                e
            };
        }
    }

    fn apply(&self, kind: Kind, v: &mut Value) -> Result<(), String> {
        match kind {
            Kind::Abs => self.abs_path(v),
            Kind::MaybeUnix => {
                self.maybe_unix_path(v);
                Ok(())
            }
            Kind::Context => {
                if let Value::String(s) = v {
                    if s.contains("://") || s.starts_with("service:") || is_remote_context(s) {
                        return Ok(());
                    }
                }
                self.abs_path(v)
            }
            Kind::Extends => {
                if let Value::String(s) = v {
                    if is_remote_resource(s) {
                        return Ok(());
                    }
                }
                self.abs_path(v)
            }
            Kind::SymbolicLink => {
                self.abs_path(v)?;
                if let Value::String(s) = v {
                    if let Ok(md) = std::fs::symlink_metadata(s.as_str()) {
                        if md.file_type().is_symlink() {
                            if let Ok(real) = std::fs::canonicalize(s.as_str()) {
                                *s = real.to_string_lossy().into_owned();
                            }
                        }
                    }
                }
                Ok(())
            }
            Kind::VolumeMount => {
                if let Value::Map(vol) = v {
                    if vol.get("type").and_then(Value::as_str) != Some("bind") {
                        return Ok(());
                    }
                    match vol.get_mut("source") {
                        Some(src) => self.maybe_unix_path(src),
                        None => {
                            return Err(
                                "invalid mount config for type \"bind\": field Source must not be empty"
                                    .to_string(),
                            )
                        }
                    }
                }
                Ok(())
            }
            Kind::VolumeDriverOpts => {
                let Value::Map(vol) = v else {
                    return Ok(());
                };
                if vol.get("driver").and_then(Value::as_str) != Some("local") {
                    return Ok(());
                }
                if let Some(Value::Map(opts)) = vol.get_mut("driver_opts") {
                    if opts.get("o").and_then(Value::as_str) == Some("bind") {
                        if let Some(dev) = opts.get_mut("device") {
                            self.maybe_unix_path(dev);
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_build_context_and_bind_sources() {
        let mut vol = Map::new();
        vol.insert("type".into(), Value::from("bind"));
        vol.insert("source".into(), Value::from("./data"));
        let mut build = Map::new();
        build.insert("context".into(), Value::from("."));
        let mut remote = Map::new();
        remote.insert("context".into(), Value::from("https://github.com/x/y.git"));
        let mut svc = Map::new();
        svc.insert("volumes".into(), Value::Seq(vec![Value::Map(vol)]));
        svc.insert("build".into(), Value::Map(build));
        let mut other = Map::new();
        other.insert("build".into(), Value::Map(remote));
        let mut services = Map::new();
        services.insert("web".into(), Value::Map(svc));
        services.insert("other".into(), Value::Map(other));
        let mut model = Map::new();
        model.insert("services".into(), Value::Map(services));
        Resolver {
            working_dir: "/project",
            home: Some("/home/me"),
        }
        .resolve(&mut model)
        .expect("resolve");
        let s = model["services"].to_json();
        assert_eq!(s["web"]["build"]["context"], "/project");
        assert_eq!(s["web"]["volumes"][0]["source"], "/project/data");
        assert_eq!(s["other"]["build"]["context"], "https://github.com/x/y.git");
    }
}
