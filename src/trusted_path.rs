//! Paths that a root daemon may trust: every directory from `/` down owned
//! by root (or by the user accel runs as) and writable by nobody else, and
//! walked one component at a time without following symbolic links.
//!
//! accel runs as root. A directory that another local user owns or can
//! write would let that user swap its contents (pins, sockets, pid files,
//! the binary an upgrade executes) or plant a symlink that turns accel's
//! writes and deletions against files elsewhere. So every directory accel
//! creates, writes, deletes in or executes from is opened through
//! [`TrustedDir`], and everything inside it is reached relative to that
//! descriptor (`openat`/`unlinkat` with `O_NOFOLLOW`), never by a path that
//! could be re-resolved.
//!
//! Sticky directories (`/tmp`, a bpffs mounted with its default mode 1777)
//! are accepted on the way but never as the directory itself: others cannot
//! rename or remove what they do not own in them, and the next component
//! must itself be trusted.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, CWD};
use rustix::io::Errno;

#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("refusing {path}: {why}")]
    Untrusted { path: PathBuf, why: String },
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl PathError {
    fn io(path: &Path, e: Errno) -> Self {
        PathError::Io {
            path: path.to_path_buf(),
            source: e.into(),
        }
    }

    fn untrusted(path: &Path, why: impl Into<String>) -> Self {
        PathError::Untrusted {
            path: path.to_path_buf(),
            why: why.into(),
        }
    }
}

/// Whether a directory missing on the way is created (mode 0700).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    Create,
    Fail,
}

/// A directory checked from `/` down, held open: what is done inside it is
/// done relative to this descriptor.
pub struct TrustedDir {
    fd: OwnedFd,
    path: PathBuf,
}

const DIR_FLAGS: OFlags = OFlags::PATH
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Who may own what accel trusts: root, and the user accel runs as (a
/// service user given capabilities instead of root).
fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == rustix::process::geteuid().as_raw()
}

/// Why `st` may not be trusted as a directory (or file) at `path`; `None`
/// when it can. `on_the_way`: a component above the one accel uses.
fn distrust(st: &rustix::fs::Stat, on_the_way: bool) -> Option<String> {
    let mode = st.st_mode;
    if !trusted_owner(st.st_uid) {
        return Some(format!(
            "owned by uid {} (must be root's{})",
            st.st_uid,
            if rustix::process::geteuid().is_root() {
                ""
            } else {
                " or accel's own user's"
            }
        ));
    }
    let sticky = mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !(on_the_way && sticky) {
        return Some(format!(
            "writable by group or others (mode {:o}); it must be writable by its owner only",
            mode & 0o7777
        ));
    }
    None
}

/// Names a component for messages: the path walked so far.
fn shown(done: &Path) -> PathBuf {
    if done.as_os_str().is_empty() {
        PathBuf::from("/")
    } else {
        done.to_path_buf()
    }
}

impl TrustedDir {
    /// Opens the directory `path` (absolute, without `..`), checking every
    /// component; with [`Missing::Create`], creates what is missing with
    /// mode 0700.
    pub fn open(path: &Path, missing: Missing) -> Result<TrustedDir, PathError> {
        if !path.is_absolute() {
            return Err(PathError::untrusted(path, "not an absolute path"));
        }
        let names: Vec<&OsStr> = path
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(Ok(n)),
                Component::ParentDir => Some(Err(())),
                _ => None,
            })
            .collect::<Result<_, _>>()
            .map_err(|()| PathError::untrusted(path, "contains `..`"))?;
        let root = rustix::fs::openat(CWD, "/", DIR_FLAGS, Mode::empty())
            .map_err(|e| PathError::io(Path::new("/"), e))?;
        let mut dir = TrustedDir {
            fd: root,
            path: PathBuf::from("/"),
        };
        dir.check(names.is_empty())?;
        for (i, name) in names.iter().enumerate() {
            dir = dir.child(name, missing, i + 1 == names.len())?;
        }
        Ok(dir)
    }

    /// The subdirectory `name`, checked the same way.
    pub fn subdir(&self, name: &str, missing: Missing) -> Result<TrustedDir, PathError> {
        self.child(OsStr::new(name), missing, true)
    }

    fn child(&self, name: &OsStr, missing: Missing, last: bool) -> Result<TrustedDir, PathError> {
        let path = self.path.join(name);
        let fd = match rustix::fs::openat(&self.fd, name, DIR_FLAGS, Mode::empty()) {
            Err(Errno::NOENT) if missing == Missing::Create => {
                match rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(PathError::io(&path, e)),
                }
                rustix::fs::openat(&self.fd, name, DIR_FLAGS, Mode::empty())
            }
            other => other,
        };
        let fd = fd.map_err(|e| match e {
            Errno::NOTDIR | Errno::LOOP if self.is_symlink(name) => {
                PathError::untrusted(&path, "it is a symbolic link")
            }
            e => PathError::io(&path, e),
        })?;
        let dir = TrustedDir { fd, path };
        dir.check(last)?;
        Ok(dir)
    }

    fn is_symlink(&self, name: impl rustix::path::Arg) -> bool {
        rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
    }

    fn check(&self, last: bool) -> Result<(), PathError> {
        let st = rustix::fs::fstat(&self.fd).map_err(|e| PathError::io(&self.path, e))?;
        match distrust(&st, !last) {
            Some(why) => Err(PathError::untrusted(&shown(&self.path), why)),
            None => Ok(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` in this directory through the descriptor
    /// (`/proc/self/fd/N/name`), for interfaces that only take paths (BPF
    /// pins, socket binds): resolving it cannot leave this directory.
    pub fn fd_path(&self, name: &str) -> PathBuf {
        use std::os::fd::AsRawFd;
        PathBuf::from(format!("/proc/self/fd/{}/{name}", self.fd.as_raw_fd()))
    }

    /// `name` for messages.
    pub fn shown(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Creates `name` afresh (mode 0600, O_EXCL), replacing whatever was
    /// there, a symlink included, without following it.
    pub fn new_file(&self, name: &str) -> Result<std::fs::File, PathError> {
        self.remove(name)?;
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, name, flags, Mode::from_raw_mode(0o600))
            .map_err(|e| PathError::io(&self.shown(name), e))?;
        Ok(std::fs::File::from(fd))
    }

    /// Opens `name` for writing, created with mode 0600 (and truncated);
    /// never through a symlink.
    pub fn write_file(&self, name: &str) -> Result<std::fs::File, PathError> {
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, name, flags, Mode::from_raw_mode(0o600))
            .map_err(|e| PathError::io(&self.shown(name), e))?;
        // Created earlier by someone else with a wider mode: narrow it.
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o600))
            .map_err(|e| PathError::io(&self.shown(name), e))?;
        Ok(std::fs::File::from(fd))
    }

    /// Reads `name` (a regular file, never through a symlink).
    pub fn read_file(&self, name: &str) -> Result<String, PathError> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, name, flags, Mode::empty())
            .map_err(|e| PathError::io(&self.shown(name), e))?;
        std::io::read_to_string(std::fs::File::from(fd)).map_err(|source| PathError::Io {
            path: self.shown(name),
            source,
        })
    }

    /// Removes the entry `name` (a symlink itself, never its target);
    /// absent is fine.
    pub fn remove(&self, name: &str) -> Result<(), PathError> {
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(PathError::io(&self.shown(name), e)),
        }
    }

    /// Removes the empty subdirectory `name`; false if it is not empty.
    pub fn remove_dir(&self, name: &str) -> bool {
        rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR).is_ok()
    }

    /// Whether `name` exists (without following a symlink).
    pub fn contains(&self, name: &str) -> bool {
        rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW).is_ok()
    }

    /// Whether `name` is a symlink (which accel never follows).
    pub fn holds_symlink(&self, name: &str) -> bool {
        self.is_symlink(name)
    }

    /// The names in this directory.
    pub fn names(&self) -> Result<Vec<String>, PathError> {
        let io = |e| PathError::io(&self.path, e);
        let fd = rustix::fs::openat(
            &self.fd,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io)?;
        let mut names = Vec::new();
        for entry in rustix::fs::Dir::new(fd).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(String::from_utf8_lossy(name).into_owned());
            }
        }
        Ok(names)
    }

    /// A descriptor that can hold an flock(2) (O_PATH ones cannot).
    pub fn lockable(&self) -> Result<OwnedFd, PathError> {
        rustix::fs::openat(
            &self.fd,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| PathError::io(&self.path, e))
    }

    /// The filesystem type (statfs f_type) of this directory.
    pub fn fs_type(&self) -> Result<i64, PathError> {
        rustix::fs::fstatfs(&self.fd)
            .map(|s| s.f_type)
            .map_err(|e| PathError::io(&self.path, e))
    }
}

impl AsFd for TrustedDir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Checks that the file at `path` and every directory above it can be
/// trusted to hold code root executes: owned by root (or accel's user),
/// writable by nobody else, no symlink anywhere. Returns the file opened
/// (O_PATH), so that what runs is what was checked.
pub fn trusted_executable(path: &Path) -> Result<OwnedFd, PathError> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(PathError::untrusted(path, "not a file path"));
    };
    let dir = TrustedDir::open(parent, Missing::Fail)?;
    let fd = rustix::fs::openat(
        &dir.fd,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| PathError::io(path, e))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| PathError::io(path, e))?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => {}
        FileType::Symlink => return Err(PathError::untrusted(path, "it is a symbolic link")),
        _ => return Err(PathError::untrusted(path, "not a regular file")),
    }
    if let Some(why) = distrust(&st, false) {
        return Err(PathError::untrusted(path, why));
    }
    Ok(fd)
}

/// Runs the first of `candidates` (absolute paths, never a $PATH lookup)
/// that exists, if [`trusted_executable`] accepts the file it resolves
/// to: through the checked
/// descriptor, with an empty environment. `Ok(None)` when none exists;
/// `Err` says why the one found was not run.
pub fn run_trusted(
    candidates: &[&str],
    args: &[&str],
) -> Result<Option<std::process::Output>, String> {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;

    let Some(path) = candidates.iter().map(Path::new).find(|p| p.exists()) else {
        return Ok(None);
    };
    // Distribution symlinks (/usr/sbin/ip -> /bin/ip, merged /usr) are
    // resolved first; what is checked and run is the file they lead to.
    let real = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file = trusted_executable(&real).map_err(|e| match std::error::Error::source(&e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    })?;
    std::process::Command::new(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .arg0(path)
        .args(args)
        .env_clear()
        .output()
        .map(Some)
        .map_err(|e| format!("running {}: {e}", path.display()))
}

/// The bytes of a path, for C interfaces.
pub fn c_path(p: &Path) -> std::ffi::CString {
    std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    /// A scratch directory of the test's own user, mode 0700, removed
    /// when the test ends.
    struct Scratch(PathBuf);

    impl std::ops::Deref for Scratch {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            // Modes a test took away come back first, so that all goes.
            let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o700));
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn scratch(tag: &str) -> Scratch {
        let base = std::env::temp_dir().join(format!("accel-trusted-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o700)).unwrap();
        Scratch(base)
    }

    fn trusted_base() -> Option<Scratch> {
        // Every directory above must pass the check for the tests to mean
        // anything; skip (saying so) where the checkout lives under a
        // group-writable directory.
        let base = scratch(&format!("{:?}", std::thread::current().id()));
        match TrustedDir::open(&base, Missing::Fail) {
            Ok(_) => Some(base),
            Err(e) => {
                eprintln!("skipped: the test directory itself is not trusted here ({e})");
                None
            }
        }
    }

    #[test]
    fn creates_missing_directories_0700() {
        let Some(base) = trusted_base() else { return };
        let p = base.join("a/b");
        let d = TrustedDir::open(&p, Missing::Create).unwrap();
        assert_eq!(d.path(), p);
        for q in [base.join("a"), p.clone()] {
            let mode = std::fs::metadata(&q).unwrap().permissions().mode() & 0o7777;
            assert_eq!(mode, 0o700, "{}", q.display());
        }
        assert!(TrustedDir::open(&base.join("missing"), Missing::Fail).is_err());
    }

    #[test]
    fn refuses_a_symlinked_component() {
        let Some(base) = trusted_base() else { return };
        std::fs::create_dir(base.join("real")).unwrap();
        symlink(base.join("real"), base.join("link")).unwrap();
        let e = TrustedDir::open(&base.join("link/x"), Missing::Create)
            .err()
            .expect("a symlink on the way is refused");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(!base.join("real/x").exists(), "nothing created through it");
    }

    #[test]
    fn refuses_a_directory_writable_by_others() {
        let Some(base) = trusted_base() else { return };
        let d = base.join("open");
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = TrustedDir::open(&d, Missing::Fail).err().expect("refused");
        assert!(e.to_string().contains("writable by group or others"), "{e}");
        // Also on the way, unless sticky.
        assert!(TrustedDir::open(&d.join("x"), Missing::Create).is_err());
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(TrustedDir::open(&d.join("x"), Missing::Create).is_ok());
        assert!(
            TrustedDir::open(&d, Missing::Fail).is_err(),
            "sticky is not enough for the dir itself"
        );
    }

    #[test]
    fn files_are_never_opened_through_symlinks() {
        let Some(base) = trusted_base() else { return };
        let d = TrustedDir::open(&base.join("run"), Missing::Create).unwrap();
        std::fs::write(base.join("victim"), "keep").unwrap();
        symlink(base.join("victim"), base.join("run/accel.pid")).unwrap();
        assert!(d.holds_symlink("accel.pid"));
        assert!(d.write_file("accel.pid").is_err());
        assert_eq!(
            std::fs::read_to_string(base.join("victim")).unwrap(),
            "keep"
        );
        d.remove("accel.pid").unwrap();
        assert!(
            base.join("victim").exists(),
            "the link went, not its target"
        );
        let mut f = d.write_file("accel.pid").unwrap();
        std::io::Write::write_all(&mut f, b"1\n").unwrap();
        let mode = std::fs::metadata(base.join("run/accel.pid"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(d.read_file("accel.pid").unwrap(), "1\n");
        assert_eq!(d.names().unwrap(), vec!["accel.pid".to_string()]);
    }

    #[test]
    fn only_trusted_commands_run_and_never_from_path() {
        let Some(base) = trusted_base() else { return };
        // Through a symlink, as /usr/sbin/ip -> /bin/ip on Debian.
        symlink("/usr/bin/env", base.join("env-link")).unwrap();
        let link = base.join("env-link");
        let out = run_trusted(&["/nonexistent/x", link.to_str().unwrap()], &[])
            .unwrap()
            .expect("found");
        assert!(out.status.success());
        assert!(out.stdout.is_empty(), "run with an empty environment");
        assert!(run_trusted(&["/nonexistent/x"], &[]).unwrap().is_none());
        let open = base.join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::copy("/usr/bin/env", open.join("env")).unwrap();
        let planted = open.join("env");
        assert!(run_trusted(&[planted.to_str().unwrap()], &[]).is_err());
    }

    #[test]
    fn executables_must_be_owned_and_unwritable_by_others() {
        let Some(base) = trusted_base() else { return };
        let exe = base.join("accel");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(trusted_executable(&exe).is_ok());
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o775)).unwrap();
        assert!(trusted_executable(&exe).is_err());
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        symlink(&exe, base.join("alias")).unwrap();
        assert!(trusted_executable(&base.join("alias")).is_err());
    }
}
