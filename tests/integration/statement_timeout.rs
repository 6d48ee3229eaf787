//! Issue 25, item 13: queries run for a request have PostgreSQL's `statement_timeout`
//! (`FV_STATEMENT_TIMEOUT_MS`); one cancelled by it is answered 503 problem+json with `Retry-After`
//! and a fixed text, and counted. Background work (exports here) runs on a pool without it. No
//! answer carries the database's own text, whatever the database refuses.

use crate::common::{self, PING_DAY, Res, TestApp, World, test_config};
use fieldvisit::config::Config;
use fieldvisit::http::error::DB_TOOK_TOO_LONG;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::time::Duration;

/// Text PostgreSQL puts in its errors (and sqlx around them); none may reach a client.
const DB_TEXT: &[&str] = &["ERROR:", "violates", "constraint", "relation", "canceling statement", "SQLSTATE"];

fn assert_no_db_text(text: &str, what: &str) {
    for marker in DB_TEXT {
        assert!(!text.contains(marker), "{what}: the answer carries the database's text ({marker:?}): {text}");
    }
}

/// The value of the counter `name` in `/metrics` (0 when absent).
async fn counter(app: &TestApp, name: &str) -> f64 {
    let m = app.get("/metrics", None).await;
    m.text.lines().find_map(|l| l.strip_prefix(name).and_then(|rest| rest.trim().parse().ok())).unwrap_or(0.0)
}

/// A transaction of the test holding `table` in ACCESS EXCLUSIVE mode: every query of it waits.
async fn lock(pool: &PgPool, table: &str) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut tx = pool.begin().await.expect("begin");
    sqlx::query(&format!("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")).execute(&mut *tx).await.expect("lock");
    tx
}

/// Releases `tx` after `after`: a server without a timeout then answers, and the test fails on
/// its assertions instead of hanging.
fn release_after(tx: sqlx::Transaction<'static, sqlx::Postgres>, after: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        tx.commit().await.expect("release the lock");
    })
}

/// The 503 of a query cancelled for taking too long: problem+json, `Retry-After`, the fixed text.
fn assert_took_too_long(res: &Res, path: &str) {
    common::assert_problem(res, 503, path.split('?').next().unwrap_or(path));
    assert!(res.header("retry-after").is_some_and(|s| s.parse::<u64>().is_ok()), "{}", res.describe());
    assert_eq!(res.json["detail"], DB_TOOK_TOO_LONG, "{}", res.describe());
    assert_no_db_text(&res.text, path);
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_request_stuck_on_a_lock_is_cancelled_by_the_statement_timeout(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn_with(pool.clone(), Config { statement_timeout_ms: 500, ..test_config("") }).await;
    let path = format!("/api/v1/outlets/{}", w.o1);
    assert_eq!(app.get(&path, Some(&w.admin.token)).await.status, 200);
    let before = counter(&app, "fieldvisit_db_statement_timeouts_total").await;

    let release = release_after(lock(&pool, "outlets").await, Duration::from_secs(8));
    let res = app.get(&path, Some(&w.admin.token)).await;
    assert_took_too_long(&res, &path);
    assert!(counter(&app, "fieldvisit_db_statement_timeouts_total").await > before, "the timeout is counted");
    // The server keeps serving: other queries now, the outlet once the lock is gone.
    let me = app.get("/api/v1/me", Some(&w.admin.token)).await;
    assert_eq!(me.status, 200, "{}", me.describe());
    release.await.expect("lock released");
    let res = app.get(&path, Some(&w.admin.token)).await;
    assert_eq!(res.status, 200, "{}", res.describe());
}

/// Polls export `id` until it is done or failed; returns it.
async fn finished_export(app: &TestApp, token: &str, id: i64) -> Value {
    for _ in 0..600 {
        let e = app.get(&format!("/api/v1/exports/{id}"), Some(token)).await;
        assert_eq!(e.status, 200, "{}", e.describe());
        if matches!(e.json["status"].as_str(), Some("done" | "failed")) {
            return e.json;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("export {id} did not finish within a minute");
}

async fn start_export(app: &TestApp, w: &World) -> i64 {
    let body =
        json!({"scope": {"kind": "territory", "id": w.root}, "from": PING_DAY, "to": PING_DAY, "formats": ["csv"]});
    let started = app.post("/api/v1/exports", Some(&w.admin.token), &body).await;
    assert_eq!(started.status, 202, "{}", started.describe());
    started.json["id"].as_i64().expect("export id")
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn an_export_waits_as_long_as_it_needs_while_requests_time_out(pool: PgPool) {
    let w = World::seed(&pool).await;
    // No derivation: the export is the only background work that reads visits.
    let config = Config { statement_timeout_ms: 300, derive_visits: false, ..test_config("") };
    let app = TestApp::spawn_with(pool.clone(), config).await;
    let held = lock(&pool, "visits").await;
    let path = format!("/api/v1/reps/{}/visits?from={PING_DAY}", w.rep.id);
    let release = release_after(held, Duration::from_secs(8));
    assert_took_too_long(&app.get(&path, Some(&w.admin.token)).await, &path);

    let id = start_export(&app, &w).await;
    // Wait until the export waits for the lock, let it wait well past the request timeout, then
    // release the lock (the task above releases it at the latest after 8 s).
    let mut waiting = false;
    for _ in 0..300 {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
        )
        .fetch_one(&pool)
        .await
        .expect("pg_stat_activity");
        if n > 0 {
            waiting = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(waiting, "the export never waited for the lock");
    release.await.expect("lock released");
    let export = finished_export(&app, &w.admin.token, id).await;
    assert_eq!(export["status"], "done", "the export ran without the request timeout: {export}");
}

/// Runs `sql` on the test's database (the schema additions below stand for rules the API does not
/// know of: a constraint added by hand, a trigger refusing a value).
async fn exec(pool: &PgPool, sql: &str) {
    sqlx::raw_sql(sql).execute(pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn no_answer_carries_the_databases_text(pool: PgPool) {
    let w = World::seed(&pool).await;
    exec(&pool, "ALTER TABLE outlets ADD CONSTRAINT zz_outlets_name_rule CHECK (name <> 'Refused by a rule')").await;
    exec(&pool, "CREATE UNIQUE INDEX zz_outlets_name_unique ON outlets (org_id, name)").await;
    exec(
        &pool,
        r#"CREATE FUNCTION zz_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
             IF NEW.name = 'Out of range' THEN
               RAISE EXCEPTION 'value "%" is out of range for relation "outlets"', NEW.name USING ERRCODE = '22003';
             ELSIF NEW.name = 'Anything else' THEN
               RAISE EXCEPTION 'relation "outlets" violates constraint "zz" (SQLSTATE P0001)';
             END IF;
             RETURN NEW;
           END $$;
           CREATE TRIGGER zz_refuse BEFORE UPDATE ON outlets FOR EACH ROW EXECUTE FUNCTION zz_refuse();
           CREATE FUNCTION zz_no_chunks() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
             RAISE EXCEPTION 'relation "export_chunks" violates constraint "zz" (SQLSTATE P0001)';
           END $$;
           CREATE TRIGGER zz_no_chunks BEFORE INSERT ON export_chunks FOR EACH ROW EXECUTE FUNCTION zz_no_chunks();"#,
    )
    .await;
    // Connections opened from now on wait at most 200 ms for a lock (55P03 `lock_not_available`).
    exec(&pool, "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET lock_timeout = 200', current_database()); END $$")
        .await;
    let app = TestApp::spawn_with(pool.clone(), Config { statement_timeout_ms: 0, ..test_config("") }).await;
    let token = Some(w.admin.token.as_str());
    let o1 = format!("/api/v1/outlets/{}", w.o1);
    let o2 = format!("/api/v1/outlets/{}", w.o2);
    let name_of_o1 = app.get(&o1, token).await.json["name"].clone();

    for (path, name, status) in [
        (&o1, json!("Refused by a rule"), 422),
        (&o2, name_of_o1, 409),
        (&o1, json!("Out of range"), 422),
        (&o1, json!("Anything else"), 500),
    ] {
        let res = app.patch(path, token, &json!({ "name": name })).await;
        common::assert_problem(&res, status, path);
        assert_no_db_text(&res.text, &format!("PATCH {path} name {name}"));
    }

    // A lock waited for past `lock_timeout`: as a statement timeout.
    let release = release_after(lock(&pool, "outlets").await, Duration::from_secs(8));
    assert_took_too_long(&app.get(&o1, token).await, &o1);
    release.await.expect("lock released");

    // An export the database refuses to store: its status says so without the database's words.
    let id = start_export(&app, &w).await;
    let export = finished_export(&app, &w.admin.token, id).await;
    assert_eq!(export["status"], "failed", "{export}");
    assert!(export["error"].as_str().is_some_and(|e| !e.is_empty()), "{export}");
    assert_no_db_text(&export.to_string(), "a failed export");

    // The database gone: fixed texts, from /readyz as from any route.
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let gone = sqlx::postgres::PgPoolOptions::new().acquire_timeout(Duration::from_secs(2)).connect_lazy_with(
        sqlx::postgres::PgConnectOptions::new().host("127.0.0.1").port(dead_port).username("postgres"),
    );
    let app = TestApp::spawn_with(gone, test_config("")).await;
    for path in ["/readyz", "/api/v1/me"] {
        let res = app.get(path, token).await;
        common::assert_problem(&res, 503, path);
        assert_no_db_text(&res.text, path);
        for os_text in ["refused", "os error", "127.0.0.1"] {
            assert!(!res.text.contains(os_text), "{path}: {}", res.describe());
        }
    }
}
