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
-- ASCII, the connector ID's low ten bits: at most 1024 locks for one
-- transaction however many connectors it queues for, and two connectors
-- that share a key only make a delete wait for the other's holders too.
CREATE FUNCTION bus_connector_key(id BIGINT) RETURNS INTEGER LANGUAGE sql IMMUTABLE AS $$
    SELECT (id & 1023)::INTEGER
$$;

-- Holds each of `ids` (distinct, ascending: every holder's order) that
-- still exists, and returns those. The check runs after the lock, in a
-- statement of its own: a delete that committed meanwhile is seen.
CREATE FUNCTION bus_hold_connectors(ids BIGINT[]) RETURNS SETOF BIGINT LANGUAGE plpgsql AS $$
DECLARE
    id BIGINT;
BEGIN
    FOREACH id IN ARRAY ids LOOP
        PERFORM pg_advisory_xact_lock_shared(1651864419, bus_connector_key(id));
        IF EXISTS (SELECT 1 FROM Integration_Connector WHERE ConnectorID = id) THEN
            RETURN NEXT id;
        END IF;
    END LOOP;
END $$;

-- As version 7's, with the lock above: fails (SQLSTATE BU002) when one of
-- `ids` is gone.
CREATE OR REPLACE FUNCTION bus_lock_connectors(ids BIGINT[]) RETURNS BOOLEAN LANGUAGE plpgsql AS $$
DECLARE
    id BIGINT;
BEGIN
    FOREACH id IN ARRAY ids LOOP
        PERFORM pg_advisory_xact_lock_shared(1651864419, bus_connector_key(id));
        IF NOT EXISTS (SELECT 1 FROM Integration_Connector WHERE ConnectorID = id) THEN
            RAISE EXCEPTION 'connector % was deleted meanwhile', id USING ERRCODE = 'BU002';
        END IF;
    END LOOP;
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

-- The delivery fence of version 3, holding the connector as above.
CREATE OR REPLACE FUNCTION bus_hold_lease(connector BIGINT, inbound BIGINT, owner TEXT, epoch BIGINT)
RETURNS BOOLEAN LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(1651864419, bus_connector_key(connector));
    IF NOT EXISTS (SELECT 1 FROM Integration_Connector WHERE ConnectorID = connector) THEN
        RETURN FALSE;
    END IF;
    PERFORM 1 FROM Integration_Lease
     WHERE LeaseConnectorID = connector AND LeaseIsInbound = inbound
       AND LeaseOwner = owner AND LeaseEpoch = epoch AND LeaseExpires > clock_timestamp()
       FOR SHARE;
    RETURN FOUND;
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
