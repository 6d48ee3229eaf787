//! Security headers on every response of every listener (issue 25, item 12), set by the
//! connection loop ([`super::server`]) after the router has answered.
//!
//! The map UI and the reps' app load nothing from other hosts, so the Content-Security-Policy is
//! `'self'` throughout, with these exceptions: MapLibre starts its workers from `blob:` URLs;
//! QR codes are `data:` images and photo previews `blob:` ones; the UIs and MapLibre set inline
//! `style` attributes; and the reps' app's one inline script is allowed by its SHA-256 hash,
//! computed at start from the served HTML (never `'unsafe-inline'` for scripts). The origin of
//! `FV_BASEMAP_STYLE_URL` and of `FV_BASEMAP_XYZ`, when set, may be fetched from and their images shown.

use crate::config::Config;
use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use std::fmt::Write as _;
use std::path::Path;

/// The header values, computed once at start.
#[derive(Clone, Debug)]
pub struct SecurityHeaders {
    csp: HeaderValue,
}

/// HSTS of a TLS listener: a year, subdomains not included (they may be other services).
const HSTS: HeaderValue = HeaderValue::from_static("max-age=31536000");

impl SecurityHeaders {
    /// The policy for `config`'s map UI folder (inline scripts of its HTML pages hashed) and
    /// basemap origins (style URL, raster tile template).
    pub fn new(config: &Config) -> Self {
        let hashes = inline_script_hashes(&config.map_ui_dir);
        let basemap: String =
            [&config.basemap_style_url, &config.basemap_xyz].into_iter().flatten().filter_map(|u| origin(u)).collect();
        let csp = format!(
            "default-src 'self'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data: blob:{basemap}; connect-src 'self'{basemap}; worker-src 'self' blob:; \
             font-src 'self'; manifest-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
             frame-ancestors 'none'"
        );
        let csp = HeaderValue::from_str(&csp).unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"));
        SecurityHeaders { csp }
    }

    /// Sets the headers on a response (keeping any a handler set itself); HSTS only over TLS.
    pub fn apply(&self, headers: &mut HeaderMap, tls: bool) {
        let set = [
            (header::CONTENT_SECURITY_POLICY, self.csp.clone()),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        ];
        for (name, value) in set {
            headers.entry(name).or_insert(value);
        }
        if tls {
            headers.entry(header::STRICT_TRANSPORT_SECURITY).or_insert(HSTS);
        }
    }
}

/// ` 'sha256-…'` for each inline `<script>` of `index.html` and `*/index.html` under `dir`
/// (sorted, each once); empty when there are none or the folder is missing.
fn inline_script_hashes(dir: &Path) -> String {
    let mut pages = vec![dir.join("index.html")];
    if let Ok(entries) = std::fs::read_dir(dir) {
        pages.extend(entries.filter_map(Result::ok).map(|e| e.path().join("index.html")));
    }
    let mut hashes: Vec<String> = pages
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|html| inline_scripts(&html).into_iter().map(sha256_source).collect::<Vec<_>>())
        .collect();
    hashes.sort();
    hashes.dedup();
    hashes.iter().fold(String::new(), |mut all, h| {
        let _ = write!(all, " '{h}'");
        all
    })
}

/// The text of each `<script>` element without a `src` attribute.
fn inline_scripts(html: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        let after = &rest[start..];
        let Some(tag_end) = after.find('>') else { break };
        let body = &after[tag_end + 1..];
        let Some(close) = body.find("</script>") else { break };
        if !after[..tag_end].contains("src=") {
            found.push(&body[..close]);
        }
        rest = &body[close..];
    }
    found
}

fn sha256_source(script: &str) -> String {
    format!("sha256-{}", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script.as_bytes())))
}

/// `scheme://host[:port]` of an http(s) URL, with a leading space.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next().filter(|h| !h.is_empty())?;
    matches!(scheme, "http" | "https").then(|| format!(" {scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_scripts_are_found_and_external_ones_skipped() {
        let html = "<script src=\"a.js\"></script><script>one()</script>\n<script type=\"x\">two</script>";
        assert_eq!(inline_scripts(html), ["one()", "two"]);
        // The hash of `alert('Hello, world.');` as CSP Level 3 gives it.
        assert_eq!(sha256_source("alert('Hello, world.');"), "sha256-qznLcsROx4GACP2dm0UCKCzCG+HiZ1guq6ZZDob/Tng=");
        assert_eq!(origin("https://tiles.example:8443/style.json?k=1").as_deref(), Some(" https://tiles.example:8443"));
        assert_eq!(origin("file:///x"), None);
    }
}
