-- PostgreSQL schema version 5: each connector's recent history, one row
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
