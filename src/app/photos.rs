//! Photo evidence: an uploaded picture judged against its visit and outlet (EXIF time and
//! position, the same picture uploaded before in the org) and stored with those findings, the
//! visit marked to be judged again with it, audited.

use super::{Caller, Error};
use crate::db;
use crate::db::photos::{NewPhoto, Photo, VisitAnchor};
use crate::db::visits::VisitKey;
use crate::domain::audit::AuditAction;
use crate::domain::export::sha256_hex;
use crate::domain::photo::{self, Findings, OutletPlace, PhotoFacts, PhotoRules};
use crate::imaging::{ExifTime, ReadPhoto};
use chrono::{DateTime, Utc};
use serde_json::json;

/// An uploaded photo, read: the file as sent, what decoding found in it, and the uploader's note.
pub struct Upload {
    pub bytes: Vec<u8>,
    pub read: ReadPhoto,
    pub note: Option<String>,
}

/// What a photo is evidence of.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// A visit: its outlet's place and its time window judge the photo.
    Visit(&'a VisitKey),
    /// An outlet (by id), outside any visit: its place judges the photo.
    Outlet(i64),
}

impl Subject<'_> {
    fn outlet_id(self) -> i64 {
        match self {
            Subject::Visit(v) => v.outlet_id,
            Subject::Outlet(id) => id,
        }
    }

    /// The visit the photo is stored with (it follows the visit across recomputations).
    fn anchor(self) -> Option<VisitAnchor> {
        match self {
            Subject::Visit(v) => {
                Some(VisitAnchor { visit_id: v.id, rep_id: v.rep_id, rep_day: v.rep_day, arrival: v.arrival })
            }
            Subject::Outlet(_) => None,
        }
    }

    /// The visit's `[arrival, departure]`, which the photo's time is compared with.
    fn window(self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        match self {
            Subject::Visit(v) => Some((v.arrival, v.departure)),
            Subject::Outlet(_) => None,
        }
    }
}

/// Judges `caller`'s photo `upload` of `subject` (whom the handler has allowed to add evidence to
/// it) and stores it with its findings and its original and thumbnail images, in one transaction
/// that also marks a visit's rep-day to be derived again (its photos feed the visit's verdict)
/// and audits the upload. Returns the stored photo; the caller wakes the derivation workers.
pub async fn store(
    db: &sqlx::PgPool,
    caller: &Caller<'_>,
    subject: Subject<'_>,
    upload: Upload,
) -> Result<Photo, Error> {
    let org_id = caller.org_id;
    let taken_at = taken_at(db, org_id, upload.read.taken).await?;
    let sha256 = sha256_hex(&upload.bytes);
    let mut tx = db.begin().await?;
    // One upload of the org at a time finds earlier pictures and stores its own: two uploads of
    // the same picture at once cannot miss each other.
    db::photos::lock_org_photos(&mut *tx, org_id).await?;
    let (facts, findings) = judge(&mut tx, org_id, subject, &sha256, &upload.read, taken_at).await?;
    let new = new_photo(caller, subject, &upload, &sha256, &facts, &findings)?;
    let id = db::photos::insert(&mut *tx, org_id, &new).await?;
    db::photos::put_blob(&mut *tx, org_id, id, "original", &upload.bytes).await?;
    if let Some(thumb) = &upload.read.thumbnail {
        db::photos::put_blob(&mut *tx, org_id, id, "thumbnail", thumb).await?;
    }
    let anchor = subject.anchor();
    if let Some(a) = anchor {
        // The visit is judged again with its photos.
        db::photos::mark_rep_day(&mut *tx, org_id, a.rep_id, a.rep_day).await?;
    }
    let detail = json!({"outlet_id": new.outlet_id, "visit_id": anchor.map(|a| a.visit_id), "sha256": sha256,
                        "verdict": findings.verdict, "reused_photo_id": facts.reused_photo_id});
    caller.audit(&mut *tx, AuditAction::PhotoUpload, "photo", id, detail).await?;
    tx.commit().await?;
    db::photos::get(db, org_id, id).await?.ok_or_else(|| Error::not_found("photo", id))
}

/// When the photo was taken: its EXIF time as an instant (a local time without offset is read in
/// the org's time zone).
async fn taken_at(db: &sqlx::PgPool, org_id: i64, taken: Option<ExifTime>) -> Result<Option<DateTime<Utc>>, Error> {
    Ok(match taken {
        Some(ExifTime::Instant(t)) => Some(t),
        Some(ExifTime::Local(local)) => Some(db::photos::local_instant(db, org_id, local).await?),
        None => None,
    })
}

/// The photo's facts (an earlier photo of the org that is the same picture, within
/// `PhotoRules::reuse_max_bits` of its perceptual hash) and the findings of the photo rules
/// against the subject's outlet place and visit window; 404 when the outlet does not exist.
async fn judge(
    tx: &mut sqlx::PgConnection,
    org_id: i64,
    subject: Subject<'_>,
    sha256: &str,
    read: &ReadPhoto,
    taken_at: Option<DateTime<Utc>>,
) -> Result<(PhotoFacts, Findings), Error> {
    let rules = PhotoRules::default();
    let outlet_id = subject.outlet_id();
    let reused = db::photos::same_picture(
        &mut *tx,
        org_id,
        sha256,
        read.phash,
        rules.reuse_max_bits,
        outlet_id,
        subject.anchor(),
    )
    .await?;
    let (lat, lon, radius_m) = db::photos::outlet_place(&mut *tx, org_id, outlet_id)
        .await?
        .ok_or_else(|| Error::not_found("outlet", outlet_id))?;
    let facts = PhotoFacts { taken_at, position: read.position, reused_photo_id: reused };
    let findings = photo::findings(&facts, OutletPlace { lat, lon, radius_m }, subject.window(), &rules);
    Ok((facts, findings))
}

/// The photo's row: who uploaded it, what the file is, its facts and findings.
fn new_photo<'a>(
    caller: &Caller<'_>,
    subject: Subject<'_>,
    upload: &'a Upload,
    sha256: &'a str,
    facts: &PhotoFacts,
    findings: &Findings,
) -> Result<NewPhoto<'a>, Error> {
    let read = &upload.read;
    Ok(NewPhoto {
        outlet_id: subject.outlet_id(),
        visit: subject.anchor(),
        uploaded_by: caller.user_id,
        uploaded_by_device: caller.device_id,
        content_type: read.format.content_type(),
        bytes: i32::try_from(upload.bytes.len()).unwrap_or(i32::MAX),
        sha256,
        width: read.width.and_then(|w| i32::try_from(w).ok()),
        height: read.height.and_then(|h| i32::try_from(h).ok()),
        taken_at: facts.taken_at,
        position: facts.position,
        phash: read.phash,
        reused_photo_id: facts.reused_photo_id,
        findings: serde_json::to_value(findings).map_err(|e| Error::Internal(e.to_string()))?,
        note: upload.note.as_deref(),
    })
}
