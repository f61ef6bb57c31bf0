//! The accessibility preflight, as staff meet it: an issue with problems cannot be
//! scheduled or sent until they are fixed, or someone chooses to send it anyway, which
//! is recorded with who; through the API and the staff pages alike.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestApp, staff::location};

on_both_backends!(
    problems_block_scheduling_through_the_api_unless_sent_anyway,
    the_issue_page_shows_the_findings_and_records_who_sent_it_anyway,
);

const TROUBLED: &str = "Spring dates are out: [click here](https://example.org/dates).\n\n\
![IMG_4410.jpg](https://example.org/IMG_4410.jpg)\n\n#### Stroud\n\nBOOK YOUR PLACE AT THE HUB NOW\n";

async fn problems_block_scheduling_through_the_api_unless_sent_anyway(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.api_token("comms").await;
    let issue = app
        .create_issue(
            &token,
            json!({"subject": "Spring", "body_markdown": TROUBLED}),
        )
        .await;
    let id = issue["id"].as_str().unwrap();
    let path = format!("/api/issues/{id}/schedule");

    let refused = app
        .api(Method::POST, &path, &token)
        .json(&json!({"send_at": "2030-01-01T09:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("“click here”"),
        "{body}"
    );
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 4, "{body}");
    assert!(errors.iter().all(|e| e["field"] == "send_anyway"));
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("IMG_4410.jpg")
    );
    assert_eq!(app.issue_status(&token, id).await, "draft");

    let scheduled = app
        .api(Method::POST, &path, &token)
        .json(&json!({"send_at": "2030-01-01T09:00:00Z", "send_anyway": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(scheduled.status(), StatusCode::OK);
    let issue: Value = scheduled.json().await.unwrap();
    assert_eq!(issue["status"], "scheduled");
    assert_eq!(
        issue["sent_anyway"]["by"],
        "API token \u{201c}comms\u{201d}"
    );

    // Fixed, it goes without being asked.
    let fine = app
        .create_issue(
            &token,
            json!({"subject": "Summer", "body_markdown": "Read [the summer dates](https://example.org/dates)."}),
        )
        .await;
    let fine_id = fine["id"].as_str().unwrap();
    let scheduled = app
        .api(
            Method::POST,
            &format!("/api/issues/{fine_id}/schedule"),
            &token,
        )
        .json(&json!({"send_at": "2030-01-01T09:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(scheduled.status(), StatusCode::OK);
    let issue: Value = scheduled.json().await.unwrap();
    assert_eq!(issue["sent_anyway"], Value::Null);

    // Once scheduled, a change must pass the check too.
    let changed = app
        .api(Method::PATCH, &format!("/api/issues/{fine_id}"), &token)
        .json(&json!({"body_markdown": "Dates: [click here](https://example.org/dates)."}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let issue: Value = app
        .api(Method::GET, &format!("/api/issues/{fine_id}"), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        issue["body_markdown"],
        "Read [the summer dates](https://example.org/dates)."
    );
    assert_eq!(issue["status"], "scheduled");
}

async fn the_issue_page_shows_the_findings_and_records_who_sent_it_anyway(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.confirmed_subscriber("reader@example.org").await;
    let staff = app.staff("editor@example.org", "editor").await;
    let saved = app
        .staff_post(
            &staff,
            "/admin/issues",
            &[
                ("subject", "Spring"),
                ("body_markdown", TROUBLED),
                ("template", "standard"),
            ],
        )
        .await;
    let issue = location(&saved).trim_end_matches("?done=saved").to_owned();
    let page = app.staff_get(&staff, &issue).await.text().await.unwrap();
    assert!(page.contains("<h2 id=\"preflight\">Accessibility check</h2>"));
    assert!(page.contains("<strong>4 problems</strong>"), "{page}");
    assert!(page.contains("A link says “click here”"));

    assert!(page.contains("name=\"send_anyway\""));

    let refused = app
        .staff_post(
            &staff,
            &format!("{issue}/schedule"),
            &[("date", "2030-01-01"), ("time", "09:00")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("The accessibility check found 4 problems")
    );
    let refused = app
        .staff_post(&staff, &format!("{issue}/send-now"), &[])
        .await;
    assert_eq!(
        refused.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "asked before the question"
    );

    let question = app
        .staff_post(
            &staff,
            &format!("{issue}/send-now"),
            &[("send_anyway", "yes")],
        )
        .await;
    assert_eq!(question.status(), StatusCode::OK);
    assert!(
        question
            .text()
            .await
            .unwrap()
            .contains("<input type=\"hidden\" name=\"send_anyway\" value=\"yes\">")
    );
    let sent = app
        .staff_post(
            &staff,
            &format!("{issue}/send-now"),
            &[("confirm", "yes"), ("send_anyway", "yes")],
        )
        .await;
    assert_eq!(location(&sent), format!("{issue}?done=sending"));
    app.smtp()
        .wait_for_mail_to("reader@example.org", "Spring")
        .await;
    let page = app.staff_get(&staff, &issue).await.text().await.unwrap();
    assert!(
        page.contains("Scheduled despite the accessibility check's problems by editor@example.org"),
        "{page}"
    );
}
