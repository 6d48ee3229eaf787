//! Operational surface: health, readiness, metrics, `OpenAPI`, offline docs, the audit trail of a
//! change, and the real binary serving and shutting down cleanly on SIGTERM.

use crate::common;

use common::{IN_T1, TestApp, World};
use fieldvisit::domain::audit::AuditAction;
use reqwest::Method;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn health_and_readiness(pool: sqlx::PgPool) {
    let app = TestApp::spawn(pool).await;
    let res = app.get("/healthz", None).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!(res.json["status"], "ok");
    let res = app.get("/readyz", None).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!(res.json["status"], "ready");
}

/// The sample lines of one metric family.
fn samples<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' '])).collect()
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn metrics_count_requests_per_route_template(pool: sqlx::PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    assert_eq!(app.get("/api/v1/outlets", Some(&w.admin.token)).await.status, 200);
    assert_eq!(app.get("/api/v1/outlets", Some(&w.admin.token)).await.status, 200);
    assert_eq!(app.get("/api/v1/outlets", None).await.status, 401);
    assert_eq!(app.get(&format!("/api/v1/outlets/{}", w.o1), Some(&w.admin.token)).await.status, 200);
    assert_eq!(app.get("/api/v1/no-such-route/12345", None).await.status, 404);

    let res = app.get("/metrics", None).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert!(res.content_type().starts_with("text/plain"), "{}", res.content_type());
    let text = &res.text;
    let requests = samples(text, "fieldvisit_http_requests_total");
    let find = |route: &str, status: &str| {
        requests
            .iter()
            .find(|l| {
                l.contains("method=\"GET\"")
                    && l.contains(&format!("route=\"{route}\""))
                    && l.contains(&format!("status=\"{status}\""))
            })
            .map(|l| l.rsplit(' ').next().unwrap_or_default().to_owned())
    };
    assert_eq!(find("/api/v1/outlets", "200").as_deref(), Some("2"), "{requests:#?}");
    assert_eq!(find("/api/v1/outlets", "401").as_deref(), Some("1"), "{requests:#?}");
    assert_eq!(
        find("/api/v1/outlets/{id}", "200").as_deref(),
        Some("1"),
        "route template, not the raw path: {requests:#?}"
    );
    assert!(!text.contains("12345"), "unmatched raw paths must not become labels:\n{text}");
    assert!(!samples(text, "fieldvisit_http_request_duration_seconds_bucket").is_empty(), "latency histogram:\n{text}");
    for gauge in ["fieldvisit_db_pool_connections", "fieldvisit_db_pool_idle_connections"] {
        let lines = samples(text, gauge);
        assert_eq!(lines.len(), 1, "{gauge}:\n{text}");
        let value: f64 = lines[0].rsplit(' ').next().and_then(|v| v.parse().ok()).expect("gauge value");
        assert!(value >= 0.0, "{gauge} = {value}");
    }
    let open: f64 = samples(text, "fieldvisit_db_pool_connections")[0]
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("value");
    assert!(open >= 1.0, "the pool has served requests, so it holds a connection: {open}");
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn openapi_document_lists_the_api(pool: sqlx::PgPool) {
    let app = TestApp::spawn(pool).await;
    let res = app.get("/openapi.json", None).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert!(res.content_type().starts_with("application/json"), "{}", res.content_type());
    let doc = &res.json;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    for (path, method) in [
        ("/api/v1/outlets", "get"),
        ("/api/v1/outlets", "post"),
        ("/api/v1/outlets/{id}", "patch"),
        ("/api/v1/territories", "post"),
        ("/api/v1/tier-policies/{tier}", "put"),
        ("/api/v1/users/{id}/token", "delete"),
        ("/api/v1/devices", "post"),
        ("/api/v1/reps/{id}/pings", "get"),
        ("/api/v1/audit-log", "get"),
        ("/api/v1/me", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from {:?}",
            paths.keys()
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object(), "bearer security scheme");
    assert!(doc["components"]["schemas"]["Problem"].is_object(), "Problem schema");
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn docs_page_is_served_offline(pool: sqlx::PgPool) {
    let app = TestApp::spawn(pool).await;
    let res = app.get("/docs/", None).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert!(res.content_type().starts_with("text/html"), "{}", res.content_type());
    assert!(res.text.to_lowercase().contains("swagger"), "{}", res.describe());
    for external in ["http://", "https://", "//unpkg", "cdn"] {
        let refs: Vec<&str> =
            res.text.lines().filter(|l| (l.contains("src=") || l.contains("href=")) && l.contains(external)).collect();
        assert!(refs.is_empty(), "the docs page must not load {external} assets: {refs:?}");
    }
    // The page's assets come from this server.
    for asset in ["swagger-ui.css", "swagger-ui-bundle.js", "swagger-initializer.js"] {
        let res = app.get(&format!("/docs/{asset}"), None).await;
        assert_eq!(res.status, 200, "/docs/{asset}: {}", res.describe());
        assert!(res.text.len() > 100, "/docs/{asset} is empty");
    }
    let init = app.get("/docs/swagger-initializer.js", None).await;
    assert!(init.text.contains("/openapi.json"), "the docs page loads our OpenAPI document: {}", init.text);
    // The landing page links the docs (no map UI built in the tests).
    let res = app.get("/", None).await;
    assert_eq!(res.status, 200);
    assert!(res.content_type().starts_with("text/html") && res.text.contains("/docs/"), "{}", res.describe());
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn audit_log_records_outlet_creation_with_request_id(pool: sqlx::PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let body = json!({"code": "AUD-1", "name": "Audited", "channel_type": "franchise_store", "tier": "C",
                      "lat": IN_T1.0, "lon": IN_T1.1});

    // With a request id of the client's choosing: ours is still generated (the response's), the
    // client's is kept apart.
    let res = app
        .send(
            app.request(Method::POST, "/api/v1/outlets", Some(&w.manager.token))
                .header("x-request-id", "audit-req-1")
                .json(&body),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.describe());
    let first = res.json["id"].as_i64().expect("id");
    let ours_first = res.header("x-request-id").expect("x-request-id").to_owned();
    assert!(uuid::Uuid::parse_str(&ours_first).is_ok(), "our id is a UUID, not the client's: {ours_first}");
    // ... and with one the server assigns.
    let mut second_body = body.clone();
    second_body["code"] = json!("AUD-2");
    let res = app.post("/api/v1/outlets", Some(&w.admin.token), &second_body).await;
    assert_eq!(res.status, 201, "{}", res.describe());
    let second = res.json["id"].as_i64().expect("id");
    let assigned = res.header("x-request-id").expect("x-request-id").to_owned();

    // A rejected creation leaves no entry.
    let res = app.post("/api/v1/outlets", Some(&w.admin.token), &second_body).await;
    assert_eq!(res.status, 409, "{}", res.describe());

    let log = app.get("/api/v1/audit-log", Some(&w.admin.token)).await;
    assert_eq!(log.status, 200, "{}", log.describe());
    let entries = log.json["items"].as_array().cloned().unwrap_or_default();
    let creates: Vec<_> = entries.iter().filter(|e| e["action"] == "outlet.create").collect();
    assert_eq!(creates.len(), 2, "{entries:#?}");
    let entry = |id: i64| {
        creates
            .iter()
            .find(|e| e["object_id"] == json!(id.to_string()))
            .unwrap_or_else(|| panic!("no entry for outlet {id}: {creates:#?}"))
    };
    let e1 = entry(first);
    assert_eq!(e1["request_id"].as_str(), Some(ours_first.as_str()));
    assert_eq!(e1["client_request_id"], "audit-req-1");
    assert_eq!(e1["actor_user_id"].as_i64(), Some(w.manager.id));
    assert_eq!(e1["object_type"], "outlet");
    let e2 = entry(second);
    assert_eq!(e2["request_id"].as_str(), Some(assigned.as_str()));
    assert_eq!(e2["client_request_id"], Value::Null);
    assert_eq!(e2["actor_user_id"].as_i64(), Some(w.admin.id));
    // Newest first.
    let pos = |id: i64| {
        entries.iter().position(|e| e["object_id"] == json!(id.to_string()) && e["action"] == "outlet.create")
    };
    assert!(pos(second) < pos(first), "the audit log lists the newest first");
}

/// A client's `x-request-id` that is too long (10 KB) or holds a control character is neither our
/// id nor stored as the client's; a problem body names our id, never the client's.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn unfit_client_request_ids_are_dropped(pool: sqlx::PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let long = "r".repeat(10 * 1024);
    for (code, client_id) in [("RID-LONG", long.as_str()), ("RID-TAB", "evil\tid"), ("RID-SPACE", "two words")] {
        let body = json!({"code": code, "name": "Audited", "channel_type": "franchise_store", "tier": "C",
                          "lat": IN_T1.0, "lon": IN_T1.1});
        let rb = app.request(Method::POST, "/api/v1/outlets", Some(&w.admin.token)).header("x-request-id", client_id);
        let res = app.send(rb.json(&body)).await;
        assert_eq!(res.status, 201, "{}", res.describe());
        let ours = res.header("x-request-id").expect("x-request-id").to_owned();
        assert!(uuid::Uuid::parse_str(&ours).is_ok(), "{code}: ours, not the client's: {ours:.60}");
        let log = app.get("/api/v1/audit-log?limit=5", Some(&w.admin.token)).await;
        let entry = log.json["items"]
            .as_array()
            .and_then(|a| a.iter().find(|e| e["action"] == "outlet.create" && e["detail"]["code"] == code))
            .cloned()
            .unwrap_or_else(|| panic!("no entry for {code}: {}", log.describe()));
        assert_eq!(entry["request_id"].as_str(), Some(ours.as_str()), "{code}");
        assert_eq!(entry["client_request_id"], Value::Null, "{code}: an unfit client id is not stored");
    }
    // A problem answer carries our id in the header and body, whatever the client sent.
    let rb = app.request(Method::GET, "/api/v1/outlets/999999", Some(&w.admin.token)).header("x-request-id", "mine-1");
    let res = app.send(rb).await;
    common::assert_problem(&res, 404, "/api/v1/outlets/999999");
    assert_ne!(res.json["request_id"], "mine-1");
    assert!(res.json["request_id"].as_str().is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()), "{}", res.describe());
}

/// A territory-scoped auditor or admin reads only the audit entries about objects within their
/// territory: not another territory's outlets, users or devices, nor entries about the org as a
/// whole; the org-wide admin reads them all.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_scoped_reader_sees_only_their_territorys_audit_entries(pool: sqlx::PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let outlet = |code: &str, (lat, lon): (f64, f64)| json!({"code": code, "name": code, "channel_type": "franchise_store", "tier": "C", "lat": lat, "lon": lon});
    for (code, at) in [("SCOPE-T1", IN_T1), ("SCOPE-T2", common::IN_T2)] {
        let res = app.post("/api/v1/outlets", Some(&w.admin.token), &outlet(code, at)).await;
        assert_eq!(res.status, 201, "{}", res.describe());
    }
    // A user and a device of T2 (new tokens: `user.token.issue`, `device.rotate`).
    let res = app.post(&format!("/api/v1/users/{}/token", w.rep2.id), Some(&w.admin.token), &json!({})).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let res =
        app.post(&format!("/api/v1/devices/{}/credentials", w.device2.id), Some(&w.admin.token), &json!({})).await;
    assert_eq!(res.status, 200, "{}", res.describe());

    let seen = |res: &common::Res| -> Vec<String> {
        res.json["items"]
            .as_array()
            .map(|a| a.iter().map(|e| format!("{} {}", e["action"].as_str().unwrap_or("?"), e["object_id"])).collect())
            .unwrap_or_default()
    };
    let all = app.get("/api/v1/audit-log?limit=1000", Some(&w.admin.token)).await;
    assert_eq!(all.status, 200, "{}", all.describe());
    let all = seen(&all);
    let about = |needle: &str| all.iter().filter(|e| e.contains(needle)).count();
    assert_eq!(about("outlet.create"), 2, "{all:#?}");
    assert_eq!(about("seed.org-a"), 1, "the org-wide admin reads org-level entries: {all:#?}");
    assert_eq!((about("user.token.issue"), about("device.rotate")), (1, 1), "{all:#?}");

    for reader in [&w.auditor, &w.admin_t1] {
        let res = app.get("/api/v1/audit-log?limit=1000", Some(&reader.token)).await;
        assert_eq!(res.status, 200, "{}", res.describe());
        let items = res.json["items"].as_array().cloned().unwrap_or_default();
        let creates: Vec<&str> = items
            .iter()
            .filter(|e| e["action"] == "outlet.create")
            .filter_map(|e| e["detail"]["code"].as_str())
            .collect();
        assert_eq!(creates, ["SCOPE-T1"], "{}: only T1's outlet: {:#?}", reader.login, seen(&res));
        let leaks: Vec<String> = seen(&res)
            .into_iter()
            .filter(|e| e.contains("seed.org-a") || e.starts_with("user.token.issue") || e.starts_with("device.rotate"))
            .collect();
        assert!(leaks.is_empty(), "{} reads no T2 or org-level entry: {leaks:#?}", reader.login);
    }
}

/// Entries written before issue 23 keep their old action names (the log is append-only): the log
/// shows each under its new name, beside the entries written since with that name, and a reader
/// selecting by action finds both spellings. A name no action has is an internal error, not a panic.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn audit_log_reads_old_action_names_as_the_new_ones(pool: sqlx::PgPool) {
    let w = World::seed(&pool).await;
    // Rows as the server wrote them before the rename (the trigger refuses only updates and deletes).
    // And one this version does not know (written by another version): shown as it is, not a 500.
    for (old, marker) in [
        ("create_plan", "old-create"),
        ("review_visit", "old-review"),
        ("export", "old-export"),
        ("shelf.audit", "unknown-action"),
    ] {
        sqlx::query(
            "INSERT INTO audit_log (org_id, actor_user_id, action, object_type, object_id, detail)
             VALUES ($1, $2, $3, 'legacy', $4, '{}')",
        )
        .bind(w.org_a)
        .bind(w.manager.id)
        .bind(old)
        .bind(marker)
        .execute(&pool)
        .await
        .expect("insert an entry with an old name");
    }
    // And one written now under the new name.
    let entry = fieldvisit::db::audit::NewEntry {
        actor_user_id: Some(w.manager.id),
        actor_device_id: None,
        action: AuditAction::PlanCreate,
        object_type: "plan",
        object_id: Some("new-create".into()),
        request_id: None,
        detail: json!({}),
    };
    fieldvisit::db::audit::record(&pool, w.org_a, entry).await.expect("record");
    let app = TestApp::spawn(pool.clone()).await;

    let log = app.get("/api/v1/audit-log?limit=1000", Some(&w.admin.token)).await;
    assert_eq!(log.status, 200, "{}", log.describe());
    let entries = log.json["items"].as_array().cloned().unwrap_or_default();
    let action_of = |marker: &str| {
        entries
            .iter()
            .find(|e| e["object_id"] == marker)
            .map_or_else(|| panic!("no entry {marker}: {entries:#?}"), |e| e["action"].clone())
    };
    assert_eq!(action_of("old-create"), "plan.create");
    assert_eq!(action_of("old-review"), "visit.review");
    assert_eq!(action_of("old-export"), "export.create");
    assert_eq!(action_of("new-create"), "plan.create");
    assert_eq!(action_of("unknown-action"), "shelf.audit");
    assert!(entries.iter().all(|e| e["action"].as_str().is_some_and(|a| a.contains('.'))), "{entries:#?}");

    // The stored rows are as written; selecting by an action matches both of its spellings.
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE object_id IN ('old-create', 'new-create') ORDER BY id")
            .fetch_all(&pool)
            .await
            .expect("stored");
    assert_eq!(stored, ["create_plan", "plan.create"]);
    let found: Vec<String> =
        sqlx::query_scalar("SELECT object_id FROM audit_log WHERE org_id = $1 AND action = ANY($2) ORDER BY id")
            .bind(w.org_a)
            .bind(AuditAction::PlanCreate.spellings())
            .fetch_all(&pool)
            .await
            .expect("by action");
    assert_eq!(found, ["old-create", "new-create"]);

    // Text that names no action (written by another version) is shown as it is, never a 500.
    sqlx::query("INSERT INTO audit_log (org_id, action, object_type) VALUES ($1, 'forged', 'legacy')")
        .bind(w.org_a)
        .execute(&pool)
        .await
        .expect("insert");
    let log = app.get("/api/v1/audit-log", Some(&w.admin.token)).await;
    assert_eq!(log.status, 200, "{}", log.describe());
    assert_eq!(log.json["items"][0]["action"], "forged");
}

/// Kills the child on drop, so a failing assertion never leaves a server running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn url_for_database_replaces_only_the_name() {
    assert_eq!(
        common::url_for_database("postgres://u@localhost:5432/fieldvisit?host=/tmp/x", "t_1"),
        "postgres://u@localhost:5432/t_1?host=/tmp/x"
    );
    assert_eq!(common::url_for_database("postgres://u:p@h/db", "other"), "postgres://u:p@h/other");
    assert_eq!(common::url_for_database("postgres://h", "other"), "postgres://h/other");
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn real_binary_serves_and_stops_on_sigterm(pool: sqlx::PgPool) {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL is set for the tests");
    let dbname: String = sqlx::query_scalar("SELECT current_database()").fetch_one(&pool).await.expect("db name");
    let url = common::url_for_database(&base, &dbname);
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let log = std::env::temp_dir().join(format!("fieldvisit-ops-{dbname}.log"));
    let log_file = std::fs::File::create(&log).expect("log file");

    let child = Command::new(env!("CARGO_BIN_EXE_fieldvisit"))
        .arg("serve")
        .env("DATABASE_URL", &url)
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("FV_MAP_UI_DIR", "/nonexistent/fieldvisit-test-map-ui")
        .env("FV_SHUTDOWN_GRACE_S", "5")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("log file"))
        .stderr(log_file)
        .spawn()
        .expect("start the fieldvisit binary");
    let mut server = Running(child);
    let pid = server.0.id();

    let client = common::client();
    let readyz = format!("http://127.0.0.1:{port}/readyz");
    let deadline = Instant::now() + Duration::from_secs(60);
    let ready = loop {
        if let Some(status) = server.0.try_wait().expect("poll child") {
            panic!("the server exited early with {status}; log:\n{}", common::log_tail(&log));
        }
        if let Ok(res) = client.get(&readyz).timeout(Duration::from_secs(5)).send().await {
            break res.status().as_u16();
        }
        assert!(Instant::now() < deadline, "no answer on {readyz} within 60 s; log:\n{}", common::log_tail(&log));
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ready, 200, "/readyz of the binary; log:\n{}", common::log_tail(&log));
    let res =
        common::read(client.get(format!("http://127.0.0.1:{port}/api/v1/outlets")).send().await.expect("request"))
            .await;
    common::assert_problem(&res, 401, "/api/v1/outlets");

    let killed = Command::new("kill").arg("-TERM").arg(pid.to_string()).status().expect("run kill");
    assert!(killed.success(), "kill -TERM {pid} failed");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = server.0.try_wait().expect("poll child") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not exit within 30 s of SIGTERM; log:\n{}",
            common::log_tail(&log)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM: {status}; log:\n{}", common::log_tail(&log));
    let _ = std::fs::remove_file(&log);
}

/// Issue 25, item 7: any string a client sends as its HTTP method used to become a metrics label
/// (50 requests, 850 series); unknown methods now count as `other`. With `FV_METRICS_TOKEN` set,
/// `/metrics` answers only that bearer token.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn metrics_labels_stay_bounded_and_the_token_guards_them(pool: sqlx::PgPool) {
    let open = TestApp::spawn(pool.clone()).await;
    for i in 0..20 {
        let method = Method::from_bytes(format!("BOGUS{i}").as_bytes()).expect("method");
        let _ = open.client.request(method, open.url("/api/v1/me")).send().await.expect("sent");
    }
    let text = open.get("/metrics", None).await.text;
    assert!(!text.contains("BOGUS"), "a client's method became a label");
    assert!(text.contains("method=\"other\""), "unknown methods are counted as other");

    let config =
        fieldvisit::config::Config { metrics_token: Some("scrape-secret-1".into()), ..common::test_config("") };
    let guarded = TestApp::spawn_with(pool, config).await;
    let res = guarded.get("/metrics", None).await;
    common::assert_problem(&res, 401, "/metrics");
    assert_eq!(guarded.get("/metrics", Some("wrong-token")).await.status, 401);
    let res = guarded.get("/metrics", Some("scrape-secret-1")).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert!(res.text.contains("http_requests_total"));
}
