//! `fieldvisit-demo`: the demo orgs load from the fixtures with the promised shape. Beijing is the
//! simulated district team (a small one here: 4 reps over 1 week, the same generator as `make run`'s):
//! its reps, phones and recurring beat plans, the real `GeoLife` days as some reps' days, and visits
//! derived by the worker; Limerick is the recorded bus ride. Every printed token works, and loading
//! again changes nothing and keeps the secrets (printed once; each install has its own).
//! Expectations about the pings are computed from the fixture files here, not copied from the loader.
//! The comparison with the simulator's ground truth is `demo_truth.rs`'s.

use crate::common;
use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeDelta, Utc, Weekday};
use fieldvisit::db::{devices, orgs, plans, tiers, tokens, users};
use fieldvisit::domain::access::Role;
use fieldvisit::domain::credentials::hash_secret;
use fieldvisit::domain::outlet::ChannelType;
use fieldvisit_demo::{DemoArgs, KEPT};
use sqlx::PgPool;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

/// Reps of the small team every test here loads.
const REPS: usize = 4;
/// Beijing's UTC offset (the team's working days and hours are org-local).
const BEIJING_OFFSET: TimeDelta = TimeDelta::hours(8);

fn anchor() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 20).expect("valid date")
}

/// A range of days that holds every demo day.
fn any_day() -> (NaiveDate, NaiveDate) {
    (NaiveDate::from_ymd_opt(2000, 1, 1).expect("date"), NaiveDate::from_ymd_opt(2100, 1, 1).expect("date"))
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn args() -> DemoArgs {
    DemoArgs { data_dir: fixtures(), anchor_date: Some(anchor()), reps: REPS, weeks: 1 }
}

/// The simulated working days (Monday to Friday) of the week before the anchor.
fn working_days() -> Vec<NaiveDate> {
    let first = anchor() - TimeDelta::days(7);
    first.iter_days().take_while(|d| *d < anchor()).filter(|d| d.weekday().number_from_monday() <= 5).collect()
}

/// The last working day before the anchor: the day the real `GeoLife` days are moved onto.
fn last_working_day() -> NaiveDate {
    *working_days().last().expect("a working day")
}

/// The reps' logins, `rep1` first.
fn rep_logins() -> Vec<String> {
    (1..=REPS).map(|i| format!("rep{i}")).collect()
}

async fn load(pool: &PgPool) -> Vec<String> {
    fieldvisit_demo::load(pool, &args()).await.expect("demo loads")
}

/// Waits until the loader's derivation workers have ended. Their handles are dropped when the team
/// is loaded, but each worker ends only at its next round (within `POLL_EVERY`, 2 s), and that round
/// still marks newly recorded outlets and claims dirty rep-days (Limerick's, loaded next) before it
/// sees the handle gone; a fingerprint taken meanwhile could differ from one taken after.
async fn loader_workers_ended() {
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
}

/// Distinct fix times per trajectory of the `GeoLife` sample, in order of first appearance.
fn geolife_times() -> Vec<(String, BTreeSet<DateTime<Utc>>)> {
    let path = fixtures().join(fieldvisit_demo::GEOLIFE_FILE);
    let mut reader = csv::ReaderBuilder::new().delimiter(b';').from_path(&path).expect("geolife sample opens");
    let headers = reader.headers().expect("header row").clone();
    let col = |name: &str| headers.iter().position(|h| h == name).expect("column present");
    let (traj, t) = (col("trajectory_id"), col("t"));
    let mut out: Vec<(String, BTreeSet<DateTime<Utc>>)> = Vec::new();
    for record in reader.records() {
        let record = record.expect("csv row");
        let time = DateTime::parse_from_str(&record[t], "%Y-%m-%d %H:%M:%S%#z").expect("time parses").to_utc();
        match out.iter_mut().find(|(id, _)| id == &record[traj]) {
            Some((_, times)) => {
                times.insert(time);
            }
            None => out.push((record[traj].to_owned(), BTreeSet::from([time]))),
        }
    }
    assert_eq!(out.len(), 5, "the sample has five trajectories");
    out
}

/// Distinct fix times of the Limerick bus ride.
fn limerick_times() -> BTreeSet<DateTime<Utc>> {
    let file = std::fs::File::open(fixtures().join(fieldvisit_demo::LIMERICK_GPX_FILE)).expect("gpx opens");
    let gpx = gpx::read(std::io::BufReader::new(file)).expect("gpx parses");
    gpx.tracks
        .iter()
        .flat_map(|t| &t.segments)
        .flat_map(|s| &s.points)
        .filter_map(|p| p.time.as_ref())
        .map(|t| {
            let text = t.format().expect("time formats");
            DateTime::parse_from_rfc3339(&text).expect("rfc 3339").to_utc()
        })
        .collect()
}

async fn org_id(pool: &PgPool, slug: &str) -> i64 {
    orgs::by_slug(pool, slug).await.expect("query").expect("org exists").id
}

/// Fix times stored for a device (by name) of an org, in order.
async fn stored_times(pool: &PgPool, org: i64, device: &str) -> Vec<DateTime<Utc>> {
    sqlx::query_scalar(
        "SELECT p.fix_time FROM pings p JOIN devices d ON d.org_id = p.org_id AND d.id = p.device_id
          WHERE p.org_id = $1 AND d.name = $2 ORDER BY p.fix_time",
    )
    .bind(org)
    .bind(device)
    .fetch_all(pool)
    .await
    .expect("pings query")
}

/// Fix times stored for a device (by name) of an org on an org-local day (Beijing), as a set.
async fn stored_times_on(pool: &PgPool, org: i64, device: &str, day: NaiveDate) -> BTreeSet<DateTime<Utc>> {
    sqlx::query_scalar(
        "SELECT p.fix_time FROM pings p JOIN devices d ON d.org_id = p.org_id AND d.id = p.device_id
          WHERE p.org_id = $1 AND d.name = $2 AND (p.fix_time AT TIME ZONE 'Asia/Shanghai')::date = $3",
    )
    .bind(org)
    .bind(device)
    .bind(day)
    .fetch_all(pool)
    .await
    .expect("pings query")
    .into_iter()
    .collect()
}

/// Every table of the schema (the demo writes to many: pings, visits, check-ins, photos, answers,
/// reviews, audit, ...), by name: its row count and a digest of its rows' full text, timestamps of
/// writes included (so a rewrite shows).
async fn fingerprint(pool: &PgPool) -> BTreeMap<String, (i64, Option<String>)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .expect("tables");
    let mut out = BTreeMap::new();
    for table in tables {
        // A rep-day waiting for derivation, not when a worker claimed it (see `loader_workers_ended`).
        let row_text =
            if table == "rep_day_dirty" { "concat_ws('|', org_id, rep_id, day, reason, marked_at)" } else { "t::text" };
        let row: (i64, Option<String>) = sqlx::query_as(&format!(
            "SELECT count(*), md5(string_agg({row_text}, ',' ORDER BY {row_text})) FROM \"{table}\" t"
        ))
        .fetch_one(pool)
        .await
        .expect("fingerprint");
        out.insert(table, row);
    }
    out
}

/// [`fingerprint`] without the tokens.
async fn fingerprint_but_tokens(pool: &PgPool) -> BTreeMap<String, (i64, Option<String>)> {
    let mut f = fingerprint(pool).await;
    f.remove("api_tokens");
    f
}

/// code, parent code, inside the parent, the parent tiled by its children (`None` for the root).
type TreeRow = (String, Option<String>, Option<bool>, Option<bool>);

/// A beat plan item read back: outlet, its tier, its status, in the rep's scope, weekday, week of
/// the cycle, window start and end, expected duration.
type Item = (i64, String, String, bool, i16, Option<i16>, Option<NaiveTime>, Option<NaiveTime>, Option<i32>);

/// A rep's visits of one day: login, day, visits, at an outlet planned for the rep that day,
/// verified, derived from pings by the current rules.
type RepDay = (String, NaiveDate, i64, i64, i64, i64);

/// Splits printed lines into (org slug, role, login, token).
fn parse_lines(lines: &[String]) -> Vec<[String; 4]> {
    lines
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 4, "line `{l}` has four columns");
            [f[0], f[1], f[2], f[3]].map(str::to_owned)
        })
        .collect()
}

async fn loads_two_orgs_with_the_territory_tree_outlets_and_users(pool: PgPool) {
    let orgs: Vec<(String, String, String)> =
        sqlx::query_as("SELECT slug, name, timezone FROM orgs ORDER BY slug").fetch_all(&pool).await.expect("orgs");
    assert_eq!(
        orgs,
        [
            ("demo-beijing".into(), "Demo Telecom Beijing".into(), "Asia/Shanghai".into()),
            ("demo-limerick".into(), "Demo Limerick".into(), "Europe/Dublin".into()),
        ]
    );
    let bj = org_id(&pool, "demo-beijing").await;
    let tiers: Vec<String> = tiers::list(&pool, bj).await.expect("tiers").into_iter().map(|t| t.tier).collect();
    assert_eq!(tiers, ["A", "B", "C", "VIP"]);

    // Territories: BJ > BJ-D1..4 > BJ-Dn-G1..4, each child inside its parent, children tiling it.
    let levels: Vec<(String, i64)> =
        sqlx::query_as("SELECT level, count(*) FROM territories WHERE org_id = $1 GROUP BY level ORDER BY level")
            .bind(bj)
            .fetch_all(&pool)
            .await
            .expect("levels");
    assert_eq!(levels, [("city".into(), 1), ("district".into(), 4), ("grid".into(), 16)]);
    let tree: Vec<TreeRow> = sqlx::query_as(
        "SELECT c.code, p.code, ST_CoveredBy(c.boundary, p.boundary),
                abs(ST_Area(p.boundary) - (SELECT sum(ST_Area(k.boundary)) FROM territories k
                                             WHERE k.org_id = p.org_id AND k.parent_id = p.id)) < 1e-9
           FROM territories c LEFT JOIN territories p ON p.org_id = c.org_id AND p.id = c.parent_id
          WHERE c.org_id = $1 ORDER BY c.code",
    )
    .bind(bj)
    .fetch_all(&pool)
    .await
    .expect("tree");
    assert_eq!(tree[0].0, "BJ");
    assert_eq!(tree[0].1, None);
    for (code, parent, inside, tiled) in &tree[1..] {
        let parent = parent.as_deref().expect("has a parent");
        let expected_parent = if code.len() == 5 { "BJ".to_owned() } else { code[..5].to_owned() };
        assert_eq!(parent, expected_parent, "{code}");
        assert!(
            *inside == Some(true) && *tiled == Some(true),
            "{code} inside {parent}, and {parent} tiled by its children"
        );
        assert!(code.len() == 5 || code.len() == 8, "{code}");
    }

    // Outlets: about 2,000, every channel type and tier, some closed/suspended/own radius, all in
    // the city and in the grid that holds them.
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM outlets WHERE org_id = $1")
        .bind(bj)
        .fetch_one(&pool)
        .await
        .expect("count");
    assert!((1800..=2200).contains(&n), "{n} outlets");
    let channels: BTreeSet<String> = sqlx::query_scalar("SELECT DISTINCT channel_type FROM outlets WHERE org_id = $1")
        .bind(bj)
        .fetch_all(&pool)
        .await
        .expect("channels")
        .into_iter()
        .collect();
    assert_eq!(channels, ChannelType::ALL.iter().map(ToString::to_string).collect());
    let tiers: BTreeMap<String, i64> =
        sqlx::query_as("SELECT tier, count(*) FROM outlets WHERE org_id = $1 GROUP BY tier")
            .bind(bj)
            .fetch_all(&pool)
            .await
            .expect("tiers")
            .into_iter()
            .collect();
    assert_eq!(tiers.keys().map(String::as_str).collect::<Vec<_>>(), ["A", "B", "C", "VIP"]);
    assert!(tiers["C"] > tiers["B"] && tiers["B"] > tiers["A"] && tiers["A"] > tiers["VIP"], "{tiers:?}");
    let (closed, suspended, own_radius, outside_city, outside_grid, not_grid, bad_code): (
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
    ) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE o.status = 'closed'), count(*) FILTER (WHERE o.status = 'suspended'),
                count(*) FILTER (WHERE o.radius_m IS NOT NULL),
                count(*) FILTER (WHERE NOT ST_Covers(c.boundary, o.location)),
                count(*) FILTER (WHERE t.id IS NULL OR NOT ST_Covers(t.boundary, o.location)),
                count(*) FILTER (WHERE t.level IS DISTINCT FROM 'grid'),
                count(*) FILTER (WHERE o.code !~ '^BJ-[0-9]{6}$')
           FROM outlets o
           JOIN territories c ON c.org_id = o.org_id AND c.code = 'BJ'
           LEFT JOIN territories t ON t.org_id = o.org_id AND t.id = o.territory_id
          WHERE o.org_id = $1",
    )
    .bind(bj)
    .fetch_one(&pool)
    .await
    .expect("outlet checks");
    assert!(closed > 0 && suspended > 0 && own_radius > 0, "{closed} closed, {suspended} suspended, {own_radius}");
    assert!(closed + suspended < n / 10);
    assert_eq!((outside_city, outside_grid, not_grid, bad_code), (0, 0, 0, 0));
    let names_unique: bool =
        sqlx::query_scalar("SELECT count(DISTINCT name) = count(*) FROM outlets WHERE org_id = $1")
            .bind(bj)
            .fetch_one(&pool)
            .await
            .expect("names");
    assert!(names_unique);

    // Users and their scopes: the staff as in every demo.
    let users: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT u.login, u.role, t.code FROM users u LEFT JOIN territories t ON t.org_id = u.org_id AND t.id = u.territory_id
          WHERE u.org_id = $1 AND u.role <> 'rep' ORDER BY u.id",
    )
    .bind(bj)
    .fetch_all(&pool)
    .await
    .expect("users");
    let expect = |l: &str, r: &str, t: Option<&str>| (l.to_owned(), r.to_owned(), t.map(str::to_owned));
    assert_eq!(
        users,
        [
            expect("admin", "admin", None),
            expect("manager", "manager", Some("BJ")),
            expect("manager-d1", "manager", Some("BJ-D1")),
            expect("supervisor", "supervisor", Some("BJ")),
            expect("auditor", "auditor", None),
        ]
    );
    // The team: rep1..rep4 with Chinese names, each scoped to a grid of its own, each with one phone.
    let reps: Vec<(String, String, String, String, Vec<String>)> = sqlx::query_as(
        "SELECT u.login, u.name, t.code, t.level,
                ARRAY(SELECT d.name FROM devices d WHERE d.org_id = u.org_id AND d.rep_id = u.id ORDER BY d.name)
           FROM users u JOIN territories t ON t.org_id = u.org_id AND t.id = u.territory_id
          WHERE u.org_id = $1 AND u.role = 'rep' ORDER BY u.login",
    )
    .bind(bj)
    .fetch_all(&pool)
    .await
    .expect("reps");
    assert_eq!(reps.iter().map(|r| r.0.clone()).collect::<Vec<_>>(), rep_logins());
    let chinese = |c: char| ('\u{4e00}'..='\u{9fff}').contains(&c);
    for (login, name, scope, level, phones) in &reps {
        assert!(
            (2..=3).contains(&name.chars().count()) && name.chars().all(chinese),
            "{login}: a Chinese name: {name}"
        );
        assert_eq!(level, "grid", "{login} is scoped to a grid ({scope})");
        assert!(scope.starts_with("BJ-D") && scope.len() == 8, "{login}: {scope}");
        assert_eq!(phones, &[format!("{login}-phone")], "{login} has one phone");
    }
    let names: BTreeSet<&String> = reps.iter().map(|r| &r.1).collect();
    let grids: BTreeSet<&String> = reps.iter().map(|r| &r.2).collect();
    assert_eq!((names.len(), grids.len()), (REPS, REPS), "distinct names, a grid each (16 grids): {reps:?}");

    // Limerick: the 36 stops as outlets inside LIM, an admin and a driver with one phone.
    let lim = org_id(&pool, "demo-limerick").await;
    let (stops, ok, codes): (i64, i64, Vec<String>) = sqlx::query_as(
        "SELECT count(*),
                count(*) FILTER (WHERE o.channel_type = 'agent_point' AND o.radius_m = 30 AND o.status = 'active'
                                   AND t.code = 'LIM' AND t.level = 'city' AND ST_Covers(t.boundary, o.location)),
                array_agg(o.code ORDER BY o.code)
           FROM outlets o LEFT JOIN territories t ON t.org_id = o.org_id AND t.id = o.territory_id
          WHERE o.org_id = $1",
    )
    .bind(lim)
    .fetch_one(&pool)
    .await
    .expect("stops");
    assert_eq!((stops, ok), (36, 36));
    assert!(codes.iter().all(|c| c.starts_with("STOP-")));
    assert!(codes.contains(&"STOP-607111".to_owned()), "William Street is stop 607111");
    let lim_users: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT u.login, u.role, t.code FROM users u LEFT JOIN territories t ON t.org_id = u.org_id AND t.id = u.territory_id
          WHERE u.org_id = $1 ORDER BY u.id",
    )
    .bind(lim)
    .fetch_all(&pool)
    .await
    .expect("users");
    assert_eq!(lim_users, [expect("admin", "admin", None), expect("driver", "rep", Some("LIM"))]);
}

/// The five `GeoLife` trajectories are real days of the team: the simulator hands them, in file order,
/// to the reps other than the spoofer (the last rep), one each, as long as there are such reps; with
/// 4 reps, trajectories 1-3 become three reps' days and 4-5 are not used.
async fn pings_are_the_source_fixes_shifted_by_whole_days_to_end_before_the_anchor(pool: PgPool) {
    let day_before = anchor().pred_opt().expect("date");
    let target = last_working_day();
    assert!(target.weekday().number_from_monday() <= 5 && target < anchor());
    let anchor_start = (anchor().and_hms_opt(0, 0, 0).expect("time").and_utc()) - BEIJING_OFFSET;

    let bj = org_id(&pool, "demo-beijing").await;
    let phones: Vec<String> = rep_logins().iter().map(|l| format!("{l}-phone")).collect();
    let mut on_target: BTreeMap<&str, BTreeSet<DateTime<Utc>>> = BTreeMap::new();
    for phone in &phones {
        on_target.insert(phone, stored_times_on(&pool, bj, phone, target).await);
    }
    let used = (REPS - 1).min(5);
    let mut carriers = BTreeSet::new();
    let mut shifts = BTreeSet::new();
    for (i, (trajectory, times)) in geolife_times().iter().enumerate() {
        // Shifted by whole days so that its last fix falls on the last working day (org-local).
        let latest = times.iter().map(|t| (*t + BEIJING_OFFSET).date_naive()).max().expect("fixes");
        let shift = TimeDelta::days((target - latest).num_days());
        let expected: BTreeSet<DateTime<Utc>> = times.iter().map(|t| *t + shift).collect();
        let holders: Vec<&str> =
            on_target.iter().filter(|(_, stored)| stored.is_superset(&expected)).map(|(p, _)| *p).collect();
        if i < used {
            assert_eq!(holders.len(), 1, "trajectory {trajectory} is one rep's day: {holders:?}");
            let phone = holders[0];
            assert_eq!(on_target[phone], expected, "{phone}: exactly the trajectory's fixes on {target}, timing kept");
            assert_ne!(phone, phones[REPS - 1], "the spoofer carries no real day");
            assert!(carriers.insert(phone), "{phone} carries one real day");
            shifts.insert(shift);
        } else {
            assert!(holders.is_empty(), "trajectory {trajectory} is not used by a team of {REPS}: {holders:?}");
        }
    }
    assert_eq!(carriers.len(), used);
    assert!(shifts.len() > 1, "each trajectory is shifted on its own: {shifts:?}");

    // Every phone reports on every working day of the week and on no other day, nothing on or after
    // the anchor day; the simulated days come through ingest (as OsmAnd uploads).
    let days: Vec<(String, NaiveDate, DateTime<Utc>)> = sqlx::query_as(
        "SELECT d.name, (p.fix_time AT TIME ZONE 'Asia/Shanghai')::date, max(p.fix_time)
           FROM pings p JOIN devices d ON d.org_id = p.org_id AND d.id = p.device_id
          WHERE p.org_id = $1 GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .bind(bj)
    .fetch_all(&pool)
    .await
    .expect("days");
    for phone in &phones {
        let reported: Vec<NaiveDate> = days.iter().filter(|d| &d.0 == phone).map(|d| d.1).collect();
        assert_eq!(reported, working_days(), "{phone} reports on each working day");
    }
    assert!(days.iter().all(|d| d.2 < anchor_start), "nothing on or after the anchor day");
    let sources: Vec<String> = sqlx::query_scalar("SELECT DISTINCT source FROM pings WHERE org_id = $1")
        .bind(bj)
        .fetch_all(&pool)
        .await
        .expect("q");
    assert_eq!(sources, ["osmand"]);

    let lim = org_id(&pool, "demo-limerick").await;
    let ride = limerick_times();
    let stored = stored_times(&pool, lim, "driver-phone").await;
    assert_eq!(stored.len(), ride.len());
    let shift = stored[0] - *ride.first().expect("fixes");
    assert_eq!(shift.num_seconds() % 86_400, 0);
    assert_eq!(stored, ride.iter().map(|t| *t + shift).collect::<Vec<_>>());
    assert_eq!(stored.last().map(DateTime::date_naive), Some(day_before));
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM pings WHERE org_id = $1")
        .bind(lim)
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(total, ride.len() as i64);

    let sources: Vec<String> = sqlx::query_scalar("SELECT DISTINCT source FROM pings WHERE org_id = $1")
        .bind(lim)
        .fetch_all(&pool)
        .await
        .expect("q");
    assert_eq!(sources, ["demo"]);
}

async fn every_printed_token_authenticates_its_user_or_device(pool: PgPool, lines: &[String]) {
    let rows = parse_lines(lines);
    assert_eq!(
        rows.len(),
        5 + 2 * REPS + 3,
        "5 staff + {REPS} reps + {REPS} phones in Beijing, 2 users + 1 phone in Limerick:\n{}",
        lines.join("\n")
    );
    // Aligned columns: every line puts the token at the same offset.
    let offsets: BTreeSet<usize> = lines.iter().map(|l| l.find("fvt_").expect("token")).collect();
    assert_eq!(offsets.len(), 1, "{lines:#?}");
    for [slug, role, login, token] in &rows {
        assert!(token.starts_with("fvt_") && token.len() == 68, "a random token: {token}");
        let owner = tokens::owner(&pool, &hash_secret(token)).await.expect("query").expect("token is live");
        assert_eq!(owner.org_id, org_id(&pool, slug).await, "{slug} {login}");
        if role == "device" {
            let device = devices::get(&pool, owner.org_id, owner.device_id.expect("a device token"))
                .await
                .expect("query")
                .expect("device");
            assert_eq!(&device.name, login);
            assert_eq!(owner.device_rep_id, Some(device.rep_id));
        } else {
            let user = users::get(&pool, owner.org_id, owner.user_id.expect("a user token"))
                .await
                .expect("query")
                .expect("user");
            assert_eq!((user.login.as_str(), user.role.as_str()), (login.as_str(), role.as_str()));
            assert_eq!(owner.role.map(Role::as_str), Some(role.as_str()));
        }
    }
    let logins: Vec<(&str, &str)> = rows.iter().map(|r| (r[0].as_str(), r[2].as_str())).collect();
    for expected in [
        ("demo-beijing", "admin"),
        ("demo-beijing", "manager-d1"),
        ("demo-beijing", "auditor"),
        ("demo-beijing", "manager"),
        ("demo-beijing", "supervisor"),
        ("demo-beijing", "rep1"),
        ("demo-beijing", "rep4"),
        ("demo-beijing", "rep4-phone"),
        ("demo-limerick", "driver"),
        ("demo-limerick", "driver-phone"),
    ] {
        assert!(logins.contains(&expected), "{expected:?} printed");
    }
}

/// Each rep's beat plan: one recurring plan over a 4-week cycle, from a Monday, whose items give each
/// planned outlet (active, in the rep's grid) as many visits per cycle as its tier requires, on
/// weekdays, within the rep's working hours; the week's planned visits are materialized on each
/// working day.
async fn plans_are_recurring_beats_meeting_tier_frequencies_and_the_driver_plans_every_stop(pool: PgPool) {
    let bj = org_id(&pool, "demo-beijing").await;
    let required: BTreeMap<String, i32> =
        tiers::list(&pool, bj).await.expect("tiers").into_iter().map(|t| (t.tier, t.required_visits)).collect();
    let reps: Vec<(i64, String, Option<serde_json::Value>)> =
        sqlx::query_as("SELECT id, login, working_hours FROM users WHERE org_id = $1 AND role = 'rep' ORDER BY login")
            .bind(bj)
            .fetch_all(&pool)
            .await
            .expect("reps");
    assert_eq!(reps.iter().map(|r| r.1.clone()).collect::<Vec<_>>(), rep_logins());
    let keys = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    for (rep_id, login, hours) in &reps {
        let hours = hours.as_ref().unwrap_or_else(|| panic!("{login} has working hours"));
        let span = |weekday: i16| -> (NaiveTime, NaiveTime) {
            let day = &hours[keys[usize::try_from(weekday - 1).expect("weekday")]][0];
            let t =
                |v: &serde_json::Value| NaiveTime::parse_from_str(v.as_str().expect("hh:mm"), "%H:%M").expect("time");
            (t(&day[0]), t(&day[1]))
        };
        let plans: Vec<(i64, i16, NaiveDate, Option<NaiveDate>, bool)> = sqlx::query_as(
            "SELECT id, cycle_weeks, valid_from, valid_to, active FROM plans WHERE org_id = $1 AND rep_id = $2",
        )
        .bind(bj)
        .bind(rep_id)
        .fetch_all(&pool)
        .await
        .expect("plans");
        assert_eq!(plans.len(), 1, "{login} has one beat plan");
        let (plan_id, cycle_weeks, valid_from, valid_to, active) = plans[0];
        assert_eq!((cycle_weeks, valid_to, active), (4, None, true), "{login}: a 4-week cycle, open-ended");
        assert_eq!(valid_from.weekday(), Weekday::Mon, "{login}");
        assert!(valid_from <= working_days()[0], "{login}: valid from {valid_from}");

        let items: Vec<Item> = sqlx::query_as(
            "SELECT i.outlet_id, o.tier, o.status, o.territory_id IS NOT DISTINCT FROM u.territory_id,
                    i.weekday, i.week_of_cycle, i.window_start, i.window_end, i.expected_duration_s
               FROM plan_items i JOIN outlets o ON o.org_id = i.org_id AND o.id = i.outlet_id
               JOIN users u ON u.org_id = i.org_id AND u.id = $3
              WHERE i.org_id = $1 AND i.plan_id = $2 AND i.visit_date IS NULL",
        )
        .bind(bj)
        .bind(plan_id)
        .bind(rep_id)
        .fetch_all(&pool)
        .await
        .expect("items");
        let all: i64 = sqlx::query_scalar("SELECT count(*) FROM plan_items WHERE org_id = $1 AND plan_id = $2")
            .bind(bj)
            .bind(plan_id)
            .fetch_one(&pool)
            .await
            .expect("count");
        assert_eq!(all, items.len() as i64, "{login}: every item recurs (none dated)");
        assert!(items.len() > 20, "{login} has {} items", items.len());
        let mut per_cycle: BTreeMap<i64, (String, i32)> = BTreeMap::new();
        for (outlet, tier, status, in_scope, weekday, week, start, end, duration) in &items {
            assert!((1..=5).contains(weekday), "{login}: weekday {weekday}");
            assert!(week.is_none_or(|w| (1..=4).contains(&w)), "{login}: week {week:?}");
            let (from, to) = span(*weekday);
            let (start, end) = (start.expect("window start"), end.expect("window end"));
            assert!(from <= start && start < end && end <= to, "{login}: {start}-{end} within {from}-{to}");
            assert!(duration.is_some_and(|d| d > 0 && i64::from(d) <= (end - start).num_seconds()), "{login}");
            assert_eq!(status, "active", "{login}: outlet {outlet} planned");
            assert!(in_scope, "{login}: outlet {outlet} in the rep's grid");
            let entry = per_cycle.entry(*outlet).or_insert_with(|| (tier.clone(), 0));
            entry.1 += if week.is_some() { 1 } else { 4 };
        }
        for (outlet, (tier, n)) in &per_cycle {
            assert_eq!(*n, required[tier], "{login}: outlet {outlet} of tier {tier} planned {n} times per cycle");
        }
        let tiers_planned: BTreeSet<&str> = per_cycle.values().map(|(t, _)| t.as_str()).collect();
        assert_eq!(tiers_planned, ["A", "B", "C", "VIP"].into(), "{login} plans outlets of every tier");

        // The week's planned visits: some on every working day, each from one of the plan's items.
        let planned = plans::planned_visits(&pool, bj, *rep_id, any_day().0, any_day().1).await.expect("planned");
        let dates: BTreeSet<NaiveDate> = planned.iter().map(|p| p.visit_date).collect();
        assert_eq!(dates.into_iter().collect::<Vec<_>>(), working_days(), "{login}: planned on each working day");
        assert!(planned.iter().all(|p| per_cycle.contains_key(&p.outlet_id)), "{login}: planned from the beat");
    }

    // The driver's plan: every stop once, in the order the bus passes them.
    let lim = org_id(&pool, "demo-limerick").await;
    let driver = users::by_login(&pool, lim, "driver").await.expect("q").expect("driver");
    let planned = plans::planned_visits(&pool, lim, driver.id, any_day().0, any_day().1).await.expect("plan");
    assert_eq!(planned.len(), 36);
    assert_eq!(planned.iter().map(|p| p.outlet_id).collect::<BTreeSet<_>>().len(), 36);
    let passes: Vec<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT (SELECT p.fix_time FROM pings p JOIN devices d ON d.org_id = p.org_id AND d.id = p.device_id
                  WHERE d.org_id = pv.org_id AND d.rep_id = pv.rep_id
                  ORDER BY ST_Distance(o.location::geography, ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326)::geography)
                  LIMIT 1)
           FROM planned_visits pv JOIN outlets o ON o.org_id = pv.org_id AND o.id = pv.outlet_id
          WHERE pv.org_id = $1 AND pv.rep_id = $2 ORDER BY pv.seq",
    )
    .bind(lim)
    .bind(driver.id)
    .fetch_all(&pool)
    .await
    .expect("passes");
    assert!(passes.windows(2).all(|w| w[0] <= w[1]), "stops planned in route order: {passes:?}");
    let ride_day = passes[0].date_naive();
    assert!(planned.iter().all(|p| p.visit_date == ride_day));
}

async fn loading_twice_changes_nothing_and_keeps_the_secrets(pool: PgPool) -> Vec<String> {
    let started = Instant::now();
    let first = load(&pool).await;
    let first_took = started.elapsed();
    loader_workers_ended().await;
    let before = fingerprint(&pool).await;

    let started = Instant::now();
    let second = load(&pool).await;
    let second_took = started.elapsed();
    eprintln!("demo load: first {first_took:?}, second {second_took:?}");

    // The secrets were printed once; the second run keeps them and says so.
    let kept: Vec<String> = first.iter().map(|l| format!("{}{}", &l[..l.find("fvt_").expect("token")], KEPT)).collect();
    assert_eq!(second, kept, "the same lines, each secret kept");
    for [_, _, login, token] in &parse_lines(&first) {
        assert!(tokens::owner(&pool, &hash_secret(token)).await.expect("q").is_some(), "{login}'s token still works");
    }
    let after = fingerprint(&pool).await;
    for (table, was) in &before {
        assert_eq!(after.get(table), Some(was), "{table}: same rows, nothing rewritten");
    }
    assert_eq!(after.len(), before.len());
    let count = |table: &str| before[table].0;
    assert_eq!(count("orgs"), 2);
    assert_eq!(count("territories"), 22);
    assert_eq!(count("devices"), REPS as i64 + 1);
    assert_eq!(count("users"), 5 + REPS as i64 + 2);
    assert_eq!(count("api_tokens"), 5 + 2 * REPS as i64 + 3);
    assert_eq!(count("plans"), REPS as i64 + 1);
    for table in ["pings", "visits", "checkins", "photos", "visit_reviews", "visit_outcomes"] {
        assert!(count(table) > 0, "the team's {table} are part of what is compared");
    }
    first
}

async fn loading_again_restores_missing_demo_tokens_but_keeps_revoked_ones_revoked(pool: PgPool, first: &[String]) {
    loader_workers_ended().await;
    let lim = org_id(&pool, "demo-limerick").await;
    sqlx::query("DELETE FROM api_tokens WHERE org_id = $1").bind(lim).execute(&pool).await.expect("delete");
    let bj = org_id(&pool, "demo-beijing").await;
    let admin = users::by_login(&pool, bj, "admin").await.expect("q").expect("u");
    tokens::revoke_for_user(&pool, bj, admin.id).await.expect("revoke");
    let data_before = fingerprint_but_tokens(&pool).await;

    let second = load(&pool).await;
    assert_eq!(fingerprint_but_tokens(&pool).await, data_before, "only tokens are written");
    for (a, b) in first.iter().zip(&second) {
        if a.starts_with("demo-beijing") && a.split_whitespace().nth(2) == Some("admin") {
            assert!(b.ends_with("(revoked)"), "a revoked demo token is not handed out again: {b}");
        } else if a.starts_with("demo-beijing") {
            assert!(b.ends_with(KEPT), "a live token is kept, not printed again: {b}");
        } else {
            assert_ne!(a, b, "a new random token for a deleted one");
        }
    }
    let limerick: Vec<String> = second.iter().filter(|l| l.starts_with("demo-limerick")).cloned().collect();
    assert_eq!(limerick.len(), 3);
    for [_, _, login, token] in &parse_lines(&limerick) {
        let owner = tokens::owner(&pool, &hash_secret(token)).await.expect("q");
        assert_eq!(owner.map(|o| o.org_id), Some(lim), "{login}'s token restored");
    }
}

/// The team's days are derived into visits by the derivation worker during the load (no visit row
/// is written directly, no rep-day is left waiting): each rep has visits on most working days,
/// mostly at the outlets planned for that day, each with a verdict. Limerick's day is marked for
/// derivation on load and derives like an ingested one.
async fn the_demo_days_derive_into_visits(pool: PgPool) {
    use fieldvisit::db::visits;
    use fieldvisit::domain::visit::{RULE_VERSION, VisitRules};
    let bj = org_id(&pool, "demo-beijing").await;
    assert_eq!(visits::pending_derivation(&pool, bj).await.expect("pending"), 0, "no Beijing rep-day left dirty");

    // Visits name no planned visit (`planned_visit_id` stays empty): they match a
    // plan by rep, outlet and day, as compliance counts them.
    let rep_days: Vec<RepDay> = sqlx::query_as(
        "SELECT u.login, v.rep_day, count(*),
                count(*) FILTER (WHERE EXISTS (SELECT 1 FROM planned_visits pv WHERE pv.org_id = v.org_id
                                   AND pv.rep_id = v.rep_id AND pv.outlet_id = v.outlet_id AND pv.visit_date = v.rep_day)),
                count(*) FILTER (WHERE v.verdict = 'verified'),
                count(*) FILTER (WHERE v.ping_count > 0 AND v.rule_version = $2)
           FROM visits v JOIN users u ON u.org_id = v.org_id AND u.id = v.rep_id
          WHERE v.org_id = $1 GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .bind(bj)
    .bind(RULE_VERSION)
    .fetch_all(&pool)
    .await
    .expect("visits");
    let verdicts: BTreeSet<String> = sqlx::query_scalar("SELECT DISTINCT verdict FROM visits WHERE org_id = $1")
        .bind(bj)
        .fetch_all(&pool)
        .await
        .expect("verdicts")
        .into_iter()
        .collect();
    eprintln!("Beijing visits per rep-day: {rep_days:?}; verdicts {verdicts:?}");
    let days = working_days();
    for login in rep_logins() {
        let mine: Vec<&RepDay> = rep_days.iter().filter(|r| r.0 == login).collect();
        assert!(mine.iter().all(|r| days.contains(&r.1)), "{login}: visits on working days only: {mine:?}");
        assert!(mine.len() * 2 > days.len(), "{login} has visits on most working days: {mine:?}");
        let (all, planned, verified, derived) =
            mine.iter().fold((0, 0, 0, 0), |a, r| (a.0 + r.2, a.1 + r.3, a.2 + r.4, a.3 + r.5));
        assert_eq!(derived, all, "{login}: every visit derived from pings by the current rules");
        assert!(planned * 2 > all, "{login}: most visits at the day's planned outlets ({planned} of {all})");
        if login != format!("rep{REPS}") {
            assert!(verified * 2 > all, "{login}: most visits verified ({verified} of {all})");
        }
    }
    assert!(verdicts.contains("verified") && verdicts.contains("suspect"), "{verdicts:?}");

    // Limerick: the recorded ride, marked for derivation on load, derives as before.
    let lim = org_id(&pool, "demo-limerick").await;
    assert!(visits::pending_derivation(&pool, lim).await.expect("pending") > 0);
    // Derived here as a worker would (the newly recorded stops, then the dirty rep-day), taking over any claim (stale after 0 s): a derivation worker of
    // the loader, ending as its handle is dropped, may have claimed the day without deriving it.
    let rules = VisitRules::default();
    for _ in 0..50 {
        visits::mark_outlet_additions(&pool, 10_000, rules.accuracy_cap_m).await.expect("outlet additions");
        for day in visits::claim_dirty(&pool, 100, 0, 0).await.expect("claim") {
            assert_eq!(day.org_id, lim, "only Limerick was left to derive");
            // `false`: claimed again meanwhile; the next round takes it over.
            fieldvisit::derive::derive_day(&pool, &day, &rules).await.expect("derive");
        }
        if visits::pending_derivation(&pool, lim).await.expect("pending") == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(visits::pending_derivation(&pool, lim).await.expect("pending"), 0);
    // A snapshot of rule version visits-v4 on the real bus ride: the bus only halts briefly (at the
    // 9 stops where it stood for a minute, `tests/integration/real_tracks.rs`).
    let by_verdict: Vec<(String, i64)> =
        sqlx::query_as("SELECT verdict, count(*) FROM visits WHERE org_id = $1 GROUP BY 1 ORDER BY 1")
            .bind(lim)
            .fetch_all(&pool)
            .await
            .expect("visits");
    assert_eq!(by_verdict, [("short".to_owned(), 9)]);
}

/// Each install draws its own secrets: the same demo loaded into two databases prints different
/// tokens, and the secrets the demo once derived from public strings (sha256 of
/// `fieldvisit-demo|<org>|<login>`) open nothing.
async fn each_install_has_its_own_secrets_and_the_old_public_ones_are_refused(pool: PgPool, first: &[String]) {
    use sha2::{Digest, Sha256};

    let second_db = format!("fv_demo_second_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE \"{second_db}\"")).execute(&pool).await.expect("create second database");
    let other = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_with((*pool.connect_options()).clone().database(&second_db))
        .await
        .expect("connect to the second database");
    fieldvisit::db::MIGRATOR.run(&other).await.expect("migrate");
    let second = load(&other).await;
    other.close().await;
    sqlx::query(&format!("DROP DATABASE \"{second_db}\"")).execute(&pool).await.expect("drop second database");

    let tokens_of = |lines: &[String]| parse_lines(lines).into_iter().map(|r| r[3].clone()).collect::<BTreeSet<_>>();
    let (a, b) = (tokens_of(first), tokens_of(&second));
    let n = 5 + 2 * REPS + 3;
    assert_eq!((a.len(), b.len()), (n, n), "{n} distinct tokens each");
    assert!(a.is_disjoint(&b), "two installs share no token:\n{first:#?}\n{second:#?}");

    let old = |parts: &[&str]| {
        let mut h = Sha256::new();
        h.update(b"fieldvisit-demo");
        for p in parts {
            h.update(b"|");
            h.update(p.as_bytes());
        }
        hex::encode(h.finalize())
    };
    let pings_before: i64 = sqlx::query_scalar("SELECT count(*) FROM pings").fetch_one(&pool).await.expect("count");
    let app = common::TestApp::spawn(pool.clone()).await;
    for login in ["admin", "auditor", "manager-d1"] {
        let token = format!("fvt_demo_{}", &old(&["demo-beijing", login])[..40]);
        common::assert_problem(&app.get("/api/v1/me", Some(&token)).await, 401, "/api/v1/me");
    }
    let device_token = format!("fvt_demo_{}", &old(&["demo-beijing", "device", "rep1-phone"])[..40]);
    common::assert_problem(&app.get("/api/v1/me", Some(&device_token)).await, 401, "/api/v1/me");
    let osmand_id = &old(&["demo-beijing", "device", "rep1-phone", "osmand"])[..32];
    let res = app.get(&format!("/osmand?id={osmand_id}&lat=39.9&lon=116.4&timestamp=1700000000"), None).await;
    assert!(res.status == 401 || res.status == 404 || res.status == 403, "old OsmAnd id refused: {}", res.describe());
    let password = &old(&["demo-beijing", "device", "rep1-phone", "owntracks"])[..24];
    let res = app
        .send(
            app.request(reqwest::Method::POST, "/owntracks", None)
                .basic_auth("demo-beijing-rep1-phone", Some(password))
                .json(&serde_json::json!({"_type": "location", "lat": 39.9, "lon": 116.4, "tst": 1_700_000_000})),
        )
        .await;
    assert!(res.status == 401 || res.status == 403, "old OwnTracks password refused: {}", res.describe());
    let pings_after: i64 = sqlx::query_scalar("SELECT count(*) FROM pings").fetch_one(&pool).await.expect("count");
    assert_eq!(pings_after, pings_before, "no ping stored with an old secret");
}

/// One load of the small team answers every read-only check (a load is the costly part: each
/// check on its own load would multiply it), in an order where each check's writes cannot disturb
/// a later one: Limerick's derivation and the second install come last.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn one_load_gives_the_promised_orgs_pings_tokens_plans_and_visits(pool: PgPool) {
    let lines = load(&pool).await;
    loads_two_orgs_with_the_territory_tree_outlets_and_users(pool.clone()).await;
    pings_are_the_source_fixes_shifted_by_whole_days_to_end_before_the_anchor(pool.clone()).await;
    every_printed_token_authenticates_its_user_or_device(pool.clone(), &lines).await;
    plans_are_recurring_beats_meeting_tier_frequencies_and_the_driver_plans_every_stop(pool.clone()).await;
    the_demo_days_derive_into_visits(pool.clone()).await;
    each_install_has_its_own_secrets_and_the_old_public_ones_are_refused(pool, &lines).await;
}

/// Loading again is safe: a second load changes nothing and keeps the secrets; a third, after
/// tokens were deleted and one revoked, restores the missing ones and keeps the revoked one revoked.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn loading_again_changes_nothing_but_missing_tokens(pool: PgPool) {
    let first = loading_twice_changes_nothing_and_keeps_the_secrets(pool.clone()).await;
    loading_again_restores_missing_demo_tokens_but_keeps_revoked_ones_revoked(pool, &first).await;
}
