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
