//! Audit exports: reads a scope's plan figures, visits and reviews in one database snapshot,
//! writes them as XLSX, zipped CSV and GeoJSON with bounded memory, stores the files in chunks and
//! the manifest that `verify` checks files and data against.

pub mod assessment;
pub mod pdf;
pub mod sinks;

use crate::db;
use crate::domain::audit::AuditAction;
use crate::domain::compliance::{self, ComplianceDay, ComplianceRules, PeriodTotals, PlannedOutcome};
use crate::domain::export::{
    self, DataDigest, DataHasher, ExportFormat, ExportParams, ExportScope, ExportStatus, FileCheck, FileDigest,
    Generator, METRICS_VERSION, Manifest,
};
use crate::domain::privacy::{self, HomeBlurPolicy, HomeZone};
use crate::domain::visit::Verdict;
use chrono::{Duration, NaiveDate, Utc};
use futures_util::TryStreamExt;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use sinks::{Cell, SinkError, Sinks, Table};
use sqlx::{PgConnection, PgPool};
use std::collections::{BTreeSet, HashMap};
use std::io::Read;

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("temporary files: {0}")]
    Io(#[from] std::io::Error),
    #[error("export {0} not found")]
    NotFound(i64),
    #[error("export {0} is {1}")]
    NotDone(i64, ExportStatus),
}

impl ExportError {
    /// What a failed export shows its readers (`exports.error`): a fixed text per kind of failure,
    /// never the database's or the file system's own words (the log has those).
    pub fn public_reason(&self) -> String {
        match self {
            ExportError::Db(_) => "the database failed while the export was made; request it again".to_owned(),
            ExportError::Sink(_) | ExportError::Io(_) => {
                "the export's files could not be written; request it again".to_owned()
            }
            ExportError::NotFound(_) | ExportError::NotDone(..) => self.to_string(),
        }
    }
}

/// Days of a rep read at once (bounds the fixes held in memory).
const REP_WINDOW_DAYS: i64 = 31;

/// How often progress is written (visits).
const PROGRESS_EVERY: u64 = 5000;

fn headers() -> Vec<Vec<&'static str>> {
    const TOTALS: [&str; 18] = [
        "planned",
        "done",
        "late",
        "short",
        "missed",
        "plan_compliance_pct",
        "visits",
        "valid_visits",
        "unplanned_visits",
        "verified_visits",
        "suspect_visits",
        "verified_rate_pct",
        "suspect_rate_pct",
        "time_in_market_s",
        "in_store_s",
        "travel_s",
        "distance_m",
        "days_in_market",
    ];
    let mut summary = vec!["rep_id", "login", "name", "territory_id", "territory_code"];
    summary.extend(TOTALS);
    let mut days = vec!["rep_id", "login", "day"];
    days.extend(TOTALS.iter().take(17));
    days.extend(["first_arrival", "last_departure"]);
    let visits = vec![
        "visit_id",
        "rep_id",
        "login",
        "rep_day",
        "outlet_id",
        "outlet_code",
        "outlet_name",
        "arrival",
        "departure",
        "dwell_s",
        "verdict",
        "risk_score",
        "ping_count",
        "min_distance_m",
        "median_distance_m",
        "median_accuracy_m",
        "max_gap_s",
        "signals",
        "review",
        "counted",
        "rule_version",
        "lat",
        "lon",
    ];
    vec![
        summary,
        days,
        visits.clone(),
        vec![
            "planned_visit_id",
            "rep_id",
            "login",
            "day",
            "seq",
            "outlet_id",
            "outlet_code",
            "outlet_name",
            "window_start",
            "window_end",
        ],
        visits,
        vec![
            "review_id",
            "visit_id",
            "rep_id",
            "outlet_id",
            "arrival",
            "reviewer_id",
            "reviewer",
            "decision",
            "reason",
            "created_at",
        ],
        vec![
            "photo_id",
            "visit_id",
            "rep_id",
            "login",
            "rep_day",
            "visit_arrival",
            "outlet_id",
            "outlet_code",
            "uploaded_at",
            "taken_at",
            "exif_lat",
            "exif_lon",
            "distance_m",
            "minutes_from_visit",
            "verdict",
            "reused_photo_id",
            "content_type",
            "bytes",
            "sha256",
            "file",
            "checkin_id",
            "client_id",
            "capture_at",
            "capture_lat",
            "capture_lon",
            "capture_accuracy_m",
            "time_source",
            "position_source",
        ],
        vec![
            "outcome_id",
            "visit_id",
            "rep_id",
            "login",
            "visit_arrival",
            "outlet_id",
            "outlet_code",
            "checklist_id",
            "checklist",
            "version",
            "answers",
            "problems",
            "submitted_at",
            "checkin_id",
            "client_id",
        ],
        vec!["month", "kind", "id", "login_or_code", "name", "figure", "value", "previous", "change_pp", "rank"],
        vec!["metric", "definition", "version"],
    ]
}

fn totals_cells(t: &PeriodTotals) -> Vec<Cell> {
    vec![
        Cell::Int(t.planned as i64),
        Cell::Int(t.done as i64),
        Cell::Int(t.late as i64),
        Cell::Int(t.short as i64),
        Cell::Int(t.missed as i64),
        Cell::opt_num(t.plan_compliance_pct),
        Cell::Int(t.visits as i64),
        Cell::Int(t.valid_visits as i64),
        Cell::Int(t.unplanned_visits as i64),
        Cell::Int(t.verified_visits as i64),
        Cell::Int(t.suspect_visits as i64),
        Cell::opt_num(t.verified_rate_pct),
        Cell::opt_num(t.suspect_rate_pct),
        Cell::Int(t.time_in_market_s),
        Cell::Int(t.in_store_s),
        Cell::Int(t.travel_s),
        Cell::Num(t.distance_m),
        Cell::Int(t.days_in_market as i64),
    ]
}

fn day_cells(rep: &db::exports::ScopeRep, d: &ComplianceDay) -> Vec<Cell> {
    let f = &d.figures;
    let mut cells = vec![Cell::Int(rep.id), Cell::text(&rep.login), Cell::date(d.day)];
    let mut t = PeriodTotals::default();
    t.add_day(f);
    cells.extend(totals_cells(&t).into_iter().take(17));
    cells.extend([Cell::opt_time(f.first_arrival), Cell::opt_time(f.last_departure)]);
    cells
}

fn visit_cells(v: &db::exports::VisitRow) -> Vec<Cell> {
    let signals = v.signals.as_ref().map_or(Cell::Empty, |s| Cell::text(s.to_string()));
    vec![
        Cell::Int(v.id),
        Cell::Int(v.rep_id),
        Cell::text(&v.rep_login),
        Cell::date(v.rep_day),
        Cell::Int(v.outlet_id),
        Cell::text(&v.outlet_code),
        Cell::text(&v.outlet_name),
        Cell::time(v.arrival),
        Cell::time(v.departure),
        Cell::Int(i64::from(v.dwell_s)),
        Cell::text(v.verdict.as_str()),
        Cell::Num(f64::from(v.risk_score)),
        Cell::Int(i64::from(v.ping_count)),
        Cell::opt_num(v.min_distance_m.map(f64::from)),
        Cell::opt_num(v.median_distance_m.map(f64::from)),
        Cell::opt_num(v.median_accuracy_m.map(f64::from)),
        v.max_gap_s.map_or(Cell::Empty, |g| Cell::Int(i64::from(g))),
        signals,
        v.review.map_or(Cell::Empty, |r| Cell::text(r.as_str())),
        Cell::text(if v.counted { "yes" } else { "no" }),
        Cell::text(&v.rule_version),
        Cell::Num(v.lat),
        Cell::Num(v.lon),
    ]
}

/// The active reps an export covers, by id.
pub async fn scope_reps(db: &PgPool, org_id: i64, scope: ExportScope) -> Result<Vec<i64>, sqlx::Error> {
    Ok(match scope {
        ExportScope::Territory { id } => {
            db::compliance::subtree_reps(db, org_id, id).await?.into_iter().map(|r| r.id).collect()
        }
        ExportScope::Rep { id } => vec![id],
    })
}

/// Local-day windows of at most [`REP_WINDOW_DAYS`] covering `[from, to]`.
fn windows(from: NaiveDate, to: NaiveDate) -> Vec<(NaiveDate, NaiveDate)> {
    let mut out = Vec::new();
    let mut start = from;
    while start <= to {
        let end = start.checked_add_signed(Duration::days(REP_WINDOW_DAYS - 1)).map_or(to, |e| e.min(to));
        out.push((start, end));
        match end.succ_opt() {
            Some(next) => start = next,
            None => break,
        }
    }
    out
}

/// The photos and checklist answers of the visits of `reps` in the period: hashed, and written to
/// their tables when `sinks` are given.
async fn evidence(
    tx: &mut PgConnection,
    org_id: i64,
    reps: &[i64],
    params: &ExportParams,
    hasher: &mut DataHasher,
    mut sinks: Option<&mut Sinks>,
) -> Result<(), ExportError> {
    {
        let mut rows = db::exports::photos(&mut *tx, org_id, reps, params.from, params.to);
        while let Some(p) = rows.try_next().await? {
            hasher.photo(p.id, p.visit_id, &p.sha256, &p.findings);
            let Some(sinks) = sinks.as_deref_mut() else { continue };
            let finding = |k: &str| p.findings.get(k).and_then(serde_json::Value::as_f64);
            let said = |k: &str| Cell::text(p.findings.get(k).and_then(serde_json::Value::as_str).unwrap_or(""));
            sinks.row(
                Table::Photos,
                &[
                    Cell::Int(p.id),
                    p.visit_id.map_or(Cell::Empty, Cell::Int),
                    Cell::Int(p.rep_id),
                    Cell::text(&p.login),
                    Cell::date(p.rep_day),
                    Cell::time(p.visit_arrival),
                    Cell::Int(p.outlet_id),
                    Cell::text(&p.outlet_code),
                    Cell::time(p.uploaded_at),
                    Cell::opt_time(p.taken_at),
                    Cell::opt_num(p.exif_lat),
                    Cell::opt_num(p.exif_lon),
                    Cell::opt_num(finding("distance_m")),
                    Cell::opt_num(finding("minutes_from_visit")),
                    said("verdict"),
                    p.reused_photo_id.map_or(Cell::Empty, Cell::Int),
                    Cell::text(&p.content_type),
                    Cell::Int(i64::from(p.bytes)),
                    Cell::text(&p.sha256),
                    Cell::text(format!("/api/v1/photos/{}/original", p.id)),
                    p.checkin_id.map_or(Cell::Empty, Cell::Int),
                    p.client_id.as_deref().map_or(Cell::Empty, Cell::text),
                    Cell::opt_time(p.capture_at),
                    Cell::opt_num(p.capture_lat),
                    Cell::opt_num(p.capture_lon),
                    Cell::opt_num(p.capture_accuracy_m),
                    said("time_source"),
                    said("position_source"),
                ],
            )?;
        }
    }
    let mut rows = db::exports::outcomes(&mut *tx, org_id, reps, params.from, params.to);
    while let Some(o) = rows.try_next().await? {
        hasher.outcome(o.id, o.visit_id, o.checklist_id, &o.answers);
        let Some(sinks) = sinks.as_deref_mut() else { continue };
        sinks.row(
            Table::Outcomes,
            &[
                Cell::Int(o.id),
                o.visit_id.map_or(Cell::Empty, Cell::Int),
                Cell::Int(o.rep_id),
                Cell::text(&o.login),
                Cell::time(o.visit_arrival),
                Cell::Int(o.outlet_id),
                Cell::text(&o.outlet_code),
                Cell::Int(o.checklist_id),
                Cell::text(&o.checklist),
                Cell::Int(i64::from(o.version)),
                Cell::text(o.answers.to_string()),
                Cell::text(o.problems.join(", ")),
                Cell::time(o.submitted_at),
                o.checkin_id.map_or(Cell::Empty, Cell::Int),
                o.client_id.as_deref().map_or(Cell::Empty, Cell::text),
            ],
        )?;
    }
    Ok(())
}

/// The monthly bulletin a territory export carries: the month holding `to`, against the month
/// before (`None` for a rep's export).
async fn bulletin(
    tx: &mut PgConnection,
    org_id: i64,
    params: &ExportParams,
) -> Result<Option<assessment::Assessment>, sqlx::Error> {
    let ExportScope::Territory { id: root } = params.scope else { return Ok(None) };
    let Some(t) = db::territories::get(&mut *tx, org_id, root).await? else { return Ok(None) };
    let first = crate::domain::assessment::month_of(params.to);
    Ok(Some(assessment::assessment(tx, org_id, &t, first).await?))
}

/// The digest of the rows an export of `params` over `reps` would be made from now.
pub async fn digest(db: &PgPool, org_id: i64, params: &ExportParams, reps: &[i64]) -> Result<DataDigest, ExportError> {
    let mut reps = reps.to_vec();
    // The export reads reps by id.
    reps.sort_unstable();
    let mut tx = db::snapshot(db).await?;
    let mut hasher = DataHasher::default();
    let rules = ComplianceRules::default();
    for &rep in &reps {
        for p in db::exports::planned(&mut tx, org_id, rep, params.from, params.to).await? {
            hasher.planned(&p.facts());
        }
        for (from, to) in windows(params.from, params.to) {
            let inputs = db::compliance::read_rep_inputs(&mut tx, org_id, rep, from, to).await?;
            for d in compliance::rep_period(inputs, &rules).0 {
                hasher.day_distance(rep, d.day, d.figures.distance_m);
            }
        }
    }
    {
        let mut rows = db::exports::visits(&mut tx, org_id, &reps, params.from, params.to);
        while let Some(v) = rows.try_next().await? {
            hasher.visit(&v.facts());
        }
    }
    {
        let mut rows = db::exports::reviews(&mut tx, org_id, &reps, params.from, params.to);
        while let Some(r) = rows.try_next().await? {
            hasher.review(&r.facts());
        }
    }
    evidence(&mut tx, org_id, &reps, params, &mut hasher, None).await?;
    if let Some(a) = bulletin(&mut tx, org_id, params).await? {
        hasher.assessment(&serde_json::to_vec(&a).map_err(std::io::Error::other)?);
    }
    tx.commit().await?;
    Ok(hasher.finish())
}

/// What `verify` found.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Verification {
    /// The export the file was checked against (the one it matches, when found by content).
    pub export_id: Option<i64>,
    /// The file checked, when one was given.
    pub file: Option<FileCheck>,
    /// Whether the file is, byte for byte, one of the export's files.
    pub file_matches: bool,
    /// Whether the rows the export was made from have changed since (a later review, a
    /// recomputed visit, a changed plan); `null` without an export to compare with.
    pub data_changed: Option<bool>,
    /// Which parts changed: `planned_visits`, `visits`, `reviews`.
    pub changed_parts: Vec<&'static str>,
    pub exported_data: Option<DataDigest>,
    pub current_data: Option<DataDigest>,
}

impl Verification {
    /// A file that matches no export.
    pub fn unknown(file: Option<(String, u64)>) -> Self {
        Verification {
            export_id: None,
            file: file.map(|(sha256, bytes)| FileCheck { sha256, bytes, matches: None }),
            file_matches: false,
            data_changed: None,
            changed_parts: Vec::new(),
            exported_data: None,
            current_data: None,
        }
    }
}

/// Checks a file (its SHA-256 and length) against `export`'s manifest and the export's data
/// against the data as it is now.
pub async fn verify(
    db: &PgPool,
    org_id: i64,
    export: &db::exports::Export,
    file: Option<(String, u64)>,
) -> Result<Verification, ExportError> {
    let Some(manifest) = export.manifest.as_ref().map(|m| &m.0) else {
        return Err(ExportError::NotDone(export.id, export.status));
    };
    let file = file.map(|(h, n)| export::check_file(manifest, &h, n));
    let current = digest(db, org_id, &manifest.params, &manifest.rep_ids).await?;
    Ok(Verification {
        export_id: Some(export.id),
        file_matches: file.as_ref().is_some_and(|f| f.matches.is_some()),
        file,
        data_changed: Some(!manifest.data.changed_parts(&current).is_empty()),
        changed_parts: manifest.data.changed_parts(&current),
        exported_data: Some(manifest.data.clone()),
        current_data: Some(current),
    })
}

/// The home zones of the reps whose first and last fixes near home the export leaves out of its
/// tracks: all who declared a home when the org blurs homes, except the exporting rep themselves.
async fn home_zones(
    tx: &mut PgConnection,
    org_id: i64,
    reps: &[i64],
    reader: Option<i64>,
) -> Result<HashMap<i64, HomeZone>, ExportError> {
    let (settings, _) = db::orgs::ping_settings(&mut *tx, org_id).await?;
    let policy = HomeBlurPolicy::from_stored(&settings);
    if !policy.enabled {
        return Ok(HashMap::new());
    }
    let others: Vec<i64> = reps.iter().copied().filter(|r| Some(*r) != reader).collect();
    Ok(db::privacy::rep_privacy(&mut *tx, org_id, &others)
        .await?
        .into_iter()
        .filter_map(|r| policy.zone(r.home_lat.zip(r.home_lon), r.home_radius_m.map(f64::from)).map(|z| (r.rep_id, z)))
        .collect())
}

/// Exports this process runs at once; more wait, queued (each holds a database snapshot, a
/// connection and temporary files while it runs).
pub const CONCURRENT_EXPORTS: usize = 2;
static SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(CONCURRENT_EXPORTS);

/// How often a queued or running export shows it is alive (`exports.heartbeat_at`).
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(60);
/// Silence after which a queued or running export is taken for interrupted (its server stopped).
pub const SILENT_S: i64 = 600;

/// Runs export `id` once one of the [`CONCURRENT_EXPORTS`] slots is free, on a blocking thread
/// (writing the files is CPU work that must not hold up request handling), beating its heartbeat
/// meanwhile.
pub async fn run_queued(db: PgPool, org_id: i64, id: i64, generator: Generator) -> Result<Manifest, ExportError> {
    let beat = {
        let db = db.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(HEARTBEAT);
            loop {
                ticks.tick().await;
                if let Err(e) = db::exports::heartbeat(&db, org_id, id).await {
                    tracing::warn!(export = id, error = %e, "export heartbeat not stored");
                }
            }
        })
    };
    let result = async {
        let _slot = SLOTS.acquire().await.map_err(std::io::Error::other)?;
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || handle.block_on(run(&db, org_id, id, generator)))
            .await
            .map_err(std::io::Error::other)?
    }
    .await;
    beat.abort();
    result
}

/// Every minute, marks failed the exports whose server stopped while they were queued or
/// running (no heartbeat for [`SILENT_S`]), so that they do not stay `running` for ever.
pub fn sweep_interrupted(db: PgPool) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(HEARTBEAT);
        loop {
            ticks.tick().await;
            match db::exports::fail_silent(&db, SILENT_S).await {
                Ok(failed) if !failed.is_empty() => tracing::warn!(?failed, "interrupted exports marked failed"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "sweep of interrupted exports failed"),
            }
        }
    })
}

/// Runs export `id` (queued by [`db::exports::create`]) to the end: writes its files, stores them
/// and its manifest, records it in the audit log. On failure the export is marked failed.
pub async fn run(db: &PgPool, org_id: i64, id: i64, generator: Generator) -> Result<Manifest, ExportError> {
    match produce(db, org_id, id, generator).await {
        Ok(m) => Ok(m),
        Err(e) => {
            // The cause is logged by the caller (or printed by the command line).
            db::exports::fail(db, org_id, id, &e.public_reason()).await?;
            Err(e)
        }
    }
}

async fn produce(db: &PgPool, org_id: i64, id: i64, generator: Generator) -> Result<Manifest, ExportError> {
    let export = db::exports::get(db, org_id, id).await?.ok_or(ExportError::NotFound(id))?;
    let params = export.params.0;
    db::exports::set_progress(db, org_id, id, ExportStatus::Running, 0.0).await?;
    let reps = scope_reps(db, org_id, params.scope).await?;
    // Recurring plans become planned visits before the snapshot (the only write of an export).
    for &rep in &reps {
        db::plans::materialize_recurring(db, org_id, rep, params.from, params.to).await?;
    }
    if let ExportScope::Territory { id: root } = params.scope {
        assessment::materialize(db, org_id, root, crate::domain::assessment::month_of(params.to)).await?;
    }
    let dir = tempfile::Builder::new().prefix("fieldvisit-export-").tempdir()?;
    let mut sinks = Sinks::new(dir.path(), &params.formats, &headers())?;
    let mut hasher = DataHasher::default();
    let mut rule_versions = BTreeSet::new();
    let mut tx = db::snapshot(db).await?;
    let total = db::exports::visit_count(&mut tx, org_id, &reps, params.from, params.to).await?.max(0) as u64
        + reps.len() as u64;
    let mut done = 0u64;
    let rules = ComplianceRules::default();
    let mut all = PeriodTotals::default();
    let scope_reps = db::exports::reps(&mut *tx, org_id, &reps).await?;
    let homes = home_zones(&mut tx, org_id, &reps, generator.user_id).await?;
    let mut pages: Vec<pdf::RepPage> = Vec::with_capacity(scope_reps.len());
    let page_of: HashMap<i64, usize> = scope_reps.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
    for rep in &scope_reps {
        let mut page = pdf::RepPage {
            login: rep.login.clone(),
            name: rep.name.clone(),
            territory_code: rep.territory_code.clone(),
            ..pdf::RepPage::default()
        };
        let planned = db::exports::planned(&mut tx, org_id, rep.id, params.from, params.to).await?;
        for p in &planned {
            hasher.planned(&p.facts());
        }
        let by_id: HashMap<i64, &db::exports::PlannedRow> = planned.iter().map(|p| (p.id, p)).collect();
        let mut totals = PeriodTotals::default();
        for (from, to) in windows(params.from, params.to) {
            let inputs = db::compliance::read_rep_inputs(&mut tx, org_id, rep.id, from, to).await?;
            let tracks: Vec<_> = inputs
                .iter()
                .map(|(day, d)| match homes.get(&rep.id) {
                    // Each day's fixes are one local day: no day boundaries to give.
                    Some(zone) => {
                        let at: Vec<_> = d
                            .fixes
                            .iter()
                            .map(|f| privacy::BlurFix::new(f.fix_time, f.lat, f.lon, f.accuracy_m, false, f.flags))
                            .collect();
                        let hide = privacy::withheld(&at, zone, &[]);
                        let shown: Vec<_> =
                            d.fixes.iter().zip(hide).filter(|(_, h)| !h).map(|(f, _)| f.clone()).collect();
                        (*day, compliance::track_pieces(&shown, &rules))
                    }
                    None => (*day, compliance::track_pieces(&d.fixes, &rules)),
                })
                .collect();
            let (days, _) = compliance::rep_period(inputs, &rules);
            for d in &days {
                // Summed day by day, in order: the same sums as the compliance API.
                totals.add_day(&d.figures);
                hasher.day_distance(rep.id, d.day, d.figures.distance_m);
                sinks.row(Table::RepDays, &day_cells(rep, d))?;
                for r in d.figures.planned_visits.iter().filter(|r| r.outcome == PlannedOutcome::Missed) {
                    if let Some(p) = by_id.get(&r.planned_visit_id) {
                        page.add_missed(pdf::Missed {
                            day: p.visit_date,
                            seq: p.seq,
                            outlet_code: p.outlet_code.clone(),
                        });
                        sinks.row(
                            Table::Missed,
                            &[
                                Cell::Int(p.id),
                                Cell::Int(rep.id),
                                Cell::text(&rep.login),
                                Cell::date(p.visit_date),
                                Cell::Int(i64::from(p.seq)),
                                Cell::Int(p.outlet_id),
                                Cell::text(&p.outlet_code),
                                Cell::text(&p.outlet_name),
                                Cell::opt_time(p.window_start),
                                Cell::opt_time(p.window_end),
                            ],
                        )?;
                    }
                }
            }
            for (day, pieces) in tracks.into_iter().filter(|(_, p)| !p.is_empty()) {
                let lines: Vec<Vec<[f64; 2]>> =
                    pieces.into_iter().map(|piece| piece.into_iter().map(|(lat, lon)| [lon, lat]).collect()).collect();
                sinks.feature(&json!({
                    "type": "Feature",
                    "geometry": {"type": "MultiLineString", "coordinates": lines},
                    "properties": {"kind": "track", "rep_id": rep.id, "login": rep.login, "day": day},
                }))?;
            }
        }
        all.add(&totals);
        let mut cells = vec![
            Cell::Int(rep.id),
            Cell::text(&rep.login),
            Cell::text(&rep.name),
            rep.territory_id.map_or(Cell::Empty, Cell::Int),
            rep.territory_code.as_ref().map_or(Cell::Empty, Cell::text),
        ];
        cells.extend(totals_cells(&totals));
        sinks.row(Table::Summary, &cells)?;
        page.totals = totals;
        pages.push(page);
        done += 1;
        db::exports::set_progress(db, org_id, id, ExportStatus::Running, progress(done, total)).await?;
    }
    let mut cells =
        vec![Cell::Empty, Cell::text("TOTAL"), Cell::text("all reps of the scope"), Cell::Empty, Cell::Empty];
    cells.extend(totals_cells(&all));
    sinks.row(Table::Summary, &cells)?;
    db::exports::set_progress(db, org_id, id, ExportStatus::Running, progress(done, total)).await?;
    {
        let mut rows = db::exports::visits(&mut tx, org_id, &reps, params.from, params.to);
        while let Some(v) = rows.try_next().await? {
            hasher.visit(&v.facts());
            let cells = visit_cells(&v);
            sinks.row(Table::Visits, &cells)?;
            if v.verdict == Verdict::Suspect {
                sinks.row(Table::Suspect, &cells)?;
                if let Some(&i) = page_of.get(&v.rep_id) {
                    pages[i].add_suspect(pdf::Suspect {
                        arrival: v.arrival,
                        outlet_code: v.outlet_code.clone(),
                        risk_score: v.risk_score,
                    });
                }
            }
            if !rule_versions.contains(&v.rule_version) {
                rule_versions.insert(v.rule_version.clone());
            }
            sinks.feature(&json!({
                "type": "Feature", "id": v.id,
                "geometry": {"type": "Point", "coordinates": [v.lon, v.lat]},
                "properties": {
                    "kind": "visit", "rep_id": v.rep_id, "login": v.rep_login, "rep_day": v.rep_day,
                    "outlet_id": v.outlet_id, "outlet_code": v.outlet_code, "arrival": v.arrival,
                    "departure": v.departure, "dwell_s": v.dwell_s, "verdict": v.verdict,
                    "risk_score": v.risk_score, "review": v.review, "counted": v.counted,
                },
            }))?;
            done += 1;
            if done % PROGRESS_EVERY == 0 {
                db::exports::set_progress(db, org_id, id, ExportStatus::Running, progress(done, total)).await?;
            }
        }
    }
    let mut rows = db::exports::reviews(&mut tx, org_id, &reps, params.from, params.to);
    while let Some(r) = rows.try_next().await? {
        hasher.review(&r.facts());
        sinks.row(
            Table::Reviews,
            &[
                Cell::Int(r.id),
                r.visit_id.map_or(Cell::Empty, Cell::Int),
                Cell::Int(r.rep_id),
                Cell::Int(r.outlet_id),
                Cell::time(r.arrival),
                Cell::Int(r.reviewer_id),
                Cell::text(&r.reviewer_login),
                Cell::text(r.decision.as_str()),
                Cell::text(&r.reason),
                Cell::time(r.created_at),
            ],
        )?;
    }
    drop(rows);
    evidence(&mut tx, org_id, &reps, &params, &mut hasher, Some(&mut sinks)).await?;
    if let Some(a) = bulletin(&mut tx, org_id, &params).await? {
        hasher.assessment(&serde_json::to_vec(&a).map_err(std::io::Error::other)?);
        write_assessment(&mut sinks, &a)?;
    }
    tx.commit().await?;
    for (metric, definition) in export::METRIC_DEFINITIONS {
        sinks.row(Table::Definitions, &[Cell::text(*metric), Cell::text(*definition), Cell::text(METRICS_VERSION)])?;
    }
    let data = hasher.finish();
    let generated_at = Utc::now();
    if params.formats.contains(&ExportFormat::Pdf) {
        let scope = match params.scope {
            ExportScope::Territory { id } => db::territories::get(db, org_id, id)
                .await?
                .map_or_else(|| format!("territory {id}"), |t| format!("territory {}", t.code)),
            ExportScope::Rep { .. } => "one rep".to_owned(),
        };
        let meta = pdf::Meta {
            export_id: id,
            scope: &scope,
            from: params.from,
            to: params.to,
            generated_at,
            generated_by: &generator.login,
            data_sha256: &data.sha256,
        };
        std::fs::write(dir.path().join(ExportFormat::Pdf.file_name()), pdf::summary(&pages, &meta))?;
    }
    drop(pages);
    let formats = params.formats.clone();
    let files = tokio::task::spawn_blocking(move || sinks.finish(&formats))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))??;
    let mut digests = Vec::new();
    for (format, path) in files {
        digests.push(store(db, org_id, id, format.file_name(), &path).await?);
    }
    let manifest = Manifest {
        manifest_version: export::MANIFEST_VERSION,
        export_id: id,
        org_id,
        params,
        rep_ids: reps,
        generated_by: generator,
        generated_at,
        software_version: env!("CARGO_PKG_VERSION").to_owned(),
        rule_versions: rule_versions.into_iter().collect(),
        metrics_version: METRICS_VERSION.to_owned(),
        files: digests,
        data,
    };
    let mut tx = db.begin().await?;
    db::exports::finish(&mut *tx, org_id, id, &manifest).await?;
    record(&mut tx, org_id, &manifest).await?;
    tx.commit().await?;
    drop(dir);
    Ok(manifest)
}

fn write_assessment(sinks: &mut Sinks, a: &assessment::Assessment) -> Result<(), SinkError> {
    let mut row =
        |kind: &str, id: i64, key: &str, name: &str, figure: &str, s: &crate::domain::assessment::Standing| {
            sinks.row(
                Table::Assessment,
                &[
                    Cell::text(&a.month),
                    Cell::text(kind),
                    Cell::Int(id),
                    Cell::text(key),
                    Cell::text(name),
                    Cell::text(figure),
                    Cell::opt_num(s.value),
                    Cell::opt_num(s.previous),
                    Cell::opt_num(s.change_pp),
                    s.rank.map_or(Cell::Empty, |r| Cell::Int(r as i64)),
                ],
            )
        };
    for r in &a.reps {
        row("rep", r.rep_id, &r.login, &r.name, "plan_compliance_pct", &r.plan_compliance)?;
        row("rep", r.rep_id, &r.login, &r.name, "verified_rate_pct", &r.verified_rate)?;
    }
    for t in &a.territories {
        row("territory", t.territory_id, &t.code, &t.name, "plan_compliance_pct", &t.plan_compliance)?;
        row("territory", t.territory_id, &t.code, &t.name, "coverage_pct", &t.coverage)?;
        row("territory", t.territory_id, &t.code, &t.name, "frequency_compliance_pct", &t.frequency_compliance)?;
    }
    Ok(())
}

fn progress(done: u64, total: u64) -> f32 {
    // The last few percent are storing the files.
    if total == 0 { 95.0 } else { (done as f64 * 95.0 / total as f64) as f32 }
}

/// Stores a file in chunks, hashing it on the way.
async fn store(
    db: &PgPool,
    org_id: i64,
    id: i64,
    name: &str,
    path: &std::path::Path,
) -> Result<FileDigest, ExportError> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; db::exports::CHUNK_BYTES];
    let mut bytes = 0u64;
    let mut seq = 0;
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            let n = file.read(&mut buf[filled..])?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            break;
        }
        hasher.update(&buf[..filled]);
        db::exports::put_chunk(db, org_id, id, name, seq, &buf[..filled]).await?;
        bytes += filled as u64;
        seq += 1;
        if filled < buf.len() {
            break;
        }
    }
    Ok(FileDigest { name: name.to_owned(), bytes, sha256: hex::encode(hasher.finalize()) })
}

async fn record(conn: &mut PgConnection, org_id: i64, m: &Manifest) -> Result<(), sqlx::Error> {
    db::audit::record(
        &mut *conn,
        org_id,
        db::audit::NewEntry {
            actor_user_id: m.generated_by.user_id,
            actor_device_id: None,
            action: AuditAction::ExportCreate,
            object_type: "export",
            object_id: Some(m.export_id.to_string()),
            request_id: None,
            detail: json!({
                "params": m.params,
                "files": m.files,
                "data_sha256": m.data.sha256,
                "visits": m.data.visits,
            }),
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_has_its_header() {
        assert_eq!(headers().len(), Table::ALL.len());
        assert_eq!(headers()[Table::ALL.len() - 1], vec!["metric", "definition", "version"]);
    }

    #[test]
    fn windows_cover_the_period_without_overlap() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        let w = windows(d("2026-01-01"), d("2026-03-05"));
        assert_eq!(w.first().map(|x| x.0), Some(d("2026-01-01")));
        assert_eq!(w.last().map(|x| x.1), Some(d("2026-03-05")));
        for pair in w.windows(2) {
            assert_eq!(pair[0].1 + Duration::days(1), pair[1].0);
        }
        assert!(w.iter().all(|(a, b)| (*b - *a).num_days() < REP_WINDOW_DAYS));
        assert_eq!(windows(d("2026-01-02"), d("2026-01-01")), vec![]);
    }
}
