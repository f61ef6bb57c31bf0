//! The issue pages of the staff UI, used as comms staff would: write an issue, see
//! its preview, send a test, schedule it in UK time, watch it go, pause and resume.

use reqwest::StatusCode;
use serde_json::Value;

use crate::on_both_backends;
use crate::support::{
    Backend, SmtpServer, TestApp,
    staff::{StaffSession, location},
    wait_until,
};

on_both_backends!(
    an_editor_writes_previews_tests_and_sends_an_issue,
    a_scheduled_time_is_uk_time,
    a_send_in_progress_shows_its_progress_and_pauses,
    refusals_are_explained_on_the_page,
    test_copies_are_limited_per_staff_member,
);

/// Writes an issue through the editor; returns its page's path.
async fn write_issue(app: &TestApp, staff: &StaffSession, subject: &str) -> String {
    let saved = app
        .staff_post(
            staff,
            "/admin/issues",
            &[
                ("subject", subject),
                ("preheader", "From the partnership"),
                ("body_markdown", "## This quarter\n\nHello **everyone**."),
                ("template", "standard"),
            ],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let location = location(&saved).to_owned();
    assert!(location.ends_with("?done=saved"), "{location}");
    location.trim_end_matches("?done=saved").to_owned()
}

/// Presses Send now, and says yes when asked.
async fn send_now(app: &TestApp, staff: &StaffSession, issue: &str) -> reqwest::Response {
    let path = format!("{issue}/send-now");
    let question = app.staff_post(staff, &path, &[]).await;
    assert_eq!(question.status(), StatusCode::OK);
    assert!(
        question
            .text()
            .await
            .unwrap()
            .contains("Yes, send it now to")
    );
    app.staff_post(staff, &path, &[("confirm", "yes")]).await
}

async fn page(app: &TestApp, staff: &StaffSession, path: &str) -> String {
    let response = app.staff_get(staff, path).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.text().await.unwrap()
}

async fn progress(app: &TestApp, staff: &StaffSession, issue: &str) -> Value {
    app.staff_get(staff, &format!("{issue}/progress"))
        .await
        .json()
        .await
        .unwrap()
}

async fn an_editor_writes_previews_tests_and_sends_an_issue(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.confirmed_subscriber("reader@example.org").await;
    let staff = app.staff("editor@example.org", "editor").await;

    let blank = app
        .staff_post(
            &staff,
            "/admin/issues",
            &[("subject", ""), ("body_markdown", "")],
        )
        .await;
    assert_eq!(blank.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = blank.text().await.unwrap();
    assert!(html.contains("There is a problem"));
    assert!(html.contains(r##"<a href="#subject">Give the issue a subject.</a>"##));
    assert!(html.contains(r#"aria-describedby="subject-error""#));

    let issue = write_issue(&app, &staff, "Winter news").await;
    let html = page(&app, &staff, &format!("{issue}?done=saved")).await;
    assert!(html.contains("Saved."));
    assert!(html.contains("Status: <strong>draft</strong>"));
    assert!(html.contains("Hello everyone."), "the text part is shown");
    let preview = app.staff_get(&staff, &format!("{issue}/preview")).await;
    assert_eq!(preview.status(), StatusCode::OK);
    assert_eq!(preview.headers()["x-frame-options"], "SAMEORIGIN");
    assert!(
        preview
            .text()
            .await
            .unwrap()
            .contains("<strong>everyone</strong>")
    );

    let edited = app
        .staff_post(
            &staff,
            &issue,
            &[
                ("subject", "Winter news, edited"),
                ("preheader", ""),
                ("body_markdown", "Hello again."),
                ("template", "standard"),
            ],
        )
        .await;
    assert_eq!(edited.status(), StatusCode::SEE_OTHER);
    assert!(
        page(&app, &staff, &issue)
            .await
            .contains("<h1>Winter news, edited</h1>")
    );

    let test = app
        .staff_post(
            &staff,
            &format!("{issue}/test"),
            &[("email", "editor@example.org")],
        )
        .await;
    assert_eq!(location(&test), format!("{issue}?done=test"));
    let copy = app
        .smtp()
        .wait_for_mail_to("editor@example.org", "[Test] Winter news, edited")
        .await;
    assert!(copy.decoded().contains("Hello again."));

    let scheduled = send_now(&app, &staff, &issue).await;
    assert_eq!(location(&scheduled), format!("{issue}?done=sending"));
    let copy = app
        .smtp()
        .wait_for_mail_to("reader@example.org", "Winter news, edited")
        .await;
    wait_until("the issue is sent", || async {
        progress(&app, &staff, &issue).await["status"] == "sent"
    })
    .await;
    let html = page(&app, &staff, &issue).await;
    assert!(html.contains("<h2>Report</h2>"));
    assert!(
        !html.contains("<h2>Edit</h2>"),
        "a sent issue cannot be edited"
    );
    let numbers = progress(&app, &staff, &issue).await;
    assert_eq!(
        (numbers["recipients"].clone(), numbers["sent"].clone()),
        (1.into(), 1.into())
    );
    assert!(!html.contains("Unsubscribes from this issue"));

    // The reader leaves with their mail client's one-click button: the report counts it
    // against this issue, on today's date.
    let header = copy
        .header("List-Unsubscribe")
        .expect("a List-Unsubscribe header");
    let link = header
        .split(['<', '>'])
        .find(|part| part.starts_with("http"))
        .unwrap()
        .replace("http://newsletter.test", &app.address);
    let left = app
        .client
        .post(link)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(left.status(), StatusCode::OK);
    let html = page(&app, &staff, &issue).await;
    let today = newsletter::time::uk_date(chrono::Utc::now());
    assert!(
        html.contains(&format!(
            r#"<tr><td>{today}</td><td class="number">1</td><td class="number">1</td></tr>"#
        )),
        "{html}"
    );

    let list = page(&app, &staff, "/admin/issues").await;
    assert!(list.contains("Winter news, edited"));
    assert!(
        page(&app, &staff, "/admin")
            .await
            .contains("Winter news, edited")
    );
}

async fn a_scheduled_time_is_uk_time(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let staff = app.staff("editor@example.org", "editor").await;
    let issue = write_issue(&app, &staff, "Summer news").await;

    let gap = app
        .staff_post(
            &staff,
            &format!("{issue}/schedule"),
            &[("date", "2030-03-31"), ("time", "01:30")],
        )
        .await;
    assert_eq!(gap.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        gap.text()
            .await
            .unwrap()
            .contains("does not exist in the UK")
    );

    let scheduled = app
        .staff_post(
            &staff,
            &format!("{issue}/schedule"),
            &[("date", "2030-07-01"), ("time", "09:30")],
        )
        .await;
    assert_eq!(scheduled.status(), StatusCode::SEE_OTHER);
    let token = app.api_token("ci").await;
    let id = issue.rsplit('/').next().unwrap();
    let api: Value = app
        .api(reqwest::Method::GET, &format!("/api/issues/{id}"), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(api["status"], "scheduled");
    assert!(
        api["send_at"]
            .as_str()
            .unwrap()
            .starts_with("2030-07-01T08:30:00"),
        "9:30 in London in July is 8:30 UTC: {}",
        api["send_at"]
    );
    let html = page(&app, &staff, &issue).await;
    assert!(
        html.contains("Monday 1 July 2030 at 09:30 (UK time)"),
        "shown back in UK time"
    );
    assert!(html.contains(r#"value="09:30""#));
}

async fn a_send_in_progress_shows_its_progress_and_pauses(backend: Backend) {
    let smtp = SmtpServer::start().await;
    // One copy a second, so the send is still going when the page is read.
    let mut app = TestApp::spawn_with(backend, |s| s.mail.rate_per_second = 1, &smtp.url()).await;
    app.smtp = Some(smtp);
    for who in ["a", "b", "c", "d"] {
        app.confirmed_subscriber(&format!("{who}@example.org"))
            .await;
    }
    let staff = app.staff("editor@example.org", "editor").await;
    let issue = write_issue(&app, &staff, "Slowly").await;
    send_now(&app, &staff, &issue).await;
    app.smtp().wait_for_subject("Slowly", 1).await;

    let html = page(&app, &staff, &issue).await;
    assert!(
        html.contains(r#"<progress id="progress" max="4""#),
        "{html}"
    );
    assert!(html.contains(r#"<script src="/admin/progress.js" defer></script>"#));
    let script = app.staff_get(&staff, "/admin/progress.js").await;
    assert!(
        script
            .text()
            .await
            .unwrap()
            .contains("getElementById(\"progress\")")
    );

    let paused = app.staff_post(&staff, &format!("{issue}/pause"), &[]).await;
    assert_eq!(location(&paused), format!("{issue}?done=paused"));
    let html = page(&app, &staff, &issue).await;
    assert!(html.contains("Resume sending"));
    assert_eq!(progress(&app, &staff, &issue).await["status"], "paused");

    let resumed = app
        .staff_post(&staff, &format!("{issue}/resume"), &[])
        .await;
    assert_eq!(location(&resumed), format!("{issue}?done=resumed"));
    wait_until("the issue is sent", || async {
        progress(&app, &staff, &issue).await["status"] == "sent"
    })
    .await;
    assert_eq!(app.smtp().with_subject("Slowly").len(), 4);
}

async fn refusals_are_explained_on_the_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let staff = app.staff("editor@example.org", "editor").await;
    let issue = write_issue(&app, &staff, "Twice").await;
    let cancelled = app
        .staff_post(&staff, &format!("{issue}/cancel"), &[])
        .await;
    assert_eq!(location(&cancelled), format!("{issue}?done=cancelled"));

    let again = app
        .staff_post(&staff, &format!("{issue}/cancel"), &[])
        .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert!(
        again
            .text()
            .await
            .unwrap()
            .contains("is not cancelled already, can be cancelled")
    );
    let edit = app
        .staff_post(
            &staff,
            &issue,
            &[
                ("subject", "Changed"),
                ("preheader", ""),
                ("body_markdown", "New."),
                ("template", "standard"),
            ],
        )
        .await;
    assert_eq!(edit.status(), StatusCode::CONFLICT);
    assert!(
        edit.text()
            .await
            .unwrap()
            .contains("only a draft or scheduled issue can be changed")
    );

    for path in [
        "/admin/issues/not-an-id",
        "/admin/issues/01a20000-0000-7000-8000-000000000000",
    ] {
        assert_eq!(
            app.staff_get(&staff, path).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
}

async fn test_copies_are_limited_per_staff_member(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let staff = app.staff("editor@example.org", "editor").await;
    let issue = write_issue(&app, &staff, "Winter news").await;
    let limit = newsletter::web::issue_actions::TEST_COPIES_PER_HOUR;
    for _ in 0..limit {
        let sent = app
            .staff_post(
                &staff,
                &format!("{issue}/test"),
                &[("email", "editor@example.org")],
            )
            .await;
        assert_eq!(location(&sent), format!("{issue}?done=test"));
    }
    let refused = app
        .staff_post(
            &staff,
            &format!("{issue}/test"),
            &[("email", "editor@example.org")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("test copies in the last hour")
    );
    // Someone else on the team is not held up.
    let other = app.staff("colleague@example.org", "editor").await;
    let sent = app
        .staff_post(
            &other,
            &format!("{issue}/test"),
            &[("email", "colleague@example.org")],
        )
        .await;
    assert_eq!(location(&sent), format!("{issue}?done=test"));
}
