-- The visits of the review queue (src/db/reviews_queue.rs): of org $1, reps within territory $2's
-- subtree (all when null) and territory $5's (all when null), rep $4 (all when null), rep-days
-- $6..=$7, of the kinds $3, after the cursor ($8, $9: arrival, id), oldest first, at most $10.
-- A visit is in the queue when a dispute of its rep stands (no accept, reject or resolution
-- after it: kind `disputed`), or when nobody has reviewed it (`visits.review`, the latest
-- accept/reject kept by trigger, is null) and its verdict is `suspect` or `unverified` (the kind
-- is the verdict). `total` counts every match, before the cursor too.
WITH q AS (
    SELECT v.id, v.rep_id, u.name AS rep_name, v.outlet_id, o.code AS outlet_code, o.name AS outlet_name,
           v.rep_day, v.arrival AS at, v.verdict, v.risk_score, d.reason AS dispute_reason,
           CASE WHEN d.reason IS NOT NULL THEN 'disputed' ELSE v.verdict END AS kind
      FROM visits v
      JOIN users u ON u.org_id = v.org_id AND u.id = v.rep_id
      LEFT JOIN territories t ON t.org_id = u.org_id AND t.id = u.territory_id
      JOIN outlets o ON o.org_id = v.org_id AND o.id = v.outlet_id
      LEFT JOIN LATERAL (
          SELECT r.reason FROM visit_reviews r
           WHERE r.org_id = v.org_id AND r.visit_id = v.id AND r.decision = 'disputed'
             AND NOT EXISTS (
                 SELECT 1 FROM visit_reviews a
                  WHERE a.org_id = r.org_id AND a.visit_id = r.visit_id AND a.decision <> 'disputed'
                    AND (a.created_at, a.id) > (r.created_at, r.id))
           ORDER BY r.created_at DESC, r.id DESC
           LIMIT 1) d ON true
     WHERE v.org_id = $1
       AND v.rep_day BETWEEN $6 AND $7
       AND ($2::bigint IS NULL OR t.path @> ARRAY[$2::bigint])
       AND ($5::bigint IS NULL OR t.path @> ARRAY[$5::bigint])
       AND ($4::bigint IS NULL OR v.rep_id = $4)
       AND (d.reason IS NOT NULL OR (v.review IS NULL AND v.verdict IN ('suspect', 'unverified')))),
counted AS (
    SELECT q.*, count(*) OVER () AS total FROM q WHERE q.kind = ANY($3::text[]))
SELECT id, rep_id, rep_name, outlet_id, outlet_code, outlet_name, rep_day, at, verdict, risk_score, dispute_reason,
       kind, total
  FROM counted
 WHERE (at, id) > ($8::timestamptz, $9::bigint)
 ORDER BY at, id
 LIMIT $10
