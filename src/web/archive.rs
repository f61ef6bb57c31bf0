//! The archive: every sent issue as a web page, and an Atom feed of them.

use axum::{
    Router,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use chrono::{SecondsFormat, Utc};
use serde_json::json;

use super::{
    AppError, AppState,
    pages::{MessagePage, render},
};
use crate::{
    issues::{
        Issue,
        compose::{self, ComposedIssue},
        markdown::{self, Site},
    },
    templates::templates,
    time::uk_date,
};

/// The site's policy, with images from any https address.
const ARCHIVE_ISSUE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' https:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/archive", get(archive))
        .route("/archive/feed.xml", get(feed))
        .route("/archive/{slug}", get(archived_issue))
}

/// Sent issues, newest first. A quarterly newsletter has a few dozen: they are
/// filtered here rather than indexed.
async fn sent_issues(state: &AppState) -> Result<Vec<Issue>, AppError> {
    let mut issues: Vec<Issue> = state
        .store
        .issues()
        .await?
        .into_iter()
        .filter(|i| i.status.is_archived() && i.withdrawn.is_none())
        .collect();
    issues.sort_by_key(|i| std::cmp::Reverse(i.finished_at));
    Ok(issues)
}

fn sent_date(issue: &Issue) -> String {
    uk_date(issue.finished_at.unwrap_or(issue.updated_at))
}

#[tracing::instrument(skip_all)]
async fn archive(State(state): State<AppState>) -> Result<Response, AppError> {
    let issues: Vec<_> = sent_issues(&state)
        .await?
        .iter()
        .map(|i| json!({"slug": i.slug(), "subject": i.subject, "date": sent_date(i)}))
        .collect();
    Ok(render(
        "pages/archive.html",
        "Past issues",
        &json!({ "issues": issues }),
    )
    .into_response())
}

#[tracing::instrument(skip_all)]
async fn archived_issue(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Response, AppError> {
    let issue = sent_issues(&state)
        .await?
        .into_iter()
        .find(|i| i.slug() == slug)
        .ok_or_else(|| {
            AppError::page(
                StatusCode::NOT_FOUND,
                MessagePage::new(
                    "There is no such issue",
                    &["It may not have been sent yet. The archive lists every issue that has."],
                ),
            )
        })?;
    // The mail as it went out: its template and brand versions, without a way out.
    let (template, brand) = compose::versions(&*state.store, &issue)
        .await?
        .map_err(anyhow::Error::from)?;
    let html = ComposedIssue::in_browser(&issue, &template, &brand, &state.settings.public_url)?;
    Ok((
        // Our own images, and (as in the mail) any from the web.
        [
            (header::CONTENT_SECURITY_POLICY, ARCHIVE_ISSUE_POLICY),
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        ],
        html,
    )
        .into_response())
}

#[tracing::instrument(skip_all)]
async fn feed(State(state): State<AppState>) -> Result<Response, AppError> {
    let issues = sent_issues(&state).await?;
    let brand = super::branding::brand();
    let site = Site {
        public_url: &state.settings.public_url,
        link_colour: &brand.brand.link_colour,
    };
    let rfc3339 = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let updated = issues
        .first()
        .and_then(|i| i.finished_at)
        .unwrap_or_else(Utc::now);
    let entries: Vec<_> = issues
        .iter()
        .map(|i| {
            json!({
                "id": i.id,
                "slug": i.slug(),
                "subject": i.subject,
                "preheader": i.preheader,
                "updated": rfc3339(i.finished_at.unwrap_or(i.updated_at)),
                "body_html": markdown::to_html(&i.body_markdown, &site),
            })
        })
        .collect();
    let xml = templates().render(
        "pages/feed.xml",
        &json!({
            "list_name": brand.brand.newsletter,
            "public_url": state.settings.public_url,
            "updated": rfc3339(updated),
            "issues": entries,
        }),
    )?;
    Ok((
        [(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")],
        xml,
    )
        .into_response())
}
