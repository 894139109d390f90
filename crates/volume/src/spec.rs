//! Mount specifications as dockerd parses them (moby `volume/mounts`, Linux parser):
//! `-v SRC:DST[:MODE]` strings, `--mount` objects, tmpfs options and `--volumes-from`.

use berth_api::models::{Mount, MountBindOptionsPropagationEnum, MountType};
use berth_errdefs::{Error, Result};
use serde::{Deserialize, Serialize};

/// What is mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A host path.
    Bind,
    /// A named (or anonymous) volume.
    Volume,
    /// A new tmpfs.
    Tmpfs,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Bind => "bind",
            Kind::Volume => "volume",
            Kind::Tmpfs => "tmpfs",
        }
    }
}

/// One mount of a container, as moby's `MountPoint` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountPoint {
    pub kind: Kind,
    /// Bind: the host path (cleaned). Volume: the host path once the volume is
    /// resolved; empty before.
    pub source: String,
    /// The path in the container (cleaned, absolute).
    pub destination: String,
    pub rw: bool,
    /// Volume name (a random id for an anonymous volume).
    #[serde(default)]
    pub name: String,
    /// Volume driver (`local` when empty).
    #[serde(default)]
    pub driver: String,
    /// The mode string the user gave (`ro,z`...), empty for `--mount`.
    #[serde(default)]
    pub mode: String,
    /// Bind propagation (`rprivate` by default).
    #[serde(default)]
    pub propagation: String,
    /// Copy the image's content into a new empty volume (not with `nocopy`).
    #[serde(default)]
    pub copy_data: bool,
    /// tmpfs mount options (`size=..,mode=..`).
    #[serde(default)]
    pub tmpfs_options: String,
    /// Was this a `-v` bind (whose missing source directory is created, as dockerd
    /// does for backward compatibility) rather than `--mount type=bind` (which must
    /// exist)?
    #[serde(default)]
    pub create_source: bool,
    /// `--mount` volume options: labels and driver options for a volume it creates.
    #[serde(default)]
    pub volume_labels: std::collections::HashMap<String, String>,
    #[serde(default)]
    pub driver_options: std::collections::HashMap<String, String>,
    /// An anonymous volume (`-v /path`, the image's `VOLUME`): removed with `rm -v`.
    #[serde(default)]
    pub anonymous: bool,
}

impl MountPoint {
    fn new(kind: Kind, destination: &str, rw: bool) -> MountPoint {
        MountPoint {
            kind,
            source: String::new(),
            destination: clean_path(destination),
            rw,
            name: String::new(),
            driver: String::new(),
            mode: String::new(),
            propagation: String::new(),
            copy_data: false,
            tmpfs_options: String::new(),
            create_source: false,
            volume_labels: Default::default(),
            driver_options: Default::default(),
            anonymous: false,
        }
    }

    /// An anonymous volume at `destination` (an image `VOLUME`).
    pub fn anonymous(destination: &str) -> MountPoint {
        let mut m = MountPoint::new(Kind::Volume, destination, true);
        m.name = random_id();
        m.anonymous = true;
        m.copy_data = true;
        m
    }
}

/// A 64-hex-digit random id, as dockerd names anonymous volumes.
pub fn random_id() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn invalid_spec(raw: &str) -> Error {
    Error::invalid(format!("invalid volume specification: '{raw}'"))
}

fn invalid_mode(mode: &str) -> Error {
    Error::invalid(format!("invalid mode: {mode}"))
}

fn mount_config(kind: &str, msg: impl std::fmt::Display) -> Error {
    Error::invalid(format!("invalid mount config for type \"{kind}\": {msg}"))
}

/// Go's `path.Clean`.
pub fn clean_path(p: &str) -> String {
    berth_containerfs::gopath::clean(p)
}

const PROPAGATIONS: [&str; 6] = ["private", "rprivate", "slave", "rslave", "shared", "rshared"];
const CONSISTENCY: [&str; 4] = ["consistent", "cached", "delegated", "default"];

/// moby `linuxValidMountMode`: at most one of each kind of option.
fn valid_mode(mode: &str) -> bool {
    if mode.is_empty() {
        return true;
    }
    let mut counts = [0usize; 5];
    for o in mode.split(',') {
        let k = match o {
            "rw" | "ro" => 0,
            "z" | "Z" => 1,
            o if PROPAGATIONS.contains(&o) => 2,
            "nocopy" => 3,
            o if CONSISTENCY.contains(&o) => 4,
            _ => return false,
        };
        counts[k] += 1;
    }
    counts.iter().all(|c| *c <= 1)
}

fn validate_target(kind: &str, target: &str) -> Result<()> {
    if target.is_empty() {
        return Err(mount_config(kind, "field Target must not be empty"));
    }
    if clean_path(target) == "/" {
        return Err(mount_config(kind, "invalid specification: destination can't be '/'"));
    }
    if !target.starts_with('/') {
        return Err(mount_config(kind, format!("invalid mount path: '{target}' mount path must be absolute")));
    }
    Ok(())
}

/// The local driver's volume name rule (moby `validateName`).
pub fn validate_name(name: &str) -> Result<()> {
    if name.chars().count() == 1 {
        return Err(Error::invalid("volume name is too short, names should be at least two alphanumeric characters"));
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return Err(Error::invalid(format!(
            "\"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )));
    }
    Ok(())
}

/// Parse one `HostConfig.Binds` entry (`-v`): `DST`, `SRC:DST` or `SRC:DST:MODE`. An
/// absolute source is a bind mount, anything else a volume name.
pub fn parse_bind(raw: &str, volume_driver: &str) -> Result<MountPoint> {
    if raw.matches(':').count() > 2 {
        return Err(invalid_spec(raw));
    }
    let arr: Vec<&str> = raw.splitn(3, ':').collect();
    if arr[0].is_empty() {
        return Err(invalid_spec(raw));
    }
    let (source, target, mode) = match arr.as_slice() {
        [t] => ("", *t, ""),
        [s, t] => {
            if valid_mode(t) {
                // `/foo:rw`: a volume cannot have a mode without a source.
                return Err(invalid_spec(raw));
            }
            (*s, *t, "")
        }
        [s, t, m] => (*s, *t, *m),
        _ => return Err(invalid_spec(raw)),
    };
    if !valid_mode(mode) {
        return Err(invalid_mode(mode));
    }
    let opts: Vec<&str> = mode.split(',').filter(|o| !o.is_empty()).collect();
    let rw = !opts.contains(&"ro");
    let wrap = |e: Error| Error::invalid(format!("{}: {}", invalid_spec(raw).message(), e.message()));
    let kind_name = if source.starts_with('/') { "bind" } else { "volume" };
    validate_target(kind_name, target).map_err(wrap)?;
    let mut m = if source.starts_with('/') {
        let mut m = MountPoint::new(Kind::Bind, target, rw);
        m.source = clean_path(source);
        m.propagation = opts.iter().find(|o| PROPAGATIONS.contains(o)).unwrap_or(&"rprivate").to_string();
        m.create_source = true;
        m
    } else {
        if opts.iter().any(|o| PROPAGATIONS.contains(o)) {
            return Err(wrap(mount_config("volume", "field BindOptions must not be specified")));
        }
        let mut m = MountPoint::new(Kind::Volume, target, rw);
        if source.is_empty() {
            m.name = random_id();
            m.anonymous = true;
        } else {
            validate_name(source)?;
            m.name = source.to_owned();
        }
        m.driver = volume_driver.to_owned();
        m.copy_data = !opts.contains(&"nocopy");
        m
    };
    m.mode = mode.to_owned();
    Ok(m)
}

fn propagation_str(p: MountBindOptionsPropagationEnum) -> &'static str {
    match p {
        MountBindOptionsPropagationEnum::EMPTY | MountBindOptionsPropagationEnum::RPRIVATE => "rprivate",
        MountBindOptionsPropagationEnum::PRIVATE => "private",
        MountBindOptionsPropagationEnum::SHARED => "shared",
        MountBindOptionsPropagationEnum::RSHARED => "rshared",
        MountBindOptionsPropagationEnum::SLAVE => "slave",
        MountBindOptionsPropagationEnum::RSLAVE => "rslave",
    }
}

/// Parse one `HostConfig.Mounts` entry (`--mount`). A bind source must exist unless
/// `CreateMountpoint` says to create it.
pub fn parse_mount(m: &Mount) -> Result<MountPoint> {
    let kind = m.typ.ok_or_else(|| mount_config("", "mount type unknown"))?;
    let kname = kind.to_string();
    let target = m.target.clone().unwrap_or_default();
    validate_target(&kname, &target)?;
    let source = m.source.clone().unwrap_or_default();
    let rw = !m.read_only.unwrap_or(false);
    if m.consistency.as_deref().is_some_and(|c| !c.is_empty() && !CONSISTENCY.contains(&c)) {
        return Err(mount_config(&kname, format!("invalid consistency: {}", m.consistency.as_deref().unwrap_or(""))));
    }
    match kind {
        MountType::BIND => {
            if source.is_empty() {
                return Err(mount_config(&kname, "field Source must not be empty"));
            }
            if m.volume_options.is_some() {
                return Err(mount_config(&kname, "field VolumeOptions must not be specified"));
            }
            if m.tmpfs_options.is_some() {
                return Err(mount_config(&kname, "field TmpfsOptions must not be specified"));
            }
            if !source.starts_with('/') {
                return Err(mount_config(&kname, format!("invalid mount path: '{source}' mount path must be absolute")));
            }
            let create = m.bind_options.as_ref().and_then(|b| b.create_mountpoint).unwrap_or(false);
            if !create && std::fs::symlink_metadata(&source).is_err() {
                return Err(mount_config(&kname, format!("bind source path does not exist: {source}")));
            }
            if m.bind_options.as_ref().and_then(|b| b.non_recursive).unwrap_or(false) {
                return Err(mount_config(&kname, "non-recursive bind mounts are not supported by berth"));
            }
            let mut p = MountPoint::new(Kind::Bind, &target, rw);
            p.source = clean_path(&source);
            p.propagation = propagation_str(
                m.bind_options.as_ref().and_then(|b| b.propagation).unwrap_or(MountBindOptionsPropagationEnum::EMPTY),
            )
            .to_owned();
            p.create_source = create;
            Ok(p)
        }
        MountType::VOLUME => {
            if m.bind_options.is_some() {
                return Err(mount_config(&kname, "field BindOptions must not be specified"));
            }
            if m.tmpfs_options.is_some() {
                return Err(mount_config(&kname, "field TmpfsOptions must not be specified"));
            }
            if source.is_empty() && !rw {
                return Err(mount_config(&kname, "must not set ReadOnly mode when using anonymous volumes"));
            }
            let mut p = MountPoint::new(Kind::Volume, &target, rw);
            if source.is_empty() {
                p.name = random_id();
                p.anonymous = true;
            } else {
                validate_name(&source)?;
                p.name = source;
            }
            p.copy_data = true;
            if let Some(vo) = &m.volume_options {
                if vo.subpath.as_deref().is_some_and(|s| !s.is_empty()) {
                    return Err(mount_config(&kname, "volume subpaths are not supported by API 1.41"));
                }
                if vo.no_copy.unwrap_or(false) {
                    p.copy_data = false;
                }
                p.volume_labels = vo.labels.clone().unwrap_or_default();
                if let Some(dc) = &vo.driver_config {
                    p.driver = dc.name.clone().unwrap_or_default();
                    p.driver_options = dc.options.clone().unwrap_or_default();
                }
            }
            Ok(p)
        }
        MountType::TMPFS => {
            if m.bind_options.is_some() {
                return Err(mount_config(&kname, "field BindOptions must not be specified"));
            }
            if !source.is_empty() {
                return Err(mount_config(&kname, "field Source must not be specified"));
            }
            if m.volume_options.is_some() {
                return Err(mount_config(&kname, "field VolumeOptions must not be specified"));
            }
            let t = m.tmpfs_options.as_ref();
            if t.and_then(|t| t.options.as_ref()).is_some_and(|o| !o.is_empty()) {
                return Err(mount_config(&kname, "tmpfs Options are not supported by API 1.41"));
            }
            let mut p = MountPoint::new(Kind::Tmpfs, &target, rw);
            p.tmpfs_options = tmpfs_options(t.and_then(|t| t.size_bytes), t.and_then(|t| t.mode), !rw)?;
            Ok(p)
        }
        other => Err(mount_config(&other.to_string(), "mount type unknown")),
    }
}

/// moby `ParseTmpfsOptions`: a `--tmpfs` option is a mount flag or one of tmpfs's own
/// (`size`, `mode`, `uid`, `gid`, `nr_inodes`, `nr_blocks`, `mpol`); anything else is
/// refused in dockerd's words (`invalid tmpfs option ["x"]`, Go's `%q` of the split).
pub fn check_tmpfs_options(options: &str) -> Result<()> {
    const FLAGS: [&str; 33] = [
        "defaults", "ro", "rw", "suid", "nosuid", "dev", "nodev", "exec", "noexec", "sync", "async", "dirsync",
        "remount", "mand", "nomand", "atime", "noatime", "diratime", "nodiratime", "bind", "rbind", "unbindable",
        "runbindable", "private", "rprivate", "shared", "rshared", "slave", "rslave", "relatime", "norelatime",
        "strictatime", "nostrictatime",
    ];
    const DATA: [&str; 7] = ["size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol"];
    for o in options.split(',').filter(|o| !o.is_empty() && !FLAGS.contains(o)) {
        let parts: Vec<&str> = o.splitn(2, '=').collect();
        if !DATA.contains(&parts[0]) {
            let shown: Vec<String> = parts.iter().map(|p| format!("{p:?}")).collect();
            return Err(Error::invalid(format!("invalid tmpfs option [{}]", shown.join(" "))));
        }
    }
    Ok(())
}

/// moby `ConvertTmpfsOptions`: `ro`, `mode=<octal>`, `size=<n>[kmg]`.
pub fn tmpfs_options(size: Option<i64>, mode: Option<i64>, readonly: bool) -> Result<String> {
    let mut out = Vec::new();
    if readonly {
        out.push("ro".to_owned());
    }
    if let Some(m) = mode.filter(|m| *m != 0) {
        if !(0..=0o7777).contains(&m) {
            return Err(Error::invalid(format!("invalid tmpfs mode: {m}")));
        }
        out.push(format!("mode={m:o}"));
    }
    if let Some(size) = size.filter(|s| *s != 0) {
        if size < 0 {
            return Err(Error::invalid(format!("invalid tmpfs size: {size}")));
        }
        let (n, suffix) = [("g", 1i64 << 30), ("m", 1 << 20), ("k", 1 << 10)]
            .iter()
            .find(|(_, d)| size % d == 0)
            .map(|(s, d)| (size / d, *s))
            .unwrap_or((size, ""));
        out.push(format!("size={n}{suffix}"));
    }
    Ok(out.join(","))
}

/// `--volumes-from CONTAINER[:ro|rw]`: the container and its mode.
pub fn parse_volumes_from(spec: &str) -> Result<(String, String)> {
    if spec.is_empty() {
        return Err(Error::invalid("volumes-from specification cannot be an empty string"));
    }
    let (id, mode) = spec.split_once(':').unwrap_or((spec, "rw"));
    if spec.contains(':') {
        if !valid_mode(mode) {
            return Err(invalid_mode(mode));
        }
        if mode.split(',').any(|o| PROPAGATIONS.contains(&o) || o == "nocopy") {
            return Err(invalid_mode(mode));
        }
    }
    Ok((id.to_owned(), mode.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_as_go() {
        for (i, o) in [
            ("", "."),
            ("/", "/"),
            ("/a//b/./c/..", "/a/b"),
            ("/../x", "/x"),
            ("a/../..", ".."),
            ("./", "."),
            ("/data/", "/data"),
        ] {
            assert_eq!(clean_path(i), o, "{i}");
        }
    }

    #[test]
    fn binds_as_dockerd_parses_them() {
        let b = parse_bind("/host:/ctr:ro,rshared", "").unwrap();
        assert_eq!((b.kind, b.source.as_str(), b.destination.as_str(), b.rw), (Kind::Bind, "/host", "/ctr", false));
        assert_eq!(b.propagation, "rshared");
        assert!(b.create_source);
        let v = parse_bind("data:/data", "").unwrap();
        assert_eq!((v.kind, v.name.as_str(), v.rw, v.copy_data), (Kind::Volume, "data", true, true));
        let v = parse_bind("data:/data:nocopy,z", "").unwrap();
        assert!(!v.copy_data);
        let a = parse_bind("/anon", "").unwrap();
        assert!(a.anonymous && a.name.len() == 64 && a.kind == Kind::Volume);
        assert_eq!(parse_bind("/x/../y/", "").unwrap().destination, "/y");
    }

    #[test]
    fn bad_binds_are_refused_with_dockerd_messages() {
        let msg = |raw: &str| parse_bind(raw, "").unwrap_err().message().to_owned();
        assert!(msg("..:/x").contains("includes invalid characters for a local volume name"), "{}", msg("..:/x"));
        assert!(msg(".:/x").contains("volume name is too short"));
        assert!(msg("~:/x").contains("volume name is too short"));
        assert!(msg("~home:/x").contains("includes invalid characters"));
        assert_eq!(msg(":/x"), "invalid volume specification: ':/x'");
        assert_eq!(msg("/a:/b:/c:/d"), "invalid volume specification: '/a:/b:/c:/d'");
        assert_eq!(msg("/foo:rw"), "invalid volume specification: '/foo:rw'");
        assert_eq!(msg("/a:/b:bogus"), "invalid mode: bogus");
        assert_eq!(msg("/a:/b:ro,rw"), "invalid mode: ro,rw");
        assert_eq!(
            msg("/a:relative"),
            "invalid volume specification: '/a:relative': invalid mount config for type \"bind\": invalid mount path: 'relative' mount path must be absolute"
        );
        assert!(msg("/a:/").contains("destination can't be '/'"));
        assert!(msg("vol:/x:rshared").contains("field BindOptions must not be specified"));
    }

    #[test]
    fn mounts_as_dockerd_parses_them() {
        let m: Mount = serde_json::from_value(serde_json::json!({"Type": "bind", "Source": "/nonexistent-berth", "Target": "/x"})).unwrap();
        assert_eq!(
            parse_mount(&m).unwrap_err().message(),
            "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent-berth"
        );
        let m: Mount = serde_json::from_value(serde_json::json!({"Type": "bind", "Source": "/", "Target": "/x", "ReadOnly": true,
            "BindOptions": {"Propagation": "rslave"}})).unwrap();
        let p = parse_mount(&m).unwrap();
        assert_eq!((p.kind, p.rw, p.propagation.as_str(), p.create_source), (Kind::Bind, false, "rslave", false));
        let m: Mount = serde_json::from_value(serde_json::json!({"Type": "volume", "Target": "/x", "ReadOnly": true})).unwrap();
        assert!(parse_mount(&m).unwrap_err().message().contains("anonymous volumes"));
        let m: Mount = serde_json::from_value(serde_json::json!({"Type": "volume", "Source": "v1", "Target": "/x",
            "VolumeOptions": {"NoCopy": true, "Labels": {"a": "b"}, "DriverConfig": {"Name": "local", "Options": {"type": "tmpfs"}}}})).unwrap();
        let p = parse_mount(&m).unwrap();
        assert_eq!((p.name.as_str(), p.copy_data, p.driver.as_str()), ("v1", false, "local"));
        assert_eq!(p.driver_options["type"], "tmpfs");
        let m: Mount = serde_json::from_value(serde_json::json!({"Type": "tmpfs", "Target": "/t",
            "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 448}})).unwrap();
        assert_eq!(parse_mount(&m).unwrap().tmpfs_options, "mode=700,size=1m");
        let m: Mount = serde_json::from_value(serde_json::json!({"Type": "tmpfs", "Source": "x", "Target": "/t"})).unwrap();
        assert!(parse_mount(&m).unwrap_err().message().contains("field Source must not be specified"));
    }

    #[test]
    fn volumes_from_modes() {
        assert_eq!(parse_volumes_from("c1").unwrap(), ("c1".to_owned(), "rw".to_owned()));
        assert_eq!(parse_volumes_from("c1:ro").unwrap().1, "ro");
        assert!(parse_volumes_from("c1:rshared").is_err());
        assert!(parse_volumes_from("").is_err());
    }

    #[test]
    fn tmpfs_options_are_flags_or_tmpfs_own() {
        for ok in ["", "rw,exec,size=1m", "ro,noexec,nosuid,mode=1777,uid=1,gid=2", "defaults,atime,nr_inodes=9,mpol=default"] {
            assert!(check_tmpfs_options(ok).is_ok(), "{ok}");
        }
        assert_eq!(check_tmpfs_options("bogus").unwrap_err().message(), "invalid tmpfs option [\"bogus\"]");
        assert_eq!(check_tmpfs_options("size=1m,bogus=2").unwrap_err().message(), "invalid tmpfs option [\"bogus\" \"2\"]");
    }
}
