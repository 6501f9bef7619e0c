//! What makes a process the running instance: the run directory with its
//! lock, pid file and control socket, and the pin directory with its lock
//! and the map pins that `accel stats` and `lookup` open. A handover gives
//! them to the successor; a failed one takes them back.

use std::path::Path;

use tokio::net::UnixListener;
use tokio::sync::mpsc;

use crate::control::{self, Pending};
use crate::datapath::maps::Maps;
use crate::datapath::pin::PinDir;
use crate::datapath::DatapathError;
use crate::runtime::{RunDir, RuntimeError};

#[derive(Debug, thiserror::Error)]
pub enum PresenceError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Datapath(#[from] DatapathError),
    #[error("control socket {0}")]
    Bind(String, #[source] std::io::Error),
}

pub struct Presence {
    pub run: RunDir,
    pub pins: PinDir,
    server: Option<control::Server>,
}

impl Presence {
    /// Takes both locks: a second instance stops here, whether it shares
    /// the run directory or only the pin directory.
    pub fn claim(run_dir: &Path, pin_dir: &Path) -> Result<Presence, PresenceError> {
        let run = RunDir::claim(run_dir)?;
        let pins = PinDir::claim(pin_dir)?;
        Ok(Presence {
            run,
            pins,
            server: None,
        })
    }

    /// Pins the maps, opens the control socket and records the pid.
    /// Requests arrive through the returned receiver.
    pub fn publish(
        &mut self,
        maps: &Maps,
        feed: crate::control::StatusFeed,
    ) -> Result<mpsc::Receiver<Pending>, PresenceError> {
        self.pins.pin_all(maps)?;
        self.run.remove_socket();
        let (path, shown) = self.run.socket();
        let listener = UnixListener::bind(&path)
            .map_err(|e| PresenceError::Bind(shown.display().to_string(), e))?;
        let (server, requests) = control::serve(listener, feed);
        self.server = Some(server);
        self.run.write_pid()?;
        Ok(requests)
    }

    /// Gives up the socket, the pins and both locks (the pid file stays
    /// until the successor replaces it).
    pub fn give_up(&mut self) {
        self.server = None;
        self.run.remove_socket();
        self.pins.unpin_all();
        self.pins.unlock();
        self.run.unlock();
    }

    /// Takes everything back after a failed handover.
    pub fn take_back(
        &mut self,
        maps: &Maps,
        feed: crate::control::StatusFeed,
    ) -> Result<mpsc::Receiver<Pending>, PresenceError> {
        self.run.relock()?;
        self.pins.relock()?;
        self.publish(maps, feed)
    }

    /// The end of a stop without handover.
    pub fn leave(&mut self) {
        self.give_up();
        self.run.remove_own_pid();
        // Only if empty: never a link pin this instance did not adopt.
        self.pins.remove_links_if_empty();
    }
}
