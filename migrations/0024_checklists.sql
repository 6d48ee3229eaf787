-- Visit checklists and their answers. A checklist is versioned by name: changing it adds a
-- version, so answers are always read against the questions they answered.
CREATE TABLE checklists (
    org_id      bigint NOT NULL REFERENCES orgs (id),
    id          bigint GENERATED ALWAYS AS IDENTITY,
    name        text NOT NULL CONSTRAINT checklists_name_length CHECK (length(name) BETWEEN 1 AND 200),
    version     integer NOT NULL,
    -- `domain::checklist::Item`s.
    items       jsonb NOT NULL CONSTRAINT checklists_items_array CHECK (jsonb_typeof(items) = 'array'),
    created_by  bigint,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id),
    CONSTRAINT checklists_version_unique UNIQUE (org_id, name, version)
);

-- A rep's answers to a checklist version for a visit. Like photos and reviews, the visit is found
-- again after a recomputation by rep, local day, outlet and arrival.
CREATE TABLE visit_outcomes (
    org_id          bigint NOT NULL REFERENCES orgs (id),
    id              bigint GENERATED ALWAYS AS IDENTITY,
    checklist_id    bigint NOT NULL,
    visit_id        bigint,
    rep_id          bigint NOT NULL,
    rep_day         date NOT NULL,
    visit_arrival   timestamptz NOT NULL,
    outlet_id       bigint NOT NULL,
    answers         jsonb NOT NULL CONSTRAINT visit_outcomes_answers_object CHECK (jsonb_typeof(answers) = 'object'),
    -- Keys of the answers outside what the checklist expects (the outlet needs attention).
    problems        text[] NOT NULL DEFAULT '{}',
    submitted_by    bigint,
    submitted_by_device bigint,
    submitted_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id),
    CONSTRAINT visit_outcomes_checklist_fkey FOREIGN KEY (org_id, checklist_id) REFERENCES checklists (org_id, id),
    CONSTRAINT visit_outcomes_visit_fkey FOREIGN KEY (org_id, visit_id) REFERENCES visits (org_id, id) ON DELETE SET NULL (visit_id),
    CONSTRAINT visit_outcomes_rep_fkey FOREIGN KEY (org_id, rep_id) REFERENCES users (org_id, id),
    CONSTRAINT visit_outcomes_outlet_fkey FOREIGN KEY (org_id, outlet_id) REFERENCES outlets (org_id, id)
);
CREATE INDEX visit_outcomes_outlet_idx ON visit_outcomes (org_id, outlet_id, visit_arrival);
CREATE INDEX visit_outcomes_rep_day_idx ON visit_outcomes (org_id, rep_id, rep_day);

-- Every change of an outlet attribute made from a checklist answer: the history of what the
-- outlet's attributes were.
CREATE TABLE outlet_attribute_changes (
    org_id      bigint NOT NULL,
    id          bigint GENERATED ALWAYS AS IDENTITY,
    outlet_id   bigint NOT NULL,
    attribute   text NOT NULL,
    old_value   jsonb,
    new_value   jsonb NOT NULL,
    outcome_id  bigint,
    changed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id),
    CONSTRAINT outlet_attribute_changes_outlet_fkey FOREIGN KEY (org_id, outlet_id) REFERENCES outlets (org_id, id),
    CONSTRAINT outlet_attribute_changes_outcome_fkey FOREIGN KEY (org_id, outcome_id) REFERENCES visit_outcomes (org_id, id)
);
CREATE INDEX outlet_attribute_changes_outlet_idx ON outlet_attribute_changes (org_id, outlet_id, changed_at);
