//! Prints the nexthop objects of the current namespace, then their changes
//! for a few seconds: a check of accel's nexthop parser on real kernel bytes.
use accel::netlink::nexthop_sock::{NexthopSocket, Received};

fn main() -> std::io::Result<()> {
    for o in NexthopSocket::open(false)?.dump()?.objects {
        println!("dump: {o:?}");
    }
    let sock = NexthopSocket::open(true)?;
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::time::Instant::now() < until {
        match sock.receive()? {
            Received::Events(ev) => ev.iter().for_each(|e| println!("event: {e:?}")),
            Received::Overrun => println!("overrun"),
        }
    }
    Ok(())
}
