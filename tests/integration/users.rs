//! `PATCH /users/{id}`: admins rename users, change their role among the non-rep roles, move
//! their territory scope and deactivate them (the token is refused at once, a rep's phones too);
//! never their own role, scope or account; a scoped admin only within their subtree; audited.

use crate::common;

use common::{TestApp, World, assert_problem};
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn admins_edit_and_deactivate_users_within_their_scope(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let admin = Some(w.admin.token.as_str());

    // Rename and re-scope a manager; the answer is the stored user.
    let path = format!("/api/v1/users/{}", w.manager.id);
    let res = app.patch(&path, admin, &json!({"name": "  新名字 ", "territory_id": w.t2, "role": "supervisor"})).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!((res.json["name"].as_str(), res.json["territory_id"].as_i64()), (Some("新名字"), Some(w.t2)));
    assert_eq!(res.json["role"], "supervisor");
    let res = app.patch(&path, admin, &json!({"territory_id": null})).await;
    assert_eq!(res.json["territory_id"], serde_json::Value::Null, "null: the whole org");
    assert_eq!(res.json["name"], "新名字", "absent fields keep their value");

    // A rep stays a rep, no one becomes one, and every bad field is named.
    let rep_path = format!("/api/v1/users/{}", w.rep.id);
    let res = app.patch(&rep_path, admin, &json!({"role": "manager"})).await;
    assert_problem(&res, 422, &rep_path);
    assert_eq!(res.error_fields(), ["role"]);
    let res = app.patch(&path, admin, &json!({"role": "rep", "name": " "})).await;
    assert_problem(&res, 422, &path);
    assert_eq!(res.error_fields(), ["name", "role"]);
    let res = app.patch(&path, admin, &json!({"role": "chief"})).await;
    assert_eq!(res.error_fields(), ["role"]);
    let res = app.patch(&path, admin, &json!({"colour": "red"})).await;
    assert_problem(&res, 422, &path);
    let res = app.patch(&path, admin, &json!({"territory_id": 999_999})).await;
    assert_eq!(res.error_fields(), ["territory_id"], "{}", res.describe());

    // Not oneself: no lock-out.
    let own = format!("/api/v1/users/{}", w.admin.id);
    let res = app.patch(&own, admin, &json!({"active": false, "role": "auditor", "territory_id": w.t1})).await;
    assert_problem(&res, 422, &own);
    assert_eq!(res.error_fields(), ["role", "active", "territory_id"]);

    // A scoped admin reaches only their subtree, and cannot widen a user beyond it.
    let t1_admin = Some(w.admin_t1.token.as_str());
    assert_eq!(app.patch(&format!("/api/v1/users/{}", w.rep2.id), t1_admin, &json!({"name": "x"})).await.status, 403);
    let res = app.patch(&format!("/api/v1/users/{}", w.peer.id), t1_admin, &json!({"territory_id": null})).await;
    assert_eq!(res.status, 403, "org-wide is outside a T1 admin's scope: {}", res.describe());
    // Only admins.
    let manager = Some(w.supervisor.token.as_str());
    assert_eq!(app.patch(&format!("/api/v1/users/{}", w.peer.id), manager, &json!({"name": "x"})).await.status, 403);

    // Deactivating a rep refuses their token and their phone's at once; reactivating lets both in.
    assert_eq!(app.get("/api/v1/me", Some(&w.device.token)).await.status, 200);
    let res = app.patch(&rep_path, admin, &json!({"active": false})).await;
    assert_eq!((res.status, res.json["active"].as_bool()), (200, Some(false)));
    assert_eq!(app.get("/api/v1/me", Some(&w.rep.token)).await.status, 401);
    assert_eq!(app.get("/api/v1/me", Some(&w.device.token)).await.status, 401);
    assert_eq!(app.patch(&rep_path, admin, &json!({"active": true})).await.status, 200);
    assert_eq!(app.get("/api/v1/me", Some(&w.rep.token)).await.status, 200);
    assert_eq!(app.get("/api/v1/me", Some(&w.device.token)).await.status, 200);

    // Each change is in the audit log with what changed.
    let entries: Vec<(String, serde_json::Value)> =
        sqlx::query_as("SELECT action, detail FROM audit_log WHERE org_id = $1 AND action = 'user.update' ORDER BY id")
            .bind(w.org_a)
            .fetch_all(&pool)
            .await
            .expect("audit");
    let details: Vec<_> = entries.iter().map(|(_, d)| d.clone()).collect();
    assert_eq!(
        details,
        [
            json!({"name": "新名字", "role": "supervisor", "territory_id": w.t2}),
            json!({"territory_id": null}),
            json!({"active": false}),
            json!({"active": true}),
        ]
    );
}
