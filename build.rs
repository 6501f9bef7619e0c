//! Compiles the XDP datapath and generates its Rust skeleton into OUT_DIR.
use std::env;
use std::ffi::OsStr;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "src/bpf/accel.bpf.c";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"))
        .join("accel.skel.rs");
    let vmlinux = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap()).join("vmlinux");
    SkeletonBuilder::new()
        .source(SRC)
        .clang_args([
            OsStr::new("-I"),
            vmlinux.as_os_str(),
            OsStr::new("-Wall"),
            OsStr::new("-Werror"),
            OsStr::new("-O2"),
        ])
        .build_and_generate(&out)
        .expect("building the XDP datapath failed");
    println!("cargo:rerun-if-changed=src/bpf");
    println!("cargo:rerun-if-changed=vmlinux/vmlinux.h");
}
