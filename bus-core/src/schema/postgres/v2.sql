-- PostgreSQL schema version 2: several daemons on one database.

-- Every daemon sharing the database, with its last heartbeat. A daemon
-- whose heartbeat is older than the lease time is gone; its leases are
-- taken over once they expire.
CREATE TABLE Integration_Daemon (
    DaemonID        TEXT PRIMARY KEY,
    -- Where the other daemons reach it (its HTTP API), for calls routed to
    -- the connectors it runs.
    DaemonAddress   TEXT,
    DaemonStarted   TEXT NOT NULL DEFAULT bus_now(),
    -- A session advisory lock the daemon holds for as long as its database
    -- session lives: when pg_locks shows no session holding it, the daemon
    -- is gone (killed, its connection closed), and its leases are free
    -- before they expire.
    DaemonLockKey   BIGINT NOT NULL,
    DaemonHeartbeat TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);

-- Which daemon delivers a connector's queue in one direction: the owner,
-- an epoch raised by every change of owner (a delivery commit checks it,
-- so a daemon that lost the lease records nothing), and an expiry the
-- owner keeps pushing forward. Both directions of a connector are claimed
-- together: the connector's instance runs where its queues are delivered.
CREATE TABLE Integration_Lease (
    LeaseConnectorID BIGINT NOT NULL REFERENCES Integration_Connector (ConnectorID) ON DELETE CASCADE,
    LeaseIsInbound   BIGINT NOT NULL CHECK (LeaseIsInbound IN (0, 1)),
    LeaseOwner       TEXT,
    LeaseEpoch       BIGINT NOT NULL DEFAULT 0,
    LeaseExpires     TIMESTAMPTZ,
    PRIMARY KEY (LeaseConnectorID, LeaseIsInbound)
);

-- What a running instance declared at init (its subscriptions, its
-- capabilities), written by the daemon that runs it, so every daemon can
-- fan a change out to it without the instance.
CREATE TABLE Integration_ConnectorInstance (
    InstanceConnectorID BIGINT PRIMARY KEY REFERENCES Integration_Connector (ConnectorID) ON DELETE CASCADE,
    InstanceDaemonID    TEXT   NOT NULL,
    InstanceInit        TEXT   NOT NULL,
    InstanceLoadedAt    TEXT   NOT NULL
);
