-- Schema version 1: the connector registry and the event log.

-- The connector registry. Ops scripts rely on these names.
CREATE TABLE Integration_Connector (
    ConnectorID           INTEGER PRIMARY KEY AUTOINCREMENT,
    ConnectorName         TEXT    NOT NULL UNIQUE,
    ConnectorDisplayName  TEXT    NOT NULL,
    ConnectorAssemblyName TEXT    NOT NULL,
    ConnectorClassName    TEXT    NOT NULL,
    ConnectorEnabled      INTEGER NOT NULL DEFAULT 0 CHECK (ConnectorEnabled IN (0, 1)),
    ConnectorLastModified TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    ConnectorConfig       TEXT    NOT NULL DEFAULT ''
);

-- Bumped by every change to the registry, by any process, so a running
-- daemon notices edits made with plain sqlite3.
CREATE TABLE Integration_RegistryVersion (Version INTEGER NOT NULL);
INSERT INTO Integration_RegistryVersion (Version) VALUES (0);

CREATE TRIGGER Integration_Connector_Inserted AFTER INSERT ON Integration_Connector
BEGIN
    UPDATE Integration_RegistryVersion SET Version = Version + 1;
END;

CREATE TRIGGER Integration_Connector_Updated AFTER UPDATE ON Integration_Connector
BEGIN
    UPDATE Integration_RegistryVersion SET Version = Version + 1;
    UPDATE Integration_Connector
       SET ConnectorLastModified = strftime('%Y-%m-%dT%H:%M:%fZ','now')
     WHERE ConnectorID = NEW.ConnectorID
       AND NEW.ConnectorLastModified = OLD.ConnectorLastModified;
END;

CREATE TRIGGER Integration_Connector_Deleted AFTER DELETE ON Integration_Connector
BEGIN
    UPDATE Integration_RegistryVersion SET Version = Version + 1;
END;

-- The event log.
CREATE TABLE CMS_EventLog (
    EventID      INTEGER PRIMARY KEY AUTOINCREMENT,
    EventType    TEXT    NOT NULL CHECK (EventType IN ('I', 'W', 'E')),
    EventTime    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    Source       TEXT    NOT NULL,
    EventCode    TEXT    NOT NULL,
    Description  TEXT    NOT NULL DEFAULT '',
    DocumentName TEXT,
    UserName     TEXT,
    IPAddress    TEXT
);
CREATE INDEX CMS_EventLog_Source ON CMS_EventLog (Source, EventID);

-- The demonstration connector is registered in every new database, not enabled.
INSERT INTO Integration_Connector
    (ConnectorName, ConnectorDisplayName, ConnectorAssemblyName, ConnectorClassName, ConnectorEnabled)
VALUES
    ('SampleIntegrationConnector', 'Sample Integration Connector', 'sample_connector', 'SampleIntegrationConnector', 0);
