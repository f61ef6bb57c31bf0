//! The API's spec against what the API does: every error is one documented JSON shape,
//! every status an operation answers is in the spec, every schema the spec refers to is
//! defined, and what the schemas allow the server accepts, up to each limit.
//! (`scripts/api-fuzz.sh` runs schemathesis for the same, with generated requests.)

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestApp};

on_both_backends!(
    every_error_is_one_documented_shape,
    the_spec_defines_every_schema_it_refers_to,
    what_the_schema_allows_is_accepted_up_to_each_limit,
    a_null_the_schema_allows_changes_nothing,
);

async fn spec(app: &TestApp, token: &str) -> Value {
    app.api(Method::GET, "/api/openapi.json", token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn every_error_is_one_documented_shape(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.api_token("ci").await;
    let spec = spec(&app, &token).await;
    let issue = app
        .create_issue(&token, json!({"subject": "S", "body_markdown": "B"}))
        .await;
    let id = issue["id"].as_str().unwrap();
    let cancel = format!("/api/issues/{id}/cancel");
    assert_eq!(
        app.api(Method::POST, &cancel, &token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let url = |path: &str| format!("{}{path}", app.address);
    let json_body = |path: &str, method: Method, body: String| {
        app.api(method, path, &token)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
    };
    let schedule = format!("/api/issues/{id}/schedule");
    let cases: Vec<(&str, &str, StatusCode, reqwest::RequestBuilder)> = vec![
        (
            "post",
            "/api/issues",
            StatusCode::UNAUTHORIZED,
            app.client.post(url("/api/issues")).json(&json!({})),
        ),
        (
            "get",
            "/api/issues/{id}",
            StatusCode::NOT_FOUND,
            app.api(Method::GET, "/api/issues/not-a-uuid", &token),
        ),
        (
            "post",
            "/api/issues",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            app.api(Method::POST, "/api/issues", &token)
                .header(header::CONTENT_TYPE, "text/plain")
                .body("{}"),
        ),
        (
            "post",
            "/api/issues",
            StatusCode::BAD_REQUEST,
            json_body("/api/issues", Method::POST, "{\"subject\":".into()),
        ),
        (
            "post",
            "/api/issues",
            StatusCode::PAYLOAD_TOO_LARGE,
            json_body(
                "/api/issues",
                Method::POST,
                format!(
                    r#"{{"subject":"S","body_markdown":"{}"}}"#,
                    "x".repeat(3 * 1024 * 1024)
                ),
            ),
        ),
        (
            "post",
            "/api/issues",
            StatusCode::UNPROCESSABLE_ENTITY,
            json_body(
                "/api/issues",
                Method::POST,
                json!({"subject": " ", "body_markdown": "B"}).to_string(),
            ),
        ),
        (
            "get",
            "/api/issues/{id}/preview",
            StatusCode::UNPROCESSABLE_ENTITY,
            app.api(
                Method::GET,
                &format!("/api/issues/{id}/preview?format=%00"),
                &token,
            ),
        ),
        (
            "post",
            "/api/issues/{id}/schedule",
            StatusCode::UNPROCESSABLE_ENTITY,
            json_body(
                &schedule,
                Method::POST,
                json!({"send_at": "2026-12-01 9am"}).to_string(),
            ),
        ),
        (
            "post",
            "/api/issues/{id}/cancel",
            StatusCode::CONFLICT,
            app.api(Method::POST, &cancel, &token),
        ),
        // Not in the spec (no such method there), and still the one shape.
        (
            "put",
            "/api/issues/{id}",
            StatusCode::METHOD_NOT_ALLOWED,
            app.api(Method::PUT, &format!("/api/issues/{id}"), &token),
        ),
    ];
    for (method, path, status, request) in cases {
        let what = format!("{method} {path} ({status})");
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{what}");
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{what}"
        );
        let body: Value = response.json().await.unwrap();
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["error", "errors"], "{what}: {body}");
        assert!(!body["error"].as_str().unwrap().is_empty(), "{what}");
        for problem in body["errors"].as_array().unwrap() {
            assert!(problem["field"].is_string() && problem["message"].is_string());
        }
        if status == StatusCode::METHOD_NOT_ALLOWED {
            continue;
        }
        let answer = &spec["paths"][path][method]["responses"][status.as_str()];
        assert_eq!(
            answer["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody",
            "{what} is not documented as an ErrorBody"
        );
    }
}

/// Every `$ref` in `value`.
fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::Object(fields) => {
            for (key, item) in fields {
                match (key.as_str(), item) {
                    ("$ref", Value::String(target)) => found.push(target),
                    _ => refs(item, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| refs(item, found)),
        _ => {}
    }
}

async fn the_spec_defines_every_schema_it_refers_to(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.api_token("ci").await;
    let spec = spec(&app, &token).await;
    let mut found = Vec::new();
    refs(&spec, &mut found);
    assert!(found.len() > 20, "{found:?}");
    for target in found {
        let pointer = target.strip_prefix('#').expect("a local reference");
        assert!(spec.pointer(pointer).is_some(), "{target} is not defined");
    }
    // Each operation documents what every route of its kind can answer.
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let mut expected = vec!["401", "422"];
            if path.contains("{id}") {
                expected.push("404");
            }
            if operation.get("requestBody").is_some() {
                expected.extend(["400", "413", "415"]);
            }
            for status in expected {
                assert!(
                    operation["responses"].get(status).is_some(),
                    "{method} {path} does not document {status}"
                );
            }
        }
    }
}

async fn what_the_schema_allows_is_accepted_up_to_each_limit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.api_token("ci").await;
    let spec = spec(&app, &token).await;
    let schema = &spec["components"]["schemas"]["NewIssueBody"]["properties"];
    let longest = |field: &str| schema[field]["maxLength"].as_u64().unwrap() as usize;
    assert_eq!(schema["list"]["enum"], json!(["in-partnership", null]));
    let create = |body: String| {
        app.api(Method::POST, "/api/issues", &token)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
    };
    // The body at its longest in characters that each take 12 bytes as JSON escapes,
    // as a client that escapes everything but ASCII (Python's json.dumps) sends it.
    let smile = "\\ud83d\\ude00";
    let body_at = |n: usize| {
        format!(
            r#"{{"subject":"{}","preheader":"{}","body_markdown":"{}","list":"in-partnership","template":"standard"}}"#,
            "é".repeat(longest("subject")),
            "p".repeat(longest("preheader")),
            smile.repeat(n)
        )
    };
    let longest_body = longest("body_markdown");
    let answer = create(body_at(longest_body)).await.unwrap();
    assert_eq!(answer.status(), StatusCode::CREATED);
    let issue: Value = answer.json().await.unwrap();
    assert_eq!(
        issue["body_markdown"].as_str().unwrap().chars().count(),
        longest_body
    );
    let answer = create(body_at(longest_body + 1)).await.unwrap();
    assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let refused: Value = answer.json().await.unwrap();
    assert_eq!(refused["errors"][0]["field"], "body_markdown");

    // A subject at its length with a space at the end is allowed; one more is not.
    let subject = format!("{} ", "s".repeat(longest("subject") - 1));
    let answer = create(json!({"subject": subject, "body_markdown": "B"}).to_string())
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::CREATED);
    let answer =
        create(json!({"subject": format!("{subject}s"), "body_markdown": "B"}).to_string())
            .await
            .unwrap();
    assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Any RFC 3339 time is a time (lower-case separators included); nothing else is.
    let id = issue["id"].as_str().unwrap();
    for (send_at, status) in [
        ("2099-12-01t09:00:00.123456789z", StatusCode::OK),
        ("2026-12-01T09:00:00", StatusCode::UNPROCESSABLE_ENTITY),
        ("+12345-01-01T00:00:00Z", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let id = if status == StatusCode::OK {
            let fresh = app
                .create_issue(&token, json!({"subject": "T", "body_markdown": "B"}))
                .await;
            fresh["id"].as_str().unwrap().to_owned()
        } else {
            id.to_owned()
        };
        let answer = app
            .api(Method::POST, &format!("/api/issues/{id}/schedule"), &token)
            .json(&json!({ "send_at": send_at }))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), status, "{send_at}");
    }
}

/// Every field of a change may be `null`, as the spec says (found by schemathesis): the
/// same as leaving it out.
async fn a_null_the_schema_allows_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.api_token("ci").await;
    let spec = spec(&app, &token).await;
    let schema = &spec["components"]["schemas"]["SubscriberChangesBody"]["properties"];
    assert!(
        schema["locality"]["enum"]
            .as_array()
            .unwrap()
            .contains(&Value::Null)
    );
    app.add_confirmed(&token, "sam@example.org").await;
    let found: Value = app
        .api(Method::GET, "/api/subscribers?search=sam", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = found["subscribers"][0]["id"].as_str().unwrap().to_owned();
    let answer = app
        .api(Method::PATCH, &format!("/api/subscribers/{id}"), &token)
        .json(&json!({"locality": null, "leave": null, "name": null, "organisation": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let person: Value = answer.json().await.unwrap();
    assert_eq!(person["name"], "Reader");
    assert_eq!(person["subscriptions"][0]["status"], "confirmed");
}
