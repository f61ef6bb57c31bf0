//! `/api/lists`, and a list's people as files: read the lists with their counts, add
//! one, change one; export a list's subscribers as CSV, and import a CSV into a list.

use axum::{
    Extension, Json,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::StatusCode,
    response::Response,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{ApiCaller, ApiJson, created, subscribers::list_named};
use crate::{
    audience::{
        import::{self, ImportRow, Mode, RowStatus},
        lists::ListDetails,
    },
    fields::FieldError,
    store::{MailingList, SubscriberCounts},
    web::{
        AppError, AppState, ErrorBody,
        list_actions::{self, ListRefusal},
        subscriber_actions::{self, ImportNow},
    },
};

/// Report rows an import answers with, at most (the rest are in the web UI's report).
const REPORT_ROWS: usize = 1000;

/// What the checks accept that the derived schemas cannot say: a name is one line with
/// a letter or digit in it; a description may have line breaks; a source note has 10
/// characters or more once trimmed.
pub fn rules(spec: &mut serde_json::Value) {
    use super::issues::{LINE, TEXT, TEXT_INK};
    let name = format!(r"^{LINE}*[A-Za-z0-9]{LINE}*$");
    let text = format!("^{TEXT}*$");
    let note = format!("^{TEXT}*{TEXT_INK}{TEXT}{{8,}}{TEXT_INK}{TEXT}*$");
    let line = format!("^{LINE}*$");
    let schemas = &mut spec["components"]["schemas"];
    for (schema, field, pattern) in [
        ("ListBody", "name", &name),
        ("ListBody", "description", &text),
        ("ListChangesBody", "name", &name),
        ("ListChangesBody", "description", &text),
        ("SubscriberImportBody", "csv", &text),
        ("SubscriberImportBody", "source_note", &note),
        ("SubscriberImportBody", "file_name", &line),
    ] {
        schemas[schema]["properties"][field]["pattern"] = pattern.as_str().into();
    }
    let parameters = spec["paths"]["/api/subscribers/export"]["get"]["parameters"]
        .as_array_mut()
        .into_iter()
        .flatten();
    for parameter in parameters.filter(|p| p["name"] == "list") {
        parameter["schema"]["pattern"] = line.as_str().into();
    }
}

/// A list, with how many of its subscribers are in each status.
#[derive(Serialize, ToSchema)]
pub struct ListView {
    id: Uuid,
    /// Its address in the API and the web UI; it never changes.
    slug: String,
    name: String,
    description: String,
    /// Offered on the sign-up form and the preference page.
    public: bool,
    counts: SubscriberCounts,
}

async fn view(state: &AppState, list: MailingList) -> Result<ListView, AppError> {
    let counts = state.store.subscriber_counts(list.id).await?;
    Ok(ListView {
        id: list.id,
        slug: list.slug,
        name: list.name,
        description: list.description,
        public: list.public,
        counts,
    })
}

fn refused(refusal: ListRefusal) -> AppError {
    match refusal {
        ListRefusal::Conflict(error) => AppError::json(StatusCode::CONFLICT, error.message),
        ListRefusal::NotFound => no_such_list(),
    }
}

fn no_such_list() -> AppError {
    AppError::json(StatusCode::NOT_FOUND, "There is no list with that slug.")
}

#[utoipa::path(
    get,
    path = "/api/lists",
    responses(
        (status = 200, description = "Every list: the first made first, then by name", body = Vec<ListView>),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn list_lists(State(state): State<AppState>) -> Result<Json<Vec<ListView>>, AppError> {
    let mut views = Vec::new();
    for list in state.store.lists().await? {
        views.push(view(&state, list).await?);
    }
    Ok(Json(views))
}

/// A new list; its slug comes from its name.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListBody {
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    #[serde(default)]
    #[schema(max_length = 500)]
    description: String,
    /// Offered on the sign-up form (false: staff add people to it).
    #[serde(default)]
    public: bool,
}

#[utoipa::path(
    post,
    path = "/api/lists",
    request_body = ListBody,
    responses(
        (status = 201, description = "Added", body = ListView),
        (status = 409, description = "There is a list with that slug already", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn create_list(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ListBody>,
) -> Result<Response, AppError> {
    let details = ListDetails::parse(&body.name, &body.description, body.public)
        .map_err(AppError::Invalid)?;
    let list = list_actions::create(&state, &details)
        .await?
        .map_err(refused)?;
    let location = format!("/api/lists/{}", list.slug);
    Ok(created(location, view(&state, list).await?))
}

/// Only the fields given change; the slug stays.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListChangesBody {
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    #[schema(max_length = 500)]
    description: Option<String>,
    public: Option<bool>,
}

#[utoipa::path(
    patch,
    path = "/api/lists/{slug}",
    params(("slug" = String, Path, description = "The list's slug")),
    request_body = ListChangesBody,
    responses(
        (status = 200, description = "Changed", body = ListView),
        (status = 404, description = "No such list", body = ErrorBody),
        (status = 409, description = "The default list stays public", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn update_list(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    ApiJson(body): ApiJson<ListChangesBody>,
) -> Result<Json<ListView>, AppError> {
    let list = state
        .store
        .list_by_slug(&slug)
        .await?
        .ok_or_else(no_such_list)?;
    let details = ListDetails::parse(
        body.name.as_deref().unwrap_or(&list.name),
        body.description.as_deref().unwrap_or(&list.description),
        body.public.unwrap_or(list.public),
    )
    .map_err(AppError::Invalid)?;
    list_actions::update(&state, &list, &details)
        .await?
        .map_err(refused)?;
    let list = state
        .store
        .list_by_slug(&slug)
        .await?
        .ok_or_else(no_such_list)?;
    Ok(Json(view(&state, list).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// The list's slug; "In Partnership" if not given.
    list: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/subscribers/export",
    params(ExportParams),
    responses(
        (status = 200, description = "Every subscriber of the list, as CSV (email, name, organisation, locality, status, signed_up), streamed", content_type = "text/csv", body = String),
        (status = 404, description = "No such list", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn export_subscribers(
    State(state): State<AppState>,
    Extension(caller): Extension<ApiCaller>,
    params: Result<Query<ExportParams>, QueryRejection>,
) -> Result<Response, AppError> {
    let Query(params) = params
        .map_err(|_| AppError::json(StatusCode::UNPROCESSABLE_ENTITY, "list is a list's slug."))?;
    super::one_line("list", params.list.as_deref())?;
    let list = list_named(&state, params.list.as_deref()).await?;
    tracing::info!(list = %list.slug, token = %caller.0, "Subscribers exported by the API");
    Ok(subscriber_actions::export(&state, &list)?)
}

/// The rows of an import that say something: every one not imported, and those
/// imported with a note.
async fn report_rows(state: &AppState, id: Uuid) -> anyhow::Result<Vec<ImportRow>> {
    let mut rows = Vec::new();
    for status in [
        RowStatus::Refused,
        RowStatus::Unchanged,
        RowStatus::Added,
        RowStatus::Invited,
    ] {
        let mut after_line = 0;
        while rows.len() < REPORT_ROWS {
            let page = state
                .store
                .import_rows(id, Some(status), after_line, 0, import::BATCH)
                .await?;
            let Some(last) = page.last() else {
                break;
            };
            after_line = last.line;
            rows.extend(page.into_iter().filter(|row| row.reason.is_some()));
        }
    }
    rows.sort_by_key(|row| row.line);
    rows.truncate(REPORT_ROWS);
    Ok(rows)
}

/// A CSV of people to add to a list, on the lawful basis in `source_note`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriberImportBody {
    /// A header naming the columns (`email` and `name` at least; `organisation`,
    /// `locality`, and others' exports' names for them), then a person per line.
    csv: String,
    /// The list's slug; "In Partnership" if not given.
    list: Option<String>,
    /// Where these people's details came from and why they may be emailed.
    #[schema(max_length = 1000)]
    source_note: String,
    /// `confirmed`: subscribed now; `invite`: each sent a confirmation email.
    mode: Mode,
    /// The file's name, for the import's record.
    #[schema(max_length = 200)]
    file_name: Option<String>,
}

/// What an import did.
#[derive(Serialize, ToSchema)]
pub struct ImportReport {
    /// The import, as the web UI's import pages show it (its report is kept 30 days).
    id: Uuid,
    list: String,
    mode: Mode,
    added: i64,
    invited: i64,
    unchanged: i64,
    refused: i64,
    /// Columns the file has that are not imported.
    ignored_columns: Vec<String>,
    /// The rows not imported (refused or unchanged) and those imported with a note (a
    /// locality that is not one of ours, left out), each with why, in the file's
    /// order: 1000 at most.
    report: Vec<ImportRow>,
}

#[utoipa::path(
    post,
    path = "/api/subscribers/import",
    request_body = SubscriberImportBody,
    responses(
        (status = 200, description = "Imported: what became of each row", body = ImportReport),
        (status = 404, description = "No such list", body = ErrorBody),
        (status = 422, description = "A field's problem, or a file that cannot be read", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn import_subscribers(
    State(state): State<AppState>,
    Extension(caller): Extension<ApiCaller>,
    ApiJson(body): ApiJson<SubscriberImportBody>,
) -> Result<Json<ImportReport>, AppError> {
    let mut errors = Vec::new();
    if let Some(problem) = import::source_note_problem(&body.source_note) {
        errors.push(FieldError::new("source_note", problem));
    }
    let parsed = import::read_csv(body.csv.as_bytes(), body.mode)
        .map_err(|problem| errors.push(FieldError::new("csv", problem)))
        .ok();
    let (Some(parsed), true) = (parsed, errors.is_empty()) else {
        return Err(AppError::Invalid(errors));
    };
    let list = list_named(&state, body.list.as_deref()).await?;
    let file_name: String = body
        .file_name
        .as_deref()
        .unwrap_or("import.csv")
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let record = subscriber_actions::import_now(
        &state,
        ImportNow {
            list: &list,
            created_by: format!("API token \u{201c}{}\u{201d}", caller.0),
            file_name,
            source_note: &body.source_note,
            mode: body.mode,
            rows: parsed.rows,
        },
    )
    .await?;
    let counts = state.store.import_counts(record.id).await?;
    let report = report_rows(&state, record.id).await?;
    Ok(Json(ImportReport {
        id: record.id,
        list: list.slug,
        mode: record.mode,
        added: counts.of(RowStatus::Added),
        invited: counts.of(RowStatus::Invited),
        unchanged: counts.of(RowStatus::Unchanged),
        refused: counts.of(RowStatus::Refused),
        ignored_columns: parsed.ignored_columns,
        report,
    }))
}
