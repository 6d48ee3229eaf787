-- The audit log of org $1, newest first: entries with id < $2, at most $3.
-- $4: the root territory of a scoped caller (NULL: the whole org). Then only entries about an object
-- within that territory's subtree are read: an outlet or territory by its own territory; a user by
-- theirs; a device, plan, visit, check-in, photo or visit outcome by its rep's; an export by the
-- territory or rep it covers. Entries about the org as a whole (settings, tier policies, imports,
-- recomputation, retention, the demo load) and objects that no longer resolve name no territory,
-- so a scoped caller reads none of them.
SELECT a.id, a.at, a.actor_user_id, a.actor_device_id, a.action, a.object_type, a.object_id, a.request_id,
       a.client_request_id, a.detail
  FROM audit_log a
  CROSS JOIN LATERAL (
      SELECT CASE WHEN a.object_id ~ '^[0-9]{1,18}$' THEN a.object_id::bigint END AS id
  ) obj
 WHERE a.org_id = $1 AND a.id < $2
   AND ($4::bigint IS NULL OR EXISTS (
        SELECT 1 FROM territories t
         WHERE t.org_id = a.org_id AND t.path @> ARRAY[$4::bigint]
           AND t.id = CASE a.object_type
                WHEN 'territory' THEN obj.id
                WHEN 'outlet' THEN (SELECT o.territory_id FROM outlets o WHERE o.org_id = a.org_id AND o.id = obj.id)
                WHEN 'export' THEN (
                    SELECT CASE e.params -> 'scope' ->> 'kind'
                               WHEN 'territory' THEN (e.params -> 'scope' ->> 'id')::bigint
                               ELSE (SELECT u.territory_id FROM users u
                                      WHERE u.org_id = e.org_id AND u.id = (e.params -> 'scope' ->> 'id')::bigint)
                           END
                      FROM exports e WHERE e.org_id = a.org_id AND e.id = obj.id)
                ELSE (SELECT u.territory_id FROM users u
                       WHERE u.org_id = a.org_id
                         AND u.id = CASE a.object_type
                              WHEN 'user' THEN obj.id
                              WHEN 'device' THEN (SELECT d.rep_id FROM devices d WHERE d.org_id = a.org_id AND d.id = obj.id)
                              WHEN 'plan' THEN (SELECT p.rep_id FROM plans p WHERE p.org_id = a.org_id AND p.id = obj.id)
                              WHEN 'visit' THEN (SELECT v.rep_id FROM visits v WHERE v.org_id = a.org_id AND v.id = obj.id)
                              WHEN 'checkin' THEN (SELECT c.rep_id FROM checkins c WHERE c.org_id = a.org_id AND c.id = obj.id)
                              WHEN 'photo' THEN (SELECT ph.rep_id FROM photos ph WHERE ph.org_id = a.org_id AND ph.id = obj.id)
                              WHEN 'visit_outcome' THEN (
                                  SELECT vo.rep_id FROM visit_outcomes vo WHERE vo.org_id = a.org_id AND vo.id = obj.id)
                         END)
           END))
 ORDER BY a.id DESC
 LIMIT $3
