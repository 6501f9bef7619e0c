//! An optional trace of every route change the event loop applies, for
//! measuring how far the datapath lags the kernel (`scripts/bench/bgp.sh`):
//! `ACCEL_TRACE_ROUTES=FILE accel run ...` writes one line per route
//! event, once the maps are written:
//!
//! ```text
//! <CLOCK_REALTIME seconds.nanoseconds> <add|del> <prefix>
//! ```

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::model::{Event, Prefix};

pub const ENV: &str = "ACCEL_TRACE_ROUTES";

/// Lines gathered before they go to the writer thread.
const CHUNK: usize = 64 << 10;

/// The event loop formats lines into memory; a thread of its own writes
/// them, so that a slow disk (a journal commit can hold a write for
/// hundreds of milliseconds) never delays the loop it measures.
pub struct RouteTrace {
    buf: Vec<u8>,
    /// `None` once the writer failed or is gone: lines are dropped.
    to_writer: Option<mpsc::Sender<Vec<u8>>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl RouteTrace {
    /// The trace `ACCEL_TRACE_ROUTES` asks for, if any: created afresh
    /// (mode 0600, never through a symlink).
    pub fn from_env() -> std::io::Result<Option<(RouteTrace, PathBuf)>> {
        let Some(path) = std::env::var_os(ENV).map(PathBuf::from) else {
            return Ok(None);
        };
        let mut file = File::options()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)?;
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let writer = std::thread::Builder::new()
            .name("accel-trace".into())
            .spawn(move || {
                for chunk in rx {
                    if file.write_all(&chunk).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Some((
            RouteTrace {
                buf: Vec::with_capacity(CHUNK),
                to_writer: Some(tx),
                writer: Some(writer),
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
            self.buf,
            "{}.{:09} {op} {prefix}",
            t.as_secs(),
            t.subsec_nanos()
        );
        if self.buf.len() >= CHUNK {
            self.flush();
        }
    }

    /// Hands what is gathered to the writer.
    pub fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        if let Some(tx) = &self.to_writer {
            if tx.send(chunk).is_err() {
                self.to_writer = None;
            }
        }
    }
}

impl Drop for RouteTrace {
    /// Everything recorded is written before accel exits.
    fn drop(&mut self) {
        self.flush();
        self.to_writer = None;
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}
