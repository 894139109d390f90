//! Orchestration of loading: reading files, interpolation, `extends`, `include`, merging
//! several files, validation, canonicalization, path resolution and normalization, in the
//! order compose-go's loader applies them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::dotenv::{self, EnvMap};
use crate::error::{Error, Result};
use crate::interpolate::interpolate;
use crate::merge::{enforce_unicity, extend_service, merge};
use crate::normalize::normalize;
use crate::path::{abs, base, dir, is_abs, join, rel, KeyPath};
use crate::paths::{is_remote_resource, Resolver};
use crate::project::Project;
use crate::transform::{canonical, set_default_values};
use crate::types::FromValue;
use crate::validate::{validate_model, validate_schema};
use crate::value::{Map, Value};
use crate::yaml::parse_documents;

/// What to load and how. `Options::default()` interpolates and resolves paths, like
/// `docker compose config`.
#[derive(Debug, Clone)]
pub struct Options {
    /// The current directory: relative `files`/`env_files` and file discovery start here.
    pub working_dir: PathBuf,
    /// `--project-directory`; defaults to the directory of the first Compose file.
    pub project_directory: Option<PathBuf>,
    /// `-f` files; empty to discover `compose.yaml` & co (and `COMPOSE_FILE`).
    pub files: Vec<PathBuf>,
    /// `-p`; otherwise `COMPOSE_PROJECT_NAME`, the `name:` attribute or the directory name.
    pub project_name: Option<String>,
    /// The process environment.
    pub env: BTreeMap<String, String>,
    /// `--env-file`; defaults to the project directory's `.env`.
    pub env_files: Vec<PathBuf>,
    /// `--profile`; defaults to `COMPOSE_PROFILES`.
    pub profiles: Vec<String>,
    /// Interpolate `${VAR}` (disable for `--no-interpolate`).
    pub interpolate: bool,
    /// Make relative paths absolute (disable for `--no-path-resolution`).
    pub resolve_paths: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            working_dir: PathBuf::from("."),
            project_directory: None,
            files: Vec::new(),
            project_name: None,
            env: BTreeMap::new(),
            env_files: Vec::new(),
            profiles: Vec::new(),
            interpolate: true,
            resolve_paths: true,
        }
    }
}

/// Default Compose file names, in order of preference.
pub const DEFAULT_FILE_NAMES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];
/// Default override file names, in order of preference.
pub const DEFAULT_OVERRIDE_FILE_NAMES: [&str; 4] = [
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];

type Env = BTreeMap<String, String>;

#[derive(Clone)]
struct LoadOpts {
    skip_validation: bool,
    skip_interpolation: bool,
    skip_normalization: bool,
    resolve_paths: bool,
    skip_extends: bool,
    skip_include: bool,
    skip_default_values: bool,
    lookup_env: Rc<Env>,
    local_dir: String,
    home: Option<String>,
    cwd: String,
}

struct ConfigDetails {
    working_dir: String,
    files: Vec<String>,
    environment: Env,
}

type ResetPaths = Vec<Vec<String>>;

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn io_err(path: &str, e: std::io::Error) -> Error {
    Error::Io {
        path: PathBuf::from(path),
        source: e,
    }
}

/// compose-go's `NormalizeProjectName`.
pub fn normalize_project_name(s: &str) -> String {
    let lower = s.to_lowercase();
    let kept: String = lower
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    kept.trim_start_matches(['_', '-']).to_string()
}

fn invalid_project_name(name: &str) -> Error {
    Error::invalid(format!(
        "invalid project name {name:?}: must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number"
    ))
}

/// Reads env files (`.env` / `--env-file`), resolving references from `current` first.
fn get_env_from_files(current: &Env, files: &[String], cwd: &str) -> Result<EnvMap> {
    let mut env = EnvMap::new();
    for f in files {
        let f = abs(cwd, f);
        let p = Path::new(&f);
        if !p.exists() {
            return Err(Error::invalid(format!("couldn't find env file: {f}")));
        }
        if p.is_dir() {
            return Err(Error::invalid(format!("{f} is a directory")));
        }
        let content = std::fs::read_to_string(p).map_err(|e| io_err(&f, e))?;
        dotenv::parse(&content, &mut env, &|k| current.get(k).cloned())
            .map_err(|e| Error::invalid(format!("failed to read {f}: {e}")))?;
    }
    Ok(env)
}

fn merge_env(env: &mut Env, other: EnvMap) {
    for (k, v) in other {
        env.entry(k).or_insert(v);
    }
}

fn default_env_files(env: &Env, dir: &str) -> Result<Vec<String>> {
    if let Some(v) = env.get("COMPOSE_DISABLE_ENV_FILE") {
        match v.as_str() {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => return Ok(Vec::new()),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => {}
            other => {
                return Err(Error::invalid(format!(
                    "strconv.ParseBool: parsing {other:?}: invalid syntax"
                )))
            }
        }
    }
    let f = join(dir, ".env");
    let p = Path::new(&f);
    if p.exists() && !p.is_dir() {
        Ok(vec![f])
    } else {
        Ok(Vec::new())
    }
}

fn find_files(names: &[&str], dir: &str) -> Vec<String> {
    names
        .iter()
        .map(|n| join(dir, n))
        .filter(|f| Path::new(f).exists())
        .collect()
}

/// Loads a Compose project the way `docker compose config` does.
pub fn load(opts: &Options) -> Result<Project> {
    let loaded = load_raw(opts)?;
    let mut project = Project::from_model(loaded.model, &loaded.project_name)?;
    project.working_dir = PathBuf::from(&loaded.working_dir);
    project.compose_files = loaded.config_paths.iter().map(PathBuf::from).collect();
    project.environment = loaded.env;
    project.apply_profiles(&loaded.profiles);
    project.check_consistency()?;
    project.resolve_services_environment(true)?;
    project.resolve_services_labels(true)?;
    // what `docker compose config` does on top of compose-go
    project.without_unnecessary_resources();
    project.check_container_name_unicity()?;
    Ok(project)
}

/// Loads the merged, normalized model without binding it to typed structs (what
/// `docker compose config --no-interpolate` prints when `interpolate` is off). Profiles
/// are not applied and `env_file`s are not resolved at this stage.
pub fn load_model(opts: &Options) -> Result<Map> {
    Ok(load_raw(opts)?.model)
}

struct Loaded {
    model: Map,
    project_name: String,
    working_dir: String,
    config_paths: Vec<String>,
    env: Env,
    profiles: Vec<String>,
}

fn load_raw(opts: &Options) -> Result<Loaded> {
    let cwd_raw = path_str(&opts.working_dir);
    let cwd = if is_abs(&cwd_raw) {
        crate::path::clean(&cwd_raw)
    } else {
        let here = std::env::current_dir().map_err(|e| Error::invalid(e.to_string()))?;
        abs(&path_str(&here), &cwd_raw)
    };
    let project_dir_opt = opts
        .project_directory
        .as_ref()
        .map(|p| abs(&cwd, &path_str(p)));
    let mut env: Env = opts.env.clone();
    env.entry("PWD".to_string()).or_insert_with(|| cwd.clone());

    let mut config_paths: Vec<String> =
        opts.files.iter().map(|f| abs(&cwd, &path_str(f))).collect();
    let explicit_env_files: Vec<String> = opts
        .env_files
        .iter()
        .map(|f| abs(&cwd, &path_str(f)))
        .collect();
    let working_dir_of = |paths: &[String]| -> String {
        if let Some(p) = &project_dir_opt {
            return p.clone();
        }
        match paths.first() {
            Some(f) => dir(f),
            None => cwd.clone(),
        }
    };

    // .env of the current/project directory, before discovery (it may set COMPOSE_FILE)
    let env_files = if explicit_env_files.is_empty() {
        default_env_files(&env, &working_dir_of(&config_paths))?
    } else {
        explicit_env_files.clone()
    };
    let dotenv = get_env_from_files(&env, &env_files, &cwd)?;
    merge_env(&mut env, dotenv);

    if config_paths.is_empty() {
        if let Some(f) = env.get("COMPOSE_FILE").cloned() {
            let sep = env
                .get("COMPOSE_PATH_SEPARATOR")
                .cloned()
                .filter(|s| !s.is_empty())
                .unwrap_or(":".into());
            for p in f.split(sep.as_str()) {
                let a = abs(&cwd, p);
                if !Path::new(&a).exists() {
                    return Err(Error::invalid(format!(
                        "stat {a}: no such file or directory"
                    )));
                }
                config_paths.push(a);
            }
        }
    }
    if config_paths.is_empty() {
        let mut pwd = project_dir_opt.clone().unwrap_or_else(|| cwd.clone());
        loop {
            let candidates = find_files(&DEFAULT_FILE_NAMES, &pwd);
            if let Some(winner) = candidates.first() {
                config_paths.push(winner.clone());
                if let Some(o) = find_files(&DEFAULT_OVERRIDE_FILE_NAMES, &pwd).first() {
                    config_paths.push(o.clone());
                }
                break;
            }
            let parent = dir(&pwd);
            if parent == pwd {
                break;
            }
            pwd = parent;
        }
    }
    if config_paths.is_empty() {
        return Err(Error::NoConfigFile);
    }
    // .env of the project directory, after discovery
    let env_files = if explicit_env_files.is_empty() {
        default_env_files(&env, &working_dir_of(&config_paths))?
    } else {
        explicit_env_files
    };
    let dotenv = get_env_from_files(&env, &env_files, &cwd)?;
    merge_env(&mut env, dotenv);

    let profiles: Vec<String> = if opts.profiles.is_empty() {
        env.get("COMPOSE_PROFILES")
            .map(String::as_str)
            .unwrap_or("")
            .split(',')
            .map(|s| s.trim().to_string())
            .collect()
    } else {
        opts.profiles.clone()
    };

    let working_dir = working_dir_of(&config_paths);
    let mut contents = Vec::new();
    for f in &config_paths {
        let c = std::fs::read_to_string(f).map_err(|e| io_err(f, e))?;
        contents.push(c);
    }

    // project name
    let mut imperative: Option<String> = None;
    if let Some(n) = &opts.project_name {
        if normalize_project_name(n) != *n {
            return Err(invalid_project_name(n));
        }
        imperative = Some(n.clone());
    } else if let Some(n) = env.get("COMPOSE_PROJECT_NAME").filter(|n| !n.is_empty()) {
        imperative = Some(n.clone());
    }
    let project_name = match imperative {
        Some(n) => {
            if normalize_project_name(&n) != n {
                return Err(invalid_project_name(&n));
            }
            n
        }
        None => {
            let mut from_file = String::new();
            let mut named = false;
            for c in &contents {
                if let Ok(docs) = parse_documents(c) {
                    for d in docs {
                        if let Some(v) = d.value.as_map().and_then(|m| m.get("name")) {
                            if !v.is_null() {
                                let s = v.go_sprint();
                                if !s.is_empty() {
                                    from_file = s;
                                    named = true;
                                }
                            }
                        }
                    }
                }
            }
            let mut name = if named {
                String::new()
            } else {
                normalize_project_name(&base(&working_dir))
            };
            if opts.interpolate {
                from_file = crate::template::substitute(&from_file, &|k| env.get(k).cloned())
                    .map_err(|e| Error::invalid(format!("error while interpolating name: {e}")))?;
            }
            let from_file = normalize_project_name(&from_file);
            if !from_file.is_empty() {
                name = from_file;
            }
            name
        }
    };
    env.insert("COMPOSE_PROJECT_NAME".to_string(), project_name.clone());

    let env = Rc::new(env);
    let lopts = LoadOpts {
        skip_validation: false,
        skip_interpolation: !opts.interpolate,
        skip_normalization: false,
        resolve_paths: opts.resolve_paths,
        skip_extends: false,
        skip_include: false,
        skip_default_values: false,
        lookup_env: env.clone(),
        local_dir: working_dir.clone(),
        home: env.get("HOME").cloned(),
        cwd: cwd.clone(),
    };
    let details = ConfigDetails {
        working_dir: working_dir.clone(),
        files: config_paths.clone(),
        environment: (*env).clone(),
    };
    let mut model = load_yaml_model(&details, &lopts, Vec::new())?;
    if model.is_empty() {
        return Err(Error::invalid("empty compose file"));
    }
    if project_name.is_empty() {
        return Err(Error::invalid("project name must not be empty"));
    }
    if !lopts.skip_normalization {
        model.insert("name".into(), Value::String(project_name.clone()));
        normalize(&mut model, &env).map_err(Error::Invalid)?;
    }

    Ok(Loaded {
        model,
        project_name,
        working_dir,
        config_paths,
        env: (*env).clone(),
        profiles,
    })
}

fn load_yaml_model(config: &ConfigDetails, opts: &LoadOpts, included: Vec<String>) -> Result<Map> {
    let mut dict = Map::new();
    for file in &config.files {
        let (d, _) = load_yaml_file(
            file,
            opts,
            &config.working_dir,
            &config.environment,
            &[],
            dict,
            included.clone(),
        )?;
        dict = d;
    }
    if !opts.skip_default_values {
        dict = set_default_values(dict).map_err(Error::Invalid)?;
    }
    if !opts.skip_validation {
        validate_model(&dict).map_err(Error::Invalid)?;
    }
    if opts.resolve_paths {
        Resolver {
            working_dir: &config.working_dir,
            home: opts.home.as_deref(),
        }
        .resolve(&mut dict)
        .map_err(Error::Invalid)?;
    }
    resolve_environment(&mut dict, &config.environment);
    Ok(dict)
}

#[allow(clippy::too_many_arguments)]
fn load_yaml_file(
    file: &str,
    opts: &LoadOpts,
    working_dir: &str,
    environment: &Env,
    tracker: &[(String, String)],
    mut dict: Map,
    mut included: Vec<String>,
) -> Result<(Map, Option<ResetPaths>)> {
    let content = std::fs::read_to_string(file).map_err(|e| io_err(file, e))?;
    let docs = parse_documents(&content).map_err(|message| Error::Parse {
        file: file.to_string(),
        message,
    })?;
    let mut last_reset = None;
    for doc in docs {
        let Value::Map(mut cfg) = doc.value else {
            return Err(Error::Parse {
                file: file.to_string(),
                message: "top-level object must be a mapping".into(),
            });
        };
        if !opts.skip_interpolation {
            let env = opts.lookup_env.clone();
            cfg = interpolate(&cfg, &|k| env.get(k).cloned()).map_err(Error::Invalid)?;
        }
        let reset = doc.reset_paths;
        if !opts.skip_extends {
            apply_extends(file, &mut cfg, opts, tracker, Some(&reset))?;
        }
        apply_reset(&reset, &mut dict);
        if !opts.skip_include {
            included.push(file.to_string());
            apply_include(working_dir, environment, &mut cfg, opts, &included)?;
        }
        dict = merge(dict, cfg).map_err(Error::Invalid)?;
        dict = enforce_unicity(dict).map_err(Error::Invalid)?;
        if !opts.skip_validation {
            validate_schema(&dict).map_err(|message| Error::Schema {
                file: file.to_string(),
                message,
            })?;
            dict.remove("version");
        }
        dict = canonical(dict, opts.skip_interpolation).map_err(Error::Invalid)?;
        omit_empty(&mut dict);
        dict = enforce_unicity(dict).map_err(Error::Invalid)?;
        last_reset = Some(reset);
    }
    Ok((dict, last_reset))
}

/// Removes the entries tagged `!reset` / `!override` from an inherited model.
fn apply_reset(paths: &ResetPaths, target: &mut Map) {
    if paths.is_empty() {
        return;
    }
    let patterns: Vec<KeyPath> = paths.iter().map(|p| KeyPath(p.clone())).collect();
    fn walk(v: &mut Map, path: &KeyPath, patterns: &[KeyPath]) {
        let keys: Vec<String> = v.keys().cloned().collect();
        for k in keys {
            let next = path.next(&k);
            if patterns.iter().any(|p| next.matches_path(p)) {
                v.remove(&k);
                continue;
            }
            if let Some(e) = v.get_mut(&k) {
                walk_value(e, &next, patterns);
            }
        }
    }
    fn walk_value(v: &mut Value, path: &KeyPath, patterns: &[KeyPath]) {
        match v {
            Value::Map(m) => walk(m, path, patterns),
            Value::Seq(items) => {
                for (i, e) in items.iter_mut().enumerate() {
                    let next = path.next(&format!("[{i}]"));
                    if patterns.iter().any(|p| next.matches_path(p)) {
                        continue;
                    }
                    walk_value(e, &next, patterns);
                }
            }
            _ => {}
        }
    }
    walk(target, &KeyPath::root(), &patterns);
}

fn omit_empty(model: &mut Map) {
    if let Some(Value::Map(services)) = model.get_mut("services") {
        for s in services.values_mut() {
            if let Value::Map(service) = s {
                if let Some(Value::Seq(dns)) = service.get_mut("dns") {
                    dns.retain(|e| !(e.is_null() || e.as_str() == Some("")));
                }
            }
        }
    }
}

fn resolve_environment(model: &mut Map, env: &Env) {
    if let Some(Value::Map(services)) = model.get_mut("services") {
        for s in services.values_mut() {
            let Value::Map(service) = s else { continue };
            let Some(Value::Seq(list)) = service.get_mut("environment") else {
                continue;
            };
            let mut out = Vec::new();
            for e in list.iter() {
                let Value::String(var) = e else { continue };
                match env.get(var) {
                    Some(found) => out.push(Value::String(format!("{var}={found}"))),
                    None => out.push(Value::String(var.clone())),
                }
            }
            *list = out;
        }
    }
    for (section, key) in [("secrets", "x-#value"), ("configs", "content")] {
        if let Some(Value::Map(items)) = model.get_mut(section) {
            for item in items.values_mut() {
                let Value::Map(m) = item else { continue };
                let Some(Value::String(var)) = m.get("environment") else {
                    continue;
                };
                if let Some(found) = env.get(var) {
                    m.insert(key.to_string(), Value::String(found.clone()));
                }
            }
        }
    }
}

/// localResourceLoader.Dir: directory of a referenced file, relative to `working_dir`.
fn loader_dir(working_dir: &str, original: &str) -> String {
    let mut p = abs(working_dir, original);
    if !Path::new(&p).is_dir() {
        p = abs(working_dir, &dir(original));
    }
    rel(working_dir, &p).unwrap_or(p)
}

fn apply_extends(
    file: &str,
    cfg: &mut Map,
    opts: &LoadOpts,
    tracker: &[(String, String)],
    post: Option<&ResetPaths>,
) -> Result<()> {
    let Some(services) = cfg.get_mut("services") else {
        return Ok(());
    };
    let Value::Map(services) = services else {
        return Err(Error::invalid("services must be a mapping"));
    };
    let names: Vec<String> = services.keys().cloned().collect();
    for name in names {
        let merged = apply_service_extends(file, &name, services, opts, tracker, post)?;
        services.insert(name, merged);
    }
    Ok(())
}

fn apply_service_extends(
    ctx_file: &str,
    name: &str,
    services: &mut Map,
    opts: &LoadOpts,
    tracker: &[(String, String)],
    post: Option<&ResetPaths>,
) -> Result<Value> {
    let s = match services.get(name) {
        None | Some(Value::Null) => return Ok(Value::Null),
        Some(s) => s.clone(),
    };
    let Value::Map(service) = s else {
        return Err(Error::invalid(format!("services.{name} must be a mapping")));
    };
    let Some(extends) = service.get("extends").cloned() else {
        return Ok(Value::Map(service));
    };
    let mut filename = ctx_file.to_string();
    let (reference, file) = match &extends {
        Value::Map(m) => {
            let Some(Value::String(r)) = m.get("service") else {
                return Err(Error::invalid(format!(
                    "extends.{name}.service is required"
                )));
            };
            (
                r.clone(),
                m.get("file").filter(|f| !f.is_null()).map(Value::go_sprint),
            )
        }
        Value::String(r) => (r.clone(), None),
        other => {
            return Err(Error::invalid(format!(
                "services.{name}.extends must be a string or a mapping, got {}",
                other.kind()
            )))
        }
    };
    let base = match file {
        Some(ref_file) => {
            let (mut other, processor) =
                get_extends_base_from_file(name, &reference, &filename, &ref_file, opts, tracker)?;
            filename = ref_file;
            let t = add_tracker(tracker, &filename, name)?;
            apply_service_extends(
                ctx_file,
                &reference,
                &mut other,
                opts,
                &t,
                processor.as_ref(),
            )?
        }
        None => {
            if !services.contains_key(&reference) {
                return Err(Error::invalid(format!(
                    "cannot extend service {name:?} in {filename}: service {reference:?} not found"
                )));
            }
            let t = add_tracker(tracker, &filename, name)?;
            apply_service_extends(ctx_file, &reference, services, opts, &t, None)?
        }
    };
    let Value::Map(mut source) = base else {
        return Ok(Value::Map(service));
    };
    if let Some(post) = post {
        let mut wrapper = Map::new();
        let mut svcs = Map::new();
        svcs.insert(name.to_string(), Value::Map(std::mem::take(&mut source)));
        wrapper.insert("services".into(), Value::Map(svcs));
        apply_reset(post, &mut wrapper);
        if let Some(Value::Map(mut svcs)) = wrapper.remove("services") {
            if let Some(Value::Map(s)) = svcs.remove(name) {
                source = s;
            }
        }
    }
    let mut merged = extend_service(source, service).map_err(Error::Invalid)?;
    merged.remove("extends");
    services.insert(name.to_string(), Value::Map(merged.clone()));
    Ok(Value::Map(merged))
}

fn add_tracker(
    tracker: &[(String, String)],
    filename: &str,
    service: &str,
) -> Result<Vec<(String, String)>> {
    let add = (filename.to_string(), service.to_string());
    if tracker.contains(&add) {
        let mut lines = vec!["Circular reference:".to_string()];
        if let Some((f, s)) = tracker.first() {
            lines.push(format!("  {s} in {f}"));
        }
        for (f, s) in tracker.iter().skip(1).chain(std::iter::once(&add)) {
            lines.push(format!("  extends {s} in {f}"));
        }
        return Err(Error::invalid(lines.join("\n")));
    }
    let mut t = tracker.to_vec();
    t.push(add);
    Ok(t)
}

fn get_extends_base_from_file(
    name: &str,
    reference: &str,
    path: &str,
    ref_path: &str,
    opts: &LoadOpts,
    tracker: &[(String, String)],
) -> Result<(Map, Option<ResetPaths>)> {
    if is_remote_resource(ref_path) {
        return Err(Error::invalid(format!(
            "cannot extend service {name:?} in {path}: remote resource {ref_path} is not supported"
        )));
    }
    let local = abs(&opts.local_dir, ref_path);
    let local_dir = dir(&local);
    let rel_working_dir = loader_dir(&opts.local_dir, ref_path);
    let mut eopts = opts.clone();
    eopts.local_dir = local_dir;
    eopts.resolve_paths = false;
    eopts.skip_normalization = true;
    eopts.skip_include = true;
    eopts.skip_extends = true;
    eopts.skip_validation = true;
    eopts.skip_default_values = true;
    let (mut source, processor) = load_yaml_file(
        &local,
        &eopts,
        &rel_working_dir,
        &Env::new(),
        tracker,
        Map::new(),
        Vec::new(),
    )?;
    match source.get("services") {
        None => {
            return Err(Error::invalid(format!(
                "cannot extend service {name:?} in {local}: no services section"
            )))
        }
        Some(Value::Map(services)) => {
            if !services.contains_key(reference) {
                return Err(Error::invalid(format!(
                    "cannot extend service {name:?} in {path}: service {reference:?} not found in {ref_path}"
                )));
            }
        }
        Some(_) => {
            return Err(Error::invalid(format!(
                "cannot extend service {name:?} in {local}: services must be a mapping"
            )))
        }
    }
    Resolver {
        working_dir: &rel_working_dir,
        home: opts.home.as_deref(),
    }
    .resolve(&mut source)
    .map_err(Error::Invalid)?;
    match source.remove("services") {
        Some(Value::Map(services)) => Ok((services, processor)),
        _ => Ok((Map::new(), processor)),
    }
}

#[derive(Default)]
struct IncludeConfig {
    path: Vec<String>,
    project_directory: String,
    env_file: Vec<String>,
}

fn string_list(v: &Value) -> std::result::Result<Vec<String>, String> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Seq(items) => items
            .iter()
            .map(|e| {
                e.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("invalid type {} for string list", e.kind()))
            })
            .collect(),
        Value::Null => Ok(Vec::new()),
        other => Err(format!("invalid type {} for string list", other.kind())),
    }
}

fn apply_include(
    working_dir: &str,
    environment: &Env,
    model: &mut Map,
    opts: &LoadOpts,
    included: &[String],
) -> Result<()> {
    let configs = match model.get("include") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Seq(items)) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let c = match item {
                    Value::String(s) => IncludeConfig {
                        path: vec![s.clone()],
                        ..IncludeConfig::default()
                    },
                    Value::Map(m) => IncludeConfig {
                        path: m
                            .get("path")
                            .map(string_list)
                            .transpose()
                            .map_err(|e| Error::invalid(format!("include[{i}].path: {e}")))?
                            .unwrap_or_default(),
                        project_directory: m
                            .get("project_directory")
                            .map(String::from_value)
                            .transpose()
                            .map_err(|e| {
                                Error::invalid(format!("include[{i}].project_directory: {e}"))
                            })?
                            .unwrap_or_default(),
                        env_file: m
                            .get("env_file")
                            .map(string_list)
                            .transpose()
                            .map_err(|e| Error::invalid(format!("include[{i}].env_file: {e}")))?
                            .unwrap_or_default(),
                    },
                    other => {
                        return Err(Error::invalid(format!(
                            "include[{i}]: invalid type {}",
                            other.kind()
                        )))
                    }
                };
                out.push(c);
            }
            out
        }
        Some(other) => {
            return Err(Error::invalid(format!(
                "`include` must be a list, got {}",
                other.go_sprint()
            )))
        }
    };
    for mut r in configs {
        let mut rel_working_dir = String::new();
        for i in 0..r.path.len() {
            let p = r.path[i].clone();
            if is_remote_resource(&p) {
                return Err(Error::invalid(format!(
                    "include: remote resource {p} is not supported"
                )));
            }
            let path = abs(&opts.local_dir, &p);
            if i == 0 {
                if r.project_directory.is_empty() {
                    rel_working_dir = loader_dir(&opts.local_dir, &path);
                    r.project_directory = dir(&path);
                } else if !is_abs(&r.project_directory) {
                    rel_working_dir = loader_dir(&opts.local_dir, &r.project_directory);
                    r.project_directory = join(working_dir, &r.project_directory);
                } else {
                    rel_working_dir = r.project_directory.clone();
                }
                if included.contains(&path) {
                    let mut chain = included.to_vec();
                    chain.push(path.clone());
                    return Err(Error::invalid(format!(
                        "include cycle detected:\n{}\n include {}",
                        chain[0],
                        chain[1..].join("\n include ")
                    )));
                }
            }
            r.path[i] = path;
        }
        let mut lopts = opts.clone();
        lopts.resolve_paths = true;
        lopts.skip_normalization = true;
        lopts.local_dir = abs(&opts.cwd, &r.project_directory);

        let env_files: Vec<String> = if r.env_file.is_empty() {
            let f = join(&r.project_directory, ".env");
            let p = Path::new(&f);
            if p.exists() && !p.is_dir() {
                vec![f]
            } else {
                Vec::new()
            }
        } else {
            let mut out = Vec::new();
            for f in &r.env_file {
                let mut f = f.clone();
                if !is_abs(&f) {
                    f = join(working_dir, &f);
                    let a = abs(&opts.cwd, &f);
                    let p = Path::new(&a);
                    if !p.exists() {
                        return Err(Error::invalid(format!(
                            "stat {f}: no such file or directory"
                        )));
                    }
                    if p.is_dir() {
                        return Err(Error::invalid(format!("{f} is not a file")));
                    }
                }
                out.push(f);
            }
            out
        };
        let from_files = get_env_from_files(environment, &env_files, &opts.cwd)?;
        let mut env = environment.clone();
        merge_env(&mut env, from_files);
        lopts.lookup_env = Rc::new(env.clone());
        let details = ConfigDetails {
            working_dir: rel_working_dir,
            files: r.path.clone(),
            environment: env,
        };
        let imported = load_yaml_model(&details, &lopts, included.to_vec())?;
        import_resources(&imported, model)?;
    }
    model.remove("include");
    Ok(())
}

fn import_resources(source: &Map, target: &mut Map) -> Result<()> {
    for key in [
        "services", "volumes", "networks", "secrets", "configs", "models",
    ] {
        let Some(Value::Map(from)) = source.get(key) else {
            continue;
        };
        let mut to = match target.remove(key) {
            Some(Value::Map(m)) => m,
            _ => Map::new(),
        };
        for (name, a) in from {
            if let Some(conflict) = to.get(name) {
                if conflict == a {
                    continue;
                }
                return Err(Error::invalid(format!(
                    "{key}.{name} conflicts with imported resource"
                )));
            }
            to.insert(name.clone(), a.clone());
        }
        target.insert(key.to_string(), Value::Map(to));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_are_normalized() {
        assert_eq!(normalize_project_name("My_Project!"), "my_project");
        assert_eq!(normalize_project_name("-_abc"), "abc");
        assert_eq!(
            normalize_project_name("UNNORMALIZED PATH"),
            "unnormalizedpath"
        );
    }

    #[test]
    fn reset_paths_remove_inherited_keys() {
        let mut svc = Map::new();
        svc.insert("command".into(), Value::from("x"));
        svc.insert("image".into(), Value::from("y"));
        let mut services = Map::new();
        services.insert("web".into(), Value::Map(svc));
        let mut model = Map::new();
        model.insert("services".into(), Value::Map(services));
        apply_reset(
            &vec![vec!["services".into(), "web".into(), "command".into()]],
            &mut model,
        );
        let j = Value::Map(model).to_json();
        assert!(j["services"]["web"].get("command").is_none());
        assert_eq!(j["services"]["web"]["image"], "y");
    }
}
