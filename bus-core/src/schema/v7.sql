-- Schema version 7: where each connector runs.

-- 'process': in a child process the daemon starts and supervises;
-- 'in-process': inside the daemon; NULL or empty: the default of bus.toml
-- (`isolation`, shipped as 'process'). No CHECK: registry rows are read
-- tolerantly, and another value makes the row a load warning that says
-- which values are accepted.
ALTER TABLE Integration_Connector ADD COLUMN ConnectorIsolation TEXT;
