-- Schema version 8: how each connector's outgoing queue is delivered.

-- NULL means the default: 'connector' ordering (the specification's: one
-- queue, an Error stops it), 1 call at a time, the batch size of bus.toml,
-- no rate limit. No CHECK constraints: registry rows are read tolerantly,
-- and a value the daemon cannot use makes the row a load warning naming
-- the column.
ALTER TABLE Integration_Connector ADD COLUMN ConnectorOrdering TEXT;
ALTER TABLE Integration_Connector ADD COLUMN ConnectorConcurrency INTEGER;
ALTER TABLE Integration_Connector ADD COLUMN ConnectorBatchSize INTEGER;
ALTER TABLE Integration_Connector ADD COLUMN ConnectorRateLimit REAL;
