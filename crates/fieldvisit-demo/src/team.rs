//! The district team (issue 26): a [`Simulation`] of the Beijing reps loaded through the server's
//! real paths, never by writing derived rows.
//!
//! Phases (each logged with `tracing::info!` and its seconds):
//! 1. **Setup**, one transaction: the org, its tier policies, territories and outlets (as the
//!    classic demo builds them), the staff users and the simulated reps (scope: their grid; own
//!    working hours), one phone per rep (`repN-phone`, random secrets), the reps' recurring beat
//!    plans and the store checklist, and a `demo.load` audit entry with `"phase": "setup"` and the
//!    simulation's fingerprint. No token is issued yet.
//! 2. **Pings**: every batch of every phone handed to `app::ingest::accept` (the code behind the
//!    OsmAnd endpoint) with an in-process `Ingest` writer, each phone's batches in `sent_at`
//!    order (late and out-of-order batches arrive as simulated), eight phones at a time.
//! 3. **Visits**: the real derivation worker (`derive::Deriver`, no settle time; two of them, as two
//!    instances would run, started once every ping is in so each rep-day is derived once) runs
//!    until the org has no derivation work left (`db::visits::pending_derivation`).
//! 4. **Evidence**: check-ins (`app::checkins::put`), photos (`app::photos::store_at_checkin`,
//!    generated JPEGs with EXIF, see [`crate::photo`]) and checklist answers
//!    (`app::checklists::submit_at_checkin`) with the rep's device as the caller; derivation again
//!    (evidence marks rep-days dirty); then reviews (`app::reviews::review`): accepts and rejects by
//!    the supervisor, disputes by the rep's device, each on the derived visit of its outlet nearest
//!    the simulated time (one not found is counted and logged, not fatal).
//! 5. **Done**: one transaction issues the tokens (printed once) and writes the final `demo.load`
//!    audit entry (no `phase`).
//!
//! Idempotent and safe to interrupt. An org with a final `demo.load` entry is complete: it is left
//! as it is and only its tokens are ensured (printed `(kept)`), as for the classic demo orgs. An
//! org the loader created but did not finish (interrupted after the setup commit) cannot be
//! removed: the audit log is append-only by trigger, so the org row its entries name stays. It is
//! **resumed** instead: every later phase is idempotent by the server's own keys (a ping by device
//! and fix time, a check-in, photo and answers by the app's client id; derivation replaces a
//! rep-day's visits; a review is skipped when the visit already has it), so running phases 2-5
//! again over a partly loaded org gives the same data as one uninterrupted run. A resume with
//! another simulation (another anchor date, team size or weeks; see the setup entry's fingerprint)
//! is refused with an error rather than mixing two demos. The setup itself is one transaction: an
//! interruption there leaves nothing.
//!
//! An org loaded by an earlier version of the loader (the classic Beijing org, its final
//! `demo.load` entry written) counts as complete and is kept: drop the database to get the team.

use crate::photo;
use crate::sim::{self, ReviewDecision, SimCheckin, Simulation, World};
use crate::{DeviceSpec, Error, OrgSpec, Row, UserSpec};
use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc};
use fieldvisit::admin::{new_device_secrets, register_device};
use fieldvisit::app::{self, Caller};
use fieldvisit::db;
use fieldvisit::derive::Deriver;
use fieldvisit::domain::access::{Role, Scope};
use fieldvisit::domain::audit::AuditAction;
use fieldvisit::domain::outlet::{OutletStatus, default_tier_policies};
use fieldvisit::domain::ping::{Fix, Source};
use fieldvisit::ingest::{Ingest, WriteError};
use futures_util::StreamExt;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Name of the checklist the reps answer at their check-ins.
pub const CHECKLIST_NAME: &str = "Store check";
/// Its yes/no question whose "no" is a problem.
pub const POSTER_QUESTION: &str = "poster_displayed";
/// Phones whose batches are sent at the same time: the whole team, so
/// the ingest writer commits many phones' batches together, as it does for a live team.
const PHONES_AT_ONCE: usize = 32;
/// Derivation workers the loader runs (the machine's two cores).
const DERIVERS: usize = 2;
/// Longest the loader waits for the derivation workers to catch up.
const DERIVE_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// Days a review's visit is looked for around its time.
const REVIEW_SLACK_DAYS: u64 = 1;

/// The Beijing org as the simulator sees it: the classic demo's territories, outlets and tier
/// policies, and its five `GeoLife` days (shifted to end the day before `anchor`).
pub fn beijing_world(data_dir: &Path, anchor: NaiveDate) -> Result<World, Error> {
    Ok(beijing_parts(data_dir, anchor)?.1)
}

/// The classic Beijing org (territories, outlets, staff; its GeoLife reps are replaced by the
/// team's) and the [`World`] the team is simulated over, built once for `crate::load`.
pub(crate) fn beijing_parts(data_dir: &Path, anchor: NaiveDate) -> Result<(OrgSpec, World), Error> {
    let classic = crate::beijing(data_dir, anchor)?;
    let mut world = world_of(&classic);
    onto_last_working_day(&mut world, anchor)?;
    Ok((classic, world))
}

/// Moves each real day by whole days so that it ends on the last working day (Monday to Friday,
/// org-local) before `anchor`: the recordings are workdays of the team, not extra weekend days.
fn onto_last_working_day(world: &mut World, anchor: NaiveDate) -> Result<(), Error> {
    let mut target = anchor.pred_opt().ok_or("anchor date out of range")?;
    while target.weekday().number_from_monday() > 5 {
        target = target.pred_opt().ok_or("anchor date out of range")?;
    }
    let offset = chrono::TimeDelta::seconds(i64::from(world.utc_offset_s));
    for day in &mut world.real_days {
        let Some(latest) = day.fixes.iter().map(|f| (f.t + offset).date_naive()).max() else { continue };
        let by = chrono::TimeDelta::days((target - latest).num_days());
        for f in &mut day.fixes {
            f.t = f.t.checked_add_signed(by).ok_or("real day shifted out of range")?;
        }
    }
    Ok(())
}

/// Loads the Beijing district team `sim` (simulated over [`beijing_world`] of the same `data_dir`
/// and `anchor`) through the server's paths, or only ensures its tokens when it is loaded already
/// (see the module doc). Returns the printed lines, as `crate::load` does.
pub async fn load_beijing_team(
    pool: &PgPool,
    data_dir: &Path,
    anchor: NaiveDate,
    sim: &Simulation,
) -> Result<Vec<String>, Error> {
    let (classic, _) = beijing_parts(data_dir, anchor)?;
    Ok(crate::format_rows(&install_team(pool, classic, sim).await?))
}

/// [`load_beijing_team`] for `crate::load`: the team `sim` loaded into the org of `classic` (from
/// [`beijing_parts`]), returning its printed rows unformatted (formatted with the other orgs').
pub(crate) async fn install_team(pool: &PgPool, classic: OrgSpec, sim: &Simulation) -> Result<Vec<Row>, Error> {
    install(pool, &team_spec(classic, sim), sim).await
}

fn world_of(spec: &OrgSpec) -> World {
    let policies = default_tier_policies();
    let tier_radius =
        |tier: &str| policies.iter().find(|p| p.tier == tier).map_or(100.0, |p| f64::from(p.default_radius_m));
    World {
        timezone: spec.timezone.to_owned(),
        utc_offset_s: utc_offset_s(spec.timezone),
        territories: spec
            .territories
            .iter()
            .map(|t| sim::SimTerritory {
                code: t.code.clone(),
                level: t.level,
                parent: t.parent.clone(),
                bbox: (t.bbox.min_lon, t.bbox.min_lat, t.bbox.max_lon, t.bbox.max_lat),
            })
            .collect(),
        outlets: spec
            .outlets
            .iter()
            .map(|o| sim::SimOutlet {
                lat: o.fields.lat,
                lon: o.fields.lon,
                tier: o.fields.tier.clone(),
                active: o.fields.status == OutletStatus::Active,
                territory: o.territory.clone(),
                radius_m: o.fields.radius_m.map_or_else(|| tier_radius(&o.fields.tier), f64::from),
            })
            .collect(),
        tier_visits: policies.iter().map(|p| (p.tier.clone(), p.required_visits.unsigned_abs())).collect(),
        real_days: spec
            .devices
            .iter()
            .map(|d| sim::RealDay {
                name: d.name.clone(),
                fixes: d
                    .fixes
                    .iter()
                    .map(|f| sim::SimFix {
                        t: f.t,
                        lat: f.lat,
                        lon: f.lon,
                        accuracy_m: None,
                        speed_mps: None,
                        altitude_m: f.altitude_m.map(|a| a as f32),
                        battery_pct: None,
                        mock: false,
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// UTC offset of the demo zones, seconds (the team's zone, `Asia/Shanghai`, has no DST).
fn utc_offset_s(timezone: &str) -> i32 {
    match timezone {
        "Asia/Shanghai" => 8 * 3600,
        _ => 0,
    }
}

/// The classic org with its reps, phones and plans replaced by the simulated team's.
fn team_spec(mut spec: OrgSpec, sim: &Simulation) -> OrgSpec {
    spec.users.retain(|u| u.role != Role::Rep);
    for r in &sim.reps {
        spec.users.push(UserSpec {
            login: r.login.clone(),
            name: r.name.clone(),
            role: Role::Rep,
            scope: Some(r.territory.clone()),
        });
    }
    spec.devices = sim
        .reps
        .iter()
        .map(|r| DeviceSpec { name: phone(&r.login), rep: r.login.clone(), fixes: Vec::new() })
        .collect();
    spec.plans = Vec::new();
    spec
}

fn phone(login: &str) -> String {
    format!("{login}-phone")
}

/// What identifies a simulation: a resume must continue the same one.
fn fingerprint(sim: &Simulation) -> Value {
    let first = sim.days.iter().map(|d| d.date).min();
    let last = sim.days.iter().map(|d| d.date).max();
    let fixes: usize = sim.days.iter().flat_map(|d| &d.batches).map(|b| b.fixes.len()).sum();
    json!({"reps": sim.reps.len(), "days": sim.days.len(), "first_day": first, "last_day": last, "fixes": fixes})
}

/// Where the org stands: absent, set up but not finished (with the setup's fingerprint), complete.
enum Stage {
    Absent,
    Unfinished(i64, Value),
    Complete,
}

async fn stage(pool: &PgPool, slug: &str) -> Result<Stage, Error> {
    let Some(org) = db::orgs::by_slug(pool, slug).await? else { return Ok(Stage::Absent) };
    let loads = db::audit::of_action(pool, org.id, AuditAction::DemoLoad).await?;
    if loads.iter().any(|e| e.detail.get("phase").is_none()) {
        return Ok(Stage::Complete);
    }
    let setup = loads.iter().find_map(|e| e.detail.get("fingerprint").cloned()).unwrap_or(Value::Null);
    Ok(Stage::Unfinished(org.id, setup))
}

/// Loads the team org `spec` with simulation `sim` (see the module doc); returns its users' and
/// devices' printed lines.
async fn install(pool: &PgPool, spec: &OrgSpec, sim: &Simulation) -> Result<Vec<Row>, Error> {
    let started = Instant::now();
    let print = fingerprint(sim);
    let org_id = match stage(pool, spec.slug).await? {
        Stage::Complete => return crate::ensure_tokens(pool, spec).await,
        Stage::Unfinished(org_id, stored) if stored == print => {
            tracing::info!(org = spec.slug, "resuming an interrupted demo load");
            org_id
        }
        Stage::Unfinished(_, stored) => {
            return Err(format!(
                "{}: an interrupted demo load of another simulation ({stored}) is in this database; \
                 load the same anchor date, reps and weeks to finish it, or use a fresh database",
                spec.slug
            )
            .into());
        }
        Stage::Absent => match setup(pool, spec, sim, &print).await {
            Ok(org_id) => org_id,
            // Created concurrently by another loader: that one finishes it.
            Err(e) if crate::violates(&e, "orgs_slug_key") => return crate::ensure_tokens(pool, spec).await,
            Err(e) => return Err(format!("setting up {}: {e}", spec.slug).into()),
        },
    };
    tracing::info!(org = spec.slug, seconds = started.elapsed().as_secs_f32(), "demo team: setup done");
    let ids = Ids::read(pool, org_id, spec).await?;
    let figures = run(pool, &ids, sim).await?;
    let rows = finish(pool, org_id, spec, figures).await?;
    tracing::info!(org = spec.slug, seconds = started.elapsed().as_secs_f32(), "demo team: loaded");
    Ok(rows)
}

/// Phase 1: the org's master data, team, plans and checklist in one transaction.
async fn setup(pool: &PgPool, spec: &OrgSpec, sim: &Simulation, print: &Value) -> Result<i64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let (org, territory_ids, outlet_ids) = crate::create_places(&mut tx, spec).await?;
    // The org's ping filters (`domain::ping_filter`) keep every simulated fix as they stand: the
    // weeks are within the 400-day retention, no fix is ahead of the clock, and `working_hours_only`
    // is off (the team's days, real ones included, may start before or end after their hours).
    // As an admin of a Beijing org would, the org says its local time is UTC+8, so the reps' own
    // working hours are read at Beijing time wherever they are used.
    let offset_min = utc_offset_s(spec.timezone) / 60;
    db::orgs::set_ping_settings(&mut *tx, org.id, &json!({"utc_offset_minutes": offset_min})).await?;
    let mut user_ids: HashMap<&str, i64> = HashMap::new();
    for u in &spec.users {
        let scope = u.scope.as_deref().and_then(|c| territory_ids.get(c).copied());
        let created = db::users::create(&mut *tx, org.id, &u.login, &u.name, u.role, scope).await?;
        user_ids.insert(&u.login, created.id);
    }
    for (r, rep) in sim.reps.iter().enumerate() {
        let Some(&rep_id) = user_ids.get(rep.login.as_str()) else { continue };
        let hours = working_hours(rep.working_hours);
        let privacy = db::privacy::RepPrivacy {
            rep_id,
            home_lat: None,
            home_lon: None,
            home_radius_m: None,
            working_hours: Some(hours),
        };
        db::privacy::set_rep_privacy(&mut *tx, org.id, &privacy).await?;
        // Its secrets are never printed: the token is issued when the load is done, and the
        // OsmAnd id and OwnTracks password come from a rotation or an enrolment link.
        register_device(&mut *tx, org.id, rep_id, &phone(&rep.login), &new_device_secrets()).await?;
        for p in sim.plans.iter().filter(|p| p.rep == r) {
            let plan = db::plans::NewPlan {
                rep_id,
                name: &p.name,
                cycle_weeks: i16::try_from(p.cycle_weeks).unwrap_or(1),
                valid_from: p.valid_from,
                valid_to: None,
            };
            let plan_id = db::plans::create(&mut *tx, org.id, &plan).await?;
            for i in &p.items {
                let Some(&outlet_id) = outlet_ids.get(i.outlet) else { continue };
                let item = db::plans::NewPlanItem {
                    outlet_id,
                    weekday: i16::try_from(i.weekday).ok(),
                    week_of_cycle: i.week_of_cycle.and_then(|w| i16::try_from(w).ok()),
                    visit_date: None,
                    window_start: Some(i.window.0),
                    window_end: Some(i.window.1),
                    expected_duration_s: i32::try_from(i.expected_duration_s).ok(),
                    seq: i32::try_from(i.seq).unwrap_or(i32::MAX),
                    planned_from: None,
                };
                db::plans::add_item(&mut *tx, org.id, plan_id, &item).await?;
            }
        }
    }
    let admin = user_ids.get("admin").copied();
    db::checklists::create(&mut *tx, org.id, CHECKLIST_NAME, &checklist_items(), admin).await?;
    let entry = crate::demo_load_entry(org.id, json!({"phase": "setup", "fingerprint": print}));
    db::audit::record(&mut *tx, org.id, entry).await?;
    // The outlets stood there before the simulated weeks (coverage counts them from a period's start).
    db::outlets::backdate_history(&mut tx, org.id, crate::HISTORY_BACKDATE_DAYS).await?;
    tx.commit().await?;
    Ok(org.id)
}

/// The rep's own working hours, Monday to Friday (`settings.pings.working_hours` shape).
fn working_hours((start, end): (NaiveTime, NaiveTime)) -> Value {
    let span = json!([[start.format("%H:%M").to_string(), end.format("%H:%M").to_string()]]);
    json!({"mon": span, "tue": span, "wed": span, "thu": span, "fri": span})
}

/// The store check the reps answer: a poster question (a "no" is a problem) and the SIM stock.
fn checklist_items() -> Value {
    json!([
        {"key": POSTER_QUESTION, "label": "Poster displayed", "type": "yes_no", "expect": true, "required": true},
        {"key": "sim_stock", "label": "SIM cards in stock", "type": "number", "integer": true, "min": 0,
         "max": 100_000, "expect_min": 10, "required": true, "outlet_attribute": "sim_stock"}
    ])
}

/// The answers of a check-in: all well, or the poster missing and the SIM stock low.
fn answers(problem: bool, seed: usize) -> Value {
    if problem {
        json!({POSTER_QUESTION: false, "sim_stock": 3})
    } else {
        json!({POSTER_QUESTION: true, "sim_stock": 20 + (seed % 7) * 10})
    }
}

/// The ids the later phases use, read back from the database (so a resumed load finds them too).
struct Ids {
    org_id: i64,
    utc_offset_s: i32,
    /// By [`sim::World::outlets`] index (the spec's outlet order).
    outlets: Vec<i64>,
    /// By [`Simulation::reps`] index: (rep id, device id, rep's territory id).
    reps: Vec<(i64, i64, Option<i64>)>,
    supervisor: (i64, Option<i64>),
    checklist_id: i64,
}

impl Ids {
    async fn read(pool: &PgPool, org_id: i64, spec: &OrgSpec) -> Result<Ids, Error> {
        let rows = db::outlets::index_rows(pool, org_id).await?;
        let by_code: HashMap<&str, i64> = rows.iter().map(|r| (r.code.as_str(), r.id)).collect();
        let outlets = spec
            .outlets
            .iter()
            .map(|o| {
                by_code.get(o.fields.code.as_str()).copied().ok_or_else(|| format!("outlet {} missing", o.fields.code))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let devices = db::devices::list(pool, org_id, None, 0, 100_000).await?;
        let mut reps = Vec::new();
        for d in &spec.devices {
            let user =
                db::users::by_login(pool, org_id, &d.rep).await?.ok_or_else(|| format!("rep {} missing", d.rep))?;
            let device =
                devices.iter().find(|x| x.name == d.name).ok_or_else(|| format!("device {} missing", d.name))?;
            reps.push((user.id, device.id, user.territory_id));
        }
        let supervisor =
            db::users::by_login(pool, org_id, "supervisor").await?.ok_or("the demo supervisor is missing")?;
        let checklist = db::checklists::latest(pool, org_id).await?;
        let checklist_id =
            checklist.iter().find(|c| c.name == CHECKLIST_NAME).ok_or("the store checklist is missing")?.id;
        Ok(Ids {
            org_id,
            utc_offset_s: utc_offset_s(spec.timezone),
            outlets,
            reps,
            supervisor: (supervisor.id, supervisor.territory_id),
            checklist_id,
        })
    }

    /// The rep's phone acting in the reps' app.
    fn device_caller(&self, rep: usize) -> Option<Caller<'static>> {
        let &(rep_id, device_id, territory) = self.reps.get(rep)?;
        Some(Caller {
            org_id: self.org_id,
            user_id: None,
            device_id: Some(device_id),
            request_id: None,
            client_request_id: None,
            role: Some(Role::Rep),
            own_rep: Some(rep_id),
            scope: Some(Scope::from_territory(territory)),
        })
    }

    fn supervisor_caller(&self) -> Caller<'static> {
        Caller {
            org_id: self.org_id,
            user_id: Some(self.supervisor.0),
            device_id: None,
            request_id: None,
            client_request_id: None,
            role: Some(Role::Supervisor),
            own_rep: None,
            scope: Some(Scope::from_territory(self.supervisor.1)),
        }
    }
}

/// What the load did, for the final audit entry and the log.
#[derive(Debug, Default, serde::Serialize)]
struct Figures {
    pings_sent: usize,
    pings_stored: usize,
    pings_duplicate: usize,
    pings_dropped: usize,
    planned_visits: u64,
    visits: usize,
    checkins: usize,
    photos: usize,
    answers: usize,
    reviews: usize,
    reviews_skipped: usize,
}

/// Phases 2-4 with an in-process ingest writer and derivation worker.
async fn run(pool: &PgPool, ids: &Ids, sim: &Simulation) -> Result<Figures, Error> {
    let registry = prometheus::Registry::new();
    // The derivation workers start once every ping is in (below): started earlier, they would
    // derive each rep-day again after each of its batches (as a server with no settle time does).
    let after_commit: fieldvisit::ingest::AfterCommit = Arc::new(|| {});
    let config = fieldvisit::config::Config::default();
    let ingest = Ingest::start(pool, pool, config.ingest(), &registry, &after_commit)?;
    let mut figures = Figures::default();

    // The recurring plans as planned visits of the simulated days (as the server does for a period).
    if let (Some(first), Some(last)) = (sim.days.iter().map(|d| d.date).min(), sim.days.iter().map(|d| d.date).max()) {
        for &(rep_id, _, _) in &ids.reps {
            figures.planned_visits += db::plans::materialize_recurring(pool, ids.org_id, rep_id, first, last).await?;
        }
    }

    let t = Instant::now();
    send_pings(pool, &ingest, ids, sim, &mut figures).await?;
    tracing::info!(
        sent = figures.pings_sent,
        stored = figures.pings_stored,
        duplicates = figures.pings_duplicate,
        dropped = figures.pings_dropped,
        seconds = t.elapsed().as_secs_f32(),
        "demo team: pings sent through ingest"
    );
    let t = Instant::now();
    db::pings::analyze_after_bulk_load(pool).await?;
    let derivers = start_derivers(pool)?;
    settle(pool, ids.org_id, &derivers).await?;
    tracing::info!(seconds = t.elapsed().as_secs_f32(), "demo team: visits derived");

    let t = Instant::now();
    evidence(pool, ids, sim, &config, &mut figures).await?;
    settle(pool, ids.org_id, &derivers).await?;
    tracing::info!(
        checkins = figures.checkins,
        photos = figures.photos,
        answers = figures.answers,
        seconds = t.elapsed().as_secs_f32(),
        "demo team: check-ins, photos and answers stored, visits derived again"
    );
    let t = Instant::now();
    reviews(pool, ids, sim, &mut figures).await?;
    settle(pool, ids.org_id, &derivers).await?;
    figures.visits = count_visits(pool, ids, sim).await?;
    tracing::info!(
        reviews = figures.reviews,
        skipped = figures.reviews_skipped,
        visits = figures.visits,
        seconds = t.elapsed().as_secs_f32(),
        "demo team: reviews taken"
    );
    Ok(figures)
}

/// A simulated fix as the OsmAnd decoder makes it.
fn fix_of(f: &sim::SimFix) -> Fix {
    let mut fix = Fix::at(f.t, f.lat, f.lon);
    fix.accuracy_m = f.accuracy_m;
    fix.speed_mps = f.speed_mps;
    fix.altitude_m = f.altitude_m;
    fix.battery_pct = f.battery_pct;
    fix.mock = f.mock;
    fix
}

/// Phase 2: every phone's batches through `app::ingest::accept`, in `sent_at` order per phone.
async fn send_pings(
    pool: &PgPool,
    ingest: &Ingest,
    ids: &Ids,
    sim: &Simulation,
    figures: &mut Figures,
) -> Result<(), Error> {
    let phones = (0..sim.reps.len()).map(|rep| async move {
        let (_, device_id, _) = *ids.reps.get(rep).ok_or("rep without a phone")?;
        // The device as the OsmAnd endpoint resolves it (`sender_by_osmand_id` reads the same row by
        // its id's hash; the id itself is a secret a resumed load no longer has).
        let sender = db::devices::sender(pool, ids.org_id, device_id).await?.ok_or("phone vanished")?;
        let mut batches: Vec<&sim::Batch> = sim.days.iter().filter(|d| d.rep == rep).flat_map(|d| &d.batches).collect();
        batches.sort_by_key(|b| b.sent_at);
        let mut tally = (0, 0, 0, 0);
        for b in batches {
            let report = loop {
                let fixes: Vec<(usize, Fix, i32)> =
                    b.fixes.iter().enumerate().map(|(i, f)| (i, fix_of(f), 0)).collect();
                match app::ingest::accept(ingest, pool, &sender, Source::Osmand, fixes, Vec::new()).await {
                    Ok(report) => break report,
                    // As a phone would: wait and send the batch again (nothing of it was stored).
                    Err(e @ (WriteError::QueueFull | WriteError::Database(_))) => {
                        tracing::debug!(error = %e, "batch not taken; sent again");
                        tokio::time::sleep(Duration::from_secs(e.retry_after_s().min(1))).await;
                    }
                    Err(e) => return Err::<_, Error>(format!("{}: {e}", phone_name(sim, rep)).into()),
                }
            };
            tally.0 += b.fixes.len();
            tally.1 += report.stored;
            tally.2 += report.duplicates;
            tally.3 += report.dropped;
        }
        Ok(tally)
    });
    let results: Vec<Result<(usize, usize, usize, usize), Error>> =
        futures_util::stream::iter(phones).buffer_unordered(PHONES_AT_ONCE).collect().await;
    for r in results {
        let (sent, stored, duplicates, dropped) = r?;
        figures.pings_sent += sent;
        figures.pings_stored += stored;
        figures.pings_duplicate += duplicates;
        figures.pings_dropped += dropped;
    }
    Ok(())
}

fn phone_name(sim: &Simulation, rep: usize) -> String {
    sim.reps.get(rep).map_or_else(|| format!("rep #{rep}"), |r| phone(&r.login))
}

/// [`DERIVERS`] derivation workers with no settle time, each with its own metrics registry (the
/// server runs one per instance; several share the work as instances do: claims, advisory locks).
fn start_derivers(pool: &PgPool) -> Result<Vec<Arc<Deriver>>, Error> {
    (0..DERIVERS).map(|_| Ok(Deriver::start(pool, &prometheus::Registry::new(), true, 0)?)).collect()
}

/// Phase 3: waits until the derivation workers have no work left for the org.
async fn settle(pool: &PgPool, org_id: i64, derivers: &[Arc<Deriver>]) -> Result<(), Error> {
    let start = Instant::now();
    loop {
        for d in derivers {
            d.wake();
        }
        let pending = db::visits::pending_derivation(pool, org_id).await?;
        if pending == 0 {
            return Ok(());
        }
        if start.elapsed() > DERIVE_TIMEOUT {
            return Err(
                format!("visit derivation did not finish in {DERIVE_TIMEOUT:?} ({pending} rep-days left)").into()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Phase 4a: check-ins with their photos and answers, from the reps' phones.
async fn evidence(
    pool: &PgPool,
    ids: &Ids,
    sim: &Simulation,
    config: &fieldvisit::config::Config,
    figures: &mut Figures,
) -> Result<(), Error> {
    // One after another, in the order of the days: which of two uploads of the same picture is
    // the reused one depends on which the server stored first, as it does for live phones.
    for day in &sim.days {
        let caller = ids.device_caller(day.rep).ok_or("rep without a phone")?;
        for c in &day.checkins {
            checkin(pool, ids, &caller, c, config, figures)
                .await
                .map_err(|e| format!("check-in {}: {e}", c.client_id))?;
        }
    }
    Ok(())
}

async fn checkin(
    pool: &PgPool,
    ids: &Ids,
    caller: &Caller<'_>,
    c: &SimCheckin,
    config: &fieldvisit::config::Config,
    figures: &mut Figures,
) -> Result<(), Error> {
    let outlet_id = *ids.outlets.get(c.outlet).ok_or("unknown outlet")?;
    let input = app::checkins::CheckinInput {
        outlet_id,
        checked_in_at: c.checked_in_at,
        lat: c.lat,
        lon: c.lon,
        accuracy_m: Some(c.accuracy_m),
        checked_out_at: c.checked_out_at,
        out_lat: c.checked_out_at.map(|_| c.lat),
        out_lon: c.checked_out_at.map(|_| c.lon),
        out_accuracy_m: c.checked_out_at.map(|_| c.accuracy_m),
    };
    let (view, _) = app::checkins::put(pool, caller, &c.client_id, &input).await.map_err(describe)?;
    figures.checkins += 1;
    let stored = view.checkin;
    for p in &c.photos {
        let exif = photo::Exif { taken_at: p.taken_at, utc_offset_s: ids.utc_offset_s, lat: p.lat, lon: p.lon };
        let bytes = photo::jpeg(p.picture, &exif)?;
        if app::photos::stored_at_checkin(pool, caller, &stored, &p.client_id, &bytes)
            .await
            .map_err(describe)?
            .is_none()
        {
            let read = fieldvisit::imaging::read(&bytes, None, config.photo_max_pixels)?;
            let capture = fieldvisit::domain::photo::Capture::new(Some(p.taken_at), Some(p.lat), Some(p.lon), None)
                .map_err(|e| format!("{e:?}"))?;
            let upload = app::photos::Upload { bytes, read, note: None, capture };
            app::photos::store_at_checkin(pool, caller, &stored, &p.client_id, upload).await.map_err(describe)?;
        }
        figures.photos += 1;
    }
    if let Some(a) = &c.answers {
        let given = answers(a.problem, c.outlet);
        app::checklists::submit_at_checkin(pool, caller, &stored, &a.client_id, ids.checklist_id, &given)
            .await
            .map_err(describe)?;
        figures.answers += 1;
    }
    Ok(())
}

fn describe(e: app::Error) -> Error {
    match e {
        app::Error::Invalid(errors) => format!("invalid: {errors:?}").into(),
        other => other.to_string().into(),
    }
}

/// Phase 4b: the reviews and disputes, each on the derived visit of its outlet nearest its time.
async fn reviews(pool: &PgPool, ids: &Ids, sim: &Simulation, figures: &mut Figures) -> Result<(), Error> {
    let supervisor = ids.supervisor_caller();
    for day in &sim.days {
        let rep_caller = ids.device_caller(day.rep).ok_or("rep without a phone")?;
        let &(rep_id, _, _) = ids.reps.get(day.rep).ok_or("rep without a phone")?;
        for r in &day.reviews {
            let outlet_id = *ids.outlets.get(r.outlet).ok_or("unknown outlet")?;
            let Some(visit) = nearest_visit(pool, ids.org_id, outlet_id, rep_id, day.date, r.around).await? else {
                tracing::info!(rep = rep_id, outlet = outlet_id, around = %r.around, "review skipped: no derived visit");
                figures.reviews_skipped += 1;
                continue;
            };
            let (caller, decision) = match r.decision {
                ReviewDecision::Accepted => (&supervisor, "accepted"),
                ReviewDecision::Rejected => (&supervisor, "rejected"),
                ReviewDecision::Disputed => (&rep_caller, "disputed"),
            };
            let key = db::visits::key(pool, ids.org_id, visit).await?.ok_or("visit vanished")?;
            let taken = db::visits::reviews(pool, ids.org_id, &key).await?;
            if !taken.iter().any(|t| t.decision.to_string() == decision && t.reason == r.reason.trim()) {
                app::reviews::review(pool, caller, visit, decision, &r.reason).await.map_err(describe)?;
            }
            figures.reviews += 1;
        }
    }
    Ok(())
}

/// The derived visit of the rep at the outlet whose arrival is nearest `around`.
async fn nearest_visit(
    pool: &PgPool,
    org_id: i64,
    outlet_id: i64,
    rep_id: i64,
    day: NaiveDate,
    around: DateTime<Utc>,
) -> Result<Option<i64>, Error> {
    let slack = chrono::Days::new(REVIEW_SLACK_DAYS);
    let (from, to) = (day.checked_sub_days(slack).unwrap_or(day), day.checked_add_days(slack).unwrap_or(day));
    let visits = db::visits::of_outlet(pool, org_id, outlet_id, Some(rep_id), None, from, to).await?;
    Ok(visits.iter().min_by_key(|v| (v.arrival - around).num_seconds().abs()).map(|v| v.id))
}

async fn count_visits(pool: &PgPool, ids: &Ids, sim: &Simulation) -> Result<usize, Error> {
    let (Some(first), Some(last)) = (sim.days.iter().map(|d| d.date).min(), sim.days.iter().map(|d| d.date).max())
    else {
        return Ok(0);
    };
    let mut n = 0;
    for &(rep_id, _, _) in &ids.reps {
        n += db::visits::of_rep(pool, ids.org_id, rep_id, first, last).await?.len();
    }
    Ok(n)
}

/// Phase 5: the tokens (printed once) and the final `demo.load` entry, in one transaction.
async fn finish(pool: &PgPool, org_id: i64, spec: &OrgSpec, figures: Figures) -> Result<Vec<Row>, Error> {
    let mut tx = pool.begin().await?;
    let rows = crate::tokens_in(&mut tx, org_id, spec).await?;
    let entry = crate::demo_load_entry(
        org_id,
        json!({
            "territories": spec.territories.len(),
            "outlets": spec.outlets.len(),
            "users": spec.users.len(),
            "devices": spec.devices.len(),
            "team": figures,
        }),
    );
    db::audit::record(&mut *tx, org_id, entry).await?;
    tx.commit().await?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fieldvisit::domain::territory::TerritoryLevel;

    #[test]
    fn working_hours_parse_as_the_server_reads_them() {
        let h = working_hours((
            NaiveTime::from_hms_opt(8, 30, 0).expect("t"),
            NaiveTime::from_hms_opt(18, 0, 0).expect("t"),
        ));
        let parsed = fieldvisit::domain::ping_filter::WorkingHours::parse(&h, 480).expect("parses");
        assert_eq!(parsed.intervals(0), &[(510, 1080)]);
        assert!(parsed.intervals(6).is_empty());
    }

    #[test]
    fn the_checklist_is_valid_and_a_problem_is_found() {
        let items = fieldvisit::domain::checklist::parse_items(&checklist_items()).expect("valid items");
        let checked = |v: Value| fieldvisit::domain::checklist::check_answers(&items, &v).expect("valid answers");
        assert_eq!(
            fieldvisit::domain::checklist::problems(&items, &checked(answers(true, 1))),
            [POSTER_QUESTION, "sim_stock"]
        );
        assert!(fieldvisit::domain::checklist::problems(&items, &checked(answers(false, 1))).is_empty());
    }

    #[test]
    fn the_world_mirrors_the_classic_org() {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
        let day = NaiveDate::from_ymd_opt(2026, 11, 20).expect("date");
        let world = beijing_world(&dir, day).expect("builds");
        assert_eq!(world.outlets.len(), crate::BEIJING_OUTLETS);
        assert_eq!(world.real_days.len(), 5);
        assert_eq!(world.utc_offset_s, 8 * 3600);
        assert!(world.territories.iter().filter(|t| t.level == TerritoryLevel::Grid).count() == 16);
        assert!(world.outlets.iter().all(|o| o.radius_m > 0.0));
    }
}
