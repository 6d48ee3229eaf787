//! Check-ins from the reps' app (see migration 0027).

use crate::domain::compliance::ReviewDecision;
use crate::domain::photo::PhotoVerdict;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgExecutor};

/// A stored check-in.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct Checkin {
    pub id: i64,
    pub client_id: String,
    pub device_id: i64,
    pub rep_id: i64,
    pub outlet_id: i64,
    pub checked_in_at: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    pub accuracy_m: Option<f32>,
    pub distance_m: f64,
    pub allowance_m: f64,
    pub at_outlet: bool,
    pub checked_out_at: Option<DateTime<Utc>>,
    pub out_lat: Option<f64>,
    pub out_lon: Option<f64>,
    pub out_accuracy_m: Option<f32>,
    pub received_at: DateTime<Utc>,
    /// A supervisor's decision on it as a claim (`accepted`, `rejected`).
    #[sqlx(try_from = "crate::db::NullableName")]
    pub claim_decision: Option<ReviewDecision>,
    pub claim_reviewer_id: Option<i64>,
    pub claim_reason: Option<String>,
}

impl Checkin {
    /// The check-in as an accepted claim, for derivation.
    pub fn claim(&self) -> crate::domain::checkin::AcceptedClaim {
        crate::domain::checkin::AcceptedClaim {
            outlet_id: self.outlet_id,
            checked_in_at: self.checked_in_at,
            checked_out_at: self.checked_out_at,
            lat: self.lat,
            lon: self.lon,
            accuracy_m: self.accuracy_m,
            distance_m: self.distance_m,
        }
    }
}

const COLUMNS: &str = "id, client_id, device_id, rep_id, outlet_id, checked_in_at, lat, lon, accuracy_m, distance_m,
                       allowance_m, at_outlet, checked_out_at, out_lat, out_lon, out_accuracy_m, received_at,
                       claim_decision, claim_reviewer_id, claim_reason";

/// A check-in as the app sends it, with the server's judgement of its fix.
pub struct NewCheckin<'a> {
    pub device_id: i64,
    pub rep_id: i64,
    pub outlet_id: i64,
    pub client_id: &'a str,
    pub checked_in_at: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    pub accuracy_m: Option<f32>,
    pub distance_m: f64,
    pub allowance_m: f64,
    pub at_outlet: bool,
    /// The check-out (time, lat, lon, accuracy), when the app sends it.
    pub checkout: Option<(DateTime<Utc>, f64, f64, Option<f32>)>,
}

/// Stores a check-in, or finds the one with the same client id of the device (a retry), and adds
/// the check-out if the stored one has none yet. Returns the row and whether it is new.
pub async fn put(db: impl PgExecutor<'_>, org_id: i64, c: &NewCheckin<'_>) -> Result<(Checkin, bool), sqlx::Error> {
    #[derive(FromRow)]
    struct Row {
        #[sqlx(flatten)]
        checkin: Checkin,
        created: bool,
    }
    let (out_at, out_lat, out_lon, out_acc) = match c.checkout {
        Some((t, lat, lon, acc)) => (Some(t), Some(lat), Some(lon), acc),
        None => (None, None, None, None),
    };
    let row: Row = sqlx::query_as(&format!(
        "INSERT INTO checkins AS c (org_id, device_id, rep_id, outlet_id, client_id, checked_in_at, lat, lon,
                                    accuracy_m, distance_m, allowance_m, at_outlet, checked_out_at, out_lat,
                                    out_lon, out_accuracy_m)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         ON CONFLICT (org_id, device_id, client_id) DO UPDATE
            SET checked_out_at = coalesce(c.checked_out_at, EXCLUDED.checked_out_at),
                out_lat = CASE WHEN c.checked_out_at IS NULL THEN EXCLUDED.out_lat ELSE c.out_lat END,
                out_lon = CASE WHEN c.checked_out_at IS NULL THEN EXCLUDED.out_lon ELSE c.out_lon END,
                out_accuracy_m = CASE WHEN c.checked_out_at IS NULL THEN EXCLUDED.out_accuracy_m ELSE c.out_accuracy_m END
         RETURNING {COLUMNS}, (xmax = 0) AS created"
    ))
    .bind(org_id)
    .bind(c.device_id)
    .bind(c.rep_id)
    .bind(c.outlet_id)
    .bind(c.client_id)
    .bind(c.checked_in_at)
    .bind(c.lat)
    .bind(c.lon)
    .bind(c.accuracy_m)
    .bind(c.distance_m)
    .bind(c.allowance_m)
    .bind(c.at_outlet)
    .bind(out_at)
    .bind(out_lat)
    .bind(out_lon)
    .bind(out_acc)
    .fetch_one(db)
    .await?;
    Ok((row.checkin, row.created))
}

/// Check-ins made on the org's local days `$3..=$4` (`$1` the org), as a condition.
const ON_LOCAL_DAYS: &str =
    "checked_in_at >= ($3::date::timestamp AT TIME ZONE (SELECT timezone FROM orgs WHERE id = $1))
            AND checked_in_at < (($4::date + 1)::timestamp AT TIME ZONE (SELECT timezone FROM orgs WHERE id = $1))";

/// The check-ins of a rep on the org's local days `from..=to`, by check-in time.
pub async fn of_rep(
    db: impl PgExecutor<'_>,
    org_id: i64,
    rep_id: i64,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Checkin>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM checkins
          WHERE org_id = $1 AND rep_id = $2
            AND {ON_LOCAL_DAYS}
          ORDER BY checked_in_at, id"
    ))
    .bind(org_id)
    .bind(rep_id)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await
}

/// The undecided check-ins on the org's local days `from..=to` of the reps whose territory is in
/// `root`'s subtree (every rep of the org when `None`), oldest first: the candidates for a
/// supervisor's list of visit claims (those no visit confirms).
pub async fn undecided_in(
    db: impl PgExecutor<'_>,
    org_id: i64,
    root: Option<i64>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Checkin>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM checkins c
          WHERE org_id = $1 AND claim_decision IS NULL
            AND {ON_LOCAL_DAYS}
            AND ($2::bigint IS NULL OR EXISTS (
                  SELECT 1 FROM users u JOIN territories t ON t.org_id = u.org_id AND t.id = u.territory_id
                   WHERE u.org_id = c.org_id AND u.id = c.rep_id AND t.path @> ARRAY[$2::bigint]))
          ORDER BY checked_in_at, id"
    ))
    .bind(org_id)
    .bind(root)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await
}

/// The check-in with the app's id `client_id` made by device `device_id`, or, without a device,
/// by any device of rep `rep_id` (a rep's own user token); the oldest if several match.
pub async fn by_client_id(
    db: impl PgExecutor<'_>,
    org_id: i64,
    device_id: Option<i64>,
    rep_id: i64,
    client_id: &str,
) -> Result<Option<Checkin>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM checkins
          WHERE org_id = $1 AND rep_id = $3 AND client_id = $4 AND ($2::bigint IS NULL OR device_id = $2)
          ORDER BY id LIMIT 1"
    ))
    .bind(org_id)
    .bind(device_id)
    .bind(rep_id)
    .bind(client_id)
    .fetch_optional(db)
    .await
}

/// A photo taken at a check-in, as the check-in lists it.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct CheckinPhoto {
    #[serde(skip)]
    pub checkin_id: i64,
    pub id: i64,
    /// The app's id of the photo.
    pub client_id: String,
    /// The visit derivation linked it to; `null` while none is.
    pub visit_id: Option<i64>,
    /// Its verdict when it was uploaded (against the check-in's time and outlet).
    #[sqlx(json(nullable))]
    pub verdict: Option<PhotoVerdict>,
}

/// Checklist answers given at a check-in, as the check-in lists them.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct CheckinOutcome {
    #[serde(skip)]
    pub checkin_id: i64,
    pub id: i64,
    /// The app's id of the answers.
    pub client_id: String,
    /// The visit derivation linked them to; `null` while none is.
    pub visit_id: Option<i64>,
    /// Keys of the answers outside what the checklist expects.
    pub problems: Vec<String>,
}

/// The photos taken at the check-ins `checkin_ids`, by id (one query for them all).
pub async fn photos_of(
    db: impl PgExecutor<'_>,
    org_id: i64,
    checkin_ids: &[i64],
) -> Result<Vec<CheckinPhoto>, sqlx::Error> {
    sqlx::query_as(
        "SELECT checkin_id, id, client_id, visit_id, findings -> 'verdict' AS verdict FROM photos
          WHERE org_id = $1 AND checkin_id = ANY($2) ORDER BY id",
    )
    .bind(org_id)
    .bind(checkin_ids)
    .fetch_all(db)
    .await
}

/// The checklist answers given at the check-ins `checkin_ids`, by id (one query for them all).
pub async fn outcomes_of(
    db: impl PgExecutor<'_>,
    org_id: i64,
    checkin_ids: &[i64],
) -> Result<Vec<CheckinOutcome>, sqlx::Error> {
    sqlx::query_as(
        "SELECT checkin_id, id, client_id, visit_id, problems FROM visit_outcomes
          WHERE org_id = $1 AND checkin_id = ANY($2) ORDER BY id",
    )
    .bind(org_id)
    .bind(checkin_ids)
    .fetch_all(db)
    .await
}

/// A derived visit, as far as confirming check-ins needs it.
#[derive(Debug, Clone, FromRow)]
pub struct VisitSpan {
    pub id: i64,
    pub outlet_id: i64,
    pub arrival: DateTime<Utc>,
    pub departure: DateTime<Utc>,
}

/// The rep's visits that overlap `[from, to)`.
pub async fn visit_spans(
    db: impl PgExecutor<'_>,
    org_id: i64,
    rep_id: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<VisitSpan>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, outlet_id, arrival, departure FROM visits
          WHERE org_id = $1 AND rep_id = $2 AND departure >= $3 AND arrival < $4 ORDER BY arrival",
    )
    .bind(org_id)
    .bind(rep_id)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await
}

/// Whether any rep-day of the rep whose visits may still change is waiting for derivation.
pub async fn derivation_pending(db: impl PgExecutor<'_>, org_id: i64, rep_id: i64) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM rep_day_dirty WHERE org_id = $1 AND rep_id = $2)")
        .bind(org_id)
        .bind(rep_id)
        .fetch_one(db)
        .await
}

/// A check-in of the org by id, with its rep's territory path (for scope checks).
pub async fn get(
    db: impl PgExecutor<'_>,
    org_id: i64,
    id: i64,
) -> Result<Option<(Checkin, Option<Vec<i64>>)>, sqlx::Error> {
    #[derive(FromRow)]
    struct Row {
        #[sqlx(flatten)]
        checkin: Checkin,
        rep_territory_path: Option<Vec<i64>>,
    }
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS}, (SELECT t.path FROM users u JOIN territories t ON t.org_id = u.org_id AND t.id = u.territory_id
                              WHERE u.org_id = c.org_id AND u.id = c.rep_id) AS rep_territory_path
           FROM checkins c WHERE org_id = $1 AND id = $2"
    ))
    .bind(org_id)
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| (r.checkin, r.rep_territory_path)))
}

/// Records a supervisor's decision on check-in `id` as a claim; `false` when it was decided before.
pub async fn decide_claim(
    db: impl PgExecutor<'_>,
    org_id: i64,
    id: i64,
    decision: ReviewDecision,
    reviewer_id: i64,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE checkins SET claim_decision = $3, claim_reviewer_id = $4, claim_reason = $5, claim_reviewed_at = now()
          WHERE org_id = $1 AND id = $2 AND claim_decision IS NULL",
    )
    .bind(org_id)
    .bind(id)
    .bind(decision.as_str())
    .bind(reviewer_id)
    .bind(reason)
    .execute(db)
    .await?
    .rows_affected();
    Ok(n == 1)
}

#[derive(FromRow)]
struct DayCheckinRow {
    /// The rep-day's index in the group (1-based).
    k: i32,
    #[sqlx(flatten)]
    checkin: Checkin,
}

/// The accepted visit claims of a group of rep-days of the org (rep `reps[i]` checked in within
/// `[from[i], to[i])`), in check-in order: one list per rep-day, in the group's order; one
/// statement.
pub async fn accepted_claims_of(
    db: impl PgExecutor<'_>,
    org_id: i64,
    reps: &[i64],
    from: &[DateTime<Utc>],
    to: &[DateTime<Utc>],
) -> Result<Vec<Vec<Checkin>>, sqlx::Error> {
    let rows: Vec<DayCheckinRow> = sqlx::query_as(&format!(
        "SELECT r.k::int AS k, c.*
           FROM unnest($2::bigint[], $3::timestamptz[], $4::timestamptz[]) WITH ORDINALITY AS r(rep, f, t, k)
          CROSS JOIN LATERAL (
                SELECT {COLUMNS} FROM checkins
                 WHERE org_id = $1 AND rep_id = r.rep AND checked_in_at >= r.f AND checked_in_at < r.t
                   AND claim_decision = 'accepted') c
          ORDER BY r.k, c.checked_in_at, c.id"
    ))
    .bind(org_id)
    .bind(reps)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await?;
    Ok(super::per_rep_day(reps.len(), rows.into_iter().map(|r| (r.k, r.checkin))))
}
