//! Resolve Docker's `--user` / `--group-add` against the container's /etc/passwd and
//! /etc/group, with runc's `GetExecUser` semantics as used by moby.

use std::path::{Component, Path, PathBuf};

use berth_errdefs::{Error, Result};

/// The process identity a container runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: the primary gid first (like moby), then groups listing the user,
    /// then `--group-add` groups; without duplicates.
    pub additional_gids: Vec<u32>,
    /// Home directory from passwd, "/" when the user has no entry.
    pub home: String,
}

const MAX_ID: i64 = i32::MAX as i64;

struct PasswdEntry {
    name: String,
    uid: i64,
    gid: i64,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: i64,
    members: Vec<String>,
}

/// Join `unsafe_path` under `root`, resolving symlinks as if `root` were "/", so a symlink in
/// the image can never point outside it.
pub(crate) fn secure_join(root: &Path, unsafe_path: &str) -> PathBuf {
    let mut resolved = PathBuf::new(); // relative to root
    let mut pending: Vec<String> = Vec::new();
    push_components(&mut pending, unsafe_path);
    let mut links = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let candidate = resolved.join(&part);
        let full = root.join(&candidate);
        match std::fs::symlink_metadata(&full) {
            Ok(m) if m.file_type().is_symlink() && links < 255 => {
                links += 1;
                if let Ok(target) = std::fs::read_link(&full) {
                    let target = target.to_string_lossy().into_owned();
                    if target.starts_with('/') {
                        resolved = PathBuf::new();
                    }
                    push_components(&mut pending, &target);
                }
            }
            _ => resolved = candidate,
        }
    }
    root.join(resolved)
}

/// Push path components in reverse so `pop` yields them in order.
fn push_components(stack: &mut Vec<String>, path: &str) {
    let parts: Vec<String> = Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_string()),
            _ => None,
        })
        .collect();
    stack.extend(parts.into_iter().rev());
}

/// Read a file of the container; a missing file is `None`.
fn read_container_file(rootfs: &Path, path: &str) -> Result<Option<String>> {
    match std::fs::read(secure_join(rootfs, path)) {
        Ok(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::internal(format!("reading {path} in container: {e}"))),
    }
}

fn records(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect())
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    records(text)
        .map(|f| PasswdEntry {
            name: f.first().unwrap_or(&"").to_string(),
            uid: f.get(2).and_then(|s| s.parse().ok()).unwrap_or(0),
            gid: f.get(3).and_then(|s| s.parse().ok()).unwrap_or(0),
            home: f.get(5).unwrap_or(&"").to_string(),
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    records(text)
        .map(|f| GroupEntry {
            name: f.first().unwrap_or(&"").to_string(),
            gid: f.get(2).and_then(|s| s.parse().ok()).unwrap_or(0),
            members: f
                .get(3)
                .map(|m| {
                    m.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

fn check_range(id: i64) -> Result<u32> {
    if (0..=MAX_ID).contains(&id) {
        Ok(id as u32)
    } else {
        Err(Error::invalid(format!(
            "uids and gids must be in range 0-{MAX_ID}"
        )))
    }
}

/// Resolve Docker `-u` syntax ("", "name", "uid", "uid:gid", "name:group", "uid:group") and
/// `--group-add` entries against `rootfs/etc/passwd` and `rootfs/etc/group`.
pub fn resolve_user(rootfs: &Path, user: &str, group_add: &[String]) -> Result<ResolvedUser> {
    let passwd = read_container_file(rootfs, "/etc/passwd")?.map(|t| parse_passwd(&t));
    let groups = read_container_file(rootfs, "/etc/group")?.map(|t| parse_group(&t));

    let (user_arg, group_arg) = match user.split_once(':') {
        Some((u, g)) => (u, g),
        None => (user, ""),
    };
    let uid_num: Option<i64> = user_arg.parse().ok();
    let gid_num: Option<i64> = group_arg.parse().ok();

    let mut uid: i64 = 0;
    let mut gid: i64 = 0;
    let mut home = String::new();
    let mut sgids: Vec<i64> = Vec::new();

    // Find the user: "" means the default (uid 0), numbers are always uids.
    let matched = passwd.as_ref().and_then(|entries| {
        entries
            .iter()
            .find(|e| match (user_arg.is_empty(), uid_num) {
                (true, _) => e.uid == 0,
                (false, Some(n)) => e.uid == n,
                (false, None) => e.name == user_arg,
            })
    });
    let mut matched_name = None;
    if let Some(e) = matched {
        matched_name = Some(e.name.clone());
        uid = e.uid;
        gid = e.gid;
        home = e.home.clone();
    } else if !user_arg.is_empty() {
        match uid_num {
            Some(n) => uid = n,
            None => {
                return Err(Error::invalid(format!(
                    "unable to find user {user_arg}: no matching entries in passwd file"
                )))
            }
        }
        check_range(uid)?;
    }

    if !group_arg.is_empty() || matched_name.is_some() {
        let found: Vec<&GroupEntry> = groups
            .iter()
            .flatten()
            .filter(|g| {
                if group_arg.is_empty() {
                    matched_name
                        .as_ref()
                        .is_some_and(|n| g.members.iter().any(|m| m == n))
                } else if let Some(n) = gid_num {
                    g.gid == n
                } else {
                    g.name == group_arg
                }
            })
            .collect();
        if !group_arg.is_empty() {
            if let Some(g) = found.first() {
                gid = g.gid;
            } else {
                match gid_num {
                    Some(n) => gid = n,
                    None => {
                        return Err(Error::invalid(format!(
                            "unable to find group {group_arg}: no matching entries in group file"
                        )))
                    }
                }
                check_range(gid)?;
            }
        } else {
            sgids = found.iter().map(|g| g.gid).collect();
        }
    }

    // --group-add: names or gids, first matching group wins.
    for ag in group_add {
        let hit = groups
            .iter()
            .flatten()
            .find(|g| g.name == *ag || g.gid.to_string() == *ag);
        match (hit, ag.parse::<i64>()) {
            (Some(g), _) => sgids.push(g.gid),
            (None, Ok(n)) => sgids.push(check_range(n)? as i64),
            (None, Err(_)) => {
                return Err(Error::invalid(format!(
                    "Unable to find group {ag}: no matching entries in group file"
                )))
            }
        }
    }

    let uid = check_range(uid)?;
    let gid = check_range(gid)?;
    let mut additional_gids = vec![gid];
    for g in sgids {
        let g = check_range(g)?;
        if !additional_gids.contains(&g) {
            additional_gids.push(g);
        }
    }
    if home.is_empty() {
        home = "/".to_string();
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\n\
             daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
             # comment\n\
             www-data:x:33:33:www-data:/var/www:/bin/false\n\
             app:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\nwheel:x:10:root\ndaemon:x:1:\nwww-data:x:33:\nstaff:x:50:app,www-data\napp:x:1000:\ndocker:x:999:app\n",
        )
        .unwrap();
        d
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn default_user_is_root_with_groups() {
        let d = rootfs();
        let u = resolve_user(d.path(), "", &[]).unwrap();
        assert_eq!(
            u,
            ResolvedUser {
                uid: 0,
                gid: 0,
                additional_gids: vec![0, 10],
                home: "/root".into()
            }
        );
    }

    #[test]
    fn by_name() {
        let d = rootfs();
        let u = resolve_user(d.path(), "app", &[]).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1000, 1000, "/home/app"));
        assert_eq!(u.additional_gids, vec![1000, 50, 999]);
    }

    #[test]
    fn by_uid_and_uid_gid() {
        let d = rootfs();
        let u = resolve_user(d.path(), "33", &[]).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (33, 33, "/var/www"));
        assert_eq!(u.additional_gids, vec![33, 50]);
        // explicit group: no supplementary groups from membership
        let u = resolve_user(d.path(), "33:1", &[]).unwrap();
        assert_eq!((u.uid, u.gid), (33, 1));
        assert_eq!(u.additional_gids, vec![1]);
        // unknown numeric uid and gid
        let u = resolve_user(d.path(), "4242:4343", &[]).unwrap();
        assert_eq!(
            u,
            ResolvedUser {
                uid: 4242,
                gid: 4343,
                additional_gids: vec![4343],
                home: "/".into()
            }
        );
    }

    #[test]
    fn name_and_group_names() {
        let d = rootfs();
        let u = resolve_user(d.path(), "app:staff", &[]).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 50));
        let u = resolve_user(d.path(), "1000:wheel", &[]).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 10));
        let e = resolve_user(d.path(), "app:nogroup", &[]).unwrap_err();
        assert_eq!(
            e.message(),
            "unable to find group nogroup: no matching entries in group file"
        );
    }

    #[test]
    fn missing_user_is_invalid() {
        let d = rootfs();
        let e = resolve_user(d.path(), "nobody", &[]).unwrap_err();
        assert_eq!(e.kind(), berth_errdefs::Kind::InvalidArgument);
        assert_eq!(
            e.message(),
            "unable to find user nobody: no matching entries in passwd file"
        );
    }

    #[test]
    fn no_passwd_file() {
        let d = tempfile::tempdir().unwrap();
        let u = resolve_user(d.path(), "", &[]).unwrap();
        assert_eq!(
            u,
            ResolvedUser {
                uid: 0,
                gid: 0,
                additional_gids: vec![0],
                home: "/".into()
            }
        );
        let u = resolve_user(d.path(), "1234", &s(&["5"])).unwrap();
        assert_eq!(
            u,
            ResolvedUser {
                uid: 1234,
                gid: 0,
                additional_gids: vec![0, 5],
                home: "/".into()
            }
        );
        let u = resolve_user(d.path(), "1234:77", &[]).unwrap();
        assert_eq!((u.uid, u.gid), (1234, 77));
        assert!(resolve_user(d.path(), "app", &[]).is_err());
        assert!(resolve_user(d.path(), "1:grp", &[]).is_err());
    }

    #[test]
    fn group_add() {
        let d = rootfs();
        let u = resolve_user(d.path(), "daemon", &s(&["docker", "33", "777", "docker"])).unwrap();
        assert_eq!(u.additional_gids, vec![1, 999, 33, 777]);
        let e = resolve_user(d.path(), "daemon", &s(&["nosuch"])).unwrap_err();
        assert_eq!(
            e.message(),
            "Unable to find group nosuch: no matching entries in group file"
        );
    }

    #[test]
    fn symlinked_passwd_stays_inside_rootfs() {
        let d = rootfs();
        std::fs::create_dir_all(d.path().join("real")).unwrap();
        std::fs::rename(d.path().join("etc/passwd"), d.path().join("real/passwd")).unwrap();
        // absolute link resolves inside the rootfs, not on the host
        std::os::unix::fs::symlink("/real/passwd", d.path().join("etc/passwd")).unwrap();
        let u = resolve_user(d.path(), "app", &[]).unwrap();
        assert_eq!(u.uid, 1000);
        assert_eq!(
            secure_join(d.path(), "/../../etc/passwd"),
            d.path().join("real/passwd")
        );
    }
}
