-- Create key generations. A create's idempotency key is derived from the
-- partner, the entity and a generation, not from the content: a rerun
-- after a lost answer sends the same key whatever changed in between, so
-- the partner answers the first create instead of making a second
-- customer. Synctera replays a refusal (a 4xx) under its key for 7 days,
-- so after a definitive refusal the key must change, and only then: the
-- generation counts the entity's creates the partner refused with a 4xx,
-- and the next create uses generation + 1. No row: generation 0.
-- Written with the refusal's ledger row, in the same transaction; read
-- with sync_state in the planner's batch lookup.
CREATE TABLE create_generations (
    provider    text   NOT NULL,
    entity_key  text   NOT NULL,
    customer_id text   NOT NULL,
    generation  int    NOT NULL,
    PRIMARY KEY (provider, entity_key)
);
CREATE INDEX create_generations_customer ON create_generations (customer_id);
