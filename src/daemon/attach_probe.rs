//! Whether accel's programs are still attached, asked of the kernel off the
//! event loop. The questions wait for the RTNL lock (the XDP query is a
//! netlink request, tcx's BPF_PROG_QUERY takes the lock itself), and while a
//! routing daemon installs or withdraws a table the lock is taken once per
//! route: asked in the loop, the query was measured holding it 35-456 ms
//! (route changes through `ip -batch`), and no route event was applied
//! meanwhile. Now a blocking task asks, once a second at most, and the
//! status reports its last answer: at most a tick or two late, never a
//! stall.

use futures::FutureExt;
use tokio::task::JoinHandle;

use crate::datapath::attach::Probe;

pub(super) struct AttachProbe {
    probes: std::sync::Arc<[Probe]>,
    /// The last answer, one per probe; until the first arrives, what the
    /// attachment just did says (attached).
    live: Vec<bool>,
    asking: Option<JoinHandle<Vec<bool>>>,
}

impl AttachProbe {
    pub fn new(probes: Vec<Probe>) -> Self {
        AttachProbe {
            live: vec![true; probes.len()],
            probes: probes.into(),
            asking: None,
        }
    }

    /// Takes the answer of the round that finished, if one did, and starts
    /// the next; never waits. A round still waiting for the lock is left
    /// alone: no second one queues behind it.
    pub fn tick(&mut self) {
        if let Some(asking) = &mut self.asking {
            if !asking.is_finished() {
                return;
            }
            // Finished: ready now. A panicked round leaves the last answer.
            if let Some(Ok(live)) = asking.now_or_never() {
                self.live = live;
            }
        }
        let probes = self.probes.clone();
        self.asking = Some(tokio::task::spawn_blocking(move || {
            probes.iter().map(Probe::is_current).collect()
        }));
    }

    /// Whether each probe's program was attached at the last answer.
    pub fn live(&self) -> &[bool] {
        &self.live
    }
}
