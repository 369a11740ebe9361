//! Object and document routes: changes (each logs its outgoing tasks in the
//! same transaction) and reads.

use super::error::{blocking, ApiError, ApiJson, ApiPath, ApiQuery};
use super::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use bus_core::change::Change;
use bus_core::pipeline::ChangeResult;
use bus_core::store::documents::{self, DocumentInput, DocumentPatch};
use bus_core::store::objects::{self, ObjectInput, ObjectPatch};
use connector_abi::{DocumentData, ObjectData};
use serde::{Deserialize, Serialize};

pub const MAX_PAGE: u32 = 1000;

async fn apply(s: AppState, change: Change) -> Result<Json<ChangeResult>, ApiError> {
    Ok(Json(blocking(move || Ok(s.pipeline.apply(change, None)?)).await?))
}

async fn created(s: AppState, change: Change) -> Result<(StatusCode, Json<ChangeResult>), ApiError> {
    Ok((StatusCode::CREATED, apply(s, change).await?))
}

pub async fn create_object(
    State(s): State<AppState>,
    ApiPath(object_type): ApiPath<String>,
    ApiJson(object): ApiJson<ObjectInput>,
) -> Result<(StatusCode, Json<ChangeResult>), ApiError> {
    created(s, Change::CreateObject { object_type, object }).await
}

pub async fn update_object(
    State(s): State<AppState>,
    ApiPath((object_type, id)): ApiPath<(String, i64)>,
    ApiJson(patch): ApiJson<ObjectPatch>,
) -> Result<Json<ChangeResult>, ApiError> {
    apply(s, Change::UpdateObject { object_type, id, patch }).await
}

pub async fn delete_object(
    State(s): State<AppState>,
    ApiPath((object_type, id)): ApiPath<(String, i64)>,
) -> Result<Json<ChangeResult>, ApiError> {
    apply(s, Change::DeleteObject { object_type, id }).await
}

pub async fn add_to_site(
    State(s): State<AppState>,
    ApiPath((object_type, id, site_name)): ApiPath<(String, i64, String)>,
) -> Result<Json<ChangeResult>, ApiError> {
    apply(s, Change::AddToSite { object_type, id, site_name }).await
}

pub async fn remove_from_site(
    State(s): State<AppState>,
    ApiPath((object_type, id, site_name)): ApiPath<(String, i64, String)>,
) -> Result<Json<ChangeResult>, ApiError> {
    apply(s, Change::RemoveFromSite { object_type, id, site_name }).await
}

pub async fn create_document(
    State(s): State<AppState>,
    ApiJson(document): ApiJson<DocumentInput>,
) -> Result<(StatusCode, Json<ChangeResult>), ApiError> {
    created(s, Change::CreateDocument { document }).await
}

pub async fn update_document(
    State(s): State<AppState>,
    ApiPath(document_id): ApiPath<i64>,
    ApiJson(patch): ApiJson<DocumentPatch>,
) -> Result<Json<ChangeResult>, ApiError> {
    apply(s, Change::UpdateDocument { document_id, patch }).await
}

pub async fn delete_document(
    State(s): State<AppState>,
    ApiPath(document_id): ApiPath<i64>,
) -> Result<Json<ChangeResult>, ApiError> {
    apply(s, Change::DeleteDocument { document_id }).await
}

pub async fn publish_document(
    State(s): State<AppState>,
    ApiPath(document_id): ApiPath<i64>,
) -> Result<Json<ChangeResult>, ApiError> {
    apply(s, Change::PublishDocument { document_id }).await
}

pub async fn archive_document(
    State(s): State<AppState>,
    ApiPath(document_id): ApiPath<i64>,
) -> Result<Json<ChangeResult>, ApiError> {
    apply(s, Change::ArchiveDocument { document_id }).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(schemars::JsonSchema)]
pub struct Batch {
    /// Applied in order, in one transaction: all, or none.
    #[schemars(length(min = 1, max = 10000))]
    pub changes: Vec<Change>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct BatchResult {
    pub results: Vec<ChangeResult>,
}

/// Many changes in one transaction: all are applied, or none.
pub async fn batch(State(s): State<AppState>, ApiJson(batch): ApiJson<Batch>) -> Result<Json<BatchResult>, ApiError> {
    if batch.changes.is_empty() {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "the batch has no changes"));
    }
    if batch.changes.len() > 10_000 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("a batch holds at most 10000 changes, not {}", batch.changes.len()),
        ));
    }
    let results = blocking(move || Ok(s.pipeline.apply_all(batch.changes, None)?)).await?;
    Ok(Json(BatchResult { results }))
}

/// What one change (the body of one `/api/batch` element) would do: it is
/// applied and its tasks logged in a transaction that is rolled back, so
/// the answer is exactly what the change would cause now; nothing is
/// written and no connector is called.
pub async fn dry_run(
    State(s): State<AppState>,
    ApiJson(change): ApiJson<Change>,
) -> Result<Json<bus_core::pipeline::DryRun>, ApiError> {
    Ok(Json(blocking(move || Ok(s.pipeline.dry_run(change)?)).await?))
}

/// The query of a document listing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(schemars::JsonSchema)]
pub struct ListParams {
    /// Only documents of this site.
    site: Option<String>,
    /// Only documents at or under this alias path.
    path: Option<String>,
    /// The `next_after` of the previous page.
    after: Option<i64>,
    /// How many rows at most (default 100).
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<u32>,
}

/// The query of an object listing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(schemars::JsonSchema)]
pub struct ObjectListParams {
    /// Only objects of this site.
    site: Option<String>,
    /// The `next_after` of the previous page.
    after: Option<i64>,
    /// How many rows at most (default 100).
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<u32>,
}

/// A page of items and the cursor of the next one.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(rename = "Page_of_{T}")]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<i64>,
}

pub fn limit(requested: Option<u32>) -> Result<u32, ApiError> {
    match requested.unwrap_or(100) {
        0 => Err(ApiError::bad_request(format!("limit must be between 1 and {MAX_PAGE}, not 0"))),
        n if n > MAX_PAGE => Err(ApiError::bad_request(format!("limit must be between 1 and {MAX_PAGE}, not {n}"))),
        n => Ok(n),
    }
}

pub async fn list_objects(
    State(s): State<AppState>,
    ApiPath(object_type): ApiPath<String>,
    ApiQuery(p): ApiQuery<ObjectListParams>,
) -> Result<Json<Page<ObjectData>>, ApiError> {
    let limit = limit(p.limit)?;
    let items = blocking(move || {
        let conn = s.db.connect()?;
        Ok(objects::list(&conn, s.pipeline.types(), &object_type, p.site.as_deref(), p.after.unwrap_or(0), limit)?)
    })
    .await?;
    let next_after = (items.len() == limit as usize).then(|| items.last().map(|o| o.id)).flatten();
    Ok(Json(Page { items, next_after }))
}

pub async fn get_object(
    State(s): State<AppState>,
    ApiPath((object_type, id)): ApiPath<(String, i64)>,
) -> Result<Json<ObjectData>, ApiError> {
    Ok(Json(blocking(move || Ok(objects::get_typed(&*s.db.connect()?, s.pipeline.types(), &object_type, id)?)).await?))
}

pub async fn list_documents(
    State(s): State<AppState>,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Json<Page<DocumentData>>, ApiError> {
    let limit = limit(p.limit)?;
    let items = blocking(move || {
        let conn = s.db.connect()?;
        Ok(documents::list(
            &conn,
            s.pipeline.types(),
            p.site.as_deref(),
            p.path.as_deref(),
            p.after.unwrap_or(0),
            limit,
        )?)
    })
    .await?;
    let next_after = (items.len() == limit as usize).then(|| items.last().map(|d| d.document_id)).flatten();
    Ok(Json(Page { items, next_after }))
}

/// The object types and document classes the content store knows.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct TypesView {
    pub objects: Vec<bus_core::object_types::ObjectType>,
    pub documents: Vec<bus_core::object_types::DocumentClass>,
}

pub async fn object_types(State(s): State<AppState>) -> Json<TypesView> {
    let types = s.pipeline.types();
    Json(TypesView { objects: types.objects().cloned().collect(), documents: types.documents().cloned().collect() })
}

pub async fn get_document(
    State(s): State<AppState>,
    ApiPath(document_id): ApiPath<i64>,
) -> Result<Json<DocumentData>, ApiError> {
    Ok(Json(blocking(move || Ok(documents::get(&*s.db.connect()?, s.pipeline.types(), document_id)?)).await?))
}
