//! Which `ip rule` sets the mirror can honour.
//!
//! The mirror holds the local and main tables, which is what the default
//! rules consult. A rule placed before main changes that only for the
//! packets it selects; when its one selector is a source prefix, the
//! datapath can tell those packets apart and hand them to bpf_fib_lookup,
//! which applies every rule. Any other selector (iif, fwmark, dport...), a
//! catch-all rule before main, or missing default rules: only
//! bpf_fib_lookup can tell, for the whole family.

use crate::model::{Family, Prefix, Rule, TABLE_LOCAL, TABLE_MAIN};

/// The main rule's priority: rules after it only see packets main has no
/// route for, and those the mirror leaves to bpf_fib_lookup anyway.
const MAIN_PRIORITY: u32 = 32766;

/// What the datapath needs to honour a family's rules from the mirror.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Mirrored {
    /// Packets from these sources go to bpf_fib_lookup.
    pub sources: Vec<Prefix>,
    /// Packets arriving on these interfaces go to bpf_fib_lookup.
    pub iifs: Vec<String>,
}

/// The rules as the datapath can honour them, or `None` when the family's
/// rules cannot be mirrored at all.
pub fn mirrorable(rules: &[Rule], family: Family) -> Option<Mirrored> {
    let rules: Vec<&Rule> = rules.iter().filter(|r| r.family == family).collect();
    let has = |prio, table| {
        rules
            .iter()
            .any(|r| r.is_default() && r.priority == prio && r.table == table)
    };
    // No rules at all: a dump that carried none (tests); the kernel always
    // has the defaults.
    let defaults_present = has(0, TABLE_LOCAL) && has(MAIN_PRIORITY, TABLE_MAIN);
    if !rules.is_empty() && !defaults_present {
        return None;
    }
    let mut out = Mirrored::default();
    for r in rules
        .iter()
        .filter(|r| !r.is_default() && r.priority <= MAIN_PRIORITY)
    {
        match (&r.src_only, &r.iif_only) {
            (Some(p), None) => out.sources.push(*p),
            // `iif lo` selects what the router sends itself, and the reverse
            // lookups of source validation: not something to mirror.
            (None, Some(i)) if i != "lo" => out.iifs.push(i.clone()),
            _ => return None,
        }
    }
    // More sources than the datapath's tries hold is the caller's call
    // (Mirror::sync_config): the family then goes to bpf_fib_lookup.
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RuleAction;

    fn rule(priority: u32, table: u32, src: Option<&str>, other: bool) -> Rule {
        rule_iif(priority, table, src, None, other)
    }

    fn rule_iif(
        priority: u32,
        table: u32,
        src: Option<&str>,
        iif: Option<&str>,
        other: bool,
    ) -> Rule {
        let src_only = src.map(|s| {
            let (a, l) = s.split_once('/').unwrap();
            Prefix::new(a.parse().unwrap(), l.parse().unwrap()).unwrap()
        });
        Rule {
            family: Family::V4,
            priority,
            table,
            action: RuleAction::ToTable,
            has_selectors: other || src_only.is_some() || iif.is_some(),
            src_only: src_only.filter(|_| !other),
            iif_only: iif.map(String::from).filter(|_| !other),
        }
    }

    fn defaults() -> Vec<Rule> {
        vec![
            rule(0, TABLE_LOCAL, None, false),
            rule(32766, TABLE_MAIN, None, false),
            rule(32767, 253, None, false),
        ]
    }

    #[test]
    fn default_rules_need_nothing() {
        assert_eq!(
            mirrorable(&defaults(), Family::V4),
            Some(Mirrored::default())
        );
        assert_eq!(mirrorable(&[], Family::V4), Some(Mirrored::default()));
    }

    #[test]
    fn source_rules_before_main_are_mirrored() {
        let mut r = defaults();
        r.push(rule(100, 10, Some("10.1.0.0/16"), false));
        r.push(rule(40000, 11, None, false));
        r.push(rule_iif(101, 10, None, Some("eth3"), false));
        let m = mirrorable(&r, Family::V4).unwrap();
        assert_eq!(m.sources.len(), 1);
        assert_eq!(m.sources[0].to_string(), "10.1.0.0/16");
        assert_eq!(m.iifs, vec!["eth3".to_string()]);
        let mut lo = defaults();
        lo.push(rule_iif(101, 10, None, Some("lo"), false));
        assert_eq!(mirrorable(&lo, Family::V4), None, "iif lo is not mirrored");
    }

    #[test]
    fn other_rules_are_not() {
        let mut r = defaults();
        r.push(rule(100, 10, Some("10.1.0.0/16"), true));
        assert_eq!(mirrorable(&r, Family::V4), None);
        let mut r = defaults();
        r.push(rule(100, 10, None, false));
        assert_eq!(mirrorable(&r, Family::V4), None, "catch-all before main");
        let mut r = defaults();
        r.remove(1);
        assert_eq!(mirrorable(&r, Family::V4), None, "main rule deleted");
    }
}
