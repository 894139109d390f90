//! A container's filesystem seen through one directory descriptor: every path is
//! resolved inside it (pathrs: openat2 `RESOLVE_IN_ROOT`, or its emulation), and
//! every file is then reached with `*at` calls relative to descriptors we hold,
//! never by a path string the container could redirect with a symlink. This is
//! what keeps `docker cp` from reading or writing the host (CVE-2018-15664).

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use pathrs::{Handle, Root, RootRef};

use crate::gopath;
use crate::stat::PathStat;
use crate::sys;
use crate::{Error, Result};

/// Symlinks followed while evaluating one path (as Go's `FollowSymlinkInScope`).
const MAX_LINKS: usize = 255;

pub struct ContainerFs {
    root: Root,
}

/// What an archive of a path holds: the resolved entry and the name its archive
/// entries start with.
pub struct Source {
    pub stat: PathStat,
    /// The directory holding the entry.
    parent: Handle,
    /// The entry in `parent`; `None` when the source is `parent` itself (the path
    /// ended in `/` or `/.`).
    entry: Option<Vec<u8>>,
    /// The first element of every archive entry's name (`""` for the root, whose
    /// entries are `/bin`, `/etc`...).
    name: Vec<u8>,
    /// A remapped container's files hold host ids: the archive gets the container's.
    ids: Option<berth_userns::IdMap>,
}

/// A directory to extract into.
pub struct Dest<'a> {
    fs: &'a ContainerFs,
    /// The directory's path in the container, symlinks evaluated.
    pub path: String,
    handle: Handle,
}

#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    /// Refuse to replace a directory by a non-directory and the reverse.
    pub no_overwrite_dir_non_dir: bool,
    /// Give everything this owner instead of the archive's (`copyUIDGID`).
    pub chown: Option<(u32, u32)>,
    /// A remapped container: the archive's owners are container ids, written as the
    /// host ids they map to (ids the map lacks are refused).
    pub ids: Option<berth_userns::IdMap>,
    /// Leave owners alone (the client extracting on its own host as a user).
    pub no_lchown: bool,
    /// Rename entries: the first occurrence of `.0` in each name becomes `.1`.
    pub rebase: Option<(String, String)>,
}

fn pathrs_err(context: &str, e: pathrs::error::Error) -> Error {
    if let pathrs::error::ErrorKind::OsError(Some(errno)) = e.kind() {
        if errno == libc::ENOENT {
            return Error::NotFound(context.to_owned());
        }
        return Error::Io { context: context.to_owned(), source: io::Error::from_raw_os_error(errno) };
    }
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    Error::Io { context: context.to_owned(), source: io::Error::other(msg) }
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let context = context.into();
    move |e| {
        if e.raw_os_error() == Some(libc::ENOENT) {
            Error::NotFound(context)
        } else {
            Error::Io { context, source: e }
        }
    }
}

fn is_type(st: &libc::stat, t: libc::mode_t) -> bool {
    st.st_mode & libc::S_IFMT == t
}

impl ContainerFs {
    /// The filesystem rooted at `root` (a container's rootfs mount, or
    /// `/proc/<pid>/root` of its running init).
    pub fn open(root: &Path) -> Result<ContainerFs> {
        use std::os::unix::fs::OpenOptionsExt;
        // Followed on purpose: `/proc/<pid>/root` is a magic link to the root we want.
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(root)
            .map_err(io_err(root.display().to_string()))?;
        // pathrs resolves with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS: no /proc magic
        // link inside the container leads out of it either.
        Ok(ContainerFs { root: Root::from_fd(OwnedFd::from(dir)) })
    }

    fn resolve(&self, path: &str) -> Result<Handle> {
        self.root.resolve(path).map_err(|e| pathrs_err(path, e))
    }

    fn resolve_nofollow(&self, path: &str) -> Result<Handle> {
        self.root.resolve_nofollow(path).map_err(|e| pathrs_err(path, e))
    }

    /// Evaluate every symlink of `path` inside the root, as text (a missing tail is
    /// kept as given), like moby's `FollowSymlinkInScope`.
    pub fn eval_symlinks(&self, path: &str) -> Result<String> {
        let mut done: Vec<String> = Vec::new();
        let mut todo: std::collections::VecDeque<String> =
            path.split('/').filter(|c| !c.is_empty()).map(str::to_owned).collect();
        let mut links = 0;
        while let Some(c) = todo.pop_front() {
            if c == "." {
                continue;
            }
            if c == ".." {
                done.pop();
                continue;
            }
            let cur = format!("/{}", done.iter().chain(std::iter::once(&c)).cloned().collect::<Vec<_>>().join("/"));
            match self.root.readlink(&cur) {
                Ok(target) => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(Error::Io {
                            context: path.to_owned(),
                            source: io::Error::from_raw_os_error(libc::ELOOP),
                        });
                    }
                    let t = target.to_string_lossy().into_owned();
                    if t.starts_with('/') {
                        done.clear();
                    }
                    for (i, part) in t.split('/').filter(|p| !p.is_empty()).enumerate() {
                        todo.insert(i, part.to_owned());
                    }
                }
                // Not a symlink, or not there (the rest is kept as text).
                Err(_) => done.push(c),
            }
        }
        Ok(format!("/{}", done.join("/")))
    }

    /// Split a requested path as the archive API does: the absolute path (trailing
    /// `/` or `/.` kept), its directory resolved inside the root with symlinks
    /// followed, and the last element, which is not followed.
    fn split_resolve(&self, path: &str) -> Result<(String, Handle, String)> {
        let abs = gopath::preserve_trailing(&gopath::clean(&format!("/{path}")), path);
        let (dir, base) = gopath::split(&abs);
        let parent = self.resolve(dir)?;
        let st = sys::fstat(parent.as_fd()).map_err(io_err(dir))?;
        if !is_type(&st, libc::S_IFDIR) {
            return Err(Error::Io { context: dir.to_owned(), source: io::Error::from_raw_os_error(libc::ENOTDIR) });
        }
        let base = base.to_owned();
        Ok((abs, parent, base))
    }

    /// `HEAD /containers/{id}/archive`: the stat of a path, the last element not
    /// followed; for a symlink, `linkTarget` is where it leads inside the root.
    pub fn stat(&self, path: &str) -> Result<PathStat> {
        Ok(self.source(path)?.stat)
    }

    /// What `GET /containers/{id}/archive` sends for `path`: its stat and the
    /// resolved entry to archive.
    pub fn source(&self, path: &str) -> Result<Source> {
        let (abs, parent, base) = self.split_resolve(path)?;
        let (st, entry) = if base.is_empty() || base == "." {
            (sys::fstat(parent.as_fd()).map_err(io_err(&abs))?, None)
        } else {
            (sys::fstatat(parent.as_fd(), base.as_bytes()).map_err(io_err(&abs))?, Some(base.clone().into_bytes()))
        };
        let link_target = if is_type(&st, libc::S_IFLNK) { self.eval_symlinks(&abs)? } else { String::new() };
        let name = gopath::base(&abs).to_owned();
        let stat = PathStat::from_stat(name.clone(), &st, link_target);
        let name = if name == "/" { Vec::new() } else { name.into_bytes() };
        Ok(Source { stat, parent, entry, name, ids: None })
    }

    /// The directory `path` names (every symlink followed, the last one too), for
    /// `PUT /containers/{id}/archive`.
    pub fn dest(&self, path: &str) -> Result<Dest<'_>> {
        let abs = gopath::preserve_trailing(&gopath::clean(&format!("/{path}")), path);
        let handle = self.resolve(&abs)?;
        let st = sys::fstat(handle.as_fd()).map_err(io_err(&abs))?;
        if !is_type(&st, libc::S_IFDIR) {
            return Err(Error::NotDirectory);
        }
        let path = self.eval_symlinks(&abs)?;
        Ok(Dest { fs: self, path, handle })
    }

    /// Where a mount goes: the directory (or, for a file, the file) at `path`
    /// inside the root, made if missing, symlinks followed inside the root. The
    /// handle is an O_PATH descriptor to mount onto through `/proc/self/fd`.
    pub fn mountpoint(&self, path: &str, dir: bool) -> Result<OwnedFd> {
        let perm = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        // A dangling symlink on the way is followed to where it points (inside the
        // root) and that is made, as runc does; pathrs alone refuses to.
        let path = &self.eval_symlinks(path)?;
        if dir {
            return Ok(self.root.mkdir_all(path, &perm).map_err(|e| pathrs_err(path, e))?.into());
        }
        let parent = gopath::dir(path);
        self.root.mkdir_all(&parent, &perm).map_err(|e| pathrs_err(&parent, e))?;
        if self.resolve(path).is_err() {
            let flags = pathrs::flags::OpenFlags::O_WRONLY;
            let _ = self.root.create_file(path, flags, &std::os::unix::fs::PermissionsExt::from_mode(0o644));
        }
        Ok(self.resolve(path)?.into())
    }

    /// [`ContainerFs::mountpoint`] for a directory, every directory it makes owned by
    /// `owner` (a remapped container's root).
    pub fn mkdir_all_owned(&self, path: &str, owner: Option<(u32, u32)>) -> Result<OwnedFd> {
        let Some((u, g)) = owner else { return self.mountpoint(path, true) };
        let path = self.eval_symlinks(path)?;
        let mut cur = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            cur.push('/');
            cur.push_str(part);
            if self.resolve(&cur).is_err() {
                let fd = self.mountpoint(&cur, true)?;
                sys::chown_fd(fd.as_fd(), u, g).map_err(io_err(cur.clone()))?;
            }
        }
        Ok(self.resolve(&path)?.into())
    }

    /// An O_PATH descriptor of `path` (symlinks followed inside the root).
    pub fn open_path(&self, path: &str) -> Result<OwnedFd> {
        Ok(self.resolve(path)?.into())
    }

    fn root_fd(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }
}

impl Source {
    /// Archive a remapped container's files with the container's ids.
    pub fn with_ids(mut self, ids: Option<berth_userns::IdMap>) -> Source {
        self.ids = ids;
        self
    }

    /// Rename the top entry (the client side's rebase).
    pub fn rename(&mut self, name: &str) {
        self.name = name.as_bytes().to_vec();
    }

    /// Write the archive: the entry and, for a directory, everything under it,
    /// depth first in name order, hard links kept, sockets skipped.
    pub fn write_tar<W: Write>(self, w: W) -> Result<W> {
        let mut t = TarOut { b: tar::Builder::new(w), links: std::collections::HashMap::new(), ids: self.ids.clone() };
        match &self.entry {
            Some(e) => t.add(self.parent.as_fd(), e, self.name.clone())?,
            None => {
                let fd = sys::openat(self.parent.as_fd(), b".", libc::O_RDONLY | libc::O_DIRECTORY, 0)
                    .map_err(io_err("archive"))?;
                t.dir(fd, self.name.clone())?;
            }
        }
        t.b.into_inner().map_err(io_err("archive"))
    }
}

struct TarOut<W: Write> {
    b: tar::Builder<W>,
    /// Regular files with more than one link, by (dev, ino): their first name.
    links: std::collections::HashMap<(u64, u64), Vec<u8>>,
    ids: Option<berth_userns::IdMap>,
}

fn header(st: &libc::stat, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(st.st_uid as u64);
    h.set_gid(st.st_gid as u64);
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

/// A GNU long-name (`L`) or long-link (`K`) entry for a name over 100 bytes.
fn long_entry<W: Write>(b: &mut tar::Builder<W>, kind: u8, name: &[u8]) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().expect("gnu").name[..13].copy_from_slice(b"././@LongLink");
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::new(kind));
    let mut data = name.to_vec();
    data.push(0);
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.append(&h, &data[..])
}

fn set_name<W: Write>(b: &mut tar::Builder<W>, h: &mut tar::Header, name: &[u8], link: Option<&[u8]>) -> io::Result<()> {
    if name.len() > 100 {
        long_entry(b, b'L', name)?;
    }
    let old = h.as_old_mut();
    old.name = [0; 100];
    let n = name.len().min(100);
    old.name[..n].copy_from_slice(&name[..n]);
    if let Some(l) = link {
        if l.len() > 100 {
            long_entry(b, b'K', l)?;
        }
        let old = h.as_old_mut();
        old.linkname = [0; 100];
        let n = l.len().min(100);
        old.linkname[..n].copy_from_slice(&l[..n]);
    }
    h.set_cksum();
    Ok(())
}

/// Reads exactly `n` bytes: what the file has, then zeros if it shrank meanwhile
/// (the tar header already promised `n`).
struct Exactly<R> {
    r: R,
    left: u64,
}

impl<R: Read> Read for Exactly<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left as usize);
        let n = match self.r.read(&mut buf[..want])? {
            0 => {
                buf[..want].fill(0);
                want
            }
            n => n,
        };
        self.left -= n as u64;
        Ok(n)
    }
}

impl<W: Write> TarOut<W> {
    fn append(&mut self, mut h: tar::Header, name: &[u8], link: Option<&[u8]>, data: impl Read) -> Result<()> {
        if let Some(m) = &self.ids {
            let (u, g) = m.to_container(h.uid().unwrap_or(0) as u32, h.gid().unwrap_or(0) as u32);
            h.set_uid(u.into());
            h.set_gid(g.into());
        }
        set_name(&mut self.b, &mut h, name, link).map_err(io_err("archive"))?;
        self.b.append(&h, data).map_err(io_err("archive"))
    }

    /// Archive `entry` of `dir` under `name`, and its tree if it is a directory.
    fn add(&mut self, dir: BorrowedFd<'_>, entry: &[u8], name: Vec<u8>) -> Result<()> {
        let st = match sys::fstatat(dir, entry) {
            Ok(st) => st,
            // Gone since it was listed: archive what is there.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
            Err(e) => return Err(io_err("archive")(e)),
        };
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                let fd = match sys::openat(dir, entry, libc::O_RDONLY | libc::O_DIRECTORY, 0) {
                    Ok(fd) => fd,
                    Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ELOOP | libc::ENOTDIR)) => {
                        return Ok(())
                    }
                    Err(e) => return Err(io_err("archive")(e)),
                };
                self.dir(fd, name)
            }
            libc::S_IFREG => {
                if st.st_nlink > 1 {
                    if let Some(first) = self.links.get(&(st.st_dev, st.st_ino)).cloned() {
                        let h = header(&st, tar::EntryType::Link);
                        return self.append(h, &name, Some(&first), io::empty());
                    }
                }
                let fd = match sys::openat(dir, entry, libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY, 0) {
                    Ok(fd) => fd,
                    Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ELOOP)) => return Ok(()),
                    Err(e) => return Err(io_err("archive")(e)),
                };
                let st = sys::fstat(fd.as_fd()).map_err(io_err("archive"))?;
                if !is_type(&st, libc::S_IFREG) {
                    return Ok(());
                }
                if st.st_nlink > 1 {
                    self.links.insert((st.st_dev, st.st_ino), name.clone());
                }
                if let Some(cap) = sys::get_xattr_fd(fd.as_fd(), c"security.capability") {
                    self.b
                        .append_pax_extensions([("SCHILY.xattr.security.capability", &cap[..])])
                        .map_err(io_err("archive"))?;
                }
                let mut h = header(&st, tar::EntryType::Regular);
                h.set_size(st.st_size as u64);
                let data = Exactly { r: std::fs::File::from(fd), left: st.st_size as u64 };
                self.append(h, &name, None, data)
            }
            libc::S_IFLNK => {
                let target = match sys::readlinkat(dir, entry) {
                    Ok(t) => t,
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
                    Err(e) => return Err(io_err("archive")(e)),
                };
                let h = header(&st, tar::EntryType::Symlink);
                self.append(h, &name, Some(&target), io::empty())
            }
            libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO => {
                let kind = match st.st_mode & libc::S_IFMT {
                    libc::S_IFCHR => tar::EntryType::Char,
                    libc::S_IFBLK => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                };
                let mut h = header(&st, kind);
                if kind != tar::EntryType::Fifo {
                    h.set_device_major(libc::major(st.st_rdev)).map_err(io_err("archive"))?;
                    h.set_device_minor(libc::minor(st.st_rdev)).map_err(io_err("archive"))?;
                }
                self.append(h, &name, None, io::empty())
            }
            // Sockets cannot be archived (dockerd skips them too).
            _ => Ok(()),
        }
    }

    /// A directory (already opened) and everything under it.
    fn dir(&mut self, fd: OwnedFd, name: Vec<u8>) -> Result<()> {
        // An explicit stack: trees may be deeper than a thread's stack allows.
        struct Level {
            fd: OwnedFd,
            prefix: Vec<u8>,
            names: std::vec::IntoIter<Vec<u8>>,
        }
        let mut stack: Vec<Level> = Vec::new();
        let open = |this: &mut Self, fd: OwnedFd, name: Vec<u8>, stack: &mut Vec<Level>| -> Result<()> {
            let st = sys::fstat(fd.as_fd()).map_err(io_err("archive"))?;
            let mut dname = name.clone();
            dname.push(b'/');
            this.append(header(&st, tar::EntryType::Directory), &dname, None, io::empty())?;
            let names = sys::read_dir_names(fd.as_fd()).map_err(io_err("archive"))?;
            stack.push(Level { fd, prefix: dname, names: names.into_iter() });
            Ok(())
        };
        open(self, fd, name, &mut stack)?;
        while let Some(top) = stack.last_mut() {
            let Some(n) = top.names.next() else {
                stack.pop();
                continue;
            };
            let mut child = top.prefix.clone();
            child.extend_from_slice(&n);
            let dirfd = top.fd.as_fd();
            let st = match sys::fstatat(dirfd, &n) {
                Ok(st) => st,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(e) => return Err(io_err("archive")(e)),
            };
            if is_type(&st, libc::S_IFDIR) {
                match sys::openat(dirfd, &n, libc::O_RDONLY | libc::O_DIRECTORY, 0) {
                    Ok(fd) => open(self, fd, child, &mut stack)?,
                    Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ELOOP | libc::ENOTDIR)) => {}
                    Err(e) => return Err(io_err("archive")(e)),
                }
            } else {
                self.add(dirfd, &n, child)?;
            }
        }
        Ok(())
    }
}

/// Copy `r` to `w` in writes of up to 1 MiB: an archive entry's reader hands out what
/// the HTTP body's chunks hold (a few KiB), and a write per chunk into an overlayfs
/// file costs far more than the copy (200 000 writes for a 1 GiB `cp`).
fn copy_in_blocks(r: &mut impl Read, w: &mut impl io::Write) -> io::Result<u64> {
    const BLOCK: usize = 1 << 20;
    let mut buf = vec![0u8; BLOCK.min(64 * 1024)];
    let mut total = 0u64;
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            match r.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if filled == 0 {
            return Ok(total);
        }
        w.write_all(&buf[..filled])?;
        total += filled as u64;
        if filled == buf.len() && buf.len() < BLOCK {
            buf.resize(BLOCK, 0); // a large file: bigger blocks from now on
        }
    }
}

impl Dest<'_> {
    /// Is the directory on the root filesystem's mount (not a volume, bind or tmpfs),
    /// and is its mount read-only?
    pub fn mount(&self) -> Result<(bool, bool)> {
        let here = sys::mount_id(self.handle.as_fd()).map_err(io_err(&self.path))?;
        let root = sys::mount_id(self.fs.root_fd()).map_err(io_err("/"))?;
        let ro = sys::read_only(self.handle.as_fd()).map_err(io_err(&self.path))?;
        Ok((here == root, ro))
    }

    /// Extract a tar stream (plain, gzip or zstd) into the directory, with
    /// dockerd's `Unpack` rules: parents made as needed (root-owned, 0755), an
    /// existing entry replaced unless both are directories, nothing outside the
    /// directory, directory times set last.
    ///
    /// Small regular files are created here and handed, with their data, to a second
    /// thread that writes them and sets their owner, mode and times while the next
    /// entries are read and created (within [`WRITE_BEHIND`] bytes in flight): a copy
    /// of many files costs mostly the kernel's work per file, which then runs on two
    /// cores. Directory times are set once every file is written.
    pub fn extract(&self, r: impl Read, opts: &ExtractOptions) -> Result<()> {
        let r = crate::decompress(r).map_err(io_err("archive"))?;
        let mut ar = tar::Archive::new(r);
        let entries = ar.entries().map_err(|e| Error::Invalid(format!("invalid tar stream: {e}")))?;
        let mut cache: Option<(String, Handle)> = None;
        let mut dir_times: Vec<(String, i64)> = Vec::new();
        std::thread::scope(|scope| -> Result<()> {
            let mut writer = WriteBehind::start(scope);
            let read = || -> Result<()> {
                for entry in entries {
                    if writer.failed() {
                        break;
                    }
                    let mut entry = entry.map_err(|e| Error::Invalid(format!("invalid tar stream: {e}")))?;
                    self.one(&mut entry, opts, &mut cache, &mut dir_times, &writer)?;
                }
                Ok(())
            };
            let read = read();
            let written = writer.finish();
            read.and(written)
        })?;
        for (path, mtime) in dir_times.iter().rev() {
            if let Ok(h) = self.fs.resolve_nofollow(path) {
                let _ = sys::utimes_fd(h.as_fd(), *mtime);
            }
        }
        Ok(())
    }

    fn one<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        opts: &ExtractOptions,
        cache: &mut Option<(String, Handle)>,
        dir_times: &mut Vec<(String, i64)>,
        writer: &WriteBehind<'_>,
    ) -> Result<()> {
        let kind = entry.header().entry_type();
        if matches!(kind, tar::EntryType::XGlobalHeader | tar::EntryType::XHeader) {
            return Ok(());
        }
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let raw = match &opts.rebase {
            Some((old, new)) => gopath::rebase(&raw, old, new),
            None => raw,
        };
        let name = gopath::clean(&raw);
        let path = gopath::join(&self.path, &name);
        let Some(rel) = within(&self.path, &path) else {
            return Err(Error::Breakout(format!("{name:?} is outside of {:?}", self.path)));
        };
        if rel.is_empty() {
            // The directory itself (`./`): it exists and stays as it is.
            return Ok(());
        }
        let (parent_rel, leaf) = match rel.rfind('/') {
            Some(i) => (&rel[..i], &rel[i + 1..]),
            None => ("", rel),
        };
        let parent_path = gopath::join(&self.path, parent_rel);
        if cache.as_ref().is_none_or(|(p, _)| *p != parent_path) {
            let h = if parent_rel.is_empty() {
                self.handle.try_clone().map_err(|e| pathrs_err(&parent_path, e))?
            } else {
                let perm = std::os::unix::fs::PermissionsExt::from_mode(0o755);
                self.fs.root.mkdir_all(&parent_path, &perm).map_err(|e| pathrs_err(&parent_path, e))?
            };
            *cache = Some((parent_path.clone(), h));
        }
        let parent = cache.as_ref().expect("set above").1.as_fd();
        let leaf = leaf.as_bytes();
        let is_dir = kind == tar::EntryType::Directory;

        if let Ok(existing) = sys::fstatat(parent, leaf) {
            let exists_dir = is_type(&existing, libc::S_IFDIR);
            if opts.no_overwrite_dir_non_dir && exists_dir && !is_dir {
                return Err(Error::Conflict(format!(
                    "cannot overwrite directory {path:?} with non-directory {:?}",
                    self.path
                )));
            }
            if opts.no_overwrite_dir_non_dir && !exists_dir && is_dir {
                return Err(Error::Conflict(format!(
                    "cannot overwrite non-directory {path:?} with directory {:?}",
                    self.path
                )));
            }
            if exists_dir && !is_dir {
                RootRef::from_fd(parent).remove_all(sys::os(leaf)).map_err(|e| pathrs_err(&path, e))?;
            } else if !exists_dir {
                sys::unlinkat(parent, leaf, false).map_err(io_err(&path))?;
            }
        }

        let h = entry.header();
        let mode = (h.mode().map_err(|e| Error::Invalid(format!("{path}: {e}")))? & 0o7777) as libc::mode_t;
        let mut uid = h.uid().unwrap_or(0) as u32;
        let mut gid = h.gid().unwrap_or(0) as u32;
        let mut mtime = h.mtime().unwrap_or(0) as i64;
        let mut xattrs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        if let Ok(Some(pax)) = entry.pax_extensions() {
            for ext in pax.flatten() {
                let (Ok(k), v) = (ext.key(), ext.value_bytes()) else { continue };
                let num = || std::str::from_utf8(v).ok().and_then(|s| s.split('.').next()?.parse::<i64>().ok());
                match k {
                    "uid" => uid = num().unwrap_or(uid as i64) as u32,
                    "gid" => gid = num().unwrap_or(gid as i64) as u32,
                    "mtime" => mtime = num().unwrap_or(mtime),
                    _ => {
                        if let Some(x) = k.strip_prefix("SCHILY.xattr.") {
                            xattrs.push((x.as_bytes().to_vec(), v.to_vec()));
                        }
                    }
                }
            }
        }
        match (opts.chown, &opts.ids) {
            (Some((u, g)), _) => (uid, gid) = (u, g),
            (None, Some(m)) => (uid, gid) = m.to_host(uid, gid).map_err(|e| Error::Invalid(e.message().to_owned()))?,
            (None, None) => {}
        }
        let owner = (!opts.no_lchown).then_some((uid, gid));
        let e = io_err(path.clone());
        let meta = Meta { path: path.clone(), owner, mode, xattrs, mtime };
        let finish = |fd: BorrowedFd<'_>, times: bool| meta.apply(fd, times);

        match kind {
            tar::EntryType::Directory => {
                match sys::mkdirat(parent, leaf, 0o700) {
                    Ok(()) => {}
                    Err(x) if x.raw_os_error() == Some(libc::EEXIST) => {}
                    Err(x) => return Err(e(x)),
                }
                let fd = sys::openat(parent, leaf, libc::O_RDONLY | libc::O_DIRECTORY, 0).map_err(e)?;
                finish(fd.as_fd(), false)?;
                dir_times.push((path.clone(), mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let fd = sys::openat(parent, leaf, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, 0o600)
                    .map_err(io_err(path.clone()))?;
                let mut f = std::fs::File::from(fd);
                let size = entry.header().size().unwrap_or(u64::MAX);
                if kind != tar::EntryType::GNUSparse && writer.reserve(size) {
                    let mut data = Vec::with_capacity(size as usize);
                    if let Err(x) = entry.read_to_end(&mut data) {
                        writer.release(size);
                        return Err(io_err(path.clone())(x));
                    }
                    writer.send(Job { file: f, data, reserved: size, meta: meta.clone() });
                } else {
                    copy_in_blocks(entry, &mut f).map_err(io_err(path.clone()))?;
                    finish(f.as_fd(), true)?;
                }
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| Error::Invalid(format!("{path}: symlink without a target")))?
                    .into_owned();
                let t = String::from_utf8_lossy(&target);
                let joined = gopath::join(&gopath::dir(&path), &t);
                if within(&self.path, &joined).is_none() {
                    return Err(Error::Breakout(format!("invalid symlink {path:?} -> {t:?}")));
                }
                sys::symlinkat(&target, parent, leaf).map_err(e)?;
                if let Some((u, g)) = owner {
                    sys::chown_at_nofollow(parent, leaf, u, g).map_err(io_err(path.clone()))?;
                }
                sys::utimes_at_nofollow(parent, leaf, mtime).map_err(io_err(path.clone()))?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| Error::Invalid(format!("{path}: hard link without a target")))?
                    .into_owned();
                let t = String::from_utf8_lossy(&target).into_owned();
                let t = match &opts.rebase {
                    Some((old, new)) => gopath::rebase(&t, old, new),
                    None => t,
                };
                let joined = gopath::join(&self.path, &t);
                if within(&self.path, &joined).is_none() {
                    return Err(Error::Breakout(format!("invalid hardlink {joined:?} -> {t:?}")));
                }
                let h = self.fs.resolve_nofollow(&joined)?;
                sys::link_fd(h.as_fd(), parent, leaf).map_err(e)?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let (t, dev) = match kind {
                    tar::EntryType::Char => (libc::S_IFCHR, true),
                    tar::EntryType::Block => (libc::S_IFBLK, true),
                    _ => (libc::S_IFIFO, false),
                };
                let rdev = if dev {
                    let h = entry.header();
                    libc::makedev(h.device_major().ok().flatten().unwrap_or(0), h.device_minor().ok().flatten().unwrap_or(0))
                } else {
                    0
                };
                sys::mknodat(parent, leaf, t | 0o600, rdev).map_err(e)?;
                let fd = sys::openat(parent, leaf, libc::O_PATH, 0).map_err(io_err(path.clone()))?;
                let st = sys::fstat(fd.as_fd()).map_err(io_err(path.clone()))?;
                if !is_type(&st, t) {
                    return Err(Error::Io {
                        context: path.clone(),
                        source: io::Error::other("replaced while it was being extracted"),
                    });
                }
                finish(fd.as_fd(), true)?;
            }
            other => {
                return Err(Error::Invalid(format!(
                    "unhandled tar header type {}",
                    other.as_byte()
                )))
            }
        }
        Ok(())
    }
}

/// What an extracted inode gets after its content: owner, then mode (a chown clears
/// set-id bits), xattrs, times — all through a descriptor of the inode made.
#[derive(Clone)]
struct Meta {
    path: String,
    owner: Option<(u32, u32)>,
    mode: libc::mode_t,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    mtime: i64,
}

impl Meta {
    fn apply(&self, fd: BorrowedFd<'_>, times: bool) -> Result<()> {
        if let Some((u, g)) = self.owner {
            sys::chown_fd(fd, u, g).map_err(io_err(self.path.clone()))?;
        }
        sys::chmod_fd(fd, self.mode).map_err(io_err(self.path.clone()))?;
        for (k, v) in &self.xattrs {
            // Best effort, as dockerd (an unsupported xattr is not an error there).
            let _ = sys::set_xattr_fd(fd, k, v);
        }
        if times {
            sys::utimes_fd(fd, self.mtime).map_err(io_err(self.path.clone()))?;
        }
        Ok(())
    }
}

/// Bytes of file data [`Dest::extract`] may hold for its writer thread at once; a file
/// larger than a quarter of it is written by the reading thread itself.
pub const WRITE_BEHIND: u64 = 8 << 20;

/// A created file, its data, and what to set on it once written.
struct Job {
    file: std::fs::File,
    data: Vec<u8>,
    reserved: u64,
    meta: Meta,
}

/// The writer thread of an extraction.
struct WriteBehind<'scope> {
    tx: Option<std::sync::mpsc::SyncSender<Job>>,
    worker: Option<std::thread::ScopedJoinHandle<'scope, Result<()>>>,
    in_flight: std::sync::Arc<std::sync::atomic::AtomicU64>,
    failed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl<'scope> WriteBehind<'scope> {
    fn start<'env>(scope: &'scope std::thread::Scope<'scope, 'env>) -> WriteBehind<'scope> {
        use std::sync::atomic::Ordering;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(256);
        let in_flight = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let failed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (flight, fail) = (in_flight.clone(), failed.clone());
        let worker = scope.spawn(move || -> Result<()> {
            let mut first: Option<Error> = None;
            for mut job in rx {
                if first.is_none() {
                    let r = job
                        .file
                        .write_all(&job.data)
                        .map_err(io_err(job.meta.path.clone()))
                        .and_then(|()| job.meta.apply(job.file.as_fd(), true));
                    if let Err(e) = r {
                        fail.store(true, Ordering::Relaxed);
                        first = Some(e);
                    }
                }
                flight.fetch_sub(job.reserved, Ordering::Relaxed);
            }
            first.map_or(Ok(()), Err)
        });
        WriteBehind { tx: Some(tx), worker: Some(worker), in_flight, failed }
    }

    /// Take `size` bytes of the budget, if the file is small enough and they are free.
    fn reserve(&self, size: u64) -> bool {
        use std::sync::atomic::Ordering;
        if size > WRITE_BEHIND / 4 {
            return false;
        }
        self.in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n + size <= WRITE_BEHIND).then_some(n + size))
            .is_ok()
    }

    fn release(&self, size: u64) {
        self.in_flight.fetch_sub(size, std::sync::atomic::Ordering::Relaxed);
    }

    fn send(&self, job: Job) {
        let reserved = job.reserved;
        if let Some(tx) = &self.tx {
            if tx.send(job).is_err() {
                self.release(reserved);
            }
        }
    }

    /// Has a write failed (the extraction stops reading)?
    fn failed(&self) -> bool {
        self.failed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Wait for every handed-out file; the first write error.
    fn finish(&mut self) -> Result<()> {
        drop(self.tx.take());
        match self.worker.take().map(|w| w.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(Error::Io { context: "archive".into(), source: io::Error::other("the writer thread panicked") }),
            None => Ok(()),
        }
    }
}

/// The part of `path` below `dir` (empty for `dir` itself), or `None` when `path`
/// is not inside `dir`. Both are clean absolute paths.
fn within<'p>(dir: &str, path: &'p str) -> Option<&'p str> {
    if dir == "/" {
        return Some(path.trim_start_matches('/'));
    }
    let rest = path.strip_prefix(dir)?;
    if rest.is_empty() {
        Some("")
    } else {
        rest.strip_prefix('/')
    }
}
