//! Authentication (opaque bearer tokens) and the one place where role and territory scope are
//! enforced. Handlers take `Can<SomeAction>`; object-level scope goes through [`Principal::check_territory`]
//! and [`Principal::check_rep`], which answer 403 for objects outside the caller's scope.
//! Objects of another org are never found in the first place (every query is keyed by org), so they are 404.

use super::AppState;
use super::error::ApiError;
use crate::db;
use crate::domain::access::{self, Action, Role, Scope};
use crate::domain::credentials::hash_secret;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use std::marker::PhantomData;

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Principal {
    pub org_id: i64,
    pub actor: Actor,
    /// The request id, for audit records.
    pub request_id: Option<String>,
    /// The id the client sent, kept apart from ours (`super::request_id`).
    pub client_request_id: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub enum Actor {
    User {
        id: i64,
        role: Role,
        scope: Scope,
    },
    /// A rep's phone: it acts for its rep (the rep's role and scope, only the rep's own data).
    Device {
        id: i64,
        rep_id: i64,
        scope: Scope,
    },
}

impl Principal {
    pub fn user_id(&self) -> Option<i64> {
        match self.actor {
            Actor::User { id, .. } => Some(id),
            Actor::Device { .. } => None,
        }
    }

    /// The caller as the use cases see it.
    pub fn caller(&self) -> crate::app::Caller<'_> {
        crate::app::Caller {
            org_id: self.org_id,
            user_id: self.user_id(),
            device_id: self.device_id(),
            request_id: self.request_id.as_deref(),
            client_request_id: self.client_request_id.as_deref(),
            role: self.role(),
            own_rep: self.own_rep(),
            scope: Some(match self.actor {
                Actor::User { scope, .. } | Actor::Device { scope, .. } => scope,
            }),
        }
    }

    /// The rep whose own data alone the caller sees: a rep user, or the rep a device acts for.
    pub fn own_rep(&self) -> Option<i64> {
        match self.actor {
            Actor::User { id, role: Role::Rep, .. } => Some(id),
            Actor::Device { rep_id, .. } => Some(rep_id),
            Actor::User { .. } => None,
        }
    }

    pub fn device_id(&self) -> Option<i64> {
        match self.actor {
            Actor::Device { id, .. } => Some(id),
            Actor::User { .. } => None,
        }
    }

    /// The caller's role; a device acts for its rep, so it has the role `rep`.
    pub fn role(&self) -> Option<Role> {
        match self.actor {
            Actor::User { role, .. } => Some(role),
            Actor::Device { .. } => Some(Role::Rep),
        }
    }

    /// 403 unless the caller's role (or device credential) allows `action`.
    pub fn require(&self, action: Action) -> Result<(), ApiError> {
        let (ok, who) = match self.actor {
            Actor::User { role, .. } => (access::allows(role, action), format!("role `{role}`")),
            Actor::Device { .. } => (access::device_allows(action), "a device credential".to_owned()),
        };
        if ok { Ok(()) } else { Err(ApiError::Forbidden(format!("{who} may not {}", describe(action)))) }
    }

    /// The territory subtree to filter lists by (`None` = whole org).
    pub fn scope_root(&self) -> Option<i64> {
        match self.actor {
            Actor::User { scope, .. } | Actor::Device { scope, .. } => scope.root(),
        }
    }

    /// 403 unless an object in the territory with `path` is within the caller's scope.
    pub fn check_territory(&self, path: Option<&[i64]>) -> Result<(), ApiError> {
        if self.caller().may_reach(path) {
            Ok(())
        } else {
            Err(ApiError::Forbidden("this object is outside your territory".into()))
        }
    }

    /// Whether the caller is rep `rep_id` (a rep's user token) or one of that rep's devices.
    pub fn is_rep_or_their_device(&self, rep_id: i64) -> bool {
        self.own_rep() == Some(rep_id)
    }

    /// 403 unless the caller may see the data of rep `rep_id` (whose territory path is `rep_path`):
    /// reps and devices only their own, everyone else reps within their territory scope.
    pub fn check_rep(&self, rep_id: i64, rep_path: Option<&[i64]>) -> Result<(), ApiError> {
        if self.caller().may_see_rep(rep_id, rep_path) {
            Ok(())
        } else {
            Err(ApiError::Forbidden("this rep's data is outside your scope".into()))
        }
    }
}

fn describe(action: Action) -> &'static str {
    match action {
        Action::ReadOutlets => "read outlets",
        Action::WriteOutlets => "change outlets",
        Action::ReadTerritories => "read territories",
        Action::WriteTerritories => "change territories",
        Action::ReadTierPolicies => "read tier policies",
        Action::WriteTierPolicies => "change tier policies",
        Action::ReadUsers => "read users",
        Action::ManageUsers => "manage users",
        Action::ReadDevices => "read devices",
        Action::ManageDevices => "register devices",
        Action::ReadTracks => "read tracks and pings",
        Action::ReadVisits => "read visits",
        Action::ReviewVisits => "review visits",
        Action::ReadTeamCompliance => "read a territory's compliance",
        Action::ReadBulletin => "read a territory's monthly bulletin",
        Action::RecomputeVisits => "recompute visits",
        Action::ReadPlans => "read plans",
        Action::WritePlans => "change plans",
        Action::ReadAuditLog => "read the audit log",
        Action::ExportAudits => "export audits",
        Action::ManageSettings => "change the org's settings",
        Action::IngestPings => "post pings",
        Action::SubmitEvidence => "submit photos and checklist answers",
    }
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("missing `Authorization: Bearer <token>` header".into()))?;
    let value = value.to_str().map_err(|_| ApiError::Unauthorized("malformed Authorization header".into()))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| ApiError::Unauthorized("expected `Authorization: Bearer <token>`".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::Unauthorized("expected `Authorization: Bearer <token>`".into()));
    }
    Ok(token.trim())
}

impl<S> FromRequestParts<S> for Principal
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(p.clone());
        }
        let state = AppState::from_ref(state);
        let token = bearer(parts)?;
        let owner = db::tokens::owner(&state.db, &hash_secret(token))
            .await?
            .ok_or_else(|| ApiError::Unauthorized("unknown or revoked token".into()))?;
        let actor = match (owner.user_id, owner.role, owner.device_id, owner.device_rep_id) {
            (Some(id), Some(role), _, _) => Actor::User { id, role, scope: Scope::from_territory(owner.territory_id) },
            (_, _, Some(id), Some(rep_id)) => {
                Actor::Device { id, rep_id, scope: Scope::from_territory(owner.device_rep_territory_id) }
            }
            _ => return Err(ApiError::Unauthorized("unknown or revoked token".into())),
        };
        let request_id = parts.headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let client_request_id = parts.extensions.get::<super::request_id::ClientRequestId>().map(|c| c.0.clone());
        let principal = Principal { org_id: owner.org_id, actor, request_id, client_request_id };
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}

/// A type-level action for [`Can`].
pub trait Permission: Send + Sync {
    const ACTION: Action;
}

macro_rules! permissions {
    ($($name:ident),* $(,)?) => {
        $(
            #[doc = concat!("Marker for [`Action::", stringify!($name), "`].")]
            pub struct $name;
            impl Permission for $name {
                const ACTION: Action = Action::$name;
            }
        )*
    };
}

/// Action markers usable as `Can<p::ReadOutlets>`.
pub mod p {
    use super::{Action, Permission};
    permissions!(
        ReadOutlets,
        WriteOutlets,
        ReadTerritories,
        WriteTerritories,
        ReadTierPolicies,
        WriteTierPolicies,
        ReadUsers,
        ManageUsers,
        ReadDevices,
        ManageDevices,
        ReadTracks,
        ReadVisits,
        ReviewVisits,
        ReadTeamCompliance,
        ReadBulletin,
        RecomputeVisits,
        ReadPlans,
        WritePlans,
        ReadAuditLog,
        ExportAudits,
        ManageSettings,
        IngestPings,
        SubmitEvidence,
    );
}

/// An authenticated caller whose role allows `A`: 401 without a valid token, 403 without the right.
pub struct Can<A: Permission>(pub Principal, PhantomData<A>);

impl<A: Permission> std::ops::Deref for Can<A> {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl<S, A> FromRequestParts<S> for Can<A>
where
    AppState: FromRef<S>,
    S: Send + Sync,
    A: Permission,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, state).await?;
        principal.require(A::ACTION)?;
        Ok(Can(principal, PhantomData))
    }
}
