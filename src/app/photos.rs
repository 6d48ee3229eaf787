//! Photo evidence: an uploaded picture judged against its visit, check-in and outlet (EXIF time
//! and position, else the app's capture claim; the same picture uploaded before in the org) and
//! stored with those findings, the visit marked to be judged again with it, audited. A check-in's
//! photo is stored once per client id of the app; the same client id for another picture is a
//! conflict.

use super::{Caller, Error};
use crate::db;
use crate::db::checkins::Checkin;
use crate::db::photos::{NewPhoto, Photo, VisitAnchor};
use crate::db::visits::VisitKey;
use crate::domain::audit::AuditAction;
use crate::domain::export::sha256_hex;
use crate::domain::photo::{self, Capture, Findings, OutletPlace, PhotoFacts, PhotoRules};
use crate::domain::validation::FieldError;
use crate::imaging::{ExifTime, ReadPhoto};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;

/// An uploaded photo, read: the file as sent, what decoding found in it, the uploader's note, and
/// the app's claim of when and where it took it.
pub struct Upload {
    pub bytes: Vec<u8>,
    pub read: ReadPhoto,
    pub note: Option<String>,
    pub capture: Option<Capture>,
}

/// What a photo is evidence of.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// A visit: its outlet's place and its time window judge the photo.
    Visit(&'a VisitKey),
    /// An outlet (by id), outside any visit: its place judges the photo.
    Outlet(i64),
    /// A check-in, before any visit is derived: the outlet's place and the check-in's time
    /// judge the photo; `rep_day` is the check-in's local day, `client_id` the app's id of the
    /// photo.
    Checkin { checkin: &'a Checkin, rep_day: NaiveDate, client_id: &'a str },
}

impl<'a> Subject<'a> {
    fn outlet_id(self) -> i64 {
        match self {
            Subject::Visit(v) => v.outlet_id,
            Subject::Outlet(id) => id,
            Subject::Checkin { checkin, .. } => checkin.outlet_id,
        }
    }

    /// The visit the photo is stored with (it follows the visit across recomputations); a
    /// check-in's photo has none yet: derivation finds its visit by rep, day and check-in time.
    fn anchor(self) -> Option<VisitAnchor> {
        match self {
            Subject::Visit(v) => {
                Some(VisitAnchor { visit_id: Some(v.id), rep_id: v.rep_id, rep_day: v.rep_day, arrival: v.arrival })
            }
            Subject::Outlet(_) => None,
            Subject::Checkin { checkin, rep_day, .. } => {
                Some(VisitAnchor { visit_id: None, rep_id: checkin.rep_id, rep_day, arrival: checkin.checked_in_at })
            }
        }
    }

    /// The time the photo's time is compared with: the visit's `[arrival, departure]`, or the
    /// check-in's `[checked_in_at, checked_out_at]` (until now before a check-out).
    fn window(self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        match self {
            Subject::Visit(v) => Some((v.arrival, v.departure)),
            Subject::Outlet(_) => None,
            Subject::Checkin { checkin: c, .. } => {
                // Not checked out yet: the rep is there until now (a photo is taken at an open
                // check-in, before its upload).
                Some((c.checked_in_at, c.checked_out_at.unwrap_or_else(Utc::now).max(c.checked_in_at)))
            }
        }
    }

    /// The check-in the photo hangs on and the app's id of it.
    fn checkin(self) -> Option<(i64, &'a str)> {
        match self {
            Subject::Checkin { checkin, client_id, .. } => Some((checkin.id, client_id)),
            Subject::Visit(_) | Subject::Outlet(_) => None,
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
    Ok(save(db, caller, subject, upload).await?.0)
}

/// Judges and stores `caller`'s photo `upload` taken at `checkin` (the caller's own: see
/// `checkins::own`) with the app's id `client_id`, as [`store`] does, anchored to the check-in
/// (its rep, local day and time) for derivation to link to its visit. A retry with the same
/// client id and picture (sha256), also one racing the first, stores nothing and returns the
/// stored photo; another picture under that client id is a conflict naming `photo_client_id`.
/// Returns the photo and whether it is new.
pub async fn store_at_checkin(
    db: &sqlx::PgPool,
    caller: &Caller<'_>,
    checkin: &Checkin,
    client_id: &str,
    upload: Upload,
) -> Result<(Photo, bool), Error> {
    let rep_day = db::plans::local_date(db, caller.org_id, checkin.checked_in_at).await?;
    save(db, caller, Subject::Checkin { checkin, rep_day, client_id }, upload).await
}

/// The photo `caller` stored at `checkin` (the caller's own: see `checkins::own`) under the app's
/// id `client_id`, looked up before a retry's file `bytes` is decoded: `Some` for the same
/// picture (the retry is answered with it: nothing to decode, judge or store), a conflict naming
/// `photo_client_id` for another picture, `None` when nothing is stored under that id yet (two
/// copies arriving at once both find none: [`store_at_checkin`] tells them apart by the unique
/// key).
pub async fn stored_at_checkin(
    db: &sqlx::PgPool,
    caller: &Caller<'_>,
    checkin: &Checkin,
    client_id: &str,
    bytes: &[u8],
) -> Result<Option<Photo>, Error> {
    match db::photos::of_checkin(db, caller.org_id, checkin.id, client_id).await? {
        Some(stored) => retried(stored, client_id, &sha256_hex(bytes)).map(Some),
        None => Ok(None),
    }
}

/// [`store`], telling a new photo from a check-in photo's retry (`false`: nothing stored).
async fn save(
    db: &sqlx::PgPool,
    caller: &Caller<'_>,
    subject: Subject<'_>,
    upload: Upload,
) -> Result<(Photo, bool), Error> {
    let org_id = caller.org_id;
    let taken_at = taken_at(db, org_id, upload.read.taken).await?;
    let sha256 = sha256_hex(&upload.bytes);
    let mut tx = db.begin().await?;
    // One upload of the org at a time finds earlier pictures and stores its own: two uploads of
    // the same picture at once cannot miss each other.
    db::photos::lock_org_photos(&mut *tx, org_id).await?;
    let (facts, findings) = judge(&mut tx, org_id, subject, &sha256, &upload.read, taken_at, upload.capture).await?;
    let new = new_photo(caller, subject, &upload, &sha256, &facts, &findings)?;
    let Some(id) = db::photos::insert(&mut *tx, org_id, &new).await? else {
        // A retry of a check-in's photo: the stored one answers, nothing new is written.
        tx.rollback().await?;
        let (checkin_id, client_id) = subject.checkin().ok_or_else(|| Error::Internal("photo not stored".into()))?;
        let stored = db::photos::of_checkin(db, org_id, checkin_id, client_id).await?;
        let stored = stored.ok_or_else(|| Error::Internal("check-in photo lost after a conflict".into()))?;
        return Ok((retried(stored, client_id, &sha256)?, false));
    };
    db::photos::put_blob(&mut *tx, org_id, id, "original", &upload.bytes).await?;
    if let Some(thumb) = &upload.read.thumbnail {
        db::photos::put_blob(&mut *tx, org_id, id, "thumbnail", thumb).await?;
    }
    let anchor = subject.anchor();
    if let Some(a) = anchor {
        // The visit is judged again with its photos.
        db::photos::mark_rep_day(&mut *tx, org_id, a.rep_id, a.rep_day).await?;
    }
    let mut detail = json!({"outlet_id": new.outlet_id, "visit_id": anchor.and_then(|a| a.visit_id),
                            "sha256": sha256, "verdict": findings.verdict,
                            "reused_photo_id": facts.reused_photo_id});
    if let Some((checkin_id, client_id)) = subject.checkin() {
        detail["checkin_id"] = json!(checkin_id);
        detail["client_id"] = json!(client_id);
    }
    caller.audit(&mut *tx, AuditAction::PhotoUpload, "photo", id, detail).await?;
    tx.commit().await?;
    Ok((db::photos::get(db, org_id, id).await?.ok_or_else(|| Error::not_found("photo", id))?, true))
}

/// The check-in photo `stored` under the app's id `client_id`, answering a retry whose picture
/// has the digest `sha256`: the same picture is the retry; another one is a conflict (the app
/// reused the id), naming `photo_client_id`.
fn retried(stored: Photo, client_id: &str, sha256: &str) -> Result<Photo, Error> {
    if stored.sha256 == sha256 {
        return Ok(stored);
    }
    Err(Error::Conflict {
        detail: format!(
            "client id `{client_id}` is already photo {} of this check-in, another picture (sha256 {})",
            stored.id, stored.sha256
        ),
        errors: vec![FieldError::new("photo_client_id", "already used for another photo of this check-in")],
    })
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
/// `PhotoRules::reuse_max_bits` of its perceptual hash; the app's capture claim) and the findings
/// of the photo rules against the subject's outlet place and visit or check-in window; 404 when
/// the outlet does not exist.
async fn judge(
    tx: &mut sqlx::PgConnection,
    org_id: i64,
    subject: Subject<'_>,
    sha256: &str,
    read: &ReadPhoto,
    taken_at: Option<DateTime<Utc>>,
    capture: Option<Capture>,
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
    let facts = PhotoFacts { taken_at, position: read.position, reused_photo_id: reused, capture };
    let findings = photo::findings(&facts, OutletPlace { lat, lon, radius_m }, subject.window(), &rules);
    Ok((facts, findings))
}

/// The photo's row: who uploaded it, what the file is, its facts and findings.
fn new_photo<'a>(
    caller: &Caller<'_>,
    subject: Subject<'a>,
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
        capture: facts.capture,
        checkin: subject.checkin(),
    })
}
