//! Upgrading in place without a moment of kernel-speed forwarding.
//!
//! On SIGUSR2 the running instance pins its XDP links, gives up its map
//! pins, control socket and instance lock, and starts its successor: the
//! same binary path (an upgrade replaced the file) with the same arguments,
//! told which device each interface name stands for ([`devices`]).
//! It keeps maintaining its mirror and renewing its lease meanwhile, so XDP
//! forwards from an up-to-date mirror throughout. The successor builds its
//! own maps with a full resync, swaps its program into each pinned link
//! (atomic per interface) and removes the pin; once every pin is gone the
//! old instance exits without detaching anything. Should the successor exit
//! before that, the old instance takes everything back and carries on.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub mod devices;

use crate::datapath::attach::Attachment;
use crate::trusted_path::{trusted_executable, PathError, TrustedDir};

/// Set in the successor's environment: the pid of the instance it replaces.
pub const FROM_ENV: &str = "ACCEL_HANDOVER_FROM";

#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    #[error("pinning the link at {path}")]
    Pin {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("finding this binary's path")]
    OwnPath(#[source] std::io::Error),
    #[error("will not execute the successor")]
    Untrusted(#[source] PathError),
    #[error("starting the successor {exe}")]
    Spawn {
        exe: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// How long a successor may take to take over before it is stopped and
/// this instance carries on: a full table's resync takes seconds, so a
/// successor still at it after this is stuck (stopped by a signal, waiting
/// on something that will not come), and would otherwise leave this
/// instance without a control socket, and every later upgrade in place
/// refused, for good.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(600);
/// Overrides [`DEFAULT_DEADLINE`], in seconds (tests: a few).
pub const DEADLINE_ENV: &str = "ACCEL_HANDOVER_DEADLINE";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{DEADLINE_ENV}: {0:?} is not a number of seconds from 1 up")]
pub struct DeadlineError(String);

/// [`DEADLINE_ENV`]'s deadline, or the default.
pub fn deadline_from_env() -> Result<Duration, DeadlineError> {
    match std::env::var(DEADLINE_ENV) {
        Ok(v) => parse_deadline(&v),
        Err(_) => Ok(DEFAULT_DEADLINE),
    }
}

fn parse_deadline(v: &str) -> Result<Duration, DeadlineError> {
    crate::parse_positive(v)
        .map(Duration::from_secs)
        .ok_or_else(|| DeadlineError(v.to_string()))
}

/// A handover in progress.
pub struct Handover {
    successor: Child,
    links: TrustedDir,
    pins: Vec<String>,
    /// When the successor is stopped if it has neither taken over nor
    /// exited.
    deadline: Instant,
}

/// What a look at a handover in progress found.
pub enum Progress {
    Waiting,
    /// Every link pin is gone: the successor adopted them (or, refusing,
    /// waits for this instance to detach). Time to exit.
    TakenOver,
    /// The successor exited before taking over.
    SuccessorFailed(ExitStatus),
}

/// Pins every link in `links`, one pin per interface name (removing what
/// it pinned if one fails).
pub fn pin_links(
    attached: &[Attachment],
    links: &TrustedDir,
) -> Result<Vec<String>, HandoverError> {
    let mut pins = Vec::new();
    // A released attachment (its device left the namespace) has no link:
    // the successor attaches to whatever has that name then.
    for a in attached.iter().filter(|a| !a.is_released()) {
        let _ = links.remove(&a.name);
        if let Err(source) = a.pin(&links.fd_path(&a.name)) {
            remove_pins(links, &pins);
            return Err(HandoverError::Pin {
                path: links.shown(&a.name),
                source,
            });
        }
        pins.push(a.name.clone());
    }
    Ok(pins)
}

pub fn remove_pins(links: &TrustedDir, pins: &[String]) {
    for p in pins {
        let _ = links.remove(p);
    }
}

/// The binary to start: this one's path. After a package upgrade replaced
/// the file, /proc/self/exe names the old, deleted inode; the path is what
/// counts.
pub fn own_path() -> std::io::Result<PathBuf> {
    Ok(without_deleted(std::env::current_exe()?))
}

fn without_deleted(exe: PathBuf) -> PathBuf {
    let mut bytes = exe.into_os_string().into_vec();
    const DELETED: &[u8] = b" (deleted)";
    if bytes.ends_with(DELETED) {
        bytes.truncate(bytes.len() - DELETED.len());
    }
    PathBuf::from(OsString::from_vec(bytes))
}

/// The successor's binary, checked: it and every directory above it owned
/// by root and writable by nobody else. Held open, so that what runs is
/// the file that was checked.
pub fn checked_successor() -> Result<(PathBuf, OwnedFd), HandoverError> {
    let exe = own_path().map_err(HandoverError::OwnPath)?;
    let fd = trusted_executable(&exe).map_err(HandoverError::Untrusted)?;
    Ok((exe, fd))
}

/// In a successor, names the process (its `comm`) after its binary again.
/// Executed through `/proc/self/fd/N`, the kernel named it "N"
/// (`begin_new_exec` takes the name from the path executed, not from
/// argv[0]), and `ps`, `pgrep accel` and process monitors would lose accel
/// after its first upgrade. Call on the main thread before any other
/// starts: threads take their creator's name.
pub fn name_after_binary() {
    if std::env::var_os(FROM_ENV).is_none() {
        return;
    }
    let Some(arg0) = std::env::args_os().next() else {
        return;
    };
    let Some(base) = Path::new(&arg0).file_name() else {
        return;
    };
    // TASK_COMM_LEN: 15 bytes and the NUL.
    let mut bytes = base.to_os_string().into_vec();
    bytes.truncate(15);
    if let Ok(name) = std::ffi::CString::new(bytes) {
        if let Err(e) = rustix::thread::set_name(&name) {
            log::debug!("naming the process {name:?}: {e}");
        }
    }
}

impl Handover {
    /// Starts the successor `exe` (checked, open as `file`: see
    /// [`checked_successor`]); `pins` are the links in `links` it is to
    /// adopt; `env` is set in its environment besides [`FROM_ENV`]; it
    /// has `deadline` to take over.
    pub fn start(
        (exe, file): (PathBuf, OwnedFd),
        links: TrustedDir,
        pins: Vec<String>,
        env: &[(&str, String)],
        deadline: Duration,
    ) -> Result<Handover, HandoverError> {
        // Executed through the descriptor of the checked file (fexecve),
        // under its own name.
        let successor = Command::new(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .arg0(&exe)
            .args(std::env::args_os().skip(1))
            .env(FROM_ENV, std::process::id().to_string())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .spawn()
            .map_err(|source| HandoverError::Spawn { exe, source })?;
        Ok(Handover {
            successor,
            links,
            pins,
            deadline: Instant::now() + deadline,
        })
    }

    pub fn successor_pid(&self) -> u32 {
        self.successor.id()
    }

    /// Removes the link pins (the successor will not take them).
    pub fn remove_pins(&self) {
        remove_pins(&self.links, &self.pins);
    }

    /// Whether the successor took over; `published(pid)`: whether the run
    /// directory names `pid` as the instance (written once it is attached,
    /// Presence::publish).
    pub fn progress(&mut self, published: impl Fn(u32) -> bool) -> Progress {
        let adopted = self.pins.iter().all(|p| !self.links.contains(p));
        // With no link to adopt (every interface's device left and was let
        // go), adopting shows nothing: the successor's publishing does.
        if adopted && (!self.pins.is_empty() || published(self.successor.id())) {
            return Progress::TakenOver;
        }
        match self.successor.try_wait() {
            Ok(Some(status)) => Progress::SuccessorFailed(status),
            _ if Instant::now() >= self.deadline => {
                log::warn!(
                    "handover: the successor (pid {}) has neither taken over nor exited in \
                     time ({DEADLINE_ENV}): stopping it",
                    self.successor.id()
                );
                // SIGKILL: a successor stopped or stuck would not act on
                // SIGTERM, and the event loop waits for its exit.
                let _ = self.successor.kill();
                match self.successor.wait() {
                    Ok(status) => Progress::SuccessorFailed(status),
                    Err(_) => Progress::Waiting,
                }
            }
            _ => Progress::Waiting,
        }
    }

    /// Stops the successor (this instance is being stopped meanwhile).
    pub fn abort(mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.successor.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let _ = self.successor.wait();
        self.remove_pins();
    }
}

/// Tells systemd (Type=notify) about this instance, if it is listening:
/// READY=1 once forwarding, and for a successor its own pid as the
/// service's main pid (the unit needs NotifyAccess=all for that).
pub fn notify_systemd(successor: bool) {
    notify(&ready_message(successor, std::process::id()));
}

/// `msg` to systemd, if it is listening ($NOTIFY_SOCKET).
fn notify(msg: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = sd_notify(&path, msg) {
        log::warn!("sd_notify: {e}");
    }
}

/// The old instance, once its successor has taken every link and before
/// it exits: the successor is the service's main process now. It says so
/// itself once published, later; were the old one's exit seen first,
/// systemd would take the service for stopped and kill the successor with
/// the rest of the unit (KillMode=mixed). systemd reads notifications
/// before the SIGCHLD of the same moment (EVENT_PRIORITY_NOTIFY).
pub fn hand_main_pid_to(successor: u32) {
    notify(&main_pid_message(successor));
}

fn main_pid_message(pid: u32) -> String {
    format!("MAINPID={pid}\n")
}

fn ready_message(successor: bool, pid: u32) -> String {
    if successor {
        format!("MAINPID={pid}\nREADY=1\n")
    } else {
        "READY=1\n".to_string()
    }
}

/// One datagram to $NOTIFY_SOCKET: a path, or an abstract name written
/// with a leading '@'.
fn sd_notify(socket: &std::ffi::OsStr, msg: &str) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};

    let bytes = socket.as_bytes();
    let addr = match bytes.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)?,
        None => SocketAddr::from_pathname(Path::new(socket))?,
    };
    UnixDatagram::unbound()?.send_to_addr(msg.as_bytes(), &addr)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_from_the_environment_is_whole_seconds() {
        assert_eq!(parse_deadline(" 3 "), Ok(Duration::from_secs(3)));
        for bad in ["0", "-1", "1.5", "soon", ""] {
            assert_eq!(parse_deadline(bad), Err(DeadlineError(bad.to_string())));
        }
    }

    #[test]
    fn a_successor_announces_itself_as_main_pid() {
        assert_eq!(ready_message(false, 7), "READY=1\n");
        assert_eq!(ready_message(true, 7), "MAINPID=7\nREADY=1\n");
        // What the old instance says of its successor before it exits.
        assert_eq!(main_pid_message(8), "MAINPID=8\n");
    }

    #[test]
    fn sd_notify_reaches_path_and_abstract_sockets() {
        let dir = std::env::temp_dir().join(format!("accel-notify-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("notify");
        let _ = std::fs::remove_file(&path);
        let rx = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        sd_notify(path.as_os_str(), "READY=1\n").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\n");
        let _ = std::fs::remove_dir_all(&dir);

        use std::os::linux::net::SocketAddrExt;
        let name = format!("accel-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = std::os::unix::net::UnixDatagram::bind_addr(&addr).unwrap();
        sd_notify(std::ffi::OsStr::new(&format!("@{name}")), "MAINPID=1\n").unwrap();
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"MAINPID=1\n");
    }

    #[test]
    fn the_successor_is_started_from_the_path_not_the_deleted_inode() {
        // /proc/self/exe of a binary an upgrade replaced.
        let replaced = PathBuf::from("/usr/local/sbin/accel (deleted)");
        assert_eq!(
            without_deleted(replaced),
            PathBuf::from("/usr/local/sbin/accel")
        );
        let current = PathBuf::from("/usr/local/sbin/accel");
        assert_eq!(without_deleted(current.clone()), current);
    }
}
