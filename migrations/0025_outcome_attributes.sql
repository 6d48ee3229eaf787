-- The outlet attributes an outcome's answers carry (attribute -> value), so that an older
-- visit's answers sent late do not overwrite what a newer visit's set.
ALTER TABLE visit_outcomes ADD COLUMN outlet_attributes jsonb NOT NULL DEFAULT '{}'
    CONSTRAINT visit_outcomes_outlet_attributes_object CHECK (jsonb_typeof(outlet_attributes) = 'object');
