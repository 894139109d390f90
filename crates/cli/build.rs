//! Link `berth` as a position-dependent executable on Linux.
//!
//! Every `berth` call is a fresh process, and a PIE of this size carries ~28 000
//! relative relocations that the dynamic loader applies at each start, copying on
//! write every page they touch: ~0.3 ms of a 1.7 ms `berth --version` on the bench
//! machine (BENCHMARKS.md, "Where a run spends its time"). A CLI that runs as its user
//! and exits gains little from a randomized load address (the docker CLI ships as a
//! static, non-PIE binary); berthd and the shim, long-lived and root, stay PIE.
//!
//! `scripts/build.sh` goes further and links the CLI statically (`crt-static` with
//! `relocation-model=static`: no loader at all). rustc then links a non-PIE itself;
//! `-no-pie` is only added to a dynamic build, since with `crt-static` alone rustc
//! makes a static PIE, which `-no-pie` would break.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let crt_static = std::env::var("CARGO_CFG_TARGET_FEATURE").is_ok_and(|f| f.split(',').any(|x| x == "crt-static"));
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") && !crt_static {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
