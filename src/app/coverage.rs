//! Coverage of a territory's outlets over a period, each outlet's status at its end, and how much
//! of a rep's planned route their track came near: the read model behind the coverage API, the
//! map layers and the vector tiles. Definitions in `docs/domain.md`; the arithmetic is the
//! domain's (`domain::coverage`, `domain::compliance`).

use super::Stores;
use crate::db;
use crate::domain::compliance::{self, FiguresSum, OutletFigures, ScopeOutlet, Tally};
use crate::domain::coverage::{self, CellFigures, CorridorCoverage, PeriodStatus};
use crate::domain::outlet::{ChannelType, OutletStatus};
use crate::index::ledger::Visits;
use crate::index::outlets::IndexedOutlet;
use chrono::{Duration, NaiveDate};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Days before a period's end searched for an outlet's last valid visit: an outlet without one in
/// that time is `never_visited`.
pub const LAST_VISIT_LOOKBACK_DAYS: i64 = 366;

/// Outlet figures of one tier or channel type.
#[derive(Serialize, utoipa::ToSchema)]
pub struct GroupRow {
    pub key: String,
    #[serde(flatten)]
    pub outlets: OutletFigures,
}

/// A child territory's outlet figures.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ChildCoverage {
    pub territory_id: i64,
    pub code: String,
    pub name: String,
    pub outlets: OutletFigures,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct H3Coverage {
    pub resolution: u8,
    /// Cells holding outlets of U, in cell order.
    pub cells: Vec<CellFigures>,
    /// How many of them are white space.
    pub white_space_cells: usize,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TerritoryCoverage {
    pub territory_id: i64,
    pub code: String,
    pub name: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub period_days: i64,
    /// Coverage, frequency and dwell compliance of the subtree's outlets of U.
    pub outlets: OutletFigures,
    pub by_tier: Vec<GroupRow>,
    pub by_channel_type: Vec<GroupRow>,
    /// Each direct child territory, by code.
    pub children: Vec<ChildCoverage>,
    pub h3: H3Coverage,
    /// Outlets of the subtree registered by the end of the period, by status at its end.
    pub status_counts: BTreeMap<PeriodStatus, usize>,
}

/// One outlet's status at the end of a period.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OutletStatusRow {
    pub outlet_id: i64,
    pub code: String,
    pub name: String,
    pub tier: String,
    pub channel_type: ChannelType,
    pub lat: f64,
    pub lon: f64,
    pub status: PeriodStatus,
    /// Local day of the last valid visit up to the end of the period (366 days back at most).
    pub last_valid_visit: Option<NaiveDate>,
    /// Valid visits in the period.
    pub valid_visits: usize,
    /// Visits its tier requires in the period (pro rata).
    pub required_visits: f64,
}

/// Which outlets a status request wants.
#[derive(Debug, Clone, Copy, Default)]
pub struct StatusFilter<'a> {
    /// `[min_lon, min_lat, max_lon, max_lat]`; min lon > max lon crosses the antimeridian.
    pub bbox: Option<[f64; 4]>,
    pub tier: Option<&'a str>,
    pub channel_type: Option<ChannelType>,
    pub status: Option<PeriodStatus>,
    /// Most rows wanted: one more is returned when there are more.
    pub limit: usize,
    /// Only count the outlets of each status (no rows, no limit).
    pub counts_only: bool,
    /// Only these outlets.
    pub ids: Option<&'a [i64]>,
}

impl OutletStatusRow {
    fn of(r: db::compliance::StatusRow, end: NaiveDate, period_days: i64) -> OutletStatusRow {
        let active = r.status_at_end == OutletStatus::Active;
        OutletStatusRow {
            status: coverage::status_of(r.required_visits, r.cycle_days, active, r.last_valid_visit, end),
            last_valid_visit: r.last_valid_visit,
            valid_visits: usize::try_from(r.valid_visits).unwrap_or(0),
            required_visits: compliance::required_in(r.required_visits, r.cycle_days, period_days),
            outlet_id: r.id,
            tier: r.tier,
            channel_type: r.channel_type,
            code: r.code,
            name: r.name,
            lat: r.lat,
            lon: r.lon,
        }
    }
}

/// The outlets of territory `root`'s subtree (the org's for `None`) registered by the end of `to`
/// that `f` selects, with their status then; by id, at most `f.limit + 1`.
///
/// Answered from memory where it can be: the outlet index gives the outlets in the box with their
/// labels, the visit ledger their counted visits. The database is read for the status of outlets
/// whose status changed after the period (from the history), and for everything when the ledger
/// does not reach back to the last-visit lookback.
pub async fn statuses(
    s: Stores<'_>,
    org_id: i64,
    root: Option<i64>,
    (from, to): (NaiveDate, NaiveDate),
    f: StatusFilter<'_>,
) -> Result<Statuses, sqlx::Error> {
    let period_days = (to - from).num_days() + 1;
    let lookback_from = to - Duration::days(LAST_VISIT_LOOKBACK_DAYS - 1);
    let wanted = f.limit.saturating_add(1);
    let select =
        db::compliance::StatusSelection { root, bbox: f.bbox, tier: f.tier, channel_type: f.channel_type, ids: f.ids };
    let from_db = |select, limit: usize| async move {
        let limit = if f.status.is_some() { i64::MAX } else { i64::try_from(limit).unwrap_or(i64::MAX) };
        let rows =
            db::compliance::outlet_statuses(s.db, org_id, select, (from, to), LAST_VISIT_LOOKBACK_DAYS as i32, limit)
                .await?;
        Ok::<_, sqlx::Error>(
            rows.into_iter()
                .map(|r| OutletStatusRow::of(r, to, period_days))
                .filter(|r| f.status.is_none_or(|s| s == r.status))
                .take(wanted)
                .collect::<Vec<_>>(),
        )
    };
    let (end_at, subtree, policies, index) = tokio::try_join!(
        db::compliance::day_end(s.db, org_id, to),
        async {
            match root {
                Some(r) => db::territories::subtree_ids(s.db, org_id, r)
                    .await
                    .map(|ids| Some(ids.into_iter().collect::<foldhash::HashSet<i64>>())),
                None => Ok(None),
            }
        },
        db::tiers::list(s.db, org_id),
        s.index.org(org_id),
    )?;
    // From memory: the selected outlets whose current status already held at the period's end;
    // the ids of the others are set aside for the history.
    let scanned = s
        .ledgers
        .with(org_id, |ledger| {
            if !ledger.covers(lookback_from) {
                return None;
            }
            let ix = crate::index::registry::read(&index);
            // The outlets asked for by id are looked up, not searched for in a pass over all.
            let in_box = f.bbox.map(|[x0, y0, x1, y1]| ix.within_bbox(x0, y0, x1, y1));
            let mut outlets: Vec<&IndexedOutlet> = match (f.ids, &in_box) {
                (Some(ids), _) => ids.iter().filter_map(|id| ix.get(*id)).collect(),
                (None, Some(boxed)) => boxed.iter().filter_map(|id| ix.get(*id)).collect(),
                (None, None) => ix.iter().collect(),
            };
            if let (Some(_), Some(boxed)) = (f.ids, &in_box) {
                let boxed: foldhash::HashSet<i64> = boxed.iter().copied().collect();
                outlets.retain(|o| boxed.contains(&o.id));
            }
            let scan = |part: &[&IndexedOutlet]| {
                let mut found = Statuses::default();
                let mut changed_since = Vec::new();
                for o in part {
                    let id = o.id;
                    let Some(l) = o.label.as_deref() else { continue };
                    if subtree.as_ref().is_some_and(|s| !o.territory_id.is_some_and(|t| s.contains(&t)))
                        || f.tier.is_some_and(|t| *l.tier != *t)
                        || f.channel_type.is_some_and(|c| l.channel_type != c)
                    {
                        continue;
                    }
                    if l.status_since > end_at {
                        changed_since.push(id);
                        continue;
                    }
                    let Some(p) = tier_of(&policies, &l.tier).map(|i| &policies[i]) else { continue };
                    let counted = ledger.of(id);
                    let last_valid = counted.last_in(lookback_from, to);
                    let status = coverage::status_of(p.required_visits, p.cycle_days, o.active, last_valid, to);
                    if f.status.is_some_and(|s| s != status) {
                        continue;
                    }
                    if f.counts_only {
                        *found.counts.entry(status).or_default() += 1;
                        continue;
                    }
                    found.rows.push(OutletStatusRow {
                        outlet_id: id,
                        code: l.code.to_string(),
                        name: l.name.to_string(),
                        tier: l.tier.to_string(),
                        channel_type: l.channel_type,
                        lat: o.lat,
                        lon: o.lon,
                        status,
                        last_valid_visit: last_valid,
                        valid_visits: counted.within(from, to).len(),
                        required_visits: compliance::required_in(p.required_visits, p.cycle_days, period_days),
                    });
                    if found.rows.len() >= wanted {
                        // Outlets set aside further on in id order would come after these.
                        break;
                    }
                }
                (found, changed_since)
            };
            if !f.counts_only {
                // Rows go out by id (the box's are); counts need no order and split in two.
                if f.bbox.is_none() || f.ids.is_some() {
                    outlets.sort_unstable_by_key(|o| o.id);
                }
                return Some(scan(&outlets));
            }
            let ((mut found, mut changed_since), (second, more_changed)) = in_halves(&outlets, scan);
            for (status, n) in second.counts {
                *found.counts.entry(status).or_default() += n;
            }
            changed_since.extend(more_changed);
            Some((found, changed_since))
        })
        .await?
        .flatten();
    let Some((mut found, changed_since)) = scanned else { return Ok(Statuses::of(from_db(select, wanted).await?, f)) };
    if !changed_since.is_empty() {
        let history =
            from_db(db::compliance::StatusSelection { ids: Some(&changed_since), ..select }, usize::MAX).await?;
        let history = Statuses::of(history, f);
        for (status, n) in history.counts {
            *found.counts.entry(status).or_default() += n;
        }
        found.rows.extend(history.rows);
        found.rows.sort_unstable_by_key(|r| r.outlet_id);
    }
    found.rows.truncate(wanted);
    Ok(found)
}

/// The position of `tier` among the policies (a handful: comparing the first byte before the
/// whole name saves a `memcmp` call per outlet).
fn tier_of(policies: &[crate::domain::outlet::TierPolicy], tier: &str) -> Option<usize> {
    policies.iter().position(|p| {
        p.tier.len() == tier.len() && p.tier.as_bytes().first() == tier.as_bytes().first() && *p.tier == *tier
    })
}

/// What [`statuses`] found: the rows, or with [`StatusFilter::counts_only`] how many of each status.
#[derive(Default)]
pub struct Statuses {
    pub rows: Vec<OutletStatusRow>,
    pub counts: BTreeMap<PeriodStatus, usize>,
}

impl Statuses {
    fn of(rows: Vec<OutletStatusRow>, f: StatusFilter<'_>) -> Statuses {
        if !f.counts_only {
            return Statuses { rows, counts: BTreeMap::new() };
        }
        let mut counts = BTreeMap::new();
        for r in rows {
            *counts.entry(r.status).or_default() += 1;
        }
        Statuses { rows: Vec::new(), counts }
    }
}

/// One outlet of U (active at the start of the period) in a coverage scope, with what its figures
/// are grouped by; `tier` and `channel_type` index [`Tallies::names`].
pub struct ScopeTally {
    /// Its H3 cell at the resolution the tallies were asked for.
    pub cell: Option<h3o::CellIndex>,
    pub tier: u16,
    pub channel_type: u16,
    /// The direct child of the scope root it lies under (`None`: the root's own, or no root).
    pub child_id: Option<i64>,
    pub tally: Tally,
}

/// The outlets of U of a scope and period (in no particular order: the figures do not depend on it).
#[derive(Default)]
pub struct Tallies {
    pub outlets: Vec<ScopeTally>,
    /// Tier and channel type names.
    pub names: Vec<String>,
    /// How many outlets of the scope end the period with each status, when asked for and the
    /// ledger reaches the last-visit lookback (else [`statuses`] counts them).
    pub status_counts: Option<[usize; PeriodStatus::ALL.len()]>,
}

/// `f` of the first and of the second half of `items`, on two threads when there are many.
fn in_halves<I: Sync, T: Send>(items: &[I], f: impl Fn(&[I]) -> T + Sync) -> (T, T) {
    let (a, b) = items.split_at(items.len() / 2);
    if items.len() < 50_000 {
        return (f(a), f(b));
    }
    std::thread::scope(|s| {
        let second = s.spawn(|| f(b));
        let first = f(a);
        (first, second.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
    })
}

impl Tallies {
    /// Adds the outlets of `other`, whose names may have been numbered differently.
    fn append(&mut self, other: Tallies) {
        if let (Some(counts), Some(more)) = (self.status_counts.as_mut(), other.status_counts) {
            counts.iter_mut().zip(more).for_each(|(n, m)| *n += m);
        }
        let renumber: Vec<u16> = other.names.iter().map(|n| self.name(n)).collect();
        self.outlets.extend(other.outlets.into_iter().map(|mut o| {
            o.tier = renumber[usize::from(o.tier)];
            o.channel_type = renumber[usize::from(o.channel_type)];
            o
        }));
    }

    /// The index of a name (a handful of tiers and channel types: a linear search beats hashing).
    fn name(&mut self, s: &str) -> u16 {
        if let Some(i) = self.names.iter().position(|n| n == s) {
            return i as u16;
        }
        self.names.push(s.to_owned());
        (self.names.len() - 1) as u16
    }

    /// The figures of all of them.
    pub fn figures(&self) -> OutletFigures {
        let mut sum = FiguresSum::default();
        self.outlets.iter().for_each(|o| sum.add(&o.tally));
        sum.figures()
    }

    /// The figures per tier (`by_tier`) or per channel type, by name.
    pub fn grouped(&self, by_tier: bool) -> Vec<GroupRow> {
        let mut groups: BTreeMap<&str, FiguresSum> = BTreeMap::new();
        for o in &self.outlets {
            let key = if by_tier { o.tier } else { o.channel_type };
            groups.entry(&self.names[usize::from(key)]).or_default().add(&o.tally);
        }
        groups.into_iter().map(|(k, sum)| GroupRow { key: k.to_owned(), outlets: sum.figures() }).collect()
    }

    /// The figures of the outlets under each direct child, by child id.
    pub fn by_child(&self) -> HashMap<i64, OutletFigures> {
        let mut sums: HashMap<i64, FiguresSum> = HashMap::new();
        for o in &self.outlets {
            if let Some(c) = o.child_id {
                sums.entry(c).or_default().add(&o.tally);
            }
        }
        sums.into_iter().map(|(c, sum)| (c, sum.figures())).collect()
    }

    /// The figures per H3 cell (of the resolution the tallies were asked for).
    pub fn cells(&self) -> Vec<CellFigures> {
        coverage::h3_cells(self.outlets.iter().filter_map(|o| Some((o.cell?, &o.tally))))
    }
}

/// The outlets of U of territory `root`'s subtree (the org's for `None`) for the local days
/// `[from, to]`, each with its tally and its H3 cell at `res`.
///
/// From memory where it can be (outlet index and visit ledger), as [`statuses`] is; from the
/// database (`scope_outlets.sql`, `scope_visits.sql`) when the ledger does not reach `from`. The
/// status at the start of the period of outlets whose status changed since is read from the history.
pub async fn tallies(
    s: Stores<'_>,
    org_id: i64,
    root: Option<i64>,
    (from, to): (NaiveDate, NaiveDate),
    bbox: Option<[f64; 4]>,
    res: Option<h3o::Resolution>,
    count_statuses: bool,
) -> Result<Tallies, sqlx::Error> {
    let period_days = (to - from).num_days() + 1;
    let lookback_from = to - Duration::days(LAST_VISIT_LOOKBACK_DAYS - 1);
    let (start_at, end_at, children, policies, index) = tokio::try_join!(
        db::compliance::day_end(s.db, org_id, from - Duration::days(1)),
        db::compliance::day_end(s.db, org_id, to),
        async {
            match root {
                Some(r) => db::territories::child_of_each(s.db, org_id, r).await.map(Some),
                None => Ok(None),
            }
        },
        db::tiers::list(s.db, org_id),
        s.index.org(org_id),
    )?;
    let children: Option<foldhash::HashMap<i64, Option<i64>>> = children.map(|c| c.into_iter().collect());
    // Names: the tiers in policy order, then the channel types (in `ChannelType::ALL` order).
    let names: Vec<String> =
        policies.iter().map(|p| p.tier.clone()).chain(ChannelType::ALL.iter().map(ToString::to_string)).collect();
    let tally_of = |visits: Visits<'_>, o: &IndexedOutlet, t: &mut Tallies| {
        let l = o.label.as_deref()?;
        let tier = tier_of(&policies, &l.tier)?;
        let p = &policies[tier];
        let visits = visits.within(from, to);
        let tally = Tally {
            required_visits: compliance::required_in(p.required_visits, p.cycle_days, period_days),
            valid_visits: visits.len(),
            dwell_ok_visits: visits.iter().filter(|v| v.dwell_s >= p.min_dwell_s).count(),
        };
        // At most MAX_TIERS tiers plus the channel types: far below u16::MAX.
        let channel_type = (policies.len() + l.channel_type as usize) as u16;
        let child_id = children.as_ref().and_then(|c| o.territory_id.and_then(|tid| c.get(&tid).copied().flatten()));
        t.outlets.push(ScopeTally {
            cell: res.and_then(|r| o.cell_at(r)),
            tier: tier as u16,
            channel_type,
            child_id,
            tally,
        });
        Some(())
    };
    // One pass over the outlets in scope; those whose status changed since the period's start are
    // set aside for the history.
    let tallied = s
        .ledgers
        .with(org_id, |ledger| {
            if !ledger.covers(from) {
                return None;
            }
            let ix = crate::index::registry::read(&index);
            let outlets: Vec<&IndexedOutlet> = match bbox {
                Some([x0, y0, x1, y1]) => {
                    ix.within_bbox(x0, y0, x1, y1).into_iter().filter_map(|id| ix.get(id)).collect()
                }
                None => ix.iter().collect(),
            };
            // The statuses at the end are counted in the same pass (as `statuses` does), those
            // changed since the end set aside for it.
            let counting = count_statuses && ledger.covers(lookback_from);
            let scan = |part: &[&IndexedOutlet]| {
                let mut t = Tallies {
                    outlets: Vec::with_capacity(part.len()),
                    names: names.clone(),
                    status_counts: counting.then_some([0; PeriodStatus::ALL.len()]),
                };
                let (mut changed_since, mut changed_since_end) = (Vec::new(), Vec::new());
                for o in part {
                    let Some(l) = o.label.as_deref() else { continue };
                    if children.as_ref().is_some_and(|c| !o.territory_id.is_some_and(|tid| c.contains_key(&tid))) {
                        continue;
                    }
                    let visits = ledger.of(o.id);
                    if let Some(counts) = t.status_counts.as_mut() {
                        if l.status_since > end_at {
                            changed_since_end.push(o.id);
                        } else if let Some(p) = tier_of(&policies, &l.tier).map(|i| &policies[i]) {
                            let last_valid = visits.last_in(lookback_from, to);
                            let status = coverage::status_of(p.required_visits, p.cycle_days, o.active, last_valid, to);
                            counts[status as usize] += 1;
                        }
                    }
                    if l.status_since > start_at {
                        changed_since.push(o.id);
                    } else if o.active {
                        tally_of(visits, o, &mut t);
                    }
                }
                (t, changed_since, changed_since_end)
            };
            let ((mut t, mut changed_since, mut changed_since_end), (second, more_changed, more_changed_end)) =
                in_halves(&outlets, scan);
            t.append(second);
            changed_since.extend(more_changed);
            changed_since_end.extend(more_changed_end);
            Some((t, changed_since, changed_since_end, counting))
        })
        .await?
        .flatten();
    if let Some((mut t, changed_since, changed_since_end, counting)) = tallied {
        if count_statuses {
            // The outlets the pass could not count (or all of them) are counted by `statuses`.
            let ids = counting.then_some(changed_since_end.as_slice());
            if ids.is_none_or(|ids| !ids.is_empty()) {
                let f = StatusFilter { limit: usize::MAX, counts_only: true, ids, ..StatusFilter::default() };
                let more = statuses(s, org_id, root, (from, to), f).await?.counts;
                let counts = t.status_counts.get_or_insert([0; PeriodStatus::ALL.len()]);
                for (status, n) in more {
                    counts[status as usize] += n;
                }
            }
        }
        if !changed_since.is_empty() {
            let select = db::compliance::StatusSelection { root, ids: Some(&changed_since), ..Default::default() };
            let day_before = from - Duration::days(1);
            let rows =
                db::compliance::outlet_statuses(s.db, org_id, select, (day_before, day_before), 1, i64::MAX).await?;
            let active: Vec<i64> =
                rows.into_iter().filter(|r| r.status_at_end == OutletStatus::Active).map(|r| r.id).collect();
            let added = s
                .ledgers
                .with(org_id, |ledger| {
                    let ix = crate::index::registry::read(&index);
                    for id in &active {
                        if let Some(o) = ix.get(*id) {
                            tally_of(ledger.of(*id), o, &mut t);
                        }
                    }
                    t
                })
                .await?;
            t = added.unwrap_or_default();
        }
        return Ok(t);
    }
    let outlets = db::compliance::subtree_outlets(s.db, org_id, root, from).await?;
    let visits = db::compliance::subtree_visits(s.db, org_id, root, from, to).await?;
    let scope: Vec<ScopeOutlet> = outlets.iter().map(|o| o.outlet.clone()).collect();
    let by_id: HashMap<i64, &db::compliance::SubtreeOutlet> = outlets.iter().map(|o| (o.outlet.id, o)).collect();
    let mut t = Tallies { outlets: Vec::new(), names, status_counts: None };
    let in_box = |lat: f64, lon: f64| {
        bbox.is_none_or(|[x0, y0, x1, y1]| {
            (y0..=y1).contains(&lat) && if x0 <= x1 { (x0..=x1).contains(&lon) } else { lon >= x0 || lon <= x1 }
        })
    };
    for (o, tally) in compliance::tallies(&scope, &visits, period_days) {
        let s = by_id[&o.id];
        if !in_box(s.lat, s.lon) {
            continue;
        }
        let (tier, channel_type) = (t.name(&o.tier), t.name(o.channel_type.as_str()));
        t.outlets.push(ScopeTally {
            cell: res.and_then(|r| coverage::cell_of(s.lat, s.lon, r)),
            tier,
            channel_type,
            child_id: s.child_id,
            tally,
        });
    }
    Ok(t)
}

/// The coverage of territory `t` for the local days `[from, to]`: its outlet figures, by tier,
/// channel type, direct child and H3 cell of resolution `res`, and how many of its outlets end the
/// period with each status.
pub async fn territory_coverage(
    s: Stores<'_>,
    org_id: i64,
    t: db::territories::Territory,
    (from, to): (NaiveDate, NaiveDate),
    res: h3o::Resolution,
) -> Result<TerritoryCoverage, sqlx::Error> {
    let period_days = (to - from).num_days() + 1;
    let tallies = tallies(s, org_id, Some(t.id), (from, to), None, Some(res), true).await?;
    let cells = tallies.cells();
    let mut by_child = tallies.by_child();
    let children = db::territories::children(s.db, org_id, t.id)
        .await?
        .into_iter()
        .map(|c| ChildCoverage {
            outlets: by_child.remove(&c.id).unwrap_or_else(|| FiguresSum::default().figures()),
            territory_id: c.id,
            code: c.code,
            name: c.name,
        })
        .collect();
    let mut status_counts: BTreeMap<PeriodStatus, usize> = PeriodStatus::ALL.iter().map(|s| (*s, 0)).collect();
    if let Some(counted) = tallies.status_counts {
        for (status, n) in PeriodStatus::ALL.into_iter().zip(counted) {
            status_counts.insert(status, n);
        }
    } else {
        let all = StatusFilter { limit: usize::MAX, counts_only: true, ..StatusFilter::default() };
        for (status, n) in statuses(s, org_id, Some(t.id), (from, to), all).await?.counts {
            *status_counts.entry(status).or_default() += n;
        }
    }
    Ok(TerritoryCoverage {
        territory_id: t.id,
        code: t.code,
        name: t.name,
        from,
        to,
        period_days,
        outlets: tallies.figures(),
        by_tier: tallies.grouped(true),
        by_channel_type: tallies.grouped(false),
        children,
        h3: H3Coverage {
            resolution: u8::from(res),
            white_space_cells: cells.iter().filter(|c| c.white_space).count(),
            cells,
        },
        status_counts,
    })
}

/// One planned stop of the route.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RouteStop {
    pub seq: i32,
    pub outlet_id: i64,
    pub lat: f64,
    pub lon: f64,
}

/// How much of a rep-day's planned route the rep's track came within `within_m` of.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RouteCoverage {
    pub rep_id: i64,
    pub date: NaiveDate,
    pub within_m: f64,
    /// The planned visits of the day in route order.
    pub stops: Vec<RouteStop>,
    #[serde(flatten)]
    pub coverage: CorridorCoverage,
    /// The rep's usable fixes of the day the corridor was measured against.
    pub fix_count: usize,
}

/// Route corridor coverage of rep `rep_id` on the local day `date`: the share of the planned
/// route's line (the day's planned visits in route order) within `within_m` metres of the rep's
/// track (the line through the usable fixes, long gaps not bridged).
pub async fn route_coverage(
    db: &sqlx::PgPool,
    org_id: i64,
    rep_id: i64,
    date: NaiveDate,
    within_m: f64,
) -> Result<RouteCoverage, sqlx::Error> {
    db::plans::materialize_recurring(db, org_id, rep_id, date, date).await?;
    let stops: Vec<RouteStop> = db::plans::day_plan(db, org_id, rep_id, date)
        .await?
        .into_iter()
        .map(|e| RouteStop { seq: e.seq, outlet_id: e.outlet_id, lat: e.lat, lon: e.lon })
        .collect();
    let fixes = db::visits::day_fixes(db, org_id, rep_id, date, date).await?;
    let fixes: Vec<_> = fixes.into_iter().map(|(_, f)| f).collect();
    let track = compliance::track_pieces(&fixes, &compliance::ComplianceRules::default());
    let route: Vec<(f64, f64)> = stops.iter().map(|s| (s.lat, s.lon)).collect();
    Ok(RouteCoverage {
        rep_id,
        date,
        within_m,
        coverage: coverage::corridor_coverage(&route, &track, within_m),
        fix_count: track.iter().map(Vec::len).sum(),
        stops,
    })
}
