//! The clock of the datapath's leases.
//!
//! The datapath compares its deadlines with `bpf_ktime_get_coarse_ns()`,
//! the host's CLOCK_MONOTONIC_COARSE. A daemon started in a time namespace
//! (`unshare --time`) reads its own clock with an offset, so deadlines
//! computed from it could lie days away for the datapath. The daemon
//! therefore reads the time from the datapath itself: the `accel_clock`
//! program, run through BPF_PROG_TEST_RUN, writes its clock into the frame.

use libbpf_rs::{ProgramInput, ProgramMut};

use super::DatapathError;

/// The datapath's clock now, in ns (one BPF_PROG_TEST_RUN, a few µs).
pub fn datapath_now_ns(clock_prog: &mut ProgramMut<'_>) -> Result<u64, DatapathError> {
    // The smallest frame BPF_PROG_TEST_RUN accepts for XDP is an Ethernet
    // header.
    let frame = [0u8; 64];
    let mut out = [0u8; 64];
    let input = ProgramInput {
        data_in: Some(&frame),
        data_out: Some(&mut out),
        ..Default::default()
    };
    clock_prog
        .test_run(input)
        .map_err(|source| DatapathError::Clock { source })?;
    Ok(u64::from_ne_bytes(out[..8].try_into().expect("8 bytes")))
}
