//! The route table: every route once, with its handler and what the OpenAPI
//! document says about it — its query parameters, its body and its answer,
//! named by the handler's own types (their JSON Schemas are generated with
//! schemars). `router()` and `GET /api/openapi.json` are both built from it,
//! so a route cannot be served without being described, or described without
//! being served.

use super::AppState;
use super::{
    auth, cluster, connectors, content, eventlog, events, health, history, incoming, metrics, openapi, schedule,
    settings, state, tasks, ui,
};
use axum::routing::MethodRouter;
use axum::Json;
use bus_core::pipeline::ChangeResult;
use bus_core::queue_admin::TaskDetail;
use bus_core::registry::{ConnectorPatch, NewConnector};
use bus_core::scheduler::ScheduledTask;
use bus_core::settings::{Settings, SettingsPatch};
use bus_core::store::documents::{DocumentInput, DocumentPatch};
use bus_core::store::objects::{ObjectInput, ObjectPatch};
use connector_abi::{DocumentData, ObjectData};
use schemars::generate::SchemaGenerator;
use schemars::{JsonSchema, Schema};
use serde_json::Value;

/// Makes the schema of one type (a `$ref` into the components, or inline).
pub(super) type SchemaOf = fn(&mut SchemaGenerator) -> Schema;

fn of<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// One route: method, path, handler, and its description.
pub(super) struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub handler: MethodRouter<AppState>,
    /// The handler's path (`tasks::list_outgoing`): its `operationId` is
    /// `tasks_list_outgoing`, its tag the module (`tasks`).
    pub handler_name: &'static [&'static str],
    pub summary: &'static str,
    /// The query parameters (a struct whose fields are the parameters).
    pub query: Option<SchemaOf>,
    pub body: Option<SchemaOf>,
    /// The success status and its body (none for 204, text for /metrics).
    pub status: u16,
    pub answer: Answer,
    /// Statuses besides the success one that carry a body other than
    /// `Error` (`/health?probe=ready` answers 503 with the health report).
    pub other: Option<(u16, SchemaOf)>,
    /// Error statuses this route answers itself (with `{"error": …}`);
    /// those of the layers every route passes (host, token, origin, body,
    /// storage) are added by the document from the route's shape.
    pub errors: &'static [u16],
    /// Response headers of the success answer: name and description.
    pub headers: &'static [(&'static str, &'static str)],
    pub listed: Listed,
}

/// What a route answers on success.
pub(super) enum Answer {
    Json(SchemaOf),
    Text,
    /// `text/event-stream` (Server-Sent Events).
    EventStream,
    Nothing,
}

/// Whether the OpenAPI document lists the route.
#[derive(PartialEq, Eq)]
pub(super) enum Listed {
    Api,
    /// The management UI's page and assets: served, not part of the API.
    Ui,
}

/// `route!(get "/path", module::handler, "summary")`: a route whose
/// operation is named after its handler.
macro_rules! route {
    ($method:ident $path:literal, $($handler:ident)::+, $summary:expr) => {
        Route {
            method: stringify!($method),
            path: $path,
            handler: axum::routing::$method($($handler)::+),
            handler_name: &[$(stringify!($handler)),+],
            summary: $summary,
            query: None,
            body: None,
            status: 200,
            answer: Answer::Nothing,
            other: None,
            errors: &[],
            headers: &[],
            listed: Listed::Api,
        }
    };
}

impl Route {
    fn answers(mut self, status: u16, answer: Answer) -> Route {
        self.status = status;
        self.answer = answer;
        self
    }
    fn query(mut self, q: SchemaOf) -> Route {
        self.query = Some(q);
        self
    }
    fn body(mut self, b: SchemaOf) -> Route {
        self.body = Some(b);
        self
    }
    fn ui(mut self) -> Route {
        self.listed = Listed::Ui;
        self
    }
    /// The error statuses the handler itself can answer.
    fn errors(mut self, errors: &'static [u16]) -> Route {
        self.errors = errors;
        self
    }
    fn otherwise(mut self, status: u16, schema: SchemaOf) -> Route {
        self.other = Some((status, schema));
        self
    }
    fn headers(mut self, headers: &'static [(&'static str, &'static str)]) -> Route {
        self.headers = headers;
        self
    }

    /// The `operationId`: the handler's path with `_` for `::`.
    pub fn operation_id(&self) -> String {
        self.handler_name.join("_")
    }

    /// The tag: the handler's module (`meta` for the router's own).
    pub fn tag(&self) -> &'static str {
        if self.handler_name.len() > 1 {
            self.handler_name[0]
        } else {
            "meta"
        }
    }
}

use Answer::{EventStream, Json as J, Nothing, Text};

/// Every route the daemon serves.
#[rustfmt::skip]
pub(super) fn table() -> Vec<Route> {
    vec![
        route!(get "/", ui::index, "The management UI").ui(),
        route!(get "/ui/app.js", ui::script, "The management UI's script").ui(),
        route!(get "/ui/app.css", ui::style, "The management UI's style sheet").ui(),
        route!(get "/api/connectors", connectors::list, "The registered connectors with their load state (grid: `sort`, `order`, `search`, `offset`; total in `X-Total-Count`)").answers(200, J(of::<Vec<connectors::ConnectorView>>)).query(of::<connectors::ListParams>).errors(&[400]).headers(&[("X-Total-Count", "How many connectors match the grid's search in all (this page holds at most `limit`)")]),
        route!(post "/api/connectors", connectors::create, "Register a connector (all connectors are reinitialized)").answers(201, J(of::<connectors::ConnectorView>)).body(of::<NewConnector>).errors(&[409, 422]),
        route!(get "/api/connectors/{name}", connectors::get, "One connector").answers(200, J(of::<connectors::ConnectorView>)).errors(&[404]),
        route!(get "/api/connectors/{name}/state", state::list, "The state the bus keeps for a connector (what it wrote with `Host::state_put`), in key order; paged by `after`").answers(200, J(of::<state::Page>)).query(of::<state::Params>).errors(&[400, 404]),
        route!(put "/api/connectors/{name}", connectors::update, "Change a connector (all connectors are reinitialized)").answers(200, J(of::<connectors::ConnectorView>)).body(of::<ConnectorPatch>).errors(&[404, 409, 422]),
        route!(delete "/api/connectors/{name}", connectors::delete, "Unregister a connector; with queued tasks only with `discard_queue=true` (409 otherwise)").answers(204, Nothing).query(of::<connectors::DeleteParams>).errors(&[400, 404, 409]),
        route!(post "/api/connectors/{name}/incoming", incoming::log, "Log an incoming task for a connector").answers(201, J(of::<incoming::Logged>)).body(of::<incoming::IncomingBody>).errors(&[404, 409, 422]),
        route!(post "/api/integration/notify", incoming::notify, "Start processing incoming tasks, of one connector or all").answers(202, J(of::<incoming::Started>)).query(of::<incoming::NotifyParams>).errors(&[400, 404, 409]),
        route!(get "/api/settings", settings::get, "The five settings").answers(200, J(of::<Settings>)),
        route!(put "/api/settings", settings::put, "Change settings").answers(200, J(of::<Settings>)).body(of::<SettingsPatch>).errors(&[422]),
        route!(get "/api/object-types", content::object_types, "The object types and document classes, with their foreign keys").answers(200, J(of::<content::TypesView>)),
        route!(get "/api/objects/{type}", content::list_objects, "Objects of a type").answers(200, J(of::<content::Page<ObjectData>>)).query(of::<content::ObjectListParams>).errors(&[400, 404]),
        route!(post "/api/objects/{type}", content::create_object, "Create an object").answers(201, J(of::<ChangeResult>)).body(of::<ObjectInput>).errors(&[404, 409, 422]),
        route!(get "/api/objects/{type}/{id}", content::get_object, "One object").answers(200, J(of::<ObjectData>)).errors(&[404]),
        route!(put "/api/objects/{type}/{id}", content::update_object, "Update an object (fields are merged; a field set to `null` is removed)").answers(200, J(of::<ChangeResult>)).body(of::<ObjectPatch>).errors(&[404, 409, 422]),
        route!(delete "/api/objects/{type}/{id}", content::delete_object, "Delete an object with its children and bindings").answers(200, J(of::<ChangeResult>)).errors(&[404, 409]),
        route!(post "/api/objects/{type}/{id}/sites/{site}", content::add_to_site, "Add an object to a site").answers(200, J(of::<ChangeResult>)).errors(&[404, 409, 422]),
        route!(delete "/api/objects/{type}/{id}/sites/{site}", content::remove_from_site, "Remove an object from a site").answers(200, J(of::<ChangeResult>)).errors(&[404, 409, 422]),
        route!(get "/api/documents", content::list_documents, "Documents").answers(200, J(of::<content::Page<DocumentData>>)).query(of::<content::ListParams>).errors(&[400, 404]),
        route!(post "/api/documents", content::create_document, "Create a document or a new culture version").answers(201, J(of::<ChangeResult>)).body(of::<DocumentInput>).errors(&[404, 409, 422]),
        route!(get "/api/documents/{id}", content::get_document, "One document").answers(200, J(of::<DocumentData>)).errors(&[404]),
        route!(put "/api/documents/{id}", content::update_document, "Update a document").answers(200, J(of::<ChangeResult>)).body(of::<DocumentPatch>).errors(&[404, 409, 422]),
        route!(delete "/api/documents/{id}", content::delete_document, "Delete a document").answers(200, J(of::<ChangeResult>)).errors(&[404, 409]),
        route!(post "/api/documents/{id}/publish", content::publish_document, "Publish a document").answers(200, J(of::<ChangeResult>)).errors(&[404, 409]),
        route!(post "/api/documents/{id}/archive", content::archive_document, "Archive a document").answers(200, J(of::<ChangeResult>)).errors(&[404, 409]),
        route!(post "/api/batch", content::batch, "Apply many changes in one transaction").answers(200, J(of::<content::BatchResult>)).body(of::<content::Batch>).errors(&[404, 409, 422]),
        route!(post "/api/dry-run", content::dry_run, "What one change would do: the connectors it would reach, how, and the exact document each would receive; nothing is written and no connector is called").answers(200, J(of::<bus_core::pipeline::DryRun>)).body(of::<bus_core::change::Change>).errors(&[404, 409, 422]),
        route!(get "/api/tasks/outgoing", tasks::list_outgoing, "The outgoing queue, oldest first (or a grid page)").answers(200, J(of::<tasks::TaskPage>)).query(of::<tasks::ListParams>).errors(&[400, 404]),
        route!(get "/api/tasks/incoming", tasks::list_incoming, "The incoming queue, oldest first (or a grid page)").answers(200, J(of::<tasks::TaskPage>)).query(of::<tasks::ListParams>).errors(&[400, 404]),
        route!(get "/api/tasks/outgoing/count", tasks::count_outgoing, "How many outgoing tasks wait").answers(200, J(of::<tasks::Count>)).query(of::<tasks::CountParams>).errors(&[404]),
        route!(get "/api/tasks/incoming/count", tasks::count_incoming, "How many incoming tasks wait").answers(200, J(of::<tasks::Count>)).query(of::<tasks::CountParams>).errors(&[404]),
        route!(post "/api/tasks/outgoing/synchronize", tasks::synchronize_outgoing, "Synchronize selected or all outgoing tasks, in creation order").answers(200, J(of::<tasks::SyncReport>)).body(of::<tasks::Bulk>).errors(&[400, 404, 409, 422]),
        route!(post "/api/tasks/incoming/synchronize", tasks::synchronize_incoming, "Synchronize selected or all incoming tasks, in creation order").answers(200, J(of::<tasks::SyncReport>)).body(of::<tasks::Bulk>).errors(&[400, 404, 409, 422]),
        route!(post "/api/tasks/outgoing/delete", tasks::delete_outgoing, "Delete selected or all outgoing tasks").answers(200, J(of::<tasks::DeleteReport>)).body(of::<tasks::Bulk>).errors(&[400, 404, 422]),
        route!(post "/api/tasks/incoming/delete", tasks::delete_incoming, "Delete selected or all incoming tasks").answers(200, J(of::<tasks::DeleteReport>)).body(of::<tasks::Bulk>).errors(&[400, 404, 422]),
        route!(get "/api/tasks/{id}", tasks::get, "One task with its data and synchronization log").answers(200, J(of::<TaskDetail>)).errors(&[404]),
        route!(delete "/api/tasks/{id}", tasks::delete, "Delete a task (with `connector`: that connector's relation only)").answers(204, Nothing).query(of::<tasks::RowParams>).errors(&[404]),
        route!(get "/api/tasks/{id}/payload", tasks::payload, "The document a connector gets for the task").answers(200, J(of::<Value>)).query(of::<tasks::PayloadParams>).errors(&[404]),
        route!(post "/api/tasks/{id}/synchronize", tasks::synchronize_one, "Synchronize one task (with `connector`: for that connector only)").answers(200, J(of::<tasks::SyncReport>)).query(of::<tasks::RowParams>).errors(&[404, 409]),
        route!(get "/api/history", history::get, "Each connector's history, a figure per minute up to the current one (`delivered`, `failed`, `depth`; default the last 15 minutes, at most a day)").answers(200, J(of::<history::HistoryView>)).query(of::<history::Params>).errors(&[400, 404]),
        route!(get "/api/eventlog", eventlog::list, "The event log, newest first (or a grid page)").answers(200, J(of::<eventlog::Page>)).query(of::<eventlog::Params>).errors(&[400]),
        route!(get "/api/scheduled-tasks", schedule::list, "Scheduled tasks").answers(200, J(of::<Vec<ScheduledTask>>)),
        route!(get "/api/scheduled-tasks/{name}", schedule::get, "One scheduled task").answers(200, J(of::<ScheduledTask>)).errors(&[404]),
        route!(put "/api/scheduled-tasks/{name}", schedule::update, "Change a scheduled task's interval or enabled flag").answers(200, J(of::<ScheduledTask>)).body(of::<schedule::Update>).errors(&[404, 422]),
        route!(post "/api/scheduled-tasks/{name}/execute", schedule::execute, "Execute a scheduled task now").answers(200, J(of::<ScheduledTask>)).errors(&[404, 409]),
        route!(post "/api/login", auth::login, "Log in with the access token (sets the session cookie)").answers(204, Nothing).body(of::<super::auth::Login>).errors(&[401, 429]).headers(&[("Set-Cookie", "The session cookie (`bus_session`, HttpOnly, SameSite=Strict); a request that changes something with it also sends `X-Bus-Csrf: 1`")]),
        route!(post "/api/logout", auth::logout, "End the session").answers(204, Nothing).headers(&[("Set-Cookie", "Clears the session cookie")]),
        route!(get "/api/cluster", cluster::view, "The daemons sharing the PostgreSQL database, their leases and last heartbeats (404 on SQLite)").answers(200, J(of::<bus_core::cluster::ClusterView>)).errors(&[404]),
        route!(post "/api/cluster/connectors/{name}/call", cluster::call, "Between daemons: one encoded request for a connector that runs on this daemon").answers(200, J(of::<Value>)).body(of::<Value>).errors(&[404, 409, 502]),
        route!(get "/api/openapi.json", openapi_json, "This document").answers(200, J(of::<Value>)),
        route!(get "/health", health::health, "Liveness and readiness (`probe=ready` answers 503 when not ready)").answers(200, J(of::<health::Health>)).query(of::<health::Params>).errors(&[400]).otherwise(503, of::<health::Health>),
        route!(get "/metrics", metrics::metrics, "Prometheus metrics (text)").answers(200, Text).errors(&[503]),
        route!(get "/api/events", events::stream, "What changed, as Server-Sent Events (`change` with a JSON list of `queues`, `connectors`, `eventlog`, `settings`, `history`); a stream lasts at most 25 s and the browser reconnects; 406 without `Accept: text/event-stream`").answers(200, EventStream).errors(&[406, 503]),
    ]
}

async fn openapi_json() -> Json<Value> {
    Json(openapi::document(&table()))
}
