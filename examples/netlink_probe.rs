//! Manual check of accel::netlink (needs root; run it in a throwaway netns):
//!
//!   ip netns add nltest
//!   ip netns exec nltest cargo run --example netlink_probe -- [SECONDS] [RCVBUF_BYTES] [--quiet]
//!
//! Subscribes, dumps (printing counts and the non-default rules), then prints
//! every event for SECONDS (default 10). With --quiet only per-kind counts
//! are printed at the end. A small RCVBUF_BYTES plus a burst of changes
//! (`ip -batch` of 50k route adds) should produce `Overrun`.

use std::collections::BTreeMap;
use std::time::Duration;

use accel::model::Event;
use accel::netlink;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quiet = args.iter().any(|a| a == "--quiet");
    let nums: Vec<u64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let secs = nums.first().copied().unwrap_or(10);
    let rcvbuf = nums
        .get(1)
        .map(|&b| b as usize)
        .unwrap_or(netlink::DEFAULT_RCVBUF);

    let netlink::Subscription {
        connection,
        handle,
        mut events,
    } = netlink::subscribe_with_rcvbuf(rcvbuf)?;
    tokio::spawn(connection);

    let t = std::time::Instant::now();
    let state = netlink::dump(&handle).await?;
    println!(
        "dump in {:?}: {} links, {} addrs, {} routes, {} neighbours, {} rules",
        t.elapsed(),
        state.links.len(),
        state.addrs.len(),
        state.routes.len(),
        state.neighbours.len(),
        state.rules.len()
    );
    if !quiet {
        for l in &state.links {
            println!("  link {l:?}");
        }
        for a in &state.addrs {
            println!("  addr {a:?}");
        }
        for r in &state.routes {
            println!("  route {r:?}");
        }
        for n in &state.neighbours {
            println!("  neigh {n:?}");
        }
    }
    for r in &state.rules {
        println!("  rule {r:?} default={}", r.is_default());
    }
    println!("ready");

    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    let deadline = tokio::time::sleep(Duration::from_secs(secs));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => break,
            ev = events.next() => {
                let Some(ev) = ev else { println!("connection closed"); break };
                let kind = match &ev {
                    Event::NewRoute(_) => "NewRoute",
                    Event::AddRoute(..) => "AddRoute",
                    Event::DelRoute(_) => "DelRoute",
                    Event::NewLink(_) => "NewLink",
                    Event::DelLink(_) => "DelLink",
                    Event::NewAddr(_) => "NewAddr",
                    Event::DelAddr(_) => "DelAddr",
                    Event::NewNeigh(_) => "NewNeigh",
                    Event::DelNeigh(_) => "DelNeigh",
                    Event::RulesChanged => "RulesChanged",
                    Event::NetconfChanged => "NetconfChanged",
                    Event::Overrun => "Overrun",
                    // The rtnetlink socket never carries these (see
                    // accel::netlink::nexthop_sock).
                    Event::NewNexthop(_) => "NewNexthop",
                    Event::DelNexthop(_) => "DelNexthop",
                };
                *counts.entry(kind).or_default() += 1;
                if !quiet || matches!(ev, Event::Overrun) {
                    println!("event {ev:?}");
                }
                if matches!(ev, Event::RulesChanged) && !quiet {
                    for r in netlink::dump_rules(&handle).await? {
                        if !r.is_default() {
                            println!("  rule now {r:?}");
                        }
                    }
                }
            }
        }
    }
    println!("event counts: {counts:?}");
    Ok(())
}
