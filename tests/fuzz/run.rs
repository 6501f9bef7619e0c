//! The fuzz loop: worlds one after another, frames through each, until the
//! time or frame budget is spent; what was covered, and what failed.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use accel::mirror::{Change, IfaceEntry};

use super::frames::{frame, Frame};
use super::lab::{action_name, skb_test_run_takes, Hook, Lab, STAT_NAMES};
use super::oracle::{check, Outcome};
use super::rng::Rng;
use super::{report, world};

/// Frames per world: a world costs a namespace and a datapath load
/// (~0.1 s), a frame a few microseconds.
const FRAMES_PER_WORLD: usize = 3000;
/// Frames written per kind of violation (they tend to repeat).
const FILES_PER_KIND: usize = 3;
/// Slots the worlds use (in0, out0, x0).
const SLOTS: u16 = 3;

pub struct Budget {
    pub seed: u64,
    pub time: Duration,
    pub frames: usize,
}

fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    let v = std::env::var(name).ok()?;
    Some(
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
    )
}

impl Budget {
    pub fn from_env() -> Budget {
        let seed = env("ACCEL_FUZZ_SEED").unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
        Budget {
            seed,
            time: Duration::from_secs(env("ACCEL_FUZZ_SECS").unwrap_or(10)),
            frames: env("ACCEL_FUZZ_FRAMES").unwrap_or(usize::MAX),
        }
    }
}

#[derive(Default)]
pub struct Totals {
    pub seed: u64,
    pub worlds: usize,
    pub frames: usize,
    /// Frames run again through the TC program (same_through_tc).
    pub tc_frames: usize,
    pub elapsed: Duration,
    pub actions: BTreeMap<String, usize>,
    pub counters: BTreeMap<&'static str, usize>,
    /// Per kind of violation: how many, and the files written.
    pub failures: BTreeMap<String, (usize, Vec<String>)>,
}

impl Totals {
    pub fn violations(&self) -> usize {
        self.failures.values().map(|(n, _)| n).sum()
    }

    pub fn failure_list(&self) -> String {
        self.failures
            .iter()
            .map(|(kind, (n, files))| format!("  {n} x {kind}: {}", files.join(" ")))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A violation's kind: its first line without the words that name
/// addresses, lengths or bytes.
fn kind(why: &str) -> String {
    why.lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .filter(|w| !w.chars().any(|c| c.is_ascii_digit() || "[],".contains(c)))
        .collect::<Vec<_>>()
        .join(" ")
}

impl fmt::Display for Totals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        writeln!(
            f,
            "fuzz_datapath: seed {}: {} frames in {} worlds, {:.1} s, {:.0} frames/s, {} violations",
            self.seed,
            self.frames,
            self.worlds,
            secs,
            self.frames as f64 / secs,
            self.violations()
        )?;
        writeln!(
            f,
            "  {} of them again through the TC program, compared with XDP",
            self.tc_frames
        )?;
        writeln!(f, "  actions: {:?}", self.actions)?;
        write!(f, "  counters: {:?}", self.counters)
    }
}

/// Counters of every slot: packets per counter, fwd_bytes.
fn snapshot(lab: &Lab) -> Vec<([u64; accel::stats::COUNTERS.len()], u64)> {
    (0..SLOTS)
        .map(|s| {
            let st = lab.dp.maps.stats(s).expect("stats");
            (st.packets, st.fwd_bytes)
        })
        .collect()
}

pub fn run_frame(lab: &Lab, f: &Frame) -> Outcome {
    run_frame_on(lab, Hook::Xdp, f)
}

fn run_frame_on(lab: &Lab, hook: Hook, f: &Frame) -> Outcome {
    let before = snapshot(lab);
    let (action, out) = lab.run_hook(hook, f.ingress, &f.bytes, 0);
    let after = snapshot(lab);
    let mut moved = Vec::new();
    let mut fwd_bytes = Vec::new();
    for (slot, ((pb, bb), (pa, ba))) in before.iter().zip(after.iter()).enumerate() {
        for (i, (b, a)) in pb.iter().zip(pa.iter()).enumerate() {
            if a != b {
                moved.push((slot, i, a.wrapping_sub(*b)));
            }
        }
        fwd_bytes.push(ba.wrapping_sub(*bb));
    }
    Outcome {
        action,
        out,
        moved,
        fwd_bytes,
    }
}

/// Runs `f` with every interface of the mirror marked as served through
/// TC (ACCEL_IF_TC), as `Lab::as_tc_interface` does for in0.
fn as_all_tc_interfaces<T>(lab: &Lab, f: impl FnOnce() -> T) -> T {
    let all = lab.dp.maps.ifaces();
    let put = |tc: u32| -> Vec<Change> {
        all.iter()
            .map(|(ifindex, e)| Change::PutIface {
                ifindex: *ifindex,
                entry: IfaceEntry {
                    mac: e.mac,
                    slot: e.slot,
                    mtu: e.mtu,
                    flags: e.flags | tc,
                    mtu6: e.mtu6,
                },
            })
            .collect()
    };
    lab.apply(&put(accel::bpf::types::accel_if_flags::ACCEL_IF_TC.0));
    let r = f();
    lab.apply(&put(0));
    r
}

/// The differential half: every frame of the world again, through the TC
/// program with its ingress served by TC, must meet the XDP program's
/// outcome exactly (one decision code for both, pkt.h). Left out: frames
/// BPF_PROG_TEST_RUN cannot make an skb of, and those XDP passed for an
/// unresolved neighbour, which TC forwards through bpf_redirect_neigh
/// after checks of its own (golden/tc.rs covers them).
fn same_through_tc(
    lab: &Lab,
    w: &world::World,
    seen: &[(Frame, Outcome)],
    seed: u64,
    t: &mut Totals,
) {
    let no_neigh = accel::bpf::types::accel_stat::ACCEL_STAT_PASS_NO_NEIGH.0 as usize;
    as_all_tc_interfaces(lab, || {
        for (n, (f, xdp)) in seen.iter().enumerate() {
            if !skb_test_run_takes(&f.bytes) || xdp.moved.iter().any(|m| m.1 == no_neigh) {
                continue;
            }
            let tc = run_frame_on(lab, Hook::Tc, f);
            t.tc_frames += 1;
            let same = tc.action == xdp.action
                && tc.out == xdp.out
                && tc.moved == xdp.moved
                && tc.fwd_bytes == xdp.fwd_bytes;
            if same {
                continue;
            }
            let why = format!(
                "tc differs from xdp: {} / {:?} against {} / {:?}",
                action_name(tc.action),
                tc.moved,
                action_name(xdp.action),
                xdp.moved
            );
            let (count, files) = t.failures.entry(kind(&why)).or_default();
            *count += 1;
            if files.len() < FILES_PER_KIND {
                let path = report::write(seed, t.worlds, n, w, f, &tc, &why);
                files.push(path.display().to_string());
            }
        }
    });
}

pub fn fuzz(budget: &Budget) -> Totals {
    println!(
        "fuzz_datapath: seed {} (ACCEL_FUZZ_SEED={} replays it), {} s",
        budget.seed,
        budget.seed,
        budget.time.as_secs()
    );
    let start = Instant::now();
    let mut rng = Rng::new(budget.seed);
    let mut t = Totals {
        seed: budget.seed,
        ..Totals::default()
    };
    'worlds: while start.elapsed() < budget.time && t.frames < budget.frames {
        let lab = Lab::new().expect("checked for root above");
        let w = world::build(&lab, &mut rng);
        t.worlds += 1;
        let mut seen = Vec::with_capacity(FRAMES_PER_WORLD);
        for n in 0..FRAMES_PER_WORLD {
            if t.frames >= budget.frames || (n % 256 == 0 && start.elapsed() >= budget.time) {
                same_through_tc(&lab, &w, &seen, budget.seed, &mut t);
                break 'worlds;
            }
            let f = frame(&w, &mut rng);
            let o = run_frame(&lab, &f);
            t.frames += 1;
            *t.actions.entry(action_name(o.action)).or_default() += 1;
            if let Some((_, stat, _)) = o.moved.first() {
                *t.counters.entry(STAT_NAMES[*stat]).or_default() += 1;
            }
            if let Err(why) = check(&w, &f, &o) {
                let (count, files) = t.failures.entry(kind(&why)).or_default();
                *count += 1;
                if files.len() < FILES_PER_KIND {
                    let path = report::write(budget.seed, t.worlds, n, &w, &f, &o, &why);
                    files.push(path.display().to_string());
                }
            }
            seen.push((f, o));
        }
        same_through_tc(&lab, &w, &seen, budget.seed, &mut t);
    }
    t.elapsed = start.elapsed();
    t
}
