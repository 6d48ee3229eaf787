//! Checklists (versioned by name), visit outcomes (answers), and the outlet attribute changes
//! they make.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgExecutor};

/// A checklist version.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct Checklist {
    pub id: i64,
    pub name: String,
    pub version: i32,
    /// The questions (`domain::checklist::Item`).
    #[schema(value_type = Vec<Object>)]
    pub items: serde_json::Value,
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
}

const SELECT: &str = "SELECT id, name, version, items, created_by, created_at FROM checklists";

/// Adds a checklist: version 1 of a new name, the next version of an existing one.
pub async fn create(
    db: impl PgExecutor<'_>,
    org_id: i64,
    name: &str,
    items: &serde_json::Value,
    created_by: Option<i64>,
) -> Result<Checklist, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO checklists (org_id, name, version, items, created_by)
         SELECT $1, $2, coalesce(max(version), 0) + 1, $3, $4 FROM checklists WHERE org_id = $1 AND name = $2
         RETURNING id, name, version, items, created_by, created_at",
    )
    .bind(org_id)
    .bind(name)
    .bind(items)
    .bind(created_by)
    .fetch_one(db)
    .await
}

/// The latest version of each of the org's checklists, by name.
pub async fn latest(db: impl PgExecutor<'_>, org_id: i64) -> Result<Vec<Checklist>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE org_id = $1 AND (name, version) IN
           (SELECT name, max(version) FROM checklists WHERE org_id = $1 GROUP BY name)
         ORDER BY name"
    ))
    .bind(org_id)
    .fetch_all(db)
    .await
}

pub async fn get(db: impl PgExecutor<'_>, org_id: i64, id: i64) -> Result<Option<Checklist>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE org_id = $1 AND id = $2")).bind(org_id).bind(id).fetch_optional(db).await
}

/// A rep's answers to a checklist version for a visit.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct Outcome {
    pub id: i64,
    pub checklist_id: i64,
    pub checklist_name: String,
    pub checklist_version: i32,
    /// The visit (it follows the visit across recomputations).
    pub visit_id: Option<i64>,
    pub rep_id: i64,
    pub rep_day: NaiveDate,
    pub visit_arrival: DateTime<Utc>,
    pub outlet_id: i64,
    #[schema(value_type = Object)]
    pub answers: serde_json::Value,
    /// Keys of the answers outside what the checklist expects.
    pub problems: Vec<String>,
    pub submitted_by: Option<i64>,
    pub submitted_by_device: Option<i64>,
    pub submitted_at: DateTime<Utc>,
    /// The check-in the answers were given at (before any visit was derived), and the app's id
    /// of them.
    pub checkin_id: Option<i64>,
    pub client_id: Option<String>,
}

const OUTCOME: &str =
    "SELECT v.id, v.checklist_id, c.name AS checklist_name, c.version AS checklist_version, v.visit_id,
        v.rep_id, v.rep_day, v.visit_arrival, v.outlet_id, v.answers, v.problems, v.submitted_by,
        v.submitted_by_device, v.submitted_at, v.checkin_id, v.client_id
   FROM visit_outcomes v JOIN checklists c ON c.org_id = v.org_id AND c.id = v.checklist_id";

/// An outcome to store.
#[derive(Debug, Clone)]
pub struct NewOutcome<'a> {
    pub checklist_id: i64,
    /// The visit answered; `None` for answers given at a check-in (derivation links them).
    pub visit_id: Option<i64>,
    pub rep_id: i64,
    pub rep_day: NaiveDate,
    pub visit_arrival: DateTime<Utc>,
    pub outlet_id: i64,
    pub answers: &'a serde_json::Value,
    pub problems: &'a [String],
    pub submitted_by: Option<i64>,
    pub submitted_by_device: Option<i64>,
    /// The outlet attributes the answers set (attribute -> value).
    pub outlet_attributes: &'a serde_json::Value,
    /// The check-in the answers hang on and the app's id of them.
    pub checkin: Option<(i64, &'a str)>,
}

/// Stores an outcome; returns its id and its visit's (`None` when the visit was recomputed away
/// meanwhile, or for a check-in's answers: the outcome is then linked to its visit at the
/// rep-day's next derivation). `None` when the check-in already has answers with this client id
/// (a retry, also one racing this insert): the unique key decides, nothing is stored.
pub async fn insert_outcome(
    db: impl PgExecutor<'_>,
    org_id: i64,
    o: &NewOutcome<'_>,
) -> Result<Option<(i64, Option<i64>)>, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO visit_outcomes (org_id, checklist_id, visit_id, rep_id, rep_day, visit_arrival, outlet_id, answers,
                                     problems, submitted_by, submitted_by_device, outlet_attributes, checkin_id,
                                     client_id)
         VALUES ($1, $2, (SELECT id FROM visits WHERE org_id = $1 AND id = $3), $4, $5, $6, $7, $8, $9, $10, $11, $12,
                 $13, $14)
         ON CONFLICT (org_id, checkin_id, client_id) DO NOTHING
         RETURNING id, visit_id",
    )
    .bind(org_id)
    .bind(o.checklist_id)
    .bind(o.visit_id)
    .bind(o.rep_id)
    .bind(o.rep_day)
    .bind(o.visit_arrival)
    .bind(o.outlet_id)
    .bind(o.answers)
    .bind(o.problems)
    .bind(o.submitted_by)
    .bind(o.submitted_by_device)
    .bind(o.outlet_attributes)
    .bind(o.checkin.map(|c| c.0))
    .bind(o.checkin.map(|c| c.1))
    .fetch_optional(db)
    .await
}

/// The answers of check-in `checkin_id` with the app's id `client_id`, if stored.
pub async fn outcome_of_checkin(
    db: impl PgExecutor<'_>,
    org_id: i64,
    checkin_id: i64,
    client_id: &str,
) -> Result<Option<Outcome>, sqlx::Error> {
    sqlx::query_as(&format!("{OUTCOME} WHERE v.org_id = $1 AND v.checkin_id = $2 AND v.client_id = $3"))
        .bind(org_id)
        .bind(checkin_id)
        .bind(client_id)
        .fetch_optional(db)
        .await
}

/// Whether outcome `id` holds answers `answers` to checklist version `checklist_id` (answers
/// compared as `jsonb`: key order and the spelling of a number do not matter).
pub async fn same_answers(
    db: impl PgExecutor<'_>,
    org_id: i64,
    id: i64,
    checklist_id: i64,
    answers: &serde_json::Value,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM visit_outcomes
                         WHERE org_id = $1 AND id = $2 AND checklist_id = $3 AND answers = $4::jsonb)",
    )
    .bind(org_id)
    .bind(id)
    .bind(checklist_id)
    .bind(answers)
    .fetch_one(db)
    .await
}

/// One outcome of the org by id.
pub async fn outcome(db: impl PgExecutor<'_>, org_id: i64, id: i64) -> Result<Option<Outcome>, sqlx::Error> {
    sqlx::query_as(&format!("{OUTCOME} WHERE v.org_id = $1 AND v.id = $2"))
        .bind(org_id)
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The outcomes of a visit, in submission order.
pub async fn of_visit(db: impl PgExecutor<'_>, org_id: i64, visit_id: i64) -> Result<Vec<Outcome>, sqlx::Error> {
    sqlx::query_as(&format!("{OUTCOME} WHERE v.org_id = $1 AND v.visit_id = $2 ORDER BY v.id"))
        .bind(org_id)
        .bind(visit_id)
        .fetch_all(db)
        .await
}

/// The outcomes at an outlet, by id (submission order), the page after `after`; of one rep's
/// visits only with `only_rep`.
pub async fn of_outlet(
    db: impl PgExecutor<'_>,
    org_id: i64,
    outlet_id: i64,
    only_rep: Option<i64>,
    after: i64,
    limit: i64,
) -> Result<Vec<Outcome>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{OUTCOME} WHERE v.org_id = $1 AND v.outlet_id = $2 AND v.id > $3 AND ($5::bigint IS NULL OR v.rep_id = $5)
          ORDER BY v.id LIMIT $4"
    ))
    .bind(org_id)
    .bind(outlet_id)
    .bind(after)
    .bind(limit)
    .bind(only_rep)
    .fetch_all(db)
    .await
}

/// Sets outlet attributes from an outcome's answers, recording each change (an unchanged value
/// is not a change). Returns how many changed.
pub async fn set_outlet_attributes(
    conn: &mut PgConnection,
    org_id: i64,
    outlet_id: i64,
    outcome_id: i64,
    values: &[(String, serde_json::Value)],
) -> Result<u64, sqlx::Error> {
    let mut changed = 0;
    for (attribute, value) in values {
        let n = sqlx::query(
            "WITH old AS (SELECT attributes -> $3 AS v FROM outlets WHERE org_id = $1 AND id = $2),
                  upd AS (UPDATE outlets SET attributes = jsonb_set(attributes, ARRAY[$3], $4)
                           WHERE org_id = $1 AND id = $2 AND (SELECT v FROM old) IS DISTINCT FROM $4
                             -- An older visit's answer, sent late, does not overwrite a newer visit's.
                             AND NOT EXISTS (
                                 SELECT 1 FROM visit_outcomes n, visit_outcomes me
                                  WHERE me.org_id = $1 AND me.id = $5 AND n.org_id = $1 AND n.outlet_id = $2
                                    AND n.id <> $5 AND n.outlet_attributes ? $3
                                    AND (n.visit_arrival, n.id) > (me.visit_arrival, me.id))
                           RETURNING id)
             INSERT INTO outlet_attribute_changes (org_id, outlet_id, attribute, old_value, new_value, outcome_id)
             SELECT $1, $2, $3, (SELECT v FROM old), $4, $5 FROM upd",
        )
        .bind(org_id)
        .bind(outlet_id)
        .bind(attribute)
        .bind(value)
        .bind(outcome_id)
        .execute(&mut *conn)
        .await?;
        changed += n.rows_affected();
    }
    Ok(changed)
}

/// One change of an outlet attribute.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct AttributeChange {
    pub id: i64,
    pub attribute: String,
    #[schema(value_type = Option<Object>)]
    pub old_value: Option<serde_json::Value>,
    #[schema(value_type = Object)]
    pub new_value: serde_json::Value,
    /// The outcome whose answer made it.
    pub outcome_id: Option<i64>,
    pub changed_at: DateTime<Utc>,
}

/// An outlet's attribute changes, oldest first, the page after `after`.
pub async fn attribute_changes(
    db: impl PgExecutor<'_>,
    org_id: i64,
    outlet_id: i64,
    after: i64,
    limit: i64,
) -> Result<Vec<AttributeChange>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, attribute, old_value, new_value, outcome_id, changed_at FROM outlet_attribute_changes
          WHERE org_id = $1 AND outlet_id = $2 AND id > $3 ORDER BY id LIMIT $4",
    )
    .bind(org_id)
    .bind(outlet_id)
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// The outlets (of `outlet_ids`) whose latest checklist answers found a problem.
pub async fn outlets_with_problems(
    db: impl PgExecutor<'_>,
    org_id: i64,
    outlet_ids: &[i64],
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT outlet_id FROM (
             SELECT DISTINCT ON (outlet_id) outlet_id, problems FROM visit_outcomes
              WHERE org_id = $1 AND outlet_id = ANY($2)
              ORDER BY outlet_id, visit_arrival DESC, id DESC) latest
          WHERE cardinality(problems) > 0 ORDER BY outlet_id",
    )
    .bind(org_id)
    .bind(outlet_ids)
    .fetch_all(db)
    .await
}
