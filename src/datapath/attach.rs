//! Attaching the datapath to interfaces through BPF links, the XDP program
//! or the TC one ([`Hook`]): a link lives as long as accel holds its
//! descriptor, so the program leaves every interface when accel exits,
//! however it exits.
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

/// Where accel's program runs on an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Xdp(XdpMode),
    /// TC ingress, through a tcx link.
    Tc,
    /// TC ingress, through a cls_bpf filter (kernels without tcx).
    TcFilter,
}

impl Hook {
    /// "xdp" or "tc", as the status and the metrics name it.
    pub fn kind(self) -> &'static str {
        match self {
            Hook::Xdp(_) => "xdp",
            Hook::Tc | Hook::TcFilter => "tc",
        }
    }

    /// "native", "generic", or "none" for TC.
    pub fn xdp_mode(self) -> &'static str {
        match self {
            Hook::Xdp(XdpMode::Native) => "native",
            Hook::Xdp(XdpMode::Generic) => "generic",
            Hook::Tc | Hook::TcFilter => "none",
        }
    }
}

impl std::fmt::Display for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hook::Xdp(XdpMode::Native) => f.write_str("native XDP"),
            Hook::Xdp(XdpMode::Generic) => f.write_str("generic XDP"),
            Hook::Tc => f.write_str("TC ingress (tcx)"),
            Hook::TcFilter => f.write_str("TC ingress (cls_bpf)"),
        }
    }
}

/// Which hook the operator asked for, for all interfaces (`--hook`) or one
/// (`-i IF:xdp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HookChoice {
    /// Native XDP where the driver supports it, TC otherwise.
    Auto,
    /// XDP (in --xdp-mode).
    Xdp,
    /// TC ingress.
    Tc,
}

impl HookChoice {
    /// Whether an attachment through `hook` is what this choice asks for
    /// (a handover adopts only such links).
    pub fn admits(self, hook: Hook, xdp_mode: XdpMode) -> bool {
        match (self, hook) {
            (HookChoice::Auto, Hook::Xdp(m)) => m == xdp_mode,
            (HookChoice::Auto | HookChoice::Tc, Hook::Tc | Hook::TcFilter) => true,
            (HookChoice::Xdp, Hook::Xdp(m)) => m == xdp_mode,
            _ => false,
        }
    }
}

/// An `-i` argument: an interface, optionally with its hook (`eth0:tc`).
/// Interface names cannot contain ':' (dev_valid_name()).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceArg {
    pub name: String,
    pub hook: Option<HookChoice>,
}

impl std::str::FromStr for IfaceArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, hook) = match s.split_once(':') {
            None => (s, None),
            Some((name, "xdp")) => (name, Some(HookChoice::Xdp)),
            Some((name, "tc")) => (name, Some(HookChoice::Tc)),
            Some((name, "auto")) => (name, Some(HookChoice::Auto)),
            Some((_, other)) => {
                return Err(format!(
                    "unknown hook '{other}' (expected IFACE, IFACE:xdp, IFACE:tc or IFACE:auto)"
                ))
            }
        };
        if name.is_empty() {
            return Err("empty interface name".into());
        }
        Ok(IfaceArg {
            name: name.to_string(),
            hook,
        })
    }
}

/// accel's two programs, for [`attach`] and [`adopt`] to pick from.
#[derive(Clone, Copy)]
pub struct Programs<'a> {
    pub xdp: &'a Program<'a>,
    pub tc: &'a Program<'a>,
}

impl<'a> Programs<'a> {
    pub fn for_hook(&self, hook: Hook) -> &'a Program<'a> {
        match hook {
            Hook::Xdp(_) => self.xdp,
            Hook::Tc | Hook::TcFilter => self.tc,
        }
    }
}

/// The program attached to one interface; dropping it detaches.
///
/// The link is a plain descriptor, pinned and updated with libbpf's
/// fd-level calls: libbpf-rs makes a `Link` only through its own attach
/// calls (whose `attach_xdp` takes no mode flags, so `--xdp-mode` could not
/// be honoured) or from a pin ([`adopt`] uses that).
pub struct Attachment {
    pub ifindex: u32,
    /// The interface's name; for the TC program beside an XDP one,
    /// "IFACE:tc" (no interface name has a ':'), which names its pin too.
    pub name: String,
    pub hook: Hook,
    /// The TC program beside the interface's XDP program.
    pub beside: bool,
    holder: Holder,
}

/// What keeps the program on the interface.
enum Holder {
    /// A BPF link: the program leaves when the descriptor closes.
    Link(OwnedFd),
    /// A cls_bpf filter, removed when this is dropped.
    Filter(super::cls_bpf::Filter),
    /// Let go ([`Attachment::release`]): the interface left the namespace.
    Released,
}

/// Called with the hook a link is about to run in, before it goes live:
/// the caller writes the interface's hook flags there.
pub type BeforeLive<'a> = &'a mut dyn FnMut(Hook) -> Result<(), DatapathError>;

impl Attachment {
    pub(super) fn new(ifindex: u32, name: &str, hook: Hook, link: OwnedFd) -> Attachment {
        Attachment {
            ifindex,
            name: name.to_string(),
            hook,
            beside: false,
            holder: Holder::Link(link),
        }
    }

    pub(super) fn filter(ifindex: u32, name: &str, filter: super::cls_bpf::Filter) -> Attachment {
        Attachment {
            ifindex,
            name: name.to_string(),
            hook: Hook::TcFilter,
            beside: false,
            holder: Holder::Filter(filter),
        }
    }

    /// Marks this as the TC program beside an XDP program.
    pub fn beside(mut self) -> Attachment {
        self.beside = true;
        self
    }

    /// Lets the program go from the device. For one that left accel's
    /// namespace: deleted (its link is on nothing already), or moved into
    /// another namespace, where the program would keep running on it and
    /// judge that namespace's frames by this one's mirror (an XDP link
    /// stays on a device through dev_change_net_namespace(), and its
    /// ifindex there may be one of accel's interfaces' here).
    pub fn release(&mut self) {
        if let Holder::Link(link) = &self.holder {
            // Detached outright (BPF_LINK_DETACH), not only closed: a
            // reference held elsewhere (a pin) would keep a closed link on
            // the device.
            // SAFETY: a valid link descriptor; the call only detaches.
            unsafe { libbpf_sys::bpf_link_detach(link.as_raw_fd()) };
        }
        self.holder = Holder::Released;
    }

    pub fn is_released(&self) -> bool {
        matches!(self.holder, Holder::Released)
    }

    /// Pins the link at `path`, so that it (and the program) outlives accel.
    /// A cls_bpf filter has no link to pin: a handover is refused. A
    /// released attachment has nothing to pin (see handover::pin_links).
    pub fn pin(&self, path: &Path) -> std::io::Result<()> {
        let Holder::Link(link) = &self.holder else {
            return Err(std::io::Error::other(format!(
                "{} runs a cls_bpf filter (this kernel has no tcx links), which cannot be \
                 handed over; restart instead",
                self.name
            )));
        };
        let c = c_path(path);
        // SAFETY: valid link fd and C string.
        let rc = unsafe { libbpf_sys::bpf_obj_pin(link.as_raw_fd(), c.as_ptr()) };
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(-rc));
        }
        Ok(())
    }

    /// What asks the kernel whether accel's program (`ours`, its id) is
    /// still the one this attachment's interface runs.
    pub fn probe(&self, ours: u32) -> Probe {
        Probe {
            ifindex: self.ifindex,
            hook: self.hook,
            ours,
        }
    }

    /// Puts `prog` back into this link: a handover whose successor died
    /// after swapping its own program in is undone this way.
    pub fn reclaim(&mut self, prog: BorrowedFd<'_>) -> std::io::Result<()> {
        let link = match &mut self.holder {
            Holder::Link(link) => link,
            Holder::Filter(f) => return f.reclaim(prog),
            Holder::Released => return Ok(()),
        };
        let opts = libbpf_sys::bpf_link_update_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_link_update_opts>() as _,
            ..Default::default()
        };
        // SAFETY: valid link and program fds, initialised options.
        let rc = unsafe { libbpf_sys::bpf_link_update(link.as_raw_fd(), prog.as_raw_fd(), &opts) };
        // A link whose device was deleted runs nothing anywhere
        // (bpf_xdp_link_update(), tcx_link_update(): ENOLINK): nothing to
        // put back.
        if rc == -libc::ENOLINK {
            return Ok(());
        }
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(-rc));
        }
        Ok(())
    }
}

/// Waits up to `timeout` for `ifindex` to run no accel program, in either
/// hook: a previous instance whose pinned link could not be adopted
/// detaches it when it sees the pin gone.
pub async fn wait_detached(ifindex: u32, timeout: std::time::Duration) -> bool {
    let until = tokio::time::Instant::now() + timeout;
    while current_hook(ifindex).is_some() {
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
/// Ok(None) when there is no pin, or one whose device was deleted. A pin
/// that cannot be adopted (another interface, another hook or XDP mode than
/// `choice` asks for, update refused) is removed, which detaches the old
/// program, and the caller falls back to [`attach`]: the kernel forwards
/// alone in between, as on a plain restart.
pub fn adopt(
    progs: Programs<'_>,
    ifindex: u32,
    name: &str,
    (choice, mode): (HookChoice, XdpMode),
    links: &TrustedDir,
    before_live: BeforeLive<'_>,
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
    let (xdp, on) = match info.info {
        LinkTypeInfo::Xdp(xdp) => (true, xdp.ifindex),
        LinkTypeInfo::Tcx(tcx) => (false, tcx.ifindex),
        other => {
            return Err(format!(
                "the pinned link is not an XDP or tcx link ({other:?})"
            ))
        }
    };
    // The device the link was on was deleted (the kernel reports ifindex 0
    // for such a link, in bpf_xdp_link_fill_link_info() and
    // tcx_link_fill_info()); `name` is a device created since. Nothing to
    // detach: the caller attaches afresh.
    if on == 0 {
        log::info!("{name}: the previous instance's link was on a device since deleted");
        return Ok(None);
    }
    if on != ifindex {
        return Err(format!("the pinned link is on ifindex {on}, not {ifindex}"));
    }
    let hook = match (xdp, attached_mode(ifindex)) {
        (false, _) => Hook::Tc,
        (true, Some(m)) => Hook::Xdp(m),
        (true, None) => return Err("the pinned XDP link runs in an unknown mode".into()),
    };
    if !choice.admits(hook, mode) {
        return Err(format!(
            "the pinned link runs {hook}, this instance wants {choice:?} (XDP mode {mode:?})"
        ));
    }
    before_live(hook).map_err(|e| format!("writing its hook flags failed: {e}"))?;
    link.update_prog(progs.for_hook(hook))
        .map_err(|e| format!("swapping the program in failed: {e}"))?;
    // Held as a plain descriptor like the links `attach` creates. Dropping
    // the libbpf object closes its own descriptor only: a link opened from
    // a pin has nothing else to detach, and ours keeps the link alive.
    let fd = link
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| format!("keeping the adopted link failed: {e}"))?;
    Ok(Some(Attachment::new(ifindex, name, hook, fd)))
}

/// The hook accel's program (any instance's) runs in on `ifindex` now, as
/// the kernel lists it: `accel stats` and `accel lookup` show it.
pub fn current_hook(ifindex: u32) -> Option<Hook> {
    let xdp_is_accels = attached_prog_id(ifindex)
        .and_then(|id| libbpf_rs::ProgramHandle::from_prog_id(id).ok())
        .is_some_and(|p| p.name() == "accel_xdp");
    if xdp_is_accels {
        return attached_mode(ifindex).map(Hook::Xdp);
    }
    if super::tcx::has_accels(ifindex) {
        return Some(Hook::Tc);
    }
    super::cls_bpf::has_accels(ifindex).then_some(Hook::TcFilter)
}

/// One attachment's question to the kernel: is our program still there?
/// The answers go through netlink (XDP, cls_bpf) or take the RTNL lock
/// (tcx), so they can wait as long as a routing daemon keeps that lock
/// busy: ask them off the event loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub ifindex: u32,
    pub hook: Hook,
    pub ours: u32,
}

impl Probe {
    /// Whether the interface runs our program: the XDP program, or one of
    /// the TC programs.
    pub fn is_current(&self) -> bool {
        match self.hook {
            Hook::Xdp(_) => attached_prog_id(self.ifindex) == Some(self.ours),
            Hook::Tc => super::tcx::programs(self.ifindex).contains(&self.ours),
            Hook::TcFilter => super::cls_bpf::filter_prog(self.ifindex) == Some(self.ours),
        }
    }
}

/// Id of the XDP program on an interface, if any.
pub fn attached_prog_id(ifindex: u32) -> Option<u32> {
    let mut id = 0u32;
    // SAFETY: plain syscall wrapper writing one u32.
    let rc = unsafe { libbpf_sys::bpf_xdp_query_id(ifindex as i32, 0, &mut id) };
    (rc == 0 && id != 0).then_some(id)
}

/// Attaches the program `choice` asks for: with `Auto`, native XDP where
/// the driver has it and TC where it does not (generic XDP is never chosen
/// by itself: it is slower than TC, see BENCHMARKS.md).
pub fn attach(
    progs: Programs<'_>,
    ifindex: u32,
    name: &str,
    (choice, mode): (HookChoice, XdpMode),
    before_live: BeforeLive<'_>,
) -> Result<Attachment, DatapathError> {
    let tc = |before_live: BeforeLive<'_>| {
        before_live(Hook::Tc)?;
        super::tcx::attach(progs.tc.as_fd(), ifindex, name)
    };
    match choice {
        HookChoice::Tc => tc(before_live),
        HookChoice::Xdp => {
            before_live(Hook::Xdp(mode))?;
            attach_xdp(progs.xdp.as_fd(), ifindex, name, mode)
        }
        HookChoice::Auto => {
            before_live(Hook::Xdp(mode))?;
            match try_attach_xdp(progs.xdp.as_fd(), ifindex, name, mode)? {
                Some(a) => Ok(a),
                None => tc(before_live),
            }
        }
    }
}

/// Attaches the XDP program `prog` (accel's, or a benchmark tool's).
pub fn attach_xdp(
    prog: BorrowedFd<'_>,
    ifindex: u32,
    name: &str,
    mode: XdpMode,
) -> Result<Attachment, DatapathError> {
    try_attach_xdp(prog, ifindex, name, mode)?.ok_or_else(|| DatapathError::Attach {
        iface: name.to_string(),
        msg: "its driver does not support native XDP; use TC (-i IFACE:tc, or --hook auto) \
              or --xdp-mode generic"
            .into(),
    })
}

/// Ok(None) where native XDP is not supported by the driver.
fn try_attach_xdp(
    prog: BorrowedFd<'_>,
    ifindex: u32,
    name: &str,
    mode: XdpMode,
) -> Result<Option<Attachment>, DatapathError> {
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
        if (-fd, mode) == (libc::EOPNOTSUPP, XdpMode::Native) {
            return Ok(None);
        }
        return Err(fail(match -fd {
            libc::EBUSY | libc::EEXIST => {
                format!("an XDP program is already attached ({err})")
            }
            _ => format!("attaching XDP failed: {err}"),
        }));
    }
    // SAFETY: bpf_link_create returned a new descriptor that we now own.
    let link = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok(Some(Attachment::new(ifindex, name, Hook::Xdp(mode), link)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(s: &str) -> Result<IfaceArg, String> {
        s.parse()
    }

    #[test]
    fn an_interface_may_name_its_hook() {
        assert_eq!(arg("eth0").unwrap().hook, None);
        assert_eq!(arg("eth0.100").unwrap().name, "eth0.100");
        assert_eq!(arg("br0:tc").unwrap().hook, Some(HookChoice::Tc));
        assert_eq!(arg("br0:tc").unwrap().name, "br0");
        assert_eq!(arg("eth1:xdp").unwrap().hook, Some(HookChoice::Xdp));
        assert_eq!(arg("eth1:auto").unwrap().hook, Some(HookChoice::Auto));
        assert!(arg("eth1:fast")
            .unwrap_err()
            .contains("unknown hook 'fast'"));
        assert!(arg(":tc").is_err());
        assert!(arg("").is_err());
    }

    #[test]
    fn a_handover_adopts_only_the_hook_asked_for() {
        use HookChoice as C;
        let (native, generic) = (Hook::Xdp(XdpMode::Native), Hook::Xdp(XdpMode::Generic));
        assert!(C::Auto.admits(native, XdpMode::Native));
        assert!(C::Auto.admits(Hook::Tc, XdpMode::Native));
        assert!(C::Auto.admits(Hook::TcFilter, XdpMode::Native));
        assert!(!C::Auto.admits(generic, XdpMode::Native));
        assert!(C::Xdp.admits(generic, XdpMode::Generic));
        assert!(!C::Xdp.admits(native, XdpMode::Generic));
        assert!(!C::Xdp.admits(Hook::Tc, XdpMode::Native));
        assert!(C::Tc.admits(Hook::Tc, XdpMode::Native));
        assert!(!C::Tc.admits(native, XdpMode::Native));
    }
}
