//! `/api/cluster`: the daemons sharing a PostgreSQL database, the leases
//! each holds and its last heartbeat; and the route other daemons use to
//! call a connector that runs here (a synchronous subscription, a
//! synchronous custom subscription of a change that entered there).

use super::cluster_auth::{CallAuth, Signed, FROM_HEADER, SIGNATURE_HEADER, TIME_HEADER};
use super::error::{blocking, ApiError, ApiPath};
use super::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bus_core::cluster::{ClusterView, Forward, ForwardError};
use bus_core::connector::LiveConnector;
use bus_core::eventlog::NewEvent;
use connector_abi::EventType;
use std::time::Duration;

/// The cluster as this daemon sees it (404 on SQLite: one daemon per file).
pub async fn view(State(s): State<AppState>) -> Result<Json<ClusterView>, ApiError> {
    let Some(cluster) = s.manager.cluster().cloned() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "this daemon is not part of a cluster: several daemons share a PostgreSQL database (`database = \"postgres://…\"`), a SQLite file has one",
        ));
    };
    Ok(Json(blocking(move || Ok(cluster.view()?)).await?))
}

/// One encoded connector request from another daemon, answered by the
/// instance running here (on its lane, with the call timeout).
pub async fn call(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    if s.manager.cluster().is_none() {
        return Err(ApiError::not_found(format!(
            "this daemon is not part of a cluster: connector `{name}` is called directly here, not through another daemon"
        )));
    }
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => super::error::too_large(),
        status => ApiError::new(status, rejection.body_text()),
    })?;
    let signed = signed(&headers);
    s.cluster_calls
        .verify(uri.path(), &body, signed.as_ref())
        .map_err(|why| ApiError::new(StatusCode::UNAUTHORIZED, why))?;
    let from = signed.map_or_else(
        || "a daemon of the cluster (unsigned: no access token)".to_owned(),
        |s| format!("the daemon at {}", s.from),
    );
    let kind =
        connector_abi::protocol::parse_request(&body).map_or_else(|_| "a request".to_owned(), |r| r.kind.into_owned());
    let answer = blocking(move || {
        // Every routed call is in the event log, with where it came from.
        s.events.write_or_warn(&NewEvent {
            event_type: EventType::Information,
            source: bus_core::eventlog::BUS_SOURCE,
            code: "ROUTEDCALL",
            description: &format!("Connector `{name}` was called (`{kind}`) for {from}"),
            document_name: None,
            ..Default::default()
        });
        // Unknown here is unknown everywhere (one registry): 404, not "moved".
        s.registry.get(&name)?;
        let live = s.manager.get(&name).filter(|c| c.runs_on().is_none()).ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                format!("connector `{name}` does not run on this daemon (its lease moved)"),
            )
        })?;
        LiveConnector::routed(&live, body.to_vec()).map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()))
    })
    .await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], answer).into_response())
}

/// Calls connectors on other daemons over their HTTP API, each call signed
/// with the cluster key (never the token itself: see `cluster_auth.rs`).
pub struct Forwarder {
    client: connector_http::Client,
    auth: CallAuth,
    /// This daemon's address, as it signs its calls.
    from: String,
}

/// What [`Forwarder::new`] needs.
pub struct ForwarderParts<'a> {
    pub call_timeout: Duration,
    pub token: Option<&'a str>,
    pub from: String,
    /// The CA the other daemons' certificates are checked against.
    pub ca_cert: Option<std::path::PathBuf>,
}

impl Forwarder {
    /// A forwarder whose calls wait a little longer than the call timeout
    /// (the other daemon applies the timeout itself).
    pub fn new(parts: ForwarderParts<'_>) -> anyhow::Result<Forwarder> {
        let options =
            connector_http::Options { timeout: parts.call_timeout + Duration::from_secs(1), ca_cert: parts.ca_cert };
        let client = connector_http::Client::new(&options).map_err(anyhow::Error::msg)?;
        Ok(Forwarder { client, auth: CallAuth::new(parts.token), from: parts.from })
    }
}

impl Forward for Forwarder {
    fn call(
        &self,
        address: &str,
        connector: &str,
        request: &[u8],
        _timeout: Duration,
    ) -> Result<Vec<u8>, ForwardError> {
        let path = format!("/api/cluster/connectors/{}/call", connector_http::query_escape(connector));
        let url = format!("{}{path}", address.trim_end_matches('/'));
        let headers: Vec<(String, String)> = match self.auth.sign(&path, &self.from, request) {
            Some(signed) => vec![
                (FROM_HEADER.to_owned(), signed.from),
                (TIME_HEADER.to_owned(), signed.time.to_string()),
                (SIGNATURE_HEADER.to_owned(), signed.signature),
            ],
            None => Vec::new(),
        };
        let response = self
            .client
            .send("POST", &url, &headers, request)
            .map_err(|e| ForwardError::Unreachable { address: address.to_owned(), message: e.to_string() })?;
        if response.status != 200 {
            let message = serde_json::from_str::<serde_json::Value>(&response.body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or(response.body);
            return Err(ForwardError::Refused { address: address.to_owned(), status: response.status, message });
        }
        Ok(response.body.into_bytes())
    }
}

/// The signature headers of a routed call, when it has them all.
fn signed(headers: &HeaderMap) -> Option<Signed> {
    let text = |name: &str| headers.get(name)?.to_str().ok().map(str::to_owned);
    Some(Signed {
        from: text(FROM_HEADER)?,
        time: text(TIME_HEADER)?.parse().ok()?,
        signature: text(SIGNATURE_HEADER)?,
    })
}
