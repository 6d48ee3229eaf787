-- Visit derivation looks up the outlets near each ~100 m cell of a rep-day's track by index: the
-- widest geofence of the org bounds the search box (so the largest radius must be cheap to read),
-- and outlets with a footprint are also found by the footprint's box.
CREATE INDEX outlet_locations_footprint_idx ON outlet_locations USING gist (footprint) WHERE footprint IS NOT NULL;
CREATE INDEX outlets_radius_idx ON outlets (org_id, radius_m) WHERE radius_m IS NOT NULL;
