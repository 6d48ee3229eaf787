//! The monthly assessment of a territory: its active reps ranked by plan compliance and verified
//! rate, its direct child territories by plan compliance, outlet coverage and frequency
//! compliance, each with the change from the month before. The figures are the compliance API's
//! for the same month (the same functions over the same rows).

use crate::db;
use crate::domain::assessment::{self, Standing};
use crate::domain::compliance::{self, ComplianceRules, PeriodTotals};
use chrono::NaiveDate;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RepStanding {
    pub rep_id: i64,
    pub login: String,
    pub name: String,
    pub territory_id: Option<i64>,
    pub plan_compliance: Standing,
    pub verified_rate: Standing,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TerritoryStanding {
    pub territory_id: i64,
    pub code: String,
    pub name: String,
    pub plan_compliance: Standing,
    pub coverage: Standing,
    pub frequency_compliance: Standing,
}

/// The bulletin of one month.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Assessment {
    pub territory_id: i64,
    pub code: String,
    /// `YYYY-MM`.
    pub month: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub previous_from: NaiveDate,
    pub previous_to: NaiveDate,
    /// By rank of plan compliance (unranked last), then login.
    pub reps: Vec<RepStanding>,
    /// By rank of coverage (unranked last), then code.
    pub territories: Vec<TerritoryStanding>,
}

/// One figure of a child territory's month.
type Figure = fn(&(PeriodTotals, compliance::OutletFigures)) -> Option<f64>;

struct Month {
    reps: HashMap<i64, PeriodTotals>,
    children: HashMap<i64, (PeriodTotals, compliance::OutletFigures)>,
}

async fn month(
    db: &mut PgConnection,
    org_id: i64,
    root: i64,
    reps: &[db::compliance::SubtreeRep],
    children: &[db::territories::Territory],
    (from, to): (NaiveDate, NaiveDate),
) -> Result<Month, sqlx::Error> {
    let rules = ComplianceRules::default();
    let mut by_rep = HashMap::new();
    let mut plan_of_child: HashMap<i64, PeriodTotals> = HashMap::new();
    for r in reps {
        let inputs = db::compliance::read_rep_inputs(&mut *db, org_id, r.id, from, to).await?;
        let (_, totals) = compliance::rep_period(inputs, &rules);
        if let Some(c) = r.child_id {
            plan_of_child.entry(c).or_default().add(&totals);
        }
        by_rep.insert(r.id, totals);
    }
    let period_days = (to - from).num_days() + 1;
    let outlets = db::compliance::subtree_outlets(&mut *db, org_id, Some(root), from).await?;
    let visits = db::compliance::subtree_visits(&mut *db, org_id, Some(root), from, to).await?;
    let mut by_child = HashMap::new();
    for c in children {
        let mine: Vec<_> = outlets.iter().filter(|o| o.child_id == Some(c.id)).map(|o| o.outlet.clone()).collect();
        let figures = compliance::outlet_figures(&mine, &visits, period_days);
        by_child.insert(c.id, (plan_of_child.remove(&c.id).unwrap_or_default(), figures));
    }
    Ok(Month { reps: by_rep, children: by_child })
}

/// Turns the recurring plans of territory `root`'s reps into planned visits for the month
/// starting on `first` and the month before, so that [`assessment`] can read them.
pub async fn materialize(db: &PgPool, org_id: i64, root: i64, first: NaiveDate) -> Result<(), sqlx::Error> {
    let (_, to) = assessment::month_days(first);
    let (from, _) = assessment::month_days(assessment::previous_month(first));
    for r in db::compliance::subtree_reps(db, org_id, root).await? {
        db::plans::materialize_recurring(db, org_id, r.id, from, to).await?;
    }
    Ok(())
}

/// The assessment of territory `root` for the month starting on `first` (read only: recurring
/// plans are read as far as [`materialize`] made them planned visits). Run it in one snapshot.
pub async fn assessment(
    db: &mut PgConnection,
    org_id: i64,
    root: &db::territories::Territory,
    first: NaiveDate,
) -> Result<Assessment, sqlx::Error> {
    let (from, to) = assessment::month_days(first);
    let (previous_from, previous_to) = assessment::month_days(assessment::previous_month(first));
    let reps = db::compliance::subtree_reps(&mut *db, org_id, root.id).await?;
    let children = db::territories::children(&mut *db, org_id, root.id).await?;
    let now = month(db, org_id, root.id, &reps, &children, (from, to)).await?;
    let before = month(db, org_id, root.id, &reps, &children, (previous_from, previous_to)).await?;

    let pick = |m: &Month, id: i64, f: fn(&PeriodTotals) -> Option<f64>| m.reps.get(&id).and_then(f);
    let plan: fn(&PeriodTotals) -> Option<f64> = |t| t.plan_compliance_pct;
    let verified: fn(&PeriodTotals) -> Option<f64> = |t| t.verified_rate_pct;
    let column = |m: &Month, f| reps.iter().map(|r| pick(m, r.id, f)).collect::<Vec<_>>();
    let plan_s = assessment::standings(&column(&now, plan), &column(&before, plan));
    let verified_s = assessment::standings(&column(&now, verified), &column(&before, verified));
    let mut rep_rows: Vec<RepStanding> = reps
        .iter()
        .zip(plan_s.into_iter().zip(verified_s))
        .map(|(r, (plan_compliance, verified_rate))| RepStanding {
            rep_id: r.id,
            login: r.login.clone(),
            name: r.name.clone(),
            territory_id: r.territory_id,
            plan_compliance,
            verified_rate,
        })
        .collect();
    rep_rows.sort_by(|a, b| {
        (a.plan_compliance.rank.unwrap_or(usize::MAX), &a.login)
            .cmp(&(b.plan_compliance.rank.unwrap_or(usize::MAX), &b.login))
    });

    let child_column =
        |m: &Month, f: Figure| children.iter().map(|c| m.children.get(&c.id).and_then(f)).collect::<Vec<_>>();
    let c_plan: Figure = |x| x.0.plan_compliance_pct;
    let c_cov: Figure = |x| x.1.coverage_pct;
    let c_freq: Figure = |x| x.1.frequency_compliance_pct;
    let p = assessment::standings(&child_column(&now, c_plan), &child_column(&before, c_plan));
    let cv = assessment::standings(&child_column(&now, c_cov), &child_column(&before, c_cov));
    let fr = assessment::standings(&child_column(&now, c_freq), &child_column(&before, c_freq));
    let mut territories: Vec<TerritoryStanding> = children
        .iter()
        .zip(p.into_iter().zip(cv.into_iter().zip(fr)))
        .map(|(c, (plan_compliance, (coverage, frequency_compliance)))| TerritoryStanding {
            territory_id: c.id,
            code: c.code.clone(),
            name: c.name.clone(),
            plan_compliance,
            coverage,
            frequency_compliance,
        })
        .collect();
    territories.sort_by(|a, b| {
        (a.coverage.rank.unwrap_or(usize::MAX), &a.code).cmp(&(b.coverage.rank.unwrap_or(usize::MAX), &b.code))
    });
    Ok(Assessment {
        territory_id: root.id,
        code: root.code.clone(),
        month: first.format("%Y-%m").to_string(),
        from,
        to,
        previous_from,
        previous_to,
        reps: rep_rows,
        territories,
    })
}
