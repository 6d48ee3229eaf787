-- Photo evidence of visits and outlets. `photos` indexes each upload and what was read from it
-- (EXIF time and position, a perceptual hash) and found (distance to the outlet, time against the
-- visit, reuse); the bytes live apart, in `photo_blobs` (original and thumbnail), so listing and
-- matching photos never reads images, and a backup of the database holds everything.
CREATE TABLE photos (
    org_id          bigint NOT NULL REFERENCES orgs (id),
    id              bigint GENERATED ALWAYS AS IDENTITY,
    outlet_id       bigint NOT NULL,
    -- The visit it was taken for, and what finds that visit again after a recomputation (as a
    -- review does): its rep, local day and arrival. NULL visit: a photo of the outlet alone.
    visit_id        bigint,
    rep_id          bigint,
    rep_day         date,
    visit_arrival   timestamptz,
    uploaded_by     bigint,
    uploaded_by_device bigint,
    uploaded_at     timestamptz NOT NULL DEFAULT now(),
    content_type    text NOT NULL CONSTRAINT photos_content_type_known
                    CHECK (content_type IN ('image/jpeg', 'image/png', 'image/heic')),
    bytes           integer NOT NULL,
    sha256          text NOT NULL,
    width           integer,
    height          integer,
    -- From EXIF, when the file had it.
    taken_at        timestamptz,
    exif_lat        double precision,
    exif_lon        double precision,
    -- 64-bit perceptual hash (gradient); NULL when the format could not be decoded (HEIC).
    phash           bigint,
    -- An earlier photo of another visit or outlet that this one is (nearly) the same picture as.
    reused_photo_id bigint,
    -- Findings against the visit and outlet: distance, time, reuse (`domain::photo::Findings`).
    findings        jsonb NOT NULL DEFAULT '{}',
    note            text,
    PRIMARY KEY (org_id, id),
    CONSTRAINT photos_outlet_fkey FOREIGN KEY (org_id, outlet_id) REFERENCES outlets (org_id, id),
    CONSTRAINT photos_visit_fkey FOREIGN KEY (org_id, visit_id) REFERENCES visits (org_id, id) ON DELETE SET NULL (visit_id),
    CONSTRAINT photos_rep_fkey FOREIGN KEY (org_id, rep_id) REFERENCES users (org_id, id),
    CONSTRAINT photos_visit_anchor CHECK ((rep_id IS NULL) = (visit_arrival IS NULL) AND (rep_id IS NULL) = (rep_day IS NULL))
);
CREATE INDEX photos_outlet_idx ON photos (org_id, outlet_id, uploaded_at);
CREATE INDEX photos_rep_day_idx ON photos (org_id, rep_id, rep_day) WHERE rep_id IS NOT NULL;
CREATE INDEX photos_visit_idx ON photos (org_id, visit_id) WHERE visit_id IS NOT NULL;
CREATE INDEX photos_sha256_idx ON photos (org_id, sha256);

CREATE TABLE photo_blobs (
    org_id    bigint NOT NULL,
    photo_id  bigint NOT NULL,
    kind      text NOT NULL CONSTRAINT photo_blobs_kind_known CHECK (kind IN ('original', 'thumbnail')),
    data      bytea NOT NULL,
    PRIMARY KEY (org_id, photo_id, kind),
    CONSTRAINT photo_blobs_photo_fkey FOREIGN KEY (org_id, photo_id) REFERENCES photos (org_id, id) ON DELETE CASCADE
);
-- Images are already compressed: store them as they are.
ALTER TABLE photo_blobs ALTER COLUMN data SET STORAGE EXTERNAL;
