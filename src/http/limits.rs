//! Rate and concurrency limits of one instance (issue 25 item 6), answered 429 + `Retry-After`:
//!
//! - per credential: a token bucket (`governor`, keyed by a hash of the presented bearer token,
//!   OwnTracks user and password, or OsmAnd id: never the secret itself), checked before the
//!   request runs;
//! - per client address ([`ClientIp`], resolved through trusted proxies; IPv6 by /64): a bucket of
//!   failed authentications, spent after the request ran. Once it is empty a failing request is
//!   answered 429 instead of 401/404, while a request whose credential is valid still gets its
//!   answer: hundreds of phones behind one carrier NAT address must not be locked out by one
//!   stale or hostile neighbour. Such a 429 is held for `FV_RATE_UNAUTHENTICATED_HOLD_MS` before
//!   it is sent (a tarpit, at most [`MAX_HELD`] at once): a client that retries failing requests
//!   at once slows to one attempt per hold per connection. Authenticated traffic from an address
//!   has no ceiling of its own (each credential has its bucket);
//! - open `/live` streams per user or device ([`Limits::open_stream`]).
//!
//! `/healthz` and `/readyz` are never limited. Buckets live in memory, per instance; a sweep every
//! [`SWEEP`] forgets every bucket that is full again, which bounds the key stores.

use super::auth::{Actor, Principal};
use super::client::ClientIp;
use super::error::Problem;
use crate::config::Config;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How often full buckets are forgotten.
const SWEEP: Duration = Duration::from_secs(10);

/// `Retry-After` of a refused `/live` stream: streams end when their clients go, not on a clock.
const STREAM_RETRY_S: u64 = 30;

/// Refusals held at once (`FV_RATE_UNAUTHENTICATED_HOLD_MS`); past it they are answered at once,
/// so holding never grows without bound.
const MAX_HELD: usize = 1_024;

/// The probes, never limited: an orchestrator must always learn whether the instance lives.
const NEVER_LIMITED: [&str; 2] = ["/healthz", "/readyz"];

/// Marks a request whose credential the middleware already took from its bucket, so a handler
/// that finds the credential in the body does not count it twice.
#[derive(Clone, Copy, Debug)]
pub struct CredentialCounted;

/// A credential as the limiter knows it: the first 16 bytes of a SHA-256 of its kind and secret.
type CredentialKey = [u8; 16];

/// Who holds a `/live` stream: (org, device?, user or device id).
type StreamOwner = (i64, bool, i64);

/// The limiters of this instance, shared by every listener.
pub struct Limits {
    per_credential: Option<DefaultKeyedRateLimiter<CredentialKey>>,
    failures: Option<DefaultKeyedRateLimiter<IpAddr>>,
    streams_per_user: u32,
    streams: Arc<Mutex<HashMap<StreamOwner, u32>>>,
    refused: prometheus::IntCounterVec,
    hold: Duration,
    held: tokio::sync::Semaphore,
    held_now: prometheus::IntGauge,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(per_min: u32, burst: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    let per_min = NonZeroU32::new(per_min)?;
    let burst = NonZeroU32::new(burst).unwrap_or(per_min);
    Some(RateLimiter::keyed(Quota::per_minute(per_min).allow_burst(burst)))
}

impl Limits {
    /// The limits `config` sets, with `fieldvisit_rate_limited_total{limit}` in `registry` and a
    /// sweep task that ends with the last reference.
    pub fn new(config: &Config, registry: &prometheus::Registry) -> prometheus::Result<Arc<Self>> {
        let refused = prometheus::IntCounterVec::new(
            prometheus::Opts::new("rate_limited_total", "Requests answered 429, by limit"),
            &["limit"],
        )?;
        registry.register(Box::new(refused.clone()))?;
        let held_now = prometheus::IntGauge::new(
            "rate_limited_held",
            "Refusals of failed authentications held before they are answered (FV_RATE_UNAUTHENTICATED_HOLD_MS)",
        )?;
        registry.register(Box::new(held_now.clone()))?;
        let limits = Arc::new(Limits {
            per_credential: limiter(config.rate_credential_per_min, config.rate_credential_burst),
            failures: limiter(config.rate_unauthenticated_per_min, config.rate_unauthenticated_burst),
            streams_per_user: config.live_streams_per_user,
            streams: Arc::default(),
            refused,
            hold: Duration::from_millis(config.rate_unauthenticated_hold_ms),
            held: tokio::sync::Semaphore::new(MAX_HELD),
            held_now,
        });
        let weak = Arc::downgrade(&limits);
        tokio::spawn(sweep(weak));
        Ok(limits)
    }

    /// A slot for one more `/live` stream of `owner`, held until the stream ends; a 429 response
    /// when the owner already has `FV_LIVE_STREAMS_PER_USER` open on this instance.
    pub fn open_stream(&self, who: &Principal) -> Result<StreamSlot, TooMany> {
        let owner = match who.actor {
            Actor::User { id, .. } => (who.org_id, false, id),
            Actor::Device { id, .. } => (who.org_id, true, id),
        };
        let mut open = self.streams.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = open.entry(owner).or_insert(0);
        if self.streams_per_user > 0 && *count >= self.streams_per_user {
            let n = self.streams_per_user;
            self.refused.with_label_values(&["live_streams"]).inc();
            return Err(TooMany {
                detail: format!("{n} live streams are already open for this user on this server; close one first"),
                retry_after_s: STREAM_RETRY_S,
            });
        }
        *count += 1;
        Ok(StreamSlot { streams: self.streams.clone(), owner })
    }
}

/// One held refusal in `fieldvisit_rate_limited_held`, until dropped (also when the request is
/// dropped mid-hold).
struct HeldNow<'a>(&'a prometheus::IntGauge);

impl<'a> HeldNow<'a> {
    fn new(gauge: &'a prometheus::IntGauge) -> Self {
        gauge.inc();
        HeldNow(gauge)
    }
}

impl Drop for HeldNow<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// One open `/live` stream; dropping it frees the slot.
pub struct StreamSlot {
    streams: Arc<Mutex<HashMap<StreamOwner, u32>>>,
    owner: StreamOwner,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.streams.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.owner) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.owner);
            }
        }
    }
}

impl Limits {
    /// One request of the credential with limiter key `key` from its bucket; 429 when empty.
    fn take_credential(&self, key: &CredentialKey) -> Result<(), TooMany> {
        match &self.per_credential {
            Some(limiter) => limiter.check_key(key).map_err(|not_until| {
                self.refused.with_label_values(&["credential"]).inc();
                TooMany {
                    detail: "this credential sent more requests than FV_RATE_CREDENTIAL_PER_MIN allows; retry after \
                             Retry-After seconds"
                        .into(),
                    retry_after_s: retry_after(&not_until),
                }
            }),
            None => Ok(()),
        }
    }

    /// Waits `FV_RATE_UNAUTHENTICATED_HOLD_MS` before a refusal of failed authentications is
    /// answered, unless [`MAX_HELD`] refusals are held already.
    async fn hold_refusal(&self) {
        if self.hold.is_zero() {
            return;
        }
        let Ok(_slot) = self.held.try_acquire() else { return };
        let _counted = HeldNow::new(&self.held_now);
        tokio::time::sleep(self.hold).await;
    }

    /// The per-credential bucket for an OsmAnd id the request carried in its body (Traccar
    /// Client's JSON), which the middleware cannot see before the body is read.
    pub fn take_osmand_id(&self, id: &str) -> Result<(), TooMany> {
        self.take_credential(&credential_key("osmand", id.as_bytes()))
    }
}

async fn sweep(limits: Weak<Limits>) {
    let mut tick = tokio::time::interval(SWEEP);
    loop {
        tick.tick().await;
        let Some(limits) = limits.upgrade() else { return };
        if let Some(l) = &limits.per_credential {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &limits.failures {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// A refusal: 429 problem+json with `Retry-After`.
#[derive(Debug)]
pub struct TooMany {
    detail: String,
    retry_after_s: u64,
}

impl IntoResponse for TooMany {
    fn into_response(self) -> Response {
        let mut res = Problem::new(StatusCode::TOO_MANY_REQUESTS, self.detail).into_response();
        res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(self.retry_after_s.max(1)));
        res
    }
}

fn too_many(detail: String, retry_after_s: u64) -> Response {
    TooMany { detail, retry_after_s }.into_response()
}

/// Whole seconds until `not_until` allows the next request (at least 1).
fn retry_after(not_until: &governor::NotUntil<<DefaultClock as Clock>::Instant>) -> u64 {
    let wait = not_until.wait_time_from(DefaultClock::default().now());
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// The credential a request presents, hashed: the `Authorization` header (bearer token, or the
/// OwnTracks user and password), else the OsmAnd id in the query of an OsmAnd request.
fn credential(req: &Request) -> Option<CredentialKey> {
    let (kind, secret) = if let Some(auth) = req.headers().get(header::AUTHORIZATION) {
        ("authorization", auth.as_bytes())
    } else {
        let path = req.uri().path();
        if path != "/osmand" && path != "/" {
            return None;
        }
        let id = req.uri().query().unwrap_or_default().split('&').find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            (name == "id" || name == "deviceid").then_some(value)
        })?;
        ("osmand", id.as_bytes())
    };
    Some(credential_key(kind, secret))
}

/// The limiter's key of a credential of `kind` (never the secret itself).
fn credential_key(kind: &str, secret: &[u8]) -> CredentialKey {
    let digest = Sha256::new().chain_update(kind).chain_update([0]).chain_update(secret).finalize();
    let mut key = [0; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// The address a client's failures count against: IPv4 as is, IPv6 by its /64 (one subscriber).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// Whether an answer means the request failed to authenticate: 401 anywhere; 404 where the
/// credential names the object (an unknown OsmAnd id or enrolment code); 404 without a credential
/// (probing for paths).
fn failed_authentication(status: StatusCode, path: &str, had_credential: bool) -> bool {
    status == StatusCode::UNAUTHORIZED
        || (status == StatusCode::NOT_FOUND
            && (!had_credential || matches!(path, "/" | "/osmand" | "/api/v1/enrolments/redeem")))
}

/// Middleware: the per-credential bucket before the request, the per-address failure bucket after.
pub async fn enforce(State(limits): State<Arc<Limits>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if NEVER_LIMITED.contains(&path.as_str()) {
        return next.run(req).await;
    }
    let mut req = req;
    let key = credential(&req);
    if let Some(key) = &key {
        if let Err(refused) = limits.take_credential(key) {
            return refused.into_response();
        }
        req.extensions_mut().insert(CredentialCounted);
    }
    let client = req.extensions().get::<ClientIp>().map(|c| address_key(c.ip));
    let res = next.run(req).await;
    if let (Some(limiter), Some(ip)) = (&limits.failures, client)
        && failed_authentication(res.status(), &path, key.is_some())
        && let Err(not_until) = limiter.check_key(&ip)
    {
        limits.refused.with_label_values(&["unauthenticated"]).inc();
        limits.hold_refusal().await;
        return too_many(
            "too many failed authentications from this address; retry after Retry-After seconds".into(),
            retry_after(&not_until),
        );
    }
    res
}

/// Declares the shared `429` answer (problem+json with `Retry-After`) on every operation but the
/// health and readiness probes, which are never limited.
pub fn declare_too_many_requests(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, ResponseBuilder, schema::Type};
    let response = ResponseBuilder::new()
        .description("Too many requests: a rate or concurrency limit; retry after `Retry-After` seconds")
        .header(
            "Retry-After",
            HeaderBuilder::new().schema(utoipa::openapi::ObjectBuilder::new().schema_type(Type::Integer)).build(),
        )
        .content(
            super::error::PROBLEM_JSON,
            ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build(),
        )
        .build();
    openapi.components.get_or_insert_with(Default::default).responses.insert("TooManyRequests".into(), response.into());
    for (path, item) in &mut openapi.paths.paths {
        if NEVER_LIMITED.contains(&path.as_str()) {
            continue;
        }
        for op in super::responses::operations(item) {
            op.responses.responses.insert("429".into(), Ref::from_response_name("TooManyRequests").into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("ip");
        let other: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("ip");
        assert_eq!(address_key(mapped), "192.0.2.1".parse::<IpAddr>().expect("ip"));
    }

    #[test]
    fn what_counts_as_a_failed_authentication() {
        assert!(failed_authentication(StatusCode::UNAUTHORIZED, "/api/v1/me", true));
        assert!(failed_authentication(StatusCode::NOT_FOUND, "/osmand", true));
        assert!(failed_authentication(StatusCode::NOT_FOUND, "/wp-login.php", false));
        assert!(!failed_authentication(StatusCode::NOT_FOUND, "/api/v1/outlets/9", true));
        assert!(!failed_authentication(StatusCode::FORBIDDEN, "/api/v1/users", true));
        assert!(!failed_authentication(StatusCode::OK, "/osmand", true));
    }
}
