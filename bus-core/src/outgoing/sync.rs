//! Synchronous processing (SyncSnapshot): the change goes straight to the
//! connector inside the change's request; nothing is stored, so an error is
//! written to the event log and the data is lost.

use super::answer;
use super::subscribers::Subscriber;
use crate::connector::LiveConnector;
use crate::eventlog::{EventLog, NewEvent, BUS_SOURCE};
use connector_abi::protocol::{kind, ProcessResponse, SyncTask};
use connector_abi::{EventType, IntegrationProcessResult};
use serde::Serialize;

/// What one connector did with a synchronous change.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct SyncOutcome {
    pub connector: String,
    pub result: IntegrationProcessResult,
    pub error: Option<String>,
}

/// With processing of outgoing tasks off, synchronous subscribers do not get
/// the change and nothing is kept for them: say so in the event log and in
/// the change's answer. (Custom synchronous subscriptions are not asked.)
pub(crate) fn skipped(events: &EventLog, subscribers: &[Subscriber], title: &str) -> Vec<SyncOutcome> {
    let reason = "processing of outgoing tasks is off in the settings; a synchronous subscription keeps no data, so the change is lost for it";
    subscribers
        .iter()
        .filter(|s| s.route == super::subscribers::Route::Sync)
        .map(|s| {
            events.write_or_warn(&NewEvent {
                event_type: EventType::Warning,
                source: BUS_SOURCE,
                code: "SYNCSKIPPED",
                description: &format!("Connector `{}` did not get `{title}` synchronously: {reason}", s.connector.name),
                document_name: None,
                ..Default::default()
            });
            SyncOutcome {
                connector: s.connector.name.clone(),
                result: IntegrationProcessResult::SkipNow,
                error: Some(reason.into()),
            }
        })
        .collect()
}

/// Hands `task` to each synchronous subscriber in turn. `Error` (or a failed
/// call) stops all connectors: the ones after it do not get the change.
pub(crate) fn process(events: &EventLog, subscribers: &[Subscriber], task: &SyncTask, title: &str) -> Vec<SyncOutcome> {
    let mut outcomes = Vec::new();
    for s in subscribers {
        let c = &s.connector;
        let response =
            answer::bounded(LiveConnector::request_timeout::<_, ProcessResponse>(c, kind::PROCESS_SYNC, task));
        let failed =
            matches!(response.result, IntegrationProcessResult::Error | IntegrationProcessResult::ErrorAndSkip);
        if failed {
            let message = response.error_message.clone().unwrap_or_else(|| "no error message".into());
            let stops = if response.result == IntegrationProcessResult::Error {
                "processing stopped for all connectors"
            } else {
                "processing stopped for this connector"
            };
            events.write_or_warn(&NewEvent {
                event_type: EventType::Error,
                source: BUS_SOURCE,
                code: "SYNCPROCESSING",
                description: &format!(
                    "Connector `{}` failed to process `{title}` synchronously ({}): {message}; the data is lost; {stops}",
                    c.name, response.result
                ),
                document_name: None,
            ..Default::default()
        });
            tracing::warn!(connector = %c.name, task = %title, error = %message, "synchronous processing failed");
        }
        let stop_all = response.result == IntegrationProcessResult::Error;
        outcomes.push(SyncOutcome {
            connector: c.name.clone(),
            result: response.result,
            error: response.error_message,
        });
        if stop_all {
            break;
        }
    }
    outcomes
}
