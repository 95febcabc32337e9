-- A run that changed the checkpoint ends with ANALYZE sync_state,
-- customer_fingerprints (ledger.Store.RefreshStats). Statistics are only
-- worth gathering on columns some query filters, joins or sorts by:
-- provider, entity_key, customer_id and active; scope and customer_id.
-- The rest (hashes, remote ids, request ids, timestamps, arrays) cost
-- most of that ANALYZE (about 70 ms of a 20k-customer run's 100 ms) and
-- inform nothing. An ad hoc query that filters on one of them gets the
-- planner's default estimates; SET STATISTICS -1 gives them back.
ALTER TABLE sync_state
    ALTER COLUMN content_hash SET STATISTICS 0,
    ALTER COLUMN remote_id SET STATISTICS 0,
    ALTER COLUMN last_request_id SET STATISTICS 0,
    ALTER COLUMN last_run_id SET STATISTICS 0,
    ALTER COLUMN updated_at SET STATISTICS 0;
ALTER TABLE customer_fingerprints
    ALTER COLUMN fingerprint SET STATISTICS 0,
    ALTER COLUMN entities SET STATISTICS 0,
    ALTER COLUMN run_id SET STATISTICS 0;
