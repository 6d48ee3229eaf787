//! Accepting a device's decoded fixes: judged by the org's filters, de-duplicated, flagged for
//! impossible speed, written by the batched durable writer and acknowledged only once committed.
//! Every protocol (native JSON, OsmAnd, OwnTracks, GPX) ends here.

use crate::db;
use crate::db::devices::Sender;
use crate::db::pings::{NewPing, Written};
use crate::domain::ping::{Fix, Source};
use crate::domain::ping_filter::{self, DropReason, FilterPolicy};
use crate::domain::validation::FieldError;
use crate::ingest::{Ingest, WriteError};
use chrono::{SubsecRound, Utc};
use serde::Serialize;

/// What became of the pings of one request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IngestReport {
    /// Pings committed by this request.
    pub stored: usize,
    /// Pings already stored before (same device and fix time), or repeated within the request.
    pub duplicates: usize,
    /// Well-formed items the org's filters keep out (fix time too old or ahead of the server
    /// clock, off duty, null island); each is also in `rejected` with its reason. Retrying them
    /// never stores them, so they do not make the request fail.
    pub dropped: usize,
    /// Items not stored, with their index in the request and the reason: malformed ones and
    /// dropped ones.
    pub rejected: Vec<FieldError>,
}

/// The field a dropped fix is reported on.
fn field_of(reason: DropReason) -> &'static str {
    match reason {
        DropReason::InvalidPosition | DropReason::NullIsland | DropReason::NoPosition | DropReason::Malformed => "lat",
        DropReason::FromFuture | DropReason::TooOld | DropReason::OutsideWorkingHours | DropReason::Duplicate => {
            "fix_time"
        }
    }
}

/// Judges decoded fixes of one device and writes the ones that pass. `fixes` carry their index in
/// the request; `rejected` holds the items that did not decode.
pub async fn accept(
    ingest: &Ingest,
    db: &sqlx::PgPool,
    sender: &Sender,
    source: Source,
    fixes: Vec<(usize, Fix, i32)>,
    mut rejected: Vec<FieldError>,
) -> Result<IngestReport, WriteError> {
    let policy = FilterPolicy::from_settings(&sender.org_settings).unwrap_or_else(|errors| {
        tracing::warn!(org_id = sender.org_id, ?errors, "invalid ping settings; using the defaults");
        FilterPolicy::default()
    });
    let (policy, rep_errors) = policy.for_rep(sender.rep_working_hours.as_ref());
    if !rep_errors.is_empty() {
        tracing::warn!(rep_id = sender.rep_id, errors = ?rep_errors, "invalid working hours of the rep; the org's apply");
    }
    ingest.count_received(source, fixes.len() + rejected.len());
    // One count per rejected item (an item may have several field errors).
    let mut malformed: Vec<Option<usize>> = rejected.iter().map(|e| e.index).collect();
    malformed.dedup();
    for _ in &malformed {
        ingest.count_drop(source, DropReason::Malformed);
    }
    let now = Utc::now();
    let mut passed: Vec<(Fix, i32)> = Vec::with_capacity(fixes.len());
    let mut dropped = 0;
    for (index, mut fix, extra_flags) in fixes {
        // The database keeps microseconds: judge duplicates at the precision that is stored.
        fix.fix_time = fix.fix_time.trunc_subsecs(6);
        match ping_filter::judge(&fix, now, &policy) {
            Ok(()) => passed.push((fix, extra_flags)),
            Err(reason) => {
                dropped += 1;
                ingest.count_drop(source, reason);
                rejected.push(FieldError::new(field_of(reason), reason.describe()).at(index));
            }
        }
    }
    rejected.sort_by_key(|e| e.index);
    let plain: Vec<Fix> = passed.iter().map(|(f, _)| f.clone()).collect();
    let keep = ping_filter::dedup_batch(&plain);
    let repeated = plain.len() - keep.len();
    let kept: Vec<Fix> = keep.iter().map(|&i| plain[i].clone()).collect();
    let previous = ingest.last_fix(sender.org_id, sender.id).map(|l| l.fix);
    let mut flags = ping_filter::speed_flags(&kept, previous.as_ref(), policy.max_speed_mps);
    // A delivered position request is answered by the newest fix of the device's next request.
    let answer = sender.awaiting_position.then(|| kept.iter().enumerate().max_by_key(|(_, f)| f.fix_time)).flatten();
    let answer_time = answer.map(|(i, f)| {
        flags[i] |= crate::domain::ping::flags::REQUESTED;
        f.fix_time
    });
    let pings: Vec<NewPing> = keep
        .iter()
        .zip(kept)
        .zip(flags)
        .map(|((&i, fix), flags)| NewPing {
            org_id: sender.org_id,
            device_id: sender.id,
            fix,
            source,
            flags: flags | passed[i].1,
            credential_version: sender.credential_version,
        })
        .collect();
    let stored = ingest.write(pings).await?;
    if stored.contains(&Written::Refused) {
        return Err(WriteError::CredentialRefused);
    }
    if let Some(fix_time) = answer_time
        && let Err(e) = db::position_requests::answer(db, sender.org_id, sender.id, fix_time).await
    {
        // The pings are committed; the request stays open and the next fix answers it.
        tracing::warn!(error = %e, device_id = sender.id, "position request not marked answered");
    }
    let new = stored.iter().filter(|s| **s == Written::Stored).count();
    Ok(IngestReport { stored: new, duplicates: repeated + stored.len() - new, dropped, rejected })
}

impl IngestReport {
    /// Every item of the request was malformed: nothing stored, nothing already stored, nothing
    /// dropped by a filter. (Items the filters drop are answered with success: phone apps resend
    /// whatever was not answered 2xx, and a fix that will never be stored would be resent forever.)
    pub fn nothing_usable(&self) -> bool {
        self.stored == 0 && self.duplicates == 0 && self.dropped == 0 && !self.rejected.is_empty()
    }
}
