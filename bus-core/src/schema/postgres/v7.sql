-- PostgreSQL schema version 7: a change's transaction that starts from the
-- settings its daemon read before, without a round trip to read them again.

-- The settings as one short text: it differs whenever any key or value
-- does, however the table was edited (the API, the UI, or psql) — and
-- whenever the registry's version does (a connector added, edited or
-- deleted), so a daemon also starts anew from a changed registry.
-- (PL/pgSQL, as the check below: it keeps the query's plan, where an SQL
-- function with an aggregate is planned anew at every call.)
CREATE FUNCTION bus_settings_version() RETURNS TEXT LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT md5(coalesce(string_agg(KeyName || '=' || KeyValue, E'\n' ORDER BY KeyName COLLATE "C"), '')
                       || '|' || (SELECT Version FROM Integration_RegistryVersion))
            FROM CMS_SettingsKey);
END $$;

-- The first statement of such a transaction (or a condition of it): it
-- fails (SQLSTATE BU001) when the settings are no longer those the daemon
-- read, and the daemon then runs the change again from the settings as
-- committed; true otherwise.
CREATE FUNCTION bus_expect_settings(expected TEXT) RETURNS BOOLEAN LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT md5(coalesce(string_agg(KeyName || '=' || KeyValue, E'\n' ORDER BY KeyName COLLATE "C"), '')
                   || '|' || (SELECT Version FROM Integration_RegistryVersion))
        FROM CMS_SettingsKey) IS DISTINCT FROM expected THEN
        RAISE EXCEPTION 'the settings or the registry changed since this daemon read them' USING ERRCODE = 'BU001';
    END IF;
    RETURN TRUE;
END $$;

-- `bus_deliver` (version 3) again, the same but for its plan: a delivery
-- of one relation deletes it by a single ID. (With the IDs as an array
-- the server planned the delete anew at every call — it never trusted
-- a plan made for an array of unknown size — which cost a tenth of its
-- time under a stream of deliveries.)
CREATE OR REPLACE FUNCTION bus_deliver(connector BIGINT, inbound BIGINT, owner TEXT, epoch BIGINT, ids BIGINT[])
RETURNS BOOLEAN LANGUAGE plpgsql AS $$
BEGIN
    IF NOT bus_hold_lease(connector, inbound, owner, epoch) THEN
        RETURN FALSE;
    END IF;
    IF cardinality(ids) = 1 THEN
        DELETE FROM Integration_Synchronization WHERE SynchronizationID = ids[1];
    ELSE
        DELETE FROM Integration_Synchronization WHERE SynchronizationID = ANY (ids);
    END IF;
    RETURN TRUE;
END $$;

-- A relation no longer refers to its connector through a foreign key:
-- checking the key row by row was a fifth of the server's time writing a
-- batch of tasks (three hundred checks for a hundred tasks). What the key
-- did is done once per statement and by a trigger:
-- * a statement that writes relations first locks their connectors
--   (`bus_lock_connectors`), so a delete of one waits for its commit, and
--   fails (SQLSTATE BU002) when one is gone;
-- * deleting a connector, by any client, deletes its relations (what the
--   key's ON DELETE CASCADE did; their sync log goes with them).
ALTER TABLE Integration_Synchronization
    DROP CONSTRAINT integration_synchronization_synchronizationconnectorid_fkey;

-- `ids`: distinct connector IDs, in ascending order (the order every
-- writer locks them in).
CREATE FUNCTION bus_lock_connectors(ids BIGINT[]) RETURNS BOOLEAN LANGUAGE plpgsql AS $$
DECLARE
    id BIGINT;
BEGIN
    FOREACH id IN ARRAY ids LOOP
        PERFORM 1 FROM Integration_Connector WHERE ConnectorID = id FOR KEY SHARE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'connector % was deleted meanwhile', id USING ERRCODE = 'BU002';
        END IF;
    END LOOP;
    RETURN TRUE;
END $$;

CREATE FUNCTION Integration_Connector_Cascade() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM Integration_Synchronization WHERE SynchronizationConnectorID = OLD.ConnectorID;
    RETURN NULL;
END $$;

CREATE TRIGGER Integration_Connector_Deleted AFTER DELETE ON Integration_Connector
FOR EACH ROW EXECUTE FUNCTION Integration_Connector_Cascade();
