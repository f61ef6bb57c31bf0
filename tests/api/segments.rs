//! Segments: an issue to part of its list (localities, organisation given or not,
//! signed up before or after a day) reaches only the people in it; the editor and the
//! Send now step say how many that is; a segment is typed conditions, never SQL.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestApp};

on_both_backends!(
    an_issue_to_the_stroud_segment_reaches_only_stroud,
    organisation_and_sign_up_day_narrow_the_segment,
    the_segment_is_read_when_the_issue_starts,
    a_segment_that_is_not_typed_conditions_is_refused,
    the_editor_saves_a_segment_and_says_whom_it_reaches,
    send_now_says_how_many_the_segment_reaches,
);

/// stroud@ (Stroud, with an organisation) and forest@ (Forest of Dean, none).
async fn two_localities(app: &TestApp) {
    app.confirmed_subscriber_with("stroud@example.org", &[("locality", "stroud")])
        .await;
    app.confirmed_subscriber_with(
        "forest@example.org",
        &[("locality", "forest-of-dean"), ("organisation", "")],
    )
    .await;
}

async fn issue_to(app: &TestApp, token: &str, segment: Value) -> String {
    let issue = app
        .create_issue(
            token,
            json!({
                "subject": "Stroud news",
                "body_markdown": "## Stroud\n\nNews for [Stroud](https://example.org/).",
                "segment": segment,
            }),
        )
        .await;
    issue["id"].as_str().unwrap().to_owned()
}

/// Who got the issue with this subject.
fn recipients(app: &TestApp, subject: &str) -> Vec<String> {
    let mut to: Vec<String> = app
        .smtp()
        .with_subject(subject)
        .into_iter()
        .flat_map(|m| m.to)
        .collect();
    to.sort();
    to
}

async fn an_issue_to_the_stroud_segment_reaches_only_stroud(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    two_localities(&app).await;
    let token = app.api_token("ci").await;

    let id = issue_to(
        &app,
        &token,
        json!([{"field": "locality", "operator": "in", "value": ["stroud"]}]),
    )
    .await;
    let issue: Value = app
        .api(Method::GET, &format!("/api/issues/{id}"), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        issue["segment"],
        json!([{"field": "locality", "operator": "in", "value": ["stroud"]}])
    );
    app.send_now_and_wait(&token, &id).await;
    assert_eq!(recipients(&app, "Stroud news"), vec!["stroud@example.org"]);
    assert_eq!(app.stats(&token, &id).await["recipients"], 1);

    // Everyone outside Stroud: the other one.
    let rest = issue_to(
        &app,
        &token,
        json!([{"field": "locality", "operator": "not_in", "value": ["stroud"]}]),
    )
    .await;
    app.send_now_and_wait(&token, &rest).await;
    assert_eq!(app.stats(&token, &rest).await["recipients"], 1);
    assert_eq!(
        recipients(&app, "Stroud news"),
        vec!["forest@example.org", "stroud@example.org"]
    );
}

/// How many the editor's count says the segment fields reach.
async fn reach(app: &TestApp, staff: &crate::support::staff::StaffSession, query: &str) -> Value {
    let response = app.staff_get(staff, &format!("/admin/reach?{query}")).await;
    assert_eq!(response.status(), StatusCode::OK, "{query}");
    response.json().await.unwrap()
}

async fn organisation_and_sign_up_day_narrow_the_segment(backend: Backend) {
    let app = TestApp::spawn(backend.clone()).await;
    two_localities(&app).await;
    app.confirmed_subscriber_with("cheltenham@example.org", &[("locality", "cheltenham")])
        .await;
    app.sign_up_with("pending@example.org", &[("locality", "stroud")])
        .await;
    // stroud@ joined long ago.
    let db = app.db.inspect().await;
    let backdate = match backend {
        Backend::Sqlite => {
            "UPDATE subscriptions SET created_at = created_at - 400 * 86400000
             WHERE subscriber_id = (SELECT id FROM subscribers WHERE email = $1)"
        }
        Backend::Postgres(_) => {
            "UPDATE subscriptions SET created_at = created_at - interval '400 days'
             WHERE subscriber_id = (SELECT id FROM subscribers WHERE email = $1)"
        }
    };
    db.execute_with(backdate, "stroud@example.org").await;
    let staff = app.staff("editor@example.org", "editor").await;
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();

    for (query, people) in [
        (String::new(), 3),
        ("locality=stroud&locality=cheltenham".into(), 2),
        (
            "locality=stroud&locality=cheltenham&locality_operator=not_in".into(),
            1,
        ),
        ("organisation=given".into(), 2),
        ("organisation=not_given".into(), 1),
        (format!("signed_up_before={today}"), 1),
        (format!("signed_up_on_or_after={today}"), 2),
        (
            format!("organisation=given&signed_up_on_or_after={today}"),
            1,
        ),
        ("locality=tewkesbury".into(), 0),
    ] {
        let answer = reach(&app, &staff, &query).await;
        assert_eq!(answer["people"], people, "{query}: {answer}");
    }
    let answer = reach(&app, &staff, "locality=stroud&organisation=given").await;
    assert_eq!(
        answer["words"],
        "1 person on In Partnership (in Stroud, and with an organisation)"
    );
    for bad in [
        "locality=stroud%27%20OR%201%3D1",
        "signed_up_before=last%20week",
        "organisation=maybe",
        "list=no-such-list",
    ] {
        let response = app.staff_get(&staff, &format!("/admin/reach?{bad}")).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
}

async fn the_segment_is_read_when_the_issue_starts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    two_localities(&app).await;
    let token = app.api_token("ci").await;
    let id = issue_to(
        &app,
        &token,
        json!([{"field": "locality", "operator": "in", "value": ["stroud"]}]),
    )
    .await;
    let later = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let scheduled = app
        .api(Method::POST, &format!("/api/issues/{id}/schedule"), &token)
        .json(&json!({"send_at": later}))
        .send()
        .await
        .unwrap();
    assert_eq!(scheduled.status(), StatusCode::OK);
    // Changed while scheduled: to the Forest of Dean instead.
    let changed = app
        .api(Method::PATCH, &format!("/api/issues/{id}"), &token)
        .json(&json!({"segment": [{"field": "locality", "operator": "in", "value": ["forest-of-dean"]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    // Leaving the segment out leaves it as it is.
    let unchanged = app
        .api(Method::PATCH, &format!("/api/issues/{id}"), &token)
        .json(&json!({"subject": "Forest news"}))
        .send()
        .await
        .unwrap();
    let unchanged: Value = unchanged.json().await.unwrap();
    assert_eq!(unchanged["segment"][0]["value"], json!(["forest-of-dean"]));
    app.send_now_and_wait(&token, &id).await;
    assert_eq!(recipients(&app, "Forest news"), vec!["forest@example.org"]);

    // An empty segment is everyone again.
    let all = issue_to(&app, &token, json!([])).await;
    let cleared = app
        .api(Method::PATCH, &format!("/api/issues/{all}"), &token)
        .json(&json!({"segment": []}))
        .send()
        .await
        .unwrap();
    let cleared: Value = cleared.json().await.unwrap();
    assert_eq!(cleared["segment"], json!([]));

    // A stored segment that cannot be read (an older or damaged row) holds back its
    // own issue, never the others.
    let damaged = issue_to(&app, &token, json!([])).await;
    let scheduled = app
        .api(
            Method::POST,
            &format!("/api/issues/{damaged}/schedule"),
            &token,
        )
        .json(&json!({"send_at": later}))
        .send()
        .await
        .unwrap();
    assert_eq!(scheduled.status(), StatusCode::OK);
    app.db
        .inspect()
        .await
        .execute_with(
            r#"UPDATE issues SET segment = '[{"field":"planet"}]', send_at = created_at
               WHERE id = (SELECT id FROM issues WHERE status = 'scheduled' AND subject = $1)"#,
            "Stroud news",
        )
        .await;
    app.send_now_and_wait(&token, &all).await;
    assert_eq!(app.stats(&token, &all).await["recipients"], 2);
    let db = app.db.inspect().await;
    assert_eq!(
        db.count("SELECT count(*) FROM issues WHERE status = 'scheduled'")
            .await,
        1,
        "{damaged} waits"
    );
}

async fn a_segment_that_is_not_typed_conditions_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    two_localities(&app).await;
    let token = app.api_token("ci").await;
    for bad in [
        json!("locality = 'stroud'"),
        json!([{"field": "email", "operator": "in", "value": ["x@example.org"]}]),
        json!([{"field": "locality", "operator": "in", "value": ["stroud' OR '1'='1"]}]),
        json!([{"field": "locality", "operator": "in", "value": []}]),
        json!([{"field": "locality", "operator": "in", "value": ["stroud"], "sql": "1=1"}]),
        json!([{"field": "signed_up", "operator": "before", "value": "2026-02-30"}]),
    ] {
        let response = app
            .api(Method::POST, "/api/issues", &token)
            .json(&json!({"subject": "S", "body_markdown": "Body", "segment": bad}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad} was accepted"
        );
    }
    let db = app.db.inspect().await;
    assert_eq!(db.count("SELECT count(*) FROM issues").await, 0);
    assert_eq!(db.count("SELECT count(*) FROM subscribers").await, 2);
}

async fn the_editor_saves_a_segment_and_says_whom_it_reaches(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    two_localities(&app).await;
    let staff = app.staff("editor@example.org", "editor").await;
    let created = app
        .staff_post(
            &staff,
            "/admin/issues",
            &[
                ("subject", "Local news"),
                (
                    "body_markdown",
                    "## News\n\nFor [you](https://example.org/).",
                ),
                ("template", "standard"),
                ("locality_operator", "in"),
                ("locality", "stroud"),
                ("locality", "cheltenham"),
                ("organisation", "given"),
            ],
        )
        .await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let page_path = created.headers()["location"].to_str().unwrap().to_owned();
    let page = app
        .staff_get(&staff, &page_path)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"id="locality-stroud" name="locality" value="stroud" checked"#));
    assert!(
        page.contains(r#"id="locality-cheltenham" name="locality" value="cheltenham" checked"#)
    );
    assert!(!page.contains(r#"value="forest-of-dean" checked"#));
    assert!(
        page.contains("It would reach <strong>1 person on In Partnership (in Cheltenham or Stroud, and with an organisation)</strong>"),
        "{page}"
    );

    // A date that is not a date is refused, with the fields as typed.
    let id = page_path
        .trim_start_matches("/admin/issues/")
        .split('?')
        .next()
        .unwrap();
    let refused = app
        .staff_post(
            &staff,
            &format!("/admin/issues/{id}"),
            &[
                ("subject", "Local news"),
                (
                    "body_markdown",
                    "## News\n\nFor [you](https://example.org/).",
                ),
                ("template", "standard"),
                ("locality", "forest-of-dean"),
                ("signed_up_before", "yesterday"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = refused.text().await.unwrap();
    assert!(page.contains("year-month-day"), "{page}");
    assert!(page.contains(r#"value="forest-of-dean" checked"#));

    // Nothing ticked: everyone.
    let saved = app
        .staff_post(
            &staff,
            &format!("/admin/issues/{id}"),
            &[
                ("subject", "Local news"),
                (
                    "body_markdown",
                    "## News\n\nFor [you](https://example.org/).",
                ),
                ("template", "standard"),
            ],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let page = app
        .staff_get(&staff, &page_path)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("It would reach <strong>2 people on In Partnership</strong>"));
}

async fn send_now_says_how_many_the_segment_reaches(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    two_localities(&app).await;
    let token = app.api_token("ci").await;
    let id = issue_to(
        &app,
        &token,
        json!([{"field": "locality", "operator": "in", "value": ["forest-of-dean"]}]),
    )
    .await;
    let staff = app.staff("editor@example.org", "editor").await;
    let question = app
        .staff_post(&staff, &format!("/admin/issues/{id}/send-now"), &[])
        .await;
    assert_eq!(question.status(), StatusCode::OK);
    let page = question.text().await.unwrap();
    assert!(
        page.contains("<strong>1 person</strong>\n  on In Partnership (in Forest of Dean)"),
        "{page}"
    );
    assert!(page.contains("Yes, send it now to 1 person"));
}
