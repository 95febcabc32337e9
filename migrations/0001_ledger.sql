-- The request-ID ledger, the sync checkpoint and rejects. No PAN or CVV is
-- ever stored: cards appear as entity keys, IIN/last four and keyed HMAC
-- fingerprints only.

CREATE TABLE runs (
    id           bigserial PRIMARY KEY,
    run_group    text        NOT NULL,           -- shards of one logical run share it
    shard_index  int         NOT NULL DEFAULT 0,
    shard_count  int         NOT NULL DEFAULT 1,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    status       text        NOT NULL,           -- running, ok, partial, failed, cancelled
    source       text        NOT NULL,
    providers    text[]      NOT NULL,
    options      jsonb       NOT NULL DEFAULT '{}',
    counts       jsonb       NOT NULL DEFAULT '{}',
    version      text        NOT NULL,
    host         text        NOT NULL,
    pid          int         NOT NULL
);
CREATE INDEX runs_group ON runs (run_group);

-- One row per record per call (or per intent, for partners whose effect
-- cannot be looked up afterwards).
CREATE TABLE ledger (
    id              bigserial PRIMARY KEY,
    run_id          bigint      NOT NULL REFERENCES runs (id),
    provider        text        NOT NULL,
    entity_key      text        NOT NULL,
    customer_id     text        NOT NULL,
    operation       text        NOT NULL,        -- create, update, deactivate, intent
    idempotency_key text,
    content_hash    text,
    remote_id       text,
    request_id      text,
    http_status     int,
    outcome         text        NOT NULL,        -- ok, rejected, failed, uncertain, pending, settled
    attempts        int         NOT NULL DEFAULT 0,
    latency_ms      int,
    error_code      text,
    error_message   text,
    intent_detail   text,                        -- e.g. a ClubReady ProfileToken (non-PCI), wiped when settled
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_run ON ledger (run_id, provider, outcome);
CREATE INDEX ledger_open_intents ON ledger (provider, customer_id) WHERE operation = 'intent' AND outcome = 'pending';

-- The checkpoint: what each partner last received for each entity.
CREATE TABLE sync_state (
    provider        text        NOT NULL,
    entity_key      text        NOT NULL,
    customer_id     text        NOT NULL,
    content_hash    text        NOT NULL,
    remote_id       text,
    last_request_id text,
    last_run_id     bigint,
    active          boolean     NOT NULL DEFAULT true,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, entity_key)
);
CREATE INDEX sync_state_customer ON sync_state (customer_id);

CREATE TABLE rejects (
    id          bigserial PRIMARY KEY,
    run_id      bigint NOT NULL REFERENCES runs (id),
    provider    text,                            -- NULL: rejected for every partner
    file        text   NOT NULL,
    line        int,
    entity_key  text,
    field       text,
    reason      text   NOT NULL,
    message     text   NOT NULL
);
CREATE INDEX rejects_run ON rejects (run_id);

-- Customer ids a run saw in its source, for finding records that vanished.
-- Unlogged: it is rebuilt by every run and worthless after a crash.
CREATE UNLOGGED TABLE run_seen (
    run_id      bigint NOT NULL,
    customer_id text   NOT NULL
);
CREATE INDEX run_seen_run ON run_seen (run_id, customer_id);
