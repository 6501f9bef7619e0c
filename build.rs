//! Compiles the XDP datapath and the lookup micro-benchmark, and generates
//! their Rust skeletons into OUT_DIR.
use std::env;
use std::ffi::OsStr;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

/// (source, skeleton file name)
const OBJECTS: [(&str, &str); 2] = [
    ("src/bpf/accel.bpf.c", "accel.skel.rs"),
    ("src/bpf/bench.bpf.c", "bench.skel.rs"),
];

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let vmlinux = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap()).join("vmlinux");
    for (src, skel) in OBJECTS {
        SkeletonBuilder::new()
            .source(src)
            .clang_args([
                OsStr::new("-I"),
                vmlinux.as_os_str(),
                OsStr::new("-Wall"),
                OsStr::new("-Werror"),
                OsStr::new("-O2"),
            ])
            .build_and_generate(out_dir.join(skel))
            .unwrap_or_else(|e| panic!("building {src} failed: {e:#}"));
    }
    println!("cargo:rerun-if-changed=src/bpf");
    println!("cargo:rerun-if-changed=vmlinux/vmlinux.h");
}
