//! bpffs: making sure it is mounted, and pinning accel's maps there so that
//! `accel stats`, `accel lookup` and `accel sync` can reach them.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use super::maps::Maps;
use super::DatapathError;

const BPF_FS_MAGIC: i64 = 0xcafe4a11;
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/accel";

fn is_bpffs(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid C string and out pointer.
    unsafe { libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as i64 == BPF_FS_MAGIC }
}

/// Makes sure `dir` lies on a bpffs, mounting one on /sys/fs/bpf if that is
/// where it should be and nothing is mounted there yet.
pub fn ensure_bpffs(dir: &Path) -> Result<(), DatapathError> {
    let root = Path::new("/sys/fs/bpf");
    if dir.starts_with(root) && !is_bpffs(root) {
        let src = CString::new("bpf").unwrap();
        let target = CString::new("/sys/fs/bpf").unwrap();
        // SAFETY: valid C strings; no data argument.
        let rc = unsafe {
            libc::mount(
                src.as_ptr(),
                target.as_ptr(),
                src.as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        if rc != 0 {
            return Err(DatapathError::Bpffs(format!(
                "/sys/fs/bpf is not a bpffs and mounting one failed: {} \
                 (mount it with `mount -t bpf bpf /sys/fs/bpf`)",
                std::io::Error::last_os_error()
            )));
        }
    }
    let parent = dir.parent().unwrap_or(dir);
    if !is_bpffs(dir) && !is_bpffs(parent) {
        return Err(DatapathError::Bpffs(format!(
            "{} is not on a bpffs mount",
            parent.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|source| DatapathError::Pin {
        dir: dir.to_path_buf(),
        source,
    })
}

/// Pins every map under `dir`, replacing pins a dead instance left.
pub fn pin_all(maps: &Maps, dir: &Path) -> Result<(), DatapathError> {
    unpin_all(dir);
    for (name, map) in maps.named() {
        let path = dir.join(name);
        let c = CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL in path");
        // SAFETY: valid fd and C string.
        let rc = unsafe { libbpf_sys::bpf_obj_pin(map.as_fd().as_raw_fd(), c.as_ptr()) };
        if rc != 0 {
            return Err(DatapathError::Pin {
                dir: dir.to_path_buf(),
                source: std::io::Error::from_raw_os_error(-rc),
            });
        }
    }
    Ok(())
}

/// Removes every map pin in accel's pin directory (it holds nothing else;
/// the links directory of a handover is left alone).
pub fn unpin_all(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Where a handover leaves the XDP links, one pin per interface name.
pub fn links_dir(dir: &Path) -> PathBuf {
    dir.join("links")
}

pub fn pin_dir_or_default(dir: Option<PathBuf>) -> PathBuf {
    dir.unwrap_or_else(|| PathBuf::from(DEFAULT_PIN_DIR))
}
