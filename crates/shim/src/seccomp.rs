//! The seccomp filter, compiled once per profile instead of once per container.
//!
//! libcontainer builds the filter from the spec with libseccomp inside every new
//! container's init process; for Docker's default profile (three x86 ABIs, ~370
//! syscalls) that is most of 10 ms per container. The shim instead compiles the profile
//! to BPF the same way (the same libseccomp calls libcontainer makes), keeps the program
//! in `<exec-root>/seccomp/<sha256 of the profile>.bpf`, hands libcontainer the spec
//! without the profile, and loads the program in the init process itself
//! (`confine::Confined`, an `Executor` wrapper) before the start signal.
//!
//! Without `no_new_privs`, loading a filter needs `CAP_SYS_ADMIN`, which libcontainer
//! has already dropped by the time an executor runs. So the spec handed to libcontainer
//! carries `CAP_SYS_ADMIN` (and `CAP_SETPCAP`, to shrink the bounding set) on top of
//! the container's own capabilities; right after loading the filter the init process
//! drops both from its bounding, effective and permitted sets — the order runc uses
//! (filter while privileged, then capabilities), only later. If anything fails, the
//! container fails to start: it never runs unconfined.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use serde_json::Value;
use sha2::Digest;

/// Capabilities the init process needs to load the filter late.
pub(crate) const LOADER_CAPS: [&str; 2] = ["CAP_SYS_ADMIN", "CAP_SETPCAP"];
pub(crate) const CAP_SETS: [&str; 3] = ["bounding", "effective", "permitted"];

/// A compiled profile and what to undo after loading it.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub bpf_path: PathBuf,
    /// The program, read before the container is created (the path is not visible
    /// from inside it).
    pub prog: Vec<u8>,
    /// `seccomp(2)` filter flags from the profile.
    pub flags: u32,
    /// Capabilities added only to load the filter.
    pub drop: Vec<String>,
}

fn errno_of(v: &Value) -> i32 {
    v.as_u64().map(|e| e as i32).unwrap_or(libc::EPERM)
}

fn action(name: &str, errno: &Value) -> Result<ScmpAction> {
    let e = errno_of(errno);
    Ok(match name {
        "SCMP_ACT_ERRNO" => ScmpAction::Errno(e),
        "SCMP_ACT_TRACE" => ScmpAction::Trace(u16::try_from(e).context("trace value")?),
        other => ScmpAction::from_str(other, None).with_context(|| format!("seccomp action {other}"))?,
    })
}

fn op(name: &str, value_two: u64) -> Result<ScmpCompareOp> {
    Ok(match name {
        "SCMP_CMP_MASKED_EQ" => ScmpCompareOp::MaskedEqual(value_two),
        other => ScmpCompareOp::from_str(other).with_context(|| format!("seccomp operator {other}"))?,
    })
}

/// Filter flags berth can pass to `seccomp(2)` itself; `None` for anything else.
fn flags(profile: &Value) -> Option<u32> {
    let mut f = 0;
    for flag in profile["flags"].as_array().into_iter().flatten() {
        f |= match flag.as_str()? {
            "SECCOMP_FILTER_FLAG_LOG" => libc::SECCOMP_FILTER_FLAG_LOG,
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            "SECCOMP_FILTER_FLAG_TSYNC" => libc::SECCOMP_FILTER_FLAG_TSYNC,
            _ => return None,
        } as u32;
    }
    Some(f)
}

/// Compile a runtime-spec seccomp profile with libseccomp, rule for rule as
/// libcontainer's `initialize_seccomp` does, then lay it out again as searches over
/// ranges of syscall numbers where that is shown to decide alike (`bpf::compact`:
/// Docker's default profile 1237 -> 333 instructions, a third of the kernel's work at
/// each load).
fn compile(profile: &Value) -> Result<Vec<u8>> {
    let exact = compile_exact(profile)?;
    Ok(compacted(profile, &exact).unwrap_or(exact))
}

/// `exact` (libseccomp's program for `profile`) laid out again, if that is smaller and
/// shown to decide alike; None otherwise, or if any step fails.
fn compacted(profile: &Value, exact: &[u8]) -> Option<Vec<u8>> {
    // The rules that read arguments, alone: the program their syscalls jump to.
    let reads_args = |r: &Value| r["args"].as_array().is_some_and(|a| !a.is_empty());
    let rules = profile["syscalls"].as_array()?;
    let names: HashSet<&str> = rules
        .iter()
        .filter(|r| reads_args(r))
        .flat_map(|r| r["names"].as_array().into_iter().flatten().filter_map(Value::as_str))
        .collect();
    let args_part = if names.is_empty() {
        None
    } else {
        let kept: Vec<Value> = rules
            .iter()
            .filter_map(|r| {
                let mine: Vec<&str> =
                    r["names"].as_array()?.iter().filter_map(Value::as_str).filter(|n| names.contains(n)).collect();
                if mine.is_empty() {
                    return None;
                }
                let mut r = r.clone();
                r["names"] = serde_json::json!(mine);
                Some(r)
            })
            .collect();
        let mut with_args = profile.clone();
        with_args["syscalls"] = Value::Array(kept);
        Some(crate::bpf::parse(&compile_exact(&with_args).ok()?)?)
    };
    let p = crate::bpf::compact(&crate::bpf::parse(exact)?, args_part.as_deref())?;
    Some(crate::bpf::to_bytes(&p))
}

/// The program libseccomp makes for `profile`.
fn compile_exact(profile: &Value) -> Result<Vec<u8>> {
    let default = action(profile["defaultAction"].as_str().unwrap_or(""), &profile["defaultErrnoRet"])?;
    let mut ctx = ScmpFilterContext::new(default)?;
    for arch in profile["architectures"].as_array().into_iter().flatten() {
        let a = arch.as_str().unwrap_or("");
        ctx.add_arch(ScmpArch::from_str(a).with_context(|| format!("seccomp architecture {a}"))?)?;
    }
    ctx.set_ctl_nnp(false)?;
    // A binary tree of syscall numbers instead of libseccomp's default linear chain: the
    // same decisions, in O(log n) comparisons per syscall rather than O(n). It matters
    // twice: at every system call the container makes, and when the filter is loaded —
    // the kernel then runs the program for every syscall number of both architectures
    // to build its cache of always-allowed calls, with interrupts off.
    ctx.set_ctl_optimize(2)?;
    for rule in profile["syscalls"].as_array().into_iter().flatten() {
        let act = action(rule["action"].as_str().unwrap_or(""), &rule["errnoRet"])?;
        if act == default {
            continue;
        }
        let mut cmps = Vec::new();
        let mut seen = HashSet::new();
        let mut dup = false;
        for a in rule["args"].as_array().into_iter().flatten() {
            let index = a["index"].as_u64().context("seccomp arg index")? as u32;
            dup |= !seen.insert(index);
            let o = op(a["op"].as_str().unwrap_or(""), a["valueTwo"].as_u64().unwrap_or(0))?;
            cmps.push(ScmpArgCompare::new(index, o, a["value"].as_u64().unwrap_or(0)));
        }
        for name in rule["names"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            // A name this kernel/libseccomp does not know is skipped, as libcontainer does.
            let Ok(sc) = ScmpSyscall::from_name(name) else { continue };
            if cmps.is_empty() {
                ctx.add_rule(act, sc)?;
            } else if dup {
                for c in &cmps {
                    ctx.add_rule_conditional(act, sc, std::slice::from_ref(c))?;
                }
            } else {
                ctx.add_rule_conditional(act, sc, &cmps)?;
            }
        }
    }
    let mem = nix::sys::memfd::memfd_create(c"berth-seccomp", nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC)?;
    ctx.export_bpf(&mem)?;
    let mut f = fs::File::from(mem);
    std::io::Seek::rewind(&mut f)?;
    let mut prog = Vec::new();
    std::io::Read::read_to_end(&mut f, &mut prog)?;
    Ok(prog)
}

/// The compiled program for `profile`, from the cache or compiled now.
fn cached_program(profile: &Value, cache: &Path) -> Result<PathBuf> {
    // The digest covers how the profile is compiled too ("ranges": see `compile`), so
    // a program cached by an earlier version is not taken for this one.
    let mut input = b"ranges\n".to_vec();
    input.extend(serde_json::to_vec(profile)?);
    let key = hex(&sha2::Sha256::digest(&input));
    let path = cache.join(format!("{key}.bpf"));
    if path.exists() {
        return Ok(path);
    }
    fs::create_dir_all(cache)?;
    let tmp = cache.join(format!(".{key}.{}.tmp", std::process::id()));
    let mut f = fs::File::create(&tmp)?;
    f.write_all(&compile(profile)?)?;
    fs::rename(&tmp, &path)?;
    Ok(path)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Take the seccomp profile out of `spec` (a runtime-spec JSON document): compile it,
/// add the loader capabilities. `None` when the spec has no profile or one that
/// libcontainer must handle (user notification, unknown flags).
pub fn take_profile(spec: &mut Value, cache: &Path) -> Result<Option<Filter>> {
    let profile = spec["linux"]["seccomp"].clone();
    if profile.is_null() {
        return Ok(None);
    }
    let notify = profile["listenerPath"].as_str().is_some_and(|p| !p.is_empty())
        || profile["defaultAction"] == "SCMP_ACT_NOTIFY"
        || profile["syscalls"].as_array().into_iter().flatten().any(|r| r["action"] == "SCMP_ACT_NOTIFY");
    let Some(flags) = flags(&profile).filter(|_| !notify) else { return Ok(None) };
    let bpf_path = cached_program(&profile, cache)?;
    let prog = fs::read(&bpf_path).with_context(|| format!("read {}", bpf_path.display()))?;
    if let Some(linux) = spec["linux"].as_object_mut() {
        linux.remove("seccomp");
    }
    let drop = add_loader_caps(&mut spec["process"]);
    Ok(Some(Filter { bpf_path, prog, flags, drop }))
}

/// Add [`LOADER_CAPS`] to a process's bounding, effective and permitted sets; returns
/// the ones that were not there already.
pub fn add_loader_caps(process: &mut Value) -> Vec<String> {
    let caps = &mut process["capabilities"];
    let has = |set: &Value, c: &str| set.as_array().is_some_and(|a| a.iter().any(|x| x == c));
    let drop: Vec<String> = LOADER_CAPS
        .iter()
        .filter(|c| !CAP_SETS.iter().all(|s| has(&caps[*s], c)))
        .map(|c| c.to_string())
        .collect();
    for s in CAP_SETS {
        if !caps[s].is_array() {
            caps[s] = Value::Array(Vec::new());
        }
        for c in &drop {
            if !has(&caps[s], c) {
                caps[s].as_array_mut().expect("array").push(Value::String(c.clone()));
            }
        }
    }
    drop
}

/// Drop capabilities that were held only for set-up from the bounding, effective and
/// permitted sets (`CAP_SETPCAP` last: dropping from the bounding set needs it).
pub fn drop_caps(drop: &[String]) -> Result<()> {
    let mut order: Vec<&String> = drop.iter().filter(|c| *c != "CAP_SETPCAP").collect();
    order.extend(drop.iter().filter(|c| *c == "CAP_SETPCAP"));
    for name in order {
        let cap = caps::Capability::from_str(name).with_context(|| format!("capability {name}"))?;
        for set in [caps::CapSet::Bounding, caps::CapSet::Effective, caps::CapSet::Permitted] {
            caps::drop(None, set, cap).with_context(|| format!("drop {name} from {set:?}"))?;
        }
    }
    Ok(())
}

/// In the container's init process: load the program, then drop the loader
/// capabilities (`CAP_SETPCAP` last: dropping from the bounding set needs it).
pub fn apply(f: &Filter) -> Result<()> {
    let prog = &f.prog;
    if prog.is_empty() || !prog.len().is_multiple_of(std::mem::size_of::<libc::sock_filter>()) {
        bail!("bad seccomp program {}", f.bpf_path.display());
    }
    let fprog = libc::sock_fprog {
        len: (prog.len() / std::mem::size_of::<libc::sock_filter>()) as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `fprog` points at a program that lives until the call returns.
    let rc = unsafe {
        libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, f.flags as libc::c_ulong, &fprog as *const libc::sock_fprog)
    };
    if rc != 0 {
        bail!("load seccomp filter: {}", std::io::Error::last_os_error());
    }
    drop_caps(&f.drop)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docker_like() -> Value {
        serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": ["read", "write", "exit_group", "no_such_syscall_berth"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 2114060288u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}
            ]
        })
    }

    /// Docker's default profile (three ABIs on x86-64) compiles to a program less
    /// than a third of libseccomp's size that decides as libseccomp's does for every
    /// syscall number of each ABI, an unknown architecture, and the arguments its
    /// conditional rules test.
    #[test]
    fn dockers_default_profile_compacts_to_the_same_decisions() {
        let profile = serde_json::to_value(berth_oci::default_seccomp()).unwrap();
        let exact = crate::bpf::parse(&compile_exact(&profile).unwrap()).unwrap();
        let compact = crate::bpf::parse(&compile(&profile).unwrap()).unwrap();
        assert!(compact.len() * 3 < exact.len(), "{} instructions of {}", compact.len(), exact.len());
        let archs = [0xc000_003e, 0x4000_0003, 0xc000_00b7, 0, u32::MAX];
        let nrs = (0..1100u32).chain(0x4000_0000..0x4000_0400).chain([u32::MAX - 1, u32::MAX]);
        // personality's personas, clone's namespace flags, socket's AF_VSOCK, and others.
        let arg0s = [0u64, 1, 8, 0x20000, 0x20008, 0xffff_ffff, 0x1_0000_0000, 0x1000_0000, 0x7e02_0000, 40, u64::MAX];
        let decide = |p: &[crate::bpf::Insn], arch, nr, arg0| {
            crate::bpf::run(p, &crate::bpf::Input { nr, arch, args: [arg0, 0, 0, 0, 0, 0] }).unwrap().ret
        };
        let mut checked = 0;
        for arch in archs {
            for nr in nrs.clone() {
                for arg0 in arg0s {
                    assert_eq!(decide(&compact, arch, nr, arg0), decide(&exact, arch, nr, arg0), "arch {arch:#x} nr {nr:#x} arg0 {arg0:#x}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 100_000);
        // Spot checks: read allowed, mount refused with EPERM, an unknown arch killed.
        assert_eq!(decide(&compact, 0xc000_003e, 0, 0), 0x7fff_0000);
        assert_eq!(decide(&compact, 0xc000_003e, 165, 0), 0x0005_0001);
        assert_eq!(decide(&compact, 0xc000_00b7, 0, 0), 0);
    }

    /// Other shapes of profile users pass with `--security-opt seccomp=`: a deny list
    /// over an allowing default, one architecture, other actions, several rules on one
    /// syscall. Each compiled program decides as libseccomp's (compacted or not).
    #[test]
    fn other_profiles_keep_libseccomps_decisions() {
        let profiles = [
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{"names": ["mount", "umount2", "unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                             {"names": ["kexec_load"], "action": "SCMP_ACT_KILL_PROCESS"}]}),
            serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
                "syscalls": [{"names": ["read", "write", "close", "exit", "exit_group", "execve", "brk", "mmap"], "action": "SCMP_ACT_ALLOW"},
                             {"names": ["ptrace"], "action": "SCMP_ACT_LOG"},
                             {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
                             {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]},
                             {"names": ["ioctl"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 1, "value": 21505, "op": "SCMP_CMP_LE"}]}]}),
            docker_like(),
        ];
        let args = [0u64, 1, 2, 3, 21504, 21505, 21506, 0x1_0000_0001, u64::MAX];
        for profile in &profiles {
            let exact = crate::bpf::parse(&compile_exact(profile).unwrap()).unwrap();
            let ours = crate::bpf::parse(&compile(profile).unwrap()).unwrap();
            assert!(ours.len() <= exact.len());
            for arch in [0xc000_003e, 0x4000_0003, 0xc000_00b7] {
                for nr in (0..600u32).chain(0x4000_0000..0x4000_0220) {
                    for a in args {
                        let input = crate::bpf::Input { nr, arch, args: [a, a, 0, 0, 0, 0] };
                        let (x, y) = (crate::bpf::run(&exact, &input).unwrap(), crate::bpf::run(&ours, &input).unwrap());
                        assert_eq!(x.ret, y.ret, "{profile}: arch {arch:#x} nr {nr} args {a:#x}");
                    }
                }
            }
        }
    }

    #[test]
    fn compiles_once_and_caches_by_profile() {
        let dir = tempfile::tempdir().unwrap();
        let a = cached_program(&docker_like(), dir.path()).unwrap();
        let len = fs::metadata(&a).unwrap().len();
        assert!(len > 0 && len.is_multiple_of(8), "BPF program of {len} bytes");
        let b = cached_program(&docker_like(), dir.path()).unwrap();
        assert_eq!(a, b);
        let mut other = docker_like();
        other["defaultErrnoRet"] = serde_json::json!(38);
        assert_ne!(cached_program(&other, dir.path()).unwrap(), a);
    }

    #[test]
    fn profile_is_taken_out_and_loader_caps_added_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = serde_json::json!({
            "process": {"capabilities": {"bounding": ["CAP_CHOWN", "CAP_SETPCAP"], "effective": ["CAP_CHOWN", "CAP_SETPCAP"],
                                          "permitted": ["CAP_CHOWN", "CAP_SETPCAP"]}},
            "linux": {"seccomp": docker_like()}
        });
        let f = take_profile(&mut spec, dir.path()).unwrap().unwrap();
        assert!(spec["linux"].get("seccomp").is_none());
        assert_eq!(f.drop, ["CAP_SYS_ADMIN"]);
        for s in CAP_SETS {
            let set: Vec<&str> = spec["process"]["capabilities"][s].as_array().unwrap().iter().filter_map(Value::as_str).collect();
            assert_eq!(set, ["CAP_CHOWN", "CAP_SETPCAP", "CAP_SYS_ADMIN"], "{s}");
        }
        // No profile, or one that needs libcontainer (a notify listener): left alone.
        let mut none = serde_json::json!({"process": {}, "linux": {}});
        assert!(take_profile(&mut none, dir.path()).unwrap().is_none());
        let mut notify = serde_json::json!({"process": {}, "linux": {"seccomp": docker_like()}});
        notify["linux"]["seccomp"]["listenerPath"] = "/run/x.sock".into();
        assert!(take_profile(&mut notify, dir.path()).unwrap().is_none());
        assert!(notify["linux"]["seccomp"].is_object());
    }
}
