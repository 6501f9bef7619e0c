//! Process-level facts and guards: privileges, interface names, the
//! single-instance lock, the clock the datapath's lease uses.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("accel needs root (CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN); run it as root")]
    NotRoot,
    #[error("unknown interface {0:?} (see `ip link`)")]
    UnknownIface(String),
    #[error("another `accel run` is active (it holds {0}); stop it first")]
    AlreadyRunning(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub fn require_root() -> Result<(), RuntimeError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(RuntimeError::NotRoot);
    }
    Ok(())
}

pub fn ifindex(name: &str) -> Result<u32, RuntimeError> {
    let c = CString::new(name).map_err(|_| RuntimeError::UnknownIface(name.into()))?;
    // SAFETY: valid C string.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(RuntimeError::UnknownIface(name.into())),
        i => Ok(i),
    }
}

pub fn ifname(ifindex: u32) -> Option<String> {
    let mut buf = [0u8; libc::IF_NAMESIZE];
    // SAFETY: buffer of IF_NAMESIZE bytes as the call requires.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr().cast()) };
    if p.is_null() {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// Held for the life of `accel run`; the kernel drops the lock when the
/// process dies, however it dies.
pub struct InstanceLock {
    _file: File,
}

pub fn lock_instance(run_dir: &Path) -> Result<InstanceLock, RuntimeError> {
    let io = |source| RuntimeError::Io {
        path: run_dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(run_dir).map_err(io)?;
    let path = run_dir.join("accel.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| RuntimeError::Io {
            path: path.clone(),
            source,
        })?;
    // SAFETY: valid descriptor.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(RuntimeError::AlreadyRunning(path));
    }
    Ok(InstanceLock { _file: file })
}

/// CLOCK_MONOTONIC_COARSE, the clock of bpf_ktime_get_coarse_ns().
pub fn monotonic_coarse_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

pub const DEFAULT_RUN_DIR: &str = "/run/accel";
