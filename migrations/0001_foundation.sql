-- fieldvisit foundation schema.
-- Every tenant-owned table carries org_id, and org_id leads every primary and foreign key so the
-- schema can be distributed by org (Citus) without change. Raw pings have no spatial index.

CREATE EXTENSION IF NOT EXISTS postgis;

CREATE TABLE orgs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug        text NOT NULL CONSTRAINT orgs_slug_key UNIQUE
                CONSTRAINT orgs_slug_format CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name        text NOT NULL CONSTRAINT orgs_name_not_blank CHECK (length(btrim(name)) > 0),
    timezone    text NOT NULL DEFAULT 'UTC',
    settings    jsonb NOT NULL DEFAULT '{}' CONSTRAINT orgs_settings_object CHECK (jsonb_typeof(settings) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Territory tree (province > city > county/district > grid). `path` holds the ids from the root to
-- the node itself and is maintained by trigger; scope checks are `path @> ARRAY[scope_root]`.
CREATE TABLE territories (
    org_id      bigint NOT NULL REFERENCES orgs (id),
    id          bigint GENERATED ALWAYS AS IDENTITY,
    parent_id   bigint,
    code        text NOT NULL CONSTRAINT territories_code_format CHECK (length(code) BETWEEN 1 AND 64),
    name        text NOT NULL CONSTRAINT territories_name_not_blank CHECK (length(btrim(name)) > 0),
    level       text NOT NULL CONSTRAINT territories_level_known
                CHECK (level IN ('country', 'province', 'city', 'district', 'county', 'grid', 'region')),
    path        bigint[] NOT NULL DEFAULT '{}',
    boundary    geometry(MultiPolygon, 4326)
                CONSTRAINT territories_boundary_valid CHECK (boundary IS NULL OR ST_IsValid(boundary)),
    h3_cells    bigint[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id),
    CONSTRAINT territories_code_key UNIQUE (org_id, code),
    CONSTRAINT territories_parent_fkey FOREIGN KEY (org_id, parent_id) REFERENCES territories (org_id, id),
    CONSTRAINT territories_parent_not_self CHECK (parent_id IS NULL OR parent_id <> id)
);
CREATE INDEX territories_path_idx ON territories USING gin (path);
CREATE INDEX territories_boundary_idx ON territories USING gist (boundary);

CREATE FUNCTION territories_set_path() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    parent_path bigint[];
BEGIN
    IF NEW.parent_id IS NULL THEN
        NEW.path := ARRAY[NEW.id];
    ELSE
        SELECT path INTO parent_path FROM territories WHERE org_id = NEW.org_id AND id = NEW.parent_id;
        IF parent_path IS NULL THEN
            RAISE foreign_key_violation USING CONSTRAINT = 'territories_parent_fkey',
                MESSAGE = 'parent territory does not exist';
        END IF;
        IF NEW.id = ANY (parent_path) THEN
            RAISE check_violation USING CONSTRAINT = 'territories_no_cycle',
                MESSAGE = 'a territory cannot be moved below itself';
        END IF;
        NEW.path := parent_path || NEW.id;
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END $$;

CREATE TRIGGER territories_path_ins BEFORE INSERT ON territories
    FOR EACH ROW EXECUTE FUNCTION territories_set_path();
CREATE TRIGGER territories_path_upd BEFORE UPDATE OF parent_id ON territories
    FOR EACH ROW WHEN (OLD.parent_id IS DISTINCT FROM NEW.parent_id) EXECUTE FUNCTION territories_set_path();

-- Keeps descendants' paths right when a subtree moves.
CREATE FUNCTION territories_repath_children() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE territories t
       SET path = NEW.path || t.path[array_position(t.path, NEW.id) + 1 :]
     WHERE t.org_id = NEW.org_id AND t.id <> NEW.id AND t.path @> ARRAY[NEW.id];
    RETURN NULL;
END $$;
CREATE TRIGGER territories_repath AFTER UPDATE OF parent_id ON territories
    FOR EACH ROW WHEN (OLD.path IS DISTINCT FROM NEW.path) EXECUTE FUNCTION territories_repath_children();

CREATE TABLE users (
    org_id        bigint NOT NULL REFERENCES orgs (id),
    id            bigint GENERATED ALWAYS AS IDENTITY,
    login         text NOT NULL CONSTRAINT users_login_format CHECK (login ~ '^[A-Za-z0-9._@+-]{1,128}$'),
    name          text NOT NULL CONSTRAINT users_name_not_blank CHECK (length(btrim(name)) > 0),
    role          text NOT NULL CONSTRAINT users_role_known
                  CHECK (role IN ('admin', 'supervisor', 'auditor', 'manager', 'rep')),
    -- Root of the territory subtree this user may see; NULL means the whole org.
    territory_id  bigint,
    active        boolean NOT NULL DEFAULT true,
    home          geometry(Point, 4326),
    home_radius_m real CONSTRAINT users_home_radius_positive CHECK (home_radius_m IS NULL OR home_radius_m > 0),
    working_hours jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id),
    CONSTRAINT users_login_key UNIQUE (org_id, login),
    CONSTRAINT users_territory_fkey FOREIGN KEY (org_id, territory_id) REFERENCES territories (org_id, id)
);

-- A phone of a rep. `osmand_id` is the long random secret the Traccar/OsmAnd app sends as `id`;
-- OwnTracks authenticates with HTTP basic auth (user + password hash).
CREATE TABLE devices (
    org_id                  bigint NOT NULL REFERENCES orgs (id),
    id                      bigint GENERATED ALWAYS AS IDENTITY,
    rep_id                  bigint NOT NULL,
    name                    text NOT NULL CONSTRAINT devices_name_not_blank CHECK (length(btrim(name)) > 0),
    osmand_id               text NOT NULL CONSTRAINT devices_osmand_id_key UNIQUE
                            CONSTRAINT devices_osmand_id_length CHECK (length(osmand_id) >= 16),
    owntracks_user          text NOT NULL CONSTRAINT devices_owntracks_user_key UNIQUE,
    owntracks_password_hash bytea NOT NULL,
    active                  boolean NOT NULL DEFAULT true,
    created_at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id),
    CONSTRAINT devices_rep_fkey FOREIGN KEY (org_id, rep_id) REFERENCES users (org_id, id)
);

-- Opaque bearer tokens: only the SHA-256 of the token is stored. One live token per user and per device.
CREATE TABLE api_tokens (
    org_id       bigint NOT NULL REFERENCES orgs (id),
    id           bigint GENERATED ALWAYS AS IDENTITY,
    token_hash   bytea NOT NULL CONSTRAINT api_tokens_hash_key UNIQUE
                 CONSTRAINT api_tokens_hash_length CHECK (length(token_hash) = 32),
    user_id      bigint,
    device_id    bigint,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    PRIMARY KEY (org_id, id),
    CONSTRAINT api_tokens_user_fkey FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE,
    CONSTRAINT api_tokens_device_fkey FOREIGN KEY (org_id, device_id) REFERENCES devices (org_id, id) ON DELETE CASCADE,
    CONSTRAINT api_tokens_one_owner CHECK ((user_id IS NULL) <> (device_id IS NULL))
);
CREATE UNIQUE INDEX api_tokens_one_live_per_user ON api_tokens (org_id, user_id)
    WHERE revoked_at IS NULL AND user_id IS NOT NULL;
CREATE UNIQUE INDEX api_tokens_one_live_per_device ON api_tokens (org_id, device_id)
    WHERE revoked_at IS NULL AND device_id IS NOT NULL;

CREATE TABLE tier_policies (
    org_id            bigint NOT NULL REFERENCES orgs (id),
    tier              text NOT NULL CONSTRAINT tier_policies_tier_format CHECK (tier ~ '^[A-Za-z0-9_+-]{1,16}$'),
    required_visits   integer NOT NULL CONSTRAINT tier_policies_required_visits_positive CHECK (required_visits > 0),
    cycle_days        integer NOT NULL CONSTRAINT tier_policies_cycle_days_range CHECK (cycle_days BETWEEN 1 AND 366),
    min_dwell_s       integer NOT NULL CONSTRAINT tier_policies_min_dwell_range CHECK (min_dwell_s BETWEEN 0 AND 86400),
    default_radius_m  real NOT NULL CONSTRAINT tier_policies_radius_range CHECK (default_radius_m > 0 AND default_radius_m <= 5000),
    PRIMARY KEY (org_id, tier)
);

CREATE TABLE outlets (
    org_id        bigint NOT NULL REFERENCES orgs (id),
    id            bigint GENERATED ALWAYS AS IDENTITY,
    code          text NOT NULL CONSTRAINT outlets_code_format CHECK (length(code) BETWEEN 1 AND 64),
    name          text NOT NULL CONSTRAINT outlets_name_not_blank CHECK (length(btrim(name)) > 0),
    channel_type  text NOT NULL CONSTRAINT outlets_channel_type_known CHECK (channel_type IN (
                      'business_hall', 'cooperative_hall', 'phone_mall', 'franchise_store', 'agent_point',
                      'collection_point', 'direct_seller', 'campus_point', 'temporary_point', 'other')),
    tier          text NOT NULL,
    location      geometry(Point, 4326) NOT NULL
                  CONSTRAINT outlets_location_range CHECK (ST_X(location) BETWEEN -180 AND 180
                      AND ST_Y(location) BETWEEN -90 AND 90 AND NOT (ST_X(location) = 0 AND ST_Y(location) = 0)),
    footprint     geometry(MultiPolygon, 4326)
                  CONSTRAINT outlets_footprint_valid CHECK (footprint IS NULL OR ST_IsValid(footprint)),
    -- Visit geofence; NULL means the tier policy's default radius.
    radius_m      real CONSTRAINT outlets_radius_range CHECK (radius_m IS NULL OR (radius_m > 0 AND radius_m <= 5000)),
    status        text NOT NULL DEFAULT 'active'
                  CONSTRAINT outlets_status_known CHECK (status IN ('active', 'closed', 'suspended')),
    territory_id  bigint,
    address       text,
    attributes    jsonb NOT NULL DEFAULT '{}' CONSTRAINT outlets_attributes_object CHECK (jsonb_typeof(attributes) = 'object'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id),
    CONSTRAINT outlets_code_key UNIQUE (org_id, code),
    CONSTRAINT outlets_tier_fkey FOREIGN KEY (org_id, tier) REFERENCES tier_policies (org_id, tier) ON UPDATE CASCADE,
    CONSTRAINT outlets_territory_fkey FOREIGN KEY (org_id, territory_id) REFERENCES territories (org_id, id)
);
CREATE INDEX outlets_location_idx ON outlets USING gist (location);
CREATE INDEX outlets_territory_idx ON outlets (org_id, territory_id);

-- Location history: visits are judged against the location valid at visit time.
CREATE TABLE outlet_locations (
    org_id      bigint NOT NULL,
    outlet_id   bigint NOT NULL,
    valid_from  timestamptz NOT NULL,
    valid_to    timestamptz,
    location    geometry(Point, 4326) NOT NULL,
    footprint   geometry(MultiPolygon, 4326),
    radius_m    real,
    PRIMARY KEY (org_id, outlet_id, valid_from),
    CONSTRAINT outlet_locations_outlet_fkey FOREIGN KEY (org_id, outlet_id) REFERENCES outlets (org_id, id) ON DELETE CASCADE,
    CONSTRAINT outlet_locations_period CHECK (valid_to IS NULL OR valid_to > valid_from)
);

CREATE TABLE outlet_status_changes (
    org_id      bigint NOT NULL,
    outlet_id   bigint NOT NULL,
    changed_at  timestamptz NOT NULL,
    status      text NOT NULL,
    PRIMARY KEY (org_id, outlet_id, changed_at),
    CONSTRAINT outlet_status_changes_outlet_fkey FOREIGN KEY (org_id, outlet_id) REFERENCES outlets (org_id, id) ON DELETE CASCADE
);

CREATE FUNCTION outlets_keep_history() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    at timestamptz := clock_timestamp();
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO outlet_locations (org_id, outlet_id, valid_from, location, footprint, radius_m)
        VALUES (NEW.org_id, NEW.id, at, NEW.location, NEW.footprint, NEW.radius_m);
        INSERT INTO outlet_status_changes (org_id, outlet_id, changed_at, status)
        VALUES (NEW.org_id, NEW.id, at, NEW.status);
        RETURN NULL;
    END IF;
    IF NOT (NEW.location ~= OLD.location)
       OR NEW.footprint IS DISTINCT FROM OLD.footprint
       OR NEW.radius_m IS DISTINCT FROM OLD.radius_m THEN
        UPDATE outlet_locations SET valid_to = at
         WHERE org_id = NEW.org_id AND outlet_id = NEW.id AND valid_to IS NULL;
        INSERT INTO outlet_locations (org_id, outlet_id, valid_from, location, footprint, radius_m)
        VALUES (NEW.org_id, NEW.id, at, NEW.location, NEW.footprint, NEW.radius_m);
    END IF;
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        INSERT INTO outlet_status_changes (org_id, outlet_id, changed_at, status)
        VALUES (NEW.org_id, NEW.id, at, NEW.status);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER outlets_history AFTER INSERT OR UPDATE ON outlets
    FOR EACH ROW EXECUTE FUNCTION outlets_keep_history();

-- Beat plans: recurring (weekday + week of cycle) or dated items, materialised into planned visits.
CREATE TABLE plans (
    org_id       bigint NOT NULL REFERENCES orgs (id),
    id           bigint GENERATED ALWAYS AS IDENTITY,
    rep_id       bigint NOT NULL,
    name         text NOT NULL CONSTRAINT plans_name_not_blank CHECK (length(btrim(name)) > 0),
    cycle_weeks  smallint NOT NULL DEFAULT 1 CONSTRAINT plans_cycle_weeks_range CHECK (cycle_weeks BETWEEN 1 AND 12),
    valid_from   date NOT NULL,
    valid_to     date,
    active       boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id),
    CONSTRAINT plans_rep_fkey FOREIGN KEY (org_id, rep_id) REFERENCES users (org_id, id),
    CONSTRAINT plans_validity CHECK (valid_to IS NULL OR valid_to >= valid_from)
);

CREATE TABLE plan_items (
    org_id               bigint NOT NULL,
    id                   bigint GENERATED ALWAYS AS IDENTITY,
    plan_id              bigint NOT NULL,
    outlet_id            bigint NOT NULL,
    weekday              smallint CONSTRAINT plan_items_weekday_range CHECK (weekday BETWEEN 1 AND 7),
    week_of_cycle        smallint CONSTRAINT plan_items_week_of_cycle_range CHECK (week_of_cycle BETWEEN 1 AND 12),
    visit_date           date,
    window_start         time,
    window_end           time,
    expected_duration_s  integer CONSTRAINT plan_items_duration_positive CHECK (expected_duration_s IS NULL OR expected_duration_s > 0),
    seq                  integer NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, id),
    CONSTRAINT plan_items_plan_fkey FOREIGN KEY (org_id, plan_id) REFERENCES plans (org_id, id) ON DELETE CASCADE,
    CONSTRAINT plan_items_outlet_fkey FOREIGN KEY (org_id, outlet_id) REFERENCES outlets (org_id, id),
    CONSTRAINT plan_items_recurring_or_dated CHECK ((weekday IS NULL) <> (visit_date IS NULL)),
    CONSTRAINT plan_items_window_order CHECK (window_start IS NULL OR window_end IS NULL OR window_end > window_start)
);

CREATE TABLE planned_visits (
    org_id               bigint NOT NULL,
    id                   bigint GENERATED ALWAYS AS IDENTITY,
    rep_id               bigint NOT NULL,
    visit_date           date NOT NULL,
    outlet_id            bigint NOT NULL,
    plan_item_id         bigint NOT NULL,
    seq                  integer NOT NULL DEFAULT 0,
    window_start         timestamptz,
    window_end           timestamptz,
    expected_duration_s  integer,
    PRIMARY KEY (org_id, id),
    CONSTRAINT planned_visits_item_day_key UNIQUE (org_id, rep_id, visit_date, plan_item_id),
    CONSTRAINT planned_visits_rep_fkey FOREIGN KEY (org_id, rep_id) REFERENCES users (org_id, id),
    CONSTRAINT planned_visits_outlet_fkey FOREIGN KEY (org_id, outlet_id) REFERENCES outlets (org_id, id),
    CONSTRAINT planned_visits_item_fkey FOREIGN KEY (org_id, plan_item_id) REFERENCES plan_items (org_id, id) ON DELETE CASCADE,
    CONSTRAINT planned_visits_window_order CHECK (window_start IS NULL OR window_end IS NULL OR window_end > window_start)
);

-- Raw position fixes. Partitioned by day of fix time (UTC); btree primary key only, BRIN on time:
-- a GiST index here would triple ingest cost. Partitions are created by ensure_ping_partition().
CREATE TABLE pings (
    org_id          bigint NOT NULL,
    device_id       bigint NOT NULL,
    fix_time        timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    lat             double precision NOT NULL CONSTRAINT pings_lat_range CHECK (lat BETWEEN -90 AND 90),
    lon             double precision NOT NULL CONSTRAINT pings_lon_range CHECK (lon BETWEEN -180 AND 180),
    accuracy_m      real CONSTRAINT pings_accuracy_positive CHECK (accuracy_m IS NULL OR accuracy_m > 0),
    speed_mps       real CONSTRAINT pings_speed_non_negative CHECK (speed_mps IS NULL OR speed_mps >= 0),
    heading_deg     real CONSTRAINT pings_heading_range CHECK (heading_deg IS NULL OR (heading_deg >= 0 AND heading_deg < 360)),
    altitude_m      real,
    battery_pct     real CONSTRAINT pings_battery_range CHECK (battery_pct IS NULL OR battery_pct BETWEEN 0 AND 100),
    mock            boolean NOT NULL DEFAULT false,
    source          text NOT NULL CONSTRAINT pings_source_known
                    CHECK (source IN ('native', 'osmand', 'owntracks', 'gpx', 'demo', 'import')),
    client_ping_id  text,
    flags           integer NOT NULL DEFAULT 0,
    attributes      jsonb,
    PRIMARY KEY (org_id, device_id, fix_time),
    CONSTRAINT pings_device_fkey FOREIGN KEY (org_id, device_id) REFERENCES devices (org_id, id),
    CONSTRAINT pings_not_null_island CHECK (NOT (lat = 0 AND lon = 0))
) PARTITION BY RANGE (fix_time);
CREATE INDEX pings_fix_time_brin ON pings USING brin (fix_time);

CREATE FUNCTION ensure_ping_partition(day date) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    part text := format('pings_%s', to_char(day, 'YYYYMMDD'));
BEGIN
    IF to_regclass(part) IS NULL THEN
        PERFORM pg_advisory_xact_lock(hashtext('fieldvisit.ping_partition'), hashtext(part));
        IF to_regclass(part) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF pings FOR VALUES FROM (%L) TO (%L)', part,
                           (day::timestamp AT TIME ZONE 'UTC'), ((day + 1)::timestamp AT TIME ZONE 'UTC'));
        END IF;
    END IF;
    RETURN part;
END $$;

-- Derived visits: a pure function of a rep-day's pings, the outlets and the rules (rule_version).
CREATE TABLE visits (
    org_id             bigint NOT NULL,
    id                 bigint GENERATED ALWAYS AS IDENTITY,
    rep_id             bigint NOT NULL,
    device_id          bigint,
    outlet_id          bigint NOT NULL,
    rep_day            date NOT NULL,
    arrival            timestamptz NOT NULL,
    departure          timestamptz NOT NULL,
    dwell_s            integer NOT NULL CONSTRAINT visits_dwell_non_negative CHECK (dwell_s >= 0),
    verdict            text NOT NULL CONSTRAINT visits_verdict_known
                       CHECK (verdict IN ('verified', 'short', 'unverified', 'suspect')),
    risk_score         real NOT NULL DEFAULT 0 CONSTRAINT visits_risk_range CHECK (risk_score BETWEEN 0 AND 1),
    ping_count         integer NOT NULL CONSTRAINT visits_ping_count_non_negative CHECK (ping_count >= 0),
    min_distance_m     real,
    median_distance_m  real,
    median_accuracy_m  real,
    max_gap_s          integer,
    location           geometry(Point, 4326),
    planned_visit_id   bigint,
    alternatives       jsonb NOT NULL DEFAULT '[]',
    evidence           jsonb NOT NULL DEFAULT '{}',
    rule_version       text NOT NULL,
    computed_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id),
    CONSTRAINT visits_rep_fkey FOREIGN KEY (org_id, rep_id) REFERENCES users (org_id, id),
    CONSTRAINT visits_device_fkey FOREIGN KEY (org_id, device_id) REFERENCES devices (org_id, id),
    CONSTRAINT visits_outlet_fkey FOREIGN KEY (org_id, outlet_id) REFERENCES outlets (org_id, id),
    CONSTRAINT visits_planned_visit_fkey FOREIGN KEY (org_id, planned_visit_id) REFERENCES planned_visits (org_id, id) ON DELETE SET NULL (planned_visit_id),
    CONSTRAINT visits_departure_after_arrival CHECK (departure >= arrival)
);
CREATE INDEX visits_rep_day_idx ON visits (org_id, rep_id, rep_day);
CREATE INDEX visits_outlet_idx ON visits (org_id, outlet_id, arrival);
CREATE INDEX visits_location_idx ON visits USING gist (location);

-- Supervisor decisions on a visit. Keyed by the visit's natural key (rep, outlet, arrival) as well as
-- its id so a review survives a recomputation of the rep-day.
CREATE TABLE visit_reviews (
    org_id       bigint NOT NULL,
    id           bigint GENERATED ALWAYS AS IDENTITY,
    visit_id     bigint,
    rep_id       bigint NOT NULL,
    outlet_id    bigint NOT NULL,
    arrival      timestamptz NOT NULL,
    reviewer_id  bigint NOT NULL,
    decision     text NOT NULL CONSTRAINT visit_reviews_decision_known
                 CHECK (decision IN ('accepted', 'rejected', 'disputed', 'resolved')),
    reason       text NOT NULL CONSTRAINT visit_reviews_reason_not_blank CHECK (length(btrim(reason)) > 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id),
    CONSTRAINT visit_reviews_visit_fkey FOREIGN KEY (org_id, visit_id) REFERENCES visits (org_id, id) ON DELETE SET NULL (visit_id),
    CONSTRAINT visit_reviews_reviewer_fkey FOREIGN KEY (org_id, reviewer_id) REFERENCES users (org_id, id)
);

-- Rep-days whose visits must be recomputed (late pings, outlet moves, rule changes).
CREATE TABLE rep_day_dirty (
    org_id     bigint NOT NULL,
    rep_id     bigint NOT NULL,
    day        date NOT NULL,
    reason     text NOT NULL,
    marked_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, rep_id, day),
    CONSTRAINT rep_day_dirty_rep_fkey FOREIGN KEY (org_id, rep_id) REFERENCES users (org_id, id)
);

-- Append-only record of who changed or exported what.
CREATE TABLE audit_log (
    org_id           bigint NOT NULL REFERENCES orgs (id),
    id               bigint GENERATED ALWAYS AS IDENTITY,
    at               timestamptz NOT NULL DEFAULT now(),
    actor_user_id    bigint,
    actor_device_id  bigint,
    action           text NOT NULL,
    object_type      text NOT NULL,
    object_id        text,
    request_id       text,
    detail           jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (org_id, id)
);
CREATE INDEX audit_log_at_idx ON audit_log (org_id, at);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END $$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
