//! `accel run`: check, attach, mirror the kernel, keep the mirror in sync,
//! keep the datapath's lease, serve control requests, detach.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use libbpf_rs::ProgramMut;
use log::{debug, info, warn};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;

use crate::bpf::types::accel_if_flags as IfFlags;
use crate::capacity::{self, Limits};
use crate::control::{MirrorSize, Pending, Reply, Request};
use crate::datapath::attach::{
    adopt, attach, current_hook, wait_detached, Attachment, Hook, HookChoice, IfaceArg, Programs,
    XdpMode,
};
use crate::datapath::clock::datapath_now_ns;
use crate::datapath::maps::Maps;
use crate::datapath::{load, DatapathError, Loaded};
use crate::error_chain;
use crate::handover::{self, Handover, Progress};
use crate::lease::{Deadlines, Exact, Lease};
use crate::mirror::nudge::{self, Nudger};
use crate::mirror::{CfgFlags, EventOutcome, IfaceConf, Mirror, View, ViewBuilder};
use crate::model::{Event, Family, Route};
use crate::netlink::nexthop::NexthopEvent;
use crate::netlink::nexthop_sock::{NexthopEvents, Received};
use crate::netlink::{self, EventStream, NetlinkError};
use crate::presence::{Presence, PresenceError};
use crate::route_trace::RouteTrace;
use crate::status::{HandoverFor, ResyncCause};
use crate::trusted_path::{Missing, TrustedDir};
use crate::{bpf, netfilter, runtime, sysctl};

mod attach_probe;
mod event_loop;
mod iface_return;
mod jobs;
mod nf_watch;
mod refresh;
mod report;
mod rule_reader;
mod tc_watch;
mod watch;
mod xfrm_watch;
use attach_probe::AttachProbe;
use jobs::Purpose;

/// Events applied in one turn of the event loop, at most: enough to
/// amortise the turn, few enough that timers and requests still get their
/// turn within a couple of milliseconds.
const EVENT_BATCH: usize = 1024;
/// Route events applied in a burst before the datapath gets them: a node
/// that several change is written once, and the first waits at most the
/// time the rest take (about 64 x 2 us).
const FLUSH_EVERY: usize = 64;
/// ... or once the first of them waited this long (a stall mid-burst;
/// checked every 8th event, so up to 7 events later).
const FLUSH_AFTER: Duration = Duration::from_millis(20);

/// Housekeeping (sysctls, gateway neighbours) runs this often.
const HOUSEKEEPING: Duration = Duration::from_secs(1);
/// Link changes come in bursts; one dump after the burst covers them all.
const RESYNC_DELAY: Duration = Duration::from_millis(50);
/// How often a handover in progress checks on the successor.
const HANDOVER_POLL: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Datapath(#[from] DatapathError),
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
    #[error(transparent)]
    Presence(#[from] PresenceError),
    #[error(
        "packets forwarded in XDP would bypass netfilter: {0}. Forwarded traffic would no \
         longer be filtered or NATed; start with --allow-netfilter-bypass if that is intended"
    )]
    Netfilter(String),
    #[error("the netlink event stream ended")]
    EventsClosed,
    #[error("interface {0}: {1}")]
    Iface(String, String),
    #[error("handover")]
    Handover(#[from] crate::handover::HandoverError),
    #[error("installing a signal handler")]
    Signal(#[source] std::io::Error),
    #[error("opening the route trace (ACCEL_TRACE_ROUTES)")]
    Trace(#[source] std::io::Error),
    #[error(transparent)]
    Limits(#[from] capacity::LimitsError),
    #[error(transparent)]
    RefreshStep(#[from] refresh::StepError),
    #[error(transparent)]
    HandoverDeadline(#[from] handover::DeadlineError),
    #[error(transparent)]
    HandoverDevices(#[from] handover::devices::DevicesError),
    #[error(transparent)]
    Metrics(#[from] crate::metrics_server::MetricsError),
    #[error("IPsec (XFRM) policies cannot be watched")]
    Xfrm(#[from] crate::netlink::xfrm::XfrmError),
    #[error("tc configuration")]
    Tc(#[from] crate::netlink::tc::TcError),
    #[error("netfilter rules")]
    Nf(#[from] nf_watch::NfError),
}

pub struct RunOptions {
    /// The interfaces, each with the hook asked for it, if any.
    pub ifaces: Vec<IfaceArg>,
    /// The hook for interfaces that name none.
    pub hook: HookChoice,
    /// The XDP mode wherever XDP runs.
    pub xdp_mode: XdpMode,
    pub fib_only: bool,
    pub pin_dir: PathBuf,
    pub run_dir: PathBuf,
    /// Start even though netfilter hooks that XDP bypasses have rules.
    pub allow_netfilter_bypass: bool,
    /// Serve `GET /metrics` here.
    pub metrics: Option<std::net::SocketAddr>,
    pub thresholds: crate::alerts::Thresholds,
    /// Compare the mirror with the kernel this often (None: never).
    pub check_every: Option<Duration>,
    /// Grow a structure short of room for this long (None: never).
    pub grow_after: Option<Duration>,
    /// Blackhole prefixes with a series of their own in the metrics.
    pub top_blackholes: usize,
}

struct Daemon {
    maps: Maps,
    mirror: Mirror,
    handle: rtnetlink::Handle,
    events: EventStream,
    nh_events: NexthopEvents,
    /// ifindex -> name of accel's interfaces.
    ifaces: HashMap<u32, String>,
    /// Figures about itself, alerts, the published status.
    report: report::Report,
    nudger: Nudger,
    /// The round of neighbour nudges under way, if any.
    nudging: Option<tokio::task::JoinHandle<()>>,
    /// `ip rule` read again after rule events, beside the loop.
    rules: rule_reader::RuleReader,
    /// Whether IPsec policies apply to forwarded packets, read beside the
    /// loop.
    xfrm: xfrm_watch::XfrmWatch,
    /// The qdiscs and tc filters on accel's interfaces, read beside the
    /// loop.
    tc: tc_watch::TcWatch,
    /// Netfilter chains on the forwarding path, read beside the loop
    /// (unless their bypass is allowed).
    nf: nf_watch::NfWatch,
    lease: Lease,
    /// Resyncs and checks beside the event loop.
    jobs: jobs::Jobs,
    /// `ACCEL_TRACE_ROUTES` (benchmarks).
    trace: Option<RouteTrace>,
    /// Reused for every event (see [`Mirror::apply_into`]).
    outcome: EventOutcome,
    /// Route events applied to the tries but not yet written to the
    /// datapath ([`Daemon::flush_routes`]), and those of them traced.
    unflushed: usize,
    unflushed_since: Option<Instant>,
    traced: Vec<(&'static str, crate::model::Prefix)>,
    /// The datapath's clock (see [`crate::datapath::clock`]).
    clock: &'static mut ProgramMut<'static>,
    /// Structures out of room: retries, figures, alerts.
    capacity: capacity::Monitor,
    /// When the last nexthop object was deleted, until the route events
    /// sent before are applied (see [`Daemon::settle_objects`]).
    settle_after: Option<Instant>,
}

/// A dump's routes go straight into a fresh view of the mirror.
impl netlink::RouteSink for ViewBuilder {
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

impl Daemon {
    /// Returns true when a resync is due.
    fn event(&mut self, ev: Event) -> Result<bool, DaemonError> {
        debug!("event {ev:?}");
        self.report.events_applied += 1;
        self.jobs.note(&ev, &mut self.mirror);
        // Before the event is applied: a carrier change needs it. Changed
        // for a link already without carrier, it changes what the kernel
        // reports of the next hops through it.
        let linkdown_changed = match &ev {
            Event::NewLink(l) => {
                self.log_port_change(l);
                self.mirror
                    .set_ignores_linkdown(l.ifindex, sysctl::ignores_linkdown(l.ignores_linkdown))
            }
            _ => false,
        };
        let traced = self.trace.as_ref().and_then(|_| RouteTrace::of(&ev));
        let mut outcome = std::mem::take(&mut self.outcome);
        outcome.clear();
        self.mirror.apply_into(ev, &mut outcome);
        let applied = self.maps.apply_deferring_routes(&outcome.changes);
        let (mut resync, reread_rules) = (outcome.resync || linkdown_changed, outcome.reread_rules);
        let reread_sysctls = outcome.reread_sysctls;
        if outcome.settle_objects {
            self.settle_after = Some(Instant::now());
        }
        self.outcome = outcome;
        applied?;
        self.traced.extend(traced);
        self.unflushed += 1;
        let since = *self.unflushed_since.get_or_insert_with(Instant::now);
        // A next-hop id or trie block the mirror let go of waits out its
        // grace period from then: the routes that used it must not reach
        // the datapath much later. The clock is read for the first event
        // after a flush and then every 8th (a read costs a few per cent of
        // an event on this VM; 8 events are microseconds against
        // FLUSH_AFTER).
        let due = || self.unflushed % 8 == 0 && since.elapsed() >= FLUSH_AFTER;
        if self.unflushed >= FLUSH_EVERY || due() {
            self.flush_routes()?;
        }
        if reread_sysctls {
            self.poll_sysctls()?;
            resync |= self.poll_linkdown();
        }
        if reread_rules {
            self.rules.start(&self.handle);
        }
        Ok(resync)
    }

    /// Says when one of accel's interfaces becomes a port of a bridge,
    /// bond, team or Open vSwitch (see [`Mirror::port_of`]), or stops
    /// being one.
    fn log_port_change(&self, l: &crate::model::Link) {
        // Named as the device is named now (it may have been renamed
        // since start, and another device have its start name).
        let Some(start) = self.ifaces.get(&l.ifindex) else {
            return;
        };
        let name = if l.name.is_empty() { start } else { &l.name };
        let was = self
            .mirror
            .link(l.ifindex)
            .and_then(|o| self.mirror.port_of(o));
        let now = self.mirror.port_of(l);
        match (was.map(|p| p.0), now) {
            (w, Some((m, master))) if w != Some(m) => warn!(
                "{name} is now a port of {} (ifindex {m}): what arrives there is that \
                 device's; the kernel handles it, and nothing is forwarded out through {name}",
                if master.is_empty() {
                    "a device"
                } else {
                    master
                }
            ),
            (Some(_), None) => info!("{name} is no longer a port: forwarding through it again"),
            _ => {}
        }
    }

    /// The rules read after rule events ([`rule_reader`]); a read that
    /// failed is started again, one overtaken by a later event is dropped.
    fn rules_read(&mut self, read: rule_reader::Read) -> Result<(), DaemonError> {
        let rules = match self.rules.take(read, &self.handle) {
            None => return Ok(()),
            Some(Ok(rules)) => rules,
            Some(Err(e)) => {
                warn!(
                    "reading ip rules: {}; bpf_fib_lookup decides until they are read",
                    error_chain(&e)
                );
                self.rules.start(&self.handle);
                return Ok(());
            }
        };
        debug!("ip rules read: {} rules", rules.len());
        let changes = self.mirror.set_rules(rules);
        if !changes.is_empty() {
            info!(
                "ip rules changed: datapath config now {:#x}",
                self.mirror.config_flags()
            );
        }
        Ok(self.maps.apply(&changes)?)
    }

    /// Once a second: the trace to its writer, forwarding settings,
    /// capacity, neighbours in use. Nothing here waits for the kernel's
    /// RTNL lock: a routing daemon installing a table keeps it busy.
    fn housekeeping(&mut self) -> Result<(), DaemonError> {
        if let Some(t) = &mut self.trace {
            t.flush();
        }
        self.poll_sysctls()?;
        self.capacity.tick(&self.maps, &mut self.mirror)?;
        self.nudge_neighbours();
        self.periodic_check()?;
        Ok(())
    }

    fn write_deadlines(&self, d: Deadlines) -> Result<(), DaemonError> {
        Ok(self.maps.set_deadlines(d.lease_ns, d.alive_ns)?)
    }

    /// Whether the datapath trusts the mirror now, by its own clock.
    fn lease_live(&mut self) -> Result<bool, DaemonError> {
        let now = datapath_now_ns(&mut *self.clock)?;
        let state = crate::stats::lease_state(&self.maps.config(), now);
        Ok(state == crate::stats::LeaseState::Live)
    }

    /// The mirror is known to be stale: the datapath stops using it now.
    fn revoke_lease(&mut self) -> Result<(), DaemonError> {
        let now = datapath_now_ns(&mut *self.clock)?;
        let d = self.lease.revoke(now);
        self.write_deadlines(d)
    }

    /// Renews the deadlines; the mirror lease as far as the mirror is known
    /// exact. The clock is read first: see [`Lease::renew`].
    fn renew_lease(&mut self) -> Result<(), DaemonError> {
        let now = datapath_now_ns(&mut *self.clock)?;
        let exact = self.exact(now);
        let d = self.lease.renew(Instant::now(), now, exact);
        self.write_deadlines(d)?;
        if self.lease.take_first_grant() {
            info!(
                "mirror live: the datapath forwards from the mirror ({})",
                self.mirror_size()
            );
        }
        Ok(())
    }

    /// As of when the mirror is exact, `now_ns` the datapath's clock read
    /// before looking. Now, when nothing waits anywhere. In a burst of
    /// route changes the queues are never empty: then as of the latest
    /// moment the reader found its socket empty whose events the loop has
    /// all applied (see [`EventStream::exact_as_of`]). Called between
    /// turns, when every event taken is applied. (A full table's install
    /// kept the lease lapsed for most of the burst otherwise: the datapath
    /// sent every packet to bpf_fib_lookup while the mirror was a
    /// millisecond behind.)
    fn exact(&mut self, now_ns: u64) -> Exact {
        // Nexthop objects are read by the loop itself, with no such
        // moment: their socket must be empty.
        if !self.nh_events.drained() {
            return Exact::Unknown;
        }
        if self.events.drained() {
            return Exact::Now;
        }
        match self.events.exact_as_of() {
            // Measured after `now_ns` was read: the moment comes out no
            // later than it was.
            Some(t) => Exact::AsOf(now_ns.saturating_sub(t.elapsed().as_nanos() as u64)),
            None => Exact::Unknown,
        }
    }

    /// Applies `first` and the events queued behind it (at most
    /// [`EVENT_BATCH`]), so that a burst costs one turn of the event loop,
    /// not one per event. Lost events stop the batch: they are left for
    /// the loop. True when a resync is due.
    fn events_from(&mut self, first: Event) -> Result<bool, DaemonError> {
        let mut resync = self.event(first)?;
        // Events ahead of the next one whose lookups were warmed.
        let mut warmed = 0usize;
        for _ in 1..EVENT_BATCH {
            if warmed == 0 {
                warmed = self.warm_ahead();
            }
            match self.events.try_next() {
                None => break,
                Some(Event::Overrun) => {
                    self.events.put_back(Event::Overrun);
                    break;
                }
                Some(ev) => resync |= self.event(ev)?,
            }
            warmed = warmed.saturating_sub(1);
        }
        self.flush_routes()?;
        self.note_latencies();
        Ok(resync)
    }

    /// Writes the route events applied since the last flush to the
    /// datapath: a node of the tries that several of them changed is
    /// written once (trie/encode.rs).
    fn flush_routes(&mut self) -> Result<(), DaemonError> {
        self.maps.flush_routes()?;
        (self.unflushed, self.unflushed_since) = (0, None);
        if let Some(t) = &mut self.trace {
            for change in self.traced.drain(..) {
                t.record(change);
            }
        }
        self.traced.clear();
        Ok(())
    }

    /// Warms the lookups of the next [`crate::fast_hash::WARM_AHEAD`] pending events (see
    /// [`crate::fast_hash::ShardedMap::warm`]); returns how many it saw.
    /// In a burst each route event misses the cache in the mirror's view,
    /// its applied routes and the route tables; looked up together, the
    /// misses overlap (in-process: 15-20% less CPU per event, measured
    /// with `accel-bench events`).
    fn warm_ahead(&self) -> usize {
        // This window's events, read next, and the next window's.
        self.events
            .prefetch_pending(2 * crate::fast_hash::WARM_AHEAD);
        let ahead = self.events.pending().take(crate::fast_hash::WARM_AHEAD);
        self.mirror.warm(ahead.clone());
        self.maps.warm_routes(ahead.clone());
        ahead.count()
    }

    /// Everything but the routes, from a dump without them (fast at any
    /// table size): enough for the datapath to forward through
    /// bpf_fib_lookup while the routes are dumped.
    async fn sync_state(&mut self) -> Result<(), DaemonError> {
        let state = netlink::dump::dump_state(&self.handle).await?;
        let mut out = Vec::new();
        let mut sweep = self.mirror.install(View::default(), state, &mut out);
        while !self.mirror.sweep_step(&mut sweep, usize::MAX, &mut out) {}
        self.maps.apply(&out)?;
        Ok(())
    }

    fn mirror_size(&self) -> MirrorSize {
        MirrorSize {
            routes: self.mirror.route_count(),
            nexthops: self.mirror.nexthop_count(),
            groups: self.mirror.group_count(),
            neighbours: self.mirror.neighbour_count(),
        }
    }

    /// Starts the job a control request asks for; it answers when done.
    fn serve(&mut self, p: Pending) -> Result<(), DaemonError> {
        let purpose = match p.request {
            Request::Sync => Purpose::Resync {
                cause: ResyncCause::Request,
                stale: false,
            },
            Request::Check => Purpose::Check,
            // Answered by the control server from the published status.
            Request::Status => return Ok(()),
            // The event loop's own (Running::upgrade_on_request).
            Request::Upgrade => return Ok(()),
        };
        self.start_job(purpose, Some(p.reply))
    }

    /// Marks the STALE neighbour entries of mirrored gateways as in use,
    /// as the kernel's own forwarding would (see [`crate::mirror::nudge`]).
    /// The requests wait for the kernel's answer (and for the RTNL lock a
    /// routing daemon keeps busy), so a task of their own sends them: the
    /// event loop never waits for one. A round still under way skips the
    /// tick.
    fn nudge_neighbours(&mut self) {
        if self.nudging.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let due = self.nudger.select(
            Instant::now(),
            self.mirror.gateway_neighbours(),
            nudge::MAX_PER_TICK,
        );
        if due.is_empty() {
            self.nudging = None;
            return;
        }
        let handle = self.handle.clone();
        self.nudging = Some(tokio::spawn(async move {
            for (ifindex, addr) in due {
                match netlink::neigh_use::use_neighbour(&handle, ifindex, addr).await {
                    Ok(()) => debug!("neighbour {addr} on ifindex {ifindex}: marked in use"),
                    // Gone meanwhile (ENOENT): its deletion event follows.
                    Err(e) => debug!("neighbour {addr} on ifindex {ifindex}: NTF_USE failed: {e}"),
                }
            }
        }));
    }

    /// Applies a batch from the nexthop-object socket; the cause of the
    /// resync due, if one is (notifications were lost).
    fn nexthop_events(
        &mut self,
        r: std::io::Result<Received>,
    ) -> Result<Option<ResyncCause>, DaemonError> {
        match r {
            Ok(Received::Events(evs)) => {
                let mut resync = false;
                for e in evs {
                    let ev = match e {
                        NexthopEvent::New(o) => Event::NewNexthop(o),
                        NexthopEvent::Del(id) => Event::DelNexthop(id),
                    };
                    resync |= self.event(ev)?;
                }
                self.flush_routes()?;
                Ok(resync.then_some(ResyncCause::Ambiguous))
            }
            Ok(Received::Overrun) => Ok(Some(ResyncCause::Overrun)),
            Err(source) => Err(NetlinkError::Socket {
                context: "receiving nexthop object events",
                source,
            }
            .into()),
        }
    }

    /// Settles the nexthop objects deleted (see [`Mirror::settle_objects`])
    /// once every route event the kernel queued before the last deletion
    /// is applied: they come on another socket, and a route moved off an
    /// object before its deletion must not count as one the kernel
    /// flushed with it. True when a resync is due. Called between turns.
    fn settle_objects(&mut self) -> Result<bool, DaemonError> {
        let Some(deleted) = self.settle_after else {
            return Ok(false);
        };
        let caught_up =
            self.events.drained() || self.events.exact_as_of().is_some_and(|t| t >= deleted);
        if !caught_up {
            return Ok(false);
        }
        self.settle_after = None;
        let o = self.mirror.settle_objects();
        self.maps.apply(&o.changes)?;
        Ok(o.resync)
    }

    fn poll_multipath(&mut self) -> Result<(), DaemonError> {
        let changes = self.mirror.set_forwarding_sysctls(sysctl::forwarding());
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

    /// How accel's programs run on an interface (ACCEL_IF_TC,
    /// ACCEL_IF_TC_BESIDE), written before a link goes live.
    fn set_hook_flags(&mut self, ifindex: u32, flags: u32) -> Result<(), DatapathError> {
        let changes = self.mirror.set_hook_flags(ifindex, flags);
        self.maps.apply(&changes)
    }

    /// ignore_routes_with_linkdown of the links without carrier, whose
    /// next hops the kernel reports dead or not by it (a netconf event
    /// came). True when a dump is due.
    fn poll_linkdown(&mut self) -> bool {
        let down: Vec<(u32, String)> = self
            .mirror
            .links_without_carrier()
            .map(|(i, name)| (i, name.to_string()))
            .collect();
        let mut due = false;
        for (ifindex, name) in down {
            let own = sysctl::own_ignores_linkdown(&name);
            due |= self
                .mirror
                .set_ignores_linkdown(ifindex, sysctl::ignores_linkdown(own));
        }
        due
    }

    fn poll_sysctls(&mut self) -> Result<(), DaemonError> {
        self.poll_multipath()?;
        for ifindex in self.ifaces.keys() {
            // The settings live under the device's name now: a renamed
            // device's are no longer under the one given at start (which
            // may be another device's). A device gone has none.
            let Some(name) = self.mirror.link(*ifindex).map(|l| l.name.clone()) else {
                continue;
            };
            let changes = self.mirror.set_sysctls(
                *ifindex,
                sysctl::iface_flags(&name),
                sysctl::ipv6_mtu(&name),
            );
            if !changes.is_empty() {
                info!("{name}: forwarding settings changed");
            }
            self.maps.apply(&changes)?;
        }
        Ok(())
    }
}

/// The route trace `ACCEL_TRACE_ROUTES` asks for, if any.
fn open_trace() -> Result<Option<RouteTrace>, DaemonError> {
    match RouteTrace::from_env() {
        Ok(Some((t, path))) => {
            info!("tracing route changes into {}", path.display());
            Ok(Some(t))
        }
        Ok(None) => Ok(None),
        Err(e) => Err(DaemonError::Trace(e)),
    }
}

/// The signals `accel run` answers, installed before anything else so that
/// a stop request during start-up is honoured once attached instead of
/// killing the process half-way.
struct Signals {
    int: Signal,
    term: Signal,
    /// Hand the attached datapath over to a successor (handover.rs).
    usr2: Signal,
}

impl Signals {
    fn install() -> Result<Signals, DaemonError> {
        let one = |k| signal(k).map_err(DaemonError::Signal);
        Ok(Signals {
            int: one(SignalKind::interrupt())?,
            term: one(SignalKind::terminate())?,
            usr2: one(SignalKind::user_defined2())?,
        })
    }
}

/// ifindex -> name of the interfaces to run on.
type IfaceNames = HashMap<u32, String>;

/// The interfaces to run on and their datapath config, after the checks
/// that need nothing loaded.
fn check_options(opts: &RunOptions) -> Result<(IfaceNames, HashMap<u32, IfaceConf>), DaemonError> {
    runtime::require_caps(runtime::RUN_CAPS)?;
    let mut ifaces = HashMap::new();
    let mut conf = HashMap::new();
    let devices = handover::devices::Devices::from_env()?;
    for (slot, IfaceArg { name, .. }) in opts.ifaces.iter().enumerate() {
        let (ifindex, now) = device_of(name, &devices)?;
        if now != *name {
            info!(
                "{name}: its predecessor ran on the device named {now} now (ifindex {ifindex}); \
                 so does this instance"
            );
        }
        if ifaces.insert(ifindex, name.clone()).is_some() {
            return Err(DaemonError::Iface(name.clone(), "named twice".into()));
        }
        conf.insert(
            ifindex,
            IfaceConf {
                slot: slot as u16,
                sysctl_flags: sysctl::iface_flags(&now),
                mtu6: sysctl::ipv6_mtu(&now),
                hook_flags: 0,
                tc_flags: 0,
            },
        );
    }
    let max = bpf::types::accel_limits::ACCEL_MAX_IFACES.0 as usize;
    if ifaces.len() > max {
        return Err(DaemonError::Iface(
            format!("{} interfaces", ifaces.len()),
            format!("at most {max} are supported"),
        ));
    }
    let hooks = netfilter::bypassed_hooks();
    if !hooks.is_empty() {
        if !opts.allow_netfilter_bypass {
            return Err(DaemonError::Netfilter(hooks.join("; ")));
        }
        warn!("forwarded packets will bypass: {}", hooks.join("; "));
    }
    Ok((ifaces, conf))
}

/// The device interface `name` stands for, and the name it has now (see
/// [`handover::devices::Devices::resolve`]).
fn device_of(
    name: &str,
    devices: &handover::devices::Devices,
) -> Result<(u32, String), runtime::RuntimeError> {
    devices
        .resolve(name, runtime::ifname, |n| runtime::ifindex(n).ok())
        .ok_or_else(|| runtime::RuntimeError::UnknownIface(name.into()))
}

/// Every interface must be an Ethernet device (XDP redirects Ethernet
/// frames, and nothing can be forwarded from or to a loopback or tun), and
/// no port of a bridge, bond, team or Open vSwitch.
async fn check_links(
    handle: &rtnetlink::Handle,
    ifaces: &HashMap<u32, String>,
) -> Result<(), DaemonError> {
    let links = netlink::dump::dump_links(handle).await?;
    for (ifindex, name) in ifaces {
        let link = links.iter().find(|l| l.ifindex == *ifindex);
        if link.and_then(|l| l.mac).is_none_or(|m| m == [0; 6]) {
            return Err(DaemonError::Iface(
                name.clone(),
                "has no Ethernet address; accel forwards between Ethernet interfaces".into(),
            ));
        }
        // A port's frames are its master's (see Mirror::port_of): accel
        // would pass all of them to the kernel.
        let master = link
            .and_then(|l| l.master)
            .and_then(|m| links.iter().find(|l| l.ifindex == m))
            .filter(|m| m.kind.as_deref() != Some("vrf"));
        if let Some(m) = master {
            return Err(DaemonError::Iface(
                name.clone(),
                format!(
                    "is a port of {} ({}): what arrives there is {}'s; run accel on {} instead",
                    m.name,
                    m.kind.as_deref().unwrap_or("a master device"),
                    m.name,
                    m.name
                ),
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
    Ok(())
}

/// Puts the program on every interface: into the link a previous instance
/// pinned at a handover (hitless), or attached afresh.
///
/// A previous instance that exited with a handover left its links pinned,
/// its program still forwarding from its (now frozen) maps under its lease.
/// Our maps are complete (the start resync filled them), so swapping our
/// program into those links is hitless: the swap is atomic per interface,
/// and each program only ever reads its own maps, which its writer filled
/// completely. No map is shared between the two instances.
async fn attach_all(
    progs: Programs<'_>,
    d: &mut Daemon,
    ifaces: &HashMap<u32, String>,
    opts: &RunOptions,
    presence: &Presence,
) -> Result<Vec<Attachment>, DaemonError> {
    let links = presence
        .pins
        .has_links()
        .then(|| presence.pins.links(Missing::Fail))
        .transpose()?;
    let mut attached = Vec::new();
    for (ifindex, name) in ifaces {
        let choice = (hook_choice(opts, name), opts.xdp_mode);
        let a = attach_one(progs, d, (*ifindex, name), choice, links.as_ref(), false).await?;
        let xdp = matches!(a.hook, Hook::Xdp(_));
        attached.push(a);
        if !xdp {
            continue;
        }
        // The TC program beside XDP forwards what XDP cannot: to TC
        // interfaces, and to neighbours still to resolve.
        let beside = format!("{name}:tc");
        let choice = (HookChoice::Tc, opts.xdp_mode);
        match attach_one(progs, d, (*ifindex, &beside), choice, links.as_ref(), true).await {
            Ok(b) => attached.push(b.beside()),
            Err(e) => {
                d.set_hook_flags(*ifindex, 0)?;
                warn!(
                    "{name}: no TC program beside XDP ({}); what XDP cannot forward (to TC \
                     interfaces, to neighbours still to resolve) goes to the kernel",
                    error_chain(&e)
                );
            }
        }
    }
    // Links pinned for interfaces this instance does not run on: their
    // program passes everything once its deadlines pass, but stays
    // attached for good. Remove them (which detaches them).
    if let Some(links) = &links {
        for name in links.names().unwrap_or_default() {
            warn!(
                "removing the pinned link {} of a previous instance (not one of this \
                 instance's interfaces): its interface is left to the kernel",
                links.shown(&name).display()
            );
            let _ = links.remove(&name);
        }
    }
    Ok(attached)
}

/// One link: the one a previous instance pinned at a handover (hitless),
/// or a new one. The interface's hook flags are written before the link
/// goes live; `beside`: the TC program beside an XDP one.
async fn attach_one(
    progs: Programs<'_>,
    d: &mut Daemon,
    (ifindex, name): (u32, &str),
    choice: (HookChoice, XdpMode),
    links: Option<&TrustedDir>,
    beside: bool,
) -> Result<Attachment, DaemonError> {
    let mut before_live = |hook: Hook| {
        let flags = match (beside, hook) {
            (true, _) => IfFlags::ACCEL_IF_TC_BESIDE.0,
            (false, Hook::Tc | Hook::TcFilter) => IfFlags::ACCEL_IF_TC.0,
            (false, Hook::Xdp(_)) => 0,
        };
        d.set_hook_flags(ifindex, flags)
    };
    if let Some(links) = links {
        match adopt(progs, ifindex, name, choice, links, &mut before_live) {
            Ok(Some(a)) => {
                info!(
                    "adopted the previous instance's link on {name} (ifindex {ifindex}, {}): \
                     hitless handover",
                    a.hook
                );
                return Ok(a);
            }
            Ok(None) => {}
            Err(msg) => {
                warn!(
                    "{name}: cannot adopt the previous instance's link ({msg}); detached \
                     it, the kernel forwards alone until this instance attaches"
                );
                // A live previous instance detaches once it sees the pin gone.
                if !beside && !wait_detached(ifindex, Duration::from_secs(5)).await {
                    warn!("{name}: the previous instance's program is still attached after 5 s");
                }
            }
        }
    }
    // Another instance's program, in either hook: two instances would
    // both forward, from different mirrors.
    // A cls_bpf filter at accel's handle is replaced instead: filters
    // outlive their process, and a killed instance leaves one behind.
    let other = current_hook(ifindex).filter(|h| !beside && *h != Hook::TcFilter);
    if let Some(hook) = other {
        return Err(DaemonError::Iface(
            name.to_string(),
            format!(
                "already runs accel's program ({hook}); is another accel running on it? \
                 (`accel stats` shows a running instance; `bpftool net` lists programs)"
            ),
        ));
    }
    let a = attach(progs, ifindex, name, choice, &mut before_live)?;
    info!("attached to {name} (ifindex {ifindex}, {})", a.hook);
    Ok(a)
}

/// The kernel's answer, or None with `failed` set when it could not be
/// asked.
fn answered<T>(failed: &std::cell::Cell<bool>, r: std::io::Result<Option<T>>) -> Option<T> {
    r.unwrap_or_else(|_| {
        failed.set(true);
        None
    })
}

/// Logs what became of an interface (see [`iface_return`]).
fn log_fate(said: iface_return::Said) {
    match said {
        iface_return::Said::Gone(name) => warn!(
            "{name} is gone (deleted, or moved to another namespace; accel's programs let go of \
             it): accel attaches again (an upgrade in place) when an interface of that name \
             appears"
        ),
        iface_return::Said::Renamed(name, to) => info!(
            "{name} was renamed {to}: accel's program stays on it (a restart would look for \
             {name})"
        ),
    }
}

/// The hook asked for interface `name`: its own (`-i IF:tc`), else
/// `--hook`'s. An explicit `--xdp-mode generic` makes `auto` XDP: generic
/// XDP is never picked automatically, so asking for it means XDP.
fn hook_choice(opts: &RunOptions, name: &str) -> HookChoice {
    let own = opts
        .ifaces
        .iter()
        .find(|i| i.name == name)
        .and_then(|i| i.hook);
    match own.unwrap_or(opts.hook) {
        HookChoice::Auto if opts.xdp_mode == XdpMode::Generic => HookChoice::Xdp,
        c => c,
    }
}

pub async fn run(opts: RunOptions) -> Result<(), DaemonError> {
    let mut signals = Signals::install()?;
    let (ifaces, conf) = check_options(&opts)?;
    // Before anything is attached: a port in use fails the start.
    let metrics = opts.metrics.map(crate::metrics_server::bind).transpose()?;
    let mut presence = Presence::claim(&opts.run_dir, &opts.pin_dir)?;
    let successor = std::env::var_os(handover::FROM_ENV).is_some();
    if let Err(e) = handover::checked_successor() {
        warn!(
            "upgrades in place (SIGUSR2) will be refused: {}",
            error_chain(&e)
        );
    }

    let sub = netlink::subscribe()?;
    tokio::spawn(sub.connection);
    check_links(&sub.handle, &ifaces).await?;
    let limits = Limits::from_env()?;
    if !limits.is_default() {
        info!("structure sizes from {}: {limits}", capacity::limits::ENV);
    }
    let refresh_step = refresh::step_from_env()?;
    let handover_deadline = handover::deadline_from_env()?;
    let Loaded {
        skel,
        maps,
        handoff_meta,
    } = load(&limits)?;
    if !handoff_meta {
        info!(
            "this kernel refuses XDP metadata (bpf_xdp_adjust_meta) to XDP programs: the TC \
             program beside each XDP interface decides again every frame XDP passes"
        );
    }
    // The programs live as long as the process.
    let skel: &'static mut bpf::AccelSkel<'static> = Box::leak(Box::new(skel));
    // Subscribed before the start dump, like the rtnetlink events.
    let (report, feed) = report::Report::new(opts.thresholds.clone(), opts.check_every);
    let nh_events = NexthopEvents::subscribe().map_err(|source| NetlinkError::Socket {
        context: "subscribing to nexthop object events",
        source,
    })?;
    // IPsec policies are read before anything is attached: the datapath
    // must not forward what the kernel would encrypt or drop.
    let (xfrm, xfrm_first) = xfrm_watch::XfrmWatch::start()?;
    // So is the tc configuration that acts on their traffic.
    // So is the tc configuration (again once accel's own TC programs are
    // attached: see tc_watch).
    let our_tc = libbpf_rs::Program::id_from_fd(skel.progs.accel_tc.as_fd())
        .map_err(|e| DaemonError::Tc(crate::netlink::tc::TcError::OwnProgram(e.to_string())))?;
    let tc_ifaces: Vec<u32> = ifaces.keys().copied().collect();
    let tc_first = tc_watch::read_once(&tc_ifaces, our_tc);
    // Netfilter rules were checked before (check_ifaces); those added
    // while accel runs are followed.
    let (nf, nf_first) = if opts.allow_netfilter_bypass {
        (nf_watch::NfWatch::none(), Ok(Default::default()))
    } else {
        nf_watch::NfWatch::start()?
    };
    let mut d = Daemon {
        maps,
        mirror: Mirror::new(conf, opts.fib_only, &limits),
        handle: sub.handle,
        events: sub.events,
        nh_events,
        ifaces: ifaces.clone(),
        report,
        nudger: Nudger::default(),
        nudging: None,
        rules: rule_reader::RuleReader::default(),
        xfrm,
        tc: tc_watch::TcWatch::none(),
        nf,
        lease: Lease::new(),
        jobs: jobs::Jobs::default(),
        trace: open_trace()?,
        outcome: EventOutcome::default(),
        unflushed: 0,
        unflushed_since: None,
        traced: Vec::new(),
        clock: &mut skel.progs.accel_clock,
        capacity: capacity::Monitor::default(),
        settle_after: None,
    };
    d.poll_multipath()?;
    d.xfrm_read(xfrm_first)?;
    d.tc_read(tc_first)?;
    d.nf_read(nf_first)?;
    // A successor swaps its program into links that forward from its
    // predecessor's complete mirror: its own must be complete first. A
    // fresh start attaches at once, with everything but the routes in
    // place, and forwards through bpf_fib_lookup while the mirror is built.
    let adopting = presence.pins.has_links();
    if adopting {
        d.resync_now(ResyncCause::Start).await?;
    } else {
        d.sync_state().await?;
    }
    d.renew_lease()?;

    let progs = Programs {
        xdp: &skel.progs.accel_xdp,
        tc: &skel.progs.accel_tc,
    };
    let attached = attach_all(progs, &mut d, &ifaces, &opts, &presence).await?;
    let (tc, tc_now) = tc_watch::TcWatch::start(tc_ifaces, our_tc)?;
    d.tc = tc;
    d.tc_read(tc_now)?;
    let requests = presence.publish(&d.maps, feed.clone())?;
    let attach_probe = probe_attachments(progs, &attached);
    if let Some(listener) = metrics {
        serve_metrics(listener, &opts, &feed)?;
    }
    report::log_watching(opts.check_every);
    announce_running(&mut d, attached.len(), &opts, adopting, successor)?;

    let mut run = Running {
        d,
        presence,
        attached,
        progs,
        attach_probe,
        requests,
        feed,
        handover: None,
        limits,
        growth: capacity::growth::Growth::new(opts.grow_after),
        returns: iface_return::Returns::default(),
        refresh: refresh::Refresh::new(refresh_step),
        handover_deadline,
    };
    // This thread runs the event loop. Only now, so that a refused start
    // says one line, and says it at normal priority.
    crate::realtime::enter_loop();
    let result = run.event_loop(&mut signals).await;
    run.stop(result)
}

/// Says the instance runs (to the log and to systemd); a fresh start then
/// builds the mirror in the background.
fn announce_running(
    d: &mut Daemon,
    interfaces: usize,
    opts: &RunOptions,
    adopting: bool,
    successor: bool,
) -> Result<(), DaemonError> {
    info!(
        "accel running on {interfaces} interface(s); maps pinned at {}{}",
        opts.pin_dir.display(),
        if adopting {
            ""
        } else {
            "; bpf_fib_lookup decides until the mirror is built"
        }
    );
    handover::notify_systemd(successor);
    if !adopting {
        d.start_job(
            Purpose::Resync {
                cause: ResyncCause::Start,
                stale: true,
            },
            None,
        )?;
    }
    Ok(())
}

/// Watches that each attachment still runs this instance's program.
fn probe_attachments(progs: Programs<'_>, attached: &[Attachment]) -> AttachProbe {
    AttachProbe::new(
        attached
            .iter()
            .map(|a| {
                let ours = libbpf_rs::Program::id_from_fd(progs.for_hook(a.hook).as_fd());
                a.probe(ours.unwrap_or(0))
            })
            .collect(),
    )
}

/// Serves `--metrics` on its own thread from the bound `listener`.
fn serve_metrics(
    listener: std::net::TcpListener,
    opts: &RunOptions,
    feed: &crate::control::StatusFeed,
) -> Result<(), DaemonError> {
    let shown = listener
        .local_addr()
        .map_or_else(|_| "?".into(), |a| a.to_string());
    let scrapes = crate::metrics_server::Scrapes {
        pin_dir: opts.pin_dir.clone(),
        feed: feed.clone(),
        top_blackholes: opts.top_blackholes,
    };
    crate::metrics_server::serve(listener, scrapes)?;
    info!("metrics on http://{shown}/metrics");
    Ok(())
}

/// Whether the machine has the memory for a successor beside this
/// instance (see [`capacity::growth::room_for_successor`]); when not, says
/// so after `what`.
fn memory_for_successor(what: &str, retry: std::time::Duration) -> bool {
    use capacity::growth;
    match growth::memory_kib() {
        Ok((avail, rss)) if growth::room_for_successor(avail, rss) => true,
        Ok((avail, rss)) => {
            warn!(
                "{what}: {avail} KiB of memory available, a successor needs twice this \
                 instance's {rss} KiB; retrying in {retry:?}"
            );
            false
        }
        Err(e) => {
            warn!("{what}: reading memory figures: {e}");
            false
        }
    }
}

/// Whether an upgrade in place started.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Handing {
    /// The successor runs, with this pid; it has yet to take over.
    Started(u32),
    /// Nothing was handed over (logged): this instance carries on, as the
    /// string says why.
    Refused(String),
}

impl Handing {
    fn started(&self) -> bool {
        matches!(self, Handing::Started(_))
    }
}

/// Why the event loop ended without an error.
enum Stop {
    /// SIGINT or SIGTERM: detach.
    Signal,
    /// A successor adopted every link.
    HandedOver,
}

/// The attached daemon.
struct Running {
    d: Daemon,
    presence: Presence,
    attached: Vec<Attachment>,
    progs: Programs<'static>,
    /// Whether accel's program is still on each attached interface, in
    /// order.
    attach_probe: AttachProbe,
    requests: mpsc::Receiver<Pending>,
    feed: crate::control::StatusFeed,
    handover: Option<(Handover, HandoverFor)>,
    /// The sizes this instance's maps were made with.
    limits: Limits,
    /// When to grow them (an upgrade in place to bigger maps).
    growth: capacity::growth::Growth,
    /// Interfaces gone, and back under their name (an upgrade in place
    /// attaches to them again).
    returns: iface_return::Returns,
    /// When to start afresh (an upgrade in place to itself) for the
    /// mirror's interned next hops' sake.
    refresh: refresh::Refresh,
    /// How long a successor has to take over ([`handover::DEFAULT_DEADLINE`]).
    handover_deadline: Duration,
}

impl Running {
    /// After housekeeping: grows the structures short of room for long
    /// enough (see [`capacity::growth`]) by an upgrade in place to maps of
    /// the new sizes, when the memory for a successor is there.
    fn consider_growth(&mut self) -> Result<(), DaemonError> {
        use capacity::growth;
        if self.handover.is_some() {
            return Ok(());
        }
        let now = std::time::Instant::now();
        let Some(to) = self
            .growth
            .due(&self.limits, self.d.capacity.figures(), now)
        else {
            return Ok(());
        };
        let to = self.covering_needs(to);
        let what = format!("capacity: not growing the maps to {to}");
        if !memory_for_successor(&what, growth::RETRY_AFTER) {
            self.growth.failed(now);
            return Ok(());
        }
        info!(
            "capacity: structures short of room: upgrading in place to maps sized {}={to}",
            capacity::limits::ENV
        );
        let env = [(capacity::limits::ENV, to.to_string())];
        if !self.start_handover(HandoverFor::Growth, &env)?.started() {
            self.growth.failed(now);
        }
        Ok(())
    }

    /// After housekeeping: starts afresh, by an upgrade in place to
    /// itself, once the mirror has interned a step of next hops more than
    /// when it went live (see [`refresh`]), if the memory for a successor
    /// is there.
    fn consider_refresh(&mut self) -> Result<(), DaemonError> {
        let interned = self.d.mirror.interned();
        if self.refresh.newly_full(self.d.mirror.interned_refused()) {
            warn!(
                "the mirror's table of next hops is full ({interned} values): routes through \
                 next hops it has no room for go to bpf_fib_lookup until accel starts afresh \
                 (restart it if upgrades in place are refused)"
            );
        }
        let live = !self.d.lease.is_stale();
        let now = std::time::Instant::now();
        if self.handover.is_some() || !self.refresh.due(interned, live, now) {
            return Ok(());
        }
        let what = format!("not starting afresh for the mirror's {interned} interned next hops");
        if !memory_for_successor(&what, refresh::RETRY_AFTER) {
            self.refresh.failed(now);
            return Ok(());
        }
        info!(
            "the mirror has interned {interned} next hops, path lists and nexthop-object ids, \
             most of them no longer used: upgrading in place to a fresh instance"
        );
        if !self.start_handover(HandoverFor::Refresh, &[])?.started() {
            self.refresh.failed(now);
        }
        Ok(())
    }

    /// After housekeeping: says which interfaces went away (or were
    /// renamed), and upgrades in place to this same binary once a device
    /// has the name of one that went away: the successor attaches to it
    /// (see [`iface_return`]). The kernel is asked by ioctl, which takes no
    /// RTNL lock: a busy routing daemon cannot hold the loop here.
    fn consider_returns(&mut self) -> Result<(), DaemonError> {
        use iface_return::Action;
        if self.handover.is_some() {
            return Ok(());
        }
        // Only the kernel's "no such device" is an answer: a failed ask
        // (no socket) judges nothing this time.
        let failed = std::cell::Cell::new(false);
        let fates: Vec<_> = self
            .attached
            .iter()
            .filter(|a| !a.beside)
            .map(|a| {
                let f = iface_return::fate(
                    (a.ifindex, &a.name, a.is_released()),
                    |i| answered(&failed, runtime::iface_name(i)),
                    |n| answered(&failed, runtime::iface_index(n)),
                );
                (a.name.clone(), f)
            })
            .collect();
        if failed.get() {
            debug!("asking the kernel for accel's interfaces failed; looking again in a second");
            return Ok(());
        }
        self.release_gone(&fates);
        let now = std::time::Instant::now();
        let (said, action) = self.returns.look(&fates, now);
        said.into_iter().for_each(log_fate);
        let Action::TakeBack(back) = action else {
            return Ok(());
        };
        if let Some(why) = self.take_back_blocker(&back) {
            if self.returns.blocked(why.clone()) {
                warn!("not attaching again yet: {why}");
            }
            return Ok(());
        }
        let shown: Vec<String> = back
            .iter()
            .map(|(name, i)| format!("{name} (ifindex {i})"))
            .collect();
        let verb = if shown.len() == 1 { "is" } else { "are" };
        info!(
            "{} {verb} back: upgrading in place to attach to it",
            shown.join(", ")
        );
        if !self.start_handover(HandoverFor::TakeBack, &[])?.started() {
            self.returns.failed(now);
        }
        Ok(())
    }

    /// Lets go of the programs on interfaces that left the namespace
    /// ([`Attachment::release`]), the TC program beside included: a device
    /// moved into another namespace would otherwise keep running them.
    fn release_gone(&mut self, fates: &[(String, iface_return::Fate)]) {
        use iface_return::Fate;
        for (name, _) in fates
            .iter()
            .filter(|(_, f)| matches!(f, Fate::Gone | Fate::Back(_)))
        {
            let beside = format!("{name}:tc");
            for a in self.attached.iter_mut() {
                if (a.name == *name || a.name == beside) && !a.is_released() {
                    a.release();
                }
            }
        }
    }

    /// Why a successor could not take the interfaces `back` now: it
    /// resolves every name at start as this instance would hand them over
    /// (check_options, [`Self::devices`]), each to a device of its own,
    /// and wants an Ethernet address and no master on each (check_links);
    /// a cls_bpf filter cannot be handed over (Attachment::pin). None: it
    /// can.
    fn take_back_blocker(&self, back: &[(String, u32)]) -> Option<String> {
        let devices = self.devices();
        let mut runs_on = HashMap::new();
        for a in self.attached.iter().filter(|a| !a.beside) {
            let Ok((ifindex, _)) = device_of(&a.name, &devices) else {
                return Some(format!("no interface is named {} now", a.name));
            };
            if let Some(other) = runs_on.insert(ifindex, &a.name) {
                return Some(format!(
                    "{} and {other} stand for one device now (ifindex {ifindex})",
                    a.name
                ));
            }
            if a.hook == Hook::TcFilter {
                return Some(format!(
                    "{} runs a cls_bpf filter, which cannot be handed over; restart accel",
                    a.name
                ));
            }
        }
        back.iter().find_map(|(name, i)| {
            let Some(l) = self.d.mirror.link(*i).filter(|l| l.mac.is_some()) else {
                return Some(format!("{name} has no Ethernet address"));
            };
            let (_, master) = self.d.mirror.port_of(l)?;
            Some(format!("{name} is a port of {master}"))
        })
    }

    /// `to` with the route structures that are short of room sized to what
    /// the routes need, when that is more than `to` has. Only those: the
    /// count is a pass over every rule of the family, in the event loop.
    fn covering_needs(&self, to: Limits) -> Limits {
        use capacity::Structure;
        let figures = self.d.capacity.figures();
        let short = |s| figures.get(s).is_degraded();
        let started = std::time::Instant::now();
        let count = |short: bool, f: &dyn Fn() -> Result<usize, _>| match short.then(f) {
            Some(Ok(n)) => n,
            Some(Err(e)) => {
                warn!("capacity: counting what the routes need: {e}; doubling");
                0
            }
            None => 0,
        };
        let maps = &self.d.maps;
        let lines4 = count(short(Structure::Ipv4Trie), &|| {
            maps.lines_needed(Family::V4)
        });
        let lines6 = count(short(Structure::Ipv6Trie), &|| {
            maps.lines_needed(Family::V6)
        });
        debug!(
            "capacity: the routes need {lines4} IPv4 and {lines6} IPv6 trie lines (0: not \
             counted), counted in {:.0?}",
            started.elapsed()
        );
        capacity::growth::covering(to, lines4, lines6)
    }

    /// SIGUSR2: pins the links for a successor, gives it this instance's
    /// presence and starts it (with `env` set besides), `for_` a purpose.
    /// When the handover cannot start (logged), this instance carries on
    /// as before: [`Handing::Refused`], with why.
    fn start_handover(
        &mut self,
        for_: HandoverFor,
        env: &[(&str, String)],
    ) -> Result<Handing, DaemonError> {
        if self.handover.is_some() {
            info!("handover already in progress");
            return Ok(Handing::Refused(
                "an upgrade in place is already under way".into(),
            ));
        }
        // Before anything is pinned or given up.
        let successor = match handover::checked_successor() {
            Ok(s) => s,
            Err(e) => {
                let why = error_chain(&e);
                warn!("handover refused: {why}; carrying on");
                self.count_failed(for_);
                return Ok(Handing::Refused(why));
            }
        };
        let links = match self.presence.pins.links(Missing::Create) {
            Ok(l) => l,
            Err(e) => return Ok(self.failed_to_start(for_, &e)),
        };
        let pins = match handover::pin_links(&self.attached, &links) {
            Ok(p) => p,
            Err(e) => return Ok(self.failed_to_start(for_, &e)),
        };
        // This instance needs none of these to keep forwarding.
        self.presence.give_up();
        let retry = self.presence.pins.links(Missing::Fail);
        let mut env = env.to_vec();
        env.push((handover::devices::ENV, self.devices().encode()));
        match Handover::start(successor, links, pins.clone(), &env, self.handover_deadline) {
            Ok(h) => {
                let successor = h.successor_pid();
                info!(
                    "handover: started the successor (pid {successor}); XDP keeps forwarding \
                     from this instance's mirror until it takes over"
                );
                self.handover = Some((h, for_));
                Ok(Handing::Started(successor))
            }
            Err(e) => {
                let refused = self.failed_to_start(for_, &e);
                if let Ok(links) = retry {
                    handover::remove_pins(&links, &pins);
                }
                self.requests = self.presence.take_back(&self.d.maps, self.feed.clone())?;
                Ok(refused)
            }
        }
    }

    /// The devices this instance runs on, by the names given at start,
    /// for its successor (see [`handover::devices`]): one renamed since is
    /// found by its ifindex. A device gone, or let go of, is found by its
    /// name again.
    fn devices(&self) -> handover::devices::Devices {
        let here =
            |a: &&Attachment| !a.beside && !a.is_released() && runtime::ifname(a.ifindex).is_some();
        handover::devices::Devices::new(
            self.attached
                .iter()
                .filter(here)
                .map(|a| (a.name.clone(), a.ifindex)),
        )
    }

    /// A handover for `for_` that failed to start: said as a WARN, and
    /// counted.
    fn failed_to_start(&mut self, for_: HandoverFor, e: &dyn std::error::Error) -> Handing {
        let why = error_chain(e);
        warn!("handover failed ({why}); carrying on");
        self.count_failed(for_);
        Handing::Refused(why)
    }

    /// One more failed handover for `for_` (accel_handover_failures_total).
    fn count_failed(&mut self, for_: HandoverFor) {
        *self.d.report.handovers_failed.entry(for_).or_default() += 1;
    }

    /// `accel upgrade`: what SIGUSR2 does, answered with the successor's
    /// pid or why there is none.
    fn upgrade_on_request(&mut self, p: Pending) -> Result<(), DaemonError> {
        // One under way already (another client's, SIGUSR2's, a growth's):
        // the client follows that one, to the binary at the same path.
        if let Some((h, _)) = &self.handover {
            let _ = p.reply.send(Reply::Upgrading {
                pid: std::process::id(),
                successor: h.successor_pid(),
            });
            return Ok(());
        }
        let reply = match self.start_handover(HandoverFor::Upgrade, &[])? {
            Handing::Started(successor) => Reply::Upgrading {
                pid: std::process::id(),
                successor,
            },
            Handing::Refused(error) => Reply::Failed { error },
        };
        // The client's connection is its own: giving up the listening
        // socket to the successor does not close it.
        let _ = p.reply.send(reply);
        Ok(())
    }

    /// True once the successor took every link; takes everything back if
    /// it died first.
    fn check_handover(&mut self) -> Result<bool, DaemonError> {
        let (h, _) = self.handover.as_mut().expect("a handover is in progress");
        let run = &self.presence.run;
        match h.progress(|pid| run.names_pid(pid)) {
            Progress::Waiting => Ok(false),
            Progress::TakenOver => Ok(true),
            Progress::SuccessorFailed(status) => {
                let (h, for_) = self.handover.take().expect("a handover is in progress");
                warn!(
                    "handover: the successor exited ({status}) before taking over; this \
                     instance carries on"
                );
                h.remove_pins();
                self.count_failed(for_);
                let now = std::time::Instant::now();
                match for_ {
                    HandoverFor::Upgrade => {}
                    HandoverFor::Growth => self.growth.failed(now),
                    HandoverFor::TakeBack => self.returns.failed(now),
                    HandoverFor::Refresh => self.refresh.failed(now),
                }
                for a in &mut self.attached {
                    if let Err(e) = a.reclaim(self.progs.for_hook(a.hook).as_fd()) {
                        warn!("{}: putting this instance's program back: {e}", a.name);
                    }
                }
                self.requests = self.presence.take_back(&self.d.maps, self.feed.clone())?;
                Ok(false)
            }
        }
    }

    /// Hands every interface back to the kernel (unless a successor took
    /// them) and releases what this instance held.
    fn stop(mut self, result: Result<Stop, DaemonError>) -> Result<(), DaemonError> {
        if let Ok(Stop::HandedOver) = result {
            // The successor holds the links, the map pins and the socket.
            if let Some((h, _)) = &self.handover {
                handover::hand_main_pid_to(h.successor_pid());
            }
            drop(self.attached);
            info!("handover complete: the successor forwards; exiting");
            return Ok(());
        }
        let handing_over = self.handover.take();
        let gave_up = handing_over.is_some();
        if let Some((h, _)) = handing_over {
            info!("stopping the successor of the interrupted handover");
            h.abort();
        }
        // Hand everything to the kernel first, then leave the interfaces.
        let _ = self.d.write_deadlines(Deadlines::NONE);
        drop(self.attached);
        if gave_up {
            self.presence.run.remove_own_pid();
            self.presence.pins.remove_links_if_empty();
        } else {
            self.presence.leave();
        }
        info!("detached; the kernel forwards alone again");
        result.map(|_| ())
    }
}
