//! The access matrix: every caller x every endpoint group x target, over real HTTP against a real
//! `PostGIS`. Expected statuses are derived from the rules, not copied from the handlers:
//!
//! 1. no token, a bad token or a revoked token: 401;
//! 2. the caller's role (or device credential) lacks the endpoint's action
//!    (`domain::access::allows` / `device_allows`): 403;
//! 3. the addressed object belongs to another org: 404 (and its data never appears); an id of
//!    another org given *in the body* (a reference) is "no such thing in this org": 422;
//! 4. the object (or the territory a new object would go to) is outside the caller's territory
//!    scope: 403; reps see only their own pings; a device acts for its rep (the rep in T1): the
//!    rep's scope, the rep's own pings;
//! 5. otherwise the endpoint's success status.
//!
//! Every case runs; all mismatches (status, list content, leaked org-B data) are collected and
//! reported at once as a table.

use crate::common;

use common::{IN_T1, IN_T2, IN_TB, ORG_B_MARKER, Res, TestApp, World};
use fieldvisit::domain::access::{Action, Role, allows, device_allows};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Admin,
    /// An admin whose scope is the T1 subtree.
    AdminT1,
    Manager,
    Supervisor,
    Auditor,
    Rep,
    /// The rep's phone (device bearer token).
    Device,
    NoToken,
    BadToken,
    RevokedToken,
}

const CALLERS: [Caller; 10] = [
    Caller::Admin,
    Caller::AdminT1,
    Caller::Manager,
    Caller::Supervisor,
    Caller::Auditor,
    Caller::Rep,
    Caller::Device,
    Caller::NoToken,
    Caller::BadToken,
    Caller::RevokedToken,
];

/// What a caller is, for the expectations.
enum Principal {
    /// A user with a role; `org_wide` = no territory scope.
    User {
        role: Role,
        org_wide: bool,
    },
    Device,
}

impl Caller {
    fn name(self) -> &'static str {
        match self {
            Caller::Admin => "admin",
            Caller::AdminT1 => "admin@T1",
            Caller::Manager => "manager@T1",
            Caller::Supervisor => "supervisor@T1",
            Caller::Auditor => "auditor@T1",
            Caller::Rep => "rep@T1",
            Caller::Device => "device(rep)",
            Caller::NoToken => "no token",
            Caller::BadToken => "bad token",
            Caller::RevokedToken => "revoked token",
        }
    }

    fn token(self, w: &World) -> Option<String> {
        match self {
            Caller::Admin => Some(w.admin.token.clone()),
            Caller::AdminT1 => Some(w.admin_t1.token.clone()),
            Caller::Manager => Some(w.manager.token.clone()),
            Caller::Supervisor => Some(w.supervisor.token.clone()),
            Caller::Auditor => Some(w.auditor.token.clone()),
            Caller::Rep => Some(w.rep.token.clone()),
            Caller::Device => Some(w.device.token.clone()),
            Caller::NoToken => None,
            Caller::BadToken => Some(format!("fvt_{}", "0".repeat(64))),
            Caller::RevokedToken => Some(w.revoked.token.clone()),
        }
    }

    /// `None` for callers that must not be authenticated.
    fn principal(self) -> Option<Principal> {
        let user = |role, org_wide| Some(Principal::User { role, org_wide });
        match self {
            Caller::Admin => user(Role::Admin, true),
            Caller::AdminT1 => user(Role::Admin, false),
            Caller::Manager => user(Role::Manager, false),
            Caller::Supervisor => user(Role::Supervisor, false),
            Caller::Auditor => user(Role::Auditor, false),
            Caller::Rep => user(Role::Rep, false),
            Caller::Device => Some(Principal::Device),
            Caller::NoToken | Caller::BadToken | Caller::RevokedToken => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// The endpoint addresses no object.
    None,
    /// In the caller's own territory T1 (for pings: the rep themself).
    T1,
    /// Another rep in T1 (pings only).
    T1Peer,
    /// In territory T2 of the same org.
    T2,
    /// The whole org: a user or territory created without a territory/parent, an outlet outside
    /// every territory.
    WholeOrg,
    /// In org B.
    OrgB,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::None => "-",
            Target::T1 => "T1",
            Target::T1Peer => "T1 (other rep)",
            Target::T2 => "T2",
            Target::WholeOrg => "whole org",
            Target::OrgB => "org B",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ep {
    Me,
    ListOutlets,
    GetOutlet,
    ListTerritories,
    GetTerritory,
    GetTiers,
    ListUsers,
    GetUser,
    ListDevices,
    RepPings,
    AuditLog,
    // Writes come after every read, so list contents are checked against the seeded world.
    CreateOutlet,
    PatchOutlet,
    CreateTerritory,
    PutTier,
    CreateUser,
    ReissueToken,
    RevokeToken,
    CreateDevice,
}

const ENDPOINTS: [Ep; 19] = [
    Ep::Me,
    Ep::ListOutlets,
    Ep::GetOutlet,
    Ep::ListTerritories,
    Ep::GetTerritory,
    Ep::GetTiers,
    Ep::ListUsers,
    Ep::GetUser,
    Ep::ListDevices,
    Ep::RepPings,
    Ep::AuditLog,
    Ep::CreateOutlet,
    Ep::PatchOutlet,
    Ep::CreateTerritory,
    Ep::PutTier,
    Ep::CreateUser,
    Ep::ReissueToken,
    Ep::RevokeToken,
    Ep::CreateDevice,
];

const OBJECT: &[Target] = &[Target::T1, Target::T2, Target::OrgB];

/// A point inside no territory of either org: (lat, lon).
const OUTSIDE_ALL: (f64, f64) = (30.5, 110.5);

impl Ep {
    fn name(self) -> &'static str {
        match self {
            Ep::Me => "GET /me",
            Ep::ListOutlets => "GET /outlets",
            Ep::GetOutlet => "GET /outlets/{id}",
            Ep::CreateOutlet => "POST /outlets",
            Ep::PatchOutlet => "PATCH /outlets/{id}",
            Ep::ListTerritories => "GET /territories",
            Ep::GetTerritory => "GET /territories/{id}",
            Ep::CreateTerritory => "POST /territories",
            Ep::GetTiers => "GET /tier-policies",
            Ep::PutTier => "PUT /tier-policies/{tier}",
            Ep::ListUsers => "GET /users",
            Ep::GetUser => "GET /users/{id}",
            Ep::CreateUser => "POST /users",
            Ep::ReissueToken => "POST /users/{id}/token",
            Ep::RevokeToken => "DELETE /users/{id}/token",
            Ep::ListDevices => "GET /devices",
            Ep::CreateDevice => "POST /devices",
            Ep::RepPings => "GET /reps/{id}/pings",
            Ep::AuditLog => "GET /audit-log",
        }
    }

    /// The action the endpoint needs (`None`: any authenticated caller).
    fn action(self) -> Option<Action> {
        Some(match self {
            Ep::Me => return None,
            Ep::ListOutlets | Ep::GetOutlet => Action::ReadOutlets,
            Ep::CreateOutlet | Ep::PatchOutlet => Action::WriteOutlets,
            Ep::ListTerritories | Ep::GetTerritory => Action::ReadTerritories,
            Ep::CreateTerritory => Action::WriteTerritories,
            Ep::GetTiers => Action::ReadTierPolicies,
            Ep::PutTier => Action::WriteTierPolicies,
            Ep::ListUsers | Ep::GetUser => Action::ReadUsers,
            Ep::CreateUser | Ep::ReissueToken | Ep::RevokeToken => Action::ManageUsers,
            Ep::ListDevices => Action::ReadDevices,
            Ep::CreateDevice => Action::ManageDevices,
            Ep::RepPings => Action::ReadTracks,
            Ep::AuditLog => Action::ReadAuditLog,
        })
    }

    fn targets(self) -> &'static [Target] {
        match self {
            Ep::GetOutlet
            | Ep::PatchOutlet
            | Ep::GetTerritory
            | Ep::GetUser
            | Ep::ReissueToken
            | Ep::RevokeToken
            | Ep::CreateDevice => OBJECT,
            Ep::CreateOutlet | Ep::CreateTerritory | Ep::CreateUser => {
                &[Target::T1, Target::T2, Target::WholeOrg, Target::OrgB]
            }
            Ep::RepPings => &[Target::T1, Target::T1Peer, Target::T2, Target::OrgB],
            _ => &[Target::None],
        }
    }

    /// Whether the target is referenced in the request body (create) rather than addressed by the path.
    fn target_in_body(self) -> bool {
        matches!(self, Ep::CreateOutlet | Ep::CreateTerritory | Ep::CreateUser | Ep::CreateDevice)
    }

    fn success(self) -> u16 {
        match self {
            Ep::CreateOutlet | Ep::CreateTerritory | Ep::CreateUser | Ep::CreateDevice => 201,
            Ep::RevokeToken => 204,
            _ => 200,
        }
    }
}

/// The expected status, from the rules in the module doc.
fn expected(caller: Caller, ep: Ep, target: Target) -> u16 {
    let Some(principal) = caller.principal() else {
        return 401;
    };
    if let Some(action) = ep.action() {
        let allowed = match principal {
            Principal::User { role, .. } => allows(role, action),
            Principal::Device => device_allows(action),
        };
        if !allowed {
            return 403;
        }
    }
    let in_scope = match (&principal, target) {
        (_, Target::OrgB) => return if ep.target_in_body() { 422 } else { 404 },
        (_, Target::None) | (Principal::User { org_wide: true, .. }, _) => true,
        // Reps, and devices acting for the rep in T1, see only their own pings.
        (Principal::User { role: Role::Rep, .. } | Principal::Device, t) if ep == Ep::RepPings => t == Target::T1,
        (Principal::Device, t) => matches!(t, Target::T1 | Target::T1Peer),
        // Scoped to T1: the rep in T1 and other T1 objects are inside, T2 and the whole org are not.
        (Principal::User { .. }, t) => matches!(t, Target::T1 | Target::T1Peer),
    };
    if in_scope { ep.success() } else { 403 }
}

struct Case {
    method: Method,
    path: String,
    body: Option<Value>,
}

/// The request of one (caller, endpoint, target) cell. `n` makes created codes/logins unique.
fn case(w: &World, caller: Caller, ep: Ep, target: Target, n: usize) -> Case {
    let pick = |t1: i64, t2: i64, b: i64| match target {
        Target::T1 => t1,
        Target::T2 => t2,
        Target::OrgB => b,
        other => panic!("{} has no {other:?} target", ep.name()),
    };
    let get = |path: String| Case { method: Method::GET, path, body: None };
    let tag = format!("{}-{n}", caller.name().replace(['@', '(', ')', ' '], "-"));
    match ep {
        Ep::Me => get("/api/v1/me".into()),
        Ep::ListOutlets => get("/api/v1/outlets".into()),
        Ep::GetOutlet => get(format!("/api/v1/outlets/{}", pick(w.o1, w.o2, w.ob))),
        Ep::ListTerritories => get("/api/v1/territories".into()),
        Ep::GetTerritory => get(format!("/api/v1/territories/{}", pick(w.t1, w.t2, w.tb))),
        Ep::GetTiers => get("/api/v1/tier-policies".into()),
        Ep::ListUsers => get("/api/v1/users".into()),
        Ep::GetUser => get(format!("/api/v1/users/{}", pick(w.rep.id, w.rep2.id, w.rep_b.id))),
        Ep::ListDevices => get("/api/v1/devices".into()),
        Ep::AuditLog => get("/api/v1/audit-log".into()),
        Ep::RepPings => {
            let rep = match target {
                Target::T1 => w.rep.id,
                Target::T1Peer => w.peer.id,
                Target::T2 => w.rep2.id,
                _ => w.rep_b.id,
            };
            get(format!("/api/v1/reps/{rep}/pings?date={}", common::PING_DAY))
        }
        Ep::CreateOutlet => {
            let (lat, lon) = match target {
                Target::T1 => IN_T1,
                Target::T2 => IN_T2,
                Target::WholeOrg => OUTSIDE_ALL,
                _ => IN_TB,
            };
            let mut body = json!({
                "code": format!("NEW-{tag}"), "name": "New outlet", "channel_type": "agent_point", "tier": "B",
                "lat": lat, "lon": lon,
            });
            // Whole org: no territory given and none contains the point.
            if target != Target::WholeOrg {
                body["territory_id"] = json!(pick(w.t1, w.t2, w.tb));
            }
            Case { method: Method::POST, path: "/api/v1/outlets".into(), body: Some(body) }
        }
        Ep::PatchOutlet => Case {
            method: Method::PATCH,
            path: format!("/api/v1/outlets/{}", pick(w.o1, w.o2, w.ob)),
            body: Some(json!({"name": format!("renamed by {tag}")})),
        },
        Ep::CreateTerritory => {
            let mut body = json!({"code": format!("G-{tag}"), "name": "Grid", "level": "grid"});
            // Whole org: a new root territory.
            if target != Target::WholeOrg {
                body["parent_id"] = json!(pick(w.t1, w.t2, w.tb));
            }
            Case { method: Method::POST, path: "/api/v1/territories".into(), body: Some(body) }
        }
        Ep::PutTier => Case {
            method: Method::PUT,
            path: "/api/v1/tier-policies/ZA".into(),
            body: Some(json!({"required_visits": 3, "cycle_days": 28, "min_dwell_s": 240, "default_radius_m": 90.0})),
        },
        Ep::CreateUser => {
            let mut body = json!({"login": format!("new-{tag}"), "name": "New user", "role": "rep"});
            if target != Target::WholeOrg {
                body["territory_id"] = json!(pick(w.t1, w.t2, w.tb));
            }
            Case { method: Method::POST, path: "/api/v1/users".into(), body: Some(body) }
        }
        Ep::ReissueToken | Ep::RevokeToken => Case {
            method: if ep == Ep::ReissueToken { Method::POST } else { Method::DELETE },
            path: format!("/api/v1/users/{}/token", pick(w.victim_t1.id, w.victim_t2.id, w.victim_b.id)),
            body: None,
        },
        Ep::CreateDevice => Case {
            method: Method::POST,
            path: "/api/v1/devices".into(),
            body: Some(json!({"rep_id": pick(w.rep.id, w.rep2.id, w.rep_b.id), "name": format!("phone {tag}")})),
        },
    }
}

fn set(ids: impl IntoIterator<Item = i64>) -> BTreeSet<i64> {
    ids.into_iter().collect()
}

/// For a successful response: checks the content (list membership, own identity, own pings).
/// Returns a description of what is wrong, if anything.
fn check_content(w: &World, caller: Caller, ep: Ep, target: Target, res: &Res) -> Option<String> {
    let org_wide = matches!(caller, Caller::Admin);
    let expect_ids = |expected: BTreeSet<i64>| {
        let got = set(res.ids());
        (got != expected).then(|| format!("ids {got:?}, expected exactly {expected:?}"))
    };
    match ep {
        Ep::Me => {
            let (kind, id) = if caller == Caller::Device {
                ("device", res.json["device_id"].as_i64())
            } else {
                ("user", res.json["user"]["id"].as_i64())
            };
            let want = match caller {
                Caller::Admin => w.admin.id,
                Caller::AdminT1 => w.admin_t1.id,
                Caller::Manager => w.manager.id,
                Caller::Supervisor => w.supervisor.id,
                Caller::Auditor => w.auditor.id,
                Caller::Rep => w.rep.id,
                _ => w.device.id,
            };
            let ok = res.json["kind"] == kind && id == Some(want) && res.json["org"]["id"].as_i64() == Some(w.org_a);
            (!ok).then(|| format!("expected {kind} {want} of org {}", w.org_a))
        }
        Ep::ListOutlets => expect_ids(if org_wide { set([w.o1, w.o2]) } else { set([w.o1]) }),
        Ep::ListTerritories => expect_ids(if org_wide { set([w.root, w.t1, w.t2]) } else { set([w.t1]) }),
        Ep::ListUsers => {
            expect_ids(w.users_a.iter().filter(|(_, t)| org_wide || *t == Some(w.t1)).map(|(id, _)| *id).collect())
        }
        Ep::ListDevices => expect_ids(if org_wide { set([w.device.id, w.device2.id]) } else { set([w.device.id]) }),
        Ep::GetTiers => {
            let tiers: BTreeSet<&str> =
                res.json.as_array().map(|a| a.iter().filter_map(|t| t["tier"].as_str()).collect()).unwrap_or_default();
            let want: BTreeSet<&str> = ["A", "B", "C", "VIP", "ZA"].into_iter().collect();
            (tiers != want).then(|| format!("tiers {tiers:?}, expected {want:?}"))
        }
        Ep::AuditLog => {
            let objects: Vec<&str> = res.json["items"]
                .as_array()
                .map(|a| a.iter().filter_map(|e| e["object_id"].as_str()).collect())
                .unwrap_or_default();
            // The seeded entry is about the org as a whole: a territory-scoped reader does not see it.
            (objects.contains(&"seed.org-a") != org_wide)
                .then(|| format!("org A's org-level entry seen = {}, expected {org_wide}: {objects:?}", !org_wide))
        }
        Ep::RepPings => {
            let device = if target == Target::T2 { w.device2.id } else { w.device.id };
            let pings = res.json["pings"].as_array().cloned().unwrap_or_default();
            let ok = pings.len() == w.pings_per_device && pings.iter().all(|p| p["device_id"].as_i64() == Some(device));
            let ok = ok || (target == Target::T1Peer && pings.is_empty());
            (!ok).then(|| format!("expected the {} pings of device {device}, got {pings:?}", w.pings_per_device))
        }
        _ => None,
    }
}

struct Mismatch {
    caller: &'static str,
    endpoint: &'static str,
    target: &'static str,
    expected: String,
    actual: String,
    note: String,
}

fn table(rows: &[Mismatch]) -> String {
    let header = ["caller", "endpoint", "target", "expected", "actual", "note"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|m| {
            [
                m.caller.to_owned(),
                m.endpoint.to_owned(),
                m.target.to_owned(),
                m.expected.clone(),
                m.actual.clone(),
                m.note.clone(),
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for row in &cells {
        for (i, c) in row.iter().enumerate().take(5) {
            width[i] = width[i].max(c.len());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, row: [&str; 6]| {
        let _ = writeln!(
            out,
            "| {:w0$} | {:w1$} | {:w2$} | {:w3$} | {:w4$} | {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            w0 = width[0],
            w1 = width[1],
            w2 = width[2],
            w3 = width[3],
            w4 = width[4],
        );
    };
    line(&mut out, header);
    for row in &cells {
        line(&mut out, [&row[0], &row[1], &row[2], &row[3], &row[4], &row[5]]);
    }
    out
}

/// Runs every (endpoint, caller, target) cell for `callers` and fails once with a table of all
/// mismatches.
async fn run_matrix(pool: sqlx::PgPool, callers: &[Caller]) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let mut mismatches = Vec::new();
    let mut cases = 0;
    for ep in ENDPOINTS {
        for &caller in callers {
            for &target in ep.targets() {
                cases += 1;
                let c = case(&w, caller, ep, target, cases);
                let token = caller.token(&w);
                let res = app.call(c.method.clone(), &c.path, token.as_deref(), c.body.as_ref()).await;
                let want = expected(caller, ep, target);
                let mut notes = Vec::new();
                if res.status != want {
                    notes.push(format!(
                        "{} {} -> {}",
                        c.method,
                        c.path,
                        res.text.chars().take(160).collect::<String>()
                    ));
                } else if (200..300).contains(&res.status)
                    && let Some(problem) = check_content(&w, caller, ep, target, &res)
                {
                    notes.push(format!("content: {problem}"));
                }
                if res.text.contains(ORG_B_MARKER) {
                    notes.push(format!(
                        "LEAK: body contains org B data: {}",
                        res.text.chars().take(160).collect::<String>()
                    ));
                }
                if res.status >= 400 && !res.content_type().starts_with("application/problem+json") {
                    notes.push(format!("error is not problem+json: {}", res.content_type()));
                }
                if !notes.is_empty() {
                    mismatches.push(Mismatch {
                        caller: caller.name(),
                        endpoint: ep.name(),
                        target: target.name(),
                        expected: want.to_string(),
                        actual: res.status.to_string(),
                        note: notes.join("; "),
                    });
                }
            }
        }
    }
    let per_caller = ENDPOINTS.iter().map(|e| e.targets().len()).sum::<usize>();
    assert_eq!(cases, per_caller * callers.len(), "every cell must run");
    assert!(
        mismatches.is_empty(),
        "{} of {cases} access-matrix cells are wrong:\n{}",
        mismatches.len(),
        table(&mismatches)
    );
}

/// The roles of the design, each as deployed (admin org-wide, the others scoped to T1), the rep's
/// device, and the three kinds of unauthenticated caller.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn access_matrix(pool: sqlx::PgPool) {
    let callers: Vec<Caller> = CALLERS.into_iter().filter(|c| *c != Caller::AdminT1).collect();
    run_matrix(pool, &callers).await;
}

/// An admin whose scope is T1: the admin actions must stay inside T1 too (users, tokens,
/// territories of T2 or of the whole org are outside its scope).
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn access_matrix_territory_scoped_admin(pool: sqlx::PgPool) {
    run_matrix(pool, &[Caller::AdminT1]).await;
}

/// The sharpest consequence of a scope hole in the admin endpoints: a T1-scoped admin must not be
/// able to obtain the org-wide admin's credentials or mint an org-wide account.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn territory_scoped_admin_cannot_escalate_to_the_whole_org(pool: sqlx::PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let path = format!("/api/v1/users/{}/token", w.admin.id);
    let res = app.post(&path, Some(&w.admin_t1.token), &json!({})).await;
    assert_eq!(
        res.status,
        403,
        "admin@T1 reissued the org-wide admin's token (and so can log in as them): {}",
        res.describe()
    );
    let res = app
        .post("/api/v1/users", Some(&w.admin_t1.token), &json!({"login": "org-admin-2", "name": "X", "role": "admin"}))
        .await;
    assert_eq!(res.status, 403, "admin@T1 created an org-wide admin: {}", res.describe());
    let res = app.get("/api/v1/me", Some(&w.admin.token)).await;
    assert_eq!(res.status, 200, "the org-wide admin's token must still work: {}", res.describe());
}

/// The expectation function itself must not be vacuous: spot-check a few cells by hand.
#[test]
fn expectations_follow_the_rules() {
    assert_eq!(expected(Caller::NoToken, Ep::Me, Target::None), 401);
    assert_eq!(expected(Caller::RevokedToken, Ep::GetOutlet, Target::T1), 401);
    assert_eq!(expected(Caller::Admin, Ep::GetOutlet, Target::OrgB), 404);
    assert_eq!(expected(Caller::Admin, Ep::CreateOutlet, Target::OrgB), 422);
    assert_eq!(expected(Caller::Manager, Ep::GetOutlet, Target::T2), 403);
    assert_eq!(expected(Caller::Manager, Ep::PatchOutlet, Target::T1), 200);
    assert_eq!(expected(Caller::Auditor, Ep::PatchOutlet, Target::T1), 403);
    assert_eq!(expected(Caller::Rep, Ep::RepPings, Target::T1), 200);
    assert_eq!(expected(Caller::Rep, Ep::RepPings, Target::T1Peer), 403);
    assert_eq!(expected(Caller::Rep, Ep::ListUsers, Target::None), 403);
    assert_eq!(expected(Caller::Device, Ep::Me, Target::None), 200);
    assert_eq!(expected(Caller::Device, Ep::ListOutlets, Target::None), 200);
    assert_eq!(expected(Caller::Device, Ep::GetOutlet, Target::T1), 200);
    assert_eq!(expected(Caller::Device, Ep::GetOutlet, Target::T2), 403);
    assert_eq!(expected(Caller::Device, Ep::RepPings, Target::T1Peer), 403);
    assert_eq!(expected(Caller::Device, Ep::ListUsers, Target::None), 403);
    assert_eq!(expected(Caller::Admin, Ep::RevokeToken, Target::T2), 204);
    assert_eq!(expected(Caller::AdminT1, Ep::ReissueToken, Target::T2), 403);
    assert_eq!(expected(Caller::AdminT1, Ep::CreateUser, Target::WholeOrg), 403);
    assert_eq!(expected(Caller::Manager, Ep::CreateOutlet, Target::WholeOrg), 403);
    assert_eq!(expected(Caller::Admin, Ep::CreateTerritory, Target::WholeOrg), 201);
}

/// Token lifecycle over HTTP: reissuing stops the old token at once; revoking stops the new one.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn reissued_and_revoked_tokens_stop_working(pool: sqlx::PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let old = w.manager.token.clone();
    assert_eq!(app.get("/api/v1/me", Some(&old)).await.status, 200);

    let res = app.post(&format!("/api/v1/users/{}/token", w.manager.id), Some(&w.admin.token), &json!({})).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let new = res.json["token"].as_str().expect("token in the answer").to_owned();
    assert_ne!(new, old);
    common::assert_problem(&app.get("/api/v1/me", Some(&old)).await, 401, "/api/v1/me");
    let me = app.get("/api/v1/me", Some(&new)).await;
    assert_eq!(me.status, 200, "{}", me.describe());
    assert_eq!(me.json["user"]["id"].as_i64(), Some(w.manager.id));

    let res = app.delete(&format!("/api/v1/users/{}/token", w.manager.id), Some(&w.admin.token)).await;
    assert_eq!(res.status, 204, "{}", res.describe());
    common::assert_problem(&app.get("/api/v1/me", Some(&new)).await, 401, "/api/v1/me");
    common::assert_problem(&app.get("/api/v1/outlets", Some(&new)).await, 401, "/api/v1/outlets");
}

/// Authorization header variants: only `Bearer <live token>` (scheme case-insensitive) gets in.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn only_well_formed_bearer_tokens_authenticate(pool: sqlx::PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let path = "/api/v1/me";
    for header in [
        String::new(),
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        format!("Basic {}", w.admin.token),
        w.admin.token.clone(),
        format!("Bearer {}x", w.admin.token),
        format!("Bearer {}", w.device_b.token.replace("fvt_", "fvt_0")),
    ] {
        let res = app.send(app.request(Method::GET, path, None).header("authorization", header.clone())).await;
        common::assert_problem(&res, 401, path);
        assert_eq!(res.header("www-authenticate"), Some("Bearer"), "`{header}`: {}", res.describe());
    }
    let res = app
        .send(app.request(Method::GET, path, None).header("authorization", format!("bearer {}", w.admin.token)))
        .await;
    assert_eq!(res.status, 200, "lowercase scheme: {}", res.describe());
}

/// A manager may edit outlets of their territory but not move one out of it, and a refused move
/// changes nothing (no location history row either).
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn manager_cannot_move_an_outlet_out_of_scope(pool: sqlx::PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let before = common::row_counts(&pool).await;
    let path = format!("/api/v1/outlets/{}", w.o1);
    let res = app.patch(&path, Some(&w.manager.token), &json!({"lat": IN_T2.0, "lon": IN_T2.1})).await;
    common::assert_problem(&res, 403, &path);
    let res = app.patch(&path, Some(&w.manager.token), &json!({"territory_id": w.t2})).await;
    common::assert_problem(&res, 403, &path);
    assert_eq!(common::row_counts(&pool).await, before, "a refused move must write nothing");
    let res = app.get(&path, Some(&w.admin.token)).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!(res.json["territory_id"].as_i64(), Some(w.t1));
    assert_eq!(res.json["lat"].as_f64(), Some(IN_T1.0));

    // Within the territory the same manager may move it.
    let res = app.patch(&path, Some(&w.manager.token), &json!({"lat": 39.96, "lon": 116.06})).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!(res.json["territory_id"].as_i64(), Some(w.t1));
}

/// Listing with a `territory` filter outside the caller's scope never widens the scope.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn list_filters_never_widen_the_scope(pool: sqlx::PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    for (who, token) in [("manager", &w.manager.token), ("rep", &w.rep.token)] {
        for query in [
            format!("territory={}", w.t2),
            format!("territory={}", w.root),
            format!("territory={}", w.tb),
            "bbox=116.2,39.9,116.3,40.0".to_owned(),
            "q=O2".to_owned(),
        ] {
            let res = app.get(&format!("/api/v1/outlets?{query}"), Some(token)).await;
            assert_eq!(res.status, 200, "{who} {query}: {}", res.describe());
            let ids = res.ids();
            assert!(
                !ids.contains(&w.o2) && !ids.contains(&w.ob),
                "{who} {query}: out-of-scope outlets listed: {ids:?}"
            );
        }
    }
    // Paging walks the whole scope exactly once.
    let mut seen = Vec::new();
    let mut next = None::<i64>;
    for _ in 0..10 {
        let path = match next {
            Some(after) => format!("/api/v1/outlets?limit=1&after={after}"),
            None => "/api/v1/outlets?limit=1".to_owned(),
        };
        let res = app.get(&path, Some(&w.admin.token)).await;
        assert_eq!(res.status, 200, "{}", res.describe());
        seen.extend(res.ids());
        next = res.json["next"].as_i64();
        if next.is_none() {
            break;
        }
    }
    assert_eq!(set(seen.iter().copied()), set([w.o1, w.o2]), "paged ids: {seen:?}");
    assert_eq!(seen.len(), 2, "paged ids repeat: {seen:?}");
}

// ---------------------------------------------------------------------------------------------
// Every operation, from the router: the OpenAPI document's paths x methods, plus the routes the
// document does not describe (phone protocols, OGC API, tiles, config, docs, the app's files).
// A route without an entry in `OPERATIONS` (or an entry for a route that no longer exists)
// fails `every_route_has_an_access_rule`, so a new route cannot be missed.

/// Who may call an operation, from the rules of docs/api.md ("Roles and scope").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// No credential: health, docs, the app's files, enrolment redeem (its code is the credential).
    Public,
    /// Any valid bearer token (user or device).
    Anyone,
    /// A bearer token whose role, or device credential, allows the action.
    Needs(Action),
    /// OsmAnd / Traccar Client: the device id in the request is the credential; no bearer token helps.
    DeviceKey,
    /// OwnTracks: HTTP Basic with the device's user and password; a bearer token is no credential.
    BasicAuth,
}

use Access::{Anyone, Needs, Public};
use Action as A;

/// The expected access of every operation of the OpenAPI document, keyed as (method, path).
const OPERATIONS: &[(&str, &str, Access)] = &[
    ("GET", "/api/v1/access-log", Needs(A::ExportAudits)),
    ("GET", "/api/v1/audit-log", Needs(A::ReadAuditLog)),
    ("POST", "/api/v1/beats/proposals", Needs(A::WritePlans)),
    ("POST", "/api/v1/beats/day-order", Needs(A::WritePlans)),
    ("GET", "/api/v1/checkins/claims", Needs(A::ReviewVisits)),
    ("PUT", "/api/v1/checkins/{client_id}", Needs(A::SubmitEvidence)),
    ("PUT", "/api/v1/checkins/{client_id}/answers/{answers_client_id}", Needs(A::SubmitEvidence)),
    ("PUT", "/api/v1/checkins/{client_id}/photos/{photo_client_id}", Needs(A::SubmitEvidence)),
    ("POST", "/api/v1/checkins/{id}/decision", Needs(A::ReviewVisits)),
    ("GET", "/api/v1/checklists", Needs(A::SubmitEvidence)),
    ("POST", "/api/v1/checklists", Needs(A::ManageSettings)),
    ("GET", "/api/v1/checklists/{id}", Needs(A::SubmitEvidence)),
    ("GET", "/api/v1/devices", Needs(A::ReadDevices)),
    ("POST", "/api/v1/devices", Needs(A::ManageDevices)),
    ("GET", "/api/v1/devices/me/commands", Needs(A::IngestPings)),
    ("GET", "/api/v1/devices/{id}", Needs(A::ReadDevices)),
    ("PATCH", "/api/v1/devices/{id}", Needs(A::ManageDevices)),
    ("POST", "/api/v1/devices/{id}/credentials", Needs(A::ManageDevices)),
    ("POST", "/api/v1/devices/{id}/enrolments", Needs(A::ManageDevices)),
    ("POST", "/api/v1/devices/{id}/gpx", Needs(A::ManageDevices)),
    ("POST", "/api/v1/devices/{id}/position-requests", Needs(A::ManageDevices)),
    ("POST", "/api/v1/enrolments/redeem", Public),
    ("GET", "/api/v1/exports", Needs(A::ExportAudits)),
    ("POST", "/api/v1/exports", Needs(A::ExportAudits)),
    ("POST", "/api/v1/exports/verify", Needs(A::ExportAudits)),
    ("GET", "/api/v1/exports/{id}", Needs(A::ExportAudits)),
    ("GET", "/api/v1/exports/{id}/files/{name}", Needs(A::ExportAudits)),
    ("GET", "/api/v1/layers/coverage", Needs(A::ReadTeamCompliance)),
    ("GET", "/api/v1/layers/outlets", Needs(A::ReadTeamCompliance)),
    ("GET", "/api/v1/layers/routes", Needs(A::ReadTeamCompliance)),
    ("GET", "/api/v1/layers/territories", Needs(A::ReadTeamCompliance)),
    ("GET", "/api/v1/layers/tracks", Needs(A::ReadTeamCompliance)),
    ("GET", "/api/v1/layers/visits", Needs(A::ReadTeamCompliance)),
    ("GET", "/api/v1/live", Needs(A::ReadTracks)),
    ("GET", "/api/v1/live/positions", Needs(A::ReadTracks)),
    ("GET", "/api/v1/me", Anyone),
    ("GET", "/api/v1/outlets", Needs(A::ReadOutlets)),
    ("POST", "/api/v1/outlets", Needs(A::WriteOutlets)),
    ("POST", "/api/v1/outlets/import", Needs(A::WriteOutlets)),
    ("GET", "/api/v1/outlets/in-cell/{h3}", Needs(A::ReadOutlets)),
    ("GET", "/api/v1/outlets/in-territory/{id}", Needs(A::ReadOutlets)),
    ("GET", "/api/v1/outlets/nearest", Needs(A::ReadOutlets)),
    ("GET", "/api/v1/outlets/within", Needs(A::ReadOutlets)),
    ("GET", "/api/v1/outlets/{id}", Needs(A::ReadOutlets)),
    ("PATCH", "/api/v1/outlets/{id}", Needs(A::WriteOutlets)),
    ("GET", "/api/v1/outlets/{id}/attribute-changes", Needs(A::ReadOutlets)),
    ("POST", "/api/v1/outlets/{id}/close", Needs(A::WriteOutlets)),
    ("GET", "/api/v1/outlets/{id}/history", Needs(A::ReadOutlets)),
    ("GET", "/api/v1/outlets/{id}/outcomes", Needs(A::ReadOutlets)),
    ("GET", "/api/v1/outlets/{id}/photos", Needs(A::ReadOutlets)),
    ("POST", "/api/v1/outlets/{id}/photos", Needs(A::SubmitEvidence)),
    ("POST", "/api/v1/outlets/{id}/reopen", Needs(A::WriteOutlets)),
    ("POST", "/api/v1/outlets/{id}/suspend", Needs(A::WriteOutlets)),
    ("GET", "/api/v1/outlets/{id}/visits", Needs(A::ReadVisits)),
    ("GET", "/api/v1/photos/{id}", Needs(A::ReadVisits)),
    ("GET", "/api/v1/photos/{id}/{kind}", Needs(A::ReadVisits)),
    ("POST", "/api/v1/pings", Needs(A::IngestPings)),
    ("GET", "/api/v1/plans", Needs(A::ReadPlans)),
    ("POST", "/api/v1/plans", Needs(A::WritePlans)),
    ("DELETE", "/api/v1/plans/{id}", Needs(A::WritePlans)),
    ("GET", "/api/v1/plans/{id}", Needs(A::ReadPlans)),
    ("PUT", "/api/v1/plans/{id}", Needs(A::WritePlans)),
    ("GET", "/api/v1/position-requests/{id}", Needs(A::ReadDevices)),
    ("GET", "/api/v1/reminders", Needs(A::ReadTeamCompliance)),
    ("GET", "/api/v1/reps/{id}/checkins", Needs(A::ReadVisits)),
    ("GET", "/api/v1/reps/{id}/compliance", Needs(A::ReadVisits)),
    ("GET", "/api/v1/reps/{id}/pings", Needs(A::ReadTracks)),
    ("GET", "/api/v1/reps/{id}/plan", Needs(A::ReadPlans)),
    ("GET", "/api/v1/reps/{id}/plan-proposal", Needs(A::WritePlans)),
    ("GET", "/api/v1/reps/{id}/reminders", Needs(A::ReadPlans)),
    ("GET", "/api/v1/reps/{id}/route-coverage", Needs(A::ReadVisits)),
    ("GET", "/api/v1/reps/{id}/track", Needs(A::ReadTracks)),
    ("GET", "/api/v1/reps/{id}/visits", Needs(A::ReadVisits)),
    ("GET", "/api/v1/reviews/queue", Needs(A::ReviewVisits)),
    ("POST", "/api/v1/reviews/bulk", Needs(A::ReviewVisits)),
    ("GET", "/api/v1/settings/pings", Needs(A::ManageSettings)),
    ("PUT", "/api/v1/settings/pings", Needs(A::ManageSettings)),
    ("GET", "/api/v1/territories", Needs(A::ReadTerritories)),
    ("POST", "/api/v1/territories", Needs(A::WriteTerritories)),
    ("POST", "/api/v1/territories/import", Needs(A::WriteTerritories)),
    ("GET", "/api/v1/territories/{id}", Needs(A::ReadTerritories)),
    ("GET", "/api/v1/territories/{id}/assessment", Needs(A::ReadBulletin)),
    ("GET", "/api/v1/territories/{id}/compliance", Needs(A::ReadTeamCompliance)),
    ("GET", "/api/v1/territories/{id}/coverage", Needs(A::ReadTeamCompliance)),
    ("GET", "/api/v1/territories/{id}/outlet-frequency", Needs(A::ReadTeamCompliance)),
    ("GET", "/api/v1/territories/{id}/outlet-status", Needs(A::ReadTeamCompliance)),
    ("GET", "/api/v1/territories/{id}/summary", Needs(A::ReadTerritories)),
    ("GET", "/api/v1/tier-policies", Needs(A::ReadTierPolicies)),
    ("PUT", "/api/v1/tier-policies/{tier}", Needs(A::WriteTierPolicies)),
    ("GET", "/api/v1/users", Needs(A::ReadUsers)),
    ("POST", "/api/v1/users", Needs(A::ManageUsers)),
    ("GET", "/api/v1/users/{id}", Needs(A::ReadUsers)),
    ("PATCH", "/api/v1/users/{id}", Needs(A::ManageUsers)),
    ("GET", "/api/v1/users/{id}/privacy", Anyone),
    ("PUT", "/api/v1/users/{id}/privacy", Anyone),
    ("DELETE", "/api/v1/users/{id}/token", Needs(A::ManageUsers)),
    ("POST", "/api/v1/users/{id}/token", Needs(A::ManageUsers)),
    ("POST", "/api/v1/visits/recompute", Needs(A::RecomputeVisits)),
    ("GET", "/api/v1/visits/{id}/outcomes", Needs(A::ReadVisits)),
    ("POST", "/api/v1/visits/{id}/outcomes", Needs(A::SubmitEvidence)),
    ("GET", "/api/v1/visits/{id}/photos", Needs(A::ReadVisits)),
    ("POST", "/api/v1/visits/{id}/photos", Needs(A::SubmitEvidence)),
    ("GET", "/api/v1/visits/{id}/reviews", Needs(A::ReadVisits)),
    ("POST", "/api/v1/visits/{id}/reviews", Needs(A::ReadVisits)),
    ("GET", "/basemap/streets.pmtiles", Public),
    ("GET", "/config.json", Public),
    ("GET", "/healthz", Public),
    ("GET", "/metrics", Public),
    ("GET", "/readyz", Public),
];

/// Routes outside the OpenAPI document: (file under src/http/ that declares it, method, path, access).
const OTHER_ROUTES: &[(&str, &str, &str, Access)] = &[
    ("ingest.rs", "GET", "/osmand", Access::DeviceKey),
    ("ingest.rs", "POST", "/osmand", Access::DeviceKey),
    ("ingest.rs", "POST", "/owntracks", Access::BasicAuth),
    // The OsmAnd port's listener: the same handler as /osmand (not started by the test server).
    ("ingest.rs", "GET", "/", Access::DeviceKey),
    ("ingest.rs", "POST", "/", Access::DeviceKey),
    ("ogc.rs", "GET", "/ogc", Public),
    ("ogc.rs", "GET", "/ogc/conformance", Public),
    ("ogc.rs", "GET", "/ogc/collections", Needs(A::ReadOutlets)),
    ("ogc.rs", "GET", "/ogc/collections/{id}", Needs(A::ReadOutlets)),
    ("ogc.rs", "GET", "/ogc/collections/{id}/items", Needs(A::ReadOutlets)),
    ("ogc.rs", "GET", "/ogc/collections/{id}/items/{fid}", Needs(A::ReadOutlets)),
    ("tiles.rs", "GET", "/tiles/outlets.json", Needs(A::ReadTeamCompliance)),
    ("tiles.rs", "GET", "/tiles/outlets/{z}/{x}/{y}", Needs(A::ReadTeamCompliance)),
    ("tiles.rs", "GET", "/tiles/coverage.json", Needs(A::ReadTeamCompliance)),
    ("tiles.rs", "GET", "/tiles/coverage/{z}/{x}/{y}", Needs(A::ReadTeamCompliance)),
    // Without a built map UI: the landing page; with one, the app's files (`STATIC_FILES`).
    ("mod.rs", "GET", "/", Public),
];

/// Served by the router without a `.route(..)` of their own: the API docs and the app's files.
const STATIC_FILES: &[&str] = &["/docs/", "/openapi.json", "/", "/index.html", "/app/sw.js"];

/// The (method, path) of every operation in the OpenAPI document.
fn documented_operations() -> BTreeSet<(String, String)> {
    let doc = fieldvisit::http::openapi();
    let mut out = BTreeSet::new();
    for (path, item) in &doc.paths.paths {
        let methods = [
            ("GET", item.get.is_some()),
            ("POST", item.post.is_some()),
            ("PUT", item.put.is_some()),
            ("PATCH", item.patch.is_some()),
            ("DELETE", item.delete.is_some()),
            ("HEAD", item.head.is_some()),
            ("OPTIONS", item.options.is_some()),
            ("TRACE", item.trace.is_some()),
        ];
        out.extend(methods.into_iter().filter(|(_, present)| *present).map(|(m, _)| (m.to_owned(), path.clone())));
    }
    out
}

/// The (file, method, path) of every plain axum `.route(..)` in src/http/, read from the source:
/// the router offers no list of its routes.
fn plain_routes() -> BTreeSet<(String, String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("src/http") {
        let path = entry.expect("a directory entry").path();
        let file = path.file_name().and_then(|f| f.to_str()).unwrap_or_default().to_owned();
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        for chunk in text.split(".route(\"").skip(1) {
            let Some((route, rest)) = chunk.split_once('"') else { continue };
            // The handlers of this route: up to the next route or the end of the statement.
            let rest = rest.split([';', '\n']).next().unwrap_or_default();
            for method in ["get", "post", "put", "patch", "delete"] {
                let called = rest.match_indices(&format!("{method}(")).any(|(i, _)| {
                    i == 0 || !rest.as_bytes()[i - 1].is_ascii_alphanumeric() && rest.as_bytes()[i - 1] != b'_'
                });
                if called {
                    out.insert((file.clone(), method.to_uppercase(), route.to_owned()));
                }
            }
        }
    }
    out
}

/// The routes without an access rule, and the rules of routes that no longer exist.
fn unmatched_rules() -> (Vec<String>, Vec<String>) {
    let documented = documented_operations();
    let ruled: BTreeSet<(String, String)> =
        OPERATIONS.iter().map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned())).collect();
    let plain = plain_routes();
    let ruled_plain: BTreeSet<(String, String, String)> =
        OTHER_ROUTES.iter().map(|(f, m, p, _)| ((*f).to_owned(), (*m).to_owned(), (*p).to_owned())).collect();
    let mut missing: Vec<String> = documented.difference(&ruled).map(|(m, p)| format!("{m} {p}")).collect();
    missing.extend(plain.difference(&ruled_plain).map(|(f, m, p)| format!("{m} {p} (src/http/{f})")));
    let mut stale: Vec<String> = ruled.difference(&documented).map(|(m, p)| format!("{m} {p}")).collect();
    stale.extend(ruled_plain.difference(&plain).map(|(f, m, p)| format!("{m} {p} (src/http/{f})")));
    (missing, stale)
}

/// Fails when a route has no expected access (add it to `OPERATIONS` or `OTHER_ROUTES`).
#[test]
fn every_route_has_an_access_rule() {
    let (missing, stale) = unmatched_rules();
    assert!(missing.is_empty(), "routes without an access rule in access_matrix.rs:\n{}", missing.join("\n"));
    assert!(stale.is_empty(), "access rules of routes that do not exist:\n{}", stale.join("\n"));
    assert!(documented_operations().len() >= 100, "the OpenAPI document lists the operations");
}

/// What an answer may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Exactly this status.
    Is(u16),
    /// Let through: 2xx/3xx, or a 4xx about the request itself (404 of a missing object, 400/409/
    /// 415/422 validation) — never 401 or 403.
    Allowed,
    /// Refused for scope: 403 or 404 (a validation 4xx before the scope check also reveals nothing);
    /// never 2xx, never 401.
    Refused,
    /// An object of another org: never found (404, or a validation 4xx first); never 2xx or 403.
    Hidden,
    /// A protocol route called without its own credential: a 4xx, never 2xx.
    Rejected,
}

impl Class {
    fn admits(self, status: u16) -> bool {
        let client_error = (400..500).contains(&status);
        match self {
            Class::Is(s) => status == s,
            Class::Allowed => (200..400).contains(&status) || client_error && status != 401 && status != 403,
            Class::Refused => client_error && status != 401,
            Class::Hidden => client_error && status != 401 && status != 403,
            Class::Rejected => client_error,
        }
    }
}

/// The object a path addresses, for its `{..}` parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aim {
    /// Objects of territory T2 (outside the T1 scope of every scoped caller).
    T2,
    /// Objects of org B.
    OrgB,
}

/// The path with its parameters filled: org-A objects of T2 or org-B objects where the path names
/// a kind the world seeds (then `true`: the path addresses an object), ids that exist nowhere
/// otherwise (visits, plans, photos, exports ...).
fn fill(w: &World, path: &str, aim: Aim) -> (String, bool) {
    let pick = |t2: i64, b: i64| (if aim == Aim::T2 { t2 } else { b }).to_string();
    let mut addressed = false;
    let mut previous = "";
    let mut out = Vec::new();
    for segment in path.split('/') {
        let object = match (previous, segment) {
            ("outlets" | "items", "{id}" | "{fid}") => Some(pick(w.o2, w.ob)),
            ("territories" | "in-territory", "{id}") => Some(pick(w.t2, w.tb)),
            ("users" | "reps", "{id}") => Some(pick(w.rep2.id, w.rep_b.id)),
            ("devices", "{id}") => Some(pick(w.device2.id, w.device_b.id)),
            _ => None,
        };
        addressed |= object.is_some();
        out.push(object.unwrap_or_else(|| {
            match (previous, segment) {
                ("collections", "{id}") => "outlets",
                (_, "{id}") => "987654321",
                (_, "{client_id}" | "{answers_client_id}" | "{photo_client_id}") => {
                    "0b0e5a10-9d39-4c57-8f0e-9b1f2a3c4d5e"
                }
                (_, "{tier}") => "ZA",
                (_, "{h3}") => "8831aa5089fffff",
                (_, "{name}") => "visits.csv",
                (_, "{kind}") => "thumbnail",
                (_, "{z}") => "10",
                (_, "{x}") => "843",
                (_, "{y}") => "388",
                _ => segment,
            }
            .to_owned()
        }));
        previous = segment;
    }
    (out.join("/"), addressed)
}

/// The expected class of `caller` on an operation with `access`; `aim` when the path addresses
/// an object.
fn expected_class(caller: Caller, access: Access, aim: Option<Aim>) -> Class {
    let principal = caller.principal();
    let action = match access {
        Public => return Class::Allowed,
        Access::DeviceKey => return Class::Rejected,
        Access::BasicAuth => return Class::Is(401),
        Anyone => None,
        Needs(a) => Some(a),
    };
    let Some(principal) = principal else { return Class::Is(401) };
    let allowed = action.is_none_or(|a| match principal {
        Principal::User { role, .. } => allows(role, a),
        Principal::Device => device_allows(a),
    });
    match (allowed, aim, principal) {
        (false, ..) => Class::Is(403),
        (true, Some(Aim::OrgB), _) => Class::Hidden,
        (true, Some(Aim::T2), Principal::User { org_wide: false, .. } | Principal::Device) => Class::Refused,
        (true, ..) => Class::Allowed,
    }
}

/// Rules finer than an action, from docs/api.md.
fn refinement(caller: Caller, method: &str, path: &str) -> Option<Class> {
    let principal = caller.principal()?;
    let rep_like = matches!(principal, Principal::Device | Principal::User { role: Role::Rep, .. });
    let role = match principal {
        Principal::User { role, .. } => Some(role),
        Principal::Device => None,
    };
    match (method, path) {
        // "GET /access-log for auditors and admins (the reps of their scope), and for a rep about their own data".
        ("GET", "/api/v1/access-log") if matches!(role, Some(Role::Manager | Role::Supervisor)) => Some(Class::Is(403)),
        // A check-in's evidence comes from its rep (or the rep's phone).
        ("PUT", p) if p.starts_with("/api/v1/checkins/{client_id}") && !rep_like => Some(Class::Refused),
        // A device reads the rep's access log; exports are requested by users (anyone may verify a file).
        (_, p) if p.starts_with("/api/v1/exports") && p != "/api/v1/exports/verify" && caller == Caller::Device => {
            Some(Class::Refused)
        }
        _ => None,
    }
}

/// One request of the generated matrix, its body read unless it is an event stream.
async fn probe(app: &TestApp, method: &str, path: &str, token: Option<&str>) -> (u16, String, String) {
    let method = Method::from_bytes(method.as_bytes()).expect("an HTTP method");
    let mut rb = app.request(method.clone(), path, token);
    if [Method::POST, Method::PUT, Method::PATCH].contains(&method) {
        rb = rb.json(&json!({}));
    }
    let res = rb.send().await.expect("HTTP request to the test server failed");
    let status = res.status().as_u16();
    let content_type = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let text = if content_type.starts_with("text/event-stream") {
        String::new() // a live stream: its status and type are the answer
    } else {
        res.text().await.unwrap_or_default()
    };
    (status, content_type, text)
}

/// Every operation x every caller kind x (T2, org B) where the path addresses an object: the status
/// class the rules say; errors are problems; org B's data never appears.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn every_operation_answers_each_caller_as_the_rules_say(pool: sqlx::PgPool) {
    let w = World::seed(&pool).await;
    let map_ui = tempfile::tempdir().expect("a temporary directory");
    std::fs::create_dir_all(map_ui.path().join("app")).expect("app dir");
    std::fs::write(map_ui.path().join("index.html"), "<!doctype html><title>map</title>").expect("index.html");
    std::fs::write(map_ui.path().join("app/sw.js"), "self.addEventListener('fetch', () => {});").expect("sw.js");
    let mut config = common::test_config("");
    config.map_ui_dir = map_ui.path().to_path_buf();
    let app = TestApp::spawn_with(pool, config).await;
    let operations = OPERATIONS
        .iter()
        .copied()
        .chain(
            OTHER_ROUTES
                .iter()
                .filter(|(file, _, path, _)| !(*file == "ingest.rs" && *path == "/"))
                .map(|(_, m, p, a)| (*m, *p, *a)),
        )
        .chain(STATIC_FILES.iter().map(|p| ("GET", *p, Public)));
    let mut mismatches = Vec::new();
    let mut cases = 0;
    for (method, template, access) in operations {
        for &caller in &CALLERS {
            for aim in [Aim::T2, Aim::OrgB] {
                let (path, addressed) = fill(&w, template, aim);
                // Unauthenticated callers, and paths that address nothing, once.
                if aim == Aim::OrgB && (!addressed || caller.principal().is_none()) {
                    continue;
                }
                cases += 1;
                let token = caller.token(&w);
                let (status, content_type, text) = probe(&app, method, &path, token.as_deref()).await;
                let aimed = addressed.then_some(aim);
                let want =
                    refinement(caller, method, template).unwrap_or_else(|| expected_class(caller, access, aimed));
                let mut notes = Vec::new();
                if !want.admits(status) {
                    notes.push(format!("{method} {path} -> {}", text.chars().take(160).collect::<String>()));
                }
                if status >= 500 {
                    notes.push("server error".into());
                }
                if status >= 400 && !content_type.starts_with("application/problem+json") {
                    notes.push(format!("error is not problem+json: {content_type}"));
                }
                if text.contains(ORG_B_MARKER) {
                    notes.push(format!("LEAK: org B data: {}", text.chars().take(160).collect::<String>()));
                }
                if !notes.is_empty() {
                    mismatches.push(Mismatch {
                        caller: caller.name(),
                        endpoint: template,
                        target: if addressed { if aim == Aim::T2 { "T2" } else { "org B" } } else { "-" },
                        expected: format!("{want:?}"),
                        actual: status.to_string(),
                        note: notes.join("; "),
                    });
                }
            }
        }
    }
    assert!(cases > 1_000, "{cases} cells ran");
    assert!(
        mismatches.is_empty(),
        "{} of {cases} generated access-matrix cells are wrong:\n{}",
        mismatches.len(),
        table(&mismatches)
    );
}

/// The generated matrix's expectations spot-checked by hand.
#[test]
fn generated_expectations_follow_the_rules() {
    let read_outlets = Needs(A::ReadOutlets);
    assert_eq!(expected_class(Caller::NoToken, read_outlets, None), Class::Is(401));
    assert_eq!(expected_class(Caller::Rep, Needs(A::ReadUsers), None), Class::Is(403));
    assert_eq!(expected_class(Caller::Manager, read_outlets, Some(Aim::T2)), Class::Refused);
    assert_eq!(expected_class(Caller::Admin, read_outlets, Some(Aim::T2)), Class::Allowed);
    assert_eq!(expected_class(Caller::Admin, read_outlets, Some(Aim::OrgB)), Class::Hidden);
    assert_eq!(expected_class(Caller::Device, Needs(A::IngestPings), None), Class::Allowed);
    assert_eq!(expected_class(Caller::Admin, Needs(A::IngestPings), None), Class::Is(403));
    assert_eq!(expected_class(Caller::Admin, Access::BasicAuth, None), Class::Is(401));
    assert_eq!(expected_class(Caller::BadToken, Public, None), Class::Allowed);
    assert!(!Class::Refused.admits(200) && !Class::Hidden.admits(403) && !Class::Allowed.admits(401));
}
