-- Issue 25, item 10: the audit log's request_id is always ours (a UUID the server generates); the
-- x-request-id a client sent is kept apart, validated (at most 128 visible ASCII characters).
ALTER TABLE audit_log ADD COLUMN client_request_id text
    CONSTRAINT audit_log_client_request_id_short CHECK (length(client_request_id) <= 128);
