//! Lazily unmount everything a daemon left mounted under its directory.

use std::path::{Path, PathBuf};

/// Mount points from a mountinfo text (field 5), with `\NNN` octal escapes decoded.
fn mount_points(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .collect()
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points at or under `dir`, deepest (longest) first, from /proc/self/mountinfo.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v: Vec<PathBuf> = mount_points(&info)
        .into_iter()
        .filter(|p| p.starts_with(dir))
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    v
}

/// `umount2(MNT_DETACH)` every mount under `dir`, deepest first, repeating while
/// that makes progress (stacked mounts show up again after the top one goes).
/// Returns how many unmounts succeeded.
pub fn unmount_under(dir: &Path) -> usize {
    let mut done = 0;
    for _ in 0..10 {
        let mounts = mounts_under(dir);
        if mounts.is_empty() {
            break;
        }
        let mut progress = false;
        for m in mounts {
            if nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH).is_ok() {
                done += 1;
                progress = true;
            }
        }
        if !progress {
            break;
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_with_escapes() {
        let info = "36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw\n\
                    37 35 0:5 / /tmp/x/data/rootfs rw - overlay overlay rw,lowerdir=/a\n";
        assert_eq!(
            mount_points(info),
            vec![
                PathBuf::from("/mnt/with space"),
                PathBuf::from("/tmp/x/data/rootfs")
            ]
        );
    }

    #[test]
    fn unmounts_nested_mounts_under_a_dir() {
        let dir = crate::unique_tmp_dir("berth-e2e-mounttest");
        let a = dir.join("a");
        let b = a.join("b");
        std::fs::create_dir_all(&a).unwrap();
        use nix::mount::{mount, MsFlags};
        if mount(
            Some("tmpfs"),
            &a,
            Some("tmpfs"),
            MsFlags::empty(),
            None::<&str>,
        )
        .is_err()
        {
            eprintln!("skipping: cannot mount tmpfs (not root?)");
            let _ = std::fs::remove_dir_all(&dir);
            return;
        }
        std::fs::create_dir_all(&b).unwrap();
        mount(
            Some("tmpfs"),
            &b,
            Some("tmpfs"),
            MsFlags::empty(),
            None::<&str>,
        )
        .unwrap();
        mount(
            Some("tmpfs"),
            &b,
            Some("tmpfs"),
            MsFlags::empty(),
            None::<&str>,
        )
        .unwrap();
        assert_eq!(mounts_under(&dir).len(), 3);
        assert_eq!(unmount_under(&dir), 3);
        assert!(mounts_under(&dir).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
