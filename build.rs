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
    commit();
    println!("cargo:rerun-if-changed=src/bpf");
    println!("cargo:rerun-if-changed=vmlinux/vmlinux.h");
}

/// The commit `accel --version` names: ACCEL_COMMIT when set (a package
/// built outside git), else git's; "unknown" without either.
fn commit() {
    println!("cargo:rerun-if-env-changed=ACCEL_COMMIT");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string())
    };
    let commit = env::var("ACCEL_COMMIT")
        .ok()
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    let suffix = if dirty { "-modified" } else { "" };
    println!("cargo:rustc-env=ACCEL_COMMIT={commit}{suffix}");
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        println!("cargo:rerun-if-changed={dir}/index");
    }
}
