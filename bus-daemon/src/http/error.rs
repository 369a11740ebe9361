//! API errors: a status and a JSON body `{"error": "..."}` that says what is
//! wrong; and extractors whose rejections take the same shape.

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bus_core::db::DbError;
use bus_core::incoming::IncomingError;
use bus_core::pipeline::ChangeError;
use bus_core::registry::RegistryError;
use bus_core::scheduler::SchedulerError;
use bus_core::store::StoreError;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into() }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, error = %self.message, "request failed");
        }
        let mut response = (self.status, Json(serde_json::json!({ "error": self.message }))).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // Unavailable is worth retrying (a 500 is not): say when.
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        let status = match &e {
            RegistryError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            RegistryError::Duplicate(_) | RegistryError::DuplicateIgnoringCase { .. } => StatusCode::CONFLICT,
            RegistryError::NotFound(_) => StatusCode::NOT_FOUND,
            RegistryError::HasQueue { .. } => StatusCode::CONFLICT,
            RegistryError::Db(e) => return db_error(e),
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let status = match &e {
            StoreError::UnknownObjectType { .. }
            | StoreError::UnknownDocumentClass { .. }
            | StoreError::NotFound(_) => StatusCode::NOT_FOUND,
            StoreError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            StoreError::Duplicate(_) | StoreError::Conflict(_) => StatusCode::CONFLICT,
            StoreError::Sql(e) => return sql_error(e),
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<ChangeError> for ApiError {
    fn from(e: ChangeError) -> Self {
        match e {
            ChangeError::Single(s) => s.into(),
            ChangeError::Change { index, source } => {
                let inner: ApiError = source.into();
                let message = if inner.message.contains("nothing was written") {
                    format!("change {index}: {}", inner.message)
                } else {
                    format!("change {index}: {}; nothing was written", inner.message)
                };
                ApiError::new(inner.status, message)
            }
            ChangeError::Db(DbError::Sql(e)) => sql_error(&e),
            ChangeError::Db(e) => {
                let inner = db_error(&e);
                match inner.status {
                    StatusCode::SERVICE_UNAVAILABLE => inner,
                    _ => ApiError::internal(format!("{e}; nothing was written")),
                }
            }
        }
    }
}

impl From<bus_core::sql::SqlError> for ApiError {
    fn from(e: bus_core::sql::SqlError) -> Self {
        sql_error(&e)
    }
}

/// A database failure: busy (another writer holds the lock past the busy
/// timeout) is a 503 the client may retry; anything else a 500.
fn sql_error(e: &bus_core::sql::SqlError) -> ApiError {
    use bus_core::sql::ErrorKind;
    match e.kind() {
        ErrorKind::Busy => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is locked by another writer; nothing was written, retry later",
        ),
        ErrorKind::Disconnected => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the database server cannot be reached ({e}); nothing was written, retry later"),
        ),
        ErrorKind::NoAnswer => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the database server did not answer in time ({e}); if it was committing this change when it stopped \
                 answering, the change may still appear: read it back before retrying"
            ),
        ),
        ErrorKind::Conflict => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the change conflicted with a concurrent one; nothing was written, retry",
        ),
        ErrorKind::Full => ApiError::new(StatusCode::INSUFFICIENT_STORAGE, "the database is full; nothing was written"),
        _ => ApiError::internal(format!("database error: {e}; nothing was written")),
    }
}

impl From<IncomingError> for ApiError {
    fn from(e: IncomingError) -> Self {
        let status = match &e {
            IncomingError::Disabled(_) | IncomingError::NotLoaded(_) => StatusCode::CONFLICT,
            IncomingError::UnknownConnector(_) => StatusCode::NOT_FOUND,
            IncomingError::Connector(_) | IncomingError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            IncomingError::Db(e) => return db_error(e),
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<SchedulerError> for ApiError {
    fn from(e: SchedulerError) -> Self {
        let status = match &e {
            SchedulerError::NotFound(_) => StatusCode::NOT_FOUND,
            SchedulerError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            SchedulerError::Db(e) => return db_error(e),
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        db_error(&e)
    }
}

/// A database failure behind any route, read or write: a server that
/// cannot be reached (down, restarting, refusing connections) is a 503
/// with the reason, as for writes; anything else a 500.
fn db_error(e: &DbError) -> ApiError {
    use bus_core::sql::ErrorKind;
    match e {
        DbError::Sql(e) => sql_error(e),
        DbError::Exhausted { .. } => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("{e}; nothing was written, retry later"))
        }
        DbError::Open { source, .. } if matches!(source.kind(), ErrorKind::Disconnected | ErrorKind::NoAnswer) => {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the database server cannot be reached ({e}); nothing was written, retry later"),
            )
        }
        other => ApiError::internal(other.to_string()),
    }
}

/// The body limit in force, for the 413 message (set once at start-up).
pub static MAX_REQUEST_BYTES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// `Json<T>` whose rejection is an [`ApiError`].
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // Read as raw JSON first: serde also reads a struct from an array of
        // its fields in order (`[null, true]` would be `{"ids": null, "all":
        // true}`), which no client means; every body of this API is an object.
        let raw = match Json::<Box<RawValue>>::from_request(req, state).await {
            Ok(Json(raw)) => raw,
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(rejection) => return Err(ApiError::new(rejection.status(), rejection.body_text())),
        };
        if !raw.get().starts_with('{') {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "the request body must be a JSON object (`{{…}}`), not {}; nothing was written",
                    json_kind(raw.get())
                ),
            ));
        }
        match Json::<T>::from_bytes(raw.get().as_bytes()) {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(ApiError::new(rejection.status(), rejection.body_text())),
        }
    }
}

/// What kind of JSON value a (valid, trimmed) JSON text is, for messages.
fn json_kind(text: &str) -> &'static str {
    match text.as_bytes().first() {
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b'n') => "null",
        Some(b't' | b'f') => "a boolean",
        _ => "a number",
    }
}

/// The 413 answer, naming the limit in force.
pub fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the request body is larger than the limit of {} bytes ([http] max_request_bytes in bus.toml); nothing was written",
            MAX_REQUEST_BYTES.load(std::sync::atomic::Ordering::Relaxed)
        ),
    )
}

/// `Query<T>` whose rejection is an [`ApiError`].
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(ApiError::bad_request(rejection.body_text())),
        }
    }
}

/// `Path<T>` whose rejection is an [`ApiError`].
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(ApiError::bad_request(rejection.body_text())),
        }
    }
}

/// Runs blocking work (SQLite, library loading) off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::internal(format!("the request's work failed: {e}")))?
}
