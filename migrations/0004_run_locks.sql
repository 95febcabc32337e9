-- Fencing for the per-partner run locks (internal/runlock).
--
-- The locks themselves are session advisory locks: Postgres frees them
-- when the holder's session ends (kill -9, failover, a killed backend),
-- so cron never needs a manual unlock. A session can end while its
-- process goes on, though, and these rows are what stop that process's
-- writes once another run has taken over.
--
-- One row per partner and shard slot ('all' for an unsharded run, 'i/N'
-- for a shard). Taking a lock gives the taker a new epoch and writes it
-- into its own slot's row and into every slot it excludes; every ledger
-- commit of a run locks its rows FOR SHARE and compares their epoch with
-- runs.lock_epoch, so a run whose epoch was overwritten can commit
-- nothing more.
CREATE SEQUENCE run_lock_epochs;

CREATE TABLE run_locks (
    partner     text        NOT NULL,
    slot        text        NOT NULL,      -- 'all' or 'i/N'
    epoch       bigint      NOT NULL,
    run_id      bigint,                    -- the run that took this slot's epoch, once recorded
    host        text        NOT NULL,      -- who took it, for "locked by" messages
    source      text        NOT NULL,      -- what it reads (shown only; not part of the lock)
    pid         int         NOT NULL,
    backend_pid int         NOT NULL,      -- the lock session, to tell a live holder from a gone one
    taken_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner, slot)
);

-- lock_epoch: the epoch the run took (NULL: a run started without a lock,
-- e.g. by a test, is not fenced). heartbeat_at: renewed by the run's lock
-- heartbeat; a run taking over from one still marked running waits until
-- that heartbeat is old enough that the old run has stopped.
ALTER TABLE runs ADD COLUMN lock_epoch bigint, ADD COLUMN heartbeat_at timestamptz;
