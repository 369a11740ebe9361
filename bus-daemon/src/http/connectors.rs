//! `/api/connectors`: the registry, with each connector's load state.

use super::caller::Caller;
use super::content::{limit, MAX_PAGE};
use super::error::{blocking, ApiError, ApiJson, ApiPath, ApiQuery};
use super::grid::GridParams;
use super::AppState;
use crate::audit::{self, Action};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bus_core::grid::Order;
use bus_core::manager::{ConnectorSet, ConnectorStatus};
use bus_core::metrics::Metrics;
use bus_core::queue_admin::{self, QueueStats};
use bus_core::registry::{ConnectorPatch, ConnectorRow, NewConnector, QueuedTasks, Registry};
use serde::Deserialize;
use serde::Serialize;
use std::sync::Arc;

/// A registry row and how the connector stands.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ConnectorView {
    #[serde(flatten)]
    pub row: ConnectorRow,
    pub loaded: bool,
    pub error: Option<String>,
    pub library: Option<String>,
    /// The content hash of the loaded build.
    pub library_hash: Option<String>,
    /// When the running instance was loaded.
    pub loaded_at: Option<String>,
    pub sdk_version: Option<String>,
    pub subscriptions: Vec<connector_abi::Subscription>,
    /// The running instance's last panic or timeout.
    pub fault: Option<String>,
    /// How long a call into the connector has run past the call timeout.
    pub hung_for_seconds: Option<f64>,
    /// Where the running instance runs (`process` or `in-process`).
    pub running_isolation: Option<bus_core::isolation::Isolation>,
    /// Where it runs, or would run once enabled: its `isolation`, or for
    /// `default` the mode `bus.toml` sets.
    pub isolation_mode: bus_core::isolation::Isolation,
    /// The daemon that runs it, when that is another daemon of the cluster
    /// (PostgreSQL): this daemon fans changes out to it and routes its
    /// synchronous calls there.
    pub running_on: Option<String>,
    /// How often its process was started again after a crash or a kill.
    pub restarts: u64,
    /// Its process's ID, while it runs in one.
    pub pid: Option<u32>,
    /// Its create or init has not returned yet (the last reinitialization
    /// went on without it; it runs once they return).
    pub starting: bool,
    /// Its queues now, and what it did lately on this daemon.
    pub queue: QueueFigures,
}

/// A connector's queues (from the database) and what it did lately (on
/// the daemon that answers: `delivered_last_minute`, `last_success_at` and
/// `last_error` count since that daemon started).
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct QueueFigures {
    /// Outgoing tasks waiting for it.
    pub outgoing: i64,
    /// Incoming tasks waiting to be applied.
    pub incoming: i64,
    /// Waiting tasks whose last attempt failed (both directions).
    pub failed: i64,
    /// How long its oldest waiting task has waited (0: none waits).
    pub oldest_age_seconds: f64,
    /// Tasks processed `Ok` in the last 60 seconds.
    pub delivered_last_minute: u64,
    /// When a task was last processed `Ok` (RFC 3339).
    pub last_success_at: Option<String>,
    /// The error of the last task that failed.
    pub last_error: Option<String>,
}

/// What the rows' `queue` figures are made of: every queue's figures, read
/// once per request, and the daemon's recent activity.
struct Figures {
    stats: Vec<QueueStats>,
    metrics: Arc<Metrics>,
    manager: Arc<bus_core::manager::ConnectorManager>,
}

impl Figures {
    /// Best effort: an edit that was made is answered as made even when the
    /// figures cannot be read (they read as zero then, and the log says why).
    async fn read(s: &AppState) -> Result<Figures, ApiError> {
        let db = s.db.clone();
        let stats = blocking(move || Ok(queue_admin::stats(&*db.connect()?)?)).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e.message, "cannot read the queue figures");
            Vec::new()
        });
        Ok(Figures { stats, metrics: s.metrics.clone(), manager: s.manager.clone() })
    }

    fn of(&self, connector: &str) -> QueueFigures {
        let activity = self.metrics.activity(connector);
        let mut f = QueueFigures {
            delivered_last_minute: activity.delivered_last_minute,
            last_success_at: activity.last_success_at,
            last_error: activity.last_error,
            ..QueueFigures::default()
        };
        for q in self.stats.iter().filter(|q| q.connector == connector) {
            *(if q.inbound { &mut f.incoming } else { &mut f.outgoing }) += q.depth;
            f.failed += q.failed;
            f.oldest_age_seconds = f.oldest_age_seconds.max(q.oldest_age_seconds);
        }
        f
    }
}

fn view(row: ConnectorRow, set: &ConnectorSet, figures: &Figures) -> ConnectorView {
    let queue = figures.of(&row.name);
    let isolation_mode = figures.manager.loader().isolation_of(&row);
    let live = set.live.get(&row.name);
    let fault = live.and_then(|c| c.last_fault());
    let hung_for_seconds = live.and_then(|c| c.hung_for()).map(|d| d.as_secs_f64());
    // A row added since the last reinitialization has no status yet.
    let status =
        set.status.get(&row.name).cloned().unwrap_or(ConnectorStatus { enabled: row.enabled, ..Default::default() });
    ConnectorView {
        row,
        loaded: status.loaded,
        error: status.error,
        library: status.library,
        library_hash: status.library_hash,
        loaded_at: status.loaded_at,
        sdk_version: status.sdk_version,
        subscriptions: status.subscriptions,
        fault,
        hung_for_seconds,
        running_isolation: live.and_then(|c| c.isolation()),
        isolation_mode,
        running_on: live.and_then(|c| c.runs_on()).map(str::to_owned),
        restarts: live.map_or(0, |c| c.restarts()),
        pid: live.and_then(|c| c.pid()),
        starting: status.starting,
        queue,
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(schemars::JsonSchema)]
pub struct ListParams {
    /// Only connectors whose code name sorts after this one (the next page).
    after: Option<String>,
    /// How many rows at most (default 100).
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<u32>,
    /// Grid paging: `name` (default), `display_name`, `assembly_name`,
    /// `class_name`, `enabled`, `state`. The total is in `X-Total-Count`.
    #[schemars(extend("enum" = ["name", "display_name", "assembly_name", "class_name", "enabled", "state"]))]
    sort: Option<String>,
    /// `asc` (default) or `desc`.
    #[schemars(extend("enum" = ["asc", "desc"]))]
    order: Option<String>,
    /// Only connectors whose names, library or class contain this text.
    #[schemars(length(max = 200))]
    search: Option<String>,
    /// Grid paging: skip this many rows.
    #[schemars(range(max = 9223372036854775807u64))]
    offset: Option<u64>,
}

/// The columns the connectors grid sorts by.
#[derive(Debug, Clone, Copy, Default)]
enum ConnectorSort {
    #[default]
    Name,
    DisplayName,
    AssemblyName,
    ClassName,
    Enabled,
    /// Failed first (descending), then loaded, then not loaded.
    State,
}

impl std::str::FromStr for ConnectorSort {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "name" => Ok(ConnectorSort::Name),
            "display_name" => Ok(ConnectorSort::DisplayName),
            "assembly_name" => Ok(ConnectorSort::AssemblyName),
            "class_name" => Ok(ConnectorSort::ClassName),
            "enabled" => Ok(ConnectorSort::Enabled),
            "state" => Ok(ConnectorSort::State),
            other => Err(format!(
                "sort must be one of name, display_name, assembly_name, class_name, enabled, state; not `{other}`"
            )),
        }
    }
}

fn sort_key(v: &ConnectorView, sort: ConnectorSort) -> (u8, String) {
    let text = |t: &str| (0, t.to_lowercase());
    match sort {
        ConnectorSort::Name => text(&v.row.name),
        ConnectorSort::DisplayName => text(&v.row.display_name),
        ConnectorSort::AssemblyName => text(&v.row.assembly_name),
        ConnectorSort::ClassName => text(&v.row.class_name),
        ConnectorSort::Enabled => (u8::from(v.row.enabled), String::new()),
        ConnectorSort::State => (if v.error.is_some() { 2 } else { u8::from(v.loaded) }, String::new()),
    }
}

pub async fn list(State(s): State<AppState>, ApiQuery(p): ApiQuery<ListParams>) -> Result<Response, ApiError> {
    let limit = limit(p.limit.or(Some(MAX_PAGE)))?;
    let registry = s.registry.clone();
    let rows = blocking(move || Ok(registry.list()?)).await?;
    let set = s.manager.current();
    let figures = Figures::read(&s).await?;
    let grid = GridParams::new(&p.sort, &p.order, &p.search, p.offset);
    if !grid.given() {
        let page: Vec<ConnectorView> = rows
            .into_iter()
            .filter(|r| p.after.as_ref().is_none_or(|a| r.name.as_str() > a.as_str()))
            .take(limit as usize)
            .map(|r| view(r, &set, &figures))
            .collect();
        return Ok(Json(page).into_response());
    }
    let q = grid.query::<ConnectorSort>(limit)?;
    let needle = q.search.as_deref().map(str::to_lowercase);
    let mut views: Vec<ConnectorView> = rows
        .into_iter()
        .filter(|r| {
            needle.as_deref().is_none_or(|n| {
                [&r.name, &r.display_name, &r.assembly_name, &r.class_name].iter().any(|f| f.to_lowercase().contains(n))
            })
        })
        .map(|r| view(r, &set, &figures))
        .collect();
    views.sort_by(|a, b| {
        let by = sort_key(a, q.sort).cmp(&sort_key(b, q.sort)).then_with(|| a.row.name.cmp(&b.row.name));
        if q.order == Order::Desc {
            by.reverse()
        } else {
            by
        }
    });
    let total = views.len();
    let page: Vec<ConnectorView> = views.into_iter().skip(q.offset as usize).take(limit as usize).collect();
    Ok(([("x-total-count", total.to_string())], Json(page)).into_response())
}

pub async fn get(State(s): State<AppState>, ApiPath(name): ApiPath<String>) -> Result<Json<ConnectorView>, ApiError> {
    let registry = s.registry.clone();
    let row = blocking(move || Ok(registry.get(&name)?)).await?;
    Ok(Json(view(row, &s.manager.current(), &Figures::read(&s).await?)))
}

/// Applies a registry edit, then reinitializes every connector so the
/// answer shows the new load state.
async fn edit_then_reload<T: Send + 'static>(
    s: AppState,
    edit: impl FnOnce(&Registry) -> Result<T, ApiError> + Send + 'static,
) -> Result<(T, Arc<ConnectorSet>), ApiError> {
    blocking(move || {
        let edited = edit(&s.registry)?;
        let set = s.manager.reload_all().map_err(|e| {
            ApiError::internal(format!("the edit is saved, but reinitializing the connectors failed: {e}"))
        })?;
        Ok((edited, set))
    })
    .await
}

/// The set once the edited connector's own create and init returned (the
/// reinitialization publishes without connectors that take longer).
async fn own_load(s: &AppState, name: &str, set: Arc<ConnectorSet>) -> Result<Arc<ConnectorSet>, ApiError> {
    if !set.status.get(name).is_some_and(|st| st.starting) {
        return Ok(set);
    }
    let (manager, name) = (s.manager.clone(), name.to_owned());
    blocking(move || Ok(manager.wait_settled(&name))).await
}

pub async fn create(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiJson(new): ApiJson<NewConnector>,
) -> Result<impl IntoResponse, ApiError> {
    let events = s.events.clone();
    let s2 = s.clone();
    let (row, set) = edit_then_reload(s, move |r| {
        let row = r.add(&new)?;
        audit::record(&events, &actor, Action::CreateConnector, &format!("Registered connector `{}`", row.name));
        Ok(row)
    })
    .await?;
    let set = own_load(&s2, &row.name, set).await?;
    Ok((StatusCode::CREATED, Json(view(row, &set, &Figures::read(&s2).await?))))
}

pub async fn update(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(patch): ApiJson<ConnectorPatch>,
) -> Result<Json<ConnectorView>, ApiError> {
    let events = s.events.clone();
    let s2 = s.clone();
    let (row, set) = edit_then_reload(s, move |r| {
        let before = r.get(&name)?;
        let row = r.update(&name, &patch)?;
        audit::record(
            &events,
            &actor,
            Action::UpdateConnector,
            &format!("Changed connector `{name}`: {}", patch.describe(&before)),
        );
        Ok(row)
    })
    .await?;
    let set = own_load(&s2, &row.name, set).await?;
    Ok(Json(view(row, &set, &Figures::read(&s2).await?)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(schemars::JsonSchema)]
pub struct DeleteParams {
    /// Delete the connector although tasks are queued for it (they are
    /// discarded, and the event log says how many).
    #[serde(default)]
    discard_queue: bool,
}

pub async fn delete(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(name): ApiPath<String>,
    ApiQuery(p): ApiQuery<DeleteParams>,
) -> Result<StatusCode, ApiError> {
    let queue = if p.discard_queue { QueuedTasks::Discard } else { QueuedTasks::Keep };
    let events = s.events.clone();
    edit_then_reload(s, move |r| {
        let discarded = r.delete(&name, queue)?;
        let what = format!("Deleted connector `{name}` ({discarded} queued task relation(s) discarded)");
        audit::record(&events, &actor, Action::DeleteConnector, &what);
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
