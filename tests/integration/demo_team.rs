//! The demo team loader (`fieldvisit_demo::team`): a small hand-made `Simulation` (2 reps, 2 days,
//! stops, a drive-by, a skipped planned outlet, a late batch, mock fixes, a check-in with a photo
//! and answers, the same picture uploaded for another outlet, a review, a dispute and a review of a
//! visit that never happened) goes through ingest, derivation and the app's use cases; the result
//! is read back from the database, and loading again changes nothing.

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, TimeDelta, Utc};
use fieldvisit::db;
use fieldvisit::domain::compliance::ReviewDecision as StoredDecision;
use fieldvisit_demo::sim::{
    Batch, ReviewDecision, SimAnswers, SimCheckin, SimDay, SimFix, SimPhoto, SimPlan, SimPlanItem, SimRep, SimReview,
    Simulation, Truth, World,
};
use fieldvisit_demo::{BEIJING_SLUG, KEPT, team};
use sqlx::PgPool;
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Today (UTC): the pings must be recent enough for the org's filters, and check-ins not ahead of
/// the clock.
fn anchor() -> NaiveDate {
    Utc::now().date_naive()
}

const M_PER_DEG: f64 = 111_195.08;

fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let x = (b.1 - a.1) * f64::midpoint(a.0, b.0).to_radians().cos();
    M_PER_DEG * x.hypot(b.0 - a.0)
}

fn at_offset(p: (f64, f64), north_m: f64, east_m: f64) -> (f64, f64) {
    (p.0 + north_m / M_PER_DEG, p.1 + east_m / (M_PER_DEG * p.0.to_radians().cos()))
}

fn fix(t: DateTime<Utc>, p: (f64, f64), speed: f32) -> SimFix {
    SimFix {
        t,
        lat: p.0,
        lon: p.1,
        accuracy_m: Some(8.0),
        speed_mps: Some(speed),
        altitude_m: Some(50.0),
        battery_pct: Some(80.0),
        mock: false,
    }
}

/// A phone's fixes along a day, built leg by leg.
struct Track {
    t: DateTime<Utc>,
    at: (f64, f64),
    fixes: Vec<SimFix>,
}

impl Track {
    fn start(t: DateTime<Utc>, at: (f64, f64)) -> Self {
        Track { t, at, fixes: vec![fix(t, at, 0.0)] }
    }

    /// Rides to `to` at 8 m/s, a fix every 10 s.
    fn ride(&mut self, to: (f64, f64)) {
        let d = distance_m(self.at, to);
        let steps = (d / 80.0).ceil().max(1.0) as i64;
        let from = self.at;
        for k in 1..=steps {
            let f = k as f64 / steps as f64;
            self.t += TimeDelta::seconds(10);
            let p = (from.0 + (to.0 - from.0) * f, from.1 + (to.1 - from.1) * f);
            self.fixes.push(fix(self.t, p, 8.0));
        }
        self.at = to;
    }

    /// Stays at `place` for `minutes`, a fix every 15 s a few metres around it; returns the
    /// arrival and departure.
    fn stay(&mut self, place: (f64, f64), minutes: i64) -> (DateTime<Utc>, DateTime<Utc>) {
        let arrive = self.t;
        for k in 1..=minutes * 4 {
            self.t += TimeDelta::seconds(15);
            let (n, e) = (((k * 7) % 11 - 5) as f64, ((k * 5) % 9 - 4) as f64);
            self.fixes.push(fix(self.t, at_offset(place, n, e), 0.0));
        }
        self.at = place;
        (arrive, self.t)
    }

    /// Uploads of 20 fixes each; the second one arrives late, after the fourth.
    fn batches(&self) -> Vec<Batch> {
        let mut out: Vec<Batch> = self
            .fixes
            .chunks(20)
            .map(|c| Batch { sent_at: c[c.len() - 1].t + TimeDelta::seconds(5), fixes: c.to_vec() })
            .collect();
        if out.len() > 4 {
            out[1].sent_at = out[3].sent_at + TimeDelta::seconds(1);
            out.sort_by_key(|b| b.sent_at);
        }
        out
    }
}

/// Active outlets with no other outlet within 350 m, pairwise over 700 m apart: `n` of them, in
/// the same district-sized area as the first.
fn isolated_outlets(world: &World, n: usize) -> Vec<usize> {
    let points: Vec<(f64, f64)> = world.outlets.iter().map(|o| (o.lat, o.lon)).collect();
    let lonely: Vec<usize> = (0..points.len())
        .filter(|&i| world.outlets[i].active && world.outlets[i].radius_m <= 100.0)
        .filter(|&i| (0..points.len()).all(|j| j == i || distance_m(points[i], points[j]) > 350.0))
        .collect();
    for &first in &lonely {
        let mut chosen = vec![first];
        for &c in &lonely {
            if chosen.len() < n
                && distance_m(points[first], points[c]) < 4000.0
                && chosen.iter().all(|&o| distance_m(points[o], points[c]) > 700.0)
            {
                chosen.push(c);
            }
        }
        if chosen.len() == n {
            return chosen;
        }
    }
    panic!("no {n} isolated outlets close together in the demo world");
}

/// 09:00 org-local (UTC+8) of `day`.
fn nine(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(NaiveTime::from_hms_opt(1, 0, 0).expect("time")).and_utc()
}

fn monday_of(day: NaiveDate) -> NaiveDate {
    day - Days::new(u64::from(day.weekday().num_days_from_monday()))
}

struct Scenario {
    sim: Simulation,
    /// Stops (A and B of rep1, E of rep2), drive-by C, skipped D.
    stop_a: usize,
    stop_b: usize,
    passed: usize,
    skipped: usize,
    stop_e: usize,
    photo_taken: DateTime<Utc>,
    fixes: usize,
    /// Fixes flagged as mock locations (all of rep2's).
    mock_fixes: usize,
}

fn scenario(world: &World) -> Scenario {
    let picked = isolated_outlets(world, 5);
    let (stop_a, stop_b, passed, skipped, stop_e) = (picked[0], picked[1], picked[2], picked[3], picked[4]);
    let place = |i: usize| (world.outlets[i].lat, world.outlets[i].lon);
    let (day1, day2) = (anchor() - Days::new(3), anchor() - Days::new(2));

    // rep1: A (checked in, photo, answers with a problem), B (disputed), rides past C, skips D.
    let mut t1 = Track::start(nine(day1), at_offset(place(stop_a), -600.0, 0.0));
    t1.ride(place(stop_a));
    let (arrive_a, depart_a) = t1.stay(place(stop_a), 20);
    t1.ride(place(stop_b));
    let (arrive_b, depart_b) = t1.stay(place(stop_b), 20);
    t1.ride(place(passed));
    let passed_c = t1.t;
    t1.ride(at_offset(place(passed), 0.0, 800.0));
    let photo_taken = arrive_a + TimeDelta::minutes(5);
    let rep1_day = SimDay {
        rep: 0,
        date: day1,
        real: false,
        batches: t1.batches(),
        checkins: vec![SimCheckin {
            client_id: "rep1-checkin-0001".into(),
            outlet: stop_a,
            checked_in_at: arrive_a + TimeDelta::minutes(1),
            lat: place(stop_a).0,
            lon: place(stop_a).1,
            accuracy_m: 8.0,
            checked_out_at: Some(depart_a - TimeDelta::minutes(1)),
            photos: vec![SimPhoto {
                client_id: "rep1-photo-0001".into(),
                picture: 11,
                taken_at: photo_taken,
                lat: place(stop_a).0,
                lon: place(stop_a).1,
            }],
            answers: Some(SimAnswers { client_id: "rep1-answers-0001".into(), problem: true }),
        }],
        reviews: vec![SimReview {
            outlet: stop_b,
            around: arrive_b + TimeDelta::minutes(2),
            decision: ReviewDecision::Disputed,
            reason: "I was at the counter the whole time".into(),
        }],
        truth: vec![
            Truth::Stop { outlet: stop_a, arrive: arrive_a, depart: depart_a, planned: true },
            Truth::Stop { outlet: stop_b, arrive: arrive_b, depart: depart_b, planned: true },
            Truth::DriveBy { outlet: passed, at: passed_c },
            Truth::Skipped { outlet: skipped },
        ],
    };

    // rep2: E (accepted by the supervisor); a rejection of a visit to D that never happened.
    let mut t2 = Track::start(nine(day2), at_offset(place(stop_e), 0.0, -500.0));
    t2.ride(place(stop_e));
    let (arrive_e, depart_e) = t2.stay(place(stop_e), 25);
    t2.ride(at_offset(place(stop_e), 700.0, 0.0));
    // rep2's phone runs a mock-location app: every fix says so.
    for f in &mut t2.fixes {
        f.mock = true;
    }
    let rep2_day = SimDay {
        rep: 1,
        date: day2,
        real: false,
        batches: t2.batches(),
        // The storefront picture rep1 took at A, uploaded again for E.
        checkins: vec![SimCheckin {
            client_id: "rep2-checkin-0001".into(),
            outlet: stop_e,
            checked_in_at: arrive_e + TimeDelta::minutes(2),
            lat: place(stop_e).0,
            lon: place(stop_e).1,
            accuracy_m: 10.0,
            checked_out_at: None,
            photos: vec![SimPhoto {
                client_id: "rep2-photo-0001".into(),
                picture: 11,
                taken_at: arrive_e + TimeDelta::minutes(3),
                lat: place(stop_e).0,
                lon: place(stop_e).1,
            }],
            answers: None,
        }],
        reviews: vec![
            SimReview {
                outlet: stop_e,
                around: arrive_e,
                decision: ReviewDecision::Accepted,
                reason: "Confirmed with the store owner".into(),
            },
            SimReview {
                outlet: skipped,
                around: arrive_e,
                decision: ReviewDecision::Rejected,
                reason: "No such visit".into(),
            },
        ],
        truth: vec![
            Truth::Stop { outlet: stop_e, arrive: arrive_e, depart: depart_e, planned: true },
            Truth::Spoofed { from: arrive_e, to: depart_e },
            Truth::PhotoReused { picture: 11, outlets: [stop_a, stop_e] },
        ],
    };

    let hours = (NaiveTime::from_hms_opt(8, 0, 0).expect("t"), NaiveTime::from_hms_opt(18, 0, 0).expect("t"));
    let item = |outlet: usize, day: NaiveDate, seq: u32| SimPlanItem {
        outlet,
        weekday: day.weekday().number_from_monday(),
        week_of_cycle: None,
        window: hours,
        expected_duration_s: 900,
        seq,
    };
    let fixes = t1.fixes.len() + t2.fixes.len();
    let mock_fixes = t2.fixes.len();
    let sim = Simulation {
        reps: vec![
            SimRep {
                login: "rep1".into(),
                name: "王伟".into(),
                territory: world.outlets[stop_a].territory.clone(),
                working_hours: hours,
                spoofer: false,
            },
            SimRep {
                login: "rep2".into(),
                name: "李娜".into(),
                territory: world.outlets[stop_e].territory.clone(),
                working_hours: hours,
                spoofer: true,
            },
        ],
        plans: vec![
            SimPlan {
                rep: 0,
                name: "rep1 beat".into(),
                cycle_weeks: 1,
                valid_from: monday_of(day1),
                items: vec![item(stop_a, day1, 1), item(stop_b, day1, 2), item(skipped, day1, 3)],
            },
            SimPlan {
                rep: 1,
                name: "rep2 beat".into(),
                cycle_weeks: 1,
                valid_from: monday_of(day2),
                items: vec![item(stop_e, day2, 1)],
            },
        ],
        days: vec![rep1_day, rep2_day],
    };
    Scenario { sim, stop_a, stop_b, passed, skipped, stop_e, photo_taken, fixes, mock_fixes }
}

async fn load(pool: &PgPool, sim: &Simulation) -> Vec<String> {
    team::load_beijing_team(pool, &fixtures(), anchor(), sim).await.expect("the team loads")
}

/// Row counts of the tables the loader writes, and when the visits were last computed.
async fn state(pool: &PgPool) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for table in [
        "orgs",
        "users",
        "devices",
        "api_tokens",
        "outlets",
        "plans",
        "plan_items",
        "planned_visits",
        "pings",
        "visits",
        "visit_reviews",
        "checkins",
        "photos",
        "visit_outcomes",
        "checklists",
        "audit_log",
    ] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}")).fetch_one(pool).await.expect("count");
        out.push((table.to_owned(), n.to_string()));
    }
    let computed: Option<String> =
        sqlx::query_scalar("SELECT max(computed_at)::text FROM visits").fetch_one(pool).await.expect("computed_at");
    out.push(("visits.computed_at".into(), computed.unwrap_or_default()));
    out
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_hand_made_team_goes_through_every_path(pool: PgPool) {
    let world = team::beijing_world(&fixtures(), anchor()).expect("world");
    let s = scenario(&world);
    let lines = load(&pool, &s.sim).await;
    for login in ["admin", "manager", "supervisor", "auditor", "rep1", "rep2", "rep1-phone", "rep2-phone"] {
        let line =
            lines.iter().find(|l| l.split_whitespace().nth(2) == Some(login)).expect("a line per user and phone");
        assert!(!line.ends_with(KEPT), "{line}");
    }

    let org = db::orgs::by_slug(&pool, BEIJING_SLUG).await.expect("query").expect("org").id;
    let pings: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pings WHERE org_id = $1").bind(org).fetch_one(&pool).await.expect("n");
    assert_eq!(pings, s.fixes as i64, "every fix stored once through ingest");
    let mock: i64 = sqlx::query_scalar("SELECT count(*) FROM pings WHERE org_id = $1 AND mock")
        .bind(org)
        .fetch_one(&pool)
        .await
        .expect("n");
    assert_eq!(mock, s.mock_fixes as i64, "the mock flag is kept as the decoders set it");
    let rep = |login: &'static str| {
        let pool = pool.clone();
        async move { db::users::by_login(&pool, org, login).await.expect("query").expect("rep").id }
    };
    let (rep1, rep2) = (rep("rep1").await, rep("rep2").await);
    let outlet_id = |i: usize| {
        let code = format!("BJ-{:06}", i + 1);
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT id FROM outlets WHERE org_id = $1 AND code = $2")
                .bind(org)
                .bind(code)
                .fetch_one(&pool)
                .await
                .expect("outlet")
        }
    };
    let (stop_a, stop_b, passed, skipped, stop_e) = (
        outlet_id(s.stop_a).await,
        outlet_id(s.stop_b).await,
        outlet_id(s.passed).await,
        outlet_id(s.skipped).await,
        outlet_id(s.stop_e).await,
    );
    let (from, to) = (anchor() - Days::new(10), anchor());
    let visits1 = db::visits::of_rep(&pool, org, rep1, from, to).await.expect("visits");
    let visits2 = db::visits::of_rep(&pool, org, rep2, from, to).await.expect("visits");
    let at = |v: &[db::visits::StoredVisit], o: i64| v.iter().filter(|x| x.outlet_id == o).cloned().collect::<Vec<_>>();
    assert_eq!(at(&visits1, stop_a).len(), 1, "a visit at stop A: {visits1:?}");
    assert_eq!(at(&visits1, stop_b).len(), 1, "a visit at stop B: {visits1:?}");
    assert!(at(&visits1, passed).is_empty(), "no visit at the drive-by");
    assert!(at(&visits1, skipped).is_empty(), "no visit at the skipped outlet");
    assert_eq!(visits2.iter().map(|v| v.outlet_id).collect::<Vec<_>>(), [stop_e]);
    let planned = db::plans::planned_visits(&pool, org, rep1, from, to).await.expect("planned");
    assert_eq!(planned.len(), 3, "the recurring plan counts as planned visits: {planned:?}");

    // The check-in, its photo (EXIF time read back) and answers, linked to the visit at A.
    let visit_a = &at(&visits1, stop_a)[0];
    let checkins: i64 = sqlx::query_scalar("SELECT count(*) FROM checkins WHERE org_id = $1")
        .bind(org)
        .fetch_one(&pool)
        .await
        .expect("n");
    assert_eq!(checkins, 2);
    let photos = db::photos::of_visit(&pool, org, visit_a.id).await.expect("photos");
    assert_eq!(photos.len(), 1, "the check-in's photo follows the visit");
    assert_eq!(photos[0].taken_at, Some(s.photo_taken), "EXIF time found");
    assert!(photos[0].exif_lat.is_some() && photos[0].has_thumbnail);
    let reused = db::photos::of_visit(&pool, org, visits2[0].id).await.expect("photos");
    assert_eq!(reused.len(), 1);
    assert_eq!(reused[0].reused_photo_id, Some(photos[0].id), "the same picture is found reused");
    let outcomes = db::checklists::of_visit(&pool, org, visit_a.id).await.expect("outcomes");
    assert_eq!(outcomes.len(), 1);
    assert!(outcomes[0].problems.contains(&team::POSTER_QUESTION.to_owned()), "{:?}", outcomes[0].problems);

    // The dispute by rep1's phone, the acceptance by the supervisor; the review of no visit skipped.
    let key = |id: i64| {
        let pool = pool.clone();
        async move { db::visits::key(&pool, org, id).await.expect("query").expect("visit") }
    };
    let disputes = db::visits::reviews(&pool, org, &key(at(&visits1, stop_b)[0].id).await).await.expect("reviews");
    assert_eq!(
        disputes.iter().map(|r| (r.decision, r.reviewer_id)).collect::<Vec<_>>(),
        [(StoredDecision::Disputed, rep1)]
    );
    let accepted = db::visits::reviews(&pool, org, &key(visits2[0].id).await).await.expect("reviews");
    assert_eq!(accepted.iter().map(|r| r.decision).collect::<Vec<_>>(), [StoredDecision::Accepted]);
    let reviews: i64 = sqlx::query_scalar("SELECT count(*) FROM visit_reviews WHERE org_id = $1")
        .bind(org)
        .fetch_one(&pool)
        .await
        .expect("n");
    assert_eq!(reviews, 2);
    let done: serde_json::Value = sqlx::query_scalar(
        "SELECT detail FROM audit_log WHERE org_id = $1 AND action = 'demo.load' AND NOT detail ? 'phase'",
    )
    .bind(org)
    .fetch_one(&pool)
    .await
    .expect("the final demo.load entry");
    assert_eq!(done["team"]["reviews_skipped"], 1, "{done}");
    assert_eq!(done["team"]["pings_stored"], s.fixes, "{done}");

    // Loading again changes nothing and hands out no new token.
    let before = state(&pool).await;
    let again = load(&pool, &s.sim).await;
    assert!(again.iter().all(|l| l.ends_with(KEPT)), "{again:?}");
    assert_eq!(state(&pool).await, before);
}

async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}")).fetch_one(pool).await.expect("count")
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn an_interrupted_load_is_resumed_and_another_simulation_refused(pool: PgPool) {
    let world = team::beijing_world(&fixtures(), anchor()).expect("world");
    let s = scenario(&world);
    // A check-in the app refuses (its client id is too short) stops the load after the pings and
    // the visits, before the tokens and the final entry: an interrupted load.
    let mut broken = s.sim.clone();
    broken.days[0].checkins[0].client_id = "x".into();
    let err = team::load_beijing_team(&pool, &fixtures(), anchor(), &broken).await.expect_err("the load stops");
    assert!(err.to_string().contains("client_id"), "{err}");
    assert_eq!(count(&pool, "api_tokens").await, 0, "no token is handed out by an unfinished load");
    assert_eq!(count(&pool, "pings").await, s.fixes as i64);

    // Another simulation is refused rather than mixed into it.
    let mut other = s.sim.clone();
    other.days.pop();
    let err = team::load_beijing_team(&pool, &fixtures(), anchor(), &other).await.expect_err("refused");
    assert!(err.to_string().contains("interrupted demo load"), "{err}");

    // The same simulation finishes it, as one uninterrupted load would have.
    let lines = load(&pool, &s.sim).await;
    assert!(lines.iter().all(|l| !l.ends_with(KEPT)), "the tokens are printed now: {lines:?}");
    assert_eq!(count(&pool, "pings").await, s.fixes as i64);
    assert_eq!(count(&pool, "orgs").await, 1);
    assert_eq!(count(&pool, "devices").await, 2);
    assert_eq!(count(&pool, "checkins").await, 2);
    assert_eq!(count(&pool, "photos").await, 2);
    assert_eq!(count(&pool, "visit_outcomes").await, 1);
    assert_eq!(count(&pool, "visit_reviews").await, 2);
    assert_eq!(count(&pool, "visits").await, 3);
}
