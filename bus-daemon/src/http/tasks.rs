//! Task queues: lists (oldest first), one task with its synchronization log,
//! synchronize and delete, one task or many.

use super::caller::Caller;
use super::content::limit;
use super::error::{blocking, ApiError, ApiJson, ApiPath, ApiQuery};
use super::grid::{search_text, GridParams};
use super::AppState;
use crate::audit::{self, Action};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use bus_core::eventlog::Actor;
use bus_core::grid::GridQuery;
use bus_core::queue::{Direction, Selection};
use bus_core::queue_admin::{self, TaskDetail, TaskRow};
use bus_core::settings;
use bus_core::task_grid::{self, TaskFilter, TaskSort};
use bus_core::worker::{SynchronizeError, TaskOutcome, TaskResult};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(schemars::JsonSchema)]
pub struct ListParams {
    connector: Option<String>,
    /// The `next` cursor of the previous page (oldest-first paging; not
    /// used when a grid parameter — `sort`, `order`, `search`, `offset` —
    /// is given: those page by offset).
    #[schemars(pattern(CURSOR))]
    cursor: Option<String>,
    /// How many rows at most (default 100).
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<u32>,
    /// Grid paging: `time` (default), `title`, `type`, `connector`, `result`.
    #[schemars(extend("enum" = ["time", "title", "type", "connector", "result"]))]
    sort: Option<String>,
    /// `asc` (default) or `desc`.
    #[schemars(extend("enum" = ["asc", "desc"]))]
    order: Option<String>,
    /// Only tasks whose title, type or connector contains this text.
    #[schemars(length(max = 200))]
    search: Option<String>,
    /// Grid paging: skip this many rows.
    #[schemars(range(max = 9223372036854775807u64))]
    offset: Option<u64>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct TaskPage {
    pub items: Vec<TaskRow>,
    /// Pass as `cursor` for the next page; absent on the last page (and in
    /// grid paging).
    pub next: Option<String>,
    /// Grid paging (any of `sort`, `order`, `search`, `offset` given): how
    /// many tasks match in all, and where this page starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

/// A cursor as this API writes it: `<task ID>.<relation ID>`.
const CURSOR: &str = r"^-?[0-9]{1,18}\.-?[0-9]{1,18}$";

fn parse_cursor(cursor: Option<&str>) -> Result<(i64, i64), ApiError> {
    let Some(c) = cursor else { return Ok((0, 0)) };
    // The same rule as [`CURSOR`] (18 digits always fit 64 bits).
    let part = |p: &str| {
        let digits = p.strip_prefix('-').unwrap_or(p);
        (!digits.is_empty() && digits.len() <= 18 && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse().ok())
            .flatten()
    };
    c.split_once('.')
        .and_then(|(t, s)| Some((part(t)?, part(s)?)))
        .ok_or_else(|| ApiError::bad_request(format!("cursor `{c}` is not a cursor this API returned")))
}

/// The registry ID of a connector named in a request.
fn connector_id(s: &AppState, name: &str) -> Result<i64, ApiError> {
    Ok(s.registry.get(name)?.id)
}

/// A grid request, when the parameters ask for one.
fn grid_query(p: &ListParams, limit: u32) -> Result<Option<GridQuery<TaskSort>>, ApiError> {
    let grid = GridParams::new(&p.sort, &p.order, &p.search, p.offset);
    if !grid.given() {
        return Ok(None);
    }
    grid.query(limit).map(Some)
}

async fn list(s: AppState, direction: Direction, p: ListParams) -> Result<Json<TaskPage>, ApiError> {
    let limit = limit(p.limit)?;
    // Checked in either mode, as the document's pattern is.
    let after = parse_cursor(p.cursor.as_deref())?;
    if let Some(q) = grid_query(&p, limit)? {
        let page = blocking(move || {
            let connector = p.connector.as_deref().map(|c| connector_id(&s, c)).transpose()?;
            Ok(task_grid::page(&*s.db.connect()?, direction, connector, &q)?)
        })
        .await?;
        return Ok(Json(TaskPage {
            items: page.items,
            next: None,
            total: Some(page.total),
            offset: Some(page.offset),
        }));
    }
    let items = blocking(move || {
        let connector = p.connector.as_deref().map(|c| connector_id(&s, c)).transpose()?;
        Ok(queue_admin::list(&*s.db.connect()?, direction, connector, after, limit)?)
    })
    .await?;
    let next =
        (items.len() == limit as usize).then(|| items.last().map(|t| format!("{}.{}", t.task_id, t.sync_id))).flatten();
    Ok(Json(TaskPage { items, next, total: None, offset: None }))
}

pub async fn list_outgoing(
    State(s): State<AppState>,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Json<TaskPage>, ApiError> {
    list(s, Direction::Outgoing, p).await
}

pub async fn list_incoming(
    State(s): State<AppState>,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Json<TaskPage>, ApiError> {
    list(s, Direction::Incoming, p).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(schemars::JsonSchema)]
pub struct CountParams {
    connector: Option<String>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Count {
    pub count: i64,
}

async fn count(s: AppState, direction: Direction, p: CountParams) -> Result<Json<Count>, ApiError> {
    blocking(move || {
        let connector = p.connector.as_deref().map(|c| connector_id(&s, c)).transpose()?;
        Ok(Json(Count { count: queue_admin::count(&*s.db.connect()?, direction, connector)? }))
    })
    .await
}

pub async fn count_outgoing(
    State(s): State<AppState>,
    ApiQuery(p): ApiQuery<CountParams>,
) -> Result<Json<Count>, ApiError> {
    count(s, Direction::Outgoing, p).await
}

pub async fn count_incoming(
    State(s): State<AppState>,
    ApiQuery(p): ApiQuery<CountParams>,
) -> Result<Json<Count>, ApiError> {
    count(s, Direction::Incoming, p).await
}

pub async fn get(State(s): State<AppState>, ApiPath(id): ApiPath<i64>) -> Result<Json<TaskDetail>, ApiError> {
    blocking(move || {
        queue_admin::detail(&*s.db.connect()?, id)?
            .map(Json)
            .ok_or_else(|| ApiError::not_found(format!("there is no task with ID {id}")))
    })
    .await
}

fn direction_of(detail: &TaskDetail) -> Direction {
    if detail.direction == "incoming" {
        Direction::Incoming
    } else {
        Direction::Outgoing
    }
}

/// `?connector=` scopes a row action to that connector's relation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(schemars::JsonSchema)]
pub struct RowParams {
    connector: Option<String>,
}

fn not_queued_for(id: i64, connector: &str) -> ApiError {
    ApiError::not_found(format!("task {id} is not queued for connector `{connector}`"))
}

/// Deletes one task: with `?connector=`, only that connector's relation
/// (the task goes with its last relation); without, for every connector.
pub async fn delete(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(p): ApiQuery<RowParams>,
) -> Result<StatusCode, ApiError> {
    blocking(move || {
        let mut conn = s.db.connect()?;
        let detail = queue_admin::detail(&conn, id)?
            .ok_or_else(|| ApiError::not_found(format!("there is no task with ID {id}")))?;
        let only = p.connector.as_deref().map(|c| connector_id(&s, c)).transpose()?;
        let deleted = queue_admin::delete(&mut conn, direction_of(&detail), &Selection::Ids(vec![id]), only)?;
        if let (0, Some(name)) = (deleted, p.connector.as_deref()) {
            return Err(not_queued_for(id, name));
        }
        let scope = p.connector.as_deref().map_or("every connector".to_owned(), |c| format!("connector `{c}`"));
        audit::record(
            &s.events,
            &actor,
            Action::DeleteOne,
            &format!("Deleted task {id} (`{}`) for {scope}", detail.title),
        );
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SyncReport {
    /// One per task and connector, in the order they ran.
    pub outcomes: Vec<TaskOutcome>,
    /// How many outcomes were `Ok`.
    pub ok: usize,
    /// How many failed (`Error`, `ErrorAndSkip`, `SkippedOnError`,
    /// `DeletedOnError`, `Blocked`); their outcomes say why. The rest were
    /// passed over on purpose (`SkipNow`, `SkippedOnce`).
    pub failed: usize,
}

impl SyncReport {
    fn new(outcomes: Vec<TaskOutcome>) -> SyncReport {
        let ok = outcomes.iter().filter(|o| o.result == TaskResult::Ok).count();
        let failed = outcomes.iter().filter(|o| o.result.is_failure()).count();
        SyncReport { outcomes, ok, failed }
    }
}

/// Refuses to synchronize while processing of that direction is off.
fn check_processing(s: &AppState, direction: Direction) -> Result<(), ApiError> {
    let settings = settings::read(&*s.db.connect()?)?;
    let on = match direction {
        Direction::Outgoing => settings.processes_outgoing(),
        Direction::Incoming => settings.processes_incoming(),
    };
    if on {
        Ok(())
    } else {
        let name = direction.name();
        Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "processing of {name} tasks is disabled in the settings: enable `enabled` and `process_{name}` to synchronize; the tasks stay queued"
            ),
        ))
    }
}

fn sync_error(e: SynchronizeError) -> ApiError {
    match e {
        SynchronizeError::NotLoaded(_) => ApiError::new(StatusCode::CONFLICT, e.to_string()),
        SynchronizeError::Refused(bus_core::worker::Refusal::Database(_)) => ApiError::unavailable(e.to_string()),
        SynchronizeError::Refused(_) => ApiError::new(StatusCode::CONFLICT, e.to_string()),
    }
}

/// Which tasks a synchronize request runs, connector by connector.
fn sync_plan(s: &AppState, direction: Direction, target: &Target) -> Result<Vec<(String, Selection)>, ApiError> {
    let registered = |by_connector: std::collections::BTreeMap<i64, Vec<i64>>| -> Result<_, ApiError> {
        let rows = s.registry.list()?;
        Ok(by_connector
            .into_iter()
            .filter_map(|(id, tasks)| rows.iter().find(|r| r.id == id).map(|r| (r.name.clone(), Selection::Ids(tasks))))
            .collect())
    };
    match target {
        Target::All { connector: Some(c), search: None } => Ok(vec![(s.registry.get(c)?.name, Selection::All)]),
        Target::All { connector: None, search: None } => {
            Ok(s.manager.current().live.keys().map(|n| (n.clone(), Selection::All)).collect())
        }
        Target::All { connector, search: Some(search) } => {
            let filter = TaskFilter {
                direction,
                connector_id: connector.as_deref().map(|c| connector_id(s, c)).transpose()?,
                search: Some(search),
            };
            let mut by_connector: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
            for (connector, task) in task_grid::listed(&*s.db.connect()?, &filter)? {
                by_connector.entry(connector).or_default().push(task);
            }
            registered(by_connector)
        }
        Target::Ids { ids, connector } => {
            let mut by_connector = queue_admin::connectors_of(&*s.db.connect()?, direction, ids)?;
            if let Some(only) = connector.as_deref().map(|c| connector_id(s, c)).transpose()? {
                by_connector.retain(|id, _| *id == only);
            }
            registered(by_connector)
        }
    }
}

/// Synchronizes a target, connector by connector, each in creation order.
fn synchronize(s: &AppState, direction: Direction, target: &Target) -> Result<Vec<TaskOutcome>, ApiError> {
    check_processing(s, direction)?;
    let workers = match direction {
        Direction::Outgoing => &s.outgoing,
        Direction::Incoming => s.incoming.workers(),
    };
    let names = sync_plan(s, direction, target)?;
    // "All" with no connector named means this daemon's running connectors
    // (a disabled or failed one is passed over, as the grid's rows of it
    // stay for when it runs).
    let everything = matches!(target, Target::All { connector: None, .. });
    let running = s.manager.current();
    let mut outcomes = Vec::new();
    for (name, selection) in names {
        // In a cluster a connector's tasks are run by the daemon that runs
        // it: "all" here means this daemon's; a request naming one that runs
        // elsewhere says where to send it.
        if everything && !running.live.contains_key(&name) {
            continue;
        }
        if let Some(daemon) = s.manager.get(&name).and_then(|c| c.runs_on().map(str::to_owned)) {
            if everything {
                continue;
            }
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("connector `{name}` runs on daemon {daemon}; synchronize its tasks through that daemon (see /api/cluster)"),
            ));
        }
        outcomes.extend(workers.synchronize(&name, selection).map_err(sync_error)?);
    }
    Ok(outcomes)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(schemars::JsonSchema)]
pub struct PayloadParams {
    connector: String,
}

/// The document a connector gets for one queued task: for an outgoing task
/// the body of its `process_internal_task_async` request, exactly as sent
/// (downgraded to the connector's data type); for an incoming task the data
/// it was logged with.
pub async fn payload(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(p): ApiQuery<PayloadParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    blocking(move || {
        let conn = s.db.connect()?;
        let detail = queue_admin::detail(&conn, id)?
            .ok_or_else(|| ApiError::not_found(format!("there is no task with ID {id}")))?;
        let direction = direction_of(&detail);
        let document = queue_admin::document(&conn, connector_id(&s, &p.connector)?, direction, id)?
            .ok_or_else(|| not_queued_for(id, &p.connector))?;
        let value = document.map_err(|e| ApiError::internal(format!("the task's stored data is unreadable: {e}")))?;
        Ok(Json(value))
    })
    .await
}

/// Synchronizes one task: with `?connector=`, for that connector only.
pub async fn synchronize_one(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(p): ApiQuery<RowParams>,
) -> Result<Json<SyncReport>, ApiError> {
    blocking(move || {
        let detail = queue_admin::detail(&*s.db.connect()?, id)?
            .ok_or_else(|| ApiError::not_found(format!("there is no task with ID {id}")))?;
        if let Some(name) = p.connector.as_deref() {
            if !detail.relations.iter().any(|r| r.connector == name) {
                return Err(not_queued_for(id, name));
            }
        }
        let target = Target::Ids { ids: vec![id], connector: p.connector.clone() };
        let outcomes = synchronize(&s, direction_of(&detail), &target)?;
        let scope = p.connector.as_deref().map_or("every connector".to_owned(), |c| format!("connector `{c}`"));
        let what = format!("Synchronized task {id} (`{}`) for {scope}: {}", detail.title, summary(&outcomes));
        audit::record(&s.events, &actor, Action::SynchronizeOne, &what);
        Ok(Json(SyncReport::new(outcomes)))
    })
    .await
}

/// `{"ids": [..]}` (optionally only their relations to `connector`), or
/// `{"all": true}` with the grid's filter (`connector`, `search`): then the
/// action applies to exactly the rows `GET /api/tasks/{direction}` lists
/// with that filter.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bulk {
    #[serde(default, deserialize_with = "bus_core::json_int::optional_list")]
    ids: Option<Vec<i64>>,
    /// Absent, or `true` (never `null`).
    #[serde(default, deserialize_with = "present")]
    all: Option<bool>,
    #[serde(default)]
    connector: Option<String>,
    #[serde(default)]
    search: Option<String>,
}

/// A field that, when given, holds a value (`null` is refused).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// The two shapes a bulk request takes, as the document shows them (one
/// struct reads both, and `target` refuses what fits neither).
impl schemars::JsonSchema for Bulk {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Bulk".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let connector = serde_json::json!({"type": ["string", "null"], "description": "Only the relations of this connector (its code name)"});
        schemars::json_schema!({
            "description": "Either `ids` (those tasks, in creation order; with `connector` only their relations to it), or `\"all\": true` with the grid's filter (`connector`, `search`): then exactly the rows `GET /api/tasks/{direction}` lists with that filter.",
            "oneOf": [
                {
                    "title": "BulkIds",
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["ids"],
                    "properties": {
                        "ids": {"type": "array", "minItems": 1, "items": {"type": "integer", "format": "int64", "minimum": i64::MIN, "maximum": i64::MAX}},
                        "connector": connector,
                        "search": {"type": "null"}
                    }
                },
                {
                    "title": "BulkAll",
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["all"],
                    "properties": {
                        "all": {"type": "boolean", "enum": [true]},
                        "ids": {"type": "null"},
                        "connector": connector,
                        "search": {"type": ["string", "null"], "maxLength": super::grid::MAX_SEARCH, "description": "Only rows whose title, type or connector name contains this text (case-insensitive), as the grid's search"}
                    }
                }
            ]
        })
    }
}

/// What a bulk or row action applies to.
#[derive(Debug)]
enum Target {
    Ids { ids: Vec<i64>, connector: Option<String> },
    All { connector: Option<String>, search: Option<String> },
}

impl Bulk {
    fn target(self) -> Result<Target, ApiError> {
        let unprocessable = |m: &str| Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m.to_owned()));
        match (self.ids, self.all) {
            (Some(_), Some(_)) => unprocessable("give either `ids` or `all`, not both"),
            (Some(_), None) if self.search.is_some() => {
                unprocessable("`search` filters `\"all\": true`; with `ids` the listed tasks are acted on")
            }
            (Some(ids), None) if ids.is_empty() => unprocessable("`ids` is empty"),
            (Some(ids), None) => Ok(Target::Ids { ids, connector: self.connector }),
            (None, Some(true)) => {
                Ok(Target::All { connector: self.connector, search: search_text(self.search.as_deref())? })
            }
            (None, Some(false)) => unprocessable("`all` is `true` or absent; to act on some tasks give `ids`"),
            (None, None) => unprocessable("give `ids` (a list of task IDs) or `\"all\": true`"),
        }
    }
}

/// `N task(s): N Ok, N Error, …` for the event log.
fn summary(outcomes: &[TaskOutcome]) -> String {
    let mut by_result: std::collections::BTreeMap<String, usize> = Default::default();
    for o in outcomes {
        *by_result.entry(format!("{:?}", o.result)).or_default() += 1;
    }
    let parts: Vec<String> = by_result.iter().map(|(r, n)| format!("{n} {r}")).collect();
    if parts.is_empty() {
        "nothing to do".into()
    } else {
        parts.join(", ")
    }
}

fn scope_text(direction: Direction, target: &Target) -> String {
    let (connector, search) = match target {
        Target::Ids { connector, .. } => (connector.as_deref(), None),
        Target::All { connector, search } => (connector.as_deref(), search.as_deref()),
    };
    let mut text = format!("{} task(s)", direction.name());
    if let Some(c) = connector {
        text.push_str(&format!(" of connector `{c}`"));
    }
    if let Some(search) = search {
        text.push_str(&format!(" matching `{search}`"));
    }
    text
}

async fn bulk_synchronize(
    s: AppState,
    actor: Actor,
    direction: Direction,
    bulk: Bulk,
) -> Result<Json<SyncReport>, ApiError> {
    let target = bulk.target()?;
    blocking(move || {
        let action =
            if matches!(target, Target::All { .. }) { Action::SynchronizeAll } else { Action::SynchronizeSelected };
        let outcomes = synchronize(&s, direction, &target)?;
        let what = format!(
            "Synchronized {} {} on request: {}",
            outcomes.len(),
            scope_text(direction, &target),
            summary(&outcomes)
        );
        audit::record(&s.events, &actor, action, &what);
        Ok(Json(SyncReport::new(outcomes)))
    })
    .await
}

pub async fn synchronize_outgoing(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiJson(b): ApiJson<Bulk>,
) -> Result<Json<SyncReport>, ApiError> {
    bulk_synchronize(s, actor, Direction::Outgoing, b).await
}

pub async fn synchronize_incoming(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiJson(b): ApiJson<Bulk>,
) -> Result<Json<SyncReport>, ApiError> {
    bulk_synchronize(s, actor, Direction::Incoming, b).await
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct DeleteReport {
    /// How many task-connector relations were removed.
    pub deleted: usize,
}

async fn bulk_delete(
    s: AppState,
    actor: Actor,
    direction: Direction,
    bulk: Bulk,
) -> Result<Json<DeleteReport>, ApiError> {
    let target = bulk.target()?;
    blocking(move || {
        let mut conn = s.db.connect()?;
        let deleted = match &target {
            Target::Ids { ids, connector } => {
                let only = connector.as_deref().map(|c| connector_id(&s, c)).transpose()?;
                queue_admin::delete(&mut conn, direction, &Selection::Ids(ids.clone()), only)?
            }
            Target::All { connector, search } => {
                let connector_id = connector.as_deref().map(|c| connector_id(&s, c)).transpose()?;
                task_grid::delete_listed(&conn, &TaskFilter { direction, connector_id, search: search.as_deref() })?
            }
        };
        let action = if matches!(target, Target::All { .. }) { Action::DeleteAll } else { Action::DeleteSelected };
        let what = format!("Deleted {deleted} {} relation(s) on request", scope_text(direction, &target));
        audit::record(&s.events, &actor, action, &what);
        Ok(Json(DeleteReport { deleted }))
    })
    .await
}

pub async fn delete_outgoing(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiJson(b): ApiJson<Bulk>,
) -> Result<Json<DeleteReport>, ApiError> {
    bulk_delete(s, actor, Direction::Outgoing, b).await
}

pub async fn delete_incoming(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiJson(b): ApiJson<Bulk>,
) -> Result<Json<DeleteReport>, ApiError> {
    bulk_delete(s, actor, Direction::Incoming, b).await
}
