//! The demo team against its ground truth (issue 26): a small run of the same simulator the demo
//! loads (`make run` loads 20 reps over five weeks; here 4 reps over one week, which still holds
//! every kind of event) goes through ingest, derivation and the app's use cases, and what the
//! pipeline made of it is compared with what the simulator says really happened: the stops found
//! as visits at the right outlet, skipped stops and drive-bys not visits, every visit of the
//! spoofing rep suspect, the reused storefront photo found, the unconfirmed claim in the
//! supervisor's list.

use crate::common::{self, TestApp};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use fieldvisit_demo::sim::{self, Params, Simulation, Truth};
use fieldvisit_demo::{BEIJING_SLUG, DemoArgs, team};
use sqlx::PgPool;
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// A derived visit as the test reads it back.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Visit {
    rep_id: i64,
    outlet_id: i64,
    rep_day: NaiveDate,
    arrival: DateTime<Utc>,
    departure: DateTime<Utc>,
    verdict: String,
}

/// The demo (both orgs) with `reps` reps over `weeks` weeks ending yesterday, the simulation it
/// was loaded from, and the printed tokens.
async fn load(pool: &PgPool, reps: usize, weeks: u32) -> (Simulation, Vec<String>) {
    // Today: the loader's pings must be recent enough for the org's filters and its check-ins not
    // ahead of the clock.
    let anchor = Utc::now().date_naive();
    let args = DemoArgs { data_dir: fixtures(), anchor_date: Some(anchor), reps, weeks };
    let lines = fieldvisit_demo::load(pool, &args).await.expect("demo loads");
    let world = team::beijing_world(&fixtures(), anchor).expect("world");
    (sim::simulate(&world, &Params { reps, weeks, ..Params::full(anchor) }), lines)
}

/// The org's id, its reps' ids by the simulation's rep index and its outlets' ids by index.
async fn ids(pool: &PgPool, sim: &Simulation) -> (i64, Vec<i64>, HashMap<usize, i64>) {
    let org: i64 = sqlx::query_scalar("SELECT id FROM orgs WHERE slug = $1")
        .bind(BEIJING_SLUG)
        .fetch_one(pool)
        .await
        .expect("org");
    let mut reps = Vec::new();
    for r in &sim.reps {
        let id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE org_id = $1 AND login = $2")
            .bind(org)
            .bind(&r.login)
            .fetch_one(pool)
            .await
            .expect("rep");
        reps.push(id);
    }
    // The loader names outlet n (0-based) `BJ-<n+1, six digits>`.
    let outlets: Vec<(i64, String)> = sqlx::query_as("SELECT id, code FROM outlets WHERE org_id = $1")
        .bind(org)
        .fetch_all(pool)
        .await
        .expect("outlets");
    let by_index = outlets
        .into_iter()
        .filter_map(|(id, code)| Some((code.strip_prefix("BJ-")?.parse::<usize>().ok()?.checked_sub(1)?, id)))
        .collect();
    (org, reps, by_index)
}

async fn visits(pool: &PgPool, org: i64) -> Vec<Visit> {
    sqlx::query_as(
        "SELECT rep_id, outlet_id, rep_day, arrival, departure, verdict::text AS verdict FROM visits WHERE org_id = $1",
    )
    .bind(org)
    .fetch_all(pool)
    .await
    .expect("visits")
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn the_pipeline_finds_what_the_simulated_team_really_did(pool: PgPool) {
    let (sim, lines) = load(&pool, 4, 1).await;
    let (org, reps, outlets) = ids(&pool, &sim).await;
    let visits = visits(&pool, org).await;
    let at = |rep: usize, outlet: usize| -> Vec<&Visit> {
        visits.iter().filter(|v| v.rep_id == reps[rep] && Some(&v.outlet_id) == outlets.get(&outlet)).collect()
    };
    let mut kinds = BTreeSet::new();
    let (mut stops, mut found) = (0, 0);
    for day in sim.days.iter().filter(|d| !d.real) {
        for t in &day.truth {
            match t {
                Truth::Stop { outlet, arrive, depart, .. } => {
                    kinds.insert("stop");
                    stops += 1;
                    // Found: a visit of that rep at that outlet overlapping the stay.
                    if at(day.rep, *outlet).iter().any(|v| v.arrival < *depart && v.departure > *arrive) {
                        found += 1;
                    }
                }
                Truth::Skipped { outlet } => {
                    kinds.insert("skipped");
                    let that_day: Vec<_> = at(day.rep, *outlet).into_iter().filter(|v| v.rep_day == day.date).collect();
                    assert!(
                        that_day.is_empty(),
                        "skipped outlet {outlet} of rep {} on {}: {that_day:?}",
                        day.rep,
                        day.date
                    );
                }
                Truth::DriveBy { outlet, at: when } => {
                    kinds.insert("drive-by");
                    let near: Vec<_> = at(day.rep, *outlet)
                        .into_iter()
                        .filter(|v| {
                            v.arrival - Duration::minutes(10) < *when && v.departure + Duration::minutes(10) > *when
                        })
                        .collect();
                    assert!(near.is_empty(), "drive-by at outlet {outlet} at {when} became a visit: {near:?}");
                }
                Truth::Spoofed { .. } => {
                    kinds.insert("spoofed");
                }
                Truth::ShortStop { .. } => {
                    kinds.insert("short stop");
                }
                Truth::PhotoReused { .. } => {
                    kinds.insert("photo reused");
                }
                Truth::UnconfirmedClaim { .. } => {
                    kinds.insert("claim");
                }
            }
        }
    }
    let every = ["claim", "drive-by", "photo reused", "short stop", "skipped", "spoofed", "stop"];
    assert_eq!(kinds, every.into_iter().collect(), "the small run holds every kind of event");
    assert!(found * 10 >= stops * 9, "{found} of {stops} simulated stops found as visits at the right outlet");

    // Every visit of the spoofing rep is suspect, and there are some.
    let spoofer = sim.reps.iter().position(|r| r.spoofer).expect("a spoofing rep");
    let theirs: Vec<&Visit> = visits.iter().filter(|v| v.rep_id == reps[spoofer]).collect();
    assert!(!theirs.is_empty(), "the spoofer's stops are visits (suspect ones)");
    assert!(theirs.iter().all(|v| v.verdict == "suspect"), "{theirs:?}");
    assert!(visits.iter().any(|v| v.verdict == "verified"), "honest reps' visits are verified");

    // The reused storefront photo: the later upload of the same picture names the earlier one.
    let reused: i64 =
        sqlx::query_scalar("SELECT count(*) FROM photos WHERE org_id = $1 AND reused_photo_id IS NOT NULL")
            .bind(org)
            .fetch_one(&pool)
            .await
            .expect("photos");
    assert!(reused >= 1, "the reused photo is found");

    // The unconfirmed check-in claim is in the supervisor's list.
    let app = TestApp::spawn(pool.clone()).await;
    let supervisor = common::demo_token(&lines, "supervisor");
    let claims = app.get("/api/v1/checkins/claims", Some(&supervisor)).await;
    assert_eq!(claims.status, 200, "{}", claims.describe());
    let listed: BTreeSet<&str> =
        claims.json.as_array().expect("claims").iter().filter_map(|c| c["client_id"].as_str()).collect();
    for day in &sim.days {
        for t in &day.truth {
            if let Truth::UnconfirmedClaim { client_id, .. } = t {
                assert!(listed.contains(client_id.as_str()), "claim {client_id} not in {listed:?}");
            }
        }
    }
}

/// The full demo (`make run`'s: 20 reps over five weeks) shows a working team: over the last four
/// weeks territory coverage, plan compliance and the verified rate each within 60-95%, every
/// verdict kind and every period status present, and the monthly bulletin ranks every rep.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn the_full_demo_shows_a_working_team(pool: PgPool) {
    let (sim, lines) = load(&pool, 20, 5).await;
    let (org, reps, _) = ids(&pool, &sim).await;
    let root: i64 = sqlx::query_scalar("SELECT id FROM territories WHERE org_id = $1 AND code = 'BJ'")
        .bind(org)
        .fetch_one(&pool)
        .await
        .expect("root territory");
    let app = TestApp::spawn(pool.clone()).await;
    let manager = common::demo_token(&lines, "manager");
    // The map's default period: the four weeks up to today.
    let to = Utc::now().date_naive();
    let from = to - Duration::days(27);
    let coverage =
        app.get(&format!("/api/v1/territories/{root}/coverage?from={from}&to={to}&h3_res=8"), Some(&manager)).await;
    assert_eq!(coverage.status, 200, "{}", coverage.describe());
    let compliance =
        app.get(&format!("/api/v1/territories/{root}/compliance?from={from}&to={to}"), Some(&manager)).await;
    assert_eq!(compliance.status, 200, "{}", compliance.describe());
    let pct = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    let figures = [
        ("territory coverage", pct(&coverage.json["outlets"]["coverage_pct"])),
        ("plan compliance", pct(&compliance.json["plan"]["plan_compliance_pct"])),
        ("verified rate", pct(&compliance.json["plan"]["verified_rate_pct"])),
    ];
    for (name, value) in figures {
        assert!((60.0..=95.0).contains(&value), "{name} {value}% is not within 60-95%: {figures:?}");
    }
    for status in ["visited", "due", "overdue", "never_visited", "closed"] {
        let n = coverage.json["status_counts"][status].as_i64();
        assert!(n.is_some_and(|n| n > 0), "no outlet {status}: {}", coverage.json);
    }
    let verdicts: BTreeSet<String> = visits(&pool, org).await.into_iter().map(|v| v.verdict).collect();
    let every: BTreeSet<String> =
        ["short", "suspect", "unverified", "verified"].into_iter().map(String::from).collect();
    assert_eq!(verdicts, every, "every verdict kind");

    // The bulletin of the month the five weeks cover most: every rep ranked.
    let month = (to - Duration::days(14)).format("%Y-%m");
    let bulletin = app.get(&format!("/api/v1/territories/{root}/assessment?month={month}"), Some(&manager)).await;
    assert_eq!(bulletin.status, 200, "{}", bulletin.describe());
    let ranked: BTreeSet<i64> = bulletin.json["reps"]
        .as_array()
        .expect("reps")
        .iter()
        .filter(|r| r["plan_compliance"]["rank"].as_u64().is_some())
        .filter_map(|r| r["rep_id"].as_i64())
        .collect();
    assert_eq!(ranked, reps.iter().copied().collect(), "every rep ranked in {month}");
}
