//! Migrations on an empty database, readiness, idempotence, and the triggers the schema relies on
//! (territory paths, outlet location/status history).

use crate::common;

use chrono::{DateTime, Utc};
use common::{IN_T1, IN_T2, TestApp, World, assert_problem};
use fieldvisit::db;
use serde_json::json;
use sqlx::PgPool;

type MigrationRow = (i64, String, Vec<u8>, DateTime<Utc>, bool);

async fn migration_rows(pool: &PgPool) -> Vec<MigrationRow> {
    sqlx::query_as(
        "SELECT version, description, checksum, installed_on, success FROM _sqlx_migrations ORDER BY version",
    )
    .fetch_all(pool)
    .await
    .expect("read _sqlx_migrations")
}

#[sqlx::test(migrations = false)]
async fn migrate_from_empty_is_idempotent_and_makes_ready(pool: PgPool) {
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name = 'outlets'",
    )
    .fetch_one(&pool)
    .await
    .expect("catalog query");
    assert_eq!(tables, 0, "the database must start empty");

    let app = TestApp::spawn(pool.clone()).await;
    let err = db::readiness(&pool).await.expect_err("readiness before migrating must fail");
    assert!(!err.is_empty());
    let res = app.get("/readyz", None).await;
    assert_problem(&res, 503, "/readyz");
    // A fixed message: the database's own text ("relation ... does not exist") stays in the log.
    assert!(!res.text.contains("_sqlx_migrations") && !res.text.contains("relation"), "{}", res.describe());
    assert!(res.json["detail"].as_str().is_some_and(|d| d.contains("not migrated")), "{}", res.describe());
    assert_eq!(app.get("/healthz", None).await.status, 200, "liveness does not depend on the schema");

    db::migrate(&pool).await.expect("first migrate on an empty database");
    let first = migration_rows(&pool).await;
    let expected: Vec<i64> =
        db::MIGRATOR.iter().filter(|m| !m.migration_type.is_down_migration()).map(|m| m.version).collect();
    assert_eq!(first.iter().map(|r| r.0).collect::<Vec<_>>(), expected, "one row per migration");
    assert!(first.iter().all(|r| r.4), "every migration succeeded: {first:?}");

    db::migrate(&pool).await.expect("second migrate is a no-op, not an error");
    assert_eq!(migration_rows(&pool).await, first, "a second migrate must not touch _sqlx_migrations");

    db::readiness(&pool).await.expect("ready after migrating");
    let res = app.get("/readyz", None).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!(res.json["status"], "ready");

    // A migration recorded as failed makes the server unready again, naming it.
    sqlx::query("UPDATE _sqlx_migrations SET success = false WHERE version = $1")
        .bind(expected[0])
        .execute(&pool)
        .await
        .expect("mark failed");
    let err = db::readiness(&pool).await.expect_err("a failed migration is not ready");
    assert!(err.contains(&expected[0].to_string()), "names the migration: {err}");
    let res = app.get("/readyz", None).await;
    assert_problem(&res, 503, "/readyz");
    assert!(!res.text.contains("foundation"), "the migration is named in the log only: {}", res.describe());
}

#[sqlx::test(migrations = false)]
async fn territory_path_trigger_keeps_paths_and_refuses_cycles(pool: PgPool) {
    db::migrate(&pool).await.expect("migrate");
    let w = World::seed(&pool).await;
    let path = |id: i64| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, Vec<i64>>("SELECT path FROM territories WHERE id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .expect("path")
        }
    };
    assert_eq!(path(w.root).await, [w.root]);
    assert_eq!(path(w.t1).await, [w.root, w.t1]);
    assert_eq!(path(w.t2).await, [w.root, w.t2]);
    assert_eq!(path(w.tb).await, [w.tb]);

    // A grid under T1 with an outlet; a manager of T2 cannot see it yet.
    let grid = db::territories::create(
        &pool,
        w.org_a,
        &db::territories::NewTerritory {
            parent_id: Some(w.t1),
            code: "G",
            name: "G",
            level: fieldvisit::domain::territory::TerritoryLevel::Grid,
            boundary_geojson: None,
        },
    )
    .await
    .expect("grid")
    .id;
    let leaf = db::territories::create(
        &pool,
        w.org_a,
        &db::territories::NewTerritory {
            parent_id: Some(grid),
            code: "L",
            name: "L",
            level: fieldvisit::domain::territory::TerritoryLevel::Grid,
            boundary_geojson: None,
        },
    )
    .await
    .expect("leaf")
    .id;
    assert_eq!(path(leaf).await, [w.root, w.t1, grid, leaf]);
    let og = db::outlets::create(&pool, w.org_a, &common::outlet_fields("OG", "A", (39.91, 116.01), Some(leaf)))
        .await
        .expect("outlet in the leaf");
    let t2_manager = fieldvisit::admin::create_user(
        &pool,
        w.org_a,
        "m2",
        "M2",
        fieldvisit::domain::access::Role::Manager,
        Some(w.t2),
    )
    .await
    .expect("m2");
    let app = TestApp::spawn(pool.clone()).await;
    let outlet_path = format!("/api/v1/outlets/{og}");
    assert_eq!(app.get(&outlet_path, Some(&w.manager.token)).await.status, 200);
    assert_problem(&app.get(&outlet_path, Some(&t2_manager.token)).await, 403, &outlet_path);

    // Move the grid (with its leaf) from T1 to T2: paths of the whole subtree follow, and so does scope.
    sqlx::query("UPDATE territories SET parent_id = $1 WHERE org_id = $2 AND id = $3")
        .bind(w.t2)
        .bind(w.org_a)
        .bind(grid)
        .execute(&pool)
        .await
        .expect("move subtree");
    assert_eq!(path(grid).await, [w.root, w.t2, grid]);
    assert_eq!(path(leaf).await, [w.root, w.t2, grid, leaf]);
    assert_eq!(path(w.t1).await, [w.root, w.t1], "siblings are untouched");
    let res = app.get(&outlet_path, Some(&t2_manager.token)).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_problem(&app.get(&outlet_path, Some(&w.manager.token)).await, 403, &outlet_path);
    let listed = app.get("/api/v1/outlets", Some(&t2_manager.token)).await.ids();
    assert!(listed.contains(&og) && listed.contains(&w.o2) && !listed.contains(&w.o1), "{listed:?}");

    // A territory cannot move below itself or its descendants, nor under a missing parent.
    for (new_parent, id) in [(leaf, w.root), (leaf, grid), (grid, grid)] {
        let err = sqlx::query("UPDATE territories SET parent_id = $1 WHERE org_id = $2 AND id = $3")
            .bind(new_parent)
            .bind(w.org_a)
            .bind(id)
            .execute(&pool)
            .await
            .expect_err("cycle must be refused");
        let code = err.as_database_error().and_then(sqlx::error::DatabaseError::code).map(|c| c.to_string());
        assert_eq!(code.as_deref(), Some("23514"), "moving {id} under {new_parent}: {err}");
    }
    let err = sqlx::query(
        "INSERT INTO territories (org_id, parent_id, code, name, level) VALUES ($1, 987654, 'X', 'X', 'grid')",
    )
    .bind(w.org_a)
    .execute(&pool)
    .await
    .expect_err("missing parent");
    assert_eq!(err.as_database_error().and_then(sqlx::error::DatabaseError::code).as_deref(), Some("23503"), "{err}");
}

type LocationRow = (DateTime<Utc>, Option<DateTime<Utc>>, f64, f64, Option<f32>);

async fn locations(pool: &PgPool, outlet: i64) -> Vec<LocationRow> {
    sqlx::query_as(
        "SELECT valid_from, valid_to, ST_Y(location), ST_X(location), radius_m FROM outlet_locations
          WHERE outlet_id = $1 ORDER BY valid_from",
    )
    .bind(outlet)
    .fetch_all(pool)
    .await
    .expect("outlet_locations")
}

async fn statuses(pool: &PgPool, outlet: i64) -> Vec<String> {
    sqlx::query_scalar("SELECT status FROM outlet_status_changes WHERE outlet_id = $1 ORDER BY changed_at")
        .bind(outlet)
        .fetch_all(pool)
        .await
        .expect("outlet_status_changes")
}

#[sqlx::test(migrations = false)]
async fn moving_an_outlet_over_http_keeps_its_location_history(pool: PgPool) {
    db::migrate(&pool).await.expect("migrate");
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let res = app
        .post(
            "/api/v1/outlets",
            Some(&w.admin.token),
            &json!({"code": "MOVE-1", "name": "Mover", "channel_type": "phone_mall", "tier": "B",
                    "lat": IN_T1.0, "lon": IN_T1.1}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.describe());
    let id = res.json["id"].as_i64().expect("id");
    assert_eq!(res.json["territory_id"].as_i64(), Some(w.t1), "territory found by point-in-polygon");
    let first = locations(&pool, id).await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(first[0].1.is_none(), "the only location is open");
    assert_eq!(statuses(&pool, id).await, ["active"]);

    // Renaming does not touch the location history.
    let path = format!("/api/v1/outlets/{id}");
    assert_eq!(app.patch(&path, Some(&w.admin.token), &json!({"name": "Renamed"})).await.status, 200);
    assert_eq!(locations(&pool, id).await.len(), 1);

    // Re-pin into T2: the old location is closed, the new one open, and the territory follows the point.
    let res = app.patch(&path, Some(&w.admin.token), &json!({"lat": IN_T2.0, "lon": IN_T2.1})).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!(res.json["territory_id"].as_i64(), Some(w.t2), "re-pinned outlet belongs to T2 now");
    let rows = locations(&pool, id).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let (old, new) = (&rows[0], &rows[1]);
    assert_eq!(old.0, first[0].0, "the old row keeps its valid_from");
    assert_eq!(old.1, Some(new.0), "the old row is closed when the new one starts");
    assert!(new.1.is_none(), "the new row is open");
    assert_eq!((old.2, old.3), IN_T1);
    assert_eq!((new.2, new.3), IN_T2);

    // A radius change is a new geofence version too; a status change is recorded separately.
    let res = app.patch(&path, Some(&w.admin.token), &json!({"radius_m": 150})).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let rows = locations(&pool, id).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[2].4, Some(150.0));
    assert_eq!(rows.iter().filter(|r| r.1.is_none()).count(), 1, "exactly one open location: {rows:?}");
    let res = app.patch(&path, Some(&w.admin.token), &json!({"status": "closed"})).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!(statuses(&pool, id).await, ["active", "closed"]);
    assert_eq!(locations(&pool, id).await.len(), 3);
}
