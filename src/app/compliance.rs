//! Compliance figures of a territory: the plan figures of its reps and the outlet figures of its
//! outlets, rolled up and by child territory, tier and channel type, and each outlet's visit
//! frequency. Definitions in `docs/domain.md`; the arithmetic is `domain::compliance`.

use super::Error;
use super::coverage::GroupRow;
use crate::db;
use crate::db::compliance::SubtreeOutlet;
use crate::db::territories::Territory;
use crate::domain::compliance::{self, ComplianceRules, OutletFigures, OutletFrequency, OutletVisit, PeriodTotals};
use crate::domain::validation::FieldError;
use chrono::NaiveDate;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// One rep's figures in a territory roll-up.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RepRow {
    pub rep_id: i64,
    pub login: String,
    pub name: String,
    pub territory_id: Option<i64>,
    pub totals: PeriodTotals,
}

/// A child territory's figures.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ChildRow {
    pub territory_id: i64,
    pub code: String,
    pub name: String,
    /// Plan figures of the reps of the child's subtree.
    pub plan: PeriodTotals,
    /// Outlet figures of the child's subtree.
    pub outlets: OutletFigures,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TerritoryCompliance {
    pub territory_id: i64,
    pub code: String,
    pub name: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub period_days: i64,
    /// Plan figures of every active rep of the subtree, summed.
    pub plan: PeriodTotals,
    /// Coverage, frequency and dwell compliance of the subtree's outlets.
    pub outlets: OutletFigures,
    pub by_tier: Vec<GroupRow>,
    pub by_channel_type: Vec<GroupRow>,
    /// Each direct child territory, by code.
    pub children: Vec<ChildRow>,
    /// Each active rep of the subtree, by id.
    pub reps: Vec<RepRow>,
}

pub fn figures_of<'a>(
    outlets: impl Iterator<Item = &'a SubtreeOutlet>,
    visits: &[OutletVisit],
    period_days: i64,
) -> OutletFigures {
    let outlets: Vec<_> = outlets.map(|o| o.outlet.clone()).collect();
    compliance::outlet_figures(&outlets, visits, period_days)
}

pub fn grouped(
    outlets: &[SubtreeOutlet],
    visits: &[OutletVisit],
    period_days: i64,
    key: fn(&SubtreeOutlet) -> &str,
) -> Vec<GroupRow> {
    let mut groups: BTreeMap<&str, Vec<&SubtreeOutlet>> = BTreeMap::new();
    for o in outlets {
        groups.entry(key(o)).or_default().push(o);
    }
    groups
        .into_iter()
        .map(|(k, members)| GroupRow {
            key: k.to_owned(),
            outlets: figures_of(members.into_iter(), visits, period_days),
        })
        .collect()
}

/// Most rep-days (reps x days) one territory roll-up computes.
pub const MAX_REP_DAYS: i64 = 20_000;

/// The compliance of territory `t` for the local days `[from, to]`: the plan figures of every
/// active rep of its subtree (summed and per rep), its outlets' figures (also by tier and channel
/// type), and both for each direct child. Refused past `MAX_REP_DAYS` rep-days.
pub async fn territory_compliance(
    db: &sqlx::PgPool,
    org_id: i64,
    t: Territory,
    (from, to): (NaiveDate, NaiveDate),
) -> Result<TerritoryCompliance, Error> {
    let period_days = (to - from).num_days() + 1;
    let subtree_reps = db::compliance::subtree_reps(db, org_id, t.id).await?;
    let rep_days = subtree_reps.len() as i64 * period_days;
    if rep_days > MAX_REP_DAYS {
        return Err(Error::Invalid(vec![FieldError::new(
            "to",
            format!(
                "{} reps x {period_days} days is more than {MAX_REP_DAYS} rep-days: ask for a shorter period or a smaller territory",
                subtree_reps.len()
            ),
        )]));
    }
    let outlets = db::compliance::subtree_outlets(db, org_id, Some(t.id), from).await?;
    let visits = db::compliance::subtree_visits(db, org_id, Some(t.id), from, to).await?;
    let rules = ComplianceRules::default();
    let mut plan = PeriodTotals::default();
    let mut reps = Vec::new();
    let mut by_child: HashMap<i64, PeriodTotals> = HashMap::new();
    for r in subtree_reps {
        let inputs = db::compliance::rep_inputs(db, org_id, r.id, from, to).await?;
        let (_, totals) = compliance::rep_period(inputs, &rules);
        plan.add(&totals);
        if let Some(child) = r.child_id {
            by_child.entry(child).or_default().add(&totals);
        }
        reps.push(RepRow { rep_id: r.id, login: r.login, name: r.name, territory_id: r.territory_id, totals });
    }
    let mut children = Vec::new();
    for c in db::territories::children(db, org_id, t.id).await? {
        let figures = figures_of(outlets.iter().filter(|o| o.child_id == Some(c.id)), &visits, period_days);
        children.push(ChildRow {
            territory_id: c.id,
            plan: by_child.remove(&c.id).unwrap_or_default(),
            outlets: figures,
            code: c.code,
            name: c.name,
        });
    }
    Ok(TerritoryCompliance {
        territory_id: t.id,
        code: t.code,
        name: t.name,
        from,
        to,
        period_days,
        plan,
        outlets: figures_of(outlets.iter(), &visits, period_days),
        by_tier: grouped(&outlets, &visits, period_days, |o| &o.outlet.tier),
        by_channel_type: grouped(&outlets, &visits, period_days, |o| o.outlet.channel_type.as_str()),
        children,
        reps,
    })
}

/// One outlet's frequency in the territory list.
#[derive(Serialize, utoipa::ToSchema)]
pub struct FrequencyRow {
    pub code: String,
    pub name: String,
    pub tier: String,
    pub territory_child_id: Option<i64>,
    #[serde(flatten)]
    pub frequency: OutletFrequency,
}

/// Each outlet of territory `territory_id`'s subtree with its visit frequency against its tier's
/// requirement for the local days `[from, to]` (only those under `below_pct`, when given),
/// lowest first, then by code.
pub async fn outlet_frequencies(
    db: &sqlx::PgPool,
    org_id: i64,
    territory_id: i64,
    (from, to): (NaiveDate, NaiveDate),
    below_pct: Option<f64>,
) -> Result<Vec<FrequencyRow>, sqlx::Error> {
    let period_days = (to - from).num_days() + 1;
    let outlets = db::compliance::subtree_outlets(db, org_id, Some(territory_id), from).await?;
    let visits = db::compliance::subtree_visits(db, org_id, Some(territory_id), from, to).await?;
    let plain: Vec<_> = outlets.iter().map(|o| o.outlet.clone()).collect();
    let by_id: HashMap<i64, &SubtreeOutlet> = outlets.iter().map(|o| (o.outlet.id, o)).collect();
    let mut rows: Vec<FrequencyRow> = compliance::outlet_frequencies(&plain, &visits, period_days)
        .into_iter()
        .filter(|f| below_pct.is_none_or(|b| f.frequency_compliance_pct < b))
        .filter_map(|f| {
            let o = by_id.get(&f.outlet_id)?;
            Some(FrequencyRow {
                code: o.code.clone(),
                name: o.name.clone(),
                tier: o.outlet.tier.clone(),
                territory_child_id: o.child_id,
                frequency: f,
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        a.frequency.frequency_compliance_pct.total_cmp(&b.frequency.frequency_compliance_pct).then(a.code.cmp(&b.code))
    });
    Ok(rows)
}
