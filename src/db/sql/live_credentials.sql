-- How many of the (org, device, credential version) keys name a device that is active at that
-- version, as of this statement (run after the batch's COPY, before its commit).
SELECT count(*)
  FROM (SELECT d.id
          FROM UNNEST($1::bigint[], $2::bigint[], $3::int[]) AS k(org_id, device_id, version)
          JOIN devices d ON d.org_id = k.org_id AND d.id = k.device_id
         WHERE d.active AND d.credential_version = k.version) live
