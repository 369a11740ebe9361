-- PostgreSQL schema version 4: how each connector's outgoing queue is
-- delivered (the same columns as SQLite's version 8; NULL means the
-- default, and a value the daemon cannot use is the row's load warning).
ALTER TABLE Integration_Connector ADD COLUMN ConnectorOrdering TEXT;
ALTER TABLE Integration_Connector ADD COLUMN ConnectorConcurrency BIGINT;
ALTER TABLE Integration_Connector ADD COLUMN ConnectorBatchSize BIGINT;
ALTER TABLE Integration_Connector ADD COLUMN ConnectorRateLimit DOUBLE PRECISION;
