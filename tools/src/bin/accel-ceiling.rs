//! `accel-ceiling`: the ceiling forwarder of the forwarding benchmark
//! (src/bpf/ceiling.bpf.c). Forwards every frame arriving on --in to --out
//! through the gateway MAC of the tag the generator put in it, with no
//! route lookup of its own, until killed (the XDP link is the process's:
//! it leaves the interface with it).
//!
//!   accel-ceiling --in r-in --out r-out --gw-mac 02:..

use std::mem::MaybeUninit;
use std::os::fd::AsFd;

use anyhow::{Context, Result};
use clap::Parser;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags};

use accel::datapath::attach::{attach, XdpMode};
use accel_tools::ceiling::CeilingSkelBuilder;
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
    let object = Box::leak(Box::new(MaybeUninit::uninit()));
    let skel = CeilingSkelBuilder::default()
        .open(object)
        .context("opening the ceiling BPF object")?
        .load()
        .context("loading the ceiling BPF object")?;
    // Every tag's adjacency: the gateways' MAC, the egress's, port 0.
    let mut v = [0u8; 16];
    v[..6].copy_from_slice(&gw);
    v[6..12].copy_from_slice(&smac);
    for tag in 0u32..8 {
        skel.maps
            .adj
            .update(&tag.to_ne_bytes(), &v, MapFlags::ANY)
            .context("writing an adjacency")?;
    }
    skel.maps
        .tx
        .update(
            &0u32.to_ne_bytes(),
            &out_ifindex.to_ne_bytes(),
            MapFlags::ANY,
        )
        .context("writing the devmap")?;
    let _link = attach(
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
