-- Visit derivation reads the outlets that stood near a rep-day's fixes on that day from the
-- location history: a spatial index on it, as outlets have on their current location.
CREATE INDEX outlet_locations_location_idx ON outlet_locations USING gist (location);
