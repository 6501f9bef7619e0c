//! bpffs and the pin directory: where a running instance pins its maps so
//! that `accel stats`, `lookup` and the benchmarks can reach them, and
//! where a handover leaves its XDP links for the successor.
//!
//! The directory is opened through [`TrustedDir`] (root's, writable by
//! nobody else, no symlinks on the way) and held under an exclusive flock
//! for the life of the instance: a second instance, whatever its run
//! directory, cannot take it over, and readers tell a live instance from
//! the pins a killed one left behind by whether the lock is held.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use libbpf_rs::MapHandle;
use rustix::fs::FlockOperation;
use rustix::io::Errno;

use super::maps::Maps;
use super::DatapathError;
use crate::trusted_path::{c_path, Missing, PathError, TrustedDir};

const BPF_FS_MAGIC: i64 = 0xcafe4a11;
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/accel";
const BPFFS_ROOT: &str = "/sys/fs/bpf";
/// Where a handover pins the XDP links, one pin per interface name.
const LINKS: &str = "links";

fn is_bpffs(path: &Path) -> bool {
    rustix::fs::statfs(path).is_ok_and(|s| s.f_type == BPF_FS_MAGIC)
}

/// Mounts bpffs on /sys/fs/bpf when `dir` lies there and nothing is
/// mounted yet. Mode 0700: the kernel's default for a bpffs root is 1777,
/// which lets any user create entries in it.
fn ensure_bpffs(dir: &Path) -> Result<(), DatapathError> {
    let root = Path::new(BPFFS_ROOT);
    if !dir.starts_with(root) || is_bpffs(root) {
        return Ok(());
    }
    rustix::mount::mount(
        "bpf",
        root,
        "bpf",
        rustix::mount::MountFlags::NOSUID
            | rustix::mount::MountFlags::NODEV
            | rustix::mount::MountFlags::NOEXEC,
        Some(c"mode=0700"),
    )
    .map_err(|e| {
        DatapathError::Bpffs(format!(
            "{BPFFS_ROOT} is not a bpffs and mounting one failed ({}); mount it with \
             `mount -t bpf -o mode=0700 bpf {BPFFS_ROOT}`",
            std::io::Error::from(e)
        ))
    })
}

/// An instance's pin directory, opened and checked; held locked by the
/// instance that claimed it.
pub struct PinDir {
    dir: TrustedDir,
    lock: Option<OwnedFd>,
}

/// How long [`PinDir::claim`] retries a lock that a reader's liveness
/// probe may hold for an instant.
const CLAIM_PATIENCE: Duration = Duration::from_millis(300);

impl PinDir {
    /// For `accel run`: makes sure bpffs is mounted, opens (creating, 0700)
    /// the directory and takes its lock.
    pub fn claim(path: &Path) -> Result<PinDir, DatapathError> {
        ensure_bpffs(path)?;
        let dir = TrustedDir::open(path, Missing::Create)?;
        if dir.fs_type()? != BPF_FS_MAGIC {
            return Err(DatapathError::Bpffs(format!(
                "{} is not on a bpffs mount",
                path.display()
            )));
        }
        let mut pins = PinDir { dir, lock: None };
        pins.relock()?;
        Ok(pins)
    }

    /// Takes the lock (again, after a failed handover gave it away).
    pub fn relock(&mut self) -> Result<(), DatapathError> {
        let fd = self.dir.lockable()?;
        let until = std::time::Instant::now() + CLAIM_PATIENCE;
        loop {
            match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => break,
                Err(Errno::WOULDBLOCK) if std::time::Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(Errno::WOULDBLOCK) => {
                    return Err(DatapathError::PinDirBusy(self.dir.path().to_path_buf()))
                }
                Err(e) => {
                    return Err(PathError::Io {
                        path: self.dir.path().to_path_buf(),
                        source: e.into(),
                    }
                    .into())
                }
            }
        }
        self.lock = Some(fd);
        Ok(())
    }

    /// Lets the lock go (a handover's successor takes it).
    pub fn unlock(&mut self) {
        self.lock = None;
    }

    /// For readers: the pin directory of a live instance, or why there is
    /// none (no directory, or one whose lock nobody holds: pins that a
    /// killed instance left behind, with stale counters and routes).
    pub fn open_live(path: &Path) -> Result<PinDir, DatapathError> {
        let dir = match TrustedDir::open(path, Missing::Fail) {
            Err(PathError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(DatapathError::NotRunning {
                    dir: path.to_path_buf(),
                    leftover: false,
                })
            }
            other => other?,
        };
        let fd = dir.lockable()?;
        match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockShared) {
            // Nobody holds it: no live instance.
            Ok(()) => Err(DatapathError::NotRunning {
                dir: path.to_path_buf(),
                leftover: dir.names().is_ok_and(|n| !n.is_empty()),
            }),
            Err(Errno::WOULDBLOCK) => Ok(PinDir { dir, lock: None }),
            Err(e) => Err(PathError::Io {
                path: path.to_path_buf(),
                source: e.into(),
            }
            .into()),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Pins every map, replacing pins a dead instance left.
    pub fn pin_all(&self, maps: &Maps) -> Result<(), DatapathError> {
        self.unpin_all();
        for (name, map) in maps.named() {
            let path = c_path(&self.dir.fd_path(name));
            // SAFETY: valid map fd and C string. The path resolves through
            // this directory's descriptor; pinning creates the last
            // component and fails on anything already there.
            let rc = unsafe { libbpf_sys::bpf_obj_pin(map.as_fd().as_raw_fd(), path.as_ptr()) };
            if rc != 0 {
                return Err(DatapathError::Pin {
                    dir: self.dir.shown(name),
                    source: std::io::Error::from_raw_os_error(-rc),
                });
            }
        }
        Ok(())
    }

    /// Removes every map pin (the directory holds nothing else; the links
    /// directory of a handover stays).
    pub fn unpin_all(&self) {
        for name in self.dir.names().unwrap_or_default() {
            if name != LINKS {
                let _ = self.dir.remove(&name);
            }
        }
    }

    /// Opens the map pinned as `name`; never through a symlink.
    pub fn open_map(&self, name: &str) -> Result<MapHandle, DatapathError> {
        if self.dir.holds_symlink(name) {
            return Err(PathError::Untrusted {
                path: self.dir.shown(name),
                why: "it is a symbolic link".into(),
            }
            .into());
        }
        MapHandle::from_pinned_path(self.dir.fd_path(name)).map_err(|source| {
            DatapathError::NotPinned {
                dir: self.dir.path().to_path_buf(),
                source,
            }
        })
    }

    /// The directory of a handover's link pins.
    pub fn links(&self, missing: Missing) -> Result<TrustedDir, DatapathError> {
        Ok(self.dir.subdir(LINKS, missing)?)
    }

    /// Whether a handover left link pins.
    pub fn has_links(&self) -> bool {
        self.dir.contains(LINKS)
    }

    /// Removes the links directory if it is empty.
    pub fn remove_links_if_empty(&self) {
        self.dir.remove_dir(LINKS);
    }
}

pub fn pin_dir_or_default(dir: Option<PathBuf>) -> PathBuf {
    dir.unwrap_or_else(|| PathBuf::from(DEFAULT_PIN_DIR))
}
