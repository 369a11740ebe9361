-- Schema version 6: deferred custom subscriptions and visible connector
-- deletion.

-- Set on a relation whose connector has a custom subscription that may match
-- the change: the connector's `is_match` is asked on its own worker right
-- before delivery, never inside the change's transaction. 'Ask': no other
-- subscription matched, so no match means the relation is removed without a
-- call. 'AskOrKeep': another subscription matched with the relation's data
-- type, which stays when `is_match` does not raise it. NULL: decided.
ALTER TABLE Integration_Synchronization ADD COLUMN SynchronizationMatch TEXT
    CHECK (SynchronizationMatch IN ('Ask', 'AskOrKeep'));

-- Deleting a connector, by any client, discards its queued tasks with a
-- warning in the event log that names it and says how many. The relations
-- are removed here too, so a client that does not enforce foreign keys
-- (plain sqlite3) leaves none behind.
CREATE TRIGGER Integration_Connector_Deleting BEFORE DELETE ON Integration_Connector
WHEN EXISTS (SELECT 1 FROM Integration_Synchronization WHERE SynchronizationConnectorID = OLD.ConnectorID)
BEGIN
    INSERT INTO CMS_EventLog (EventType, Source, EventCode, Description)
    SELECT 'W', 'Integration bus', 'CONNECTORDELETE',
           'Connector `' || OLD.ConnectorName || '` was deleted with '
           || count(*) || ' queued task relation(s) ('
           || sum(SynchronizationIsInbound = 0) || ' outgoing, '
           || sum(SynchronizationIsInbound = 1) || ' incoming); they were discarded.'
      FROM Integration_Synchronization WHERE SynchronizationConnectorID = OLD.ConnectorID;
    DELETE FROM Integration_Synchronization WHERE SynchronizationConnectorID = OLD.ConnectorID;
END;
