//! Uploaded images, served at their permanent addresses: the name holds the hash of the
//! bytes, so a name always means the same picture and may be cached for a year.

use axum::{
    Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

use super::{AppError, AppState};
use crate::issues::media::MediaName;

pub fn router() -> Router<AppState> {
    Router::new().route("/media/{name}", get(image))
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        "There is no image at this address.\n",
    )
        .into_response()
}

#[tracing::instrument(skip_all)]
async fn image(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let Some(name) = MediaName::parse(&name) else {
        return Ok(not_found());
    };
    let etag = format!("\"{}\"", name.hash);
    let Some(file) = state.store.media_file(&name.hash).await? else {
        return Ok(not_found());
    };
    // The name must be the image's own: a wrong size or type is not this picture.
    if (file.width, file.height, file.format) != (name.width, name.height, name.format) {
        return Ok(not_found());
    }
    let cache = [
        (
            header::CACHE_CONTROL,
            "public, max-age=31536000, immutable".to_owned(),
        ),
        (header::ETAG, etag.clone()),
    ];
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        });
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, cache).into_response());
    }
    Ok((
        cache,
        [
            (header::CONTENT_TYPE, file.format.content_type()),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox",
            ),
        ],
        file.bytes,
    )
        .into_response())
}
