//! Putting an image into an issue from its editor: upload one (checked, resized and
//! stripped by `issues::media`) or pick one uploaded before, with what it shows. Without
//! JavaScript the image's Markdown is added to the end of the body; the editor's script
//! asks for JSON instead and puts the Markdown where the cursor is.

use axum::{
    Extension, Json,
    extract::State,
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
    routing::{MethodRouter, post},
};
use chrono::Utc;
use serde_json::json;

use super::{FormPart, FormParts, Staff, issues::PageIssueId};
use crate::{
    fields::FieldError,
    issues::{
        Issue, IssueContent,
        media::{MediaName, MediaRefusal, ProcessedImage, media_path, process_upload},
    },
    store::NewMedia,
    web::{
        AppError, AppState,
        issue_actions::{self as actions, ActionError},
    },
};

pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![("/admin/issues/{id}/images", post(add_image))]
}

/// How many of the newest images the editor offers.
const LIBRARY_SHOWN: i64 = 24;
/// The widest a picture is shown in the list.
const THUMB_WIDTH: u32 = 160;

/// An image to pick, as the editor lists it.
#[derive(serde::Serialize)]
pub struct LibraryImage {
    path: String,
    file_name: String,
    width: u32,
    height: u32,
    thumb_width: u32,
    thumb_height: u32,
}

pub async fn library(state: &AppState) -> anyhow::Result<Vec<LibraryImage>> {
    let items = state.store.media_library(LIBRARY_SHOWN).await?;
    Ok(items
        .into_iter()
        .map(|item| {
            let thumb_width = item.width.min(THUMB_WIDTH);
            LibraryImage {
                path: item.path(),
                thumb_height: (item.height * thumb_width).div_ceil(item.width).max(1),
                thumb_width,
                file_name: item.file_name,
                width: item.width,
                height: item.height,
            }
        })
        .collect())
}

/// The most a description may be, in characters.
const MAX_ALT: usize = 300;

/// Text as Markdown shows it literally inside `![...]`.
fn markdown_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
    {
        if matches!(c, '\\' | '[' | ']' | '*' | '_' | '`' | '<' | '>') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An uploaded file, processed (`issues::media`) and kept in the library; or why not.
pub(super) async fn keep_upload(
    state: &AppState,
    staff: &Staff,
    file: &FormPart,
) -> anyhow::Result<Result<ProcessedImage, MediaRefusal>> {
    let file_name = file.file_name.clone().unwrap_or_default();
    let image = match process_upload(file_name.clone(), file.data.to_vec()).await? {
        Ok(image) => image,
        Err(refusal) => return Ok(Err(refusal)),
    };
    state
        .store
        .save_media(&NewMedia {
            image: &image,
            file_name: &file_name,
            uploaded_by: &staff.user.email,
            now: Utc::now(),
        })
        .await?;
    tracing::info!(bytes = image.bytes.len(), "Image uploaded");
    Ok(Ok(image))
}

/// The image the form names, kept: its address and size.
async fn chosen_image(
    state: &AppState,
    staff: &Staff,
    form: &FormParts,
) -> Result<(String, u32, u32), ActionError> {
    if let Some(file) = form.part("image").filter(|p| !p.data.is_empty()) {
        let image = keep_upload(state, staff, file)
            .await?
            .map_err(|refusal| invalid("image", refusal.to_string()))?;
        return Ok((image.path(), image.width, image.height));
    }
    let picked = form.text("src").and_then(|src| MediaName::from_url(&src));
    if let Some(name) = picked
        && let Some(file) = state.store.media_file(&name.hash).await?
    {
        let path = media_path(&name.hash, file.width, file.height, file.format);
        return Ok((path, file.width, file.height));
    }
    Err(invalid(
        "image",
        "Choose an image file to upload, or one from those uploaded before.".into(),
    ))
}

/// The image's Markdown, or why there is none.
async fn image_markdown(
    state: &AppState,
    staff: &Staff,
    id: uuid::Uuid,
    form: &FormParts,
) -> Result<(String, Issue, (String, u32, u32)), ActionError> {
    let issue = actions::issue(state, id).await?;
    if !issue.status.is_editable() {
        return Err(ActionError::Conflict(format!(
            "This issue is {}: only a draft or scheduled issue can be changed.",
            issue.status.as_str()
        )));
    }
    let alt = form.text("alt").unwrap_or_default();
    let alt = alt.trim();
    if alt.is_empty() {
        return Err(invalid(
            "alt",
            "Say what the image shows, for people who cannot see it.".into(),
        ));
    }
    if alt.chars().count() > MAX_ALT {
        return Err(invalid(
            "alt",
            format!("Keep the description to {MAX_ALT} characters or fewer."),
        ));
    }
    let chosen = chosen_image(state, staff, form).await?;
    let markdown = format!("![{}]({})", markdown_text(alt), chosen.0);
    Ok((markdown, issue, chosen))
}

fn invalid(field: &'static str, message: String) -> ActionError {
    ActionError::Invalid(vec![FieldError::new(field, message)])
}

#[tracing::instrument(skip_all, fields(issue = %id))]
async fn add_image(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    PageIssueId(id): PageIssueId,
    headers: HeaderMap,
    form: Option<Extension<FormParts>>,
) -> Result<Response, AppError> {
    let form = form.map(|Extension(f)| f).unwrap_or_default();
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let (markdown, issue, (src, width, height)) =
        match image_markdown(&state, &staff, id, &form).await {
            Ok(found) => found,
            Err(err) if wants_json => return Err(err.into()),
            Err(err) => return super::issues::refused(&state, &staff, id, err, None).await,
        };
    if wants_json {
        return Ok(Json(json!({
            "markdown": markdown, "src": src, "width": width, "height": height
        }))
        .into_response());
    }
    let changes = IssueContent {
        body_markdown: Some(format!(
            "{}\n\n{markdown}\n",
            issue.body_markdown.trim_end()
        )),
        ..IssueContent::default()
    };
    match actions::update(&state, id, changes, None).await {
        Ok(_) => Ok(super::issues::done(id, "image")),
        Err(err) => super::issues::refused(&state, &staff, id, err, None).await,
    }
}
