//! Cross-cutting request handling: metrics per route, and problem+json for every error response,
//! including the ones axum and tower produce themselves (404, 405, 413, panics).

use super::AppState;
use super::error::{PROBLEM_JSON, Problem};
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;
use tower::ServiceExt as _;
use tower_http::decompression::Decompression;

/// Counts and times each request under its route template (not the raw path).
pub async fn track_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    // A client may send any string as its method: one label per known method, the rest as one.
    let method = match *req.method() {
        Method::GET | Method::HEAD | Method::POST | Method::PUT | Method::PATCH | Method::DELETE | Method::OPTIONS => {
            req.method().as_str()
        }
        _ => "other",
    }
    .to_owned();
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let res = next.run(req).await;
    state.metrics.observe(&method, &route, res.status().as_u16(), started.elapsed().as_secs_f64());
    res
}

/// Makes every 4xx/5xx response an RFC 9457 problem carrying the request path and id.
pub async fn problem_json(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(PROBLEM_JSON));
    let (parts, bytes) = plain_body(res).await;
    let problem = if is_problem { bytes.as_deref().and_then(|b| serde_json::from_slice(b).ok()) } else { None };
    let mut problem = problem.unwrap_or_else(|| {
        Problem::new(status, default_detail(status, &method, &path, bytes.as_deref().unwrap_or_default()))
    });
    problem.instance = Some(path);
    problem.request_id = request_id;
    let mut out = problem.into_response();
    *out.status_mut() = status;
    // The body is new and plain: the original's length and encoding do not describe it.
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH && name != header::CONTENT_ENCODING {
            out.headers_mut().insert(name, value.clone());
        }
    }
    out.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    out
}

/// Most bytes of an error body read back (a problem's `errors` are capped well below it).
const MAX_ERROR_BODY_BYTES: usize = 2 << 20;

/// The response's head and its body as plain bytes: decoded when a route compressed it (gzip or
/// brotli, as `CompressionLayer` may), `None` when it cannot be read or decoded.
async fn plain_body(res: Response) -> (axum::http::response::Parts, Option<axum::body::Bytes>) {
    // `Decompression` decodes what its request accepts and drops the encoding headers it undid.
    let mut once = Some(res);
    let inner = tower::service_fn(move |_: Request<()>| {
        std::future::ready(Ok::<_, std::convert::Infallible>(once.take().unwrap_or_default()))
    });
    let Ok(decoded) = Decompression::new(inner).oneshot(Request::new(())).await;
    let (parts, body) = decoded.into_parts();
    if parts.headers.contains_key(header::CONTENT_ENCODING) {
        // An encoding this server does not produce: its bytes mean nothing here.
        return (parts, None);
    }
    (parts, axum::body::to_bytes(Body::new(body), MAX_ERROR_BODY_BYTES).await.ok())
}

fn default_detail(status: StatusCode, method: &Method, path: &str, body: &[u8]) -> String {
    match status {
        StatusCode::NOT_FOUND => format!("no resource at {path}"),
        StatusCode::METHOD_NOT_ALLOWED => format!("{method} is not allowed on {path}"),
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is larger than the configured limit".to_owned(),
        s if s.is_server_error() => "internal error; the request id identifies it in the server log".to_owned(),
        _ => {
            let text = String::from_utf8_lossy(body).trim().to_owned();
            if text.is_empty() { status.canonical_reason().unwrap_or("error").to_owned() } else { text }
        }
    }
}

/// Answer for unknown routes.
pub async fn not_found(req: Request<Body>) -> impl IntoResponse {
    Problem::new(StatusCode::NOT_FOUND, format!("no resource at {}", req.uri().path()))
}
