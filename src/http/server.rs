//! The connection loop under every listener (main port, OsmAnd port, HTTPS redirect): accept,
//! optionally terminate TLS, serve HTTP/1.1 or HTTP/2 with hyper, and drain on shutdown.
//!
//! One place owns a connection's life, so per-connection limits (TLS handshake, header-read and
//! keep-alive timeouts) are set in [`serve_connection`] and apply to every listener alike.

use crate::config::Config;
use axum::Router;
use axum::http::{HeaderValue, Request, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tower::ServiceExt;

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

/// Serves `app` on every connection `listener` accepts (through TLS when `tls` is given) until
/// `stopping` turns true; then stops accepting, lets each connection finish its in-flight
/// requests (idle keep-alive connections close at once) and returns when all are closed. The
/// caller bounds that wait (the grace period).
pub async fn serve_connections(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
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
        let watcher = graceful.watcher();
        tokio::spawn(serve_connection(tcp, remote, tls.clone(), app.clone(), watcher, stopping.clone()));
    }
    drop(listener);
    graceful.shutdown().await;
}

/// One connection from accept to close: the TLS handshake (abandoned when shutdown starts; a
/// failed one is logged at debug), then HTTP until the peer closes or shutdown drains it.
///
/// Per-connection limits belong here (issue 25): a timeout around the handshake, and the
/// builder's `http1().header_read_timeout(..)` / keep-alive settings before serving.
async fn serve_connection(
    tcp: TcpStream,
    remote: SocketAddr,
    tls: Option<TlsAcceptor>,
    app: Router,
    watcher: Watcher,
    stopping: watch::Receiver<bool>,
) {
    let builder = Builder::new(TokioExecutor::new());
    let Some(acceptor) = tls else {
        // Plain connections speak HTTP/1.1 only, as before TLS support (no cleartext HTTP/2).
        return drive(builder.http1_only(), tcp, remote, app, false, watcher).await;
    };
    let stream = tokio::select! {
        handshake = acceptor.accept(tcp) => match handshake {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(%remote, error = %e, "TLS handshake failed");
                return;
            }
        },
        () = stopped(stopping) => return,
    };
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
    let builder = if h2 { builder.http2_only() } else { builder.http1_only() };
    drive(builder, stream, remote, app, true, watcher).await;
}

/// Serves HTTP on `io` until the peer closes or the watcher's shutdown drains the connection.
async fn drive<I>(builder: Builder<TokioExecutor>, io: I, remote: SocketAddr, app: Router, tls: bool, watcher: Watcher)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let app = app.map_request(move |mut req: Request<_>| {
        req.extensions_mut().insert(super::client::Peer(remote));
        as_handlers_expect(req, tls)
    });
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(app));
    if let Err(e) = watcher.watch(connection).await {
        tracing::trace!(error = %e, "connection ended with an error");
    }
}

/// A request as the handlers read it whatever the protocol: an HTTP/2 request names its host in
/// the URI (`:authority`), not in a `Host` header, so it gets one; and on a TLS connection
/// `X-Forwarded-Proto` is `https` (nothing stands in front to say otherwise), so that absolute
/// links built from these two headers (OGC, TileJSON) point back over HTTPS.
fn as_handlers_expect<B>(mut req: Request<B>, tls: bool) -> Request<B> {
    if !req.headers().contains_key(header::HOST) {
        if let Some(host) = req.uri().authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()) {
            req.headers_mut().insert(header::HOST, host);
        }
    }
    if tls {
        req.headers_mut().insert(FORWARDED_PROTO, HeaderValue::from_static("https"));
    }
    req
}

const FORWARDED_PROTO: header::HeaderName = header::HeaderName::from_static("x-forwarded-proto");

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
