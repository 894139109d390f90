//! The busybox root filesystem tar the tests import as `busybox:latest`.
//! Built once per test process by `scripts/mkrootfs-busybox.sh` (the same script
//! setup.sh and the benchmark use) from Debian's busybox-static.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The repository root (tests/e2e/../..).
pub fn repo_root() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    p.canonicalize().unwrap_or(p)
}

/// Path of the busybox rootfs tar, built on first use in this process.
/// `$BERTH_BUSYBOX_TAR` overrides it with a prebuilt tar.
pub fn busybox_rootfs() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        if let Some(p) = std::env::var_os("BERTH_BUSYBOX_TAR") {
            return PathBuf::from(p);
        }
        let dir = PathBuf::from("/tmp/berth-e2e-cache");
        std::fs::create_dir_all(&dir).expect("create /tmp/berth-e2e-cache");
        let out = dir.join("busybox-rootfs.tar");
        let script = repo_root().join("scripts/mkrootfs-busybox.sh");
        // The script writes to a temporary name and renames, so concurrent test
        // processes never see a half-written tar.
        let o = Command::new("bash")
            .arg(&script)
            .arg(&out)
            .output()
            .expect("run mkrootfs-busybox.sh");
        assert!(
            o.status.success(),
            "{} failed:\n{}{}",
            script.display(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootfs_has_busybox_applets_users_and_dirs() {
        let tar = busybox_rootfs();
        let o = Command::new("tar").arg("-tvf").arg(tar).output().unwrap();
        assert!(o.status.success());
        let list = String::from_utf8_lossy(&o.stdout);
        let has = |pat: &str| list.lines().any(|l| l.contains(pat));
        assert!(has("./bin/busybox"), "{list}");
        for applet in [
            "./bin/sh -> busybox",
            "./bin/cat -> busybox",
            "./bin/hostname -> busybox",
            "./bin/ps -> busybox",
        ] {
            assert!(has(applet), "missing {applet}");
        }
        assert!(
            list.lines()
                .any(|l| l.starts_with("drwxrwxrwt") && l.ends_with("./tmp/")),
            "{list}"
        );
        assert!(
            list.lines()
                .any(|l| l.contains("1000/1000") && l.ends_with("./home/app/")),
            "{list}"
        );
        assert!(has("./root/"));

        let o = Command::new("tar")
            .arg("-xOf")
            .arg(tar)
            .arg("./etc/passwd")
            .output()
            .unwrap();
        let passwd = String::from_utf8_lossy(&o.stdout);
        assert!(passwd.contains("root:x:0:0:"), "{passwd}");
        assert!(passwd.contains("app:x:1000:1000:"), "{passwd}");
        assert!(passwd.contains("nobody:x:65534:65534:"), "{passwd}");
        let o = Command::new("tar")
            .arg("-xOf")
            .arg(tar)
            .arg("./etc/group")
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&o.stdout).contains("app:x:1000:"));

        // The busybox inside is static: it runs under chroot with nothing else present.
        let dir = crate::unique_tmp_dir("berth-e2e-rootfstest");
        let st = Command::new("tar")
            .arg("-xf")
            .arg(tar)
            .arg("-C")
            .arg(&dir)
            .status()
            .unwrap();
        assert!(st.success());
        let o = Command::new("chroot")
            .arg(&dir)
            .args(["/bin/sh", "-c", "echo $((6*7)); id -u app"])
            .output();
        if let Ok(o) = o {
            if o.status.success() {
                assert_eq!(String::from_utf8_lossy(&o.stdout), "42\n1000\n");
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
