//! The issue templates (admins): each one's HTML and text parts, edited here with a
//! preview on sample content, checked before they are saved (`issues::templates::check`),
//! every save a new version, and the shipped default a click away.

use std::collections::BTreeMap;

use axum::{
    Extension, Form,
    extract::{Path, Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::{MethodRouter, get, post},
};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{AdminFrame, Staff};
use crate::{
    fields::FieldError,
    issues::{
        compose::{ComposedIssue, IssueContext, sample_issue},
        templates::{self, MailTemplate, SHIPPED, Shipped, shipped},
    },
    store::NewTemplateVersion,
    time::uk_date_time,
    web::{
        AppError, AppState,
        pages::{MessagePage, render},
    },
};

pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/admin/templates", get(list)),
        ("/admin/templates/{name}", get(editor).post(save)),
        (
            "/admin/templates/{name}/preview",
            get(preview_saved).post(preview_draft),
        ),
        ("/admin/templates/{name}/restore", post(restore)),
    ]
}

/// What a template is given, for the editor's list.
const VARIABLES: &[(&str, &str)] = &[
    ("subject", "the issue's subject"),
    (
        "preheader",
        "the line many mail apps show after the subject",
    ),
    ("date", "when it is sent, such as 3 December 2026"),
    ("list_name", "the newsletter's name"),
    ("body_html", "the body, as HTML (in the HTML part)"),
    ("body_text", "the body, as plain text (in the text part)"),
    (
        "unsubscribe_url",
        "the recipient's own way out: both parts must have it",
    ),
    (
        "preferences_url",
        "the recipient's own page, to change their details and newsletters",
    ),
    ("archive_url", "the issue in a browser"),
    (
        "in_browser",
        "true on the archive page, where there is no way out to give",
    ),
    ("signup_url", "the sign-up page"),
    ("public_url", "this site's address"),
    ("logo_url", "the logo's whole address, if there is a logo"),
    (
        "brand",
        "organisation, description, header_colour, header_text_colour, link_colour, logo (alt, shown_width), address_line (and address_lines), privacy_url, contact_href",
    ),
];

fn not_found() -> AppError {
    AppError::page(
        StatusCode::NOT_FOUND,
        MessagePage::new(
            "No such template",
            &["There is no template at this address. The templates page lists them all."],
        ),
    )
}

/// The shipped template called `name`, or a 404.
fn named(name: &str) -> Result<&'static Shipped, AppError> {
    shipped(name).ok_or_else(not_found)
}

async fn current(state: &AppState, name: &str) -> Result<MailTemplate, AppError> {
    Ok(state
        .store
        .current_template(name)
        .await?
        .ok_or_else(|| anyhow::anyhow!("The template {name:?} has no version"))?)
}

#[derive(Serialize)]
struct TemplateRow {
    name: &'static str,
    description: &'static str,
    version: i64,
    saved: String,
    shipped: bool,
}

async fn list(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
) -> Result<Response, AppError> {
    let mut rows = Vec::new();
    for t in SHIPPED {
        let history = state.store.template_history(t.name).await?;
        let newest = history.first();
        rows.push(TemplateRow {
            name: t.name,
            description: t.description,
            version: newest.map_or(0, |v| v.version),
            saved: newest.map_or_else(String::new, |v| {
                format!("{}, by {}", uk_date_time(v.created_at), v.created_by)
            }),
            shipped: newest.is_some_and(|v| v.shipped),
        });
    }
    #[derive(Serialize)]
    struct View {
        #[serde(flatten)]
        frame: AdminFrame,
        templates: Vec<TemplateRow>,
    }
    let view = View {
        frame: AdminFrame::of(&staff),
        templates: rows,
    };
    Ok(render("pages/admin_templates.html", "Templates", &view).into_response())
}

#[derive(Deserialize, Serialize, Default)]
struct TemplateForm {
    #[serde(default)]
    html: String,
    #[serde(default)]
    text: String,
}

#[derive(Serialize)]
struct HistoryLine {
    version: i64,
    saved: String,
    by: String,
    shipped: bool,
}

#[derive(Serialize)]
struct EditorView {
    #[serde(flatten)]
    frame: AdminFrame,
    name: &'static str,
    description: &'static str,
    version: i64,
    form: TemplateForm,
    variables: &'static [(&'static str, &'static str)],
    history: Vec<HistoryLine>,
    errors: BTreeMap<String, String>,
    error_list: Vec<FieldError>,
    notice: Option<&'static str>,
}

async fn editor_view(
    state: &AppState,
    staff: &Staff,
    shipped: &'static Shipped,
    form: Option<TemplateForm>,
    errors: Vec<FieldError>,
) -> Result<EditorView, AppError> {
    let saved = current(state, shipped.name).await?;
    let history = state
        .store
        .template_history(shipped.name)
        .await?
        .into_iter()
        .map(|v| HistoryLine {
            version: v.version,
            saved: uk_date_time(v.created_at),
            by: v.created_by,
            shipped: v.shipped,
        })
        .collect();
    Ok(EditorView {
        frame: AdminFrame::of(staff),
        name: shipped.name,
        description: shipped.description,
        version: saved.version,
        form: form.unwrap_or(TemplateForm {
            html: saved.html,
            text: saved.text,
        }),
        variables: VARIABLES,
        history,
        errors: errors
            .iter()
            .map(|e| (e.field.to_string(), e.message.clone()))
            .collect(),
        error_list: errors,
        notice: None,
    })
}

fn editor_page(status: StatusCode, view: &EditorView) -> Response {
    let title = format!(
        "{}Template: {}",
        if view.error_list.is_empty() {
            ""
        } else {
            "Error: "
        },
        view.name
    );
    (
        status,
        [(
            header::CONTENT_SECURITY_POLICY,
            super::issues::ISSUE_PAGE_POLICY,
        )],
        render("pages/admin_template.html", &title, view),
    )
        .into_response()
}

#[derive(Deserialize)]
struct Done {
    done: Option<String>,
}

async fn editor(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Path(name): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, AppError> {
    let shipped = named(&name)?;
    let mut view = editor_view(&state, &staff, shipped, None, Vec::new()).await?;
    view.notice = match done.done.as_deref() {
        Some("saved") => Some("Saved as a new version: issues from now on use it."),
        Some("restored") => Some("The shipped template is back, as a new version."),
        _ => None,
    };
    Ok(editor_page(StatusCode::OK, &view))
}

/// The sample issue in `template`, as a recipient would see it.
async fn sample(state: &AppState, template: &MailTemplate) -> Result<String, String> {
    let issue = sample_issue();
    let brand = super::super::branding::brand();
    let composed = ComposedIssue::compose(&issue, template, &brand, &state.settings.public_url)
        .map_err(|e| format!("{e:#}"))?;
    Ok(composed
        .personalise(&state.settings.recipient_links("preview"))
        .0)
}

/// Whether `form` may be saved, tried on the sample issue with the current brand.
fn checked(state: &AppState, form: &TemplateForm) -> Result<(), Vec<FieldError>> {
    let issue = sample_issue();
    let brand = super::super::branding::brand();
    let mail = IssueContext::new(&issue, &brand, &state.settings.public_url);
    let mut in_browser = IssueContext::new(&issue, &brand, &state.settings.public_url);
    in_browser.in_browser = true;
    templates::check(&form.html, &form.text, &[mail, in_browser])
}

#[tracing::instrument(skip_all, fields(template = %name))]
async fn save(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Path(name): Path<String>,
    Form(form): Form<TemplateForm>,
) -> Result<Response, AppError> {
    let shipped = named(&name)?;
    if let Err(errors) = checked(&state, &form) {
        let view = editor_view(&state, &staff, shipped, Some(form), errors).await?;
        return Ok(editor_page(StatusCode::UNPROCESSABLE_ENTITY, &view));
    }
    let saved = state
        .store
        .save_template(&NewTemplateVersion {
            name: shipped.name,
            html: &form.html,
            text: &form.text,
            shipped: form.html == shipped.html && form.text == shipped.text,
            by: &staff.user.email,
            now: Utc::now(),
        })
        .await?;
    tracing::info!(version = saved.version, "Template saved");
    Ok(Redirect::to(&format!("/admin/templates/{name}?done=saved")).into_response())
}

#[tracing::instrument(skip_all, fields(template = %name))]
async fn restore(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let shipped = named(&name)?;
    state
        .store
        .save_template(&NewTemplateVersion {
            name: shipped.name,
            html: shipped.html,
            text: shipped.text,
            shipped: true,
            by: &staff.user.email,
            now: Utc::now(),
        })
        .await?;
    Ok(Redirect::to(&format!("/admin/templates/{name}?done=restored")).into_response())
}

/// A preview for the editor's frame; what is wrong, if it cannot be shown.
fn preview_response(rendered: Result<String, String>) -> Response {
    match rendered {
        Ok(html) => super::issues::framed_preview(html),
        Err(problem) => {
            let page = MessagePage::new("This template cannot be shown", &[&problem]);
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                super::super::pages::render_page(&page),
            )
                .into_response()
        }
    }
}

async fn preview_saved(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let shipped = named(&name)?;
    let template = current(&state, shipped.name).await?;
    Ok(preview_response(sample(&state, &template).await))
}

/// What the form holds, before it is saved: problems, or the sample issue in it.
async fn preview_draft(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Form(form): Form<TemplateForm>,
) -> Result<Response, AppError> {
    let shipped = named(&name)?;
    if let Err(errors) = checked(&state, &form) {
        let problems: Vec<String> = errors.into_iter().map(|e| e.message).collect();
        return Ok(preview_response(Err(problems.join(" "))));
    }
    let draft = MailTemplate {
        name: shipped.name.into(),
        version: 0,
        html: form.html,
        text: form.text,
    };
    Ok(preview_response(sample(&state, &draft).await))
}
