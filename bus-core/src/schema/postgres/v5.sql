-- PostgreSQL schema version 5: each connector's recent history and its
-- state. The history: one row
-- per minute (the same table as SQLite's version 9; the daemons delete
-- rows older than a day, and a connector's rows go with it).
CREATE TABLE Integration_ConnectorHistory (
    HistoryConnectorID BIGINT NOT NULL REFERENCES Integration_Connector (ConnectorID) ON DELETE CASCADE,
    HistoryMinute      BIGINT NOT NULL,
    HistoryDelivered   BIGINT NOT NULL DEFAULT 0,
    HistoryFailed      BIGINT NOT NULL DEFAULT 0,
    HistoryDepth       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (HistoryConnectorID, HistoryMinute)
);

-- The state the bus keeps for each connector (the same table as SQLite's
-- version 9; keys compare byte by byte, as in SQLite).
CREATE TABLE Integration_ConnectorState (
    StateConnectorID  BIGINT NOT NULL REFERENCES Integration_Connector (ConnectorID) ON DELETE CASCADE,
    StateKey          TEXT COLLATE "C" NOT NULL,
    StateValue        TEXT   NOT NULL,
    StateLastModified TEXT   NOT NULL DEFAULT bus_now(),
    PRIMARY KEY (StateConnectorID, StateKey)
);
