//! The devices an instance hands over on, for its successor.
//!
//! accel keeps running on a device renamed under it (its link belongs to
//! the device, not the name; see `iface_return`), but a successor started
//! with the same arguments looks its interfaces up by the names given at
//! start: it would find no device under a renamed one's old name, or
//! another device, and an upgrade in place (by hand, by the package, or one
//! accel starts itself to grow or refresh its maps) would fail, or move
//! accel's program off a device it ran on. So the instance handing over
//! tells its successor which device each name stood for, by ifindex.

use std::ffi::OsString;

/// Set in the successor's environment: `NAME:IFINDEX` words, one per
/// device the instance handing over runs on, NAME as given at start.
pub const ENV: &str = "ACCEL_HANDOVER_DEVICES";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{ENV}: {0:?} is not a list of NAME:IFINDEX words")]
pub struct DevicesError(String);

/// Which device (ifindex) each interface name given at start stands for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Devices(Vec<(String, u32)>);

impl Devices {
    pub fn new(devices: impl IntoIterator<Item = (String, u32)>) -> Devices {
        Devices(devices.into_iter().collect())
    }

    /// The environment's value. An interface name holds neither a colon
    /// nor white space (the kernel's `dev_valid_name`), so each word splits
    /// at its last colon.
    pub fn encode(&self) -> String {
        let words: Vec<String> = self.0.iter().map(|(n, i)| format!("{n}:{i}")).collect();
        words.join(" ")
    }

    pub fn parse(s: &str) -> Result<Devices, DevicesError> {
        let word = |w: &str| -> Option<(String, u32)> {
            let (name, ifindex) = w.rsplit_once(':')?;
            let ifindex = u32::try_from(crate::parse_positive(ifindex)?).ok()?;
            (!name.is_empty()).then(|| (name.to_string(), ifindex))
        };
        s.split_whitespace()
            .map(|w| word(w).ok_or_else(|| DevicesError(s.to_string())))
            .collect::<Result<_, _>>()
            .map(Devices)
    }

    /// What the instance this one succeeds said; none when this instance
    /// succeeds none (a predecessor's variable left in a started
    /// instance's environment means nothing).
    pub fn from_env() -> Result<Devices, DevicesError> {
        let from = std::env::var_os(super::FROM_ENV);
        Self::from_values(from, std::env::var_os(ENV))
    }

    fn from_values(
        from: Option<OsString>,
        devices: Option<OsString>,
    ) -> Result<Devices, DevicesError> {
        match (from, devices) {
            (Some(_), Some(v)) => Devices::parse(&v.to_string_lossy()),
            _ => Ok(Devices::default()),
        }
    }

    /// The ifindex `name` stood for.
    pub fn ifindex(&self, name: &str) -> Option<u32> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, i)| *i)
    }

    /// The device interface `name` stands for (its ifindex), and the name
    /// it has now: the device the predecessor ran on, if still there
    /// (renamed, perhaps), else the device of that name. `name_of` an
    /// ifindex and `index_of` a name are the kernel's answers (None: no
    /// such device).
    pub fn resolve(
        &self,
        name: &str,
        name_of: impl Fn(u32) -> Option<String>,
        index_of: impl Fn(&str) -> Option<u32>,
    ) -> Option<(u32, String)> {
        let ran_on = self.ifindex(name).and_then(|i| Some((i, name_of(i)?)));
        ran_on.or_else(|| Some((index_of(name)?, name.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_go_through_the_environment_unchanged() {
        let d = Devices::new([("eth0".into(), 2), ("a=b,c".into(), 17)]);
        assert_eq!(d.encode(), "eth0:2 a=b,c:17");
        assert_eq!(Devices::parse(&d.encode()), Ok(d.clone()));
        assert_eq!(d.ifindex("a=b,c"), Some(17));
        assert_eq!(d.ifindex("eth1"), None);
        assert_eq!(Devices::parse(""), Ok(Devices::default()));
    }

    #[test]
    fn a_malformed_word_is_refused() {
        for bad in ["eth0", "eth0:", ":3", "eth0:0", "eth0:x", "eth0:4294967296"] {
            assert!(Devices::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_name_stands_for_the_device_its_predecessor_ran_on_while_it_is_there() {
        let d = Devices::new([("eth0".into(), 2)]);
        let kernel = |devs: &'static [(u32, &'static str)]| {
            (
                move |i: u32| devs.iter().find(|d| d.0 == i).map(|d| d.1.to_string()),
                move |n: &str| devs.iter().find(|d| d.1 == n).map(|d| d.0),
            )
        };
        // Renamed, another device under the old name: the renamed one.
        let (name_of, index_of) = kernel(&[(2, "wan"), (9, "eth0")]);
        assert_eq!(
            d.resolve("eth0", name_of, index_of),
            Some((2, "wan".into()))
        );
        // Gone, back under the name: the device of that name.
        let (name_of, index_of) = kernel(&[(9, "eth0")]);
        assert_eq!(
            d.resolve("eth0", name_of, index_of),
            Some((9, "eth0".into()))
        );
        // Not handed over: by name; nothing of that name: none.
        assert_eq!(d.resolve("eth1", name_of, index_of), None);
        let none = Devices::default();
        assert_eq!(
            none.resolve("eth0", name_of, index_of),
            Some((9, "eth0".into()))
        );
    }

    #[test]
    fn only_a_successor_reads_them() {
        let v = || Some(OsString::from("eth0:2"));
        assert_eq!(Devices::from_values(None, v()), Ok(Devices::default()));
        let d = Devices::from_values(Some("7".into()), v()).unwrap();
        assert_eq!(d.ifindex("eth0"), Some(2));
    }
}
