//! `/modules`: upload (raw `application/wasm` or multipart), list, show, delete.
//!
//! An upload's module is its `file` field, whichever way it is sent (DRF's
//! `FileUploadParser` names a raw body's file `file` too): a module refused for what it is
//! answers `{"file": ["..."]}`.

use std::sync::Arc;

use axum::extract::{FromRequest, Request, State};
use axum::http::{header, StatusCode};
use axum::Extension;
use serde::{Deserialize, Serialize};
use tokio::sync::OwnedSemaphorePermit;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorDetail, ValidationErrors};
use super::extract::{IdPath, ObjectId, Params};
use super::pagination::{list_page, PageQuery, Paginated};
use super::AppState;
use crate::keyed::KeyedSemaphores;
use crate::modules::ModuleError;
use crate::runtime::{LoadError, DEFAULT_MAX_MODULE_BYTES};
use crate::store::modules::{DeleteOutcome, Module, ModuleOrder, ModuleStatus};

/// The `ordering` values of the modules list.
const ORDERINGS: &[(&str, ModuleOrder)] = &[
    ("id", ModuleOrder::Id),
    ("name", ModuleOrder::Name),
    ("size", ModuleOrder::Size),
    ("created_at", ModuleOrder::CreatedAt),
];

/// The largest upload body: the largest module plus room for multipart framing.
pub const MAX_UPLOAD_BYTES: usize = DEFAULT_MAX_MODULE_BYTES + 64 * 1024;

/// Uploads one organization may have under way at once (read, checked, compiled).
const UPLOADS_PER_ORGANIZATION: usize = 4;
/// Uploads the installation reads at once: each body is held whole in memory (up to
/// [`MAX_UPLOAD_BYTES`]) until its module is stored, so this bounds what uploads take
/// (1 GiB at most) whoever sends them. Four organizations' places together; and no upload
/// holds a place longer than [`UPLOAD_READ_DEADLINE`] while its body comes.
const UPLOADS_AT_ONCE: usize = 16;
/// How long an upload's body may take to arrive (64 MiB at half a MiB a second): a body
/// trickled in would otherwise hold its place, the organization's and everyone's, for as
/// long as its sender likes. Past it the upload is answered 408.
const UPLOAD_READ_DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

/// The places of uploads under way: a few per organization, a few in all. Without them an
/// admin's many connections at once would each hold 64 MiB of body before any quota or
/// compile gate looked at it. An upload that finds no place is answered 429 before a byte
/// of its body is read.
#[derive(Debug)]
pub struct UploadPlaces {
    per_organization: KeyedSemaphores<u64>,
    all: Arc<tokio::sync::Semaphore>,
}

impl Default for UploadPlaces {
    fn default() -> Self {
        UploadPlaces {
            per_organization: KeyedSemaphores::new(UPLOADS_PER_ORGANIZATION),
            all: Arc::new(tokio::sync::Semaphore::new(UPLOADS_AT_ONCE)),
        }
    }
}

impl UploadPlaces {
    /// A place for an upload of `organization_id`, held until the upload is answered.
    fn take(
        &self,
        organization_id: u64,
    ) -> ApiResult<(OwnedSemaphorePermit, OwnedSemaphorePermit)> {
        let busy = |detail: &str| ApiError::TooManyRequests {
            detail: detail.to_owned(),
            retry_after_s: 1,
        };
        let own = self
            .per_organization
            .try_acquire_many(organization_id, 1)
            .map_err(|_| {
                busy(&format!(
                    "the organization has {UPLOADS_PER_ORGANIZATION} uploads under way; retry when one is answered"
                ))
            })?;
        let shared = Arc::clone(&self.all)
            .try_acquire_owned()
            .map_err(|_| busy("too many uploads are under way; retry shortly"))?;
        Ok((own, shared))
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct UploadQuery {
    /// The module's name, when the multipart form has no `name` (a raw upload's only way
    /// to name it); else the file's name, else `module.wasm`.
    name: Option<String>,
}

/// An upload as a multipart form (`file` or `module`, and optionally `name`); a raw
/// `application/wasm` or `application/octet-stream` body is the module itself.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub(super) struct ModuleUpload {
    /// The module's bytes (a core module or a component).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// 1 to 200 characters.
    name: Option<String>,
}

/// The compile state of an uploaded module.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub(super) enum ModuleStatusView {
    /// Being compiled in the background.
    Pending,
    /// Compiled; hooks may run it.
    Ready,
    /// Refused by the compiler: `error` says why.
    Failed,
}

/// A module of the organization's library.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ModuleView {
    id: u64,
    url: String,
    name: String,
    organization: String,
    /// The hex SHA-256 of its bytes.
    sha256: String,
    /// Its size in bytes.
    size: u64,
    /// `pending`, `ready` or `failed`.
    #[schema(value_type = ModuleStatusView)]
    status: &'static str,
    /// Why it failed to compile.
    error: Option<String>,
    /// `component` or `module`.
    kind: Option<String>,
    encoding: Option<String>,
    imports: Vec<String>,
    exports: Vec<String>,
    created_at: String,
}

fn render(state: &AppState, module: &Module) -> ModuleView {
    ModuleView {
        id: module.id,
        url: state.url("modules", module.id),
        name: module.name.clone(),
        organization: state.url("organizations", module.organization_id),
        sha256: module.sha256.clone(),
        size: module.size,
        status: module.status.as_str(),
        error: module.error.clone(),
        kind: module.kind.clone(),
        encoding: module.encoding.clone(),
        imports: module.imports.clone(),
        exports: module.exports.clone(),
        created_at: module.created_at.clone(),
    }
}

fn too_large() -> ApiError {
    ApiError::PayloadTooLarge(DEFAULT_MAX_MODULE_BYTES)
}

/// A multipart field sent twice: which one would count is a guess the API does not make.
fn duplicate_field(name: &str) -> ApiError {
    ApiError::field(
        name,
        "sent more than once; an upload has one `file` (or `module`) and one `name`",
    )
}

/// A multipart body that cannot be read, worded as DRF's `MultiPartParser` words it.
fn unreadable_multipart(reason: &str) -> ApiError {
    ApiError::Parse(format!("Multipart form parse error - {reason}"))
}

/// How long a refused body is read and thrown away after its 413 is answered.
const LINGER: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads a refused body to its end (at most `declared` bytes, for at most [`LINGER`]) and throws
/// it away, after the 413 is already on its way.
///
/// Closing a connection with unread bytes in its receive buffer makes the kernel reset it, and
/// a client still writing its upload may then lose the 413 to a "connection reset" (nginx's
/// lingering close exists for the same reason). Holding the body keeps hyper reading it, so the
/// connection closes cleanly once the client has sent what it declared; nothing is buffered.
fn discard_in_background(body: axum::body::Body, declared: u64) {
    use futures::StreamExt;
    tokio::spawn(async move {
        let mut stream = body.into_data_stream();
        let mut read = 0u64;
        let drain = async {
            while let Some(Ok(chunk)) = stream.next().await {
                read += chunk.len() as u64;
                if read >= declared {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(LINGER, drain).await;
    });
}

/// Reads the rest of a refused multipart body (for at most [`LINGER`]) and throws it away,
/// after the 400 is on its way: as [`discard_in_background`], so that the client reads
/// the answer rather than a connection reset. Nothing is buffered.
fn discard_multipart_in_background(mut multipart: axum::extract::Multipart) {
    tokio::spawn(async move {
        let drain = async {
            while let Ok(Some(mut field)) = multipart.next_field().await {
                while let Ok(Some(_)) = field.chunk().await {}
            }
        };
        let _ = tokio::time::timeout(LINGER, drain).await;
    });
}

/// A multipart upload: a `file` (or `module`) field, and an optional `name`.
async fn read_multipart(
    state: &AppState,
    request: Request,
    query_name: Option<String>,
) -> ApiResult<(String, bytes::Bytes)> {
    let mut multipart = axum::extract::Multipart::from_request(request, state)
        .await
        .map_err(|rejection| unreadable_multipart(&rejection.body_text()))?;
    // Each field at most once: a second one is refused (before it is read) rather than
    // silently winning over the first.
    let mut name_field: Option<String> = None;
    let mut file_name: Option<String> = None;
    let mut file: Option<bytes::Bytes> = None;
    let mut duplicate: Option<&str> = None;
    while let Some(field) = multipart.next_field().await.map_err(|error| {
        if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            unreadable_multipart(&error.body_text())
        }
    })? {
        match field.name() {
            Some("name") if name_field.is_some() => {
                duplicate = Some("name");
                break;
            }
            Some("file") if file.is_some() => {
                duplicate = Some("file");
                break;
            }
            Some("module") if file.is_some() => {
                duplicate = Some("module");
                break;
            }
            Some("name") => {
                name_field = Some(
                    field
                        .text()
                        .await
                        .map_err(|error| ApiError::field("name", error.body_text()))?,
                );
            }
            Some("file" | "module") => {
                file_name = field.file_name().map(str::to_owned);
                let bytes = field.bytes().await.map_err(|error| {
                    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        too_large()
                    } else {
                        ApiError::field("file", error.body_text())
                    }
                })?;
                file = Some(bytes);
            }
            Some(other) => {
                return Err(ApiError::field(
                    other,
                    "not a field of an upload; send `file` and optionally `name`",
                ))
            }
            None => {}
        }
    }
    if let Some(field) = duplicate {
        discard_multipart_in_background(multipart);
        return Err(duplicate_field(field));
    }
    let file = file.ok_or_else(|| {
        ApiError::field(
            "file",
            "No file was submitted: send the module as a multipart field named `file`.",
        )
    })?;
    // The `name` field, else `?name=`, else the file's own name.
    let name = name_field.or(query_name).or(file_name);
    Ok((name.unwrap_or_else(|| "module.wasm".into()), file))
}

/// The body's length as its `Content-Length` declares it, when it does.
fn declared_length(request: &Request) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
}

/// Reads the module's bytes and name from a raw or a multipart body.
async fn read_upload(
    state: &AppState,
    request: Request,
    query_name: Option<String>,
) -> ApiResult<(String, bytes::Bytes)> {
    // A body declared too large is refused before a byte of it is read into memory.
    let declared = declared_length(&request);
    if let Some(length) = declared.filter(|&length| length > MAX_UPLOAD_BYTES as u64) {
        discard_in_background(request.into_body(), length);
        return Err(too_large());
    }
    let sent_type = super::json::content_type(request.headers());
    let content_type = sent_type.to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        read_multipart(state, request, query_name).await
    } else if content_type.starts_with("application/wasm")
        || content_type.starts_with("application/octet-stream")
    {
        let bytes = axum::body::to_bytes(request.into_body(), MAX_UPLOAD_BYTES)
            .await
            .map_err(|_| too_large())?;
        Ok((query_name.unwrap_or_else(|| "module.wasm".into()), bytes))
    } else {
        // The module is sent as `application/wasm` or as multipart/form-data.
        Err(ApiError::UnsupportedMediaType(sent_type))
    }
}

/// Refuses (409) a new module of `size` bytes that would take the organization past its
/// module count or bytes: for an upload, and for the module row a hook made from a
/// template brings. Asked early, before a body is read or a module compiled; the row's
/// transaction asks again, and decides ([`NewModule::quota`]).
///
/// [`NewModule::quota`]: crate::store::modules::NewModule::quota
pub(super) async fn within_quotas(
    state: &AppState,
    organization_id: u64,
    size: u64,
) -> ApiResult<()> {
    let (count, used) = state.store.modules().usage(organization_id).await?;
    match state.quotas.of_modules().refusal(count, used, size) {
        Some(reason) => Err(ApiError::Conflict(reason)),
        None => Ok(()),
    }
}

/// Why the module library did not take a module's bytes, as the API answers it.
pub(super) fn refused(error: ModuleError) -> ApiError {
    match error {
        ModuleError::Invalid(LoadError::TooLarge { .. }) => too_large(),
        ModuleError::Invalid(invalid) => ApiError::field("file", invalid.to_string()),
        ModuleError::Store(store) => store.into(),
        ModuleError::Refused(busy) => busy.into(),
        other => ApiError::Internal(other.to_string()),
    }
}

#[utoipa::path(post, path = "/api/v1/modules", tag = "modules", params(UploadQuery),
    request_body(description = "The module: a multipart form, or its bytes as the body",
        content(
            (ModuleUpload = "multipart/form-data"),
            (Vec<u8> = "application/wasm"),
            (Vec<u8> = "application/octet-stream"),
        )),
    responses(
        (status = 201, description = "Stored and compiled", body = ModuleView),
        (status = 202, description = "Stored; compiling in the background (status: pending)", body = ModuleView),
        (status = 400, description = "Not a valid module, or a field is not valid", body = ValidationErrors),
        (status = 403, description = "Not an admin", body = ErrorDetail),
        (status = 409, description = "The organization is at its module quota", body = ErrorDetail),
        (status = 408, description = "The body did not arrive within 120 seconds", body = ErrorDetail),
        (status = 413, description = "Larger than the module limit", body = ErrorDetail),
        (status = 415, description = "Neither multipart nor a wasm body", body = ErrorDetail),
        (status = 429, description = "The compiler is busy, or the organization's (or the installation's) uploads under way are at their bound: retry after Retry-After", body = ErrorDetail,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn upload(
    State(state): State<AppState>,
    Extension(places): Extension<Arc<UploadPlaces>>,
    caller: Caller,
    Params(query): Params<UploadQuery>,
    request: Request,
) -> ApiResult<(StatusCode, axum::Json<ModuleView>)> {
    let (organization_id, _) = caller.admin()?;
    // Refused before its body is read: the body is drained behind the answer, so that a
    // client still sending it reads the answer rather than a reset connection.
    let refusal = match places.take(organization_id) {
        // An organization at its module count is told so before its body is read too.
        Ok(place) => within_quotas(&state, organization_id, 0)
            .await
            .map(|()| place),
        Err(busy) => Err(busy),
    };
    let _place = match refusal {
        Ok(place) => place,
        Err(refused) => {
            let declared = declared_length(&request).unwrap_or(MAX_UPLOAD_BYTES as u64);
            discard_in_background(request.into_body(), declared);
            return Err(refused);
        }
    };
    let (name, bytes) = tokio::time::timeout(
        UPLOAD_READ_DEADLINE,
        read_upload(&state, request, query.name),
    )
    .await
    .map_err(|_| ApiError::RequestTimeout(UPLOAD_READ_DEADLINE.as_secs()))??;
    let name = name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::field("name", "must be 1 to 200 characters"));
    }
    if bytes.len() > DEFAULT_MAX_MODULE_BYTES {
        return Err(too_large());
    }
    within_quotas(&state, organization_id, bytes.len() as u64).await?;
    let module = state
        .library
        .add(organization_id, name, bytes, state.quotas.of_modules())
        .await
        .map_err(refused)?;
    let status = if module.status == ModuleStatus::Pending {
        StatusCode::ACCEPTED
    } else {
        StatusCode::CREATED
    };
    Ok((status, axum::Json(render(&state, &module))))
}

#[utoipa::path(get, path = "/api/v1/modules", tag = "modules", params(PageQuery),
    responses(
        (status = 200, description = "The organization's modules (ordering: id, name, size, created_at)", body = Paginated<ModuleView>),
        (status = 400, description = "A parameter is not valid", body = ValidationErrors),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Params(query): Params<PageQuery>,
) -> ApiResult<axum::Json<Paginated<ModuleView>>> {
    let only = caller.organization();
    let store = &state.store;
    list_page(
        &state,
        "modules",
        &query,
        ORDERINGS,
        move |window| async move { store.modules().list(only, window).await },
        |row| render(&state, row),
    )
    .await
}

async fn visible(state: &AppState, caller: &Caller, id: u64) -> ApiResult<Module> {
    super::extract::visible(caller, state.store.modules().get(id).await?)
}

#[utoipa::path(get, path = "/api/v1/modules/{id}", tag = "modules", params(IdPath),
    responses(
        (status = 200, description = "The module", body = ModuleView),
        (status = 404, description = "No such module in the caller's organization", body = ErrorDetail),
    ))]
pub(super) async fn show(
    State(state): State<AppState>,
    caller: Caller,
    ObjectId(id): ObjectId,
) -> ApiResult<axum::Json<ModuleView>> {
    let module = visible(&state, &caller, id).await?;
    Ok(axum::Json(render(&state, &module)))
}

#[utoipa::path(delete, path = "/api/v1/modules/{id}", tag = "modules", params(IdPath),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not an admin", body = ErrorDetail),
        (status = 404, description = "No such module in the caller's organization", body = ErrorDetail),
        (status = 409, description = "Hooks still use it", body = ErrorDetail),
    ))]
pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ObjectId(id): ObjectId,
) -> ApiResult<StatusCode> {
    let module = visible(&state, &caller, id).await?;
    caller.admin()?;
    let outcome = state.store.modules().delete(&module).await?;
    match outcome {
        DeleteOutcome::InUse(hooks) => {
            let urls: Vec<String> = hooks.iter().map(|id| state.url("hooks", *id)).collect();
            Err(ApiError::Conflict(format!(
                "the module is used by hooks {}; change or delete them first",
                urls.join(", ")
            )))
        }
        DeleteOutcome::Deleted { last_copy } => {
            if last_copy {
                state.library.forget(&module.sha256).await;
            }
            Ok(StatusCode::NO_CONTENT)
        }
    }
}
