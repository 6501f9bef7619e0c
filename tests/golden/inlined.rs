//! The programs as the verifier left them: every map lookup on the
//! forwarding path is inlined or a direct call. A call site that sees two
//! maps (clang merges lookups of different maps into one call) is left to
//! the generic `bpf_map_lookup_elem` helper and its indirect call, which
//! once cost every forwarded frame 10 ns (BENCHMARKS.md, "One call the
//! verifier could not inline"). Nothing else would notice: the answers stay
//! right.

use std::os::fd::{AsFd, AsRawFd};

use super::lab::Lab;

/// BPF_JMP | BPF_CALL: with src_reg 0, a call of a kernel function whose
/// address, less `__bpf_call_base`, is the immediate (as the kernel dumps
/// a program's translated instructions to root, bpf_insn_prepare_dump()).
const BPF_CALL: u8 = 0x85;

/// A kernel function's address (vmlinux's, not a module's), 0 where
/// kallsyms hides them (kernel.kptr_restrict=2), None without kallsyms.
fn kernel_symbol(name: &str) -> Option<u64> {
    let syms = std::fs::read_to_string("/proc/kallsyms").ok()?;
    let addr = syms.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let addr = f.next()?;
        let _ty = f.next()?;
        (f.next()? == name && f.next().is_none()).then(|| u64::from_str_radix(addr, 16).ok())?
    });
    Some(addr.unwrap_or_else(|| panic!("{name} not in /proc/kallsyms")))
}

/// The program's translated instructions, and whether it was JIT-compiled
/// (the verifier inlines lookups only for the JIT).
fn translated(prog: &libbpf_rs::ProgramMut<'_>) -> (Vec<u8>, bool) {
    let fd = prog.as_fd().as_raw_fd();
    let mut info = libbpf_sys::bpf_prog_info::default();
    let mut len = std::mem::size_of_val(&info) as u32;
    // SAFETY: info and len describe a writable bpf_prog_info of len bytes;
    // no buffer pointer is set, so the kernel writes only into info.
    let rc = unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd, &mut info, &mut len) };
    assert_eq!(rc, 0, "bpf_prog_get_info_by_fd");
    let mut insns = vec![0u8; info.xlated_prog_len as usize];
    let mut with = libbpf_sys::bpf_prog_info {
        xlated_prog_len: info.xlated_prog_len,
        xlated_prog_insns: insns.as_mut_ptr() as u64,
        ..Default::default()
    };
    let mut len = std::mem::size_of_val(&with) as u32;
    // SAFETY: as above; xlated_prog_insns points to xlated_prog_len
    // writable bytes, which outlive the call.
    let rc = unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd, &mut with, &mut len) };
    assert_eq!(rc, 0, "bpf_prog_get_info_by_fd with the instructions");
    (insns, info.jited_prog_len > 0)
}

/// The kernel functions `insns` calls, as immediates.
fn calls(insns: &[u8]) -> Vec<i32> {
    insns
        .chunks_exact(8)
        .filter(|i| i[0] == BPF_CALL && i[1] >> 4 == 0)
        .map(|i| i32::from_ne_bytes([i[4], i[5], i[6], i[7]]))
        .collect()
}

#[test]
fn no_map_lookup_goes_through_the_generic_helper() {
    let Some(lab) = Lab::new() else { return };
    let base = match kernel_symbol("__bpf_call_base") {
        Some(0) | None => {
            // The kernel then also hides the calls' targets in the dump.
            eprintln!("skipped: /proc/kallsyms shows no addresses");
            return;
        }
        Some(base) => base,
    };
    let imm = |func| kernel_symbol(func).unwrap_or(0).wrapping_sub(base) as i32;
    let generic = imm("bpf_map_lookup_elem");
    let progs = &lab.dp.skel.progs;
    for (name, prog) in [
        ("accel_xdp", &progs.accel_xdp),
        ("accel_tc", &progs.accel_tc),
    ] {
        let (insns, jited) = translated(prog);
        if !jited {
            eprintln!("skipped: {name} is not JIT-compiled (net.core.bpf_jit_enable=0)");
            return;
        }
        let calls = calls(&insns);
        // The immediates resolve (a dump without them would pass anything),
        // and lookups are among them: an LPM trie's has no inline form and
        // stays a direct call of trie_lookup_elem.
        for known in ["bpf_ktime_get_coarse_ns", "trie_lookup_elem"] {
            assert!(
                calls.contains(&imm(known)),
                "{name}: no call of {known} found"
            );
        }
        let n = calls.iter().filter(|&&c| c == generic).count();
        assert_eq!(n, 0, "{name}: {n} map lookups left to the generic helper");
    }
}
