//! The typed, normalized Compose model. Values are decoded from the canonical model with
//! the same conversions compose-go applies when binding it to its Go structs, and
//! serialized with the same JSON shape `docker compose config --format json` prints
//! (`omitempty` fields left out when empty, structs always present, sizes as strings,
//! durations in Go notation).

use std::collections::BTreeMap;

use serde::ser::{Error as _, SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};

use crate::format::{format_duration, parse_duration, ram_in_bytes, split_shell_words};
use crate::interpolate::{parse_decimal, parse_float, to_boolean};
use crate::value::{Map, Value};

// ---------------------------------------------------------------------------------------
// decoding

/// Conversion from the untyped model (mapstructure-like).
pub trait FromValue: Sized {
    /// Decodes `v`; errors describe what is wrong (the caller adds the key path).
    fn from_value(v: &Value) -> Result<Self, String>;
}

fn type_err(want: &str, v: &Value) -> String {
    format!("expected {want}, got {}", v.kind())
}

impl FromValue for String {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Int(i) => Ok(i.to_string()),
            Value::Null => Ok(String::new()),
            Value::Bool(_) | Value::Float(_) => Ok(v.go_sprint()),
            other => Err(type_err("a string", other)),
        }
    }
}

impl FromValue for bool {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Bool(b) => Ok(*b),
            Value::String(s) => to_boolean(s),
            Value::Null => Ok(false),
            other => Err(type_err("a boolean", other)),
        }
    }
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Int(i) => Ok(*i),
            Value::Float(f) if f.fract() == 0.0 => Ok(*f as i64),
            Value::String(s) => parse_decimal(s),
            Value::Null => Ok(0),
            other => Err(type_err("an integer", other)),
        }
    }
}

impl FromValue for u64 {
    fn from_value(v: &Value) -> Result<Self, String> {
        let i = i64::from_value(v)?;
        u64::try_from(i).map_err(|_| format!("{i} must be positive"))
    }
}

impl FromValue for u32 {
    fn from_value(v: &Value) -> Result<Self, String> {
        let i = i64::from_value(v)?;
        u32::try_from(i).map_err(|_| format!("{i} is out of range"))
    }
}

impl FromValue for u16 {
    fn from_value(v: &Value) -> Result<Self, String> {
        let i = i64::from_value(v)?;
        u16::try_from(i).map_err(|_| format!("{i} is out of range"))
    }
}

impl FromValue for f64 {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Float(f) => Ok(*f),
            Value::Int(i) => Ok(*i as f64),
            Value::String(s) => parse_float(s),
            Value::Null => Ok(0.0),
            other => Err(type_err("a number", other)),
        }
    }
}

impl FromValue for f32 {
    fn from_value(v: &Value) -> Result<Self, String> {
        Ok(f64::from_value(v)? as f32)
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Null => Ok(None),
            other => Ok(Some(T::from_value(other)?)),
        }
    }
}

impl<T: FromValue> FromValue for Vec<T> {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, e)| T::from_value(e).map_err(|err| format!("[{i}]: {err}")))
                .collect(),
            Value::Null => Ok(Vec::new()),
            other => Err(type_err("a sequence", other)),
        }
    }
}

impl<T: FromValue> FromValue for BTreeMap<String, T> {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Map(m) => m
                .iter()
                .filter(|(k, _)| !k.starts_with("x-"))
                .map(|(k, e)| {
                    Ok((
                        k.clone(),
                        T::from_value(e).map_err(|err| format!("{k}: {err}"))?,
                    ))
                })
                .collect(),
            Value::Null => Ok(BTreeMap::new()),
            other => Err(type_err("a mapping", other)),
        }
    }
}

fn prefix(key: &str, err: String) -> String {
    if err.starts_with('[') {
        format!("{key}{err}")
    } else {
        format!("{key}.{err}")
    }
}

/// Declares a struct decoded from a mapping: unknown keys are ignored (as mapstructure
/// does), `null` values leave the field at its default.
macro_rules! decode_struct {
    ($ty:ident { $($field:ident : $key:literal $(=> $dec:path)?),* $(,)? }) => {
        impl FromValue for $ty {
            fn from_value(v: &Value) -> Result<Self, String> {
                let m = match v {
                    Value::Map(m) => m,
                    Value::Null => return Ok(Self::default()),
                    other => return Err(type_err("a mapping", other)),
                };
                #[allow(clippy::needless_update)]
                let mut out = Self::default();
                $(
                    if let Some(x) = m.get($key) {
                        if !x.is_null() {
                            out.$field = decode_struct!(@dec x $(, $dec)?).map_err(|e| prefix($key, e))?;
                        }
                    }
                )*
                Ok(out)
            }
        }
    };
    (@dec $x:ident) => { FromValue::from_value($x) };
    (@dec $x:ident, $dec:path) => { $dec($x) };
}

// ---------------------------------------------------------------------------------------
// custom scalar types

/// A byte size (`mem_limit`, `shm_size`, ...); printed as a decimal string.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnitBytes(pub i64);

impl UnitBytes {
    fn is_zero(&self) -> bool {
        self.0 == 0
    }
}

impl FromValue for UnitBytes {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Int(i) => Ok(UnitBytes(*i)),
            Value::String(s) => Ok(UnitBytes(ram_in_bytes(s)?)),
            _ => Ok(UnitBytes(0)),
        }
    }
}

impl Serialize for UnitBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

/// A duration in nanoseconds; printed in Go notation (`1m30s`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Duration(pub i64);

impl Duration {
    fn is_zero(&self) -> bool {
        self.0 == 0
    }
}

impl FromValue for Duration {
    fn from_value(v: &Value) -> Result<Self, String> {
        Ok(Duration(parse_duration(&v.go_sprint())?))
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

/// A command (`command`, `entrypoint`, hooks): `None` when unset, which is printed as
/// `null`; an explicitly empty command is printed as `[]`.
pub type ShellCommand = Option<Vec<String>>;

fn decode_shell_command(v: &Value) -> Result<ShellCommand, String> {
    match v {
        Value::String(s) => Ok(Some(split_shell_words(s)?)),
        Value::Seq(items) => Ok(Some(items.iter().map(Value::go_sprint).collect())),
        Value::Null => Ok(None),
        other => Err(type_err("a string or a list", other)),
    }
}

/// `environment`-like mapping where a key may have no value.
pub type MappingWithEquals = BTreeMap<String, Option<String>>;

fn decode_mapping_with_equals(v: &Value) -> Result<MappingWithEquals, String> {
    let mut out = MappingWithEquals::new();
    match v {
        Value::Map(m) => {
            for (k, e) in m {
                if k.starts_with("x-") {
                    continue;
                }
                out.insert(
                    k.clone(),
                    if e.is_null() {
                        None
                    } else {
                        Some(e.go_sprint())
                    },
                );
            }
        }
        Value::Seq(items) => {
            for s in items {
                let s = s.go_sprint();
                let (k, val) = match s.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (s.clone(), None),
                };
                if k.chars().last().is_some_and(char::is_whitespace) {
                    return Err(format!(
                        "environment variable {k} is declared with a trailing space"
                    ));
                }
                out.insert(k, val);
            }
        }
        other => return Err(type_err("a mapping", other)),
    }
    Ok(out)
}

/// A `key: value` mapping that may also be written as a `key=value` list.
pub type Mapping = BTreeMap<String, String>;

fn decode_mapping(v: &Value) -> Result<Mapping, String> {
    let mut out = Mapping::new();
    match v {
        Value::Map(m) => {
            for (k, e) in m {
                if k.starts_with("x-") {
                    continue;
                }
                out.insert(
                    k.clone(),
                    if e.is_null() {
                        String::new()
                    } else {
                        e.go_sprint()
                    },
                );
            }
        }
        Value::Seq(items) => {
            for s in items {
                let s = s.go_sprint();
                match s.split_once('=') {
                    Some((k, val)) => out.insert(k.to_string(), val.to_string()),
                    None => out.insert(s.clone(), String::new()),
                };
            }
        }
        other => return Err(type_err("a mapping", other)),
    }
    Ok(out)
}

/// A list of strings that may be written as a single string.
pub type StringList = Vec<String>;

fn decode_string_list(v: &Value) -> Result<StringList, String> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Seq(items) => items
            .iter()
            .map(|e| match e {
                Value::String(s) => Ok(s.clone()),
                other => Err(type_err("a string", other)),
            })
            .collect(),
        other => Err(type_err("a string or a list", other)),
    }
}

fn decode_string_or_number_list(v: &Value) -> Result<StringList, String> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Seq(items) => Ok(items.iter().map(Value::go_sprint).collect()),
        other => Err(type_err("a string or a list", other)),
    }
}

/// `extra_hosts`: host name to IP addresses, printed as a sorted `host=ip` list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostsList(pub BTreeMap<String, Vec<String>>);

impl HostsList {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn cleanup(&mut self) -> Result<(), String> {
        for (host, ips) in self.0.iter_mut() {
            if host.is_empty() || host.contains(':') || host.contains('=') {
                return Err(format!("bad host name '{host}'"));
            }
            for ip in ips.iter_mut() {
                if ip.len() > 2 && ip.starts_with('[') && ip.ends_with(']') {
                    *ip = ip[1..ip.len() - 1].to_string();
                }
            }
        }
        Ok(())
    }
}

impl FromValue for HostsList {
    fn from_value(v: &Value) -> Result<Self, String> {
        let mut list = HostsList::default();
        match v {
            Value::Map(m) => {
                for (host, e) in m {
                    let ips = match e {
                        Value::Null => vec![String::new()],
                        Value::String(s) => vec![s.clone()],
                        Value::Seq(items) => items.iter().map(Value::go_sprint).collect(),
                        other => return Err(type_err("an extra_hosts entry", other)),
                    };
                    list.0.insert(host.clone(), ips);
                }
            }
            Value::Seq(items) => {
                for e in items {
                    let s = e.go_sprint();
                    let split = s.split_once('=').or_else(|| s.split_once(':'));
                    let Some((host, ip)) = split else {
                        return Err(format!("invalid additional host, missing IP: {s}"));
                    };
                    list.0
                        .entry(host.to_string())
                        .or_default()
                        .extend(ip.split(',').map(str::to_string));
                }
            }
            other => return Err(type_err("extra_hosts", other)),
        }
        list.cleanup()?;
        Ok(list)
    }
}

impl Serialize for HostsList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut list: Vec<String> = Vec::new();
        for (host, ips) in &self.0 {
            for ip in ips {
                list.push(format!("{host}={ip}"));
            }
        }
        list.sort();
        list.serialize(s)
    }
}

/// `ulimits` entry: a single value or soft/hard limits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UlimitsConfig {
    /// Single value (soft = hard).
    pub single: i64,
    /// Soft limit.
    pub soft: i64,
    /// Hard limit.
    pub hard: i64,
}

impl FromValue for UlimitsConfig {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Int(i) => Ok(UlimitsConfig {
                single: *i,
                soft: 0,
                hard: 0,
            }),
            Value::Map(m) => Ok(UlimitsConfig {
                single: 0,
                soft: m.get("soft").map(i64::from_value).transpose()?.unwrap_or(0),
                hard: m.get("hard").map(i64::from_value).transpose()?.unwrap_or(0),
            }),
            other => Err(type_err("a ulimit", other)),
        }
    }
}

impl Serialize for UlimitsConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.single != 0 {
            return s.serialize_i64(self.single);
        }
        let mut m = s.serialize_map(None)?;
        if self.soft != 0 {
            m.serialize_entry("soft", &self.soft)?;
        }
        if self.hard != 0 {
            m.serialize_entry("hard", &self.hard)?;
        }
        m.end()
    }
}

/// Octal file mode of a mounted secret/config, printed as `"0444"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMode(pub i64);

impl FromValue for FileMode {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Int(i) => Ok(FileMode(*i)),
            Value::String(s) => i64::from_str_radix(s, 8)
                .map(FileMode)
                .map_err(|e| e.to_string()),
            other => Err(format!("unexpected value type {} for mode", other.kind())),
        }
    }
}

impl Serialize for FileMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0{:o}", self.0))
    }
}

/// SSH agent sockets or keys for a build (`default` or `id=path`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshKey {
    /// Key id.
    pub id: String,
    /// Path to the socket or key, empty for the default agent.
    pub path: String,
}

impl Serialize for SshKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.path.is_empty() {
            s.serialize_str(&self.id)
        } else {
            // compose-go renders `"id": path`, which is not a JSON value: Compose fails
            // with "invalid character ':' after top-level value".
            Err(S::Error::custom(format!(
                "json: error calling MarshalJSON for type types.SSHKey: invalid character ':' after top-level value ({:?})",
                self.id
            )))
        }
    }
}

fn decode_ssh(v: &Value) -> Result<Vec<SshKey>, String> {
    let Value::Map(m) = v else {
        return Err(format!("invalid ssh config type {}", v.kind()));
    };
    Ok(m.iter()
        .map(|(id, p)| SshKey {
            id: id.clone(),
            path: if p.is_null() {
                String::new()
            } else {
                p.go_sprint()
            },
        })
        .collect())
}

/// Number of devices requested (`-1` for `all`).
fn decode_device_count(v: &Value) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::String(s) => {
            if s.eq_ignore_ascii_case("all") {
                Ok(-1)
            } else {
                s.parse::<i64>().map_err(|_| {
                    format!("invalid value {s:?}, the only value allowed is 'all' or a number")
                })
            }
        }
        other => Err(format!("invalid type {} for device count", other.kind())),
    }
}

fn decode_nano_cpus(v: &Value) -> Result<f32, String> {
    match v {
        Value::String(s) => Ok(parse_float(s)? as f32),
        Value::Int(i) => Ok(*i as f32),
        Value::Float(f) => Ok(*f as f32),
        other => Err(format!("unexpected value type {} for cpus", other.kind())),
    }
}

fn decode_options(v: &Value) -> Result<Mapping, String> {
    match v {
        Value::Map(m) => Ok(m
            .iter()
            .filter(|(k, _)| !k.starts_with("x-"))
            .map(|(k, e)| {
                (
                    k.clone(),
                    if e.is_null() {
                        String::new()
                    } else {
                        e.go_sprint()
                    },
                )
            })
            .collect()),
        other => Err(format!("invalid type {} for options", other.kind())),
    }
}

fn decode_multi_options(v: &Value) -> Result<BTreeMap<String, Vec<String>>, String> {
    match v {
        Value::Map(m) => Ok(m
            .iter()
            .filter(|(k, _)| !k.starts_with("x-"))
            .map(|(k, e)| {
                let vals = match e {
                    Value::Seq(items) => items.iter().map(Value::go_sprint).collect(),
                    other => vec![other.go_sprint()],
                };
                (k.clone(), vals)
            })
            .collect()),
        other => Err(format!("invalid type {} for options", other.kind())),
    }
}

fn decode_healthcheck_test(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) => Ok(vec!["CMD-SHELL".to_string(), s.clone()]),
        Value::Seq(items) => Ok(items.iter().map(Value::go_sprint).collect()),
        other => Err(format!(
            "unexpected value type {} for healthcheck.test",
            other.kind()
        )),
    }
}

// serde helpers for Go's omitempty
fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}
fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}
fn is_zero_u16(v: &u16) -> bool {
    *v == 0
}
fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}
fn is_zero_f32(v: &f32) -> bool {
    *v == 0.0
}

// ---------------------------------------------------------------------------------------
// service

/// A service definition.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServiceConfig {
    /// Service name (the key in `services`).
    #[serde(skip)]
    pub name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: Mapping,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attach: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub develop: Option<DevelopConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blkio_config: Option<BlkioConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cgroup_parent: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cgroup: String,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub cpu_count: i64,
    #[serde(skip_serializing_if = "is_zero_f32")]
    pub cpu_percent: f32,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub cpu_period: i64,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub cpu_quota: i64,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub cpu_rt_period: i64,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub cpu_rt_runtime: i64,
    #[serde(skip_serializing_if = "is_zero_f32")]
    pub cpus: f32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cpuset: String,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub cpu_shares: i64,
    /// `null` when unset.
    pub command: ShellCommand,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<FileReferenceConfig>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub container_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_spec: Option<CredentialSpecConfig>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub depends_on: BTreeMap<String, ServiceDependency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deploy: Option<DeployConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_cgroup_rules: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceMapping>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns: StringList,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_opt: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_search: StringList,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub dockerfile: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub domainname: String,
    /// `null` when unset.
    pub entrypoint: ShellCommand,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<ServiceProviderConfig>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: MappingWithEquals,
    #[serde(rename = "env_file", skip_serializing_if = "Vec::is_empty")]
    pub env_files: Vec<EnvFile>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expose: StringList,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extends: Option<ExtendsConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub external_links: Vec<String>,
    #[serde(skip_serializing_if = "HostsList::is_empty")]
    pub extra_hosts: HostsList,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub group_add: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<DeviceRequest>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    #[serde(rename = "healthcheck", skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckConfig>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ipc: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub isolation: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Mapping,
    #[serde(rename = "label_file", skip_serializing_if = "Vec::is_empty")]
    pub label_files: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logging: Option<LoggingConfig>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub log_driver: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub log_opt: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "UnitBytes::is_zero")]
    pub mem_limit: UnitBytes,
    #[serde(skip_serializing_if = "UnitBytes::is_zero")]
    pub mem_reservation: UnitBytes,
    #[serde(rename = "memswap_limit", skip_serializing_if = "UnitBytes::is_zero")]
    pub mem_swap_limit: UnitBytes,
    #[serde(skip_serializing_if = "UnitBytes::is_zero")]
    pub mem_swappiness: UnitBytes,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, Option<ServiceModelConfig>>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub net: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub network_mode: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, Option<ServiceNetworkConfig>>,
    #[serde(skip_serializing_if = "is_false")]
    pub oom_kill_disable: bool,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub oom_score_adj: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pid: String,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub pids_limit: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub platform: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ServicePortConfig>,
    #[serde(skip_serializing_if = "is_false")]
    pub privileged: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pull_policy: String,
    #[serde(skip_serializing_if = "is_false")]
    pub read_only: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub restart: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub runtime: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<FileReferenceConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    #[serde(skip_serializing_if = "UnitBytes::is_zero")]
    pub shm_size: UnitBytes,
    #[serde(skip_serializing_if = "is_false")]
    pub stdin_open: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<Duration>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stop_signal: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub storage_opt: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: Mapping,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: StringList,
    #[serde(skip_serializing_if = "is_false")]
    pub tty: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub ulimits: BTreeMap<String, UlimitsConfig>,
    #[serde(skip_serializing_if = "is_false")]
    pub use_api_socket: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub userns_mode: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uts: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub volume_driver: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<ServiceVolumeConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes_from: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub post_start: Vec<ServiceHook>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pre_stop: Vec<ServiceHook>,
}

decode_struct!(ServiceConfig {
    profiles: "profiles",
    annotations: "annotations" => decode_mapping,
    attach: "attach",
    build: "build",
    develop: "develop",
    blkio_config: "blkio_config",
    cap_add: "cap_add",
    cap_drop: "cap_drop",
    cgroup_parent: "cgroup_parent",
    cgroup: "cgroup",
    cpu_count: "cpu_count",
    cpu_percent: "cpu_percent",
    cpu_period: "cpu_period",
    cpu_quota: "cpu_quota",
    cpu_rt_period: "cpu_rt_period",
    cpu_rt_runtime: "cpu_rt_runtime",
    cpus: "cpus",
    cpuset: "cpuset",
    cpu_shares: "cpu_shares",
    command: "command" => decode_shell_command,
    configs: "configs",
    container_name: "container_name",
    credential_spec: "credential_spec",
    depends_on: "depends_on",
    deploy: "deploy",
    device_cgroup_rules: "device_cgroup_rules",
    devices: "devices",
    dns: "dns" => decode_string_list,
    dns_opt: "dns_opt",
    dns_search: "dns_search" => decode_string_list,
    dockerfile: "dockerfile",
    domainname: "domainname",
    entrypoint: "entrypoint" => decode_shell_command,
    provider: "provider",
    environment: "environment" => decode_mapping_with_equals,
    env_files: "env_file",
    expose: "expose" => decode_string_or_number_list,
    extends: "extends",
    external_links: "external_links",
    extra_hosts: "extra_hosts",
    group_add: "group_add",
    gpus: "gpus",
    hostname: "hostname",
    health_check: "healthcheck",
    image: "image",
    init: "init",
    ipc: "ipc",
    isolation: "isolation",
    labels: "labels" => decode_mapping,
    label_files: "label_file",
    links: "links",
    logging: "logging",
    log_driver: "log_driver",
    log_opt: "log_opt",
    mem_limit: "mem_limit",
    mem_reservation: "mem_reservation",
    mem_swap_limit: "memswap_limit",
    mem_swappiness: "mem_swappiness",
    mac_address: "mac_address",
    models: "models",
    net: "net",
    network_mode: "network_mode",
    networks: "networks",
    oom_kill_disable: "oom_kill_disable",
    oom_score_adj: "oom_score_adj",
    pid: "pid",
    pids_limit: "pids_limit",
    platform: "platform",
    ports: "ports",
    privileged: "privileged",
    pull_policy: "pull_policy",
    read_only: "read_only",
    restart: "restart",
    runtime: "runtime",
    scale: "scale",
    secrets: "secrets",
    security_opt: "security_opt",
    shm_size: "shm_size",
    stdin_open: "stdin_open",
    stop_grace_period: "stop_grace_period",
    stop_signal: "stop_signal",
    storage_opt: "storage_opt",
    sysctls: "sysctls" => decode_mapping,
    tmpfs: "tmpfs" => decode_string_list,
    tty: "tty",
    ulimits: "ulimits",
    use_api_socket: "use_api_socket",
    user: "user",
    userns_mode: "userns_mode",
    uts: "uts",
    volume_driver: "volume_driver",
    volumes: "volumes",
    volumes_from: "volumes_from",
    working_dir: "working_dir",
    post_start: "post_start",
    pre_stop: "pre_stop",
});

/// `provider` of a service delegated to a plugin.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServiceProviderConfig {
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, Vec<String>>,
}
decode_struct!(ServiceProviderConfig { kind: "type", options: "options" => decode_multi_options });

/// `build` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BuildConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub context: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub dockerfile: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub dockerfile_inline: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entitlements: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub args: MappingWithEquals,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub provenance: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sbom: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ssh: Vec<SshKey>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Mapping,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cache_from: StringList,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cache_to: StringList,
    #[serde(skip_serializing_if = "is_false")]
    pub no_cache: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub additional_contexts: Mapping,
    #[serde(skip_serializing_if = "is_false")]
    pub pull: bool,
    #[serde(skip_serializing_if = "HostsList::is_empty")]
    pub extra_hosts: HostsList,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub isolation: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub network: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<FileReferenceConfig>,
    #[serde(skip_serializing_if = "UnitBytes::is_zero")]
    pub shm_size: UnitBytes,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: StringList,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub ulimits: BTreeMap<String, UlimitsConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: StringList,
    #[serde(skip_serializing_if = "is_false")]
    pub privileged: bool,
}
decode_struct!(BuildConfig {
    context: "context",
    dockerfile: "dockerfile",
    dockerfile_inline: "dockerfile_inline",
    entitlements: "entitlements",
    args: "args" => decode_mapping_with_equals,
    provenance: "provenance",
    sbom: "sbom",
    ssh: "ssh" => decode_ssh,
    labels: "labels" => decode_mapping,
    cache_from: "cache_from" => decode_string_list,
    cache_to: "cache_to" => decode_string_list,
    no_cache: "no_cache",
    additional_contexts: "additional_contexts" => decode_mapping,
    pull: "pull",
    extra_hosts: "extra_hosts",
    isolation: "isolation",
    network: "network",
    target: "target",
    secrets: "secrets",
    shm_size: "shm_size",
    tags: "tags" => decode_string_list,
    ulimits: "ulimits",
    platforms: "platforms" => decode_string_list,
    privileged: "privileged",
});

/// `develop` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DevelopConfig {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub watch: Vec<Trigger>,
}
decode_struct!(DevelopConfig { watch: "watch" });

/// A `develop.watch` rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Trigger {
    pub path: String,
    pub action: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target: String,
    pub exec: ServiceHook,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub initial_sync: bool,
}
decode_struct!(Trigger {
    path: "path",
    action: "action",
    target: "target",
    exec: "exec",
    include: "include",
    ignore: "ignore",
    initial_sync: "initial_sync",
});

/// A lifecycle hook (`post_start`, `pre_stop`, `develop.watch.exec`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServiceHook {
    pub command: ShellCommand,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(skip_serializing_if = "is_false")]
    pub privileged: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: MappingWithEquals,
}
decode_struct!(ServiceHook {
    command: "command" => decode_shell_command,
    user: "user",
    privileged: "privileged",
    working_dir: "working_dir",
    environment: "environment" => decode_mapping_with_equals,
});

/// `blkio_config` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BlkioConfig {
    #[serde(skip_serializing_if = "is_zero_u16")]
    pub weight: u16,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub weight_device: Vec<WeightDevice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_read_bps: Vec<ThrottleDevice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_read_iops: Vec<ThrottleDevice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_write_bps: Vec<ThrottleDevice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_write_iops: Vec<ThrottleDevice>,
}
decode_struct!(BlkioConfig {
    weight: "weight",
    weight_device: "weight_device",
    device_read_bps: "device_read_bps",
    device_read_iops: "device_read_iops",
    device_write_bps: "device_write_bps",
    device_write_iops: "device_write_iops",
});

/// Device weight (Go field names are kept in JSON: `Path`, `Weight`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WeightDevice {
    #[serde(rename = "Path")]
    pub path: String,
    #[serde(rename = "Weight")]
    pub weight: u16,
}
decode_struct!(WeightDevice {
    path: "path",
    weight: "weight"
});

/// Device rate limit (Go field names are kept in JSON: `Path`, `Rate`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ThrottleDevice {
    #[serde(rename = "Path")]
    pub path: String,
    #[serde(rename = "Rate")]
    pub rate: UnitBytes,
}
decode_struct!(ThrottleDevice {
    path: "path",
    rate: "rate"
});

/// A device mapping.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeviceMapping {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub permissions: String,
}
decode_struct!(DeviceMapping {
    source: "source",
    target: "target",
    permissions: "permissions"
});

/// A device request (`gpus`, `deploy.resources.reservations.devices`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeviceRequest {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub driver: String,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub count: i64,
    #[serde(rename = "device_ids", skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub options: Mapping,
}
decode_struct!(DeviceRequest {
    capabilities: "capabilities",
    driver: "driver",
    count: "count" => decode_device_count,
    ids: "device_ids",
    options: "options" => decode_mapping,
});

/// `logging` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LoggingConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub driver: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub options: Mapping,
}
decode_struct!(LoggingConfig { driver: "driver", options: "options" => decode_options });

/// `deploy` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeployConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Mapping,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_config: Option<UpdateConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_config: Option<UpdateConfig>,
    pub resources: Resources,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<RestartPolicy>,
    pub placement: Placement,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub endpoint_mode: String,
}
decode_struct!(DeployConfig {
    mode: "mode",
    replicas: "replicas",
    labels: "labels" => decode_mapping,
    update_config: "update_config",
    rollback_config: "rollback_config",
    resources: "resources",
    restart_policy: "restart_policy",
    placement: "placement",
    endpoint_mode: "endpoint_mode",
});

/// `deploy.update_config` / `deploy.rollback_config`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UpdateConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<u64>,
    #[serde(skip_serializing_if = "Duration::is_zero")]
    pub delay: Duration,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub failure_action: String,
    #[serde(skip_serializing_if = "Duration::is_zero")]
    pub monitor: Duration,
    #[serde(skip_serializing_if = "is_zero_f32")]
    pub max_failure_ratio: f32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub order: String,
}
decode_struct!(UpdateConfig {
    parallelism: "parallelism",
    delay: "delay",
    failure_action: "failure_action",
    monitor: "monitor",
    max_failure_ratio: "max_failure_ratio",
    order: "order",
});

/// `deploy.resources`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Resources {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<Resource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservations: Option<Resource>,
}
decode_struct!(Resources {
    limits: "limits",
    reservations: "reservations"
});

/// A resource limit or reservation.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Resource {
    #[serde(rename = "cpus", skip_serializing_if = "is_zero_f32")]
    pub nano_cpus: f32,
    #[serde(rename = "memory", skip_serializing_if = "UnitBytes::is_zero")]
    pub memory_bytes: UnitBytes,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub pids: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceRequest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub generic_resources: Vec<GenericResource>,
}
decode_struct!(Resource {
    nano_cpus: "cpus" => decode_nano_cpus,
    memory_bytes: "memory",
    pids: "pids",
    devices: "devices",
    generic_resources: "generic_resources",
});

/// A user-defined resource (`discrete_resource_spec`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GenericResource {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discrete_resource_spec: Option<DiscreteGenericResource>,
}
decode_struct!(GenericResource {
    discrete_resource_spec: "discrete_resource_spec"
});

/// A discrete user-defined resource.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DiscreteGenericResource {
    pub kind: String,
    pub value: i64,
}
decode_struct!(DiscreteGenericResource {
    kind: "kind",
    value: "value"
});

/// `deploy.restart_policy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RestartPolicy {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub condition: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<Duration>,
}
decode_struct!(RestartPolicy {
    condition: "condition",
    delay: "delay",
    max_attempts: "max_attempts",
    window: "window",
});

/// `deploy.placement`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Placement {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub preferences: Vec<PlacementPreferences>,
    #[serde(rename = "max_replicas_per_node", skip_serializing_if = "is_zero_u64")]
    pub max_replicas: u64,
}
decode_struct!(Placement {
    constraints: "constraints",
    preferences: "preferences",
    max_replicas: "max_replicas_per_node",
});

/// A placement preference.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PlacementPreferences {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub spread: String,
}
decode_struct!(PlacementPreferences { spread: "spread" });

/// A service's attachment to a network.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServiceNetworkConfig {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: Mapping,
    #[serde(rename = "gw_priority", skip_serializing_if = "is_zero_i64")]
    pub gateway_priority: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub interface_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ipv4_address: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ipv6_address: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub link_local_ips: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub priority: i64,
}
decode_struct!(ServiceNetworkConfig {
    aliases: "aliases",
    driver_opts: "driver_opts" => decode_options,
    gateway_priority: "gw_priority",
    interface_name: "interface_name",
    ipv4_address: "ipv4_address",
    ipv6_address: "ipv6_address",
    link_local_ips: "link_local_ips",
    mac_address: "mac_address",
    priority: "priority",
});

/// A published port.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServicePortConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mode: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub host_ip: String,
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub target: u32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub published: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub app_protocol: String,
}
decode_struct!(ServicePortConfig {
    name: "name",
    mode: "mode",
    host_ip: "host_ip",
    target: "target",
    published: "published",
    protocol: "protocol",
    app_protocol: "app_protocol",
});

/// A mount of a volume, bind mount, tmpfs, ...
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServiceVolumeConfig {
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target: String,
    #[serde(skip_serializing_if = "is_false")]
    pub read_only: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub consistency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<ServiceVolumeBind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<ServiceVolumeVolume>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<ServiceVolumeTmpfs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<ServiceVolumeImage>,
}
decode_struct!(ServiceVolumeConfig {
    kind: "type",
    source: "source",
    target: "target",
    read_only: "read_only",
    consistency: "consistency",
    bind: "bind",
    volume: "volume",
    tmpfs: "tmpfs",
    image: "image",
});

/// Bind mount options.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServiceVolumeBind {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub selinux: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub propagation: String,
    #[serde(skip_serializing_if = "is_false")]
    pub create_host_path: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub recursive: String,
}
decode_struct!(ServiceVolumeBind {
    selinux: "selinux",
    propagation: "propagation",
    create_host_path: "create_host_path",
    recursive: "recursive",
});

/// Volume mount options.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServiceVolumeVolume {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Mapping,
    #[serde(skip_serializing_if = "is_false")]
    pub nocopy: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subpath: String,
}
decode_struct!(ServiceVolumeVolume { labels: "labels" => decode_mapping, nocopy: "nocopy", subpath: "subpath" });

/// tmpfs mount options.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServiceVolumeTmpfs {
    #[serde(skip_serializing_if = "UnitBytes::is_zero")]
    pub size: UnitBytes,
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub mode: u32,
}
decode_struct!(ServiceVolumeTmpfs {
    size: "size",
    mode: "mode"
});

/// Image mount options.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServiceVolumeImage {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subpath: String,
}
decode_struct!(ServiceVolumeImage { subpath: "subpath" });

/// A secret or config mounted in a service.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FileReferenceConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<FileMode>,
}
decode_struct!(FileReferenceConfig {
    source: "source",
    target: "target",
    uid: "uid",
    gid: "gid",
    mode: "mode"
});

/// A dependency on another service.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServiceDependency {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub condition: String,
    #[serde(skip_serializing_if = "is_false")]
    pub restart: bool,
    pub required: bool,
}
decode_struct!(ServiceDependency {
    condition: "condition",
    restart: "restart",
    required: "required"
});

/// `extends` reference.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExtendsConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub file: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub service: String,
}
decode_struct!(ExtendsConfig {
    file: "file",
    service: "service"
});

/// `credential_spec` (Windows).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CredentialSpecConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub config: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub file: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub registry: String,
}
decode_struct!(CredentialSpecConfig {
    config: "config",
    file: "file",
    registry: "registry"
});

/// `healthcheck` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HealthCheckConfig {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_period: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<Duration>,
    #[serde(skip_serializing_if = "is_false")]
    pub disable: bool,
}
decode_struct!(HealthCheckConfig {
    test: "test" => decode_healthcheck_test,
    timeout: "timeout",
    interval: "interval",
    retries: "retries",
    start_period: "start_period",
    start_interval: "start_interval",
    disable: "disable",
});

/// An `env_file` entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnvFile {
    /// Path to the file.
    pub path: String,
    /// Whether a missing file is an error.
    pub required: bool,
    /// File format (empty for the default dotenv format).
    pub format: String,
}
decode_struct!(EnvFile {
    path: "path",
    required: "required",
    format: "format"
});

impl Serialize for EnvFile {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.required {
            return s.serialize_str(&self.path);
        }
        let mut st = s.serialize_struct("EnvFile", 3)?;
        if !self.path.is_empty() {
            st.serialize_field("path", &self.path)?;
        }
        st.serialize_field("required", &self.required)?;
        if !self.format.is_empty() {
            st.serialize_field("format", &self.format)?;
        }
        st.end()
    }
}

/// A model used by a service.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServiceModelConfig {
    #[serde(rename = "endpoint_var", skip_serializing_if = "String::is_empty")]
    pub endpoint_variable: String,
    #[serde(rename = "model_var", skip_serializing_if = "String::is_empty")]
    pub model_variable: String,
}
decode_struct!(ServiceModelConfig {
    endpoint_variable: "endpoint_var",
    model_variable: "model_var"
});

// ---------------------------------------------------------------------------------------
// top-level resources

/// IPAM configuration of a network.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IpamConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub driver: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<IpamPool>,
}
decode_struct!(IpamConfig {
    driver: "driver",
    config: "config"
});

/// An IPAM address pool.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IpamPool {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subnet: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ip_range: String,
    #[serde(rename = "aux_addresses", skip_serializing_if = "BTreeMap::is_empty")]
    pub auxiliary_addresses: Mapping,
}
decode_struct!(IpamPool {
    subnet: "subnet",
    gateway: "gateway",
    ip_range: "ip_range",
    auxiliary_addresses: "aux_addresses" => decode_mapping,
});

/// A top-level network.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NetworkConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub driver: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: Mapping,
    pub ipam: IpamConfig,
    #[serde(skip_serializing_if = "is_false")]
    pub external: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub internal: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub attachable: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Mapping,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_ipv4: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_ipv6: Option<bool>,
}
decode_struct!(NetworkConfig {
    name: "name",
    driver: "driver",
    driver_opts: "driver_opts" => decode_options,
    ipam: "ipam",
    external: "external",
    internal: "internal",
    attachable: "attachable",
    labels: "labels" => decode_mapping,
    enable_ipv4: "enable_ipv4",
    enable_ipv6: "enable_ipv6",
});

/// A top-level volume.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VolumeConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub driver: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: Mapping,
    #[serde(skip_serializing_if = "is_false")]
    pub external: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Mapping,
}
decode_struct!(VolumeConfig {
    name: "name",
    driver: "driver",
    driver_opts: "driver_opts" => decode_options,
    external: "external",
    labels: "labels" => decode_mapping,
});

/// A top-level secret or config.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FileObjectConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub file: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub environment: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub content: String,
    #[serde(skip_serializing_if = "is_false")]
    pub external: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Mapping,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub driver: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub template_driver: String,
}
decode_struct!(FileObjectConfig {
    name: "name",
    file: "file",
    environment: "environment",
    content: "content",
    external: "external",
    labels: "labels" => decode_mapping,
    driver: "driver",
    driver_opts: "driver_opts",
    template_driver: "template_driver",
});

/// A top-level model (AI model runner).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ModelConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub model: String,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub context_size: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runtime_flags: Vec<String>,
}
decode_struct!(ModelConfig {
    name: "name",
    model: "model",
    context_size: "context_size",
    runtime_flags: "runtime_flags",
});

/// Decodes the map of a top-level section, keeping `null` entries as defaults.
pub fn decode_section<T: FromValue + Default>(
    v: Option<&Value>,
    section: &str,
) -> Result<BTreeMap<String, T>, String> {
    let mut out = BTreeMap::new();
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Map(m)) => {
            for (k, e) in m {
                let item =
                    T::from_value(e).map_err(|err| prefix(&format!("{section}.{k}"), err))?;
                out.insert(k.clone(), item);
            }
        }
        Some(other) => return Err(format!("{section} must be a mapping, got {}", other.kind())),
    }
    Ok(out)
}

/// Helper used by the project to check serialization of the `Map` alias in docs.
pub type Extensions = Map;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_documents;

    fn value(src: &str) -> Value {
        parse_documents(src).expect("yaml").remove(0).value
    }

    #[test]
    fn service_decodes_and_serializes_like_compose() {
        let v = value(
            "image: nginx\ncommand: echo 'hello world'\nmem_limit: 50M\nstop_grace_period: 1m\nenvironment: [A=1, B]\nextra_hosts: ['b:1.2.3.4', 'a=::1']\nulimits: {nofile: {soft: 1, hard: 2}, nproc: 5}\n",
        );
        let s = ServiceConfig::from_value(&v).expect("decode");
        let j = serde_json::to_value(&s).expect("json");
        assert_eq!(j["command"], serde_json::json!(["echo", "hello world"]));
        assert!(j["entrypoint"].is_null());
        assert_eq!(j["mem_limit"], "52428800");
        assert_eq!(j["stop_grace_period"], "1m0s");
        assert_eq!(j["environment"], serde_json::json!({"A": "1", "B": null}));
        assert_eq!(j["extra_hosts"], serde_json::json!(["a=::1", "b=1.2.3.4"]));
        assert_eq!(
            j["ulimits"],
            serde_json::json!({"nofile": {"soft": 1, "hard": 2}, "nproc": 5})
        );
        assert!(j.get("privileged").is_none());
    }

    #[test]
    fn deploy_keeps_struct_fields() {
        let v = value("replicas: 2\nresources:\n  limits:\n    cpus: '0.5'\n");
        let d = DeployConfig::from_value(&v).expect("decode");
        let j = serde_json::to_value(&d).expect("json");
        assert_eq!(j["placement"], serde_json::json!({}));
        assert_eq!(j["resources"]["limits"]["cpus"], serde_json::json!(0.5));
    }
}
