//! The loaded project and the project-level steps that run on the typed model: profiles,
//! consistency checks, `env_file` / `label_file` resolution, dropping unused resources and
//! rendering `docker compose config --format json`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::dotenv;
use crate::error::{Error, Result};
use crate::types::{
    decode_section, FileObjectConfig, FromValue, ModelConfig, NetworkConfig, ServiceConfig,
    VolumeConfig,
};
use crate::value::{Map, Value};

/// A loaded, normalized Compose project.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Project {
    /// Project name.
    pub name: String,
    /// Project directory (relative paths were resolved against it).
    pub working_dir: PathBuf,
    /// Enabled services.
    pub services: BTreeMap<String, ServiceConfig>,
    /// Networks.
    pub networks: BTreeMap<String, NetworkConfig>,
    /// Volumes.
    pub volumes: BTreeMap<String, VolumeConfig>,
    /// Secrets.
    pub secrets: BTreeMap<String, FileObjectConfig>,
    /// Configs.
    pub configs: BTreeMap<String, FileObjectConfig>,
    /// AI models.
    pub models: BTreeMap<String, ModelConfig>,
    /// Top-level `x-*` extensions.
    pub extensions: BTreeMap<String, Value>,
    /// The Compose files the project was loaded from.
    pub compose_files: Vec<PathBuf>,
    /// The environment used for interpolation (process environment plus `.env`).
    pub environment: BTreeMap<String, String>,
    /// Services disabled because none of their profiles is active.
    pub disabled_services: BTreeMap<String, ServiceConfig>,
    /// Active profiles.
    pub profiles: Vec<String>,
}

struct ConfigFile<'a>(&'a FileObjectConfig, bool);

impl Serialize for ConfigFile<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut c = self.0.clone();
        if self.1 {
            // secrets never print their content
            c.content.clear();
        } else if !c.environment.is_empty() {
            // configs print their source, not content resolved from the environment
            c.content.clear();
        }
        c.serialize(s)
    }
}

struct SectionOf<'a>(&'a BTreeMap<String, FileObjectConfig>, bool);

impl Serialize for SectionOf<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, &ConfigFile(v, self.1))?;
        }
        m.end()
    }
}

impl Serialize for Project {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("name", &self.name)?;
        m.serialize_entry("services", &self.services)?;
        if !self.networks.is_empty() {
            m.serialize_entry("networks", &self.networks)?;
        }
        if !self.volumes.is_empty() {
            m.serialize_entry("volumes", &self.volumes)?;
        }
        if !self.secrets.is_empty() {
            m.serialize_entry("secrets", &SectionOf(&self.secrets, true))?;
        }
        if !self.configs.is_empty() {
            m.serialize_entry("configs", &SectionOf(&self.configs, false))?;
        }
        for (k, v) in &self.extensions {
            if !matches!(
                k.as_str(),
                "name" | "services" | "networks" | "volumes" | "secrets" | "configs"
            ) {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

impl Project {
    /// The project as `docker compose config --format json` prints it (two-space
    /// indentation, `$` escaped as `$$`).
    pub fn to_json(&self) -> Result<String> {
        let json = serde_json::to_string_pretty(self).map_err(|e| Error::invalid(e.to_string()))?;
        Ok(json.replace('$', "$$"))
    }

    /// Names of the enabled services, sorted.
    pub fn service_names(&self) -> Vec<String> {
        self.services.keys().cloned().collect()
    }

    /// Builds the typed project from a normalized model.
    pub(crate) fn from_model(mut model: Map, name: &str) -> Result<Project> {
        model.remove("name");
        let mut project = Project {
            name: name.to_string(),
            ..Project::default()
        };
        for (k, v) in &model {
            if k.starts_with("x-") {
                project.extensions.insert(k.clone(), v.clone());
            }
        }
        let services = model.get("services");
        match services {
            None | Some(Value::Null) => {}
            Some(Value::Map(m)) => {
                for (k, v) in m {
                    let mut s = ServiceConfig::from_value(v)
                        .map_err(|e| Error::invalid(format!("services.{k}.{e}")))?;
                    s.name = k.clone();
                    project.services.insert(k.clone(), s);
                }
            }
            Some(other) => {
                return Err(Error::invalid(format!(
                    "services must be a mapping, got {}",
                    other.kind()
                )))
            }
        }
        project.networks =
            decode_section(model.get("networks"), "networks").map_err(Error::Invalid)?;
        project.volumes =
            decode_section(model.get("volumes"), "volumes").map_err(Error::Invalid)?;
        project.secrets =
            decode_section(model.get("secrets"), "secrets").map_err(Error::Invalid)?;
        project.configs =
            decode_section(model.get("configs"), "configs").map_err(Error::Invalid)?;
        project.models = decode_section(model.get("models"), "models").map_err(Error::Invalid)?;
        Ok(project)
    }

    /// Disables the services none of whose profiles is in `profiles` (`*` enables all).
    pub fn apply_profiles(&mut self, profiles: &[String]) {
        let mut all = std::mem::take(&mut self.services);
        all.append(&mut self.disabled_services);
        for (name, s) in all {
            let enabled = s.profiles.is_empty()
                || profiles.iter().any(|p| p == "*" || s.profiles.contains(p));
            if enabled {
                self.services.insert(name, s);
            } else {
                self.disabled_services.insert(name, s);
            }
        }
        self.profiles = profiles.to_vec();
    }

    /// compose-go's consistency checks.
    pub fn check_consistency(&self) -> Result<()> {
        let inv = |m: String| Err(Error::invalid(m));
        for (name, s) in &self.services {
            if s.build.is_none() && s.image.is_empty() && s.provider.is_none() {
                return inv(format!(
                    "service {name:?} has neither an image nor a build context specified: invalid compose project"
                ));
            }
            if let Some(b) = &s.build {
                if !b.dockerfile_inline.is_empty() && !b.dockerfile.is_empty() {
                    return inv(format!(
                        "service {name:?} declares mutualy exclusive dockerfile and dockerfile_inline: invalid compose project"
                    ));
                }
                for (add, c) in &b.additional_contexts {
                    if let Some(target) = c.strip_prefix("service:") {
                        match self.services.get(target) {
                            None => {
                                return inv(format!(
                                    "service {name:?} declares unknown service {target:?} as additional contexts {add}"
                                ))
                            }
                            Some(t) if t.build.is_none() => {
                                return inv(format!(
                                    "service {name:?} declares non-buildable service {target:?} as additional contexts {add}"
                                ))
                            }
                            _ => {}
                        }
                    }
                }
                if !b.platforms.is_empty()
                    && !s.platform.is_empty()
                    && !b.platforms.contains(&s.platform)
                {
                    return inv(format!(
                        "service.build.platforms MUST include service.platform {:?}: invalid compose project",
                        s.platform
                    ));
                }
            }
            if !s.network_mode.is_empty() && !s.networks.is_empty() {
                return inv(format!(
                    "service {name} declares mutually exclusive `network_mode` and `networks`: invalid compose project"
                ));
            }
            for network in s.networks.keys() {
                if !self.networks.contains_key(network) {
                    return inv(format!(
                        "service {name:?} refers to undefined network {network}: invalid compose project"
                    ));
                }
            }
            if let Some(hc) = &s.health_check {
                if let Some(first) = hc.test.first() {
                    if !matches!(first.as_str(), "CMD" | "CMD-SHELL" | "NONE") {
                        return inv(
                            "healthcheck.test must start either by \"CMD\", \"CMD-SHELL\" or \"NONE\"".to_string(),
                        );
                    }
                }
            }
            for (dep, cfg) in &s.depends_on {
                if !self.services.contains_key(dep) {
                    if self.disabled_services.contains_key(dep) && !cfg.required {
                        continue;
                    }
                    return inv(format!(
                        "service {name:?} depends on undefined service {dep:?}: invalid compose project"
                    ));
                }
            }
            if let Some(shared) = s.network_mode.strip_prefix("service:") {
                if !self.services.contains_key(shared) {
                    return inv(format!(
                        "service {shared:?} not found for network_mode 'service:{shared}'"
                    ));
                }
            }
            for v in &s.volumes {
                if v.kind == "volume"
                    && !v.source.is_empty()
                    && !self.volumes.contains_key(&v.source)
                {
                    return inv(format!(
                        "service {name:?} refers to undefined volume {}: invalid compose project",
                        v.source
                    ));
                }
            }
            if let Some(b) = &s.build {
                for secret in &b.secrets {
                    if !self.secrets.contains_key(&secret.source) {
                        return inv(format!(
                            "service {name:?} refers to undefined build secret {}: invalid compose project",
                            secret.source
                        ));
                    }
                }
            }
            for c in &s.configs {
                if !self.configs.contains_key(&c.source) {
                    return inv(format!(
                        "service {name:?} refers to undefined config {}: invalid compose project",
                        c.source
                    ));
                }
            }
            for m in s.models.keys() {
                if !self.models.contains_key(m) {
                    return inv(format!(
                        "service {name:?} refers to undefined model {m}: invalid compose project"
                    ));
                }
            }
            for secret in &s.secrets {
                if !self.secrets.contains_key(&secret.source) {
                    return inv(format!(
                        "service {name:?} refers to undefined secret {}: invalid compose project",
                        secret.source
                    ));
                }
            }
            let replicas = s.deploy.as_ref().and_then(|d| d.replicas);
            if let (Some(scale), Some(r)) = (s.scale, replicas) {
                if scale != r {
                    return inv(format!(
                        "services.{name}: can't set distinct values on 'scale' and 'deploy.replicas': invalid compose project"
                    ));
                }
            }
            if s.scale.is_some_and(|x| x < 0) {
                return inv(format!(
                    "services.{name}.scale: must be greater than or equal to 0"
                ));
            }
            if replicas.is_some_and(|x| x < 0) {
                return inv(format!(
                    "services.{name}.deploy.replicas: must be greater than or equal to 0"
                ));
            }
            if let Some(limits) = s.deploy.as_ref().and_then(|d| d.resources.limits.as_ref()) {
                if s.cpus != 0.0 && limits.nano_cpus != s.cpus {
                    return inv(format!(
                        "services.{name}: can't set distinct values on 'cpus' and 'deploy.resources.limits.cpus': invalid compose project"
                    ));
                }
                if s.mem_limit.0 != 0 && limits.memory_bytes != s.mem_limit {
                    return inv(format!(
                        "services.{name}: can't set distinct values on 'mem_limit' and 'deploy.resources.limits.memory': invalid compose project"
                    ));
                }
                if s.pids_limit != 0 && limits.pids != s.pids_limit {
                    return inv(format!(
                        "services.{name}: can't set distinct values on 'pids_limit' and 'deploy.resources.limits.pids': invalid compose project"
                    ));
                }
            }
            if let Some(res) = s
                .deploy
                .as_ref()
                .and_then(|d| d.resources.reservations.as_ref())
            {
                if s.mem_reservation.0 != 0 && res.memory_bytes != s.mem_reservation {
                    return inv(format!(
                        "services.{name}: can't set distinct values on 'mem_reservation' and 'deploy.resources.reservations.memory': invalid compose project"
                    ));
                }
            }
            let scale = s.scale.or(replicas).unwrap_or(1);
            if scale > 1 && !s.container_name.is_empty() {
                let attr = if s.scale.is_none() {
                    "deploy.replicas"
                } else {
                    "scale"
                };
                return inv(format!(
                    "services.{name}: can't set container_name and {attr} as container name must be unique: invalid compose project"
                ));
            }
            if let Some(dev) = &s.develop {
                for w in &dev.watch {
                    if w.target.is_empty() && w.action != "rebuild" && w.action != "restart" {
                        return inv(format!(
                            "services.{name}.develop.watch: target is required for non-rebuild actions: invalid compose project"
                        ));
                    }
                }
            }
            let mut mounts: BTreeMap<String, String> = BTreeMap::new();
            for (i, t) in s.tmpfs.iter().enumerate() {
                let loc = format!("services.{name}.tmpfs[{i}]");
                let path = t.split(':').next().unwrap_or("").to_string();
                if let Some(p) = mounts.get(&path) {
                    return inv(format!("{loc}: target {path} already mounted as {p}"));
                }
                mounts.insert(path, loc);
            }
            for (i, v) in s.volumes.iter().enumerate() {
                let loc = format!("services.{name}.volumes[{i}]");
                if let Some(p) = mounts.get(&v.target) {
                    return inv(format!("{loc}: target {} already mounted as {p}", v.target));
                }
                mounts.insert(v.target.clone(), loc);
            }
        }
        for (name, secret) in &self.secrets {
            if secret.external {
                continue;
            }
            if secret.file.is_empty() && secret.environment.is_empty() {
                return inv(format!(
                    "secret {name:?} must declare either `file` or `environment`: invalid compose project"
                ));
            }
        }
        self.check_cycles()
    }

    fn check_cycles(&self) -> Result<()> {
        for (name, s) in &self.services {
            for (dep, cfg) in &s.depends_on {
                if !self.services.contains_key(dep) && cfg.required {
                    if let Some(ds) = self.disabled_services.get(dep) {
                        return Err(Error::invalid(format!(
                            "service {dep:?} is required by {name:?} but is disabled. Can be enabled by profiles {:?}",
                            ds.profiles
                        )));
                    }
                    return Err(Error::invalid(format!(
                        "service {name:?} depends on unknown service {dep:?}"
                    )));
                }
            }
        }
        fn search(p: &Project, path: &mut Vec<String>) -> Result<()> {
            let Some(current) = path.last().cloned() else {
                return Ok(());
            };
            let Some(s) = p.services.get(&current) else {
                return Ok(());
            };
            for dep in s.depends_on.keys() {
                if !p.services.contains_key(dep) {
                    continue;
                }
                if let Some(i) = path.iter().position(|x| x == dep) {
                    return Err(Error::invalid(format!(
                        "dependency cycle detected: {} -> {dep}",
                        path[i..].join(" -> ")
                    )));
                }
                path.push(dep.clone());
                search(p, path)?;
                path.pop();
            }
            Ok(())
        }
        for name in self.services.keys() {
            search(self, &mut vec![name.clone()])?;
        }
        Ok(())
    }

    /// Resolves `environment` from the project environment and the services' `env_file`s.
    pub fn resolve_services_environment(&mut self, discard_env_files: bool) -> Result<()> {
        let project_env = self.environment.clone();
        for service in self.services.values_mut() {
            for (k, v) in service.environment.iter_mut() {
                if v.is_none() {
                    if let Some(val) = project_env.get(k) {
                        *v = Some(val.clone());
                    }
                }
            }
            let mut environment: BTreeMap<String, String> = service
                .environment
                .iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
                .collect();
            let service_env = service.environment.clone();
            for env_file in &service.env_files {
                let path = std::path::Path::new(&env_file.path);
                if !path.exists() {
                    if env_file.required {
                        return Err(Error::invalid(format!(
                            "env file {} not found: stat {}: no such file or directory",
                            env_file.path, env_file.path
                        )));
                    }
                    continue;
                }
                if !env_file.format.is_empty() && env_file.format != ".env" {
                    return Err(Error::invalid(format!(
                        "unsupported env_file format {:?}",
                        env_file.format
                    )));
                }
                let content = std::fs::read_to_string(path).map_err(|source| Error::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
                let lookup = |k: &str| -> Option<String> {
                    if let Some(v) = project_env.get(k) {
                        return Some(v.clone());
                    }
                    service_env.get(k).and_then(|v| v.clone())
                };
                dotenv::parse(&content, &mut environment, &lookup).map_err(|e| {
                    Error::invalid(format!("failed to read {}: {e}", env_file.path))
                })?;
            }
            let mut resolved: BTreeMap<String, Option<String>> =
                environment.into_iter().map(|(k, v)| (k, Some(v))).collect();
            for (k, v) in &service.environment {
                resolved.insert(k.clone(), v.clone());
            }
            service.environment = resolved;
            if discard_env_files {
                service.env_files.clear();
            }
        }
        Ok(())
    }

    /// Merges the services' `label_file`s into their labels.
    pub fn resolve_services_labels(&mut self, discard_label_files: bool) -> Result<()> {
        for service in self.services.values_mut() {
            let mut labels: BTreeMap<String, String> = BTreeMap::new();
            for file in &service.label_files {
                let path = std::path::Path::new(file);
                if !path.exists() {
                    return Err(Error::invalid(format!(
                        "label file {file} not found: stat {file}: no such file or directory"
                    )));
                }
                let content = std::fs::read_to_string(path).map_err(|source| Error::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
                let mut vars = BTreeMap::new();
                let snapshot = labels.clone();
                dotenv::parse(&content, &mut vars, &|k| snapshot.get(k).cloned())
                    .map_err(|e| Error::invalid(format!("failed to read {file}: {e}")))?;
                labels.extend(vars);
            }
            for (k, v) in &service.labels {
                labels.insert(k.clone(), v.clone());
            }
            if !labels.is_empty() {
                service.labels = labels;
            }
            if discard_label_files {
                service.label_files.clear();
            }
        }
        Ok(())
    }

    /// Drops networks, volumes, secrets, configs and models no enabled service uses.
    pub fn without_unnecessary_resources(&mut self) {
        let mut networks = BTreeSet::new();
        let mut volumes = BTreeSet::new();
        let mut secrets = BTreeSet::new();
        let mut configs = BTreeSet::new();
        let mut models = BTreeSet::new();
        for s in self.services.values() {
            networks.extend(s.networks.keys().cloned());
            for v in &s.volumes {
                if v.kind == "volume" && !v.source.is_empty() {
                    volumes.insert(v.source.clone());
                }
            }
            secrets.extend(s.secrets.iter().map(|x| x.source.clone()));
            if let Some(b) = &s.build {
                secrets.extend(b.secrets.iter().map(|x| x.source.clone()));
            }
            configs.extend(s.configs.iter().map(|x| x.source.clone()));
            models.extend(s.models.keys().cloned());
        }
        self.networks.retain(|k, _| networks.contains(k));
        self.volumes.retain(|k, _| volumes.contains(k));
        self.secrets.retain(|k, _| secrets.contains(k));
        self.configs.retain(|k, _| configs.contains(k));
        self.models.retain(|k, _| models.contains(k));
    }

    /// Rejects services sharing a `container_name`.
    pub fn check_container_name_unicity(&self) -> Result<()> {
        let mut names: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, s) in &self.services {
            if s.container_name.is_empty() {
                continue;
            }
            if let Some(existing) = names.get(s.container_name.as_str()) {
                return Err(Error::invalid(format!(
                    "services.{name}: container name {:?} is already in use by service {existing}",
                    s.container_name
                )));
            }
            names.insert(&s.container_name, name);
        }
        Ok(())
    }
}
