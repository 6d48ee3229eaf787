//! Citus on paper (issue 28, item 4): every table can be distributed by org without a schema
//! change. The catalog proves it: `org_id` leads every primary and foreign key of every table but
//! the reference ones, foreign keys between distributed tables join on `org_id` first, and the only
//! unique keys without `org_id` are the global lookups docs/architecture.md names (a Citus
//! deployment moves them to lookup tables, as the docs say).

use sqlx::PgPool;
use std::collections::BTreeSet;

/// Tables that would be Citus reference tables (or are not ours): replicated, not distributed.
const REFERENCE: [&str; 3] = ["orgs", "spatial_ref_sys", "_sqlx_migrations"];

/// Unique keys without `org_id`: looked up before the org is known (a token, a device's tracker
/// id, an enrolment code). Named in docs/architecture.md, "Distributing by org (Citus)".
const GLOBAL_LOOKUPS: [&str; 4] = [
    "api_tokens_hash_key",
    "device_enrolments_code_hash_key",
    "devices_osmand_id_hash_key",
    "devices_owntracks_user_key",
];

/// (table, constraint, kind, its columns, referenced table, referenced columns) of the schema's
/// primary and foreign keys (partitions excluded: they inherit their parent's).
async fn keys(pool: &PgPool) -> Vec<(String, String, String, Vec<String>, Option<String>, Vec<String>)> {
    sqlx::query_as(
        "SELECT r.relname::text, c.conname::text, c.contype::text,
                ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, o)
                        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o),
                NULLIF(c.confrelid, 0)::regclass::text,
                ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, o)
                        JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o)
           FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid
           JOIN pg_namespace s ON s.oid = r.relnamespace
          WHERE s.nspname = 'public' AND c.contype IN ('p', 'f') AND NOT r.relispartition
          ORDER BY 1, 2",
    )
    .fetch_all(pool)
    .await
    .expect("keys")
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn org_id_leads_every_primary_and_foreign_key(pool: PgPool) {
    let keys = keys(&pool).await;
    let distributed: BTreeSet<&str> = keys.iter().map(|k| k.0.as_str()).filter(|t| !REFERENCE.contains(t)).collect();
    assert!(distributed.len() >= 30, "the schema's tables were read: {distributed:?}");
    // Every other table has the distribution column, never null (a log without a key too).
    let without: Vec<String> = sqlx::query_scalar(
        "SELECT r.relname::text FROM pg_class r JOIN pg_namespace s ON s.oid = r.relnamespace
          WHERE s.nspname = 'public' AND r.relkind IN ('r', 'p') AND NOT r.relispartition
            AND r.relname <> ALL ($1)
            AND NOT EXISTS (SELECT 1 FROM pg_attribute a
                             WHERE a.attrelid = r.oid AND a.attname = 'org_id' AND a.attnotnull)
          ORDER BY 1",
    )
    .bind(REFERENCE.map(str::to_owned).to_vec())
    .fetch_all(&pool)
    .await
    .expect("tables");
    assert!(without.is_empty(), "tables without a NOT NULL org_id: {without:?}");
    let mut wrong = Vec::new();
    for (table, name, kind, cols, to, to_cols) in &keys {
        if REFERENCE.contains(&table.as_str()) {
            continue;
        }
        if cols.first().map(String::as_str) != Some("org_id") {
            wrong.push(format!("{table}.{name} ({kind}) on {cols:?}"));
        }
        if kind == "f" {
            let to = to.as_deref().unwrap_or_default();
            // To the reference table of orgs by its id; to a distributed table on org_id first,
            // so both rows live on the same shard.
            let ok =
                if to == "orgs" { to_cols == &["id"] } else { to_cols.first().map(String::as_str) == Some("org_id") };
            if !ok {
                wrong.push(format!("{table}.{name} references {to}{to_cols:?}"));
            }
        }
    }
    assert!(wrong.is_empty(), "keys a distribution by org_id would break: {wrong:#?}");
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn the_only_unique_keys_without_org_id_are_the_documented_lookups(pool: PgPool) {
    let global: Vec<String> = sqlx::query_scalar(
        "SELECT ci.relname::text FROM pg_index i
           JOIN pg_class ci ON ci.oid = i.indexrelid JOIN pg_class r ON r.oid = i.indrelid
           JOIN pg_namespace s ON s.oid = r.relnamespace
          WHERE s.nspname = 'public' AND i.indisunique AND NOT r.relispartition
            AND r.relname <> ALL ($1)
            AND NOT EXISTS (SELECT 1 FROM unnest(i.indkey) k
                              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k
                             WHERE a.attname = 'org_id')
          ORDER BY 1",
    )
    .bind(REFERENCE.map(str::to_owned).to_vec())
    .fetch_all(&pool)
    .await
    .expect("unique indexes");
    assert_eq!(global, GLOBAL_LOOKUPS.map(str::to_owned).to_vec());
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/architecture.md")).expect("docs");
    for name in GLOBAL_LOOKUPS {
        assert!(docs.contains(name), "docs/architecture.md names {name}");
    }
}
