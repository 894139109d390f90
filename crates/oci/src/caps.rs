//! Linux capabilities with Docker's defaults and `--cap-add`/`--cap-drop` semantics.

use berth_errdefs::{Error, Result};
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

/// Docker's default capability set (moby `oci/caps/defaults.go`), in Docker's order.
const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability Linux defines, indexed by capability number.
const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's default capability set, "CAP_" prefixed.
pub fn default_capabilities() -> &'static [&'static str] {
    DEFAULT_CAPS
}

/// All capabilities that `--privileged` and `--cap-add ALL` grant: those the running kernel
/// supports (`/proc/sys/kernel/cap_last_cap`) and this process may hand on (its permitted set,
/// from `/proc/self/status`). Asking for a capability outside the permitted set would make
/// capset(2) fail at container start, e.g. when berth itself runs without CAP_SYS_RESOURCE.
pub fn all_capabilities() -> Vec<String> {
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(ALL_CAPS.len() - 1);
    let permitted = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapPrm:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        });
    ALL_CAPS
        .iter()
        .enumerate()
        .take(last + 1)
        .filter(|(i, _)| permitted.is_none_or(|p| p & (1u64 << i) != 0))
        .map(|(_, c)| c.to_string())
        .collect()
}

/// "net_admin" / "CAP_NET_ADMIN" -> "CAP_NET_ADMIN" (no validation).
pub(crate) fn canonical_name(c: &str) -> String {
    let up = c.trim().to_ascii_uppercase();
    if up == "ALL" || up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

/// moby `NormalizeLegacyCapabilities`: prefix, upper-case, keep "ALL", reject unknown names.
fn normalize(list: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(list.len());
    for c in list {
        let n = canonical_name(c);
        if n != "ALL" && !ALL_CAPS.contains(&n.as_str()) {
            return Err(Error::invalid(format!("unknown capability: {n:?}")));
        }
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
}

/// dockerd's `validateCapabilities` at create: every name `--cap-add` and
/// `--cap-drop` give is a capability (or `ALL`).
pub fn check_capabilities(add: &[String], drop: &[String]) -> Result<()> {
    normalize(add).map_err(|e| Error::invalid(format!("invalid CapAdd: {}", e.message())))?;
    normalize(drop).map_err(|e| Error::invalid(format!("invalid CapDrop: {}", e.message())))?;
    Ok(())
}

/// The container's capability list after Docker's `TweakCapabilities`: privileged or
/// `--cap-add ALL` gives every supported capability (minus drops), `--cap-drop ALL` keeps only
/// the added ones, otherwise defaults minus drops plus adds.
pub fn effective_capabilities(
    cap_add: &[String],
    cap_drop: &[String],
    privileged: bool,
) -> Result<Vec<String>> {
    let defaults: Vec<String> = DEFAULT_CAPS.iter().map(|c| c.to_string()).collect();
    if privileged {
        return Ok(all_capabilities());
    }
    if cap_add.is_empty() && cap_drop.is_empty() {
        return Ok(defaults);
    }
    let drop = normalize(cap_drop)?;
    let add = normalize(cap_add)?;
    let all = "ALL".to_string();
    let mut caps: Vec<String> = if add.contains(&all) {
        all_capabilities()
            .into_iter()
            .filter(|c| !drop.contains(c))
            .collect()
    } else if drop.contains(&all) {
        add
    } else {
        let mut v: Vec<String> = defaults.into_iter().filter(|c| !drop.contains(c)).collect();
        v.extend(add);
        v
    };
    let mut seen = std::collections::HashSet::new();
    caps.retain(|c| c != "ALL" && seen.insert(c.clone()));
    Ok(caps)
}

fn to_capability(name: &str) -> Result<Capability> {
    serde_json::from_value(serde_json::Value::String(name.to_string()))
        .map_err(|_| Error::invalid(format!("unknown capability: {name:?}")))
}

/// The OCI capability sets Docker uses: bounding, effective and permitted hold the list;
/// inheritable and ambient stay empty (moby since the CVE-2022-24769 fix).
pub fn linux_capabilities(caps: &[String]) -> Result<LinuxCapabilities> {
    let set = caps
        .iter()
        .map(|c| to_capability(c))
        .collect::<Result<Capabilities>>()?;
    let mut lc = LinuxCapabilities::default();
    lc.set_bounding(Some(set.clone()));
    lc.set_effective(Some(set.clone()));
    lc.set_permitted(Some(set));
    lc.set_inheritable(None);
    lc.set_ambient(None);
    Ok(lc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn defaults_are_dockers_fourteen() {
        assert_eq!(default_capabilities().len(), 14);
        assert!(!default_capabilities().contains(&"CAP_SYS_ADMIN"));
        let caps = effective_capabilities(&[], &[], false).unwrap();
        assert_eq!(caps.len(), 14);
    }

    #[test]
    fn add_and_drop() {
        let caps = effective_capabilities(
            &s(&["NET_ADMIN", "cap_sys_ptrace"]),
            &s(&["CAP_CHOWN", "mknod"]),
            false,
        )
        .unwrap();
        assert!(caps.contains(&"CAP_NET_ADMIN".into()));
        assert!(caps.contains(&"CAP_SYS_PTRACE".into()));
        assert!(!caps.contains(&"CAP_CHOWN".into()));
        assert!(!caps.contains(&"CAP_MKNOD".into()));
        assert_eq!(caps.len(), 14);
    }

    #[test]
    fn all_handling() {
        let caps = effective_capabilities(&s(&["ALL"]), &s(&["NET_ADMIN"]), false).unwrap();
        assert!(caps.contains(&"CAP_SYS_ADMIN".into()));
        assert!(!caps.contains(&"CAP_NET_ADMIN".into()));
        assert_eq!(caps.len(), all_capabilities().len() - 1);

        let caps = effective_capabilities(&s(&["CHOWN"]), &s(&["all"]), false).unwrap();
        assert_eq!(caps, s(&["CAP_CHOWN"]));

        let caps = effective_capabilities(&[], &s(&["ALL"]), false).unwrap();
        assert!(caps.is_empty());

        let caps = effective_capabilities(&s(&["CHOWN"]), &[], true).unwrap();
        assert_eq!(caps, all_capabilities());
    }

    #[test]
    fn unknown_capability_is_invalid() {
        let err = effective_capabilities(&s(&["NOPE"]), &[], false).unwrap_err();
        assert_eq!(err.kind(), berth_errdefs::Kind::InvalidArgument);
        assert_eq!(err.message(), "unknown capability: \"CAP_NOPE\"");
        let add = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(check_capabilities(&add(&["net_admin", "CAP_SYS_TIME", "all"]), &add(&["chown"])).is_ok());
        let err = check_capabilities(&add(&["bogus"]), &[]).unwrap_err();
        assert_eq!(err.message(), "invalid CapAdd: unknown capability: \"CAP_BOGUS\"");
        let err = check_capabilities(&[], &add(&["nope"])).unwrap_err();
        assert_eq!(err.message(), "invalid CapDrop: unknown capability: \"CAP_NOPE\"");
    }

    #[test]
    fn oci_sets() {
        let lc = linux_capabilities(&s(&["CAP_CHOWN", "CAP_KILL"])).unwrap();
        assert_eq!(lc.bounding().as_ref().unwrap().len(), 2);
        assert!(lc.effective().as_ref().unwrap().contains(&Capability::Kill));
        assert!(lc
            .permitted()
            .as_ref()
            .unwrap()
            .contains(&Capability::Chown));
        assert!(lc.inheritable().is_none() && lc.ambient().is_none());
    }
}
