//! One check of every request's text, before any handler sees it: the query string,
//! form bodies and JSON bodies must be UTF-8 without control characters (line breaks
//! and tabs aside). A NUL would make PostgreSQL fail the statement, invalid UTF-8
//! would be stored as replacement characters, and neither is anything a person types:
//! the answer is a 422 that names the field.

use axum::{
    body::{Body, to_bytes},
    extract::Request,
    http::{HeaderMap, StatusCode, header},
    middleware::Next,
    response::Response,
};
use percent_encoding::percent_decode;

use crate::fields::FieldError;

use super::{AppError, BODY_LIMIT, admin::LOGIN_PATH as ADMIN_LOGIN, pages::MessagePage};

/// What is wrong with a field's text, if anything.
fn text_problem(text: &str) -> Option<&'static str> {
    text.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        .then_some("contains a control character (such as NUL), which is not text")
}

/// The first field of `name=value&...` whose name or value is not clean text.
fn form_problem(encoded: &[u8]) -> Option<(String, &'static str)> {
    for pair in encoded.split(|b| *b == b'&') {
        let mut halves = pair.splitn(2, |b| *b == b'=');
        let decode = |part: &[u8]| {
            let spaced: Vec<u8> = part
                .iter()
                .map(|b| if *b == b'+' { b' ' } else { *b })
                .collect();
            percent_decode(&spaced).collect::<Vec<u8>>()
        };
        let name = decode(halves.next().unwrap_or_default());
        let value = decode(halves.next().unwrap_or_default());
        let shown = String::from_utf8_lossy(&name)
            .chars()
            .take(64)
            .collect::<String>();
        for part in [&name, &value] {
            match std::str::from_utf8(part) {
                Err(_) => return Some((shown, "is not valid UTF-8 text")),
                Ok(text) => {
                    if let Some(problem) = text_problem(text) {
                        return Some((shown, problem));
                    }
                }
            }
        }
    }
    None
}

/// The first string in a JSON document (or key) that is not clean text, by its path.
fn json_problem(value: &serde_json::Value, path: &str) -> Option<(String, &'static str)> {
    match value {
        serde_json::Value::String(text) => text_problem(text).map(|p| (path.to_owned(), p)),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| json_problem(item, &format!("{path}[{i}]"))),
        serde_json::Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            let here = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            text_problem(key)
                .map(|p| (here.clone(), p))
                .or_else(|| json_problem(item, &here))
        }),
        _ => None,
    }
}

/// The refusal: a 422 that names the field, as JSON or as a page.
fn refuse(json: bool, field: String, problem: &str) -> AppError {
    let message = format!("The field “{field}” {problem}. Remove it and send the form again.");
    if json {
        return AppError::Invalid(vec![FieldError::new(field, message)]);
    }
    AppError::page(
        StatusCode::UNPROCESSABLE_ENTITY,
        MessagePage::new("We could not read that form", &[&message]),
    )
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// Checks a body already read: JSON (by its strings and keys) or a form; other kinds of
/// body (uploads) are their handlers' to read.
pub fn check_body(headers: &HeaderMap, bytes: &[u8], json_answer: bool) -> Result<(), AppError> {
    let content_type = content_type(headers);
    let problem = if content_type.starts_with("application/json") {
        // Broken JSON is the handler's to answer (400), with serde's words.
        serde_json::from_slice::<serde_json::Value>(bytes)
            .ok()
            .and_then(|value| json_problem(&value, ""))
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        form_problem(bytes)
    } else {
        None
    };
    match problem {
        Some((field, problem)) => {
            tracing::info!(field, "Refused a request: {problem}");
            Err(refuse(json_answer, field, problem))
        }
        None => Ok(()),
    }
}

/// Whether a request's body is checked after its credentials, by `ApiJson` (the API),
/// `require_staff` (the pages behind the sign-in) and each provider's signature check
/// (the webhooks, whose signatures cover the body as sent), with the larger limit
/// they need, rather than here: so that no one without credentials can make the
/// service hold more than a public form's worth of body.
fn checked_after_credentials(path: &str) -> bool {
    path.starts_with("/api/")
        || path.starts_with("/webhooks/")
        || (path.starts_with("/admin/") && !ADMIN_PUBLIC.contains(&path))
}

/// The staff pages anyone may send a form to, before any session: checked here, with
/// the public forms' limit.
const ADMIN_PUBLIC: [&str; 6] = [
    ADMIN_LOGIN,
    "/admin/forgot",
    "/admin/invitation",
    "/admin/reset",
    "/admin/login/two-factor",
    "/admin/login/two-factor/setup",
];

/// The middleware: every route goes through it. Query strings are checked here for
/// every route, and bodies for every route but those `checked_after_credentials`.
pub async fn refuse_bad_text(req: Request, next: Next) -> Result<Response, AppError> {
    let content_type = content_type(req.headers());
    let path = req.uri().path();
    // The API answers in JSON whatever was sent; elsewhere JSON bodies get JSON.
    let json_answer = content_type.starts_with("application/json") || path.starts_with("/api/");
    if let Some((field, problem)) = req.uri().query().and_then(|q| form_problem(q.as_bytes())) {
        return Err(refuse(json_answer, field, problem));
    }
    let readable = content_type.starts_with("application/json")
        || content_type.starts_with("application/x-www-form-urlencoded");
    if !readable || checked_after_credentials(path) {
        return Ok(next.run(req).await);
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, BODY_LIMIT).await else {
        let message = format!(
            "The request is larger than this address accepts ({} KiB).",
            BODY_LIMIT / 1024
        );
        return Err(if json_answer {
            AppError::json(StatusCode::PAYLOAD_TOO_LARGE, message)
        } else {
            AppError::page(
                StatusCode::PAYLOAD_TOO_LARGE,
                MessagePage::new("That form is too large", &[&message]),
            )
        });
    };
    check_body(&parts.headers, &bytes, json_answer)?;
    Ok(next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_with_nul_or_bad_utf8_name_the_field() {
        assert_eq!(form_problem(b"email=jo%40example.org&name=Jo+Bloggs"), None);
        assert_eq!(form_problem(b"body=line+one%0D%0Aline+two%09tab"), None);
        assert_eq!(form_problem(b"email=a&name=J%00o").unwrap().0, "name");
        assert_eq!(
            form_problem(b"name=%FF%FE").unwrap().1,
            "is not valid UTF-8 text"
        );
        assert_eq!(form_problem(b"na%01me=x").unwrap().0, "na\u{1}me");
        assert_eq!(
            form_problem(b"x=%C2%85"),
            Some(("x".into(), text_problem("\u{85}").unwrap()))
        );
    }

    #[test]
    fn json_strings_are_checked_everywhere() {
        let ok = serde_json::json!({"subject": "Hi", "body_markdown": "a\nb\tc"});
        assert_eq!(json_problem(&ok, ""), None);
        let bad = serde_json::json!({"subject": "Hi", "list": {"tags": ["ok", "b\u{0}d"]}});
        assert_eq!(json_problem(&bad, "").unwrap().0, "list.tags[1]");
    }
}
