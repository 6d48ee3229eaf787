//! Audit exports over HTTP against the demo data: the files open in real readers (openpyxl,
//! Python's zipfile and csv), their figures equal the compliance API, `verify` catches a changed
//! byte and a later review, and scope is enforced. Evidence taken at a check-in is exported with
//! its check-in, the app's client id, the capture claim and the sources the findings used.

use crate::common;

use common::{TestApp, test_config};
use fieldvisit_demo::DemoArgs;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn token(lines: &[String], login: &str) -> String {
    common::demo_token(lines, login)
}

async fn demo_app(pool: PgPool) -> (TestApp, Vec<String>) {
    let lines = fieldvisit_demo::load(
        &pool,
        &DemoArgs { data_dir: root().join("fixtures"), anchor_date: None, reps: 4, weeks: 1 },
    )
    .await
    .expect("demo loads");
    let app = TestApp::spawn_with(pool.clone(), test_config("unused")).await;
    // Visits are derived in the background: wait until no rep-day is left to derive.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let dirty: i64 =
            sqlx::query_scalar("SELECT count(*) FROM rep_day_dirty").fetch_one(&pool).await.expect("dirty count");
        if dirty == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the demo's visits were never derived");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    (app, lines)
}

/// Starts an export and waits for it to finish; returns the finished export.
async fn export(app: &TestApp, token: &str, body: &Value) -> Value {
    let started = app.post("/api/v1/exports", Some(token), body).await;
    assert_eq!(started.status, 202, "{}", started.describe());
    let id = started.json["id"].as_i64().expect("export id");
    assert_eq!(started.header("location"), Some(format!("/api/v1/exports/{id}").as_str()));
    for _ in 0..600 {
        let e = app.get(&format!("/api/v1/exports/{id}"), Some(token)).await;
        assert_eq!(e.status, 200, "{}", e.describe());
        let pct = e.json["progress_pct"].as_f64().expect("progress");
        assert!((0.0..=100.0).contains(&pct), "{pct}");
        match e.json["status"].as_str() {
            Some("done") => return e.json,
            Some("failed") => panic!("export failed: {}", e.describe()),
            _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    panic!("export {id} did not finish within a minute");
}

async fn download(app: &TestApp, token: &str, id: i64, name: &str) -> Vec<u8> {
    let res =
        app.request(Method::GET, &format!("/api/v1/exports/{id}/files/{name}"), Some(token)).send().await.expect("GET");
    assert_eq!(res.status(), 200);
    res.bytes().await.expect("body").to_vec()
}

async fn verify(app: &TestApp, token: &str, query: &str, body: Vec<u8>) -> Value {
    let res = app
        .request(Method::POST, &format!("/api/v1/exports/verify{query}"), Some(token))
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .expect("POST verify");
    let res = common::read(res).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    res.json
}

async fn territory_id(app: &TestApp, token: &str, code: &str) -> i64 {
    let list = app.get("/api/v1/territories?limit=1000", Some(token)).await;
    list.json["items"]
        .as_array()
        .and_then(|a| a.iter().find(|t| t["code"] == code))
        .and_then(|t| t["id"].as_i64())
        .unwrap_or_else(|| panic!("no territory {code}"))
}

/// Reads the workbook and the zipped CSVs with openpyxl and Python's zipfile.
fn column(rows: &[Value], name: &str) -> usize {
    rows[0].as_array().and_then(|h| h.iter().position(|c| c == name)).unwrap_or_else(|| panic!("no column {name}"))
}

/// A cell as a number (openpyxl gives numbers, CSV gives text).
fn num(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn an_export_opens_in_real_readers_matches_the_compliance_api_and_verify_catches_changes(pool: PgPool) {
    let (app, lines) = demo_app(pool).await;
    let admin = token(&lines, "admin");
    let supervisor = token(&lines, "supervisor");
    let bj = territory_id(&app, &admin, "BJ").await;
    let me = app.get("/api/v1/me", Some(&admin)).await;
    assert_eq!(me.status, 200);
    let today = chrono::Utc::now().date_naive();
    let (from, to) = (today - chrono::Duration::days(27), today);
    let body = json!({"scope": {"kind": "territory", "id": bj}, "from": from, "to": to});
    let done = export(&app, &supervisor, &body).await;
    let id = done["id"].as_i64().expect("id");
    let manifest = &done["manifest"];
    let names: Vec<&str> =
        manifest["files"].as_array().expect("files").iter().filter_map(|f| f["name"].as_str()).collect();
    assert_eq!(names, ["audit.xlsx", "audit-csv.zip", "audit.geojson", "audit-summary.pdf"]);
    assert_eq!(manifest["generated_by"]["login"], "supervisor");
    assert_eq!(manifest["metrics_version"], "metrics-2");
    assert_eq!(manifest["params"]["scope"]["id"], bj);

    let xlsx = download(&app, &supervisor, id, "audit.xlsx").await;
    let zip = download(&app, &supervisor, id, "audit-csv.zip").await;
    let geojson = download(&app, &supervisor, id, "audit.geojson").await;
    let pdf = download(&app, &supervisor, id, "audit-summary.pdf").await;
    // Each file is the one the manifest describes.
    for (name, bytes) in
        [("audit.xlsx", &xlsx), ("audit-csv.zip", &zip), ("audit.geojson", &geojson), ("audit-summary.pdf", &pdf)]
    {
        let f = manifest["files"].as_array().and_then(|a| a.iter().find(|f| f["name"] == name)).expect("in manifest");
        assert_eq!(f["bytes"].as_u64(), Some(bytes.len() as u64), "{name}");
        assert_eq!(f["sha256"].as_str(), Some(fieldvisit::domain::export::sha256_hex(bytes).as_str()), "{name}");
    }

    let read = common::read_export(&xlsx, &zip);
    let sheets: Vec<&String> = read["xlsx"].as_object().expect("sheets").keys().collect();
    for s in [
        "Summary",
        "Rep days",
        "Visits",
        "Missed planned",
        "Suspect visits",
        "Reviews",
        "Monthly assessment",
        "Definitions",
    ] {
        assert!(sheets.iter().any(|x| x.as_str() == s), "sheet {s} in {sheets:?}");
    }
    // Figures equal the compliance API for the same scope and period: per rep and in total.
    let api = app.get(&format!("/api/v1/territories/{bj}/compliance?from={from}&to={to}"), Some(&supervisor)).await;
    assert_eq!(api.status, 200, "{}", api.describe());
    for (reader, rows) in [("xlsx", &read["xlsx"]["Summary"]), ("csv", &read["csv"]["summary.csv"])] {
        let rows = rows.as_array().expect("rows");
        let reps = api.json["reps"].as_array().expect("reps");
        assert_eq!(rows.len(), 1 + reps.len() + 1, "{reader}: header, a row per rep, the total");
        for field in [
            "planned",
            "done",
            "missed",
            "plan_compliance_pct",
            "visits",
            "suspect_visits",
            "time_in_market_s",
            "distance_m",
        ] {
            let c = column(rows, field);
            for r in reps {
                let row = rows.iter().find(|x| num(&x[0]) == r["rep_id"].as_f64()).expect("rep row");
                assert_eq!(num(&row[c]), r["totals"][field].as_f64(), "{reader} rep {} {field}", r["login"]);
            }
            let total = rows.last().expect("total row");
            assert_eq!(total[1], "TOTAL");
            assert_eq!(num(&total[c]), api.json["plan"][field].as_f64(), "{reader} total {field}");
        }
    }
    // Every visit of the scope and period, with its evidence.
    let visits = read["xlsx"]["Visits"].as_array().expect("visits");
    assert_eq!((visits.len() - 1) as u64, manifest["data"]["visits"].as_u64().expect("count"));
    assert!(visits.len() > 1, "the demo has visits");
    let suspect = column(visits, "verdict");
    let suspects = visits.iter().skip(1).filter(|r| r[suspect] == "suspect").count();
    assert_eq!(read["xlsx"]["Suspect visits"].as_array().map(|a| a.len() - 1), Some(suspects));
    assert_eq!(
        num(&read["xlsx"]["Summary"].as_array().and_then(|r| r.last()).expect("total")
            [column(&read["xlsx"]["Summary"].as_array().expect("rows").clone(), "suspect_visits")]),
        Some(suspects as f64)
    );
    let missed = read["csv"]["missed_planned.csv"].as_array().expect("missed").len() - 1;
    assert_eq!(Some(missed as f64), api.json["plan"]["missed"].as_f64());
    let geo: Value = serde_json::from_slice(&geojson).expect("GeoJSON parses");
    let kinds =
        |k: &str| geo["features"].as_array().map_or(0, |a| a.iter().filter(|f| f["properties"]["kind"] == k).count());
    assert_eq!(kinds("visit"), visits.len() - 1);
    assert!(kinds("track") > 0, "day tracks");

    // The PDF summary renders (pdftoppm), a page per rep, each with the rep's figures (pdftotext).
    let reps = api.json["reps"].as_array().expect("reps");
    let dir = tempfile::tempdir().expect("temp dir");
    let pdf_path = dir.path().join("summary.pdf");
    std::fs::write(&pdf_path, &pdf).expect("write pdf");
    let rendered = std::process::Command::new("pdftoppm")
        .args(["-png", "-r", "40"])
        .arg(&pdf_path)
        .arg(dir.path().join("page"))
        .status()
        .expect("pdftoppm runs (make test installs poppler-utils)");
    assert!(rendered.success(), "pdftoppm renders the summary");
    let pngs = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter(|e| e.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".png")))
        .count();
    assert_eq!(pngs, reps.len(), "a page per rep");
    for (i, r) in reps.iter().enumerate() {
        let page = (i + 1).to_string();
        let text = std::process::Command::new("pdftotext")
            .args(["-layout", "-f", &page, "-l", &page])
            .arg(&pdf_path)
            .arg("-")
            .output()
            .expect("pdftotext runs");
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains(&format!("({})", r["login"].as_str().expect("login"))), "page {page}: {text}");
        let plan = r["totals"]["plan_compliance_pct"].as_f64().map_or_else(|| "-".to_owned(), |v| format!("{v:.1}%"));
        // The figure is the first word after its label (the chart shares the lines on its right).
        let row = |label: &str, value: &str| {
            text.lines().any(|l| {
                l.trim_start().strip_prefix(label).is_some_and(|rest| rest.split_whitespace().next() == Some(value))
            })
        };
        assert!(row("Plan compliance", &plan), "page {page} shows plan compliance {plan}: {text}");
        assert!(row("Missed", &r["totals"]["missed"].to_string()), "page {page} shows the missed count: {text}");
        assert!(row("Suspect visits", &r["totals"]["suspect_visits"].to_string()), "page {page}: {text}");
    }

    // The monthly assessment: the month holding `to` against the month before, the same figures
    // as the compliance API for that month, as JSON and as a sheet.
    let month = to.format("%Y-%m").to_string();
    let bulletin = app.get(&format!("/api/v1/territories/{bj}/assessment?month={month}"), Some(&supervisor)).await;
    assert_eq!(bulletin.status, 200, "{}", bulletin.describe());
    let (m_from, m_to) = (bulletin.json["from"].as_str().expect("from"), bulletin.json["to"].as_str().expect("to"));
    assert!(m_from.ends_with("-01") && m_from.starts_with(&month), "{m_from}");
    let monthly =
        app.get(&format!("/api/v1/territories/{bj}/compliance?from={m_from}&to={m_to}"), Some(&supervisor)).await;
    let b_reps = bulletin.json["reps"].as_array().expect("reps");
    assert_eq!(b_reps.len(), monthly.json["reps"].as_array().map_or(0, Vec::len));
    let mut last_rank = 0;
    for r in b_reps {
        let api_rep =
            monthly.json["reps"].as_array().and_then(|a| a.iter().find(|x| x["rep_id"] == r["rep_id"])).expect("rep");
        assert_eq!(r["plan_compliance"]["value"], api_rep["totals"]["plan_compliance_pct"], "{r}");
        if let Some(rank) = r["plan_compliance"]["rank"].as_u64() {
            assert!(rank >= last_rank, "ranked best first");
            last_rank = rank;
        }
    }
    for t in bulletin.json["territories"].as_array().expect("territories") {
        let child = monthly.json["children"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["territory_id"] == t["territory_id"]))
            .expect("child");
        assert_eq!(t["coverage"]["value"], child["outlets"]["coverage_pct"], "{t}");
        assert_eq!(t["frequency_compliance"]["value"], child["outlets"]["frequency_compliance_pct"], "{t}");
    }
    let sheet = read["xlsx"]["Monthly assessment"].as_array().expect("assessment sheet");
    let children = bulletin.json["territories"].as_array().map_or(0, Vec::len);
    assert_eq!(sheet.len() - 1, b_reps.len() * 2 + children * 3);
    let r = app.get(&format!("/api/v1/territories/{bj}/assessment?month=2026-13"), Some(&supervisor)).await;
    common::assert_problem(&r, 422, &format!("/api/v1/territories/{bj}/assessment"));
    assert_eq!(r.error_fields(), ["month"]);

    // verify: the file as exported matches and the data is unchanged.
    let v = verify(&app, &supervisor, "", xlsx.clone()).await;
    assert_eq!(v["export_id"], id);
    assert_eq!(v["file_matches"], true, "{v}");
    assert_eq!(v["file"]["matches"], "audit.xlsx");
    assert_eq!(v["data_changed"], false, "{v}");
    // One changed byte and the file matches nothing.
    let mut tampered = zip.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x01;
    let v = verify(&app, &supervisor, "", tampered.clone()).await;
    assert_eq!(v["file_matches"], false, "{v}");
    assert_eq!(v["export_id"], Value::Null);
    let v = verify(&app, &supervisor, &format!("?export_id={id}"), tampered).await;
    assert_eq!(v["file_matches"], false, "{v}");
    assert_eq!(v["data_changed"], false);
    // A review made after the export is a change of the data behind it.
    let visit_id = num(&visits[1][0]).expect("visit id") as i64;
    let review = app
        .post(
            &format!("/api/v1/visits/{visit_id}/reviews"),
            Some(&supervisor),
            &json!({"decision": "rejected", "reason": "not there"}),
        )
        .await;
    assert!(review.status == 200 || review.status == 201, "{}", review.describe());
    let v = verify(&app, &supervisor, "", xlsx.clone()).await;
    assert_eq!(v["file_matches"], true);
    assert_eq!(v["data_changed"], true, "{v}");
    // The rejected visit no longer counts as verified: the bulletin's verified rate moved too.
    assert_eq!(v["changed_parts"], json!(["visits", "reviews", "assessment"]));
    // The same check by hash, as the CLI does for large files.
    let sha = fieldvisit::domain::export::sha256_hex(&xlsx);
    let v = verify(&app, &supervisor, &format!("?sha256={sha}&bytes={}", xlsx.len()), Vec::new()).await;
    assert_eq!((v["file_matches"].clone(), v["data_changed"].clone()), (json!(true), json!(true)));

    // Downloading the files was a read of the reps' location data by someone else.
    let reads = app.get("/api/v1/access-log?limit=1000", Some(&admin)).await;
    let exported: Vec<&Value> =
        reads.json["items"].as_array().expect("items").iter().filter(|e| e["what"] == "export").collect();
    assert!(
        exported.iter().any(|e| e["reader_login"] == "supervisor" && e["detail"]["file"] == "audit.geojson"),
        "{}",
        reads.describe()
    );
    assert_eq!(manifest["rep_ids"].as_array().map(Vec::len), api.json["reps"].as_array().map(Vec::len));

    // The command line says the same, with its exit status (0 only for a match on unchanged data).
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL is set for the tests");
    let dbname: String = sqlx::query_scalar("SELECT current_database()").fetch_one(&app.pool).await.expect("db name");
    let url = common::url_for_database(&base, &dbname);
    let files = tempfile::tempdir().expect("temp dir");
    let cli = |bytes: &[u8]| {
        let path = files.path().join("file");
        std::fs::write(&path, bytes).expect("write");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_fieldvisit"))
            .arg("verify")
            .arg(&path)
            .args(["--org", fieldvisit_demo::BEIJING_SLUG])
            .env("DATABASE_URL", &url)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run the fieldvisit binary");
        let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
        (out.status.success(), report)
    };
    let (ok, report) = cli(&xlsx);
    assert!(!ok, "the data changed since (the review): exit 1");
    assert_eq!((report["file_matches"].clone(), report["data_changed"].clone()), (json!(true), json!(true)));
    let (ok, report) = cli(b"not an export");
    assert!(!ok);
    assert_eq!(report["file_matches"], false);
    // A new export of the same scope and period matches, on unchanged data: exit 0.
    let again = export(
        &app,
        &supervisor,
        &json!({"scope": {"kind": "territory", "id": bj}, "from": from, "to": to, "formats": ["csv"]}),
    )
    .await;
    let fresh = download(&app, &supervisor, again["id"].as_i64().expect("id"), "audit-csv.zip").await;
    let (ok, report) = cli(&fresh);
    assert!(ok, "{report}");
    assert_eq!(report["export_id"], again["id"]);

    // The export is in the audit log.
    let log = app.get("/api/v1/audit-log?limit=100", Some(&admin)).await;
    let object_id = id.to_string();
    let entry = log.json["items"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["action"] == "export.create" && e["object_id"] == object_id.as_str()))
        .unwrap_or_else(|| panic!("export {id} in the audit log: {}", log.describe()));
    assert_eq!(entry["detail"]["data_sha256"], manifest["data"]["sha256"]);
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn exports_stay_inside_the_callers_scope_and_bad_requests_are_named(pool: PgPool) {
    let (app, lines) = demo_app(pool).await;
    let admin = token(&lines, "admin");
    let manager = token(&lines, "manager-d1");
    let rep = token(&lines, "rep1");
    let bj = territory_id(&app, &admin, "BJ").await;
    let me = app.get("/api/v1/me", Some(&manager)).await;
    let district = me.json["user"]["territory_id"].as_i64().expect("manager's territory");
    let today = chrono::Utc::now().date_naive();
    let period = |scope: Value| json!({"scope": scope, "from": today - chrono::Duration::days(6), "to": today, "formats": ["csv"]});

    // A district manager cannot export the city, nor read the city's export.
    let r = app.post("/api/v1/exports", Some(&manager), &period(json!({"kind": "territory", "id": bj}))).await;
    common::assert_problem(&r, 403, "/api/v1/exports");
    let city = export(&app, &admin, &period(json!({"kind": "territory", "id": bj}))).await;
    let r = app.get(&format!("/api/v1/exports/{}", city["id"]), Some(&manager)).await;
    assert_eq!(r.status, 403, "{}", r.describe());
    let r = app
        .request(Method::GET, &format!("/api/v1/exports/{}/files/audit-csv.zip", city["id"]), Some(&manager))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 403);
    // Their own district they can.
    let own = export(&app, &manager, &period(json!({"kind": "territory", "id": district}))).await;
    assert_eq!(own["manifest"]["files"].as_array().map(Vec::len), Some(1));

    // A rep exports their own data only.
    let rep_me = app.get("/api/v1/me", Some(&rep)).await;
    let rep_id = rep_me.json["user"]["id"].as_i64().expect("rep id");
    export(&app, &rep, &period(json!({"kind": "rep", "id": rep_id}))).await;
    let others = app.get("/api/v1/users?limit=1000", Some(&admin)).await;
    let other = others.json["items"]
        .as_array()
        .and_then(|a| a.iter().find(|u| u["role"] == "rep" && u["id"] != rep_id))
        .and_then(|u| u["id"].as_i64())
        .expect("another rep");
    let r = app.post("/api/v1/exports", Some(&rep), &period(json!({"kind": "rep", "id": other}))).await;
    common::assert_problem(&r, 403, "/api/v1/exports");
    let r = app.post("/api/v1/exports", Some(&rep), &period(json!({"kind": "territory", "id": bj}))).await;
    common::assert_problem(&r, 403, "/api/v1/exports");

    // Every problem of a request is named.
    let r = app
        .post(
            "/api/v1/exports",
            Some(&admin),
            &json!({"scope": {"kind": "territory", "id": bj}, "from": "2026-01-10", "to": "2026-01-01", "formats": ["csv", "csv"]}),
        )
        .await;
    common::assert_problem(&r, 422, "/api/v1/exports");
    assert_eq!(r.error_fields(), ["to", "formats[1]"]);
    let r = app
        .post(
            "/api/v1/exports",
            Some(&admin),
            &json!({"scope": {"kind": "planet", "id": 1}, "from": "2026-01-01", "to": "2026-01-02"}),
        )
        .await;
    assert!(r.status == 400 || r.status == 422, "{}", r.describe());
    assert!(r.content_type().starts_with("application/problem+json"));
    let r = app.get("/api/v1/exports/999999", Some(&admin)).await;
    common::assert_problem(&r, 404, "/api/v1/exports/999999");
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn an_export_whose_server_stopped_is_marked_failed_not_left_running(pool: PgPool) {
    let w = common::World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let params: fieldvisit::domain::export::ExportParams = serde_json::from_value(
        json!({"scope": {"kind": "rep", "id": w.rep.id}, "from": common::PING_DAY, "to": common::PING_DAY}),
    )
    .expect("params");
    // Two exports a server was running: one silent for 11 minutes (its server stopped), one
    // whose heartbeat came a minute ago.
    let mut ids = Vec::new();
    for silent_min in [11, 1] {
        let id = fieldvisit::db::exports::create(&pool, w.org_a, Some(w.manager.id), &params).await.expect("export");
        sqlx::query(
            "UPDATE exports SET status = 'running', heartbeat_at = now() - make_interval(mins => $2) WHERE id = $1",
        )
        .bind(id)
        .bind(silent_min)
        .execute(&pool)
        .await
        .expect("running");
        ids.push(id);
    }
    let failed = fieldvisit::db::exports::fail_silent(&pool, fieldvisit::export::SILENT_S).await.expect("sweep");
    assert_eq!(failed, vec![(w.org_a, ids[0])]);
    let stale = app.get(&format!("/api/v1/exports/{}", ids[0]), Some(&w.manager.token)).await;
    assert_eq!(stale.json["status"], "failed", "{}", stale.describe());
    assert!(stale.json["error"].as_str().is_some_and(|e| e.starts_with("interrupted")), "{}", stale.describe());
    let alive = app.get(&format!("/api/v1/exports/{}", ids[1]), Some(&w.manager.token)).await;
    assert_eq!(alive.json["status"], "running", "{}", alive.describe());
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn check_in_evidence_is_exported_with_its_check_in_claim_and_sources(pool: PgPool) {
    use crate::checkin_evidence::{AT_O1, check_in, checklist, claim, prepare, put_photo};
    let w = common::World::seed(&pool).await;
    prepare(&pool, &w).await;
    let app = TestApp::spawn(pool.clone()).await;
    let token = w.device.token.as_str();
    let list = checklist(&app, &w).await;
    let (t0, day) = common::ten_oclock(&pool, w.org_a, 1).await;
    let checkin = check_in(&app, token, "ci-export-0001", w.o1, t0).await;
    let at = t0 + chrono::Duration::minutes(3);
    let path = "/api/v1/checkins/ci-export-0001/photos/ph-export-0001";
    let photo = put_photo(&app, path, token, crate::photos::picture(71, 90), &claim(at, AT_O1)).await;
    assert_eq!(photo.status, 201, "{}", photo.describe());
    let path = "/api/v1/checkins/ci-export-0001/answers/an-export-0001";
    let body = json!({"checklist_id": list, "answers": {"display_ok": false}});
    let outcome = app.put(path, Some(token), &body).await;
    assert_eq!(outcome.status, 201, "{}", outcome.describe());

    let body = json!({"scope": {"kind": "rep", "id": w.rep.id}, "from": day, "to": day, "formats": ["xlsx", "csv"]});
    let done = export(&app, &w.manager.token, &body).await;
    let id = done["id"].as_i64().expect("export id");
    let xlsx = download(&app, &w.manager.token, id, "audit.xlsx").await;
    let zip = download(&app, &w.manager.token, id, "audit-csv.zip").await;
    let read = common::read_export(&xlsx, &zip);
    for (reader, rows) in [("xlsx", &read["xlsx"]["Photos"]), ("csv", &read["csv"]["photos.csv"])] {
        let rows = rows.as_array().expect("photo rows");
        assert_eq!(rows.len(), 2, "{reader}: header and the check-in's photo: {rows:?}");
        let row = &rows[1];
        let cell = |name: &str| &row[column(rows, name)];
        assert_eq!(num(cell("photo_id")), photo.json["id"].as_f64(), "{reader}");
        assert_eq!(num(cell("checkin_id")), checkin["id"].as_f64(), "{reader}");
        assert_eq!(cell("client_id"), "ph-export-0001", "{reader}");
        let captured = cell("capture_at").as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        assert_eq!(captured, Some(at.into()), "{reader}: {row:?}");
        assert_eq!((num(cell("capture_lat")), num(cell("capture_lon"))), (Some(AT_O1.0), Some(AT_O1.1)), "{reader}");
        assert_eq!(num(cell("capture_accuracy_m")), Some(15.0), "{reader}");
        assert_eq!((cell("time_source"), cell("position_source")), (&json!("app"), &json!("app")), "{reader}");
        assert_eq!(cell("verdict"), "confirms", "{reader}");
    }
    for (reader, rows) in [("xlsx", &read["xlsx"]["Checklist answers"]), ("csv", &read["csv"]["checklist_answers.csv"])]
    {
        let rows = rows.as_array().expect("answer rows");
        assert_eq!(rows.len(), 2, "{reader}: header and the check-in's answers: {rows:?}");
        let row = &rows[1];
        assert_eq!(num(&row[column(rows, "outcome_id")]), outcome.json["id"].as_f64(), "{reader}");
        assert_eq!(num(&row[column(rows, "checkin_id")]), checkin["id"].as_f64(), "{reader}");
        assert_eq!(row[column(rows, "client_id")], "an-export-0001", "{reader}");
        assert_eq!(row[column(rows, "problems")], "display_ok", "{reader}");
    }
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn the_pdf_summary_prints_the_reps_chinese_names_with_a_small_embedded_font_subset(pool: PgPool) {
    let (app, lines) = demo_app(pool).await;
    let admin = token(&lines, "admin");
    let bj = territory_id(&app, &admin, "BJ").await;
    let today = chrono::Utc::now().date_naive();
    let body = json!({"scope": {"kind": "territory", "id": bj}, "from": today - chrono::Duration::days(6), "to": today,
        "formats": ["pdf"]});
    let done = export(&app, &admin, &body).await;
    let pdf = download(&app, &admin, done["id"].as_i64().expect("id"), "audit-summary.pdf").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("summary.pdf");
    std::fs::write(&path, &pdf).expect("write pdf");
    let out = std::process::Command::new("pdftotext")
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext runs (scripts/test-tools.sh installs poppler-utils)");
    assert!(out.status.success(), "pdftotext reads the summary: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let users = app.get("/api/v1/users?limit=1000", Some(&admin)).await;
    let reps: Vec<&str> = users.json["items"]
        .as_array()
        .expect("users")
        .iter()
        .filter(|u| u["role"] == "rep" && u["active"] == true)
        .filter_map(|u| u["name"].as_str())
        .collect();
    assert_eq!(reps.len(), 4, "the demo's reps: {}", users.describe());
    for name in &reps {
        assert!(!name.is_ascii(), "the demo's rep names are Chinese: {name}");
        assert!(text.contains(&format!("{name} (")), "the summary names {name} as written: {text}");
    }
    // Only the glyphs used are embedded (the font file is about 19 MB): a subset of a CID font.
    let raw = String::from_utf8_lossy(&pdf);
    assert!(raw.contains("/Subtype /Type0") && raw.contains("/ToUnicode"), "a Type 0 font with a ToUnicode map");
    assert!(raw.contains("/FontFile3") || raw.contains("/FontFile2"), "the font is embedded");
    println!("PDF summary of {} reps: {} bytes", reps.len(), pdf.len());
    assert!(pdf.len() < 150_000, "the summary stays small: {} bytes", pdf.len());
}
