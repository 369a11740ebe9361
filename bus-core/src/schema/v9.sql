-- Schema version 9: each connector's recent history and its state.

-- The history: one row per minute
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

-- The state the bus keeps for each connector (Host::state_get/put/delete):
-- small values by key, written with the delivery record of the task the
-- connector was processing. A connector's state goes with it.
CREATE TABLE Integration_ConnectorState (
    StateConnectorID  INTEGER NOT NULL REFERENCES Integration_Connector (ConnectorID) ON DELETE CASCADE,
    StateKey          TEXT    NOT NULL,
    StateValue        TEXT    NOT NULL,
    StateLastModified TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    PRIMARY KEY (StateConnectorID, StateKey)
) WITHOUT ROWID;
