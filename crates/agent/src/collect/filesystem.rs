//! Filesystem space and inode usage (like `df`) for the real filesystems in mountinfo.

mod select;
mod statfs;

use std::path::Path;

use crate::collect::memory::percent;
use crate::collect::procfile::ProcFile;
use crate::collect::{CollectError, Collector, ProcRoot, Sample};

pub use select::{REAL_FSTYPES, SelectedMount, is_real_filesystem, select_mounts, unescape};
pub use statfs::{FsStats, RustixStatFs, StatFs};

pub const FILESYSTEM_SIZE_BYTES: &str = "host_filesystem_size_bytes";
pub const FILESYSTEM_FREE_BYTES: &str = "host_filesystem_free_bytes";
pub const FILESYSTEM_USED_BYTES: &str = "host_filesystem_used_bytes";
pub const FILESYSTEM_USED_PERCENT: &str = "host_filesystem_used_percent";
pub const FILESYSTEM_INODES: &str = "host_filesystem_inodes";
pub const FILESYSTEM_INODES_USED: &str = "host_filesystem_inodes_used";
pub const FILESYSTEM_INODES_USED_PERCENT: &str = "host_filesystem_inodes_used_percent";

/// The mount table read: the agent's own mount namespace.
pub const MOUNTINFO: &str = "self/mountinfo";

/// Space and inode gauges per selected mount (see [`select_mounts`]), labelled `mountpoint`,
/// `device`, `fstype`. A mount whose `statvfs` fails is skipped with a warning; the others are
/// still reported.
pub struct FilesystemCollector {
    root: ProcRoot,
    statfs: Box<dyn StatFs>,
}

impl FilesystemCollector {
    pub fn new(root: ProcRoot, statfs: Box<dyn StatFs>) -> Self {
        Self { root, statfs }
    }
}

impl std::fmt::Debug for FilesystemCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilesystemCollector")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl Collector for FilesystemCollector {
    fn name(&self) -> &'static str {
        "filesystem"
    }

    fn collect(&mut self, _now_ms: i64, out: &mut Vec<Sample>) -> Result<(), CollectError> {
        let file = ProcFile::read(&self.root, MOUNTINFO)?;
        let mounts: procfs::process::MountInfos = file.parse()?;
        for m in select_mounts(&mounts) {
            // A hung statvfs (dead NFS server) blocks here; see the note on `StatFs`.
            let stats = match self.statfs.statvfs(Path::new(&m.mountpoint)) {
                Ok(stats) => stats,
                Err(error) => {
                    tracing::warn!(mountpoint = %m.mountpoint, %error, "statvfs failed, filesystem skipped");
                    continue;
                }
            };
            push_usage(out, &m, &stats);
        }
        Ok(())
    }
}

/// df's arithmetic: used = blocks − free (root's reserve counts as not used), percent =
/// used / (used + available to users), so a disk is 100 % full when users cannot write.
fn push_usage(out: &mut Vec<Sample>, m: &SelectedMount, s: &FsStats) {
    let bytes = |blocks: u64| blocks as f64 * s.fragment_size as f64;
    let used_blocks = s.blocks.saturating_sub(s.blocks_free);
    let avail_blocks = s.blocks_available.min(s.blocks);
    let inodes_used = s.files.saturating_sub(s.files_free);
    let labels = [
        ("mountpoint", m.mountpoint.as_str()),
        ("device", m.device.as_str()),
        ("fstype", m.fstype.as_str()),
    ];
    let mut push = |name, value| out.push(Sample::with_labels(name, &labels, value));
    push(FILESYSTEM_SIZE_BYTES, bytes(s.blocks));
    push(FILESYSTEM_FREE_BYTES, bytes(avail_blocks));
    push(FILESYSTEM_USED_BYTES, bytes(used_blocks));
    push(
        FILESYSTEM_USED_PERCENT,
        percent(used_blocks, used_blocks.saturating_add(avail_blocks)),
    );
    push(FILESYSTEM_INODES, s.files as f64);
    push(FILESYSTEM_INODES_USED, inodes_used as f64);
    push(
        FILESYSTEM_INODES_USED_PERCENT,
        percent(inodes_used, s.files),
    );
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::PathBuf;

    use super::*;
    use crate::collect::testutil::{Fixture, assert_close, collect, value};

    /// statvfs answers from a table; mountpoints not in it fail like an unreachable mount.
    struct FakeStatFs(HashMap<PathBuf, FsStats>);

    impl StatFs for FakeStatFs {
        fn statvfs(&self, mountpoint: &Path) -> std::io::Result<FsStats> {
            self.0.get(mountpoint).copied().ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "fake statvfs failure")
            })
        }
    }

    const MOUNTINFO_FIXTURE: &str = "\
22 1 0:21 / /proc rw,relatime - proc proc rw
24 1 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=1k
25 1 0:23 / /run rw,relatime - tmpfs tmpfs rw
27 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
28 27 8:2 / /data\\040disk rw,relatime shared:2 - xfs /dev/sdb1 rw
29 27 8:1 /var/lib/www /srv/www rw,relatime shared:1 - ext4 /dev/sda1 rw
30 27 8:2 / /mnt/again rw,relatime - xfs /dev/sdb1 rw
31 27 0:40 / /var/lib/docker/overlay2/abc/merged rw - overlay overlay rw,lowerdir=/x
32 27 0:41 / /home rw - nfs4 server:/home rw
33 27 0:42 / /boot/efi rw - vfat /dev/sda15 rw
34 27 0:43 / /broken rw - ext4 /dev/sdc1 rw
35 27 0:44 /@home /home2 rw - btrfs /dev/nvme0n1p2 rw
";

    fn fake() -> FakeStatFs {
        let stats = FsStats {
            fragment_size: 4096,
            blocks: 1000,
            blocks_free: 300,
            blocks_available: 200,
            files: 500,
            files_free: 400,
        };
        let empty_inodes = FsStats {
            fragment_size: 512,
            blocks: 100,
            blocks_free: 100,
            blocks_available: 100,
            files: 0,
            files_free: 0,
        };
        FakeStatFs(HashMap::from([
            (PathBuf::from("/"), stats),
            (PathBuf::from("/data disk"), stats),
            (PathBuf::from("/boot/efi"), empty_inodes),
            (PathBuf::from("/home2"), stats),
            // /broken is missing: statvfs fails
        ]))
    }

    #[test]
    fn df_like_usage_for_selected_mounts() {
        let fx = Fixture::new();
        fx.write(MOUNTINFO, MOUNTINFO_FIXTURE);
        let mut c = FilesystemCollector::new(fx.root(), Box::new(fake()));
        for now in [0, 10_000] {
            let s = collect(&mut c, now);
            let mut mountpoints: Vec<&str> =
                s.iter().filter_map(|x| x.label("mountpoint")).collect();
            mountpoints.dedup();
            assert_eq!(mountpoints, ["/", "/boot/efi", "/data disk", "/home2"]);
            assert_eq!(s.len(), 4 * 7);

            let root = [
                ("mountpoint", "/"),
                ("device", "/dev/sda1"),
                ("fstype", "ext4"),
            ];
            assert_close(value(&s, FILESYSTEM_SIZE_BYTES, &root), 4_096_000.0);
            assert_close(value(&s, FILESYSTEM_FREE_BYTES, &root), 819_200.0);
            assert_close(value(&s, FILESYSTEM_USED_BYTES, &root), 2_867_200.0);
            // used 700 / (700 + 200 available) like df
            assert_close(
                value(&s, FILESYSTEM_USED_PERCENT, &root),
                700.0 * 100.0 / 900.0,
            );
            assert_close(value(&s, FILESYSTEM_INODES, &root), 500.0);
            assert_close(value(&s, FILESYSTEM_INODES_USED, &root), 100.0);
            assert_close(value(&s, FILESYSTEM_INODES_USED_PERCENT, &root), 20.0);

            let data = [
                ("mountpoint", "/data disk"),
                ("device", "/dev/sdb1"),
                ("fstype", "xfs"),
            ];
            assert_close(value(&s, FILESYSTEM_SIZE_BYTES, &data), 4_096_000.0);

            let efi = [("mountpoint", "/boot/efi"), ("fstype", "vfat")];
            assert_close(value(&s, FILESYSTEM_USED_PERCENT, &efi), 0.0);
            assert_close(value(&s, FILESYSTEM_INODES_USED_PERCENT, &efi), 0.0);
        }
    }

    #[test]
    fn malformed_mountinfo_names_the_file() {
        let fx = Fixture::new();
        fx.write(
            MOUNTINFO,
            "27 1 8:1 / / rw,relatime shared:1 ext4 /dev/sda1\n",
        );
        let mut c = FilesystemCollector::new(fx.root(), Box::new(fake()));
        let err = c.collect(0, &mut Vec::new()).unwrap_err();
        assert!(matches!(err, CollectError::Malformed { .. }), "{err:?}");
        assert!(err.to_string().contains("self/mountinfo"), "{err}");
    }
}
