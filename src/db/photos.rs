//! Photo evidence: the index rows (`photos`) and the bytes (`photo_blobs`), kept apart.

use crate::domain::photo::{Capture, FALLBACK_RADIUS_M, PhotoFacts};
use crate::domain::visit::VisitPhoto;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgExecutor};

/// A stored photo, as the API lists it.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct Photo {
    pub id: i64,
    pub outlet_id: i64,
    /// The visit it was taken for (it follows the visit across recomputations); `null` for a
    /// photo of the outlet alone.
    pub visit_id: Option<i64>,
    pub rep_id: Option<i64>,
    pub rep_day: Option<NaiveDate>,
    /// Arrival of the visit it was uploaded for.
    pub visit_arrival: Option<DateTime<Utc>>,
    pub uploaded_by: Option<i64>,
    pub uploaded_by_device: Option<i64>,
    pub uploaded_at: DateTime<Utc>,
    pub content_type: String,
    pub bytes: i32,
    pub sha256: String,
    pub width: Option<i32>,
    pub height: Option<i32>,
    /// When it was taken (EXIF).
    pub taken_at: Option<DateTime<Utc>>,
    pub exif_lat: Option<f64>,
    pub exif_lon: Option<f64>,
    /// An earlier photo of another visit or outlet this one is the same picture as.
    pub reused_photo_id: Option<i64>,
    /// What the photo shows against its outlet and visit, judged when it was uploaded.
    #[schema(value_type = Object)]
    pub findings: serde_json::Value,
    pub note: Option<String>,
    pub has_thumbnail: bool,
    /// The app's claim of when and where it took the photo (its clock and fix), kept apart from
    /// the EXIF fields; `null` when it sent none.
    #[sqlx(json(nullable))]
    pub capture: Option<Capture>,
    /// The check-in it was taken at (before any visit was derived), and the app's id of the photo.
    pub checkin_id: Option<i64>,
    pub client_id: Option<String>,
}

const SELECT: &str = "SELECT p.id, p.outlet_id, p.visit_id, p.rep_id, p.rep_day, p.visit_arrival, p.uploaded_by,
        p.uploaded_by_device, p.uploaded_at, p.content_type, p.bytes, p.sha256, p.width, p.height, p.taken_at,
        p.exif_lat, p.exif_lon, p.reused_photo_id, p.findings, p.note,
        EXISTS (SELECT 1 FROM photo_blobs b WHERE b.org_id = p.org_id AND b.photo_id = p.id AND b.kind = 'thumbnail')
          AS has_thumbnail,
        CASE WHEN num_nonnulls(p.capture_at, p.capture_lat, p.capture_accuracy_m) > 0
             THEN jsonb_build_object('at', p.capture_at, 'lat', p.capture_lat, 'lon', p.capture_lon,
                                     'accuracy_m', p.capture_accuracy_m) END AS capture,
        p.checkin_id, p.client_id
   FROM photos p";

/// The visit a photo is taken for: who, which local day, which arrival (a check-in's photo has
/// no visit yet: derivation finds it by these).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VisitAnchor {
    pub visit_id: Option<i64>,
    pub rep_id: i64,
    pub rep_day: NaiveDate,
    pub arrival: DateTime<Utc>,
}

/// A photo to store.
#[derive(Debug, Clone)]
pub struct NewPhoto<'a> {
    pub outlet_id: i64,
    pub visit: Option<VisitAnchor>,
    pub uploaded_by: Option<i64>,
    pub uploaded_by_device: Option<i64>,
    pub content_type: &'a str,
    pub bytes: i32,
    pub sha256: &'a str,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub taken_at: Option<DateTime<Utc>>,
    pub position: Option<(f64, f64)>,
    pub phash: Option<i64>,
    pub reused_photo_id: Option<i64>,
    pub findings: serde_json::Value,
    pub note: Option<&'a str>,
    /// The app's capture claim.
    pub capture: Option<Capture>,
    /// The check-in it hangs on and the app's id of the photo.
    pub checkin: Option<(i64, &'a str)>,
}

/// An EXIF local time as an instant in the org's time zone.
pub async fn local_instant(
    db: impl PgExecutor<'_>,
    org_id: i64,
    t: NaiveDateTime,
) -> Result<DateTime<Utc>, sqlx::Error> {
    sqlx::query_scalar("SELECT $2::timestamp AT TIME ZONE timezone FROM orgs WHERE id = $1")
        .bind(org_id)
        .bind(t)
        .fetch_one(db)
        .await
}

/// Serialises the org's photo uploads (until the transaction ends).
pub async fn lock_org_photos(db: impl PgExecutor<'_>, org_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended(format('photos/%s', $1::bigint), 0))")
        .bind(org_id)
        .execute(db)
        .await?;
    Ok(())
}

/// The earliest photo of the org that is the same picture (same bytes, or perceptual hash at
/// most `max_bits` apart) and of another subject: another outlet, or there another rep's visits
/// or another day's (the same rep's photos of the same day at the outlet are one visit's, whatever
/// its arrival became after late fixes), or the outlet's own photos for a visit's.
pub async fn same_picture(
    db: impl PgExecutor<'_>,
    org_id: i64,
    sha256: &str,
    phash: Option<i64>,
    max_bits: u32,
    outlet_id: i64,
    visit: Option<VisitAnchor>,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM photos
          WHERE org_id = $1
            AND (sha256 = $2 OR ($3::bigint IS NOT NULL AND phash IS NOT NULL
                                 AND bit_count((phash # $3::bigint)::bit(64)) <= $4))
            AND NOT (outlet_id = $5 AND rep_id IS NOT DISTINCT FROM $6 AND rep_day IS NOT DISTINCT FROM $7)
          ORDER BY id LIMIT 1",
    )
    .bind(org_id)
    .bind(sha256)
    .bind(phash)
    .bind(i32::try_from(max_bits).unwrap_or(i32::MAX))
    .bind(outlet_id)
    .bind(visit.map(|v| v.rep_id))
    .bind(visit.map(|v| v.rep_day))
    .fetch_optional(db)
    .await
}

/// Stores a photo's row (its bytes go in with [`put_blob`] in the same transaction). `None`
/// when the check-in already has a photo with this client id (a retry; also one racing this
/// insert): the unique key decides, nothing is stored.
pub async fn insert(db: impl PgExecutor<'_>, org_id: i64, p: &NewPhoto<'_>) -> Result<Option<i64>, sqlx::Error> {
    let capture = p.capture.unwrap_or_default();
    sqlx::query_scalar(
        "INSERT INTO photos (org_id, outlet_id, visit_id, rep_id, rep_day, visit_arrival, uploaded_by,
                             uploaded_by_device, content_type, bytes, sha256, width, height, taken_at, exif_lat,
                             exif_lon, phash, reused_photo_id, note, findings, capture_at, capture_lat, capture_lon,
                             capture_accuracy_m, checkin_id, client_id)
         VALUES ($1, $2, (SELECT id FROM visits WHERE org_id = $1 AND id = $3), $4, $5, $6, $7, $8, $9, $10, $11, $12,
                 $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)
         ON CONFLICT (org_id, checkin_id, client_id) DO NOTHING
         RETURNING id",
    )
    .bind(org_id)
    .bind(p.outlet_id)
    .bind(p.visit.and_then(|v| v.visit_id))
    .bind(p.visit.map(|v| v.rep_id))
    .bind(p.visit.map(|v| v.rep_day))
    .bind(p.visit.map(|v| v.arrival))
    .bind(p.uploaded_by)
    .bind(p.uploaded_by_device)
    .bind(p.content_type)
    .bind(p.bytes)
    .bind(p.sha256)
    .bind(p.width)
    .bind(p.height)
    .bind(p.taken_at)
    .bind(p.position.map(|x| x.0))
    .bind(p.position.map(|x| x.1))
    .bind(p.phash)
    .bind(p.reused_photo_id)
    .bind(p.note)
    .bind(&p.findings)
    .bind(capture.at)
    .bind(capture.lat)
    .bind(capture.lon)
    .bind(capture.accuracy_m)
    .bind(p.checkin.map(|c| c.0))
    .bind(p.checkin.map(|c| c.1))
    .fetch_optional(db)
    .await
}

/// The photo of check-in `checkin_id` with the app's id `client_id`, if stored.
pub async fn of_checkin(
    db: impl PgExecutor<'_>,
    org_id: i64,
    checkin_id: i64,
    client_id: &str,
) -> Result<Option<Photo>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE p.org_id = $1 AND p.checkin_id = $2 AND p.client_id = $3"))
        .bind(org_id)
        .bind(checkin_id)
        .bind(client_id)
        .fetch_optional(db)
        .await
}

/// Where an outlet stands now and its geofence radius (its own, else its tier's default, else
/// [`FALLBACK_RADIUS_M`]).
pub async fn outlet_place(
    db: impl PgExecutor<'_>,
    org_id: i64,
    outlet_id: i64,
) -> Result<Option<(f64, f64, f64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT ST_Y(o.location), ST_X(o.location), coalesce(o.radius_m, t.default_radius_m, $3)::float8
           FROM outlets o LEFT JOIN tier_policies t ON t.org_id = o.org_id AND t.tier = o.tier
          WHERE o.org_id = $1 AND o.id = $2",
    )
    .bind(org_id)
    .bind(outlet_id)
    .bind(FALLBACK_RADIUS_M)
    .fetch_optional(db)
    .await
}

/// Stores a photo's `original` or `thumbnail` bytes.
pub async fn put_blob(
    db: impl PgExecutor<'_>,
    org_id: i64,
    id: i64,
    kind: &str,
    data: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO photo_blobs (org_id, photo_id, kind, data) VALUES ($1, $2, $3, $4)")
        .bind(org_id)
        .bind(id)
        .bind(kind)
        .bind(data)
        .execute(db)
        .await?;
    Ok(())
}

/// A photo's `original` or `thumbnail` bytes.
pub async fn blob(db: impl PgExecutor<'_>, org_id: i64, id: i64, kind: &str) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar("SELECT data FROM photo_blobs WHERE org_id = $1 AND photo_id = $2 AND kind = $3")
        .bind(org_id)
        .bind(id)
        .bind(kind)
        .fetch_optional(db)
        .await
}

/// A photo of the org by id.
pub async fn get(db: impl PgExecutor<'_>, org_id: i64, id: i64) -> Result<Option<Photo>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE p.org_id = $1 AND p.id = $2"))
        .bind(org_id)
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The photos taken for a visit, in upload order.
pub async fn of_visit(db: impl PgExecutor<'_>, org_id: i64, visit_id: i64) -> Result<Vec<Photo>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE p.org_id = $1 AND p.visit_id = $2 ORDER BY p.id"))
        .bind(org_id)
        .bind(visit_id)
        .fetch_all(db)
        .await
}

/// An outlet's photos over time (the look-around): by when they were taken (else uploaded), then
/// id; the page after `after` (a photo id) in that order. With `only_rep`, the outlet's own photos
/// and that rep's visit photos only.
pub async fn of_outlet(
    db: impl PgExecutor<'_>,
    org_id: i64,
    outlet_id: i64,
    only_rep: Option<i64>,
    after: i64,
    limit: i64,
) -> Result<Vec<Photo>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE p.org_id = $1 AND p.outlet_id = $2
            AND ($5::bigint IS NULL OR p.rep_id IS NULL OR p.rep_id = $5)
            AND ($3 = 0 OR (coalesce(p.taken_at, p.uploaded_at), p.id) >
                 (SELECT coalesce(a.taken_at, a.uploaded_at), a.id FROM photos a WHERE a.org_id = $1 AND a.id = $3))
          ORDER BY coalesce(p.taken_at, p.uploaded_at), p.id LIMIT $4"
    ))
    .bind(org_id)
    .bind(outlet_id)
    .bind(after)
    .bind(limit)
    .bind(only_rep)
    .fetch_all(db)
    .await
}

#[derive(FromRow)]
struct PhotoFactRow {
    id: i64,
    outlet_id: i64,
    visit_arrival: DateTime<Utc>,
    taken_at: Option<DateTime<Utc>>,
    exif_lat: Option<f64>,
    exif_lon: Option<f64>,
    reused_photo_id: Option<i64>,
    capture_at: Option<DateTime<Utc>>,
    capture_lat: Option<f64>,
    capture_lon: Option<f64>,
    capture_accuracy_m: Option<f32>,
}

#[derive(FromRow)]
struct DayPhotoRow {
    /// The rep-day's index in the group (1-based).
    k: i32,
    #[sqlx(flatten)]
    photo: PhotoFactRow,
}

/// The photos taken for visits (and at check-ins) of a group of local rep-days of the org (rep
/// `reps[i]` on `days[i]`), as derivation reads them: EXIF facts and the app's capture claim,
/// judged by the one photo rule. One list per rep-day, in the group's order; one statement.
pub async fn of_rep_days(
    db: impl PgExecutor<'_>,
    org_id: i64,
    reps: &[i64],
    days: &[NaiveDate],
) -> Result<Vec<Vec<VisitPhoto>>, sqlx::Error> {
    let rows: Vec<DayPhotoRow> = sqlx::query_as(
        "SELECT r.k::int AS k, p.id, p.outlet_id, p.visit_arrival, p.taken_at, p.exif_lat, p.exif_lon,
                p.reused_photo_id, p.capture_at, p.capture_lat, p.capture_lon, p.capture_accuracy_m
           FROM unnest($2::bigint[], $3::date[]) WITH ORDINALITY AS r(rep, day, k)
           JOIN photos p ON p.org_id = $1 AND p.rep_id = r.rep AND p.rep_day = r.day
          ORDER BY r.k, p.id",
    )
    .bind(org_id)
    .bind(reps)
    .bind(days)
    .fetch_all(db)
    .await?;
    let photos = rows.into_iter().map(|DayPhotoRow { k, photo: r }| {
        let photo = VisitPhoto {
            id: r.id,
            outlet_id: r.outlet_id,
            visit_arrival: r.visit_arrival,
            facts: PhotoFacts {
                taken_at: r.taken_at,
                position: r.exif_lat.zip(r.exif_lon),
                reused_photo_id: r.reused_photo_id,
                capture: Some(Capture {
                    at: r.capture_at,
                    lat: r.capture_lat,
                    lon: r.capture_lon,
                    accuracy_m: r.capture_accuracy_m,
                })
                .filter(|c| *c != Capture::default()),
            },
        };
        (k, photo)
    });
    Ok(super::per_rep_day(reps.len(), photos))
}

/// Marks a rep-day for derivation again (its photo evidence changed).
pub async fn mark_rep_day(
    db: impl PgExecutor<'_>,
    org_id: i64,
    rep_id: i64,
    day: NaiveDate,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO rep_day_dirty (org_id, rep_id, day, reason) VALUES ($1, $2, $3, 'photo')
         ON CONFLICT (org_id, rep_id, day) DO UPDATE SET claimed_at = NULL, marked_at = now(), reason = EXCLUDED.reason
          WHERE rep_day_dirty.claimed_at IS NOT NULL",
    )
    .bind(org_id)
    .bind(rep_id)
    .bind(day)
    .execute(db)
    .await?;
    Ok(())
}
