-- PostgreSQL schema version 8: the settings' version a counter, and a
-- connector held by a lock in memory instead of a row lock.

-- Bumped by every statement that changes the settings, by any client (the
-- API, the UI, psql; a TRUNCATE too). Reading it is cheaper than hashing
-- every key, which version 7 did for each change.
CREATE TABLE Integration_SettingsVersion (Version BIGINT NOT NULL);
INSERT INTO Integration_SettingsVersion (Version) VALUES (0);

CREATE FUNCTION Integration_Settings_Bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE Integration_SettingsVersion SET Version = Version + 1;
    RETURN NULL;
END $$;

CREATE TRIGGER CMS_SettingsKey_Changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON CMS_SettingsKey
FOR EACH STATEMENT EXECUTE FUNCTION Integration_Settings_Bump();

-- The version a daemon keeps with the settings it read: the settings'
-- counter and the registry's, as digits and a bar.
CREATE OR REPLACE FUNCTION bus_settings_version() RETURNS TEXT LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT Version FROM Integration_SettingsVersion) || '|' || (SELECT Version FROM Integration_RegistryVersion);
END $$;

CREATE OR REPLACE FUNCTION bus_expect_settings(expected TEXT) RETURNS BOOLEAN LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT Version FROM Integration_SettingsVersion) || '|' || (SELECT Version FROM Integration_RegistryVersion)
       IS DISTINCT FROM expected THEN
        RAISE EXCEPTION 'the settings or the registry changed since this daemon read them' USING ERRCODE = 'BU001';
    END IF;
    RETURN TRUE;
END $$;

-- A connector is held (by a change queuing for it, a delivery, an incoming
-- log) with a shared advisory lock until the holder's commit; a delete of
-- the connector, by any client, takes it exclusively before the row goes.
-- Version 7 locked the connector's row `FOR KEY SHARE`: a write to the row
-- (a WAL record) for every change and every delivery, and with several
-- writers a multixact for each. The key space is the two-integer one
-- (none of the bus's other advisory locks use it), the class "busc" in
-- ASCII, the connector ID's low six bits: at most 64 locks for one
-- transaction however many connectors it queues for (the server's lock
-- table holds about 64 per connection by default). Two connectors that
-- share a key are held together: a delete of one also waits for the
-- other's holders, and they wait for it (a delete left open in psql holds
-- up one connector in 64 besides its own until its commit).
--
-- The checks after a lock need READ COMMITTED (PostgreSQL's default, and
-- every daemon session's), where each statement reads what was committed
-- before it began: the holds and the delete trigger below refuse another
-- level (SQLSTATE BU003) instead of missing a delete or a change committed
-- while they waited. (The delivery fence needs no such check: its lease
-- row lock fails a stale read with a serialization error.)
CREATE FUNCTION bus_connector_key(id BIGINT) RETURNS INTEGER LANGUAGE sql IMMUTABLE AS $$
    SELECT (id & 63)::INTEGER
$$;

CREATE FUNCTION bus_read_committed() RETURNS BOOLEAN LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('transaction_isolation') NOT IN ('read committed', 'read uncommitted') THEN
        RAISE EXCEPTION 'the integration bus needs READ COMMITTED transactions here, not %',
            upper(current_setting('transaction_isolation')) USING ERRCODE = 'BU003';
    END IF;
    RETURN TRUE;
END $$;

-- Holds each of `ids` (distinct, ascending) and returns those that still
-- exist. The look at the rows runs after the locks, in a statement of its
-- own: a delete that committed meanwhile is seen. (A delete of several
-- connectors in one statement takes their locks in the order it finds the
-- rows, so it can still wait for a holder that waits for it; the server
-- then fails one of the two, as it did with row locks.)
CREATE FUNCTION bus_hold_connectors(ids BIGINT[]) RETURNS SETOF BIGINT LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('transaction_isolation') NOT IN ('read committed', 'read uncommitted') THEN
        PERFORM bus_read_committed();
    END IF;
    PERFORM pg_advisory_xact_lock_shared(1651864419, bus_connector_key(id)) FROM unnest(ids) AS id;
    RETURN QUERY SELECT ConnectorID FROM Integration_Connector WHERE ConnectorID = ANY (ids) ORDER BY ConnectorID;
END $$;

-- As version 7's, with the lock above (taken by assignments, which
-- PL/pgSQL evaluates without an executor of their own: every change runs
-- this): fails (SQLSTATE BU002) when one of `ids` is gone.
CREATE OR REPLACE FUNCTION bus_lock_connectors(ids BIGINT[]) RETURNS BOOLEAN LANGUAGE plpgsql AS $$
DECLARE
    id BIGINT;
    held BOOLEAN;
BEGIN
    IF current_setting('transaction_isolation') NOT IN ('read committed', 'read uncommitted') THEN
        held := bus_read_committed();
    END IF;
    FOREACH id IN ARRAY ids LOOP
        held := pg_advisory_xact_lock_shared(1651864419, bus_connector_key(id)) IS NOT NULL;
    END LOOP;
    IF (SELECT count(*) FROM Integration_Connector WHERE ConnectorID = ANY (ids)) < cardinality(ids) THEN
        RAISE EXCEPTION 'connector % was deleted meanwhile',
            (SELECT min(i) FROM unnest(ids) AS i
              WHERE NOT EXISTS (SELECT 1 FROM Integration_Connector WHERE ConnectorID = i))
            USING ERRCODE = 'BU002';
    END IF;
    RETURN TRUE;
END $$;

-- Taken first when a connector is deleted, by its BEFORE trigger (version
-- 1's, which then counts the relations the delete discards: it counts
-- those of holders that committed meanwhile too). A BEFORE trigger still
-- runs with the row locked, so a holder must never wait for that row, or
-- it and the delete would wait for each other: a connector's state,
-- written by its deliveries while they hold it, no longer refers to it
-- through a foreign key (whose check locks the row); the AFTER trigger
-- deletes it instead, with the relations.
CREATE OR REPLACE FUNCTION Integration_Connector_Deleting() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    total BIGINT;
    outgoing BIGINT;
BEGIN
    PERFORM bus_read_committed();
    PERFORM pg_advisory_xact_lock(1651864419, bus_connector_key(OLD.ConnectorID));
    SELECT count(*), count(*) FILTER (WHERE SynchronizationIsInbound = 0)
      INTO total, outgoing
      FROM Integration_Synchronization WHERE SynchronizationConnectorID = OLD.ConnectorID;
    IF total > 0 THEN
        INSERT INTO CMS_EventLog (EventType, Source, EventCode, Description)
        VALUES ('W', 'Integration bus', 'CONNECTORDELETE',
                'Connector `' || OLD.ConnectorName || '` was deleted with ' || total
                || ' queued task relation(s) (' || outgoing || ' outgoing, ' || (total - outgoing)
                || ' incoming); they were discarded.');
    END IF;
    RETURN OLD;
END $$;

-- The delivery fence of version 3: the connector held as above, then the
-- lease row read `FOR SHARE` at `owner`'s epoch (a statement that starts
-- after the lock, so it sees a delete or takeover that committed while
-- this waited). No look at the connector's row: a deleted connector's
-- lease goes with it (its key's cascade).
CREATE OR REPLACE FUNCTION bus_hold_lease(connector BIGINT, inbound BIGINT, owner TEXT, epoch BIGINT)
RETURNS BOOLEAN LANGUAGE plpgsql AS $$
DECLARE
    held BOOLEAN;
BEGIN
    held := pg_advisory_xact_lock_shared(1651864419, bus_connector_key(connector)) IS NOT NULL;
    PERFORM 1 FROM Integration_Lease
     WHERE LeaseConnectorID = connector AND LeaseIsInbound = inbound
       AND LeaseOwner = owner AND LeaseEpoch = epoch AND LeaseExpires > clock_timestamp()
       FOR SHARE;
    RETURN FOUND;
END $$;

-- A delivery (versions 3, 6 and 7) in one function with no other inside:
-- each nested call and each statement a PL/pgSQL function runs costs the
-- server an executor of its own, and a stream of deliveries was mostly
-- that. The disk wait and the lock are set by assignments (evaluated
-- without one).
CREATE OR REPLACE FUNCTION bus_deliver(connector BIGINT, inbound BIGINT, owner TEXT, epoch BIGINT, ids BIGINT[], durable BOOLEAN)
RETURNS BOOLEAN LANGUAGE plpgsql AS $$
DECLARE
    setting TEXT;
    held BOOLEAN;
BEGIN
    IF NOT durable THEN
        setting := set_config('synchronous_commit', 'off', true);
    END IF;
    held := pg_advisory_xact_lock_shared(1651864419, bus_connector_key(connector)) IS NOT NULL;
    PERFORM 1 FROM Integration_Lease
     WHERE LeaseConnectorID = connector AND LeaseIsInbound = inbound
       AND LeaseOwner = owner AND LeaseEpoch = epoch AND LeaseExpires > clock_timestamp()
       FOR SHARE;
    IF NOT FOUND THEN
        RETURN FALSE;
    END IF;
    IF cardinality(ids) = 1 THEN
        DELETE FROM Integration_Synchronization WHERE SynchronizationID = ids[1];
    ELSE
        DELETE FROM Integration_Synchronization WHERE SynchronizationID = ANY (ids);
    END IF;
    RETURN TRUE;
END $$;

ALTER TABLE Integration_ConnectorState
    DROP CONSTRAINT integration_connectorstate_stateconnectorid_fkey;

-- Version 7's cascade, and the connector's state with its relations.
CREATE OR REPLACE FUNCTION Integration_Connector_Cascade() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM Integration_Synchronization WHERE SynchronizationConnectorID = OLD.ConnectorID;
    DELETE FROM Integration_ConnectorState WHERE StateConnectorID = OLD.ConnectorID;
    RETURN NULL;
END $$;
