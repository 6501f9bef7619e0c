//! An optional trace of every route change the event loop applies, for
//! measuring how far the datapath lags the kernel (`scripts/bench/bgp.sh`):
//! `ACCEL_TRACE_ROUTES=FILE accel run ...` writes one line per route
//! event, once the maps are written:
//!
//! ```text
//! <CLOCK_REALTIME seconds.nanoseconds> <add|del> <prefix>
//! ```

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::model::{Event, Prefix};

pub const ENV: &str = "ACCEL_TRACE_ROUTES";

pub struct RouteTrace {
    out: BufWriter<File>,
}

impl RouteTrace {
    /// The trace `ACCEL_TRACE_ROUTES` asks for, if any: created afresh
    /// (mode 0600, never through a symlink).
    pub fn from_env() -> std::io::Result<Option<(RouteTrace, PathBuf)>> {
        let Some(path) = std::env::var_os(ENV).map(PathBuf::from) else {
            return Ok(None);
        };
        let file = File::options()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)?;
        Ok(Some((
            RouteTrace {
                out: BufWriter::with_capacity(1 << 20, file),
            },
            path,
        )))
    }

    /// What a route event will record: its operation and prefix.
    pub fn of(ev: &Event) -> Option<(&'static str, Prefix)> {
        match ev {
            Event::NewRoute(r) | Event::AddRoute(r, _) => Some(("add", r.key.prefix)),
            Event::DelRoute(r) => Some(("del", r.key.prefix)),
            _ => None,
        }
    }

    /// Records a change that has just been written to the maps.
    pub fn record(&mut self, (op, prefix): (&'static str, Prefix)) {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let _ = writeln!(
            self.out,
            "{}.{:09} {op} {prefix}",
            t.as_secs(),
            t.subsec_nanos()
        );
    }

    pub fn flush(&mut self) {
        let _ = self.out.flush();
    }
}

impl Drop for RouteTrace {
    fn drop(&mut self) {
        self.flush();
    }
}
