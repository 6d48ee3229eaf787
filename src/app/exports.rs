//! Audit exports: who may export (and read the exports of) a scope, starting an export job,
//! verifying a file and its data against an export's manifest, and a territory's monthly
//! assessment. The files themselves are made by the worker in `crate::export`.

use super::{Caller, Error};
use crate::db;
use crate::db::exports::Export;
use crate::db::territories::Territory;
use crate::domain::access::Role;
use crate::domain::audit::AuditAction;
use crate::domain::export::{ExportParams, ExportScope, Generator};
use crate::export::assessment::Assessment;
use crate::export::{ExportError, Verification};
use serde_json::json;
use sqlx::PgPool;

/// Checks that the caller may export, and read the exports of, `scope`: a territory within their
/// scope (not for reps), or a rep whose data they may see (reps: themselves). Devices do not
/// export (an export is requested by a user).
async fn check_scope(db: &PgPool, caller: &Caller<'_>, scope: ExportScope) -> Result<(), Error> {
    if caller.user_id.is_none() {
        return Err(Error::Forbidden("exports are requested by users, not devices".into()));
    }
    let role = caller.role;
    match scope {
        ExportScope::Territory { id } => {
            if role == Some(Role::Rep) {
                return Err(Error::Forbidden("reps export their own data: use scope kind `rep`".into()));
            }
            let t =
                db::territories::get(db, caller.org_id, id).await?.ok_or_else(|| Error::not_found("territory", id))?;
            if !caller.may_reach(Some(&t.path)) {
                return Err(Error::Forbidden("this object is outside your territory".into()));
            }
        }
        ExportScope::Rep { id } => {
            let rep = db::users::get(db, caller.org_id, id).await?.ok_or_else(|| Error::not_found("rep", id))?;
            if !caller.may_see_rep(rep.id, rep.territory_path.as_deref()) {
                return Err(Error::Forbidden("this rep's data is outside your scope".into()));
            }
            if rep.role != Role::Rep {
                return Err(Error::field("scope.id", format!("user {id} is not a rep")));
            }
        }
    }
    Ok(())
}

/// Export `id`, when the caller may read it: its scope is theirs to export, and a rep's export
/// of their own data (made without home blurring) is only that rep's and admins'.
pub async fn get(db: &PgPool, caller: &Caller<'_>, id: i64) -> Result<Export, Error> {
    let e = db::exports::get(db, caller.org_id, id).await?.ok_or_else(|| Error::not_found("export", id))?;
    check_scope(db, caller, e.params.0.scope).await?;
    if let ExportScope::Rep { id: rep } = e.params.0.scope {
        let own = e.requested_by == Some(rep);
        if own && caller.user_id != Some(rep) && caller.role != Some(Role::Admin) {
            return Err(Error::Forbidden("a rep's export of their own data is theirs (and admins')".into()));
        }
    }
    Ok(e)
}

/// How many exports may be queued or running at once (`FV_EXPORTS_PER_USER`, `FV_EXPORTS_PER_ORG`;
/// 0 = no limit).
#[derive(Debug, Clone, Copy)]
pub struct ExportCaps {
    /// Per requesting user.
    pub per_user: u32,
    /// Per org.
    pub per_org: u32,
}

/// Stores the job of `params` unless the caller or the org already has as many exports queued or
/// running as `caps` allow (a conflict: the caller waits for one to finish, which no clock tells).
async fn create_within_caps(
    db: &PgPool,
    caller: &Caller<'_>,
    params: &ExportParams,
    caps: ExportCaps,
) -> Result<i64, Error> {
    let mut tx = db.begin().await?;
    db::exports::lock_starts(&mut tx, caller.org_id).await?;
    let (org, own) = db::exports::active_counts(&mut *tx, caller.org_id, caller.user_id).await?;
    let over = |count: i64, cap: u32| cap > 0 && count >= i64::from(cap);
    let refused = if over(own, caps.per_user) {
        Some(format!("you have {own} exports queued or running (at most {}); wait for one to finish", caps.per_user))
    } else if over(org, caps.per_org) {
        Some(format!("the org has {org} exports queued or running (at most {}); wait for one to finish", caps.per_org))
    } else {
        None
    };
    if let Some(detail) = refused {
        return Err(Error::Conflict { detail, errors: Vec::new() });
    }
    let id = db::exports::create(&mut *tx, caller.org_id, caller.user_id, params).await?;
    tx.commit().await?;
    Ok(id)
}

/// Starts an export of `params` for the caller: checks the parameters, the scope and the caps on
/// exports at once, stores the job, hands it to the export worker (in the background, on
/// `worker_db`; its audit entry is written when the files are) and returns the job as stored, queued.
pub async fn start(
    db: &PgPool,
    worker_db: &PgPool,
    caller: &Caller<'_>,
    params: &ExportParams,
    caps: ExportCaps,
) -> Result<Export, Error> {
    let problems = params.problems();
    if !problems.is_empty() {
        return Err(Error::Invalid(problems));
    }
    check_scope(db, caller, params.scope).await?;
    let id = create_within_caps(db, caller, params, caps).await?;
    let login = match caller.user_id {
        Some(u) => db::users::get(db, caller.org_id, u).await?.map(|u| u.login).unwrap_or_default(),
        None => String::new(),
    };
    let generator = Generator { user_id: caller.user_id, login };
    let (worker_db, org_id) = (worker_db.clone(), caller.org_id);
    tokio::spawn(async move {
        if let Err(e) = crate::export::run_queued(worker_db, org_id, id, generator).await {
            tracing::error!(export = id, error = %e, "export failed");
        }
    });
    db::exports::get(db, caller.org_id, id).await?.ok_or_else(|| Error::not_found("export", id))
}

/// Verifies a file, `given` as its SHA-256 and length, against export `export_id` (default: the
/// first export the caller may read holding a file with this hash) and whether the export's data
/// changed since it was made. A file no export holds is `unknown`. Audited when checked.
pub async fn verify(
    db: &PgPool,
    caller: &Caller<'_>,
    export_id: Option<i64>,
    given: Option<(String, u64)>,
) -> Result<Verification, Error> {
    let Some(export) = export_to_check(db, caller, export_id, given.as_ref()).await? else {
        return Ok(Verification::unknown(given));
    };
    let v = crate::export::verify(db, caller.org_id, &export, given).await.map_err(|e| match e {
        ExportError::NotDone(id, status) => {
            Error::Conflict { detail: format!("export {id} is {status}"), errors: Vec::new() }
        }
        e => Error::Internal(e.to_string()),
    })?;
    let detail = json!({"file": v.file, "data_changed": v.data_changed});
    caller.audit(db, AuditAction::ExportVerify, "export", export.id, detail).await?;
    Ok(v)
}

/// The export to check against: the one named, else the first the caller may read holding a file
/// with this hash (`None`: no such export).
async fn export_to_check(
    db: &PgPool,
    caller: &Caller<'_>,
    export_id: Option<i64>,
    given: Option<&(String, u64)>,
) -> Result<Option<Export>, Error> {
    match (export_id, given) {
        (Some(id), _) => Ok(Some(get(db, caller, id).await?)),
        (None, Some((h, _))) => {
            for e in db::exports::with_file(db, caller.org_id, h).await? {
                if check_scope(db, caller, e.params.0.scope).await.is_ok() {
                    return Ok(Some(e));
                }
            }
            Ok(None)
        }
        (None, None) => Err(Error::BadInput("send the file, its sha256 and bytes, or an export_id".into())),
    }
}

/// The territory whose bulletin a rep (or their phone) asks for, if it is their team's: their own
/// territory and those below it, or the one directly above it, where reps assigned to grids are
/// ranked together. 403 for a rep with no territory or another territory; 404 for none.
pub async fn rep_team_territory(db: &PgPool, caller: &Caller<'_>, id: i64) -> Result<Territory, Error> {
    let own = caller
        .scope
        .and_then(crate::domain::access::Scope::root)
        .ok_or_else(|| Error::Forbidden("a rep with no territory has no team bulletin".into()))?;
    let t = db::territories::get(db, caller.org_id, id)
        .await?
        .ok_or_else(|| Error::NotFound { what: "territory", id: id.to_string() })?;
    let parent = db::territories::get(db, caller.org_id, own).await?.and_then(|o| o.parent_id);
    if !caller.may_reach(Some(&t.path)) && parent != Some(t.id) {
        return Err(Error::Forbidden("a rep reads the bulletin of their own territory or the one above it".into()));
    }
    Ok(t)
}

/// The monthly assessment bulletin of territory `t` (whose visibility the caller has checked)
/// for `month` (YYYY-MM; default the org's current month): recurring plans materialised for the
/// month and the one before, then every figure read in one database snapshot.
pub async fn assessment(db: &PgPool, org_id: i64, t: &Territory, month: Option<&str>) -> Result<Assessment, Error> {
    let first = match month {
        Some(m) => crate::domain::assessment::parse_month(m).map_err(|e| Error::Invalid(vec![e]))?,
        None => crate::domain::assessment::month_of(db::plans::local_date(db, org_id, chrono::Utc::now()).await?),
    };
    crate::export::assessment::materialize(db, org_id, t.id, first).await?;
    let mut tx = db::snapshot(db).await?;
    let a = crate::export::assessment::assessment(&mut tx, org_id, t, first).await?;
    tx.commit().await?;
    Ok(a)
}
