-- Which visit rule version each org's visits were last derived with. A server starting with other
-- rules marks every rep-day of such an org dirty (with pings or visits) and records its version,
-- so the deriving workers recompute them under the new rules; orgs without a row were derived
-- before this table existed.
CREATE TABLE visit_rule_state (
    org_id        bigint PRIMARY KEY REFERENCES orgs (id),
    rule_version  text NOT NULL,
    applied_at    timestamptz NOT NULL DEFAULT now()
);
