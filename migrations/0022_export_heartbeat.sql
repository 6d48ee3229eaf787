-- When a queued or running export last showed it is alive: a job whose server stopped stops
-- beating, and is marked failed (interrupted) instead of staying "running" forever.
ALTER TABLE exports ADD COLUMN heartbeat_at timestamptz;
