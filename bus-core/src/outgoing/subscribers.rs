//! Which connectors a change goes to, and how: decided from the
//! subscriptions alone, without calling any connector, because this runs
//! inside the change's transaction. Custom subscriptions are asked later —
//! an asynchronous one by the connector's own worker right before delivery
//! ([`decide`]), a synchronous one right after the commit, in the change's
//! request, with the call timeout.

use crate::change::Applied;
use crate::connector::{CallError, LiveConnector};
use connector_abi::protocol::{kind, IsMatchRequest, IsMatchResponse};
use connector_abi::subscription::{Match, Scope};
use connector_abi::{CmsObject, Subscription, TaskProcessType, TaskType};
use std::sync::Arc;

/// How a connector gets a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Processed synchronously in the change's request (SyncSnapshot won).
    Sync,
    /// Queued with this process type.
    Queue(TaskProcessType),
    /// Queued pending the connector's asynchronous custom subscriptions,
    /// asked before delivery; the process type of the subscriptions that
    /// matched without asking, if any, is kept when they do not match.
    QueueAsk(Option<TaskProcessType>),
    /// A synchronous custom subscription may match: asked after the commit,
    /// and processed synchronously when it does.
    SyncAsk,
}

/// A connector that gets (or may get) a change.
#[derive(Debug, Clone)]
pub(crate) struct Subscriber {
    pub connector: Arc<LiveConnector>,
    pub route: Route,
}

impl Subscriber {
    pub(crate) fn is_queued(&self) -> bool {
        matches!(self.route, Route::Queue(_) | Route::QueueAsk(_))
    }
}

/// The process type of a connector's matching subscriptions that need no
/// asking, and whether asynchronous or synchronous custom subscriptions may
/// match (their site and task type criteria pass).
struct Candidates {
    decided: Option<TaskProcessType>,
    ask_async: bool,
    ask_sync: bool,
}

fn candidates(
    subscriptions: &[Subscription],
    object: &CmsObject,
    task_type: TaskType,
    site: Option<&str>,
) -> Candidates {
    let mut c = Candidates { decided: None, ask_async: false, ask_sync: false };
    for s in subscriptions {
        match s.check(object, task_type, site) {
            Match::No => {}
            Match::Yes(p) => c.decided = Some(higher(c.decided, p)),
            Match::AskConnector if s.process_type.is_sync() => c.ask_sync = true,
            Match::AskConnector => c.ask_async = true,
        }
    }
    c
}

fn higher(a: Option<TaskProcessType>, b: TaskProcessType) -> TaskProcessType {
    match a {
        Some(a) if a.priority() >= b.priority() => a,
        _ => b,
    }
}

/// The connectors whose subscriptions match or may match the change, in
/// code-name order (a connector appears twice when it is queued and a
/// synchronous custom subscription may match too). `origin` (the connector
/// an incoming change came from) never gets its own change back.
pub(crate) fn subscribers<'a>(
    live: impl IntoIterator<Item = &'a Arc<LiveConnector>>,
    applied: &Applied,
    origin: Option<&str>,
) -> Vec<Subscriber> {
    let mut out = Vec::new();
    for c in live.into_iter().filter(|c| origin != Some(c.name.as_str())) {
        let found = candidates(&c.info.subscriptions, &applied.object, applied.task_type, applied.site_name.as_deref());
        let route = match found.decided {
            // Nothing outranks SyncSnapshot: there is nothing to ask.
            Some(p) if p.is_sync() => Some(Route::Sync),
            decided if found.ask_async => Some(Route::QueueAsk(decided)),
            Some(p) => Some(Route::Queue(p)),
            None => None,
        };
        if let Some(route) = route {
            out.push(Subscriber { connector: c.clone(), route });
        }
        if found.ask_sync && route != Some(Route::Sync) {
            out.push(Subscriber { connector: c.clone(), route: Route::SyncAsk });
        }
    }
    out
}

/// Asks the connector's custom subscriptions that may match (asynchronous
/// ones, or synchronous ones) and returns the highest process type among
/// their answers and `decided`. `call` makes the `is_match` call (on the
/// worker's thread, or on the connector's lane with the call timeout); a
/// failing call counts as no match and says why in the log.
pub(crate) fn ask(
    connector: &LiveConnector,
    object: &CmsObject,
    task_type: TaskType,
    site_name: Option<&str>,
    synchronous: bool,
    decided: Option<TaskProcessType>,
    call: impl Fn(&IsMatchRequest) -> Result<IsMatchResponse, CallError>,
) -> Option<TaskProcessType> {
    let mut best = decided;
    for s in &connector.info.subscriptions {
        let Scope::Custom { name } = &s.scope else { continue };
        if s.process_type.is_sync() != synchronous || s.check(object, task_type, site_name) != Match::AskConnector {
            continue;
        }
        let request = IsMatchRequest {
            subscription: name.clone(),
            object: object.clone(),
            task_type,
            site_name: site_name.map(str::to_owned),
        };
        match call(&request) {
            Ok(IsMatchResponse { process_type: Some(p) }) => best = Some(higher(best, p)),
            Ok(IsMatchResponse { process_type: None }) => {}
            Err(e) => {
                tracing::warn!(connector = %connector.name, subscription = %name, error = %e, "custom subscription check failed; treated as no match");
            }
        }
    }
    best
}

/// `is_match` on the connector's lane, with the call timeout.
pub(crate) fn is_match_on_lane(
    connector: &Arc<LiveConnector>,
    request: &IsMatchRequest,
) -> Result<IsMatchResponse, CallError> {
    LiveConnector::request_timeout(connector, kind::IS_MATCH, request)
}

/// `is_match` on the calling thread (the connector's own worker).
pub(crate) fn is_match_here(connector: &LiveConnector, request: &IsMatchRequest) -> Result<IsMatchResponse, CallError> {
    connector.request(kind::IS_MATCH, request)
}
