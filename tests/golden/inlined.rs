//! The programs as the verifier left them: every map lookup on the
//! forwarding path is inlined or a direct call. A call site that sees two
//! maps (clang merges lookups of different maps into one call) is left to
//! the generic `bpf_map_lookup_elem` helper and its indirect call, which
//! once cost every forwarded frame 10 ns (BENCHMARKS.md, "One call the
//! verifier could not inline"). Nothing else would notice: the answers stay
//! right.

use std::os::fd::AsFd;

use libbpf_rs::query::{ProgInfoIter, ProgInfoQueryOptions};

use super::lab::Lab;

/// BPF_JMP | BPF_CALL: with src_reg 0, a call of a kernel function whose
/// address, less `__bpf_call_base`, is the immediate (as the kernel dumps
/// a program's translated instructions to root, bpf_insn_prepare_dump()).
const BPF_CALL: u8 = 0x85;

/// A kernel function's address, 0 where kallsyms hides them
/// (kernel.kptr_restrict=2).
fn kernel_symbol(name: &str) -> u64 {
    let syms = std::fs::read_to_string("/proc/kallsyms").expect("reading /proc/kallsyms");
    syms.lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            let addr = f.next()?;
            let _ty = f.next()?;
            (f.next()? == name && f.next().is_none()).then(|| u64::from_str_radix(addr, 16).ok())?
        })
        .unwrap_or_else(|| panic!("{name} not in /proc/kallsyms"))
}

/// The kernel functions the program `prog` calls, as immediates.
fn calls(prog: &libbpf_rs::ProgramMut<'_>) -> Vec<i32> {
    let id = libbpf_rs::Program::id_from_fd(prog.as_fd()).expect("program id");
    let opts = ProgInfoQueryOptions::default().include_xlated_prog_insns(true);
    let info = ProgInfoIter::with_query_opts(opts)
        .find(|p| p.id == id)
        .expect("the loaded program among the system's");
    info.xlated_prog_insns
        .chunks_exact(8)
        .filter(|i| i[0] == BPF_CALL && i[1] >> 4 == 0)
        .map(|i| i32::from_ne_bytes([i[4], i[5], i[6], i[7]]))
        .collect()
}

fn imm(func: &str) -> i32 {
    let base = kernel_symbol("__bpf_call_base");
    (kernel_symbol(func).wrapping_sub(base)) as i32
}

#[test]
fn no_map_lookup_goes_through_the_generic_helper() {
    let Some(lab) = Lab::new() else { return };
    if kernel_symbol("__bpf_call_base") == 0 {
        // The kernel then also hides the calls' targets in the dump.
        eprintln!("skipped: /proc/kallsyms shows no addresses (kernel.kptr_restrict)");
        return;
    }
    let generic = imm("bpf_map_lookup_elem");
    let clock = imm("bpf_ktime_get_coarse_ns");
    let progs = &lab.dp.skel.progs;
    for (name, prog) in [
        ("accel_xdp", &progs.accel_xdp),
        ("accel_tc", &progs.accel_tc),
    ] {
        let calls = calls(prog);
        // The immediates resolve (a dump without them would pass anything).
        assert!(
            calls.contains(&clock),
            "{name}: no call of bpf_ktime_get_coarse_ns found"
        );
        let n = calls.iter().filter(|&&c| c == generic).count();
        assert_eq!(n, 0, "{name}: {n} map lookups left to the generic helper");
    }
}
