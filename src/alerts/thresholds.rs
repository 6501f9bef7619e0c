//! The alert thresholds an operator can set: `accel run --alert NAME=VALUE`
//! (repeatable), each with a default that suits a router beside FRR or
//! BIRD and a range outside which a value is refused at start.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// Share of transit packets not forwarded from the mirror (sent to
    /// bpf_fib_lookup or passed to the kernel), over a minute.
    pub not_accelerated_share: f64,
    /// Below this many transit packets a second the share is not judged.
    pub min_transit_pps: f64,
    /// Resyncs in the last minute that make a storm.
    pub resyncs_per_minute: u64,
    /// Share of a bounded structure in use that warns.
    pub capacity_share: f64,
    /// Packets a second passed for an unresolved neighbour.
    pub no_neigh_pps: f64,
    /// Packets a second dropped by blackhole routes.
    pub blackhole_pps: f64,
    /// How long the lease may be lapsed (resyncs included) before alerting.
    pub lease_grace: Duration,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            not_accelerated_share: 0.2,
            min_transit_pps: 100.0,
            resyncs_per_minute: 5,
            capacity_share: 0.8,
            no_neigh_pps: 1000.0,
            blackhole_pps: 100_000.0,
            lease_grace: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ThresholdError {
    #[error("expected NAME=VALUE, got {0:?}")]
    Syntax(String),
    #[error("unknown alert threshold {0:?} (known: {known})", known = NAMES.join(", "))]
    Unknown(String),
    #[error("{name}: {value:?} is not a number")]
    NotANumber { name: String, value: String },
    #[error("{name}: {value} is out of range ({range})")]
    OutOfRange {
        name: &'static str,
        value: f64,
        range: &'static str,
    },
}

/// Every settable threshold, as `--alert` names it.
pub const NAMES: [&str; 7] = [
    "not-accelerated-share",
    "min-transit-pps",
    "resyncs-per-minute",
    "capacity-share",
    "no-neigh-pps",
    "blackhole-pps",
    "lease-grace-seconds",
];

fn in_range(
    name: &'static str,
    v: f64,
    lo: f64,
    hi: f64,
    range: &'static str,
) -> Result<f64, ThresholdError> {
    if v.is_finite() && v >= lo && v <= hi {
        Ok(v)
    } else {
        Err(ThresholdError::OutOfRange {
            name,
            value: v,
            range,
        })
    }
}

impl Thresholds {
    /// Applies one `NAME=VALUE` setting.
    pub fn set(&mut self, setting: &str) -> Result<(), ThresholdError> {
        let (name, value) = setting
            .split_once('=')
            .ok_or_else(|| ThresholdError::Syntax(setting.into()))?;
        let name = NAMES
            .iter()
            .find(|n| **n == name.trim())
            .ok_or_else(|| ThresholdError::Unknown(name.into()))?;
        let v: f64 = value
            .trim()
            .parse()
            .map_err(|_| ThresholdError::NotANumber {
                name: name.to_string(),
                value: value.into(),
            })?;
        const SHARE: &str = "more than 0, at most 1";
        const PPS: &str = "0 to 1e9 packets a second";
        match *name {
            "not-accelerated-share" => {
                self.not_accelerated_share = in_range(name, v, f64::MIN_POSITIVE, 1.0, SHARE)?
            }
            "min-transit-pps" => self.min_transit_pps = in_range(name, v, 0.0, 1e9, PPS)?,
            "resyncs-per-minute" => {
                self.resyncs_per_minute = in_range(name, v, 1.0, 10_000.0, "1 to 10000")? as u64
            }
            "capacity-share" => {
                self.capacity_share = in_range(name, v, f64::MIN_POSITIVE, 1.0, SHARE)?
            }
            "no-neigh-pps" => self.no_neigh_pps = in_range(name, v, 0.0, 1e9, PPS)?,
            "blackhole-pps" => self.blackhole_pps = in_range(name, v, 0.0, 1e9, PPS)?,
            _ => {
                let s = in_range(name, v, 1.0, 3600.0, "1 to 3600 seconds")?;
                self.lease_grace = Duration::from_secs_f64(s);
            }
        }
        Ok(())
    }

    pub fn from_settings<'a>(
        settings: impl IntoIterator<Item = &'a str>,
    ) -> Result<Thresholds, ThresholdError> {
        let mut t = Thresholds::default();
        for s in settings {
            t.set(s)?;
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_apply_and_bad_ones_say_why() {
        let t =
            Thresholds::from_settings(["capacity-share=0.9", "lease-grace-seconds = 30"]).unwrap();
        assert_eq!(t.capacity_share, 0.9);
        assert_eq!(t.lease_grace, Duration::from_secs(30));
        let err = |s: &str| Thresholds::from_settings([s]).unwrap_err().to_string();
        assert!(err("capacity-share=1.5").contains("out of range"));
        assert!(err("capacity-share=0").contains("out of range"));
        assert!(err("capacity-share=NaN").contains("out of range"));
        assert!(err("no-neigh-pps=lots").contains("not a number"));
        assert!(err("colour=red").contains("unknown alert threshold"));
        assert!(err("capacity-share").contains("NAME=VALUE"));
    }
}
