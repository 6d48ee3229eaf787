//! HTTP API: thin axum handlers over `db` and `domain`, problem+json errors, OpenAPI from the code.

mod audit;
pub mod auth;
mod basemap;
mod beats;
mod checkins;
mod checklists;
pub mod client;
mod compliance;
mod coverage;
mod devices;
pub mod error;
mod exports;
pub mod extract;
pub mod headers;
mod import;
mod ingest;
mod layers;
pub mod limits;
pub mod links;
mod live;
pub mod metrics;
pub mod middleware;
mod nearby;
mod ogc;
mod ops;
mod outlets;
mod people;
mod photos;
mod plans;
mod positioning;
mod privacy;
mod reminders;
pub mod request_id;
mod responses;
mod reviews_queue;
pub mod server;
mod settings;
mod territories;
mod tiles;
mod tracks;
mod visits;

use crate::config::Config;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::routing::get;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// The request pool: queries run for a request, under `FV_STATEMENT_TIMEOUT_MS`.
    pub db: sqlx::PgPool,
    /// The background pool (no statement timeout): exports, visit derivation and recomputation,
    /// imports, retention, the outlet index and position relay.
    pub background_db: sqlx::PgPool,
    pub metrics: Arc<metrics::Metrics>,
    pub config: Arc<Config>,
    /// The org's in-memory outlet indexes (listener started by [`serve`]).
    pub index: Arc<crate::index::Registry>,
    /// Batched, durable ping writes and the last known position of each device.
    pub ingest: Arc<crate::ingest::Ingest>,
    /// The visit derivation worker of this instance.
    pub deriver: Arc<crate::derive::Deriver>,
    /// Counted visits per outlet, for statuses on maps and tiles.
    pub ledgers: Arc<crate::index::Ledgers>,
    /// Rate and concurrency limits of this instance.
    pub limits: Arc<limits::Limits>,
    /// Where reads that may lag go: the read pool (`FV_READ_DATABASE_URL`) within its staleness
    /// bound, else the primary.
    pub reads: Arc<crate::db::replica::Reads>,
}

impl AppState {
    /// What the read use cases answer from.
    pub fn stores(&self) -> crate::app::Stores<'_> {
        crate::app::Stores { db: &self.db, index: &self.index, ledgers: &self.ledgers }
    }

    /// The pool of reads that may lag the primary by the read pool's bound (layers, tiles,
    /// coverage, compliance, the bulletin): never for a write, nor for a read of the caller's own
    /// fresh write.
    pub fn read_db(&self) -> &sqlx::PgPool {
        self.reads.pool()
    }

    /// [`Self::stores`] over [`Self::read_db`].
    pub fn read_stores(&self) -> crate::app::Stores<'_> {
        crate::app::Stores { db: self.read_db(), index: &self.index, ledgers: &self.ledgers }
    }

    /// The state of a server over `background_db`, the pool of background work (no statement
    /// timeout); the request pool is made from its settings (`FV_DB_MAX_CONNECTIONS`,
    /// `FV_STATEMENT_TIMEOUT_MS`).
    pub fn new(background_db: sqlx::PgPool, config: Config) -> Self {
        let db = crate::db::request_pool(&background_db, config.db_max_connections, config.statement_timeout_ms);
        let metrics = Arc::new(metrics::Metrics::new());
        let index = crate::index::Registry::new(background_db.clone());
        crate::index::register_metrics(&metrics.registry, &index).expect("index metrics registered once");
        let deriver = crate::derive::Deriver::start(
            &background_db,
            &metrics.registry,
            config.derive_visits,
            config.derive_settle_s,
        )
        .expect("derive metrics registered once");
        let wake = Arc::downgrade(&deriver);
        let after_commit: crate::ingest::AfterCommit = Arc::new(move || {
            if let Some(d) = wake.upgrade() {
                d.wake();
            }
        });
        let ingest =
            crate::ingest::Ingest::start(&db, &background_db, config.ingest(), &metrics.registry, &after_commit)
                .expect("ingest metrics registered once");
        let ledgers = crate::index::Ledgers::new(db.clone(), background_db.clone(), config.visit_ledger_days);
        let limits = limits::Limits::new(&config, &metrics.registry).expect("limit metrics registered once");
        let reads = match &config.read_database_url {
            Some(url) => crate::db::replica::Reads::start(
                db.clone(),
                url,
                config.db_max_connections,
                config.statement_timeout_ms,
                config.read_max_staleness_ms,
                &metrics.registry,
            ),
            None => crate::db::replica::Reads::primary_only(db.clone(), &metrics.registry).map_err(Into::into),
        }
        .expect("the read pool's URL was checked when the configuration was read");
        AppState {
            db,
            background_db,
            metrics,
            config: Arc::new(config),
            index,
            ingest,
            deriver,
            ledgers,
            limits,
            reads,
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "fieldvisit API",
        description = "Pings in; verified visits, plan compliance and outlet coverage out. \
                       Every error is an RFC 9457 problem (application/problem+json)."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(error::Problem, crate::domain::validation::FieldError)),
    tags(
        (name = "ops", description = "Health, readiness, metrics"),
        (name = "map", description = "The map UI's basemap settings and the offline street basemap file"),
        (name = "me", description = "The caller"),
        (name = "outlets", description = "Retail outlets"),
        (name = "territories", description = "The territory tree"),
        (name = "tier-policies", description = "Visit requirements per outlet tier"),
        (name = "users", description = "Users, roles, tokens"),
        (name = "devices", description = "Reps' phones and their credentials"),
        (name = "tracks", description = "Raw pings of a rep"),
        (name = "plans", description = "Beat plans and a rep's plan of the day"),
        (name = "visits", description = "Visits derived from pings: verdict, evidence, recomputation"),
        (name = "compliance", description = "Plan, frequency, coverage and dwell compliance of reps, territories and outlets"),
        (name = "layers", description = "Map layers as RFC 7946 GeoJSON: outlets with status, H3 coverage, territories"),
        (name = "coverage", description = "Outlet coverage by territory, tier, channel type and H3 cell; outlet status; route corridors"),
        (name = "live", description = "Live positions (Server-Sent Events)"),
        (name = "pings", description = "Position ingestion (native; OsmAnd at /osmand and OwnTracks at /owntracks)"),
        (name = "audit", description = "The append-only audit log"),
        (name = "checklists", description = "Visit checklists, a rep's answers, and the outlet attributes they set"),
        (name = "photos", description = "Photo evidence of visits and outlets: EXIF time and position, reuse, thumbnails"),
        (name = "exports", description = "Audit exports (XLSX, zipped CSV, GeoJSON) with a manifest; verify files and data against it"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The API routes and their OpenAPI description.
fn api() -> OpenApiRouter<AppState> {
    let mut api = OpenApiRouter::with_openapi(ApiDoc::openapi()).merge(ops::router()).merge(basemap::router()).nest(
        "/api/v1",
        OpenApiRouter::new()
            .merge(people::router())
            .merge(devices::router())
            .merge(checkins::router())
            .merge(privacy::router())
            .merge(photos::router())
            .merge(checklists::router())
            .merge(reminders::router())
            .merge(outlets::router())
            .merge(nearby::router())
            .merge(import::router())
            .merge(territories::router())
            .merge(tracks::router())
            .merge(live::router())
            .merge(ingest::router())
            .merge(positioning::router())
            .merge(audit::router())
            .merge(visits::router())
            .merge(reviews_queue::router())
            .merge(compliance::router())
            .merge(coverage::router())
            .merge(layers::router())
            .merge(plans::router())
            .merge(beats::router())
            .merge(exports::router())
            .merge(settings::router()),
    );
    limits::declare_too_many_requests(api.get_openapi_mut());
    api
}

/// The OpenAPI document (also served at `/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_parts().1
}

/// The API router and its description, with the responses every operation shares declared.
fn api_parts() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, doc) = api().split_for_parts();
    let mut doc = server::document_timeouts(doc);
    responses::declare_shared(&mut doc);
    (router, doc)
}

/// Body limit of routes whose bodies are a few small fields (devices, enrolment, check-ins):
/// a client cannot make them read megabytes, least of all the unauthenticated enrolment redeem.
pub(crate) const SMALL_BODY_BYTES: usize = 16 * 1024;

/// The whole application: API, docs, map UI, and the middleware stack.
pub fn router(state: AppState) -> Router {
    let (api_router, openapi) = api_parts();
    let map_dir = state.config.map_ui_dir.clone();
    let mut app = api_router.merge(ingest::protocol_router()).merge(ogc::router()).merge(tiles::router()).merge(
        SwaggerUi::new("/docs")
            .url("/openapi.json", openapi)
            // No call-out to the public validator: the docs page works offline.
            .config(utoipa_swagger_ui::Config::from("/openapi.json").validator_url("none")),
    );
    app = if map_dir.join("index.html").is_file() {
        app.fallback_service(
            ServeDir::new(map_dir)
                .precompressed_br()
                .precompressed_gzip()
                .not_found_service(axum::routing::any(middleware::not_found)),
        )
    } else {
        app.route("/", get(ops::landing)).fallback(middleware::not_found)
    };
    let body_limit = state.config.body_limit_bytes;
    let proxies = client::TrustedProxies::new(&state.config.trusted_proxies);
    app.layer(
        ServiceBuilder::new()
            .layer(axum::middleware::from_fn(move |req, next| client::resolve(proxies.clone(), req, next)))
            // Ours always (a UUID); the client's id is kept apart (`request_id.rs`).
            .layer(axum::middleware::from_fn(request_id::set_aside_client_id))
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                let client = req.extensions().get::<request_id::ClientRequestId>().map_or("-", |c| c.0.as_str());
                let (method, path) = (req.method(), req.uri().path());
                tracing::info_span!("request", %method, %path, request_id = %id, client_request_id = %client)
            }))
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::track_metrics))
            .layer(axum::middleware::from_fn(middleware::problem_json))
            .layer(axum::middleware::from_fn_with_state(state.limits.clone(), limits::enforce))
            .layer(CatchPanicLayer::new())
            .layer(DefaultBodyLimit::max(body_limit)),
    )
    .with_state(state)
}

/// Serves until SIGTERM/Ctrl-C, then lets in-flight requests finish (up to the grace period): a
/// request whose pings are queued is answered after their commit. With `FV_TLS_CERT` and
/// `FV_TLS_KEY` the main port speaks HTTPS. The OsmAnd port and the HTTPS redirect listener, when
/// configured, stop with the main one.
pub async fn serve(listener: tokio::net::TcpListener, state: AppState) -> std::io::Result<()> {
    let grace = Duration::from_secs(state.config.shutdown_grace_s);
    let tls = server::tls_acceptor(&state.config)?;
    let redirect = state.config.redirect_target().map_err(std::io::Error::other)?;
    state.index.spawn_listener();
    let policy = Arc::new(server::Policy::new(&state.config));
    let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
    let mut listeners = Vec::new();
    if let Some(addr) = state.config.osmand_bind {
        let osmand_listener = tokio::net::TcpListener::bind(addr).await?;
        tracing::info!(%addr, "OsmAnd / Traccar Client protocol listening");
        let proxies = client::TrustedProxies::new(&state.config.trusted_proxies);
        let osmand_app = ingest::osmand_port_router()
            .layer(
                ServiceBuilder::new()
                    .layer(axum::middleware::from_fn(move |req, next| client::resolve(proxies.clone(), req, next)))
                    .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::track_metrics))
                    .layer(axum::middleware::from_fn(middleware::problem_json))
                    .layer(axum::middleware::from_fn_with_state(state.limits.clone(), limits::enforce))
                    .layer(CatchPanicLayer::new())
                    .layer(DefaultBodyLimit::max(state.config.body_limit_bytes)),
            )
            .with_state(state.clone());
        // Plain HTTP even with TLS on: trackers that speak the bare protocol rarely do TLS.
        listeners.push(server::serve_connections(osmand_listener, None, osmand_app, policy.clone(), stopping.clone()));
    }
    if let (Some(addr), Some(target)) = (state.config.tls_redirect_bind, redirect) {
        let redirect_listener = tokio::net::TcpListener::bind(addr).await?;
        tracing::info!(%addr, %target, "redirecting plain HTTP to HTTPS");
        let app = server::redirect_router(&target);
        listeners.push(server::serve_connections(redirect_listener, None, app, policy.clone(), stopping.clone()));
    }
    listeners.push(server::serve_connections(listener, tls, router(state), policy, stopping.clone()));
    let drained = futures_util::future::join_all(listeners);
    let signalled_then_grace = async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = stopping_tx.send(true);
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        _ = drained => Ok(()),
        () = signalled_then_grace => {
            tracing::warn!("grace period over; dropping remaining connections");
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
