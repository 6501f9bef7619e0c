//! `accel run --metrics ADDR:PORT`: `GET /metrics` over HTTP/1.1 (hyper),
//! answered on a thread of its own. A scrape reads the datapath's per-CPU
//! counters through the pinned maps (no lock the datapath shares) and the
//! latest [`Status`] the event loop published (no wait for the loop): a
//! slow or hostile scraper can neither delay route changes nor slow
//! forwarding.

use std::cell::RefCell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use log::{debug, warn};
use tokio::sync::Semaphore;

use crate::control::StatusFeed;
use crate::datapath::maps::Maps;
use crate::datapath::pin::PinDir;
use crate::metrics::{self, Format};

/// Scrapers served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 16;
/// A request's headers must arrive within this...
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// ... and a connection ends after this, whatever it does.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("--metrics {0}: cannot listen there")]
    Bind(SocketAddr, #[source] std::io::Error),
    #[error("starting the metrics thread")]
    Thread(#[source] std::io::Error),
}

/// Binds `addr` before anything is attached, so that a port in use fails
/// the start. SO_REUSEPORT lets the successor of an upgrade in place bind
/// while this instance still serves (the kernel only shares the port
/// between sockets of the same user).
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, MetricsError> {
    let err = |e| MetricsError::Bind(addr, e);
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    }
    .map_err(err)?;
    socket.set_reuseport(true).map_err(err)?;
    socket.bind(addr).map_err(err)?;
    let listener = socket.listen(64).map_err(err)?;
    listener.into_std().map_err(err)
}

/// What a scrape needs.
pub struct Scrapes {
    pub pin_dir: PathBuf,
    pub feed: StatusFeed,
    pub top_blackholes: usize,
}

/// Serves `listener` on its own thread for the life of the process.
pub fn serve(listener: std::net::TcpListener, scrapes: Scrapes) -> Result<(), MetricsError> {
    std::thread::Builder::new()
        .name("accel-metrics".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return warn!("metrics: no runtime ({e}); not serving"),
            };
            // Local tasks: the maps are read on this thread only.
            tokio::task::LocalSet::new().block_on(&rt, accept_loop(listener, scrapes));
        })
        .map_err(MetricsError::Thread)?;
    Ok(())
}

async fn accept_loop(listener: std::net::TcpListener, scrapes: Scrapes) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => return warn!("metrics: {e}; not serving"),
    };
    let scraper = Rc::new(Scraper::new(scrapes));
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                debug!("metrics: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let scraper = scraper.clone();
        tokio::task::spawn_local(async move {
            let service = hyper::service::service_fn(move |req| {
                let scraper = scraper.clone();
                async move { Ok::<_, Infallible>(scraper.answer(&req)) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await;
            drop(permit);
        });
    }
}

/// Reads the datapath through the pinned maps, opened at the first scrape
/// (and again after a failure).
struct Scraper {
    scrapes: Scrapes,
    maps: RefCell<Option<Maps>>,
}

impl Scraper {
    fn new(scrapes: Scrapes) -> Scraper {
        Scraper {
            scrapes,
            maps: RefCell::new(None),
        }
    }

    fn answer(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        if req.uri().path() != "/metrics" {
            return plain(StatusCode::NOT_FOUND, "accel serves /metrics only\n");
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "GET /metrics\n");
        }
        let format = negotiate(req.headers().get(ACCEPT));
        let status = self.scrapes.feed.borrow().clone();
        match self.sample(&status.nexthop_ids) {
            Ok(sample) => {
                let body =
                    metrics::encode_as(&sample, Some(&status), self.scrapes.top_blackholes, format);
                let mut r = Response::new(Full::new(Bytes::from(body)));
                let ct = match format {
                    Format::OpenMetrics => OPENMETRICS,
                    Format::Prometheus => PROMETHEUS,
                };
                r.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static(ct));
                r
            }
            Err(e) => plain(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("reading the datapath: {e}\n"),
            ),
        }
    }

    fn sample(&self, nexthop_ids: &[u32]) -> Result<metrics::Sample, String> {
        let mut guard = self.maps.borrow_mut();
        if guard.is_none() {
            let opened = PinDir::open_live(&self.scrapes.pin_dir)
                .and_then(|pins| Maps::open_pinned(&pins))
                .map_err(|e| crate::error_chain(&e))?;
            *guard = Some(opened);
        }
        let maps = guard.as_ref().expect("opened above");
        let sample = metrics::Sample::read(maps, nexthop_ids).map_err(|e| crate::error_chain(&e));
        if sample.is_err() {
            *guard = None;
        }
        sample
    }
}

/// OpenMetrics when the scraper accepts it (Prometheus asks for it first),
/// else the Prometheus text format.
pub fn negotiate(accept: Option<&HeaderValue>) -> Format {
    let om = accept
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    if om {
        Format::OpenMetrics
    } else {
        Format::Prometheus
    }
}

fn plain(code: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(text.to_string())));
    *r.status_mut() = code;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_gets_openmetrics_and_others_text() {
        let prom = HeaderValue::from_static(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
             version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
        );
        assert_eq!(negotiate(Some(&prom)), Format::OpenMetrics);
        assert_eq!(negotiate(None), Format::Prometheus);
        let curl = HeaderValue::from_static("*/*");
        assert_eq!(negotiate(Some(&curl)), Format::Prometheus);
    }

    #[test]
    fn a_port_in_use_is_refused() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        // The other socket has no SO_REUSEPORT: no sharing.
        let err = bind(addr).unwrap_err();
        assert!(matches!(err, MetricsError::Bind(..)), "{err}");
    }
}
