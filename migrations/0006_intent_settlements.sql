-- Operator settlements of intents that no rerun can settle on its own (a
-- ClubReady ProfileToken that expired while its import's fate was
-- unknown): who decided, why, and what. `etl intents settle` writes one
-- row per entity and closes that entity's open intent rows, which point
-- back here through ledger.settlement_id.
CREATE TABLE intent_settlements (
    id            bigserial   PRIMARY KEY,
    provider      text        NOT NULL,
    entity_key    text        NOT NULL,
    customer_id   text        NOT NULL,
    settled_as    text        NOT NULL CHECK (settled_as IN ('delivered', 'resend')),
    settled_by    text        NOT NULL CHECK (settled_by <> ''),
    reason        text        NOT NULL CHECK (reason <> ''),
    remote_id     text,                         -- the partner's id the operator found (delivered), if given
    intent_ids    bigint[]    NOT NULL,         -- the ledger intent rows it closed
    intent_run_id bigint      NOT NULL,         -- the run of the latest of them
    forced        boolean     NOT NULL DEFAULT false, -- settled while a run was marked running
    settled_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX intent_settlements_entity ON intent_settlements (provider, entity_key);

-- No foreign key: adding one would scan the whole ledger under a lock.
ALTER TABLE ledger ADD COLUMN settlement_id bigint;
