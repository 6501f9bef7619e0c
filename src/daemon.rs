//! `accel run`: attach, mirror the kernel, keep the mirror in sync, detach.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};

use crate::datapath::attach::{adopt, attach, Attachment, XdpMode};
use crate::datapath::maps::Maps;
use crate::datapath::{load, pin, DatapathError};
use crate::handover::{self, Handover, Progress};
use crate::mirror::nudge::{self, Nudger};
use crate::mirror::{CfgFlags, Change, ChangeSummary, IfaceConf, Mirror, Snapshot, ViewBuilder};
use crate::model::{Event, Route};
use crate::netlink::nexthop::NexthopEvent;
use crate::netlink::nexthop_sock::{NexthopEvents, Received};
use crate::netlink::{self, KernelState, NetlinkError};
use crate::{bpf, netfilter, runtime, sysctl};

/// How long the datapath may use the mirror without hearing from accel.
const LEASE: Duration = Duration::from_secs(5);
const TICK: Duration = Duration::from_secs(1);
/// Link changes come in bursts; one dump after the burst covers them all.
const RESYNC_DELAY: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Datapath(#[from] DatapathError),
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
    #[error(
        "packets forwarded in XDP would bypass netfilter: {0}. Forwarded traffic would no \
         longer be filtered or NATed; start with --allow-netfilter-bypass if that is intended"
    )]
    Netfilter(String),
    #[error("the netlink event stream ended")]
    EventsClosed,
    #[error("interface {0}: {1}")]
    Iface(String, String),
    #[error("handover: {0}")]
    Handover(#[from] crate::handover::HandoverError),
    #[error("control socket {path}: {source}")]
    Control {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub struct RunOptions {
    pub ifaces: Vec<String>,
    pub mode: XdpMode,
    pub fib_only: bool,
    pub pin_dir: PathBuf,
    pub run_dir: PathBuf,
    /// Start even though netfilter hooks that XDP bypasses have rules.
    pub allow_netfilter_bypass: bool,
}

pub fn snapshot(s: KernelState) -> Snapshot {
    Snapshot {
        links: s.links,
        addrs: s.addrs,
        routes: s.routes,
        neighbours: s.neighbours,
        rules: s.rules,
        nexthops: s.nexthops,
    }
}

struct Daemon {
    maps: Maps,
    mirror: Mirror,
    handle: rtnetlink::Handle,
    /// ifindex -> name of accel's interfaces.
    ifaces: HashMap<u32, String>,
    resyncs: u64,
    nudger: Nudger,
}

/// A dump's routes go straight into a fresh view of the mirror.
impl netlink::RouteSink for ViewBuilder<'_> {
    fn restart(&mut self) {
        ViewBuilder::restart(self);
    }
    fn route(&mut self, r: Route) {
        self.add(r);
    }
}

/// Hands the heap freed by a resync or check (the dumped view it replaced,
/// the change list, a scratch mirror: tens of MB at full-table size) back
/// to the kernel. glibc keeps such memory otherwise, and the daemon's RSS
/// would creep up with every resync.
fn release_freed_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free heap pages.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// How many example differences `accel sync --check` shows.
const CHECK_EXAMPLES: usize = 10;

impl Daemon {
    async fn resync(&mut self, why: &str) -> Result<ChangeSummary, DaemonError> {
        let started = Instant::now();
        self.renew_lease()?;
        // A failed resync ends the daemon (the caller returns the error), so
        // the mirror is never used without a view.
        self.mirror.drop_view();
        let mut view = self.mirror.view_builder();
        let state = netlink::dump_into(&self.handle, &mut view).await?;
        let view = view.finish();
        let dumped = started.elapsed();
        let mut summary = ChangeSummary::default();
        let maps = &self.maps;
        self.mirror
            .resync_view_chunked(view, snapshot(state), &mut |chunk| {
                maps.apply(chunk)?;
                summary.add(&ChangeSummary::of(chunk));
                chunk.clear();
                Ok::<(), DatapathError>(())
            })?;
        debug!(
            "resync phases: dump {dumped:.1?}, diff and map writes {:.1?}",
            started.elapsed() - dumped
        );
        self.renew_lease()?;
        self.resyncs += 1;
        release_freed_memory();
        info!(
            "resync ({why}) in {:.0?}: {summary}; mirror holds {} routes, {} next hops, {} groups, {} neighbours",
            started.elapsed(),
            self.mirror.route_count(),
            self.mirror.nexthop_count(),
            self.mirror.group_count(),
            self.mirror.neighbour_count()
        );
        Ok(summary)
    }

    /// What a resync would change now, without changing anything: the
    /// summary and the first few changes.
    async fn check(&mut self) -> Result<(ChangeSummary, Vec<String>), DaemonError> {
        let started = Instant::now();
        let mut scratch = self.mirror.scratch();
        let mut view = scratch.view_builder();
        let state = netlink::dump_into(&self.handle, &mut view).await?;
        let view = view.finish();
        let mut summary = ChangeSummary::default();
        let mut examples = Vec::new();
        scratch
            .resync_view_chunked(view, snapshot(state), &mut |chunk| {
                summary.add(&ChangeSummary::of(chunk));
                let room = CHECK_EXAMPLES - examples.len();
                examples.extend(chunk.iter().take(room).map(|c| self.describe(c)));
                chunk.clear();
                Ok::<(), std::convert::Infallible>(())
            })
            .unwrap_or_else(|never| match never {});
        drop(scratch);
        release_freed_memory();
        info!(
            "check in {:.0?}: a resync would make {} changes ({summary})",
            started.elapsed(),
            summary.total()
        );
        Ok((summary, examples))
    }

    /// One change as `accel sync --check` shows it, with what the mirror
    /// holds now for routes.
    fn describe(&self, c: &Change) -> String {
        match c {
            Change::PutRoute { prefix, entry, .. } => match self.mirror.entry(prefix) {
                Some(old) => format!("route {prefix}: mirror has {old:?}, kernel says {entry:?}"),
                None => format!("route {prefix}: missing from the mirror, kernel says {entry:?}"),
            },
            Change::DelRoute(prefix) => format!(
                "route {prefix}: mirror has {:?}, the kernel has no such route",
                self.mirror.entry(prefix)
            ),
            other => format!("{other:?}"),
        }
    }

    /// Returns true when a resync is due.
    async fn event(&mut self, ev: Event) -> Result<bool, DaemonError> {
        debug!("event {ev:?}");
        let outcome = self.mirror.apply(ev);
        self.maps.apply(&outcome.changes)?;
        if outcome.reread_rules {
            let rules = netlink::dump_rules(&self.handle).await?;
            let changes = self.mirror.set_rules(rules);
            if !changes.is_empty() {
                info!(
                    "ip rules changed: datapath config now {:#x}",
                    self.mirror.config_flags()
                );
            }
            self.maps.apply(&changes)?;
        }
        Ok(outcome.resync)
    }

    fn renew_lease(&self) -> Result<(), DaemonError> {
        let until = runtime::monotonic_coarse_ns() + LEASE.as_nanos() as u64;
        Ok(self.maps.renew_lease(until)?)
    }

    /// Marks the STALE neighbour entries of mirrored gateways as in use,
    /// as the kernel's own forwarding would (see [`crate::mirror::nudge`]).
    async fn nudge_neighbours(&mut self) {
        let due = self.nudger.select(
            Instant::now(),
            self.mirror.gateway_neighbours(),
            nudge::MAX_PER_TICK,
        );
        for (ifindex, addr) in due {
            match netlink::neigh_use::use_neighbour(&self.handle, ifindex, addr).await {
                Ok(()) => debug!("neighbour {addr} on ifindex {ifindex}: marked in use"),
                // Gone meanwhile (ENOENT): its deletion event follows.
                Err(e) => debug!("neighbour {addr} on ifindex {ifindex}: NTF_USE failed: {e}"),
            }
        }
    }

    /// Applies a batch from the nexthop-object socket; true when a resync
    /// is due (notifications were lost).
    async fn nexthop_events(&mut self, r: std::io::Result<Received>) -> Result<bool, DaemonError> {
        match r {
            Ok(Received::Events(evs)) => {
                for e in evs {
                    let ev = match e {
                        NexthopEvent::New(o) => Event::NewNexthop(o),
                        NexthopEvent::Del(id) => Event::DelNexthop(id),
                    };
                    self.event(ev).await?;
                }
                Ok(false)
            }
            Ok(Received::Overrun) => {
                warn!("nexthop object events were lost (receive buffer overrun): full resync");
                Ok(true)
            }
            Err(source) => Err(NetlinkError::Socket {
                context: "receiving nexthop object events",
                source,
            }
            .into()),
        }
    }

    fn poll_multipath(&mut self) -> Result<(), DaemonError> {
        let changes = self.mirror.set_multipath(sysctl::multipath());
        if !changes.is_empty() {
            let f = self.mirror.config_flags();
            let on = f & (CfgFlags::ACCEL_CFG_MP_HASH4.0 | CfgFlags::ACCEL_CFG_MP_HASH6.0) != 0;
            if on {
                info!("multipath hash reproducible (seed and policy known): ECMP routes forwarded from the mirror");
            } else {
                info!(
                    "multipath routes go to bpf_fib_lookup: set net.ipv4.fib_multipath_hash_seed \
                     (and a hash policy of 0 or 1) to forward them from the mirror"
                );
            }
        }
        self.maps.apply(&changes)?;
        Ok(())
    }

    fn poll_sysctls(&mut self) -> Result<(), DaemonError> {
        self.poll_multipath()?;
        for (ifindex, name) in &self.ifaces {
            let changes = self.mirror.set_sysctls(
                *ifindex,
                sysctl::iface_flags(name),
                sysctl::ipv6_mtu(name),
            );
            if !changes.is_empty() {
                info!("{name}: forwarding settings changed");
            }
            self.maps.apply(&changes)?;
        }
        Ok(())
    }
}

pub async fn run(opts: RunOptions) -> Result<(), DaemonError> {
    // Installed first, so that a stop request during start-up is honoured
    // once attached instead of killing the process half-way.
    let mut sigint = signal(SignalKind::interrupt()).expect("signal handler");
    let mut sigterm = signal(SignalKind::terminate()).expect("signal handler");
    // SIGUSR2: hand the attached datapath over to a successor (handover.rs).
    let mut sigusr2 = signal(SignalKind::user_defined2()).expect("signal handler");
    runtime::require_root()?;
    let mut ifaces = HashMap::new();
    let mut conf = HashMap::new();
    for (slot, name) in opts.ifaces.iter().enumerate() {
        let ifindex = runtime::ifindex(name)?;
        if ifaces.insert(ifindex, name.clone()).is_some() {
            return Err(DaemonError::Iface(name.clone(), "named twice".into()));
        }
        let sysctl_flags = sysctl::iface_flags(name);
        conf.insert(
            ifindex,
            IfaceConf {
                slot: slot as u16,
                sysctl_flags,
                mtu6: sysctl::ipv6_mtu(name),
            },
        );
    }
    if ifaces.len() > bpf::types::accel_limits::ACCEL_MAX_IFACES.0 as usize {
        return Err(DaemonError::Iface(
            format!("{} interfaces", ifaces.len()),
            format!(
                "at most {} are supported",
                bpf::types::accel_limits::ACCEL_MAX_IFACES.0
            ),
        ));
    }
    let hooks = netfilter::bypassed_hooks();
    if !hooks.is_empty() {
        if !opts.allow_netfilter_bypass {
            return Err(DaemonError::Netfilter(hooks.join("; ")));
        }
        warn!("forwarded packets will bypass: {}", hooks.join("; "));
    }
    let mut presence = Presence::new(&opts.run_dir, &opts.pin_dir)?;
    let successor = std::env::var_os(handover::FROM_ENV).is_some();
    pin::ensure_bpffs(&opts.pin_dir)?;

    let loaded = load()?;
    let sub = netlink::subscribe()?;
    tokio::spawn(sub.connection);
    let mut events = sub.events;
    let max_nh = bpf::types::accel_limits::ACCEL_MAX_NEXTHOPS.0;
    let mut d = Daemon {
        maps: loaded.maps,
        mirror: Mirror::new(conf, opts.fib_only, max_nh),
        handle: sub.handle,
        ifaces: ifaces.clone(),
        resyncs: 0,
        nudger: Nudger::default(),
    };
    d.poll_multipath()?;
    // Subscribed before the start dump, like the rtnetlink events.
    let mut nh_events = NexthopEvents::subscribe().map_err(|source| NetlinkError::Socket {
        context: "subscribing to nexthop object events",
        source,
    })?;
    d.resync("start").await?;

    let state = netlink::dump::dump_links(&d.handle).await?;
    for (ifindex, name) in &ifaces {
        let link = state.iter().find(|l| l.ifindex == *ifindex);
        if link.and_then(|l| l.mac).is_none() {
            return Err(DaemonError::Iface(
                name.clone(),
                "has no Ethernet address; accel forwards between Ethernet interfaces".into(),
            ));
        }
        if link.and_then(|l| l.kind.as_deref()) == Some("veth") {
            info!(
                "{name} is a veth: packets redirected into it are delivered only when its peer \
                 runs XDP or has GRO enabled (ethtool -K PEER gro on); locally sent UDP/TCP \
                 needs tx checksum offload off on the sender (ethtool -K DEV tx off)"
            );
        }
    }
    let prog = loaded.skel.progs.accel_xdp.as_fd();
    let mut attached: Vec<Attachment> = Vec::new();
    // A previous instance that exited with a handover left its links pinned,
    // its program still forwarding from its (now frozen) maps under its
    // lease. Our maps are complete (the start resync above filled them), so
    // swapping our program into those links is hitless: the swap is atomic
    // per interface, and each program only ever reads its own maps, which
    // its writer filled completely. No map is shared between the two
    // instances, so nothing depends on rebuilding the DIR-24-8 / trie
    // bookkeeping from live arrays.
    let links_dir = pin::links_dir(&opts.pin_dir);
    for (ifindex, name) in &ifaces {
        match adopt(prog, *ifindex, name, opts.mode, &links_dir.join(name)) {
            Ok(Some(a)) => {
                attached.push(a);
                info!(
                    "adopted the previous instance's XDP link on {name} (ifindex {ifindex}, \
                     {:?} mode): hitless handover",
                    opts.mode
                );
                continue;
            }
            Ok(None) => {}
            Err(msg) => {
                warn!(
                    "{name}: cannot adopt the previous instance's XDP link ({msg}); detached it, \
                     the kernel forwards alone until this instance attaches"
                );
                // A live previous instance detaches once it sees the pin gone.
                if !crate::datapath::attach::wait_detached(*ifindex, Duration::from_secs(5)) {
                    warn!("{name}: the previous instance's program is still attached after 5 s");
                }
            }
        }
        attached.push(attach(prog, *ifindex, name, opts.mode)?);
        info!(
            "attached to {name} (ifindex {ifindex}, {:?} mode)",
            opts.mode
        );
    }
    // Links pinned for interfaces this instance does not run on: their
    // program would pass everything once its lease ends, but stay attached
    // for good. Remove them (which detaches them).
    if let Ok(entries) = std::fs::read_dir(&links_dir) {
        for e in entries.flatten() {
            warn!(
                "removing the pinned XDP link {} of a previous instance (not one of this \
                 instance's interfaces): its interface is left to the kernel",
                e.path().display()
            );
            let _ = std::fs::remove_file(e.path());
        }
    }
    presence.publish(&d.maps)?;
    info!(
        "accel running on {} interface(s); maps pinned at {}",
        attached.len(),
        opts.pin_dir.display()
    );
    handover::notify_systemd(successor);
    // Who runs now (a successor replaces its predecessor's entry).
    let pid_path = opts.run_dir.join("accel.pid");
    let _ = std::fs::write(&pid_path, format!("{}\n", std::process::id()));
    let mut handing_over: Option<Handover> = None;
    let mut handover_tick = tokio::time::interval(HANDOVER_POLL);

    let mut tick = tokio::time::interval(TICK);
    let mut resync_at: Option<tokio::time::Instant> = None;
    let result = loop {
        let resync_sleep = async {
            match resync_at {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        // Ok(true): stop with a handover.
        let step: Result<(), DaemonError> = tokio::select! {
            ev = events.next() => match ev {
                Some(Event::Overrun) => {
                    // Overruns come in bursts: one resync after the burst.
                    if resync_at.is_none() {
                        warn!("netlink events were lost (receive buffer overrun): full resync");
                    }
                    resync_at.get_or_insert(tokio::time::Instant::now() + RESYNC_DELAY);
                    Ok(())
                }
                Some(ev) => match d.event(ev).await {
                    Ok(true) => {
                        resync_at.get_or_insert(tokio::time::Instant::now() + RESYNC_DELAY);
                        Ok(())
                    }
                    Ok(false) => Ok(()),
                    Err(e) => Err(e),
                },
                None => break Err(DaemonError::EventsClosed),
            },
            r = nh_events.next() => match d.nexthop_events(r).await {
                Ok(true) => {
                    resync_at.get_or_insert(tokio::time::Instant::now() + RESYNC_DELAY);
                    Ok(())
                }
                Ok(false) => Ok(()),
                Err(e) => Err(e),
            },
            _ = resync_sleep => {
                resync_at = None;
                d.resync("link change or lost events").await.map(|_| ())
            }
            _ = tick.tick() => {
                let r = d.renew_lease().and_then(|_| d.poll_sysctls());
                d.nudge_neighbours().await;
                r
            }
            conn = accept(&presence.listener) => {
                match conn {
                    Ok((stream, _)) => serve_control(&mut d, stream).await,
                    Err(_) => Ok(()),
                }
            }
            _ = handover_tick.tick(), if handing_over.is_some() => {
                let h = handing_over.as_mut().expect("guarded");
                match h.progress() {
                    Progress::Waiting => Ok(()),
                    Progress::TakenOver => break Ok(true),
                    Progress::SuccessorFailed(status) => {
                        let h = handing_over.take().expect("guarded");
                        warn!(
                            "handover: the successor exited ({status}) before taking over; \
                             this instance carries on"
                        );
                        handover::remove_pins(h.pins());
                        for a in &attached {
                            if let Err(e) = a.reclaim(prog) {
                                warn!("{}: putting this instance's program back: {e}", a.name);
                            }
                        }
                        presence.take_back(&d.maps)
                    }
                }
            }
            _ = sigint.recv() => break Ok(false),
            _ = sigterm.recv() => break Ok(false),
            _ = sigusr2.recv() => {
                if handing_over.is_some() {
                    info!("handover already in progress");
                    Ok(())
                } else {
                    start_handover(&attached, &links_dir, &mut presence, &d.maps)
                        .map(|h| handing_over = h)
                }
            }
        };
        if let Err(e) = step {
            break Err(e);
        }
    };

    if let Ok(true) = result {
        // The successor holds the links, the map pins and the socket now.
        drop(attached);
        info!("handover complete: the successor forwards; exiting");
        return Ok(());
    }
    let handed = handing_over.is_some();
    if let Some(h) = handing_over.take() {
        info!("stopping the successor of the interrupted handover");
        h.abort();
    }
    // Hand everything to the kernel first, then leave the interfaces.
    let _ = d.maps.renew_lease(0);
    drop(attached);
    if !handed {
        presence.give_up();
    }
    if std::fs::read_to_string(&pid_path).is_ok_and(|p| p.trim() == std::process::id().to_string())
    {
        let _ = std::fs::remove_file(&pid_path);
    }
    // Only if empty: never a pin this instance did not adopt.
    let _ = std::fs::remove_dir(&links_dir);
    info!("detached; the kernel forwards alone again");
    result.map(|_| ())
}

/// How often a handover in progress checks on the successor.
const HANDOVER_POLL: Duration = Duration::from_millis(100);

async fn accept(
    l: &Option<UnixListener>,
) -> std::io::Result<(tokio::net::UnixStream, tokio::net::unix::SocketAddr)> {
    match l {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// What makes this process the running instance: the instance lock, the
/// map pins that `accel stats` and `lookup` open, and the control socket.
/// A handover gives them to the successor; a failed one takes them back.
struct Presence {
    run_dir: PathBuf,
    pin_dir: PathBuf,
    lock: Option<runtime::InstanceLock>,
    listener: Option<UnixListener>,
}

impl Presence {
    /// Takes the instance lock (a second instance stops here).
    fn new(run_dir: &std::path::Path, pin_dir: &std::path::Path) -> Result<Self, DaemonError> {
        Ok(Presence {
            run_dir: run_dir.to_path_buf(),
            pin_dir: pin_dir.to_path_buf(),
            lock: Some(runtime::lock_instance(run_dir)?),
            listener: None,
        })
    }

    fn sock_path(&self) -> PathBuf {
        self.run_dir.join("accel.sock")
    }

    /// Pins the maps and opens the control socket.
    fn publish(&mut self, maps: &Maps) -> Result<(), DaemonError> {
        pin::pin_all(maps, &self.pin_dir)?;
        let path = self.sock_path();
        let _ = std::fs::remove_file(&path);
        let l =
            UnixListener::bind(&path).map_err(|source| DaemonError::Control { path, source })?;
        self.listener = Some(l);
        Ok(())
    }

    fn give_up(&mut self) {
        self.listener = None;
        let _ = std::fs::remove_file(self.sock_path());
        pin::unpin_all(&self.pin_dir);
        self.lock = None;
    }

    fn take_back(&mut self, maps: &Maps) -> Result<(), DaemonError> {
        self.lock = Some(runtime::lock_instance(&self.run_dir)?);
        self.publish(maps)
    }
}

/// SIGUSR2: pins the links for a successor, gives it this instance's
/// presence and starts it. `None` (logged) when the handover could not
/// start: this instance carries on as before.
fn start_handover(
    attached: &[Attachment],
    links_dir: &std::path::Path,
    presence: &mut Presence,
    maps: &Maps,
) -> Result<Option<Handover>, DaemonError> {
    let pins = match handover::pin_links(attached, links_dir) {
        Ok(p) => p,
        Err(e) => {
            warn!("handover failed ({e}); carrying on");
            return Ok(None);
        }
    };
    // This instance needs none of these to keep forwarding.
    presence.give_up();
    match Handover::start(pins.clone()) {
        Ok(h) => {
            info!(
                "handover: started the successor (pid {}); XDP keeps forwarding from this \
                 instance's mirror until it takes over",
                h.successor_pid()
            );
            Ok(Some(h))
        }
        Err(e) => {
            warn!("handover failed ({e}); carrying on");
            handover::remove_pins(&pins);
            presence.take_back(maps)?;
            Ok(None)
        }
    }
}

/// One request per connection: `sync` answers with the resync's summary,
/// `check` with what a resync would change (changing nothing). A failed
/// resync is answered, then returned: like any failed resync it ends the
/// daemon, whose mirror it left without a view.
async fn serve_control(d: &mut Daemon, stream: tokio::net::UnixStream) -> Result<(), DaemonError> {
    let (rd, mut wr) = stream.into_split();
    let mut line = String::new();
    if BufReader::new(rd).read_line(&mut line).await.is_err() {
        return Ok(());
    }
    let mut failed = None;
    let reply = match line.trim() {
        "sync" => match d.resync("accel sync").await {
            Ok(s) => serde_json::json!({
                "ok": true,
                "changes": s,
                "total_changes": s.total(),
                "routes": d.mirror.route_count(),
                "nexthops": d.mirror.nexthop_count(),
                "groups": d.mirror.group_count(),
                "neighbours": d.mirror.neighbour_count(),
                "resyncs": d.resyncs,
            }),
            Err(e) => {
                let reply = serde_json::json!({"ok": false, "error": e.to_string()});
                failed = Some(e);
                reply
            }
        },
        "check" => match d.check().await {
            Ok((s, examples)) => serde_json::json!({
                "ok": true,
                "changes": s,
                "total_changes": s.total(),
                "examples": examples,
                "routes": d.mirror.route_count(),
                "nexthops": d.mirror.nexthop_count(),
                "groups": d.mirror.group_count(),
                "neighbours": d.mirror.neighbour_count(),
                "resyncs": d.resyncs,
            }),
            Err(e) => serde_json::json!({"ok": false, "error": e.to_string()}),
        },
        other => serde_json::json!({"ok": false, "error": format!("unknown request {other:?}")}),
    };
    let _ = wr.write_all(format!("{reply}\n").as_bytes()).await;
    failed.map_or(Ok(()), Err)
}
