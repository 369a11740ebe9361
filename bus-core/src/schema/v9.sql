-- Schema version 9: each connector's recent history, one row per minute
-- in which it did something or had tasks waiting (the operations view's
-- charts). Bounded: the daemons delete rows older than a day, and a
-- connector's rows go with it.
CREATE TABLE Integration_ConnectorHistory (
    HistoryConnectorID INTEGER NOT NULL REFERENCES Integration_Connector (ConnectorID) ON DELETE CASCADE,
    -- Whole minutes since 1970-01-01 00:00 UTC.
    HistoryMinute      INTEGER NOT NULL,
    -- Tasks processed Ok in that minute (by every daemon).
    HistoryDelivered   INTEGER NOT NULL DEFAULT 0,
    -- Tasks whose attempt failed in that minute.
    HistoryFailed      INTEGER NOT NULL DEFAULT 0,
    -- Tasks waiting (both directions) when last looked at in that minute.
    HistoryDepth       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (HistoryConnectorID, HistoryMinute)
) WITHOUT ROWID;
