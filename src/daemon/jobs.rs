//! Resyncs and checks beside the event loop.
//!
//! A full dump takes seconds at full-table size, and comparing or
//! installing it takes more. None of it may stop the daemon from applying
//! route changes or renewing its lease. So a job runs in stages that the
//! event loop interleaves with everything else:
//!
//! 1. **Dumping**: the kernel's routes come in batches from a thread
//!    beside the loop, each batch one turn, and are read into an overlay
//!    on the live view (only where the kernel differs from it is kept; a
//!    full view at the start). Events keep being applied to the live
//!    mirror and are also logged. **Sealing** sorts what was read, on
//!    another thread.
//! 2. The dump done, a **resync** installs the new view, replays the log
//!    onto it (the events are newer than, or as new as, what the dump
//!    read: replaying a state the dump already had changes nothing; after
//!    an overlay, the events of the prefixes the live view stood in for
//!    are left out: it has them already), then
//!    **sweeps** the routes into line a few thousand prefixes per turn. A
//!    **check** replays the log onto its view and **compares** it with the
//!    maps, step by step, changing nothing.
//!
//! A job that follows lost events ("stale") revokes the lease when it
//! starts and grants it back when its sweep is done; a job the daemon
//! chose to run (`accel sync`, `--check`) leaves the lease alone: the live
//! mirror keeps following every event.

use std::collections::VecDeque;
use std::time::Instant;

use log::{debug, info, warn};
use tokio::sync::{mpsc, oneshot};

use super::{release_freed_memory, Daemon, DaemonError};
use crate::control::Reply;
use crate::mirror::{
    ChangeSummary, Checked, Comparison, DumpBuilder, Dumped, KernelRoutes, Mirror, Sweep,
};
use crate::model::Event;
use crate::model::KernelState;
use crate::netlink::{self, DumpedRoutes, NetlinkError};
use crate::status::ResyncCause;

/// Prefixes swept or compared per turn of the event loop: a few
/// milliseconds of work.
const STEP: usize = 1024;
/// How many differences `accel sync --check` describes.
const CHECK_EXAMPLES: usize = 10;

/// How a job's dump progressed (see [`Jobs::progress`]).
pub enum Progress {
    /// Routes to read.
    Batch(DumpedRoutes),
    /// The last route came, and the rest of the kernel's state.
    Read(Result<KernelState, NetlinkError>),
    /// What was read is sorted.
    Sealed(Box<KernelRoutes>),
}

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
        routes: mpsc::Receiver<DumpedRoutes>,
        done: oneshot::Receiver<Result<KernelState, NetlinkError>>,
        builder: Box<DumpBuilder>,
        log: Vec<Event>,
    },
    Sealing {
        sealed: tokio::task::JoinHandle<Box<KernelRoutes>>,
        state: KernelState,
        log: Vec<Event>,
    },
    Sweeping {
        sweep: Sweep,
        summary: ChangeSummary,
    },
    Comparing {
        checked: Checked,
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

    /// Whether a resync waits for the running job.
    pub fn resync_queued(&self) -> bool {
        self.queued
            .iter()
            .any(|(p, _)| matches!(p, Purpose::Resync { .. }))
    }

    /// Waits for the running dump's next progress (forever when none
    /// runs). Cancel-safe: the loop selects it beside everything else.
    pub async fn progress(&mut self) -> Progress {
        match &mut self.running {
            Some(Job {
                stage: Stage::Dumping { routes, done, .. },
                ..
            }) => match routes.recv().await {
                Some(batch) => Progress::Batch(batch),
                None => Progress::Read(match done.await {
                    Ok(r) => r,
                    Err(_) => Err(NetlinkError::DumpThreadGone),
                }),
            },
            Some(Job {
                stage: Stage::Sealing { sealed, .. },
                ..
            }) => Progress::Sealed(sealed.await.expect("sealing does not panic")),
            _ => std::future::pending().await,
        }
    }

    /// An event about to be applied to the live mirror: logged while a
    /// dump runs, to replay onto what it read when it is done; noted by a
    /// sweep, which must not remove what it set; replayed at once onto
    /// what a check is comparing, which must not report as a difference
    /// what merely happened after the dump.
    pub fn note(&mut self, ev: &Event, mirror: &mut Mirror) {
        match &mut self.running {
            Some(Job {
                stage: Stage::Dumping { log, .. } | Stage::Sealing { log, .. },
                ..
            }) => log.push(ev.clone()),
            Some(Job {
                stage: Stage::Sweeping { sweep, .. },
                ..
            }) => mirror.note_swept(sweep, ev),
            Some(Job {
                stage: Stage::Comparing { checked, cmp },
                ..
            }) => mirror.replay_compared(checked, cmp, ev),
            None => {}
        }
    }

    /// The running job, and its stage (left as a finished sweep).
    fn take_running(&mut self) -> (Job, Stage) {
        let mut job = self.running.take().expect("a dump ran");
        let finished = Stage::Sweeping {
            sweep: Sweep::finished(),
            summary: ChangeSummary::default(),
        };
        let stage = std::mem::replace(&mut job.stage, finished);
        (job, stage)
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
        self.run_job(purpose, waiter.into_iter().collect(), false)
    }

    /// Starts the dump of a job (none may be running).
    fn run_job(
        &mut self,
        purpose: Purpose,
        waiters: Vec<Waiter>,
        full: bool,
    ) -> Result<(), DaemonError> {
        let builder = match purpose {
            Purpose::Resync { .. } => self.mirror.resync_builder(full),
            Purpose::Check => self.mirror.check_dump_builder(full),
        };
        let (routes, done) = netlink::dump_beside()?;
        debug!("job started: {purpose:?}");
        self.jobs.running = Some(Job {
            purpose,
            revocations: self.lease.revocations(),
            waiters,
            started: Instant::now(),
            stage: Stage::Dumping {
                routes,
                done,
                builder: Box::new(builder),
                log: Vec::new(),
            },
        });
        Ok(())
    }

    /// The running job's dump progressed. True when events replayed onto
    /// what it read ask for another resync.
    pub(super) fn job_progress(&mut self, p: Progress) -> Result<bool, DaemonError> {
        match p {
            Progress::Batch(batch) => {
                self.job_batch(batch);
                Ok(false)
            }
            Progress::Read(state) => self.job_read(state),
            Progress::Sealed(routes) => self.job_dumped(routes),
        }
    }

    /// A batch of the dump's routes (about a millisecond of work: the
    /// event loop gets its turn between two).
    fn job_batch(&mut self, batch: DumpedRoutes) {
        let Some(Job {
            stage: Stage::Dumping { builder, .. },
            ..
        }) = &mut self.jobs.running
        else {
            unreachable!("batches come while dumping");
        };
        match batch {
            DumpedRoutes::Batch(rs) => rs.into_iter().for_each(|r| builder.add(r, &self.mirror)),
            DumpedRoutes::Restart => builder.restart(),
        }
    }

    /// The dump's last route came: what was read is sealed beside the
    /// loop (sorting a million prefixes takes tens of milliseconds).
    fn job_read(&mut self, state: Result<KernelState, NetlinkError>) -> Result<bool, DaemonError> {
        let (mut job, stage) = self.jobs.take_running();
        let Stage::Dumping { builder, log, .. } = stage else {
            unreachable!("read only while dumping");
        };
        let state = match state {
            Ok(s) => s,
            Err(e) => return self.job_failed(job, e.into()),
        };
        let mut routes = builder.finish(&self.mirror);
        let sealed = tokio::task::spawn_blocking(move || {
            routes.seal();
            Box::new(routes)
        });
        job.stage = Stage::Sealing { sealed, state, log };
        self.jobs.running = Some(job);
        Ok(false)
    }

    /// The running job's dump is read and sealed: install or compare it.
    /// True when the events replayed onto it ask for another resync.
    fn job_dumped(&mut self, routes: Box<KernelRoutes>) -> Result<bool, DaemonError> {
        let (mut job, stage) = self.jobs.take_running();
        let Stage::Sealing { state, mut log, .. } = stage else {
            unreachable!("sealed only while sealing");
        };
        debug!(
            "{:?}: dumped in {:.0?}, {} events meanwhile",
            job.purpose,
            job.started.elapsed(),
            log.len()
        );
        if let KernelRoutes::Against(o) = &*routes {
            if o.split() {
                warn!("the dump brought one prefix's routes in two runs: reading it again into a full view");
                self.run_job(job.purpose, job.waiters, true)?;
                return Ok(false);
            }
        }
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
                let sweep = match *routes {
                    KernelRoutes::Full(dumped) => {
                        self.mirror.install_sorted(dumped, state, &mut out)
                    }
                    KernelRoutes::Against(mut o) => {
                        log = o.claim_logged(log);
                        self.mirror.install_overlay(*o, state, &mut out)
                    }
                };
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
                let mut checked = match *routes {
                    KernelRoutes::Full(Dumped { view, .. }) => Checked::Full(Box::new(view)),
                    KernelRoutes::Against(o) => Checked::Against(o),
                };
                for ev in log.iter().filter(|e| e.is_route()) {
                    self.mirror.replay_checked(&mut checked, ev);
                }
                let others = self.mirror.non_route_differences(state, &log);
                let cmp = self.mirror.compare_start(&others, CHECK_EXAMPLES);
                job.stage = Stage::Comparing { checked, cmp };
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
            Stage::Comparing { checked, cmp } => self.mirror.compare_step(checked, cmp, STEP),
            Stage::Dumping { .. } | Stage::Sealing { .. } => false,
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
                let progress = self.jobs.progress().await;
                self.job_progress(progress)?;
            }
        }
        Ok(())
    }
}
