//! The `statvfs(2)` seam: a trait the filesystem collector calls, the real rustix-backed
//! implementation, and nothing else.

use std::path::Path;

/// What `statvfs(2)` says about one mounted filesystem. Block counts are in units of
/// `fragment_size` (`f_frsize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FsStats {
    pub fragment_size: u64,
    pub blocks: u64,
    /// Free blocks, including those reserved for root (`f_bfree`).
    pub blocks_free: u64,
    /// Free blocks available to unprivileged users (`f_bavail`).
    pub blocks_available: u64,
    pub files: u64,
    pub files_free: u64,
}

/// Something that can `statvfs` a mountpoint; tests substitute a fake.
///
/// A call may block for a long time (an unresponsive NFS server makes `statvfs` hang in the
/// kernel). The selection rules keep network filesystems out by default, and the agent must
/// run collectors under a timeout on its own thread so one stuck call cannot stall the
/// others; nothing here can interrupt a blocked system call.
pub trait StatFs: Send {
    fn statvfs(&self, mountpoint: &Path) -> std::io::Result<FsStats>;
}

/// The real `statvfs(2)` through rustix.
#[derive(Debug, Clone, Copy, Default)]
pub struct RustixStatFs;

impl StatFs for RustixStatFs {
    fn statvfs(&self, mountpoint: &Path) -> std::io::Result<FsStats> {
        let s = rustix::fs::statvfs(mountpoint)?;
        Ok(FsStats {
            fragment_size: s.f_frsize,
            blocks: s.f_blocks,
            blocks_free: s.f_bfree,
            blocks_available: s.f_bavail,
            files: s.f_files,
            files_free: s.f_ffree,
        })
    }
}
