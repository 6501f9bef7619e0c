//! The control protocol between the CLI (`accel sync [--check]`, `accel
//! upgrade`, the status of `stats`, `top`, `health`) and a running `accel
//! run`, typed on both ends: one request per connection, a
//! request word in a line, a [`Reply`] as one JSON line back.
//!
//! The daemon serves clients in tasks of their own ([`serve`]): a client
//! that connects and says nothing, or never reads its answer, times out
//! without the event loop ever waiting for it, and at most [`MAX_CLIENTS`]
//! are served at once. Only root (or accel's own user) may talk to it: the
//! socket lives in the 0700 run directory and peers are checked by their
//! credentials besides.

use std::path::Path;
use std::time::Duration;

use log::debug;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::mirror::ChangeSummary;
use crate::status::Status;

/// The event loop's latest status, for requests that must not wait for it.
pub type StatusFeed = tokio::sync::watch::Receiver<std::sync::Arc<Status>>;

/// What a client may ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Resync now; answer with what changed.
    Sync,
    /// Compare the mirror with a fresh dump, changing nothing.
    Check,
    /// The daemon's latest [`Status`] (answered without the event loop).
    Status,
    /// Upgrade in place (what SIGUSR2 does); answered once the successor
    /// runs, or with why none does.
    Upgrade,
}

impl Request {
    pub fn word(self) -> &'static str {
        match self {
            Request::Sync => "sync",
            Request::Check => "check",
            Request::Status => "status",
            Request::Upgrade => "upgrade",
        }
    }

    /// Parses a request line (untrusted bytes from the socket).
    pub fn parse(line: &[u8]) -> Result<Request, ControlError> {
        let text = std::str::from_utf8(line).map_err(|_| ControlError::BadRequest)?;
        match text.trim() {
            "sync" => Ok(Request::Sync),
            "check" => Ok(Request::Check),
            "status" => Ok(Request::Status),
            "upgrade" => Ok(Request::Upgrade),
            _ => Err(ControlError::BadRequest),
        }
    }
}

/// How big the mirror is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorSize {
    pub routes: usize,
    pub nexthops: usize,
    pub groups: usize,
    pub neighbours: usize,
}

impl std::fmt::Display for MirrorSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} routes, {} next hops, {} groups, {} neighbours",
            self.routes, self.nexthops, self.groups, self.neighbours
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Synced {
        changes: ChangeSummary,
        mirror: MirrorSize,
        resyncs: u64,
    },
    Checked {
        changes: ChangeSummary,
        /// The first few differences, described.
        examples: Vec<String>,
        mirror: MirrorSize,
    },
    Status {
        status: Box<Status>,
    },
    /// The instance `pid` started its successor, `successor` (now, or
    /// for an upgrade already under way), which has yet to take over.
    Upgrading {
        pid: u32,
        successor: u32,
    },
    Failed {
        error: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("unknown request (expected `sync`, `check`, `status` or `upgrade`)")]
    BadRequest,
    #[error("no request line within {0:?}")]
    RequestTimeout(Duration),
    #[error("request longer than {MAX_LINE} bytes")]
    RequestTooLong,
    #[error("no running `accel run` answers on {0}")]
    Connect(String, #[source] std::io::Error),
    #[error("the socket {path} is served by uid {uid}, not root: refusing to talk to it")]
    ForeignServer { path: String, uid: u32 },
    #[error("talking to the running instance")]
    Io(#[from] std::io::Error),
    #[error("malformed reply from the running instance")]
    BadReply(#[source] serde_json::Error),
    #[error("the running instance stopped before answering")]
    NoAnswer,
    #[error("the running instance did not answer within {0:?} (frozen or overloaded?)")]
    Timeout(Duration),
}

/// At most this many clients are served at once; more are turned away.
pub const MAX_CLIENTS: usize = 8;
/// Longest request line.
pub const MAX_LINE: usize = 256;
/// A client must send its request within this time.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// ... and take its answer within this time.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// A request for the event loop, with where its answer goes.
pub struct Pending {
    pub request: Request,
    pub reply: oneshot::Sender<Reply>,
}

/// The accepting task; dropping it closes the listening socket.
pub struct Server {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `listener` in its own task: requests reach the event loop
/// through the returned receiver, never by blocking it.
pub fn serve(listener: UnixListener, feed: StatusFeed) -> (Server, mpsc::Receiver<Pending>) {
    let (tx, rx) = mpsc::channel(MAX_CLIENTS);
    let task = tokio::spawn(accept_loop(listener, tx, feed));
    (Server { task }, rx)
}

/// Who may talk to the daemon: root and the daemon's own user.
fn trusted_uid(uid: u32) -> bool {
    uid == 0 || uid == rustix::process::geteuid().as_raw()
}

async fn accept_loop(listener: UnixListener, tx: mpsc::Sender<Pending>, feed: StatusFeed) {
    let slots = std::sync::Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of descriptors, say: do not spin.
                debug!("control socket: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        match stream.peer_cred() {
            Ok(c) if trusted_uid(c.uid()) => {}
            other => {
                debug!("control socket: refusing a client ({other:?})");
                continue;
            }
        }
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            debug!("control socket: {MAX_CLIENTS} clients already served; turning one away");
            let busy = Reply::Failed {
                error: format!("busy: {MAX_CLIENTS} clients are being served"),
            };
            let _ = stream.try_write(&encode(&busy));
            continue;
        };
        tokio::spawn(serve_client(stream, tx.clone(), feed.clone(), permit));
    }
}

async fn serve_client(
    mut stream: UnixStream,
    tx: mpsc::Sender<Pending>,
    feed: StatusFeed,
    _slot: OwnedSemaphorePermit,
) {
    let reply = match tokio::time::timeout(READ_TIMEOUT, read_request(&mut stream)).await {
        Err(_) => Reply::Failed {
            error: ControlError::RequestTimeout(READ_TIMEOUT).to_string(),
        },
        Ok(Err(e)) => Reply::Failed {
            error: e.to_string(),
        },
        Ok(Ok(Request::Status)) => Reply::Status {
            status: Box::new(Status::clone(&feed.borrow())),
        },
        Ok(Ok(request)) => {
            let (reply, answer) = oneshot::channel();
            if tx.send(Pending { request, reply }).await.is_err() {
                return;
            }
            match answer.await {
                Ok(r) => r,
                Err(_) => return,
            }
        }
    };
    let _ = tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&encode(&reply))).await;
}

/// Reads one request line of at most [`MAX_LINE`] bytes.
async fn read_request(stream: &mut UnixStream) -> Result<Request, ControlError> {
    let mut line = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Request::parse(&line);
        }
        line.extend_from_slice(&buf[..n]);
        if let Some(end) = line.iter().position(|b| *b == b'\n') {
            return Request::parse(&line[..end]);
        }
        if line.len() > MAX_LINE {
            return Err(ControlError::RequestTooLong);
        }
    }
}

fn encode(reply: &Reply) -> Vec<u8> {
    let mut v = serde_json::to_vec(reply).expect("replies serialise");
    v.push(b'\n');
    v
}

/// Parses a reply line (what the CLI reads).
pub fn decode(line: &[u8]) -> Result<Reply, ControlError> {
    serde_json::from_slice(line).map_err(ControlError::BadReply)
}

/// The CLI's side: sends `request` to the instance whose control socket is
/// at `socket` (shown as `shown`) and waits up to `timeout` for the reply.
pub fn ask(
    socket: &Path,
    shown: &Path,
    request: Request,
    timeout: Duration,
) -> Result<Reply, ControlError> {
    use std::io::{BufRead, Write};
    let stream = std::os::unix::net::UnixStream::connect(socket)
        .map_err(|e| ControlError::Connect(shown.display().to_string(), e))?;
    let server = rustix::net::sockopt::socket_peercred(&stream).map_err(std::io::Error::from)?;
    if !trusted_uid(server.uid.as_raw()) {
        return Err(ControlError::ForeignServer {
            path: shown.display().to_string(),
            uid: server.uid.as_raw(),
        });
    }
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    (&stream).write_all(format!("{}\n", request.word()).as_bytes())?;
    let mut line = Vec::new();
    let timed_out = |e: &std::io::Error| {
        use std::io::ErrorKind::{TimedOut, WouldBlock};
        matches!(e.kind(), WouldBlock | TimedOut)
    };
    std::io::BufReader::new(&stream)
        .read_until(b'\n', &mut line)
        .map_err(|e| {
            if timed_out(&e) {
                ControlError::Timeout(timeout)
            } else {
                e.into()
            }
        })?;
    if line.is_empty() {
        return Err(ControlError::NoAnswer);
    }
    decode(&line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_words() {
        assert_eq!(Request::parse(b"sync").unwrap(), Request::Sync);
        assert_eq!(Request::parse(b" check\r").unwrap(), Request::Check);
        for bad in [&b"resync"[..], b"", b"\xff\xfe", b"sync check"] {
            assert!(Request::parse(bad).is_err(), "{bad:?}");
        }
        for r in [
            Request::Sync,
            Request::Check,
            Request::Status,
            Request::Upgrade,
        ] {
            assert_eq!(Request::parse(r.word().as_bytes()).unwrap(), r);
        }
    }

    #[test]
    fn replies_round_trip() {
        let replies = [
            Reply::Synced {
                changes: ChangeSummary {
                    routes_put: 3,
                    ..Default::default()
                },
                mirror: MirrorSize {
                    routes: 10,
                    nexthops: 2,
                    groups: 1,
                    neighbours: 4,
                },
                resyncs: 7,
            },
            Reply::Checked {
                changes: ChangeSummary::default(),
                examples: vec!["route 10.0.0.0/8: missing".into()],
                mirror: MirrorSize::default(),
            },
            Reply::Status {
                status: Box::new(Status {
                    version: "1".into(),
                    events_applied: 5,
                    ..Default::default()
                }),
            },
            Reply::Failed {
                error: "dump failed".into(),
            },
        ];
        for r in replies {
            let line = encode(&r);
            assert_eq!(line.last(), Some(&b'\n'));
            assert_eq!(decode(&line[..line.len() - 1]).unwrap(), r);
        }
        assert!(decode(b"{\"reply\":\"synced\"}").is_err());
        assert!(decode(b"not json").is_err());
    }
}

/// Property tests of the control protocol's parsers, which read bytes a
/// client (or a daemon) chose: never a panic, and only the three request
/// words are requests. `PROPTEST_CASES=N` sets the cases (docs/fuzzing.md).
#[cfg(test)]
mod props {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    fn summary() -> impl Strategy<Value = ChangeSummary> {
        vec(0usize..1_000_000, 9).prop_map(|v| ChangeSummary {
            routes_put: v[0],
            routes_deleted: v[1],
            nexthops_put: v[2],
            groups_put: v[3],
            neighbours_put: v[4],
            neighbours_deleted: v[5],
            ifaces_put: v[6],
            local_addrs_changed: v[7],
            config_changed: v[8],
        })
    }

    fn reply() -> impl Strategy<Value = Reply> {
        let size = vec(0usize..10_000_000, 4).prop_map(|v| MirrorSize {
            routes: v[0],
            nexthops: v[1],
            groups: v[2],
            neighbours: v[3],
        });
        prop_oneof![
            (summary(), size.clone(), any::<u64>()).prop_map(|(changes, mirror, resyncs)| {
                Reply::Synced {
                    changes,
                    mirror,
                    resyncs,
                }
            }),
            (summary(), vec(any::<String>(), 0..4), size).prop_map(
                |(changes, examples, mirror)| Reply::Checked {
                    changes,
                    examples,
                    mirror,
                }
            ),
            any::<String>().prop_map(|error| Reply::Failed { error }),
        ]
    }

    /// Reads what a client sent, in the pieces it sent them.
    fn served(chunks: Vec<Vec<u8>>) -> Result<Request, ControlError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let (mut client, mut server) = UnixStream::pair().expect("socketpair");
            let writer = tokio::spawn(async move {
                for c in chunks {
                    if client.write_all(&c).await.is_err() {
                        return;
                    }
                }
            });
            let r = read_request(&mut server).await;
            drop(server);
            let _ = writer.await;
            r
        })
    }

    proptest! {
        #[test]
        fn any_line_is_a_request_word_or_an_error(line in vec(any::<u8>(), 0..300)) {
            match Request::parse(&line) {
                Ok(r) => prop_assert_eq!(
                    std::str::from_utf8(&line).map(str::trim).ok(),
                    Some(r.word())
                ),
                Err(e) => prop_assert!(matches!(e, ControlError::BadRequest)),
            }
        }

        #[test]
        fn any_bytes_decode_to_a_reply_or_an_error(bytes in vec(any::<u8>(), 0..600)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn replies_survive_the_wire(r in reply()) {
            let line = encode(&r);
            prop_assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
            prop_assert_eq!(decode(&line[..line.len() - 1]).unwrap(), r);
        }

        #[test]
        fn the_server_reads_one_bounded_line_however_it_arrives(
            chunks in vec(vec(any::<u8>(), 0..120), 0..8),
        ) {
            let all: Vec<u8> = chunks.concat();
            let first_line = all.iter().position(|b| *b == b'\n');
            match served(chunks) {
                Ok(r) => {
                    let line = &all[..first_line.unwrap_or(all.len())];
                    prop_assert_eq!(Request::parse(line).unwrap(), r);
                }
                Err(ControlError::RequestTooLong) => {
                    prop_assert!(first_line.is_none_or(|n| n > MAX_LINE - 64));
                }
                Err(_) => {}
            }
        }
    }

    #[test]
    fn requests_over_the_limit_are_refused_without_reading_on() {
        let long = vec![b'x'; MAX_LINE * 4];
        assert!(matches!(
            served(vec![long]),
            Err(ControlError::RequestTooLong)
        ));
    }
}
