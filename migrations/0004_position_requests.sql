-- Targeted positioning: a manager asks one device for a fresh fix. OwnTracks devices receive it as
-- a `cmd` (action reportLocation) in their next reply, native clients by polling their commands.
-- The first fix the device sends after the request was delivered answers it (and is flagged).
CREATE TABLE position_requests (
    org_id            bigint NOT NULL,
    id                bigint GENERATED ALWAYS AS IDENTITY,
    device_id         bigint NOT NULL,
    requested_by      bigint NOT NULL,
    requested_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at      timestamptz,
    answered_at       timestamptz,
    answer_fix_time   timestamptz,
    PRIMARY KEY (org_id, id),
    CONSTRAINT position_requests_device_fkey FOREIGN KEY (org_id, device_id) REFERENCES devices (org_id, id),
    CONSTRAINT position_requests_requester_fkey FOREIGN KEY (org_id, requested_by) REFERENCES users (org_id, id)
);
CREATE INDEX position_requests_open ON position_requests (org_id, device_id) WHERE answered_at IS NULL;
