//! Convergence benchmark: time from `ip route replace` returning (the kernel
//! FIB has changed) to accel's datapath maps naming the new next hop.
//! Runs in the router's namespace beside a live `accel run`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;

use accel::bpf::types::accel_nh_flags as Nh;
use accel::datapath::maps::Maps;

#[derive(Parser)]
#[command(about = "route change -> datapath latency of a running accel (run as root in its netns)")]
struct Args {
    #[arg(long, default_value = "/sys/fs/bpf/accel")]
    pin_dir: PathBuf,
    /// The prefix to move back and forth, e.g. 198.51.100.0/24.
    #[arg(long)]
    prefix: String,
    /// An address inside it, looked up in the maps.
    #[arg(long)]
    probe: IpAddr,
    /// The two gateways (on DEV) the route alternates between.
    #[arg(long, num_args = 2)]
    gw: Vec<IpAddr>,
    #[arg(long)]
    dev: String,
    #[arg(long, default_value_t = 200)]
    count: usize,
}

fn gateway_in_maps(maps: &Maps, probe: IpAddr) -> Option<IpAddr> {
    let rt = maps.route_for(probe)?;
    let nh = maps.nexthop(rt.nh_id)?;
    if nh.flags & Nh::ACCEL_NH_GATEWAY.0 == 0 {
        return None;
    }
    Some(if nh.flags & Nh::ACCEL_NH_GW6.0 != 0 {
        std::net::Ipv6Addr::from(nh.gw).into()
    } else {
        std::net::Ipv4Addr::new(nh.gw[0], nh.gw[1], nh.gw[2], nh.gw[3]).into()
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() -> Result<()> {
    let a = Args::parse();
    let pins = accel::datapath::pin::PinDir::open_live(&a.pin_dir)?;
    let maps = Maps::open_pinned(&pins).context("opening accel's pinned maps")?;
    let family = if a.probe.is_ipv4() { "-4" } else { "-6" };
    let mut samples = Vec::with_capacity(a.count);
    for i in 0..a.count {
        let gw = a.gw[i % 2];
        let status = Command::new("ip")
            .args([
                family,
                "route",
                "replace",
                &a.prefix,
                "via",
                &gw.to_string(),
                "dev",
                &a.dev,
            ])
            .status()
            .context("running ip route replace")?;
        if !status.success() {
            bail!("ip route replace {} via {gw} failed", a.prefix);
        }
        // The kernel has applied the change when `ip` returns.
        let t0 = Instant::now();
        loop {
            if gateway_in_maps(&maps, a.probe) == Some(gw) {
                samples.push(t0.elapsed());
                break;
            }
            if t0.elapsed() > Duration::from_secs(2) {
                bail!("change {i}: the datapath did not follow within 2 s");
            }
            std::thread::sleep(Duration::from_micros(20));
        }
    }
    samples.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "route changes: {}  p50 {:.0} us  p90 {:.0} us  p99 {:.0} us  max {:.0} us",
        samples.len(),
        us(percentile(&samples, 0.5)),
        us(percentile(&samples, 0.9)),
        us(percentile(&samples, 0.99)),
        us(*samples.last().expect("count > 0"))
    );
    Ok(())
}
