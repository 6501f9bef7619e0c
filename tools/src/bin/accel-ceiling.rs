//! `accel-ceiling`: the ceiling forwarder of the forwarding benchmark
//! (src/bpf/ceiling.bpf.c). Forwards every frame arriving on --in to --out
//! through the gateway MAC of the tag the generator put in it, with no
//! route lookup of its own, until killed (the XDP link is the process's:
//! it leaves the interface with it).
//!
//!   accel-ceiling --in r-in --out r-out --gw-mac 02:.. [--read-mib 8 [--reads 2] [--stride 65]]

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
    /// Also read 64-byte lines per frame (--reads, one by default), chosen
    /// by a hash of the destination, from an array of this many MiB: the
    /// fastest forwarder with that many dependent reads into a FIB of that
    /// size.
    #[arg(long, value_name = "MIB")]
    read_mib: Option<f64>,
    /// With --read-mib: dependent reads per frame, each line chosen by the
    /// one before, as a trie's levels are.
    #[arg(long, default_value_t = 1, requires = "read_mib")]
    reads: u32,
    /// With --read-mib: read one line in STRIDE only (65: each read in a
    /// page of its own, at an offset that moves from page to page; 64
    /// would put them all in a few cache sets), to tell what the TLB costs
    /// from what the caches do.
    #[arg(
        long,
        default_value_t = 1,
        requires = "read_mib",
        value_name = "STRIDE"
    )]
    stride: u32,
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
    let skel = match a.read_mib {
        Some(mib) => ceiling::load_reading(mib, a.reads, a.stride)?,
        None => ceiling::load()?,
    };
    let prog = match a.read_mib {
        Some(_) => &skel.progs.ceiling_read_fwd,
        None => &skel.progs.ceiling_fwd,
    };
    // Every tag's adjacency: the gateways' MAC, the egress's.
    for tag in 0..ceiling::TAGS {
        ceiling::set_adjacency(&skel, tag, gw, smac)?;
    }
    ceiling::set_egress(&skel, out_ifindex)?;
    let _link = attach_xdp(prog.as_fd(), in_ifindex, &a.ingress, a.xdp_mode)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let reading = a
        .read_mib
        .map(|m| {
            format!(
                ", reading {} line(s) of {m} MiB per frame, 1 line in {}",
                a.reads, a.stride
            )
        })
        .unwrap_or_default();
    eprintln!(
        "accel-ceiling: forwarding {} -> {}{reading} (ready)",
        a.ingress, a.egress
    );
    loop {
        std::thread::park();
    }
}
