//! The lists, for admins: each with its counts, a form to add one (name, description,
//! public or private), and a page to change one. A list's slug comes from its first
//! name and never changes, so links and the API keep working when it is renamed.

use std::collections::BTreeMap;

use axum::{
    Extension, Form,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    routing::{MethodRouter, get},
};
use serde::{Deserialize, Serialize};

use super::{AdminFrame, Staff};
use crate::{
    audience::lists::ListDetails,
    fields::FieldError,
    store::{DEFAULT_LIST, MailingList, SubscriberCounts},
    web::{
        AppError, AppState,
        list_actions::{self, ListRefusal},
        pages::{MessagePage, render},
    },
};

pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/admin/lists", get(lists).post(create)),
        ("/admin/lists/{slug}", get(show).post(save)),
    ]
}

/// The list form's fields, as typed.
#[derive(Deserialize, Serialize, Default, Clone)]
pub(super) struct ListForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    /// The checkbox: present when ticked.
    #[serde(default)]
    public: Option<String>,
}

impl ListForm {
    fn of(list: &MailingList) -> Self {
        ListForm {
            name: list.name.clone(),
            description: list.description.clone(),
            public: list.public.then(|| "yes".to_owned()),
        }
    }

    fn details(&self) -> Result<ListDetails, Vec<FieldError>> {
        ListDetails::parse(&self.name, &self.description, self.public.is_some())
    }
}

#[derive(Serialize)]
struct ListRow {
    list: MailingList,
    counts: SubscriberCounts,
}

#[derive(Serialize)]
struct ListsView {
    #[serde(flatten)]
    frame: AdminFrame,
    lists: Vec<ListRow>,
    form: ListForm,
    errors: BTreeMap<String, String>,
    error_list: Vec<FieldError>,
    notice: Option<String>,
}

async fn lists_page(
    state: &AppState,
    staff: &Staff,
    form: ListForm,
    errors: Vec<FieldError>,
    notice: Option<String>,
) -> Result<Response, AppError> {
    let mut rows = Vec::new();
    for list in state.store.lists().await? {
        rows.push(ListRow {
            counts: state.store.subscriber_counts(list.id).await?,
            list,
        });
    }
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let title = if errors.is_empty() {
        "Lists"
    } else {
        "Error: Lists"
    };
    let view = ListsView {
        frame: AdminFrame::of(staff),
        lists: rows,
        form,
        errors: by_field(&errors),
        error_list: errors,
        notice,
    };
    Ok((status, render("pages/admin_lists.html", title, &view)).into_response())
}

fn by_field(errors: &[FieldError]) -> BTreeMap<String, String> {
    errors
        .iter()
        .map(|e| (e.field.to_string(), e.message.clone()))
        .collect()
}

#[derive(Deserialize)]
struct Done {
    /// The slug of the list just added, or anything at all after a save.
    done: Option<String>,
}

async fn lists(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    axum::extract::Query(done): axum::extract::Query<Done>,
) -> Result<Response, AppError> {
    // Named from the store, so the page never repeats text from its address.
    let notice = match done.done {
        Some(slug) => state
            .store
            .lists()
            .await?
            .into_iter()
            .find(|l| l.slug == slug)
            .map(|l| format!("The list {} is added.", l.name)),
        None => None,
    };
    let form = ListForm {
        public: Some("yes".into()),
        ..ListForm::default()
    };
    lists_page(&state, &staff, form, Vec::new(), notice).await
}

#[tracing::instrument(skip_all)]
async fn create(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Form(form): Form<ListForm>,
) -> Result<Response, AppError> {
    let details = match form.details() {
        Ok(details) => details,
        Err(errors) => return lists_page(&state, &staff, form, errors, None).await,
    };
    match list_actions::create(&state, &details).await? {
        Ok(list) => Ok(Redirect::to(&format!("/admin/lists?done={}", list.slug)).into_response()),
        Err(ListRefusal::Conflict(error)) => {
            lists_page(&state, &staff, form, vec![error], None).await
        }
        Err(ListRefusal::NotFound) => Err(no_such_list()),
    }
}

#[derive(Serialize)]
struct ListView {
    #[serde(flatten)]
    frame: AdminFrame,
    list: MailingList,
    counts: SubscriberCounts,
    form: ListForm,
    errors: BTreeMap<String, String>,
    error_list: Vec<FieldError>,
    notice: Option<&'static str>,
}

fn no_such_list() -> AppError {
    AppError::page(
        StatusCode::NOT_FOUND,
        MessagePage::new("No such list", &["There is no list at this address."]),
    )
}

async fn list_of(state: &AppState, slug: &str) -> Result<MailingList, AppError> {
    state
        .store
        .list_by_slug(slug)
        .await?
        .ok_or_else(no_such_list)
}

async fn list_page(
    state: &AppState,
    staff: &Staff,
    list: MailingList,
    form: ListForm,
    errors: Vec<FieldError>,
    notice: Option<&'static str>,
) -> Result<Response, AppError> {
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let title = if errors.is_empty() {
        list.name.clone()
    } else {
        format!("Error: {}", list.name)
    };
    let view = ListView {
        frame: AdminFrame::of(staff),
        counts: state.store.subscriber_counts(list.id).await?,
        list,
        form,
        errors: by_field(&errors),
        error_list: errors,
        notice,
    };
    Ok((status, render("pages/admin_list.html", &title, &view)).into_response())
}

async fn show(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Path(slug): Path<String>,
    axum::extract::Query(done): axum::extract::Query<Done>,
) -> Result<Response, AppError> {
    let list = list_of(&state, &slug).await?;
    let form = ListForm::of(&list);
    let notice = done.done.is_some().then_some("Saved.");
    list_page(&state, &staff, list, form, Vec::new(), notice).await
}

#[tracing::instrument(skip_all)]
async fn save(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Path(slug): Path<String>,
    Form(form): Form<ListForm>,
) -> Result<Response, AppError> {
    let list = list_of(&state, &slug).await?;
    let details = match form.details() {
        Ok(details) => details,
        Err(errors) => return list_page(&state, &staff, list, form, errors, None).await,
    };
    match list_actions::update(&state, &list, &details).await? {
        Ok(()) => Ok(Redirect::to(&format!("/admin/lists/{slug}?done=saved")).into_response()),
        Err(ListRefusal::Conflict(error)) => {
            list_page(&state, &staff, list, form, vec![error], None).await
        }
        Err(ListRefusal::NotFound) => Err(no_such_list()),
    }
}

/// The list a staff page is about: `?list=SLUG`, or "In Partnership" when there is
/// none; a list that does not exist is a 404. Every per-list page takes it, so each
/// reads the choice the same way. It brings every list too, for the page's picker.
pub(super) struct ChosenList {
    pub list: MailingList,
    pub lists: Vec<MailingList>,
}

#[derive(Deserialize)]
struct ListParam {
    list: Option<String>,
}

impl axum::extract::FromRequestParts<AppState> for ChosenList {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let slug = axum::extract::Query::<ListParam>::try_from_uri(&parts.uri)
            .ok()
            .and_then(|q| q.0.list)
            .filter(|slug| !slug.is_empty());
        let lists = state.store.lists().await?;
        let wanted = slug.as_deref().unwrap_or(DEFAULT_LIST);
        let list = lists
            .iter()
            .find(|l| l.slug == wanted)
            .cloned()
            .ok_or_else(no_such_list)?;
        Ok(ChosenList { list, lists })
    }
}
