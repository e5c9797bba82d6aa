//! Which mountinfo entries are reported: real local filesystems, one mount per device.

use std::collections::BTreeMap;

use procfs::process::MountInfo;

/// Filesystem types backed by local storage. Pseudo filesystems (proc, sysfs, cgroup, tmpfs,
/// devtmpfs, ...) describe memory or kernel state, network filesystems (nfs, cifs, ceph, ...)
/// can hang `statvfs`, and fuse types are arbitrary programs; all of those are left out.
pub const REAL_FSTYPES: &[&str] = &[
    "ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "vfat", "exfat", "ntfs", "ntfs3", "f2fs", "jfs",
    "reiserfs", "bcachefs",
];

/// One filesystem chosen for reporting, with labels already unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedMount {
    pub mountpoint: String,
    pub device: String,
    pub fstype: String,
}

/// Whether a mount of `fstype` at `mountpoint` is a real filesystem. `overlay` counts only
/// when it is the root filesystem (the agent runs in a container): overlays elsewhere are
/// container layers whose space is that of a filesystem already reported.
pub fn is_real_filesystem(fstype: &str, mountpoint: &str) -> bool {
    REAL_FSTYPES.contains(&fstype) || (fstype == "overlay" && mountpoint == "/")
}

/// The mounts to report, sorted by mountpoint.
///
/// Mounts sharing a device (`major:minor`, the `st_dev` of their files) are one filesystem:
/// the same device mounted twice, or a bind mount of a directory of it. Of those, the mount
/// of the filesystem's root (`root` field `/`) wins over bind mounts of subdirectories, then
/// the shortest mountpoint, then the earliest mount. A bind mount is therefore reported only
/// when the mount it was made from is not visible (e.g. in a container).
pub fn select_mounts<'a>(mounts: impl IntoIterator<Item = &'a MountInfo>) -> Vec<SelectedMount> {
    // device -> (rank, candidate); a smaller rank wins
    let mut best: BTreeMap<&str, ((bool, usize, usize), SelectedMount)> = BTreeMap::new();
    for (order, m) in mounts.into_iter().enumerate() {
        let mountpoint = unescape(&m.mount_point.to_string_lossy());
        if !is_real_filesystem(&m.fs_type, &mountpoint) {
            continue;
        }
        let rank = (m.root != "/", mountpoint.len(), order);
        let candidate = SelectedMount {
            device: unescape(m.mount_source.as_deref().unwrap_or("none")),
            fstype: m.fs_type.clone(),
            mountpoint,
        };
        match best.get(m.majmin.as_str()) {
            Some((current, _)) if *current <= rank => {}
            _ => {
                best.insert(m.majmin.as_str(), (rank, candidate));
            }
        }
    }
    let mut selected: Vec<SelectedMount> = best.into_values().map(|(_, m)| m).collect();
    selected.sort_by(|a, b| a.mountpoint.cmp(&b.mountpoint));
    selected
}

/// Undo mountinfo's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134`
/// backslash). Anything that is not a valid three-digit octal escape is kept as it is.
pub fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(digits) = bytes.get(i + 1..i + 4)
            && digits.iter().all(|d| (b'0'..=b'7').contains(d))
        {
            let value = digits
                .iter()
                .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
            if let Ok(byte) = u8::try_from(value) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(line: &str) -> MountInfo {
        MountInfo::from_line(line).expect("valid mountinfo line")
    }

    #[test]
    fn unescape_octal() {
        assert_eq!(unescape(r"/mnt/my\040disk"), "/mnt/my disk");
        assert_eq!(unescape(r"/a\134b\011c"), "/a\\b\tc");
        assert_eq!(unescape(r"/odd\04"), r"/odd\04");
        assert_eq!(unescape(r"/odd\999x"), r"/odd\999x");
        assert_eq!(unescape(r"/high\777"), r"/high\777");
        assert_eq!(unescape("/plain"), "/plain");
    }

    #[test]
    fn bind_mount_loses_to_the_real_mount_even_when_listed_first() {
        let mounts = [
            mount("40 1 8:1 /var/lib/data /srv rw - ext4 /dev/sda1 rw"),
            mount("41 1 8:1 / /mnt/disk rw - ext4 /dev/sda1 rw"),
        ];
        let s = select_mounts(&mounts);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].mountpoint, "/mnt/disk");
    }

    #[test]
    fn overlay_only_at_root() {
        assert!(is_real_filesystem("overlay", "/"));
        assert!(!is_real_filesystem(
            "overlay",
            "/var/lib/docker/overlay2/x/merged"
        ));
        assert!(!is_real_filesystem("tmpfs", "/run"));
        assert!(!is_real_filesystem("nfs4", "/home"));
        assert!(is_real_filesystem("xfs", "/data"));
    }
}
