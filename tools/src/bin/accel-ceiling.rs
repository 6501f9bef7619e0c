//! `accel-ceiling`: the ceiling forwarder of the forwarding benchmark
//! (src/bpf/ceiling.bpf.c). Forwards every frame arriving on --in to --out
//! through the gateway MAC of the tag the generator put in it, with no
//! route lookup of its own, until killed (the XDP link is the process's:
//! it leaves the interface with it).
//!
//!   accel-ceiling --in r-in --out r-out --gw-mac 02:..

use std::os::fd::AsFd;

use anyhow::Result;
use clap::Parser;

use accel::datapath::attach::{attach_xdp, XdpMode};
use accel_tools::ceiling;
use accel_tools::net::{iface_mac, parse_mac};

#[derive(Parser)]
#[command(
    version,
    about = "The forwarding benchmark's ceiling: an XDP forwarder handed its egress"
)]
struct Args {
    /// Interface the traffic arrives on.
    #[arg(long = "in")]
    ingress: String,
    /// Interface to forward it out of.
    #[arg(long = "out")]
    egress: String,
    /// The gateways' MAC (the benchmark's gateways share the sink's).
    #[arg(long)]
    gw_mac: String,
    #[arg(long, value_enum, default_value_t = XdpMode::Native)]
    xdp_mode: XdpMode,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("accel-ceiling: {e:#}");
        std::process::exit(1);
    }
}

fn run(a: Args) -> Result<()> {
    let in_ifindex = accel::runtime::ifindex(&a.ingress)?;
    let out_ifindex = accel::runtime::ifindex(&a.egress)?;
    let gw = parse_mac(&a.gw_mac)?;
    let smac = iface_mac(&a.egress)?;
    let skel = ceiling::load()?;
    // Every tag's adjacency: the gateways' MAC, the egress's.
    for tag in 0..ceiling::TAGS {
        ceiling::set_adjacency(&skel, tag, gw, smac)?;
    }
    ceiling::set_egress(&skel, out_ifindex)?;
    let _link = attach_xdp(
        skel.progs.ceiling_fwd.as_fd(),
        in_ifindex,
        &a.ingress,
        a.xdp_mode,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!(
        "accel-ceiling: forwarding {} -> {} (ready)",
        a.ingress, a.egress
    );
    loop {
        std::thread::park();
    }
}
