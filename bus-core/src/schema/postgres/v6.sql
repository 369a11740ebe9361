-- PostgreSQL schema version 6: a delivery's record that need not wait for
-- the server's disk.

-- `bus_deliver` (version 3) with `durable` false: the transaction commits
-- without waiting for its WAL to reach the disk (`synchronous_commit`
-- off for this transaction only). The commit is visible at once and
-- survives the daemon's death; only a crash of the server (or the machine)
-- within the WAL writer's delay may lose it, and the task is then
-- delivered again. The next durable commit on the server (a change, a
-- lease move) flushes it too.
CREATE FUNCTION bus_deliver(connector BIGINT, inbound BIGINT, owner TEXT, epoch BIGINT, ids BIGINT[], durable BOOLEAN)
RETURNS BOOLEAN LANGUAGE plpgsql AS $$
BEGIN
    IF NOT durable THEN
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    RETURN bus_deliver(connector, inbound, owner, epoch, ids);
END $$;
