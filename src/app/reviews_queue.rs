//! The review queue: what waits for a reviewer in the caller's scope, oldest first — visits whose
//! verdict is `suspect` or `unverified` and that nobody reviewed, visits their rep disputes and no
//! decision answered since, and check-in claims no visit confirms and nobody decided — and the
//! same decision applied to many of them at once. A bulk decision takes each item through the
//! use case of its single decision ([`super::reviews::review`], [`super::checkins::decide_claim`]),
//! so audit, history and re-derivation are those of one decision.

use super::{Caller, Error};
use crate::db;
use crate::db::reviews_queue::{QueuedVisit, VisitFilter};
use crate::domain::validation::FieldError;
use crate::domain::visit::Verdict;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use std::collections::HashMap;

/// What an item of the queue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum QueueKind {
    /// A visit judged `suspect` (spoofing signals, risk at or over the threshold), not reviewed.
    Suspect,
    /// A visit judged `unverified` (too few or too imprecise fixes), not reviewed.
    Unverified,
    /// A visit its rep disputes, with no accept, reject or resolution since.
    Disputed,
    /// A check-in no derived visit confirms and nobody decided (`GET /checkins/claims`).
    Claim,
}

impl QueueKind {
    /// Every kind, in the order the queue names them.
    pub const ALL: [QueueKind; 4] = [QueueKind::Suspect, QueueKind::Unverified, QueueKind::Disputed, QueueKind::Claim];

    /// The kind's word (as in JSON and in the `kind` filter).
    pub fn as_str(self) -> &'static str {
        match self {
            QueueKind::Suspect => "suspect",
            QueueKind::Unverified => "unverified",
            QueueKind::Disputed => "disputed",
            QueueKind::Claim => "claim",
        }
    }

    /// The kind named `word`, if any.
    pub fn parse(word: &str) -> Option<QueueKind> {
        QueueKind::ALL.into_iter().find(|k| k.as_str() == word)
    }

    fn is_visit(self) -> bool {
        self != QueueKind::Claim
    }
}

/// The kinds a comma-separated `text` names (every kind when absent or empty); a 422 naming
/// `field` for an unknown word.
pub fn parse_kinds(text: Option<&str>, field: &str) -> Result<Vec<QueueKind>, Error> {
    let words: Vec<&str> = text.unwrap_or("").split(',').map(str::trim).filter(|w| !w.is_empty()).collect();
    if words.is_empty() {
        return Ok(QueueKind::ALL.to_vec());
    }
    words
        .into_iter()
        .map(|w| {
            QueueKind::parse(w).ok_or_else(|| {
                Error::field(field, format!("`{w}` is not a kind: suspect, unverified, disputed or claim"))
            })
        })
        .collect()
}

/// Which items of the queue: kinds, rep, territory and period (org-local days, both inclusive).
#[derive(Debug, Clone)]
pub struct QueueFilter {
    pub kinds: Vec<QueueKind>,
    pub rep_id: Option<i64>,
    pub territory_id: Option<i64>,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// Where a page of the queue ends: the time, source (visit before claim at the same time) and id
/// of its last item. Written `<unix microseconds>.<v|c>.<id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    at: DateTime<Utc>,
    claim: bool,
    id: i64,
}

impl Cursor {
    /// The cursor `text` (the `next` of a previous page); a 422 naming `field` when it is not one.
    pub fn parse(text: &str, field: &str) -> Result<Cursor, Error> {
        let bad = || Error::field(field, "must be the `next` of a previous page");
        let mut parts = text.split('.');
        let (Some(micros), Some(source), Some(id), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let at = micros.parse::<i64>().ok().and_then(DateTime::from_timestamp_micros).ok_or_else(bad)?;
        let claim = match source {
            "v" => false,
            "c" => true,
            _ => return Err(bad()),
        };
        Ok(Cursor { at, claim, id: id.parse().map_err(|_| bad())? })
    }

    /// The cursor as text.
    pub fn text(self) -> String {
        format!("{}.{}.{}", self.at.timestamp_micros(), if self.claim { "c" } else { "v" }, self.id)
    }

    /// The (arrival, id) after which visits follow this cursor: at the same time, visits come
    /// before claims, so after a claim's cursor no visit of that time follows.
    fn visit_bound(self) -> (DateTime<Utc>, i64) {
        (self.at, if self.claim { i64::MAX } else { self.id })
    }
}

/// A rep as a queue item names them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RepRef {
    pub id: i64,
    pub name: String,
}

/// An outlet as a queue item names it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OutletRef {
    pub id: i64,
    pub code: String,
    pub name: String,
}

/// Where a review panel reads an item's evidence and posts its decision (paths of this API).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QueueLinks {
    /// The visit (in its rep-day's list of visits) or the check-in (in its rep-day's check-ins):
    /// figures, distances, dwell, accuracy, spoofing signals.
    pub evidence: String,
    /// The visit's photos (a claim lists its photos in its check-in).
    pub photos: Option<String>,
    /// The visit's checklist answers (a claim lists its answers in its check-in).
    pub outcomes: Option<String>,
    /// The visit's reviews: who decided what, when (a claim's decision is on its check-in).
    pub history: Option<String>,
    /// Where a single decision is posted.
    pub decide: String,
}

/// An item of the review queue.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QueueItem {
    pub kind: QueueKind,
    /// The visit's id, or the check-in's for a claim.
    pub id: i64,
    /// The visit reviewed (absent for a claim).
    pub visit_id: Option<i64>,
    /// The check-in decided (a claim only).
    pub checkin_id: Option<i64>,
    pub rep: RepRef,
    pub outlet: OutletRef,
    /// The org-local day of the visit or check-in.
    pub rep_day: NaiveDate,
    /// Arrival of the visit, or the check-in's time.
    pub at: DateTime<Utc>,
    /// The visit's verdict (absent for a claim).
    pub verdict: Option<Verdict>,
    /// The visit's risk score, 0..1 (absent for a claim).
    pub risk_score: Option<f32>,
    /// The rep's comment in their standing dispute.
    pub dispute_reason: Option<String>,
    /// A claim's distance from the outlet when checking in, in metres.
    pub distance_m: Option<f64>,
    pub links: QueueLinks,
    /// Where this item lies in the queue (`after` of a page continuing below it).
    #[serde(skip)]
    pub cursor: Cursor,
}

/// A page of the queue.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueuePage {
    /// Oldest first.
    pub items: Vec<QueueItem>,
    /// `after` for the next page; absent on the last.
    pub next: Option<String>,
    /// How many items the filter matches in all pages.
    pub total: i64,
}

/// Most items a page holds.
pub const MAX_PAGE: usize = 200;

/// Up to `limit` items of the queue after `after` in the caller's scope matching `f`, oldest
/// first. A rep or territory outside the caller's scope is a 403, one that does not exist a 422
/// naming the filter's field (`prefix` + `rep_id`, `territory_id`).
pub async fn queue(
    db: &sqlx::PgPool,
    caller: &Caller<'_>,
    f: &QueueFilter,
    limit: usize,
    after: Option<Cursor>,
    prefix: &str,
) -> Result<QueuePage, Error> {
    let Some(scope) = caller.scope else {
        return Ok(QueuePage { items: Vec::new(), next: None, total: 0 });
    };
    check_filter(db, caller, f, prefix).await?;
    let limit = limit.clamp(1, MAX_BULK);
    let bound = after.map_or((DateTime::<Utc>::UNIX_EPOCH, i64::MIN), Cursor::visit_bound);
    let kinds: Vec<&str> = f.kinds.iter().filter(|k| k.is_visit()).map(|k| k.as_str()).collect();
    let (mut items, mut total) = (Vec::new(), 0);
    if !kinds.is_empty() {
        let vf = VisitFilter {
            scope_root: scope.root(),
            kinds: &kinds,
            rep_id: f.rep_id,
            territory_id: f.territory_id,
            from: f.from,
            to: f.to,
        };
        let rows =
            db::reviews_queue::visits(db, caller.org_id, &vf, bound, i64::try_from(limit + 1).unwrap_or(i64::MAX))
                .await?;
        total += rows.first().map_or(0, |r| r.total);
        items.extend(rows.into_iter().map(visit_item));
    }
    if f.kinds.contains(&QueueKind::Claim) {
        let claims = claims(db, caller, f).await?;
        total += i64::try_from(claims.len()).unwrap_or(i64::MAX);
        items.extend(claims.into_iter().filter(|c| after.is_none_or(|a| c.cursor > a)));
    }
    items.sort_by_key(|i| i.cursor);
    let more = items.len() > limit;
    items.truncate(limit);
    let next = if more { items.last().map(|i| i.cursor.text()) } else { None };
    Ok(QueuePage { items, next, total })
}

/// 422 for a rep or territory of the filter that does not exist, 403 for one outside the scope.
async fn check_filter(db: &sqlx::PgPool, caller: &Caller<'_>, f: &QueueFilter, prefix: &str) -> Result<(), Error> {
    if let Some(rep_id) = f.rep_id {
        let rep = db::users::get(db, caller.org_id, rep_id)
            .await?
            .ok_or_else(|| Error::field(&format!("{prefix}rep_id"), format!("rep {rep_id} does not exist")))?;
        if !caller.may_see_rep(rep.id, rep.territory_path.as_deref()) {
            return Err(Error::Forbidden("this rep's data is outside your scope".into()));
        }
    }
    if let Some(territory_id) = f.territory_id {
        let t = db::territories::get(db, caller.org_id, territory_id).await?.ok_or_else(|| {
            Error::field(&format!("{prefix}territory_id"), format!("territory {territory_id} does not exist"))
        })?;
        if !caller.may_reach(Some(&t.path)) {
            return Err(Error::Forbidden("this territory is outside your scope".into()));
        }
    }
    Ok(())
}

fn visit_item(v: QueuedVisit) -> QueueItem {
    let kind = QueueKind::parse(&v.kind).unwrap_or(QueueKind::Disputed);
    QueueItem {
        kind,
        id: v.id,
        visit_id: Some(v.id),
        checkin_id: None,
        rep: RepRef { id: v.rep_id, name: v.rep_name },
        outlet: OutletRef { id: v.outlet_id, code: v.outlet_code, name: v.outlet_name },
        rep_day: v.rep_day,
        at: v.at,
        verdict: Some(v.verdict),
        risk_score: Some(v.risk_score),
        dispute_reason: v.dispute_reason,
        distance_m: None,
        links: QueueLinks {
            evidence: format!("/api/v1/reps/{}/visits?from={}&to={}", v.rep_id, v.rep_day, v.rep_day),
            photos: Some(format!("/api/v1/visits/{}/photos", v.id)),
            outcomes: Some(format!("/api/v1/visits/{}/outcomes", v.id)),
            history: Some(format!("/api/v1/visits/{}/reviews", v.id)),
            decide: format!("/api/v1/visits/{}/reviews", v.id),
        },
        cursor: Cursor { at: v.at, claim: false, id: v.id },
    }
}

/// The open claims of the caller's scope matching the filter (the supervisor's list of claims,
/// [`super::checkins::open_claims`]), as queue items, oldest first.
async fn claims(db: &sqlx::PgPool, caller: &Caller<'_>, f: &QueueFilter) -> Result<Vec<QueueItem>, Error> {
    let open = super::checkins::open_claims(db, caller, f.from, f.to).await?;
    let open: Vec<_> = open.into_iter().filter(|c| f.rep_id.is_none_or(|r| c.checkin.rep_id == r)).collect();
    let mut rep_ids: Vec<i64> = open.iter().map(|c| c.checkin.rep_id).collect();
    rep_ids.sort_unstable();
    rep_ids.dedup();
    let reps: HashMap<i64, db::reviews_queue::RepName> =
        db::reviews_queue::reps(db, caller.org_id, &rep_ids).await?.into_iter().map(|r| (r.id, r)).collect();
    let in_territory = |rep_id: i64| {
        f.territory_id
            .is_none_or(|t| reps.get(&rep_id).and_then(|r| r.territory_path.as_ref()).is_some_and(|p| p.contains(&t)))
    };
    let open: Vec<_> = open.into_iter().filter(|c| in_territory(c.checkin.rep_id)).collect();
    let outlet_ids: Vec<i64> = open.iter().map(|c| c.checkin.outlet_id).collect();
    let outlets: HashMap<i64, db::reviews_queue::OutletName> =
        db::reviews_queue::outlets(db, caller.org_id, &outlet_ids).await?.into_iter().map(|o| (o.id, o)).collect();
    let times: Vec<DateTime<Utc>> = open.iter().map(|c| c.checkin.checked_in_at).collect();
    let days = db::reviews_queue::local_days(db, caller.org_id, &times).await?;
    Ok(open
        .into_iter()
        .zip(days)
        .map(|(view, day)| {
            let c = view.checkin;
            let rep = reps.get(&c.rep_id).map_or_else(String::new, |r| r.name.clone());
            let outlet = outlets.get(&c.outlet_id).map_or_else(
                || OutletRef { id: c.outlet_id, code: String::new(), name: String::new() },
                |o| OutletRef { id: o.id, code: o.code.clone(), name: o.name.clone() },
            );
            QueueItem {
                kind: QueueKind::Claim,
                id: c.id,
                visit_id: None,
                checkin_id: Some(c.id),
                rep: RepRef { id: c.rep_id, name: rep },
                outlet,
                rep_day: day,
                at: c.checked_in_at,
                verdict: None,
                risk_score: None,
                dispute_reason: None,
                distance_m: Some(c.distance_m),
                links: QueueLinks {
                    evidence: format!("/api/v1/reps/{}/checkins?from={day}&to={day}", c.rep_id),
                    photos: None,
                    outcomes: None,
                    history: None,
                    decide: format!("/api/v1/checkins/{}/decision", c.id),
                },
                cursor: Cursor { at: c.checked_in_at, claim: true, id: c.id },
            }
        })
        .collect())
}

/// Most items one bulk decision takes (listed, or matched by a filter).
pub const MAX_BULK: usize = 500;

/// What a bulk decision applies to: listed items, or the first [`MAX_BULK`] items of the queue
/// matching a filter.
#[derive(Debug, Clone)]
pub enum Selection {
    Items(Vec<(QueueKind, i64)>),
    Filter(QueueFilter),
}

/// An item a bulk decision decided.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Decided {
    pub kind: QueueKind,
    pub id: i64,
}

/// Why a bulk decision left an item alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// No such visit or check-in in the org.
    NotFound,
    /// Outside the caller's scope, or not the caller's to decide.
    Forbidden,
    /// Its state refuses the decision now (a claim decided or confirmed meanwhile).
    Conflict,
    /// The decision is not valid for it.
    Invalid,
}

/// An item a bulk decision refused, and why (the words of the single decision's refusal).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Refused {
    pub kind: QueueKind,
    pub id: i64,
    pub refusal: Refusal,
    pub detail: String,
}

/// What a bulk decision did, item by item.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BulkOutcome {
    pub decision: String,
    pub decided: Vec<Decided>,
    pub refused: Vec<Refused>,
    /// Items the filter matches beyond this request's [`MAX_BULK`] (not attempted: send the
    /// request again); 0 for listed items.
    pub remaining: i64,
}

/// Applies `decision` (`accepted` or `rejected`) with `reason` to each selected item through its
/// single decision's use case. Each item is its own transaction, as a single decision is: one
/// refused item (decided meanwhile, outside the scope) does not undo the others, and a long run
/// holds no lock on the visits derivation rewrites. 422 for a decision, reason or selection that
/// no item could take, before anything is written.
pub async fn decide(
    db: &sqlx::PgPool,
    caller: &Caller<'_>,
    decision: &str,
    reason: &str,
    selection: &Selection,
) -> Result<BulkOutcome, Error> {
    let mut errors = Vec::new();
    if !matches!(decision, "accepted" | "rejected") {
        errors.push(FieldError::new("decision", "must be `accepted` or `rejected`"));
    }
    if let Err(Error::Invalid(e)) = super::reviews::check_reason(reason) {
        errors.extend(e);
    }
    if let Selection::Items(items) = selection {
        if items.is_empty() || items.len() > MAX_BULK {
            errors.push(FieldError::new("items", format!("must list 1 to {MAX_BULK} items")));
        }
        // Ids are positive: one out of range (a JSON number past i64 arrives saturated) names nothing.
        for (i, (_, id)) in items.iter().enumerate() {
            if *id < 1 {
                errors.push(FieldError::new("items.id", "must be a positive id").at(i));
            }
        }
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    let (items, remaining) = match selection {
        Selection::Items(items) => (items.clone(), 0),
        Selection::Filter(f) => {
            let page = queue(db, caller, f, MAX_BULK, None, "filter.").await?;
            let n = i64::try_from(page.items.len()).unwrap_or(i64::MAX);
            (page.items.into_iter().map(|i| (i.kind, i.id)).collect(), page.total - n)
        }
    };
    let mut out = BulkOutcome { decision: decision.to_owned(), decided: Vec::new(), refused: Vec::new(), remaining };
    for (kind, id) in items {
        let done = if kind.is_visit() {
            super::reviews::review(db, caller, id, decision, reason).await.map(|_| ())
        } else {
            super::checkins::decide_claim(db, caller, id, decision, reason).await.map(|_| ())
        };
        match done {
            Ok(()) => out.decided.push(Decided { kind, id }),
            Err(e) => out.refused.push(refused(kind, id, e)?),
        }
    }
    Ok(out)
}

/// A single decision's refusal as a bulk item's; a failure of the database itself ends the run.
fn refused(kind: QueueKind, id: i64, e: Error) -> Result<Refused, Error> {
    let refusal = match &e {
        Error::NotFound { .. } => Refusal::NotFound,
        Error::Forbidden(_) => Refusal::Forbidden,
        Error::Conflict { .. } => Refusal::Conflict,
        Error::Invalid(_) | Error::BadInput(_) | Error::Constraint { .. } => Refusal::Invalid,
        Error::Internal(_) | Error::Db { .. } => return Err(e),
    };
    let detail = match &e {
        Error::Invalid(errors) => {
            errors.iter().map(|f| format!("{}: {}", f.field, f.reason)).collect::<Vec<_>>().join("; ")
        }
        other => other.to_string(),
    };
    Ok(Refused { kind, id, refusal, detail })
}
