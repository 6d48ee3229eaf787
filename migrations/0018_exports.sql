-- Audit exports: a job per request, its manifest once done, and its files kept in the database in
-- 1 MiB chunks (so that any server instance can serve and verify them, and a download streams
-- with bounded memory). A finished export is never changed: its manifest is what `verify` checks
-- a file and the current data against.
CREATE TABLE exports (
    org_id        bigint NOT NULL REFERENCES orgs (id),
    id            bigint GENERATED ALWAYS AS IDENTITY,
    requested_by  bigint,
    requested_at  timestamptz NOT NULL DEFAULT now(),
    -- Scope, period and formats as asked for.
    params        jsonb NOT NULL,
    status        text NOT NULL DEFAULT 'queued'
                  CONSTRAINT exports_status_known CHECK (status IN ('queued', 'running', 'done', 'failed')),
    progress_pct  real NOT NULL DEFAULT 0,
    error         text,
    finished_at   timestamptz,
    -- Set when done: parameters, generating user and time, rule and metric-definition versions,
    -- SHA-256 of every file and of the underlying visit rows.
    manifest      jsonb,
    PRIMARY KEY (org_id, id),
    CONSTRAINT exports_requested_by_fkey FOREIGN KEY (org_id, requested_by) REFERENCES users (org_id, id)
);
CREATE INDEX exports_requested_at_idx ON exports (org_id, requested_at);

CREATE TABLE export_chunks (
    org_id     bigint NOT NULL,
    export_id  bigint NOT NULL,
    file       text NOT NULL,
    seq        integer NOT NULL,
    data       bytea NOT NULL,
    PRIMARY KEY (org_id, export_id, file, seq),
    CONSTRAINT export_chunks_export_fkey FOREIGN KEY (org_id, export_id) REFERENCES exports (org_id, id) ON DELETE CASCADE
);
