//! The CLI's side of an upgrade in place (`accel upgrade`): after the
//! running instance has started its successor ([`Reply::Upgrading`]),
//! follows the two processes until one of them is the instance.
//!
//! The handover itself is the daemon's ([`crate::handover`]): the old
//! instance exits (status 0) once its successor has adopted every link,
//! and takes everything back if the successor exits first. So the client
//! needs no more than which of the two still runs, and then a status from
//! whoever serves the control socket.
//!
//! [`Reply::Upgrading`]: crate::control::Reply::Upgrading

use std::path::Path;
use std::time::{Duration, Instant};

use crate::control::{self, Reply, Request};
use crate::runtime::RunDir;

/// How often the two processes are looked at.
const POLL: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error(
        "the successor (pid {successor}) exited before taking over; accel (pid {pid}) carries \
         on with the binary it was started from (its log says why)"
    )]
    SuccessorFailed { pid: u32, successor: u32 },
    #[error(
        "accel (pid {pid}) and its successor (pid {successor}) have both exited: the kernel \
         forwards alone"
    )]
    BothGone { pid: u32, successor: u32 },
    #[error(
        "no outcome in time: {}",
        match seen {
            Seen::Both => format!("accel (pid {pid}) is still handing over to its successor (pid {successor})"),
            Seen::Successor => format!("accel (pid {pid}) exited, but its successor (pid {successor}) does not answer yet"),
            Seen::Old => format!("the successor (pid {successor}) exited, and accel (pid {pid}) does not answer yet"),
            Seen::Neither => "neither runs".to_string(),
        }
    )]
    Timeout {
        pid: u32,
        successor: u32,
        seen: Seen,
    },
}

impl UpgradeError {
    /// `accel upgrade`'s exit status: 1 when the instance carries on with
    /// its old binary, 2 when what runs now is not known or nothing does.
    pub fn exit_code(&self) -> i32 {
        match self {
            UpgradeError::SuccessorFailed { .. } => 1,
            UpgradeError::BothGone { .. } | UpgradeError::Timeout { .. } => 2,
        }
    }
}

/// Who runs at a moment of the handover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Both: the successor is still building its mirror.
    Both,
    /// Only the successor: the old instance handed over and exited.
    Successor,
    /// Only the old instance: the successor failed, and it carries on.
    Old,
    Neither,
}

impl Seen {
    pub fn of(old_runs: bool, successor_runs: bool) -> Seen {
        match (old_runs, successor_runs) {
            (true, true) => Seen::Both,
            (false, true) => Seen::Successor,
            (true, false) => Seen::Old,
            (false, false) => Seen::Neither,
        }
    }
}

/// Whether `pid` is a process that has not exited. A zombie has: the old
/// instance, a child of whoever started it, stays one until reaped.
pub fn runs(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| runs_by_stat(&s))
}

/// From a `/proc/PID/stat` line: the state follows the command name in
/// parentheses, which may itself hold spaces and parentheses.
fn runs_by_stat(stat: &str) -> bool {
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].trim_start().chars().next());
    !matches!(state, None | Some('Z' | 'X' | 'x'))
}

/// Follows the handover from `pid` to `successor` until `deadline`: the
/// new instance's status once the old one has exited and the new one
/// answers on the control socket in `run_dir` and is named by its pid
/// file. Failed once the successor has exited and the old instance answers
/// again, named by the pid file (it took its socket back).
pub fn follow(
    run_dir: &Path,
    pid: u32,
    successor: u32,
    deadline: Instant,
) -> Result<Box<crate::status::Status>, UpgradeError> {
    loop {
        // The successor first: it exits before its parent can notice.
        let successor_runs = runs(successor);
        let seen = Seen::of(runs(pid), successor_runs);
        match seen {
            Seen::Both => {}
            Seen::Neither => return Err(UpgradeError::BothGone { pid, successor }),
            Seen::Successor => {
                if let Some(status) = status_of(run_dir, successor) {
                    return Ok(status);
                }
            }
            Seen::Old => {
                if status_of(run_dir, pid).is_some() {
                    return Err(UpgradeError::SuccessorFailed { pid, successor });
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(UpgradeError::Timeout {
                pid,
                successor,
                seen,
            });
        }
        std::thread::sleep(POLL);
    }
}

/// The status of the instance serving the control socket in `run_dir`,
/// if the run directory names `pid` as the instance.
fn status_of(run_dir: &Path, pid: u32) -> Option<Box<crate::status::Status>> {
    let run = RunDir::open(run_dir).ok()?;
    if !run.names_pid(pid) {
        return None;
    }
    let (socket, shown) = run.socket();
    match control::ask(&socket, &shown, Request::Status, Duration::from_secs(2)) {
        Ok(Reply::Status { status }) if run.names_pid(pid) => Some(status),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zombie_has_exited() {
        assert!(runs_by_stat("42 (accel) S 1 42 42 0 -1"));
        assert!(runs_by_stat("42 (accel) R 1"));
        assert!(!runs_by_stat("42 (accel) Z 1 42"));
        assert!(!runs_by_stat("42 (accel) X 1"));
        // A name holding ") Z" does not fool it.
        assert!(runs_by_stat("42 (a) Z (b) S 1"));
        assert!(!runs_by_stat(""));
    }

    #[test]
    fn this_process_runs_and_a_reaped_child_does_not() {
        assert!(runs(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!runs(pid));
    }

    #[test]
    fn who_runs_says_the_outcome() {
        assert_eq!(Seen::of(true, true), Seen::Both);
        assert_eq!(Seen::of(false, true), Seen::Successor);
        assert_eq!(Seen::of(true, false), Seen::Old);
        assert_eq!(Seen::of(false, false), Seen::Neither);
    }

    fn exited_child() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        child.wait().unwrap();
        child.id()
    }

    #[test]
    fn a_failed_successor_is_said_only_once_the_old_instance_answers() {
        // Nothing answers in a missing run directory: the outcome is not
        // known, and the error says which process is missing.
        let me = std::process::id();
        let gone = exited_child();
        let deadline = Instant::now() + Duration::from_millis(200);
        let e = follow(Path::new("/nonexistent"), me, gone, deadline).unwrap_err();
        assert!(
            matches!(
                e,
                UpgradeError::Timeout {
                    seen: Seen::Old,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(e.exit_code(), 2);
        assert!(e
            .to_string()
            .contains(&format!("the successor (pid {gone}) exited")));
    }

    #[test]
    fn neither_running_is_said_at_once() {
        let (a, b) = (exited_child(), exited_child());
        let started = Instant::now();
        let deadline = started + Duration::from_secs(5);
        let e = follow(Path::new("/nonexistent"), a, b, deadline).unwrap_err();
        assert!(matches!(e, UpgradeError::BothGone { .. }), "{e}");
        assert_eq!(e.exit_code(), 2);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
