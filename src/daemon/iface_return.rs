//! Interfaces that go away and come back.
//!
//! accel attaches to interfaces by name at start, and a link (XDP or tcx)
//! belongs to one device: when the device is deleted (a VLAN or bond
//! re-created by `ifdown`/`ifup`, a VF reset, a driver reloaded), the link
//! is left on nothing, and the device created again under the same name
//! has a new ifindex and no program. The kernel forwards its traffic alone
//! meanwhile, which is correct, only slow.
//!
//! This module notices both moments, once a second (housekeeping): the
//! interface gone (logged once; the health shows it detached), and a
//! device of the same name there again. The daemon then upgrades in place
//! to itself (the SIGUSR2 handover): the successor looks that name up
//! afresh (the others are handed to it by ifindex, see
//! `handover::devices`), attaches to the new device, and adopts the other
//! links hitlessly. That path is the one every upgrade takes, so nothing here
//! re-wires the maps by hand.

use std::time::{Duration, Instant};

/// What became of an interface accel attached to, by its ifindex and the
/// name it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Still there under its name.
    Here,
    /// Still there, renamed: accel's program is still on it.
    Renamed(String),
    /// Gone, and no interface has its name.
    Gone,
    /// Gone, and another interface (this ifindex) has its name now.
    Back(u32),
}

/// Judges one interface from the kernel's answers: `name_of` an ifindex
/// and `index_of` a name (`None`: no such interface). `released`: accel
/// let go of it already (see Attachment::release); such an interface is
/// judged by its name alone, since its ifindex, here again, may be
/// another device's (created with `index`, or moved in).
pub fn fate(
    (ifindex, name, released): (u32, &str, bool),
    name_of: impl Fn(u32) -> Option<String>,
    index_of: impl Fn(&str) -> Option<u32>,
) -> Fate {
    if released {
        return index_of(name).map_or(Fate::Gone, Fate::Back);
    }
    match name_of(ifindex) {
        Some(n) if n == name => Fate::Here,
        Some(n) => Fate::Renamed(n),
        None => match index_of(name) {
            // The ifindex was gone when read first: a device found under
            // the name now is another one, whatever its ifindex.
            Some(i) => Fate::Back(i),
            None => Fate::Gone,
        },
    }
}

/// After a take-back that did not happen (refused, or the successor
/// failed), the next try waits this long, doubling up to [`MAX_WAIT`].
pub const FIRST_WAIT: Duration = Duration::from_secs(30);
pub const MAX_WAIT: Duration = Duration::from_secs(15 * 60);

/// What was said and tried about returning interfaces.
#[derive(Debug, Default)]
pub struct Returns {
    /// Names logged as gone, until they are back.
    gone: Vec<String>,
    /// Names logged as renamed, until they have their name again.
    renamed: Vec<String>,
    /// The interfaces back at the last look: the back-off starts again
    /// when they change.
    back: Vec<(String, u32)>,
    /// No take-back before this.
    not_before: Option<Instant>,
    /// The wait after the next failure.
    wait: Option<Duration>,
    /// Why a take-back cannot succeed now, as last logged.
    blocked: Option<String>,
}

/// What the daemon should do after a look.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// Upgrade in place: these interfaces are back, as (name, new ifindex).
    TakeBack(Vec<(String, u32)>),
}

/// A line for the log.
#[derive(Debug, PartialEq, Eq)]
pub enum Said {
    Gone(String),
    Renamed(String, String),
}

impl Returns {
    /// Looks at each interface's fate (`name`, [`fate`]); returns what to
    /// log (each change once) and what to do. Take-backs wait for the
    /// back-off after a failed one, which starts again when the
    /// interfaces back change.
    pub fn look(&mut self, fates: &[(String, Fate)], now: Instant) -> (Vec<Said>, Action) {
        let mut said = Vec::new();
        let mut back = Vec::new();
        for (name, f) in fates {
            let was_gone = self.gone.contains(name);
            let was_renamed = self.renamed.contains(name);
            self.gone.retain(|n| n != name || *f == Fate::Gone);
            self.renamed
                .retain(|n| n != name || matches!(f, Fate::Renamed(_)));
            match f {
                Fate::Here => {}
                Fate::Renamed(to) if !was_renamed => {
                    self.renamed.push(name.clone());
                    said.push(Said::Renamed(name.clone(), to.clone()));
                }
                Fate::Renamed(_) => {}
                Fate::Gone if !was_gone => {
                    self.gone.push(name.clone());
                    said.push(Said::Gone(name.clone()));
                }
                Fate::Gone => {}
                Fate::Back(i) => back.push((name.clone(), *i)),
            }
        }
        if back != self.back {
            self.back = back.clone();
            self.not_before = None;
            self.wait = None;
            self.blocked = None;
        }
        let waiting = self.not_before.is_some_and(|t| now < t);
        if back.is_empty() || waiting {
            return (said, Action::Nothing);
        }
        (said, Action::TakeBack(back))
    }

    /// A take-back cannot succeed now, for `why`: whether that is new (to
    /// be logged; the same reason is said once).
    pub fn blocked(&mut self, why: String) -> bool {
        if self.blocked.as_ref() == Some(&why) {
            return false;
        }
        self.blocked = Some(why);
        true
    }

    /// A take-back was refused or its successor failed: try again later.
    pub fn failed(&mut self, now: Instant) {
        let wait = self.wait.unwrap_or(FIRST_WAIT);
        self.not_before = Some(now + wait);
        self.wait = Some((wait * 2).min(MAX_WAIT));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel<'a>(
        names: &'a [(u32, &'a str)],
    ) -> (
        impl Fn(u32) -> Option<String> + 'a,
        impl Fn(&str) -> Option<u32> + 'a,
    ) {
        (
            move |i| {
                names
                    .iter()
                    .find(|(j, _)| *j == i)
                    .map(|(_, n)| n.to_string())
            },
            move |n: &str| names.iter().find(|(_, m)| *m == n).map(|(i, _)| *i),
        )
    }

    #[test]
    fn an_interface_is_judged_by_its_ifindex_first() {
        let (name_of, index_of) = kernel(&[(4, "eth1"), (9, "eth1-old")]);
        assert_eq!(fate((4, "eth1", false), &name_of, &index_of), Fate::Here);
        // Renamed away, still the same device: the program is on it.
        let (name_of, index_of) = kernel(&[(4, "eth1-old"), (9, "eth1")]);
        assert_eq!(
            fate((4, "eth1", false), &name_of, &index_of),
            Fate::Renamed("eth1-old".into())
        );
        let (name_of, index_of) = kernel(&[(9, "eth2")]);
        assert_eq!(fate((4, "eth1", false), &name_of, &index_of), Fate::Gone);
        let (name_of, index_of) = kernel(&[(9, "eth1")]);
        assert_eq!(fate((4, "eth1", false), &name_of, &index_of), Fate::Back(9));
        // Released: by name alone. Its ifindex is another device's now,
        // or its own again (moved back): either way, back.
        let (name_of, index_of) = kernel(&[(4, "other"), (9, "eth1")]);
        assert_eq!(fate((4, "eth1", true), &name_of, &index_of), Fate::Back(9));
        let (name_of, index_of) = kernel(&[(4, "eth1")]);
        assert_eq!(fate((4, "eth1", true), &name_of, &index_of), Fate::Back(4));
        let (name_of, index_of) = kernel(&[(4, "other")]);
        assert_eq!(fate((4, "eth1", true), &name_of, &index_of), Fate::Gone);
    }

    #[test]
    fn gone_is_said_once_and_back_asks_for_a_take_back() {
        let mut r = Returns::default();
        let now = Instant::now();
        let gone = [("eth1".to_string(), Fate::Gone)];
        assert_eq!(
            r.look(&gone, now),
            (vec![Said::Gone("eth1".into())], Action::Nothing)
        );
        assert_eq!(r.look(&gone, now), (vec![], Action::Nothing));
        let back = [
            ("eth0".to_string(), Fate::Here),
            ("eth1".to_string(), Fate::Back(12)),
        ];
        assert_eq!(
            r.look(&back, now),
            (vec![], Action::TakeBack(vec![("eth1".into(), 12)]))
        );
        let renamed = [("eth0".to_string(), Fate::Renamed("wan".into()))];
        assert_eq!(
            r.look(&renamed, now).0,
            vec![Said::Renamed("eth0".into(), "wan".into())]
        );
        assert!(r.look(&renamed, now).0.is_empty());
    }

    #[test]
    fn a_failed_take_back_waits_longer_each_time() {
        let mut r = Returns::default();
        let t0 = Instant::now();
        let back = [("eth1".to_string(), Fate::Back(12))];
        assert!(matches!(r.look(&back, t0).1, Action::TakeBack(_)));
        r.failed(t0);
        assert_eq!(r.look(&back, t0).1, Action::Nothing);
        assert_eq!(
            r.look(&back, t0 + FIRST_WAIT - Duration::from_millis(1)).1,
            Action::Nothing
        );
        assert!(matches!(
            r.look(&back, t0 + FIRST_WAIT).1,
            Action::TakeBack(_)
        ));
        let t1 = t0 + FIRST_WAIT;
        r.failed(t1);
        assert_eq!(r.look(&back, t1 + FIRST_WAIT).1, Action::Nothing);
        assert!(matches!(
            r.look(&back, t1 + 2 * FIRST_WAIT).1,
            Action::TakeBack(_)
        ));
        for _ in 0..20 {
            r.failed(t1);
        }
        assert_eq!(r.wait, Some(MAX_WAIT));
        // Another interface back (or the same one again, created anew):
        // the back-off starts over.
        let two = [
            ("eth1".to_string(), Fate::Back(12)),
            ("eth2".to_string(), Fate::Back(13)),
        ];
        assert!(matches!(r.look(&two, t1).1, Action::TakeBack(b) if b.len() == 2));
        r.failed(t1);
        assert_eq!(r.wait, Some(2 * FIRST_WAIT));
    }

    #[test]
    fn gone_again_after_coming_back_is_said_again_and_a_blocker_once() {
        let mut r = Returns::default();
        let now = Instant::now();
        let gone = [("eth1".to_string(), Fate::Gone)];
        assert_eq!(r.look(&gone, now).0.len(), 1);
        r.look(&[("eth1".to_string(), Fate::Here)], now);
        assert_eq!(r.look(&gone, now).0, vec![Said::Gone("eth1".into())]);
        assert!(r.blocked("eth2 is gone too".into()));
        assert!(!r.blocked("eth2 is gone too".into()));
        assert!(r.blocked("eth3 is gone too".into()));
    }
}
