//! Who may do what: roles, actions and territory scope. The single source of truth for
//! authorisation; the HTTP layer asks this module and never decides on its own.

use crate::compliance::ReviewDecision;
use serde::{Deserialize, Serialize};

/// A user's role in an org.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Org setup, users, devices, tier policies, retention; sees the whole org.
    Admin,
    /// Spot-checks and reviews visits, exports audits; read-mostly, within a territory subtree.
    Supervisor,
    /// Reads everything in scope, including the audit log; changes nothing.
    Auditor,
    /// Watches and steers the reps of a territory subtree; edits plans and outlets there.
    Manager,
    /// A field rep: own data only.
    Rep,
}

named!(Role, "role", {
    Admin => "admin",
    Supervisor => "supervisor",
    Auditor => "auditor",
    Manager => "manager",
    Rep => "rep",
});

/// Something a caller wants to do. Handlers declare the action; [`allows`] decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
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
    /// Raw pings and tracks of a rep.
    ReadTracks,
    ReadVisits,
    ReviewVisits,
    /// Compliance and outlet figures of a territory (all its reps and outlets).
    ReadTeamCompliance,
    /// The monthly assessment bulletin of a territory: its leaderboard, published to the team
    /// (a rep reads their own territory's).
    ReadBulletin,
    /// Mark a period's rep-days for visit derivation again (admins).
    RecomputeVisits,
    ReadPlans,
    WritePlans,
    ReadAuditLog,
    /// Change the org's ping filter, working-hours and retention settings (admins).
    ManageSettings,
    /// Export audits and verify them (scope checked per export: reps only their own).
    ExportAudits,
    /// Post positions (devices only).
    IngestPings,
    /// Upload photos and checklist answers: for one's own visits (reps, their devices), for the
    /// outlets in scope (every role).
    SubmitEvidence,
}

/// Whether a user of `role` may perform `action` at all (scope is checked separately).
pub fn allows(role: Role, action: Action) -> bool {
    use Action as A;
    use Role as R;
    match action {
        A::ReadOutlets
        | A::ReadTerritories
        | A::ReadTierPolicies
        | A::ReadTracks
        | A::ReadVisits
        | A::ReadPlans
        | A::ExportAudits
        | A::ReadBulletin
        | A::SubmitEvidence => true,
        A::WriteOutlets | A::WritePlans | A::ManageDevices => matches!(role, R::Admin | R::Manager),
        A::WriteTerritories | A::WriteTierPolicies | A::ManageUsers | A::RecomputeVisits | A::ManageSettings => {
            role == R::Admin
        }
        A::ReadUsers | A::ReadDevices | A::ReadTeamCompliance => role != R::Rep,
        A::ReviewVisits => matches!(role, R::Admin | R::Supervisor | R::Auditor),
        A::ReadAuditLog => matches!(role, R::Admin | R::Auditor),
        A::IngestPings => false,
    }
}

/// Whether a device credential may perform `action`. A device acts for its rep (the reps' app
/// signs in as the device): it may do what the rep may about their own work, and post pings,
/// which only devices do.
pub fn device_allows(action: Action) -> bool {
    action == Action::IngestPings || allows(Role::Rep, action)
}

/// The part of an org a user may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The whole org (a user with no territory).
    Org,
    /// A territory and everything below it.
    Subtree(i64),
}

impl Scope {
    pub fn from_territory(territory_id: Option<i64>) -> Self {
        territory_id.map_or(Scope::Org, Scope::Subtree)
    }

    /// The subtree root to filter lists by, `None` for the whole org.
    pub fn root(self) -> Option<i64> {
        match self {
            Scope::Org => None,
            Scope::Subtree(id) => Some(id),
        }
    }

    /// Whether an object in the territory with this `path` (root..node ids) is visible.
    /// Objects with no territory are visible only to org-wide users.
    pub fn contains(self, territory_path: Option<&[i64]>) -> bool {
        match self {
            Scope::Org => true,
            Scope::Subtree(root) => territory_path.is_some_and(|p| p.contains(&root)),
        }
    }
}

/// Why a user may not take the review decision they ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionRefusal {
    /// Accepting and rejecting need the right to review visits ([`Action::ReviewVisits`]).
    NotAReviewer,
    /// Only the rep disputes a visit, and only their own.
    NotTheirVisit,
    /// Not a decision a reviewer asks for (a resolution settles a dispute).
    NotAsked,
}

/// Whether a user of `role` may take review `decision` on a visit (`own_visit`: they are its
/// rep): accepting and rejecting need the right to review visits; only the rep disputes their own
/// visit. Scope (whether the user sees the visit's rep) is checked separately.
pub fn may_decide(role: Role, decision: ReviewDecision, own_visit: bool) -> Result<(), DecisionRefusal> {
    match decision {
        ReviewDecision::Accepted | ReviewDecision::Rejected if allows(role, Action::ReviewVisits) => Ok(()),
        ReviewDecision::Accepted | ReviewDecision::Rejected => Err(DecisionRefusal::NotAReviewer),
        ReviewDecision::Disputed if own_visit => Ok(()),
        ReviewDecision::Disputed => Err(DecisionRefusal::NotTheirVisit),
        ReviewDecision::Resolved => Err(DecisionRefusal::NotAsked),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_text() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().ok(), Some(r));
        }
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn only_admin_manages_users_and_only_writers_write() {
        assert!(allows(Role::Admin, Action::ManageUsers));
        for r in [Role::Supervisor, Role::Auditor, Role::Manager, Role::Rep] {
            assert!(!allows(r, Action::ManageUsers), "{r}");
        }
        assert!(allows(Role::Manager, Action::WriteOutlets));
        assert!(!allows(Role::Auditor, Action::WriteOutlets));
        assert!(!allows(Role::Rep, Action::ReadUsers));
        assert!(!allows(Role::Rep, Action::ReadTeamCompliance));
        assert!(allows(Role::Manager, Action::ReadTeamCompliance));
        assert!(allows(Role::Rep, Action::ReadBulletin), "a rep reads their team's leaderboard");
        assert!(allows(Role::Auditor, Action::ReadAuditLog));
        assert!(!allows(Role::Manager, Action::ReadAuditLog));
        assert!(!allows(Role::Admin, Action::IngestPings));
    }

    #[test]
    fn a_device_may_do_what_its_rep_may_and_post_pings() {
        assert!(device_allows(Action::IngestPings));
        for action in [Action::ReadOutlets, Action::ReadPlans, Action::ReadVisits, Action::SubmitEvidence] {
            assert!(device_allows(action), "{action:?}");
        }
        for action in [Action::ReadUsers, Action::ReadTeamCompliance, Action::WritePlans, Action::ReviewVisits] {
            assert!(!device_allows(action), "{action:?}");
        }
    }

    #[test]
    fn subtree_scope_sees_descendants_only() {
        let s = Scope::Subtree(5);
        assert!(s.contains(Some(&[1, 5])));
        assert!(s.contains(Some(&[1, 5, 9])));
        assert!(!s.contains(Some(&[1, 6])));
        assert!(!s.contains(None));
        assert!(Scope::Org.contains(None));
    }

    #[test]
    fn reviewers_accept_and_reject_and_only_the_rep_disputes_their_own_visit() {
        use ReviewDecision as D;
        for role in [Role::Admin, Role::Supervisor, Role::Auditor] {
            assert_eq!(may_decide(role, D::Accepted, false), Ok(()), "{role}");
            assert_eq!(may_decide(role, D::Rejected, false), Ok(()), "{role}");
        }
        for role in [Role::Manager, Role::Rep] {
            assert_eq!(may_decide(role, D::Rejected, true), Err(DecisionRefusal::NotAReviewer), "{role}");
        }
        assert_eq!(may_decide(Role::Rep, D::Disputed, true), Ok(()));
        assert_eq!(may_decide(Role::Rep, D::Disputed, false), Err(DecisionRefusal::NotTheirVisit));
        assert_eq!(may_decide(Role::Supervisor, D::Disputed, false), Err(DecisionRefusal::NotTheirVisit));
        assert_eq!(may_decide(Role::Admin, D::Resolved, false), Err(DecisionRefusal::NotAsked));
    }
}
