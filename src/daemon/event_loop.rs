//! The event loop of `accel run`: first what woke it, then what to do about
//! it. Waiting and handling are apart so that every turn's work is timed:
//! the datapath lags the kernel for as long as one turn holds the loop, so
//! a long turn is logged with what it was.

use std::time::{Duration, Instant};

use log::{debug, warn};

use super::jobs::{Progress, Purpose};
use super::{DaemonError, Running, Stop, HANDOVER_POLL, HOUSEKEEPING, RESYNC_DELAY};
use crate::control::{Pending, Request};
use crate::lease::RENEW_EVERY;
use crate::model::Event;
use crate::netlink::nexthop_sock::Received;
use crate::status::ResyncCause;

/// A turn that takes longer is logged at debug level...
const SLOW_TURN: Duration = Duration::from_millis(10);
/// ... and one that takes longer than this as a warning: route changes
/// waited that long.
const STALL: Duration = Duration::from_millis(250);

/// What woke the loop.
enum Wake {
    Event(Option<Event>),
    NexthopEvents(std::io::Result<Received>),
    Rules(super::rule_reader::Read),
    Xfrm(super::xfrm_watch::Read),
    Tc(super::tc_watch::Read),
    Nf(super::nf_watch::Read),
    ResyncDue,
    Dump(Progress),
    JobStep,
    Renew,
    Housekeeping,
    Request(Pending),
    HandoverTick,
    Stop,
    Upgrade,
}

impl Wake {
    fn name(&self) -> &'static str {
        match self {
            Wake::Event(_) => "route/link/address/neighbour events",
            Wake::NexthopEvents(_) => "nexthop object events",
            Wake::Rules(_) => "ip rules read",
            Wake::Xfrm(_) => "IPsec (XFRM) policies read",
            Wake::Tc(_) => "tc configuration read",
            Wake::Nf(_) => "netfilter rules read",
            Wake::ResyncDue => "starting a resync",
            Wake::Dump(_) => "a job's dump",
            Wake::JobStep => "a step of a resync or check",
            Wake::Renew => "lease renewal",
            Wake::Housekeeping => "housekeeping",
            Wake::Request(_) => "a control request",
            Wake::HandoverTick => "the handover",
            Wake::Stop => "stopping",
            Wake::Upgrade => "starting an upgrade",
        }
    }
}

/// Timers of the loop.
struct Timers {
    renew: tokio::time::Interval,
    housekeeping: tokio::time::Interval,
    handover: tokio::time::Interval,
    /// Set while a resync is due, with the first reason.
    resync_at: Option<(tokio::time::Instant, ResyncCause)>,
}

async fn next_request(rx: &mut tokio::sync::mpsc::Receiver<Pending>) -> Pending {
    match rx.recv().await {
        Some(p) => p,
        // The server task is gone (a handover gave the socket away).
        None => std::future::pending().await,
    }
}

impl Running {
    pub(super) async fn event_loop(
        &mut self,
        signals: &mut super::Signals,
    ) -> Result<Stop, DaemonError> {
        let mut t = Timers {
            renew: tokio::time::interval(RENEW_EVERY),
            housekeeping: tokio::time::interval(HOUSEKEEPING),
            handover: tokio::time::interval(HANDOVER_POLL),
            resync_at: None,
        };
        loop {
            let wake = self.wait(&mut t, signals).await;
            let (what, started) = (wake.name(), Instant::now());
            // Route changes are applied at real-time priority until the
            // loop has caught up; a job's dump is installed and compared
            // (seconds of work at full table) at normal priority: see
            // crate::realtime.
            if matches!(
                wake,
                Wake::Event(Some(_)) | Wake::NexthopEvents(Ok(_)) | Wake::Rules(_)
            ) {
                crate::realtime::loop_working();
            }
            if matches!(wake, Wake::Dump(Progress::Sealed(_))) {
                crate::realtime::set_busy(true);
            }
            if let Some(stop) = self.handle(wake, &mut t).await? {
                return Ok(stop);
            }
            crate::realtime::set_busy(self.d.jobs.stepping());
            if self.d.events.caught_up() {
                crate::realtime::loop_caught_up();
            }
            let took = started.elapsed();
            if took >= STALL {
                warn!("one turn of the event loop took {took:.0?} ({what}): route changes waited as long");
            } else if took >= SLOW_TURN {
                debug!("slow turn: {what} took {took:.1?}");
            }
        }
    }

    async fn wait(&mut self, t: &mut Timers, signals: &mut super::Signals) -> Wake {
        let resync_at = t.resync_at;
        let resync_sleep = async {
            match resync_at {
                Some((at, _)) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let d = &mut self.d;
        tokio::select! {
            ev = d.events.next() => Wake::Event(ev),
            r = d.nh_events.next() => Wake::NexthopEvents(r),
            read = d.rules.next() => Wake::Rules(read),
            read = d.xfrm.next() => Wake::Xfrm(read),
            read = d.tc.next() => Wake::Tc(read),
            read = d.nf.next() => Wake::Nf(read),
            _ = resync_sleep => Wake::ResyncDue,
            p = d.jobs.progress() => Wake::Dump(p),
            _ = std::future::ready(()), if d.jobs.stepping() => Wake::JobStep,
            _ = t.renew.tick() => Wake::Renew,
            _ = t.housekeeping.tick() => Wake::Housekeeping,
            p = next_request(&mut self.requests) => Wake::Request(p),
            _ = t.handover.tick(), if self.handover.is_some() => Wake::HandoverTick,
            _ = signals.int.recv() => Wake::Stop,
            _ = signals.term.recv() => Wake::Stop,
            _ = signals.usr2.recv() => Wake::Upgrade,
        }
    }

    /// Does what `wake` asks; `Some` when the loop ends.
    async fn handle(&mut self, wake: Wake, t: &mut Timers) -> Result<Option<Stop>, DaemonError> {
        let d = &mut self.d;
        // Some(..): the mirror is stale and a resync is due.
        const CHANGED: ResyncCause = ResyncCause::Ambiguous;
        let stale: Option<ResyncCause> = match wake {
            Wake::Event(ev) => match ev {
                Some(Event::Overrun) => {
                    d.report.overruns += 1;
                    Some(ResyncCause::Overrun)
                }
                Some(ev) => d.events_from(ev)?.then_some(CHANGED),
                None => return Err(DaemonError::EventsClosed),
            },
            Wake::NexthopEvents(r) => {
                let cause = d.nexthop_events(r)?;
                d.report.overruns += u64::from(cause == Some(ResyncCause::Overrun));
                cause
            }
            Wake::Rules(read) => {
                d.rules_read(read)?;
                None
            }
            Wake::Xfrm(read) => {
                d.xfrm_read(read)?;
                None
            }
            Wake::Tc(read) => {
                d.tc_read(read)?;
                None
            }
            Wake::Nf(read) => {
                d.nf_read(read)?;
                None
            }
            Wake::ResyncDue => {
                let cause = t.resync_at.take().map_or(CHANGED, |(_, c)| c);
                d.start_job(Purpose::Resync { cause, stale: true }, None)?;
                None
            }
            Wake::Dump(p) => d.job_progress(p)?.then_some(CHANGED),
            Wake::JobStep => {
                d.job_step()?;
                None
            }
            Wake::Renew => None,
            Wake::Housekeeping => {
                d.housekeeping()?;
                // Figures for scrapes and alerts: never a reason to stop.
                if let Err(e) = self.publish_status() {
                    warn!("status not published: {}", crate::error_chain(&e));
                }
                self.consider_growth()?;
                self.consider_returns()?;
                self.consider_refresh()?;
                None
            }
            Wake::Request(p) if p.request == Request::Upgrade => {
                self.upgrade_on_request(p)?;
                None
            }
            Wake::Request(p) => {
                d.serve(p)?;
                None
            }
            Wake::HandoverTick => {
                if self.check_handover()? {
                    return Ok(Some(Stop::HandedOver));
                }
                None
            }
            Wake::Stop => return Ok(Some(Stop::Signal)),
            Wake::Upgrade => {
                self.start_handover(crate::status::HandoverFor::Upgrade, &[])?;
                None
            }
        };
        let stale = match stale {
            Some(cause) => Some(cause),
            None => self.d.settle_objects()?.then_some(CHANGED),
        };
        if let Some(cause) = stale {
            // Known stale: the datapath stops using the mirror now, not
            // when the resync starts.
            if t.resync_at.is_none() && !self.d.jobs.resync_queued() {
                warn!(
                    "{}: full resync; bpf_fib_lookup decides meanwhile",
                    cause.describe()
                );
                self.d.revoke_lease()?;
            }
            if self.d.jobs.busy() {
                // It waits for the running job anyway: queued now, it
                // starts when that job ends. The timer would fire only
                // after the job's steps, which this loop takes first, and
                // queue a resync more behind the one already following.
                self.d
                    .start_job(Purpose::Resync { cause, stale: true }, None)?;
            } else {
                t.resync_at
                    .get_or_insert((tokio::time::Instant::now() + RESYNC_DELAY, cause));
            }
        }
        if t.resync_at.is_none() && self.d.lease.due(Instant::now()) {
            self.d.renew_lease()?;
        }
        Ok(None)
    }
}
