//! Compiles the XDP datapath and generates its Rust skeleton into OUT_DIR
//! (accel.skel.rs). The benchmark programs are built by tools/build.rs.
use std::env;
use std::ffi::OsStr;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SOURCE: &str = "src/bpf/accel.bpf.c";

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let vmlinux = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap()).join("vmlinux");
    SkeletonBuilder::new()
        .source(SOURCE)
        .clang_args([
            OsStr::new("-I"),
            vmlinux.as_os_str(),
            OsStr::new("-Wall"),
            OsStr::new("-Werror"),
            OsStr::new("-O2"),
        ])
        .build_and_generate(out_dir.join("accel.skel.rs"))
        .unwrap_or_else(|e| panic!("building {SOURCE} failed: {e:#}"));
    println!("cargo:rerun-if-changed=src/bpf");
    println!("cargo:rerun-if-changed=vmlinux/vmlinux.h");
}
