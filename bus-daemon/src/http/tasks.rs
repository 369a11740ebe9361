//! Task queues: lists (oldest first), one task with its synchronization log,
//! synchronize and delete, one task or many.

use super::caller::Caller;
use super::content::limit;
use super::error::{blocking, ApiError, ApiJson, ApiPath, ApiQuery};
use super::grid::GridParams;
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
use bus_core::task_grid::{self, TaskSort};
use bus_core::worker::{SynchronizeError, TaskOutcome};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(schemars::JsonSchema)]
pub struct ListParams {
    connector: Option<String>,
    /// The `next` cursor of the previous page (oldest-first paging).
    cursor: Option<String>,
    limit: Option<u32>,
    /// Grid paging: `time` (default), `title`, `type`, `connector`, `result`.
    sort: Option<String>,
    /// `asc` (default) or `desc`.
    order: Option<String>,
    /// Only tasks whose title, type or connector contains this text.
    search: Option<String>,
    /// Grid paging: skip this many rows.
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

fn parse_cursor(cursor: Option<&str>) -> Result<(i64, i64), ApiError> {
    let Some(c) = cursor else { return Ok((0, 0)) };
    c.split_once('.')
        .and_then(|(t, s)| Some((t.parse().ok()?, s.parse().ok()?)))
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
    if p.cursor.is_some() {
        return Err(ApiError::bad_request(
            "`cursor` pages oldest first; with sort, order, search or offset use `offset`",
        ));
    }
    grid.query(limit).map(Some)
}

async fn list(s: AppState, direction: Direction, p: ListParams) -> Result<Json<TaskPage>, ApiError> {
    let limit = limit(p.limit)?;
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
    let after = parse_cursor(p.cursor.as_deref())?;
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
    pub outcomes: Vec<TaskOutcome>,
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
        SynchronizeError::Refused(_) => ApiError::new(StatusCode::CONFLICT, e.to_string()),
    }
}

/// Synchronizes a selection, connector by connector, each in creation order.
fn synchronize(
    s: &AppState,
    direction: Direction,
    selection: Selection,
    connector: Option<&str>,
) -> Result<Vec<TaskOutcome>, ApiError> {
    check_processing(s, direction)?;
    let workers = match direction {
        Direction::Outgoing => &s.outgoing,
        Direction::Incoming => s.incoming.workers(),
    };
    let names: Vec<(String, Selection)> = match &selection {
        Selection::All => match connector {
            Some(c) => vec![(s.registry.get(c)?.name, Selection::All)],
            None => s.manager.current().live.keys().map(|n| (n.clone(), Selection::All)).collect(),
        },
        Selection::Ids(ids) => {
            let by_connector = queue_admin::connectors_of(&*s.db.connect()?, direction, ids)?;
            let only = connector.map(|c| connector_id(s, c)).transpose()?;
            let rows = s.registry.list()?;
            by_connector
                .into_iter()
                .filter(|(id, _)| only.is_none_or(|o| o == *id))
                .filter_map(|(id, tasks)| {
                    rows.iter().find(|r| r.id == id).map(|r| (r.name.clone(), Selection::Ids(tasks)))
                })
                .collect()
        }
    };
    let everything = connector.is_none() && matches!(selection, Selection::All);
    let mut outcomes = Vec::new();
    for (name, selection) in names {
        // In a cluster a connector's tasks are run by the daemon that runs
        // it: "all" here means this daemon's; a request naming one that runs
        // elsewhere says where to send it.
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
        let outcomes = synchronize(&s, direction_of(&detail), Selection::Ids(vec![id]), p.connector.as_deref())?;
        let scope = p.connector.as_deref().map_or("every connector".to_owned(), |c| format!("connector `{c}`"));
        let what = format!("Synchronized task {id} (`{}`) for {scope}: {}", detail.title, summary(&outcomes));
        audit::record(&s.events, &actor, Action::SynchronizeOne, &what);
        Ok(Json(SyncReport { outcomes }))
    })
    .await
}

/// `{"ids": [..]}` or `{"all": true}`, optionally for one connector.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(schemars::JsonSchema)]
pub struct Bulk {
    #[serde(default)]
    ids: Option<Vec<i64>>,
    #[serde(default)]
    all: bool,
    #[serde(default)]
    connector: Option<String>,
}

impl Bulk {
    fn selection(self) -> Result<(Selection, Option<String>), ApiError> {
        match (self.ids, self.all) {
            (Some(_), true) => {
                Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "give either `ids` or `all`, not both"))
            }
            (Some(ids), false) if ids.is_empty() => {
                Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "`ids` is empty"))
            }
            (Some(ids), false) => Ok((Selection::Ids(ids), self.connector)),
            (None, true) => Ok((Selection::All, self.connector)),
            (None, false) => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "give `ids` (a list of task IDs) or `\"all\": true`",
            )),
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

fn scope_text(direction: Direction, connector: Option<&str>) -> String {
    match connector {
        Some(c) => format!("{} task(s) of connector `{c}`", direction.name()),
        None => format!("{} task(s)", direction.name()),
    }
}

async fn bulk_synchronize(
    s: AppState,
    actor: Actor,
    direction: Direction,
    bulk: Bulk,
) -> Result<Json<SyncReport>, ApiError> {
    let (selection, connector) = bulk.selection()?;
    blocking(move || {
        let action =
            if matches!(selection, Selection::All) { Action::SynchronizeAll } else { Action::SynchronizeSelected };
        let outcomes = synchronize(&s, direction, selection, connector.as_deref())?;
        let what = format!(
            "Synchronized {} {} on request: {}",
            outcomes.len(),
            scope_text(direction, connector.as_deref()),
            summary(&outcomes)
        );
        audit::record(&s.events, &actor, action, &what);
        Ok(Json(SyncReport { outcomes }))
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
    let (selection, connector) = bulk.selection()?;
    blocking(move || {
        let action = if matches!(selection, Selection::All) { Action::DeleteAll } else { Action::DeleteSelected };
        let connector_id = connector.as_deref().map(|c| connector_id(&s, c)).transpose()?;
        let deleted = queue_admin::delete(&mut *s.db.connect()?, direction, &selection, connector_id)?;
        let what = format!("Deleted {deleted} {} relation(s) on request", scope_text(direction, connector.as_deref()));
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
