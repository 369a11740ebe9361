//! Connectors that run on another daemon: what each running instance
//! declared at init (`Integration_ConnectorInstance`, written by the daemon
//! that runs it), and the calls this daemon still has to make into one —
//! a synchronous subscription, a synchronous custom subscription — routed
//! to that daemon with the call timeout ([`Forward`], implemented by the
//! daemon over its own HTTP API).

use crate::sql::{Conn, Result};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// Why a routed call did not get an answer.
#[derive(Debug, Error)]
pub enum ForwardError {
    #[error("the daemon at {address} cannot be reached: {message}")]
    Unreachable { address: String, message: String },
    #[error("the daemon at {address} refused the call ({status}): {message}")]
    Refused { address: String, status: u16, message: String },
}

/// Sends one encoded connector request to the daemon that runs the
/// connector and returns its encoded answer.
pub trait Forward: Send + Sync {
    fn call(&self, address: &str, connector: &str, request: &[u8], timeout: Duration) -> Result<Vec<u8>, ForwardError>;
}

/// Where an instance runs and what it declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteSpec {
    pub daemon: String,
    pub address: Option<String>,
    /// The init answer as the running daemon stored it.
    pub init: String,
    pub loaded_at: String,
}

/// An instance on another daemon, as the fan-out and the synchronous
/// calls see it.
pub(crate) struct RemoteInstance {
    pub spec: RemoteSpec,
    pub connector: String,
    pub forward: Option<Arc<dyn Forward>>,
    pub timeout: Duration,
}

impl RemoteInstance {
    pub(crate) fn call(&self, request: &[u8]) -> Result<Vec<u8>, String> {
        let (Some(forward), Some(address)) = (&self.forward, &self.spec.address) else {
            return Err(format!(
                "connector `{}` runs on daemon {}, which this daemon cannot reach (no address or no routing)",
                self.connector, self.spec.daemon
            ));
        };
        forward.call(address, &self.connector, request, self.timeout).map_err(|e| e.to_string())
    }
}

/// Stores what a connector running on `me` declared; written only when it
/// changed (a reinitialization that declares the same keeps the row, so
/// the other daemons have nothing to refresh).
pub(super) fn publish(
    conn: &Conn,
    me: &str,
    connector_id: i64,
    init: &connector_abi::protocol::InitResponse,
    loaded_at: &str,
) -> Result<()> {
    let init = serde_json::to_string(init).expect("an init answer serializes");
    conn.execute(
        "INSERT INTO Integration_ConnectorInstance (InstanceConnectorID, InstanceDaemonID, InstanceInit, InstanceLoadedAt) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (InstanceConnectorID) DO UPDATE \
         SET InstanceDaemonID = excluded.InstanceDaemonID, InstanceInit = excluded.InstanceInit, \
             InstanceLoadedAt = excluded.InstanceLoadedAt \
         WHERE Integration_ConnectorInstance.InstanceDaemonID <> excluded.InstanceDaemonID \
            OR Integration_ConnectorInstance.InstanceInit <> excluded.InstanceInit",
        crate::params![connector_id, me, init, loaded_at],
    )?;
    Ok(())
}

/// What every connector declared when it last ran anywhere, with the
/// daemon holding its lease now. The declaration outlives its daemon: a
/// change fans out to a connector by its subscriptions while its lease
/// moves (the task waits in its queue); calls are routed only to a live
/// owner that published the declaration itself (`address` is `None` until
/// then).
pub(super) fn declared(conn: &Conn) -> Result<BTreeMap<i64, RemoteSpec>> {
    conn.prepare_cached(
        "SELECT i.InstanceConnectorID, COALESCE(l.LeaseOwner, i.InstanceDaemonID), d.DaemonAddress, \
                i.InstanceInit, i.InstanceLoadedAt \
         FROM Integration_ConnectorInstance i \
         LEFT JOIN Integration_Lease l ON l.LeaseConnectorID = i.InstanceConnectorID AND l.LeaseIsInbound = 0 \
              AND l.LeaseExpires > clock_timestamp() \
         LEFT JOIN Integration_Daemon d ON d.DaemonID = l.LeaseOwner AND l.LeaseOwner = i.InstanceDaemonID",
    )?
    .query_map([], |r| {
        Ok((r.get(0)?, RemoteSpec { daemon: r.get(1)?, address: r.get(2)?, init: r.get(3)?, loaded_at: r.get(4)? }))
    })?
    .collect()
}
