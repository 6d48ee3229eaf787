-- The widest geofence an outlet of the org ever had bounds the visit candidate search (a visit is
-- judged with the radius of the location row valid that day, which may be wider than today's).
CREATE INDEX outlet_locations_radius_idx ON outlet_locations (org_id, radius_m) WHERE radius_m IS NOT NULL;
