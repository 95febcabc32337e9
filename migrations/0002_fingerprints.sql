-- The nightly fast path. A fingerprint is a keyed HMAC of one customer's
-- raw source rows (its customers.csv row and all its cards.csv rows). A
-- row here says: when this fingerprint was recorded, every partner of
-- the scope had this customer's current content, delivered and active,
-- and the customer had no rejects. A rerun whose rows hash to the same
-- fingerprint skips that customer before decoding anything.
--
-- scope names the partner set, their settings, the etl binary and the
-- month (card expiry is judged by month), so a new release, a config
-- change or a new month falls back to the full comparison once. One row
-- per customer: the last scope that recorded it. Any run that plans a
-- partner call for a customer, or deactivates one, first deletes it.
CREATE TABLE customer_fingerprints (
    customer_id text COLLATE "C" NOT NULL,
    scope       text   NOT NULL,
    fingerprint bytea  NOT NULL,
    entities    int[]  NOT NULL,  -- entities per partner of the scope, for the run's unchanged counts
    run_id      bigint NOT NULL,
    PRIMARY KEY (customer_id)
);
