//! Nothing goes to everyone by accident: a time that has passed is refused (it once
//! meant "now", and a pasted example went to every subscriber), "now" must be said in
//! so many words, and the staff UI's Send now asks once more, saying to how many. A
//! draft can be deleted; a sent issue can be withdrawn from the public archive and put
//! back, with who and when recorded.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, SmtpServer, TestApp, staff::location, wait_until};

on_both_backends!(
    a_time_that_has_passed_is_refused_and_now_must_be_said,
    send_now_in_the_staff_ui_asks_once_more_with_the_count,
    drafts_are_deleted_and_sent_issues_withdrawn_and_put_back,
    the_issue_page_tells_one_story_while_it_sends,
);

async fn a_time_that_has_passed_is_refused_and_now_must_be_said(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.confirmed_subscriber("reader@example.org").await;
    let token = app.api_token("ci").await;
    let issue = app
        .create_issue(
            &token,
            json!({"subject": "Placeholder", "body_markdown": "B"}),
        )
        .await;
    let id = issue["id"].as_str().unwrap();
    let schedule = |send_at: &'static str| {
        app.api(Method::POST, &format!("/api/issues/{id}/schedule"), &token)
            .json(&json!({ "send_at": send_at }))
            .send()
    };

    let passed = schedule("2026-12-01T09:00:00Z").await.unwrap();
    assert_eq!(passed.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = passed.json().await.unwrap();
    assert_eq!(body["errors"][0]["field"], "send_at");
    assert!(
        body["error"].as_str().unwrap().contains("has passed"),
        "{body}"
    );
    let db = app.db.inspect().await;
    assert_eq!(
        db.texts("SELECT status FROM issues").await,
        [Some("draft".to_owned())],
        "a refused time changes nothing"
    );
    assert_eq!(db.count("SELECT count(*) FROM deliveries").await, 0);

    let later = schedule("2099-03-02T09:00:00Z").await.unwrap();
    assert_eq!(later.status(), StatusCode::OK);
    assert_eq!(later.json::<Value>().await.unwrap()["status"], "scheduled");

    let now = schedule("now").await.unwrap();
    assert_eq!(now.status(), StatusCode::OK);
    let status = now.json::<Value>().await.unwrap()["status"].clone();
    assert!(status == "sending" || status == "sent", "{status}");
    app.smtp().wait_for_subject("Placeholder", 1).await;
}

async fn send_now_in_the_staff_ui_asks_once_more_with_the_count(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for who in ["a", "b", "c"] {
        app.confirmed_subscriber(&format!("{who}@example.org"))
            .await;
    }
    // Someone who has not confirmed is not counted, and gets nothing.
    app.sign_up("pending@example.org").await;
    let staff = app.staff("editor@example.org", "editor").await;
    let saved = app
        .staff_post(
            &staff,
            "/admin/issues",
            &[
                ("subject", "Winter news"),
                ("preheader", ""),
                ("body_markdown", "Hello."),
                ("template", "standard"),
            ],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let issue = location(&saved).trim_end_matches("?done=saved").to_owned();

    let passed = app
        .staff_post(
            &staff,
            &format!("{issue}/schedule"),
            &[("date", "2020-01-01"), ("time", "09:00")],
        )
        .await;
    assert_eq!(passed.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = passed.text().await.unwrap();
    assert!(page.contains("That time has passed"), "{page}");
    assert!(page.contains(r#"id="send_at-error""#));

    let question = app
        .staff_post(&staff, &format!("{issue}/send-now"), &[])
        .await;
    assert_eq!(question.status(), StatusCode::OK);
    let page = question.text().await.unwrap();
    assert!(page.contains("Yes, send it now to 3 people"), "{page}");
    let db = app.db.inspect().await;
    assert_eq!(
        db.texts("SELECT status FROM issues").await,
        [Some("draft".to_owned())],
        "asking is not sending"
    );

    let sent = app
        .staff_post(&staff, &format!("{issue}/send-now"), &[("confirm", "yes")])
        .await;
    assert_eq!(location(&sent), format!("{issue}?done=sending"));
    let copies = app.smtp().wait_for_subject("Winter news", 3).await;
    assert!(copies.iter().all(|m| m.to != ["pending@example.org"]));

    // Once it has gone, Send now is refused with the reason.
    let again = app
        .staff_post(&staff, &format!("{issue}/send-now"), &[])
        .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert!(
        again
            .text()
            .await
            .unwrap()
            .contains("only a draft or a scheduled issue can be sent")
    );
}

async fn drafts_are_deleted_and_sent_issues_withdrawn_and_put_back(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.confirmed_subscriber("reader@example.org").await;
    let token = app.api_token("ci").await;
    let call = |method: Method, path: String| app.api(method, &path, &token).send();

    let draft = app
        .create_issue(
            &token,
            json!({"subject": "Placeholder", "body_markdown": "B"}),
        )
        .await;
    let draft = draft["id"].as_str().unwrap();
    let deleted = call(Method::DELETE, format!("/api/issues/{draft}"))
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    for method in [Method::GET, Method::DELETE] {
        let gone = call(method, format!("/api/issues/{draft}")).await.unwrap();
        assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    }

    let sent = app.send_issue(&token, "Winter news").await;
    wait_until("the issue is sent", || async {
        app.issue_status(&token, &sent).await == "sent"
    })
    .await;
    let refused = call(Method::DELETE, format!("/api/issues/{sent}"))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("withdraw"),
        "{body}"
    );
    let public = || async {
        let archive = app.get("/archive").await.text().await.unwrap();
        let feed = app.get("/archive/feed.xml").await.text().await.unwrap();
        (
            archive.contains("Winter news"),
            feed.contains("Winter news"),
        )
    };
    assert_eq!(public().await, (true, true));
    let archive = app.get("/archive").await.text().await.unwrap();
    let slug = archive
        .split("href=\"/archive/")
        .map(|rest| rest.split('"').next().unwrap())
        .find(|slug| slug.starts_with("winter-news"))
        .unwrap()
        .to_owned();

    let withdrawn = call(Method::POST, format!("/api/issues/{sent}/withdraw"))
        .await
        .unwrap();
    assert_eq!(withdrawn.status(), StatusCode::OK);
    let issue: Value = withdrawn.json().await.unwrap();
    assert_eq!(issue["withdrawn"]["by"], "API token \u{201c}ci\u{201d}");
    assert_eq!(public().await, (false, false));
    let page = app.get(&format!("/archive/{slug}")).await;
    assert_eq!(page.status(), StatusCode::NOT_FOUND);

    // Staff see who withdrew it, and put it back from the issue's page.
    let staff = app.staff("editor@example.org", "editor").await;
    let path = format!("/admin/issues/{sent}");
    let page = app.staff_get(&staff, &path).await.text().await.unwrap();
    assert!(page.contains("Withdrawn from the archive and its feed by API token"));
    let restored = app
        .staff_post(&staff, &format!("{path}/restore"), &[])
        .await;
    assert_eq!(location(&restored), format!("{path}?done=restored"));
    assert_eq!(public().await, (true, true));
    assert_eq!(
        app.get(&format!("/archive/{slug}")).await.status(),
        StatusCode::OK
    );

    let db = app.db.inspect().await;
    assert_eq!(
        db.texts(
            "SELECT change || ' by ' || changed_by FROM issue_archive_changes ORDER BY changed_at"
        )
        .await,
        [
            Some("withdrawn by API token \u{201c}ci\u{201d}".to_owned()),
            Some("restored by editor@example.org".to_owned()),
        ]
    );

    // Only a sent issue is in the archive; only a draft can be deleted, from its page too.
    let saved = app
        .staff_post(
            &staff,
            "/admin/issues",
            &[
                ("subject", "Second thoughts"),
                ("preheader", ""),
                ("body_markdown", "B"),
                ("template", "standard"),
            ],
        )
        .await;
    let draft = location(&saved).trim_end_matches("?done=saved").to_owned();
    let id = draft.rsplit('/').next().unwrap();
    let refused = call(Method::POST, format!("/api/issues/{id}/withdraw"))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    let deleted = app
        .staff_post(&staff, &format!("{draft}/delete"), &[])
        .await;
    assert_eq!(location(&deleted), "/admin/issues?done=deleted");
    assert_eq!(
        db.count("SELECT count(*) FROM issues").await,
        1,
        "only the sent issue is left"
    );
}

async fn the_issue_page_tells_one_story_while_it_sends(backend: Backend) {
    let smtp = SmtpServer::start().await;
    // One copy a second, so the send is still going when the page is read.
    let mut app = TestApp::spawn_with(backend, |s| s.mail.rate_per_second = 1, &smtp.url()).await;
    app.smtp = Some(smtp);
    for who in ["a", "b", "c", "d"] {
        app.confirmed_subscriber(&format!("{who}@example.org"))
            .await;
    }
    let staff = app.staff("editor@example.org", "editor").await;
    let saved = app
        .staff_post(
            &staff,
            "/admin/issues",
            &[
                ("subject", "Slowly"),
                ("preheader", ""),
                ("body_markdown", "Hello."),
                ("template", "standard"),
            ],
        )
        .await;
    let issue = location(&saved).trim_end_matches("?done=saved").to_owned();
    let scheduled = app
        .staff_post(
            &staff,
            &format!("{issue}/schedule"),
            &[("date", "2099-01-01"), ("time", "09:00")],
        )
        .await;
    assert_eq!(location(&scheduled), format!("{issue}?done=scheduled"));
    let page = app
        .staff_get(&staff, &format!("{issue}?done=scheduled"))
        .await
        .text()
        .await
        .unwrap();
    // A scheduled issue's page follows its status, for when the time comes.
    assert!(page.contains(r#"data-status="scheduled""#));
    assert!(page.contains(r#"<script src="/admin/progress.js" defer></script>"#));
    assert!(page.contains("Scheduled."));

    // Sent now, the page it lands on already says sending: no edit form, one set of
    // numbers (the progress, not a report beside it).
    let sent = app
        .staff_post(&staff, &format!("{issue}/send-now"), &[("confirm", "yes")])
        .await;
    let landed = location(&sent).to_owned();
    assert_eq!(landed, format!("{issue}?done=sending"));
    let page = app.staff_get(&staff, &landed).await.text().await.unwrap();
    assert!(page.contains("Status: <strong>sending</strong>"), "{page}");
    assert!(page.contains("Sending now."));
    assert!(
        !page.contains(r#"name="subject""#),
        "no edit form while it sends"
    );
    assert!(page.contains(r#"<progress id="progress""#));
    assert!(!page.contains("<h2>Report</h2>"), "one set of numbers");
    // The "Scheduled." notice is not true any more, whatever the address says.
    let page = app
        .staff_get(&staff, &format!("{issue}?done=scheduled"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("Scheduled."));

    let token = app.api_token("ci").await;
    let id = issue.rsplit('/').next().unwrap();
    wait_until("the issue is sent", || async {
        app.issue_status(&token, id).await == "sent"
    })
    .await;
    let page = app.staff_get(&staff, &landed).await.text().await.unwrap();
    assert!(page.contains("Status: <strong>sent</strong>"));
    assert!(
        !page.contains("Sending now."),
        "the notice went with the send"
    );
    assert!(page.contains("<h2>Report</h2>"));
    assert!(
        !page.contains("progress.js"),
        "a sent issue does not change by itself"
    );
}
