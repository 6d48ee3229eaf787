//! The actions the audit log records, one name each in one style, `<object>.<verb>`.
//!
//! Entries written before issue 23 carry some actions under older names (`create_plan`,
//! `review_visit`, ...). The log is append-only, so those rows keep them: [`AuditAction::parse`]
//! reads an old name as its action, and a reader that selects by action matches both spellings
//! ([`AuditAction::spellings`]). New entries are written with [`AuditAction::as_str`].

use crate::names::UnknownName;
use crate::outlet::OutletStatus;
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// Something the audit log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
pub enum AuditAction {
    #[serde(rename = "outlet.create")]
    OutletCreate,
    #[serde(rename = "outlet.update")]
    OutletUpdate,
    /// Closed (`POST /outlets/{id}/close`).
    #[serde(rename = "outlet.closed")]
    OutletClosed,
    /// Suspended (`POST /outlets/{id}/suspend`).
    #[serde(rename = "outlet.suspended")]
    OutletSuspended,
    /// Made active again (`POST /outlets/{id}/reopen`).
    #[serde(rename = "outlet.active")]
    OutletActive,
    #[serde(rename = "outlet.import")]
    OutletImport,
    #[serde(rename = "tier_policy.put")]
    TierPolicyPut,
    #[serde(rename = "territory.create")]
    TerritoryCreate,
    #[serde(rename = "territory.import")]
    TerritoryImport,
    #[serde(rename = "user.create")]
    UserCreate,
    /// Name, role, territory scope or active changed (the detail holds the new values).
    #[serde(rename = "user.update")]
    UserUpdate,
    #[serde(rename = "user.token.issue")]
    UserTokenIssue,
    #[serde(rename = "user.token.revoke")]
    UserTokenRevoke,
    #[serde(rename = "user.set_privacy")]
    UserSetPrivacy,
    #[serde(rename = "device.create")]
    DeviceCreate,
    /// Deactivated: every credential refused from then on.
    #[serde(rename = "device.deactivate")]
    DeviceDeactivate,
    /// Active again.
    #[serde(rename = "device.reactivate")]
    DeviceReactivate,
    /// Secrets replaced (the detail names which).
    #[serde(rename = "device.rotate")]
    DeviceRotate,
    /// The phone moved to another rep (a new device row continues it).
    #[serde(rename = "device.reassign")]
    DeviceReassign,
    /// A one-time enrolment link issued.
    #[serde(rename = "device.enrolment.create")]
    DeviceEnrolmentCreate,
    /// An enrolment link used: the reps' app signed in as the device.
    #[serde(rename = "device.enrol")]
    DeviceEnrol,
    /// Formerly `request_position`.
    #[serde(rename = "device.request_position")]
    DeviceRequestPosition,
    /// Formerly `review_visit`.
    #[serde(rename = "visit.review")]
    VisitReview,
    /// Formerly `recompute_visits`.
    #[serde(rename = "org.recompute_visits")]
    OrgRecomputeVisits,
    /// Formerly `set_ping_settings`.
    #[serde(rename = "org.set_ping_settings")]
    OrgSetPingSettings,
    /// Formerly `create_plan`.
    #[serde(rename = "plan.create")]
    PlanCreate,
    /// Formerly `revise_plan`.
    #[serde(rename = "plan.revise")]
    PlanRevise,
    /// Formerly `end_plan`.
    #[serde(rename = "plan.end")]
    PlanEnd,
    /// Formerly `export`.
    #[serde(rename = "export.create")]
    ExportCreate,
    /// Formerly `verify_export`.
    #[serde(rename = "export.verify")]
    ExportVerify,
    /// A raw-ping retention pass. Formerly `retention`.
    #[serde(rename = "pings.retention")]
    PingsRetention,
    #[serde(rename = "photo.upload")]
    PhotoUpload,
    #[serde(rename = "checklist.create")]
    ChecklistCreate,
    #[serde(rename = "outcome.submit")]
    OutcomeSubmit,
    /// A reviewer's decision on an unconfirmed check-in (a claim).
    #[serde(rename = "checkin.review")]
    CheckinReview,
    #[serde(rename = "demo.load")]
    DemoLoad,
}

impl AuditAction {
    /// Every action, in declaration order.
    pub const ALL: [AuditAction; 36] = [
        AuditAction::OutletCreate,
        AuditAction::OutletUpdate,
        AuditAction::OutletClosed,
        AuditAction::OutletSuspended,
        AuditAction::OutletActive,
        AuditAction::OutletImport,
        AuditAction::TierPolicyPut,
        AuditAction::TerritoryCreate,
        AuditAction::TerritoryImport,
        AuditAction::UserCreate,
        AuditAction::UserUpdate,
        AuditAction::UserTokenIssue,
        AuditAction::UserTokenRevoke,
        AuditAction::UserSetPrivacy,
        AuditAction::DeviceCreate,
        AuditAction::DeviceDeactivate,
        AuditAction::DeviceReactivate,
        AuditAction::DeviceRotate,
        AuditAction::DeviceReassign,
        AuditAction::DeviceEnrolmentCreate,
        AuditAction::DeviceEnrol,
        AuditAction::DeviceRequestPosition,
        AuditAction::VisitReview,
        AuditAction::OrgRecomputeVisits,
        AuditAction::OrgSetPingSettings,
        AuditAction::PlanCreate,
        AuditAction::PlanRevise,
        AuditAction::PlanEnd,
        AuditAction::ExportCreate,
        AuditAction::ExportVerify,
        AuditAction::PingsRetention,
        AuditAction::PhotoUpload,
        AuditAction::ChecklistCreate,
        AuditAction::OutcomeSubmit,
        AuditAction::CheckinReview,
        AuditAction::DemoLoad,
    ];

    /// Its name, `<object>.<verb>`: what new entries are written with and readers show.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuditAction::OutletCreate => "outlet.create",
            AuditAction::OutletUpdate => "outlet.update",
            AuditAction::OutletClosed => "outlet.closed",
            AuditAction::OutletSuspended => "outlet.suspended",
            AuditAction::OutletActive => "outlet.active",
            AuditAction::OutletImport => "outlet.import",
            AuditAction::TierPolicyPut => "tier_policy.put",
            AuditAction::TerritoryCreate => "territory.create",
            AuditAction::TerritoryImport => "territory.import",
            AuditAction::UserCreate => "user.create",
            AuditAction::UserUpdate => "user.update",
            AuditAction::UserTokenIssue => "user.token.issue",
            AuditAction::UserTokenRevoke => "user.token.revoke",
            AuditAction::UserSetPrivacy => "user.set_privacy",
            AuditAction::DeviceCreate => "device.create",
            AuditAction::DeviceDeactivate => "device.deactivate",
            AuditAction::DeviceReactivate => "device.reactivate",
            AuditAction::DeviceRotate => "device.rotate",
            AuditAction::DeviceReassign => "device.reassign",
            AuditAction::DeviceEnrolmentCreate => "device.enrolment.create",
            AuditAction::DeviceEnrol => "device.enrol",
            AuditAction::DeviceRequestPosition => "device.request_position",
            AuditAction::VisitReview => "visit.review",
            AuditAction::OrgRecomputeVisits => "org.recompute_visits",
            AuditAction::OrgSetPingSettings => "org.set_ping_settings",
            AuditAction::PlanCreate => "plan.create",
            AuditAction::PlanRevise => "plan.revise",
            AuditAction::PlanEnd => "plan.end",
            AuditAction::ExportCreate => "export.create",
            AuditAction::ExportVerify => "export.verify",
            AuditAction::PingsRetention => "pings.retention",
            AuditAction::PhotoUpload => "photo.upload",
            AuditAction::ChecklistCreate => "checklist.create",
            AuditAction::OutcomeSubmit => "outcome.submit",
            AuditAction::CheckinReview => "checkin.review",
            AuditAction::DemoLoad => "demo.load",
        }
    }

    /// The name entries written before issue 23 carry for this action, where it differed.
    pub const fn old_name(self) -> Option<&'static str> {
        match self {
            AuditAction::VisitReview => Some("review_visit"),
            AuditAction::OrgRecomputeVisits => Some("recompute_visits"),
            AuditAction::PlanCreate => Some("create_plan"),
            AuditAction::PlanRevise => Some("revise_plan"),
            AuditAction::PlanEnd => Some("end_plan"),
            AuditAction::DeviceRequestPosition => Some("request_position"),
            AuditAction::OrgSetPingSettings => Some("set_ping_settings"),
            AuditAction::ExportCreate => Some("export"),
            AuditAction::ExportVerify => Some("verify_export"),
            AuditAction::PingsRetention => Some("retention"),
            _ => None,
        }
    }

    /// Every text the log may hold for this action: its name, and its old name if it had one.
    /// A reader selecting entries by action matches all of them (`action = ANY($n)`).
    pub fn spellings(self) -> Vec<&'static str> {
        std::iter::once(self.as_str()).chain(self.old_name()).collect()
    }

    /// The action named `s`, by its name or its old name.
    pub fn parse(s: &str) -> Option<AuditAction> {
        AuditAction::ALL.into_iter().find(|a| a.as_str() == s || a.old_name() == Some(s))
    }

    /// A change of an outlet's lifecycle status to `status`.
    pub const fn outlet_status(status: OutletStatus) -> AuditAction {
        match status {
            OutletStatus::Active => AuditAction::OutletActive,
            OutletStatus::Closed => AuditAction::OutletClosed,
            OutletStatus::Suspended => AuditAction::OutletSuspended,
        }
    }
}

/// An action as the log holds it: one this version knows (read by its name or old name), or a
/// text it does not (written by another version of the server). The log is append-only, so a
/// reader shows such a row as it is instead of failing on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum LoggedAction {
    Known(AuditAction),
    Other(String),
}

/// A string, not `oneOf [AuditAction, string]`: every known action is also a string, so a
/// `oneOf` would match both and no value would validate (JSON Schema's oneOf is exclusive).
impl utoipa::PartialSchema for LoggedAction {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "The action's name: one of AuditAction, or a name written by another version of the server",
            ))
            .into()
    }
}

impl utoipa::ToSchema for LoggedAction {}

impl From<String> for LoggedAction {
    fn from(text: String) -> Self {
        AuditAction::parse(&text).map_or(LoggedAction::Other(text), LoggedAction::Known)
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuditAction {
    type Err = UnknownName;
    /// As [`AuditAction::parse`]: old names are read as their action.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AuditAction::parse(s)
            .ok_or_else(|| UnknownName::new("audit action", s, &AuditAction::ALL.map(AuditAction::as_str)))
    }
}

impl TryFrom<String> for AuditAction {
    type Error = UnknownName;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table of docs/api.md, "Audit log": old name -> name.
    const RENAMED: [(&str, &str); 10] = [
        ("review_visit", "visit.review"),
        ("recompute_visits", "org.recompute_visits"),
        ("create_plan", "plan.create"),
        ("revise_plan", "plan.revise"),
        ("end_plan", "plan.end"),
        ("request_position", "device.request_position"),
        ("set_ping_settings", "org.set_ping_settings"),
        ("export", "export.create"),
        ("verify_export", "export.verify"),
        ("retention", "pings.retention"),
    ];

    #[test]
    fn every_old_name_maps_to_its_new_one() {
        for (old, new) in RENAMED {
            let action = AuditAction::parse(old).unwrap_or_else(|| panic!("`{old}` is not read"));
            assert_eq!(action.as_str(), new, "{old}");
            assert_eq!(action.old_name(), Some(old));
            assert_eq!(action.spellings(), [new, old]);
        }
        let with_old_name = AuditAction::ALL.iter().filter(|a| a.old_name().is_some()).count();
        assert_eq!(with_old_name, RENAMED.len(), "every old name is in the table");
    }

    #[test]
    fn every_name_round_trips_and_is_in_one_style() {
        for a in AuditAction::ALL {
            let name = a.as_str();
            assert_eq!(AuditAction::parse(name), Some(a), "{name}");
            assert_eq!(name.parse::<AuditAction>().ok(), Some(a), "{name}");
            assert_eq!(serde_json::to_value(a).ok(), Some(serde_json::Value::String(name.to_owned())), "{name}");
            let (object, verb) = name.split_once('.').unwrap_or_else(|| panic!("`{name}` is not <object>.<verb>"));
            let word = |w: &str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'.');
            assert!(word(object) && word(verb), "{name}");
            if let Some(old) = a.old_name() {
                assert_ne!(old, name);
                assert_eq!(a.spellings(), [name, old]);
            } else {
                assert_eq!(a.spellings(), [name]);
            }
        }
        let mut names: Vec<&str> = AuditAction::ALL.iter().flat_map(|a| a.spellings()).collect();
        names.sort_unstable();
        let all = names.len();
        names.dedup();
        assert_eq!(names.len(), all, "no text names two actions");
        assert!("forged".parse::<AuditAction>().is_err());
        assert_eq!(AuditAction::parse("user.create"), Some(AuditAction::UserCreate));
        assert_eq!(LoggedAction::from("create_plan".to_owned()), LoggedAction::Known(AuditAction::PlanCreate));
        assert_eq!(LoggedAction::from("x.future".to_owned()), LoggedAction::Other("x.future".into()));
    }

    #[test]
    fn outlet_status_changes_are_named_after_the_new_status() {
        for s in OutletStatus::ALL {
            assert_eq!(AuditAction::outlet_status(s).as_str(), format!("outlet.{s}"));
        }
    }
}
