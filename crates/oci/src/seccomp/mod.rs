//! Seccomp: Docker's default profile and Docker-format custom profiles, turned into the
//! `linux.seccomp` section of an OCI spec.
//!
//! Rules are filtered exactly like moby's `setupSeccomp`: `includes`/`excludes` on the native
//! architecture (Go names: amd64, arm64, ...), on the container's capabilities and on the host
//! kernel version.
//!
//! **`SCMP_CMP_MASKED_EQ` encoding.** Docker (and runc) read a masked comparison as
//! `(arg & value) == valueTwo`. youki's libcontainer 0.7, which runs our specs, passes
//! `valueTwo` as the mask and `value` as the datum, i.e. it evaluates
//! `(arg & valueTwo) == value` (checked by this crate's root-only test). So the specs produced
//! here store the mask in `valueTwo` and the expected result in `value`; Docker-format
//! profiles are converted accordingly by [`load_seccomp_profile`].

mod profile;

use std::collections::HashSet;

use berth_errdefs::{Error, Result};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall,
};
use serde::Deserialize;

use profile::{Act, Cmp, RULES};

/// Where rules are evaluated: native arch, container capabilities, host kernel.
struct Target {
    go_arch: &'static str,
    caps: HashSet<String>,
    kernel: Option<(u32, u32)>,
}

impl Target {
    fn new(caps: &[String]) -> Self {
        Target {
            go_arch: native_go_arch(),
            caps: caps
                .iter()
                .map(|c| crate::caps::canonical_name(c))
                .collect(),
            kernel: host_kernel_version(),
        }
    }

    fn kernel_at_least(&self, want: (u32, u32)) -> bool {
        // Unknown kernel: assume a modern one, like moby does when uname parsing fails.
        self.kernel.is_none_or(|k| k >= want)
    }

    fn has_cap(&self, cap: &str) -> bool {
        self.caps.contains(&crate::caps::canonical_name(cap))
    }

    /// moby's include/exclude logic, in moby's order.
    fn applies(&self, inc: &Conditions<'_>, exc: &Conditions<'_>) -> bool {
        if exc.arches.contains(&self.go_arch) {
            return false;
        }
        if exc.caps.iter().any(|c| self.has_cap(c)) {
            return false;
        }
        if let Some(k) = exc.min_kernel {
            if self.kernel_at_least(k) {
                return false;
            }
        }
        if !inc.arches.is_empty() && !inc.arches.contains(&self.go_arch) {
            return false;
        }
        if !inc.caps.iter().all(|c| self.has_cap(c)) {
            return false;
        }
        if let Some(k) = inc.min_kernel {
            if !self.kernel_at_least(k) {
                return false;
            }
        }
        true
    }
}

#[derive(Default)]
struct Conditions<'a> {
    arches: Vec<&'a str>,
    caps: Vec<&'a str>,
    min_kernel: Option<(u32, u32)>,
}

/// The Go name of the architecture this binary runs on, as Docker profiles spell it.
pub fn native_go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => {
            if cfg!(target_endian = "little") {
                "ppc64le"
            } else {
                "ppc64"
            }
        }
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loongarch64" => "loong64",
        "mips64" => "mips64",
        other => other,
    }
}

/// The seccomp architectures Docker's default profile lists for the native architecture
/// (its `archMap`): the native one plus the compat ABIs the kernel also accepts.
fn native_arches() -> Vec<Arch> {
    match native_go_arch() {
        "amd64" => vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32],
        "386" => vec![Arch::ScmpArchX86],
        "arm64" => vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm],
        "arm" => vec![Arch::ScmpArchArm],
        "ppc64le" => vec![Arch::ScmpArchPpc64le],
        "ppc64" => vec![Arch::ScmpArchPpc64],
        "s390x" => vec![Arch::ScmpArchS390x, Arch::ScmpArchS390],
        "riscv64" => vec![Arch::ScmpArchRiscv64],
        "loong64" => vec![Arch::ScmpArchLoongarch64],
        _ => vec![Arch::ScmpArchNative],
    }
}

/// The `SCMP_ARCH_*` name Docker's `archMap` uses for the native architecture.
fn native_scmp_arch_name() -> &'static str {
    match native_go_arch() {
        "amd64" => "SCMP_ARCH_X86_64",
        "386" => "SCMP_ARCH_X86",
        "arm64" => "SCMP_ARCH_AARCH64",
        "arm" => "SCMP_ARCH_ARM",
        "ppc64le" => "SCMP_ARCH_PPC64LE",
        "ppc64" => "SCMP_ARCH_PPC64",
        "s390x" => "SCMP_ARCH_S390X",
        "riscv64" => "SCMP_ARCH_RISCV64",
        "loong64" => "SCMP_ARCH_LOONGARCH64",
        _ => "SCMP_ARCH_NATIVE",
    }
}

/// Host kernel `(major, minor)` from uname(2).
fn host_kernel_version() -> Option<(u32, u32)> {
    let uts = nix::sys::utsname::uname().ok()?;
    parse_kernel_version(uts.release().to_str()?)
}

/// Parse "6.1.0-18-amd64" (or "4.8") into `(6, 1)`.
fn parse_kernel_version(s: &str) -> Option<(u32, u32)> {
    let mut parts = s.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

fn make_arg(
    index: usize,
    value: u64,
    value_two: Option<u64>,
    op: LinuxSeccompOperator,
) -> LinuxSeccompArg {
    let b = LinuxSeccompArgBuilder::default()
        .index(index)
        .value(value)
        .op(op);
    let b = match value_two {
        Some(v) => b.value_two(v),
        None => b,
    };
    b.build().expect("all seccomp arg fields set")
}

fn oci_arg(cmp: Cmp) -> LinuxSeccompArg {
    match cmp {
        Cmp::Eq { index, value } => make_arg(index, value, None, LinuxSeccompOperator::ScmpCmpEq),
        Cmp::Ne { index, value } => make_arg(index, value, None, LinuxSeccompOperator::ScmpCmpNe),
        Cmp::MaskedEq { index, mask, value } => masked_eq(index, mask, value),
    }
}

/// Encode `(arg & mask) == value` the way libcontainer 0.7 reads it (see module docs).
fn masked_eq(index: usize, mask: u64, value: u64) -> LinuxSeccompArg {
    make_arg(
        index,
        value,
        Some(mask),
        LinuxSeccompOperator::ScmpCmpMaskedEq,
    )
}

fn syscall(
    names: Vec<String>,
    action: LinuxSeccompAction,
    errno: Option<u32>,
    args: Vec<LinuxSeccompArg>,
) -> LinuxSyscall {
    let mut s = LinuxSyscall::default();
    s.set_names(names);
    s.set_action(action);
    s.set_errno_ret(errno);
    s.set_args(if args.is_empty() { None } else { Some(args) });
    s
}

/// Drop names already allowed unconditionally by an earlier rule, so libseccomp never sees
/// the same unconditional rule twice; rules left with no names disappear.
fn dedupe_unconditional(syscalls: Vec<LinuxSyscall>) -> Vec<LinuxSyscall> {
    let mut allowed: HashSet<String> = HashSet::new();
    let mut out = Vec::with_capacity(syscalls.len());
    for mut s in syscalls {
        let unconditional_allow = s.action() == LinuxSeccompAction::ScmpActAllow
            && s.args().as_ref().is_none_or(|a| a.is_empty());
        if unconditional_allow {
            let names: Vec<String> = s
                .names()
                .iter()
                .filter(|n| allowed.insert((*n).clone()))
                .cloned()
                .collect();
            if names.is_empty() {
                continue;
            }
            s.set_names(names);
        }
        out.push(s);
    }
    out
}

fn base_seccomp(
    default_action: LinuxSeccompAction,
    errno: Option<u32>,
    arches: Vec<Arch>,
) -> LinuxSeccomp {
    let mut sc = LinuxSeccomp::default();
    sc.set_default_action(default_action);
    sc.set_default_errno_ret(errno);
    sc.set_architectures(if arches.is_empty() {
        None
    } else {
        Some(arches)
    });
    sc
}

/// Docker's default seccomp profile for a container holding Docker's default capabilities.
pub fn default_seccomp() -> LinuxSeccomp {
    let caps: Vec<String> = crate::caps::default_capabilities()
        .iter()
        .map(|c| c.to_string())
        .collect();
    default_seccomp_for_caps(&caps)
}

/// Profiles built so far, by sorted canonical capability set: a profile depends on
/// nothing else (the host's architecture and kernel are fixed for the process), and
/// building one allocates each of its ~370 names — 8 % of berthd's CPU in back-to-back
/// runs, where every container's spec is built three or four times. Bounded: a host
/// with many distinct `--cap-add` sets builds the others each time.
static BUILT: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<Vec<String>, LinuxSeccomp>>> =
    std::sync::LazyLock::new(Default::default);
const BUILT_MAX: usize = 32;

/// Docker's default seccomp profile for a container whose effective capability set is `caps`
/// ("CAP_"-prefixed or bare names): capability-gated syscalls are allowed only when held.
pub fn default_seccomp_for_caps(caps: &[String]) -> LinuxSeccomp {
    let mut key: Vec<String> = caps.iter().map(|c| crate::caps::canonical_name(c)).collect();
    key.sort();
    key.dedup();
    if let Some(sc) = BUILT.lock().unwrap().get(&key) {
        return sc.clone();
    }
    let sc = build_default_seccomp(&key);
    let mut built = BUILT.lock().unwrap();
    if built.len() < BUILT_MAX {
        built.insert(key, sc.clone());
    }
    sc
}

fn build_default_seccomp(caps: &[String]) -> LinuxSeccomp {
    let target = Target::new(caps);
    let mut syscalls = Vec::new();
    for rule in RULES {
        let inc = Conditions {
            arches: rule.arches.to_vec(),
            caps: rule.caps.to_vec(),
            min_kernel: rule.min_kernel,
        };
        let exc = Conditions {
            arches: rule.not_arches.to_vec(),
            caps: rule.not_caps.to_vec(),
            min_kernel: None,
        };
        if !target.applies(&inc, &exc) {
            continue;
        }
        let (action, errno) = match rule.action {
            Act::Allow => (LinuxSeccompAction::ScmpActAllow, None),
            Act::Errno(e) => (LinuxSeccompAction::ScmpActErrno, Some(e)),
        };
        let names = rule.names.iter().map(|n| n.to_string()).collect();
        let args = rule.args.iter().copied().map(oci_arg).collect();
        syscalls.push(syscall(names, action, errno, args));
    }
    let mut sc = base_seccomp(
        LinuxSeccompAction::ScmpActErrno,
        Some(libc::EPERM as u32),
        native_arches(),
    );
    sc.set_syscalls(Some(dedupe_unconditional(syscalls)));
    sc
}

// ---- Docker-format profiles -------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerProfile {
    #[serde(default)]
    default_action: String,
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    arch_map: Vec<DockerArchMap>,
    #[serde(default)]
    syscalls: Vec<DockerSyscall>,
    #[serde(default)]
    flags: Vec<String>,
    #[serde(default)]
    listener_path: String,
    #[serde(default)]
    listener_metadata: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerSyscall {
    #[serde(default)]
    name: String,
    #[serde(default)]
    names: Vec<String>,
    action: String,
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<DockerArg>>,
    #[serde(default)]
    includes: DockerFilter,
    #[serde(default)]
    excludes: DockerFilter,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerArg {
    index: usize,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DockerFilter {
    #[serde(default)]
    arches: Vec<String>,
    #[serde(default)]
    caps: Vec<String>,
    min_kernel: Option<String>,
}

impl DockerFilter {
    fn conditions(&self) -> Result<Conditions<'_>> {
        let min_kernel = match &self.min_kernel {
            None => None,
            Some(s) if s.is_empty() => None,
            Some(s) => Some(
                parse_kernel_version(s)
                    .ok_or_else(|| Error::invalid(format!("invalid kernel version: {s:?}")))?,
            ),
        };
        Ok(Conditions {
            arches: self.arches.iter().map(String::as_str).collect(),
            caps: self.caps.iter().map(String::as_str).collect(),
            min_kernel,
        })
    }
}

fn parse_enum<T: serde::de::DeserializeOwned>(what: &str, s: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| Error::invalid(format!("invalid seccomp profile: unknown {what} {s:?}")))
}

/// Parse a Docker-format seccomp profile for a container holding Docker's default capabilities.
pub fn load_seccomp_profile(json: &str) -> Result<LinuxSeccomp> {
    let caps: Vec<String> = crate::caps::default_capabilities()
        .iter()
        .map(|c| c.to_string())
        .collect();
    load_seccomp_profile_for_caps(json, &caps)
}

/// Parse a Docker-format seccomp profile (`defaultAction`, `archMap`/`architectures`,
/// `syscalls` with `names`/`action`/`args`/`includes`/`excludes`) for a container whose
/// capability set is `caps`.
pub fn load_seccomp_profile_for_caps(json: &str, caps: &[String]) -> Result<LinuxSeccomp> {
    let p: DockerProfile = serde_json::from_str(json)
        .map_err(|e| Error::invalid(format!("decoding seccomp profile failed: {e}")))?;
    if p.default_action.is_empty() {
        return Err(Error::invalid(
            "invalid seccomp profile: defaultAction is required",
        ));
    }
    if !p.architectures.is_empty() && !p.arch_map.is_empty() {
        return Err(Error::invalid("both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'"));
    }
    let default_action: LinuxSeccompAction = parse_enum("action", &p.default_action)?;

    let mut arch_names: Vec<&str> = p.architectures.iter().map(String::as_str).collect();
    let native = native_scmp_arch_name();
    for m in p.arch_map.iter().filter(|m| m.architecture == native) {
        arch_names.push(&m.architecture);
        arch_names.extend(m.sub_architectures.iter().map(String::as_str));
    }
    let arches = arch_names
        .iter()
        .map(|a| parse_enum::<Arch>("architecture", a))
        .collect::<Result<Vec<_>>>()?;

    let target = Target::new(caps);
    let mut syscalls = Vec::new();
    for call in &p.syscalls {
        if !call.name.is_empty() && !call.names.is_empty() {
            return Err(Error::invalid("use either 'name' or 'names'"));
        }
        if !target.applies(&call.includes.conditions()?, &call.excludes.conditions()?) {
            continue;
        }
        let names = if call.name.is_empty() {
            call.names.clone()
        } else {
            vec![call.name.clone()]
        };
        let action: LinuxSeccompAction = parse_enum("action", &call.action)?;
        let mut args = Vec::new();
        for a in call.args.iter().flatten() {
            let op: LinuxSeccompOperator = parse_enum("operator", &a.op)?;
            let arg = if op == LinuxSeccompOperator::ScmpCmpMaskedEq {
                // Docker: (arg & value) == valueTwo.
                masked_eq(a.index, a.value, a.value_two)
            } else {
                make_arg(
                    a.index,
                    a.value,
                    (a.value_two != 0).then_some(a.value_two),
                    op,
                )
            };
            args.push(arg);
        }
        syscalls.push(syscall(names, action, call.errno_ret, args));
    }

    let mut sc = base_seccomp(default_action, p.default_errno_ret, arches);
    sc.set_syscalls(Some(syscalls));
    if !p.flags.is_empty() {
        let flags = p
            .flags
            .iter()
            .map(|f| parse_enum::<LinuxSeccompFilterFlag>("flag", f))
            .collect::<Result<Vec<_>>>()?;
        sc.set_flags(Some(flags));
    }
    if !p.listener_path.is_empty() {
        sc.set_listener_path(Some(p.listener_path.into()));
    }
    if !p.listener_metadata.is_empty() {
        sc.set_listener_metadata(Some(p.listener_metadata));
    }
    Ok(sc)
}

#[cfg(test)]
mod tests;
