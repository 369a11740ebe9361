-- PostgreSQL schema version 3: a worker's writes fenced in one call, a
-- delivery in one round trip.

-- The fence of every write a worker makes to its queue: true while the
-- daemon `owner` still holds the lease of the connector's queue (`inbound`
-- 0 or 1) at `epoch`, and then holds it until the caller's commit. The
-- connector row is locked first, as a delete of the connector takes it
-- first too (then its relations and leases, by cascade): in any other order
-- a delivery and a delete could each wait for the other. The lease row is
-- read FOR SHARE, so a takeover (an UPDATE of that row) waits for the
-- commit, and a write after a takeover finds the row changed.
CREATE FUNCTION bus_hold_lease(connector BIGINT, inbound BIGINT, owner TEXT, epoch BIGINT)
RETURNS BOOLEAN LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM Integration_Connector WHERE ConnectorID = connector FOR KEY SHARE;
    IF NOT FOUND THEN
        RETURN FALSE;
    END IF;
    PERFORM 1 FROM Integration_Lease
     WHERE LeaseConnectorID = connector AND LeaseIsInbound = inbound
       AND LeaseOwner = owner AND LeaseEpoch = epoch AND LeaseExpires > clock_timestamp()
       FOR SHARE;
    RETURN FOUND;
END $$;

-- A delivery in one round trip: the relations `ids` removed under the
-- fence (tasks left with none go with them, by the trigger above); false,
-- and nothing removed, when the lease moved on.
CREATE FUNCTION bus_deliver(connector BIGINT, inbound BIGINT, owner TEXT, epoch BIGINT, ids BIGINT[])
RETURNS BOOLEAN LANGUAGE plpgsql AS $$
BEGIN
    IF NOT bus_hold_lease(connector, inbound, owner, epoch) THEN
        RETURN FALSE;
    END IF;
    DELETE FROM Integration_Synchronization WHERE SynchronizationID = ANY (ids);
    RETURN TRUE;
END $$;
