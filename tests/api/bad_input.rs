//! Bad bytes and bad requests: a NUL, a control character or invalid UTF-8 anywhere is
//! a 422 naming the field, before any handler (and PostgreSQL) sees it; header names
//! and schemes are case-insensitive; each route's body limit fits what it accepts.

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestApp};

on_both_backends!(
    nul_control_characters_and_bad_utf8_are_a_422_naming_the_field,
    header_names_and_schemes_are_case_insensitive,
    body_limits_and_dates_fit_what_routes_accept,
);

async fn nul_control_characters_and_bad_utf8_are_a_422_naming_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let raw_form = |path: &str, body: &'static str| {
        app.client
            .post(format!("{}{path}", app.address))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    // Needs no account: the sign-in form.
    let answer = raw_form(
        "/admin/login",
        "email=a%00b%40example.org&password=x&csrf=y",
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer.text().await.unwrap().contains("“email”"));
    // And the other staff forms sent before any session.
    for path in [
        "/admin/forgot",
        "/admin/reset?token=x",
        "/admin/login/two-factor",
    ] {
        let answer = raw_form(path, "email=a%00b%40example.org&code=1&csrf=y")
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY, "{path}");
    }
    let answer = raw_form(
        "/subscriptions",
        "email=jo%40example.org&name=J%FF%FEo&consent=yes",
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer.text().await.unwrap().contains("not valid UTF-8"));
    let answer = app
        .post_json(
            "/subscriptions",
            &json!({"email": "jo@example.org", "name": "Jo\u{0}", "consent": true}),
        )
        .await;
    assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = answer.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("“name”"), "{body}");
    let answer = app.get("/subscriptions/confirm?token=%00").await;
    assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let token = app.api_token("ci").await;
    let answer = app
        .api(Method::POST, "/api/issues", &token)
        .json(&json!({"subject": "Hi\u{7}", "body_markdown": "Line one\nLine two"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = answer.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("“subject”"),
        "{body}"
    );
    // Line breaks and tabs are text.
    app.create_issue(
        &token,
        json!({"subject": "Hi", "body_markdown": "One\n\tTwo\r\n"}),
    )
    .await;

    let db = app.db.inspect().await;
    assert_eq!(db.count("SELECT count(*) FROM subscribers").await, 0);
    assert_eq!(db.count("SELECT count(*) FROM issues").await, 1);
    // Addresses with an IP for a domain are no one's newsletter address.
    let answer = app
        .post_json(
            "/subscriptions",
            &json!({"email": "d1@[127.0.0.1]", "name": "Jo", "consent": true}),
        )
        .await;
    assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

async fn header_names_and_schemes_are_case_insensitive(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let answer = app
        .client
        .post(format!("{}/subscriptions", app.address))
        .header(header::CONTENT_TYPE, "APPLICATION/JSON")
        .body(
            json!({"email": "jo@example.org", "name": "Jo", "consent": true,
                   "form_token": app.form_token().await})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let token = app.api_token("ci").await;
    let answer = app
        .client
        .post(format!("{}/api/issues", app.address))
        .header(header::AUTHORIZATION, format!("bearer {token}"))
        .header(header::CONTENT_TYPE, "Application/Json; charset=UTF-8")
        .body(json!({"subject": "Hi", "body_markdown": "News."}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::CREATED);
    let answer = app
        .client
        .get(format!("{}/api/issues", app.address))
        .header(header::AUTHORIZATION, format!("BEARER {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
}

async fn body_limits_and_dates_fit_what_routes_accept(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.api_token("ci").await;
    // An issue near its 200 KB limit is more than the 16 KiB a form may send.
    let long = "A paragraph of news from the partnership.\n\n".repeat(4_500);
    assert!(long.len() > 190_000 && long.len() < 200_000);
    let issue = app
        .create_issue(&token, json!({"subject": "Long", "body_markdown": long}))
        .await;
    let too_long = "x".repeat(600 * 1024);
    let answer = app
        .api(Method::POST, "/api/issues", &token)
        .json(&json!({"subject": "Long", "body_markdown": too_long}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let far_too_long = "x".repeat(3 * 1024 * 1024);
    let answer = app
        .api(Method::POST, "/api/issues", &token)
        .json(&json!({"subject": "Long", "body_markdown": far_too_long}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Without a token the API reads no body at all: 401, not 413.
    let answer = app
        .client
        .post(format!("{}/api/issues", app.address))
        .json(&json!({"subject": "Long", "body_markdown": far_too_long}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    let answer = app
        .post_form("/subscriptions", &[("name", &"x".repeat(20_000))])
        .await;
    assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // The staff pages take the same issue as a form, percent-encoded (a curly quote is
    // nine bytes then); a visitor's form to the sign-in page stays small.
    let staff = app.staff("editor@example.org", "editor").await;
    let curly = "A \u{2018}paragraph\u{2019} of news from the partnership.\n\n".repeat(4_000);
    assert!(curly.chars().count() < 200_000);
    let saved = app
        .staff_post(
            &staff,
            "/admin/issues",
            &[
                ("subject", "Long"),
                ("preheader", ""),
                ("body_markdown", &curly),
                ("template", "standard"),
            ],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let answer = app
        .post_form("/admin/login", &[("email", &"x".repeat(20_000))])
        .await;
    assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // A staff form's text is checked too, once the session is.
    let answer = app
        .staff_post(
            &staff,
            "/admin/issues",
            &[("subject", "Bell\u{7}"), ("body_markdown", "B")],
        )
        .await;
    assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer.text().await.unwrap().contains("“subject”"));

    let id = issue["id"].as_str().unwrap();
    for send_at in ["+10000-01-01T00:00:00Z", "-0001-01-01T00:00:00Z"] {
        let answer = app
            .api(Method::POST, &format!("/api/issues/{id}/schedule"), &token)
            .json(&json!({ "send_at": send_at }))
            .send()
            .await
            .unwrap();
        assert!(
            answer.status() == StatusCode::UNPROCESSABLE_ENTITY,
            "{send_at}: {}",
            answer.status()
        );
    }
}
