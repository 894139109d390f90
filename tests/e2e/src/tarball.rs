//! A raw ustar writer that writes names exactly as given, including hostile ones
//! (`../x`, `/abs`, symlinks pointing out) that tar libraries refuse to produce.

#[derive(Debug, Clone)]
pub enum TarEntry {
    File {
        name: String,
        mode: u32,
        data: Vec<u8>,
    },
    Dir {
        name: String,
        mode: u32,
    },
    Symlink {
        name: String,
        target: String,
    },
    Hardlink {
        name: String,
        target: String,
    },
}

#[derive(Debug, Default, Clone)]
pub struct RawTar {
    entries: Vec<TarEntry>,
}

impl RawTar {
    pub fn new() -> RawTar {
        RawTar::default()
    }

    pub fn file(mut self, name: &str, data: &[u8]) -> RawTar {
        self.entries.push(TarEntry::File {
            name: name.into(),
            mode: 0o644,
            data: data.to_vec(),
        });
        self
    }

    pub fn dir(mut self, name: &str) -> RawTar {
        self.entries.push(TarEntry::Dir {
            name: name.into(),
            mode: 0o755,
        });
        self
    }

    pub fn symlink(mut self, name: &str, target: &str) -> RawTar {
        self.entries.push(TarEntry::Symlink {
            name: name.into(),
            target: target.into(),
        });
        self
    }

    pub fn hardlink(mut self, name: &str, target: &str) -> RawTar {
        self.entries.push(TarEntry::Hardlink {
            name: name.into(),
            target: target.into(),
        });
        self
    }

    /// The archive bytes (ends with the two zero blocks).
    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for e in &self.entries {
            let (name, mode, typ, link, data): (&str, u32, u8, &str, &[u8]) = match e {
                TarEntry::File { name, mode, data } => (name, *mode, b'0', "", data),
                TarEntry::Dir { name, mode } => (name, *mode, b'5', "", &[]),
                TarEntry::Symlink { name, target } => (name, 0o777, b'2', target, &[]),
                TarEntry::Hardlink { name, target } => (name, 0o644, b'1', target, &[]),
            };
            out.extend_from_slice(&header(name, mode, typ, link, data.len()));
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.resize(out.len() + 1024, 0);
        out
    }
}

fn put(h: &mut [u8], at: usize, len: usize, v: &[u8]) {
    assert!(
        v.len() <= len,
        "tar field too long: {:?}",
        String::from_utf8_lossy(v)
    );
    h[at..at + v.len()].copy_from_slice(v);
}

fn octal(h: &mut [u8], at: usize, len: usize, v: u64) {
    let s = format!("{v:0w$o}\0", w = len - 1);
    put(h, at, len, s.as_bytes());
}

fn header(name: &str, mode: u32, typ: u8, link: &str, size: usize) -> [u8; 512] {
    let mut h = [0u8; 512];
    put(&mut h, 0, 100, name.as_bytes());
    octal(&mut h, 100, 8, mode as u64);
    octal(&mut h, 108, 8, 0);
    octal(&mut h, 116, 8, 0);
    octal(&mut h, 124, 12, size as u64);
    octal(&mut h, 136, 12, 1_700_000_000);
    h[156] = typ;
    put(&mut h, 157, 100, link.as_bytes());
    put(&mut h, 257, 6, b"ustar\0");
    put(&mut h, 263, 2, b"00");
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    put(&mut h, 148, 8, format!("{sum:06o}\0 ").as_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn gnu_tar_reads_it_back_verbatim() {
        let dir = crate::unique_tmp_dir("berth-e2e-tartest");
        let tar = RawTar::new()
            .dir("./etc/")
            .file("./etc/hello", b"hello\n")
            .file("../escape", b"x")
            .file("/abs/file", b"y")
            .symlink("link", "../../../outside")
            .hardlink("hl", "./etc/hello")
            .build();
        assert_eq!(tar.len() % 512, 0);
        std::fs::write(dir.join("t.tar"), &tar).unwrap();
        let out = Command::new("tar")
            .arg("-tvf")
            .arg(dir.join("t.tar"))
            .output()
            .unwrap();
        let list = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{list} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for want in [
            "./etc/hello",
            "../escape",
            "/abs/file",
            "link -> ../../../outside",
            "hl link to ./etc/hello",
        ] {
            assert!(list.contains(want), "missing {want} in\n{list}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
