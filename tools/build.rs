//! Compiles the benchmark BPF programs and generates their Rust skeletons
//! into OUT_DIR: the lookup micro-benchmark (bench.skel.rs, which runs the
//! datapath's own lookup code from ../src/bpf) and the traffic generator
//! and sink (trafgen.skel.rs), the ceiling forwarder (ceiling.skel.rs) and
//! the memory-latency probe (memlat.skel.rs).
use std::env;
use std::ffi::OsStr;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

/// (source, skeleton file) pairs.
const SKELETONS: &[(&str, &str)] = &[
    ("src/bpf/bench.bpf.c", "bench.skel.rs"),
    ("src/bpf/trafgen.bpf.c", "trafgen.skel.rs"),
    ("src/bpf/ceiling.bpf.c", "ceiling.skel.rs"),
    ("src/bpf/memlat.bpf.c", "memlat.skel.rs"),
];

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap()).join("..");
    let vmlinux = root.join("vmlinux");
    // The datapath's headers (accel.h, fib.h): shared, not copied.
    let datapath = root.join("src/bpf");
    for (src, skel) in SKELETONS {
        SkeletonBuilder::new()
            .source(src)
            .clang_args([
                OsStr::new("-I"),
                vmlinux.as_os_str(),
                OsStr::new("-I"),
                datapath.as_os_str(),
                OsStr::new("-Wall"),
                OsStr::new("-Werror"),
                OsStr::new("-O2"),
            ])
            .build_and_generate(out_dir.join(skel))
            .unwrap_or_else(|e| panic!("building {src} failed: {e:#}"));
    }
    println!("cargo:rerun-if-changed=src/bpf");
    println!("cargo:rerun-if-changed=../src/bpf");
    println!("cargo:rerun-if-changed=../vmlinux/vmlinux.h");
}
