//! Load time of the web apps on a phone network (issue 24): the reps' app and the managers' map,
//! measured side by side in the same run by `benches/app_load.mjs` (Debian's chromium through
//! `playwright-core`, the "Slow 3G" profile of Chrome's developer tools). A scratch database (`fieldvisit_bench_app`)
//! gets the demo again each run and a plan of 12 stops today for `rep1`; the release server
//! binary serves the built `map-ui/dist` (run `scripts/map-ui.sh` first).
//!
//! `DATABASE_URL=$(scripts/db.sh url) cargo bench --bench app_load`

mod common;

use common::{start_server, url_for_database};
use fieldvisit_demo::DemoArgs;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

const DB: &str = "fieldvisit_bench_app";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The token the demo printed for `login` (lines `org role login token`).
fn token(lines: &[String], login: &str) -> String {
    lines
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|w| w.len() == 4 && w[2] == login)
        .map_or_else(|| panic!("no demo token for {login}"), |w| w[3].to_owned())
}

async fn call(client: &reqwest::Client, req: reqwest::RequestBuilder) -> Value {
    let res = client.execute(req.build().expect("request")).await.expect("HTTP");
    let status = res.status();
    let body: Value = res.json().await.expect("JSON");
    assert!(status.is_success(), "{status}: {body}");
    body
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dist = root().join("map-ui/dist");
    assert!(dist.join("app/index.html").is_file(), "map-ui is not built: run scripts/map-ui.sh");
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let admin = fieldvisit::db::connect(&base, 2).await.expect("connect to DATABASE_URL");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE)")).execute(&admin).await.expect("drop");
    sqlx::query(&format!("CREATE DATABASE {DB}")).execute(&admin).await.expect("create");
    admin.close().await;
    let url = url_for_database(&base, DB);
    let pool = fieldvisit::db::connect(&url, 4).await.expect("connect to the scratch database");
    fieldvisit::db::migrate(&pool).await.expect("migrate");
    let lines = fieldvisit_demo::load(
        &pool,
        &DemoArgs { data_dir: root().join("fixtures"), anchor_date: None, reps: 20, weeks: 5 },
    )
    .await
    .expect("demo loads");

    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let dist_dir = dist.to_string_lossy().into_owned();
    let _server = start_server(&url, port, "app_load", &[("FV_MAP_UI_DIR", &dist_dir)]);
    let http = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    for _ in 0..200 {
        if client.get(format!("{http}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let admin_token = token(&lines, "admin");
    let api = |path: &str| format!("{http}/api/v1{path}");

    // Today's plan for rep1: the 12 stops the server proposes.
    let me = call(&client, client.get(api("/me")).bearer_auth(&admin_token)).await;
    let users = call(&client, client.get(api("/users?limit=500")).bearer_auth(&admin_token)).await;
    let rep = users["items"].as_array().expect("users").iter().find(|u| u["login"] == "rep1").expect("rep1").clone();
    let rep_id = rep["id"].as_i64().expect("id");
    let proposal =
        call(&client, client.get(api(&format!("/reps/{rep_id}/plan-proposal"))).bearer_auth(&admin_token)).await;
    let plan = json!({"rep_id": rep_id, "name": "Bench day", "valid_from": proposal["date"], "valid_to": proposal["date"],
                      "items": proposal["items"]});
    call(&client, client.post(api("/plans")).bearer_auth(&admin_token).json(&plan)).await;
    let devices = call(&client, client.get(api("/devices?limit=500")).bearer_auth(&admin_token)).await;
    let device =
        devices["items"].as_array().expect("devices").iter().find(|d| d["rep_id"] == rep_id).expect("a device");
    let path = format!("/devices/{}/enrolments", device["id"]);
    let enrolment =
        call(&client, client.post(api(&path)).bearer_auth(&admin_token).json(&json!({"trackers": false}))).await;
    let code = enrolment["app"]["text"].as_str().and_then(|l| l.split_once("#enrol=")).expect("link").1.to_owned();
    println!("org {}: {} planned stops for rep1", me["org"]["slug"], proposal["items"].as_array().map_or(0, Vec::len));

    let out = std::process::Command::new("node")
        .arg(root().join("benches/app_load.mjs"))
        .current_dir(root().join("map-ui"))
        .env("FV_BASE_URL", &http)
        .env("FV_ENROL_URL", format!("{http}/app/#enrol={code}"))
        .env("FV_MANAGER_TOKEN", token(&lines, "manager-d1"))
        .env("FV_DIST", &dist)
        .status()
        .expect("node runs");
    assert!(out.success(), "the browser bench failed");
}
