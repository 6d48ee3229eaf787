-- Every visit read (lists, compliance, coverage, layers) looks up the latest accept/reject review
-- of each visit: an index per visit instead of a scan of the org's reviews. Layers and coverage
-- select visits by rep-day across reps.
CREATE INDEX visit_reviews_visit_idx ON visit_reviews (org_id, visit_id, created_at DESC, id DESC);
CREATE INDEX visits_day_idx ON visits (org_id, rep_day);
