//! Attaching the XDP program to interfaces through BPF links: a link lives
//! as long as accel holds its descriptor, so the program leaves every
//! interface when accel exits, however it exits.
//!
//! The one exception is a handover (SIGUSR2 to `accel run`, see
//! docs/deployment.md): the running instance pins its links in bpffs and
//! starts its successor, which adopts them ([`adopt`]) and swaps its own
//! program in atomically; the old instance keeps forwarding until then.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use libbpf_rs::query::LinkTypeInfo;
use libbpf_rs::{Link, Program};
use std::path::Path;

use super::DatapathError;
use crate::trusted_path::{c_path, TrustedDir};

const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum XdpMode {
    /// In the driver (fast; needs driver support).
    Native,
    /// In the generic network stack (works everywhere, slower).
    Generic,
}

/// The program attached to one interface; dropping it detaches.
///
/// The link is a plain descriptor, pinned and updated with libbpf's
/// fd-level calls: libbpf-rs makes a `Link` only through its own attach
/// calls (whose `attach_xdp` takes no mode flags, so `--xdp-mode` could not
/// be honoured) or from a pin ([`adopt`] uses that).
pub struct Attachment {
    pub ifindex: u32,
    pub name: String,
    _link: OwnedFd,
}

impl Attachment {
    /// Pins the link at `path`, so that it (and the program) outlives accel.
    pub fn pin(&self, path: &Path) -> std::io::Result<()> {
        let c = c_path(path);
        // SAFETY: valid link fd and C string.
        let rc = unsafe { libbpf_sys::bpf_obj_pin(self._link.as_raw_fd(), c.as_ptr()) };
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(-rc));
        }
        Ok(())
    }

    /// Puts `prog` back into this link: a handover whose successor died
    /// after swapping its own program in is undone this way.
    pub fn reclaim(&self, prog: BorrowedFd<'_>) -> std::io::Result<()> {
        let opts = libbpf_sys::bpf_link_update_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_link_update_opts>() as _,
            ..Default::default()
        };
        // SAFETY: valid link and program fds, initialised options.
        let rc =
            unsafe { libbpf_sys::bpf_link_update(self._link.as_raw_fd(), prog.as_raw_fd(), &opts) };
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(-rc));
        }
        Ok(())
    }
}

/// Waits up to `timeout` for `ifindex` to have no XDP program: a previous
/// instance whose pinned link could not be adopted detaches it when it
/// sees the pin gone.
pub async fn wait_detached(ifindex: u32, timeout: std::time::Duration) -> bool {
    let until = tokio::time::Instant::now() + timeout;
    while attached_prog_id(ifindex).is_some() {
        if tokio::time::Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    true
}

/// The XDP mode the program on `ifindex` runs in, if one is attached.
///
/// libbpf's query directly: libbpf-rs's `Xdp::query` (and `query_id` in
/// [`attached_prog_id`]) needs a program descriptor the query never uses,
/// and here there is no program, only an interface.
pub fn attached_mode(ifindex: u32) -> Option<XdpMode> {
    let mut opts = libbpf_sys::bpf_xdp_query_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_xdp_query_opts>() as _,
        ..Default::default()
    };
    // SAFETY: plain syscall wrapper filling a sized options struct.
    let rc = unsafe { libbpf_sys::bpf_xdp_query(ifindex as i32, 0, &mut opts) };
    if rc != 0 {
        return None;
    }
    match opts.attach_mode as u32 {
        m if m == libbpf_sys::XDP_ATTACHED_DRV => Some(XdpMode::Native),
        m if m == libbpf_sys::XDP_ATTACHED_SKB => Some(XdpMode::Generic),
        _ => None,
    }
}

/// Adopts the XDP link a previous instance pinned at `path` for `ifindex`
/// at a handover: swaps `prog` in (one atomic `bpf_link_update`: every
/// packet sees either the old program with its maps or the new one with
/// its maps, never a mix) and removes the pin, so that from now on the link
/// lives exactly as long as this process, as with [`attach`].
///
/// Ok(None) when there is no pin. A pin that cannot be adopted (another
/// interface, another XDP mode, update refused) is removed, which detaches
/// the old program, and the caller falls back to [`attach`]: the kernel
/// forwards alone in between, as on a plain restart.
pub fn adopt(
    prog: &Program<'_>,
    ifindex: u32,
    name: &str,
    mode: XdpMode,
    links: &TrustedDir,
) -> Result<Option<Attachment>, String> {
    if !links.contains(name) {
        return Ok(None);
    }
    let opened = if links.holds_symlink(name) {
        Err("the pin is a symbolic link".to_string())
    } else {
        Link::open(links.fd_path(name)).map_err(|e| format!("opening the pinned link failed: {e}"))
    };
    // Whatever happens next, the pin goes: adopted, the link is ours; not
    // adopted, the old program must leave (closing `link` detaches it).
    let _ = links.remove(name);
    let mut link = opened?;
    let info = link
        .info()
        .map_err(|e| format!("reading the pinned link failed: {e}"))?;
    let LinkTypeInfo::Xdp(xdp) = info.info else {
        return Err(format!("the pin is not an XDP link ({:?})", info.info));
    };
    if xdp.ifindex != ifindex {
        return Err(format!(
            "the pinned link is on ifindex {}, not {ifindex}",
            xdp.ifindex
        ));
    }
    match attached_mode(ifindex) {
        Some(m) if m == mode => {}
        other => {
            let other = other.map_or_else(|| "an unknown".to_string(), |m| format!("{m:?}"));
            return Err(format!(
                "the pinned link runs in {other} mode, this instance wants {mode:?}"
            ));
        }
    }
    link.update_prog(prog)
        .map_err(|e| format!("swapping the program in failed: {e}"))?;
    // Held as a plain descriptor like the links `attach` creates. Dropping
    // the libbpf object closes its own descriptor only: a link opened from
    // a pin has nothing else to detach, and ours keeps the link alive.
    let fd = link
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| format!("keeping the adopted link failed: {e}"))?;
    Ok(Some(Attachment {
        ifindex,
        name: name.to_string(),
        _link: fd,
    }))
}

/// Id of the XDP program on an interface, if any.
pub fn attached_prog_id(ifindex: u32) -> Option<u32> {
    let mut id = 0u32;
    // SAFETY: plain syscall wrapper writing one u32.
    let rc = unsafe { libbpf_sys::bpf_xdp_query_id(ifindex as i32, 0, &mut id) };
    (rc == 0 && id != 0).then_some(id)
}

pub fn attach(
    prog: BorrowedFd<'_>,
    ifindex: u32,
    name: &str,
    mode: XdpMode,
) -> Result<Attachment, DatapathError> {
    let fail = |msg: String| DatapathError::Attach {
        iface: name.to_string(),
        msg,
    };
    if let Some(id) = attached_prog_id(ifindex) {
        return Err(fail(format!(
            "already has an XDP program (id {id}); is another accel running on it? \
             (`accel stats` shows a running instance; `bpftool net` lists programs)"
        )));
    }
    let opts = libbpf_sys::bpf_link_create_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_link_create_opts>() as _,
        flags: match mode {
            XdpMode::Native => XDP_FLAGS_DRV_MODE,
            XdpMode::Generic => XDP_FLAGS_SKB_MODE,
        },
        ..Default::default()
    };
    // SAFETY: valid program fd and a fully initialised options struct.
    let fd = unsafe {
        libbpf_sys::bpf_link_create(prog.as_raw_fd(), ifindex as i32, libbpf_sys::BPF_XDP, &opts)
    };
    if fd < 0 {
        let err = std::io::Error::from_raw_os_error(-fd);
        return Err(fail(match (-fd, mode) {
            (libc::EOPNOTSUPP, XdpMode::Native) => {
                "its driver does not support native XDP; run with --xdp-mode generic".into()
            }
            (libc::EBUSY | libc::EEXIST, _) => {
                format!("an XDP program is already attached ({err})")
            }
            _ => format!("attaching XDP failed: {err}"),
        }));
    }
    // SAFETY: bpf_link_create returned a new descriptor that we now own.
    let link = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok(Attachment {
        ifindex,
        name: name.to_string(),
        _link: link,
    })
}
