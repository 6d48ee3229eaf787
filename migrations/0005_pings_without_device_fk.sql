-- Raw pings are the hottest write path. The foreign key to devices checked every row and halved
-- the insert rate (300k rows: 7.0 s with it, 3.2 s without, measured on this project's machine).
-- Every ping is written by the ingest path after its device was resolved from a credential, and
-- devices are deactivated, never deleted, so the check guards nothing the writer can break.
ALTER TABLE pings DROP CONSTRAINT pings_device_fkey;
