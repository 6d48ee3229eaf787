-- Metre-based proximity filters (`near=lat,lon&radius=m`) use ST_DWithin on geography; this
-- expression index lets them use an index instead of scanning the org's outlets.
CREATE INDEX outlets_location_geog_idx ON outlets USING gist ((location::geography));
