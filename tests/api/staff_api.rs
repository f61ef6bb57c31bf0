//! The staff API: tokens from the command line, 401 without one on every route, the
//! OpenAPI document against the routes, and issues created, read and changed.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestApp, admin};

on_both_backends!(
    every_api_route_needs_a_live_token,
    the_spec_describes_routes_that_exist,
    tokens_are_made_once_per_name_and_stored_hashed,
    issues_are_created_listed_read_and_changed,
    bad_issue_input_is_a_4xx_naming_the_problem,
    an_issue_that_has_gone_out_cannot_be_changed,
    the_preview_is_the_mail_a_recipient_sees,
    an_image_without_a_description_is_refused,
    dangerous_links_are_refused_at_save_and_schedule_and_never_rendered,
    a_test_copy_goes_to_one_address_marked_as_a_test,
    test_copies_are_limited_per_token,
);

/// Every (method, path) the spec lists, with `{id}` filled in, plus the spec itself.
async fn operations(app: &TestApp, token: &str) -> Vec<(Method, String)> {
    let spec: Value = app
        .api(Method::GET, "/api/openapi.json", token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut operations = vec![(Method::GET, "/api/openapi.json".to_owned())];
    for (path, item) in spec["paths"].as_object().expect("the spec has paths") {
        for method in item.as_object().unwrap().keys() {
            let path = path.replace("{id}", &uuid::Uuid::now_v7().to_string());
            operations.push((method.to_uppercase().parse().unwrap(), path));
        }
    }
    operations
}

async fn every_api_route_needs_a_live_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.api_token("ci").await;
    // The providers' webhooks are in the spec too, and need no token: each checks its
    // provider's signature instead (tests/api/webhooks.rs).
    let operations: Vec<_> = operations(&app, &token)
        .await
        .into_iter()
        .filter(|(_, path)| !path.starts_with("/webhooks/"))
        .collect();
    assert!(operations.len() >= 5, "{operations:?}");

    let refused = |response: reqwest::Response, what: String| async move {
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer", "{what}");
        assert!(
            response.json::<Value>().await.unwrap()["error"].is_string(),
            "{what}"
        );
    };
    for (method, path) in &operations {
        let none = app
            .client
            .request(method.clone(), format!("{}{path}", app.address))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        refused(none, format!("{method} {path} without a token")).await;
        let wrong = app
            .api(method.clone(), path, "nl_not-a-real-token")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        refused(wrong, format!("{method} {path} with a wrong token")).await;
    }

    let revoked = admin(&app.db.url, &["revoke-token", "ci"]).await;
    assert!(revoked.status.success());
    for (method, path) in &operations {
        let response = app.api(method.clone(), path, &token).send().await.unwrap();
        refused(response, format!("{method} {path} with a revoked token")).await;
    }
}

async fn the_spec_describes_routes_that_exist(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.api_token("ci").await;

    for (method, path) in operations(&app, &token).await {
        let response = app
            .api(method.clone(), &path, &token)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        // A route that is not there answers 404 or 405 with an empty body; ours say why.
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        let body = response.text().await.unwrap();
        if status == StatusCode::NOT_FOUND {
            assert!(
                body.contains("no issue")
                    || body.contains("not set up")
                    || body.contains("no such subscriber")
                    || body.contains("no list with that slug"),
                "{method} {path}: {body}"
            );
        }
    }
}

async fn tokens_are_made_once_per_name_and_stored_hashed(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let token = app.api_token("Comms team").await;
    let again = admin(&app.db.url, &["create-token", "Comms team"]).await;

    assert!(token.starts_with("nl_") && token.len() > 40, "{token}");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already a token"));
    let db = app.db.inspect().await;
    assert!(
        !db.dump().await.contains(&token),
        "the token is stored in clear"
    );
    let unknown = admin(&app.db.url, &["revoke-token", "Nobody"]).await;
    assert!(!unknown.status.success());
    // Once revoked, the name is free again.
    assert!(
        admin(&app.db.url, &["revoke-token", "Comms team"])
            .await
            .status
            .success()
    );
    let fresh = app.api_token("Comms team").await;
    assert_ne!(fresh, token);
    let ok = app
        .api(Method::GET, "/api/issues", &fresh)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
}

async fn issues_are_created_listed_read_and_changed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.api_token("ci").await;

    let created = app
        .api(Method::POST, "/api/issues", &token)
        .json(&json!({
            "subject": "  In Partnership: winter 2026 ",
            "preheader": "Know Your Patch, ILP news and more",
            "body_markdown": "# Welcome\n\nNews from the **VCSE Strategic Partnership**.",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let issue: Value = created.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/issues/{}", issue["id"].as_str().unwrap())
    );
    assert_eq!(issue["subject"], "In Partnership: winter 2026");
    assert_eq!(issue["status"], "draft");
    assert_eq!(issue["template"], "standard");
    assert_eq!(issue["list"], "in-partnership");
    assert!(issue["send_at"].is_null());

    let second = app
        .api(Method::POST, "/api/issues", &token)
        .json(&json!({"subject": "Spring 2027", "body_markdown": "Later."}))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), StatusCode::CREATED);
    let listed: Vec<Value> = app
        .api(Method::GET, "/api/issues", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let subjects: Vec<&str> = listed
        .iter()
        .map(|i| i["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, vec!["Spring 2027", "In Partnership: winter 2026"]);

    let changed = app
        .api(Method::PATCH, &location, &token)
        .json(&json!({"preheader": "Updated preheader"}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    let read: Value = app
        .api(Method::GET, &location, &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["preheader"], "Updated preheader");
    assert_eq!(
        read["subject"], "In Partnership: winter 2026",
        "untouched fields stay"
    );
    assert_eq!(read["body_markdown"], issue["body_markdown"]);
}

async fn bad_issue_input_is_a_4xx_naming_the_problem(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.api_token("ci").await;
    let post = |body: Value| {
        app.api(Method::POST, "/api/issues", &token)
            .json(&body)
            .send()
    };
    let fields = |answer: Value| -> Vec<String> {
        answer["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_owned())
            .collect()
    };

    let empty = post(json!({})).await.unwrap();
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        fields(empty.json().await.unwrap()),
        ["subject", "body_markdown"]
    );

    let wrong = post(json!({
        "subject": "x".repeat(201), "body_markdown": "Hi", "template": "glossy", "list": "nope"
    }))
    .await
    .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        fields(wrong.json().await.unwrap()),
        ["subject", "template", "list"]
    );

    let unknown_field = post(json!({"subject": "S", "body_markdown": "B", "colour": "red"}))
        .await
        .unwrap();
    assert_eq!(unknown_field.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        unknown_field.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("colour")
    );

    let broken = app
        .api(Method::POST, "/api/issues", &token)
        .header("content-type", "application/json")
        .body("{\"subject\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status(), StatusCode::BAD_REQUEST);
    let not_json = app
        .api(Method::POST, "/api/issues", &token)
        .body("subject=x")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let db = app.db.inspect().await;
    assert_eq!(db.count("SELECT count(*) FROM issues").await, 0);
}

async fn an_issue_that_has_gone_out_cannot_be_changed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.api_token("ci").await;
    let issue = app
        .create_issue(
            &token,
            json!({"subject": "Autumn", "body_markdown": "News."}),
        )
        .await;
    let path = format!("/api/issues/{}", issue["id"].as_str().unwrap());
    // Sending arrives with the scheduler; here the issue is marked sent directly.
    app.db
        .inspect()
        .await
        .execute("UPDATE issues SET status = 'sent'")
        .await;

    let response = app
        .api(Method::PATCH, &path, &token)
        .json(&json!({"subject": "Too late"}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(
        response.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("This issue is sent")
    );
    let read: Value = app
        .api(Method::GET, &path, &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["subject"], "Autumn");
    for missing in [
        format!("/api/issues/{}", uuid::Uuid::now_v7()),
        "/api/issues/not-a-uuid".into(),
    ] {
        let response = app.api(Method::GET, &missing, &token).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{missing}");
    }
}

async fn the_preview_is_the_mail_a_recipient_sees(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.api_token("ci").await;
    let issue = app.create_issue(&token, json!({
            "subject": "Winter 2026",
            "preheader": "Know Your Patch and more",
            "body_markdown": "## Know Your Patch\n\nMeet the [networks](https://example.org/kyp).\n\n![Volunteers in Stroud](https://example.org/v.jpg)\n",
        })).await;
    let path = format!("/api/issues/{}/preview", issue["id"].as_str().unwrap());

    let html = app.api(Method::GET, &path, &token).send().await.unwrap();
    assert_eq!(html.status(), StatusCode::OK);
    assert_eq!(html.headers()["content-type"], "text/html; charset=utf-8");
    let html = html.text().await.unwrap();
    assert!(html.contains("<html lang=\"en-GB\">"));
    assert!(html.contains("<title>Winter 2026</title>"));
    assert!(html.contains("Know Your Patch and more"), "the preheader");
    assert!(html.contains("<h2 style="));
    assert!(html.contains("<a href=\"https://example.org/kyp\" style="));
    assert!(html.contains("alt=\"Volunteers in Stroud\""));
    assert!(html.contains("href=\"http://newsletter.test/unsubscribe?token="));
    assert!(html.contains(">Unsubscribe</a>"));

    let text = app
        .api(Method::GET, &format!("{path}?format=text"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(text.headers()["content-type"], "text/plain; charset=utf-8");
    let text = text.text().await.unwrap();
    assert!(text.starts_with("Winter 2026\n"));
    assert!(text.contains("Meet the networks (https://example.org/kyp)."));
    assert!(text.contains("[Image: Volunteers in Stroud]"));
    assert!(text.contains("http://newsletter.test/unsubscribe?token="));

    let pdf = app
        .api(Method::GET, &format!("{path}?format=pdf"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(pdf.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

async fn an_image_without_a_description_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.api_token("ci").await;

    let response = app
        .api(Method::POST, "/api/issues", &token)
        .json(&json!({"subject": "Photos", "body_markdown": "![](https://example.org/a.jpg)"}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["errors"][0]["field"], "body_markdown");
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("https://example.org/a.jpg")
    );
}

async fn dangerous_links_are_refused_at_save_and_schedule_and_never_rendered(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.api_token("ci").await;
    for body in [
        "[Open](JaVaScRiPt:alert(1))",
        "[Open](javascript&#58;alert(1))",
        "<javascript:alert(1)>",
        "![A chart](data:image/svg+xml;base64,PHN2Zz4=)",
    ] {
        let response = app
            .api(Method::POST, "/api/issues", &token)
            .json(&json!({"subject": "Links", "body_markdown": body}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}"
        );
        let answer: Value = response.json().await.unwrap();
        let message = answer["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("“") && message.contains(":"), "{message}");
    }
    let issue = app
        .create_issue(
            &token,
            json!({"subject": "Links", "body_markdown": "[Safe](https://example.org)"}),
        )
        .await;
    let id = issue["id"].as_str().unwrap();
    let patched = app
        .api(Method::PATCH, &format!("/api/issues/{id}"), &token)
        .json(&json!({"body_markdown": "[Open](vbscript:msgbox)"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(patched.text().await.unwrap().contains("vbscript:msgbox"));

    // Content stored before the rules existed: refused at schedule, inert in previews.
    app.db
        .inspect()
        .await
        .execute("UPDATE issues SET body_markdown = '[Open](javascript:alert(1)) and [ok](https://example.org)'")
        .await;
    let scheduled = app
        .api(Method::POST, &format!("/api/issues/{id}/schedule"), &token)
        .json(&json!({"send_at": "now"}))
        .send()
        .await
        .unwrap();
    assert_eq!(scheduled.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        scheduled
            .text()
            .await
            .unwrap()
            .contains("javascript:alert(1)")
    );
    let preview = app
        .api(Method::GET, &format!("/api/issues/{id}/preview"), &token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!preview.contains("href=\"javascript"), "{preview}");
    assert!(preview.contains("href=\"https://example.org\""));
}

async fn a_test_copy_goes_to_one_address_marked_as_a_test(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.confirmed_subscriber("reader@example.org").await;
    let token = app.api_token("ci").await;
    let issue = app
        .create_issue(
            &token,
            json!({"subject": "Draft news", "body_markdown": "Almost ready."}),
        )
        .await;
    let path = format!("/api/issues/{}/test", issue["id"].as_str().unwrap());

    let queued = app
        .api(Method::POST, &path, &token)
        .json(&json!({"email": "editor@example.org"}))
        .send()
        .await
        .unwrap();

    assert_eq!(queued.status(), StatusCode::ACCEPTED);
    let copy = app
        .smtp()
        .wait_for_mail_to("editor@example.org", "[Test] Draft news")
        .await;
    assert!(copy.decoded().contains("Almost ready."));
    assert_eq!(
        app.issue_status(&token, issue["id"].as_str().unwrap())
            .await,
        "draft"
    );
    assert!(
        app.smtp().with_subject("Draft news").is_empty(),
        "nobody else receives anything"
    );
    let bad = app
        .api(Method::POST, &path, &token)
        .json(&json!({"email": "not an address"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let missing = app
        .api(
            Method::POST,
            &format!("/api/issues/{}/test", uuid::Uuid::now_v7()),
            &token,
        )
        .json(&json!({"email": "editor@example.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

async fn test_copies_are_limited_per_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.api_token("ci").await;
    let issue = app
        .create_issue(
            &token,
            json!({"subject": "Draft", "body_markdown": "Nearly."}),
        )
        .await;
    let id = issue["id"].as_str().unwrap();
    let send = |token: String, n: usize| {
        app.api(Method::POST, &format!("/api/issues/{id}/test"), &token)
            .json(&json!({ "email": format!("someone{n}@example.org") }))
            .send()
    };
    let limit = newsletter::web::issue_actions::TEST_COPIES_PER_HOUR as usize;
    for n in 0..limit {
        assert_eq!(
            send(token.clone(), n).await.unwrap().status(),
            StatusCode::ACCEPTED
        );
    }
    let refused = send(token.clone(), limit).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.text().await.unwrap().contains("test copies"));
    // Another token has its own allowance.
    let other = app.api_token("another").await;
    assert_eq!(
        send(other, 99).await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    let db = app.db.inspect().await;
    assert_eq!(
        db.count("SELECT count(*) FROM outbox WHERE kind = 'issue_test'")
            .await,
        limit as i64 + 1
    );
}
