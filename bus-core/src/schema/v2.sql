-- Schema version 2: settings, the content store, and the task queue.

-- The five settings of the integration bus ('True' / 'False').
CREATE TABLE CMS_SettingsKey (
    KeyName  TEXT PRIMARY KEY,
    KeyValue TEXT NOT NULL CHECK (KeyValue IN ('True', 'False'))
);
INSERT INTO CMS_SettingsKey (KeyName, KeyValue) VALUES
    ('CMSIntegrationEnabled', 'True'),
    ('CMSIntegrationLogExternal', 'True'),
    ('CMSIntegrationProcessExternal', 'True'),
    ('CMSIntegrationLogInternal', 'True'),
    ('CMSIntegrationProcessInternal', 'True');

-- Objects of every type (users, roles, sites, polls, bindings, ...).
CREATE TABLE CMS_Object (
    ObjectID           INTEGER PRIMARY KEY AUTOINCREMENT,
    ObjectType         TEXT    NOT NULL,
    ObjectGUID         TEXT    NOT NULL UNIQUE,
    ObjectCodeName     TEXT    NOT NULL,
    ObjectDisplayName  TEXT,
    ObjectSiteName     TEXT,
    ObjectParentType   TEXT,
    ObjectParentID     INTEGER,
    ObjectGroupID      INTEGER,
    ObjectFields       TEXT    NOT NULL DEFAULT '{}',
    ObjectLastModified TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
);
CREATE UNIQUE INDEX CMS_Object_CodeName
    ON CMS_Object (ObjectType, ifnull(ObjectSiteName, ''), ifnull(ObjectParentID, 0), ObjectCodeName COLLATE NOCASE);
CREATE INDEX CMS_Object_Parent ON CMS_Object (ObjectParentID);

-- Documents: a node of the content tree, and its culture versions.
CREATE TABLE CMS_Tree (
    NodeID        INTEGER PRIMARY KEY AUTOINCREMENT,
    NodeGUID      TEXT    NOT NULL UNIQUE,
    NodeAliasPath TEXT    NOT NULL,
    NodeParentID  INTEGER REFERENCES CMS_Tree (NodeID),
    NodeClassName TEXT    NOT NULL,
    NodeSiteName  TEXT    NOT NULL,
    UNIQUE (NodeSiteName, NodeAliasPath)
);
CREATE INDEX CMS_Tree_Parent ON CMS_Tree (NodeParentID);

CREATE TABLE CMS_Document (
    DocumentID           INTEGER PRIMARY KEY AUTOINCREMENT,
    DocumentNodeID       INTEGER NOT NULL REFERENCES CMS_Tree (NodeID),
    DocumentCulture      TEXT    NOT NULL,
    DocumentName         TEXT    NOT NULL,
    DocumentFields       TEXT    NOT NULL DEFAULT '{}',
    DocumentPublished    INTEGER NOT NULL DEFAULT 0,
    DocumentArchived     INTEGER NOT NULL DEFAULT 0,
    DocumentLastModified TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    UNIQUE (DocumentNodeID, DocumentCulture)
);

-- One row per change (outgoing) or per external change (incoming). The
-- payload is stored once, whatever the number of connectors.
CREATE TABLE Integration_Task (
    TaskID            INTEGER PRIMARY KEY AUTOINCREMENT,
    TaskIsInbound     INTEGER NOT NULL CHECK (TaskIsInbound IN (0, 1)),
    TaskType          TEXT    NOT NULL,
    TaskDataType      TEXT    NOT NULL,
    TaskProcessType   TEXT,
    TaskSiteName      TEXT,
    TaskTitle         TEXT    NOT NULL,
    TaskTime          TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    TaskObjectType    TEXT,
    TaskObjectID      INTEGER,
    TaskNodeID        INTEGER,
    TaskDocumentID    INTEGER,
    TaskNodeAliasPath TEXT,
    TaskData          TEXT    NOT NULL
);

-- One row per task and connector: the connector's queue.
CREATE TABLE Integration_Synchronization (
    SynchronizationID           INTEGER PRIMARY KEY AUTOINCREMENT,
    -- No foreign key: a task is deleted through its relations (the trigger
    -- below), and a foreign key would scan this table on every task deletion.
    SynchronizationTaskID       INTEGER NOT NULL,
    SynchronizationConnectorID  INTEGER NOT NULL REFERENCES Integration_Connector (ConnectorID) ON DELETE CASCADE,
    SynchronizationIsInbound    INTEGER NOT NULL,
    SynchronizationDataType     TEXT    NOT NULL,
    SynchronizationLastRun      TEXT,
    SynchronizationErrorMessage TEXT,
    SynchronizationAttempts     INTEGER NOT NULL DEFAULT 0,
    -- Set when the last attempt ended in ErrorAndSkip: automatic runs pass
    -- over the task, a manual synchronize retries it.
    SynchronizationIsSkipped    INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX Integration_Synchronization_Queue
    ON Integration_Synchronization (SynchronizationConnectorID, SynchronizationIsInbound, SynchronizationTaskID);
CREATE INDEX Integration_Synchronization_Task
    ON Integration_Synchronization (SynchronizationIsInbound, SynchronizationTaskID);

-- Every failed attempt.
CREATE TABLE Integration_SyncLog (
    SyncLogID                INTEGER PRIMARY KEY AUTOINCREMENT,
    SyncLogSynchronizationID INTEGER NOT NULL REFERENCES Integration_Synchronization (SynchronizationID) ON DELETE CASCADE,
    SyncLogTime              TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    SyncLogErrorMessage      TEXT    NOT NULL
);
CREATE INDEX Integration_SyncLog_Synchronization ON Integration_SyncLog (SyncLogSynchronizationID);

-- A task is deleted with its last relation, whoever deletes that. (All
-- relations of a task share its direction, which lets the check use the index.)
CREATE TRIGGER Integration_Synchronization_Deleted AFTER DELETE ON Integration_Synchronization
WHEN NOT EXISTS (SELECT 1 FROM Integration_Synchronization
                 WHERE SynchronizationIsInbound = OLD.SynchronizationIsInbound
                   AND SynchronizationTaskID = OLD.SynchronizationTaskID)
BEGIN
    DELETE FROM Integration_Task WHERE TaskID = OLD.SynchronizationTaskID;
END;
