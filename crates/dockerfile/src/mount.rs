//! `RUN --mount=...` specifications (BuildKit's `commands_runmount.go`).

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MountType {
    #[default]
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

impl MountType {
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareMode {
    Shared,
    Private,
    Locked,
}

/// One parsed `--mount`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mount {
    pub typ: MountType,
    pub from: String,
    pub source: String,
    pub target: String,
    pub read_only: bool,
    /// tmpfs `size=` in bytes (0 = unlimited).
    pub size_limit: i64,
    pub cache_id: String,
    pub cache_sharing: Option<ShareMode>,
    pub required: bool,
    /// secret: environment variable to expose it as.
    pub env: Option<String>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// Splits one CSV record like Go's `csvvalue.Fields`.
pub(crate) fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    loop {
        let mut field = String::new();
        if chars.get(i) == Some(&'"') {
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("extraneous or missing \" in quoted-field".into()),
                    Some('"') if chars.get(i + 1) == Some(&'"') => {
                        field.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        match chars.get(i) {
                            None | Some(',') => break,
                            _ => return Err("extraneous or missing \" in quoted-field".into()),
                        }
                    }
                    Some(c) => {
                        field.push(*c);
                        i += 1;
                    }
                }
            }
        } else {
            while let Some(&c) = chars.get(i) {
                if c == ',' {
                    break;
                }
                if c == '"' {
                    return Err("bare \" in non-quoted-field".into());
                }
                field.push(c);
                i += 1;
            }
        }
        out.push(field);
        if chars.get(i) == Some(&',') {
            i += 1;
            continue;
        }
        break;
    }
    Ok(out)
}

/// Go's `strconv.ParseBool`.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// docker/go-units `RAMInBytes`: `64m`, `1.5g`, `512kb` (binary multiples).
pub(crate) fn ram_in_bytes(s: &str) -> Option<i64> {
    let re = regex::Regex::new(r"^(\d+(\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$").ok()?;
    let caps = re.captures(s)?;
    let num: f64 = caps[1].parse().ok()?;
    let mul: f64 = match caps.get(3).map(|m| m.as_str().to_ascii_lowercase()) {
        None => 1.0,
        Some(u) => match u.as_str() {
            "k" => 1024.0,
            "m" => 1024f64.powi(2),
            "g" => 1024f64.powi(3),
            "t" => 1024f64.powi(4),
            _ => 1024f64.powi(5),
        },
    };
    Some((num * mul) as i64)
}

/// Parses one `--mount` value; `expand` is applied to every `key=value` value.
pub fn parse_mount(
    val: &str,
    expand: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<Mount, String> {
    let fields = csv_fields(val).map_err(|e| format!("failed to parse csv mounts: {e}"))?;
    let mut m = Mount {
        typ: MountType::Bind,
        ..Default::default()
    };
    let mut ro_auto = true;
    for field in fields {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), Some(v)),
            None => (field.to_lowercase(), None),
        };
        let Some(value) = value else {
            match key.as_str() {
                "readonly" | "ro" => {
                    m.read_only = true;
                    ro_auto = false;
                }
                "readwrite" | "rw" => {
                    m.read_only = false;
                    ro_auto = false;
                }
                "required" if matches!(m.typ, MountType::Secret | MountType::Ssh) => {
                    m.required = true
                }
                "required" => {
                    return Err(format!(
                        "unexpected key '{key}' for mount type '{}'",
                        m.typ.as_str()
                    ))
                }
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
            continue;
        };
        let value = expand(value)?;
        let bool_of =
            |v: &str| parse_bool(v).ok_or_else(|| format!("invalid value for {key}: {v}"));
        match key.as_str() {
            "type" => {
                m.typ = match value.to_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => {
                        let e = format!("unsupported mount type {}", crate::dump::go_quote(&value));
                        return Err(crate::convert::suggest(
                            e,
                            &value,
                            &["bind", "cache", "tmpfs", "secret", "ssh"],
                            true,
                        ));
                    }
                }
            }
            "from" => m.from = value,
            "source" | "src" => m.source = value,
            "target" | "dst" | "destination" => m.target = value,
            "readonly" | "ro" => {
                m.read_only = bool_of(&value)?;
                ro_auto = false;
            }
            "readwrite" | "rw" => {
                m.read_only = !bool_of(&value)?;
                ro_auto = false;
            }
            "required" => {
                if matches!(m.typ, MountType::Secret | MountType::Ssh) {
                    m.required = bool_of(&value)?;
                } else {
                    return Err(format!(
                        "unexpected key '{key}' for mount type '{}'",
                        m.typ.as_str()
                    ));
                }
            }
            "size" => {
                if m.typ == MountType::Tmpfs {
                    m.size_limit = ram_in_bytes(&value)
                        .ok_or_else(|| format!("invalid value for {key}: {value}"))?;
                } else {
                    return Err(format!(
                        "unexpected key '{key}' for mount type '{}'",
                        m.typ.as_str()
                    ));
                }
            }
            "id" => m.cache_id = value,
            "sharing" => {
                m.cache_sharing = Some(match value.to_lowercase().as_str() {
                    "shared" => ShareMode::Shared,
                    "private" => ShareMode::Private,
                    "locked" => ShareMode::Locked,
                    _ => {
                        let e = format!(
                            "unsupported sharing value {}",
                            crate::dump::go_quote(&value)
                        );
                        return Err(crate::convert::suggest(
                            e,
                            &value,
                            &["shared", "private", "locked"],
                            true,
                        ));
                    }
                })
            }
            "mode" => {
                m.mode = Some(
                    u32::from_str_radix(&value, 8)
                        .map_err(|_| format!("invalid value {value} for mode"))?,
                )
            }
            "uid" => {
                m.uid = Some(
                    value
                        .parse()
                        .map_err(|_| format!("invalid value {value} for uid"))?,
                )
            }
            "gid" => {
                m.gid = Some(
                    value
                        .parse()
                        .map_err(|_| format!("invalid value {value} for gid"))?,
                )
            }
            "env" => m.env = Some(value),
            _ => {
                let all = [
                    "type",
                    "from",
                    "source",
                    "target",
                    "readonly",
                    "id",
                    "sharing",
                    "required",
                    "size",
                    "mode",
                    "uid",
                    "gid",
                    "src",
                    "dst",
                    "destination",
                    "ro",
                    "rw",
                    "readwrite",
                    "env",
                ];
                return Err(crate::convert::suggest(
                    format!("unexpected key '{key}' in '{field}'"),
                    &key,
                    &all,
                    true,
                ));
            }
        }
    }
    if !matches!(m.typ, MountType::Secret | MountType::Ssh | MountType::Cache) {
        for (name, set) in [
            ("mode", m.mode.is_some()),
            ("uid", m.uid.is_some()),
            ("gid", m.gid.is_some()),
        ] {
            if set {
                return Err(format!(
                    "{name} not allowed for \"{}\" type mounts",
                    m.typ.as_str()
                ));
            }
        }
    }
    if ro_auto {
        m.read_only = !matches!(m.typ, MountType::Cache | MountType::Tmpfs);
    }
    if m.typ == MountType::Secret {
        if !m.from.is_empty() {
            return Err("secret mount should not have a from".into());
        }
        if m.cache_sharing.is_some() {
            return Err("secret mount should not define sharing".into());
        }
        if m.source.is_empty() && m.target.is_empty() && m.cache_id.is_empty() {
            return Err("invalid secret mount. one of source, target required".into());
        }
        if !m.source.is_empty() && !m.cache_id.is_empty() {
            return Err("both source and id can't be set".into());
        }
    }
    if m.cache_sharing.is_some() && m.typ != MountType::Cache {
        return Err(format!(
            "invalid cache sharing set for {} mount",
            m.typ.as_str()
        ));
    }
    Ok(m)
}

/// Parse-time check of `from=` (no variables allowed there).
pub(crate) fn check_mount_from(val: &str) -> Result<(), String> {
    let fields = csv_fields(val).map_err(|e| format!("failed to parse csv mounts: {e}"))?;
    for f in fields {
        if let Some((k, v)) = f.split_once('=') {
            if k.eq_ignore_ascii_case("from") {
                if let Some(i) = v.find('$') {
                    if i != v.len() - 1 {
                        return Err(
                            "'from' doesn't support variable expansion, define alias stage instead"
                                .into(),
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Result<String, String> {
        Ok(s.to_string())
    }

    #[test]
    fn csv() {
        assert_eq!(
            csv_fields("a,\"b,c\",d=\"\"\"x\"").unwrap_err(),
            "bare \" in non-quoted-field"
        );
        assert_eq!(
            csv_fields("a,\"b,c\",\"d=\"\"x\"").unwrap(),
            vec!["a", "b,c", "d=\"x"]
        );
    }

    #[test]
    fn mounts() {
        let m = parse_mount(
            "type=cache,target=/root/.cache,sharing=locked,id=x,mode=0755",
            &mut id,
        )
        .unwrap();
        assert_eq!(
            (m.typ, m.read_only, m.cache_sharing, m.mode),
            (
                MountType::Cache,
                false,
                Some(ShareMode::Locked),
                Some(0o755)
            )
        );
        let m = parse_mount("type=tmpfs,target=/t,size=64m", &mut id).unwrap();
        assert_eq!(m.size_limit, 64 << 20);
        let m = parse_mount("type=secret,id=tok,required,env=TOKEN", &mut id).unwrap();
        assert!(m.required && m.read_only);
        assert_eq!(m.env.as_deref(), Some("TOKEN"));
        assert_eq!(
            parse_mount("type=bind,mode=0700", &mut id).unwrap_err(),
            "mode not allowed for \"bind\" type mounts"
        );
        assert_eq!(
            parse_mount("type=cahce", &mut id).unwrap_err(),
            "unsupported mount type \"cahce\" (did you mean cache?)"
        );
        assert!(check_mount_from("type=bind,from=$X").is_err());
    }
}
