//! Importing the territory tree from a GeoJSON `FeatureCollection`: every feature judged before
//! anything is written, parents resolved in any order, all or nothing.

use super::{Caller, Error};
use crate::db;
use crate::db::territories::NewTerritory;
use crate::domain::audit::AuditAction;
use crate::domain::territory::TerritoryLevel;
use crate::domain::validation::{FieldError, check_text};
use serde::Serialize;
use serde_json::{Value, json};

/// What an import did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TerritoryImport {
    pub created: usize,
    pub updated: usize,
    /// Outlets whose territory changed because boundaries changed.
    pub outlets_reassigned: u64,
}

/// One feature of the file, judged sound.
struct Row {
    code: String,
    name: String,
    level: String,
    parent_code: Option<String>,
    geometry: String,
}

/// Why a boundary is unacceptable (structure, ranges, closed rings; then PostGIS validity such as
/// self-intersection), or `None`.
pub async fn boundary_problem(db: &sqlx::PgPool, geometry: &Value) -> Result<Option<String>, sqlx::Error> {
    if let Some(reason) = crate::domain::territory::boundary_problem(geometry) {
        return Ok(Some(reason));
    }
    db::territories::boundary_problem(db, &geometry.to_string()).await
}

/// The features of `body`, each judged; every problem named with its feature index.
async fn judge(db: &sqlx::PgPool, body: &[u8]) -> Result<Vec<Row>, Error> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| Error::BadInput(format!("not JSON: {e}")))?;
    let (Some("FeatureCollection"), Some(Value::Array(features))) =
        (doc.get("type").and_then(Value::as_str), doc.get("features"))
    else {
        return Err(Error::BadInput("expected a GeoJSON FeatureCollection".into()));
    };
    let mut errors = Vec::new();
    let mut rows: Vec<Row> = Vec::with_capacity(features.len());
    for (i, f) in features.iter().enumerate() {
        let prop = |k: &str| f.get("properties").and_then(|p| p.get(k)).and_then(Value::as_str);
        let mut errs = Vec::new();
        let (code, name, level) = (prop("code").unwrap_or(""), prop("name").unwrap_or(""), prop("level").unwrap_or(""));
        check_text("code", code, crate::domain::validation::CODE_MAX_CHARS, &mut errs);
        check_text("name", name, crate::domain::validation::NAME_MAX_CHARS, &mut errs);
        check_text("level", level, 32, &mut errs);
        match f.get("geometry") {
            Some(g) if !g.is_null() => {
                if let Some(reason) = boundary_problem(db, g).await? {
                    errs.push(FieldError::new("geometry", reason));
                }
            }
            _ => errs.push(FieldError::new("geometry", "is required")),
        }
        if rows.iter().any(|r| r.code == code) {
            errs.push(FieldError::new("code", format!("`{code}` appears twice in this file")));
        }
        if errs.is_empty() {
            rows.push(Row {
                code: code.to_owned(),
                name: name.to_owned(),
                level: level.to_owned(),
                parent_code: prop("parent_code").map(str::to_owned),
                geometry: f.get("geometry").map(Value::to_string).unwrap_or_default(),
            });
        }
        errors.extend(errs.into_iter().map(|e| e.at(i)));
    }
    if errors.is_empty() { Ok(rows) } else { Err(Error::Invalid(errors)) }
}

/// Imports the territories of a GeoJSON `FeatureCollection` (`body`) for `caller`: each feature a
/// Polygon/MultiPolygon with `code`, `name`, `level` and optional `parent_code` (stored already or
/// in the same file, in any order); existing codes are updated, outlets reassigned to the new
/// boundaries, the import audited. Any bad feature and nothing is written.
pub async fn import(db: &sqlx::PgPool, caller: &Caller<'_>, body: &[u8]) -> Result<TerritoryImport, Error> {
    let rows = judge(db, body).await?;
    let org_id = caller.org_id;
    let mut tx = db.begin().await?;
    let (mut created, mut updated) = (0, 0);
    let mut pending: Vec<usize> = (0..rows.len()).collect();
    while !pending.is_empty() {
        let mut next = Vec::new();
        for &i in &pending {
            let row = &rows[i];
            let parent = match &row.parent_code {
                Some(pc) => {
                    let Some(p) = db::territories::by_code(&mut *tx, org_id, pc).await? else {
                        // Its parent comes later in the file: try again in the next pass.
                        next.push(i);
                        continue;
                    };
                    Some(p)
                }
                None => None,
            };
            if !caller.may_reach(parent.as_ref().map(|p| p.path.as_slice())) {
                return Err(Error::Invalid(vec![FieldError::new("parent_code", "outside your territory").at(i)]));
            }
            let level: TerritoryLevel = row
                .level
                .parse()
                .map_err(|_| Error::Constraint { constraint: "territories_level_known", item: Some(i) })?;
            let t = NewTerritory {
                parent_id: parent.map(|p| p.id),
                code: &row.code,
                name: &row.name,
                level,
                boundary_geojson: Some(&row.geometry),
            };
            if db::territories::update_by_code(&mut *tx, org_id, &t).await.map_err(|e| Error::at(e, i))?.is_some() {
                updated += 1;
            } else {
                db::territories::create(&mut *tx, org_id, &t).await.map_err(|e| Error::at(e, i))?;
                created += 1;
            }
        }
        if next.len() == pending.len() {
            let errors = next
                .iter()
                .map(|&i| FieldError::new("parent_code", "no such territory in this org or this file").at(i))
                .collect();
            return Err(Error::Invalid(errors));
        }
        pending = next;
    }
    let outlets_reassigned = db::territories::reassign_outlets(&mut *tx, org_id).await?;
    caller
        .audit(
            &mut *tx,
            AuditAction::TerritoryImport,
            "territory",
            "*",
            json!({"created": created, "updated": updated}),
        )
        .await?;
    tx.commit().await?;
    Ok(TerritoryImport { created, updated, outlets_reassigned })
}
