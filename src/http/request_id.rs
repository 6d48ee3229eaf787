//! Request ids. Ours is always generated (a UUID by `SetRequestIdLayer`): it is the `x-request-id`
//! of the response, the logs' `request_id`, problem bodies' `request_id` and the audit log's
//! `request_id`. A client's own `x-request-id` never takes its place: when it is at most
//! [`MAX_CLIENT_REQUEST_ID`] visible ASCII characters it is kept apart, as the client's id (the
//! log span's `client_request_id`, the audit row's `client_request_id`); otherwise it is dropped.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

/// Longest client request id kept (longer ones are dropped).
pub const MAX_CLIENT_REQUEST_ID: usize = 128;

/// The `x-request-id` the client sent, when it was short visible ASCII (a request extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRequestId(pub String);

/// The client's id from its header value: 1 to [`MAX_CLIENT_REQUEST_ID`] visible ASCII characters
/// (no space, no control character), else `None`.
pub fn client_request_id(value: &HeaderValue) -> Option<ClientRequestId> {
    let bytes = value.as_bytes();
    let fits = !bytes.is_empty() && bytes.len() <= MAX_CLIENT_REQUEST_ID && bytes.iter().all(u8::is_ascii_graphic);
    fits.then(|| ClientRequestId(String::from_utf8_lossy(bytes).into_owned()))
}

/// Moves the client's `x-request-id` out of the headers into a [`ClientRequestId`] extension (or
/// drops it), so that the request-id layer inside always generates ours.
pub async fn set_aside_client_id(mut req: Request, next: Next) -> Response {
    if let Some(id) = req.headers_mut().remove("x-request-id").as_ref().and_then(client_request_id) {
        req.extensions_mut().insert(id);
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_short_visible_ascii_only() {
        let id = |s: &[u8]| HeaderValue::from_bytes(s).ok().and_then(|v| client_request_id(&v)).map(|c| c.0);
        assert_eq!(id(b"abc-123_XYZ.4"), Some("abc-123_XYZ.4".to_owned()));
        assert_eq!(id(&[b'a'; MAX_CLIENT_REQUEST_ID]).map(|s| s.len()), Some(MAX_CLIENT_REQUEST_ID));
        assert_eq!(id(&[b'a'; MAX_CLIENT_REQUEST_ID + 1]), None);
        assert_eq!(id(b"a\tb"), None);
        assert_eq!(id(b"two words"), None);
        assert_eq!(id(b"caf\xc3\xa9"), None);
        assert_eq!(id(b""), None);
    }
}
