//! The server's base URL for one request, the root of every absolute link an answer carries
//! (OGC API, TileJSON). A client's own `Host` and `X-Forwarded-*` headers never choose it: they
//! count only when the request came through a configured proxy (`FV_TRUSTED_PROXIES`); otherwise
//! the base is the configured public URL (`FV_PUBLIC_URL`), as for enrolment links.

use super::AppState;
use super::client::ClientIp;
use crate::config::Config;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::uri::Authority;
use std::convert::Infallible;

/// The request's base URL (scheme and authority, no trailing slash); see [`base_url`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseUrl(pub String);

impl FromRequestParts<AppState> for BaseUrl {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        Ok(BaseUrl(base_url(&state.config, parts)))
    }
}

/// The server's base URL for this request: through a trusted proxy, the proxy's
/// `X-Forwarded-Proto` and `X-Forwarded-Host` (else the `Host` the proxy sent, and https on a TLS
/// connection); from anyone else, [`Config::public_url`].
pub fn base_url(config: &Config, parts: &Parts) -> String {
    let trusted = parts.extensions.get::<ClientIp>().is_some_and(|c| c.via_trusted_proxy);
    if !trusted {
        return config.public_url();
    }
    let first = |name: &str| {
        let value = parts.headers.get(name)?.to_str().ok()?;
        Some(value.split(',').next().unwrap_or_default().trim()).filter(|v| !v.is_empty())
    };
    let tls = parts.extensions.get::<super::server::Tls>().is_some();
    let scheme = match first("x-forwarded-proto").map(str::to_ascii_lowercase).as_deref() {
        Some("https") => "https",
        Some("http") => "http",
        _ if tls => "https",
        _ => "http",
    };
    let host = first("x-forwarded-host").or_else(|| first("host")).filter(|h| is_host(h));
    host.map_or_else(|| config.public_url(), |host| format!("{scheme}://{host}"))
}

/// A bare `host[:port]` (no user info), as a link may carry it.
fn is_host(text: &str) -> bool {
    !text.contains('@') && text.parse::<Authority>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(headers: &[(&str, &str)], trusted: bool, tls: bool) -> Parts {
        let mut req = Request::builder();
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let (mut parts, ()) = req.body(()).expect("request").into_parts();
        parts.extensions.insert(ClientIp { ip: [127, 0, 0, 1].into(), via_trusted_proxy: trusted });
        if tls {
            parts.extensions.insert(super::super::server::Tls);
        }
        parts
    }

    #[test]
    fn forwarded_headers_count_only_through_a_trusted_proxy() {
        let config = Config { public_url: Some("https://fv.example".into()), ..Config::default() };
        let sent = [("host", "evil.example"), ("x-forwarded-proto", "http"), ("x-forwarded-host", "evil2.example")];
        assert_eq!(base_url(&config, &parts(&sent, false, false)), "https://fv.example");
        assert_eq!(base_url(&config, &parts(&sent, true, false)), "http://evil2.example");
        let host_only = [("host", "proxy.example:8443")];
        assert_eq!(base_url(&config, &parts(&host_only, true, true)), "https://proxy.example:8443");
        assert_eq!(base_url(&config, &parts(&host_only, true, false)), "http://proxy.example:8443");
        let bad = [("host", "user@evil.example"), ("x-forwarded-proto", "javascript")];
        assert_eq!(base_url(&config, &parts(&bad, true, false)), "https://fv.example");
    }
}
