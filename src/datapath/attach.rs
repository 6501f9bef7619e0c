//! Attaching the XDP program to interfaces through BPF links: a link lives
//! as long as accel holds its descriptor, so the program leaves every
//! interface when accel exits, however it exits.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::DatapathError;

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
pub struct Attachment {
    pub ifindex: u32,
    pub name: String,
    _link: OwnedFd,
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
