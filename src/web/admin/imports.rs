//! Importing subscribers from a CSV file, admins only (see `audience::import` for the rules):
//! upload the file with a source note and a choice of confirmed or invited; see the
//! preview, row by row; import or discard it; then read the report.

use std::collections::BTreeMap;

use axum::{
    Extension,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    routing::{MethodRouter, get, post},
};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{AdminFrame, FormParts, IMPORT_LIMIT, Staff, lists::ChosenList};
use crate::{
    audience::import::{self, ImportRecord, ImportRow, Mode, RowStatus},
    audience::subscriber::Locality,
    store::{ImportStart, MailingList, Removal},
    time::uk_date_time,
    web::{
        AppError, AppState,
        pages::{MessagePage, render},
    },
};

/// Rows per page of a preview or report.
const PAGE_SIZE: u32 = 100;

pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/admin/imports", get(imports).post(upload)),
        ("/admin/imports/{id}", get(show)),
        ("/admin/imports/{id}/apply", post(apply)),
        ("/admin/imports/{id}/discard", post(discard)),
    ]
}

/// What the page calls a row's status.
fn label(status: RowStatus) -> &'static str {
    match status {
        RowStatus::Ready => "To import",
        RowStatus::Refused => "Refused",
        RowStatus::Unchanged => "Left unchanged",
        RowStatus::Added => "Subscribed",
        RowStatus::Invited => "Sent a confirmation email",
    }
}

fn mode_label(mode: Mode) -> &'static str {
    match mode {
        Mode::Confirmed => "subscribed at once, on the basis in the source note",
        Mode::Invite => "sent a confirmation email, and subscribed if they confirm",
    }
}

#[derive(Serialize)]
struct ImportLine {
    id: Uuid,
    file_name: String,
    created_by: String,
    when: String,
    applied: Option<String>,
    mode: &'static str,
    source_note: String,
}

impl ImportLine {
    fn of(import: &ImportRecord) -> Self {
        ImportLine {
            id: import.id,
            file_name: import.file_name.clone(),
            created_by: import.created_by.clone(),
            when: uk_date_time(import.created_at),
            applied: import.applied_at.map(uk_date_time),
            mode: mode_label(import.mode),
            source_note: import.source_note.clone(),
        }
    }
}

#[derive(Serialize, Default)]
struct UploadForm {
    source_note: String,
    mode: String,
}

#[derive(Serialize)]
struct ImportsView {
    #[serde(flatten)]
    frame: AdminFrame,
    form: UploadForm,
    errors: BTreeMap<&'static str, String>,
    imports: Vec<ImportLine>,
    /// The list the people are imported into.
    list: MailingList,
    lists: Vec<MailingList>,
    limit_mb: usize,
    notice: Option<&'static str>,
}

async fn imports_page(
    state: &AppState,
    staff: &Staff,
    chosen: ChosenList,
    status: StatusCode,
    form: UploadForm,
    errors: BTreeMap<&'static str, String>,
    notice: Option<&'static str>,
) -> Result<Response, AppError> {
    let imports = state.store.imports(chosen.list.id).await?;
    let title = if errors.is_empty() {
        "Import subscribers"
    } else {
        "Error: Import subscribers"
    };
    let view = ImportsView {
        frame: AdminFrame::of(staff),
        list: chosen.list,
        lists: chosen.lists,
        form,
        errors,
        imports: imports.iter().map(ImportLine::of).collect(),
        limit_mb: IMPORT_LIMIT / (1024 * 1024),
        notice,
    };
    Ok((status, render("pages/admin_imports.html", title, &view)).into_response())
}

#[derive(Deserialize)]
struct Done {
    done: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn imports(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    chosen: ChosenList,
    Query(done): Query<Done>,
) -> Result<Response, AppError> {
    let notice = (done.done.as_deref() == Some("discarded"))
        .then_some("Discarded: nothing was imported, and the file's rows are deleted.");
    let form = UploadForm {
        mode: Mode::Invite.as_str().into(),
        ..UploadForm::default()
    };
    imports_page(
        &state,
        &staff,
        chosen,
        StatusCode::OK,
        form,
        BTreeMap::new(),
        notice,
    )
    .await
}

/// Checks the uploaded file and records it with each row's verdict, then shows the
/// preview. Nothing is imported yet.
#[tracing::instrument(skip_all)]
async fn upload(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    chosen: ChosenList,
    form: Option<Extension<FormParts>>,
) -> Result<Response, AppError> {
    let form = form.map(|Extension(form)| form).unwrap_or_default();
    let fields = UploadForm {
        source_note: form.text("source_note").unwrap_or_default(),
        mode: form.text("mode").unwrap_or_default(),
    };
    let mut errors = BTreeMap::new();
    let file = form
        .part("file")
        .filter(|f| f.file_name.as_deref().is_some_and(|n| !n.is_empty()));
    let mode = Mode::parse(&fields.mode);
    if mode.is_none() {
        errors.insert(
            "mode",
            "Choose whether to subscribe them now or send them a confirmation email.".into(),
        );
    }
    if let Some(problem) = import::source_note_problem(&fields.source_note) {
        errors.insert("source_note", problem);
    }
    let parsed = match (file, mode) {
        (None, _) => {
            errors.insert("file", "Choose a CSV file to import.".into());
            None
        }
        (Some(file), Some(mode)) => match import::read_csv(&file.data, mode) {
            Ok(parsed) => Some(parsed),
            Err(problem) => {
                errors.insert("file", problem);
                None
            }
        },
        (Some(_), None) => None,
    };
    let (Some(parsed), Some(mode), true) = (parsed, mode, errors.is_empty()) else {
        return imports_page(
            &state,
            &staff,
            chosen,
            StatusCode::UNPROCESSABLE_ENTITY,
            fields,
            errors,
            None,
        )
        .await;
    };
    let file_name: String = file
        .and_then(|f| f.file_name.as_deref())
        .unwrap_or("import.csv")
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let record = ImportRecord {
        id: Uuid::now_v7(),
        list_id: chosen.list.id,
        created_by: staff.user.email.clone(),
        file_name,
        source_note: fields.source_note.trim().to_owned(),
        mode,
        created_at: Utc::now(),
        applied_at: None,
    };
    import::create(state.store.as_ref(), &state.secret, &record, parsed.rows).await?;
    tracing::info!(import = %record.id, by = %staff.user.id, "Import checked");
    let ignored = if parsed.ignored_columns.is_empty() {
        String::new()
    } else {
        let names = parsed.ignored_columns.join(", ");
        format!(
            "?ignored={}",
            url::form_urlencoded::byte_serialize(names.as_bytes()).collect::<String>()
        )
    };
    Ok(Redirect::to(&format!("/admin/imports/{}{ignored}", record.id)).into_response())
}

fn not_found() -> AppError {
    AppError::page(
        StatusCode::NOT_FOUND,
        MessagePage::new(
            "No such import",
            &["It may have been discarded. Imports are listed on the import page."],
        ),
    )
}

async fn import_record(state: &AppState, id: &str) -> Result<ImportRecord, AppError> {
    let id = Uuid::parse_str(id).map_err(|_| not_found())?;
    state.store.import(id).await?.ok_or_else(not_found)
}

/// The list an import brings people into.
async fn import_list(state: &AppState, import: &ImportRecord) -> Result<MailingList, AppError> {
    let lists = state.store.lists().await?;
    lists
        .into_iter()
        .find(|l| l.id == import.list_id)
        .ok_or_else(not_found)
}

#[derive(Deserialize)]
struct ShowQuery {
    show: Option<String>,
    page: Option<u32>,
    done: Option<String>,
    ignored: Option<String>,
}

#[derive(Serialize)]
struct Count {
    status: &'static str,
    label: &'static str,
    count: i64,
}

#[derive(Serialize)]
struct RowLine {
    #[serde(flatten)]
    row: ImportRow,
    outcome: &'static str,
    /// The locality's name, for a row that passed; as written, for one refused.
    place: String,
}

#[derive(Serialize)]
struct ImportView {
    #[serde(flatten)]
    frame: AdminFrame,
    import: ImportLine,
    confirmed_mode: bool,
    counts: Vec<Count>,
    total: i64,
    ready: i64,
    /// The status the rows shown have, if not all.
    show: Option<&'static str>,
    show_label: Option<&'static str>,
    shown: i64,
    rows: Vec<RowLine>,
    page: u32,
    pages: u32,
    report_days: i64,
    expired: bool,
    ignored: Option<String>,
    notice: Option<&'static str>,
}

#[tracing::instrument(skip_all)]
async fn show(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Path(id): Path<String>,
    query: Result<Query<ShowQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let import = import_record(&state, &id).await?;
    let query = query.map(|Query(q)| q).unwrap_or(ShowQuery {
        show: None,
        page: None,
        done: None,
        ignored: None,
    });
    let show = query.show.as_deref().and_then(RowStatus::parse);
    let counts = state.store.import_counts(import.id).await?;
    let count = |status| counts.of(status);
    let total = counts.total();
    let shown = show.map_or(total, count);
    let pages = u32::try_from(shown.max(1))
        .unwrap_or(u32::MAX)
        .div_ceil(PAGE_SIZE);
    let page = query.page.unwrap_or(1).clamp(1, pages);
    let rows = state
        .store
        .import_rows(import.id, show, 0, (page - 1) * PAGE_SIZE, PAGE_SIZE)
        .await?;
    let view = ImportView {
        frame: AdminFrame::of(&staff),
        confirmed_mode: import.mode == Mode::Confirmed,
        counts: counts
            .present()
            .map(|(s, count)| Count {
                status: s.as_str(),
                label: label(s),
                count,
            })
            .collect(),
        total,
        ready: count(RowStatus::Ready),
        show: show.map(RowStatus::as_str),
        show_label: show.map(label),
        shown,
        rows: rows
            .into_iter()
            .map(|row| RowLine {
                outcome: label(row.status),
                place: match Locality::parse(&row.locality) {
                    Ok(Some(place)) => place.label().to_owned(),
                    _ => row.locality.clone(),
                },
                row,
            })
            .collect(),
        page,
        pages,
        report_days: import::REPORT_DAYS,
        expired: import.report_expired(Utc::now()),
        ignored: query.ignored.filter(|i| !i.is_empty()),
        notice: match query.done.as_deref() {
            Some("applied") => Some("Imported. Each row's outcome is below."),
            Some("already") => Some("This import had already been applied."),
            _ => None,
        },
        import: ImportLine::of(&import),
    };
    let title = if import.applied_at.is_some() {
        format!("Import report: {}", import.file_name)
    } else {
        format!("Import preview: {}", import.file_name)
    };
    Ok(render("pages/admin_import.html", &title, &view).into_response())
}

/// Imports the rows still to import. A second click, or another instance, finds the
/// import started and only shows the report.
#[tracing::instrument(skip_all)]
async fn apply(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let import = import_record(&state, &id).await?;
    if import.report_expired(Utc::now()) {
        return Err(not_found());
    }
    if state.store.start_import(import.id, Utc::now()).await? == ImportStart::AlreadyStarted {
        return Ok(
            Redirect::to(&format!("/admin/imports/{}?done=already", import.id)).into_response(),
        );
    }
    let list = import_list(&state, &import).await?;
    let inviter = import::Inviter {
        secret: &state.secret,
        list: &list,
        ttl: state.settings.confirmation_ttl,
    };
    let mut done = 0;
    import::apply(state.store.as_ref(), &import, &inviter, |n| done = n).await?;
    tracing::info!(import = %import.id, by = %staff.user.id, rows = done, "Import applied");
    if import.mode == Mode::Invite {
        state.outbox_wake.notify_one();
    }
    Ok(Redirect::to(&format!("/admin/imports/{}?done=applied", import.id)).into_response())
}

#[tracing::instrument(skip_all)]
async fn discard(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let import = import_record(&state, &id).await?;
    if state.store.discard_import(import.id).await? == Removal::NotFound {
        return Err(AppError::page(
            StatusCode::CONFLICT,
            MessagePage::new(
                "This import has been applied",
                &[
                    "An import that has been applied cannot be discarded. Its report stays for a while, then its rows are deleted.",
                ],
            ),
        ));
    }
    tracing::info!(import = %import.id, by = %staff.user.id, "Import discarded");
    let list = import_list(&state, &import).await?;
    Ok(Redirect::to(&format!("/admin/imports?done=discarded&list={}", list.slug)).into_response())
}
