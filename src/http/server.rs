//! The connection loop under every listener (main port, OsmAnd port, HTTPS redirect): accept,
//! optionally terminate TLS, serve HTTP/1.1 or HTTP/2 with hyper, and drain on shutdown.
//!
//! One place owns a connection's life, so per-connection limits (TLS handshake, header-read and
//! keep-alive timeouts) are set in [`serve_connection`] and apply to every listener alike.

use super::error::Problem;
use super::headers::SecurityHeaders;
use crate::config::Config;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tower::ServiceExt;
use tower_http::timeout::{TimeoutBody, TimeoutError};

/// The TLS acceptor of `FV_TLS_CERT` + `FV_TLS_KEY` (`None` when neither is set): rustls with the
/// ring provider, TLS 1.2 and 1.3, ALPN `h2` then `http/1.1`. Errors name the setting and file.
pub fn tls_acceptor(config: &Config) -> std::io::Result<Option<TlsAcceptor>> {
    let Some((cert, key)) = config.tls_files().map_err(std::io::Error::other)? else { return Ok(None) };
    let chain = load_chain(cert)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad_file("FV_TLS_KEY", key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| std::io::Error::other(format!("FV_TLS_CERT and FV_TLS_KEY do not make a usable pair: {e}")))?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(tls))))
}

/// Every certificate of a PEM file, leaf first; an empty file is an error.
fn load_chain(path: &Path) -> std::io::Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| bad_file("FV_TLS_CERT", path, &e))?;
    if chain.is_empty() {
        return Err(bad_file("FV_TLS_CERT", path, &"no CERTIFICATE block"));
    }
    Ok(chain)
}

fn bad_file(setting: &str, path: &Path, e: &dyn std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{setting} {}: {e}", path.display()))
}

/// What every connection of every listener is held to (issue 25 item 2), and the security
/// headers every response gets (item 12). Built once at start from the settings.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Longest TLS handshake (`FV_TLS_HANDSHAKE_TIMEOUT_S`).
    pub tls_handshake: Duration,
    /// Longest wait for a request's headers, idle keep-alive included (`FV_HEADER_READ_TIMEOUT_S`).
    pub header_read: Duration,
    /// Longest pause within a request body (`FV_BODY_IDLE_TIMEOUT_S`): 408.
    pub body_idle: Duration,
    /// Longest time to an answer's headers (`FV_REQUEST_TIMEOUT_S`): 503.
    pub request: Duration,
    /// Longest time without a new request on a connection (`FV_KEEP_ALIVE_IDLE_S`).
    pub keep_alive_idle: Duration,
    /// Most concurrent streams of one HTTP/2 connection (`FV_HTTP2_MAX_STREAMS`).
    pub h2_max_streams: u32,
    /// The headers of [`super::headers`].
    pub headers: SecurityHeaders,
}

impl Policy {
    /// The policy of `config`'s settings.
    pub fn new(config: &Config) -> Self {
        Policy {
            tls_handshake: Duration::from_secs(config.tls_handshake_timeout_s),
            header_read: Duration::from_secs(config.header_read_timeout_s),
            body_idle: Duration::from_secs(config.body_idle_timeout_s),
            request: Duration::from_secs(config.request_timeout_s),
            keep_alive_idle: Duration::from_secs(config.keep_alive_idle_s),
            h2_max_streams: config.http2_max_streams,
            headers: SecurityHeaders::new(config),
        }
    }
}

/// How often an idle HTTP/2 connection is pinged, and how long the answer may take before the
/// connection is dropped as dead.
const H2_PING: Duration = Duration::from_secs(20);

/// Marks a request that arrived over TLS (the connection loop sets it; links say https).
#[derive(Clone, Copy, Debug)]
pub struct Tls;

/// Serves `app` on every connection `listener` accepts (through TLS when `tls` is given) until
/// `stopping` turns true; then stops accepting, lets each connection finish its in-flight
/// requests (idle keep-alive connections close at once) and returns when all are closed. The
/// caller bounds that wait (the grace period).
pub async fn serve_connections(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    policy: Arc<Policy>,
    stopping: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = stopped(stopping.clone()) => break,
        };
        let conn = Conn {
            remote,
            app: app.clone(),
            policy: policy.clone(),
            _watcher: graceful.watcher(),
            stopping: stopping.clone(),
        };
        tokio::spawn(serve_connection(tcp, tls.clone(), conn));
    }
    drop(listener);
    graceful.shutdown().await;
}

/// One accepted connection: who is at the other end, what serves it, and its limits. The
/// watcher, held until the connection ends, lets shutdown wait for it.
struct Conn {
    remote: SocketAddr,
    app: Router,
    policy: Arc<Policy>,
    _watcher: Watcher,
    stopping: watch::Receiver<bool>,
}

/// One connection from accept to close: the TLS handshake (bounded by the handshake timeout and
/// abandoned when shutdown starts; a failed one is logged at debug), then HTTP until the peer
/// closes, a limit closes it, or shutdown drains it.
async fn serve_connection(tcp: TcpStream, tls: Option<TlsAcceptor>, conn: Conn) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(conn.policy.header_read).keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_PING)
        .keep_alive_timeout(H2_PING)
        .max_concurrent_streams(conn.policy.h2_max_streams);
    let Some(acceptor) = tls else {
        // Plain connections speak HTTP/1.1 only, as before TLS support (no cleartext HTTP/2).
        return drive(builder.http1_only(), tcp, false, conn).await;
    };
    let handshake = tokio::time::timeout(conn.policy.tls_handshake, acceptor.accept(tcp));
    let stream = tokio::select! {
        handshake = handshake => match handshake {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::debug!(remote = %conn.remote, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(remote = %conn.remote, "TLS handshake timed out");
                return;
            }
        },
        () = stopped(conn.stopping.clone()) => return,
    };
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
    let builder = if h2 { builder.http2_only() } else { builder.http1_only() };
    drive(builder, stream, true, conn).await;
}

/// Serves HTTP on `io` until the peer closes, no request has come for the keep-alive idle time,
/// or shutdown starts; the last two close the connection gracefully (requests in flight are
/// answered first).
async fn drive<I>(builder: Builder<TokioExecutor>, io: I, tls: bool, conn: Conn)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Conn { remote, app, policy, stopping, _watcher } = conn;
    let arrived = Arc::new(Notify::new());
    let service = {
        let (arrived, policy) = (arrived.clone(), policy.clone());
        tower::service_fn(move |req: Request<Incoming>| {
            arrived.notify_one();
            let (app, policy) = (app.clone(), policy.clone());
            async move { Ok::<_, Infallible>(answer(app, req, remote, tls, &policy).await) }
        })
    };
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service));
    let mut connection = std::pin::pin!(connection);
    let mut closing = std::pin::pin!(async {
        tokio::select! {
            () = stopped(stopping) => {},
            () = idle(&arrived, policy.keep_alive_idle) => {},
        }
    });
    let mut draining = false;
    let ended = loop {
        tokio::select! {
            ended = connection.as_mut() => break ended,
            () = &mut closing, if !draining => {
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    };
    if let Err(e) = ended {
        tracing::trace!(error = %e, "connection ended with an error");
    }
}

/// Resolves once `idle` has passed without a request arriving.
async fn idle(arrived: &Notify, idle: Duration) {
    while tokio::time::timeout(idle, arrived.notified()).await.is_ok() {}
}

/// One request through `app` under the body-idle and request timeouts, with the security headers
/// on whatever answers it.
async fn answer(app: Router, req: Request<Incoming>, remote: SocketAddr, tls: bool, policy: &Policy) -> Response {
    let path = req.uri().path().to_owned();
    let deadline = !no_deadline(req.method(), &path);
    let stalled = Arc::new(AtomicBool::new(false));
    let (parts, body) = req.into_parts();
    let flag = stalled.clone();
    let body = TimeoutBody::new(policy.body_idle, body).map_err(move |e| {
        if e.is::<TimeoutError>() {
            flag.store(true, Ordering::Relaxed);
        }
        e
    });
    let req = Request::from_parts(parts, Body::new(body));
    let mut req = as_handlers_expect(req, tls);
    req.extensions_mut().insert(super::client::Peer(remote));
    let call = app.oneshot(req);
    let mut res = if deadline {
        match tokio::time::timeout(policy.request, call).await {
            Ok(res) => res.unwrap_or_else(|e| match e {}),
            Err(_) => timed_out(
                StatusCode::SERVICE_UNAVAILABLE,
                &path,
                None,
                "the request took longer than the server allows (FV_REQUEST_TIMEOUT_S); try again later",
            ),
        }
    } else {
        call.await.unwrap_or_else(|e| match e {})
    };
    if stalled.load(Ordering::Relaxed) {
        let id = res.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        res = timed_out(
            StatusCode::REQUEST_TIMEOUT,
            &path,
            id,
            "the request body stopped arriving (FV_BODY_IDLE_TIMEOUT_S)",
        );
        res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    policy.headers.apply(res.headers_mut(), tls);
    res
}

/// A timeout's problem answer (408 or 503), with the request's id when one was given, else a new one.
fn timed_out(status: StatusCode, path: &str, request_id: Option<String>, detail: &str) -> Response {
    let id = request_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut problem = Problem::new(status, detail);
    problem.instance = Some(path.to_owned());
    problem.request_id = Some(id.clone());
    let mut res = problem.into_response();
    *res.status_mut() = status;
    if let Ok(id) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-request-id", id);
    }
    res
}

/// Requests without a whole-request deadline: uploads whose size makes their time the client's
/// network's (imports, photos, GPX, export verification; the body-idle timeout still holds), and
/// the recomputation of visits, which an admin starts knowing it takes a while.
fn no_deadline(method: &Method, path: &str) -> bool {
    let upload = *method == Method::POST || *method == Method::PUT;
    upload
        && (path.ends_with("/import")
            || path.ends_with("/gpx")
            || path.ends_with("/photos")
            || path.contains("/photos/")
            || path == "/api/v1/exports/verify"
            || path == "/api/v1/visits/recompute")
}

/// `doc` with the timeouts' answers declared on every operation they can end: `503` where the
/// request deadline holds, `408` where the operation takes a request body.
pub fn document_timeouts(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let problem = |description: &str| {
        let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build();
        ResponseBuilder::new().description(description).content(super::error::PROBLEM_JSON, content).build()
    };
    for (path, item) in &mut doc.paths.paths {
        let operations = [
            (Method::GET, &mut item.get),
            (Method::PUT, &mut item.put),
            (Method::POST, &mut item.post),
            (Method::DELETE, &mut item.delete),
            (Method::PATCH, &mut item.patch),
        ];
        for (method, operation) in operations {
            let Some(op) = operation else { continue };
            let responses = &mut op.responses.responses;
            if !no_deadline(&method, path) {
                responses.entry("503".to_owned()).or_insert_with(|| {
                    problem("Unavailable, or not answered within the request timeout (`FV_REQUEST_TIMEOUT_S`)").into()
                });
            }
            if op.request_body.is_some() {
                responses
                    .entry("408".to_owned())
                    .or_insert_with(|| problem("The request body stopped arriving (`FV_BODY_IDLE_TIMEOUT_S`)").into());
            }
        }
    }
    doc
}

/// A request as the handlers read it whatever the protocol: an HTTP/2 request names its host in
/// the URI (`:authority`), not in a `Host` header, so it gets one; a request over TLS is marked
/// [`Tls`] (absolute links then say https, see [`super::links`]).
fn as_handlers_expect<B>(mut req: Request<B>, tls: bool) -> Request<B> {
    if !req.headers().contains_key(header::HOST) {
        if let Some(host) = req.uri().authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()) {
            req.headers_mut().insert(header::HOST, host);
        }
    }
    if tls {
        req.extensions_mut().insert(Tls);
    }
    req
}

/// Resolves once `stopping` is true (or its sender is gone).
pub(crate) async fn stopped(mut stopping: watch::Receiver<bool>) {
    let _ = stopping.wait_for(|s| *s).await;
}

/// What `axum::serve` did on an accept error: a peer that went away is skipped; anything else
/// (e.g. out of file descriptors) is logged and the loop waits a second before accepting again.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset) {
        return;
    }
    tracing::error!(error = %e, "accept error");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// The plain-HTTP listener of `FV_TLS_REDIRECT_BIND`: every request, whatever its method, gets
/// 308 to the same path and query under `target` (`FV_PUBLIC_URL`), never under its Host header.
pub fn redirect_router(target: &str) -> Router {
    let target: Arc<str> = target.into();
    Router::new().fallback(move |uri: Uri| {
        let target = target.clone();
        async move { redirect(&target, &uri) }
    })
}

fn redirect(target: &str, uri: &Uri) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let path = if path.starts_with('/') { path } else { "/" };
    (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, format!("{target}{path}"))]).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_redirect_keeps_path_and_query_and_ignores_the_authority() {
        let target = "https://fv.example:8443";
        for (uri, location) in [
            ("/some/path?q=1", "https://fv.example:8443/some/path?q=1"),
            ("/", "https://fv.example:8443/"),
            ("http://evil.example/x?y", "https://fv.example:8443/x?y"),
            ("*", "https://fv.example:8443/"),
        ] {
            let res = redirect(target, &uri.parse().expect("uri"));
            assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
            assert_eq!(res.headers()[header::LOCATION], location, "{uri}");
        }
    }
}
