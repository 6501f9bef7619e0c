//! Resyncs and checks beside the event loop.
//!
//! A full dump takes seconds at full-table size, and comparing or
//! installing it takes more. None of it may stop the daemon from applying
//! route changes or renewing its lease. So a job runs in stages that the
//! event loop interleaves with everything else:
//!
//! 1. **Dumping**: a future that streams the kernel's state into a new
//!    view, yielding every few hundred messages. Events keep being applied
//!    to the live mirror and are also logged.
//! 2. The dump done, a **resync** installs the new view, replays the log
//!    onto it (the events are newer than, or as new as, what the dump
//!    read: replaying a state the dump already had changes nothing), then
//!    **sweeps** the routes into line a few thousand prefixes per turn. A
//!    **check** replays the log onto its view and **compares** it with the
//!    maps, step by step, changing nothing.
//!
//! A job that follows lost events ("stale") revokes the lease when it
//! starts and grants it back when its sweep is done; a job the daemon
//! chose to run (`accel sync`, `--check`) leaves the lease alone: the live
//! mirror keeps following every event.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use log::{debug, info};
use tokio::sync::oneshot;

use super::{release_freed_memory, Daemon, DaemonError};
use crate::control::Reply;
use crate::mirror::{sort_prefixes, ChangeSummary, Comparison, Dumped, Mirror, Sweep, View};
use crate::model::Event;
use crate::model::KernelState;
use crate::netlink::{self, DumpedRoutes, NetlinkError};
use crate::status::ResyncCause;

/// Prefixes swept or compared per turn of the event loop: a few
/// milliseconds of work.
const STEP: usize = 1024;
/// How many differences `accel sync --check` describes.
const CHECK_EXAMPLES: usize = 10;

type Dump = Pin<Box<dyn Future<Output = Result<(Box<Dumped>, KernelState), NetlinkError>>>>;

/// What a job is for.
#[derive(Debug, Clone)]
pub enum Purpose {
    /// Make the maps equal to a fresh dump. `stale`: the mirror is known
    /// to be wrong (lost events, a link change): no lease until done.
    Resync { cause: ResyncCause, stale: bool },
    /// Report what a resync would change, changing nothing.
    Check,
}

/// A request waiting for a job's answer.
pub type Waiter = oneshot::Sender<Reply>;

enum Stage {
    Dumping {
        dump: Dump,
        log: Vec<Event>,
    },
    Sweeping {
        sweep: Sweep,
        summary: ChangeSummary,
    },
    Comparing {
        view: Box<View>,
        cmp: Comparison,
    },
}

pub struct Job {
    purpose: Purpose,
    /// The lease's revocations when the job started (see
    /// [`crate::lease::Lease::settle`]).
    revocations: u64,
    waiters: Vec<Waiter>,
    started: Instant,
    stage: Stage,
}

/// The daemon's jobs: the one running and those waiting their turn (at
/// most one of each purpose: a request joins a waiting job like it).
#[derive(Default)]
pub struct Jobs {
    running: Option<Job>,
    queued: VecDeque<(Purpose, Vec<Waiter>)>,
}

impl Jobs {
    /// Whether the running job has work for this turn (a sweep or a
    /// comparison step); a dump progresses through [`Jobs::dumped`].
    pub fn stepping(&self) -> bool {
        matches!(
            self.running,
            Some(Job {
                stage: Stage::Sweeping { .. } | Stage::Comparing { .. },
                ..
            })
        )
    }

    pub fn busy(&self) -> bool {
        self.running.is_some()
    }

    /// Waits for the running dump to finish (forever when none runs).
    pub async fn dumped(&mut self) -> Result<(Box<Dumped>, KernelState), NetlinkError> {
        match &mut self.running {
            Some(Job {
                stage: Stage::Dumping { dump, .. },
                ..
            }) => dump.await,
            _ => std::future::pending().await,
        }
    }

    /// An event about to be applied to the live mirror: logged while a
    /// dump runs, to replay onto its view when it is done; replayed at once
    /// onto the view a check is comparing, which must not report as a
    /// difference what merely happened after the dump.
    pub fn note(&mut self, ev: &Event, mirror: &Mirror) {
        match &mut self.running {
            Some(Job {
                stage: Stage::Dumping { log, .. },
                ..
            }) => log.push(ev.clone()),
            Some(Job {
                stage: Stage::Comparing { view, cmp },
                ..
            }) => mirror.replay_compared(view, cmp, ev),
            _ => {}
        }
    }

    fn enqueue(&mut self, purpose: Purpose, waiter: Option<Waiter>) {
        let same = |p: &Purpose| {
            matches!(
                (p, &purpose),
                (Purpose::Resync { .. }, Purpose::Resync { .. }) | (Purpose::Check, Purpose::Check)
            )
        };
        match self.queued.iter_mut().find(|(p, _)| same(p)) {
            Some((p, waiters)) => {
                if let (Purpose::Resync { stale, .. }, Purpose::Resync { stale: s, .. }) =
                    (p, &purpose)
                {
                    *stale |= *s;
                }
                waiters.extend(waiter);
            }
            None => self
                .queued
                .push_back((purpose, waiter.into_iter().collect())),
        }
    }
}

impl Daemon {
    /// Starts a job now, or after the running one.
    pub(super) fn start_job(
        &mut self,
        purpose: Purpose,
        waiter: Option<Waiter>,
    ) -> Result<(), DaemonError> {
        if let Purpose::Resync { stale: true, .. } = purpose {
            self.revoke_lease()?;
        }
        if self.jobs.busy() {
            self.jobs.enqueue(purpose, waiter);
            return Ok(());
        }
        let mut builder = match purpose {
            Purpose::Resync { .. } => self.mirror.view_builder(),
            Purpose::Check => self.mirror.check_builder(),
        };
        let (mut routes, done) = netlink::dump_beside()?;
        let dump: Dump = Box::pin(async move {
            while let Some(batch) = routes.recv().await {
                match batch {
                    DumpedRoutes::Batch(rs) => rs.into_iter().for_each(|r| builder.add(r)),
                    DumpedRoutes::Restart => builder.restart(),
                }
                // A batch is about a millisecond of work: the event loop
                // gets its turn between two.
                tokio::task::yield_now().await;
            }
            let state = done.await.map_err(|_| NetlinkError::DumpThreadGone)??;
            let Dumped { view, prefixes } = builder.finish_with_prefixes();
            // Sorting a million prefixes takes tens of milliseconds: not
            // on the event loop's thread.
            let prefixes = tokio::task::spawn_blocking(move || prefixes.map(sort_prefixes))
                .await
                .expect("sorting does not panic");
            Ok((Box::new(Dumped { view, prefixes }), state))
        });
        debug!("job started: {purpose:?}");
        self.jobs.running = Some(Job {
            purpose,
            revocations: self.lease.revocations(),
            waiters: waiter.into_iter().collect(),
            started: Instant::now(),
            stage: Stage::Dumping {
                dump,
                log: Vec::new(),
            },
        });
        Ok(())
    }

    /// The running job's dump finished: install or compare it. True when
    /// the events replayed onto it ask for another resync.
    pub(super) fn job_dumped(
        &mut self,
        dumped: Result<(Box<Dumped>, KernelState), NetlinkError>,
    ) -> Result<bool, DaemonError> {
        let mut job = self.jobs.running.take().expect("a dump ran");
        let Stage::Dumping { log, .. } = std::mem::replace(
            &mut job.stage,
            Stage::Sweeping {
                sweep: Sweep::finished(),
                summary: ChangeSummary::default(),
            },
        ) else {
            unreachable!("dumped only while dumping");
        };
        let (dumped, state) = match dumped {
            Ok(d) => d,
            Err(e) => return self.job_failed(job, e.into()),
        };
        debug!(
            "{:?}: dumped in {:.0?}, {} events meanwhile",
            job.purpose,
            job.started.elapsed(),
            log.len()
        );
        let mut resync_due = false;
        match job.purpose {
            Purpose::Resync { .. } => {
                // A rule event during the dump: its rules may be older than
                // the event, whatever a read since returned (the replay
                // below reads them again).
                if log.iter().any(|e| matches!(e, Event::RulesChanged)) {
                    self.mirror.rules_unread();
                }
                let mut out = Vec::new();
                let sweep = self.mirror.install_sorted(*dumped, state, &mut out);
                self.maps.apply(&out)?;
                let summary = ChangeSummary::of(&out);
                job.stage = Stage::Sweeping { sweep, summary };
                // Newer than (or as new as) what the dump read.
                for ev in log {
                    resync_due |= self.event(ev)?;
                }
                self.flush_routes()?;
            }
            Purpose::Check => {
                let mut view = Box::new(dumped.view);
                for ev in log.iter().filter(|e| e.is_route()) {
                    self.mirror.replay(&mut view, ev);
                }
                let others = self.mirror.non_route_differences(state, &log);
                let cmp = self.mirror.compare_start(&others, CHECK_EXAMPLES);
                job.stage = Stage::Comparing { view, cmp };
            }
        }
        self.jobs.running = Some(job);
        Ok(resync_due)
    }

    /// One step of the running job's sweep or comparison.
    pub(super) fn job_step(&mut self) -> Result<(), DaemonError> {
        let Some(mut job) = self.jobs.running.take() else {
            return Ok(());
        };
        let done = match &mut job.stage {
            Stage::Sweeping { sweep, summary } => {
                let mut out = Vec::new();
                let done = self.mirror.sweep_step(sweep, STEP, &mut out);
                self.maps.apply(&out)?;
                summary.add(&ChangeSummary::of(&out));
                done
            }
            Stage::Comparing { view, cmp } => self.mirror.compare_step(view, cmp, STEP),
            Stage::Dumping { .. } => false,
        };
        if done {
            self.job_done(job)?;
        } else {
            self.jobs.running = Some(job);
        }
        Ok(())
    }

    fn job_done(&mut self, job: Job) -> Result<(), DaemonError> {
        let took = job.started.elapsed();
        let mirror = self.mirror_size();
        let reply = match (&job.purpose, job.stage) {
            (Purpose::Resync { cause, stale }, Stage::Sweeping { summary, .. }) => {
                // Exact as of the dump and every event since: the next
                // renewal with nothing waiting grants the lease, unless
                // events were lost meanwhile (the resync queued for them
                // settles it).
                if *stale && !self.lease.settle(job.revocations) {
                    debug!("resync done, but the lease was revoked meanwhile: still stale");
                }
                self.report.resync_done(*cause);
                info!(
                    "resync ({}) in {took:.0?}: {summary}; mirror holds {mirror}",
                    cause.describe()
                );
                Reply::Synced {
                    changes: summary,
                    mirror,
                    resyncs: self.report.resyncs_total(),
                }
            }
            (Purpose::Check, Stage::Comparing { cmp, .. }) => {
                let n = cmp.summary.total();
                // Periodic checks that find nothing are not news.
                if n == 0 && job.waiters.is_empty() {
                    debug!("periodic check in {took:.0?}: the mirror matches the kernel");
                } else {
                    info!(
                        "check in {took:.0?}: a resync would make {n} changes ({})",
                        cmp.summary
                    );
                }
                self.correct_drift(cmp.summary.total() as u64)?;
                Reply::Checked {
                    changes: cmp.summary,
                    examples: cmp.examples,
                    mirror,
                }
            }
            _ => unreachable!("a job ends after its last stage"),
        };
        release_freed_memory();
        for w in job.waiters {
            let _ = w.send(reply.clone());
        }
        self.next_job()
    }

    /// A dump failed: a check says so; a resync ends the daemon, whose
    /// mirror cannot be brought into line.
    fn job_failed(&mut self, job: Job, e: DaemonError) -> Result<bool, DaemonError> {
        let error = crate::error_chain(&e);
        for w in job.waiters {
            let _ = w.send(Reply::Failed {
                error: error.clone(),
            });
        }
        match job.purpose {
            Purpose::Check => {
                self.next_job()?;
                Ok(false)
            }
            Purpose::Resync { .. } => Err(e),
        }
    }

    fn next_job(&mut self) -> Result<(), DaemonError> {
        if let Some((purpose, waiters)) = self.jobs.queued.pop_front() {
            let mut waiters = waiters.into_iter();
            self.start_job(purpose, waiters.next())?;
            if let Some(job) = &mut self.jobs.running {
                job.waiters.extend(waiters);
            }
        }
        Ok(())
    }

    /// Runs a resync to its end without the event loop (start-up, and a
    /// handover's successor before it adopts the links): events wait in
    /// the socket meanwhile, as the loop will apply them next.
    pub(super) async fn resync_now(&mut self, cause: ResyncCause) -> Result<(), DaemonError> {
        self.start_job(Purpose::Resync { cause, stale: true }, None)?;
        while self.jobs.busy() {
            if self.jobs.stepping() {
                self.job_step()?;
            } else {
                let dumped = self.jobs.dumped().await;
                self.job_dumped(dumped)?;
            }
        }
        Ok(())
    }
}
