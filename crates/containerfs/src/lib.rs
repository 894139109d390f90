//! berth-containerfs: moving files in and out of a container's filesystem, as
//! the Docker archive API (`docker cp`) does.
//!
//! - [`ContainerFs`] opens a container's root (its rootfs mount, or
//!   `/proc/<pid>/root` of a running container so its volumes and binds are seen)
//!   and resolves every path inside it; [`ContainerFs::stat`], [`ContainerFs::source`]
//!   (a tar of a path) and [`ContainerFs::dest`] (extract a tar) never leave it.
//! - [`copy`] holds the client side of `docker cp`: what a source and a destination
//!   on the user's host mean, and how archive entries are renamed between them.
//! - [`gopath`] has the Go path semantics the API's trailing `/` and `/.` rules
//!   are written in.

pub mod copy;
mod fs;
pub mod gopath;
pub mod stat;
mod sys;

pub use fs::{ContainerFs, Dest, ExtractOptions, Source};
pub use stat::PathStat;

use std::io::{self, BufRead, BufReader, Read};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The path (as the caller named it) does not exist.
    #[error("no such file or directory: {0}")]
    NotFound(String),
    #[error("extraction point is not a directory")]
    NotDirectory,
    /// An archive entry or link that would land outside the destination.
    #[error("{0}")]
    Breakout(String),
    /// `noOverwriteDirNonDir` refused to replace a directory by a file or back.
    #[error("{0}")]
    Conflict(String),
    /// A malformed or unsupported archive.
    #[error("{0}")]
    Invalid(String),
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A reader for a stream that may be compressed (gzip, bzip2, xz or zstd, told by
/// their magic bytes), as dockerd's `DecompressStream` reads `PUT
/// /containers/{id}/archive` bodies and the local archives `ADD` unpacks.
pub fn decompress<'a>(r: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    /// An xz stream may ask for a dictionary this large at most (xz -9 uses 64 MiB).
    const XZ_MEM_LIMIT_KIB: u32 = 256 * 1024;
    let mut r = BufReader::with_capacity(256 * 1024, r);
    let head = r.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok(Box::new(flate2::read::MultiGzDecoder::new(r)));
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let d = ruzstd::decoding::StreamingDecoder::new(r).map_err(io::Error::other)?;
        return Ok(Box::new(d));
    }
    if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Ok(Box::new(lzma_rust2::XzReader::new_mem_limit(r, true, XZ_MEM_LIMIT_KIB)));
    }
    if head.starts_with(b"BZh") {
        return Ok(Box::new(bzip2::read::MultiBzDecoder::new(r)));
    }
    Ok(Box::new(r))
}

/// Is `data` a tar archive, possibly compressed? What dockerd's `isArchivePath`
/// asks before `ADD` unpacks a local file: it decompresses and its first tar header
/// is sound (the header checksum matches; an empty archive's zero block is not one).
pub fn is_tar(data: &[u8]) -> bool {
    let Ok(mut r) = decompress(data) else { return false };
    let mut head = [0u8; 512];
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    if n < head.len() || head.iter().all(|b| *b == 0) {
        return false;
    }
    let header = tar::Header::from_byte_slice(&head);
    let Ok(stored) = header.cksum() else { return false };
    let sum: u32 = head
        .iter()
        .enumerate()
        .map(|(i, b)| if (148..156).contains(&i) { u32::from(b' ') } else { u32::from(*b) })
        .sum();
    stored == sum
}
