//! Process-level facts and guards: privileges, interface names, the
//! single-instance lock, the clock the datapath's lease uses.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, Mode};
use rustix::thread::CapabilitySet;

use crate::trusted_path::{Missing, PathError, TrustedDir};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "needs {missing}, which this process lacks; run it as root or grant them (see \
         docs/deployment.md, \"Least privilege\")"
    )]
    MissingCaps { missing: String },
    #[error("unknown interface {0:?} (see `ip link`)")]
    UnknownIface(String),
    #[error("another `accel run` is active (it holds {0}); stop it first")]
    AlreadyRunning(PathBuf),
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The capabilities `accel run` needs: loading BPF programs and maps
/// (CAP_BPF), attaching XDP, netlink changes and SO_RCVBUFFORCE
/// (CAP_NET_ADMIN), and the verifier's leave to compare packet pointers
/// with NULL (CAP_PERFMON: without it the datapath is refused, "pointer
/// comparison prohibited").
pub const RUN_CAPS: CapabilitySet = CapabilitySet::BPF
    .union(CapabilitySet::NET_ADMIN)
    .union(CapabilitySet::PERFMON);

/// Reading a running instance's pinned maps.
pub const READ_CAPS: CapabilitySet = CapabilitySet::BPF;

fn cap_names(set: CapabilitySet) -> String {
    let names = [
        (CapabilitySet::BPF, "CAP_BPF"),
        (CapabilitySet::NET_ADMIN, "CAP_NET_ADMIN"),
        (CapabilitySet::PERFMON, "CAP_PERFMON"),
        (CapabilitySet::SYS_ADMIN, "CAP_SYS_ADMIN"),
    ];
    names
        .iter()
        .filter(|(c, _)| set.contains(*c))
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Fails with one line naming what is missing unless the process has
/// every capability in `needed` (effective).
pub fn require_caps(needed: CapabilitySet) -> Result<(), RuntimeError> {
    let have = rustix::thread::capabilities(None)
        .map(|c| c.effective)
        .unwrap_or(CapabilitySet::empty());
    let missing = needed.difference(have);
    if missing.is_empty() {
        return Ok(());
    }
    Err(RuntimeError::MissingCaps {
        missing: cap_names(missing),
    })
}

/// Everything accel creates is its own: files 0600, directories 0700,
/// whatever umask it was started under.
pub fn restrict_umask() {
    rustix::process::umask(Mode::from_raw_mode(0o077));
}

/// The index of interface `name` in the current network namespace (asked
/// of the kernel, not read from /sys, which belongs to whoever mounted it).
pub fn ifindex(name: &str) -> Result<u32, RuntimeError> {
    iface_index(name)
        .ok()
        .flatten()
        .ok_or_else(|| RuntimeError::UnknownIface(name.into()))
}

pub fn ifname(ifindex: u32) -> Option<String> {
    iface_name(ifindex).ok().flatten()
}

/// The name of `ifindex` in the current network namespace: Ok(None) only
/// when the kernel says there is no such device (ENODEV); any other
/// failure (no socket to ask with) is an error, not an answer.
pub fn iface_name(ifindex: u32) -> std::io::Result<Option<String>> {
    let sock = ioctl_socket()?;
    match rustix::net::netdevice::index_to_name(&sock, ifindex) {
        Ok(n) => Ok(Some(n)),
        Err(rustix::io::Errno::NODEV) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The index of `name`, as [`iface_name`]: Ok(None) only for ENODEV.
pub fn iface_index(name: &str) -> std::io::Result<Option<u32>> {
    // SIOCGIFINDEX, as if_nametoindex(3) does, on a socket of our own.
    let sock = ioctl_socket()?;
    match rustix::net::netdevice::name_to_index(&sock, name) {
        Ok(i) => Ok(Some(i)),
        Err(rustix::io::Errno::NODEV) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A socket for the interface ioctls (any family serves).
fn ioctl_socket() -> std::io::Result<std::os::fd::OwnedFd> {
    use rustix::net::{socket_with, AddressFamily, SocketFlags, SocketType};
    Ok(socket_with(
        AddressFamily::INET,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

const LOCK_FILE: &str = "accel.lock";
const PID_FILE: &str = "accel.pid";
const SOCKET: &str = "accel.sock";

/// The run directory of an instance (lock, pid file, control socket),
/// opened through [`TrustedDir`]: root's, writable by nobody else, created
/// 0700, and everything in it reached without following symlinks.
pub struct RunDir {
    dir: TrustedDir,
    /// The instance lock: held for the life of `accel run`; the kernel
    /// drops it when the process dies, however it dies.
    lock: Option<OwnedFd>,
}

impl RunDir {
    /// Opens (creating) the directory and takes the instance lock.
    pub fn claim(path: &Path) -> Result<RunDir, RuntimeError> {
        let mut run = RunDir {
            dir: TrustedDir::open(path, Missing::Create)?,
            lock: None,
        };
        run.relock()?;
        Ok(run)
    }

    /// For clients: the existing directory, checked.
    pub fn open(path: &Path) -> Result<RunDir, RuntimeError> {
        Ok(RunDir {
            dir: TrustedDir::open(path, Missing::Fail)?,
            lock: None,
        })
    }

    /// Takes the instance lock (again, after a failed handover).
    pub fn relock(&mut self) -> Result<(), RuntimeError> {
        let file = self.dir.write_file(LOCK_FILE)?;
        let fd = OwnedFd::from(file);
        match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {
                self.lock = Some(fd);
                Ok(())
            }
            Err(_) => Err(RuntimeError::AlreadyRunning(self.dir.shown(LOCK_FILE))),
        }
    }

    /// Lets the lock go (a handover's successor takes it).
    pub fn unlock(&mut self) {
        self.lock = None;
    }

    /// Records who runs now (a successor replaces its predecessor's pid).
    pub fn write_pid(&self) -> Result<(), RuntimeError> {
        let mut f = self.dir.new_file(PID_FILE)?;
        std::io::Write::write_all(&mut f, format!("{}\n", std::process::id()).as_bytes()).map_err(
            |source| RuntimeError::Io {
                path: self.dir.shown(PID_FILE),
                source,
            },
        )
    }

    /// Removes the pid file if it still names this process.
    pub fn remove_own_pid(&self) {
        if self.names_pid(std::process::id()) {
            let _ = self.dir.remove(PID_FILE);
        }
    }

    /// Whether the pid file names `pid`.
    pub fn names_pid(&self, pid: u32) -> bool {
        self.dir
            .read_file(PID_FILE)
            .is_ok_and(|p| p.trim() == pid.to_string())
    }

    /// The control socket's path through the directory's descriptor (to
    /// bind or connect), and as shown in messages.
    pub fn socket(&self) -> (PathBuf, PathBuf) {
        (self.dir.fd_path(SOCKET), self.dir.shown(SOCKET))
    }

    pub fn remove_socket(&self) {
        let _ = self.dir.remove(SOCKET);
    }
}

/// CLOCK_MONOTONIC_COARSE as the datapath reads it (bpf_ktime_get_coarse_ns
/// ignores time namespaces): this process's clock less its time
/// namespace's offset. For showing the lease; the daemon itself reads the
/// datapath's clock exactly (see `datapath::clock`).
pub fn monotonic_coarse_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
    let own = ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128;
    (own - timens_monotonic_offset_ns()).max(0) as u64
}

/// The monotonic offset of this process's time namespace (0 outside one):
/// the "monotonic SECS NSECS" line of /proc/self/timens_offsets.
fn timens_monotonic_offset_ns() -> i128 {
    let Ok(text) = std::fs::read_to_string("/proc/self/timens_offsets") else {
        return 0;
    };
    parse_timens_offset(&text).unwrap_or(0)
}

fn parse_timens_offset(text: &str) -> Option<i128> {
    let line = text.lines().find(|l| {
        let first = l.split_whitespace().next();
        first == Some("monotonic") || first == Some("1")
    })?;
    let mut f = line.split_whitespace().skip(1);
    let secs: i128 = f.next()?.parse().ok()?;
    let nsecs: i128 = f.next()?.parse().ok()?;
    Some(secs * 1_000_000_000 + nsecs)
}

pub const DEFAULT_RUN_DIR: &str = "/run/accel";

#[cfg(test)]
mod tests {
    #[test]
    fn timens_offsets_are_read() {
        let text = "monotonic 100000 0\nboottime 0 0\n";
        assert_eq!(super::parse_timens_offset(text), Some(100_000_000_000_000));
        assert_eq!(
            super::parse_timens_offset("1 -5 250\n7 0 0\n"),
            Some(-4_999_999_750)
        );
        assert_eq!(super::parse_timens_offset(""), None);
    }
}
