//! The byte fixtures are what this kernel (6.18, x86_64) sent to
//! `ip xfrm policy count` and `ip xfrm policy getdefault` (strace -xx) in
//! a namespace with one fwd and two out policies and `setdefault fwd
//! block`; the sequence numbers are set to SEQ.

use super::*;

const SEQ: u32 = 0x6b16_d7fb;

/// A message as the kernel sends it: nlmsghdr (host order), then payload.
fn message(kind: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&(16 + payload.len() as u32).to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&0u16.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&21875u32.to_ne_bytes());
    m.extend_from_slice(payload);
    m
}

/// XFRM_MSG_NEWSPDINFO's payload: SPD IN 0 OUT 2 FWD 1.
const SPDINFO: [u8; 60] = [
    0xff, 0xff, 0xff, 0xff, // the request's flags, echoed
    0x1c, 0x00, 0x01, 0x00, // XFRMA_SPD_INFO, 28 bytes
    0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, // in, out, fwd
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // sockets'
    0x0c, 0x00, 0x02, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, // XFRMA_SPD_HINFO
    0x06, 0x00, 0x03, 0x00, 0x20, 0x20, 0x00, 0x00, // XFRMA_SPD_IPV4_HTHRESH
    0x06, 0x00, 0x04, 0x00, 0x80, 0x80, 0x00, 0x00, // XFRMA_SPD_IPV6_HTHRESH
];

/// XFRM_MSG_GETDEFAULT's payload: in accept, fwd block, out accept.
const DEFAULTS: [u8; 4] = [0x02, 0x01, 0x02, 0x00];

fn counts(spdinfo: &[u8]) -> Result<PolicyCounts, XfrmError> {
    answer::<GetSpdInfo>(&message(XFRM_MSG_NEWSPDINFO, SEQ, spdinfo), SEQ).expect("an answer")
}

fn state(inbound: u32, outbound: u32, forward: u32, defaults: [u8; 3]) -> XfrmState {
    XfrmState {
        policies: PolicyCounts {
            inbound,
            outbound,
            forward,
        },
        defaults: Defaults {
            inbound: defaults[0],
            forward: defaults[1],
            outbound: defaults[2],
        },
    }
}

const ACCEPT: u8 = XFRM_USERPOLICY_ACCEPT;
const BLOCK: u8 = XFRM_USERPOLICY_BLOCK;

#[test]
fn requests_are_what_iproute2_sends() {
    let spd = request::<GetSpdInfo>(SEQ);
    assert_eq!(spd.len(), 20);
    assert_eq!(spd[..4], 20u32.to_ne_bytes());
    assert_eq!(spd[4..6], XFRM_MSG_GETSPDINFO.to_ne_bytes());
    assert_eq!(spd[6..8], NLM_F_REQUEST.to_ne_bytes());
    assert_eq!(spd[8..12], SEQ.to_ne_bytes());
    assert_eq!(spd[12..], [0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    let def = request::<GetDefault>(SEQ);
    assert_eq!(def.len(), 19, "nlmsg_len 19, as iproute2's");
    assert_eq!(def[4..6], XFRM_MSG_GETDEFAULT.to_ne_bytes());
    assert_eq!(def[16..], [0, 0, 0]);
}

#[test]
fn spdinfo_reply_gives_the_main_policy_counts() {
    let c = counts(&SPDINFO).unwrap();
    assert_eq!(
        c,
        PolicyCounts {
            inbound: 0,
            outbound: 2,
            forward: 1
        }
    );
}

#[test]
fn default_reply_gives_the_default_policies() {
    let m = message(XFRM_MSG_GETDEFAULT, SEQ, &DEFAULTS);
    let d = answer::<GetDefault>(&m, SEQ).unwrap().unwrap();
    assert_eq!(
        d,
        Defaults {
            inbound: ACCEPT,
            forward: BLOCK,
            outbound: ACCEPT
        }
    );
}

#[test]
fn replies_to_other_requests_are_not_the_answer() {
    let m = message(XFRM_MSG_NEWSPDINFO, SEQ - 1, &SPDINFO);
    assert!(
        answer::<GetSpdInfo>(&m, SEQ).is_none(),
        "an earlier sequence"
    );
    let m = message(XFRM_MSG_GETDEFAULT, SEQ, &DEFAULTS);
    assert!(answer::<GetSpdInfo>(&m, SEQ).is_none(), "another type");
    assert!(answer::<GetSpdInfo>(&[0; 7], SEQ).is_none(), "a runt");
}

#[test]
fn an_error_reply_is_the_kernels_refusal() {
    // struct nlmsgerr: -EINVAL, then the request's header.
    let mut payload = (-libc::EINVAL).to_ne_bytes().to_vec();
    payload.extend_from_slice(&request::<GetDefault>(SEQ)[..16]);
    let m = message(NLMSG_ERROR, SEQ, &payload);
    match answer::<GetDefault>(&m, SEQ) {
        Some(Err(XfrmError::Refused { source, .. })) => {
            assert_eq!(source.raw_os_error(), Some(libc::EINVAL))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_spdinfo_is_an_error() {
    assert!(counts(&SPDINFO[..2]).is_err(), "no flags");
    assert!(counts(&SPDINFO[..4]).is_err(), "no XFRMA_SPD_INFO");
    let mut short = SPDINFO[..16].to_vec();
    short[4] = 12; // XFRMA_SPD_INFO of 8 bytes: in and out only
    assert!(counts(&short).is_err(), "too short for fwdcnt");
    let mut bad = SPDINFO.to_vec();
    bad[4] = 0xff; // longer than the message
    assert!(counts(&bad).is_err());
    let def = message(XFRM_MSG_GETDEFAULT, SEQ, &DEFAULTS[..2]);
    assert!(answer::<GetDefault>(&def, SEQ).unwrap().is_err());
}

#[test]
fn only_fwd_and_out_policies_or_defaults_apply_to_forwarding() {
    let all = [ACCEPT; 3];
    assert!(!XfrmState::NONE.applies_to_forwarding());
    assert!(!state(0, 0, 0, all).applies_to_forwarding());
    assert!(
        !state(3, 0, 0, all).applies_to_forwarding(),
        "IN policies: local delivery only"
    );
    assert!(
        !state(0, 0, 0, [BLOCK, ACCEPT, ACCEPT]).applies_to_forwarding(),
        "default in block: local delivery only"
    );
    assert!(state(0, 0, 1, all).applies_to_forwarding());
    assert!(state(0, 1, 0, all).applies_to_forwarding());
    assert!(state(0, 0, 0, [ACCEPT, BLOCK, ACCEPT]).applies_to_forwarding());
    assert!(state(0, 0, 0, [ACCEPT, ACCEPT, BLOCK]).applies_to_forwarding());
    assert!(
        state(0, 0, 0, [ACCEPT, 0, ACCEPT]).applies_to_forwarding(),
        "anything but accept is not let through unchecked"
    );
}

#[test]
fn socket_policies_do_not_apply_to_forwarding() {
    // Counts of socket policies only (inscnt, outscnt, fwdscnt).
    let mut s = SPDINFO;
    s[8..20].fill(0);
    s[20..32].copy_from_slice(&[1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]);
    let c = counts(&s).unwrap();
    let st = XfrmState {
        policies: c,
        defaults: Defaults::ACCEPT,
    };
    assert!(!st.applies_to_forwarding(), "{c:?}");
}

#[test]
fn the_fixture_applies_and_says_why() {
    let m = message(XFRM_MSG_GETDEFAULT, SEQ, &DEFAULTS);
    let st = XfrmState {
        policies: counts(&SPDINFO).unwrap(),
        defaults: answer::<GetDefault>(&m, SEQ).unwrap().unwrap(),
    };
    assert!(st.applies_to_forwarding());
    assert_eq!(
        st.describe(),
        "1 fwd and 2 out policies, default fwd block and out accept"
    );
}
