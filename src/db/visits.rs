//! Derived visits and the rep-days waiting for derivation (`rep_day_dirty`, protocol in migration
//! 0008): claiming dirty rep-days, reading a rep-day's fixes and candidate outlets as they were that
//! day, and replacing the rep-day's visits in one transaction under a per-rep-day advisory lock.

use crate::domain::compliance::{DayVisit, Review, ReviewDecision, TrackFix};
use crate::domain::geo::Footprint;
use crate::domain::territory::multipolygon;
use crate::domain::visit::{
    CandidateOutlet, PriorVisit, RULE_VERSION, SAME_VISIT_SLACK_S, TrackBox, Verdict, Visit, VisitFix, carry_ids,
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgExecutor, PgPool};

/// A rep-day this worker claimed for derivation.
#[derive(Debug, Clone, FromRow)]
pub struct DirtyDay {
    pub org_id: i64,
    pub rep_id: i64,
    pub day: NaiveDate,
    pub claimed_at: DateTime<Utc>,
}

/// Claims up to `limit` dirty rep-days marked at least `settle_s` ago: unclaimed ones, and ones
/// whose claim is older than `stale_after_s` (a worker that died). Rows an ingest batch holds are
/// skipped this round.
pub async fn claim_dirty(
    db: &PgPool,
    limit: i64,
    settle_s: u32,
    stale_after_s: i64,
) -> Result<Vec<DirtyDay>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE rep_day_dirty d SET claimed_at = clock_timestamp()
           FROM (SELECT org_id, rep_id, day FROM rep_day_dirty
                  WHERE (claimed_at IS NULL OR claimed_at < now() - make_interval(secs => $2))
                    AND marked_at <= now() - make_interval(secs => $3)
                  ORDER BY marked_at, org_id, rep_id, day
                  LIMIT $1
                    FOR UPDATE SKIP LOCKED) c
          WHERE d.org_id = c.org_id AND d.rep_id = c.rep_id AND d.day = c.day
      RETURNING d.org_id, d.rep_id, d.day, d.claimed_at",
    )
    .bind(limit)
    .bind(stale_after_s as f64)
    .bind(f64::from(settle_s))
    .fetch_all(db)
    .await
}

/// Start and end (UTC) of a local day of the org ([`days_bounds`] of one day).
pub async fn day_bounds(
    db: impl PgExecutor<'_>,
    org_id: i64,
    day: NaiveDate,
) -> Result<(DateTime<Utc>, DateTime<Utc>), sqlx::Error> {
    days_bounds(db, org_id, &[day]).await?.pop().ok_or(sqlx::Error::RowNotFound)
}

/// Start and end (UTC) of each of the org's local `days`, in their order (one statement).
pub async fn days_bounds(
    db: impl PgExecutor<'_>,
    org_id: i64,
    days: &[NaiveDate],
) -> Result<Vec<(DateTime<Utc>, DateTime<Utc>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT (d.day::timestamp AT TIME ZONE o.timezone), ((d.day + 1)::timestamp AT TIME ZONE o.timezone)
           FROM unnest($2::date[]) WITH ORDINALITY AS d(day, k)
           JOIN orgs o ON o.id = $1
          ORDER BY d.k",
    )
    .bind(org_id)
    .bind(days)
    .fetch_all(db)
    .await
}

/// A stored fix as [`group_fixes`] reads it, after the index (1-based) of its rep-day in the group
/// (by position: measured faster than by column name).
type GroupFixRow = (i32, DateTime<Utc>, DateTime<Utc>, f64, f64, Option<f32>, bool, i32);

/// The fixes of a group of rep-days of the org (all of rep `reps[i]`'s devices in `[from[i],
/// to[i])`), one list per rep-day in the group's order, each in no particular order (the rules
/// order them; sorting here measured a third of the read's time); one statement.
///
/// Each rep-day's pings are read by a subquery of its own (`OFFSET 0` keeps the planner from
/// flattening it): joined flat, the planner probed every daily partition for all of a device's
/// pings and filtered the times afterwards (7.9 s for 16 rep-days with a year stored). As a
/// subquery, its time bounds prune the partitions at each execution. The generic plan is forced:
/// a custom plan is planned over every partition at each call (26-66 ms for 16 rep-days with 370
/// partitions, against 8-10 ms to execute).
pub async fn group_fixes(
    db: &PgPool,
    org_id: i64,
    reps: &[i64],
    from: &[DateTime<Utc>],
    to: &[DateTime<Utc>],
) -> Result<Vec<Vec<VisitFix>>, sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query("SET LOCAL plan_cache_mode = force_generic_plan").execute(&mut *tx).await?;
    let rows: Vec<GroupFixRow> = sqlx::query_as(
        "SELECT r.k::int, p.fix_time, p.received_at, p.lat, p.lon, p.accuracy_m, p.mock, p.flags
           FROM unnest($2::bigint[], $3::timestamptz[], $4::timestamptz[]) WITH ORDINALITY AS r(rep, f, t, k)
          CROSS JOIN LATERAL (
                SELECT p.fix_time, p.received_at, p.lat, p.lon, p.accuracy_m, p.mock, p.flags
                  FROM pings p
                 WHERE p.org_id = $1 AND p.fix_time >= r.f AND p.fix_time < r.t
                   AND p.device_id IN (SELECT id FROM devices WHERE org_id = $1 AND rep_id = r.rep)
                OFFSET 0) p",
    )
    .bind(org_id)
    .bind(reps)
    .bind(from)
    .bind(to)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let fixes = rows.into_iter().map(|(k, fix_time, received_at, lat, lon, accuracy_m, mock, flags)| {
        (k, VisitFix { fix_time, received_at, lat, lon, accuracy_m, mock, flags })
    });
    Ok(super::per_rep_day(reps.len(), fixes))
}

#[derive(FromRow)]
struct GroupCandidateRow {
    /// The rep-day's index in the group (1-based).
    k: i32,
    #[sqlx(flatten)]
    outlet: CandidateRow,
}

#[derive(FromRow)]
struct CandidateRow {
    id: i64,
    lat: f64,
    lon: f64,
    footprint: Option<serde_json::Value>,
    radius_m: f32,
    min_dwell_s: i32,
    valid_from: Option<DateTime<Utc>>,
    valid_to: Option<DateTime<Utc>>,
}

/// Days before an outlet was recorded that its first location also holds for: reps visit outlets
/// before the office registers them (a census, a new agent point). Recording an outlet queues the
/// rep-days it can add visits to ([`mark_outlet_additions`]); older days never change.
pub const RECORDING_GRACE_DAYS: i32 = 7;

/// Side of the cells the candidate query groups a rep's fixes by (degrees, ~220 m of latitude): a
/// few hundred index probes for a day instead of one per fix.
pub const PROBE_CELL_DEG: f64 = 0.002;

/// Outlets that were not closed at `from` and that the rep may have been within the geofence of
/// during `[from, to)`: every such outlet and possibly others (the domain rules judge the
/// distance exactly). Each once per location it had during the day (an outlet that moved that day
/// twice, each location with its validity) and its tier's radius and minimum dwell. The rep's
/// fixes are given as their extent per cell of [`PROBE_CELL_DEG`] ([`track_boxes`](crate::domain::visit::track_boxes)); `margin_m`
/// is the accuracy cap. [`group_candidates`] for one rep-day.
pub async fn candidates(
    db: &PgPool,
    org_id: i64,
    boxes: &[TrackBox],
    margin_m: f64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<CandidateOutlet>, sqlx::Error> {
    let mut all = group_candidates(db, org_id, &[boxes], margin_m, &[from], &[to]).await?;
    Ok(all.pop().unwrap_or_default())
}

/// [`candidates`] of a group of rep-days of the org (the boxes `boxes[i]` of rep-day `i`, its
/// local day `[from[i], to[i])`): one list per rep-day in the group's order; one statement.
pub async fn group_candidates(
    db: &PgPool,
    org_id: i64,
    boxes: &[&[TrackBox]],
    margin_m: f64,
    from: &[DateTime<Utc>],
    to: &[DateTime<Utc>],
) -> Result<Vec<Vec<CandidateOutlet>>, sqlx::Error> {
    let all = boxes.iter().flat_map(|b| b.iter());
    let (x0, y0): (Vec<f64>, Vec<f64>) = all.clone().map(|b| (b.x0, b.y0)).unzip();
    let (x1, y1): (Vec<f64>, Vec<f64>) = all.map(|b| (b.x1, b.y1)).unzip();
    let k: Vec<i32> = boxes
        .iter()
        .enumerate()
        .flat_map(|(i, b)| std::iter::repeat_n(i32::try_from(i + 1).unwrap_or(i32::MAX), b.len()))
        .collect();
    let rows: Vec<GroupCandidateRow> = sqlx::query_as(include_str!("sql/visit_candidates.sql"))
        .bind(org_id)
        .bind(&x0)
        .bind(&y0)
        .bind(&x1)
        .bind(&y1)
        .bind(&k)
        .bind(from)
        .bind(to)
        .bind(margin_m)
        .bind(RECORDING_GRACE_DAYS)
        .fetch_all(db)
        .await?;
    Ok(super::per_rep_day(boxes.len(), rows.into_iter().map(|r| (r.k, r.outlet.into_candidate()))))
}

impl CandidateRow {
    fn into_candidate(self) -> CandidateOutlet {
        CandidateOutlet {
            id: self.id,
            lat: self.lat,
            lon: self.lon,
            footprint: self.footprint.as_ref().and_then(multipolygon).and_then(Footprint::new),
            radius_m: f64::from(self.radius_m),
            min_dwell_s: i64::from(self.min_dwell_s),
            valid_from: self.valid_from,
            valid_to: self.valid_to,
        }
    }
}

/// Outlet `outlet_id` where it stood at `at` (its location row of that time, else its current
/// one), with its geofence radius (its own or its tier's): what a check-in is judged against.
pub async fn outlet_site(
    db: impl PgExecutor<'_>,
    org_id: i64,
    outlet_id: i64,
    at: DateTime<Utc>,
) -> Result<Option<CandidateOutlet>, sqlx::Error> {
    let row: Option<CandidateRow> = sqlx::query_as(include_str!("sql/outlet_site.sql"))
        .bind(org_id)
        .bind(outlet_id)
        .bind(at)
        .fetch_optional(db)
        .await?;
    Ok(row.map(CandidateRow::into_candidate))
}

/// [`replace_days`] for one rep-day.
pub async fn replace_day(conn: &mut PgConnection, day: &DirtyDay, visits: &[Visit]) -> Result<bool, sqlx::Error> {
    let done = replace_days(conn, std::slice::from_ref(day), &[visits]).await?;
    Ok(done.first().copied().unwrap_or(false))
}

/// A stored visit of a rep-day of a group: the rep-day's index (1-based), id, outlet, arrival, departure.
type StoredRow = (i32, i64, i64, DateTime<Utc>, DateTime<Utc>);

/// The rep-days of `days` (any orgs) as the arrays that `unnest` reads: org, rep, day, claim.
struct DayArrays {
    orgs: Vec<i64>,
    reps: Vec<i64>,
    days: Vec<NaiveDate>,
    claims: Vec<DateTime<Utc>>,
}

impl DayArrays {
    fn of<'a>(days: impl Iterator<Item = &'a DirtyDay>) -> Self {
        let mut a = DayArrays { orgs: Vec::new(), reps: Vec::new(), days: Vec::new(), claims: Vec::new() };
        for d in days {
            a.orgs.push(d.org_id);
            a.reps.push(d.rep_id);
            a.days.push(d.day);
            a.claims.push(d.claimed_at);
        }
        a
    }
}

/// Where `unnest($1, $2, $3)` of a [`DayArrays`] is joined (`u(o, rp, d)`): the rep-day's rows.
const REP_DAYS: &str = "unnest($1::bigint[], $2::bigint[], $3::date[]) AS u(o, rp, d)";

/// For each rep-day of `days` whose claim is still the worker's, replaces its visits with
/// `visits[i]` and removes its dirty mark; one transaction for the whole group, under an advisory
/// lock of each rep-day (taken in (org, rep, day) order, so that two groups never wait for each
/// other in a cycle), so that two instances deriving the same rep-day never leave both results. A
/// visit that continues a stored one ([`carry_ids`]) keeps its id, so reviews, photos and answers
/// stay on it; those of visits that are gone are linked to the new visit at the same outlet that
/// overlaps them. A constant number of statements whatever the group's size. Returns, per
/// rep-day, `false` when pings arrived meanwhile: nothing of that rep-day is written and it stays
/// dirty for a later derivation (the others are written).
pub async fn replace_days(
    conn: &mut PgConnection,
    days: &[DirtyDay],
    visits: &[&[Visit]],
) -> Result<Vec<bool>, sqlx::Error> {
    use sqlx::Connection;
    assert_eq!(days.len(), visits.len(), "one list of visits per rep-day");
    let mut done = vec![false; days.len()];
    if days.is_empty() {
        return Ok(done);
    }
    let mut order: Vec<usize> = (0..days.len()).collect();
    order.sort_by_key(|&i| (days[i].org_id, days[i].rep_id, days[i].day));
    order.dedup_by_key(|i| (days[*i].org_id, days[*i].rep_id, days[*i].day));
    let mut tx = conn.begin().await?;
    let all = DayArrays::of(order.iter().map(|&i| &days[i]));
    // The function scan yields the rows in array order, and the aggregate takes the locks as it
    // reads them: in (org, rep, day) order.
    sqlx::query(
        "SELECT count(pg_advisory_xact_lock(hashtextextended(format('rep_day/%s/%s/%s', o, rp, d), 0)))
           FROM unnest($1::bigint[], $2::bigint[], $3::date[]) AS u(o, rp, d)",
    )
    .bind(&all.orgs)
    .bind(&all.reps)
    .bind(&all.days)
    .execute(&mut *tx)
    .await?;
    // Still this worker's claims? If new pings cleared one, a later derivation (maybe already done
    // by another instance) owns that rep-day's result: write nothing of it.
    let live: Vec<i32> = sqlx::query_scalar(
        "SELECT u.k::int
           FROM unnest($1::bigint[], $2::bigint[], $3::date[], $4::timestamptz[]) WITH ORDINALITY AS u(o, rp, d, c, k)
           JOIN rep_day_dirty x ON x.org_id = u.o AND x.rep_id = u.rp AND x.day = u.d AND x.claimed_at = u.c
          ORDER BY u.k
            FOR UPDATE OF x",
    )
    .bind(&all.orgs)
    .bind(&all.reps)
    .bind(&all.days)
    .bind(&all.claims)
    .fetch_all(&mut *tx)
    .await?;
    // Indexes into `days` of the rep-days to write, in lock order.
    let live: Vec<usize> =
        live.iter().filter_map(|k| usize::try_from(k - 1).ok()).filter_map(|k| order.get(k).copied()).collect();
    if live.is_empty() {
        tx.rollback().await?;
        return Ok(done);
    }
    let w = DayArrays::of(live.iter().map(|&i| &days[i]));
    // Visits that continue a stored one keep its id (and with it their reviews, photos and
    // answers); the others are deleted and inserted.
    let rows: Vec<StoredRow> = sqlx::query_as(
        "SELECT u.k::int, v.id, v.outlet_id, v.arrival, v.departure
           FROM unnest($1::bigint[], $2::bigint[], $3::date[]) WITH ORDINALITY AS u(o, rp, d, k)
           JOIN visits v ON v.org_id = u.o AND v.rep_id = u.rp AND v.rep_day = u.d
          ORDER BY v.id
            FOR UPDATE OF v",
    )
    .bind(&w.orgs)
    .bind(&w.reps)
    .bind(&w.days)
    .fetch_all(&mut *tx)
    .await?;
    let stored = super::per_rep_day(
        live.len(),
        rows.into_iter()
            .map(|(k, id, outlet_id, arrival, departure)| (k, PriorVisit { id, outlet_id, arrival, departure })),
    );
    // The new visits of every rep-day written, with their rep-day and carried id.
    let mut ids: Vec<Option<i64>> = Vec::new();
    let mut owner: Vec<&DirtyDay> = Vec::new();
    let mut new: Vec<&Visit> = Vec::new();
    let mut with_visits: Vec<&DirtyDay> = Vec::new();
    for (j, &i) in live.iter().enumerate() {
        ids.extend(carry_ids(&stored[j], visits[i]));
        owner.extend(std::iter::repeat_n(&days[i], visits[i].len()));
        new.extend(visits[i].iter());
        if !visits[i].is_empty() {
            with_visits.push(&days[i]);
        }
    }
    let kept: Vec<i64> = ids.iter().flatten().copied().collect();
    sqlx::query(&format!(
        "DELETE FROM visits v USING {REP_DAYS}
          WHERE v.org_id = u.o AND v.rep_id = u.rp AND v.rep_day = u.d AND NOT (v.id = ANY($4))"
    ))
    .bind(&w.orgs)
    .bind(&w.reps)
    .bind(&w.days)
    .bind(&kept)
    .execute(&mut *tx)
    .await?;
    if !new.is_empty() {
        // One statement writes both: kept ids are updated in place, the rest inserted.
        sqlx::query(
            "WITH t AS (
                 SELECT * FROM UNNEST($20::bigint[], $1::bigint[], $2::bigint[], $3::date[], $4::bigint[],
                                      $5::timestamptz[], $6::timestamptz[], $7::int[],
                                      $8::text[], $9::real[], $10::int[], $11::real[], $12::real[], $13::real[],
                                      $14::int[], $15::float8[], $16::float8[], $18::jsonb[], $19::jsonb[])
                     AS t(id, org_id, rep_id, rep_day, outlet_id, arrival, departure, dwell_s, verdict, risk_score,
                          ping_count, min_distance_m, median_distance_m, median_accuracy_m, max_gap_s, lat, lon,
                          alternatives, evidence)),
             updated AS (
                 UPDATE visits v
                    SET arrival = t.arrival, departure = t.departure, dwell_s = t.dwell_s, verdict = t.verdict,
                        risk_score = t.risk_score, ping_count = t.ping_count, min_distance_m = t.min_distance_m,
                        median_distance_m = t.median_distance_m, median_accuracy_m = t.median_accuracy_m,
                        max_gap_s = t.max_gap_s, location = ST_SetSRID(ST_MakePoint(t.lon, t.lat), 4326),
                        alternatives = t.alternatives, evidence = t.evidence, rule_version = $17, computed_at = now()
                   FROM t
                  WHERE v.org_id = t.org_id AND v.id = t.id AND t.id IS NOT NULL)
             INSERT INTO visits (org_id, rep_id, outlet_id, rep_day, arrival, departure, dwell_s, verdict, risk_score,
                                 ping_count, min_distance_m, median_distance_m, median_accuracy_m, max_gap_s, location,
                                 alternatives, evidence, rule_version)
             SELECT t.org_id, t.rep_id, t.outlet_id, t.rep_day, t.arrival, t.departure, t.dwell_s, t.verdict,
                    t.risk_score, t.ping_count, t.min_distance_m, t.median_distance_m, t.median_accuracy_m,
                    t.max_gap_s, ST_SetSRID(ST_MakePoint(t.lon, t.lat), 4326), t.alternatives, t.evidence, $17
               FROM t WHERE t.id IS NULL",
        )
        .bind(owner.iter().map(|d| d.org_id).collect::<Vec<_>>())
        .bind(owner.iter().map(|d| d.rep_id).collect::<Vec<_>>())
        .bind(owner.iter().map(|d| d.day).collect::<Vec<_>>())
        .bind(new.iter().map(|v| v.outlet_id).collect::<Vec<_>>())
        .bind(new.iter().map(|v| v.arrival).collect::<Vec<_>>())
        .bind(new.iter().map(|v| v.departure).collect::<Vec<_>>())
        .bind(new.iter().map(|v| i32::try_from(v.dwell_s).unwrap_or(i32::MAX)).collect::<Vec<_>>())
        .bind(new.iter().map(|v| v.verdict.as_str()).collect::<Vec<_>>())
        .bind(new.iter().map(|v| v.risk_score as f32).collect::<Vec<_>>())
        .bind(new.iter().map(|v| i32::try_from(v.evidence.fix_count).unwrap_or(i32::MAX)).collect::<Vec<_>>())
        .bind(new.iter().map(|v| v.evidence.min_distance_m as f32).collect::<Vec<_>>())
        .bind(new.iter().map(|v| v.evidence.median_distance_m as f32).collect::<Vec<_>>())
        .bind(new.iter().map(|v| v.evidence.median_accuracy_m.map(|a| a as f32)).collect::<Vec<_>>())
        .bind(new.iter().map(|v| i32::try_from(v.evidence.max_gap_s).unwrap_or(i32::MAX)).collect::<Vec<_>>())
        .bind(new.iter().map(|v| v.evidence.lat).collect::<Vec<_>>())
        .bind(new.iter().map(|v| v.evidence.lon).collect::<Vec<_>>())
        .bind(RULE_VERSION)
        .bind(new.iter().map(|v| json(&v.alternatives)).collect::<Vec<_>>())
        .bind(new.iter().map(|v| json(&v.evidence)).collect::<Vec<_>>())
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
        // The rep-days that have visits now: their unlinked reviews, photos and answers follow.
        let v = DayArrays::of(with_visits.into_iter());
        // A review follows its visit: the new visit at the same outlet whose time covers the
        // reviewed arrival (or starts within SAME_VISIT_SLACK_S of it: late fixes may move the
        // arrival).
        sqlx::query(&format!(
            "UPDATE visit_reviews r SET visit_id = m.visit_id
               FROM (SELECT DISTINCT ON (r2.id) r2.id AS review_id, v.id AS visit_id
                       FROM {REP_DAYS}
                       JOIN visit_reviews r2 ON r2.org_id = u.o AND r2.rep_id = u.rp AND r2.visit_id IS NULL
                       JOIN visits v ON v.org_id = r2.org_id AND v.rep_id = r2.rep_id AND v.outlet_id = r2.outlet_id
                                    AND v.rep_day = u.d
                      WHERE v.arrival <= r2.arrival + make_interval(secs => $4)
                        AND v.departure >= r2.arrival - make_interval(secs => $4)
                      ORDER BY r2.id, abs(extract(epoch FROM v.arrival - r2.arrival))) m
              WHERE r.id = m.review_id"
        ))
        .bind(&v.orgs)
        .bind(&v.reps)
        .bind(&v.days)
        .bind(SAME_VISIT_SLACK_S as f64)
        .execute(&mut *tx)
        .await?;
        // Photos and checklist answers follow their visit the same way, and keep the arrival of
        // the visit they belong to (which the next relink starts from).
        for table in ["photos", "visit_outcomes"] {
            sqlx::query(&format!(
                "UPDATE {table} p SET visit_arrival = v.arrival
                   FROM {REP_DAYS}, visits v
                  WHERE p.org_id = u.o AND p.rep_id = u.rp AND p.rep_day = u.d AND v.org_id = u.o AND v.id = p.visit_id
                    AND v.arrival <> p.visit_arrival"
            ))
            .bind(&v.orgs)
            .bind(&v.reps)
            .bind(&v.days)
            .execute(&mut *tx)
            .await?;
            sqlx::query(&format!(
                "UPDATE {table} p SET visit_id = m.visit_id
                   FROM (SELECT DISTINCT ON (p2.id) p2.org_id, p2.id AS row_id, v.id AS visit_id
                           FROM {REP_DAYS}
                           JOIN {table} p2 ON p2.org_id = u.o AND p2.rep_id = u.rp AND p2.rep_day = u.d
                                          AND p2.visit_id IS NULL
                           JOIN visits v ON v.org_id = p2.org_id AND v.rep_id = p2.rep_id AND v.outlet_id = p2.outlet_id
                                        AND v.rep_day = u.d
                          WHERE v.arrival <= p2.visit_arrival + make_interval(secs => $4)
                            AND v.departure >= p2.visit_arrival - make_interval(secs => $4)
                          ORDER BY p2.id, abs(extract(epoch FROM v.arrival - p2.visit_arrival))) m
                  WHERE p.org_id = m.org_id AND p.id = m.row_id"
            ))
            .bind(&v.orgs)
            .bind(&v.reps)
            .bind(&v.days)
            .bind(SAME_VISIT_SLACK_S as f64)
            .execute(&mut *tx)
            .await?;
        }
    }
    let unmarked: Vec<i32> = sqlx::query_scalar(
        "DELETE FROM rep_day_dirty x
          USING unnest($1::bigint[], $2::bigint[], $3::date[], $4::timestamptz[]) WITH ORDINALITY AS u(o, rp, d, c, k)
          WHERE x.org_id = u.o AND x.rep_id = u.rp AND x.day = u.d AND x.claimed_at = u.c
      RETURNING u.k::int",
    )
    .bind(&w.orgs)
    .bind(&w.reps)
    .bind(&w.days)
    .bind(&w.claims)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    for k in unmarked {
        if let Some(&i) = usize::try_from(k - 1).ok().and_then(|j| live.get(j)) {
            done[i] = true;
        }
    }
    // A rep-day given twice shares the answer of the one written.
    for i in 0..days.len() {
        if let Some(&j) = order
            .iter()
            .find(|&&j| (days[j].org_id, days[j].rep_id, days[j].day) == (days[i].org_id, days[i].rep_id, days[i].day))
        {
            done[i] = done[j];
        }
    }
    Ok(done)
}

/// Marks dirty the rep-days that up to `limit` newly recorded outlets can add visits to (fixes
/// near them in the [`RECORDING_GRACE_DAYS`] before they were recorded) and takes those outlets
/// off the queue; `margin_m` is the accuracy cap. Returns the number of rep-days marked.
///
/// The worker asks before every claim, and the queue is nearly always empty: that is answered by
/// an index probe, since the marking statement's plan joins the pings of every daily partition
/// whether or not it has outlets to mark (1.7-4.8 s with a year of 100 reps stored).
pub async fn mark_outlet_additions(db: &PgPool, limit: i64, margin_m: f64) -> Result<u64, sqlx::Error> {
    let queued: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM outlet_additions)").fetch_one(db).await?;
    if !queued {
        return Ok(0);
    }
    let done = sqlx::query(include_str!("sql/mark_outlet_additions.sql"))
        .bind(limit)
        .bind(margin_m)
        .bind(RECORDING_GRACE_DAYS)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// Marks every rep-day of the org's reps in `[from, to]` (local days) that has pings or visits
/// dirty, for a recomputation (e.g. after a rule change). Returns how many were marked.
pub async fn mark_period(
    db: impl PgExecutor<'_>,
    org_id: i64,
    from: NaiveDate,
    to: NaiveDate,
    reason: &str,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO rep_day_dirty (org_id, rep_id, day, reason)
         SELECT DISTINCT d.org_id, d.rep_id, (p.fix_time AT TIME ZONE o.timezone)::date, $4
           FROM pings p
           JOIN devices d ON d.org_id = p.org_id AND d.id = p.device_id
           JOIN orgs o ON o.id = p.org_id
          WHERE p.org_id = $1
            AND p.fix_time >= ($2::date::timestamp AT TIME ZONE o.timezone)
            AND p.fix_time < (($3::date + 1)::timestamp AT TIME ZONE o.timezone)
         UNION
         SELECT org_id, rep_id, rep_day, $4 FROM visits WHERE org_id = $1 AND rep_day BETWEEN $2 AND $3
         ON CONFLICT (org_id, rep_id, day) DO UPDATE SET claimed_at = NULL, marked_at = now(), reason = EXCLUDED.reason",
    )
    .bind(org_id)
    .bind(from)
    .bind(to)
    .bind(reason)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Marks every rep-day of the orgs whose visits were derived under another rule version than
/// `rule_version` (or before versions were recorded) dirty, and records the version for them.
/// Each org is claimed and marked in its own transaction by the one instance whose upsert changes
/// its `visit_rule_state` row (others starting at the same time skip it); no org row is locked.
/// Returns the rep-days marked.
pub async fn mark_rule_change(db: &PgPool, rule_version: &str) -> Result<u64, sqlx::Error> {
    let stale: Vec<i64> = sqlx::query_scalar(
        "SELECT o.id FROM orgs o LEFT JOIN visit_rule_state s ON s.org_id = o.id
          WHERE s.rule_version IS DISTINCT FROM $1 ORDER BY o.id",
    )
    .bind(rule_version)
    .fetch_all(db)
    .await?;
    let first = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default();
    let last = NaiveDate::from_ymd_opt(2100, 12, 31).unwrap_or_default();
    let mut marked = 0;
    for org_id in stale {
        let mut tx = db.begin().await?;
        let claimed: Option<i64> = sqlx::query_scalar(
            "INSERT INTO visit_rule_state (org_id, rule_version) VALUES ($1, $2)
             ON CONFLICT (org_id) DO UPDATE SET rule_version = EXCLUDED.rule_version, applied_at = now()
              WHERE visit_rule_state.rule_version IS DISTINCT FROM EXCLUDED.rule_version
             RETURNING org_id",
        )
        .bind(org_id)
        .bind(rule_version)
        .fetch_optional(&mut *tx)
        .await?;
        if claimed.is_some() {
            marked += mark_period(&mut *tx, org_id, first, last, "rule_change").await?;
        }
        tx.commit().await?;
    }
    Ok(marked)
}

/// A stored visit as the API shows it.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct StoredVisit {
    pub id: i64,
    pub rep_id: i64,
    pub outlet_id: i64,
    pub outlet_code: String,
    pub outlet_name: String,
    pub rep_day: NaiveDate,
    pub arrival: DateTime<Utc>,
    pub departure: DateTime<Utc>,
    pub dwell_s: i32,
    #[sqlx(try_from = "String")]
    pub verdict: Verdict,
    pub risk_score: f32,
    pub ping_count: i32,
    pub min_distance_m: Option<f32>,
    pub median_distance_m: Option<f32>,
    pub median_accuracy_m: Option<f32>,
    pub max_gap_s: Option<i32>,
    /// Other outlets in range during the visit.
    #[schema(value_type = Object)]
    pub alternatives: serde_json::Value,
    /// Fix count, distances, accuracy, bridged gaps, stay, spoofing signals, mean position.
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
    pub rule_version: String,
    pub computed_at: DateTime<Utc>,
}

/// Columns of [`StoredVisit`] over `visits v JOIN outlets o`.
const STORED_VISIT: &str =
    "SELECT v.id, v.rep_id, v.outlet_id, o.code AS outlet_code, o.name AS outlet_name, v.rep_day,
        v.arrival, v.departure, v.dwell_s, v.verdict, v.risk_score, v.ping_count, v.min_distance_m,
        v.median_distance_m, v.median_accuracy_m, v.max_gap_s, v.alternatives, v.evidence, v.rule_version,
        v.computed_at
   FROM visits v JOIN outlets o ON o.org_id = v.org_id AND o.id = v.outlet_id";

/// The visits of a rep with rep-day in `[from, to]`, in arrival order.
pub async fn of_rep(
    db: impl PgExecutor<'_>,
    org_id: i64,
    rep_id: i64,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<StoredVisit>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{STORED_VISIT} WHERE v.org_id = $1 AND v.rep_id = $2 AND v.rep_day BETWEEN $3 AND $4
          ORDER BY v.arrival, v.outlet_id"
    ))
    .bind(org_id)
    .bind(rep_id)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await
}

/// The visits at an outlet with rep-day in `[from, to]`, in arrival order: of one rep when
/// `rep_id` is given, of the reps whose territory lies in `scope_root`'s subtree when that is given.
pub async fn of_outlet(
    db: impl PgExecutor<'_>,
    org_id: i64,
    outlet_id: i64,
    rep_id: Option<i64>,
    scope_root: Option<i64>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<StoredVisit>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{STORED_VISIT} WHERE v.org_id = $1 AND v.outlet_id = $2 AND ($3::bigint IS NULL OR v.rep_id = $3)
            AND ($6::bigint IS NULL OR EXISTS (
                 SELECT 1 FROM users u JOIN territories t ON t.org_id = u.org_id AND t.id = u.territory_id
                  WHERE u.org_id = v.org_id AND u.id = v.rep_id AND t.path @> ARRAY[$6::bigint]))
            AND v.rep_day BETWEEN $4 AND $5
          ORDER BY v.arrival, v.rep_id"
    ))
    .bind(org_id)
    .bind(outlet_id)
    .bind(rep_id)
    .bind(from)
    .bind(to)
    .bind(scope_root)
    .fetch_all(db)
    .await
}

/// Plain data as JSON (serialising it into a `Value` cannot fail).
fn json<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

#[derive(FromRow)]
struct DayVisitRow {
    rep_day: NaiveDate,
    id: i64,
    outlet_id: i64,
    arrival: DateTime<Utc>,
    departure: DateTime<Utc>,
    dwell_s: i32,
    #[sqlx(try_from = "String")]
    verdict: Verdict,
    #[sqlx(try_from = "crate::db::NullableName")]
    review: Option<Review>,
}

/// The visits of a rep with rep-day in `[from, to]` and the latest accept/reject review of each.
pub async fn day_visits(
    db: impl PgExecutor<'_>,
    org_id: i64,
    rep_id: i64,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(NaiveDate, DayVisit)>, sqlx::Error> {
    let rows: Vec<DayVisitRow> = sqlx::query_as(
        "SELECT v.rep_day, v.id, v.outlet_id, v.arrival, v.departure, v.dwell_s, v.verdict, v.review
           FROM visits v
          WHERE v.org_id = $1 AND v.rep_id = $2 AND v.rep_day BETWEEN $3 AND $4
          ORDER BY v.rep_day, v.arrival",
    )
    .bind(org_id)
    .bind(rep_id)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let visit = DayVisit {
                id: r.id,
                outlet_id: r.outlet_id,
                arrival: r.arrival,
                departure: r.departure,
                dwell_s: i64::from(r.dwell_s),
                verdict: r.verdict,
                review: r.review,
            };
            (r.rep_day, visit)
        })
        .collect())
}

#[derive(FromRow)]
struct TrackFixRow {
    day: NaiveDate,
    fix_time: DateTime<Utc>,
    lat: f64,
    lon: f64,
    accuracy_m: Option<f32>,
    flags: i32,
}

/// The fixes of all the rep's devices on the local days `[from, to]`, with their local day.
pub async fn day_fixes(
    db: impl PgExecutor<'_>,
    org_id: i64,
    rep_id: i64,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(NaiveDate, TrackFix)>, sqlx::Error> {
    let rows: Vec<TrackFixRow> = sqlx::query_as(
        "SELECT (p.fix_time AT TIME ZONE o.timezone)::date AS day, p.fix_time, p.lat, p.lon, p.accuracy_m, p.flags
           FROM orgs o
           JOIN pings p ON p.org_id = o.id
          WHERE o.id = $1
            AND p.fix_time >= ($3::date::timestamp AT TIME ZONE o.timezone)
            AND p.fix_time < (($4::date + 1)::timestamp AT TIME ZONE o.timezone)
            AND p.device_id IN (SELECT id FROM devices WHERE org_id = $1 AND rep_id = $2)
          ORDER BY p.fix_time",
    )
    .bind(org_id)
    .bind(rep_id)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let fix =
                TrackFix { fix_time: r.fix_time, lat: r.lat, lon: r.lon, accuracy_m: r.accuracy_m, flags: r.flags };
            (r.day, fix)
        })
        .collect())
}

/// Who and what a stored visit is about (for reviews).
#[derive(Debug, Clone, FromRow)]
pub struct VisitKey {
    pub id: i64,
    pub rep_id: i64,
    pub outlet_id: i64,
    pub rep_day: NaiveDate,
    pub arrival: DateTime<Utc>,
    pub departure: DateTime<Utc>,
    pub rep_territory_path: Option<Vec<i64>>,
}

/// A visit of the org by id, with its rep's territory path.
pub async fn key(db: impl PgExecutor<'_>, org_id: i64, visit_id: i64) -> Result<Option<VisitKey>, sqlx::Error> {
    sqlx::query_as(
        "SELECT v.id, v.rep_id, v.outlet_id, v.rep_day, v.arrival, v.departure, t.path AS rep_territory_path
           FROM visits v
           JOIN users u ON u.org_id = v.org_id AND u.id = v.rep_id
           LEFT JOIN territories t ON t.org_id = u.org_id AND t.id = u.territory_id
          WHERE v.org_id = $1 AND v.id = $2",
    )
    .bind(org_id)
    .bind(visit_id)
    .fetch_optional(db)
    .await
}

/// A decision or comment on a visit; never changes the visit's evidence.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct VisitReview {
    pub id: i64,
    pub visit_id: Option<i64>,
    pub rep_id: i64,
    pub outlet_id: i64,
    pub arrival: DateTime<Utc>,
    pub reviewer_id: i64,
    /// The reviewer's name, so a visit's history says who decided.
    pub reviewer_name: Option<String>,
    /// `accepted`, `rejected` (supervisors, auditors, admins) or `disputed` (the rep).
    #[sqlx(try_from = "String")]
    pub decision: ReviewDecision,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

/// What a review is about: a visit (by id, when it exists) of a rep at an outlet arriving then.
/// Derivation links a review without a visit id to the visit that covers its arrival.
#[derive(Debug, Clone, Copy)]
pub struct Reviewed {
    pub visit_id: Option<i64>,
    pub rep_id: i64,
    pub outlet_id: i64,
    pub arrival: DateTime<Utc>,
}

impl From<&VisitKey> for Reviewed {
    fn from(v: &VisitKey) -> Self {
        Reviewed { visit_id: Some(v.id), rep_id: v.rep_id, outlet_id: v.outlet_id, arrival: v.arrival }
    }
}

/// Records a review of the visit, keyed also by (rep, outlet, arrival) so it survives a recomputation.
pub async fn add_review(
    db: impl PgExecutor<'_>,
    org_id: i64,
    visit: Reviewed,
    reviewer_id: i64,
    decision: ReviewDecision,
    reason: &str,
) -> Result<VisitReview, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO visit_reviews (org_id, visit_id, rep_id, outlet_id, arrival, reviewer_id, decision, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         RETURNING id, visit_id, rep_id, outlet_id, arrival, reviewer_id,
                   (SELECT name FROM users WHERE org_id = $1 AND id = $6) AS reviewer_name, decision, reason, created_at",
    )
    .bind(org_id)
    .bind(visit.visit_id)
    .bind(visit.rep_id)
    .bind(visit.outlet_id)
    .bind(visit.arrival)
    .bind(reviewer_id)
    .bind(decision.as_str())
    .bind(reason)
    .fetch_one(db)
    .await
}

/// The reviews of a visit, oldest first.
pub async fn reviews(db: impl PgExecutor<'_>, org_id: i64, visit: &VisitKey) -> Result<Vec<VisitReview>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.id, r.visit_id, r.rep_id, r.outlet_id, r.arrival, r.reviewer_id, u.name AS reviewer_name,
                r.decision, r.reason, r.created_at
           FROM visit_reviews r LEFT JOIN users u ON u.org_id = r.org_id AND u.id = r.reviewer_id
          WHERE r.org_id = $1 AND r.visit_id = $2
          ORDER BY r.created_at, r.id",
    )
    .bind(org_id)
    .bind(visit.id)
    .fetch_all(db)
    .await
}

/// Dirty rep-days of every org, claimed or not (the derivation workers' backlog).
pub async fn dirty_count(db: impl PgExecutor<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM rep_day_dirty").fetch_one(db).await
}

/// The org's derivation backlog: dirty rep-days, those of them claimed by a worker now, and
/// newly recorded outlets not yet checked for rep-days they add visits to.
pub async fn derivation_backlog(db: impl PgExecutor<'_>, org_id: i64) -> Result<(i64, i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM rep_day_dirty WHERE org_id = $1),
                (SELECT count(*) FROM rep_day_dirty WHERE org_id = $1 AND claimed_at IS NOT NULL),
                (SELECT count(*) FROM outlet_additions WHERE org_id = $1)",
    )
    .bind(org_id)
    .fetch_one(db)
    .await
}

/// Derivation work still waiting for the org: its dirty rep-days (claimed or not) plus its newly
/// recorded outlets not yet checked for rep-days they add visits to. Zero means every stored
/// ping and piece of evidence of the org is reflected in its visits (the demo loader waits for
/// it).
pub async fn pending_derivation(db: impl PgExecutor<'_>, org_id: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM rep_day_dirty WHERE org_id = $1)
              + (SELECT count(*) FROM outlet_additions WHERE org_id = $1)",
    )
    .bind(org_id)
    .fetch_one(db)
    .await
}

/// The latest org-local day with a visit in org `org_id` (of rep `rep_id` only, when given): the
/// day the managers' map opens on, so it never opens on an empty weekend or holiday.
pub async fn last_day(
    db: impl PgExecutor<'_>,
    org_id: i64,
    rep_id: Option<i64>,
) -> Result<Option<NaiveDate>, sqlx::Error> {
    sqlx::query_scalar("SELECT max(rep_day) FROM visits WHERE org_id = $1 AND ($2::bigint IS NULL OR rep_id = $2)")
        .bind(org_id)
        .bind(rep_id)
        .fetch_one(db)
        .await
}
