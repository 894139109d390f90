//! CDI spec files and device resolution (see the README).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_errdefs::{Error, Result};
use serde::Deserialize;

/// Where CDI specs are looked for by default (the CDI library's and dockerd's order:
/// a later directory overrides an earlier one).
pub const DEFAULT_SPEC_DIRS: [&str; 2] = ["/etc/cdi", "/var/run/cdi"];

/// A device node to create in the container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceNode {
    /// The path in the container.
    pub path: String,
    /// The host's device node (the same path when absent).
    #[serde(default)]
    pub host_path: Option<String>,
    /// Some of `rwm` (default `rwm`).
    #[serde(default)]
    pub permissions: Option<String>,
}

/// A bind mount into the container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mount {
    pub host_path: String,
    pub container_path: String,
    #[serde(default)]
    pub options: Vec<String>,
}

/// An OCI hook (`hookName` is the OCI stage: `createRuntime`, `createContainer`,
/// `startContainer`, `poststart`, `poststop`, or the older `prestart`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hook {
    pub hook_name: String,
    pub path: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub timeout: Option<i64>,
}

/// What a device (or a whole spec) changes in a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Edits {
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub device_nodes: Vec<DeviceNode>,
    #[serde(default)]
    pub mounts: Vec<Mount>,
    #[serde(default)]
    pub hooks: Vec<Hook>,
}

impl Edits {
    fn append(&mut self, o: &Edits) {
        self.env.extend(o.env.iter().cloned());
        self.device_nodes.extend(o.device_nodes.iter().cloned());
        self.mounts.extend(o.mounts.iter().cloned());
        self.hooks.extend(o.hooks.iter().cloned());
    }

    pub fn is_empty(&self) -> bool {
        self.env.is_empty() && self.device_nodes.is_empty() && self.mounts.is_empty() && self.hooks.is_empty()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Device {
    name: String,
    #[serde(default)]
    container_edits: Edits,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Spec {
    cdi_version: String,
    kind: String,
    #[serde(default)]
    devices: Vec<Device>,
    #[serde(default)]
    container_edits: Edits,
}

/// The devices of every spec found, by fully-qualified name.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    /// qualified name → (the device's edits, the index of its spec's edits)
    devices: BTreeMap<String, (Edits, usize)>,
    spec_edits: Vec<Edits>,
}

/// A spec file's text as JSON (CDI specs are YAML or JSON; JSON is YAML).
fn yaml_to_json(text: &str) -> std::result::Result<serde_json::Value, String> {
    use yaml_rust2::Yaml;
    fn conv(y: &Yaml) -> std::result::Result<serde_json::Value, String> {
        Ok(match y {
            Yaml::Real(s) => s.parse::<f64>().map(serde_json::Value::from).map_err(|e| e.to_string())?,
            Yaml::Integer(i) => (*i).into(),
            Yaml::String(s) => s.clone().into(),
            Yaml::Boolean(b) => (*b).into(),
            Yaml::Array(a) => serde_json::Value::Array(a.iter().map(conv).collect::<std::result::Result<_, _>>()?),
            Yaml::Hash(h) => {
                let mut m = serde_json::Map::new();
                for (k, v) in h {
                    let key = match k {
                        Yaml::String(s) => s.clone(),
                        Yaml::Integer(i) => i.to_string(),
                        other => return Err(format!("unsupported key {other:?}")),
                    };
                    m.insert(key, conv(v)?);
                }
                serde_json::Value::Object(m)
            }
            Yaml::Null => serde_json::Value::Null,
            Yaml::Alias(_) | Yaml::BadValue => return Err("unsupported YAML value".into()),
        })
    }
    let docs = yaml_rust2::YamlLoader::load_from_str(text).map_err(|e| e.to_string())?;
    conv(docs.first().ok_or("empty document")?)
}

/// A kind is `vendor.tld/class`: a domain-like vendor and a class name.
fn valid_kind(kind: &str) -> bool {
    let ok = |s: &str, extra: &str| {
        !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
    };
    matches!(kind.split_once('/'), Some((vendor, class)) if ok(vendor, ".-_") && vendor.contains('.') && ok(class, "-_."))
}

impl Registry {
    /// Read every `*.json`, `*.yaml` and `*.yml` of `dirs` (missing directories are
    /// skipped). A device defined again in a later directory replaces the earlier.
    /// A spec that does not parse is an error naming its file.
    pub fn load(dirs: &[PathBuf]) -> Result<Registry> {
        let mut reg = Registry::default();
        for dir in dirs {
            let Ok(rd) = std::fs::read_dir(dir) else { continue };
            let mut files: Vec<PathBuf> = rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("json" | "yaml" | "yml")))
                .collect();
            files.sort();
            for f in files {
                reg.add_file(&f)?;
            }
        }
        Ok(reg)
    }

    fn add_file(&mut self, f: &Path) -> Result<()> {
        let bad = |m: String| Error::invalid(format!("CDI spec {}: {m}", f.display()));
        let text = std::fs::read_to_string(f).map_err(|e| bad(e.to_string()))?;
        let spec: Spec = serde_json::from_value(yaml_to_json(&text).map_err(bad)?).map_err(|e| bad(e.to_string()))?;
        if !spec.cdi_version.starts_with("0.") && !spec.cdi_version.starts_with("1.") {
            return Err(bad(format!("unsupported cdiVersion {:?}", spec.cdi_version)));
        }
        if !valid_kind(&spec.kind) {
            return Err(bad(format!("invalid kind {:?}: want vendor.com/class", spec.kind)));
        }
        self.spec_edits.push(spec.container_edits);
        let idx = self.spec_edits.len() - 1;
        for d in spec.devices {
            if d.name.is_empty() || !d.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c)) {
                return Err(bad(format!("invalid device name {:?}", d.name)));
            }
            self.devices.insert(format!("{}={}", spec.kind, d.name), (d.container_edits, idx));
        }
        Ok(())
    }

    /// The qualified names of every known device.
    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.devices.keys()
    }

    /// Does any spec define devices of `kind` (`vendor.com/class`)?
    pub fn has_kind(&self, kind: &str) -> bool {
        let prefix = format!("{kind}=");
        self.devices.range(prefix.clone()..).next().is_some_and(|(n, _)| n.starts_with(&prefix))
    }

    /// The edits of `names` (qualified: `vendor.com/class=name`), each spec's own
    /// edits once, then each device's. Unknown names are an error listing them all,
    /// in dockerd's words.
    pub fn resolve(&self, names: &[String]) -> Result<Edits> {
        let missing: Vec<&str> = names.iter().filter(|n| !self.devices.contains_key(*n)).map(String::as_str).collect();
        if !missing.is_empty() {
            return Err(Error::invalid(format!(
                "CDI device injection failed: unresolvable CDI devices {}",
                missing.join(", ")
            )));
        }
        let mut out = Edits::default();
        let mut specs_done = Vec::new();
        for n in names {
            let (edits, spec) = &self.devices[n];
            if !specs_done.contains(spec) {
                specs_done.push(*spec);
                out.append(&self.spec_edits[*spec]);
            }
            out.append(edits);
        }
        Ok(out)
    }
}

/// One of Docker's device requests (`HostConfig.DeviceRequests`), as far as CDI needs it.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub driver: String,
    /// -1: all.
    pub count: i64,
    pub device_ids: Vec<String>,
    pub capabilities: Vec<Vec<String>>,
}

/// dockerd's error for a request no device driver takes.
pub fn no_driver(r: &Request) -> Error {
    let caps: Vec<String> = r.capabilities.iter().map(|c| format!("{c:?}").replace('"', "")).collect();
    Error::invalid(format!("could not select device driver \"{}\" with capabilities: [{}]", r.driver, caps.join(" ")))
}

/// The CDI device names Docker's requests stand for: the `cdi` driver's ids as
/// they are (`--device vendor.com/class=name`), and GPU requests (`--gpus`, driver
/// empty or `nvidia`, capability `gpu`) as `nvidia.com/gpu=all`, `=0..N-1` or `=<id>`.
/// Other requests are refused with dockerd's words.
pub fn device_names(reqs: &[Request]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for r in reqs {
        let gpu = r.capabilities.iter().any(|set| set.iter().any(|c| c == "gpu"));
        match r.driver.as_str() {
            "cdi" => out.extend(r.device_ids.iter().cloned()),
            "" | "nvidia" if gpu => {
                if !r.device_ids.is_empty() {
                    out.extend(r.device_ids.iter().map(|id| format!("nvidia.com/gpu={id}")));
                } else if r.count < 0 {
                    out.push("nvidia.com/gpu=all".into());
                } else {
                    out.extend((0..r.count).map(|i| format!("nvidia.com/gpu={i}")));
                }
            }
            _ => return Err(no_driver(r)),
        }
    }
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"
cdiVersion: "0.6.0"
kind: "example.com/fake"
containerEdits:
  env: ["FAKE_SPEC=1"]
devices:
  - name: one
    containerEdits:
      env: ["FAKE_DEVICE=one"]
      deviceNodes:
        - path: /dev/fake0
          hostPath: /dev/null
      mounts:
        - hostPath: /srv/fake
          containerPath: /opt/fake
          options: [ro, bind]
  - name: two
    containerEdits:
      env: ["FAKE_DEVICE=two"]
"#;

    #[test]
    fn specs_load_resolve_and_override() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(a.join("fake.yaml"), YAML).unwrap();
        // a JSON spec in the later directory replaces device "two"
        std::fs::write(
            b.join("fake.json"),
            r#"{"cdiVersion":"0.5.0","kind":"example.com/fake","devices":[{"name":"two","containerEdits":{"env":["TWO=new"]}}]}"#,
        )
        .unwrap();
        let reg = Registry::load(&[a, b, dir.path().join("missing")]).unwrap();
        assert_eq!(reg.names().count(), 2);
        assert!(reg.has_kind("example.com/fake") && !reg.has_kind("example.com/fak") && !reg.has_kind("nvidia.com/gpu"));
        let e = reg.resolve(&["example.com/fake=one".into()]).unwrap();
        assert_eq!(e.env, ["FAKE_SPEC=1", "FAKE_DEVICE=one"]);
        assert_eq!(e.device_nodes[0].host_path.as_deref(), Some("/dev/null"));
        assert_eq!(e.mounts[0].options, ["ro", "bind"]);
        let e = reg.resolve(&["example.com/fake=two".into()]).unwrap();
        assert_eq!(e.env, ["TWO=new"]);
        let err = reg.resolve(&["example.com/fake=three".into(), "x.com/y=z".into()]).unwrap_err();
        assert_eq!(err.to_string(), "CDI device injection failed: unresolvable CDI devices example.com/fake=three, x.com/y=z");
    }

    #[test]
    fn bad_specs_name_their_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.yaml"), "cdiVersion: \"0.6.0\"\nkind: nokind\ndevices: []\n").unwrap();
        let e = Registry::load(&[dir.path().to_path_buf()]).unwrap_err().to_string();
        assert!(e.contains("bad.yaml") && e.contains("invalid kind"), "{e}");
    }

    #[test]
    fn docker_requests_name_cdi_devices() {
        let gpu = |count, ids: &[&str]| Request {
            driver: String::new(),
            count,
            device_ids: ids.iter().map(|s| s.to_string()).collect(),
            capabilities: vec![vec!["gpu".into()]],
        };
        assert_eq!(device_names(&[gpu(-1, &[])]).unwrap(), ["nvidia.com/gpu=all"]);
        assert_eq!(device_names(&[gpu(2, &[])]).unwrap(), ["nvidia.com/gpu=0", "nvidia.com/gpu=1"]);
        assert_eq!(device_names(&[gpu(0, &["GPU-abc"])]).unwrap(), ["nvidia.com/gpu=GPU-abc"]);
        let cdi = Request { driver: "cdi".into(), device_ids: vec!["example.com/fake=one".into()], ..Default::default() };
        assert_eq!(device_names(&[cdi]).unwrap(), ["example.com/fake=one"]);
        let other = Request { driver: "tpu".into(), capabilities: vec![vec!["tpu".into()]], ..Default::default() };
        assert!(device_names(&[other]).unwrap_err().to_string().contains("could not select device driver \"tpu\""));
    }
}
