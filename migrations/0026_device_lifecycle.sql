-- Device lifecycle: deactivate, reactivate, rotate credentials, reassign to another rep, enrol a
-- phone with a one-time link.
--
-- The OsmAnd / Traccar Client id is a secret like the others: only its SHA-256 is kept.
ALTER TABLE devices ADD COLUMN osmand_id_hash bytea;
UPDATE devices SET osmand_id_hash = sha256(convert_to(osmand_id, 'UTF8'));
ALTER TABLE devices DROP COLUMN osmand_id;
ALTER TABLE devices ADD CONSTRAINT devices_osmand_id_hash_key UNIQUE (osmand_id_hash),
    ADD CONSTRAINT devices_osmand_id_hash_length CHECK (osmand_id_hash IS NULL OR length(osmand_id_hash) = 32);

-- Bumped by every deactivation, rotation and reassignment. The ping writer stores a ping only
-- while the device is active at the version its credential was resolved with, so a credential
-- cached by any instance stops working the moment the change commits.
ALTER TABLE devices ADD COLUMN credential_version integer NOT NULL DEFAULT 1;

-- Reassignment keeps history: the pings, visits and evidence of a device row stay with the rep
-- it served. The phone's credentials move to a new row for the new rep (`successor_id`); the old
-- row keeps none and cannot be reactivated.
ALTER TABLE devices ADD COLUMN successor_id bigint,
    ADD COLUMN deactivated_at timestamptz,
    ALTER COLUMN owntracks_user DROP NOT NULL,
    ALTER COLUMN owntracks_password_hash DROP NOT NULL,
    ADD CONSTRAINT devices_successor_fkey FOREIGN KEY (org_id, successor_id) REFERENCES devices (org_id, id),
    ADD CONSTRAINT devices_successor_inactive CHECK (successor_id IS NULL OR NOT active),
    ADD CONSTRAINT devices_active_has_credentials
        CHECK (NOT active OR (osmand_id_hash IS NOT NULL AND owntracks_user IS NOT NULL
                              AND owntracks_password_hash IS NOT NULL));
CREATE UNIQUE INDEX devices_one_predecessor ON devices (org_id, successor_id) WHERE successor_id IS NOT NULL;

-- One-time enrolment codes: the link a manager hands a rep opens the reps' app signed in as the
-- device. Only the code's SHA-256 is kept; a code works once, before it expires.
CREATE TABLE device_enrolments (
    org_id      bigint NOT NULL,
    id          bigint GENERATED ALWAYS AS IDENTITY,
    device_id   bigint NOT NULL,
    code_hash   bytea NOT NULL CONSTRAINT device_enrolments_code_hash_key UNIQUE
                CONSTRAINT device_enrolments_code_hash_length CHECK (length(code_hash) = 32),
    created_by  bigint,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    -- Withdrawn unused: the device was deactivated, rotated or reassigned, or got a newer code.
    withdrawn_at timestamptz,
    PRIMARY KEY (org_id, id),
    CONSTRAINT device_enrolments_device_fkey FOREIGN KEY (org_id, device_id) REFERENCES devices (org_id, id),
    CONSTRAINT device_enrolments_creator_fkey FOREIGN KEY (org_id, created_by) REFERENCES users (org_id, id),
    CONSTRAINT device_enrolments_expiry_after_creation CHECK (expires_at > created_at)
);
CREATE INDEX device_enrolments_device ON device_enrolments (org_id, device_id);
