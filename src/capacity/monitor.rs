//! The once-a-second capacity round of `accel run`: move what had no room
//! back into the mirror where room freed up, take the figures, raise or
//! clear alerts, publish the figures for `accel stats --capacity`.

use std::time::Instant;

use log::{debug, warn};

use super::alert::Alerts;
use super::Figures;
use crate::datapath::maps::Maps;
use crate::datapath::DatapathError;
use crate::mirror::Mirror;

#[derive(Debug, Default)]
pub struct Monitor {
    alerts: Alerts,
    figures: Figures,
}

impl Monitor {
    /// One round; call it about once a second (freed ids and nodes come
    /// back after a grace period, not at once).
    pub fn tick(&mut self, maps: &Maps, mirror: &mut Mirror) -> Result<(), DatapathError> {
        let changes = mirror.retry_capacity();
        if !changes.is_empty() {
            debug!(
                "capacity: {} map writes for entries that fit again",
                changes.len()
            );
        }
        maps.apply(&changes)?;
        maps.retry_ifaces()?;
        maps.retry_nexthops()?;
        let (v4, v6) = maps.retry_routes()?;
        if v4 + v6 > 0 {
            debug!("capacity: {v4} IPv4 /24s and {v6} IPv6 ranges back in the mirror");
        }
        self.figures = figures(maps, mirror)?;
        for alert in self.alerts.observe(&self.figures, Instant::now()) {
            warn!("{alert}");
        }
        maps.write_capacity(&self.figures)
    }

    /// The figures of the last round.
    pub fn figures(&self) -> &Figures {
        &self.figures
    }
}

/// Every structure's figures, from the route tables and the mirror.
pub fn figures(maps: &Maps, mirror: &Mirror) -> Result<Figures, DatapathError> {
    let mut f = Figures::default();
    for (s, u) in maps
        .route_usage()?
        .into_iter()
        .chain(mirror.capacity_usage())
    {
        f.set(s, u);
    }
    Ok(f)
}
