//! Failures on disk: per failing frame, its hex (one line, ready for a
//! golden test), how it was made, the outcome and the world it met.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::frames::Frame;
use super::lab::action_name;
use super::oracle::Outcome;
use super::world::World;

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Where to write: $ACCEL_FUZZ_OUT, else the test's target tmp dir.
pub fn out_dir() -> PathBuf {
    std::env::var_os("ACCEL_FUZZ_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures"))
}

/// Writes one failure; returns the file's path.
pub fn write(
    seed: u64,
    world_no: usize,
    frame_no: usize,
    w: &World,
    f: &Frame,
    o: &Outcome,
    why: &str,
) -> PathBuf {
    let dir = out_dir();
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("seed{seed}-world{world_no}-frame{frame_no}.txt"));
    let ingress = w.iface(f.ingress).map_or("?", |i| i.name);
    let mut s = String::new();
    let _ = writeln!(s, "violation: {why}");
    let _ = writeln!(s, "seed {seed}, world {world_no}, frame {frame_no}");
    let _ = writeln!(s, "ingress {ingress} (ifindex {})", f.ingress);
    let _ = writeln!(s, "recipe: {}", f.recipe);
    let _ = writeln!(s, "input  {}", hex(&f.bytes));
    let _ = writeln!(s, "output {}", hex(&o.out));
    let _ = writeln!(
        s,
        "action {}, counters {:?}",
        action_name(o.action),
        o.moved
    );
    let _ = writeln!(s, "\nkernel (ip -batch):");
    for l in &w.ip_lines {
        let _ = writeln!(s, "  {l}");
    }
    let _ = writeln!(s, "\ninterfaces:");
    for i in &w.ifaces {
        let _ = writeln!(
            s,
            "  {} ifindex {} {:02x?} {:?}",
            i.name, i.ifindex, i.mac, i.entry
        );
    }
    let _ = writeln!(s, "\nmirror changes (Maps::apply order):");
    for c in &w.changes {
        let _ = writeln!(s, "  {c:?}");
    }
    if let Err(e) = std::fs::write(&path, s) {
        eprintln!("could not write {}: {e}", path.display());
    }
    path
}
