//! Which connectors a change goes to, and with which process type.

use crate::change::Applied;
use crate::connector::LiveConnector;
use crate::manager::ConnectorSet;
use connector_abi::protocol::{kind, IsMatchRequest, IsMatchResponse};
use connector_abi::subscription::best_match;
use connector_abi::{Subscription, TaskProcessType};
use std::sync::Arc;

/// A connector that gets a change.
#[derive(Debug, Clone)]
pub struct Subscriber {
    pub connector: Arc<LiveConnector>,
    pub process_type: TaskProcessType,
}

/// The connectors whose subscriptions match the change, each with its
/// highest-priority process type, in code-name order. `origin` (the
/// connector an incoming change came from) never gets its own change back.
pub fn subscribers(set: &ConnectorSet, applied: &Applied, origin: Option<&str>) -> Vec<Subscriber> {
    set.live
        .values()
        .filter(|c| origin != Some(c.name.as_str()))
        .filter_map(|c| {
            let ask = |s: &Subscription| ask_connector(c, s, applied);
            best_match(&c.info.subscriptions, &applied.object, applied.task_type, applied.site_name.as_deref(), ask)
                .map(|process_type| Subscriber { connector: c.clone(), process_type })
        })
        .collect()
}

/// A custom subscription: the connector's `is_match` decides. A failing
/// call counts as no match, and says why in the log.
fn ask_connector(c: &Arc<LiveConnector>, s: &Subscription, applied: &Applied) -> Option<TaskProcessType> {
    let connector_abi::subscription::Scope::Custom { name } = &s.scope else { return None };
    let request = IsMatchRequest {
        subscription: name.clone(),
        object: applied.object.clone(),
        task_type: applied.task_type,
        site_name: applied.site_name.clone(),
    };
    match LiveConnector::request_timeout::<_, IsMatchResponse>(c, kind::IS_MATCH, &request) {
        Ok(r) => r.process_type,
        Err(e) => {
            tracing::warn!(connector = %c.name, subscription = %name, error = %e, "custom subscription check failed; treated as no match");
            None
        }
    }
}
